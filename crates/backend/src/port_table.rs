//! The port table: which engine slot each open port belongs to, as the
//! engine thread sees it. The control thread changes it through a ring; the engine thread
//! applies the changes between cycles.
//!
//! Every output port keeps a [`NoteLedger`] of the notes it left sounding:
//! a note-off for a note that is not sounding on that port is dropped, and
//! a port that closes first sends a note-off for every note still sounding
//! on it (then lifts its held pedals). Closing is two-step: a removal seen
//! before a cycle marks the port as closing; from then on it reads no input
//! and takes no new output, and after that cycle its ledger's note-offs are
//! written out of it and it is retired. So every note that left a port
//! gets exactly one note-off on that port, whatever the engine or the imps
//! upstream do meanwhile, and a port never closes before them.

use engine::ledger::{NoteLedger, Verdict};
use imp::ports::{Direction, PortSpec};
use imp::RtEvent;
use realm::ports::PortError;
use std::collections::BTreeMap;

/// Ports a backend can hold open at once.
pub const MAX_PORTS: usize = 64;

/// One open port as the engine thread holds it.
pub struct Bound<P> {
    /// The port id the imp holds.
    pub id: u64,
    /// The engine slot of the imp.
    pub slot: usize,
    /// In or out.
    pub direction: Direction,
    /// The backend's port object.
    pub port: P,
    /// Output ports: the imp's numbered output this port takes (`None`: all).
    pub output: Option<u8>,
    /// Input ports: the input number its events arrive on.
    pub input: u8,
    /// What this port left sounding (output ports).
    ledger: NoteLedger,
    /// Cycles since the control side removed it (0: open). In the first
    /// closing cycle its ledger's note-offs go out; the second writes
    /// nothing (a JACK buffer that is not written again would repeat its
    /// last content until the port is unregistered); then it is retired.
    closing: u8,
}

impl<P> Bound<P> {
    /// True once the control side closed the port: it reads no input, and
    /// is retired after this cycle's output.
    pub fn is_closing(&self) -> bool {
        self.closing > 0
    }

    /// The backend's port object and the port's ledger, to write a cycle's
    /// output through the one while the other filters it.
    pub fn output(&mut self) -> (&mut P, Gate<'_>) {
        (
            &mut self.port,
            Gate {
                ledger: &mut self.ledger,
                closing: self.closing > 0,
            },
        )
    }
}

/// The ledger of one output port, while its output is written.
pub struct Gate<'a> {
    ledger: &'a mut NoteLedger,
    closing: bool,
}

impl Gate<'_> {
    /// Filters an event about to leave the port: `None` for a note-off of
    /// a note that is not sounding on the port, or a note-on the port
    /// cannot track. Engine thread; allocation-free.
    pub fn admit(&mut self, e: &RtEvent) -> Option<RtEvent> {
        if self.closing {
            // Its own ledger ends what it has sounding; nothing new starts.
            return None;
        }
        let mut e = *e;
        // The port is the destination: the slot's output number is not part of it.
        e.port = 0;
        match self.ledger.record(&e) {
            Verdict::Pass => Some(e),
            Verdict::Orphan | Verdict::Full => None,
        }
    }

    /// For a closing port: a note-off at `frame` for every note still
    /// sounding on it, then the held pedals lifted, each through `write`
    /// (which returns false when it has no room). Engine thread;
    /// allocation-free.
    pub fn release_if_closing(&mut self, frame: u32, write: impl FnMut(RtEvent) -> bool) {
        if self.closing {
            self.ledger.release(frame, write);
        }
    }
}

/// A change sent to the engine thread.
pub enum Change<P> {
    /// A new port.
    Add(Bound<P>),
    /// Close the port with this id (its object comes back to be dropped
    /// after the cycle's output left through it).
    Remove(u64),
}

/// The engine thread's table of ports (fixed size: no allocation).
pub struct Table<P> {
    entries: Vec<Option<Bound<P>>>,
}

impl<P> Table<P> {
    /// An empty table with room for [`MAX_PORTS`]. Allocates: call off the engine thread.
    pub fn new() -> Table<P> {
        Table {
            entries: (0..MAX_PORTS).map(|_| None).collect(),
        }
    }

