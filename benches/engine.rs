//! Engine benchmarks with the real bard library.
//!
//! ```text
//! cargo xtask bench            # or:
//! cargo build --release --workspace && cargo bench --bench engine
//! ```
//!
//! - `engine/cycle_16_held_arp`: one 64-frame engine cycle at 48 kHz with
//!   the bard holding 16 keys and its arpeggiator running;
//! - `engine/cycle_with_swap`: the same cycle when it also applies a hot
//!   swap of the bard (transient state handed over through the engine's
//!   buffer); the difference to the first is the time the engine thread
//!   spends applying a swap.
// `criterion_group!` defines an undocumented public function.
#![allow(missing_docs)]

#[path = "../tests/common/mod.rs"]
mod common;

use criterion::{criterion_group, criterion_main, BatchSize, Criterion};
use engine::{EngineConfig, EngineCore, EngineHandle, Routing};
use imp::RtEvent;
use realm::Library;
use serde_json::json;
use std::sync::Arc;

fn config() -> serde_json::Value {
    json!({ "zones": [{ "scale": { "key": "C", "scale": "major" },
                        "arp": { "mode": "up_down", "rate": "1/32", "octaves": 2, "gate": 0.5 } }] })
}

fn setup() -> (
    Arc<Library>,
    Vec<realm::ImpHandle>,
    EngineHandle,
    EngineCore,
) {
    let lib = Library::load(&common::built_library("bard"))
        .expect("build the workspace in release first");
    lib.on_after_load(None).unwrap();
    let (mut handle, mut core) = engine::engine(EngineConfig::default());
    let mut imp = lib.create("bard", &config(), None).unwrap();
    let rt = imp.thaw().unwrap().unwrap();
    handle.install(0, rt, false).unwrap();
    handle
        .set_routing(Routing::new(&[0], &[]).unwrap())
        .unwrap();
    for i in 0..16u8 {
        handle
            .inject(0, RtEvent::midi(i as u32, &[0x90, 48 + i * 2, 100]))
            .unwrap();
    }
    for _ in 0..100 {
        core.cycle(64);
    }
    (lib, vec![imp], handle, core)
}

fn bench(c: &mut Criterion) {
    let mut group = c.benchmark_group("engine");
    let (_lib, _imps, _handle, mut core) = setup();
    group.bench_function("cycle_16_held_arp", |b| {
        b.iter(|| {
            core.cycle(64);
        })
    });

    let (lib, mut imps, mut handle, mut core) = setup();
    group.bench_function("cycle_with_swap", |b| {
        b.iter_batched(
            || {
                // Off the engine thread: create the successor, queue the swap.
                let mut imp = lib.create("bard", &config(), None).unwrap();
                let rt = imp.thaw().unwrap().unwrap();
                imps.push(imp);
                handle.collect_garbage();

                handle.install(0, rt, true).unwrap();
            },
            |_| core.cycle(64),
            BatchSize::PerIteration,
        )
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
