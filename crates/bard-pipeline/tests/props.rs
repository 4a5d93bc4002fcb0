//! Property: for any stream of note events interleaved with configuration
//! changes, tempo changes, hot swaps (save + restore into a new instance),
//! jumps of the engine clock,
//! intermediate all-notes-off and undersized output buffers, the output is
//! well formed (per output/channel/note, on and off alternate), frames are
//! in order inside each block, and after the final all-notes-off every
//! note-on that left the bard has exactly one matching note-off. Every
//! real-time call runs under the allocation guard.

mod common;

use bard_pipeline::*;
use common::{no_alloc, Counting};
use proptest::prelude::*;
use std::collections::HashMap;

#[global_allocator]
static A: Counting = Counting;

const CONFIGS: &[&str] = &[
    "{}",
    r#"{"zones":[{"scale":{"key":"C","scale":"major","snap":"nearest"},"chord":{"shape":"maj7","inversion":2}}]}"#,
    r#"{"transpose":{"octaves":1,"semitones":-3},"zones":[{"scale":{"key":"F#","scale":"blues","snap":"up"},"chord":{"shape":[0,0,12,24]}}]}"#,
    r#"{"zones":[{"chord":{"shape":"m7"},"arp":{"mode":"up_down","rate":"1/32","gate":1.0,"octaves":4,"latch":true}}]}"#,
    r#"{"zones":[{"arp":{"mode":"random","rate":"1/16T","gate":0.3,"swing":0.7}}]}"#,
    r#"{"zones":[{"high":59,"output":1,"arp":{"mode":"chord","rate":"1/32","octaves":3}},{"low":50,"output":2,"out_channel":3,"scale":{"key":"D","scale":"dorian","white_keys":true},"chord":{"shape":"9","diatonic":true}}]}"#,
    r#"{"zones":[{"channel":1,"drums":{}},{"channel":2,"movement":{"ticks_per_beat":12,"run":"while_held","patterns":{"p":{"length":7,"notes":[{"tick":0,"note":60,"duration":9},{"tick":0,"note":60,"duration":2},{"tick":5,"note":67}]}},"voices":[{"patterns":["p"]},{"patterns":["p"],"drums":true}]}}]}"#,
    r#"{"transpose":{"semitones":7},"zones":[{"source":1,"output":5},{"high":0,"movement":{"ticks_per_beat":24,"bpm":173.0,"patterns":{"a":{"length":5,"notes":[{"tick":1,"note":40,"duration":30}]},"b":{"length":3,"notes":[{"tick":0,"note":41,"duration":1}]}},"voices":[{"patterns":["a","b"],"repeat":2,"cycle":false}]}},{"arp":{"mode":"as_played","rate":"1/8.","latch":true,"quantize_start":true}}]}"#,
    r#"{"transpose":{"semitones":-2},"zones":[{"high":60,"transpose":{"octaves":1,"semitones":5}},{"low":55,"transpose":{"semitones":-7},"arp":{"rate":"1/32"}},{"notes":false,"transpose":{"semitones":3},"movement":{"ticks_per_beat":4,"patterns":{"a":{"length":3,"notes":[{"tick":0,"note":60,"duration":5}]}},"voices":[{"patterns":["a"]},{"patterns":["a"],"drums":true}]}}]}"#,
];

#[derive(Clone, Debug)]
enum Op {
    Note {
        source: u8,
        channel: u8,
        note: u8,
        velocity: u8,
    },
    Release {
        source: u8,
        channel: u8,
        note: u8,
    },
    Advance(u32),
    Config(usize),
    Tempo(f64),
    Swap,
    /// Hot swap into an instance built with another configuration.
    SwapTo(usize),
    AllOff,
    SinkSize(usize),
    /// The engine clock jumps to this block index (transport relocation).
    Relocate(u64),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        6 => (0u8..2, 0u8..3, 40u8..80, 0u8..128).prop_map(|(source, channel, note, velocity)| Op::Note { source, channel, note, velocity }),
        5 => (0u8..2, 0u8..3, 40u8..80).prop_map(|(source, channel, note)| Op::Release { source, channel, note }),
        6 => (0u32..3000).prop_map(Op::Advance),
        2 => (0..CONFIGS.len()).prop_map(Op::Config),
        1 => (30.0f64..300.0).prop_map(Op::Tempo),
        1 => Just(Op::Swap),
        1 => (0..CONFIGS.len()).prop_map(Op::SwapTo),
        1 => Just(Op::AllOff),
        1 => prop_oneof![Just(1usize), Just(2), Just(3), 4usize..64, Just(256)].prop_map(Op::SinkSize),
        1 => (0u64..5000).prop_map(Op::Relocate),
    ]
}

