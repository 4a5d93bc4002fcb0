//! The ALSA backend: the engine runs on its internal block clock; input
//! ports (midir) timestamp each message on arrival and hand it over through
//! a lock-free ring; output ports have a sender thread that sends each
//! message when it is due.
//!
//! Timing: a message that arrived during the previous block is placed in
//! the current block at the same offset it had in that period, and what the
//! engine emits at frame f of a block leaves one block after the block
//! started, plus f. Arrival jitter becomes a fixed latency of one block on
//! input and one on output (2 × 1.3 ms at 48 kHz / 64).

use crate::port_table::{registry, EngineSide, Registry};
use engine::{ClockDriver, EngineCore};
use imp::ports::{Direction, PortSpec};
use imp::RtEvent;
use midi::alsa::{MidiInput, MidiOutput, OutputSender, SenderOptions};
use midi::{Decoded, MidiError, ShortMessage};
use realm::ports::{PortError, PortService};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Messages an input port can queue between two cycles.
const INPUT_RING: usize = 1024;

/// An ALSA port as the engine thread holds it.
pub enum AlsaRt {
    /// Arrivals from midir's thread.
    In(rtrb::Consumer<(Instant, ShortMessage)>),
    /// To the port's sender thread.
    Out(OutputSender),
}

enum Held {
    In(MidiInput),
    Out(MidiOutput),
}

struct Open {
    port: Held,
    bound_to_device: bool,
}

/// Control side: opens and closes ALSA ports for the imps.
pub struct AlsaPorts {
    client_name: String,
    ports: Mutex<Registry<AlsaRt, Open>>,
}

/// Engine side: delivers input at sample offsets, schedules output.
pub struct AlsaDriver {
    side: EngineSide<AlsaRt>,
    sample_rate: f64,
    block: Duration,
    cycle_start: Option<Instant>,
}

/// Creates the two halves for an engine at `sample_rate` / `block_size`.
pub fn alsa(client_name: &str, sample_rate: u32, block_size: u32) -> (AlsaPorts, AlsaDriver) {
    let (ports, side) = registry();
    (
        AlsaPorts {
            client_name: client_name.to_string(),
            ports: Mutex::new(ports),
        },
        AlsaDriver {
            side,
            sample_rate: sample_rate as f64,
            block: Duration::from_secs_f64(block_size as f64 / sample_rate as f64),
            cycle_start: None,
        },
    )
}

fn port_error(e: MidiError) -> PortError {
    match e {
        // The device may be plugged in (or the module loaded) later.
        MidiError::PortNotFound { .. } | MidiError::AlsaUnavailable { .. } => {
            PortError::NotReady(e.to_string())
        }
        other => PortError::Invalid(other.to_string()),
    }
}

impl PortService for AlsaPorts {
    fn open(&self, slot: usize, _imp: &str, spec: &PortSpec) -> Result<u64, PortError> {
        let mut ports = self.ports.lock().expect("alsa ports");
        ports.drain_retired(|_, _| {});
        let (held, rt) = match spec.direction {
            Direction::In => {
                let (mut tx, rx) = rtrb::RingBuffer::new(INPUT_RING);
                let callback = move |arrival: Instant, decoded: Decoded<'_>| {
                    // SysEx is not real-time material; it stops here.
                    if let Decoded::Message(m) = decoded {
                        let _ = tx.push((arrival, m));
                    }
                };
                let input = match &spec.connect {
                    Some(pattern) => MidiInput::open(&self.client_name, pattern, callback),
                    None => MidiInput::open_virtual(&self.client_name, &spec.name, callback),
                }
                .map_err(port_error)?;
                (Held::In(input), AlsaRt::In(rx))
            }
            Direction::Out => {
                let (output, sender) = match &spec.connect {
                    Some(pattern) => {
                        MidiOutput::open(&self.client_name, pattern, SenderOptions::default())
                    }
                    None => MidiOutput::open_virtual(
                        &self.client_name,
                        &spec.name,
                        SenderOptions::default(),
                    ),
                }
                .map_err(port_error)?;
                (Held::Out(output), AlsaRt::Out(sender))
            }
        };
        let open = Open {
            port: held,
            bound_to_device: spec.connect.is_some(),
        };
        ports.add(slot, spec, rt, open)
    }

    fn close(&self, id: u64) {
        let mut ports = self.ports.lock().expect("alsa ports");
        // The device stays open until the engine let go of the port: its
        // last output (the note-offs) is then in the sender thread, which
        // sends everything queued before it stops.
        ports.remove(id);
        ports.drain_retired(|_, _| {});
    }

    fn alive(&self, id: u64) -> bool {
        let ports = self.ports.lock().expect("alsa ports");
        match ports.get(id) {
            None => false,
            Some(open) if !open.bound_to_device => true,
            Some(open) => match &open.port {
                Held::In(p) => p.is_connected(),
                Held::Out(p) => p.is_connected(),
            },
        }
    }

    fn backend(&self) -> &'static str {
        "alsa"
    }
}

