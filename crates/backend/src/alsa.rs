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
//!
//! SysEx: midir delivers it (the input does not ignore it) possibly in
//! pieces; the input thread's [`midi::Decoder`] reassembles it whole (up to
//! 1 MiB, on that thread) and puts its bytes into a byte ring reserved when
//! the port opens ([`SYSEX_RING_BYTES`]), beside the ring of short
//! messages, in arrival order. The engine thread copies it into the
//! engine's arena at its frame. On output the engine thread copies a SysEx
//! into the sender's byte ring and the sender thread sends it whole when it
//! is due. What does not fit a ring is dropped whole and counted in the
//! engine's `sysex_dropped`.

use crate::port_table::{registry, EngineSide, Registry};
use engine::{ClockDriver, EngineCore};
use imp::ports::{Direction, PortSpec};
use imp::RtEvent;
use midi::alsa::{MidiInput, MidiOutput, OutputSender, SenderOptions};
use midi::{Decoded, MidiError, ShortMessage};
use realm::ports::{PortError, PortService};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Messages an input port can queue between two cycles.
const INPUT_RING: usize = 1024;
/// Bytes of SysEx an input port can queue between two cycles (and the size
/// of the driver's buffer that unwraps one from the ring).
pub const SYSEX_RING_BYTES: usize = 64 * 1024;

/// What arrived on an input port: a short message, or a whole SysEx whose
/// bytes wait in the port's byte ring.
#[derive(Clone, Copy, Debug)]
pub enum Arrival {
    /// A short message.
    Short(ShortMessage),
    /// A SysEx of this many bytes.
    Sysex(u32),
}

/// The engine's end of an input port's rings.
pub struct InputRings {
    events: rtrb::Consumer<(Instant, Arrival)>,
    bytes: rtrb::Consumer<u8>,
    /// SysEx the input thread could not queue (rings full), and how many of
    /// them the engine has counted already.
    dropped: Arc<AtomicU64>,
    counted: u64,
}

/// The input thread's end of the rings.
struct InputFeed {
    events: rtrb::Producer<(Instant, Arrival)>,
    bytes: rtrb::Producer<u8>,
    dropped: Arc<AtomicU64>,
}

impl InputFeed {
    /// Queues a whole SysEx, or counts it when it does not fit (whole).
    /// Input thread; never allocates.
    fn sysex(&mut self, arrival: Instant, message: &[u8]) {
        let Ok(len) = u32::try_from(message.len()) else {
            self.dropped.fetch_add(1, Ordering::Relaxed);
            return;
        };
        if self.events.slots() == 0 {
            self.dropped.fetch_add(1, Ordering::Relaxed);
            return;
        }
        let Ok(mut chunk) = self.bytes.write_chunk(message.len()) else {
            self.dropped.fetch_add(1, Ordering::Relaxed);
            return;
        };
        let (a, b) = chunk.as_mut_slices();
        let split = a.len();
        a.copy_from_slice(&message[..split]);
        b.copy_from_slice(&message[split..]);
        chunk.commit_all();
        // One producer: the slot checked above is still free; the entry
        // follows its bytes.
        let _ = self.events.push((arrival, Arrival::Sysex(len)));
    }
}

/// Creates an input port's rings.
fn input_rings() -> (InputFeed, InputRings) {
    let (events_tx, events_rx) = rtrb::RingBuffer::new(INPUT_RING);
    let (bytes_tx, bytes_rx) = rtrb::RingBuffer::new(SYSEX_RING_BYTES);
    let dropped = Arc::new(AtomicU64::new(0));
    (
        InputFeed {
            events: events_tx,
            bytes: bytes_tx,
            dropped: dropped.clone(),
        },
        InputRings {
            events: events_rx,
            bytes: bytes_rx,
            dropped,
            counted: 0,
        },
    )
}