const BLOCK: u32 = 64;

struct Run {
    bard: Bard,
    prepared: Vec<PreparedConfig>,
    current: usize,
    pos: u64,
    frame: u32,
    bpm: f64,
    pending: Vec<NoteEvent>,
    sink_size: usize,
    buf: Vec<NoteEvent>,
    out: Vec<(u64, NoteEvent)>,
}

impl Run {
    fn new() -> Run {
        let prepared: Vec<PreparedConfig> = CONFIGS
            .iter()
            .map(|j| PreparedConfig::new(&BardConfig::from_json(j).unwrap()).unwrap())
            .collect();
        Run {
            bard: Bard::new(prepared[0].clone()),
            prepared,
            current: 0,
            pos: 0,
            frame: 0,
            bpm: 120.0,
            pending: Vec::with_capacity(4096),
            sink_size: 256,
            buf: vec![NoteEvent::default(); 256],
            out: Vec::new(),
        }
    }

    fn block(&mut self) {
        let ctx = BlockContext::new(self.pos, 44_100.0, self.bpm, BLOCK);
        let mut sink = SliceSink::new(&mut self.buf[..self.sink_size]);
        let bard = &mut self.bard;
        let input = &self.pending[..];
        no_alloc("process", || bard.process(input, &ctx, &mut sink));
        let mut last = 0;
        for e in sink.events() {
            assert!(
                e.frame < BLOCK && e.frame >= last,
                "frames out of order: {:?}",
                sink.events()
            );
            last = e.frame;
            self.out.push((self.pos + e.frame as u64, *e));
        }
        self.pending.clear();
        self.pos += BLOCK as u64;
        self.frame = 0;
    }

    fn between_blocks(&mut self) {
        self.block();
    }

    fn all_off(&mut self) {
        let mut sink = SliceSink::new(&mut self.buf[..self.sink_size]);
        let bard = &mut self.bard;
        no_alloc("all_notes_off", || bard.all_notes_off(&mut sink));
        for e in sink.events() {
            self.out.push((self.pos, *e));
        }
    }

    fn apply(&mut self, op: Op) {
        match op {
            Op::Note {
                source,
                channel,
                note,
                velocity,
            } => {
                // velocity 0 is a note-off spelled as a note-on.
                let e = NoteEvent {
                    frame: self.frame,
                    port: source,
                    bytes: [0x90 | channel, note, velocity],
                    len: 3,
                };
                self.pending.push(e);
            }
            Op::Release {
                source,
                channel,
                note,
            } => {
                self.pending
                    .push(NoteEvent::note_off(self.frame, source, channel, note));
            }
            Op::Advance(d) => {
                let mut f = self.frame + d;
                while f >= BLOCK {
                    self.block();
                    f -= BLOCK;
                }
                self.frame = f;
            }
            Op::Config(i) => {
                self.between_blocks();
                self.current = i;
                let next = self.prepared[i].clone();
                let bard = &mut self.bard;
                let old = no_alloc("apply_config", || bard.apply_config(next));
                drop(old);
            }
            Op::Tempo(bpm) => {
                self.between_blocks();
                self.bpm = bpm;
            }
            Op::Swap => self.apply(Op::SwapTo(self.current)),
            Op::SwapTo(i) => {
                self.between_blocks();
                self.current = i;
                let mut buf = Box::new([0u8; TRANSIENT_STATE_BYTES]);
                let mut next = Bard::new(self.prepared[i].clone());
                let b = &mut *buf;
                let old = &self.bard;
                no_alloc("save_transient", || old.save_transient(b));
                no_alloc("restore_transient", || next.restore_transient(b)).unwrap();
                self.bard = next;
            }
            Op::AllOff => {
                self.between_blocks();
                self.all_off();
            }
            Op::SinkSize(n) => {
                self.between_blocks();
                self.sink_size = n;
            }
            Op::Relocate(block) => {
                self.between_blocks();
                self.pos = block * BLOCK as u64;
            }
        }
    }

