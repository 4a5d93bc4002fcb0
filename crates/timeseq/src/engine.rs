//! The runtime: lifecycle (load/reset/pause/start), per-sample processing and host-visible state.

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

impl Engine {
    /// Loads a script at engine sample rate `sample_rate`. The engine starts in
    /// [`Status::Loading`] with a reset pending (run by the next [`Engine::process`] call).
    pub fn load(json: &str, sample_rate: f32) -> Result<Engine, LoadError> {
        let script = parse_script(json)?;
        let p = build(&script, sample_rate)?;
        Ok(Engine::from_program(p, script, sample_rate))
    }

    fn from_program(p: Program, script: Script, sr: f32) -> Engine {
        let ntrig = p.trigger_names.len();
        let trig_cap = 4 * (p.trigger_sites as usize + p.input_triggers.len()) + 64;
        let leaves: usize = p.if_leaves.iter().map(|x| *x as usize).sum();
        let nvars = p.var_names.len();
        let assert_cap = 4 * p.assert_count as usize + 16;
        let nlanes = p.lanes.len();
        let lane_effects = (0..nlanes).map(|l| lane_effects(&p, l)).collect();
        let mut e = Engine {
            p,
            script,
            sr,
            status: Status::Loading,
            reset_pending: true,
            start_delay: 0,
            inputs: [[0.0; 16]; 8],
            outputs: [[0.0; 16]; 8],
            channels: [1; 8],
            labels: [NO_LABEL; 8],
            vars: vec![0.0; nvars],
            active: Vec::with_capacity(trig_cap),
            pending: Vec::with_capacity(trig_cap),
            active_flag: vec![false; ntrig],
            fired: Vec::with_capacity(trig_cap),
            label_events: [NO_LABEL; 8],
            failures: Vec::with_capacity(assert_cap),
            assert_vals: Vec::with_capacity(8 * leaves + 64),
            dropped_events: 0,
            stop_requested: false,
            rng: 0x9E37_79B9_7F4A_7C15,
            elapsed: 0,
            skip: 0,
            skipped: 0,
            batched: 0,
            span_len: 0,
            span_j: 0,
            span_ops: Vec::with_capacity(nlanes),
            events_dirty: false,
            plain: false,
            seq_depth: 0,
            seq_depth_overflows: 0,
            lane_effects,
        };
        e.build_glide_tables();
        e.build_batch_info();
        e
    }

    /// Marks the `trivial_loop` lanes that block processing can batch (see
    /// [`Lane::batch_draws`]).
    fn build_batch_info(&mut self) {
        self.p.triv_ops.clear();
        for l in 0..self.p.lanes.len() {
            let lane = self.p.lanes[l];
            self.p.lanes[l].batch_draws = NO_BATCH;
            if !lane.trivial_loop || lane.e_end <= lane.e_start {
                continue;
            }
            let ins = self.p.insts[self.p.entries[lane.e_start as usize] as usize];
            let seg = self.p.segs[ins.seg as usize];
            if seg.og_start != seg.og_end {
                continue;
            }
            let mut draws = 0u32;
            let mut ok = true;
            let triv_start = self.p.triv_ops.len() as u32;
            for i in (ins.st_start..ins.st_end).chain(ins.en_start..ins.en_end) {
                let node = self.p.actions[self.p.alist[i as usize] as usize];
                let (port, ch, val) = match (node.cond, node.kind) {
                    (None, AKind::SetValue { port, ch, val }) => (port, ch, val),
                    _ => {
                        ok = false;
                        break;
                    }
                };
                let v = self.p.values[val as usize];
                if v.calc_start != v.calc_end || v.quantize {
                    ok = false;
                    break;
                }
                let op = match v.src {
                    VSrc::Const(x) => TrivOp {
                        port,
                        ch,
                        rand: false,
                        a: x,
                        b: x,
                    },
                    // `rand_f32` draws unless the bounds are equal.
                    VSrc::RandConst(lo, hi) => {
                        draws += u32::from(lo != hi);
                        TrivOp {
                            port,
                            ch,
                            rand: true,
                            a: lo,
                            b: hi,
                        }
                    }
                    _ => {
                        ok = false;
                        break;
                    }
                };
                self.p.triv_ops.push(op);
            }
            if ok && draws < NO_BATCH / 2 {
                let lm = &mut self.p.lanes[l];
                lm.batch_draws = draws;
                lm.triv_start = triv_start;
                lm.triv_end = self.p.triv_ops.len() as u32;
            } else {
                self.p.triv_ops.truncate(triv_start as usize);
            }
        }
    }

    /// Whether value `id` always evaluates to the same number without side effects.
    fn value_is_pure(&self, id: u32, depth: u32) -> bool {
        if depth > 16 {
            return false;
        }
        let n = &self.p.values[id as usize];
        matches!(n.src, VSrc::Const(_))
            && (n.calc_start..n.calc_end).all(|c| match self.p.calcs[c as usize] {
                CNode::Bin(_, v) => self.value_is_pure(v, depth + 1),
                _ => true,
            })
    }

    /// Precomputes the output of every glide with constant start/end values inside a
    /// segment of constant duration, for every position (used by fast processing only;
    /// the table is only used when a segment instance's actual start, end and duration
    /// match the table's key, so it is exact by construction).
    fn build_glide_tables(&mut self) {
        self.p.gtab.clear();
        for s in 0..self.p.segs.len() {
            let seg = self.p.segs[s];
            if !matches!(seg.kind, DurKind::Const)
                || seg.duration < 2
                || seg.duration > GLIDE_TABLE_MAX_LEN
            {
                continue;
            }
            let dur = seg.duration;
            for i in seg.og_start..seg.og_end {
                let tag = self.p.ongoing[i as usize];
                if tag & GATE_TAG != 0 {
                    continue;
                }
                let gl = self.p.glides[tag as usize];
                if gl.tab_len != 0
                    || self.p.gtab.len() as u64 + dur > GLIDE_TABLE_MAX_TOTAL
                    || !self.value_is_pure(gl.start_val, 0)
                    || !self.value_is_pure(gl.end_val, 0)
                {
                    continue;
                }
                let st = self.eval(gl.start_val);
                let en = self.eval(gl.end_val);
                let inv = 1.0 / (dur as f64 - 1.0);
                let off = self.p.gtab.len();
                self.p.gtab.push(en as f32); // position 0 (unused)
                for pos in 1..dur {
                    let v = glide_calc(st, en - st, inv, gl.ease, gl.pow, pos);
                    self.p.gtab.push(v);
                }
                let gm = &mut self.p.glides[tag as usize];
                gm.tab_off = off as u32;
                gm.tab_len = dur as u32;
                gm.tab_s = st;
                gm.tab_e = en;
            }
        }
    }

    /// Seeds the `rand` generator (policy 5).
    pub fn seed(&mut self, seed: u64) {
        self.rng = seed ^ 0x9E37_79B9_7F4A_7C15;
        if self.rng == 0 {
            self.rng = 1;
        }
    }

