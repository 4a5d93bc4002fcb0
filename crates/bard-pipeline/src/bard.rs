//! The real-time pipeline itself.

use crate::config::{ArpMode, OutMidi, RunMode};
use crate::event::{BlockContext, EventSink, Midi, NoteEvent};
use crate::ledger::{Held, HeldTable, OutNote, OutputTable, Route, TimedOff, TimedOffs};
use crate::limits::*;
use crate::prepare::{PArp, PMovement, PVoice, PZone, PreparedConfig, NO_NOTE};

/// Sentinel for "no time".
pub(crate) const NEVER: u64 = u64::MAX;

/// Beat position ↔ absolute sample. The grid is anchored at sample 0, beat 0;
/// a tempo change re-anchors at the block where it happens, so the beat
/// position is continuous and, at a constant tempo, a pure function of the
/// absolute sample position (deterministic, and in phase across a swap).
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub(crate) struct Clock {
    pub valid: bool,
    pub anchor_sample: u64,
    pub anchor_beat: f64,
    pub bpm: f64,
    pub rate: f64,
}

impl Clock {
    /// Follows the block's tempo; `beat` is the engine's beat position at
    /// `block_start` (NaN when the host keeps none: then the grid is the
    /// bard's own, anchored at sample 0).
    pub fn update(&mut self, block_start: u64, bpm: f64, rate: f64, beat: f64) {
        if beat.is_finite() {
            // The engine's beat (which may follow an external clock's phase).
            *self = Clock {
                valid: true,
                anchor_sample: block_start,
                anchor_beat: beat,
                bpm,
                rate,
            };
        } else if !self.valid {
            *self = Clock {
                valid: true,
                anchor_sample: 0,
                anchor_beat: 0.0,
                bpm,
                rate,
            };
        } else if bpm != self.bpm || rate != self.rate {
            let beat = self.beat_at(block_start);
            *self = Clock {
                valid: true,
                anchor_sample: block_start,
                anchor_beat: beat,
                bpm,
                rate,
            };
        }
    }
    fn samples_per_beat(&self) -> f64 {
        self.rate * 60.0 / self.bpm
    }
    pub fn beat_at(&self, s: u64) -> f64 {
        self.anchor_beat + (s as f64 - self.anchor_sample as f64) / self.samples_per_beat()
    }
    pub fn sample_at(&self, beat: f64) -> u64 {
        let d = ((beat - self.anchor_beat) * self.samples_per_beat()).round();
        (self.anchor_sample as f64 + d).max(0.0) as u64
    }
    pub fn beats_to_samples(&self, beats: f64) -> u64 {
        (beats * self.samples_per_beat()).round().max(1.0) as u64
    }
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct ArpNote {
    pub pitch: i16,
    pub vel: u8,
    pub channel: u8,
    pub source: u8,
    pub key: u8,
    pub held: bool,
    pub seq: u32,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct ArpState {
    pub notes: [ArpNote; MAX_ARP_NOTES],
    pub n: usize,
    pub seq: u32,
    pub pos: u32,
    pub next_step: u64,
    pub fire_at: u64,
    pub active: bool,
    pub resync: bool,
    pub rng: u64,
}

impl ArpState {
    fn new(seed: u64) -> Self {
        ArpState {
            notes: [ArpNote::default(); MAX_ARP_NOTES],
            n: 0,
            seq: 0,
            pos: 0,
            next_step: 0,
            fire_at: NEVER,
            active: false,
            resync: false,
            rng: seed | 1,
        }
    }
    fn clear(&mut self) {
        self.n = 0;
        self.active = false;
        self.fire_at = NEVER;
        self.pos = 0;
    }
    fn remove_unheld(&mut self) {
        let mut j = 0;
        for i in 0..self.n {
            if self.notes[i].held {
                self.notes[j] = self.notes[i];
                j += 1;
            }
        }
        self.n = j;
    }
    /// xorshift64: tiny, allocation-free, deterministic from the seed.
    fn next_random(&mut self) -> u64 {
        let mut x = self.rng;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.rng = x;
        x
    }
}

fn arp_step_time(clock: &Clock, a: &PArp, k: u64) -> u64 {
    let mut beat = k as f64 * a.step_beats;
    if k % 2 == 1 {
        // Swing delays every second step.
        beat += (a.swing - 0.5) * 2.0 * a.step_beats;
    }
    clock.sample_at(beat)
}

fn arp_first_step_at_or_after(clock: &Clock, a: &PArp, t: u64) -> u64 {
    let mut k = (clock.beat_at(t) / a.step_beats).floor().max(1.0) as u64 - 1;
    while arp_step_time(clock, a, k) < t {
        k += 1;
    }
    k
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct VoiceState {
    pub entry: u32,
    pub rep: u32,
    pub pos: u32,
    pub done: bool,
}

#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub(crate) struct MoveState {
    pub running: bool,
    /// Start from the top of every voice at the next sync.
    pub fresh: bool,
    /// Recompute `next_tick` from the clock at the next block.
    pub resync: bool,
    pub next_tick: u64,
    pub transpose: i16,
    pub clock: Clock,
    pub voices: [VoiceState; MAX_VOICES],
}

/// Where a cycling voice of a free-running movement is at `tick` (counted
/// from beat 0 of its clock, the engine's beat): its patterns, each played
/// `repeat` times, laid end to end from beat 0 and repeated. Deriving the
/// position from the beat (rather than counting from when the movement
/// started) keeps a one-bar pattern on the bar whenever it starts, and
/// after tempo changes, reconfigurations, hot swaps and transport jumps.
fn voice_at(m: &PMovement, v: &PVoice, tick: u64) -> VoiceState {
    let repeat = v.repeat.max(1) as u64;
    let cycle: u64 = v
        .patterns
        .iter()
        .map(|&p| m.patterns[p].length.max(1) as u64 * repeat)
        .sum();
    if cycle == 0 {
        return VoiceState::default();
    }
    let mut t = tick % cycle;
    for (entry, &p) in v.patterns.iter().enumerate() {
        let len = m.patterns[p].length.max(1) as u64;
        if t < len * repeat {
            return VoiceState {
                entry: entry as u32,
                rep: (t / len) as u32,
                pos: (t % len) as u32,
                done: false,
            };
        }
        t -= len * repeat;
    }
    VoiceState::default()
}

fn tick_time(clock: &Clock, m: &PMovement, tick: u64) -> u64 {
    clock.sample_at(tick as f64 / m.tpb as f64)
}

fn first_tick_at_or_after(clock: &Clock, m: &PMovement, t: u64) -> u64 {
    let mut k = (clock.beat_at(t) * m.tpb as f64).floor().max(1.0) as u64 - 1;
    while tick_time(clock, m, k) < t {
        k += 1;
    }
    k
}

/// Counters for the engine's diagnostics (read off the RT thread, or copied).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    /// Note-ons not sent because the sink or a fixed table was full. Their
    /// note-offs are not sent either, so nothing sticks.
    pub dropped_note_ons: u64,
}

/// All mutable real-time state (plain arrays: `Clone` is a memcpy).
#[derive(Clone, Debug)]
pub(crate) struct State {
    pub out: OutputTable,
    pub held: HeldTable,
    pub offs: TimedOffs,
    pub arps: [ArpState; MAX_ZONES],
    pub moves: [MoveState; MAX_ZONES],
    pub clock: Clock,
    pub stats: Stats,
    /// Where the next block should start; `NEVER` before the first block.
    pub next_start: u64,
    /// Pedals held down, per destination.
    pub pedals: crate::controllers::PedalBook,
    /// An external clock's transport holds the beat: generators wait.
    pub paused: bool,
    /// `send` messages waiting for the start of the next block.
    pub sends: SendQueue,
}

/// Fixed-size FIFO of [`OutMidi`] for the next block (not carried across a
/// hot swap: the imp moves messages in just before `process`, which sends
/// them at once unless the sink is full).
#[derive(Clone, Copy, Debug)]
pub(crate) struct SendQueue {
    items: [OutMidi; MAX_SENDS],
    head: usize,
    len: usize,
}

impl Default for SendQueue {
    fn default() -> Self {
        SendQueue {
            items: [OutMidi::new(0, &[0xc0, 0]).expect("a program change is valid"); MAX_SENDS],
            head: 0,
            len: 0,
        }
    }
}

impl SendQueue {
    fn push(&mut self, m: OutMidi) -> bool {
        if self.len == MAX_SENDS {
            return false;
        }
        self.items[(self.head + self.len) % MAX_SENDS] = m;
        self.len += 1;
        true
    }

