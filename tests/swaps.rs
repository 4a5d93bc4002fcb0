//! Hot swaps on the real engine with real imp libraries (a manual clock):
//! counts that a swap must not lose, a transient buffer that never leaks
//! from one swap into another, and a successor that panics while taking
//! over.

mod common;
use common::*;
use engine::alloc_guard::GuardedAllocator;
use engine::{EngineConfig, EngineCore, EngineHandle, Routing};
use imp::RtEvent;
use realm::{ImpHandle, Library};
use serde_json::json;
use std::sync::Arc;

#[global_allocator]
static ALLOCATOR: GuardedAllocator = GuardedAllocator;

fn load(name: &str) -> Arc<Library> {
    let lib = Library::load(&built_library(name)).unwrap();
    lib.on_after_load(None).unwrap();
    lib
}

fn cycles(core: &mut EngineCore, handle: &mut EngineHandle, n: usize) {
    for _ in 0..n {
        core.cycle(64);
        handle.collect_garbage();
    }
}

fn thawed(
    lib: &Arc<Library>,
    name: &str,
    config: serde_json::Value,
    frozen: Option<&[u8]>,
    slot: usize,
) -> (ImpHandle, engine::OwnedRtPart) {
    let mut imp = lib.create(name, &config, frozen).unwrap();
    imp.set_slot(slot);
    let rt = imp.thaw().unwrap().unwrap();
    (imp, rt)
}

#[test]
fn the_monitor_counts_every_event_across_respawns() {
    let (mut handle, mut core) = engine::engine(EngineConfig::default());
    handle
        .set_routing(Routing::new(&[1], &[]).unwrap())
        .unwrap();
    let builds = [load("monitor"), load("monitor")];
    let config = json!({ "log": false });
    let (mut imp, rt) = thawed(&builds[0], "watch", config.clone(), None, 1);
    handle.install(1, rt, false).unwrap();
    let mut sent = 0u64;
    for round in 0..10 {
        // Events every cycle, before, during and after the swap.
        for _ in 0..20 {
            handle
                .inject(1, RtEvent::midi(3, &[0x90, 60, 100]))
                .unwrap();
            sent += 1;
            cycles(&mut core, &mut handle, 1);
        }
        let frozen = imp.freeze().unwrap();
        // The old RT part keeps counting between the freeze and the swap.
        for _ in 0..5 {
            handle.inject(1, RtEvent::midi(3, &[0x80, 60, 0])).unwrap();
            sent += 1;
            cycles(&mut core, &mut handle, 1);
        }
        let (next, rt) = thawed(
            &builds[(round + 1) % 2],
            "watch",
            config.clone(),
            Some(&frozen),
            1,
        );
        handle.install(1, rt, true).unwrap();
        cycles(&mut core, &mut handle, 1);
        imp = next;
    }
    let status = imp.poll().unwrap();
    assert_eq!(status["total"], sent, "{status}");
}

#[test]
fn a_swap_never_reads_another_swaps_transient_bytes() {
    let (mut handle, mut core) = engine::engine(EngineConfig::default());
    handle
        .set_routing(Routing::new(&[1, 2], &[]).unwrap())
        .unwrap();
    let monitor = load("monitor");
    let config = json!({ "log": false });
    // Slot 1: a monitor that has counted 50 pitch bends, swapped: it writes
    // its counts into the engine's transient buffer (pitch bends count as
    // "other", in the bytes a chaos part does not write).
    let (mut first, rt) = thawed(&monitor, "first", config.clone(), None, 1);
    handle.install(1, rt, false).unwrap();
    for _ in 0..50 {
        handle.inject(1, RtEvent::midi(0, &[0xE0, 0, 64])).unwrap();
        cycles(&mut core, &mut handle, 1);
    }
    let frozen = first.freeze().unwrap();
    let (_first, rt) = thawed(&monitor, "first", config.clone(), Some(&frozen), 1);
    handle.install(1, rt, true).unwrap();
    cycles(&mut core, &mut handle, 1);
    // Slot 2: a chaos part (it saves 16 bytes) hands over to a monitor,
    // which must find nothing of slot 1's counts in the rest.
    let chaos = load("chaos");
    let (_c, rt) = thawed(&chaos, "cable", json!({}), None, 2);
    handle.install(2, rt, false).unwrap();
    cycles(&mut core, &mut handle, 1);
    let (mut second, rt) = thawed(&monitor, "second", config, None, 2);
    handle.install(2, rt, true).unwrap();
    cycles(&mut core, &mut handle, 2);
    assert_eq!(
        second.poll().unwrap()["total"],
        0,
        "nothing counted from slot 1's bytes"
    );
}

#[test]
fn a_successor_that_panics_taking_over_is_failed_and_its_notes_end() {
    let (mut handle, mut core) = engine::engine(EngineConfig::default());
    handle
        .set_routing(Routing::new(&[1], &[]).unwrap())
        .unwrap();
    let chaos = load("chaos");
    let (_old, rt) = thawed(&chaos, "x", json!({}), None, 1);
    handle.install(1, rt, false).unwrap();
    handle
        .inject(1, RtEvent::midi(0, &[0x90, 60, 100]))
        .unwrap();
    cycles(&mut core, &mut handle, 1);
    assert_eq!(core.sounding(1), 1);
    let (_new, rt) = thawed(
        &chaos,
        "x",
        json!({ "panic_in": "restore_transient" }),
        None,
        1,
    );
    handle.install(1, rt, true).unwrap();
    core.cycle(64);
    let offs: Vec<_> = core
        .emitted()
        .iter()
        .filter(|t| t.event.is_note_off())
        .collect();
    assert_eq!(offs.len(), 1, "the held note ends: {offs:?}");
    assert_eq!(
        handle.take_failures(),
        1 << 1,
        "the slot is reported failed"
    );
    assert_eq!(core.sounding(1), 0);
    handle
        .inject(1, RtEvent::midi(0, &[0x90, 62, 100]))
        .unwrap();
    core.cycle(64);
    assert!(
        core.emitted().is_empty(),
        "a failed part is not called again"
    );
    handle.collect_garbage();
}
