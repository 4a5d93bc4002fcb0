//! # engine: the real-time thread
//!
//! One clock drives everything, counted in samples. Each cycle the engine
//! applies pending commands (install or swap an imp's RT part, remove one,
//! new routing, tempo), delivers injected input events, and calls the RT
//! parts in wiring order, passing each one's numbered outputs to the slots
//! wired to them within the same cycle.
//!
//! The split follows rtrb and basedrop: the [`EngineHandle`] lives on the
//! control thread and owns the producing ends of the queues; the
//! [`EngineCore`] lives on the engine thread. Everything the core lets go of
//! (old RT parts, old routings) travels back through a queue and is dropped
//! by the handle's [`EngineHandle::collect_garbage`]. The core never
//! allocates, locks, blocks or logs; [`alloc_guard::rt_section`] wraps every
//! cycle so tests can prove it.
//!
//! Clocks: [`InternalClock`] runs cycles on its own thread at the block
//! rate; a JACK process callback or an audio callback drives the core the
//! same way by calling [`EngineCore::cycle`] with its own frame count; tests
//! call it by hand (a manual clock).
//!
//! Stuck-note safety: the core keeps a [`ledger::NoteLedger`] per slot of
//! the notes each slot has left sounding, keyed by the numbered output,
//! channel and note each went to. When a slot's RT part is removed, or
//! panics, or a swap hands no state over, the core sends the note-offs
//! itself, each out of the output its note left by, along the same wires;
//! a note-off for a note that is not sounding is dropped.

pub mod alloc_guard;
pub mod audio;
pub mod ledger;
pub mod routing;
mod rt;
mod stats;

pub use routing::{Routing, Wire};
pub use rt::{OwnedRtPart, RtCall};
pub use stats::{EngineStats, StatsSnapshot};

use imp::{BlockContext, RtEvent, TRANSIENT_BYTES};
use ledger::{NoteLedger, Verdict};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Number of slots (imps with an RT part) the engine can hold.
pub const MAX_SLOTS: usize = 64;
/// Events a slot can receive in one cycle.
pub const SLOT_INPUT_CAPACITY: usize = 512;
/// Events a slot can emit in one cycle.
pub const SLOT_OUTPUT_CAPACITY: usize = 1024;
const COMMAND_QUEUE: usize = 256;
const GARBAGE_QUEUE: usize = 512;
const INPUT_QUEUE: usize = 4096;
/// Events the engine can emit in one cycle, all slots together, for a
/// backend to pick up after the cycle ([`EngineCore::emitted`]).
pub const EMITTED_CAPACITY: usize = 8192;

/// Errors of the engine's control side.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    /// A slot number is out of range or not part of the routing.
    #[error("engine slot {0} does not exist (the engine has {MAX_SLOTS} slots)")]
    NoSuchSlot(usize),
    /// The wiring has a loop.
    #[error(
        "the wiring has a loop: events would circle forever; remove one of the wires in the loop"
    )]
    WiringCycle,
    /// A queue to the engine thread is full (the engine is not running or is overloaded).
    #[error("the engine's {0} queue is full: the engine thread is not keeping up or not running")]
    QueueFull(&'static str),
}

/// Settings of an engine.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct EngineConfig {
    /// Sample rate in Hz.
    pub sample_rate: u32,
    /// Frames per block of the internal clock.
    pub block_size: u32,
    /// Starting tempo in BPM.
    pub tempo_bpm: f64,
}

impl Default for EngineConfig {
    fn default() -> Self {
        EngineConfig {
            sample_rate: 48_000,
            block_size: 64,
            tempo_bpm: 120.0,
        }
    }
}

enum Command {
    Install {
        slot: usize,
        part: Box<OwnedRtPart>,
        handoff: bool,
    },
    Remove {
        slot: usize,
    },
    Routing(Box<Routing>),
    Tempo(f64),
}

