//! The in-process loopback backend: ports that exist only inside the
//! daemon. An output port named `X` feeds every input port named `X` (one
//! block later, at the same frame). It needs no MIDI system, so the default
//! realm and the tests run anywhere.

use crate::bindings::{Bound, Change, Table};
use engine::{ClockDriver, EngineCore};
use imp::ports::{Direction, PortSpec};
use imp::RtEvent;
use realm::ports::{PortError, PortService};
use std::collections::BTreeMap;
use std::sync::Mutex;

/// A loopback port's engine-side object: its name, interned as a number.
pub type LoopPort = u32;

/// Control side.
pub struct LoopbackPorts {
    inner: Mutex<Inner>,
}

struct Inner {
    next_id: u64,
    names: BTreeMap<String, u32>,
    open: BTreeMap<u64, (Direction, String)>,
    changes: rtrb::Producer<Change<LoopPort>>,
    retired: rtrb::Consumer<LoopPort>,
}

/// Engine side: moves events from output ports to input ports.
pub struct LoopbackDriver {
    table: Table<LoopPort>,
    changes: rtrb::Consumer<Change<LoopPort>>,
    retired: rtrb::Producer<LoopPort>,
    carry: Vec<(u32, RtEvent)>,
    carry_len: usize,
}

/// Creates the two halves.
pub fn loopback() -> (LoopbackPorts, LoopbackDriver) {
    let (changes_tx, changes_rx) = rtrb::RingBuffer::new(256);
    let (retired_tx, retired_rx) = rtrb::RingBuffer::new(256);
    (
        LoopbackPorts {
            inner: Mutex::new(Inner {
                next_id: 1,
                names: BTreeMap::new(),
                open: BTreeMap::new(),
                changes: changes_tx,
                retired: retired_rx,
            }),
        },
        LoopbackDriver {
            table: Table::new(),
            changes: changes_rx,
            retired: retired_tx,
            carry: vec![(0, RtEvent::default()); 4096],
            carry_len: 0,
        },
    )
}

impl PortService for LoopbackPorts {
    fn open(&self, slot: usize, _imp: &str, spec: &PortSpec) -> Result<u64, PortError> {
        let mut inner = self.inner.lock().expect("loopback ports");
        while inner.retired.pop().is_ok() {}
        if let Some(pattern) = &spec.connect {
            let wanted = match spec.direction {
                Direction::In => Direction::Out,
                Direction::Out => Direction::In,
            };
            let pattern = pattern.to_lowercase();
            let found = inner
                .open
                .values()
                .any(|(d, n)| *d == wanted && n.to_lowercase().contains(&pattern));
            if !found {
                return Err(PortError::NotReady(format!(
                    "no loopback port matches `{pattern}`"
                )));
            }
        }
        let next_name = inner.names.len() as u32;
        let name = spec
            .connect
            .clone()
            .unwrap_or_else(|| spec.name.clone())
            .to_lowercase();
        let key = *inner.names.entry(name.clone()).or_insert(next_name);
        let id = inner.next_id;
        inner.next_id += 1;
        inner
            .changes
            .push(Change::Add(Bound {
                id,
                slot,
                direction: spec.direction,
                port: key,
            }))
            .map_err(|_| PortError::Invalid("too many port changes at once; try again".into()))?;
        inner.open.insert(id, (spec.direction, name));
        Ok(id)
    }

    fn close(&self, id: u64) {
        let mut inner = self.inner.lock().expect("loopback ports");
        if inner.open.remove(&id).is_some() {
            let _ = inner.changes.push(Change::Remove(id));
        }
    }

    fn alive(&self, id: u64) -> bool {
        self.inner
            .lock()
            .expect("loopback ports")
            .open
            .contains_key(&id)
    }

    fn backend(&self) -> &'static str {
        "loopback"
    }
}

impl ClockDriver for LoopbackDriver {
    fn before_cycle(&mut self, core: &mut EngineCore, _frames: u32) {
        self.table.apply(&mut self.changes, &mut self.retired);
        for i in 0..self.carry_len {
            let (key, e) = self.carry[i];
            for b in self.table.iter_mut() {
                if b.direction == Direction::In && b.port == key {
                    core.push_input(b.slot, e);
                }
            }
        }
        self.carry_len = 0;
    }

    fn after_cycle(&mut self, core: &mut EngineCore, _frames: u32) {
        for t in core.emitted() {
            for b in self.table.iter_mut() {
                if b.direction == Direction::Out
                    && b.slot == t.slot
                    && self.carry_len < self.carry.len()
                {
                    self.carry[self.carry_len] = (b.port, t.event);
                    self.carry_len += 1;
                }
            }
        }
    }
}