    /// Applies pending changes: new ports are added, removed ones marked
    /// closing (see [`Table::retire_closing`]). Engine thread;
    /// allocation-free.
    pub fn apply(&mut self, changes: &mut rtrb::Consumer<Change<P>>, retired: &mut Retired<P>) {
        while let Ok(change) = changes.pop() {
            match change {
                Change::Add(b) => {
                    if let Some(free) = self.entries.iter_mut().find(|e| e.is_none()) {
                        *free = Some(b);
                    } else if let Err(rtrb::PushError::Full(b)) = retired.push(b) {
                        // The control side keeps fewer than MAX_PORTS open.
                        std::mem::forget(b);
                    }
                }
                Change::Remove(id) => {
                    for b in self.entries.iter_mut().flatten() {
                        if b.id == id && b.closing == 0 {
                            b.closing = 1;
                        }
                    }
                }
            }
        }
    }

    /// Moves closing ports on: retires those whose last cycle was written
    /// (see [`Bound`]); call after the cycle's output was written (with
    /// [`Gate::release_if_closing`]). The port object, with its ledger,
    /// goes back to be dropped off the engine thread. Engine thread;
    /// allocation-free.
    pub fn retire_closing(&mut self, retired: &mut Retired<P>) {
        for e in self.entries.iter_mut() {
            let Some(b) = e.as_mut() else {
                continue;
            };
            match b.closing {
                0 => {}
                1 => b.closing = 2,
                _ => {
                    if let Some(b) = e.take() {
                        if let Err(rtrb::PushError::Full(b)) = retired.push(b) {
                            std::mem::forget(b);
                        }
                    }
                }
            }
        }
    }

    /// Marks every port closing (the backend stops): the next
    /// [`Table::retire_closing`] ends their notes' ledgers and retires them.
    /// Engine thread; allocation-free.
    pub fn close_all(&mut self) {
        for b in self.entries.iter_mut().flatten() {
            if b.closing == 0 {
                b.closing = 1;
            }
        }
    }

    /// The open ports.
    pub fn iter_mut(&mut self) -> impl Iterator<Item = &mut Bound<P>> {
        self.entries.iter_mut().flatten()
    }
}

impl<P> Default for Table<P> {
    fn default() -> Self {
        Self::new()
    }
}

/// The ring that carries retired ports back to be dropped.
pub type Retired<P> = rtrb::Producer<Bound<P>>;

/// The control side's bookkeeping of open ports: ids, what the backend
/// keeps per port (`O`), and the rings to and from the engine thread.
pub struct Registry<P, O> {
    next_id: u64,
    open: BTreeMap<u64, O>,
    /// Closed by an imp, still in the engine's table until its last output left.
    closing: BTreeMap<u64, O>,
    changes: rtrb::Producer<Change<P>>,
    retired: rtrb::Consumer<Bound<P>>,
}

/// What the engine side of a backend needs: the table and its rings.
pub struct EngineSide<P> {
    /// The ports as the engine thread holds them.
    pub table: Table<P>,
    /// Changes from the control side.
    pub changes: rtrb::Consumer<Change<P>>,
    /// Port objects going back to be dropped.
    pub retired: Retired<P>,
}

impl<P> EngineSide<P> {
    /// Applies pending changes (before a cycle). Engine thread; allocation-free.
    pub fn apply(&mut self) {
        self.table.apply(&mut self.changes, &mut self.retired);
    }

    /// The backend stops: pending changes applied, every note the engine
    /// holds ended, every port closing; the next output written ends what
    /// the ports hold and retires them. Engine thread; allocation-free.
    pub fn end_everything(&mut self, core: &mut engine::EngineCore) {
        self.apply();
        core.all_notes_off();
        self.table.close_all();
    }

    /// Retires closing ports (after a cycle's output was written). Engine
    /// thread; allocation-free.
    pub fn retire_closing(&mut self) {
        self.table.retire_closing(&mut self.retired);
    }
}

/// Creates a registry and the engine side it feeds. Allocates.
pub fn registry<P, O>() -> (Registry<P, O>, EngineSide<P>) {
    let (changes_tx, changes_rx) = rtrb::RingBuffer::new(256);
    let (retired_tx, retired_rx) = rtrb::RingBuffer::new(256);
    (
        Registry {
            next_id: 1,
            open: BTreeMap::new(),
            closing: BTreeMap::new(),
            changes: changes_tx,
            retired: retired_rx,
        },
        EngineSide {
            table: Table::new(),
            changes: changes_rx,
            retired: retired_tx,
        },
    )
}