    /// Disables (or re-enables) the skip-ahead and per-lane fast paths, so that every
    /// sample takes the plain step-by-step path of the reference. The output is identical
    /// either way; this exists for differential testing and benchmarking.
    pub fn set_plain_processing(&mut self, plain: bool) {
        self.flush_span();
        self.plain = plain;
        self.catch_up();
        self.skip = 0;
        for l in self.p.lanes.iter_mut() {
            l.fast_seg = NO_SEG;
        }
        for g in self.p.glides.iter_mut() {
            g.use_tab = false;
        }
    }

    /// Current lifecycle status.
    pub fn status(&self) -> Status {
        self.status
    }

    /// Starts (or resumes) processing after `delay` process calls.
    /// Like the reference, this does nothing when the engine is already running.
    pub fn start(&mut self, delay: u32) {
        if self.status != Status::Running {
            self.start_delay = delay;
            self.status = Status::Running;
        }
    }

    /// Pauses; triggers, variables and positions are kept.
    pub fn pause(&mut self) {
        self.start_delay = 0;
        self.status = Status::Paused;
    }

    /// Requests a reset, handled at the next process call.
    pub fn reset(&mut self) {
        self.reset_pending = true;
    }

    /// Engine sample rate.
    pub fn sample_rate(&self) -> f32 {
        self.sr
    }

    /// Sample-rate change: rebuilds the processor from the parsed script at the new rate.
    /// Like the reference this is a reload: a reset follows and the status goes back to
    /// paused via loading. This allocates and must be called outside the audio path.
    pub fn set_sample_rate(&mut self, sr: f32) -> Result<(), LoadError> {
        let p = build(&self.script, sr)?;
        let script = std::mem::take(&mut self.script);
        let (inputs, rng, status, delay) = (self.inputs, self.rng, self.status, self.start_delay);
        *self = Engine::from_program(p, script, sr);
        self.inputs = inputs;
        self.rng = rng;
        // As the reference: back to loading, unless running with a pending start delay
        // (the patch-load phase), which keeps running.
        if status == Status::Running && delay > 0 {
            self.status = Status::Running;
            self.start_delay = delay;
        }
        Ok(())
    }

    /// Sets an input voltage (port 0..8, channel 0..16).
    #[inline]
    pub fn set_input(&mut self, port: usize, ch: usize, v: f32) {
        self.inputs[port][ch] = v;
    }

    /// Stored output voltage (port 0..8, channel 0..16).
    #[inline]
    pub fn output(&self, port: usize, ch: usize) -> f32 {
        self.outputs[port][ch]
    }

    /// All stored output voltages.
    pub fn outputs(&self) -> &[[f32; 16]; 8] {
        &self.outputs
    }

    /// Output channel count (polyphony) of a port.
    pub fn polyphony(&self, port: usize) -> u8 {
        self.channels[port]
    }

    /// Current label of an output port, if a `set-label` set one.
    pub fn label(&self, port: usize) -> Option<&str> {
        let l = self.labels[port];
        (l != NO_LABEL).then(|| self.p.strings[l as usize].as_str())
    }

