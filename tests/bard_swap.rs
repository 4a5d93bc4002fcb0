//! The bard hot-swapped 100 times while a note stream and the arpeggiator
//! run: the output is identical, event for event and sample for sample, to
//! a run without swaps (so nothing is lost, nothing sticks, and the
//! arpeggiator stays in phase), and every note-on has its note-off.

mod common;
use common::*;
use engine::alloc_guard::{self, GuardedAllocator};
use engine::{EmittedEvent, EngineConfig, Routing};
use imp::RtEvent;
use realm::{ImpHandle, Library};
use serde_json::json;
use std::collections::BTreeMap;
use std::sync::Arc;

#[global_allocator]
static ALLOCATOR: GuardedAllocator = GuardedAllocator;

const CYCLES: u64 = 16_000; // 64-frame blocks at 48 kHz: about 21 s of music

fn config() -> serde_json::Value {
    json!({
        "zones": [
            { "high": 59, "chord": { "shape": "min" } },
            { "low": 60, "scale": { "key": "D", "scale": "dorian" },
              "arp": { "mode": "up_down", "rate": "1/16T", "gate": 0.6, "octaves": 2, "swing": 0.55 } }
        ]
    })
}

/// A deterministic stream: chords low, arpeggiated keys high, overlapping.
fn stream() -> BTreeMap<u64, Vec<RtEvent>> {
    let mut s: BTreeMap<u64, Vec<RtEvent>> = BTreeMap::new();
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut next = || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    let mut cycle = 20;
    while cycle < CYCLES - 400 {
        let low = next() % 2 == 0;
        let note = if low {
            40 + (next() % 18) as u8
        } else {
            60 + (next() % 24) as u8
        };
        let frame = (next() % 64) as u32;
        let len = 30 + next() % 300;
        s.entry(cycle).or_default().push(RtEvent::midi(
            frame,
            &[0x90, note, 30 + (next() % 90) as u8],
        ));
        s.entry(cycle + len)
            .or_default()
            .push(RtEvent::midi((next() % 64) as u32, &[0x80, note, 0]));
        cycle += 5 + next() % 60;
    }
    s
}

fn instance(lib: &Arc<Library>) -> (ImpHandle, engine::OwnedRtPart) {
    let mut imp = lib.create("bard", &config(), None).unwrap();
    let rt = imp.thaw().unwrap().expect("the bard has an RT part");
    (imp, rt)
}

fn run(swap_every: Option<u64>) -> (Vec<EmittedEvent>, u64) {
    // Two separately loaded copies of the library: each swap changes code.
    let builds: Vec<Arc<Library>> = (0..2)
        .map(|_| {
            let lib = Library::load(&built_library("bard")).unwrap();
            lib.on_after_load(None).unwrap();
            lib
        })
        .collect();
    let (mut handle, mut core) = engine::engine(EngineConfig::default());
    let mut keep = Vec::new();
    let (imp, rt) = instance(&builds[0]);
    keep.push(imp);
    handle.install(0, rt, false).unwrap();
    handle
        .set_routing(Routing::new(&[0], &[]).unwrap())
        .unwrap();
    let events = stream();
    let mut out = Vec::new();
    let mut swaps = 0;
    for cycle in 0..CYCLES {
        if let Some(every) = swap_every {
            if cycle > 0 && cycle % every == 0 && swaps < 100 {
                swaps += 1;
                let (imp, rt) = instance(&builds[swaps as usize % 2]);
                keep.push(imp);
                handle.install(0, rt, true).unwrap();
            }
        }
        for e in events.get(&cycle).into_iter().flatten() {
            handle.inject(0, *e).unwrap();
        }
        core.cycle(64);
        out.extend_from_slice(core.emitted());
        handle.collect_garbage();
    }
    // The final all-off: removal ends whatever still sounds.
    handle.remove(0).unwrap();
    core.cycle(64);
    out.extend_from_slice(core.emitted());
    (out, swaps)
}

#[test]
fn hundred_hot_swaps_lose_nothing_and_keep_the_arpeggiator_in_phase() {
    let violations = alloc_guard::thread_violations();
    let (reference, _) = run(None);
    let (swapped, swaps) = run(Some(150));
    assert_eq!(swaps, 100);
    assert!(
        reference.len() > 1000,
        "the stream must exercise the bard: {} events",
        reference.len()
    );

    let first_difference = reference.iter().zip(&swapped).position(|(a, b)| a != b);
    assert!(
        first_difference.is_none() && reference.len() == swapped.len(),
        "swapped output differs from the reference at event {first_difference:?} (lengths {} vs {})",
        reference.len(),
        swapped.len()
    );

    // Every note-on has exactly one note-off, in order, per (channel, note).
    let mut sounding: BTreeMap<(u8, u8), u32> = BTreeMap::new();
    let (mut ons, mut offs) = (0, 0);
    for t in &swapped {
        let e = t.event;
        if e.is_note_on() {
            ons += 1;
            let n = sounding.entry((e.bytes[0] & 15, e.bytes[1])).or_default();
            assert_eq!(*n, 0, "note-on of a sounding note at sample {}", t.time);
            *n = 1;
        } else if e.is_note_off() {
            offs += 1;
            let n = sounding.entry((e.bytes[0] & 15, e.bytes[1])).or_default();
            assert_eq!(*n, 1, "note-off of a silent note at sample {}", t.time);
            *n = 0;
        }
    }
    assert_eq!(ons, offs);
    assert!(
        sounding.values().all(|n| *n == 0),
        "stuck notes: {sounding:?}"
    );
    assert_eq!(
        alloc_guard::thread_violations(),
        violations,
        "no allocation on the engine thread"
    );
}
