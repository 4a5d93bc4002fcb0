//! The compiled, flat, index-based program and its runtime state.

use crate::parse::{BinOp, CmpOp, Dir, RoundKind};

#[derive(Debug, Clone, Copy)]
pub(crate) enum VSrc {
    Const(f32),
    Var(u32),
    Input(u8, u8),
    Output(u8, u8),
    Rand(u32, u32),
    /// `rand` whose bounds are plain constants (folded at build time).
    RandConst(f32, f32),
    Seq {
        pos: u32,
        before: Dir,
        after: Dir,
        wrap: bool,
    },
}

#[derive(Debug, Clone, Copy)]
pub(crate) struct VNode {
    pub src: VSrc,
    pub calc_start: u32,
    pub calc_end: u32,
    pub quantize: bool,
}

#[derive(Debug, Clone, Copy)]
pub(crate) enum CNode {
    Bin(BinOp, u32),
    Trunc,
    Frac,
    Round(RoundKind),
    /// range into `qtab`
    Quant(u32, u32),
    Sign(bool),
    Vtof,
}

#[derive(Debug, Clone, Copy)]
pub(crate) enum INode {
    Cmp {
        op: CmpOp,
        a: u32,
        b: u32,
        tol: Option<f32>,
    },
    /// children range into `if_children`
    Logic { and: bool, start: u32, end: u32 },
}

#[derive(Debug, Clone, Copy)]
pub(crate) enum AKind {
    SetValue {
        port: u8,
        ch: u8,
        val: u32,
    },
    SetVar {
        var: u32,
        val: u32,
    },
    SetPoly {
        port: u8,
        n: u8,
    },
    SetLabel {
        port: u8,
        label: u32,
    },
    Assert {
        name: u32,
        expect: u32,
        stop: bool,
    },
    Trigger(u32),
    MoveDir {
        pos: u32,
        dir: Dir,
        wrap: bool,
    },
    MovePos {
        pos: u32,
        p: i64,
    },
    Clear(u32),
    Add {
        seq: u32,
        val: u32,
        pos: i64,
        constant: bool,
    },
    Remove {
        seq: u32,
        pos: i64,
    },
    Glide {
        g: u32,
    },
    Gate {
        g: u32,
    },
}

#[derive(Debug, Clone, Copy)]
pub(crate) struct ANode {
    pub cond: Option<u32>,
    pub kind: AKind,
}

#[derive(Debug, Clone, Copy)]
pub(crate) enum GTarget {
    Output(u8, u8),
    Var(u32),
}

#[derive(Debug, Clone, Copy)]
pub(crate) struct Glide {
    pub cond: Option<u32>,
    pub start_val: u32,
    pub end_val: u32,
    pub target: GTarget,
    pub ease: f32,
    pub pow: bool,
    // state
    pub active: bool,
    pub start: f64,
    pub end: f64,
    pub delta: f64,
    pub inv: f64,
    /// Precomputed output table (fast processing only): `gtab[tab_off + pos]` is the value
    /// written at position `pos` (1..tab_len) of a `tab_len`-sample segment gliding from
    /// `tab_s` to `tab_e`. `tab_len == 0` when the glide has no table.
    pub tab_off: u32,
    pub tab_len: u32,
    pub tab_s: f64,
    pub tab_e: f64,
    /// Whether the current segment instance matches the table's key.
    pub use_tab: bool,
}

#[derive(Debug, Clone, Copy)]
pub(crate) struct Gate {
    pub cond: Option<u32>,
    pub port: u8,
    pub ch: u8,
    pub ratio: f32,
    // state
    pub active: bool,
    pub high: bool,
    pub low_pos: f32,
}

#[derive(Debug, Clone, Copy)]
pub(crate) enum DurKind {
    Const,
    Factor { val: u32, factor: f64 },
    Hz { val: u32, sr: f64 },
}

pub(crate) const ST_START: u8 = 0;
pub(crate) const ST_PROGRESS: u8 = 1;
pub(crate) const ST_END: u8 = 2;

#[derive(Debug, Clone, Copy)]
pub(crate) struct SegNode {
    pub kind: DurKind,
    pub duration: u64,
    pub drift: f64,
    pub state: u8,
    pub pos: u64,
    /// range into `ongoing` (glide index, or gate index | `GATE_TAG`)
    pub og_start: u32,
    pub og_end: u32,
}

#[derive(Debug, Clone, Copy)]
pub(crate) struct Inst {
    pub seg: u32,
    /// ranges into `alist`
    pub st_start: u32,
    pub st_end: u32,
    pub en_start: u32,
    pub en_end: u32,
}

pub(crate) const LANE_IDLE: u8 = 0;
pub(crate) const LANE_PROCESSING: u8 = 1;
pub(crate) const LANE_PENDING: u8 = 2;

pub(crate) const NO_TRIG: u32 = u32::MAX;
pub(crate) const NO_SEG: u32 = u32::MAX;
pub(crate) const GATE_TAG: u32 = 1 << 31;
pub(crate) const NO_TAB: u32 = u32::MAX;
pub(crate) const NO_BATCH: u32 = u32::MAX;

