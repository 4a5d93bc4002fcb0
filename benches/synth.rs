//! The FluidSynth imp in the engine: one 64-frame cycle at 48 kHz with 32
//! voices sounding (the SoundFont the tests write: looped sines, so every
//! voice keeps playing), reverb on as in the default config.
//!
//! ```text
//! cargo build --release --workspace && cargo bench --bench synth
//! ```
//!
//! A 64-frame block lasts 1333 µs; the goal is under 10 % of it. The same
//! figure gives `impresario render`'s real-time factor for such a realm
//! (block length / cycle time).
// `criterion_group!` defines an undocumented public function.
#![allow(missing_docs)]

#[path = "../tests/common/mod.rs"]
mod common;

use criterion::{criterion_group, criterion_main, Criterion};
use engine::{EngineConfig, Routing};
use imp::RtEvent;
use realm::Library;
use serde_json::json;

fn bench(c: &mut Criterion) {
    let dir = tempfile::tempdir().unwrap();
    let font = dir.path().join("bench.sf2");
    common::soundfont::write(&font);
    realm::set_sample_rate(48_000.0);
    let lib = Library::load(&common::built_library("fluidsynth"))
        .expect("build the workspace in release first");
    lib.on_after_load(None).unwrap();
    let (mut handle, mut core) = engine::engine(EngineConfig::default());
    let mut imp = lib
        .create("synth", &json!({ "soundfont": font, "voices": 64 }), None)
        .unwrap();
    imp.set_slot(0);
    let rt = imp.thaw().unwrap().unwrap();
    handle.install(0, rt, false).unwrap();
    handle
        .set_routing(Routing::new(&[0], &[]).unwrap())
        .unwrap();
    // 32 voices: 16 keys on each of two channels.
    for ch in 0..2u8 {
        for i in 0..16u8 {
            handle
                .inject(0, RtEvent::midi(0, &[0x90 | ch, 40 + i * 3, 100]))
                .unwrap();
        }
    }
    for _ in 0..100 {
        core.cycle(64);
        handle.collect_garbage();
    }
    assert!(
        core.audio_out().0.iter().any(|s| s.abs() > 1e-4),
        "the voices sound"
    );
    let mut group = c.benchmark_group("synth");
    group.bench_function("cycle_64_frames_32_voices", |b| {
        b.iter(|| {
            core.cycle(64);
        })
    });
    group.finish();
    drop(imp);
}

criterion_group!(benches, bench);
criterion_main!(benches);
