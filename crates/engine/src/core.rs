//! The engine's real-time side: the slots, the cycle, the note ledgers,
//! the release of what a removed or failed part left sounding.

use crate::audio;
use crate::ledger::{NoteLedger, Verdict};
use crate::stats::EngineStats;
use crate::{alloc_guard, Command, Garbage, OwnedRtPart, Routing, RtCall, MAX_SLOTS};
use imp::{BlockContext, RtEvent, TRANSIENT_BYTES};
use std::sync::Arc;
use std::time::Instant;

/// An event a slot emitted in the last cycle, as the engine hands it out
/// ([`EngineCore::emitted`]): backends send those of port-bound slots.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct EmittedEvent {
    /// The slot that emitted it.
    pub slot: usize,
    /// Absolute sample time (block start + frame).
    pub time: u64,
    /// The event (its `port` is the numbered output).
    pub event: RtEvent,
}

/// An event for a slot, from outside the engine (MIDI input, CLI).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct InputEvent {
    /// The destination slot.
    pub slot: usize,
    /// The event, at its frame in the next block.
    pub event: RtEvent,
}

pub(crate) struct Slot {
    pub(crate) part: Option<Box<OwnedRtPart>>,
    pub(crate) failed: bool,
    pub(crate) ledger: NoteLedger,
    pub(crate) input: Box<[RtEvent]>,
    pub(crate) input_len: usize,
}

/// The real-time side of an engine. Lives on the engine thread.
pub struct EngineCore {
    pub(crate) commands: rtrb::Consumer<Command>,
    pub(crate) garbage: rtrb::Producer<Garbage>,
    pub(crate) inputs: rtrb::Consumer<InputEvent>,
    /// Bytes of SysEx the control thread injected, in the order of their
    /// events in `inputs`.
    pub(crate) injected_sysex: rtrb::Consumer<u8>,
    pub(crate) stats: Arc<EngineStats>,
    pub(crate) slots: Box<[Slot]>,
    pub(crate) routing: Box<Routing>,
    pub(crate) scratch: Box<[RtEvent]>,
    /// Note-offs of a slot being released (kept apart from `scratch`).
    pub(crate) release_buf: Box<[RtEvent]>,
    /// An empty ledger swapped in for one being released.
    pub(crate) spare_ledger: NoteLedger,
    pub(crate) emitted: Box<[EmittedEvent]>,
    pub(crate) emitted_len: usize,
    pub(crate) transient: Box<[u8; TRANSIENT_BYTES]>,
    /// The two cycle arenas of long-message bytes (see "Long messages" in
    /// the crate docs), used in turn.
    pub(crate) long: [Box<[u8]>; 2],
    /// Bytes used in each cycle arena.
    pub(crate) long_len: [usize; 2],
    /// The arena of the cycle being prepared or run.
    pub(crate) long_cur: usize,
    /// The arena of the last cycle's emitted events.
    pub(crate) long_emitted: usize,
    /// The output arena a part's `process` call writes its SysEx into.
    pub(crate) long_out: Box<[u8]>,
    pub(crate) audio: audio::Audio,
    pub(crate) position: u64,
    pub(crate) sample_rate: f64,
    pub(crate) tempo: f64,
    /// A tempo an RT part asked for (a clock follower), from the next block.
    pub(crate) pending_tempo: Option<f64>,
    /// The beat (beats since the start) inside the current block, steered
    /// by grid ticks and transport events.
    pub(crate) beat_clock: BeatClock,
}

/// The engine's beat inside one block: the beat at `frame` is `beat` plus,
/// while playing, the frames since at the block's tempo. Grid ticks and
/// transport events move the anchor; allocation-free.
#[derive(Clone, Copy, Debug)]
pub(crate) struct BeatClock {
    /// Anchor frame in the block.
    frame: u32,
    /// The beat at the anchor.
    beat: f64,
    /// Whether the beat moves (false after a transport Stop, and after Start
    /// or Continue until the first tick).
    pub(crate) playing: bool,
    /// After Start or Continue: the beat the next grid tick is.
    resume_at: Option<f64>,
    /// The beat of the last grid tick and the grid (ticks per beat), so
    /// Continue goes on from the tick after it.
    last_tick: Option<(f64, f64)>,
}

