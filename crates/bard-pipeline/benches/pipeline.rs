//! Cost per input event through scale + chord + arpeggiator, and cost of one
//! 64-frame block at 48 kHz with 16 held notes and the arpeggiator running.
//!
//! `cargo bench -p bard-pipeline --bench pipeline`
// `criterion_group!` defines an undocumented public function.
#![allow(missing_docs)]

use std::time::Duration;

use bard_pipeline::{Bard, BardConfig, BlockContext, FixedSink, NoteEvent};
use criterion::{black_box, criterion_group, criterion_main, Criterion};

const CFG: &str = r#"{"transpose":{"semitones":-12},"zones":[{"output":1,
    "velocity":{"curve":1.3},
    "scale":{"key":"D","scale":"dorian","snap":"nearest"},
    "chord":{"shape":"m7","inversion":1},
    "arp":{"mode":"up_down","rate":"1/32T","gate":0.5,"octaves":2,"swing":0.6}}]}"#;

/// Same without the chord, so 16 held keys are 16 arpeggiated notes.
const CFG_NO_CHORD: &str = r#"{"zones":[{"output":1,
    "scale":{"key":"D","scale":"dorian","snap":"nearest"},
    "arp":{"mode":"up_down","rate":"1/32T","gate":0.5,"octaves":2,"swing":0.6}}]}"#;

fn bard_from(json: &str) -> Bard {
    Bard::from_config(&BardConfig::from_json(json).unwrap()).unwrap()
}

fn ctx(block: u64) -> BlockContext {
    BlockContext::new(block * 64, 48_000.0, 120.0, 64)
}

fn per_event(c: &mut Criterion) {
    // One note-on and its note-off per iteration, in a block with nothing else due.
    let mut b = bard_from(CFG);
    let mut sink = FixedSink::<256>::new();
    let on = [NoteEvent::note_on(10, 0, 0, 61, 100)];
    let off = [NoteEvent::note_off(20, 0, 0, 61)];
    let mut block = 0u64;
    c.bench_function(
        "event through scale+chord+arp (note-on + note-off)",
        |bench| {
            bench.iter(|| {
                sink.clear();
                b.process(black_box(&on), &ctx(block), &mut sink);
                b.process(black_box(&off), &ctx(block + 1), &mut sink);
                block += 2;
                black_box(sink.events().len())
            })
        },
    );
}

fn block_with_16_held(c: &mut Criterion) {
    let mut b = bard_from(CFG_NO_CHORD);
    let mut sink = FixedSink::<256>::new();
    // 16 distinct keys held; the arpeggiator (a step every 2000 samples)
    // steps in about one block of 31, so this is the average block cost.
    let keys: Vec<NoteEvent> = (0..16)
        .map(|i| NoteEvent::note_on(i, 0, 0, 48 + i as u8, 100))
        .collect();
    b.process(&keys, &ctx(0), &mut sink);
    let mut block = 1u64;
    c.bench_function("block of 64 frames, 16 held notes, arp running", |bench| {
        bench.iter(|| {
            sink.clear();
            b.process(black_box(&[]), &ctx(block), &mut sink);
            block += 1;
            black_box(sink.events().len())
        })
    });
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2))
        .sample_size(30);
    targets = per_event, block_with_16_held
}
criterion_main!(benches);
