//! The public API: loading, the lifecycle (start, pause, reset), ports, labels, variables, triggers and asserts as the host sees them.

use super::*;

impl Engine {
    /// Loads a script at engine sample rate `sample_rate`. The engine starts in
    /// [`Status::Loading`] with a reset pending (run by the next [`Engine::process`] call).
    pub fn load(json: &str, sample_rate: f32) -> Result<Engine, LoadError> {
        let script = parse_script(json)?;
        let p = build(&script, sample_rate)?;
        Ok(Engine::from_program(p, script, sample_rate))
    }

    pub(super) fn from_program(p: Program, script: Script, sr: f32) -> Engine {
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
    pub(super) fn build_batch_info(&mut self) {
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
    pub(super) fn value_is_pure(&self, id: u32, depth: u32) -> bool {
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
    pub(super) fn build_glide_tables(&mut self) {
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

    pub(super) fn fmt_if(&self, id: u32, idx: &mut usize, end: usize, out: &mut String) {
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
}
