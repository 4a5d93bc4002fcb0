//! A free-running movement (run = always) follows the engine's beat: its
//! pattern position is derived from the beat, so a one-bar click pattern
//! started at any moment clicks on the beats with the accent on the bar's
//! first beat (beat_position 0, 4, 8… in 4/4), at several tempos, across
//! tempo changes, a config change and a hot swap.

mod common;

use bard_pipeline::*;
use common::no_alloc;

#[global_allocator]
static A: common::Counting = common::Counting;

const RATE: f64 = 48_000.0;
const BLOCK: u32 = 64;

/// A bar of 4/4 at 4 ticks per beat: accent 76 on beat 1, 77 on the others.
fn click(beats: u32, extra_voice: &str) -> String {
    let notes: Vec<String> = (0..beats)
        .map(|b| {
            format!(
                r#"{{"tick":{},"note":{},"velocity":100}}"#,
                b * 4,
                if b == 0 { 76 } else { 77 }
            )
        })
        .collect();
    format!(
        r#"{{"zones":[{{"notes":false,"movement":{{"ticks_per_beat":4,"patterns":{{
            "bar":{{"length":{},"notes":[{}]}},
            "two":{{"length":3,"notes":[{{"tick":0,"note":50}}]}},
            "one":{{"length":2,"notes":[{{"tick":1,"note":51}}]}}}},
            "voices":[{{"patterns":["bar"],"channel":10}}{extra_voice}]}}}}]}}"#,
        beats * 4,
        notes.join(",")
    )
}

struct Engine {
    bard: Bard,
    pos: u64,
    beat: f64,
    bpm: f64,
    /// (engine beat at the event, note, status)
    out: Vec<(f64, u8, u8)>,
}

impl Engine {
    fn new(start_beat: f64, bpm: f64) -> Engine {
        Engine {
            bard: Bard::new(PreparedConfig::default()),
            pos: 0,
            beat: start_beat,
            bpm,
            out: Vec::new(),
        }
    }

    fn run_beats(&mut self, beats: f64) {
        let until = self.beat + beats;
        while self.beat < until {
            let mut ctx = BlockContext::new(self.pos, RATE, self.bpm, BLOCK);
            ctx.beat_position = self.beat;
            let mut sink = FixedSink::<64>::new();
            let bard = &mut self.bard;
            no_alloc("process", || bard.process(&[], &ctx, &mut sink));
            let spb = RATE * 60.0 / self.bpm;
            for e in sink.events() {
                let b = self.beat + e.frame as f64 / spb;
                self.out.push((b, e.bytes[1], e.bytes[0] & 0xf0));
            }
            self.pos += BLOCK as u64;
            self.beat += BLOCK as f64 / spb;
        }
    }

    fn apply(&mut self, json: &str) {
        let cfg = PreparedConfig::new(&BardConfig::from_json(json).unwrap()).unwrap();
        let bard = &mut self.bard;
        drop(no_alloc("apply_config", || bard.apply_config(cfg)));
    }

    fn note_ons(&mut self) -> Vec<(f64, u8)> {
        let v = self
            .out
            .iter()
            .filter(|e| e.2 == 0x90)
            .map(|e| (e.0, e.1))
            .collect();
        self.out.clear();
        v
    }
}

/// Each click within a sample of a beat, 76 exactly on multiples of `bar`.
fn assert_on_the_beat(clicks: &[(f64, u8)], bar: f64, bpm: f64, what: &str) {
    let sample = bpm / 60.0 / RATE;
    let mut last = None;
    assert!(clicks.len() >= 4, "{what}: too few clicks {clicks:?}");
    for &(b, note) in clicks {
        if note != 76 && note != 77 {
            continue;
        }
        let nearest = b.round();
        assert!(
            (b - nearest).abs() <= 1.0 * sample + 1e-9,
            "{what}: click at beat {b} is off the beat"
        );
        let first_of_bar = (nearest / bar).fract().abs() < 1e-9;
        assert_eq!(
            note == 76,
            first_of_bar,
            "{what}: note {note} at beat {nearest} (bar of {bar} beats)"
        );
        if let Some(l) = last {
            assert_eq!(nearest - l, 1.0, "{what}: a beat without a click after {l}");
        }
        last = Some(nearest);
    }
}

#[test]
fn an_always_movement_started_mid_bar_clicks_on_the_engine_beats() {
    for bpm in [60.0, 97.0, 120.0, 173.3, 240.0] {
        for start in [0.0, 2.37, 5.5, 13.01] {
            let mut e = Engine::new(start, bpm);
            e.run_beats(1.3);
            e.apply(&click(4, ""));
            e.run_beats(9.0);
            let clicks = e.note_ons();
            assert_on_the_beat(&clicks, 4.0, bpm, &format!("{bpm} BPM from beat {start}"));
        }
    }
}

#[test]
fn clicks_stay_on_the_beat_across_tempo_changes_reconfigs_and_swaps() {
    let mut e = Engine::new(1.75, 120.0);
    e.apply(&click(4, ""));
    e.run_beats(5.2);
    e.bpm = 87.0;
    e.run_beats(4.1);
    // A config change that adds a voice and a 3/4 bar.
    e.apply(&click(3, r#",{"patterns":["two","one"],"repeat":2}"#));
    e.run_beats(7.3);
    e.bpm = 150.0;
    // A hot swap into a fresh instance.
    let mut buf = Box::new([0u8; TRANSIENT_STATE_BYTES]);
    e.bard.save_transient(&mut buf);
    let cfg = PreparedConfig::new(&BardConfig::from_json(&click(3, "")).unwrap()).unwrap();
    let mut next = Bard::new(cfg);
    next.restore_transient(&buf).unwrap();
    e.bard = next;
    e.run_beats(6.0);
    let clicks = e.note_ons();
    let (four, three): (Vec<_>, Vec<_>) = clicks.iter().partition(|c| c.0 < 11.0);
    assert_on_the_beat(&four, 4.0, 87.0, "4/4 part");
    assert_on_the_beat(&three, 3.0, 150.0, "3/4 part");
}

#[test]
fn a_voice_of_several_patterns_is_placed_from_the_beat_too() {
    // Voice: "two" (3 ticks) twice, then "one" (2 ticks) twice: a cycle of
    // 10 ticks from beat 0. Note 50 on ticks 0 and 3, note 51 on 7 and 9.
    let mut e = Engine::new(0.0, 120.0);
    e.run_beats(3.1); // tick 12.4: the movement starts at tick 13
    e.apply(&click(4, r#",{"patterns":["two","one"],"repeat":2}"#));
    e.run_beats(6.0);
    let ticks: Vec<u64> = e
        .note_ons()
        .iter()
        .filter(|c| c.1 == 50 || c.1 == 51)
        .map(|c| (c.0 * 4.0).round() as u64)
        .collect();
    let expected: Vec<u64> = (13..37)
        .filter(|t| [0, 3, 7, 9].contains(&(t % 10)))
        .collect();
    assert_eq!(ticks, expected);
}
