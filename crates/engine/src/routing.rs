//! The wiring the engine follows: which slots run, in which order, and
//! where each slot's numbered outputs go. Built off the engine thread and
//! swapped in whole.

use crate::{EngineError, MAX_SLOTS};

/// One wire: events `from` emits on `output` go to `to`, arriving on `input`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Wire {
    /// Source slot.
    pub from: usize,
    /// The source's numbered output.
    pub output: u8,
    /// Destination slot.
    pub to: usize,
    /// The input number the events carry when they arrive.
    pub input: u8,
}

/// A validated, ordered routing. Immutable once built.
#[derive(Clone, Debug, Default)]
pub struct Routing {
    pub(crate) order: Vec<usize>,
    pub(crate) wires_from: Vec<Vec<Wire>>,
}

impl Routing {
    /// Orders `slots` so that every wire goes forward (sources before their
    /// destinations): an event then crosses the whole chain in one cycle,
    /// adding no latency. A cycle is an error.
    pub fn new(slots: &[usize], wires: &[Wire]) -> Result<Routing, EngineError> {
        let mut wires_from = vec![Vec::new(); MAX_SLOTS];
        let mut indegree = [0usize; MAX_SLOTS];
        for &s in slots {
            if s >= MAX_SLOTS {
                return Err(EngineError::NoSuchSlot(s));
            }
        }
        for w in wires {
            for s in [w.from, w.to] {
                if !slots.contains(&s) {
                    return Err(EngineError::NoSuchSlot(s));
                }
            }
            wires_from[w.from].push(*w);
            indegree[w.to] += 1;
        }
        // Kahn's algorithm, keeping the given order among equals so the
        // result is stable and predictable.
        let mut order = Vec::with_capacity(slots.len());
        let mut done = [false; MAX_SLOTS];
        while order.len() < slots.len() {
            let next = slots
                .iter()
                .copied()
                .find(|&s| !done[s] && indegree[s] == 0);
            let Some(s) = next else {
                return Err(EngineError::WiringCycle);
            };
            done[s] = true;
            order.push(s);
            for w in &wires_from[s] {
                indegree[w.to] -= 1;
            }
        }
        Ok(Routing { order, wires_from })
    }

    /// Slots in processing order.
    pub fn order(&self) -> &[usize] {
        &self.order
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn wire(from: usize, to: usize) -> Wire {
        Wire {
            from,
            output: 0,
            to,
            input: 0,
        }
    }

    #[test]
    fn sources_come_before_destinations() {
        let r = Routing::new(&[3, 1, 2], &[wire(2, 3), wire(1, 2)]).unwrap();
        assert_eq!(r.order(), &[1, 2, 3]);
    }

    #[test]
    fn cycles_are_refused() {
        let err = Routing::new(&[1, 2], &[wire(1, 2), wire(2, 1)]).unwrap_err();
        assert!(matches!(err, EngineError::WiringCycle));
    }
}
