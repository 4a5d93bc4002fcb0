//! The runtime: lifecycle (load/reset/pause/start), per-sample processing and host-visible state.
//!
//! The engine's methods live in groups: `api` (the public API), `block`
//! (processing and its fast paths), `lanes` (lanes, segments, glides),
//! `actions` (actions and sequences), `eval` (values, calcs, ifs).

mod actions;
mod api;
mod block;
mod eval;
mod lanes;

use crate::build::{value_samples, Builder};
use crate::error::{LoadError, ValidationError};
use crate::parse::{BinOp, CmpOp, Dir, Parser, RoundKind, Script};
use crate::program::*;

/// Lifecycle state of an [`Engine`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// Loaded, with the post-load reset still pending.
    Loading,
    /// Loaded and not running.
    Paused,
    /// Processing samples.
    Running,
}

/// A failed assert, recorded while processing (no allocation: the values live in a preallocated buffer).
#[derive(Debug, Clone, Copy)]
pub struct AssertFailure {
    name: u32,
    expect: u32,
    vals_start: u32,
    vals_end: u32,
    /// Whether the assert had `stop-on-fail` set.
    pub stop: bool,
}

/// A loaded TimeSeq script with its complete runtime state.
///
/// `Clone` keeps the capacities of the preallocated buffers (a derived clone would not),
/// so a cloned engine processes without allocating and without dropping events.
#[derive(Debug)]
pub struct Engine {
    p: Program,
    script: Script,
    sr: f32,
    status: Status,
    reset_pending: bool,
    start_delay: u32,
    inputs: [[f32; 16]; 8],
    outputs: [[f32; 16]; 8],
    channels: [u8; 8],
    labels: [u32; 8],
    vars: Vec<f32>,
    active: Vec<u32>,
    pending: Vec<u32>,
    active_flag: Vec<bool>,
    fired: Vec<u32>,
    label_events: [u32; 8],
    failures: Vec<AssertFailure>,
    assert_vals: Vec<f64>,
    dropped_events: u64,
    stop_requested: bool,
    rng: u64,
    elapsed: u64,
    skip: u64,
    skipped: u64,
    batched: u64,
    /// Per-sample span (see `maybe_start_span`): length, samples done, writes per sample.
    span_len: u64,
    span_j: u64,
    span_ops: Vec<SpanOp>,
    events_dirty: bool,
    plain: bool,
    seq_depth: u32,
    seq_depth_overflows: u64,
    /// Per lane: the output ports (bits 0–7) it can write, and [`COUPLED`] when it can
    /// affect other lanes (see [`Engine::quiet_ahead_for`]). Computed at load.
    lane_effects: Vec<u16>,
}

/// A lane that can change something other lanes see (a trigger, a variable, a
/// sequence, a pause, a loop-lock) or whose effects are not known.
const COUPLED: u16 = 1 << 8;

/// What lane `l` of `p` can change: the output ports (bits 0–7) its actions write or set
/// the polyphony of, plus [`COUPLED`] when any of its actions (or its timeline's
/// loop-lock) can reach other lanes. Scripts with sequences are taken as coupled
/// throughout (reading a sequence can move shared state).
fn lane_effects(p: &Program, l: usize) -> u16 {
    let lane = &p.lanes[l];
    let locked = p
        .timelines
        .iter()
        .any(|t| t.loop_lock && (t.l_start..t.l_end).contains(&(l as u32)));
    if locked || !p.seqs.is_empty() {
        return COUPLED;
    }
    let glide = |g: u32| match p.glides[g as usize].target {
        GTarget::Output(port, _) => 1u16 << (port & 7),
        GTarget::Var(_) => COUPLED,
    };
    let gate = |g: u32| 1u16 << (p.gates[g as usize].port & 7);
    let mut m = 0u16;
    for e in lane.e_start..lane.e_end {
        let inst = &p.insts[p.entries[e as usize] as usize];
        let starts = &p.alist[inst.st_start as usize..inst.st_end as usize];
        let ends = &p.alist[inst.en_start as usize..inst.en_end as usize];
        for &a in starts.iter().chain(ends) {
            m |= match p.actions[a as usize].kind {
                AKind::SetValue { port, .. } | AKind::SetPoly { port, .. } => 1 << (port & 7),
                AKind::SetLabel { .. } | AKind::Assert { stop: false, .. } => 0,
                AKind::Glide { g } => glide(g),
                AKind::Gate { g } => gate(g),
                _ => COUPLED,
            };
        }
        let seg = &p.segs[inst.seg as usize];
        for &o in &p.ongoing[seg.og_start as usize..seg.og_end as usize] {
            m |= if o & GATE_TAG != 0 {
                gate(o & !GATE_TAG)
            } else {
                glide(o)
            };
        }
    }
    m
}

impl Clone for Engine {
    fn clone(&self) -> Engine {
        Engine {
            p: self.p.clone(),
            script: self.script.clone(),
            sr: self.sr,
            status: self.status,
            reset_pending: self.reset_pending,
            start_delay: self.start_delay,
            inputs: self.inputs,
            outputs: self.outputs,
            channels: self.channels,
            labels: self.labels,
            vars: clone_with_capacity(&self.vars),
            active: clone_with_capacity(&self.active),
            pending: clone_with_capacity(&self.pending),
            active_flag: clone_with_capacity(&self.active_flag),
            fired: clone_with_capacity(&self.fired),
            label_events: self.label_events,
            failures: clone_with_capacity(&self.failures),
            assert_vals: clone_with_capacity(&self.assert_vals),
            dropped_events: self.dropped_events,
            stop_requested: self.stop_requested,
            rng: self.rng,
            elapsed: self.elapsed,
            skip: self.skip,
            skipped: self.skipped,
            batched: self.batched,
            span_len: self.span_len,
            span_j: self.span_j,
            span_ops: clone_with_capacity(&self.span_ops),
            events_dirty: self.events_dirty,
            plain: self.plain,
            seq_depth: self.seq_depth,
            seq_depth_overflows: self.seq_depth_overflows,
            lane_effects: self.lane_effects.clone(),
        }
    }
}