/// Something the engine let go of, to be dropped off the engine thread.
pub enum Garbage {
    /// An RT part that was replaced or removed.
    Part(Box<OwnedRtPart>),
    /// A routing that was replaced.
    Routing(Box<Routing>),
}

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

struct Slot {
    part: Option<Box<OwnedRtPart>>,
    failed: bool,
    ledger: NoteLedger,
    input: Box<[RtEvent]>,
    input_len: usize,
}

/// The control side of an engine. Lives on one control thread.
pub struct EngineHandle {
    commands: rtrb::Producer<Command>,
    garbage: rtrb::Consumer<Garbage>,
    inputs: rtrb::Producer<InputEvent>,
    stats: Arc<EngineStats>,
    config: EngineConfig,
}

/// The real-time side of an engine. Lives on the engine thread.
pub struct EngineCore {
    commands: rtrb::Consumer<Command>,
    garbage: rtrb::Producer<Garbage>,
    inputs: rtrb::Consumer<InputEvent>,
    stats: Arc<EngineStats>,
    slots: Box<[Slot]>,
    routing: Box<Routing>,
    scratch: Box<[RtEvent]>,
    /// Note-offs of a slot being released (kept apart from `scratch`).
    release_buf: Box<[RtEvent]>,
    /// An empty ledger swapped in for one being released.
    spare_ledger: NoteLedger,
    emitted: Box<[EmittedEvent]>,
    emitted_len: usize,
    transient: Box<[u8; TRANSIENT_BYTES]>,
    audio: audio::Audio,
    position: u64,
    sample_rate: f64,
    tempo: f64,
}

/// Creates a connected handle and core. Call off the engine thread: this is
/// where every buffer the core will ever use is allocated.
pub fn engine(config: EngineConfig) -> (EngineHandle, EngineCore) {
    let (cmd_tx, cmd_rx) = rtrb::RingBuffer::new(COMMAND_QUEUE);
    let (gar_tx, gar_rx) = rtrb::RingBuffer::new(GARBAGE_QUEUE);
    let (in_tx, in_rx) = rtrb::RingBuffer::new(INPUT_QUEUE);
    let stats = Arc::new(EngineStats::default());
    let slots = (0..MAX_SLOTS)
        .map(|_| Slot {
            part: None,
            failed: false,
            ledger: NoteLedger::default(),
            input: vec![RtEvent::default(); SLOT_INPUT_CAPACITY].into_boxed_slice(),
            input_len: 0,
        })
        .collect::<Vec<_>>()
        .into_boxed_slice();
    let core = EngineCore {
        commands: cmd_rx,
        garbage: gar_tx,
        inputs: in_rx,
        stats: stats.clone(),
        slots,
        routing: Box::new(Routing::new(&[], &[]).expect("empty routing is valid")),
        scratch: vec![RtEvent::default(); SLOT_OUTPUT_CAPACITY].into_boxed_slice(),
        release_buf: vec![RtEvent::default(); SLOT_OUTPUT_CAPACITY].into_boxed_slice(),
        spare_ledger: NoteLedger::new(),
        emitted: vec![
            EmittedEvent {
                slot: 0,
                time: 0,
                event: RtEvent::default()
            };
            EMITTED_CAPACITY
        ]
        .into_boxed_slice(),
        emitted_len: 0,
        transient: Box::new([0; TRANSIENT_BYTES]),
        audio: audio::Audio::new(MAX_SLOTS),
        position: 0,
        sample_rate: config.sample_rate as f64,
        tempo: config.tempo_bpm,
    };
    let handle = EngineHandle {
        commands: cmd_tx,
        garbage: gar_rx,
        inputs: in_tx,
        stats,
        config,
    };
    (handle, core)
}

impl EngineHandle {
    fn send(&mut self, c: Command) -> Result<(), EngineError> {
        // Room in the garbage queue for whatever this command frees, so the
        // engine never has to keep or leak an object.
        if self.garbage.slots() < COMMAND_QUEUE {
            self.collect_garbage();
        }
        let used = COMMAND_QUEUE - self.commands.slots();
        self.stats.note_command_queue(used + 1);
        self.commands
            .push(c)
            .map_err(|_| EngineError::QueueFull("command"))
    }