impl BeatClock {
    /// A playing clock at `beat` from frame 0.
    pub(crate) fn new(beat: f64) -> Self {
        BeatClock {
            frame: 0,
            beat,
            playing: true,
            resume_at: None,
            last_tick: None,
        }
    }

    fn at(&self, frame: u32, beats_per_frame: f64) -> f64 {
        if self.playing {
            self.beat + frame.saturating_sub(self.frame) as f64 * beats_per_frame
        } else {
            self.beat
        }
    }

    /// A tick of a `per_beat` grid at `frame`: the beat goes to the nearest
    /// grid line (or to where Start/Continue said the next tick is).
    fn tick(&mut self, frame: u32, per_beat: f64, beats_per_frame: f64) {
        let beat = if let Some(b) = self.resume_at.take() {
            self.playing = true;
            b
        } else if self.playing {
            let at = self.at(frame, beats_per_frame);
            (at * per_beat).round() / per_beat
        } else {
            return;
        };
        self.frame = frame;
        self.beat = beat;
        self.last_tick = Some((beat, per_beat));
    }

    /// A transport message at `frame` (see [`imp::transport`]).
    fn transport(&mut self, frame: u32, code: u8, beats_per_frame: f64) {
        let now = self.at(frame, beats_per_frame);
        self.frame = frame;
        self.playing = false;
        match code {
            imp::transport::START => {
                self.beat = 0.0;
                self.resume_at = Some(0.0);
                self.last_tick = None;
            }
            imp::transport::CONTINUE => {
                // MIDI counts position in ticks: the next tick is the one
                // after the last before the Stop.
                self.beat = now;
                self.resume_at = Some(match self.last_tick {
                    Some((beat, per_beat)) => beat + 1.0 / per_beat,
                    None => now,
                });
            }
            _ => {
                self.beat = now;
                self.resume_at = None;
            }
        }
    }

    /// Moves the anchor to the end of a block of `frames`: the next block's
    /// first frame.
    fn end_block(&mut self, frames: u32, beats_per_frame: f64) {
        self.beat = self.at(frames, beats_per_frame);
        self.frame = 0;
    }
}

impl EngineCore {
    fn discard(&mut self, g: Garbage) {
        if let Err(rtrb::PushError::Full(g)) = self.garbage.push(g) {
            // Cannot happen while the handle keeps room (see `send`);
            // leaking beats freeing on the engine thread.
            std::mem::forget(g);
            self.stats.note_leak();
        }
    }

    /// Routes one output event of `slot` to its wires and the emitted list.
    fn route(&mut self, slot: usize, e: RtEvent) {
        let time = self.position + e.frame as u64;
        let emitted = EmittedEvent {
            slot,
            time,
            event: e,
        };
        if self.emitted_len < self.emitted.len() {
            self.emitted[self.emitted_len] = emitted;
            self.emitted_len += 1;
        } else {
            self.stats.note_dropped();
        }
        for i in 0..self.routing.wires_from[slot].len() {
            let w = self.routing.wires_from[slot][i];
            if w.output != e.port {
                continue;
            }
            let mut arriving = e;
            arriving.port = w.input;
            push_sorted(&mut self.slots[w.to], arriving, &self.stats);
        }
    }

    fn beats_per_frame(&self) -> f64 {
        self.tempo / 60.0 / self.sample_rate
    }

    /// Passes one event a slot emitted through its ledger, then routes it.
    /// Tempo and grid-tick events steer the engine's clock instead.
    fn emit(&mut self, slot: usize, e: RtEvent) {
        match e.kind {
            imp::event_kind::TEMPO => {
                let bpm = e.value as f64;
                if bpm.is_finite() && (10.0..=999.0).contains(&bpm) {
                    self.pending_tempo = Some(bpm);
                }
                return;
            }
            imp::event_kind::GRID_TICK => {
                let per_beat = e.value as f64;
                if per_beat >= 1.0 {
                    let bpf = self.beats_per_frame();
                    self.beat_clock.tick(e.frame, per_beat, bpf);
                }
                return;
            }
            imp::event_kind::TRANSPORT => {
                let bpf = self.beats_per_frame();
                self.beat_clock.transport(e.frame, e.value as u8, bpf);
                return;
            }
            // Long messages are no notes: they never enter the ledger.
            imp::event_kind::SYSEX => {
                self.route(slot, e);
                return;
            }
            _ => {}
        }
        match self.slots[slot].ledger.record(&e) {
            Verdict::Pass => self.route(slot, e),
            Verdict::Orphan => {}
            Verdict::Full => self.stats.note_dropped(),
        }
    }

