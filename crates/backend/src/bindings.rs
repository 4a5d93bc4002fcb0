//! Which engine slot each open port belongs to, as the engine thread sees
//! it. The control thread changes it through a ring; the engine thread
//! applies the changes between cycles.

use imp::ports::Direction;
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
}

/// A change sent to the engine thread.
pub enum Change<P> {
    /// A new port.
    Add(Bound<P>),
    /// Remove the port with this id (its object comes back to be dropped).
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

    /// Applies pending changes; removed port objects go to `retired`.
    /// Engine thread; allocation-free.
    pub fn apply(
        &mut self,
        changes: &mut rtrb::Consumer<Change<P>>,
        retired: &mut rtrb::Producer<P>,
    ) {
        while let Ok(change) = changes.pop() {
            match change {
                Change::Add(b) => {
                    if let Some(free) = self.entries.iter_mut().find(|e| e.is_none()) {
                        *free = Some(b);
                    } else if retired.push(b.port).is_err() {
                        // The control side keeps fewer than MAX_PORTS open.
                    }
                }
                Change::Remove(id) => {
                    for e in self.entries.iter_mut() {
                        if e.as_ref().is_some_and(|b| b.id == id) {
                            if let Some(b) = e.take() {
                                if let Err(rtrb::PushError::Full(p)) = retired.push(b.port) {
                                    std::mem::forget(p);
                                }
                            }
                        }
                    }
                }
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

/// The control side's bookkeeping of open ports: ids, what the backend
/// keeps per port (`O`), and the rings to and from the engine thread.
pub struct Registry<P, O> {
    next_id: u64,
    open: BTreeMap<u64, O>,
    changes: rtrb::Producer<Change<P>>,
    retired: rtrb::Consumer<P>,
}

/// What the engine side of a backend needs: the table and its rings.
pub struct EngineSide<P> {
    /// The ports as the engine thread holds them.
    pub table: Table<P>,
    /// Changes from the control side.
    pub changes: rtrb::Consumer<Change<P>>,
    /// Port objects going back to be dropped.
    pub retired: rtrb::Producer<P>,
}

impl<P> EngineSide<P> {
    /// Applies pending changes. Engine thread; allocation-free.
    pub fn apply(&mut self) {
        self.table.apply(&mut self.changes, &mut self.retired);
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
        direction: Direction,
        port: P,
        info: O,
    ) -> Result<u64, PortError> {
        let id = self.next_id;
        let bound = Bound {
            id,
            slot,
            direction,
            port,
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

    /// Takes a port away from the engine thread; its object comes back
    /// through [`Registry::drain_retired`].
    pub fn remove(&mut self, id: u64) -> Option<O> {
        let info = self.open.remove(&id)?;
        let _ = self.changes.push(Change::Remove(id));
        Some(info)
    }

    /// What the backend keeps for port `id`.
    pub fn get(&self, id: u64) -> Option<&O> {
        self.open.get(&id)
    }

    /// Everything open.
    pub fn values(&self) -> impl Iterator<Item = &O> {
        self.open.values()
    }

    /// Hands each port object the engine let go of to `f` (to unregister or drop it).
    pub fn drain_retired(&mut self, mut f: impl FnMut(P)) {
        while let Ok(p) = self.retired.pop() {
            f(p);
        }
    }
}
