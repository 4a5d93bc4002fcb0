//! The script as phase 2 (structure) hands it to phase 3 (the processor
//! build): every part of the format as a Rust type, references still by name.

pub(crate) const V100: u32 = 100;
pub(crate) const V110: u32 = 110;
pub(crate) const V120: u32 = 120;

#[derive(Debug, Clone)]
pub(crate) enum Val {
    Ref(String),
    Full(Box<ValFull>),
}

#[derive(Debug, Clone)]
pub(crate) struct ValFull {
    pub src: Src,
    pub calcs: Vec<Calc>,
    pub quantize: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Dir {
    Forward,
    Backward,
    Random,
    None,
}

#[derive(Debug, Clone)]
pub(crate) enum Src {
    Const(f32),
    Variable(String),
    Input(Io),
    Output(Io),
    Rand(Val, Val),
    Seq {
        id: String,
        before: Dir,
        after: Dir,
        wrap: bool,
    },
}

#[derive(Debug, Clone)]
pub(crate) enum Io {
    Ref(String),
    Full(u8, u8),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum BinOp {
    Add,
    Sub,
    Div,
    Mult,
    Max,
    Min,
    Remain,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum RoundKind {
    Up,
    Down,
    Near,
}

#[derive(Debug, Clone)]
pub(crate) enum Calc {
    Ref(String),
    Bin(BinOp, Val),
    Trunc,
    Frac,
    Round(RoundKind),
    Quantize(Tuning),
    Sign(bool),
    Vtof,
}

#[derive(Debug, Clone)]
pub(crate) enum Tuning {
    Ref(String),
    Full(Vec<f32>),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum CmpOp {
    Eq,
    Ne,
    Lt,
    Lte,
    Gt,
    Gte,
}

impl CmpOp {
    pub(crate) fn name(self) -> &'static str {
        match self {
            CmpOp::Eq => "eq",
            CmpOp::Ne => "ne",
            CmpOp::Lt => "lt",
            CmpOp::Lte => "lte",
            CmpOp::Gt => "gt",
            CmpOp::Gte => "gte",
        }
    }
}

#[derive(Debug, Clone)]
pub(crate) enum If {
    Ref(String),
    Cmp {
        op: CmpOp,
        a: Val,
        b: Val,
        tol: Option<f32>,
    },
    Logic {
        and: bool,
        children: Vec<If>,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Timing {
    Start,
    End,
    Glide,
    Gate,
}

#[derive(Debug, Clone)]
pub(crate) enum Op {
    SetValue {
        output: Io,
        value: Val,
    },
    SetVariable {
        name: String,
        value: Val,
    },
    SetPolyphony {
        index: u8,
        channels: u8,
    },
    SetLabel {
        index: u8,
        label: String,
    },
    Assert {
        name: String,
        expect: If,
        stop: bool,
    },
    Trigger(String),
    MoveDir {
        id: String,
        dir: Dir,
        wrap: bool,
    },
    MovePos {
        id: String,
        pos: i64,
    },
    Clear(String),
    Add {
        id: String,
        value: Val,
        pos: i64,
        constant: bool,
    },
    Remove {
        id: String,
        pos: i64,
    },
    Glide {
        start: Val,
        end: Val,
        target: Target,
        ease: f32,
        pow: bool,
    },
    Gate {
        output: Io,
        ratio: f32,
    },
    None,
}

#[derive(Debug, Clone)]
pub(crate) enum Target {
    Output(Io),
    Variable(String),
}

#[derive(Debug, Clone)]
pub(crate) struct Action {
    pub reference: Option<String>,
    pub timing: Timing,
    pub cond: Option<If>,
    pub op: Op,
}

#[derive(Debug, Clone)]
pub(crate) enum DurAmount {
    Samples(u64),
    Const(f32),
    Value(Val),
}

#[derive(Debug, Clone)]
pub(crate) enum Duration {
    Samples(DurAmount),
    Millis(DurAmount),
    Beats(DurAmount, Option<u64>),
    Hz(DurAmount),
}

#[derive(Debug, Clone)]
pub(crate) enum Segment {
    Ref(String),
    Block {
        block: String,
        actions: Vec<Action>,
    },
    Full {
        duration: Duration,
        actions: Vec<Action>,
        /// Only affects UI events, which this engine does not emit.
        #[allow(dead_code)]
        disable_ui: bool,
    },
}

#[derive(Debug, Clone)]
pub(crate) struct Block {
    pub segments: Vec<Segment>,
    pub repeat: Option<u64>,
}

#[derive(Debug, Clone)]
pub(crate) struct Lane {
    pub auto_start: bool,
    pub looping: bool,
    pub repeat: u64,
    pub start_trigger: String,
    pub restart_trigger: String,
    pub stop_trigger: String,
    pub segments: Vec<Segment>,
    /// Only affects UI events, which this engine does not emit.
    #[allow(dead_code)]
    pub disable_ui: bool,
}

#[derive(Debug, Clone, Default)]
pub(crate) struct TimeScale {
    pub sample_rate: Option<u64>,
    pub bpm: Option<u64>,
    pub bpb: Option<u64>,
}

#[derive(Debug, Clone)]
pub(crate) struct Timeline {
    pub time_scale: Option<TimeScale>,
    pub lanes: Vec<Lane>,
    pub loop_lock: bool,
}

#[derive(Debug, Clone)]
pub(crate) struct Sequence {
    pub id: String,
    pub values: Vec<Val>,
    pub shared: bool,
    pub retrieve_once: bool,
}

#[derive(Debug, Clone, Default)]
pub(crate) struct Script {
    pub timelines: Vec<Timeline>,
    pub global_actions: Vec<Action>,
    pub input_triggers: Vec<(String, Io)>,
    pub sequences: Vec<Sequence>,
    pub blocks: Vec<(String, Block)>,
    pub segments: Vec<(String, Segment)>,
    pub inputs: Vec<(String, Io)>,
    pub outputs: Vec<(String, Io)>,
    pub calcs: Vec<(String, Calc)>,
    pub values: Vec<(String, Val)>,
    pub actions: Vec<(String, Action)>,
    pub ifs: Vec<(String, If)>,
    pub tunings: Vec<(String, Tuning)>,
}