    /// The engine's settings.
    pub fn config(&self) -> EngineConfig {
        self.config
    }

    /// Puts an RT part into `slot`. With `handoff`, a part already there
    /// hands its transient state to the new one (a hot swap, nothing
    /// sounding is lost); without, the old part's notes are ended.
    pub fn install(
        &mut self,
        slot: usize,
        part: OwnedRtPart,
        handoff: bool,
    ) -> Result<(), EngineError> {
        if slot >= MAX_SLOTS {
            return Err(EngineError::NoSuchSlot(slot));
        }
        self.send(Command::Install {
            slot,
            part: Box::new(part),
            handoff,
        })
    }

    /// Removes the RT part in `slot`, ending its notes.
    pub fn remove(&mut self, slot: usize) -> Result<(), EngineError> {
        if slot >= MAX_SLOTS {
            return Err(EngineError::NoSuchSlot(slot));
        }
        self.send(Command::Remove { slot })
    }

    /// Replaces the routing.
    pub fn set_routing(&mut self, routing: Routing) -> Result<(), EngineError> {
        self.send(Command::Routing(Box::new(routing)))
    }

    /// Sets the tempo in BPM.
    pub fn set_tempo(&mut self, bpm: f64) -> Result<(), EngineError> {
        self.send(Command::Tempo(bpm))
    }

    /// Queues an event for `slot`, delivered in the next cycle at its frame
    /// (clamped to the block).
    pub fn inject(&mut self, slot: usize, event: RtEvent) -> Result<(), EngineError> {
        self.inputs
            .push(InputEvent { slot, event })
            .map_err(|_| EngineError::QueueFull("input"))
    }

    /// Drops everything the engine let go of. Call regularly from the
    /// control thread. Returns how many objects were dropped.
    pub fn collect_garbage(&mut self) -> usize {
        let mut n = 0;
        while let Ok(g) = self.garbage.pop() {
            drop(g);
            n += 1;
        }
        n
    }

    /// Slots whose RT part panicked since the last call (bit i = slot i).
    pub fn take_failures(&self) -> u64 {
        self.stats.take_failures()
    }

