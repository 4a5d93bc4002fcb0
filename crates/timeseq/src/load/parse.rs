//! Phase 2: structural validation of the JSON document into a script AST.
//!
//! Every error is collected; the AST is only used when no error was found,
//! so invalid parts are represented by harmless placeholders.

use crate::error::ValidationError;
use serde_json::{Map, Value as J};

pub(crate) use super::script::*;

pub(crate) struct Parser {
    pub errors: Vec<ValidationError>,
    path: Vec<String>,
    version: u32,
}

/// The location bookkeeping both loading phases share: a path into the
/// script, and the errors found, each at the path where it was found.
pub(crate) trait Located {
    /// The current path and the error list.
    fn path_and_errors(&mut self) -> (&mut Vec<String>, &mut Vec<ValidationError>);

    /// Records error `code` at the current path.
    fn err(&mut self, code: u32, msg: impl Into<String>) {
        let (path, errors) = self.path_and_errors();
        errors.push(ValidationError {
            location: loc_of(path),
            message: msg.into(),
            code: Some(code),
        });
    }

    /// Steps into `s`.
    fn push(&mut self, s: impl Into<String>) {
        self.path_and_errors().0.push(s.into());
    }

    /// Steps back out.
    fn pop(&mut self) {
        self.path_and_errors().0.pop();
    }
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

/// Result of a `populateRef`-style check.
struct RefInfo {
    id: String,
    /// Some when this is a valid (non-empty string) ref object.
    reference: Option<String>,
}

impl Parser {
    pub fn new() -> Self {
        Parser {
            errors: Vec::new(),
            path: Vec::new(),
            version: V120,
        }
    }

    fn gate(&mut self, min: u32, what: &str) {
        if self.version < min {
            let v = match min {
                V110 => "1.1.0",
                _ => "1.2.0",
            };
            self.err(11, format!("{what} requires script version {v} or later."));
        }
    }

    /// Unknown-key check (error 10). With `allow_ref`, `id` and `ref` are accepted too.
    fn check_keys(&mut self, o: &Map<String, J>, allowed: &[&str], allow_ref: bool) {
        let bad: Vec<&String> = o
            .keys()
            .filter(|k| {
                !k.starts_with("x-")
                    && !allowed.contains(&k.as_str())
                    && !(allow_ref && (*k == "id" || *k == "ref"))
            })
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

    /// The reference's `populateRef`: inline objects may carry a `ref` (1, 2) but no `id` (8);
    /// pool items need an `id` (6, 7) and no `ref` (3). A valid ref combined with any of the
    /// type's own properties is the type's ref-or-instance error.
    fn id_ref(&mut self, o: &Map<String, J>, pool: bool, own: &[&str], roi: u32) -> RefInfo {
        let mut info = RefInfo {
            id: String::new(),
            reference: None,
        };
        if pool {
            match o.get("id") {
                Some(J::String(s)) => {
                    if s.is_empty() {
                        self.err(7, "'id' can not be an empty string.");
                    }
                    info.id = s.clone();
                }
                _ => self.err(6, "'id' is required and must be a string."),
            }
            if o.contains_key("ref") {
                self.err(3, "'ref' is not allowed here.");
            }
            return info;
        }
        match o.get("ref") {
            None => {}
            Some(J::String(s)) if !s.is_empty() => info.reference = Some(s.clone()),
            Some(J::String(_)) => self.err(2, "'ref' can not be an empty string."),
            Some(_) => self.err(1, "'ref' must be a string."),
        }
        if o.contains_key("id") {
            self.err(8, "'id' is not allowed here.");
        }
        if info.reference.is_some() && own.iter().any(|k| o.contains_key(*k)) {
            self.err(
                roi,
                "A ref object can not be combined with other properties of its type.",
            );
        }
        info
    }

    /// The reference's `parseChildArray`: array error at the parent, element errors at the element.
    fn child_array<'a>(
        &mut self,
        parent: &'a Map<String, J>,
        key: &str,
        obj_code: u32,
        arr_code: u32,
        required: bool,
    ) -> Option<Vec<(usize, &'a Map<String, J>)>> {
        match parent.get(key) {
            None => {
                if required {
                    self.err(
                        arr_code,
                        format!("'{key}' is required and must be an array."),
                    );
                }
                None
            }
            Some(J::Array(a)) => {
                let mut out = Vec::new();
                for (i, e) in a.iter().enumerate() {
                    match e {
                        J::Object(m) => out.push((i, m)),
                        _ => {
                            self.push(key);
                            self.push(i.to_string());
                            self.err(obj_code, format!("'{key}' elements must be objects."));
                            self.pop();
                            self.pop();
                        }
                    }
                }
                Some(out)
            }
            Some(_) => {
                self.err(arr_code, format!("'{key}' must be an array."));
                None
            }
        }
    }

    pub fn parse_root(&mut self, root: &J) -> Script {
        let mut script = Script::default();
        let empty = Map::new();
        let o = root.as_object().unwrap_or(&empty);
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
            false,
        );
        match o.get("type") {
            Some(J::String(s)) => {
                if s != "not-things_timeseq_script" {
                    self.err(102, format!("'type' '{s}' is not supported."));
                }
            }
            _ => self.err(101, "'type' is required and must be a string."),
        }
        match o.get("version") {
            Some(J::String(s)) => match s.as_str() {
                "1.0.0" => self.version = V100,
                "1.1.0" => self.version = V110,
                "1.2.0" => self.version = V120,
                _ => {
                    self.version = 0;
                    self.err(104, format!("'version' '{s}' is not supported."));
                }
            },
            _ => {
                self.version = 0;
                self.err(103, "'version' is required and must be a string.");
            }
        }
        if let Some(items) = self.child_array(o, "timelines", 106, 105, true) {
            self.push("timelines");
            for (i, t) in items {
                self.push(i.to_string());
                let tl = self.parse_timeline(t);
                script.timelines.push(tl);
                self.pop();
            }
            self.pop();
        }
        if let Some(items) = self.child_array(o, "global-actions", 126, 125, false) {
            self.push("global-actions");
            for (i, t) in items {
                self.push(i.to_string());
                let act = self.parse_action(t, false).1;
                script.global_actions.push(act);
                self.pop();
            }
            self.pop();
        }
        if let Some(items) = self.child_array(o, "input-triggers", 124, 123, false) {
            self.push("input-triggers");
            for (i, t) in items {
                self.push(i.to_string());
                let it = self.parse_input_trigger(t);
                script.input_triggers.push(it);
                self.pop();
            }
            self.pop();
        }
        if o.contains_key("sequences") {
            self.gate(V110, "'sequences'");
        }
        if let Some(items) = self.child_array(o, "sequences", 132, 131, false) {
            self.push("sequences");
            let mut ids: Vec<String> = Vec::new();
            for (i, t) in items {
                self.push(i.to_string());
                let seq = self.parse_sequence(t);
                self.dup_check(&mut ids, &seq.id);
                script.sequences.push(seq);
                self.pop();
            }
            self.pop();
        }
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
        script
    }

