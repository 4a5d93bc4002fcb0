//! Phase 3: compiles the parsed script into a flat [`Program`].

use crate::error::ValidationError;
use crate::parse::{
    self, Action, Calc, DurAmount, Duration, If, Io, Located, Op, Script, Segment, Src, Target,
    Timing, Tuning, Val,
};
use crate::program::*;

pub(crate) struct Builder<'a> {
    s: &'a Script,
    sr: f32,
    path: Vec<String>,
    stash: Vec<Vec<String>>,
    pub errors: Vec<ValidationError>,
    pub p: Program,
    /// id -> (seq index, shared pos proc if shared)
    seq_table: Vec<(String, u32, Option<u32>)>,
}

struct SegInst {
    seg: u32,
    start: Vec<u32>,
    end: Vec<u32>,
}

impl<'a> Builder<'a> {
    pub fn new(s: &'a Script, sr: f32) -> Self {
        Builder {
            s,
            sr,
            path: Vec::new(),
            stash: Vec::new(),
            errors: Vec::new(),
            p: Program::default(),
            seq_table: Vec::new(),
        }
    }

    fn enter_pool(&mut self, kind: &str, idx: usize) {
        let old = std::mem::replace(
            &mut self.path,
            vec!["component-pool".into(), kind.into(), idx.to_string()],
        );
        self.stash.push(old);
    }

    fn leave_pool(&mut self) {
        self.path = self.stash.pop().unwrap_or_default();
    }

    pub fn build(&mut self) {
        let s = self.s;
        // Sequences first, in order.
        for (i, seq) in s.sequences.iter().enumerate() {
            self.path = vec!["sequences".into(), i.to_string()];
            let mut items = Vec::new();
            self.push("values");
            for (j, v) in seq.values.iter().enumerate() {
                self.push(j.to_string());
                let id = self.value(v, &mut Vec::new());
                items.push(SeqItem::Val(id));
                self.pop();
            }
            self.pop();
            let cap = (items.len() * 4).max(256);
            let mut list = Vec::with_capacity(cap);
            list.extend_from_slice(&items);
            let idx = self.p.seqs.len() as u32;
            self.p.seqs.push(SeqData {
                items: list,
                cap,
                retrieve_once: seq.retrieve_once,
                dropped: 0,
            });
            let shared = if seq.shared {
                self.p.posprocs.push(PosProc {
                    seq: idx,
                    pos: 0,
                    has: false,
                    stored: 0.0,
                });
                Some((self.p.posprocs.len() - 1) as u32)
            } else {
                None
            };
            self.seq_table.push((seq.id.clone(), idx, shared));
        }
        self.path.clear();
        for (ti, tl) in s.timelines.iter().enumerate() {
            self.path = vec!["timelines".into(), ti.to_string()];
            let l_start = self.p.lanes.len() as u32;
            for (li, lane) in tl.lanes.iter().enumerate() {
                self.push("lanes");
                self.push(li.to_string());
                self.push("segments");
                let mut stack = Vec::new();
                let insts = self.segments(&lane.segments, tl.time_scale.as_ref(), &mut stack);
                self.pop();
                self.pop();
                self.pop();
                let e_start = self.p.entries.len() as u32;
                // Materialize instances (shared instances keep one Inst id).
                let mut map: Vec<(*const std::cell::RefCell<SegInst>, u32)> = Vec::new();
                for inst in &insts {
                    let ptr = std::rc::Rc::as_ptr(inst);
                    let id = match map.iter().find(|(p, _)| *p == ptr) {
                        Some((_, id)) => *id,
                        None => {
                            let b = inst.borrow();
                            let st_start = self.p.alist.len() as u32;
                            self.p.alist.extend_from_slice(&b.start);
                            let st_end = self.p.alist.len() as u32;
                            self.p.alist.extend_from_slice(&b.end);
                            let en_end = self.p.alist.len() as u32;
                            self.p.insts.push(Inst {
                                seg: b.seg,
                                st_start,
                                st_end,
                                en_start: st_end,
                                en_end,
                            });
                            let id = (self.p.insts.len() - 1) as u32;
                            map.push((ptr, id));
                            id
                        }
                    };
                    self.p.entries.push(id);
                }
                let e_end = self.p.entries.len() as u32;
                let trig = |p: &mut Program, t: &str| {
                    if t.is_empty() {
                        NO_TRIG
                    } else {
                        p.intern_trigger(t)
                    }
                };
                let start_trig = trig(&mut self.p, &lane.start_trigger);
                let restart_trig = trig(&mut self.p, &lane.restart_trigger);
                let stop_trig = trig(&mut self.p, &lane.stop_trigger);
                self.p.lanes.push(Lane {
                    e_start,
                    e_end,
                    auto_start: lane.auto_start,
                    looping: lane.looping,
                    repeat: lane.repeat,
                    start_trig,
                    restart_trig,
                    stop_trig,
                    state: LANE_IDLE,
                    active: 0,
                    repeat_count: 0,
                    acc: 0.0,
                    fast_seg: NO_SEG,
                    fast_limit: 0,
                    glide_busy: false,
                    fast_tab: NO_TAB,
                    fast_port: 0,
                    fast_ch: 0,
                    trivial_loop: false,
                    batch_draws: NO_BATCH,
                    triv_start: 0,
                    triv_end: 0,
                    cur_inst: 0,
                    cur_seg: 0,
                });
            }
            let l_end = self.p.lanes.len() as u32;
            if !tl.loop_lock {
                for l in l_start..l_end {
                    let lane = &self.p.lanes[l as usize];
                    if lane.looping && lane.e_end - lane.e_start == 1 {
                        let inst = self.p.entries[lane.e_start as usize];
                        let seg = &self.p.segs[self.p.insts[inst as usize].seg as usize];
                        let trivial = matches!(seg.kind, DurKind::Const)
                            && seg.duration == 1
                            && seg.drift == 0.0;
                        self.p.lanes[l as usize].trivial_loop = trivial;
                    }
                }
            }
            self.p.timelines.push(Timeline {
                l_start,
                l_end,
                loop_lock: tl.loop_lock,
            });
        }
        for (i, a) in s.global_actions.iter().enumerate() {
            self.path = vec!["global-actions".into(), i.to_string()];
            if let Some(r) = self.resolve_action(a) {
                if r.timing != Timing::Start {
                    self.err(127, "Global actions must have 'start' timing.");
                } else {
                    let id = self.action(r, None);
                    if let Some(id) = id {
                        self.p.global_actions.push(id);
                    }
                }
            }
        }
        for (i, (id, io)) in s.input_triggers.iter().enumerate() {
            self.path = vec!["input-triggers".into(), i.to_string(), "input".into()];
            let (port, ch) = self.io(io, "inputs");
            let tid = self.p.intern_trigger(id);
            self.p.input_triggers.push(InputTrigger {
                id: tid,
                port,
                ch,
                high: true,
            });
        }
    }

