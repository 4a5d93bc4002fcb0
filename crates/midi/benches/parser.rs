//! Parser throughput (bytes/s) for a typical performance stream: notes with
//! running status, CCs, pitch bend, aftertouch, clock bytes interleaved, and
//! an occasional SysEx.
//!
//! `cargo bench -p midi --bench parser`
// `criterion_group!` defines an undocumented public function.
#![allow(missing_docs)]

use criterion::{black_box, criterion_group, criterion_main, Criterion, Throughput};
use midi::{Decoder, Event, Parser};
use std::time::Duration;

fn typical_stream() -> Vec<u8> {
    let mut s = Vec::new();
    for i in 0..4096u32 {
        let k = (i * 7 % 88 + 21) as u8;
        match i % 8 {
            0 => s.extend_from_slice(&[0x90, k, 100, k + 4, 90, k + 7, 80]),
            1 => s.extend_from_slice(&[0xF8, 0xB0, 1, (i % 128) as u8, 2, 64]),
            2 => s.extend_from_slice(&[0xE0, (i % 128) as u8, 64, 0xF8]),
            3 => s.extend_from_slice(&[0xD0, (i % 128) as u8, 0x80, k, 0]),
            4 => s.extend_from_slice(&[0x90, k, 0, 0xF8, k + 4, 0, k + 7, 0]),
            5 => s.extend_from_slice(&[0xB9, 7, 100, 0xC9, 3, 0xFE]),
            6 if i % 64 == 6 => {
                s.extend_from_slice(&[0xF0, 0x43, 0x10, 0x4C, 0, 0, 0x7E, 0, 0xF8, 0xF7])
            }
            _ => s.extend_from_slice(&[0x99, 36, 120, 0xF8, 36, 0]),
        }
    }
    s
}

fn bench(c: &mut Criterion) {
    let stream = typical_stream();
    let mut g = c.benchmark_group("parser");
    g.throughput(Throughput::Bytes(stream.len() as u64));
    g.warm_up_time(Duration::from_millis(500));
    g.measurement_time(Duration::from_secs(2));
    g.sample_size(30);
    g.bench_function("parser_typical_stream_64B_chunks", |b| {
        let mut p = Parser::new();
        b.iter(|| {
            let mut n = 0u32;
            for chunk in stream.chunks(64) {
                p.feed(black_box(chunk), |e| {
                    if let Event::Message(m) = e {
                        n = n.wrapping_add(u32::from(m.status()));
                    }
                });
            }
            n
        })
    });
    g.bench_function("decoder_typical_stream_64B_chunks", |b| {
        let mut d = Decoder::new();
        b.iter(|| {
            let mut n = 0usize;
            for chunk in stream.chunks(64) {
                d.feed(black_box(chunk), |_| n += 1);
            }
            n
        })
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