    /// Releases every key, switches to the pass-through configuration (which
    /// drops latched arpeggios and stops movements) and lets pending
    /// generated notes end: the ledger alone must leave nothing sounding.
    fn settle(&mut self) {
        self.between_blocks();
        self.sink_size = 256;
        for source in 0..2u8 {
            for channel in 0..3u8 {
                for note in 40..80u8 {
                    self.pending
                        .push(NoteEvent::note_off(0, source, channel, note));
                }
            }
        }
        self.block();
        self.apply(Op::Config(0));
        // Longest generated note: 30 ticks at 24 per beat, at 30 BPM = 2.5 s.
        self.apply(Op::Advance(4 * 44_100));
        self.block();
        assert_eq!(
            self.bard.sounding(),
            0,
            "notes left sounding with every key released"
        );
    }

    fn finish(&mut self) {
        self.between_blocks();
        self.sink_size = 256;
        // The final all-notes-off; a tiny earlier sink may have left note-offs
        // pending, so repeat until nothing sounds (bounded).
        for _ in 0..4 {
            self.all_off();
            if self.bard.sounding() == 0 {
                break;
            }
        }
        assert_eq!(self.bard.sounding(), 0);
    }
}

fn check_balanced(out: &[(u64, NoteEvent)]) -> Result<usize, TestCaseError> {
    let mut on: HashMap<(u8, u8, u8), bool> = HashMap::new();
    let mut ons = 0;
    for (t, e) in out {
        let key = (e.port, e.bytes[0] & 0x0f, e.bytes[1]);
        match e.decode() {
            Midi::NoteOn { .. } => {
                prop_assert!(
                    !on.get(&key).copied().unwrap_or(false),
                    "second note-on without note-off at {t}: {e:?}"
                );
                on.insert(key, true);
                ons += 1;
            }
            Midi::NoteOff { .. } => {
                prop_assert!(
                    on.get(&key).copied().unwrap_or(false),
                    "note-off without note-on at {t}: {e:?}"
                );
                on.insert(key, false);
            }
            Midi::Other => {}
        }
    }
    let stuck: Vec<_> = on.into_iter().filter(|(_, v)| *v).collect();
    prop_assert!(stuck.is_empty(), "stuck after the final all-off: {stuck:?}");
    Ok(ons)
}

proptest! {
    // 160 cases by default; PROPTEST_CASES=N for a longer hunt.
    #![proptest_config(ProptestConfig {
        cases: std::env::var("PROPTEST_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(160),
        ..ProptestConfig::default()
    })]

    #[test]
    fn every_note_on_has_exactly_one_note_off(ops in prop::collection::vec(op(), 1..150)) {
        // As the issue states it: after the final all-off, balanced.
        let mut run = Run::new();
        for op in ops.clone() {
            run.apply(op);
        }
        run.finish();
        check_balanced(&run.out)?;
        // Stronger, without the safety net: once every key is released, the
        // ledger alone ended every note, so the final all-off sends nothing.
        let mut run = Run::new();
        for op in ops {
            run.apply(op);
        }
        run.settle();
        let settled = run.out.len();
        run.finish();
        prop_assert_eq!(run.out.len(), settled);
        check_balanced(&run.out)?;
    }
}

/// A fixed long run, so the property is also checked on a busy stream.
#[test]
fn a_long_busy_stream_is_balanced() {
    let mut run = Run::new();
    let mut x: u64 = 0x1234_5678_9abc_def1;
    let mut rnd = |n: u64| {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x % n
    };
    for i in 0..6000u64 {
        let op = match rnd(20) {
            0..=6 => Op::Note {
                source: rnd(2) as u8,
                channel: rnd(3) as u8,
                note: 40 + rnd(40) as u8,
                velocity: rnd(128) as u8,
            },
            7..=12 => Op::Release {
                source: rnd(2) as u8,
                channel: rnd(3) as u8,
                note: 40 + rnd(40) as u8,
            },
            13..=16 => Op::Advance(rnd(2000) as u32),
            17 => Op::Config(rnd(CONFIGS.len() as u64) as usize),
            18 if i % 7 == 0 => Op::Swap,
            18 if i % 11 == 0 => Op::SwapTo(rnd(CONFIGS.len() as u64) as usize),
            18 if i % 5 == 0 => Op::Relocate(rnd(3000)),
            18 => Op::Tempo(40.0 + rnd(200) as f64),
            _ => Op::SinkSize([2, 5, 256, 256][rnd(4) as usize]),
        };
        run.apply(op);
    }
    run.settle();
    let settled = run.out.len();
    run.finish();
    assert_eq!(run.out.len(), settled);
    let ons = check_balanced(&run.out).unwrap();
    assert!(ons > 1000, "only {ons} note-ons");
}
