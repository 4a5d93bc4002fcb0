//! Phase 2: structural validation of the JSON document into a script AST.
//!
//! Every error is collected; the AST is only used when no error was found,
//! so invalid parts are represented by harmless placeholders.

use crate::error::ValidationError;
use serde_json::{Map, Value as J};

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

pub(crate) struct Parser {
    pub errors: Vec<ValidationError>,
    path: Vec<String>,
    version: u32,
}

pub(crate) fn loc_of(path: &[String]) -> String {
    if path.is_empty() {
        "/".to_string()
    } else {
        let mut s = String::new();
        for p in path {
            s.push('/');
            s.push_str(p);
        }
        s
    }
}

fn is_int(v: &J) -> bool {
    v.is_i64() || v.is_u64()
}

/// Note-name letter to semitone index.
pub(crate) fn note_index(c: u8) -> Option<i32> {
    match c.to_ascii_uppercase() {
        b'C' => Some(0),
        b'D' => Some(2),
        b'E' => Some(4),
        b'F' => Some(5),
        b'G' => Some(7),
        b'A' => Some(9),
        b'B' => Some(11),
        _ => None,
    }
}

/// Parses a full note name (`C4`, `e4-`, `B9+`) into volts (f32, as the reference).
pub(crate) fn parse_note(s: &str) -> Option<f32> {
    let b = s.as_bytes();
    if b.len() < 2 || b.len() > 3 {
        return None;
    }
    let mut idx = note_index(b[0])?;
    if !b[1].is_ascii_digit() {
        return None;
    }
    if b.len() == 3 {
        match b[2] {
            b'-' => idx -= 1,
            b'+' => idx += 1,
            _ => return None,
        }
    }
    let oct = (b[1] - b'0') as i32 - 4;
    Some(oct as f32 + (idx as f32 / 12.0))
}

fn parse_dir(s: &str) -> Option<Dir> {
    match s {
        "forward" => Some(Dir::Forward),
        "backward" => Some(Dir::Backward),
        "random" => Some(Dir::Random),
        "none" => Some(Dir::None),
        _ => None,
    }
}

impl Parser {
    pub fn new() -> Self {
        Parser {
            errors: Vec::new(),
            path: Vec::new(),
            version: V120,
        }
    }

    fn err(&mut self, code: u32, msg: impl Into<String>) {
        self.errors.push(ValidationError {
            location: loc_of(&self.path),
            message: msg.into(),
            code: Some(code),
        });
    }

    fn push(&mut self, s: impl Into<String>) {
        self.path.push(s.into());
    }

    fn pop(&mut self) {
        self.path.pop();
    }

    fn gate(&mut self, min: u32, what: &str) {
        if self.version < min {
            let v = match min {
                V110 => "1.1.0",
                _ => "1.2.0",
            };
            self.err(
                11,
                format!("'{what}' requires script version {v} or later."),
            );
        }
    }

    fn check_keys(&mut self, o: &Map<String, J>, allowed: &[&str]) {
        let bad: Vec<&String> = o
            .keys()
            .filter(|k| !k.starts_with("x-") && !allowed.contains(&k.as_str()))
            .collect();
        if bad.len() == 1 {
            let m = format!("Unknown property '{}'.", bad[0]);
            self.err(10, m);
        } else if bad.len() > 1 {
            let names: Vec<String> = bad.iter().map(|s| format!("'{s}'")).collect();
            let m = format!("Unknown properties {}.", names.join(", "));
            self.err(10, m);
        }
    }

    /// Handles `id`/`ref` rules. Returns Some(ref) when this is a ref object.
    fn id_ref(
        &mut self,
        o: &Map<String, J>,
        pool: bool,
        own: &[&str],
        roi: u32,
    ) -> (String, Option<String>) {
        let mut id = String::new();
        if pool {
            match o.get("id") {
                Some(J::String(s)) => {
                    if s.is_empty() {
                        self.err(7, "'id' must not be empty.");
                    }
                    id = s.clone();
                }
                _ => self.err(6, "A component-pool item needs a string 'id'."),
            }
            if o.contains_key("ref") {
                self.err(3, "'ref' is not allowed on a component-pool item.");
                if own.iter().any(|k| o.contains_key(*k)) {
                    self.err(
                        roi,
                        "An object with a 'ref' can not have other properties of its type.",
                    );
                }
            }
            return (id, None);
        }
        if o.contains_key("id") {
            self.err(8, "'id' is not allowed on an inline object.");
        }
        match o.get("ref") {
            None => (id, None),
            Some(J::String(s)) => {
                if s.is_empty() {
                    self.err(2, "'ref' must not be empty.");
                }
                if own.iter().any(|k| o.contains_key(*k)) {
                    self.err(
                        roi,
                        "An object with a 'ref' can not have other properties of its type.",
                    );
                }
                (id, Some(s.clone()))
            }
            Some(_) => {
                self.err(1, "'ref' must be a string.");
                (id, Some(String::new()))
            }
        }
    }

