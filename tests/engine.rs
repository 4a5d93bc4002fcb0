//! The engine on a manual clock with real imp libraries: sample-exact
//! routing, release of notes on removal and failure, and the allocation
//! guard around every cycle.

mod common;
use common::*;
use engine::alloc_guard::{self, GuardedAllocator};
use engine::{EmittedEvent, EngineConfig, EngineCore, EngineHandle, Routing, Wire};
use imp::RtEvent;
use serde_json::json;

#[global_allocator]
static ALLOCATOR: GuardedAllocator = GuardedAllocator;

/// Creates and thaws an imp; returns its control part and RT part.
fn part(lib: &str, config: serde_json::Value) -> (realm::ImpHandle, engine::OwnedRtPart) {
    thawed_part(lib, None, config)
}

/// What the slots in `watch` emitted in the last cycle.
fn emitted_by(core: &EngineCore, watch: &[usize]) -> Vec<EmittedEvent> {
    core.emitted()
        .iter()
        .filter(|t| watch.contains(&t.slot))
        .copied()
        .collect()
}

/// Runs `n` cycles; returns what the slots in `watch` emitted.
fn cycles(
    core: &mut EngineCore,
    handle: &mut EngineHandle,
    n: usize,
    watch: &[usize],
) -> Vec<EmittedEvent> {
    let mut out = Vec::new();
    for _ in 0..n {
        core.cycle(64);
        out.extend(emitted_by(core, watch));
        handle.collect_garbage();
    }
    out
}

fn note(e: &EmittedEvent) -> (u64, [u8; 3]) {
    (e.time, e.event.bytes)
}

#[test]
fn events_cross_a_chain_in_the_same_cycle_at_their_frame() {
    let violations = alloc_guard::thread_violations();
    let (mut handle, mut core) = engine::engine(EngineConfig::default());
    let (_a, a) = part("chaos", json!({}));
    let (_b, b) = part("monitor", json!({"log": false}));
    handle.install(3, a, false).unwrap();
    handle.install(7, b, false).unwrap();
    let wire = Wire {
        from: 3,
        output: 0,
        to: 7,
        input: 0,
    };
    handle
        .set_routing(Routing::new(&[7, 3], &[wire]).unwrap())
        .unwrap();
    cycles(&mut core, &mut handle, 2, &[7]);

    handle
        .inject(3, RtEvent::midi(17, &[0x90, 60, 100]))
        .unwrap();
    handle.inject(3, RtEvent::midi(5, &[0x90, 64, 90])).unwrap();
    let out = cycles(&mut core, &mut handle, 1, &[7]);
    // Block 2 starts at sample 128; frame order is kept through the chain.
    assert_eq!(
        out.iter().map(note).collect::<Vec<_>>(),
        vec![(133, [0x90, 64, 90]), (145, [0x90, 60, 100])]
    );
    assert!(out.iter().all(|t| t.slot == 7));
    assert_eq!(
        alloc_guard::thread_violations(),
        violations,
        "no allocation on the engine thread"
    );
}

#[test]
fn removing_a_part_ends_its_notes_exactly_once() {
    let violations = alloc_guard::thread_violations();
    let (mut handle, mut core) = engine::engine(EngineConfig::default());
    let (_a, a) = part("chaos", json!({}));
    handle.install(0, a, false).unwrap();
    handle
        .set_routing(Routing::new(&[0], &[]).unwrap())
        .unwrap();
    handle
        .inject(0, RtEvent::midi(1, &[0x90, 60, 100]))
        .unwrap();
    handle
        .inject(0, RtEvent::midi(2, &[0x91, 62, 100]))
        .unwrap();
    handle.inject(0, RtEvent::midi(3, &[0x90, 60, 0])).unwrap();
    handle
        .inject(0, RtEvent::midi(4, &[0x90, 67, 100]))
        .unwrap();
    cycles(&mut core, &mut handle, 1, &[0]);
    assert_eq!(core.sounding(0), 2);
    handle.remove(0).unwrap();
    let out = cycles(&mut core, &mut handle, 1, &[0]);
    let mut offs: Vec<_> = out.iter().map(|t| t.event.bytes).collect();
    offs.sort();
    // chaos ends its own held notes; the ledger lets each through once.
    assert_eq!(offs, vec![[0x80, 67, 0], [0x81, 62, 0]]);
    assert!(
        out.iter().all(|t| t.time == 64),
        "at the start of the cycle that removed it"
    );
    assert_eq!(core.sounding(0), 0);
    assert_eq!(alloc_guard::thread_violations(), violations);
}