    /// Writes what fits at `frame`, in order; the rest waits.
    fn flush(&mut self, frame: u32, sink: &mut impl EventSink) {
        while self.len > 0 && sink.remaining() > 0 {
            let m = self.items[self.head];
            let ev = NoteEvent::from_bytes(frame, m.output(), m.bytes())
                .expect("OutMidi holds 2 or 3 bytes");
            if !sink.push(ev) {
                return;
            }
            self.head = (self.head + 1) % MAX_SENDS;
            self.len -= 1;
        }
    }
}

/// The bard's real-time note pipeline. See the crate docs for the stages.
pub struct Bard {
    pub(crate) cfg: PreparedConfig,
    pub(crate) st: State,
}

impl Bard {
    /// Creates a pipeline. No note is held, nothing sounds.
    ///
    /// Thread: any non-real-time thread. Allocates (the fixed tables).
    pub fn new(cfg: PreparedConfig) -> Bard {
        let seed = cfg.seed;
        let mut b = Bard {
            cfg,
            st: State {
                out: OutputTable::new(),
                held: HeldTable::new(),
                offs: TimedOffs::new(),
                arps: core::array::from_fn(|z| {
                    ArpState::new(seed ^ (z as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15))
                }),
                moves: [MoveState::default(); MAX_ZONES],
                clock: Clock::default(),
                stats: Stats::default(),
                next_start: NEVER,
                pedals: Default::default(),
                paused: false,
                sends: SendQueue::default(),
            },
        };
        b.st.reconcile(&b.cfg, None);
        b
    }

