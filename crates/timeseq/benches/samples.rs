//! Samples-per-second benchmark for three sample scripts.
//!
//! Run: `cargo bench -p timeseq --bench samples`
//! Criterion reports the throughput as `elem/s` = samples per second.
//!
//! * `timeseq/<script>`: one `process(1)` call per sample, as the reference was measured.
//! * `timeseq-block64/<script>`: one `process_block(64)` call per 64 samples ("processing
//!   several samples per call is fair game"): the state after each call is exactly the
//!   per-sample state, but output values inside a block are not observable, so spans in
//!   which lanes only glide/set outputs are batched (see `Engine::process_block`).
// `criterion_group!` defines an undocumented public function.
#![allow(missing_docs)]

use criterion::{black_box, criterion_group, criterion_main, Criterion, Throughput};
use std::time::Duration;
use timeseq::Engine;

const SAMPLES: u64 = 480_000;

/// Runs the three scripts for [`SAMPLES`] samples, `per_call` samples per call.
fn bench_group(c: &mut Criterion, group_name: &str, per_call: u32) {
    let dir = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/samples");
    let mut group = c.benchmark_group(group_name);
    group.throughput(Throughput::Elements(SAMPLES));
    group.sample_size(10);
    group.warm_up_time(Duration::from_millis(500));
    group.measurement_time(Duration::from_secs(3));
    for name in ["clock", "chords-and-notes-arp-gate", "oscillator"] {
        let json = std::fs::read_to_string(dir.join(format!("{name}.json"))).unwrap();
        let proto = Engine::load(&json, 48000.0).unwrap();
        group.bench_function(name, |b| {
            b.iter(|| {
                let mut e = proto.clone();
                e.start(0);
                if per_call == 1 {
                    for _ in 0..SAMPLES {
                        e.process(1);
                    }
                } else {
                    for _ in 0..SAMPLES / per_call as u64 {
                        e.process_block(per_call);
                    }
                }
                black_box(e.output(0, 0))
            })
        });
    }
    group.finish();
}

fn bench_scripts(c: &mut Criterion) {
    bench_group(c, "timeseq", 1);
    bench_group(c, "timeseq-block64", 64);
}

criterion_group!(benches, bench_scripts);
criterion_main!(benches);
