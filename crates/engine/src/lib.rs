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
//! Long messages (SysEx): an [`imp::RtEvent`] carries at most 3 MIDI
//! bytes, so a longer message travels as an event of kind
//! [`imp::event_kind::SYSEX`] whose bytes live in engine-owned arenas
//! allocated by [`engine`] (each [`EngineConfig::sysex_arena_bytes`] long,
//! 64 KiB by default) and never grown:
//!
//! - two **cycle arenas**, used in turn: backends copy the SysEx they
//!   receive into the next cycle's arena ([`EngineCore::push_input_sysex`]);
//!   during the cycle every SysEx a part emits is copied there too, once,
//!   and both the slots it is wired to (as input, in the same cycle) and the
//!   backends (through [`EngineCore::emitted`] and
//!   [`EngineCore::sysex_bytes`], until the end of the next cycle) read it
//!   from there. Each part sees the arena as its `BlockContext`'s input
//!   long data;
//! - one **output arena**, handed to each part for its `process` call, which
//!   `EventWriter::push_sysex` fills.
//!
//! A message that does not fit is dropped whole and counted
//! ([`StatsSnapshot::sysex_dropped`]). SysEx never enters the note ledgers.
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
mod clock;
mod core;
mod handle;
pub mod ledger;
pub mod realtime;
pub mod routing;
mod rt;
mod stats;
#[cfg(test)]
mod sysex_tests;

pub use crate::core::{EmittedEvent, EngineCore, InputEvent};
pub use clock::{ClockDriver, InternalClock};
pub use handle::EngineHandle;
pub use realtime::promote_to_realtime;
pub use routing::{Routing, Wire};
pub use rt::{OwnedRtPart, RtCall};
pub use stats::{EngineStats, StatsSnapshot};

use crate::core::Slot;
use imp::{RtEvent, TRANSIENT_BYTES};
use ledger::NoteLedger;
use std::sync::Arc;

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
/// Default size of each long-data arena ([`EngineConfig::sysex_arena_bytes`]):
/// 64 KiB, room for 64 SysEx messages of 1 KiB in one cycle, or one bulk
/// dump of up to 64 KiB.
pub const DEFAULT_SYSEX_ARENA_BYTES: usize = 64 * 1024;

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
    /// Not a whole SysEx message (`0xF0 … 0xF7`), or a SysEx event given
    /// where only fixed-size events go.
    #[error("not a whole SysEx message (F0 ... F7); SysEx goes through inject_sysex")]
    NotSysex,
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
    /// Size in bytes of each of the engine's three long-data arenas (see
    /// "Long messages" in the crate docs): the most SysEx bytes one cycle
    /// can carry, all slots together, and the most one RT part can write in
    /// one call. A message that does not fit is dropped whole and counted
    /// in [`StatsSnapshot::sysex_dropped`]; it is never truncated.
    pub sysex_arena_bytes: usize,
}

impl Default for EngineConfig {
    fn default() -> Self {
        EngineConfig {
            sample_rate: 48_000,
            block_size: 64,
            tempo_bpm: 120.0,
            sysex_arena_bytes: DEFAULT_SYSEX_ARENA_BYTES,
        }
    }
}

pub(crate) enum Command {
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

/// Creates a connected handle and core. Call off the engine thread: this is
/// where every buffer the core will ever use is allocated.
pub fn engine(config: EngineConfig) -> (EngineHandle, EngineCore) {
    let (cmd_tx, cmd_rx) = rtrb::RingBuffer::new(COMMAND_QUEUE);
    let (gar_tx, gar_rx) = rtrb::RingBuffer::new(GARBAGE_QUEUE);
    let (in_tx, in_rx) = rtrb::RingBuffer::new(INPUT_QUEUE);
    // Bytes of SysEx injected by the control thread, in queue order.
    let (sysex_tx, sysex_rx) = rtrb::RingBuffer::new(config.sysex_arena_bytes.max(1));
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
        injected_sysex: sysex_rx,
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
        long: [
            vec![0u8; config.sysex_arena_bytes].into_boxed_slice(),
            vec![0u8; config.sysex_arena_bytes].into_boxed_slice(),
        ],
        long_len: [0; 2],
        long_cur: 0,
        long_emitted: 0,
        long_out: vec![0u8; config.sysex_arena_bytes].into_boxed_slice(),
        audio: audio::Audio::new(MAX_SLOTS),
        position: 0,
        sample_rate: config.sample_rate as f64,
        tempo: config.tempo_bpm,
        pending_tempo: None,
        beat_clock: core::BeatClock::new(0.0),
    };
    let handle = EngineHandle {
        commands: cmd_tx,
        garbage: gar_rx,
        inputs: in_tx,
        injected_sysex: sysex_tx,
        stats,
        config,
    };
    (handle, core)
}