    /// Convenience: validate, prepare and create.
    ///
    /// Thread: any non-real-time thread. Allocates.
    pub fn from_config(cfg: &crate::BardConfig) -> Result<Bard, crate::ConfigError> {
        Ok(Bard::new(PreparedConfig::new(cfg)?))
    }

    /// The configuration in force.
    ///
    /// Thread: any. Does not allocate.
    pub fn config(&self) -> &PreparedConfig {
        &self.cfg
    }

    /// Counters.
    ///
    /// Thread: the engine thread (or whoever owns the `Bard`). Does not allocate.
    pub fn stats(&self) -> Stats {
        self.st.stats
    }

    /// Number of output notes currently sounding (or whose note-off is still
    /// pending because a sink was full).
    ///
    /// Thread: any. Does not allocate.
    pub fn sounding(&self) -> usize {
        self.st.out.len
    }

    /// Processes one block: `input` (sorted by frame; an out-of-order or
    /// out-of-range frame is moved to the nearest valid frame) and the
    /// arpeggiator and step patterns due in `[block_start, block_start +
    /// frames)`. Output events are written in frame order. Note-offs that did
    /// not fit in the previous block come first, at frame 0.
    ///
    /// Thread: the engine thread. Never allocates, locks, blocks or logs.
    pub fn process(&mut self, input: &[NoteEvent], ctx: &BlockContext, out: &mut impl EventSink) {
        self.st.process(&self.cfg, input, ctx, out);
    }

    /// Sends a note-off for every sounding output note and an All Notes Off
    /// (CC 123) on each (output, channel) that had one, and forgets held keys,
    /// latched arpeggios and pending generated notes. Events are at frame 0.
    /// Use on shutdown, on a failed swap and when an imp fails. If `out` is too
    /// small, the remaining note-offs stay pending: call again (or `process`),
    /// until [`sounding`](Self::sounding) is 0.
    ///
    /// Thread: the engine thread. Never allocates.
    pub fn all_notes_off(&mut self, out: &mut impl EventSink) {
        self.st.all_notes_off(out);
        // Stops while_held movements (their keys are forgotten).
        self.st.reconcile(&self.cfg, Some(&self.cfg));
    }

    /// Queues one checked channel message (a `send` control message: bank
    /// select, program change…) for frame 0 of the next block, after the
    /// note-offs still pending and before anything played in that block.
    /// Returns `false` (and drops it) when [`MAX_SENDS`] are already
    /// waiting; check [`send_room`](Self::send_room) first to keep it.
    ///
    /// Thread: the engine thread. Never allocates.
    pub fn send(&mut self, m: OutMidi) -> bool {
        self.st.sends.push(m)
    }

    /// How many more [`send`](Self::send) messages fit before the next block.
    ///
    /// Thread: the engine thread. Never allocates.
    pub fn send_room(&self) -> usize {
        MAX_SENDS - self.st.sends.len
    }