    /// The engine's counters.
    pub fn stats(&self) -> StatsSnapshot {
        self.stats.snapshot(self.config)
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

    /// Passes one event a slot emitted through its ledger, then routes it.
    fn emit(&mut self, slot: usize, e: RtEvent) {
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
            if input.slot < MAX_SLOTS {
                let mut e = input.event;
                e.frame = e.frame.min(frames.saturating_sub(1));
                push_sorted(&mut self.slots[input.slot], e, &self.stats);
            }
        }
        let ctx = BlockContext::new(self.position, self.sample_rate, self.tempo, frames);
        let audio_frames = if frames as usize <= audio::MAX_AUDIO_FRAMES {
            frames as usize
        } else {
            0
        };
        self.audio.frames = audio_frames;
        self.audio.bus.clear(audio_frames);
        for i in 0..self.routing.order.len() {
            let slot = self.routing.order[i];
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
            let part_ctx = self.audio.context_for(slot, channels, &ctx, &mut pointers);
            let (call, n) = part.process(&part_ctx, &s.input[..input_len], &mut self.scratch);
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
        self.position += frames as u64;
    }

    /// Delivers an event from outside (a backend's input port) to `slot`
    /// in the next cycle, at its frame. Call on the thread that runs the
    /// cycles, before [`EngineCore::cycle`]. Allocation-free.
    pub fn push_input(&mut self, slot: usize, event: RtEvent) {
        if slot < MAX_SLOTS {
            push_sorted(&mut self.slots[slot], event, &self.stats);
        }
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

/// What a backend does around each cycle of the internal clock, on the
/// engine thread: deliver input before, send output after. Must not
/// allocate, lock or block.
pub trait ClockDriver: Send + 'static {
    /// Before the cycle: deliver input with [`EngineCore::push_input`].
    fn before_cycle(&mut self, core: &mut EngineCore, frames: u32);
    /// After the cycle: send [`EngineCore::emitted`] events out.
    fn after_cycle(&mut self, core: &mut EngineCore, frames: u32);
    /// The clock stops: end every note (the engine's and the ports' own
    /// ledgers) and send those note-offs out, before the ports go. The
    /// default ends the engine's notes and sends them like a cycle's output.
    fn stop(&mut self, core: &mut EngineCore, frames: u32) {
        core.all_notes_off();
        self.after_cycle(core, frames);
    }
}

/// No ports: the clock only runs cycles.
impl ClockDriver for () {
    fn before_cycle(&mut self, _: &mut EngineCore, _: u32) {}
    fn after_cycle(&mut self, _: &mut EngineCore, _: u32) {}
}

/// Drives an [`EngineCore`] from its own thread at the block rate.
pub struct InternalClock {
    stop: Arc<std::sync::atomic::AtomicBool>,
    thread: Option<std::thread::JoinHandle<EngineCore>>,
}

impl InternalClock {
    /// Starts the clock thread. Asks for real-time priority (SCHED_FIFO);
    /// when the system refuses, says so in the log and runs anyway.
    pub fn start(
        mut core: EngineCore,
        config: EngineConfig,
        mut driver: impl ClockDriver,
    ) -> std::io::Result<InternalClock> {
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let stop2 = stop.clone();
        let block = Duration::from_secs_f64(config.block_size as f64 / config.sample_rate as f64);
        let thread = std::thread::Builder::new()
            .name("impresario-engine".into())
            .spawn(move || {
                if let Err(e) = promote_to_realtime(70) {
                    tracing::warn!(
                    "real-time priority refused ({e}); the engine runs at normal priority and may \
                     glitch under load. Grant it with `ulimit -r 95` / an rtprio entry in \
                     /etc/security/limits.d for your user (the audio group)"
                );
                }
                let mut deadline = Instant::now();
                while !stop2.load(std::sync::atomic::Ordering::Acquire) {
                    alloc_guard::rt_section(|| driver.before_cycle(&mut core, config.block_size));
                    core.cycle(config.block_size);
                    alloc_guard::rt_section(|| driver.after_cycle(&mut core, config.block_size));
                    deadline += block;
                    let now = Instant::now();
                    if deadline > now {
                        std::thread::sleep(deadline - now);
                    } else if now - deadline > block * 4 {
                        // Far behind (suspend, debugger): resynchronise
                        // instead of racing through a backlog.
                        core.stats.note_overrun();
                        deadline = now;
                    }
                }
                // The last notes the shutdown released go out too.
                alloc_guard::rt_section(|| driver.stop(&mut core, config.block_size));
                core
            })?;
        Ok(InternalClock {
            stop,
            thread: Some(thread),
        })
    }

    /// Stops the clock after the current cycle, ends all notes, and returns the core.
    pub fn stop(mut self) -> Option<EngineCore> {
        self.stop.store(true, std::sync::atomic::Ordering::Release);
        self.thread.take().and_then(|t| t.join().ok())
    }
}

impl Drop for InternalClock {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::Release);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Gives the calling thread SCHED_FIFO priority `priority`.
pub fn promote_to_realtime(priority: i32) -> std::io::Result<()> {
    // SAFETY: plain libc calls on the current thread with a valid param.
    unsafe {
        let param = libc::sched_param {
            sched_priority: priority,
        };
        let rc = libc::pthread_setschedparam(libc::pthread_self(), libc::SCHED_FIFO, &param);
        if rc == 0 {
            Ok(())
        } else {
            Err(std::io::Error::from_raw_os_error(rc))
        }
    }
}