    pub fn parse_root(&mut self, root: &J) -> Script {
        let mut script = Script::default();
        let Some(o) = root.as_object() else {
            self.err(101, "The script root must be an object.");
            return script;
        };
        self.check_keys(
            o,
            &[
                "type",
                "version",
                "timelines",
                "global-actions",
                "input-triggers",
                "sequences",
                "component-pool",
                "$schema",
            ],
        );
        match o.get("type") {
            None => self.err(101, "'type' is required."),
            Some(J::String(s)) if s == "not-things_timeseq_script" => {}
            Some(_) => self.err(102, "Unsupported 'type'."),
        }
        match o.get("version") {
            None => self.err(103, "'version' is required."),
            Some(J::String(s)) if s == "1.0.0" => self.version = V100,
            Some(J::String(s)) if s == "1.1.0" => self.version = V110,
            Some(J::String(s)) if s == "1.2.0" => self.version = V120,
            Some(_) => self.err(104, "Unsupported 'version'."),
        }
        // Component pool first (order of errors is irrelevant, but keep it tidy).
        if let Some(cp) = o.get("component-pool") {
            match cp.as_object() {
                None => self.err(128, "'component-pool' must be an object."),
                Some(cp) => {
                    self.push("component-pool");
                    self.parse_pool(cp, &mut script);
                    self.pop();
                }
            }
        }
        match o.get("timelines") {
            Some(J::Array(a)) => {
                self.push("timelines");
                for (i, t) in a.iter().enumerate() {
                    self.push(i.to_string());
                    match t.as_object() {
                        None => self.err(106, "A timeline must be an object."),
                        Some(t) => {
                            let tl = self.parse_timeline(t);
                            script.timelines.push(tl);
                        }
                    }
                    self.pop();
                }
                self.pop();
            }
            _ => self.err(105, "'timelines' is required and must be an array."),
        }
        if let Some(g) = o.get("global-actions") {
            match g {
                J::Array(a) => {
                    self.push("global-actions");
                    for (i, t) in a.iter().enumerate() {
                        self.push(i.to_string());
                        match t.as_object() {
                            None => self.err(126, "A global action must be an object."),
                            Some(t) => {
                                let act = self.parse_action(t, false);
                                script.global_actions.push(act);
                            }
                        }
                        self.pop();
                    }
                    self.pop();
                }
                _ => self.err(125, "'global-actions' must be an array."),
            }
        }
        if let Some(g) = o.get("input-triggers") {
            match g {
                J::Array(a) => {
                    self.push("input-triggers");
                    for (i, t) in a.iter().enumerate() {
                        self.push(i.to_string());
                        match t.as_object() {
                            None => self.err(124, "An input trigger must be an object."),
                            Some(t) => {
                                self.check_keys(t, &["id", "input"]);
                                let id = match t.get("id") {
                                    Some(J::String(s)) => {
                                        if s.is_empty() {
                                            self.err(
                                                1901,
                                                "The input trigger 'id' must not be empty.",
                                            );
                                        }
                                        s.clone()
                                    }
                                    _ => {
                                        self.err(1900, "The input trigger needs a string 'id'.");
                                        String::new()
                                    }
                                };
                                let io = match t.get("input") {
                                    Some(v) if v.is_object() || v.is_number() => {
                                        self.parse_io(v, "input", false, true)
                                    }
                                    _ => {
                                        self.err(1902, "The input trigger needs an 'input'.");
                                        Io::Full(1, 1)
                                    }
                                };
                                script.input_triggers.push((id, io));
                            }
                        }
                        self.pop();
                    }
                    self.pop();
                }
                _ => self.err(123, "'input-triggers' must be an array."),
            }
        }
        if let Some(s) = o.get("sequences") {
            self.gate(V110, "sequences");
            match s {
                J::Array(a) => {
                    self.push("sequences");
                    let mut ids: Vec<String> = Vec::new();
                    for (i, t) in a.iter().enumerate() {
                        self.push(i.to_string());
                        match t.as_object() {
                            None => self.err(132, "A sequence must be an object."),
                            Some(t) => {
                                let seq = self.parse_sequence(t);
                                if ids.contains(&seq.id) {
                                    self.err(9, format!("Duplicate sequence id '{}'.", seq.id));
                                }
                                ids.push(seq.id.clone());
                                script.sequences.push(seq);
                            }
                        }
                        self.pop();
                    }
                    self.pop();
                }
                _ => self.err(131, "'sequences' must be an array."),
            }
        }
        script
    }