    /// Swaps in a new configuration and returns the old one, which the caller
    /// sends off the engine thread to be dropped. Held notes keep the mapping
    /// their note-on took; the note-off of a note that can no longer be
    /// reached (its generator was removed) goes out at the right time anyway.
    ///
    /// Thread: the engine thread. Never allocates nor frees.
    pub fn apply_config(&mut self, cfg: PreparedConfig) -> PreparedConfig {
        let old = core::mem::replace(&mut self.cfg, cfg);
        self.st.reconcile(&self.cfg, Some(&old));
        self.st.pedals.dirty = true;
        old
    }
}

impl State {
    /// Brings generator state in line with the configuration in force.
    /// `old` is the configuration the state was running under; generators
    /// whose timing changed are put back on the grid at the next block.
    pub(crate) fn reconcile(&mut self, cfg: &PreparedConfig, old: Option<&PreparedConfig>) {
        for z in 0..MAX_ZONES {
            let zone = cfg.zones.get(z);
            let old_zone = old.and_then(|o| o.zones.get(z));
            let old_arp = old_zone.and_then(|zc| zc.arp.as_ref());
            let old_move = old_zone.and_then(|zc| zc.movement.as_ref());
            let arp = &mut self.arps[z];
            match zone.and_then(|zc| zc.arp.as_ref()) {
                None => arp.clear(),
                Some(a) => {
                    if !a.latch {
                        arp.remove_unheld();
                    }
                    if arp.n == 0 {
                        arp.clear();
                    }
                    let same_timing =
                        old_arp.is_some_and(|o| o.step_beats == a.step_beats && o.swing == a.swing);
                    arp.resync |= !same_timing;
                }
            }
            let mv = &mut self.moves[z];
            match zone.and_then(|zc| zc.movement.as_ref()) {
                None => {
                    mv.running = false;
                    mv.voices = [VoiceState::default(); MAX_VOICES];
                }
                Some(m) => {
                    for (vi, vs) in mv.voices.iter_mut().enumerate() {
                        match m.voices.get(vi) {
                            Some(v) if !v.patterns.is_empty() => {
                                vs.entry %= v.patterns.len() as u32;
                                let len = m.patterns[v.patterns[vs.entry as usize]].length;
                                if vs.pos >= len {
                                    vs.pos = 0;
                                }
                                if vs.rep >= v.repeat {
                                    vs.rep = 0;
                                }
                            }
                            _ => *vs = VoiceState::default(),
                        }
                    }
                    match m.run {
                        RunMode::Always => {
                            if !mv.running {
                                mv.running = true;
                                mv.fresh = true;
                            }
                        }
                        RunMode::WhileHeld => {
                            mv.running =
                                mv.running && self.held.any_in_zone(z as u8, Route::Movement);
                        }
                    }
                    let same_timing = old_move.is_some_and(|o| o.tpb == m.tpb && o.bpm == m.bpm);
                    mv.resync |= !same_timing;
                }
            }
        }
    }

