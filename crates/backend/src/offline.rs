//! Ports for rendering without devices (`impresario render`): every port
//! opens, nothing is connected. The renderer plays a file into the input
//! ports' imps and takes the engine's audio bus; what output ports emit is
//! dropped.

use imp::ports::{Direction, PortSpec};
use realm::ports::{PortError, PortService};
use std::collections::BTreeMap;
use std::sync::Mutex;

/// The ports of an offline render.
#[derive(Default)]
pub struct OfflinePorts {
    inner: Mutex<Inner>,
}

#[derive(Default)]
struct Inner {
    next_id: u64,
    open: BTreeMap<u64, (usize, Direction)>,
}

impl OfflinePorts {
    /// The engine slots of the imps that hold an input port.
    pub fn input_slots(&self) -> Vec<usize> {
        let inner = self.inner.lock().expect("offline ports");
        let mut slots: Vec<usize> = inner
            .open
            .values()
            .filter(|(_, d)| *d == Direction::In)
            .map(|(s, _)| *s)
            .collect();
        slots.sort_unstable();
        slots.dedup();
        slots
    }
}

impl PortService for OfflinePorts {
    fn open(&self, slot: usize, _imp: &str, spec: &PortSpec) -> Result<u64, PortError> {
        let mut inner = self.inner.lock().expect("offline ports");
        inner.next_id += 1;
        let id = inner.next_id;
        inner.open.insert(id, (slot, spec.direction));
        Ok(id)
    }

    fn close(&self, id: u64) {
        self.inner.lock().expect("offline ports").open.remove(&id);
    }

    fn alive(&self, id: u64) -> bool {
        self.inner
            .lock()
            .expect("offline ports")
            .open
            .contains_key(&id)
    }

    fn backend(&self) -> &'static str {
        "offline"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_port_opens_and_inputs_are_listed_by_slot() {
        let ports = OfflinePorts::default();
        let spec = |direction| PortSpec::new(direction, "x", Some("anything at all".into()));
        let a = ports.open(3, "keys", &spec(Direction::In)).unwrap();
        ports.open(5, "synth", &spec(Direction::Out)).unwrap();
        assert_eq!(ports.input_slots(), vec![3]);
        assert!(ports.alive(a));
        ports.close(a);
        assert!(ports.input_slots().is_empty());
    }
}