impl ClockDriver for AlsaDriver {
    fn before_cycle(&mut self, core: &mut EngineCore, frames: u32) {
        self.side.apply();
        let now = Instant::now();
        self.cycle_start = Some(now);
        for b in self.side.table.iter_mut() {
            if b.is_closing() {
                continue;
            }
            if let AlsaRt::In(rx) = &mut b.port {
                while let Ok((arrival, m)) = rx.pop() {
                    let frame = arrival_frame(arrival, now, self.block, self.sample_rate, frames);
                    let (bytes, len) = m.raw();
                    let mut e = RtEvent::midi(frame, &bytes[..len as usize]);
                    e.port = b.input;
                    core.push_input(b.slot, e);
                }
            }
        }
    }

    fn after_cycle(&mut self, core: &mut EngineCore, frames: u32) {
        let start = *self.cycle_start.get_or_insert_with(Instant::now);
        let (block, sample_rate) = (self.block, self.sample_rate);
        for b in self.side.table.iter_mut() {
            let slot = b.slot;
            let bound_to = b.output;
            let (AlsaRt::Out(sender), mut gate) = b.output() else {
                continue;
            };
            let mut write = |e: &RtEvent| {
                let due = due_time(start, block, sample_rate, e.frame);
                sender.try_send_bytes(due, e.midi_bytes()).is_ok()
            };
            for t in core.emitted() {
                if t.slot == slot && bound_to.is_none_or(|o| t.event.port == o) {
                    if let Some(e) = gate.admit(&t.event) {
                        write(&e);
                    }
                }
            }
            gate.release_if_closing(frames.saturating_sub(1), |e| write(&e));
        }
        self.side.retire_closing();
    }

    fn stop(&mut self, core: &mut EngineCore, frames: u32) {
        self.side.end_everything(core);
        self.after_cycle(core, frames);
    }
}

/// Where a message that arrived at `arrival` goes in the block that starts
/// at `block_start` (the driver's `before_cycle` places every input with
/// it): the block stands for the period of one block before
/// it, so the message keeps its offset inside that period (a fixed latency
/// of one block instead of the jitter of "as soon as possible").
pub fn arrival_frame(
    arrival: Instant,
    block_start: Instant,
    block: Duration,
    sample_rate: f64,
    frames: u32,
) -> u32 {
    let window_start = block_start.checked_sub(block).unwrap_or(block_start);
    let offset = arrival
        .saturating_duration_since(window_start)
        .as_secs_f64()
        * sample_rate;
    (offset as u32).min(frames.saturating_sub(1))
}

/// When an event the engine emitted at `frame` of the block that started at
/// `block_start` leaves (the driver's `after_cycle` schedules every output
/// with it): one block later, plus its offset.
pub fn due_time(block_start: Instant, block: Duration, sample_rate: f64, frame: u32) -> Instant {
    block_start + block + Duration::from_secs_f64(frame as f64 / sample_rate)
}

#[cfg(test)]
mod tests {
    use super::*;

    const BLOCK: Duration = Duration::from_millis(10); // 480 frames at 48 kHz

    #[test]
    fn arrivals_keep_their_offset_inside_the_previous_block_period() {
        let start = Instant::now() + Duration::from_secs(1);
        // 4 ms before the block starts = 6 ms into the 10 ms window.
        assert_eq!(
            arrival_frame(
                start - Duration::from_millis(4),
                start,
                BLOCK,
                48_000.0,
                480
            ),
            288
        );
        // At the very start of the window.
        assert_eq!(arrival_frame(start - BLOCK, start, BLOCK, 48_000.0, 480), 0);
        // Late (during the cycle itself) and early (a stalled engine): clamped.
        assert_eq!(
            arrival_frame(
                start + Duration::from_millis(1),
                start,
                BLOCK,
                48_000.0,
                480
            ),
            479
        );
        assert_eq!(
            arrival_frame(
                start - Duration::from_millis(50),
                start,
                BLOCK,
                48_000.0,
                480
            ),
            0
        );
    }

    #[test]
    fn arrival_jitter_becomes_a_fixed_latency() {
        // Two messages 1.5 ms apart stay 1.5 ms (72 frames) apart, whatever
        // the block boundaries are.
        let start = Instant::now() + Duration::from_secs(1);
        let a = arrival_frame(
            start - Duration::from_micros(8000),
            start,
            BLOCK,
            48_000.0,
            480,
        );
        let b = arrival_frame(
            start - Duration::from_micros(6500),
            start,
            BLOCK,
            48_000.0,
            480,
        );
        assert_eq!(b - a, 72);
    }

    #[test]
    fn output_leaves_one_block_after_its_block_plus_its_offset() {
        let start = Instant::now();
        assert_eq!(due_time(start, BLOCK, 48_000.0, 0), start + BLOCK);
        assert_eq!(
            due_time(start, BLOCK, 48_000.0, 240),
            start + BLOCK + Duration::from_millis(5)
        );
    }
}
