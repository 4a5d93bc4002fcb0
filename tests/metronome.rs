//! The enchanter's metronome and drum patterns, as the real bard library
//! plays them on the engine's clock: every click and every drum step
//! falls on its beat (sample-exact) at the engine's tempo, the accent on
//! the bar's first beat, on the chosen output and channel 10.

mod common;
use common::*;
use enchantment::Enchantment;
use engine::{EngineConfig, EngineCore, EngineHandle};

const RATE: u64 = 48_000;

/// Plays the bard configured by `e` for `samples` samples at the
/// enchanter's tempo; returns (time, output, bytes) of every note-on.
fn note_ons(e: &Enchantment, samples: u64) -> Vec<(u64, u8, [u8; 3])> {
    let config = serde_json::to_value(e.bard_config()).unwrap();
    let (_bard, part) = thawed_part("bard", None, config);
    let (mut handle, mut core): (EngineHandle, EngineCore) = engine::engine(EngineConfig {
        sample_rate: RATE as u32,
        block_size: 64,
        tempo_bpm: e.tempo(),
        ..EngineConfig::default()
    });
    handle.install(0, part, false).unwrap();
    handle
        .set_routing(engine::Routing::new(&[0], &[]).unwrap())
        .unwrap();
    let mut out = Vec::new();
    for _ in 0..samples / 64 {
        core.cycle(64);
        out.extend(
            core.emitted()
                .iter()
                .filter(|t| t.event.is_note_on())
                .map(|t| (t.time, t.event.port, t.event.bytes)),
        );
        handle.collect_garbage();
    }
    out
}

#[test]
fn the_metronome_clicks_on_every_beat_with_the_accent_on_the_bar() {
    for (tempo, signature, beats_per_bar) in
        [(150.0, "3/4", 3), (96.0, "4/4", 4), (200.0, "5/4", 5)]
    {
        let mut e = Enchantment::default();
        e.set("tempo", &tempo.to_string()).unwrap();
        e.set("time_signature", signature).unwrap();
        e.set("metronome_output", "2").unwrap();
        e.set("metronome", "on").unwrap();
        let beat = (RATE as f64 * 60.0 / tempo).round() as u64;
        let beats = 3 * beats_per_bar as u64;
        let clicks = note_ons(&e, beats * beat);
        assert_eq!(
            clicks.len() as u64,
            beats,
            "{tempo} BPM {signature}: {clicks:?}"
        );
        for (k, (time, output, bytes)) in clicks.iter().enumerate() {
            let accent = k % beats_per_bar == 0;
            assert_eq!(*output, 2, "on metronome_output");
            assert_eq!(bytes[0], 0x99, "channel 10");
            assert_eq!(
                bytes[1],
                if accent { 76 } else { 77 },
                "click {k}: {clicks:?}"
            );
            assert_eq!(bytes[2], if accent { 127 } else { 100 });
            let want = k as u64 * beat;
            assert!(
                time.abs_diff(want) <= 1,
                "{tempo} BPM: click {k} at sample {time}, the beat is at {want}"
            );
        }
    }
}

#[test]
fn a_drum_pattern_plays_its_steps_on_the_sixteenth_grid_until_stopped() {
    let mut e = Enchantment::default();
    e.set("tempo", "120").unwrap();
    e.set("drum_output", "1").unwrap();
    e.set("drum_pattern", "3").unwrap();
    e.set("drums.3.kick", "x...x...x...x...").unwrap();
    e.set("drums.3.snare", "....X.......X...").unwrap();
    e.set("drums", "start").unwrap();
    let sixteenth = RATE * 60 / 120 / 4; // 6000 samples
    let hits = note_ons(&e, 32 * sixteenth);
    let kicks: Vec<u64> = hits.iter().filter(|h| h.2[1] == 36).map(|h| h.0).collect();
    let snares: Vec<(u64, u8)> = hits
        .iter()
        .filter(|h| h.2[1] == 38)
        .map(|h| (h.0, h.2[2]))
        .collect();
    assert_eq!(
        kicks,
        (0..8).map(|k| k * 4 * sixteenth).collect::<Vec<_>>(),
        "{hits:?}"
    );
    assert_eq!(
        snares,
        [4, 12, 20, 28].map(|s| (s * sixteenth, 127)).to_vec(),
        "{hits:?}"
    );
    assert!(hits.iter().all(|h| h.1 == 1 && h.2[0] == 0x99), "{hits:?}");

    e.set("drums", "stop").unwrap();
    assert!(note_ons(&e, 32 * sixteenth).is_empty(), "stopped: silent");
}
