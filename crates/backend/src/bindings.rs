//! Which engine slot each open port belongs to, as the engine thread sees
//! it. The control thread changes it through a ring; the engine thread
//! applies the changes between cycles.

use imp::ports::Direction;

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
