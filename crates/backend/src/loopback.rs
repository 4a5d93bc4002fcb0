//! The in-process loopback backend: ports that exist only inside the
//! daemon. An output port named `X` feeds every input port named `X` (one
//! block later, at the same frame). It needs no MIDI system, so the default
//! realm and the tests run anywhere. SysEx is carried whole: its bytes wait
//! for the next block in a buffer reserved up front
//! ([`engine::DEFAULT_SYSEX_ARENA_BYTES`]); what does not fit is dropped and
//! counted in the engine's `sysex_dropped`.

use crate::port_table::{registry, EngineSide, Registry};
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
    names: BTreeMap<String, u32>,
    ports: Registry<LoopPort, (Direction, String)>,
}

/// Engine side: moves events from output ports to input ports.
pub struct LoopbackDriver {
    side: EngineSide<LoopPort>,
    carry: Vec<(u32, RtEvent)>,
    carry_len: usize,
    /// Bytes of the SysEx events in `carry` (their `data_offset` is into it).
    carry_bytes: Box<[u8]>,
    carry_bytes_len: usize,
}

/// Creates the two halves.
pub fn loopback() -> (LoopbackPorts, LoopbackDriver) {
    let (ports, side) = registry();
    (
        LoopbackPorts {
            inner: Mutex::new(Inner {
                names: BTreeMap::new(),
                ports,
            }),
        },
        LoopbackDriver {
            side,
            carry: vec![(0, RtEvent::default()); 4096],
            carry_len: 0,
            carry_bytes: vec![0; engine::DEFAULT_SYSEX_ARENA_BYTES].into_boxed_slice(),
            carry_bytes_len: 0,
        },
    )
}

impl PortService for LoopbackPorts {
    fn open(&self, slot: usize, _imp: &str, spec: &PortSpec) -> Result<u64, PortError> {
        let mut inner = self.inner.lock().expect("loopback ports");
        inner.ports.drain_retired(|_, _| {});
        // Ports pair by (lower-case) name: an output `X` feeds inputs `X`.
        // With `connect`, the port binds to the name of the port the
        // pattern matched (as with JACK and ALSA), not to the pattern.
        let name = match &spec.connect {
            Some(pattern) => {
                let wanted = match spec.direction {
                    Direction::In => Direction::Out,
                    Direction::Out => Direction::In,
                };
                let pattern = pattern.to_lowercase();
                let matched = inner
                    .ports
                    .values()
                    .filter(|(d, n)| *d == wanted && n.contains(&pattern))
                    .map(|(_, n)| n.clone())
                    .min();
                match matched {
                    Some(n) => n,
                    None => {
                        return Err(PortError::NotReady(format!(
                            "no loopback port matches `{pattern}`"
                        )))
                    }
                }
            }
            None => spec.name.to_lowercase(),
        };
        let next_key = inner.names.len() as u32;
        let key = *inner.names.entry(name.clone()).or_insert(next_key);
        inner.ports.add(slot, spec, key, (spec.direction, name))
    }

    fn close(&self, id: u64) {
        let mut inner = self.inner.lock().expect("loopback ports");
        inner.ports.remove(id);
        inner.ports.drain_retired(|_, _| {});
    }

    fn alive(&self, id: u64) -> bool {
        self.inner
            .lock()
            .expect("loopback ports")
            .ports
            .get(id)
            .is_some()
    }

    fn backend(&self) -> &'static str {
        "loopback"
    }
}

impl ClockDriver for LoopbackDriver {
    fn before_cycle(&mut self, core: &mut EngineCore, _frames: u32) {
        self.side.apply();
        for i in 0..self.carry_len {
            let (key, e) = self.carry[i];
            for b in self.side.table.iter_mut() {
                if b.direction == Direction::In && b.port == key && !b.is_closing() {
                    if e.is_sysex() {
                        let from = e.data_offset as usize;
                        let bytes = &self.carry_bytes[from..from + e.data_len as usize];
                        core.push_input_sysex_on(b.slot, b.input, e.frame, bytes);
                    } else {
                        let mut e = e;
                        e.port = b.input;
                        core.push_input(b.slot, e);
                    }
                }
            }
        }
        self.carry_len = 0;
        self.carry_bytes_len = 0;
    }

    fn after_cycle(&mut self, core: &mut EngineCore, frames: u32) {
        let (carry, carry_len) = (&mut self.carry, &mut self.carry_len);
        let (carry_bytes, carry_bytes_len) = (&mut self.carry_bytes, &mut self.carry_bytes_len);
        let engine: &EngineCore = core;
        for b in self.side.table.iter_mut() {
            if b.direction != Direction::Out {
                continue;
            }
            let slot = b.slot;
            let bound_to = b.output;
            let (&mut key, mut gate) = b.output();
            let mut write = |mut e: RtEvent| {
                if *carry_len >= carry.len() {
                    return false;
                }
                if let Some(bytes) = engine.sysex_bytes(&e) {
                    let start = *carry_bytes_len;
                    let end = start + bytes.len();
                    if end > carry_bytes.len() {
                        engine.stats().note_sysex_dropped();
                        return false;
                    }
                    carry_bytes[start..end].copy_from_slice(bytes);
                    *carry_bytes_len = end;
                    e.data_offset = start as u32;
                }
                carry[*carry_len] = (key, e);
                *carry_len += 1;
                true
            };
            for t in engine.emitted() {
                if t.slot == slot && bound_to.is_none_or(|o| t.event.port == o) {
                    if let Some(e) = gate.admit(&t.event) {
                        write(e);
                    }
                }
            }
            gate.release_if_closing(frames.saturating_sub(1), write);
        }
        self.side.retire_closing();
    }

    fn stop(&mut self, core: &mut EngineCore, frames: u32) {
        self.side.end_everything(core);
        self.after_cycle(core, frames);
    }
}
