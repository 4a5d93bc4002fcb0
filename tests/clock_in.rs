//! MIDI clock in, through the real engine and the real port and bard
//! libraries on a manual clock: a jittery 120 BPM clock arrives on a
//! `clock_in` port while the engine runs at 100 BPM; the engine follows the
//! tempo within 0.1 BPM after two beats, and the bard's 1/16 arpeggio steps
//! land on the clock's ticks.

mod common;
use common::*;
use engine::alloc_guard::{self, GuardedAllocator};
use engine::{EngineConfig, Routing, Wire};
use imp::RtEvent;
use realm::{ImpHandle, Library};
use serde_json::json;
use std::sync::Arc;

#[global_allocator]
static ALLOCATOR: GuardedAllocator = GuardedAllocator;

const PORT: usize = 0;
const BARD: usize = 1;
const BLOCK: u32 = 64;
/// 120 BPM at 48 kHz: 24 ticks per beat are 1000 samples apart.
const TICK: u64 = 1000;
/// ±1 ms of jitter at 48 kHz.
const JITTER: i64 = 48;

/// Creates and thaws an imp for `slot`.
fn part(lib: &str, slot: usize, config: serde_json::Value) -> (ImpHandle, engine::OwnedRtPart) {
    let lib = Library::load(&built_library(lib)).unwrap();
    lib.on_after_load(None).unwrap();
    let mut imp = lib.create(lib.name(), &config, None).unwrap();
    imp.set_slot(slot);
    let rt = imp.thaw().unwrap().expect("an RT part");
    (imp, rt)
}

/// Nominal tick `k`'s time and its jittered arrival (deterministic).
fn ticks(n: usize) -> Vec<(u64, u64)> {
    let mut x: u64 = 0x2545_F491_4F6C_DD1D;
    (0..n as u64)
        .map(|k| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let j = (x % (2 * JITTER as u64 + 1)) as i64 - JITTER;
            let nominal = 4_800 + k * TICK;
            (nominal, (nominal as i64 + j) as u64)
        })
        .collect()
}

#[test]
fn the_engine_follows_a_jittery_clock_and_the_arpeggio_steps_on_its_ticks() {
    let (ports, _driver) = backend::loopback::loopback();
    realm::ports::install(Arc::new(ports));
    let (mut handle, mut core) = engine::engine(EngineConfig {
        tempo_bpm: 100.0,
        ..EngineConfig::default()
    });
    let (mut port, p) = part(
        "midi_port",
        PORT,
        json!({ "direction": "in", "name": "clock", "clock_in": true }),
    );
    let (_bard, b) = part(
        "bard",
        BARD,
        json!({ "zones": [{ "arp": { "mode": "up", "rate": "1/16" } }] }),
    );
    handle.install(PORT, p, false).unwrap();
    handle.install(BARD, b, false).unwrap();
    handle
        .set_routing(
            Routing::new(
                &[PORT, BARD],
                &[Wire {
                    from: PORT,
                    output: 0,
                    to: BARD,
                    input: 0,
                }],
            )
            .unwrap(),
        )
        .unwrap();

    let ticks = ticks(24 * 8);
    let end = ticks.last().unwrap().1 + TICK;
    let violations = alloc_guard::thread_violations();
    let mut next = 0;
    let mut position = 0u64;
    let mut steps = Vec::new();
    let mut tempo_after_two_beats = Vec::new();
    let mut held = false;
    while position < end {
        // Everything arriving in this block, at its frame.
        while next < ticks.len() && ticks[next].1 < position + BLOCK as u64 {
            let frame = (ticks[next].1 - position) as u32;
            handle.inject(PORT, RtEvent::midi(frame, &[0xf8])).unwrap();
            next += 1;
        }
        if !held && next >= 48 {
            // Two beats in: hold a chord for the arpeggio.
            for n in [60, 64, 67] {
                handle
                    .inject(BARD, RtEvent::midi(0, &[0x90, n, 100]))
                    .unwrap();
            }
            held = true;
        }
        alloc_guard::rt_section(|| core.cycle(BLOCK));
        for e in core.emitted().iter().filter(|e| e.slot == BARD) {
            if e.event.is_note_on() {
                steps.push(e.time);
            }
        }
        if next > 48 {
            tempo_after_two_beats.push(handle.stats().tempo_bpm);
        }
        handle.collect_garbage();
        position += BLOCK as u64;
    }
    assert_eq!(alloc_guard::thread_violations(), violations);

    // The tempo: within 0.1 BPM of 120 from two beats on.
    assert!(!tempo_after_two_beats.is_empty());
    for bpm in &tempo_after_two_beats {
        assert!((bpm - 120.0).abs() < 0.1, "followed tempo {bpm}");
    }
    let status = port.poll().unwrap();
    let shown = status["clock_in_bpm"].as_f64().expect("clock_in_bpm");
    assert!((shown - 120.0).abs() < 0.1, "{status}");

    // The steps: every 1/16 (6 ticks) after the first, each within the
    // jitter (plus rounding) of a tick, and one per 6 ticks.
    assert!(steps.len() >= 20, "{} arpeggio steps", steps.len());
    let nominal: Vec<u64> = ticks.iter().map(|t| t.0).collect();
    let mut grid_ticks = Vec::new();
    for (i, s) in steps.iter().enumerate().skip(1) {
        let k = nominal
            .iter()
            .enumerate()
            .min_by_key(|(_, t)| t.abs_diff(*s))
            .map(|(k, _)| k)
            .unwrap();
        let off = nominal[k].abs_diff(*s);
        assert!(
            off <= 2 * JITTER as u64 + 16,
            "step {i} at {s} is {off} samples from tick {k} at {}",
            nominal[k]
        );
        grid_ticks.push(k);
    }
    for w in grid_ticks.windows(2) {
        assert_eq!(
            w[1] - w[0],
            6,
            "a 1/16 step is 6 ticks: {grid_ticks:?} {steps:?}"
        );
    }
}