    /// Ends every note `slot` left sounding, at `frame`, each out of the
    /// numbered output it went to, then lifts the pedals it holds down.
    fn release_slot(&mut self, slot: usize, frame: u32) {
        // Release from the spare (an empty ledger takes the slot's place),
        // in chunks of what the release buffer holds.
        std::mem::swap(&mut self.slots[slot].ledger, &mut self.spare_ledger);
        let mut sent = 0;
        while !self.spare_ledger.is_silent() {
            let mut n = 0;
            let buf = &mut self.release_buf;
            self.spare_ledger.release(frame, |e| {
                let Some(b) = buf.get_mut(n) else {
                    return false;
                };
                *b = e;
                n += 1;
                true
            });
            for i in 0..n {
                let e = self.release_buf[i];
                self.route(slot, e);
            }
            sent += n as u64;
        }
        self.stats.note_offs_sent(sent);
    }

    /// A part that leaves its slot: one that makes sound plays out its
    /// release as a tail (see [`audio`]); the rest goes back to be dropped.
    fn retire(&mut self, mut old: Box<OwnedRtPart>, failed: bool) {
        if failed || old.audio_channels() == 0 {
            self.discard(Garbage::Part(old));
            return;
        }
        // Its notes go into their release; the events stay here (the
        // successor, or the ledger, took care of what went out).
        let _ = old.all_notes_off(&mut self.release_buf);
        if let Some(cut) = self.audio.add_tail(old) {
            self.discard(Garbage::Part(cut));
        }
    }

    fn apply(&mut self, c: Command) {
        match c {
            Command::Install {
                slot,
                mut part,
                handoff,
            } => {
                let mut healthy = true;
                if let Some(old) = self.slots[slot].part.take() {
                    // With a successful handoff the held notes belong to the
                    // new part (the ledger stays with the slot); otherwise
                    // the engine ends them itself.
                    let mut handed_over = false;
                    if handoff && !self.slots[slot].failed {
                        // A fresh buffer each time: no part ever reads
                        // another swap's (or another slot's) bytes.
                        self.transient.fill(0);
                        if old.save_transient(&mut self.transient) == RtCall::Ok {
                            match part.restore_transient(&self.transient) {
                                RtCall::Ok => handed_over = true,
                                RtCall::Declined => {}
                                RtCall::Panicked => healthy = false,
                            }
                        }
                    }
                    if !handed_over {
                        self.release_slot(slot, 0);
                    }
                    let failed = self.slots[slot].failed;
                    self.retire(old, failed);
                }
                self.slots[slot].failed = !healthy;
                self.slots[slot].part = Some(part);
                if !healthy {
                    // Never called again; the supervisor hears of it.
                    self.stats.note_failure(slot);
                }
                self.stats.note_swap();
            }
            Command::Remove { slot } => {
                if let Some(mut old) = self.slots[slot].part.take() {
                    if !self.slots[slot].failed {
                        let (call, n) = old.all_notes_off(&mut self.scratch);
                        if call == RtCall::Ok {
                            for i in 0..n {
                                let e = self.scratch[i];
                                self.emit(slot, e);
                            }
                        }
                    }
                    self.release_slot(slot, 0);
                    let failed = self.slots[slot].failed;
                    self.retire(old, failed);
                }
                self.slots[slot].failed = false;
            }
            Command::Routing(r) => {
                let old = std::mem::replace(&mut self.routing, r);
                self.discard(Garbage::Routing(old));
            }
            Command::Tempo(bpm) => self.tempo = bpm,
        }
    }

    /// Runs one cycle of `frames` samples. Engine thread (or whatever
    /// thread the clock calls from); allocation-free.
    pub fn cycle(&mut self, frames: u32) {
        let started = Instant::now();
        alloc_guard::rt_section(|| self.cycle_inner(frames));
        self.stats.note_cycle(
            started.elapsed(),
            frames,
            self.sample_rate,
            alloc_guard::violations(),
        );
    }