#[test]
fn a_panicking_part_is_stopped_and_its_notes_are_ended() {
    let (mut handle, mut core) = engine::engine(EngineConfig::default());
    let (_a, a) = part("chaos", json!({}));
    let (_p, p) = part("chaos", json!({"panic_in": "process"}));
    handle.install(0, a, false).unwrap();
    handle.install(1, p, false).unwrap();
    let wire = Wire {
        from: 0,
        output: 0,
        to: 1,
        input: 0,
    };
    handle
        .set_routing(Routing::new(&[0, 1], &[wire]).unwrap())
        .unwrap();
    // The first part holds a note; the second panics on its input.
    handle
        .inject(0, RtEvent::midi(0, &[0x90, 60, 100]))
        .unwrap();
    let out = cycles(&mut core, &mut handle, 3, &[0, 1]);
    assert_eq!(handle.take_failures(), 1 << 1);
    assert_eq!(
        out.iter().filter(|t| t.slot == 1).count(),
        0,
        "the failed part emitted nothing"
    );
    assert_eq!(core.sounding(0), 1, "the healthy part still holds its note");
    assert_eq!(handle.stats().swaps, 2);
}

#[test]
fn status_counters_move() {
    let (mut handle, mut core) = engine::engine(EngineConfig::default());
    let (_a, a) = part("monitor", json!({"log": false}));
    handle.install(0, a, false).unwrap();
    handle
        .set_routing(Routing::new(&[0], &[]).unwrap())
        .unwrap();
    for i in 0..10 {
        handle
            .inject(0, RtEvent::midi(i, &[0xB0, 7, i as u8]))
            .unwrap();
    }
    cycles(&mut core, &mut handle, 100, &[]);
    let s = handle.stats();
    assert_eq!(s.cycles, 100);
    assert_eq!(s.input_queue_high_water, 10);
    assert!(s.command_queue_high_water >= 2);
    assert!(s.slowest_cycle_ns > 0);
}

#[test]
fn loopback_ports_carry_events_to_the_next_block_at_the_same_frame() {
    use engine::ClockDriver;
    use imp::ports::{Direction, PortSpec};
    use realm::ports::PortService;
    let (mut handle, mut core) = engine::engine(EngineConfig::default());
    let (ports, mut driver) = backend::loopback::loopback();
    let (_a, a) = part("chaos", json!({}));
    let (_b, b) = part("chaos", json!({}));
    handle.install(0, a, false).unwrap();
    handle.install(1, b, false).unwrap();
    handle
        .set_routing(Routing::new(&[0, 1], &[]).unwrap())
        .unwrap();
    let spec = |direction, connect: Option<&str>| {
        PortSpec::new(direction, "cable", connect.map(str::to_string))
    };
    ports.open(0, "send", &spec(Direction::Out, None)).unwrap();
    ports
        .open(1, "recv", &spec(Direction::In, Some("cable")))
        .unwrap();

    let violations = alloc_guard::thread_violations();
    let mut out = Vec::new();
    for cycle in 0..6u64 {
        if cycle == 3 {
            handle
                .inject(0, RtEvent::midi(17, &[0x90, 60, 100]))
                .unwrap();
        }
        alloc_guard::rt_section(|| driver.before_cycle(&mut core, 64));
        core.cycle(64);
        alloc_guard::rt_section(|| driver.after_cycle(&mut core, 64));
        out.extend(emitted_by(&core, &[1]));
    }
    assert_eq!(
        out.iter().map(note).collect::<Vec<_>>(),
        vec![(4 * 64 + 17, [0x90, 60, 100])]
    );
    assert_eq!(alloc_guard::thread_violations(), violations);
}
