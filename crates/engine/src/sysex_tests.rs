//! Long messages (SysEx) through the engine on a manual clock: arenas,
//! routing along wires, order and frames, overflow counting, and no
//! allocation on the engine thread.

use crate::alloc_guard::{self, GuardedAllocator};
use crate::{engine, EngineConfig, EngineCore, EngineHandle, OwnedRtPart, Routing, Wire};
use imp::abi::{BytesRef, ImpBytes, RtInstance, STATUS_OK};
use imp::{BlockContext, CreateContext, EventWriter, Imp, ImpError, RtEvent, RtPart};

#[global_allocator]
static ALLOCATOR: GuardedAllocator = GuardedAllocator;

/// An imp whose RT part passes its input on and, when configured with
/// `{"emit": n}`, writes an `n`-byte SysEx at frame 7 of every block.
struct Relay {
    emit: usize,
}

struct RelayRt {
    message: Vec<u8>,
}

impl Imp for Relay {
    type Config = imp::__serde_json::Value;
    type Frozen = ();
    type Rt = RelayRt;

    fn create(_: &CreateContext, config: Self::Config, _: Option<()>) -> Result<Self, ImpError> {
        Ok(Relay {
            emit: config["emit"].as_u64().unwrap_or(0) as usize,
        })
    }

    fn thaw(&mut self) -> Result<Option<RelayRt>, ImpError> {
        Ok(Some(RelayRt {
            message: sysex(self.emit),
        }))
    }

    fn freeze(&mut self) {}
}

impl RtPart for RelayRt {
    fn process(&mut self, _: &BlockContext, input: &[RtEvent], out: &mut EventWriter<'_>) {
        for e in input {
            out.push(*e);
        }
        if !self.message.is_empty() {
            out.push_sysex(7, 0, &self.message);
        }
    }
}

/// A SysEx of `len` bytes (0: none): F0, data counting 0..=0x7F, F7.
fn sysex(len: usize) -> Vec<u8> {
    if len < 2 {
        return Vec::new();
    }
    let mut m = vec![0xF0];
    m.extend((0..len - 2).map(|i| (i % 128) as u8));
    m.push(0xF7);
    m
}

/// A relay's RT part, through the same `extern "C"` glue a library has.
fn relay(config: &str) -> OwnedRtPart {
    let table = imp::glue::table::<Relay>("relay", "test", imp::ABI_VERSION);
    let mut handle = std::ptr::null_mut();
    let mut err = ImpBytes::EMPTY;
    let mut rt = RtInstance::EMPTY;
    // SAFETY: the library's own functions, called as the ABI says, with
    // valid buffers and out pointers; the handle is used once, here.
    unsafe {
        let created = (table.create)(
            BytesRef::from_slice(b"relay"),
            BytesRef::from_slice(config.as_bytes()),
            BytesRef::NONE,
            &mut handle,
            &mut err,
        );
        assert_eq!(created, STATUS_OK);
        assert_eq!((table.thaw)(handle, &mut rt, &mut err), STATUS_OK);
        // The control part is not needed any more (the RT part owns its own state).
        (table.destroy)(handle);
        OwnedRtPart::from_raw(rt)
    }
}

/// An engine with relays in `slots` (configs), wired in a chain.
fn chain(config: EngineConfig, parts: &[(usize, &str)]) -> (EngineHandle, EngineCore) {
    let (mut handle, core) = engine(config);
    for &(slot, cfg) in parts {
        handle.install(slot, relay(cfg), false).unwrap();
    }
    let slots: Vec<usize> = parts.iter().map(|p| p.0).collect();
    let wires: Vec<Wire> = slots
        .windows(2)
        .map(|w| Wire {
            from: w[0],
            output: 0,
            to: w[1],
            input: 0,
        })
        .collect();
    handle
        .set_routing(Routing::new(&slots, &wires).unwrap())
        .unwrap();
    (handle, core)
}