    /// Labels set by `set-label` during the last process call, per port.
    pub fn label_events(&self) -> impl Iterator<Item = (usize, &str)> + '_ {
        self.label_events
            .iter()
            .enumerate()
            .filter(|(_, l)| **l != NO_LABEL)
            .map(|(i, l)| (i, self.p.strings[*l as usize].as_str()))
    }

    /// Interned variable names; index matches [`Engine::variable`].
    pub fn variable_names(&self) -> &[String] {
        &self.p.var_names
    }

    /// Variable value by interned index (0 when unset).
    pub fn variable(&self, idx: usize) -> f32 {
        self.vars[idx]
    }

    /// Variable value by name (0 when unknown or unset).
    pub fn variable_by_name(&self, name: &str) -> f32 {
        self.p
            .var_names
            .iter()
            .position(|n| n == name)
            .map_or(0.0, |i| self.vars[i])
    }

    /// Triggers fired during the last process call, in firing order.
    pub fn fired_triggers(&self) -> impl Iterator<Item = &str> + '_ {
        self.fired
            .iter()
            .map(|t| self.p.trigger_names[*t as usize].as_str())
    }

    /// Assert failures of the last process call.
    pub fn assert_failures(&self) -> &[AssertFailure] {
        &self.failures
    }

    /// Name of a failed assert.
    pub fn assert_name(&self, f: &AssertFailure) -> &str {
        &self.p.strings[f.name as usize]
    }

    /// The failure message, e.g. `(2 eq 9)`, built from the values that failed (deviation b).
    pub fn assert_message(&self, f: &AssertFailure) -> String {
        let mut out = String::new();
        let mut idx = f.vals_start as usize;
        self.fmt_if(f.expect, &mut idx, f.vals_end as usize, &mut out);
        out
    }

    fn fmt_if(&self, id: u32, idx: &mut usize, end: usize, out: &mut String) {
        match self.p.ifs[id as usize] {
            INode::Cmp { op, .. } => {
                let (a, b) = if *idx + 1 < end + 1 && *idx + 2 <= end {
                    (self.assert_vals[*idx], self.assert_vals[*idx + 1])
                } else {
                    (f64::NAN, f64::NAN)
                };
                *idx += 2;
                out.push('(');
                out.push_str(&crate::fmt::fmt_g(a, 10));
                out.push(' ');
                out.push_str(op.name());
                out.push(' ');
                out.push_str(&crate::fmt::fmt_g(b, 10));
                out.push(')');
            }
            INode::Logic { and, start, end: e } => {
                out.push('(');
                for (k, i) in (start..e).enumerate() {
                    if k > 0 {
                        out.push_str(if and { " and " } else { " or " });
                    }
                    let c = self.p.if_children[i as usize];
                    self.fmt_if(c, idx, end, out);
                }
                out.push(')');
            }
        }
    }

    /// Number of `add-to-sequence` operations ignored because a sequence was full (deviation g).
    pub fn sequence_overflows(&self) -> u64 {
        self.p.seqs.iter().map(|s| s.dropped).sum()
    }

    /// Sequence reads cut off at [`MAX_SEQ_DEPTH`] (a value stored in a sequence that reads
    /// the sequence again; the reference overflows its stack there).
    pub fn sequence_recursion_cutoffs(&self) -> u64 {
        self.seq_depth_overflows
    }

    /// Events (triggers/asserts) that did not fit the preallocated event buffers.
    pub fn dropped_events(&self) -> u64 {
        self.dropped_events
    }

    /// Processes one engine sample, running `rate` script samples (the reference's `process(rate)`).
    #[inline]
    pub fn process(&mut self, rate: u32) {
        if self.span_len > 0
            && rate == 1
            && self.status == Status::Running
            && !self.reset_pending
            && self.start_delay == 0
        {
            self.span_step();
            return;
        }
        if self.skip >= rate as u64
            && self.status == Status::Running
            && !self.reset_pending
            && self.start_delay == 0
        {
            // Fast path: nothing but position advances can happen in these samples.
            if self.events_dirty {
                self.clear_events();
            }
            for _ in 0..rate {
                self.skip -= 1;
                self.skipped += 1;
                self.elapsed = self.elapsed.wrapping_add(1);
                if !self.p.input_triggers.is_empty() {
                    self.input_triggers();
                    if !self.pending.is_empty() {
                        self.catch_up();
                        self.skip = 0;
                        break;
                    }
                }
            }
            return;
        }
        self.process_slow(rate);
    }

    fn clear_events(&mut self) {
        self.events_dirty = false;
        self.fired.clear();
        self.label_events = [NO_LABEL; 8];
        self.failures.clear();
        self.assert_vals.clear();
    }

    /// Processes `n` samples in one call (one script sample per engine sample, inputs held
    /// constant). The state afterwards (outputs, polyphony, labels, variables, positions,
    /// random generator, pending triggers, status) is exactly the state after `n` calls of
    /// [`Engine::process`]`(1)`; a stop-on-fail assert pauses after its sample, as there.
    /// The event accessors ([`Engine::fired_triggers`], [`Engine::assert_failures`],
    /// [`Engine::label_events`]) report the events of the whole block, in order (up to the
    /// preallocated buffers; overflow is counted in [`Engine::dropped_events`]).
    ///
    /// Besides skipping quiet samples, this batches spans in which every running lane is
    /// inside a segment whose per-sample work is only position advances and glide writes
    /// (or is a 1-sample looping lane that only sets outputs to constants or constant-bound
    /// `rand`s): nothing is read in such a span and every sample rewrites the same targets,
    /// so only the positions, the random generator and the span's last sample are computed.
    /// Intermediate output values inside a block are therefore not observable (use
    /// `process(1)` per sample for that). No allocation.
    pub fn process_block(&mut self, n: u32) {
        self.flush_span();
        if self.events_dirty {
            self.clear_events();
        }
        let mut left = n as u64;
        while left > 0 {
            let running = self.status == Status::Running
                && !self.reset_pending
                && self.start_delay == 0
                && !self.plain;
            if running && self.skip > 0 && self.p.input_triggers.is_empty() {
                let k = self.skip.min(left);
                self.skip -= k;
                self.skipped += k;
                self.elapsed = self.elapsed.wrapping_add(k);
                left -= k;
                continue;
            }
            if running && self.skip == 0 && left >= 2 {
                // Positions of skipped samples are applied lazily: apply them first.
                self.catch_up();
                let m = self.batch_len().min(left);
                if m >= 2 {
                    self.batch(m - 1);
                    left -= m - 1;
                }
            }
            self.run(1);
            left -= 1;
        }
    }

    /// Number of following samples in which every running lane only takes fast-window
    /// steps or batchable trivial-loop cycles, no trigger is pending and no input trigger
    /// can change (0 when none).
    fn batch_len(&self) -> u64 {
        if !self.pending.is_empty() {
            return 0;
        }
        for it in self.p.input_triggers.iter() {
            let v = self.inputs[it.port as usize][it.ch as usize];
            if (it.high && v <= 0.0) || (!it.high && v >= 1.0) {
                return 0;
            }
        }
        let mut m = u64::MAX;
        for lane in self.p.lanes.iter() {
            if lane.state != LANE_PROCESSING {
                continue;
            }
            if lane.fast_seg != NO_SEG {
                let pos = self.p.segs[lane.fast_seg as usize].pos;
                m = m.min(lane.fast_limit.saturating_sub(pos));
            } else if lane.batch_draws != NO_BATCH && lane.acc < 1.0 {
                let sg = &self.p.segs[lane.cur_seg as usize];
                if sg.state != ST_END {
                    return 0;
                }
            } else {
                return 0;
            }
            if m == 0 {
                return 0;
            }
        }
        m
    }

    /// Advances `k` samples that `batch_len` allowed, without their (overwritten) writes.
    fn batch(&mut self, k: u64) {
        if !self.active.is_empty() {
            self.active_clear();
        }
        let mut draws = 0u64;
        for l in 0..self.p.lanes.len() {
            let lane = &mut self.p.lanes[l];
            if lane.state != LANE_PROCESSING {
                continue;
            }
            if lane.fast_seg != NO_SEG {
                self.p.segs[lane.fast_seg as usize].pos += k;
            } else {
                lane.repeat_count += k;
                draws += lane.batch_draws as u64;
            }
        }
        for _ in 0..draws * k {
            self.next_u64();
        }
        self.elapsed = self.elapsed.wrapping_add(k);
        self.batched += k;
    }

    /// How many of the following samples are certain to change nothing a host sees
    /// (outputs, polyphony, labels, variables' effects on outputs, triggers, asserts)
    /// as long as the inputs stay as they are: `process_block(k)` for `k` up to this leaves
    /// every output as it is now, so a host that turns output changes into events
    /// (MIDI notes at a frame) can process those samples in one call and only step
    /// sample by sample where something can happen. `u64::MAX` while paused or while no
    /// lane runs (the samples must still be processed while running: time and input
    /// triggers go on), 0 when the next sample may change something (a reset or start
    /// delay pending, a glide writing, a segment ending, a trigger pending).
    ///
    /// Read it right after a `process`/`process_block` call. After changing an input, call
    /// `process(1)` for that sample first: an input trigger fires there and the lanes see it
    /// one sample later, which this count then reflects. No allocation.
    pub fn quiet_ahead(&self) -> u64 {
        if self.reset_pending || self.start_delay > 0 {
            return 0;
        }
        match self.status {
            Status::Paused => u64::MAX,
            Status::Loading => 0,
            Status::Running if self.span_len > 0 || self.plain => 0,
            Status::Running => self.skip,
        }
    }

    /// Like [`Engine::quiet_ahead`], for a host that only watches the output ports in
    /// `ports` (bit `p` = port `p`, 0-based): how many following samples are certain to
    /// change neither the voltages nor the polyphony of those ports, inputs held. Lanes
    /// that only write other ports and cannot reach other lanes (no trigger, variable,
    /// sequence, stop-on-fail assert or loop-lock) do not count, so a script whose other
    /// outputs change every sample can still be processed in blocks between the watched
    /// changes. Same rules of use as `quiet_ahead`. No allocation.
    pub fn quiet_ahead_for(&self, ports: u8) -> u64 {
        if self.reset_pending || self.start_delay > 0 {
            return 0;
        }
        match self.status {
            Status::Paused => return u64::MAX,
            Status::Loading => return 0,
            Status::Running if self.plain || !self.pending.is_empty() => return 0,
            Status::Running => {}
        }
        let watched = ports as u16 | COUPLED;
        // Positions are applied lazily while skipping and inside a span.
        let lag = self.skipped + self.span_j;
        let mut q = u64::MAX;
        for (l, lane) in self.p.lanes.iter().enumerate() {
            if self.lane_effects[l] & watched == 0 || lane.state != LANE_PROCESSING {
                continue;
            }
            if lane.fast_seg == NO_SEG || lane.glide_busy {
                return 0;
            }
            let pos = self.p.segs[lane.fast_seg as usize].pos + lag;
            q = q.min(lane.fast_limit.saturating_sub(pos));
            if q == 0 {
                return 0;
            }
        }
        q
    }

    /// Samples advanced by [`Engine::process_block`]'s batching so far (for tests).
    #[doc(hidden)]
    pub fn batched_samples(&self) -> u64 {
        self.batched
    }

    #[inline(never)]
    fn process_slow(&mut self, rate: u32) {
        self.flush_span();
        if self.events_dirty {
            self.clear_events();
        }
        self.run(rate);
        self.maybe_start_span();
    }

    /// After a processed sample, when the next `m >= 2` samples are batchable (see
    /// `batch_len`) and every busy lane has a single tabled glide writing an output, the
    /// following `process(1)` calls only perform those samples' writes (table loads, the
    /// trivial lanes' set-values with their random draws, in lane order); the positions and
    /// repeat counters are applied when the span ends or anything else happens
    /// (`flush_span`), like `skipped`/`catch_up`.
    fn maybe_start_span(&mut self) {
        if self.plain
            || self.status != Status::Running
            || self.reset_pending
            || self.start_delay > 0
            || self.skip > 0
            || self.skipped > 0
            || !self.p.input_triggers.is_empty()
        {
            return;
        }
        let m = self.batch_len();
        if m < 2 {
            return;
        }
        self.span_ops.clear();
        for l in 0..self.p.lanes.len() {
            let lane = &self.p.lanes[l];
            if lane.state != LANE_PROCESSING {
                continue;
            }
            if lane.fast_seg != NO_SEG {
                if lane.glide_busy {
                    if lane.fast_tab == NO_TAB || self.span_ops.len() >= self.span_ops.capacity() {
                        self.span_ops.clear();
                        return;
                    }
                    let pos = self.p.segs[lane.fast_seg as usize].pos;
                    self.span_ops.push(SpanOp::Tab {
                        base: lane.fast_tab + pos as u32,
                        port: lane.fast_port,
                        ch: lane.fast_ch,
                    });
                }
            } else if lane.triv_start < lane.triv_end {
                // `batch_len` admitted only batchable trivial-loop lanes here.
                if self.span_ops.len() >= self.span_ops.capacity() {
                    self.span_ops.clear();
                    return;
                }
                self.span_ops.push(SpanOp::Triv {
                    a: lane.triv_start,
                    b: lane.triv_end,
                });
            }
        }
        self.span_len = m;
        self.span_j = 0;
    }

    /// One sample of a per-sample span.
    #[inline]
    fn span_step(&mut self) {
        if self.events_dirty {
            self.clear_events();
        }
        self.span_j += 1;
        let j = self.span_j as usize;
        let outputs = &mut self.outputs;
        let rng = &mut self.rng;
        let (gtab, triv) = (&self.p.gtab[..], &self.p.triv_ops[..]);
        for op in self.span_ops.iter() {
            match *op {
                SpanOp::Tab { base, port, ch } => {
                    outputs[port as usize & 7][ch as usize & 15] = gtab[base as usize + j];
                }
                SpanOp::Triv { a, b } => {
                    for t in &triv[a as usize..b as usize] {
                        let v = if t.rand { rand_f32(rng, t.a, t.b) } else { t.a };
                        outputs[t.port as usize & 7][t.ch as usize & 15] = v;
                    }
                }
            }
        }
        self.elapsed = self.elapsed.wrapping_add(1);
        if self.span_j == self.span_len {
            self.flush_span();
        }
    }

    /// Applies the position and repeat-counter advances of a (partly) done span and ends it.
    fn flush_span(&mut self) {
        if self.span_len == 0 {
            return;
        }
        let j = self.span_j;
        self.span_len = 0;
        self.span_j = 0;
        for l in 0..self.p.lanes.len() {
            let lane = &mut self.p.lanes[l];
            if lane.state != LANE_PROCESSING {
                continue;
            }
            if lane.fast_seg != NO_SEG {
                self.p.segs[lane.fast_seg as usize].pos += j;
            } else {
                lane.repeat_count += j;
            }
        }
    }

    /// `process(rate)` after the event buffers were cleared.
    fn run(&mut self, rate: u32) {
        if self.start_delay > 0 {
            self.start_delay -= 1;
            return;
        }
        if self.reset_pending {
            self.reset_pending = false;
            self.catch_up();
            self.skip = 0;
            self.do_reset();
            if self.stop_requested {
                // A stop-on-fail assert in a global action pauses before any lane runs.
                self.stop_requested = false;
                self.status = Status::Paused;
            }
        }
        match self.status {
            Status::Loading => self.status = Status::Paused,
            Status::Paused => {}
            Status::Running => {
                for _ in 0..rate {
                    if self.skip > 0 {
                        // Nothing but position advances can happen in this sample.
                        self.skip -= 1;
                        self.skipped += 1;
                        self.input_triggers();
                        self.elapsed = self.elapsed.wrapping_add(1);
                        if !self.pending.is_empty() {
                            self.catch_up();
                            self.skip = 0;
                        }
                        continue;
                    }
                    self.catch_up();
                    self.sample();
                    self.skip = self.quiet_samples();
                }
                // A failed stop-on-fail assert pauses the core; like the reference, the
                // remaining script samples of this call still run.
                if self.stop_requested {
                    self.stop_requested = false;
                    self.status = Status::Paused;
                }
            }
        }
    }

    fn do_reset(&mut self) {
        self.outputs = [[0.0; 16]; 8];
        self.channels = [1; 8];
        self.labels = [NO_LABEL; 8];
        for t in self.active.drain(..) {
            self.active_flag[t as usize] = false;
        }
        self.pending.clear();
        for v in self.vars.iter_mut() {
            *v = 0.0;
        }
        for i in 0..self.p.global_actions.len() {
            let a = self.p.global_actions[i];
            self.run_action(a);
        }
        for l in 0..self.p.lanes.len() {
            self.lane_reset(l);
        }
        self.elapsed = 0;
    }

    #[inline]
    fn active_clear(&mut self) {
        for t in self.active.drain(..) {
            self.active_flag[t as usize] = false;
        }
    }

    #[inline]
    fn input_triggers(&mut self) {
        for i in 0..self.p.input_triggers.len() {
            let it = self.p.input_triggers[i];
            let v = self.inputs[it.port as usize][it.ch as usize];
            if it.high {
                if v <= 0.0 {
                    self.p.input_triggers[i].high = false;
                }
            } else if v >= 1.0 {
                self.p.input_triggers[i].high = true;
                self.fire(it.id);
            }
        }
    }

    #[inline]
    fn sample(&mut self) {
        if !self.active.is_empty() {
            self.active_clear();
        }
        if !self.pending.is_empty() {
            std::mem::swap(&mut self.active, &mut self.pending);
            for &t in self.active.iter() {
                self.active_flag[t as usize] = true;
            }
        }
        let has_triggers = !self.active.is_empty();
        for ti in 0..self.p.timelines.len() {
            let tl = self.p.timelines[ti];
            let mut check = false;
            if has_triggers {
                for l in tl.l_start..tl.l_end {
                    if self.lane_triggers(l as usize) {
                        check = true;
                    }
                }
            }
            for l in tl.l_start..tl.l_end {
                // Inline fast path: a lane inside a segment only advances and writes glides.
                let lane = &self.p.lanes[l as usize];
                if lane.fast_seg != NO_SEG {
                    if self.fast_step(l as usize) {
                        continue;
                    }
                } else if lane.state != LANE_PROCESSING
                    || (lane.trivial_loop && self.trivial_step(l as usize))
                {
                    continue;
                }
                if self.lane_process(l as usize) {
                    if tl.loop_lock {
                        check = true;
                    } else {
                        self.lane_loop(l as usize);
                    }
                }
            }
            if check && tl.loop_lock {
                let all = (tl.l_start..tl.l_end)
                    .all(|l| self.p.lanes[l as usize].state != LANE_PROCESSING);
                if all {
                    for l in tl.l_start..tl.l_end {
                        self.lane_loop(l as usize);
                    }
                }
            }
        }
        if !self.p.input_triggers.is_empty() {
            self.input_triggers();
        }
        self.elapsed = self.elapsed.wrapping_add(1);
    }

    #[inline]
    fn fire(&mut self, t: u32) {
        if self.pending.len() < self.pending.capacity() {
            self.pending.push(t);
        } else if !self.pending.contains(&t) {
            // Membership is all lanes need: replace a duplicate slot if any.
            self.dropped_events += 1;
        }
        self.events_dirty = true;
        if self.fired.len() < self.fired.capacity() {
            self.fired.push(t);
        } else {
            self.dropped_events += 1;
        }
    }

    #[inline]
    fn has_trigger(&self, t: u32) -> bool {
        t != NO_TRIG && self.active_flag[t as usize]
    }

    /// Returns true when a stop trigger stopped the lane (deviation c).
    fn lane_triggers(&mut self, l: usize) -> bool {
        let lane = &self.p.lanes[l];
        let (restart_trig, start_trig, stop_trig) =
            (lane.restart_trig, lane.start_trig, lane.stop_trig);
        if lane.e_end > lane.e_start {
            let state = lane.state;
            let restart = self.has_trigger(restart_trig);
            if restart || (state != LANE_PROCESSING && self.has_trigger(start_trig)) {
                self.lane_reset(l);
                self.p.lanes[l].state = LANE_PROCESSING;
            }
        }
        if self.p.lanes[l].state != LANE_IDLE && self.has_trigger(stop_trig) {
            self.p.lanes[l].state = LANE_IDLE;
            self.p.lanes[l].fast_seg = NO_SEG;
            return true;
        }
        false
    }

    /// Makes entry `idx` of lane `l` the active one and rewinds its segment.
    #[inline]
    fn enter_entry(&mut self, l: usize, idx: u32) {
        let lane = &mut self.p.lanes[l];
        lane.active = idx;
        let inst = self.p.entries[(lane.e_start + idx) as usize];
        let seg = self.p.insts[inst as usize].seg;
        lane.cur_inst = inst;
        lane.cur_seg = seg;
        let s = &mut self.p.segs[seg as usize];
        s.state = ST_START;
        s.pos = 0;
    }

    fn lane_reset(&mut self, l: usize) {
        let lane = &mut self.p.lanes[l];
        lane.fast_seg = NO_SEG;
        lane.repeat_count = 0;
        lane.active = 0;
        lane.acc = 0.0;
        let has = lane.e_end > lane.e_start;
        lane.state = if lane.auto_start && has {
            LANE_PROCESSING
        } else {
            LANE_IDLE
        };
        if has {
            self.enter_entry(l, 0);
        }
    }

    fn lane_loop(&mut self, l: usize) {
        let lane = &self.p.lanes[l];
        if lane.state == LANE_PENDING
            && (lane.looping || (lane.repeat > 1 && lane.repeat_count < lane.repeat - 1))
        {
            let has = lane.e_end > lane.e_start;
            let lm = &mut self.p.lanes[l];
            lm.fast_seg = NO_SEG;
            lm.repeat_count += 1;
            lm.active = 0;
            lm.state = LANE_PROCESSING;
            if has {
                self.enter_entry(l, 0);
            }
            self.lane_process(l);
        }
    }

    /// Fast window step of lane `l` (whose `fast_seg` is set): returns false when the
    /// window is exhausted and the full lane step must run.
    #[inline(always)]
    fn fast_step(&mut self, l: usize) -> bool {
        let lane = &self.p.lanes[l];
        let (limit, busy, tab, port, ch) = (
            lane.fast_limit,
            lane.glide_busy,
            lane.fast_tab,
            lane.fast_port,
            lane.fast_ch,
        );
        let seg = &mut self.p.segs[lane.fast_seg as usize];
        if seg.pos >= limit {
            return false;
        }
        seg.pos += 1;
        if busy {
            let pos = seg.pos;
            if tab != NO_TAB {
                // One tabled glide writing an output; 1 <= pos < D inside the window.
                self.outputs[port as usize & 7][ch as usize & 15] =
                    self.p.gtab[tab as usize + pos as usize];
            } else {
                let (a, b) = (seg.og_start, seg.og_end);
                self.write_glides(a, b, pos);
            }
        }
        true
    }

    /// One sample of a processing `trivial_loop` lane in its steady state: returns false
    /// when the full lane step must run instead.
    #[inline(always)]
    fn trivial_step(&mut self, l: usize) -> bool {
        let lane = &self.p.lanes[l];
        if self.plain || lane.acc >= 1.0 {
            return false;
        }
        let (inst, seg, acc) = (lane.cur_inst, lane.cur_seg as usize, lane.acc);
        let sg = &self.p.segs[seg];
        if sg.state != ST_END {
            return false;
        }
        // The reference would go END -> pending -> loop() -> rewind -> process in this
        // same sample; with one 1-sample segment of zero drift that is exactly one more
        // complete segment cycle.
        if lane.batch_draws != NO_BATCH {
            // Only unconditional set-values of constants / constant-bound rands.
            let (a, b) = (lane.triv_start as usize, lane.triv_end as usize);
            self.p.lanes[l].repeat_count += 1;
            for i in a..b {
                let op = self.p.triv_ops[i];
                let v = if op.rand {
                    self.rand_f32(op.a, op.b)
                } else {
                    op.a
                };
                self.outputs[op.port as usize & 7][op.ch as usize & 15] = v;
            }
            return true;
        }
        self.p.lanes[l].repeat_count += 1;
        if sg.og_start == sg.og_end && matches!(sg.kind, DurKind::Const) && sg.duration == 1 {
            // No ongoing action: the cycle runs the start actions, then the end actions,
            // and leaves the segment at END with position 1 (as it already is).
            let ins = self.p.insts[inst as usize];
            for i in ins.st_start..ins.st_end {
                let a = self.p.alist[i as usize];
                self.run_action_inline(a);
            }
            for i in ins.en_start..ins.en_end {
                let a = self.p.alist[i as usize];
                self.run_action_inline(a);
            }
            return true;
        }
        let sg = &mut self.p.segs[seg];
        sg.state = ST_START;
        sg.pos = 0;
        let acc = self.seg_process(inst, acc);
        self.p.lanes[l].acc = acc;
        true
    }

    /// Returns true when the lane just became pending.
    #[inline(never)]
    fn lane_process(&mut self, l: usize) -> bool {
        let lane = &self.p.lanes[l];
        if lane.fast_seg != NO_SEG && self.fast_step(l) {
            return false;
        }
        let lane = &self.p.lanes[l];
        if lane.trivial_loop && lane.state == LANE_PROCESSING && self.trivial_step(l) {
            return false;
        }
        let r = self.lane_process_slow(l);
        self.update_fast(l);
        r
    }

    #[inline]
    fn lane_process_slow(&mut self, l: usize) -> bool {
        let lane = &self.p.lanes[l];
        if lane.state != LANE_PROCESSING || lane.e_end == lane.e_start {
            return false;
        }
        let (inst, seg, acc) = (lane.cur_inst, lane.cur_seg, lane.acc);
        if self.p.segs[seg as usize].state != ST_END {
            let acc = self.seg_process(inst, acc);
            self.p.lanes[l].acc = acc;
            false
        } else {
            let next = lane.active + 1;
            if lane.e_start + next < lane.e_end {
                self.enter_entry(l, next);
                let inst = self.p.lanes[l].cur_inst;
                let acc = self.seg_process(inst, acc);
                self.p.lanes[l].acc = acc;
                false
            } else {
                let lm = &mut self.p.lanes[l];
                lm.active = next;
                lm.state = LANE_PENDING;
                true
            }
        }
    }

    #[inline]
    fn seg_process(&mut self, inst: u32, mut drift: f64) -> f64 {
        let ins = self.p.insts[inst as usize];
        let s = ins.seg as usize;
        let starting = self.p.segs[s].state == ST_START;
        if starting {
            self.seg_start(&ins);
        }
        let seg = &mut self.p.segs[s];
        if starting {
            seg.pos = 0;
            drift += seg.drift;
        }
        if seg.pos < seg.duration - 1 {
            seg.state = ST_PROGRESS;
            seg.pos += 1;
        } else if drift >= 1.0 {
            seg.state = ST_PROGRESS;
            drift -= 1.0;
        } else {
            seg.state = ST_END;
            seg.pos += 1;
        }
        let end = seg.state == ST_END;
        let pos = seg.pos;
        let dur = seg.duration;
        let (og_start, og_end) = (seg.og_start, seg.og_end);
        for i in og_start..og_end {
            let a = self.p.ongoing[i as usize];
            if starting {
                self.ongoing_start(a, dur);
            }
            self.ongoing(a, end, pos);
        }
        if end {
            for i in ins.en_start..ins.en_end {
                let a = self.p.alist[i as usize];
                self.run_action(a);
            }
        }
        drift
    }

    /// Start actions and value-based duration evaluation of a starting segment.
    #[inline(never)]
    fn seg_start(&mut self, ins: &Inst) {
        let s = ins.seg as usize;
        for i in ins.st_start..ins.st_end {
            let a = self.p.alist[i as usize];
            self.run_action(a);
        }
        match self.p.segs[s].kind {
            DurKind::Const => {}
            DurKind::Factor { val, factor } => {
                let v = self.eval(val);
                let x = if factor != 1.0 { v * factor } else { v };
                let (d, dr) = value_samples(x);
                self.p.segs[s].duration = d;
                self.p.segs[s].drift = dr;
            }
            DurKind::Hz { val, sr } => {
                let v = self.eval(val);
                let (d, dr) = value_samples(sr / v);
                self.p.segs[s].duration = d;
                self.p.segs[s].drift = dr;
            }
        }
    }

    /// `start()` of an ongoing (glide/gate) action.
    #[inline(never)]
    fn ongoing_start(&mut self, tag: u32, dur: u64) {
        if tag & GATE_TAG == 0 {
            let gi = tag as usize;
            let ok = match self.p.glides[gi].cond {
                None => true,
                Some(c) => self.eval_if(c),
            };
            self.p.glides[gi].active = ok;
            if ok {
                let gl = self.p.glides[gi];
                let s = self.eval(gl.start_val);
                let e = self.eval(gl.end_val);
                let gm = &mut self.p.glides[gi];
                gm.start = s;
                gm.end = e;
                gm.delta = e - s;
                gm.inv = if dur as f64 > 1.0 {
                    1.0 / (dur as f64 - 1.0)
                } else {
                    1.0
                };
                gm.use_tab = !self.plain
                    && gm.tab_len != 0
                    && gm.tab_len as u64 == dur
                    && s.to_bits() == gm.tab_s.to_bits()
                    && e.to_bits() == gm.tab_e.to_bits();
            }
        } else {
            let gi = (tag & !GATE_TAG) as usize;
            let ok = match self.p.gates[gi].cond {
                None => true,
                Some(c) => self.eval_if(c),
            };
            let gm = &mut self.p.gates[gi];
            gm.active = ok;
            if ok {
                gm.low_pos = (gm.ratio * dur as f32).ceil().max(1.0);
                gm.high = true;
                self.outputs[gm.port as usize][gm.ch as usize] = 10.0;
            }
        }
    }

    #[inline]
    fn glide_value(&self, gl: &Glide, end: bool, pos: u64) -> f32 {
        if end || pos == 0 {
            // pos == 0 only happens on a 1-sample segment with drift: deviation (a).
            gl.end as f32
        } else if gl.use_tab && pos < gl.tab_len as u64 {
            self.p.gtab[gl.tab_off as usize + pos as usize]
        } else {
            glide_calc(gl.start, gl.delta, gl.inv, gl.ease, gl.pow, pos)
        }
    }

    /// Fast-window glide writes of ongoing actions `a..b` at position `pos`.
    #[inline]
    fn write_glides(&mut self, a: u32, b: u32, pos: u64) {
        for i in a..b {
            let tag = self.p.ongoing[i as usize];
            if tag & GATE_TAG == 0 {
                // Inside the fast window: 1 <= pos < D, never the end sample.
                let gl = &self.p.glides[tag as usize];
                if gl.active {
                    let v = if gl.use_tab {
                        // pos < D == tab_len inside the fast window.
                        self.p.gtab[gl.tab_off as usize + pos as usize]
                    } else {
                        glide_calc(gl.start, gl.delta, gl.inv, gl.ease, gl.pow, pos)
                    };
                    match gl.target {
                        GTarget::Output(p, c) => self.outputs[p as usize][c as usize] = v,
                        GTarget::Var(i) => self.set_var(i, v),
                    }
                }
            }
        }
    }

    #[inline(always)]
    fn glide_write(&mut self, gi: usize, end: bool, pos: u64) {
        let gl = &self.p.glides[gi];
        if !gl.active {
            return;
        }
        let v = self.glide_value(gl, end, pos);
        match gl.target {
            GTarget::Output(p, c) => self.outputs[p as usize][c as usize] = v,
            GTarget::Var(i) => self.set_var(i, v),
        }
    }

    /// `process(pos)` or, on the ending sample, `end()` of an ongoing action.
    #[inline]
    fn ongoing(&mut self, tag: u32, end: bool, pos: u64) {
        if tag & GATE_TAG == 0 {
            self.glide_write(tag as usize, end, pos);
        } else {
            let gm = &mut self.p.gates[(tag & !GATE_TAG) as usize];
            if gm.active && gm.high && (end || (pos as f32) > gm.low_pos) {
                gm.high = false;
                self.outputs[gm.port as usize][gm.ch as usize] = 0.0;
            }
        }
    }

    /// Recomputes the lane's fast-path window after a full lane step.
    #[inline]
    fn update_fast(&mut self, l: usize) {
        let lane = &self.p.lanes[l];
        let mut fast_seg = NO_SEG;
        let mut limit = 0;
        let mut busy = false;
        let mut tabled = 0u32;
        let (mut tab, mut port, mut ch) = (NO_TAB, 0, 0);
        if !self.plain && lane.state == LANE_PROCESSING && lane.e_end > lane.e_start {
            let s = lane.cur_seg;
            let seg = &self.p.segs[s as usize];
            if seg.state == ST_PROGRESS && seg.pos + 1 < seg.duration {
                limit = seg.duration - 1;
                for i in seg.og_start..seg.og_end {
                    let tag = self.p.ongoing[i as usize];
                    if tag & GATE_TAG != 0 {
                        let gm = &self.p.gates[(tag & !GATE_TAG) as usize];
                        if gm.active && gm.high {
                            // The gate falls at the first position > low_pos.
                            let low = gm.low_pos as f64;
                            if low < (1u64 << 53) as f64 {
                                limit = limit.min(low as u64);
                            }
                        }
                    } else if self.p.glides[tag as usize].active {
                        busy = true;
                        tabled += 1;
                        let gl = &self.p.glides[tag as usize];
                        match gl.target {
                            GTarget::Output(p, c) if gl.use_tab => {
                                (tab, port, ch) = (gl.tab_off, p, c);
                            }
                            _ => tabled += 1,
                        }
                    }
                }
                if seg.pos < limit {
                    fast_seg = s;
                }
            }
        }
        let lane = &mut self.p.lanes[l];
        lane.fast_seg = fast_seg;
        lane.fast_limit = limit;
        lane.glide_busy = busy;
        lane.fast_tab = if tabled == 1 { tab } else { NO_TAB };
        lane.fast_port = port;
        lane.fast_ch = ch;
    }

    /// Number of following samples in which lane `l` provably does nothing but advance
    /// its active segment's position (no action can write anything).
    #[inline]
    fn lane_quiet(&self, l: usize) -> u64 {
        let lane = &self.p.lanes[l];
        if lane.state != LANE_PROCESSING {
            return u64::MAX;
        }
        if lane.fast_seg == NO_SEG || lane.glide_busy {
            return 0;
        }
        lane.fast_limit
            .saturating_sub(self.p.segs[lane.fast_seg as usize].pos)
    }

    /// How many following samples can be skipped entirely.
    fn quiet_samples(&self) -> u64 {
        if self.plain || !self.pending.is_empty() {
            return 0;
        }
        let mut q = u64::MAX;
        for l in 0..self.p.lanes.len() {
            q = q.min(self.lane_quiet(l));
            if q == 0 {
                return 0;
            }
        }
        q
    }

    /// Applies the position advance of skipped samples.
    fn catch_up(&mut self) {
        let n = self.skipped;
        if n == 0 {
            return;
        }
        self.skipped = 0;
        for l in 0..self.p.lanes.len() {
            let lane = &self.p.lanes[l];
            if lane.state == LANE_PROCESSING && lane.e_end > lane.e_start {
                let seg = lane.cur_seg as usize;
                self.p.segs[seg].pos += n;
            }
        }
    }

    #[inline]
    fn set_var(&mut self, i: u32, v: f32) {
        self.vars[i as usize] = if v == 0.0 { 0.0 } else { v };
    }

    /// `run_action` with the common unconditional `set-value` inlined.
    #[inline(always)]
    fn run_action_inline(&mut self, a: u32) {
        let node = self.p.actions[a as usize];
        if let (None, AKind::SetValue { port, ch, val }) = (node.cond, node.kind) {
            let v = self.eval(val) as f32;
            self.outputs[port as usize & 7][ch as usize & 15] = v;
        } else {
            self.run_action(a);
        }
    }

    fn run_action(&mut self, a: u32) {
        let node = self.p.actions[a as usize];
        if let Some(c) = node.cond {
            if !self.eval_if(c) {
                return;
            }
        }
        match node.kind {
            AKind::SetValue { port, ch, val } => {
                let v = self.eval(val) as f32;
                self.outputs[port as usize][ch as usize] = v;
            }
            AKind::SetVar { var, val } => {
                let v = self.eval(val) as f32;
                self.set_var(var, v);
            }
            AKind::SetPoly { port, n } => self.channels[port as usize] = n,
            AKind::SetLabel { port, label } => {
                self.labels[port as usize] = label;
                self.label_events[port as usize] = label;
                self.events_dirty = true;
            }
            AKind::Assert { name, expect, stop } => {
                let start = self.assert_vals.len();
                self.events_dirty = true;
                let ok = self.eval_if_full(expect);
                if ok {
                    self.assert_vals.truncate(start);
                } else {
                    if self.failures.len() < self.failures.capacity() {
                        self.failures.push(AssertFailure {
                            name,
                            expect,
                            vals_start: start as u32,
                            vals_end: self.assert_vals.len() as u32,
                            stop,
                        });
                    } else {
                        self.dropped_events += 1;
                    }
                    if stop {
                        self.stop_requested = true;
                    }
                }
            }
            AKind::Trigger(t) => self.fire(t),
            AKind::MoveDir { pos, dir, wrap } => self.seq_move(pos, dir, wrap),
            AKind::MovePos { pos, p } => {
                let pp = &mut self.p.posprocs[pos as usize];
                pp.has = false;
                let size = self.p.seqs[pp.seq as usize].items.len() as i64;
                pp.pos = if p >= size || p < 0 {
                    (size - 1).max(0)
                } else {
                    p
                };
            }
            AKind::Clear(seq) => self.p.seqs[seq as usize].items.clear(),
            AKind::Add {
                seq,
                val,
                pos,
                constant,
            } => {
                let item = if constant {
                    SeqItem::Const(self.eval(val) as f32)
                } else {
                    SeqItem::Val(val)
                };
                let sd = &mut self.p.seqs[seq as usize];
                if sd.items.len() >= sd.cap {
                    sd.dropped += 1;
                } else if pos > -1 && (pos as usize) < sd.items.len() {
                    sd.items.insert(pos as usize, item);
                } else {
                    sd.items.push(item);
                }
            }
            AKind::Remove { seq, pos } => {
                let sd = &mut self.p.seqs[seq as usize];
                if pos > -1 {
                    if (pos as usize) < sd.items.len() {
                        sd.items.remove(pos as usize);
                    }
                } else {
                    sd.items.pop();
                }
            }
            AKind::Glide { .. } | AKind::Gate { .. } => {}
        }
    }

    fn seq_move(&mut self, pos: u32, dir: Dir, wrap: bool) {
        let seq = self.p.posprocs[pos as usize].seq;
        let size = self.p.seqs[seq as usize].items.len() as i64;
        let r = if dir == Dir::Random && size > 0 {
            self.rand_f32(0.0, size as f32)
        } else {
            0.0
        };
        let pp = &mut self.p.posprocs[pos as usize];
        pp.has = false;
        if size > 0 {
            match dir {
                Dir::Forward => pp.pos += 1,
                Dir::Backward => pp.pos -= 1,
                Dir::Random => pp.pos = ((r.floor()) as i64).min(size - 1),
                Dir::None => {}
            }
            if pp.pos < 0 {
                pp.pos = if wrap { size - 1 } else { 0 };
            } else if pp.pos > size - 1 {
                pp.pos = if wrap { 0 } else { size - 1 };
            }
        } else {
            pp.pos = 0;
        }
    }

    fn seq_current(&mut self, pos: u32) -> f64 {
        let pp = self.p.posprocs[pos as usize];
        let sd = &self.p.seqs[pp.seq as usize];
        if sd.retrieve_once && pp.has {
            return pp.stored;
        }
        let size = sd.items.len() as i64;
        let v = if size == 0 {
            0.0
        } else {
            let item = if pp.pos >= size - 1 {
                sd.items[(size - 1) as usize]
            } else {
                sd.items[pp.pos as usize]
            };
            match item {
                SeqItem::Const(c) => c as f64,
                SeqItem::Val(v) => {
                    // A value added to a sequence may read that same sequence: the reference
                    // recurses until the stack overflows. We stop at a fixed depth with 0 V.
                    if self.seq_depth >= MAX_SEQ_DEPTH {
                        self.seq_depth_overflows += 1;
                        return 0.0;
                    }
                    self.seq_depth += 1;
                    let r = self.eval(v);
                    self.seq_depth -= 1;
                    r
                }
            }
        };
        let pm = &mut self.p.posprocs[pos as usize];
        pm.stored = v;
        pm.has = true;
        v
    }

    #[inline]
    fn next_u64(&mut self) -> u64 {
        next_u64(&mut self.rng)
    }

    #[inline]
    fn rand_f32(&mut self, lo: f32, hi: f32) -> f32 {
        rand_f32(&mut self.rng, lo, hi)
    }

    #[inline(always)]
    pub(crate) fn eval(&mut self, id: u32) -> f64 {
        let n = &self.p.values[id as usize];
        if n.calc_start == n.calc_end && !n.quantize {
            // Plain sources without calcs: the common case.
            match n.src {
                VSrc::Const(x) => return x as f64,
                VSrc::Var(i) => return self.vars[i as usize] as f64,
                VSrc::Input(p, c) => return self.inputs[p as usize][c as usize] as f64,
                VSrc::Output(p, c) => return self.outputs[p as usize][c as usize] as f64,
                VSrc::RandConst(lo, hi) => return self.rand_f32(lo, hi) as f64,
                _ => {}
            }
        }
        self.eval_full(id)
    }

    #[inline(never)]
    fn eval_full(&mut self, id: u32) -> f64 {
        let n = self.p.values[id as usize];
        let mut v = match n.src {
            VSrc::Const(x) => x as f64,
            VSrc::Var(i) => self.vars[i as usize] as f64,
            VSrc::Input(p, c) => self.inputs[p as usize][c as usize] as f64,
            VSrc::Output(p, c) => self.outputs[p as usize][c as usize] as f64,
            VSrc::Rand(l, h) => {
                let lo = self.eval(l) as f32;
                let hi = self.eval(h) as f32;
                self.rand_f32(lo, hi) as f64
            }
            VSrc::RandConst(lo, hi) => self.rand_f32(lo, hi) as f64,
            VSrc::Seq {
                pos,
                before,
                after,
                wrap,
            } => {
                if before != Dir::None {
                    self.seq_move(pos, before, wrap);
                }
                let v = self.seq_current(pos);
                if after != Dir::None {
                    self.seq_move(pos, after, wrap);
                }
                v
            }
        };
        for c in n.calc_start..n.calc_end {
            v = self.calc(c, v);
        }
        if n.quantize {
            v = quantize_semitone(v);
        }
        v
    }

    fn calc(&mut self, c: u32, v: f64) -> f64 {
        match self.p.calcs[c as usize] {
            CNode::Bin(op, val) => {
                let cv = self.eval(val);
                match op {
                    BinOp::Add => v + cv,
                    BinOp::Sub => v - cv,
                    BinOp::Mult => v * cv,
                    BinOp::Div => {
                        if cv != 0.0 {
                            v / cv
                        } else {
                            0.0
                        }
                    }
                    BinOp::Max => {
                        if v > cv {
                            v
                        } else {
                            cv
                        }
                    }
                    BinOp::Min => {
                        if v < cv {
                            v
                        } else {
                            cv
                        }
                    }
                    BinOp::Remain => {
                        if cv != 0.0 {
                            v % cv
                        } else {
                            0.0
                        }
                    }
                }
            }
            CNode::Trunc => v.trunc(),
            CNode::Frac => {
                if v.is_infinite() {
                    0.0f64.copysign(v)
                } else {
                    (v - v.trunc()).copysign(v)
                }
            }
            CNode::Round(k) => match k {
                RoundKind::Up => v.ceil(),
                RoundKind::Down => v.floor(),
                RoundKind::Near => v.round(),
            },
            CNode::Sign(pos) => {
                if (pos && v < 0.0) || (!pos && v > 0.0) {
                    -v
                } else {
                    v
                }
            }
            CNode::Vtof => 2f64.powf(v) * (261.6256f32 as f64),
            CNode::Quant(s, e) => {
                let x = v as f32;
                let mut integral = x.trunc();
                let mut fract = if x.is_infinite() {
                    0.0f32.copysign(x)
                } else {
                    (x - integral).copysign(x)
                };
                if fract < 0.0 {
                    fract += 1.0;
                    integral -= 1.0;
                }
                for i in s..e {
                    let q = self.p.qtab[i as usize];
                    if fract < q[0] {
                        return (integral + q[1]) as f64;
                    }
                }
                v
            }
        }
    }

    fn eval_if(&mut self, id: u32) -> bool {
        match self.p.ifs[id as usize] {
            INode::Cmp { op, a, b, tol } => {
                let x = self.eval(a);
                let y = self.eval(b);
                cmp(op, x, y, tol)
            }
            INode::Logic { and, start, end } => {
                for i in start..end {
                    let c = self.p.if_children[i as usize];
                    let r = self.eval_if(c);
                    if and && !r {
                        return false;
                    }
                    if !and && r {
                        return true;
                    }
                }
                and
            }
        }
    }

    /// Assert evaluation: no short-circuit, leaf values recorded (deviation b).
    fn eval_if_full(&mut self, id: u32) -> bool {
        match self.p.ifs[id as usize] {
            INode::Cmp { op, a, b, tol } => {
                let x = self.eval(a);
                let y = self.eval(b);
                if self.assert_vals.len() + 2 <= self.assert_vals.capacity() {
                    self.assert_vals.push(x);
                    self.assert_vals.push(y);
                }
                cmp(op, x, y, tol)
            }
            INode::Logic { and, start, end } => {
                let mut result = and;
                for i in start..end {
                    let c = self.p.if_children[i as usize];
                    let r = self.eval_if_full(c);
                    if and && !r {
                        result = false;
                    }
                    if !and && r {
                        result = true;
                    }
                }
                result
            }
        }
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
