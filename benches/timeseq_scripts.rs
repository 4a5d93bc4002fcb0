//! How many TimeSeq scripts one engine runs: one 64-frame cycle at 48 kHz
//! with 64 `timeseq_player` instances (the engine's slot count, so the most
//! one daemon runs) of a sample script. A cycle's budget is 64 / 48000 s =
//! 1333 µs; half of it (the figure the README quotes) is 667 µs, so the
//! number of instances that fit in half the time is 667 µs × 64 / (time of
//! this cycle).
//!
//! ```text
//! cargo build --release --workspace && cargo bench --bench timeseq_scripts
//! ```
//!
//! - `timeseq/oscillator_x64`: `samples/oscillator.json` with the default
//!   mapping (its saw on output 2 read as pitch and triangle on output 3 as
//!   gate: a note storm, notes retriggered every few samples);
//! - `timeseq/oscillator_x64_square_gate`: the same script with only its
//!   130.8 Hz square (output 1) mapped, as pitch and gate: the player steps
//!   only where the square can change (its other outputs change every
//!   sample, unwatched, in blocks); a note event every 184 samples;
//! - `timeseq/oscillator_x64_no_midi`: the same script with nothing mapped
//!   (`notes = []`): the script's own cost in blocks between events;
//! - `timeseq/arp_gate_x64`: `samples/chords-and-notes-arp-gate.json`, a
//!   typical sequence (one note every 6000 samples).

// `criterion_group!` defines an undocumented public function.
#![allow(missing_docs)]

#[path = "../tests/common/mod.rs"]
mod common;

use criterion::{criterion_group, criterion_main, Criterion};
use engine::{EngineConfig, EngineCore, EngineHandle, Routing, MAX_SLOTS};
use realm::Library;
use serde_json::json;

fn sample(name: &str) -> String {
    std::fs::read_to_string(
        common::workspace()
            .join("crates/timeseq/tests/fixtures/samples")
            .join(name),
    )
    .unwrap()
}

fn setup(
    script: &str,
    mapping: serde_json::Value,
) -> (Vec<realm::ImpHandle>, EngineHandle, EngineCore) {
    let lib = Library::load(&common::built_library("timeseq_player"))
        .expect("build the workspace in release first");
    lib.on_after_load(None).unwrap();
    let (mut handle, mut core) = engine::engine(EngineConfig::default());
    let config = json!({ "script": script, "mapping": mapping });
    let mut imps = Vec::new();
    for slot in 0..MAX_SLOTS {
        let mut imp = lib.create(&format!("seq.{slot}"), &config, None).unwrap();
        let rt = imp.thaw().unwrap().unwrap();
        handle.install(slot, rt, false).unwrap();
        imps.push(imp);
    }
    let slots: Vec<usize> = (0..MAX_SLOTS).collect();
    handle
        .set_routing(Routing::new(&slots, &[]).unwrap())
        .unwrap();
    for _ in 0..100 {
        core.cycle(64);
    }
    (imps, handle, core)
}

fn bench(c: &mut Criterion) {
    let mut group = c.benchmark_group("timeseq");
    for (name, script, mapping) in [
        ("oscillator_x64", "oscillator.json", json!({})),
        (
            "oscillator_x64_square_gate",
            "oscillator.json",
            json!({ "notes": [{ "pitch": 1, "gate": 1 }] }),
        ),
        (
            "oscillator_x64_no_midi",
            "oscillator.json",
            json!({ "notes": [] }),
        ),
        ("arp_gate_x64", "chords-and-notes-arp-gate.json", json!({})),
    ] {
        let (_imps, mut handle, mut core) = setup(&sample(script), mapping);
        group.bench_function(name, |b| {
            b.iter(|| {
                core.cycle(64);
                handle.collect_garbage();
            })
        });
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