/// What `slot` emitted in the last cycle: (frame, bytes).
fn emitted(core: &EngineCore, slot: usize) -> Vec<(u32, Vec<u8>)> {
    core.emitted()
        .iter()
        .filter(|t| t.slot == slot)
        .map(|t| {
            let bytes = match core.sysex_bytes(&t.event) {
                Some(b) => b.to_vec(),
                None => t.event.midi_bytes().to_vec(),
            };
            (t.event.frame, bytes)
        })
        .collect()
}

/// One cycle, inside the allocation guard as a backend runs it.
fn cycle(core: &mut EngineCore) {
    core.cycle(64);
}

#[test]
fn a_sysex_crosses_a_chain_byte_exact_at_its_frame() {
    let (_handle, mut core) = chain(EngineConfig::default(), &[(1, "{}"), (2, "{}")]);
    cycle(&mut core); // applies the installs and the routing
    let message = sysex(1024);
    let before = alloc_guard::thread_violations();
    assert!(alloc_guard::rt_section(
        || core.push_input_sysex(1, 10, &message)
    ));
    cycle(&mut core);
    assert_eq!(alloc_guard::thread_violations(), before, "allocated");
    assert_eq!(emitted(&core, 1), vec![(10, message.clone())]);
    assert_eq!(emitted(&core, 2), vec![(10, message)]);
    // SysEx is not a note: the ledgers hold nothing.
    assert_eq!(core.sounding(1) + core.sounding(2), 0);
    assert_eq!(
        core.stats.snapshot(EngineConfig::default()).sysex_dropped,
        0
    );
}

#[test]
fn sysex_and_notes_in_one_cycle_keep_their_order_and_frames() {
    let (_handle, mut core) = chain(EngineConfig::default(), &[(1, "{}"), (2, "{}")]);
    cycle(&mut core);
    let (a, b, c) = (sysex(5), sysex(300), sysex(40));
    let before = alloc_guard::thread_violations();
    alloc_guard::rt_section(|| {
        core.push_input(1, RtEvent::midi(3, &[0x90, 60, 100]));
        assert!(core.push_input_sysex(1, 3, &a));
        assert!(core.push_input_sysex(1, 20, &b));
        core.push_input(1, RtEvent::midi(20, &[0x80, 60, 0]));
        core.push_input(1, RtEvent::midi(5, &[0xB0, 1, 2]));
        assert!(core.push_input_sysex(1, 63, &c));
    });
    cycle(&mut core);
    assert_eq!(alloc_guard::thread_violations(), before, "allocated");
    let want = vec![
        (3, vec![0x90, 60, 100]),
        (3, a),
        (5, vec![0xB0, 1, 2]),
        (20, b),
        (20, vec![0x80, 60, 0]),
        (63, c),
    ];
    assert_eq!(emitted(&core, 1), want);
    assert_eq!(emitted(&core, 2), want);
    assert_eq!(core.sounding(2), 0);
}

#[test]
fn emitted_sysex_stays_readable_while_the_next_cycles_input_arrives() {
    let (_handle, mut core) = chain(EngineConfig::default(), &[(1, "{}")]);
    cycle(&mut core);
    let (first, second) = (sysex(700), sysex(900));
    core.push_input_sysex(1, 0, &first);
    cycle(&mut core);
    // A backend may queue the next cycle's input before it reads the
    // emitted list (the loopback does): the two use different arenas.
    core.push_input_sysex(1, 1, &second);
    assert_eq!(emitted(&core, 1), vec![(0, first)]);
    cycle(&mut core);
    assert_eq!(emitted(&core, 1), vec![(1, second)]);
}

#[test]
fn a_message_larger_than_the_arena_is_dropped_whole_and_counted() {
    let config = EngineConfig {
        sysex_arena_bytes: 1024,
        ..EngineConfig::default()
    };
    let (_handle, mut core) = chain(config, &[(1, "{}"), (2, "{}")]);
    cycle(&mut core);
    let (long, half) = (sysex(1025), sysex(600));
    let before = alloc_guard::thread_violations();
    alloc_guard::rt_section(|| {
        // Too long for the arena: never truncated.
        assert!(!core.push_input_sysex(1, 0, &long));
        // Two that fit one by one but not together: the second is dropped.
        assert!(core.push_input_sysex(1, 1, &half));
        assert!(!core.push_input_sysex(1, 2, &half));
        // Not a whole SysEx.
        assert!(!core.push_input_sysex(1, 3, &[0xF0, 1, 2]));
    });
    cycle(&mut core);
    assert_eq!(alloc_guard::thread_violations(), before, "allocated");
    // The one that fit crosses the chain: passed on unchanged, it is not
    // copied into the arena again.
    assert_eq!(emitted(&core, 1), vec![(1, half.clone())]);
    assert_eq!(emitted(&core, 2), vec![(1, half)]);
    assert_eq!(core.stats.snapshot(config).sysex_dropped, 3);
}