    fn cycle_inner(&mut self, frames: u32) {
        self.emitted_len = 0;
        while let Ok(c) = self.commands.pop() {
            self.apply(c);
        }
        let pending = self.inputs.slots();
        self.stats.note_input_queue(pending);
        while let Ok(input) = self.inputs.pop() {
            if input.event.is_sysex() {
                // Its bytes wait in the byte ring (`inject_sysex`).
                self.take_injected_sysex(input.slot, input.event, frames);
                continue;
            }
            if input.slot < MAX_SLOTS {
                let mut e = input.event;
                e.frame = e.frame.min(frames.saturating_sub(1));
                push_sorted(&mut self.slots[input.slot], e, &self.stats);
            }
        }
        let mut ctx = BlockContext::new(self.position, self.sample_rate, self.tempo, frames);
        // Between blocks the anchor is the block's first frame.
        ctx.beat_position = self.beat_clock.beat;
        ctx.playing = self.beat_clock.playing as u32;
        let audio_frames = if frames as usize <= audio::MAX_AUDIO_FRAMES {
            frames as usize
        } else {
            0
        };
        self.audio.frames = audio_frames;
        self.audio.bus.clear(audio_frames);
        // This cycle's long messages (inputs already copied in) are in the
        // current arena; the backends read the emitted ones from it.
        self.long_emitted = self.long_cur;
        for i in 0..self.routing.order.len() {
            let slot = self.routing.order[i];
            let cur = self.long_cur;
            let long_in = self.long[cur].as_ptr();
            let long_in_len = self.long_len[cur];
            let long_out = self.long_out.as_mut_ptr();
            let long_out_cap = self.long_out.len();
            let s = &mut self.slots[slot];
            let input_len = s.input_len;
            s.input_len = 0;
            let Some(part) = s.part.as_mut() else {
                continue;
            };
            if s.failed {
                continue;
            }
            let channels = part.audio_channels();
            let mut pointers = [std::ptr::null_mut(); audio::BUS_CHANNELS];
            let mut part_ctx = self.audio.context_for(slot, channels, &ctx, &mut pointers);
            let mut long_dropped = 0u32;
            // SAFETY: the arenas are the core's own boxes, distinct, and
            // not touched while the part runs; the context (and the drop
            // counter on this stack) live for the call.
            unsafe {
                part_ctx.set_long_data(
                    long_in,
                    long_in_len,
                    long_out,
                    long_out_cap,
                    &mut long_dropped,
                )
            };
            let (call, n) = part.process(&part_ctx, &s.input[..input_len], &mut self.scratch);
            if long_dropped > 0 {
                self.stats.add_sysex_dropped(long_dropped as u64);
            }
            if call == RtCall::Panicked {
                s.failed = true;
                self.stats.note_failure(slot);
                self.release_slot(slot, 0);
                continue;
            }
            self.audio.mix_slot(slot, channels, audio_frames);
            for j in 0..n {
                let mut e = self.scratch[j];
                e.frame = e.frame.min(frames.saturating_sub(1));
                if e.is_sysex() {
                    // Into the cycle arena, once, for wires and backends.
                    match self.keep_part_sysex(slot, input_len, &e) {
                        Some(offset) => e.data_offset = offset,
                        None => continue,
                    }
                }
                self.emit(slot, e);
            }
        }
        // Replaced and removed parts play out their release.
        let mut done: [Option<Box<OwnedRtPart>>; audio::MAX_TAILS] = Default::default();
        self.audio
            .render_tails(&ctx, &mut self.release_buf, &mut done);
        for part in done.iter_mut().filter_map(Option::take) {
            self.discard(Garbage::Part(part));
        }
        let (peak, rms) = self.audio.bus.level(audio_frames);
        self.stats.note_level(peak, rms);
        // Slots that are not in the routing do not keep stale input.
        for s in self.slots.iter_mut() {
            s.input_len = 0;
        }
        // The next cycle fills the other arena; this one stays readable
        // (`emitted`) until the end of the next cycle.
        self.long_cur ^= 1;
        self.long_len[self.long_cur] = 0;
        self.position += frames as u64;
        // The beat moves on at this block's tempo (put on an external grid
        // by ticks, held by a transport Stop), and a followed tempo takes
        // effect from the next block.
        let bpf = self.beats_per_frame();
        self.beat_clock.end_block(frames, bpf);
        if let Some(bpm) = self.pending_tempo.take() {
            self.tempo = bpm;
        }
        self.stats.note_tempo(self.tempo);
    }

