//! Lanes and segments: the per-sample step, triggers, lane loops, segment starts and ends, glides and ongoing actions, and how far ahead nothing changes.

use super::*;

impl Engine {
    pub(super) fn do_reset(&mut self) {
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
    pub(super) fn active_clear(&mut self) {
        for t in self.active.drain(..) {
            self.active_flag[t as usize] = false;
        }
    }

    #[inline]
    pub(super) fn input_triggers(&mut self) {
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
    pub(super) fn sample(&mut self) {
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
    pub(super) fn fire(&mut self, t: u32) {
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
    pub(super) fn has_trigger(&self, t: u32) -> bool {
        t != NO_TRIG && self.active_flag[t as usize]
    }

    /// Returns true when a stop trigger stopped the lane (deviation c).
    pub(super) fn lane_triggers(&mut self, l: usize) -> bool {
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
    pub(super) fn enter_entry(&mut self, l: usize, idx: u32) {
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

    pub(super) fn lane_reset(&mut self, l: usize) {
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

    pub(super) fn lane_loop(&mut self, l: usize) {
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
    pub(super) fn fast_step(&mut self, l: usize) -> bool {
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
    pub(super) fn trivial_step(&mut self, l: usize) -> bool {
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
    pub(super) fn lane_process(&mut self, l: usize) -> bool {
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
    pub(super) fn lane_process_slow(&mut self, l: usize) -> bool {
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
    pub(super) fn seg_process(&mut self, inst: u32, mut drift: f64) -> f64 {
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
    pub(super) fn seg_start(&mut self, ins: &Inst) {
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
    pub(super) fn ongoing_start(&mut self, tag: u32, dur: u64) {
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
    pub(super) fn glide_value(&self, gl: &Glide, end: bool, pos: u64) -> f32 {
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
    pub(super) fn write_glides(&mut self, a: u32, b: u32, pos: u64) {
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
    pub(super) fn glide_write(&mut self, gi: usize, end: bool, pos: u64) {
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
    pub(super) fn ongoing(&mut self, tag: u32, end: bool, pos: u64) {
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
    pub(super) fn update_fast(&mut self, l: usize) {
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
    pub(super) fn lane_quiet(&self, l: usize) -> u64 {
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
    pub(super) fn quiet_samples(&self) -> u64 {
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
    pub(super) fn catch_up(&mut self) {
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
}
