//! Processing: one sample at a time, blocks, and the fast paths (batches of quiet samples, spans of tabled glides and trivial set-values).

use super::*;

impl Engine {
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

    pub(super) fn clear_events(&mut self) {
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
    pub(super) fn batch_len(&self) -> u64 {
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
    pub(super) fn batch(&mut self, k: u64) {
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
    pub(super) fn process_slow(&mut self, rate: u32) {
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
    pub(super) fn maybe_start_span(&mut self) {
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
    pub(super) fn span_step(&mut self) {
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
    pub(super) fn flush_span(&mut self) {
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
    pub(super) fn run(&mut self, rate: u32) {
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
}