    fn pool_array<'a>(
        &mut self,
        cp: &'a Map<String, J>,
        key: &str,
        arr: u32,
        obj: u32,
    ) -> Vec<(usize, &'a Map<String, J>)> {
        let mut out = Vec::new();
        if let Some(v) = cp.get(key) {
            match v {
                J::Array(a) => {
                    for (i, e) in a.iter().enumerate() {
                        match e.as_object() {
                            Some(m) => out.push((i, m)),
                            None => {
                                self.push(key);
                                self.push(i.to_string());
                                self.err(obj, format!("The '{key}' entries must be objects."));
                                self.pop();
                                self.pop();
                            }
                        }
                    }
                }
                _ => self.err(arr, format!("'{key}' must be an array.")),
            }
        }
        out
    }

    fn dup_check(&mut self, ids: &mut Vec<String>, id: &str) {
        if ids.iter().any(|x| x == id) {
            self.err(9, format!("Duplicate id '{id}'."));
        }
        ids.push(id.to_string());
    }

    fn parse_pool(&mut self, cp: &Map<String, J>, s: &mut Script) {
        self.check_keys(
            cp,
            &[
                "segment-blocks",
                "segments",
                "inputs",
                "outputs",
                "calcs",
                "values",
                "actions",
                "ifs",
                "tunings",
            ],
        );
        macro_rules! pool {
            ($key:expr, $arr:expr, $obj:expr, $field:ident, |$p:ident, $m:ident| $body:expr) => {{
                let items = self.pool_array(cp, $key, $arr, $obj);
                let mut ids = Vec::new();
                for (i, m) in items {
                    self.push($key);
                    self.push(i.to_string());
                    let $p = &mut *self;
                    let $m = m;
                    let (id, item) = $body;
                    self.dup_check(&mut ids, &id);
                    s.$field.push((id, item));
                    self.pop();
                    self.pop();
                }
            }};
        }
        pool!("segment-blocks", 107, 108, blocks, |p, m| p.parse_block(m));
        pool!("segments", 109, 110, segments, |p, m| p
            .parse_segment(m, true));
        pool!("inputs", 111, 112, inputs, |p, m| p
            .parse_io_obj(m, "input", true));
        pool!("outputs", 113, 114, outputs, |p, m| p
            .parse_io_obj(m, "output", true));
        pool!("calcs", 115, 116, calcs, |p, m| p.parse_calc(m, true));
        pool!("values", 117, 118, values, |p, m| p
            .parse_value_obj(m, true));
        pool!("actions", 119, 120, actions, |p, m| {
            let (id, _) = p.id_ref(m, true, &[], 900);
            (id, p.parse_action_body(m, true))
        });
        pool!("ifs", 121, 122, ifs, |p, m| p.parse_if(m, true));
        if cp.contains_key("tunings") {
            self.gate(V110, "tunings");
        }
        pool!("tunings", 129, 130, tunings, |p, m| p.parse_tuning(m, true));
    }

    fn parse_timeline(&mut self, t: &Map<String, J>) -> Timeline {
        self.check_keys(t, &["time-scale", "lanes", "loop-lock"]);
        let mut tl = Timeline {
            time_scale: None,
            lanes: Vec::new(),
            loop_lock: false,
        };
        if let Some(ts) = t.get("time-scale") {
            match ts.as_object() {
                None => self.err(200, "'time-scale' must be an object."),
                Some(ts) => {
                    self.push("time-scale");
                    self.check_keys(ts, &["sample-rate", "bpm", "bpb"]);
                    let mut sc = TimeScale::default();
                    for (key, code) in [("sample-rate", 303), ("bpm", 304), ("bpb", 305)] {
                        if let Some(v) = ts.get(key) {
                            match v.as_u64() {
                                Some(n) if n > 0 => match key {
                                    "sample-rate" => sc.sample_rate = Some(n),
                                    "bpm" => sc.bpm = Some(n),
                                    _ => sc.bpb = Some(n),
                                },
                                _ => self.err(
                                    code,
                                    format!("'{key}' must be an unsigned integer above 0."),
                                ),
                            }
                        }
                    }
                    if ts.contains_key("bpb") && !ts.contains_key("bpm") {
                        self.err(306, "'bpb' requires 'bpm'.");
                    }
                    if !ts.contains_key("sample-rate") && !ts.contains_key("bpm") {
                        self.err(307, "A time-scale needs 'sample-rate' or 'bpm'.");
                    }
                    tl.time_scale = Some(sc);
                    self.pop();
                }
            }
        }
        if let Some(v) = t.get("loop-lock") {
            match v.as_bool() {
                Some(b) => tl.loop_lock = b,
                None => self.err(203, "'loop-lock' must be a boolean."),
            }
        }
        match t.get("lanes") {
            Some(J::Array(a)) => {
                self.push("lanes");
                for (i, l) in a.iter().enumerate() {
                    self.push(i.to_string());
                    match l.as_object() {
                        None => self.err(202, "A lane must be an object."),
                        Some(l) => {
                            let lane = self.parse_lane(l);
                            tl.lanes.push(lane);
                        }
                    }
                    self.pop();
                }
                self.pop();
            }
            _ => self.err(201, "'lanes' is required and must be an array."),
        }
        tl
    }

    fn opt_bool(&mut self, o: &Map<String, J>, key: &str, code: u32, default: bool) -> bool {
        match o.get(key) {
            None => default,
            Some(J::Bool(b)) => *b,
            Some(_) => {
                self.err(code, format!("'{key}' must be a boolean."));
                default
            }
        }
    }

    fn opt_str(&mut self, o: &Map<String, J>, key: &str, tcode: u32, ecode: u32) -> String {
        match o.get(key) {
            None => String::new(),
            Some(J::String(s)) => {
                if s.is_empty() {
                    self.err(ecode, format!("'{key}' must not be empty."));
                }
                s.clone()
            }
            Some(_) => {
                self.err(tcode, format!("'{key}' must be a string."));
                String::new()
            }
        }
    }

    fn parse_lane(&mut self, l: &Map<String, J>) -> Lane {
        self.check_keys(
            l,
            &[
                "auto-start",
                "loop",
                "repeat",
                "start-trigger",
                "restart-trigger",
                "stop-trigger",
                "segments",
                "disable-ui",
            ],
        );
        let auto_start = self.opt_bool(l, "auto-start", 400, true);
        let looping = self.opt_bool(l, "loop", 401, false);
        let repeat = match l.get("repeat") {
            None => 0,
            Some(v) => match v.as_u64() {
                Some(n) => n,
                None => {
                    self.err(402, "'repeat' must be an unsigned integer.");
                    0
                }
            },
        };
        let start_trigger = self.opt_str(l, "start-trigger", 403, 404);
        let restart_trigger = self.opt_str(l, "restart-trigger", 405, 406);
        let stop_trigger = self.opt_str(l, "stop-trigger", 407, 408);
        let disable_ui = self.opt_bool(l, "disable-ui", 411, false);
        let segments = self.parse_segment_list(l, 409, 410);
        Lane {
            auto_start,
            looping,
            repeat,
            start_trigger,
            restart_trigger,
            stop_trigger,
            segments,
            disable_ui,
        }
    }

    fn parse_segment_list(&mut self, o: &Map<String, J>, arr: u32, obj: u32) -> Vec<Segment> {
        let mut out = Vec::new();
        match o.get("segments") {
            Some(J::Array(a)) => {
                self.push("segments");
                for (i, s) in a.iter().enumerate() {
                    self.push(i.to_string());
                    match s.as_object() {
                        None => self.err(obj, "A segment must be an object."),
                        Some(s) => {
                            let (_, seg) = self.parse_segment(s, false);
                            out.push(seg);
                        }
                    }
                    self.pop();
                }
                self.pop();
            }
            _ => self.err(arr, "'segments' is required and must be an array."),
        }
        out
    }

    fn parse_block(&mut self, o: &Map<String, J>) -> (String, Block) {
        self.check_keys(o, &["id", "ref", "segments", "repeat"]);
        let (id, _) = self.id_ref(o, true, &["segments", "repeat"], 700);
        let repeat = match o.get("repeat") {
            None => None,
            Some(v) => match v.as_u64() {
                Some(n) if n > 0 => Some(n),
                _ => {
                    self.err(703, "'repeat' must be an unsigned integer above 0.");
                    None
                }
            },
        };
        let segments = self.parse_segment_list(o, 701, 702);
        (id, Block { segments, repeat })
    }

    fn parse_actions(&mut self, o: &Map<String, J>, arr: u32, obj: u32) -> Vec<Action> {
        let mut out = Vec::new();
        if let Some(a) = o.get("actions") {
            match a {
                J::Array(a) => {
                    self.push("actions");
                    for (i, s) in a.iter().enumerate() {
                        self.push(i.to_string());
                        match s.as_object() {
                            None => self.err(obj, "An action must be an object."),
                            Some(s) => {
                                let act = self.parse_action(s, false);
                                out.push(act);
                            }
                        }
                        self.pop();
                    }
                    self.pop();
                }
                _ => self.err(arr, "'actions' must be an array."),
            }
        }
        out
    }

    fn parse_segment(&mut self, o: &Map<String, J>, pool: bool) -> (String, Segment) {
        self.check_keys(
            o,
            &[
                "duration",
                "actions",
                "disable-ui",
                "segment-block",
                "id",
                "ref",
            ],
        );
        let (id, r) = self.id_ref(
            o,
            pool,
            &["duration", "actions", "disable-ui", "segment-block"],
            600,
        );
        if let Some(r) = r {
            return (id, Segment::Ref(r));
        }
        if let Some(b) = o.get("segment-block") {
            let block = match b {
                J::String(s) => {
                    if s.is_empty() {
                        self.err(605, "'segment-block' must not be empty.");
                    }
                    s.clone()
                }
                _ => {
                    self.err(604, "'segment-block' must be a string.");
                    String::new()
                }
            };
            if o.contains_key("duration") || o.contains_key("disable-ui") {
                self.err(
                    607,
                    "A segment can have either a 'segment-block' or a 'duration'/'disable-ui'.",
                );
            }
            let actions = self.parse_actions(o, 602, 603);
            return (id, Segment::Block { block, actions });
        }
        let duration = match o.get("duration") {
            Some(J::Object(d)) => {
                self.push("duration");
                let d = self.parse_duration(d);
                self.pop();
                d
            }
            _ => {
                self.err(601, "'duration' is required and must be an object.");
                Duration::Samples(DurAmount::Samples(1))
            }
        };
        let actions = self.parse_actions(o, 602, 603);
        let disable_ui = self.opt_bool(o, "disable-ui", 608, false);
        (
            id,
            Segment::Full {
                duration,
                actions,
                disable_ui,
            },
        )
    }

    fn parse_duration(&mut self, d: &Map<String, J>) -> Duration {
        self.check_keys(d, &["samples", "millis", "beats", "bars", "hz"]);
        let units = ["samples", "millis", "beats", "hz"]
            .iter()
            .filter(|k| d.contains_key(**k))
            .count();
        if units == 0 {
            self.err(
                805,
                "A duration needs one of 'samples', 'millis', 'beats' or 'hz'.",
            );
        } else if units > 1 {
            self.err(
                806,
                "A duration can only have one of 'samples', 'millis', 'beats' or 'hz'.",
            );
        }
        let mut result = Duration::Samples(DurAmount::Samples(1));
        if let Some(v) = d.get("samples") {
            let a = match v {
                J::Object(m) => {
                    self.push("samples");
                    let (_, val) = self.parse_value_obj(m, false);
                    self.pop();
                    DurAmount::Value(val)
                }
                _ => match v.as_u64() {
                    Some(n) if n > 0 => DurAmount::Samples(n),
                    _ => {
                        self.err(
                            800,
                            "'samples' must be an unsigned integer above 0 or a value.",
                        );
                        DurAmount::Samples(1)
                    }
                },
            };
            result = Duration::Samples(a);
        }
        if let Some(v) = d.get("millis") {
            let a = self.dur_float(v, "millis", 801, false);
            result = Duration::Millis(a);
        }
        let mut bars = None;
        if let Some(v) = d.get("bars") {
            match v.as_u64() {
                Some(n) if n > 0 => bars = Some(n),
                _ => self.err(802, "'bars' must be an unsigned integer above 0."),
            }
        }
        if let Some(v) = d.get("beats") {
            let a = self.dur_float(v, "beats", 803, true);
            match &a {
                DurAmount::Value(_) if d.contains_key("bars") => {
                    self.err(807, "'bars' requires a constant 'beats'.");
                }
                DurAmount::Const(b) if *b == 0.0 && !d.contains_key("bars") => {
                    self.err(810, "'beats' can only be 0 together with 'bars'.");
                }
                _ => {}
            }
            result = Duration::Beats(a, bars);
        } else if d.contains_key("bars") {
            self.err(807, "'bars' requires 'beats'.");
        }
        if let Some(v) = d.get("hz") {
            let a = self.dur_float(v, "hz", 804, false);
            result = Duration::Hz(a);
        }
        result
    }

    fn dur_float(&mut self, v: &J, key: &str, code: u32, allow_zero: bool) -> DurAmount {
        match v {
            J::Object(m) => {
                self.push(key);
                let (_, val) = self.parse_value_obj(m, false);
                self.pop();
                DurAmount::Value(val)
            }
            J::Number(n) => {
                let f = n.as_f64().unwrap_or(0.0) as f32;
                if f > 0.0 || (allow_zero && f >= 0.0) {
                    DurAmount::Const(f)
                } else {
                    self.err(code, format!("'{key}' has an invalid value."));
                    DurAmount::Const(1.0)
                }
            }
            _ => {
                self.err(code, format!("'{key}' must be a number or a value."));
                DurAmount::Const(1.0)
            }
        }
    }

    /// Parses a value given as number, string or object; located at `key` (pushed here).
    /// Returns None (without error) when the JSON type can't be a value.
    fn parse_value_any(&mut self, v: &J, key: &str) -> Option<Val> {
        self.push(key);
        let r = match v {
            J::Number(n) => {
                let f = n.as_f64().unwrap_or(0.0) as f32;
                if !(-10.0..=10.0).contains(&f) {
                    self.err(1405, "A voltage must be between -10 and 10.");
                }
                Some(Val::Full(Box::new(ValFull {
                    src: Src::Const(f),
                    calcs: vec![],
                    quantize: false,
                })))
            }
            J::String(s) => {
                let f = match parse_note(s) {
                    Some(f) => f,
                    None => {
                        self.err(1409, format!("'{s}' is not a valid note."));
                        0.0
                    }
                };
                Some(Val::Full(Box::new(ValFull {
                    src: Src::Const(f),
                    calcs: vec![],
                    quantize: false,
                })))
            }
            J::Object(m) => Some(self.parse_value_obj(m, false).1),
            _ => None,
        };
        self.pop();
        r
    }

    fn value_or(&mut self, o: &Map<String, J>, key: &str, code: u32) -> Val {
        match o.get(key).and_then(|v| self.parse_value_any(v, key)) {
            Some(v) => v,
            None => {
                self.err(code, format!("'{key}' must be a value."));
                Val::Ref(String::new())
            }
        }
    }

    pub(crate) fn parse_value_obj(&mut self, o: &Map<String, J>, pool: bool) -> (String, Val) {
        const OWN: [&str; 10] = [
            "voltage", "note", "variable", "input", "output", "rand", "sequence", "calc",
            "quantize", "no-limit",
        ];
        let mut keys: Vec<&str> = OWN.to_vec();
        keys.push("id");
        keys.push("ref");
        self.check_keys(o, &keys);
        let (id, r) = self.id_ref(o, pool, &OWN, 1400);
        if let Some(r) = r {
            return (id, Val::Ref(r));
        }
        let sources = [
            "voltage", "note", "variable", "input", "output", "rand", "sequence",
        ];
        let n = sources.iter().filter(|k| o.contains_key(**k)).count();
        if n == 0 {
            self.err(1402, "A value needs a source.");
        } else if n > 1 {
            self.err(1403, "A value can only have one source.");
        }
        let mut src = Src::Const(0.0);
        let mut no_limit = false;
        if let Some(v) = o.get("no-limit") {
            match v {
                J::Bool(b) => no_limit = *b,
                _ => self.err(1416, "'no-limit' must be a boolean."),
            }
            if !o.contains_key("voltage") {
                self.err(1417, "'no-limit' is only allowed with 'voltage'.");
            }
        }
        if let Some(v) = o.get("voltage") {
            match v {
                J::Number(num) => {
                    let f = num.as_f64().unwrap_or(0.0) as f32;
                    if !no_limit && !(-10.0..=10.0).contains(&f) {
                        self.err(1405, "A voltage must be between -10 and 10.");
                    }
                    src = Src::Const(f);
                }
                _ => self.err(1404, "'voltage' must be a number."),
            }
        }
        if let Some(v) = o.get("note") {
            match v {
                J::String(s) => match parse_note(s) {
                    Some(f) => src = Src::Const(f),
                    None => self.err(1409, format!("'{s}' is not a valid note.")),
                },
                _ => self.err(1408, "'note' must be a string."),
            }
        }
        if let Some(v) = o.get("variable") {
            match v {
                J::String(s) => {
                    if s.is_empty() {
                        self.err(1407, "'variable' must not be empty.");
                    }
                    src = Src::Variable(s.clone());
                }
                _ => self.err(1406, "'variable' must be a string."),
            }
        }
        if let Some(v) = o.get("input") {
            if v.is_object() || v.is_number() {
                src = Src::Input(self.parse_io(v, "input", false, true));
            } else {
                self.err(1410, "'input' must be an input.");
            }
        }
        if let Some(v) = o.get("output") {
            if v.is_object() || v.is_number() {
                src = Src::Output(self.parse_io(v, "output", false, true));
            } else {
                self.err(1411, "'output' must be an output.");
            }
        }
        if let Some(v) = o.get("rand") {
            match v {
                J::Object(m) => {
                    self.push("rand");
                    self.check_keys(m, &["lower", "upper"]);
                    let lo = self.value_or(m, "lower", 1700);
                    let hi = self.value_or(m, "upper", 1701);
                    self.pop();
                    src = Src::Rand(lo, hi);
                }
                _ => self.err(1412, "'rand' must be an object."),
            }
        }
        if let Some(v) = o.get("sequence") {
            self.gate(V120, "sequence");
            match v {
                J::String(s) => {
                    if s.is_empty() {
                        self.err(2301, "'sequence' must not be empty.");
                    }
                    src = Src::Seq {
                        id: s.clone(),
                        before: Dir::None,
                        after: Dir::Forward,
                        wrap: true,
                    };
                }
                J::Object(m) => {
                    self.push("sequence");
                    let id = match m.get("id") {
                        Some(J::String(s)) => {
                            if s.is_empty() {
                                self.err(2303, "The sequence 'id' must not be empty.");
                            }
                            s.clone()
                        }
                        _ => {
                            self.err(2302, "The sequence 'id' must be a string.");
                            String::new()
                        }
                    };
                    let mut dirs = [Dir::None, Dir::Forward];
                    for (i, key) in ["move-before", "move-after"].iter().enumerate() {
                        if let Some(d) = m.get(*key) {
                            match d {
                                J::String(s) => match parse_dir(s) {
                                    Some(d) => dirs[i] = d,
                                    None => {
                                        self.err(2305, format!("'{key}' is not a valid direction."))
                                    }
                                },
                                _ => self.err(2304, format!("'{key}' must be a string.")),
                            }
                        }
                    }
                    let wrap = self.opt_bool(m, "wrap", 2306, true);
                    self.pop();
                    src = Src::Seq {
                        id,
                        before: dirs[0],
                        after: dirs[1],
                        wrap,
                    };
                }
                _ => self.err(2307, "'sequence' must be a string or an object."),
            }
        }
        let mut calcs = Vec::new();
        if let Some(c) = o.get("calc") {
            match c {
                J::Array(a) => {
                    self.push("calc");
                    for (i, c) in a.iter().enumerate() {
                        self.push(i.to_string());
                        match c {
                            J::Object(m) => calcs.push(self.parse_calc(m, false).1),
                            _ => self.err(1414, "A calc must be an object."),
                        }
                        self.pop();
                    }
                    self.pop();
                }
                _ => self.err(1413, "'calc' must be an array."),
            }
        }
        let quantize = self.opt_bool(o, "quantize", 1415, false);
        (
            id,
            Val::Full(Box::new(ValFull {
                src,
                calcs,
                quantize,
            })),
        )
    }

    /// Parses an input/output given as a number (shorthand, located at the parent) or an object (at `key`).
    fn parse_io(&mut self, v: &J, key: &str, pool: bool, _inline: bool) -> Io {
        match v {
            J::Object(m) => {
                self.push(key);
                let r = self.parse_io_obj(m, key, pool).1;
                self.pop();
                r
            }
            _ => {
                let base = if key == "input" { 1600 } else { 1500 };
                match v.as_u64() {
                    Some(n) if (1..=8).contains(&n) => Io::Full(n as u8, 1),
                    Some(_) => {
                        self.err(base + 2, "'index' must be between 1 and 8.");
                        Io::Full(1, 1)
                    }
                    None => {
                        self.err(base + 1, "'index' must be an unsigned integer.");
                        Io::Full(1, 1)
                    }
                }
            }
        }
    }

    fn parse_io_obj(&mut self, m: &Map<String, J>, kind: &str, pool: bool) -> (String, Io) {
        let base = if kind == "input" { 1600 } else { 1500 };
        self.check_keys(m, &["id", "ref", "index", "channel"]);
        let (id, r) = self.id_ref(m, pool, &["index", "channel"], base);
        if let Some(r) = r {
            return (id, Io::Ref(r));
        }
        let index = match m.get("index").and_then(|v| v.as_u64()) {
            Some(n) if (1..=8).contains(&n) => n as u8,
            Some(_) => {
                self.err(base + 2, "'index' must be between 1 and 8.");
                1
            }
            None => {
                self.err(
                    base + 1,
                    "'index' is required and must be an unsigned integer.",
                );
                1
            }
        };
        let channel = match m.get("channel") {
            None => 1,
            Some(v) => match v.as_u64() {
                Some(n) if (1..=16).contains(&n) => n as u8,
                Some(_) => {
                    self.err(base + 4, "'channel' must be between 1 and 16.");
                    1
                }
                None => {
                    self.err(base + 3, "'channel' must be an unsigned integer.");
                    1
                }
            },
        };
        (id, Io::Full(index, channel))
    }

    fn parse_calc(&mut self, m: &Map<String, J>, pool: bool) -> (String, Calc) {
        const OPS: [&str; 13] = [
            "add", "sub", "div", "mult", "max", "min", "remain", "trunc", "frac", "round",
            "quantize", "sign", "vtof",
        ];
        let mut keys = OPS.to_vec();
        keys.push("id");
        keys.push("ref");
        self.check_keys(m, &keys);
        let (id, r) = self.id_ref(m, pool, &OPS, 1800);
        if let Some(r) = r {
            return (id, Calc::Ref(r));
        }
        let n = OPS.iter().filter(|k| m.contains_key(**k)).count();
        if n == 0 {
            self.err(1801, "A calc needs an operation.");
        } else if n > 1 {
            self.err(1802, "A calc can only have one operation.");
        }
        let mut calc = Calc::Trunc;
        let bins = [
            ("add", BinOp::Add, 1803),
            ("sub", BinOp::Sub, 1804),
            ("div", BinOp::Div, 1805),
            ("mult", BinOp::Mult, 1806),
            ("max", BinOp::Max, 1807),
            ("min", BinOp::Min, 1808),
            ("remain", BinOp::Remain, 1809),
        ];
        for (key, op, code) in bins {
            if let Some(v) = m.get(key) {
                if matches!(op, BinOp::Max | BinOp::Min | BinOp::Remain) {
                    self.gate(V110, key);
                }
                match self.parse_value_any(v, key) {
                    Some(val) => calc = Calc::Bin(op, val),
                    None => self.err(code, format!("'{key}' must be a value.")),
                }
            }
        }
        if let Some(v) = m.get("trunc") {
            self.gate(V110, "trunc");
            if v != &J::Bool(true) {
                self.err(1810, "'trunc' must be true.");
            }
            calc = Calc::Trunc;
        }
        if let Some(v) = m.get("frac") {
            self.gate(V110, "frac");
            if v != &J::Bool(true) {
                self.err(1811, "'frac' must be true.");
            }
            calc = Calc::Frac;
        }
        if let Some(v) = m.get("round") {
            self.gate(V110, "round");
            match v {
                J::String(s) => match s.as_str() {
                    "up" => calc = Calc::Round(RoundKind::Up),
                    "down" => calc = Calc::Round(RoundKind::Down),
                    "near" => calc = Calc::Round(RoundKind::Near),
                    _ => self.err(1813, "'round' must be up, down or near."),
                },
                _ => self.err(1812, "'round' must be a string."),
            }
        }
        if let Some(v) = m.get("quantize") {
            self.gate(V110, "quantize");
            match v {
                J::Object(t) => {
                    self.push("quantize");
                    let (_, t) = self.parse_tuning(t, false);
                    self.pop();
                    calc = Calc::Quantize(t);
                }
                _ => self.err(1814, "'quantize' must be a tuning object."),
            }
        }
        if let Some(v) = m.get("sign") {
            self.gate(V110, "sign");
            match v {
                J::String(s) => match s.as_str() {
                    "pos" => calc = Calc::Sign(true),
                    "neg" => calc = Calc::Sign(false),
                    _ => self.err(1817, "'sign' must be pos or neg."),
                },
                _ => self.err(1816, "'sign' must be a string."),
            }
        }
        if let Some(v) = m.get("vtof") {
            self.gate(V110, "vtof");
            if v != &J::Bool(true) {
                self.err(1818, "'vtof' must be true.");
            }
            calc = Calc::Vtof;
        }
        (id, calc)
    }

    fn parse_tuning(&mut self, m: &Map<String, J>, pool: bool) -> (String, Tuning) {
        self.check_keys(m, &["id", "ref", "notes"]);
        let (id, r) = self.id_ref(m, pool, &["notes"], 2100);
        if let Some(r) = r {
            return (id, Tuning::Ref(r));
        }
        let mut notes: Vec<f32> = Vec::new();
        match m.get("notes") {
            Some(J::Array(a)) => {
                if a.is_empty() {
                    self.err(2102, "'notes' must not be empty.");
                }
                self.push("notes");
                for (i, n) in a.iter().enumerate() {
                    self.push(i.to_string());
                    match n {
                        J::Number(x) => {
                            let f = x.as_f64().unwrap_or(0.0) as f32;
                            let mut fr = f - f.trunc();
                            if fr < 0.0 {
                                fr += 1.0;
                            }
                            notes.push(fr);
                        }
                        J::String(s) => {
                            let b = s.as_bytes();
                            let ok = !b.is_empty() && b.len() <= 2;
                            let idx = if ok { note_index(b[0]) } else { None };
                            let acc = if b.len() == 2 {
                                match b[1] {
                                    b'+' => Some(1),
                                    b'-' => Some(-1),
                                    _ => None,
                                }
                            } else {
                                Some(0)
                            };
                            match (idx, acc) {
                                (Some(i), Some(a)) => {
                                    let semi = (i + a).rem_euclid(12);
                                    notes.push(semi as f32 / 12.0);
                                }
                                _ => self.err(2104, format!("'{s}' is not a valid tuning note.")),
                            }
                        }
                        _ => self.err(2103, "A tuning note must be a number or a string."),
                    }
                    self.pop();
                }
                self.pop();
            }
            _ => self.err(2101, "'notes' is required and must be an array."),
        }
        notes.sort_by(|a, b| a.partial_cmp(b).unwrap_or(std::cmp::Ordering::Equal));
        notes.dedup();
        (id, Tuning::Full(notes))
    }

    pub(crate) fn parse_if(&mut self, m: &Map<String, J>, pool: bool) -> (String, If) {
        const OPS: [&str; 8] = ["eq", "ne", "lt", "lte", "gt", "gte", "and", "or"];
        let mut own = OPS.to_vec();
        own.push("tolerance");
        let (id, r) = self.id_ref(m, pool, &own, 500);
        if let Some(r) = r {
            return (id, If::Ref(r));
        }
        let mut keys = own.clone();
        keys.push("id");
        keys.push("ref");
        self.check_keys(m, &keys);
        let n = OPS.iter().filter(|k| m.contains_key(**k)).count();
        if n == 0 {
            self.err(509, "An if needs an operator.");
        } else if n > 1 {
            self.err(510, "An if can only have one operator.");
        }
        let mut tol = None;
        if let Some(t) = m.get("tolerance") {
            match t.as_f64() {
                Some(f) if f >= 0.0 => tol = Some(f as f32),
                _ => self.err(513, "'tolerance' must be a number of at least 0."),
            }
        }
        let mut result = If::Logic {
            and: true,
            children: vec![],
        };
        let cmps = [
            ("eq", CmpOp::Eq, 501),
            ("ne", CmpOp::Ne, 502),
            ("lt", CmpOp::Lt, 503),
            ("lte", CmpOp::Lte, 504),
            ("gt", CmpOp::Gt, 505),
            ("gte", CmpOp::Gte, 506),
        ];
        for (key, op, code) in cmps {
            if let Some(v) = m.get(key) {
                match v {
                    J::Array(a) => {
                        if a.len() != 2 {
                            self.err(511, format!("'{key}' needs exactly 2 values."));
                        } else {
                            self.push(key);
                            let mut vals = Vec::new();
                            for (i, e) in a.iter().enumerate() {
                                match self.parse_value_any(e, &i.to_string()) {
                                    Some(v) => vals.push(v),
                                    None => {
                                        self.push(i.to_string());
                                        self.err(512, "An if operand must be a value.");
                                        self.pop();
                                        vals.push(Val::Ref(String::new()));
                                    }
                                }
                            }
                            self.pop();
                            let b = vals.pop().unwrap_or(Val::Ref(String::new()));
                            let a = vals.pop().unwrap_or(Val::Ref(String::new()));
                            result = If::Cmp { op, a, b, tol };
                        }
                    }
                    _ => self.err(code, format!("'{key}' must be an array.")),
                }
            }
        }
        for (key, and, code) in [("and", true, 507), ("or", false, 508)] {
            if let Some(v) = m.get(key) {
                match v {
                    J::Array(a) => {
                        if a.len() < 2 {
                            self.err(511, format!("'{key}' needs at least 2 conditions."));
                        } else if a.len() > 2 {
                            self.gate(V120, "more than 2 conditions");
                        }
                        self.push(key);
                        let mut children = Vec::new();
                        for (i, e) in a.iter().enumerate() {
                            self.push(i.to_string());
                            match e {
                                J::Object(c) => children.push(self.parse_if(c, false).1),
                                _ => self.err(512, "A condition must be an object."),
                            }
                            self.pop();
                        }
                        self.pop();
                        result = If::Logic { and, children };
                    }
                    _ => self.err(code, format!("'{key}' must be an array.")),
                }
            }
        }
        (id, result)
    }

    fn parse_action(&mut self, m: &Map<String, J>, pool: bool) -> Action {
        let (_, r) = self.id_ref(m, pool, &ACTION_OWN, 900);
        if let Some(r) = r {
            let mut keys = ACTION_OWN.to_vec();
            keys.push("ref");
            keys.push("id");
            self.check_keys(m, &keys);
            return Action {
                reference: Some(r),
                timing: Timing::Start,
                cond: None,
                op: Op::None,
            };
        }
        self.parse_action_body(m, pool)
    }

    fn parse_action_body(&mut self, m: &Map<String, J>, _pool: bool) -> Action {
        let mut keys = ACTION_OWN.to_vec();
        keys.push("ref");
        keys.push("id");
        self.check_keys(m, &keys);
        let timing = match m.get("timing") {
            Some(J::String(s)) => match s.as_str() {
                "start" => Timing::Start,
                "end" => Timing::End,
                "glide" => Timing::Glide,
                "gate" => Timing::Gate,
                _ => {
                    self.err(901, "'timing' must be start, end, glide or gate.");
                    Timing::Start
                }
            },
            _ => Timing::Start,
        };
        let cond = match m.get("if") {
            None => None,
            Some(J::Object(c)) => {
                self.push("if");
                let c = self.parse_if(c, false).1;
                self.pop();
                Some(c)
            }
            Some(_) => {
                self.err(917, "'if' must be an object.");
                None
            }
        };
        const OPS: [&str; 10] = [
            "set-value",
            "set-variable",
            "set-polyphony",
            "set-label",
            "assert",
            "trigger",
            "move-sequence",
            "clear-sequence",
            "add-to-sequence",
            "remove-from-sequence",
        ];
        let has_op = OPS.iter().any(|k| m.contains_key(*k));
        let op = match timing {
            Timing::Glide => {
                if has_op || m.contains_key("gate-high-ratio") {
                    self.err(
                        918,
                        "A glide action can not have operations or 'gate-high-ratio'.",
                    );
                }
                let start = m.get("start-value").map(|v| {
                    self.parse_value_any(v, "start-value").unwrap_or_else(|| {
                        self.err(909, "'start-value' must be a value.");
                        Val::Ref(String::new())
                    })
                });
                let end = m.get("end-value").map(|v| {
                    self.parse_value_any(v, "end-value").unwrap_or_else(|| {
                        self.err(910, "'end-value' must be a value.");
                        Val::Ref(String::new())
                    })
                });
                if start.is_none() || end.is_none() {
                    self.err(919, "A glide needs 'start-value' and 'end-value'.");
                }
                let target = self.parse_target(m);
                let ease = match m.get("ease-factor") {
                    None => 0.0,
                    Some(J::Number(n)) => {
                        let f = n.as_f64().unwrap_or(0.0) as f32;
                        if !(-5.0..=5.0).contains(&f) {
                            self.err(912, "'ease-factor' must be between -5 and 5.");
                        }
                        f
                    }
                    Some(_) => {
                        self.err(911, "'ease-factor' must be a number.");
                        0.0
                    }
                };
                let pow = match m.get("ease-algorithm") {
                    None => false,
                    Some(J::String(s)) if s == "sig" => false,
                    Some(J::String(s)) if s == "pow" => true,
                    Some(_) => {
                        self.err(913, "'ease-algorithm' must be sig or pow.");
                        false
                    }
                };
                Op::Glide {
                    start: start.unwrap_or(Val::Ref(String::new())),
                    end: end.unwrap_or(Val::Ref(String::new())),
                    target,
                    ease,
                    pow,
                }
            }
            Timing::Gate => {
                if has_op
                    || [
                        "start-value",
                        "end-value",
                        "variable",
                        "ease-factor",
                        "ease-algorithm",
                    ]
                    .iter()
                    .any(|k| m.contains_key(*k))
                {
                    self.err(
                        925,
                        "A gate action can only have 'output', 'gate-high-ratio' and 'if'.",
                    );
                }
                let output = match m.get("output") {
                    Some(v) if v.is_object() || v.is_number() => {
                        self.parse_io(v, "output", false, true)
                    }
                    Some(_) => {
                        self.err(914, "'output' must be an output.");
                        Io::Full(1, 1)
                    }
                    None => {
                        self.err(928, "A gate action needs an 'output'.");
                        Io::Full(1, 1)
                    }
                };
                let ratio = match m.get("gate-high-ratio") {
                    None => 0.5,
                    Some(J::Number(n)) => {
                        let f = n.as_f64().unwrap_or(0.0) as f32;
                        if !(0.0..=1.0).contains(&f) {
                            self.err(927, "'gate-high-ratio' must be between 0 and 1.");
                        }
                        f
                    }
                    Some(_) => {
                        self.err(926, "'gate-high-ratio' must be a number.");
                        0.5
                    }
                };
                Op::Gate { output, ratio }
            }
            Timing::Start | Timing::End => {
                if [
                    "start-value",
                    "end-value",
                    "output",
                    "variable",
                    "ease-factor",
                    "ease-algorithm",
                    "gate-high-ratio",
                ]
                .iter()
                .any(|k| m.contains_key(*k))
                {
                    self.err(
                        922,
                        "Glide and gate properties are only allowed on glide and gate actions.",
                    );
                }
                let n = OPS.iter().filter(|k| m.contains_key(**k)).count();
                if n == 0 {
                    self.err(923, "An action needs an operation.");
                } else if n > 1 {
                    self.err(924, "An action can only have one operation.");
                }
                self.parse_ops(m)
            }
        };
        Action {
            reference: None,
            timing,
            cond,
            op,
        }
    }

    fn parse_target(&mut self, m: &Map<String, J>) -> Target {
        let mut t = Target::Variable(String::new());
        let has_out = m
            .get("output")
            .is_some_and(|v| v.is_object() || v.is_number());
        let has_var = m.get("variable").is_some_and(|v| v.is_string());
        if let Some(v) = m.get("output") {
            if v.is_object() || v.is_number() {
                t = Target::Output(self.parse_io(v, "output", false, true));
            } else {
                self.err(914, "'output' must be an output.");
            }
        }
        if let Some(v) = m.get("variable") {
            match v {
                J::String(s) => {
                    if s.is_empty() {
                        self.err(916, "'variable' must not be empty.");
                    }
                    t = Target::Variable(s.clone());
                }
                _ => self.err(915, "'variable' must be a string."),
            }
        }
        if !has_out && !has_var {
            self.err(920, "A glide needs an 'output' or a 'variable'.");
        } else if has_out && has_var {
            self.err(921, "A glide can not have both 'output' and 'variable'.");
        }
        t
    }

    fn req_str(&mut self, m: &Map<String, J>, key: &str, tcode: u32, ecode: u32) -> String {
        match m.get(key) {
            Some(J::String(s)) => {
                if s.is_empty() {
                    self.err(ecode, format!("'{key}' must not be empty."));
                }
                s.clone()
            }
            _ => {
                self.err(tcode, format!("'{key}' is required and must be a string."));
                String::new()
            }
        }
    }

    fn req_range(&mut self, m: &Map<String, J>, key: &str, max: u64, tcode: u32, rcode: u32) -> u8 {
        match m.get(key).and_then(|v| v.as_u64()) {
            Some(n) if n >= 1 && n <= max => n as u8,
            Some(_) => {
                self.err(rcode, format!("'{key}' must be between 1 and {max}."));
                1
            }
            None => {
                self.err(
                    tcode,
                    format!("'{key}' is required and must be an unsigned integer."),
                );
                1
            }
        }
    }

    fn opt_pos(&mut self, m: &Map<String, J>, code: u32) -> Option<i64> {
        match m.get("position") {
            None => None,
            Some(v) if is_int(v) => Some(v.as_i64().unwrap_or(i64::MAX)),
            Some(_) => {
                self.err(code, "'position' must be an integer.");
                None
            }
        }
    }

    fn parse_ops(&mut self, m: &Map<String, J>) -> Op {
        let mut op = Op::None;
        if let Some(v) = m.get("set-value") {
            match v {
                J::Object(o) => {
                    self.push("set-value");
                    self.check_keys(o, &["output", "value"]);
                    let output = match o.get("output") {
                        Some(v) if v.is_object() || v.is_number() => {
                            self.parse_io(v, "output", false, true)
                        }
                        _ => {
                            self.err(1000, "'output' is required.");
                            Io::Full(1, 1)
                        }
                    };
                    let value = self.value_or(o, "value", 1001);
                    self.pop();
                    op = Op::SetValue { output, value };
                }
                _ => self.err(902, "'set-value' must be an object."),
            }
        }
        if let Some(v) = m.get("set-variable") {
            match v {
                J::Object(o) => {
                    self.push("set-variable");
                    self.check_keys(o, &["name", "value"]);
                    let name = self.req_str(o, "name", 1100, 1101);
                    let value = self.value_or(o, "value", 1102);
                    self.pop();
                    op = Op::SetVariable { name, value };
                }
                _ => self.err(903, "'set-variable' must be an object."),
            }
        }
        if let Some(v) = m.get("set-polyphony") {
            match v {
                J::Object(o) => {
                    self.push("set-polyphony");
                    self.check_keys(o, &["index", "channels"]);
                    let index = self.req_range(o, "index", 8, 1200, 1201);
                    let channels = self.req_range(o, "channels", 16, 1202, 1203);
                    self.pop();
                    op = Op::SetPolyphony { index, channels };
                }
                _ => self.err(904, "'set-polyphony' must be an object."),
            }
        }
        if let Some(v) = m.get("set-label") {
            match v {
                J::Object(o) => {
                    self.push("set-label");
                    self.check_keys(o, &["index", "label"]);
                    let index = self.req_range(o, "index", 8, 2000, 2001);
                    let label = self.req_str(o, "label", 2002, 2003);
                    self.pop();
                    op = Op::SetLabel { index, label };
                }
                _ => self.err(905, "'set-label' must be an object."),
            }
        }
        if let Some(v) = m.get("assert") {
            match v {
                J::Object(o) => {
                    self.push("assert");
                    self.check_keys(o, &["name", "expect", "stop-on-fail"]);
                    let name = self.req_str(o, "name", 1301, 1302);
                    let expect = match o.get("expect") {
                        Some(J::Object(e)) => {
                            self.push("expect");
                            let e = self.parse_if(e, false).1;
                            self.pop();
                            e
                        }
                        _ => {
                            self.err(1303, "'expect' is required and must be an if object.");
                            If::Ref(String::new())
                        }
                    };
                    let stop = self.opt_bool(o, "stop-on-fail", 1304, true);
                    self.pop();
                    op = Op::Assert { name, expect, stop };
                }
                _ => self.err(906, "'assert' must be an object."),
            }
        }
        if let Some(v) = m.get("trigger") {
            match v {
                J::String(s) => {
                    if s.is_empty() {
                        self.err(908, "'trigger' must not be empty.");
                    }
                    op = Op::Trigger(s.clone());
                }
                _ => self.err(907, "'trigger' must be a string."),
            }
        }
        if let Some(v) = m.get("move-sequence") {
            self.gate(V120, "move-sequence");
            match v {
                J::Object(o) => {
                    self.push("move-sequence");
                    self.check_keys(o, &["id", "position", "wrap", "direction"]);
                    let id = self.req_str(o, "id", 2400, 2401);
                    let pos = self.opt_pos(o, 2402);
                    let wrap = self.opt_bool(o, "wrap", 2403, true);
                    let mut dir = Dir::Forward;
                    if let Some(d) = o.get("direction") {
                        match d {
                            J::String(s) => match parse_dir(s) {
                                Some(d) => dir = d,
                                None => self.err(2405, "'direction' is not a valid direction."),
                            },
                            _ => self.err(2404, "'direction' must be a string."),
                        }
                    }
                    if o.contains_key("position") && o.contains_key("wrap") {
                        self.err(2406, "'wrap' can not be combined with 'position'.");
                    }
                    if o.contains_key("position") && o.contains_key("direction") {
                        self.err(2408, "'direction' can not be combined with 'position'.");
                    }
                    self.pop();
                    op = match (o.contains_key("position"), pos) {
                        (true, p) => Op::MovePos {
                            id,
                            pos: p.unwrap_or(0),
                        },
                        _ => Op::MoveDir { id, dir, wrap },
                    };
                }
                _ => self.err(929, "'move-sequence' must be an object."),
            }
        }
        if let Some(v) = m.get("clear-sequence") {
            self.gate(V120, "clear-sequence");
            match v {
                J::String(s) => {
                    if s.is_empty() {
                        self.err(931, "'clear-sequence' must not be empty.");
                    }
                    op = Op::Clear(s.clone());
                }
                _ => self.err(930, "'clear-sequence' must be a string."),
            }
        }
        if let Some(v) = m.get("add-to-sequence") {
            self.gate(V120, "add-to-sequence");
            match v {
                J::Object(o) => {
                    self.push("add-to-sequence");
                    self.check_keys(o, &["id", "value", "position", "as-constant-voltage"]);
                    let id = self.req_str(o, "id", 2500, 2501);
                    let value = self.value_or(o, "value", 2502);
                    let pos = self.opt_pos(o, 2503).unwrap_or(-1);
                    let constant = self.opt_bool(o, "as-constant-voltage", 2504, false);
                    self.pop();
                    op = Op::Add {
                        id,
                        value,
                        pos,
                        constant,
                    };
                }
                _ => self.err(932, "'add-to-sequence' must be an object."),
            }
        }
        if let Some(v) = m.get("remove-from-sequence") {
            self.gate(V120, "remove-from-sequence");
            match v {
                J::Object(o) => {
                    self.push("remove-from-sequence");
                    self.check_keys(o, &["id", "position"]);
                    let id = self.req_str(o, "id", 2600, 2601);
                    let pos = self.opt_pos(o, 2602).unwrap_or(-1);
                    self.pop();
                    op = Op::Remove { id, pos };
                }
                _ => self.err(933, "'remove-from-sequence' must be an object."),
            }
        }
        op
    }

    fn parse_sequence(&mut self, m: &Map<String, J>) -> Sequence {
        self.check_keys(
            m,
            &["id", "ref", "values", "shared", "retrieve-voltage-once"],
        );
        let (id, _) = self.id_ref(
            m,
            true,
            &["values", "shared", "retrieve-voltage-once"],
            2200,
        );
        let shared = self.opt_bool(m, "shared", 2201, true);
        let retrieve_once = self.opt_bool(m, "retrieve-voltage-once", 2202, true);
        let mut values = Vec::new();
        match m.get("values") {
            Some(J::Array(a)) => {
                self.push("values");
                for (i, v) in a.iter().enumerate() {
                    match self.parse_value_any(v, &i.to_string()) {
                        Some(v) => values.push(v),
                        None => {
                            self.push(i.to_string());
                            self.err(2204, "A sequence value must be a value.");
                            self.pop();
                        }
                    }
                }
                self.pop();
            }
            _ => self.err(2203, "'values' is required and must be an array."),
        }
        Sequence {
            id,
            values,
            shared,
            retrieve_once,
        }
    }
}

const ACTION_OWN: [&str; 19] = [
    "timing",
    "if",
    "set-value",
    "set-variable",
    "set-polyphony",
    "set-label",
    "assert",
    "trigger",
    "move-sequence",
    "clear-sequence",
    "add-to-sequence",
    "remove-from-sequence",
    "start-value",
    "end-value",
    "output",
    "variable",
    "ease-factor",
    "ease-algorithm",
    "gate-high-ratio",
];
