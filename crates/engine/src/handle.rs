//! The engine's control side: what the control thread holds to install,
//! swap and remove RT parts, route, set the tempo, inject events, and take
//! back what the engine let go of.

use crate::stats::{EngineStats, StatsSnapshot};
use crate::{
    Command, EngineConfig, EngineError, Garbage, InputEvent, OwnedRtPart, Routing, COMMAND_QUEUE,
    MAX_SLOTS,
};
use imp::RtEvent;
use std::sync::Arc;

/// The control side of an engine. Lives on one control thread.
pub struct EngineHandle {
    pub(crate) commands: rtrb::Producer<Command>,
    pub(crate) garbage: rtrb::Consumer<Garbage>,
    pub(crate) inputs: rtrb::Producer<InputEvent>,
    /// Bytes of injected SysEx; their events follow in `inputs`.
    pub(crate) injected_sysex: rtrb::Producer<u8>,
    pub(crate) stats: Arc<EngineStats>,
    pub(crate) config: EngineConfig,
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
    /// (clamped to the block). A SysEx goes with [`EngineHandle::inject_sysex`]
    /// (an event of kind SYSEX here would carry no bytes: it is refused).
    pub fn inject(&mut self, slot: usize, event: RtEvent) -> Result<(), EngineError> {
        if event.is_sysex() {
            return Err(EngineError::NotSysex);
        }
        self.inputs
            .push(InputEvent { slot, event })
            .map_err(|_| EngineError::QueueFull("input"))
    }

    /// Queues a whole SysEx (`0xF0 … 0xF7`) for `slot`, delivered in the next
    /// cycle at frame `frame` (clamped to the block): its bytes go through a
    /// byte ring as long as the engine's arena, and the engine copies them
    /// into its arena. Control thread.
    pub fn inject_sysex(
        &mut self,
        slot: usize,
        frame: u32,
        bytes: &[u8],
    ) -> Result<(), EngineError> {
        let whole = bytes.len() >= 2 && bytes[0] == 0xF0 && bytes[bytes.len() - 1] == 0xF7;
        let len = u32::try_from(bytes.len()).map_err(|_| EngineError::QueueFull("SysEx"))?;
        if !whole {
            return Err(EngineError::NotSysex);
        }
        if self.inputs.slots() == 0 {
            return Err(EngineError::QueueFull("input"));
        }
        let mut chunk = self
            .injected_sysex
            .write_chunk(bytes.len())
            .map_err(|_| EngineError::QueueFull("SysEx"))?;
        let (a, b) = chunk.as_mut_slices();
        let split = a.len();
        a.copy_from_slice(&bytes[..split]);
        b.copy_from_slice(&bytes[split..]);
        chunk.commit_all();
        // One producer: the slot checked above is still free; the event
        // follows its bytes, so the engine finds them when it pops it.
        let event = RtEvent {
            frame,
            kind: imp::event_kind::SYSEX,
            data_len: len,
            ..RtEvent::default()
        };
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

    /// Cycles run so far; unlike [`EngineHandle::stats`] it resets nothing
    /// (a liveness check, e.g. the service watchdog, reads it).
    pub fn cycles(&self) -> u64 {
        self.stats.cycles()
    }
}