    fn dup_check(&mut self, ids: &mut Vec<String>, id: &str) {
        if ids.iter().any(|x| x == id) {
            self.err(9, format!("Id '{id}' has already been used."));
        } else if !id.is_empty() {
            ids.push(id.to_string());
        }
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
            false,
        );
        macro_rules! pool {
            ($key:expr, $obj:expr, $arr:expr, $field:ident, |$p:ident, $m:ident| $body:expr) => {{
                if let Some(items) = self.child_array(cp, $key, $obj, $arr, false) {
                    self.push($key);
                    let mut ids = Vec::new();
                    for (i, m) in items {
                        self.push(i.to_string());
                        let $p = &mut *self;
                        let $m = m;
                        let (id, item) = $body;
                        self.dup_check(&mut ids, &id);
                        s.$field.push((id, item));
                        self.pop();
                    }
                    self.pop();
                }
            }};
        }
        pool!("segment-blocks", 108, 107, blocks, |p, m| p.parse_block(m));
        pool!("segments", 110, 109, segments, |p, m| p
            .parse_segment(m, true));
        pool!("inputs", 112, 111, inputs, |p, m| p
            .parse_io_obj(m, "input", true, false));
        pool!("outputs", 114, 113, outputs, |p, m| p
            .parse_io_obj(m, "output", true, false));
        pool!("calcs", 116, 115, calcs, |p, m| p.parse_calc(m, true));
        pool!("values", 118, 117, values, |p, m| p
            .parse_value_obj(m, true, false));
        pool!("actions", 120, 119, actions, |p, m| {
            let a = p.parse_action(m, true);
            (a.0, a.1)
        });
        pool!("ifs", 122, 121, ifs, |p, m| p.parse_if(m, true));
        if cp.contains_key("tunings") {
            self.gate(V110, "'tunings'");
        }
        pool!("tunings", 130, 129, tunings, |p, m| p.parse_tuning(m, true));
    }

    fn parse_timeline(&mut self, t: &Map<String, J>) -> Timeline {
        self.check_keys(t, &["time-scale", "lanes", "loop-lock"], false);
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
                    tl.time_scale = Some(self.parse_time_scale(ts));
                    self.pop();
                }
            }
        }
        if let Some(items) = self.child_array(t, "lanes", 202, 201, true) {
            self.push("lanes");
            for (i, l) in items {
                self.push(i.to_string());
                let lane = self.parse_lane(l);
                tl.lanes.push(lane);
                self.pop();
            }
            self.pop();
        }
        if let Some(v) = t.get("loop-lock") {
            match v.as_bool() {
                Some(b) => tl.loop_lock = b,
                None => self.err(203, "'loop-lock' must be a boolean."),
            }
        }
        tl
    }

    fn parse_time_scale(&mut self, ts: &Map<String, J>) -> TimeScale {
        self.check_keys(ts, &["sample-rate", "bpm", "bpb"], false);
        let mut sc = TimeScale::default();
        for (key, code) in [("sample-rate", 303), ("bpm", 304), ("bpb", 305)] {
            if let Some(v) = ts.get(key) {
                match v.as_u64() {
                    Some(n) if n > 0 && n <= i32::MAX as u64 => match key {
                        "sample-rate" => sc.sample_rate = Some(n),
                        "bpm" => sc.bpm = Some(n),
                        _ => sc.bpb = Some(n),
                    },
                    _ => self.err(code, format!("'{key}' must be a positive integer number.")),
                }
            }
        }
        if sc.sample_rate.is_none() && sc.bpm.is_none() {
            self.err(307, "One of 'sample-rate' or 'bpm' is required.");
        } else if sc.bpb.is_some() && sc.bpm.is_none() {
            self.err(306, "'bpm' must be set if 'bpb' is set.");
        }
        sc
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

    /// Optional non-empty string (type error `tcode`, empty `ecode`). Returns "" when absent/invalid.
    fn opt_str(&mut self, o: &Map<String, J>, key: &str, tcode: u32, ecode: u32) -> String {
        match o.get(key) {
            None => String::new(),
            Some(J::String(s)) => {
                if s.is_empty() {
                    self.err(ecode, format!("'{key}' can not be an empty string."));
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
            false,
        );
        let auto_start = self.opt_bool(l, "auto-start", 400, true);
        let looping = self.opt_bool(l, "loop", 401, false);
        let repeat = match l.get("repeat") {
            None => 0,
            Some(v) => match v.as_u64() {
                Some(n) => n,
                None => {
                    self.err(402, "'repeat' must be an unsigned number.");
                    0
                }
            },
        };
        let start_trigger = self.opt_str(l, "start-trigger", 403, 404);
        let restart_trigger = self.opt_str(l, "restart-trigger", 405, 406);
        let stop_trigger = self.opt_str(l, "stop-trigger", 407, 408);
        let segments = self.parse_segment_list(l, 410, 409);
        let disable_ui = self.opt_bool(l, "disable-ui", 411, false);
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

    fn parse_segment_list(&mut self, o: &Map<String, J>, obj: u32, arr: u32) -> Vec<Segment> {
        let mut out = Vec::new();
        if let Some(items) = self.child_array(o, "segments", obj, arr, true) {
            self.push("segments");
            for (i, s) in items {
                self.push(i.to_string());
                let (_, seg) = self.parse_segment(s, false);
                out.push(seg);
                self.pop();
            }
            self.pop();
        }
        out
    }

    fn parse_block(&mut self, o: &Map<String, J>) -> (String, Block) {
        self.check_keys(o, &["segments", "repeat"], true);
        let info = self.id_ref(o, true, &["segments", "repeat"], 700);
        let repeat = match o.get("repeat") {
            None => None,
            Some(v) => match v.as_u64() {
                Some(n) if n > 0 && n <= i32::MAX as u64 => Some(n),
                _ => {
                    self.err(703, "'repeat' must be a positive number.");
                    None
                }
            },
        };
        let segments = self.parse_segment_list(o, 702, 701);
        (info.id, Block { segments, repeat })
    }

    fn parse_segment(&mut self, o: &Map<String, J>, pool: bool) -> (String, Segment) {
        const OWN: [&str; 4] = ["duration", "actions", "disable-ui", "segment-block"];
        self.check_keys(o, &OWN, true);
        let info = self.id_ref(o, pool, &OWN, 600);
        if let Some(r) = info.reference {
            return (info.id, Segment::Ref(r));
        }
        let mut result = Segment::Full {
            duration: Duration::Samples(DurAmount::Samples(1)),
            actions: Vec::new(),
            disable_ui: false,
        };
        let mut block_ref = None;
        if !o.contains_key("segment-block") {
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
            let disable_ui = self.opt_bool(o, "disable-ui", 608, false);
            result = Segment::Full {
                duration,
                actions: Vec::new(),
                disable_ui,
            };
        } else if !o.contains_key("duration") && !o.contains_key("disable-ui") {
            match o.get("segment-block") {
                Some(J::String(s)) if !s.is_empty() => block_ref = Some(s.clone()),
                Some(J::String(_)) => self.err(605, "'segment-block' must be a non-empty string."),
                _ => self.err(604, "'segment-block' must be a non-empty string."),
            }
        } else {
            self.err(
                607,
                "A segment can not have both a 'segment-block' and a 'duration' or 'disable-ui'.",
            );
        }
        let mut actions = Vec::new();
        if let Some(a) = o.get("actions") {
            match a {
                J::Array(a) => {
                    self.push("actions");
                    for (i, s) in a.iter().enumerate() {
                        self.push(i.to_string());
                        match s {
                            J::Object(s) => {
                                let act = self.parse_action(s, false).1;
                                actions.push(act);
                            }
                            _ => self.err(603, "'actions' elements must be objects."),
                        }
                        self.pop();
                    }
                    self.pop();
                }
                _ => self.err(602, "'actions' must be an array."),
            }
        }
        if let Some(b) = block_ref {
            return (info.id, Segment::Block { block: b, actions });
        }
        if o.contains_key("segment-block") {
            // Invalid block link: only reached with errors, so the placeholder is never built.
            return (
                info.id,
                Segment::Block {
                    block: String::new(),
                    actions,
                },
            );
        }
        if let Segment::Full { actions: a, .. } = &mut result {
            *a = actions;
        }
        (info.id, result)
    }

    fn parse_duration(&mut self, d: &Map<String, J>) -> Duration {
        self.check_keys(d, &["samples", "millis", "bars", "beats", "hz"], false);
        let mut count = 0;
        let mut result = Duration::Samples(DurAmount::Samples(1));
        if let Some(v) = d.get("samples") {
            count += 1;
            match v {
                J::Object(_) => {
                    if let Some(val) = self.parse_value_any(v, "samples", 800) {
                        result = Duration::Samples(DurAmount::Value(val));
                    }
                }
                _ => match v.as_u64() {
                    Some(n) if n > 0 => result = Duration::Samples(DurAmount::Samples(n)),
                    _ => self.err(
                        800,
                        "'samples' must be a positive integer number or a value object.",
                    ),
                },
            }
        }
        if let Some(v) = d.get("millis") {
            count += 1;
            if let Some(a) = self.dur_float(v, "millis", 801, false) {
                result = Duration::Millis(a);
            }
        }
        let mut bars = None;
        if let Some(v) = d.get("bars") {
            match v.as_u64() {
                Some(n) if n > 0 => bars = Some(n),
                _ => self.err(802, "'bars' must be a positive integer number."),
            }
        }
        let mut beats_const: Option<f32> = None;
        let mut beats_value = false;
        if let Some(v) = d.get("beats") {
            count += 1;
            if let Some(a) = self.dur_float(v, "beats", 803, true) {
                match &a {
                    DurAmount::Const(b) => beats_const = Some(*b),
                    _ => beats_value = true,
                }
                result = Duration::Beats(a, bars);
            }
        }
        if let Some(v) = d.get("hz") {
            count += 1;
            if let Some(a) = self.dur_float(v, "hz", 804, false) {
                result = Duration::Hz(a);
            }
        }
        if count == 0 {
            self.err(
                805,
                "Either 'samples', 'millis', 'beats' or 'hz' must be used.",
            );
        } else if count > 1 {
            self.err(
                806,
                "Only one of 'samples', 'millis', 'beats' or 'hz' can be used at a time.",
            );
        } else if bars.is_some() && beats_value {
            self.err(807, "'bars' can only be used with a constant 'beats'.");
        } else if bars.is_some() && beats_const.is_none() {
            self.err(807, "'bars' can not be used without 'beats'.");
        } else if bars.is_none() && beats_const == Some(0.0) {
            self.err(810, "'beats' can not be 0 unless 'bars' is also used.");
        }
        result
    }

    fn dur_float(&mut self, v: &J, key: &str, code: u32, allow_zero: bool) -> Option<DurAmount> {
        if let J::Number(n) = v {
            let f = n.as_f64().unwrap_or(0.0) as f32;
            if f > 0.0 || (allow_zero && f >= 0.0) {
                return Some(DurAmount::Const(f));
            }
        }
        if v.is_object() {
            return self.parse_value_any(v, key, code).map(DurAmount::Value);
        }
        self.err(
            code,
            format!("'{key}' must be a positive number or a value object."),
        );
        None
    }

    /// The reference's `parseValue`: pushes `key`; a number is `{voltage}`, a string `{note}`,
    /// an object a full value; anything else is error `code` at the pushed location.
    fn parse_value_any(&mut self, v: &J, key: &str, code: u32) -> Option<Val> {
        self.push(key);
        let r = match v {
            J::Object(m) => Some(self.parse_value_obj(m, false, false).1),
            J::Number(_) => {
                let mut m = Map::new();
                m.insert("voltage".to_string(), v.clone());
                Some(self.parse_value_obj(&m, false, true).1)
            }
            J::String(_) => {
                let mut m = Map::new();
                m.insert("note".to_string(), v.clone());
                Some(self.parse_value_obj(&m, false, true).1)
            }
            _ => {
                self.err(code, format!("'{key}' must be a value."));
                None
            }
        };
        self.pop();
        r
    }

    /// A required value property: missing is `code` at the parent, a wrong type `code` at the key.
    fn value_req(&mut self, o: &Map<String, J>, key: &str, code: u32) -> Val {
        match o.get(key) {
            Some(v) => self
                .parse_value_any(v, key, code)
                .unwrap_or(Val::Ref(String::new())),
            None => {
                self.err(code, format!("'{key}' is required and must be a value."));
                Val::Ref(String::new())
            }
        }
    }

    pub(crate) fn parse_value_obj(
        &mut self,
        o: &Map<String, J>,
        pool: bool,
        _shorthand: bool,
    ) -> (String, Val) {
        const OWN: [&str; 10] = [
            "voltage", "no-limit", "note", "variable", "input", "output", "rand", "sequence",
            "calc", "quantize",
        ];
        self.check_keys(o, &OWN, true);
        let info = self.id_ref(o, pool, &OWN, 1400);
        if let Some(r) = info.reference {
            return (info.id, Val::Ref(r));
        }
        let mut count = 0;
        let mut src = Src::Const(0.0);
        let mut no_limit = None;
        if let Some(v) = o.get("no-limit") {
            match v {
                J::Bool(b) => no_limit = Some(*b),
                _ => self.err(1416, "'no-limit' must be a boolean."),
            }
        }
        if let Some(v) = o.get("voltage") {
            count += 1;
            match v {
                J::Number(num) => {
                    let f = num.as_f64().unwrap_or(0.0) as f32;
                    if no_limit != Some(true) && !(-10.0..=10.0).contains(&f) {
                        self.err(
                            1405,
                            "'voltage' must be a decimal number between -10 and 10.",
                        );
                    }
                    src = Src::Const(f);
                }
                _ => self.err(
                    1404,
                    "'voltage' must be a decimal number between -10 and 10.",
                ),
            }
        } else if no_limit.is_some() {
            self.err(1417, "'no-limit' can only be used with a 'voltage' value.");
        }
        if let Some(v) = o.get("note") {
            count += 1;
            match v {
                J::String(s) => {
                    if !note_format_ok(s) {
                        self.err(1409, format!("'{s}' is not a valid note."));
                    }
                    if let Some(f) = parse_note(s) {
                        src = Src::Const(f);
                    }
                }
                _ => self.err(1408, "'note' must be a string."),
            }
        }
        if let Some(v) = o.get("variable") {
            count += 1;
            match v {
                J::String(s) => {
                    if s.is_empty() {
                        self.err(1407, "'variable' must be a non-empty string.");
                    }
                    src = Src::Variable(s.clone());
                }
                _ => self.err(1406, "'variable' must be a non-empty string."),
            }
        }
        if let Some(v) = o.get("input") {
            count += 1;
            src = Src::Input(self.parse_io(v, "input", 1410));
        }
        if let Some(v) = o.get("output") {
            count += 1;
            src = Src::Output(self.parse_io(v, "output", 1411));
        }
        if let Some(v) = o.get("rand") {
            count += 1;
            match v {
                J::Object(m) => {
                    self.push("rand");
                    self.check_keys(m, &["lower", "upper"], false);
                    let lo = self.value_req(m, "lower", 1700);
                    let hi = self.value_req(m, "upper", 1701);
                    self.pop();
                    src = Src::Rand(lo, hi);
                }
                _ => self.err(1412, "'rand' must be an object."),
            }
        }
        if let Some(v) = o.get("sequence") {
            self.gate(V120, "value 'sequence'");
            count += 1;
            self.push("sequence");
            src = self.parse_sequence_value(v);
            self.pop();
        }
        if count == 0 {
            self.err(1402, "One of 'voltage', 'note', 'variable', 'input', 'output', 'rand' or 'sequence' must be set.");
        } else if count > 1 {
            self.err(1403, "Only one of 'voltage', 'note', 'variable', 'input', 'output', 'rand' or 'sequence' can be used.");
        }
        let mut calcs = Vec::new();
        if let Some(items) = self.child_array(o, "calc", 1414, 1413, false) {
            self.push("calc");
            for (i, c) in items {
                self.push(i.to_string());
                calcs.push(self.parse_calc(c, false).1);
                self.pop();
            }
            self.pop();
        }
        let quantize = self.opt_bool(o, "quantize", 1415, false);
        (
            info.id,
            Val::Full(Box::new(ValFull {
                src,
                calcs,
                quantize,
            })),
        )
    }

    fn parse_sequence_value(&mut self, v: &J) -> Src {
        let mut id = String::new();
        let mut dirs = [Dir::None, Dir::Forward];
        let mut wrap = true;
        match v {
            J::String(s) => {
                if s.is_empty() {
                    self.err(2301, "'sequence' can not be an empty string.");
                }
                id = s.clone();
            }
            J::Object(m) => {
                match m.get("id") {
                    Some(J::String(s)) if !s.is_empty() => id = s.clone(),
                    Some(J::String(_)) => self.err(2303, "'id' can not be an empty string."),
                    _ => self.err(2302, "'id' is required and must be a string."),
                }
                for (i, key) in ["move-before", "move-after"].iter().enumerate() {
                    if let Some(d) = m.get(*key) {
                        match d {
                            J::String(s) => match parse_dir(s) {
                                Some(d) => dirs[i] = d,
                                None => {
                                    dirs[i] = Dir::None;
                                    self.err(2305, format!("'{key}' must be 'forward', 'backward', 'random' or 'none'."))
                                }
                            },
                            _ => {
                                dirs[i] = Dir::None;
                                self.err(2304, format!("'{key}' must be a string."))
                            }
                        }
                    }
                }
                wrap = self.opt_bool(m, "wrap", 2306, true);
            }
            _ => self.err(
                2307,
                "A 'sequence' value should either be a string or an object.",
            ),
        }
        Src::Seq {
            id,
            before: dirs[0],
            after: dirs[1],
            wrap,
        }
    }

    /// The reference's `parseInput`/`parseOutput`: an object is pushed at `key`; a number is
    /// `{index}` located at the parent; anything else is `code` at the parent.
    fn parse_io(&mut self, v: &J, key: &str, code: u32) -> Io {
        let kind = if key == "input" || key == "inputs" {
            "input"
        } else {
            "output"
        };
        match v {
            J::Object(m) => {
                self.push(key);
                let r = self.parse_io_obj(m, kind, false, false).1;
                self.pop();
                r
            }
            J::Number(_) => {
                let mut m = Map::new();
                m.insert("index".to_string(), v.clone());
                self.parse_io_obj(&m, kind, false, true).1
            }
            _ => {
                self.err(code, format!("'{key}' must be an object."));
                Io::Full(1, 1)
            }
        }
    }

    fn parse_io_obj(
        &mut self,
        m: &Map<String, J>,
        kind: &str,
        pool: bool,
        _shorthand: bool,
    ) -> (String, Io) {
        let base = if kind == "input" { 1600 } else { 1500 };
        self.check_keys(m, &["index", "channel"], true);
        let info = self.id_ref(m, pool, &["index", "channel"], base);
        if let Some(r) = info.reference {
            return (info.id, Io::Ref(r));
        }
        let index = match m.get("index").and_then(|v| v.as_u64()) {
            Some(n) if (1..=8).contains(&n) => n as u8,
            Some(_) => {
                self.err(base + 2, "'index' must be a number between 1 and 8.");
                1
            }
            None => {
                self.err(
                    base + 1,
                    "'index' is required and must be a (non-decimal) number between 1 and 8.",
                );
                1
            }
        };
        let channel = match m.get("channel") {
            None => 1,
            Some(v) => match v.as_u64() {
                Some(n) if (1..=16).contains(&n) => n as u8,
                Some(_) => {
                    self.err(base + 4, "'channel' must be a number between 1 and 16.");
                    1
                }
                None => {
                    self.err(base + 3, "'channel' must be a number between 1 and 16.");
                    1
                }
            },
        };
        (info.id, Io::Full(index, channel))
    }

    fn parse_calc(&mut self, m: &Map<String, J>, pool: bool) -> (String, Calc) {
        const OWN: [&str; 13] = [
            "add", "sub", "div", "mult", "max", "min", "remain", "frac", "trunc", "round",
            "quantize", "sign", "vtof",
        ];
        self.check_keys(m, &OWN, true);
        let info = self.id_ref(m, pool, &OWN, 1800);
        if let Some(r) = info.reference {
            return (info.id, Calc::Ref(r));
        }
        let mut count = 0;
        let mut calc = Calc::Trunc;
        let bins = [
            ("add", BinOp::Add, 1803, 0),
            ("sub", BinOp::Sub, 1804, 0),
            ("div", BinOp::Div, 1805, 0),
            ("mult", BinOp::Mult, 1806, 0),
            ("max", BinOp::Max, 1807, V110),
            ("min", BinOp::Min, 1808, V110),
            ("remain", BinOp::Remain, 1809, V110),
        ];
        for (key, op, code, ver) in bins {
            if let Some(v) = m.get(key) {
                if ver > 0 {
                    self.gate(ver, &format!("calc '{key}'"));
                }
                count += 1;
                let val = self
                    .parse_value_any(v, key, code)
                    .unwrap_or(Val::Ref(String::new()));
                calc = Calc::Bin(op, val);
            }
        }
        if let Some(v) = m.get("trunc") {
            self.gate(V110, "calc 'trunc'");
            count += 1;
            calc = Calc::Trunc;
            if v != &J::Bool(true) {
                self.err(
                    1810,
                    "'trunc' must be a boolean, with its value set to true.",
                );
            }
        }
        if let Some(v) = m.get("frac") {
            self.gate(V110, "calc 'frac'");
            count += 1;
            calc = Calc::Frac;
            if v != &J::Bool(true) {
                self.err(
                    1811,
                    "'frac' must be a boolean, with its value set to true.",
                );
            }
        }
        if let Some(v) = m.get("round") {
            self.gate(V110, "calc 'round'");
            count += 1;
            calc = Calc::Round(RoundKind::Near);
            match v {
                J::String(s) => match s.as_str() {
                    "up" => calc = Calc::Round(RoundKind::Up),
                    "down" => calc = Calc::Round(RoundKind::Down),
                    "near" => calc = Calc::Round(RoundKind::Near),
                    _ => self.err(1813, "'round' must be 'up', 'down' or 'near'."),
                },
                _ => self.err(1812, "'round' must be a string."),
            }
        }
        if let Some(v) = m.get("quantize") {
            self.gate(V110, "calc 'quantize'");
            count += 1;
            match v {
                J::Object(t) => {
                    self.push("quantize");
                    let (_, t) = self.parse_tuning(t, false);
                    self.pop();
                    calc = Calc::Quantize(t);
                }
                _ => {
                    calc = Calc::Quantize(Tuning::Full(vec![0.0]));
                    self.err(1814, "'quantize' must be a tuning object.")
                }
            }
        }
        if let Some(v) = m.get("sign") {
            self.gate(V110, "calc 'sign'");
            count += 1;
            calc = Calc::Sign(true);
            match v {
                J::String(s) => match s.as_str() {
                    "pos" => calc = Calc::Sign(true),
                    "neg" => calc = Calc::Sign(false),
                    _ => self.err(1817, "'sign' must be 'pos' or 'neg'."),
                },
                _ => self.err(1816, "'sign' must be a string."),
            }
        }
        if let Some(v) = m.get("vtof") {
            self.gate(V110, "calc 'vtof'");
            count += 1;
            calc = Calc::Vtof;
            if v != &J::Bool(true) {
                self.err(
                    1818,
                    "'vtof' must be a boolean, with its value set to true.",
                );
            }
        }
        if count == 0 {
            self.err(1801, "A calc needs an operation.");
        } else if count > 1 {
            self.err(1802, "At most one calc operation may be set.");
        }
        (info.id, calc)
    }

    fn parse_tuning(&mut self, m: &Map<String, J>, pool: bool) -> (String, Tuning) {
        self.check_keys(m, &["notes"], true);
        let info = self.id_ref(m, pool, &["notes"], 2100);
        if let Some(r) = info.reference {
            return (info.id, Tuning::Ref(r));
        }
        let mut notes: Vec<f32> = Vec::new();
        match m.get("notes") {
            Some(J::Array(a)) => {
                self.push("notes");
                for (i, n) in a.iter().enumerate() {
                    self.push(i.to_string());
                    match n {
                        J::Number(x) => {
                            let f = x.as_f64().unwrap_or(0.0) as f32;
                            let mut fr = if f.is_infinite() {
                                0.0f32.copysign(f)
                            } else {
                                (f - f.trunc()).copysign(f)
                            };
                            if fr < 0.0 {
                                fr += 1.0;
                            }
                            notes.push(fr);
                        }
                        J::String(s) => {
                            let b = s.as_bytes();
                            if b.is_empty() || b.len() > 2 {
                                self.err(2104, format!("'{s}' is not a valid tuning note."));
                            } else {
                                let mut idx = 0;
                                match note_index(b[0]) {
                                    Some(i) => idx = i,
                                    None => self.err(
                                        2104,
                                        "A note value must start with a valid note name (A-G).",
                                    ),
                                }
                                if b.len() == 2 {
                                    match b[1] {
                                        b'+' => idx += 1,
                                        b'-' => idx -= 1,
                                        _ => self.err(
                                            2104,
                                            "The second character of a note must be + or -.",
                                        ),
                                    }
                                }
                                if idx > 11 {
                                    idx -= 12;
                                } else if idx < 0 {
                                    idx += 12;
                                }
                                notes.push(idx as f32 / 12.0);
                            }
                        }
                        _ => self.err(
                            2103,
                            "'notes' elements must be either 1V/Oct floats or note name strings.",
                        ),
                    }
                    self.pop();
                }
                if a.is_empty() {
                    self.err(2102, "'notes' must contain at least one element.");
                }
                self.pop();
            }
            _ => self.err(2101, "'notes' is required and must be an array."),
        }
        notes.sort_by(|a, b| a.partial_cmp(b).unwrap_or(std::cmp::Ordering::Equal));
        notes.dedup();
        (info.id, Tuning::Full(notes))
    }

    pub(crate) fn parse_if(&mut self, m: &Map<String, J>, pool: bool) -> (String, If) {
        const OWN: [&str; 9] = [
            "eq",
            "ne",
            "lt",
            "lte",
            "gt",
            "gte",
            "and",
            "or",
            "tolerance",
        ];
        let info = self.id_ref(m, pool, &OWN, 500);
        if let Some(r) = info.reference {
            return (info.id, If::Ref(r));
        }
        self.check_keys(m, &OWN, true);
        let mut count = 0;
        let mut result = If::Logic {
            and: true,
            children: vec![],
        };
        let mut op_found: Option<(CmpOp, Val, Val)> = None;
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
                count += 1;
                match v {
                    J::Array(a) => {
                        self.push(key);
                        if a.len() == 2 {
                            let x = self
                                .parse_value_any(&a[0], "0", 512)
                                .unwrap_or(Val::Ref(String::new()));
                            let y = self
                                .parse_value_any(&a[1], "1", 512)
                                .unwrap_or(Val::Ref(String::new()));
                            op_found = Some((op, x, y));
                        } else {
                            self.err(
                                511,
                                format!(
                                    "Exactly two value items are expected in the '{key}' array."
                                ),
                            );
                        }
                        self.pop();
                    }
                    _ => self.err(code, format!("'{key}' must be an array.")),
                }
            }
        }
        for (key, and, code) in [("and", true, 507), ("or", false, 508)] {
            if let Some(v) = m.get(key) {
                count += 1;
                match v {
                    J::Array(a) => {
                        self.push(key);
                        if a.len() > 1 {
                            let mut children = Vec::new();
                            let empty = Map::new();
                            for (i, e) in a.iter().enumerate() {
                                self.push(i.to_string());
                                let c = e.as_object().unwrap_or(&empty);
                                children.push(self.parse_if(c, false).1);
                                self.pop();
                            }
                            if a.len() > 2 {
                                self.gate(
                                    V120,
                                    &format!("{key} ifs with more than two conditions"),
                                );
                            }
                            result = If::Logic { and, children };
                        } else {
                            self.err(
                                511,
                                format!("At least two if items are expected in the '{key}' array."),
                            );
                        }
                        self.pop();
                    }
                    _ => self.err(code, format!("'{key}' must be an array.")),
                }
            }
        }
        let mut tol = None;
        if let Some(t) = m.get("tolerance") {
            match t.as_f64() {
                Some(f) if (f as f32) >= 0.0 => tol = Some(f as f32),
                _ => self.err(513, "'tolerance' must be a positive number."),
            }
        }
        if count == 0 {
            self.err(
                509,
                "One of 'eq', 'ne', 'lt', 'lte', 'gt', 'gte', 'and' or 'or' is required.",
            );
        } else if count > 1 {
            self.err(
                510,
                "Only one of 'eq', 'ne', 'lt', 'lte', 'gt', 'gte', 'and' or 'or' is allowed.",
            );
        }
        if let Some((op, a, b)) = op_found {
            if !matches!(result, If::Logic { ref children, .. } if !children.is_empty()) {
                result = If::Cmp { op, a, b, tol };
            }
        }
        (info.id, result)
    }

    fn parse_input_trigger(&mut self, t: &Map<String, J>) -> (String, Io) {
        self.check_keys(t, &["id", "input"], false);
        let id = match t.get("id") {
            Some(J::String(s)) => {
                if s.is_empty() {
                    self.err(1901, "'id' can not be an empty string.");
                }
                s.clone()
            }
            _ => {
                self.err(1900, "'id' is required and must be a string.");
                String::new()
            }
        };
        let io = match t.get("input") {
            Some(v) => self.parse_io(v, "input", 1902),
            None => {
                self.err(1902, "'input' is required and must be an input object.");
                Io::Full(1, 1)
            }
        };
        (id, io)
    }

    /// Parses an action; returns (pool id, action).
    fn parse_action(&mut self, m: &Map<String, J>, pool: bool) -> (String, Action) {
        self.check_keys(m, &ACTION_OWN, true);
        let info = self.id_ref(m, pool, &ACTION_OWN, 900);
        if let Some(r) = info.reference {
            return (
                info.id,
                Action {
                    reference: Some(r),
                    timing: Timing::Start,
                    cond: None,
                    op: Op::None,
                },
            );
        }
        let timing = match m.get("timing") {
            Some(J::String(s)) => match s.as_str() {
                "start" => Timing::Start,
                "end" => Timing::End,
                "glide" => Timing::Glide,
                "gate" => Timing::Gate,
                _ => {
                    self.err(
                        901,
                        "timing must be either 'start', 'end', 'glide' or 'gate'.",
                    );
                    Timing::Start
                }
            },
            _ => Timing::Start,
        };
        let mut action_count = 0;
        // "parsed" flags, as the reference's optional fields.
        let mut op = Op::None;
        let mut ops_parsed = 0;
        for key in [
            "set-value",
            "set-variable",
            "set-polyphony",
            "set-label",
            "assert",
            "move-sequence",
            "add-to-sequence",
            "remove-from-sequence",
        ] {
            if let Some(v) = m.get(key) {
                if matches!(
                    key,
                    "move-sequence" | "add-to-sequence" | "remove-from-sequence"
                ) {
                    self.gate(V120, &format!("'{key}'"));
                }
                action_count += 1;
                match v {
                    J::Object(o) => {
                        self.push(key);
                        let parsed = self.parse_op_object(key, o);
                        self.pop();
                        ops_parsed += 1;
                        if matches!(op, Op::None) {
                            op = parsed;
                        }
                    }
                    _ => {
                        let code = match key {
                            "set-value" => 902,
                            "set-variable" => 903,
                            "set-polyphony" => 904,
                            "set-label" => 905,
                            "assert" => 906,
                            "move-sequence" => 929,
                            "add-to-sequence" => 932,
                            _ => 933,
                        };
                        self.err(code, format!("'{key}' must be an object."));
                    }
                }
            }
        }
        if let Some(v) = m.get("trigger") {
            action_count += 1;
            match v {
                J::String(s) => {
                    if s.is_empty() {
                        self.err(908, "'trigger' can not be an empty string.");
                    } else {
                        ops_parsed += 1;
                        if matches!(op, Op::None) {
                            op = Op::Trigger(s.clone());
                        }
                    }
                }
                _ => self.err(907, "'trigger' must be a string."),
            }
        }
        if let Some(v) = m.get("clear-sequence") {
            self.gate(V120, "'clear-sequence'");
            action_count += 1;
            match v {
                J::String(s) => {
                    if s.is_empty() {
                        self.err(931, "'clear-sequence' can not be an empty string.");
                    } else {
                        ops_parsed += 1;
                        if matches!(op, Op::None) {
                            op = Op::Clear(s.clone());
                        }
                    }
                }
                _ => self.err(930, "'clear-sequence' must be a string."),
            }
        }
        let start_value = m.get("start-value").map(|v| {
            self.parse_value_any(v, "start-value", 909)
                .unwrap_or(Val::Ref(String::new()))
        });
        let end_value = m.get("end-value").map(|v| {
            self.parse_value_any(v, "end-value", 910)
                .unwrap_or(Val::Ref(String::new()))
        });
        let mut ease = None;
        if let Some(v) = m.get("ease-factor") {
            match v {
                J::Number(n) => {
                    let f = n.as_f64().unwrap_or(0.0) as f32;
                    if !(-5.0..=5.0).contains(&f) {
                        self.err(912, "'ease-factor' must be a number between -5.0 and 5.0.");
                    }
                    ease = Some(f);
                }
                _ => self.err(911, "'ease-factor' must be a number between -5.0 and 5.0."),
            }
        }
        let mut algo = None;
        if let Some(v) = m.get("ease-algorithm") {
            match v {
                J::String(s) if s == "pow" => algo = Some(true),
                J::String(s) if s == "sig" => algo = Some(false),
                _ => self.err(
                    913,
                    "'ease-algorithm' must be either the string 'pow' or 'sig'.",
                ),
            }
        }
        let mut ratio = None;
        if let Some(v) = m.get("gate-high-ratio") {
            match v {
                J::Number(n) => {
                    let f = n.as_f64().unwrap_or(0.0) as f32;
                    if !(0.0..=1.0).contains(&f) {
                        self.err(
                            927,
                            "'gate-high-ratio' must be a number between 0.0 and 1.0.",
                        );
                    }
                    ratio = Some(f);
                }
                _ => self.err(
                    926,
                    "'gate-high-ratio' must be a number between 0.0 and 1.0.",
                ),
            }
        }
        let output = m.get("output").map(|v| self.parse_io(v, "output", 914));
        let mut variable = String::new();
        if let Some(v) = m.get("variable") {
            match v {
                J::String(s) => {
                    if s.is_empty() {
                        self.err(916, "'variable' can not be an empty string.");
                    }
                    variable = s.clone();
                }
                _ => self.err(915, "'variable' must be a string."),
            }
        }
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
        match timing {
            Timing::Glide => {
                if ops_parsed > 0 || ratio.is_some() {
                    self.err(
                        918,
                        "Operations and 'gate-high-ratio' can not be used with 'glide' timing.",
                    );
                }
                if start_value.is_none() || end_value.is_none() {
                    self.err(
                        919,
                        "'start-value' and 'end-value' must be present for 'glide' timing.",
                    );
                }
                if output.is_none() && variable.is_empty() {
                    self.err(
                        920,
                        "Either 'output' or 'variable' must be present for 'glide' timing.",
                    );
                }
                if output.is_some() && !variable.is_empty() {
                    self.err(
                        921,
                        "Only one of 'output' and 'variable' can be used for 'glide' timing.",
                    );
                }
                let target = match output {
                    Some(o) => Target::Output(o),
                    None => Target::Variable(variable),
                };
                op = Op::Glide {
                    start: start_value.unwrap_or(Val::Ref(String::new())),
                    end: end_value.unwrap_or(Val::Ref(String::new())),
                    target,
                    ease: ease.unwrap_or(0.0),
                    pow: algo.unwrap_or(false),
                };
            }
            Timing::Gate => {
                if ops_parsed > 0
                    || start_value.is_some()
                    || end_value.is_some()
                    || ease.is_some()
                    || algo.is_some()
                {
                    self.err(
                        925,
                        "Only 'output', 'gate-high-ratio' and 'if' can be used with 'gate' timing.",
                    );
                }
                if output.is_none() {
                    self.err(928, "'output' must be present for 'gate' timing.");
                }
                if !variable.is_empty() {
                    self.err(925, "'variable' can only be used with 'glide' timing.");
                }
                op = Op::Gate {
                    output: output.unwrap_or(Io::Full(1, 1)),
                    ratio: ratio.unwrap_or(0.5),
                };
            }
            Timing::Start | Timing::End => {
                if start_value.is_some()
                    || end_value.is_some()
                    || ease.is_some()
                    || algo.is_some()
                    || ratio.is_some()
                {
                    self.err(
                        922,
                        "Glide and gate properties can only be used with 'glide' or 'gate' timing.",
                    );
                }
                if output.is_some() || !variable.is_empty() {
                    self.err(
                        922,
                        "'output' and 'variable' can only be used with 'glide' or 'gate' timing.",
                    );
                }
                if ops_parsed == 0 {
                    self.err(923, "An action needs an operation.");
                }
                if action_count > 1 {
                    self.err(924, "Only one operation can be used in the same action.");
                }
            }
        }
        (
            info.id,
            Action {
                reference: None,
                timing,
                cond,
                op,
            },
        )
    }

    fn req_str(&mut self, m: &Map<String, J>, key: &str, tcode: u32, ecode: u32) -> String {
        match m.get(key) {
            Some(J::String(s)) => {
                if s.is_empty() {
                    self.err(ecode, format!("'{key}' can not be an empty string."));
                }
                s.clone()
            }
            _ => {
                self.err(
                    tcode,
                    format!("'{key}' is required and must be a non-empty string."),
                );
                String::new()
            }
        }
    }

    fn req_range(&mut self, m: &Map<String, J>, key: &str, max: u64, tcode: u32, rcode: u32) -> u8 {
        match m.get(key).and_then(|v| v.as_u64()) {
            Some(n) if n >= 1 && n <= max => n as u8,
            Some(_) => {
                self.err(
                    rcode,
                    format!("'{key}' must be a number between 1 and {max}."),
                );
                1
            }
            None => {
                self.err(
                    tcode,
                    format!("'{key}' is required and must be a number between 1 and {max}."),
                );
                1
            }
        }
    }

    fn opt_pos(&mut self, m: &Map<String, J>, code: u32) -> Option<i64> {
        match m.get("position") {
            None => None,
            Some(v) if v.is_i64() || v.is_u64() => {
                let p = v.as_i64().unwrap_or(i64::MAX);
                Some(p.clamp(i32::MIN as i64, i32::MAX as i64))
            }
            Some(_) => {
                self.err(code, "'position' must be a number.");
                None
            }
        }
    }

    fn parse_op_object(&mut self, key: &str, o: &Map<String, J>) -> Op {
        match key {
            "set-value" => {
                self.check_keys(o, &["output", "value"], false);
                let output = match o.get("output") {
                    Some(v) => self.parse_io(v, "output", 1000),
                    None => {
                        self.err(1000, "'output' is required and must be an output object.");
                        Io::Full(1, 1)
                    }
                };
                let value = self.value_req(o, "value", 1001);
                Op::SetValue { output, value }
            }
            "set-variable" => {
                self.check_keys(o, &["name", "value"], false);
                let name = self.req_str(o, "name", 1100, 1101);
                let value = self.value_req(o, "value", 1102);
                Op::SetVariable { name, value }
            }
            "set-polyphony" => {
                self.check_keys(o, &["index", "channels"], false);
                let index = self.req_range(o, "index", 8, 1200, 1201);
                let channels = self.req_range(o, "channels", 16, 1202, 1203);
                Op::SetPolyphony { index, channels }
            }
            "set-label" => {
                self.check_keys(o, &["index", "label"], false);
                let index = self.req_range(o, "index", 8, 2000, 2001);
                let label = self.req_str(o, "label", 2002, 2003);
                Op::SetLabel { index, label }
            }
            "assert" => {
                self.check_keys(o, &["name", "expect", "stop-on-fail"], false);
                let name = self.req_str(o, "name", 1301, 1302);
                let expect = match o.get("expect") {
                    Some(J::Object(e)) => {
                        self.push("expect");
                        let e = self.parse_if(e, false).1;
                        self.pop();
                        e
                    }
                    _ => {
                        self.err(1303, "'expect' is required and must be an object.");
                        If::Ref(String::new())
                    }
                };
                let stop = self.opt_bool(o, "stop-on-fail", 1304, true);
                Op::Assert { name, expect, stop }
            }
            "move-sequence" => {
                self.check_keys(o, &["id", "direction", "wrap", "position"], false);
                let id = self.req_str(o, "id", 2400, 2401);
                let mut dir = None;
                if let Some(d) = o.get("direction") {
                    dir = Some(match d {
                        J::String(s) => parse_dir(s).unwrap_or_else(|| {
                            self.err(
                                2405,
                                "'direction' must be 'forward', 'backward', 'random' or 'none'.",
                            );
                            Dir::None
                        }),
                        _ => {
                            self.err(2404, "'direction' must be a string.");
                            Dir::None
                        }
                    });
                }
                let pos = self.opt_pos(o, 2402);
                let mut wrap = true;
                if let Some(w) = o.get("wrap") {
                    if pos.is_some() {
                        self.err(
                            2406,
                            "'wrap' can not be used in combination with 'position'.",
                        );
                    }
                    match w {
                        J::Bool(b) => wrap = *b,
                        _ => self.err(2403, "'wrap' must be a boolean."),
                    }
                }
                if dir.is_some() && pos.is_some() {
                    self.err(
                        2408,
                        "Only one of 'direction' or 'position' can be used at a time.",
                    );
                }
                match (dir, pos) {
                    (Some(d), _) => Op::MoveDir { id, dir: d, wrap },
                    (None, Some(p)) => Op::MovePos { id, pos: p },
                    (None, None) => Op::MoveDir {
                        id,
                        dir: Dir::Forward,
                        wrap,
                    },
                }
            }
            "add-to-sequence" => {
                self.check_keys(
                    o,
                    &["id", "value", "position", "as-constant-voltage"],
                    false,
                );
                let id = self.req_str(o, "id", 2500, 2501);
                let value = self.value_req(o, "value", 2502);
                let pos = self.opt_pos(o, 2503).unwrap_or(-1);
                let constant = self.opt_bool(o, "as-constant-voltage", 2504, false);
                Op::Add {
                    id,
                    value,
                    pos,
                    constant,
                }
            }
            _ => {
                self.check_keys(o, &["id", "position"], false);
                let id = self.req_str(o, "id", 2600, 2601);
                let pos = self.opt_pos(o, 2602).unwrap_or(-1);
                Op::Remove { id, pos }
            }
        }
    }

    fn parse_sequence(&mut self, m: &Map<String, J>) -> Sequence {
        self.check_keys(
            m,
            &["id", "values", "shared", "retrieve-voltage-once"],
            false,
        );
        let info = self.id_ref(
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
                    if let Some(v) = self.parse_value_any(v, &i.to_string(), 2204) {
                        values.push(v);
                    }
                }
                self.pop();
            }
            Some(_) => self.err(2203, "'values' must be an array."),
            None => self.err(2203, "'values' is required and must be an array."),
        }
        Sequence {
            id: info.id,
            values,
            shared,
            retrieve_once,
        }
    }
}

/// The reference's note-format check: 2–3 characters, A–G, 0–9, optional `+`/`-`.
fn note_format_ok(s: &str) -> bool {
    let b = s.as_bytes();
    (2..=3).contains(&b.len())
        && note_index(b[0]).is_some()
        && b[1].is_ascii_digit()
        && (b.len() == 2 || b[2] == b'+' || b[2] == b'-')
}

const ACTION_OWN: [&str; 19] = [
    "timing",
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
    "ease-factor",
    "ease-algorithm",
    "output",
    "variable",
    "if",
    "gate-high-ratio",
];

impl Located for Parser {
    fn path_and_errors(&mut self) -> (&mut Vec<String>, &mut Vec<ValidationError>) {
        (&mut self.path, &mut self.errors)
    }
}