    /// Delivers an event from outside (a backend's input port) to `slot`
    /// in the next cycle, at its frame. Call on the thread that runs the
    /// cycles, before [`EngineCore::cycle`]. Allocation-free. A SysEx event
    /// cannot come this way (its bytes would be missing): it is dropped and
    /// counted; use [`EngineCore::push_input_sysex`].
    pub fn push_input(&mut self, slot: usize, event: RtEvent) {
        if event.is_sysex() {
            self.stats.note_sysex_dropped();
            return;
        }
        if slot < MAX_SLOTS {
            push_sorted(&mut self.slots[slot], event, &self.stats);
        }
    }

    /// Delivers a long message (a whole SysEx, `0xF0 … 0xF7`) from outside
    /// to `slot` in the next cycle, at `frame`: its bytes are copied into
    /// the next cycle's arena. Returns false when the message is not a whole
    /// SysEx or does not fit (dropped whole and counted in
    /// [`StatsSnapshot::sysex_dropped`](crate::StatsSnapshot::sysex_dropped)).
    /// Call on the thread that runs the cycles, before
    /// [`EngineCore::cycle`]. Allocation-free.
    pub fn push_input_sysex(&mut self, slot: usize, frame: u32, bytes: &[u8]) -> bool {
        self.push_input_sysex_on(slot, 0, frame, bytes)
    }

    /// [`EngineCore::push_input_sysex`] arriving on input number `input`
    /// (a port bound to that input). Engine thread.
    pub fn push_input_sysex_on(
        &mut self,
        slot: usize,
        input: u8,
        frame: u32,
        bytes: &[u8],
    ) -> bool {
        let whole = bytes.len() >= 2 && bytes[0] == 0xF0 && bytes[bytes.len() - 1] == 0xF7;
        if slot >= MAX_SLOTS || !whole {
            self.stats.note_sysex_dropped();
            return false;
        }
        let Some(offset) = self.keep(bytes) else {
            return false;
        };
        let event = RtEvent {
            frame,
            port: input,
            kind: imp::event_kind::SYSEX,
            data_offset: offset,
            data_len: bytes.len() as u32,
            ..RtEvent::default()
        };
        push_sorted(&mut self.slots[slot], event, &self.stats);
        true
    }

    /// An injected SysEx: its bytes from the byte ring into the arena, the
    /// event to `slot`'s input.
    fn take_injected_sysex(&mut self, slot: usize, mut e: RtEvent, frames: u32) {
        let Ok(chunk) = self.injected_sysex.read_chunk(e.data_len as usize) else {
            self.stats.note_sysex_dropped();
            return;
        };
        let (a, b) = chunk.as_slices();
        let cur = self.long_cur;
        let start = self.long_len[cur];
        let kept = append(&mut self.long[cur], &mut self.long_len[cur], a, &self.stats)
            .and_then(|_| append(&mut self.long[cur], &mut self.long_len[cur], b, &self.stats));
        chunk.commit_all();
        if kept.is_none() {
            // Not truncated: the part that fitted is given back.
            self.long_len[cur] = start;
            return;
        }
        if slot < MAX_SLOTS {
            e.frame = e.frame.min(frames.saturating_sub(1));
            e.data_offset = start as u32;
            push_sorted(&mut self.slots[slot], e, &self.stats);
        }
    }

    /// Copies `bytes` into the current cycle arena; their offset, or `None`
    /// (counted) when they do not fit.
    fn keep(&mut self, bytes: &[u8]) -> Option<u32> {
        let cur = self.long_cur;
        append(
            &mut self.long[cur],
            &mut self.long_len[cur],
            bytes,
            &self.stats,
        )
    }

    /// Copies the bytes of a SysEx event `slot` wrote (in the output
    /// arena) into the cycle arena; the new offset, or `None` (counted). A
    /// message the part passed on unchanged from its input (the first
    /// `input_len` events of its slot) is already there: it keeps that
    /// offset, so a chain of pass-through parts costs the arena one copy.
    fn keep_part_sysex(&mut self, slot: usize, input_len: usize, e: &RtEvent) -> Option<u32> {
        let start = e.data_offset as usize;
        let Some(bytes) = start
            .checked_add(e.data_len as usize)
            .and_then(|end| self.long_out.get(start..end))
        else {
            self.stats.note_sysex_dropped();
            return None;
        };
        let cur = self.long_cur;
        let arena = &self.long[cur][..self.long_len[cur]];
        for input in &self.slots[slot].input[..input_len] {
            if input.is_sysex() && input.data_len == e.data_len {
                let from = input.data_offset as usize;
                if arena.get(from..from + bytes.len()) == Some(bytes) {
                    return Some(input.data_offset);
                }
            }
        }
        append(
            &mut self.long[cur],
            &mut self.long_len[cur],
            bytes,
            &self.stats,
        )
    }

