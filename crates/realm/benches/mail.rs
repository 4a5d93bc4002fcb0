//! What an RT part's message costs on the engine thread: `rt_post`, the
//! host side of `RtSender::try_send`, copying a typical controller gesture
//! into the preallocated queue. Run with `cargo bench -p realm --bench mail`.

// `criterion_group!` defines an undocumented public function.
#![allow(missing_docs)]

use criterion::{criterion_group, criterion_main, Criterion};
use std::time::{Duration, Instant};

fn rt_post(c: &mut Criterion) {
    realm::mail::install(None);
    let gesture = br#"{"cmd":"step","pattern":1,"voice":2,"step":5,"velocity":100}"#;
    c.bench_function(
        "rt_post: one 62-byte gesture into the engine-thread queue",
        |b| {
            b.iter_custom(|iters| {
                // Timed in batches the queue holds; emptied (by the control
                // side's `take`) between them, untimed.
                let mut spent = Duration::ZERO;
                let mut left = iters;
                while left > 0 {
                    let n = left.min(128);
                    let start = Instant::now();
                    for _ in 0..n {
                        let code = realm::mail::rt_post(b"keys", b"enchanter", gesture);
                        std::hint::black_box(code);
                    }
                    spent += start.elapsed();
                    left -= n;
                    std::hint::black_box(realm::mail::take());
                }
                spent
            })
        },
    );
}

criterion_group!(benches, rt_post);
criterion_main!(benches);