    fn movement_clock<'a>(&'a self, m: &PMovement, z: usize) -> &'a Clock {
        if m.bpm.is_some() {
            &self.moves[z].clock
        } else {
            &self.clock
        }
    }

    fn process(
        &mut self,
        cfg: &PreparedConfig,
        input: &[NoteEvent],
        ctx: &BlockContext,
        sink: &mut impl EventSink,
    ) {
        let start = ctx.sample_position;
        if self.next_start != NEVER && start != self.next_start {
            self.discontinuity(start);
        }
        self.next_start = start + ctx.frames as u64;
        let rate = crate::event::rate(ctx);
        self.clock
            .update(start, crate::event::tempo(ctx), rate, ctx.beat_position);
        for (z, zone) in cfg.zones.iter().enumerate() {
            if let Some(m) = &zone.movement {
                if let Some(bpm) = m.bpm {
                    self.moves[z].clock.update(start, bpm, rate, f64::NAN);
                }
            }
        }
        let paused = ctx.playing == 0;
        if self.paused && !paused {
            self.resume(cfg, start);
        }
        self.paused = paused;
        self.sync_generators(cfg, start);
        self.out.flush_pending(0, sink);
        // Bank select / program change go before the block's notes, so the
        // first note after a preset change already plays the new sound.
        self.sends.flush(0, sink);
        self.pedals.follow_config(cfg, 0, sink);
        let last_frame = ctx.frames.saturating_sub(1);
        let mut frame = 0u32;
        for ev in input {
            frame = ev.frame.clamp(frame, last_frame);
            let t = start + frame as u64;
            self.run_generators(cfg, start, t, sink);
            self.handle_input(cfg, ev, t, frame, sink);
        }
        self.run_generators(cfg, start, start + ctx.frames as u64, sink);
    }

    /// The transport started or continued (Start moved the beat back to 0):
    /// generators go back on the grid from here, a step that fell due less
    /// than half a step ago (at the resuming tick, inside the last block)
    /// included.
    fn resume(&mut self, cfg: &PreparedConfig, start: u64) {
        for (z, zone) in cfg.zones.iter().enumerate() {
            if let Some(a) = &zone.arp {
                let clock = self.clock;
                let late = clock.beats_to_samples(a.step_beats / 2.0);
                let s = &mut self.arps[z];
                let due = arp_first_step_at_or_after(&clock, a, start.saturating_sub(late));
                // After Continue the step that was next still is (it has not
                // played); after Start the beat went back and it lies far on.
                let next_is_near =
                    s.next_step > due && arp_step_time(&clock, a, s.next_step) <= start + 2 * late;
                if !next_is_near {
                    s.next_step = due;
                }
                s.resync = false;
            }
            if let Some(m) = &zone.movement {
                let clock = *self.movement_clock(m, z);
                let late = clock.beats_to_samples(0.5 / m.tpb as f64);
                let s = &mut self.moves[z];
                let due = first_tick_at_or_after(&clock, m, start.saturating_sub(late));
                let next_is_near =
                    s.next_tick > due && tick_time(&clock, m, s.next_tick) <= start + 2 * late;
                if !next_is_near {
                    s.next_tick = due;
                }
                s.resync = false;
            }
        }
    }

    /// The engine clock jumped (transport relocation, a stall): pending
    /// note-offs keep their remaining length, generators go back on the grid.
    fn discontinuity(&mut self, start: u64) {
        let delta = start as i128 - self.next_start as i128;
        for t in self.offs.items[..self.offs.len].iter_mut() {
            t.at = (t.at as i128 + delta).clamp(start as i128, u64::MAX as i128 - 1) as u64;
        }
        for a in self.arps.iter_mut() {
            a.resync = true;
            if a.fire_at != NEVER {
                a.fire_at = start;
            }
        }
        for m in self.moves.iter_mut() {
            m.resync = true;
        }
    }

    /// Puts generators whose next event lies before `start` (a jump of the
    /// engine clock, a new configuration) back on the grid.
    fn sync_generators(&mut self, cfg: &PreparedConfig, start: u64) {
        for (z, zone) in cfg.zones.iter().enumerate() {
            if let Some(a) = &zone.arp {
                let clock = self.clock;
                let s = &mut self.arps[z];
                // A step less than half a step late (the beat was nudged onto
                // an external clock's tick) still plays, at the block start;
                // only a real jump skips steps.
                let late = clock.beats_to_samples(a.step_beats / 2.0);
                if s.active && (s.resync || arp_step_time(&clock, a, s.next_step) + late < start) {
                    s.next_step = arp_first_step_at_or_after(&clock, a, start);
                }
                if s.fire_at != NEVER && s.fire_at < start {
                    s.fire_at = start;
                }
                s.resync = false;
            }
            if let Some(m) = &zone.movement {
                let clock = *self.movement_clock(m, z);
                let s = &mut self.moves[z];
                if s.running {
                    if s.fresh {
                        s.voices = [VoiceState::default(); MAX_VOICES];
                        s.fresh = false;
                        s.resync = true;
                    }
                    let late = clock.beats_to_samples(0.5 / m.tpb as f64);
                    if s.resync || tick_time(&clock, m, s.next_tick) + late < start {
                        s.next_tick = first_tick_at_or_after(&clock, m, start);
                    }
                }
                s.resync = false;
            }
        }
    }

    fn arp_next_time(&self, a: &PArp, z: usize) -> u64 {
        let s = &self.arps[z];
        if !s.active || self.paused {
            return NEVER;
        }
        arp_step_time(&self.clock, a, s.next_step).min(s.fire_at)
    }

    fn move_next_time(&self, m: &PMovement, z: usize) -> u64 {
        let s = &self.moves[z];
        if !s.running || self.paused {
            return NEVER;
        }
        tick_time(self.movement_clock(m, z), m, s.next_tick)
    }

    /// Runs every generator event due in `[.., until)`, earliest first; at
    /// one instant note-offs go before note-ons.
    fn run_generators(
        &mut self,
        cfg: &PreparedConfig,
        start: u64,
        until: u64,
        sink: &mut impl EventSink,
    ) {
        loop {
            let mut t = self.offs.next_at().unwrap_or(NEVER);
            for (z, zone) in cfg.zones.iter().enumerate() {
                if let Some(a) = &zone.arp {
                    t = t.min(self.arp_next_time(a, z));
                }
                if let Some(m) = &zone.movement {
                    t = t.min(self.move_next_time(m, z));
                }
            }
            if t >= until {
                return;
            }
            let t = t.max(start);
            let frame = (t - start) as u32;
            self.offs.release_due(t, frame, &mut self.out, sink);
            for (z, zone) in cfg.zones.iter().enumerate() {
                if let Some(a) = &zone.arp {
                    if self.arp_next_time(a, z) <= t {
                        self.arp_step(cfg, zone, a, z, t, frame, sink);
                    }
                }
                if let Some(m) = &zone.movement {
                    if self.move_next_time(m, z) <= t {
                        self.movement_tick(cfg, m, z, t, frame, sink);
                    }
                }
            }
        }
    }

    fn handle_input(
        &mut self,
        cfg: &PreparedConfig,
        ev: &NoteEvent,
        t: u64,
        frame: u32,
        sink: &mut impl EventSink,
    ) {
        match ev.decode() {
            Midi::NoteOn {
                channel,
                note,
                velocity,
            } => self.note_on(cfg, ev.port, channel, note, velocity, t, frame, sink),
            Midi::NoteOff { channel, note } => {
                self.note_off(cfg, ev.port, channel, note, frame, sink)
            }
            Midi::Other => {
                if cfg.pass_other && ev.len > 0 {
                    self.pedals.route(cfg, ev, frame, sink);
                }
            }
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn note_on(
        &mut self,
        cfg: &PreparedConfig,
        source: u8,
        channel: u8,
        note: u8,
        velocity: u8,
        t: u64,
        frame: u32,
        sink: &mut impl EventSink,
    ) {
        // A second note-on for a held key (no note-off between) ends the first.
        self.note_off(cfg, source, channel, note, frame, sink);
        for (zi, zone) in cfg.zones.iter().enumerate() {
            let matches = zone.notes
                && zone.source.is_none_or(|s| s == source)
                && zone.channel.is_none_or(|c| c == channel)
                && (zone.low..=zone.high).contains(&note)
                && (zone.vel_low..=zone.vel_high).contains(&velocity);
            if !matches {
                continue;
            }
            if self.held.is_full() {
                self.stats.dropped_note_ons += 1;
                continue;
            }
            // Stage 1.
            let vel = zone.vel[velocity as usize];
            // Stage 2.
            let Some(root) = zone
                .scale
                .as_ref()
                .map_or(Some(note as i16), |s| s.apply(note))
            else {
                continue;
            };
            // Stage 3.
            let mut chord = [0i16; MAX_CHORD_NOTES];
            let n = match &zone.chord {
                Some(c) => c.build(root, zone.scale.as_ref(), &mut chord),
                None => {
                    chord[0] = root;
                    1
                }
            };
            let mut h = Held {
                source,
                channel,
                note,
                zone: zi as u8,
                route: Route::Direct,
                n_outs: 0,
                outs: [OutNote::default(); MAX_CHORD_NOTES],
            };
            if let Some(a) = &zone.arp {
                // Stage 4: the notes feed the arpeggiator.
                h.route = Route::Arp;
                let clock = self.clock;
                let s = &mut self.arps[zi];
                if s.n > 0 && s.notes[..s.n].iter().all(|x| !x.held) {
                    // Latched arpeggio and a fresh key: start a new one.
                    s.n = 0;
                    s.pos = 0;
                }
                for &pitch in &chord[..n] {
                    if s.n < MAX_ARP_NOTES {
                        s.seq = s.seq.wrapping_add(1);
                        s.notes[s.n] = ArpNote {
                            pitch,
                            vel,
                            channel,
                            source,
                            key: note,
                            held: true,
                            seq: s.seq,
                        };
                        s.n += 1;
                    }
                }
                if !s.active && s.n > 0 {
                    s.active = true;
                    s.pos = 0;
                    if a.quantize_start {
                        s.next_step = arp_first_step_at_or_after(&clock, a, t);
                    } else {
                        s.fire_at = t;
                        let half = clock.beats_to_samples(a.step_beats * 0.5);
                        s.next_step = arp_first_step_at_or_after(&clock, a, t + half);
                    }
                }
            } else if let Some(m) = zone
                .movement
                .as_ref()
                .filter(|m| m.run == RunMode::WhileHeld)
            {
                // Stage 5: the key gates and transposes the movement.
                h.route = Route::Movement;
                let clock = *self.movement_clock(m, zi);
                let s = &mut self.moves[zi];
                s.transpose = root - m.root as i16;
                if !s.running {
                    s.running = true;
                    s.fresh = false;
                    s.voices = [VoiceState::default(); MAX_VOICES];
                    s.next_tick = first_tick_at_or_after(&clock, m, t);
                }
            } else {
                for &pitch in &chord[..n] {
                    if let Some(o) = finalize(zone, cfg.transpose, pitch, channel) {
                        if self.out.note_on(o, vel, frame, sink) {
                            h.outs[h.n_outs as usize] = o;
                            h.n_outs += 1;
                        } else {
                            self.stats.dropped_note_ons += 1;
                        }
                    }
                }
            }
            self.held.push(h);
        }
    }

    fn note_off(
        &mut self,
        cfg: &PreparedConfig,
        source: u8,
        channel: u8,
        note: u8,
        frame: u32,
        sink: &mut impl EventSink,
    ) {
        while let Some(h) = self.held.take(source, channel, note) {
            let z = h.zone as usize;
            let zone = cfg.zones.get(z);
            match h.route {
                Route::Direct => {
                    // The ledger, not the current configuration, says what to end.
                    for o in &h.outs[..h.n_outs as usize] {
                        self.out.note_off(*o, frame, sink);
                    }
                }
                Route::Arp => {
                    if let Some(a) = zone.and_then(|zc| zc.arp.as_ref()) {
                        let s = &mut self.arps[z];
                        for x in s.notes[..s.n].iter_mut() {
                            if x.source == source && x.channel == channel && x.key == note {
                                x.held = false;
                            }
                        }
                        if !a.latch {
                            s.remove_unheld();
                        }
                        if s.n == 0 {
                            s.clear();
                        }
                    }
                }
                Route::Movement => {
                    let while_held = zone
                        .and_then(|zc| zc.movement.as_ref())
                        .is_some_and(|m| m.run == RunMode::WhileHeld);
                    if while_held && !self.held.any_in_zone(h.zone, Route::Movement) {
                        self.moves[z].running = false;
                    }
                }
            }
        }
    }

    /// Starts a generated note that ends at `off_at`.
    fn emit_generated(
        &mut self,
        n: OutNote,
        vel: u8,
        frame: u32,
        off_at: u64,
        sink: &mut impl EventSink,
    ) {
        if self.offs.is_full() || !self.out.note_on(n, vel, frame, sink) {
            self.stats.dropped_note_ons += 1;
            return;
        }
        self.offs.push(TimedOff { at: off_at, n });
    }

    #[allow(clippy::too_many_arguments)]
    fn arp_step(
        &mut self,
        cfg: &PreparedConfig,
        zone: &PZone,
        a: &PArp,
        z: usize,
        t: u64,
        frame: u32,
        sink: &mut impl EventSink,
    ) {
        let s = &mut self.arps[z];
        if s.fire_at <= t {
            s.fire_at = NEVER;
        } else {
            s.next_step += 1;
        }
        // The order to play in: by pitch (duplicates merged) or as played.
        let mut order = [ArpNote::default(); MAX_ARP_NOTES];
        let mut m = 0;
        order[..s.n].copy_from_slice(&s.notes[..s.n]);
        if a.mode == ArpMode::AsPlayed {
            order[..s.n].sort_unstable_by_key(|x| x.seq);
            m = s.n;
        } else {
            order[..s.n].sort_unstable_by_key(|x| (x.pitch, x.seq));
            for i in 0..s.n {
                if m == 0 || order[m - 1].pitch != order[i].pitch {
                    order[m] = order[i];
                    m += 1;
                }
            }
        }
        if m == 0 {
            s.clear();
            return;
        }
        let total = m * a.octaves as usize;
        let pos = s.pos as usize;
        s.pos = s.pos.wrapping_add(1);
        let gate = self.clock.beats_to_samples(a.step_beats * a.gate);
        let note_at = |j: usize| (order[j % m], (j / m) as i16 * 12);
        let mut picks = [0usize; 16];
        let count = match a.mode {
            ArpMode::Chord => {
                let c = total.min(picks.len());
                for (j, p) in picks.iter_mut().enumerate().take(c) {
                    *p = j;
                }
                c
            }
            ArpMode::Up | ArpMode::AsPlayed => {
                picks[0] = pos % total;
                1
            }
            ArpMode::Down => {
                picks[0] = total - 1 - pos % total;
                1
            }
            ArpMode::UpDown | ArpMode::DownUp => {
                let cycle = if total > 1 { 2 * total - 2 } else { 1 };
                let p = pos % cycle;
                let up = if p < total { p } else { cycle - p };
                picks[0] = if a.mode == ArpMode::UpDown {
                    up
                } else {
                    total - 1 - up
                };
                1
            }
            ArpMode::Random => {
                picks[0] = (s.next_random() % total as u64) as usize;
                1
            }
        };
        for &j in &picks[..count] {
            let (x, shift) = note_at(j);
            if let Some(o) = finalize(zone, cfg.transpose, x.pitch + shift, x.channel) {
                self.emit_generated(o, x.vel, frame, t + gate, sink);
            }
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn movement_tick(
        &mut self,
        cfg: &PreparedConfig,
        m: &PMovement,
        z: usize,
        t: u64,
        frame: u32,
        sink: &mut impl EventSink,
    ) {
        let clock = *self.movement_clock(m, z);
        let tick = self.moves[z].next_tick;
        self.moves[z].next_tick += 1;
        let transpose = self.moves[z].transpose;
        let zone_transpose = cfg.zones.get(z).map_or(0, |zc| zc.transpose);
        for (vi, v) in m.voices.iter().enumerate() {
            if m.run == RunMode::Always && v.cycle && !v.patterns.is_empty() {
                // Free-running and cycling: the beat says where it is. A
                // one-shot voice (cycle = false) plays from its start instead.
                self.moves[z].voices[vi] = voice_at(m, v, tick);
            }
            let vs = self.moves[z].voices[vi];
            if vs.done || v.patterns.is_empty() {
                continue;
            }
            let pat = &m.patterns[v.patterns[vs.entry as usize % v.patterns.len()]];
            if !v.mute {
                let first = pat.notes.partition_point(|n| n.tick < vs.pos);
                for pn in pat.notes[first..].iter().take_while(|n| n.tick == vs.pos) {
                    let note = if v.drums {
                        pn.note as i16
                    } else {
                        pn.note as i16 + transpose + cfg.transpose + zone_transpose
                    };
                    if (0..=127).contains(&note) {
                        let o = OutNote {
                            port: v.output,
                            channel: v.channel,
                            note: note as u8,
                        };
                        let off = tick_time(&clock, m, tick + pn.duration as u64).max(t + 1);
                        self.emit_generated(o, pn.velocity, frame, off, sink);
                    }
                }
            }
            let vs = &mut self.moves[z].voices[vi];
            vs.pos += 1;
            if vs.pos >= pat.length {
                vs.pos = 0;
                vs.rep += 1;
                if vs.rep >= v.repeat {
                    vs.rep = 0;
                    vs.entry += 1;
                    if vs.entry as usize >= v.patterns.len() {
                        if v.cycle {
                            vs.entry = 0;
                        } else {
                            vs.entry = 0;
                            vs.done = true;
                        }
                    }
                }
            }
        }
    }

    fn all_notes_off(&mut self, sink: &mut impl EventSink) {
        self.out.all_off(0, sink);
        self.pedals.lift_all(0, sink);
        self.offs.len = 0;
        self.held.len = 0;
        for a in self.arps.iter_mut() {
            a.clear();
        }
    }
}

/// Stages 5 (drum mode), 6 (transpose) and 7 (output) for a played note.
fn finalize(zone: &PZone, transpose: i16, pitch: i16, in_channel: u8) -> Option<OutNote> {
    if !(0..=127).contains(&pitch) && zone.drums.is_some() {
        return None;
    }
    if let Some(map) = &zone.drums {
        let d = map[pitch as usize];
        return (d != NO_NOTE).then_some(OutNote {
            port: zone.output,
            channel: DRUM_CHANNEL,
            note: d,
        });
    }
    // The note-off of a held key comes from the ledger, not from here, so
    // a transpose changed while the key is held cannot strand its note.
    let p = pitch + transpose + zone.transpose;
    (0..=127).contains(&p).then(|| OutNote {
        port: zone.output,
        channel: zone.out_channel.unwrap_or(in_channel),
        note: p as u8,
    })
}