    /// The bytes of a SysEx event of the last cycle's
    /// [`EngineCore::emitted`] list (`0xF0 … 0xF7`); `None` for any other
    /// event. Valid until the end of the next cycle. Allocation-free.
    pub fn sysex_bytes(&self, e: &RtEvent) -> Option<&[u8]> {
        if !e.is_sysex() {
            return None;
        }
        let arena = &self.long[self.long_emitted][..self.long_len[self.long_emitted]];
        let start = e.data_offset as usize;
        arena.get(start..start.checked_add(e.data_len as usize)?)
    }

    /// The engine's counters, to count what a backend could not carry
    /// (e.g. [`EngineStats::note_sysex_dropped`]). Any thread.
    pub fn stats(&self) -> &EngineStats {
        &self.stats
    }

    /// Every event the slots emitted in the last cycle (after the ledger),
    /// with its absolute time; a backend sends those of its port-bound
    /// slots out after the cycle. Allocation-free.
    pub fn emitted(&self) -> &[EmittedEvent] {
        &self.emitted[..self.emitted_len]
    }

    /// The output bus after the last cycle: left and right, one block
    /// long (empty when the block was longer than
    /// [`audio::MAX_AUDIO_FRAMES`]). Every audio part of the cycle and every
    /// release tail is summed in. Allocation-free.
    pub fn audio_out(&self) -> (&[f32], &[f32]) {
        self.audio.bus.channels(self.audio.frames)
    }

    /// Samples processed so far.
    pub fn position(&self) -> u64 {
        self.position
    }

    /// Ends every sounding note of every slot (shutdown): applies the
    /// commands still queued (a removal's note-offs), then releases every
    /// slot's ledger. [`EngineCore::emitted`] then holds the note-offs for
    /// the backend to send. Engine thread.
    pub fn all_notes_off(&mut self) {
        self.emitted_len = 0;
        alloc_guard::rt_section(|| {
            while let Ok(c) = self.commands.pop() {
                self.apply(c);
            }
            for slot in 0..MAX_SLOTS {
                if !self.slots[slot].ledger.is_silent() {
                    self.release_slot(slot, 0);
                }
            }
            let mut done: [Option<Box<OwnedRtPart>>; audio::MAX_TAILS] = Default::default();
            let tails = self.audio.tails.iter_mut().filter_map(Option::take);
            for (d, t) in done.iter_mut().zip(tails) {
                *d = Some(t.part);
            }
            for part in done.iter_mut().filter_map(Option::take) {
                self.discard(Garbage::Part(part));
            }
        });
    }

    /// Notes currently sounding from `slot` (as the ledger sees them).
    pub fn sounding(&self, slot: usize) -> u32 {
        self.slots[slot].ledger.count()
    }
}

/// Appends `bytes` to an arena holding `len` bytes; their offset, or
/// `None` (counted as a dropped SysEx) when they do not fit: a message is
/// never truncated. Allocation-free.
fn append(arena: &mut [u8], len: &mut usize, bytes: &[u8], stats: &EngineStats) -> Option<u32> {
    let start = *len;
    let end = start + bytes.len();
    if end > arena.len() || u32::try_from(end).is_err() {
        stats.note_sysex_dropped();
        return None;
    }
    arena[start..end].copy_from_slice(bytes);
    *len = end;
    Some(start as u32)
}

fn push_sorted(slot: &mut Slot, e: RtEvent, stats: &EngineStats) {
    if slot.input_len == slot.input.len() {
        stats.note_dropped();
        return;
    }
    // Keep frame order (stable): walk back past later events.
    let mut i = slot.input_len;
    while i > 0 && slot.input[i - 1].frame > e.frame {
        slot.input[i] = slot.input[i - 1];
        i -= 1;
    }
    slot.input[i] = e;
    slot.input_len += 1;
}