#[derive(Debug, Clone, Copy)]
pub(crate) struct Lane {
    pub e_start: u32,
    pub e_end: u32,
    pub auto_start: bool,
    pub looping: bool,
    pub repeat: u64,
    pub start_trig: u32,
    pub restart_trig: u32,
    pub stop_trig: u32,
    // state
    pub state: u8,
    pub active: u32,
    pub repeat_count: u64,
    pub acc: f64,
    /// Fast path: segment node in which plain position increments are valid while its
    /// position is below `fast_limit` (`NO_SEG` when disabled).
    pub fast_seg: u32,
    pub fast_limit: u64,
    /// Whether an active glide writes in the fast window (prevents skipping).
    pub glide_busy: bool,
    /// Fast window with exactly one active glide, tabled and writing an output: its table
    /// offset (`NO_TAB` otherwise) and output port/channel.
    pub fast_tab: u32,
    pub fast_port: u8,
    pub fast_ch: u8,
    /// Single looping 1-sample constant segment in a timeline without loop-lock: every
    /// sample is one complete segment cycle (see `Engine::lane_process`).
    pub trivial_loop: bool,
    /// For a `trivial_loop` lane whose segment has no ongoing action and whose actions are
    /// all unconditional `set-value`s of plain constants or constant-bound `rand`s: the
    /// number of random draws per cycle (`NO_BATCH` otherwise). Such a lane reads nothing
    /// and rewrites the same outputs every sample, so block processing can batch it.
    pub batch_draws: u32,
    /// Range into `triv_ops`: the actions of such a lane, in order.
    pub triv_start: u32,
    pub triv_end: u32,
    /// Cached instance and segment node of the active entry.
    pub cur_inst: u32,
    pub cur_seg: u32,
}

/// A `set-value` of a batchable trivial-loop lane: `a` (constant) or `rand(a, b)`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct TrivOp {
    pub port: u8,
    pub ch: u8,
    pub rand: bool,
    pub a: f32,
    pub b: f32,
}

#[derive(Debug, Clone, Copy)]
pub(crate) struct Timeline {
    pub l_start: u32,
    pub l_end: u32,
    pub loop_lock: bool,
}

#[derive(Debug, Clone, Copy)]
pub(crate) enum SeqItem {
    Val(u32),
    Const(f32),
}

#[derive(Debug)]
pub(crate) struct SeqData {
    pub items: Vec<SeqItem>,
    pub cap: usize,
    pub retrieve_once: bool,
    pub dropped: u64,
}

impl Clone for SeqData {
    /// Keeps the item capacity (`cap`), so that adds never allocate in a cloned engine.
    fn clone(&self) -> SeqData {
        let mut items = Vec::with_capacity(self.items.capacity().max(self.cap));
        items.extend_from_slice(&self.items);
        SeqData {
            items,
            cap: self.cap,
            retrieve_once: self.retrieve_once,
            dropped: self.dropped,
        }
    }
}

#[derive(Debug, Clone, Copy)]
pub(crate) struct PosProc {
    pub seq: u32,
    pub pos: i64,
    pub has: bool,
    pub stored: f64,
}

#[derive(Debug, Clone, Copy)]
pub(crate) struct InputTrigger {
    pub id: u32,
    pub port: u8,
    pub ch: u8,
    pub high: bool,
}

/// Everything the compiled script consists of.
#[derive(Debug, Clone, Default)]
pub(crate) struct Program {
    pub values: Vec<VNode>,
    pub calcs: Vec<CNode>,
    pub qtab: Vec<[f32; 2]>,
    pub ifs: Vec<INode>,
    pub if_children: Vec<u32>,
    pub actions: Vec<ANode>,
    pub glides: Vec<Glide>,
    /// Glide output tables (see [`Glide::tab_off`]).
    pub gtab: Vec<f32>,
    /// Actions of batchable trivial-loop lanes (see [`Lane::triv_start`]).
    pub triv_ops: Vec<TrivOp>,
    pub gates: Vec<Gate>,
    pub alist: Vec<u32>,
    pub ongoing: Vec<u32>,
    pub segs: Vec<SegNode>,
    pub insts: Vec<Inst>,
    pub entries: Vec<u32>,
    pub lanes: Vec<Lane>,
    pub timelines: Vec<Timeline>,
    pub global_actions: Vec<u32>,
    pub seqs: Vec<SeqData>,
    pub posprocs: Vec<PosProc>,
    pub input_triggers: Vec<InputTrigger>,
    pub var_names: Vec<String>,
    pub trigger_names: Vec<String>,
    pub strings: Vec<String>,
    /// number of comparison leaves below each if (for assert message buffers)
    pub if_leaves: Vec<u32>,
    pub assert_count: u32,
    pub trigger_sites: u32,
}

impl Program {
    pub(crate) fn intern_var(&mut self, name: &str) -> u32 {
        if let Some(i) = self.var_names.iter().position(|n| n == name) {
            return i as u32;
        }
        self.var_names.push(name.to_string());
        (self.var_names.len() - 1) as u32
    }

    pub(crate) fn intern_trigger(&mut self, name: &str) -> u32 {
        if let Some(i) = self.trigger_names.iter().position(|n| n == name) {
            return i as u32;
        }
        self.trigger_names.push(name.to_string());
        (self.trigger_names.len() - 1) as u32
    }

    pub(crate) fn intern_string(&mut self, s: &str) -> u32 {
        if let Some(i) = self.strings.iter().position(|n| n == s) {
            return i as u32;
        }
        self.strings.push(s.to_string());
        (self.strings.len() - 1) as u32
    }
}