impl InputRings {
    /// Hands everything queued to `core` for `slot`, each at the frame
    /// `frame_of` gives its arrival time; a SysEx that wraps around the
    /// ring's end is unwrapped in `scratch`. Engine thread; never allocates.
    fn deliver(
        &mut self,
        core: &mut EngineCore,
        slot: usize,
        input: u8,
        scratch: &mut [u8],
        frame_of: impl Fn(Instant) -> u32,
    ) {
        let dropped = self.dropped.load(Ordering::Relaxed);
        for _ in self.counted..dropped {
            core.stats().note_sysex_dropped();
        }
        self.counted = dropped;
        while let Ok((arrival, what)) = self.events.pop() {
            let frame = frame_of(arrival);
            match what {
                Arrival::Short(m) => {
                    let (bytes, len) = m.raw();
                    let mut e = RtEvent::midi(frame, &bytes[..len as usize]);
                    // The input number the port is bound to.
                    e.port = input;
                    core.push_input(slot, e);
                }
                Arrival::Sysex(len) => {
                    // Its bytes were committed before its entry was pushed.
                    let Ok(chunk) = self.bytes.read_chunk(len as usize) else {
                        core.stats().note_sysex_dropped();
                        continue;
                    };
                    let (a, b) = chunk.as_slices();
                    if b.is_empty() {
                        core.push_input_sysex_on(slot, input, frame, a);
                    } else if let Some(whole) = scratch.get_mut(..a.len() + b.len()) {
                        whole[..a.len()].copy_from_slice(a);
                        whole[a.len()..].copy_from_slice(b);
                        core.push_input_sysex_on(slot, input, frame, whole);
                    } else {
                        core.stats().note_sysex_dropped();
                    }
                    chunk.commit_all();
                }
            }
        }
    }
}