#[test]
fn a_part_whose_output_arena_is_full_has_the_rest_counted() {
    let config = EngineConfig {
        sysex_arena_bytes: 1024,
        ..EngineConfig::default()
    };
    // Slot 1 writes 600 bytes; slot 2 passes them on and tries 600 more:
    // 1200 bytes in its 1024-byte output arena.
    let (_handle, mut core) = chain(config, &[(1, r#"{"emit": 600}"#), (2, r#"{"emit": 600}"#)]);
    cycle(&mut core);
    let dropped = core.stats.snapshot(config).sysex_dropped;
    cycle(&mut core);
    assert_eq!(emitted(&core, 1), vec![(7, sysex(600))]);
    assert_eq!(emitted(&core, 2), vec![(7, sysex(600))]);
    assert_eq!(core.stats.snapshot(config).sysex_dropped - dropped, 1);
}

#[test]
fn a_part_writing_more_than_its_arena_holds_is_counted() {
    let config = EngineConfig {
        sysex_arena_bytes: 1024,
        ..EngineConfig::default()
    };
    let (_handle, mut core) = chain(config, &[(1, r#"{"emit": 2000}"#), (2, r#"{"emit": 500}"#)]);
    cycle(&mut core);
    let dropped = core.stats.snapshot(config).sysex_dropped;
    cycle(&mut core);
    assert_eq!(core.stats.snapshot(config).sysex_dropped - dropped, 1);
    assert_eq!(emitted(&core, 2), vec![(7, sysex(500))]);
}

#[test]
fn sysex_events_cannot_come_through_the_fixed_size_paths() {
    let (mut handle, mut core) = chain(EngineConfig::default(), &[(1, "{}")]);
    cycle(&mut core);
    let forged = RtEvent {
        kind: imp::event_kind::SYSEX,
        data_len: 10,
        ..RtEvent::default()
    };
    assert!(handle.inject(1, forged).is_err());
    core.push_input(1, forged);
    cycle(&mut core);
    assert_eq!(emitted(&core, 1), vec![]);
    assert_eq!(handle.stats().sysex_dropped, 1);
}

#[test]
fn the_control_thread_injects_sysex_through_a_byte_ring() {
    let config = EngineConfig {
        sysex_arena_bytes: 1024,
        ..EngineConfig::default()
    };
    let (mut handle, mut core) = chain(config, &[(1, "{}"), (2, "{}")]);
    cycle(&mut core);
    // Several rounds, so the byte ring wraps around its end.
    for round in 0..5u32 {
        let message = sysex(300 + round as usize);
        handle.inject_sysex(1, 9, &message).unwrap();
        handle.inject(1, RtEvent::midi(9, &[0x90, 60, 1])).unwrap();
        handle.inject(1, RtEvent::midi(9, &[0x80, 60, 0])).unwrap();
        let before = alloc_guard::thread_violations();
        cycle(&mut core);
        assert_eq!(alloc_guard::thread_violations(), before, "allocated");
        assert_eq!(
            emitted(&core, 2),
            vec![(9, message), (9, vec![0x90, 60, 1]), (9, vec![0x80, 60, 0])]
        );
    }
    assert!(handle.inject_sysex(1, 0, &[0xF0, 1]).is_err());
    // Longer than the ring (and the arena): refused at once.
    assert!(handle.inject_sysex(1, 0, &sysex(1025)).is_err());
    assert_eq!(handle.stats().sysex_dropped, 0);
}