    fn resolve_action(&mut self, a: &'a Action) -> Option<&'a Action> {
        match &a.reference {
            None => Some(a),
            Some(r) => match self.s.actions.iter().find(|(id, _)| id == r) {
                Some((_, act)) => Some(act),
                None => {
                    self.err(4, format!("Could not find the referenced action '{r}'."));
                    None
                }
            },
        }
    }

    fn segments(
        &mut self,
        segs: &'a [Segment],
        ts: Option<&parse::TimeScale>,
        stack: &mut Vec<String>,
    ) -> Vec<std::rc::Rc<std::cell::RefCell<SegInst>>> {
        let mut out = Vec::new();
        for (i, seg) in segs.iter().enumerate() {
            self.push(i.to_string());
            out.extend(self.segment(seg, ts, stack));
            self.pop();
        }
        out
    }

    fn segment(
        &mut self,
        seg: &'a Segment,
        ts: Option<&parse::TimeScale>,
        stack: &mut Vec<String>,
    ) -> Vec<std::rc::Rc<std::cell::RefCell<SegInst>>> {
        match seg {
            Segment::Full {
                duration, actions, ..
            } => vec![self.resolved_segment(duration, actions, ts)],
            Segment::Block { block, actions } => {
                let actions_loc = self.path.clone();
                self.push("segment-block");
                let r = self.block_ref(block, actions, actions_loc, ts, stack);
                self.pop();
                r
            }
            Segment::Ref(r) => {
                let key = format!("s-{r}");
                if stack.contains(&key) {
                    self.err(5, format!("Circular reference to segment '{r}'."));
                    return vec![];
                }
                match self.s.segments.iter().position(|(id, _)| id == r) {
                    Some(idx) => {
                        self.enter_pool("segments", idx);
                        stack.push(key);
                        let out = self.segment(&self.s.segments[idx].1, ts, stack);
                        stack.pop();
                        self.leave_pool();
                        out
                    }
                    None => {
                        self.err(4, format!("Could not find the referenced segment '{r}'."));
                        vec![]
                    }
                }
            }
        }
    }

    fn block_ref(
        &mut self,
        block: &str,
        actions: &'a [Action],
        actions_loc: Vec<String>,
        ts: Option<&parse::TimeScale>,
        stack: &mut Vec<String>,
    ) -> Vec<std::rc::Rc<std::cell::RefCell<SegInst>>> {
        let key = format!("sb-{block}");
        if stack.contains(&key) {
            self.err(5, format!("Circular reference to segment-block '{block}'."));
            return vec![];
        }
        let Some(idx) = self.s.blocks.iter().position(|(id, _)| id == block) else {
            self.err(
                4,
                format!("Could not find the referenced segment-block '{block}'."),
            );
            return vec![];
        };
        self.enter_pool("segment-blocks", idx);
        stack.push(key);
        let b = &self.s.blocks[idx].1;
        self.push("segments");
        let inner = self.segments(&b.segments, ts, stack);
        self.pop();
        let mut list = Vec::new();
        match b.repeat {
            None => list = inner.clone(),
            Some(n) => {
                for _ in 0..n {
                    list.extend(inner.iter().cloned());
                }
            }
        }
        if !list.is_empty() && self.errors.is_empty() {
            let mut start = Vec::new();
            let mut end = Vec::new();
            let saved = std::mem::replace(&mut self.path, actions_loc);
            self.push("actions");
            for (i, a) in actions.iter().enumerate() {
                self.push(i.to_string());
                if let Some(r) = self.resolve_action(a) {
                    match r.timing {
                        Timing::Start => {
                            if let Some(id) = self.action(r, None) {
                                start.push(id);
                            }
                        }
                        Timing::End => {
                            if let Some(id) = self.action(r, None) {
                                end.push(id);
                            }
                        }
                        _ => {
                            self.err(606, "Actions on a segment-block link can only have 'start' or 'end' timing.");
                        }
                    }
                }
                self.pop();
            }
            self.path = saved;
            if self.errors.is_empty() && (!start.is_empty() || !end.is_empty()) {
                let repeat = b.repeat.unwrap_or(1);
                if repeat >= 2 {
                    let f = list[0].borrow();
                    let nf = SegInst {
                        seg: f.seg,
                        start: f.start.clone(),
                        end: f.end.clone(),
                    };
                    drop(f);
                    list[0] = std::rc::Rc::new(std::cell::RefCell::new(nf));
                    let last = list.len() - 1;
                    let l = list[last].borrow();
                    let nl = SegInst {
                        seg: l.seg,
                        start: l.start.clone(),
                        end: l.end.clone(),
                    };
                    drop(l);
                    list[last] = std::rc::Rc::new(std::cell::RefCell::new(nl));
                }
                {
                    let mut f = list[0].borrow_mut();
                    let mut ns = start.clone();
                    ns.extend_from_slice(&f.start);
                    f.start = ns;
                }
                {
                    let last = list.len() - 1;
                    let mut l = list[last].borrow_mut();
                    l.end.extend_from_slice(&end);
                }
            }
        }
        stack.pop();
        self.leave_pool();
        list
    }

    fn resolved_segment(
        &mut self,
        duration: &'a Duration,
        actions: &'a [Action],
        ts: Option<&parse::TimeScale>,
    ) -> std::rc::Rc<std::cell::RefCell<SegInst>> {
        self.push("duration");
        let (kind, d, drift) = self.duration(duration, ts);
        self.pop();
        let mut start = Vec::new();
        let mut end = Vec::new();
        let mut og = Vec::new();
        self.push("actions");
        for (i, a) in actions.iter().enumerate() {
            self.push(i.to_string());
            if let Some(r) = self.resolve_action(a) {
                let id = self.action(r, ts);
                if let Some(id) = id {
                    match r.timing {
                        Timing::Start => start.push(id),
                        Timing::End => end.push(id),
                        _ => og.push(id),
                    }
                }
            }
            self.pop();
        }
        self.pop();
        let og_start = self.p.ongoing.len() as u32;
        for id in og {
            let node = self.p.actions[id as usize];
            let tagged = match node.kind {
                AKind::Glide { g } => {
                    self.p.glides[g as usize].cond = node.cond;
                    g
                }
                AKind::Gate { g } => {
                    self.p.gates[g as usize].cond = node.cond;
                    g | GATE_TAG
                }
                _ => continue,
            };
            self.p.ongoing.push(tagged);
        }
        let og_end = self.p.ongoing.len() as u32;
        self.p.segs.push(SegNode {
            kind,
            duration: d,
            drift,
            state: ST_START,
            pos: 0,
            og_start,
            og_end,
        });
        let seg = (self.p.segs.len() - 1) as u32;
        std::rc::Rc::new(std::cell::RefCell::new(SegInst { seg, start, end }))
    }

    fn duration(&mut self, d: &'a Duration, ts: Option<&parse::TimeScale>) -> (DurKind, u64, f64) {
        let sr = self.sr;
        let scale_rate = ts.and_then(|t| t.sample_rate);
        let bpm = ts.and_then(|t| t.bpm);
        let bpb = ts.and_then(|t| t.bpb);
        let konst = |x: f64| -> (DurKind, u64, f64) {
            let (d, drift) = const_samples(x);
            (DurKind::Const, d, drift)
        };
        match d {
            Duration::Samples(DurAmount::Samples(n)) => match scale_rate {
                Some(r) if r as f32 != sr => konst((*n as f64) * (sr as f64) / (r as f64)),
                _ => (DurKind::Const, *n, 0.0),
            },
            Duration::Samples(DurAmount::Value(v)) => {
                let factor = match scale_rate {
                    Some(r) if r as f32 != sr => (sr / r as f32) as f64,
                    _ => 1.0,
                };
                self.push("samples");
                let val = self.value(v, &mut Vec::new());
                self.pop();
                (DurKind::Factor { val, factor }, 1, 0.0)
            }
            Duration::Millis(DurAmount::Value(v)) => {
                self.push("millis");
                let val = self.value(v, &mut Vec::new());
                self.pop();
                (
                    DurKind::Factor {
                        val,
                        factor: sr as f64 / 1000.0,
                    },
                    1,
                    0.0,
                )
            }
            Duration::Millis(a) => konst(amount_f(a) as f64 * sr as f64 / 1000.0),
            Duration::Beats(a, bars) => {
                let Some(bpm) = bpm else {
                    self.err(808, "The duration uses beats, but the timeline has no bpm.");
                    return (DurKind::Const, 1, 0.0);
                };
                match a {
                    DurAmount::Value(v) => {
                        self.push("beats");
                        let val = self.value(v, &mut Vec::new());
                        self.pop();
                        (
                            DurKind::Factor {
                                val,
                                factor: sr as f64 * 60.0 / bpm as f64,
                            },
                            1,
                            0.0,
                        )
                    }
                    _ => {
                        let mut beats = amount_f(a) as f64;
                        if let Some(bars) = bars {
                            match bpb {
                                Some(bpb) => beats += (bars * bpb) as f64,
                                None => {
                                    self.err(
                                        809,
                                        "The duration uses bars, but the timeline has no bpb.",
                                    );
                                    return (DurKind::Const, 1, 0.0);
                                }
                            }
                        }
                        konst(sr as f64 * beats * 60.0 / bpm as f64)
                    }
                }
            }
            Duration::Hz(DurAmount::Value(v)) => {
                self.push("hz");
                let val = self.value(v, &mut Vec::new());
                self.pop();
                (DurKind::Hz { val, sr: sr as f64 }, 1, 0.0)
            }
            Duration::Hz(a) => konst(sr as f64 / amount_f(a) as f64),
            Duration::Samples(DurAmount::Const(_)) => (DurKind::Const, 1, 0.0),
        }
    }

    fn io(&mut self, io: &Io, pool: &str) -> (u8, u8) {
        match io {
            Io::Full(p, c) => (*p - 1, *c - 1),
            Io::Ref(r) => {
                let list = if pool == "inputs" {
                    &self.s.inputs
                } else {
                    &self.s.outputs
                };
                match list.iter().find(|(id, _)| id == r) {
                    Some((_, Io::Full(p, c))) => (*p - 1, *c - 1),
                    _ => {
                        self.err(
                            4,
                            format!(
                                "Could not find the referenced {} '{r}'.",
                                &pool[..pool.len() - 1]
                            ),
                        );
                        (0, 0)
                    }
                }
            }
        }
    }

    fn seq_lookup(&self, id: &str) -> Option<(u32, Option<u32>)> {
        self.seq_table
            .iter()
            .find(|(n, _, _)| n == id)
            .map(|(_, s, p)| (*s, *p))
    }

    fn seq_pos(&mut self, id: &str) -> Option<u32> {
        let (seq, shared) = self.seq_lookup(id)?;
        Some(match shared {
            Some(p) => p,
            None => {
                self.p.posprocs.push(PosProc {
                    seq,
                    pos: 0,
                    has: false,
                    stored: 0.0,
                });
                (self.p.posprocs.len() - 1) as u32
            }
        })
    }

    pub(crate) fn value(&mut self, v: &'a Val, stack: &mut Vec<String>) -> u32 {
        match v {
            Val::Ref(r) => {
                let key = format!("v-{r}");
                if stack.contains(&key) {
                    self.err(5, format!("Circular reference to value '{r}'."));
                    return self.dummy_value();
                }
                match self.s.values.iter().position(|(id, _)| id == r) {
                    Some(idx) => {
                        self.enter_pool("values", idx);
                        stack.push(key);
                        let out = self.value(&self.s.values[idx].1, stack);
                        stack.pop();
                        self.leave_pool();
                        out
                    }
                    None => {
                        self.err(4, format!("Could not find the referenced value '{r}'."));
                        self.dummy_value()
                    }
                }
            }
            Val::Full(f) => {
                let mut calcs = Vec::new();
                self.push("calc");
                for (i, c) in f.calcs.iter().enumerate() {
                    self.push(i.to_string());
                    let mut st = stack.clone();
                    if let Some(c) = self.calc(c, &mut st) {
                        calcs.push(c);
                    }
                    self.pop();
                }
                self.pop();
                let src = match &f.src {
                    Src::Const(x) => VSrc::Const(*x),
                    Src::Variable(n) => VSrc::Var(self.p.intern_var(n)),
                    Src::Input(io) => {
                        self.push("input");
                        let (p, c) = self.io(io, "inputs");
                        self.pop();
                        VSrc::Input(p, c)
                    }
                    Src::Output(io) => {
                        self.push("output");
                        let (p, c) = self.io(io, "outputs");
                        self.pop();
                        VSrc::Output(p, c)
                    }
                    Src::Rand(lo, hi) => {
                        self.push("rand");
                        self.push("lower");
                        let mut st = stack.clone();
                        let l = self.value(lo, &mut st);
                        self.pop();
                        self.push("upper");
                        let mut st = stack.clone();
                        let h = self.value(hi, &mut st);
                        self.pop();
                        self.pop();
                        let plain_const = |v: &VNode| match v.src {
                            VSrc::Const(x) if v.calc_start == v.calc_end && !v.quantize => Some(x),
                            _ => None,
                        };
                        match (
                            plain_const(&self.p.values[l as usize]),
                            plain_const(&self.p.values[h as usize]),
                        ) {
                            (Some(a), Some(b)) => VSrc::RandConst(a, b),
                            _ => VSrc::Rand(l, h),
                        }
                    }
                    Src::Seq {
                        id,
                        before,
                        after,
                        wrap,
                    } => {
                        self.push("sequence");
                        let r = match self.seq_pos(id) {
                            Some(pos) => VSrc::Seq {
                                pos,
                                before: *before,
                                after: *after,
                                wrap: *wrap,
                            },
                            None => {
                                self.err(2308, format!("The sequence '{id}' could not be found."));
                                VSrc::Const(0.0)
                            }
                        };
                        self.pop();
                        r
                    }
                };
                let calc_start = self.p.calcs.len() as u32;
                self.p.calcs.extend_from_slice(&calcs);
                let calc_end = self.p.calcs.len() as u32;
                self.p.values.push(VNode {
                    src,
                    calc_start,
                    calc_end,
                    quantize: f.quantize,
                });
                (self.p.values.len() - 1) as u32
            }
        }
    }

    fn dummy_value(&mut self) -> u32 {
        self.p.values.push(VNode {
            src: VSrc::Const(0.0),
            calc_start: 0,
            calc_end: 0,
            quantize: false,
        });
        (self.p.values.len() - 1) as u32
    }

    fn calc(&mut self, c: &'a Calc, stack: &mut Vec<String>) -> Option<CNode> {
        match c {
            Calc::Ref(r) => {
                let key = format!("c-{r}");
                if stack.contains(&key) {
                    self.err(5, format!("Circular reference to calc '{r}'."));
                    return None;
                }
                match self.s.calcs.iter().position(|(id, _)| id == r) {
                    Some(idx) => {
                        self.enter_pool("calcs", idx);
                        stack.push(key);
                        let out = self.calc(&self.s.calcs[idx].1, stack);
                        stack.pop();
                        self.leave_pool();
                        out
                    }
                    None => {
                        self.err(4, format!("Could not find the referenced calc '{r}'."));
                        None
                    }
                }
            }
            Calc::Bin(op, v) => {
                let key = match op {
                    parse::BinOp::Add => "add",
                    parse::BinOp::Sub => "sub",
                    parse::BinOp::Div => "div",
                    parse::BinOp::Mult => "mult",
                    parse::BinOp::Max => "max",
                    parse::BinOp::Min => "min",
                    parse::BinOp::Remain => "remain",
                };
                self.push(key);
                let val = self.value(v, stack);
                self.pop();
                Some(CNode::Bin(*op, val))
            }
            Calc::Trunc => Some(CNode::Trunc),
            Calc::Frac => Some(CNode::Frac),
            Calc::Round(k) => Some(CNode::Round(*k)),
            Calc::Sign(p) => Some(CNode::Sign(*p)),
            Calc::Vtof => Some(CNode::Vtof),
            Calc::Quantize(t) => {
                self.push("quantize");
                let notes = match t {
                    Tuning::Full(n) => Some(n.clone()),
                    Tuning::Ref(r) => match self.s.tunings.iter().find(|(id, _)| id == r) {
                        Some((_, Tuning::Full(n))) => Some(n.clone()),
                        _ => None,
                    },
                };
                let r = match notes {
                    None => {
                        self.err(1815, "Could not find the referenced tuning.");
                        None
                    }
                    Some(notes) => {
                        let mut tv: Vec<f32> = Vec::new();
                        if notes.len() == 1 {
                            tv.push(notes[0] - 1.0);
                            tv.push(notes[0]);
                            tv.push(notes[0] + 1.0);
                        } else if !notes.is_empty() {
                            tv.push(notes[notes.len() - 1] - 1.0);
                            tv.extend_from_slice(&notes);
                            tv.push(notes[0] + 1.0);
                        }
                        let start = self.p.qtab.len() as u32;
                        for i in 0..tv.len().saturating_sub(1) {
                            let b = tv[i] + ((tv[i + 1] - tv[i]) / 2.0);
                            self.p.qtab.push([b, tv[i]]);
                        }
                        if let Some(l) = tv.last() {
                            self.p.qtab.push([2.0, *l]);
                        }
                        let end = self.p.qtab.len() as u32;
                        Some(CNode::Quant(start, end))
                    }
                };
                self.pop();
                r
            }
        }
    }

    fn cond(&mut self, c: &'a If, stack: &mut Vec<String>) -> u32 {
        match c {
            If::Ref(r) => {
                if stack.contains(r) {
                    self.err(5, format!("Circular reference to if '{r}'."));
                    return self.dummy_if();
                }
                match self.s.ifs.iter().position(|(id, _)| id == r) {
                    Some(idx) => {
                        self.enter_pool("ifs", idx);
                        stack.push(r.clone());
                        let out = self.cond(&self.s.ifs[idx].1, stack);
                        stack.pop();
                        self.leave_pool();
                        out
                    }
                    None => {
                        self.err(4, format!("Could not find the referenced if '{r}'."));
                        self.dummy_if()
                    }
                }
            }
            If::Cmp { op, a, b, tol } => {
                self.push(op.name());
                self.push("0");
                let a = self.value(a, &mut Vec::new());
                self.pop();
                self.push("1");
                let b = self.value(b, &mut Vec::new());
                self.pop();
                self.pop();
                self.p.ifs.push(INode::Cmp {
                    op: *op,
                    a,
                    b,
                    tol: *tol,
                });
                self.p.if_leaves.push(1);
                (self.p.ifs.len() - 1) as u32
            }
            If::Logic { and, children } => {
                self.push(if *and { "and" } else { "or" });
                let mut ids = Vec::new();
                for (i, ch) in children.iter().enumerate() {
                    self.push(i.to_string());
                    ids.push(self.cond(ch, stack));
                    self.pop();
                }
                self.pop();
                let start = self.p.if_children.len() as u32;
                self.p.if_children.extend_from_slice(&ids);
                let end = self.p.if_children.len() as u32;
                let leaves = ids.iter().map(|i| self.p.if_leaves[*i as usize]).sum();
                self.p.ifs.push(INode::Logic {
                    and: *and,
                    start,
                    end,
                });
                self.p.if_leaves.push(leaves);
                (self.p.ifs.len() - 1) as u32
            }
        }
    }

    fn dummy_if(&mut self) -> u32 {
        let v = self.dummy_value();
        self.p.ifs.push(INode::Cmp {
            op: parse::CmpOp::Eq,
            a: v,
            b: v,
            tol: None,
        });
        self.p.if_leaves.push(1);
        (self.p.ifs.len() - 1) as u32
    }

    /// Builds an already resolved action (location: the referencing site).
    fn action(&mut self, a: &'a Action, _ts: Option<&parse::TimeScale>) -> Option<u32> {
        let cond = a.cond.as_ref().map(|c| {
            self.push("if");
            let id = self.cond(c, &mut Vec::new());
            self.pop();
            id
        });
        let kind = match &a.op {
            Op::SetValue { output, value } => {
                self.push("set-value");
                self.push("output");
                let (port, ch) = self.io(output, "outputs");
                self.pop();
                self.push("value");
                let val = self.value(value, &mut Vec::new());
                self.pop();
                self.pop();
                AKind::SetValue { port, ch, val }
            }
            Op::SetVariable { name, value } => {
                self.push("set-variable");
                self.push("value");
                let val = self.value(value, &mut Vec::new());
                self.pop();
                self.pop();
                AKind::SetVar {
                    var: self.p.intern_var(name),
                    val,
                }
            }
            Op::SetPolyphony { index, channels } => AKind::SetPoly {
                port: index - 1,
                n: *channels,
            },
            Op::SetLabel { index, label } => AKind::SetLabel {
                port: index - 1,
                label: self.p.intern_string(label),
            },
            Op::Assert { name, expect, stop } => {
                self.push("assert");
                self.push("expect");
                let e = self.cond(expect, &mut Vec::new());
                self.pop();
                self.pop();
                self.p.assert_count += 1;
                AKind::Assert {
                    name: self.p.intern_string(name),
                    expect: e,
                    stop: *stop,
                }
            }
            Op::Trigger(t) => {
                self.p.trigger_sites += 1;
                AKind::Trigger(self.p.intern_trigger(t))
            }
            Op::MoveDir { id, dir, wrap } => {
                self.push("move-sequence");
                let r = self.move_target(id);
                self.pop();
                AKind::MoveDir {
                    pos: r?,
                    dir: *dir,
                    wrap: *wrap,
                }
            }
            Op::MovePos { id, pos } => {
                self.push("move-sequence");
                let r = self.move_target(id);
                self.pop();
                AKind::MovePos { pos: r?, p: *pos }
            }
            Op::Clear(id) => {
                self.push("clear-sequence");
                let r = self.seq_lookup(id);
                if r.is_none() {
                    self.err(2700, format!("The sequence '{id}' could not be found."));
                }
                self.pop();
                AKind::Clear(r?.0)
            }
            Op::Add {
                id,
                value,
                pos,
                constant,
            } => {
                self.push("add-to-sequence");
                let r = self.seq_lookup(id);
                if r.is_none() {
                    self.err(2505, format!("The sequence '{id}' could not be found."));
                }
                self.push("value");
                let val = self.value(value, &mut Vec::new());
                self.pop();
                self.pop();
                AKind::Add {
                    seq: r?.0,
                    val,
                    pos: *pos,
                    constant: *constant,
                }
            }
            Op::Remove { id, pos } => {
                self.push("remove-from-sequence");
                let r = self.seq_lookup(id);
                if r.is_none() {
                    self.err(2603, format!("The sequence '{id}' could not be found."));
                }
                self.pop();
                AKind::Remove {
                    seq: r?.0,
                    pos: *pos,
                }
            }
            Op::Glide {
                start,
                end,
                target,
                ease,
                pow,
            } => {
                self.push("start-value");
                let sv = self.value(start, &mut Vec::new());
                self.pop();
                self.push("end-value");
                let ev = self.value(end, &mut Vec::new());
                self.pop();
                let target = match target {
                    Target::Output(io) => {
                        self.push("output");
                        let (p, c) = self.io(io, "outputs");
                        self.pop();
                        GTarget::Output(p, c)
                    }
                    Target::Variable(n) => GTarget::Var(self.p.intern_var(n)),
                };
                let ease = if *pow { *ease } else { *ease * 3.5f32 };
                self.p.glides.push(Glide {
                    cond: None,
                    start_val: sv,
                    end_val: ev,
                    target,
                    ease,
                    pow: *pow,
                    active: false,
                    start: 0.0,
                    end: 0.0,
                    delta: 0.0,
                    inv: 1.0,
                    tab_off: 0,
                    tab_len: 0,
                    tab_s: 0.0,
                    tab_e: 0.0,
                    use_tab: false,
                });
                AKind::Glide {
                    g: (self.p.glides.len() - 1) as u32,
                }
            }
            Op::Gate { output, ratio } => {
                self.push("output");
                let (port, ch) = self.io(output, "outputs");
                self.pop();
                self.p.gates.push(Gate {
                    cond: None,
                    port,
                    ch,
                    ratio: *ratio,
                    active: false,
                    high: false,
                    low_pos: 1.0,
                });
                AKind::Gate {
                    g: (self.p.gates.len() - 1) as u32,
                }
            }
            Op::None => return None,
        };
        self.p.actions.push(ANode { cond, kind });
        Some((self.p.actions.len() - 1) as u32)
    }

    fn move_target(&mut self, id: &str) -> Option<u32> {
        match self.seq_lookup(id) {
            None => {
                self.err(2407, format!("The sequence '{id}' could not be found."));
                None
            }
            Some((_, None)) => {
                self.err(
                    2409,
                    format!("The sequence '{id}' is not shared and can not be moved."),
                );
                None
            }
            Some((_, Some(p))) => Some(p),
        }
    }
}

fn amount_f(a: &DurAmount) -> f32 {
    match a {
        DurAmount::Const(f) => *f,
        DurAmount::Samples(n) => *n as f32,
        DurAmount::Value(_) => 1.0,
    }
}

/// 2^53: the largest sample count we represent exactly (deviation f).
pub(crate) const MAX_SAMPLES: f64 = 9_007_199_254_740_992.0;

/// Constant duration conversion: D = max(floor(x), 1), drift = x - D (may be negative).
pub(crate) fn const_samples(x: f64) -> (u64, f64) {
    if !x.is_finite() {
        return (if x > 0.0 { MAX_SAMPLES as u64 } else { 1 }, 0.0);
    }
    if x > MAX_SAMPLES {
        return (MAX_SAMPLES as u64, 0.0);
    }
    let f = x.floor();
    let d = if f < 1.0 { 1u64 } else { f as u64 };
    (d, x - d as f64)
}

/// Value-based duration conversion (deviations e and f).
#[inline]
pub(crate) fn value_samples(x: f64) -> (u64, f64) {
    if x >= 1.0 {
        if !x.is_finite() {
            return (1, 0.0);
        }
        if x > MAX_SAMPLES {
            return (MAX_SAMPLES as u64, 0.0);
        }
        let d = x.floor();
        (d as u64, x - d)
    } else {
        (1, 0.0)
    }
}

impl Located for Builder<'_> {
    fn path_and_errors(&mut self) -> (&mut Vec<String>, &mut Vec<ValidationError>) {
        (&mut self.path, &mut self.errors)
    }
}