/// An ALSA port as the engine thread holds it.
pub enum AlsaRt {
    /// Arrivals from midir's thread.
    In(InputRings),
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
    /// Unwraps a SysEx that wraps around an input ring's end.
    scratch: Box<[u8]>,
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
            scratch: vec![0; SYSEX_RING_BYTES].into_boxed_slice(),
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
                let (mut feed, rx) = input_rings();
                let callback = move |arrival: Instant, decoded: Decoded<'_>| match decoded {
                    Decoded::Message(m) => {
                        let _ = feed.events.push((arrival, Arrival::Short(m)));
                    }
                    Decoded::Sysex(bytes) => feed.sysex(arrival, bytes),
                    Decoded::SysexTooLong { .. } => {
                        feed.dropped.fetch_add(1, Ordering::Relaxed);
                    }
                    Decoded::SysexAborted => {}
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
            if let AlsaRt::In(rings) = &mut b.port {
                let (block, rate) = (self.block, self.sample_rate);
                rings.deliver(core, b.slot, b.input, &mut self.scratch, |arrival| {
                    arrival_frame(arrival, now, block, rate, frames)
                });
            }
        }
    }

    fn after_cycle(&mut self, core: &mut EngineCore, frames: u32) {
        let start = *self.cycle_start.get_or_insert_with(Instant::now);
        let (block, sample_rate) = (self.block, self.sample_rate);
        let engine: &EngineCore = core;
        for b in self.side.table.iter_mut() {
            let slot = b.slot;
            let bound_to = b.output;
            let (AlsaRt::Out(sender), mut gate) = b.output() else {
                continue;
            };
            let mut write = |e: &RtEvent| {
                let due = due_time(start, block, sample_rate, e.frame);
                match engine.sysex_bytes(e) {
                    // Whole, into the sender's byte ring; sent when due.
                    Some(bytes) => {
                        let sent = sender.try_send_sysex(due, bytes).is_ok();
                        if !sent {
                            engine.stats().note_sysex_dropped();
                        }
                        sent
                    }
                    None => sender.try_send_bytes(due, e.midi_bytes()).is_ok(),
                }
            };
            for t in engine.emitted() {
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

    /// SysEx through the ALSA driver, everything but midir itself (this
    /// machine has no `/dev/snd`): the input thread's feed (what the midir
    /// callback does with a reassembled SysEx), the driver's delivery into
    /// the engine at its frame, an RT part passing it on, and the driver's
    /// timed send through a real sender thread into a recording sink.
    mod sysex_through_the_driver {
        use super::*;
        use engine::{EngineConfig, OwnedRtPart, Routing};
        use imp::abi::{BytesRef, ImpBytes, RtInstance, STATUS_OK};
        use imp::{BlockContext, CreateContext, EventWriter, Imp, ImpError, RtPart};
        use std::sync::Mutex as StdMutex;

        // The guard counts allocations inside `rt_section` only.
        #[global_allocator]
        static ALLOCATOR: engine::alloc_guard::GuardedAllocator =
            engine::alloc_guard::GuardedAllocator;

        /// An imp whose RT part passes its input on.
        struct Cable;
        struct CableRt;

        impl Imp for Cable {
            type Config = imp::__serde_json::Value;
            type Frozen = ();
            type Rt = CableRt;
            fn create(_: &CreateContext, _: Self::Config, _: Option<()>) -> Result<Self, ImpError> {
                Ok(Cable)
            }
            fn thaw(&mut self) -> Result<Option<CableRt>, ImpError> {
                Ok(Some(CableRt))
            }
            fn freeze(&mut self) {}
        }

        impl RtPart for CableRt {
            fn process(&mut self, _: &BlockContext, input: &[RtEvent], out: &mut EventWriter<'_>) {
                for e in input {
                    out.push(*e);
                }
            }
        }

        fn cable() -> OwnedRtPart {
            let table = imp::glue::table::<Cable>("cable", "test", imp::ABI_VERSION);
            let (mut handle, mut err, mut rt) =
                (std::ptr::null_mut(), ImpBytes::EMPTY, RtInstance::EMPTY);
            // SAFETY: the library's own functions, called as the ABI says.
            unsafe {
                let name = BytesRef::from_slice(b"cable");
                let config = BytesRef::from_slice(b"{}");
                assert_eq!(
                    (table.create)(name, config, BytesRef::NONE, &mut handle, &mut err),
                    STATUS_OK
                );
                assert_eq!((table.thaw)(handle, &mut rt, &mut err), STATUS_OK);
                (table.destroy)(handle);
                OwnedRtPart::from_raw(rt)
            }
        }

        fn sysex(len: usize, seed: u8) -> Vec<u8> {
            let mut m = vec![0xF0];
            m.extend((0..len - 2).map(|i| (i as u8).wrapping_add(seed) % 128));
            m.push(0xF7);
            m
        }

        #[test]
        fn sysex_in_and_out_whole_in_order_and_counted_when_too_big() {
            let (mut handle, mut core) = engine::engine(EngineConfig::default());
            handle.install(3, cable(), false).unwrap();
            handle
                .set_routing(Routing::new(&[3], &[]).unwrap())
                .unwrap();
            let (mut ports, side) = registry::<AlsaRt, ()>();
            let (mut feed, rings) = input_rings();
            ports
                .add(
                    3,
                    &PortSpec::new(Direction::In, "in", None),
                    AlsaRt::In(rings),
                    (),
                )
                .unwrap();
            let sent: Arc<StdMutex<Vec<Vec<u8>>>> = Arc::default();
            let log = sent.clone();
            let (_thread, sender) = midi::alsa::spawn_sender(
                "test",
                move |b: &[u8]| {
                    log.lock().unwrap().push(b.to_vec());
                    Ok(())
                },
                SenderOptions::default(),
            )
            .unwrap();
            ports
                .add(
                    3,
                    &PortSpec::new(Direction::Out, "out", None),
                    AlsaRt::Out(sender),
                    (),
                )
                .unwrap();
            let mut driver = AlsaDriver {
                side,
                sample_rate: 48_000.0,
                block: Duration::from_micros(1333),
                cycle_start: None,
                scratch: vec![0; SYSEX_RING_BYTES].into_boxed_slice(),
            };
            let mut want = Vec::new();
            // Rounds of 20 KiB SysEx wrap around the 64 KiB byte ring.
            for round in 0..8u8 {
                let message = sysex(20 * 1024, round);
                feed.sysex(Instant::now(), &message);
                let _ = feed.events.push((
                    Instant::now(),
                    Arrival::Short(ShortMessage::note_on(0, round, 1)),
                ));
                want.push(message);
                want.push(vec![0x90, round, 1]);
                let before = engine::alloc_guard::thread_violations();
                engine::alloc_guard::rt_section(|| driver.before_cycle(&mut core, 64));
                core.cycle(64);
                engine::alloc_guard::rt_section(|| driver.after_cycle(&mut core, 64));
                assert_eq!(
                    engine::alloc_guard::thread_violations(),
                    before,
                    "allocated"
                );
                handle.collect_garbage();
            }
            // More than the byte ring holds: dropped whole, counted.
            feed.sysex(Instant::now(), &sysex(SYSEX_RING_BYTES + 1, 0));
            engine::alloc_guard::rt_section(|| driver.before_cycle(&mut core, 64));
            core.cycle(64);
            driver.after_cycle(&mut core, 64);
            let deadline = Instant::now() + Duration::from_secs(10);
            while sent.lock().unwrap().len() < want.len() {
                assert!(Instant::now() < deadline, "not everything was sent");
                std::thread::sleep(Duration::from_millis(2));
            }
            assert!(*sent.lock().unwrap() == want, "sent something else");
            assert_eq!(handle.stats().sysex_dropped, 1);
        }
    }

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