impl<P, O> Registry<P, O> {
    /// Hands a new port to the engine thread; returns its id.
    pub fn add(
        &mut self,
        slot: usize,
        spec: &PortSpec,
        port: P,
        info: O,
    ) -> Result<u64, PortError> {
        let id = self.next_id;
        let bound = Bound {
            id,
            slot,
            direction: spec.direction,
            port,
            output: spec.output,
            input: spec.input,
            ledger: NoteLedger::new(),
            closing: 0,
        };
        if self.changes.push(Change::Add(bound)).is_err() {
            return Err(PortError::Invalid(
                "too many port changes at once; try again".into(),
            ));
        }
        self.next_id += 1;
        self.open.insert(id, info);
        Ok(id)
    }

    /// Takes a port away from the engine thread. It closes after the
    /// engine's next cycle wrote its last output through it; its object and
    /// what the backend keeps for it come back through
    /// [`Registry::drain_retired`] (keep the device open until then).
    pub fn remove(&mut self, id: u64) {
        let Some(info) = self.open.remove(&id) else {
            return;
        };
        if self.changes.push(Change::Remove(id)).is_ok() {
            self.closing.insert(id, info);
        }
    }

    /// What the backend keeps for port `id`.
    pub fn get(&self, id: u64) -> Option<&O> {
        self.open.get(&id)
    }

    /// Everything open (closing ports not included).
    pub fn values(&self) -> impl Iterator<Item = &O> {
        self.open.values()
    }

    /// Hands each port object the engine let go of, with what the backend
    /// kept for it, to `f` (to unregister or drop them).
    pub fn drain_retired(&mut self, mut f: impl FnMut(P, Option<O>)) {
        while let Ok(b) = self.retired.pop() {
            let info = self
                .closing
                .remove(&b.id)
                .or_else(|| self.open.remove(&b.id));
            f(b.port, info);
        }
    }

    /// Ports closed by their imps whose engine side has not let go yet.
    pub fn closing(&self) -> usize {
        self.closing.len()
    }

    /// Starts over with a new, empty engine side, for a backend that lost
    /// its server: every port is forgotten (ids keep counting, so an old id
    /// never names a new port). The caller swaps the returned side in for
    /// the old one and drops the old one, with its port objects.
    pub fn renew(&mut self) -> EngineSide<P> {
        let (changes_tx, changes_rx) = rtrb::RingBuffer::new(256);
        let (retired_tx, retired_rx) = rtrb::RingBuffer::new(256);
        self.open.clear();
        self.closing.clear();
        self.changes = changes_tx;
        self.retired = retired_rx;
        EngineSide {
            table: Table::new(),
            changes: changes_rx,
            retired: retired_tx,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sysex_event(frame: u32) -> RtEvent {
        RtEvent {
            frame,
            port: 3,
            kind: imp::event_kind::SYSEX,
            data_offset: 10,
            data_len: 100,
            ..RtEvent::default()
        }
    }

    #[test]
    fn sysex_passes_a_port_untouched_by_its_ledger_and_a_closing_port_ends_only_notes() {
        let (mut registry, mut side) = registry::<u32, ()>();
        let id = registry
            .add(1, &PortSpec::new(Direction::Out, "out", None), 7, ())
            .unwrap();
        side.apply();
        let b = side.table.iter_mut().next().unwrap();
        let (_, mut gate) = b.output();
        let note = gate.admit(&RtEvent::midi(0, &[0x90, 60, 100])).unwrap();
        assert_eq!(note.bytes, [0x90, 60, 100]);
        // SysEx goes through as it is (to output 0 of the port), whatever
        // notes sound, and is not a note to end.
        let passed = gate.admit(&sysex_event(5)).unwrap();
        assert_eq!(
            (
                passed.kind,
                passed.port,
                passed.data_offset,
                passed.data_len
            ),
            (imp::event_kind::SYSEX, 0, 10, 100)
        );
        registry.remove(id);
        side.apply();
        let b = side.table.iter_mut().next().unwrap();
        let (_, mut gate) = b.output();
        assert!(
            gate.admit(&sysex_event(6)).is_none(),
            "a closing port takes nothing new"
        );
        let mut released = Vec::new();
        gate.release_if_closing(63, |e| {
            released.push(e);
            true
        });
        assert_eq!(released.len(), 1);
        assert_eq!(released[0].bytes[..2], [0x80, 60]);
    }
}