/// Clones a vector with (at least) the same capacity.
fn clone_with_capacity<T: Clone>(v: &Vec<T>) -> Vec<T> {
    let mut c = Vec::with_capacity(v.capacity());
    c.extend_from_slice(v);
    c
}

/// One write per sample of a per-sample span.
#[derive(Debug, Clone, Copy)]
enum SpanOp {
    /// A tabled glide writing an output: `gtab[base + j]` at the span's j-th sample.
    Tab { base: u32, port: u8, ch: u8 },
    /// The `triv_ops` of a batchable trivial-loop lane.
    Triv { a: u32, b: u32 },
}

/// Maximum nesting of sequence reads that evaluate values reading sequences.
pub const MAX_SEQ_DEPTH: u32 = 64;

/// Marker for "no label set".
pub const NO_LABEL: u32 = u32::MAX;

/// Parses and validates a script (phases 1 and 2).
pub(crate) fn parse_script(json: &str) -> Result<Script, LoadError> {
    let doc: serde_json::Value = serde_json::from_str(json).map_err(|e| {
        LoadError::Syntax(ValidationError {
            location: "/".into(),
            message: format!(
                "JSON parse error at line {}, column {}: {}",
                e.line(),
                e.column(),
                e
            ),
            code: None,
        })
    })?;
    let mut parser = Parser::new();
    let script = parser.parse_root(&doc);
    if !parser.errors.is_empty() {
        return Err(LoadError::Structure(parser.errors));
    }
    Ok(script)
}

fn build(script: &Script, sr: f32) -> Result<Program, LoadError> {
    let mut b = Builder::new(script, sr);
    b.build();
    if !b.errors.is_empty() {
        return Err(LoadError::Build(b.errors));
    }
    Ok(b.p)
}

/// Validates a script at the given engine sample rate, returning every error found.
pub fn validate(json: &str, sample_rate: f32) -> Vec<ValidationError> {
    match Engine::load(json, sample_rate) {
        Ok(_) => Vec::new(),
        Err(e) => e.errors(),
    }
}

#[inline]
fn cmp(op: CmpOp, x: f64, y: f64, tol: Option<f32>) -> bool {
    match op {
        CmpOp::Eq => match tol {
            Some(t) => (x - y).abs() <= t as f64,
            None => x == y,
        },
        CmpOp::Ne => match tol {
            Some(t) => (x - y).abs() > t as f64,
            None => x != y,
        },
        CmpOp::Lt => x < y,
        CmpOp::Lte => x <= y,
        CmpOp::Gt => x > y,
        CmpOp::Gte => x >= y,
    }
}

/// xorshift64* step of the `rand` generator.
#[inline]
fn next_u64(rng: &mut u64) -> u64 {
    let mut x = *rng;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    *rng = x;
    x.wrapping_mul(0x2545_F491_4F6C_DD1D)
}

/// A `rand` value in [lo, hi) (no draw when the bounds are equal).
#[inline]
fn rand_f32(rng: &mut u64, lo: f32, hi: f32) -> f32 {
    if lo == hi {
        return lo;
    }
    let (lo, hi) = if lo < hi { (lo, hi) } else { (hi, lo) };
    let u = (next_u64(rng) >> 40) as f32 / (1u64 << 24) as f32;
    let r = lo + (hi - lo) * u;
    if r >= hi || !r.is_finite() {
        lo
    } else {
        r
    }
}

/// Longest segment (in samples) whose glides get an output table.
const GLIDE_TABLE_MAX_LEN: u64 = 1 << 16;
/// Total glide table entries per engine.
const GLIDE_TABLE_MAX_TOTAL: u64 = 1 << 17;

/// The glide value at position `pos` (1..D) of a segment: t = f32(inv·(pos−1)), eased in
/// f32, then `start + delta·e` in f64, stored as f32.
#[inline]
fn glide_calc(start: f64, delta: f64, inv: f64, ease_f: f32, pow: bool, pos: u64) -> f32 {
    // pos < 2^53, so the signed conversion is exact (and cheaper).
    let t = (inv * (pos - 1) as i64 as f64) as f32;
    let e = if ease_f != 0.0 {
        ease(t, ease_f, pow)
    } else {
        t
    };
    (start + delta * e as f64) as f32
}

#[inline]
fn ease(t: f32, f: f32, pow: bool) -> f32 {
    if pow {
        if f > 0.0 {
            t.powf(1.0 + f * 2.0)
        } else {
            1.0 - (1.0 - t).powf(1.0 - f * 2.0)
        }
    } else if f > 0.0 {
        t / (1.0 + f * (1.0 - t))
    } else {
        1.0 - ((1.0 - t) / (1.0 - f * t))
    }
}

/// Semitone quantize with the reference's f32 thresholds.
pub(crate) fn quantize_semitone(v: f64) -> f64 {
    let mut octave = v.trunc();
    let mut note = if v.is_infinite() {
        0.0f64.copysign(v)
    } else {
        (v - octave).copysign(v)
    };
    if note < 0.0 {
        note += 1.0;
        octave -= 1.0;
    }
    for k in 0..13 {
        let (th, q) = if k == 12 {
            (1.0f32, 1.0f32)
        } else {
            let base = k as f32 / 12.0;
            (base + (1.0f32 / 24.0), base)
        };
        if note < th as f64 {
            note = q as f64;
            break;
        }
    }
    octave + note
}
