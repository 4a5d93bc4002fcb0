//! What the enchanter derives (bard configuration, program changes, tempo),
//! presets and the vault round trip.

use bard_pipeline::*;
use enchantment::*;
use proptest::prelude::*;
use serde_json::json;

fn two_zones() -> Enchantment {
    let mut e = Enchantment::default();
    e.set("zones", "lower, upper").unwrap();
    e.set("lower.high", "B3").unwrap();
    e.set("upper.low", "C4").unwrap();
    e
}

#[test]
fn the_default_is_one_zone_taking_everything_unchanged() {
    let e = Enchantment::default();
    assert_eq!(e.zones.len(), 1);
    assert_eq!(e.zones[0].name, "main");
    assert_eq!(e.selected(), "main");
    assert_eq!(e.tempo(), 120.0);
    let cfg = e.bard_config();
    cfg.validate().unwrap();
    let mut pass = BardConfig::default();
    pass.zones[0].name = "main".into();
    assert_eq!(cfg, pass);
    assert!(e.program_messages(None).is_empty());
}

#[test]
fn zones_become_bard_zones_with_every_stage() {
    let mut e = two_zones();
    for (k, v) in [
        ("lower.source", "1"),
        ("lower.channel", "2"),
        ("lower.output", "3"),
        ("lower.out_channel", "4"),
        ("lower.octave", "-1"),
        ("lower.semitone", "5"),
        ("lower.key", "D"),
        ("lower.scale", "dorian"),
        ("lower.chord", "m7"),
        ("lower.arp", "on"),
        ("lower.arp_pattern", "down_up"),
        ("lower.arp_rate", "1/8T"),
        ("lower.velocity", "fixed 90"),
        ("upper.velocity", "soft"),
    ] {
        e.set(k, v).unwrap();
    }
    let cfg = e.bard_config();
    cfg.validate().unwrap();
    assert_eq!(cfg.zones.len(), 2);
    let l = &cfg.zones[0];
    assert_eq!(l.name, "lower");
    assert_eq!(
        (l.source, l.channel, l.low, l.high),
        (Some(1), Some(2), 0, 59)
    );
    assert_eq!((l.output, l.out_channel), (3, Some(4)));
    assert_eq!(
        l.transpose,
        Transpose {
            octaves: -1,
            semitones: 5
        }
    );
    let s = l.scale.as_ref().unwrap();
    assert_eq!((s.key, &s.scale), (Key(2), &ScaleKind::Dorian));
    assert_eq!(
        l.chord.as_ref().unwrap().shape,
        ChordShape::Named(ChordName::Min7)
    );
    let a = l.arp.unwrap();
    assert_eq!(a.mode, ArpMode::DownUp);
    assert_eq!(a.rate, Rate::parse("1/8T").unwrap());
    assert_eq!(l.velocity.fixed, Some(90));
    assert!(l.drums.is_none());
    assert!(l.notes && l.movement.is_none());
    let u = &cfg.zones[1];
    assert_eq!((u.low, u.high), (60, 127));
    assert_eq!(u.velocity.curve, 2.0);
    assert!(u.scale.is_none() && u.chord.is_none() && u.arp.is_none());
    assert_eq!(cfg.transpose, Transpose::default());
}

#[test]
fn drum_mode_puts_every_zone_through_the_drum_map_and_drum_keys_one() {
    let mut e = two_zones();
    e.set("upper.drum_keys", "on").unwrap();
    let cfg = e.bard_config();
    assert!(cfg.zones[0].drums.is_none());
    assert_eq!(cfg.zones[1].drums, Some(DrumConfig::default()));
    e.set("drum_mode", "on").unwrap();
    let cfg = e.bard_config();
    assert!(cfg.zones.iter().all(|z| z.drums.is_some()));
    // Selecting a zone changes nothing that sounds.
    e.set("selected", "upper").unwrap();
    assert_eq!(e.bard_config(), cfg);
}

#[test]
fn a_running_drum_pattern_is_a_movement_only_zone_on_channel_10() {
    let mut e = two_zones();
    e.set("drum_output", "2").unwrap();
    e.set("drum_pattern", "3").unwrap();
    e.set("drums.3.kick", "x...X...").unwrap();
    e.set("drums.3.clap", "....(64)").unwrap();
    assert_eq!(e.bard_config().zones.len(), 2, "stopped: no drum zone");
    e.set("drums", "on").unwrap();
    let cfg = e.bard_config();
    cfg.validate().unwrap();
    assert_eq!(cfg.zones.len(), 3);
    let d = &cfg.zones[2];
    assert_eq!(d.name, DRUM_ZONE);
    assert!(!d.notes && !d.controllers);
    assert_eq!(d.output, 2);
    assert_eq!(d.transpose, Transpose::default());
    let m = d.movement.as_ref().unwrap();
    assert_eq!((m.ticks_per_beat, m.run, m.bpm), (4, RunMode::Always, None));
    assert_eq!(m.voices.len(), 5);
    for (v, name) in m.voices.iter().zip(DRUM_VOICES) {
        assert_eq!(v.patterns, vec![name.to_string()]);
        assert!(v.drums && !v.mute && v.cycle);
        assert_eq!(v.output, None);
        assert_eq!(m.patterns[name].length, 16);
    }
    assert_eq!(
        m.patterns["kick"].notes,
        vec![
            PatternNote {
                tick: 0,
                note: 36,
                velocity: 100,
                duration: 1
            },
            PatternNote {
                tick: 4,
                note: 36,
                velocity: 127,
                duration: 1
            },
        ]
    );
    assert_eq!(
        m.patterns["clap"].notes,
        vec![PatternNote {
            tick: 4,
            note: 39,
            velocity: 64,
            duration: 1
        }]
    );
    assert!(m.patterns["snare"].notes.is_empty());
    // The prepared zone plays on channel 10 (drum voices).
    PreparedConfig::new(&cfg).unwrap();
}

#[test]
fn the_metronome_clicks_one_bar_of_the_time_signature() {
    let mut e = Enchantment::default();
    e.set("metronome", "on").unwrap();
    e.set("metronome_output", "5").unwrap();
    e.set("drums", "on").unwrap();
    let cfg = e.bard_config();
    cfg.validate().unwrap();
    assert_eq!(cfg.zones.len(), 3);
    assert_eq!(cfg.zones[1].name, DRUM_ZONE);
    let z = &cfg.zones[2];
    assert_eq!(z.name, METRONOME_ZONE);
    assert!(!z.notes && !z.controllers);
    assert_eq!(z.output, 5);
    let m = z.movement.as_ref().unwrap();
    assert_eq!(m.ticks_per_beat, 4);
    assert_eq!(m.voices.len(), 1);
    assert_eq!(m.voices[0].channel, Some(10));
    assert!(!m.voices[0].drums);
    let bar = &m.patterns["bar"];
    assert_eq!(bar.length, 16);
    let notes: Vec<(u32, u8, u8)> = bar
        .notes
        .iter()
        .map(|n| (n.tick, n.note, n.velocity))
        .collect();
    assert_eq!(
        notes,
        vec![(0, 76, 127), (4, 77, 100), (8, 77, 100), (12, 77, 100)]
    );

    for (sig, length, ticks) in [
        ("3/4", 12, vec![0, 4, 8]),
        ("6/8", 12, vec![0, 2, 4, 6, 8, 10]),
        ("7/8", 14, vec![0, 2, 4, 6, 8, 10, 12]),
        ("2/2", 16, vec![0, 8]),
        ("1/1", 16, vec![0]),
        ("5/16", 5, vec![0, 1, 2, 3, 4]),
    ] {
        e.set("time_signature", sig).unwrap();
        e.set("metronome_channel", "3").unwrap();
        e.set("metronome_accent", "C5").unwrap();
        let cfg = e.bard_config();
        cfg.validate().unwrap();
        let m = cfg.zones[2].movement.as_ref().unwrap();
        assert_eq!(m.voices[0].channel, Some(3));
        let bar = &m.patterns["bar"];
        assert_eq!(bar.length, length, "{sig}");
        assert_eq!(
            bar.notes.iter().map(|n| n.tick).collect::<Vec<_>>(),
            ticks,
            "{sig}"
        );
        assert_eq!(bar.notes[0].note, 72);
    }
    e.set("drums", "off").unwrap();
    assert_eq!(e.bard_config().zones[1].name, METRONOME_ZONE);
}

#[test]
fn program_messages_send_bank_and_program_where_they_changed() {
    let mut e = two_zones();
    e.set("lower.output", "1").unwrap();
    e.set("lower.out_channel", "3").unwrap();
    e.set("lower.bank", "300").unwrap();
    e.set("lower.program", "5").unwrap();
    e.set("upper.channel", "2").unwrap();
    e.set("upper.output", "2").unwrap();
    e.set("upper.program", "128").unwrap();
    let all = e.program_messages(None);
    assert_eq!(
        all,
        vec![
            (1, vec![0xb2, 0, 2]),
            (1, vec![0xb2, 32, 44]),
            (1, vec![0xc2, 4]),
            (2, vec![0xc1, 127]),
        ]
    );
    assert!(e.program_messages(Some(&e.clone())).is_empty());
    let before = e.clone();
    e.set("upper.program", "1").unwrap();
    e.set("lower.octave", "1").unwrap();
    assert_eq!(e.program_messages(Some(&before)), vec![(2, vec![0xc1, 0])]);
    let before = e.clone();
    e.set("lower.out_channel", "same").unwrap();
    e.set("lower.channel", "any").unwrap();
    assert_eq!(
        e.program_messages(Some(&before)),
        vec![
            (1, vec![0xb0, 0, 2]),
            (1, vec![0xb0, 32, 44]),
            (1, vec![0xc0, 4])
        ]
    );
    let before = e.clone();
    e.set("upper.output", "7").unwrap();
    assert_eq!(e.program_messages(Some(&before)), vec![(7, vec![0xc1, 0])]);
    // A new zone with a program counts as changed; a zone without one sends nothing.
    let before = e.clone();
    e.set("zones", "lower, upper, pad").unwrap();
    assert!(e.program_messages(Some(&before)).is_empty());
    e.set("pad.program", "90").unwrap();
    assert_eq!(e.program_messages(Some(&before)), vec![(0, vec![0xc0, 89])]);
    // As bard control messages, which the bard accepts.
    let controls = e.program_controls(None);
    assert_eq!(
        controls[0],
        json!({"cmd": "send", "output": 1, "midi": [0xb0, 0, 2]})
    );
    for c in controls {
        let msg = ControlMessage::from_json(c.to_string().as_bytes()).unwrap();
        BardConfig::default().apply_control(&msg).unwrap();
    }
}

#[test]
fn presets_save_and_recall_exactly() {
    let mut e = two_zones();
    e.set("upper.scale", "blues").unwrap();
    e.set("upper.program", "12").unwrap();
    e.set("upper.arp", "on").unwrap();
    let saved = e.zones[1].settings.clone();
    let c = e.save_preset("upper", 24).unwrap();
    assert_eq!(c.key, "upper.preset.24");
    assert_eq!(c.old, serde_json::Value::Null);
    let with_preset = e.bard_config();
    e.set("upper.scale", "off").unwrap();
    e.set("upper.arp", "off").unwrap();
    e.set("upper.octave", "-2").unwrap();
    assert_ne!(e.bard_config(), with_preset);
    let before = e.clone();
    let c = e.recall_preset("2", 24).unwrap();
    assert!(c.changed());
    assert_eq!(e.zones[1].settings, saved);
    assert_eq!(e.bard_config(), with_preset);
    assert_eq!(e.program_messages(Some(&before)), vec![]);
    // The other zone and the name are untouched.
    assert_eq!(e.zones[0], before.zones[0]);
    assert_eq!(e.zones[1].name, "upper");
    assert_eq!(e.preset_slots("upper"), vec![24]);
    assert!(e.preset_slots("lower").is_empty());
    // Saving again replaces.
    e.set("upper.octave", "3").unwrap();
    let c = e.save_preset("upper", 24).unwrap();
    assert!(c.changed());
    e.set("upper.octave", "0").unwrap();
    e.recall_preset("upper", 24).unwrap();
    assert_eq!(e.zones[1].settings.octave, 3);
}

#[test]
fn preset_errors_say_what_to_do() {
    let mut e = two_zones();
    assert_eq!(
        e.recall_preset("lower", 5).unwrap_err().to_string(),
        "preset 5 of zone \"lower\" is empty: nothing to recall; save the zone's settings into it first (impresario preset save 5, which saves the selected zone)"
    );
    for n in [0, 25, -1] {
        assert_eq!(
            e.save_preset("lower", n).unwrap_err().to_string(),
            format!("preset {n} does not exist: presets are 1..=24")
        );
        assert!(e.recall_preset("lower", n).is_err());
    }
    assert_eq!(
        e.save_preset("middle", 1).unwrap_err().to_string(),
        "unknown zone \"middle\": zones are lower, upper"
    );
}

#[test]
fn presets_follow_the_zone_name() {
    let mut e = two_zones();
    e.set("upper.octave", "2").unwrap();
    e.save_preset("upper", 1).unwrap();
    e.set("zones", "lower").unwrap();
    e.set("zones", "lower, upper").unwrap();
    assert_eq!(e.zones[1].settings.octave, 0);
    e.recall_preset("upper", 1).unwrap();
    assert_eq!(e.zones[1].settings.octave, 2);
}

#[test]
fn the_vault_json_round_trips_and_reads_well() {
    let mut e = two_zones();
    for (k, v) in [
        ("upper.scale", "harmonic_minor"),
        ("upper.velocity", "0.7"),
        ("lower.velocity", "fixed 64"),
        ("lower.bank", "129"),
        ("lower.program", "7"),
        ("lower.key", "Bb"),
        ("drums.2.hat", "x.(33).X"),
        ("drums.4.length", "64"),
        ("time_signature", "7/8"),
        ("tempo", "133.5"),
        ("metronome", "on"),
        ("selected", "upper"),
    ] {
        e.set(k, v).unwrap();
    }
    e.save_preset("lower", 2).unwrap();
    let text = e.to_json();
    assert_eq!(Enchantment::from_json(&text).unwrap(), e);
    assert_eq!(
        Enchantment::from_value(serde_json::from_str(&text).unwrap()).unwrap(),
        e
    );
    assert!(text.contains("\"version\": 1"));
    assert!(text.contains("\"low\": \"C4\""), "{text}");
    assert!(
        text.contains("\"steps\": \"x.(33).X...........\""),
        "{text}"
    );
    assert!(text.contains("\"time_signature\": \"7/8\""));
    assert!(text.contains("\"key\": \"A#\""));
    // Missing fields take their defaults; unknown ones are ignored.
    let e2 = Enchantment::from_json(
        r#"{"zones":[{"name":"solo","octave":1,"future":3}],"global":{"selected":"solo"}}"#,
    )
    .unwrap();
    assert_eq!(e2.zones[0].settings.octave, 1);
    assert_eq!(e2.global.tempo, 120.0);
    assert_eq!(
        Enchantment::from_json("{}").unwrap(),
        Enchantment::default()
    );
}

#[test]
fn bad_vault_data_is_refused_with_the_reason() {
    let bad = |j: &str| Enchantment::from_json(j).unwrap_err().to_string();
    assert!(bad(r#"{"zones":[{"name":"main","octave":9}]}"#)
        .contains("zone main: octave = 9: octave is -4..=4"));
    assert!(bad(r#"{"zones":[{"name":"main","low":"C5","high":"C4"}]}"#)
        .contains("low must not be above high"));
    assert!(bad(r#"{"zones":[]}"#).contains("0 zones"));
    assert!(bad(r#"{"zones":[{"name":"a"},{"name":"a"}]}"#).contains("not a valid, unique name"));
    assert!(bad(r#"{"global":{"selected":"x"}}"#).contains("selected zone \"x\""));
    assert!(
        bad(r#"{"global":{"tempo":500}}"#).contains("tempo = 500"),
        "{}",
        bad(r#"{"global":{"tempo":500}}"#)
    );
    assert!(bad(r#"{"version":2}"#).contains("newer"));
    assert!(bad(r#"{"global":{"drum_patterns":[]}}"#).contains("0 drum patterns"));
    assert!(bad(r#"{"zones":[{"name":"main","scale":"nope"}]}"#)
        .contains("the enchanter's vault data:"));
    assert!(bad(r#"{"presets":{"main":{"25":{}}}}"#).contains("preset 25"));
}

const VALUES: &[&str] = &[
    "0",
    "1",
    "2",
    "3",
    "4",
    "5",
    "7",
    "10",
    "12",
    "16",
    "17",
    "24",
    "64",
    "100",
    "127",
    "128",
    "255",
    "300",
    "16383",
    "-1",
    "-4",
    "-11",
    "-12",
    "any",
    "same",
    "none",
    "on",
    "off",
    "C4",
    "C-1",
    "G9",
    "F#2",
    "Bb-1",
    "major",
    "minor",
    "blues",
    "whole_tone",
    "maj7",
    "m7",
    "9",
    "up_down",
    "random",
    "chord",
    "1/8T",
    "1/32",
    "1/1.",
    "soft",
    "hard",
    "0.1",
    "10",
    "fixed 1",
    "fixed 127",
    "4/4",
    "7/8",
    "16/16",
    "5/16",
    "1/1",
    "a",
    "b",
    "lower, upper",
    "a b c d",
    "x...x...X...x...",
    "(1)(2)(3)",
    "",
    "X",
    "x.x.x.x.x.x.x.x.x.x.x.x.x.x.x.x.x",
];

fn all_keys() -> Vec<String> {
    let mut keys: Vec<String> = GLOBAL_KEYS.iter().map(|k| k.to_string()).collect();
    for z in ["1", "2", "3", "lower", "upper", "a"] {
        keys.extend(ZONE_KEYS.iter().map(|k| format!("{z}.{k}")));
    }
    keys.extend(ZONE_KEYS.iter().map(|k| k.to_string()));
    for p in 1..=5 {
        keys.push(format!("drums.{p}.length"));
        for v in DRUM_VOICES {
            keys.push(format!("drums.{p}.{v}"));
            keys.push(format!("drums.{p}.{v}.note"));
        }
    }
    keys
}

/// One edit, as a controller or the CLI could send it.
#[derive(Clone, Debug)]
enum Edit {
    Set(usize, usize),
    Adjust(usize, i32),
    Step(u8, u8, u8, u8),
    Save(i64),
    Recall(i64),
}

fn edit(keys: usize) -> impl Strategy<Value = Edit> {
    prop_oneof![
        6 => (0..keys, 0..VALUES.len()).prop_map(|(k, v)| Edit::Set(k, v)),
        1 => (0..keys, -10i32..=10).prop_map(|(k, d)| Edit::Adjust(k, d)),
        1 => (0u8..7, 0u8..7, 0u8..66, 0u8..=255).prop_map(|(p, v, s, vel)| Edit::Step(p, v, s, vel)),
        1 => (-1i64..27).prop_map(Edit::Save),
        1 => (-1i64..27).prop_map(Edit::Recall),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    /// Whatever a performer does, the derived bard configuration is valid
    /// (and prepares), a refused edit changes nothing, the state stays
    /// valid and survives the vault, and its program changes are messages
    /// the bard takes.
    #[test]
    fn bard_config_is_always_valid_over_random_edit_sequences(
        edits in proptest::collection::vec(edit(all_keys().len()), 1..200)
    ) {
        let keys = all_keys();
        let mut e = Enchantment::default();
        for ed in &edits {
            let before = e.clone();
            let selected = e.selected().to_string();
            let r = match *ed {
                Edit::Set(k, v) => e.set(&keys[k], VALUES[v]),
                Edit::Adjust(k, d) => e.adjust(&keys[k], d),
                Edit::Step(p, v, s, vel) => e.step(p, v, s, vel),
                Edit::Save(n) => e.save_preset(&selected, n),
                Edit::Recall(n) => e.recall_preset(&selected, n),
            };
            if r.is_err() {
                prop_assert_eq!(&e, &before, "a refused edit changes nothing: {:?}", ed);
            }
            let cfg = e.bard_config();
            prop_assert!(cfg.validate().is_ok(), "{:?} after {:?} in {}", cfg.validate(), ed, e.to_json());
            prop_assert!(e.validate().is_ok(), "{:?}", e.validate());
        }
        PreparedConfig::new(&e.bard_config()).unwrap();
        prop_assert_eq!(Enchantment::from_json(&e.to_json()).unwrap(), e.clone());
        for c in e.program_controls(None) {
            let msg = ControlMessage::from_json(c.to_string().as_bytes()).unwrap();
            BardConfig::default().apply_control(&msg).unwrap();
        }
    }
}

#[test]
fn the_random_edits_mostly_apply() {
    // Guards the property above against testing only refusals.
    let keys = all_keys();
    let mut e = Enchantment::default();
    let mut ok = 0;
    for (i, v) in VALUES.iter().enumerate() {
        for k in keys.iter().skip(i % 7).step_by(7) {
            ok += e.set(k, v).is_ok() as usize;
        }
    }
    assert!(ok > 200, "{ok}");
}

/// Runs the derived configuration in a bard following an engine beat that
/// starts at `start_beat`; returns (beat, output, channel, note, velocity)
/// of every note-on.
fn play(e: &Enchantment, start_beat: f64, beats: f64) -> Vec<(f64, u8, u8, u8, u8)> {
    let rate = 48_000.0;
    let spb = rate * 60.0 / e.tempo();
    let mut bard = Bard::new(PreparedConfig::default());
    let mut pos = 0u64;
    let mut beat = start_beat;
    let mut out = Vec::new();
    let mut applied = false;
    while beat < start_beat + beats {
        if !applied && beat >= start_beat + 0.4 {
            // Configured in the middle of a beat.
            bard.apply_config(PreparedConfig::new(&e.bard_config()).unwrap());
            applied = true;
        }
        let mut ctx = BlockContext::new(pos, rate, e.tempo(), 64);
        ctx.beat_position = beat;
        let mut sink = FixedSink::<64>::new();
        bard.process(&[], &ctx, &mut sink);
        for ev in sink.events() {
            if ev.bytes[0] & 0xf0 == 0x90 {
                let b = beat + ev.frame as f64 / spb;
                out.push((b, ev.port, ev.bytes[0] & 0x0f, ev.bytes[1], ev.bytes[2]));
            }
        }
        pos += 64;
        beat += 64.0 / spb;
    }
    out
}

#[test]
fn metronome_and_drums_play_on_the_engine_bar() {
    for (tempo, sig, bar) in [("120", "4/4", 4.0), ("97", "3/4", 3.0), ("173", "6/8", 3.0)] {
        let mut e = Enchantment::default();
        e.set("tempo", tempo).unwrap();
        e.set("time_signature", sig).unwrap();
        e.set("metronome", "on").unwrap();
        e.set("metronome_output", "1").unwrap();
        e.set("drums", "on").unwrap();
        e.set("drum_pattern", "2").unwrap(); // four on the floor
        e.set("drum_output", "2").unwrap();
        let notes = play(&e, 6.3, 14.0);
        let sample = e.tempo() / 60.0 / 48_000.0;
        let clicks: Vec<_> = notes.iter().filter(|n| n.1 == 1).collect();
        assert!(clicks.len() >= 8, "{sig}: {clicks:?}");
        let per_click = if sig == "6/8" { 0.5 } else { 1.0 };
        for c in &clicks {
            assert_eq!(c.2, 9, "metronome on channel 10");
            let grid = (c.0 / per_click).round() * per_click;
            assert!(
                (c.0 - grid).abs() <= sample,
                "{sig}: click at {} off the grid",
                c.0
            );
            let accent = (grid / bar).fract().abs() < 1e-9;
            assert_eq!(
                (c.3, c.4),
                if accent { (76, 127) } else { (77, 100) },
                "{sig} at {grid}"
            );
        }
        let kicks: Vec<_> = notes.iter().filter(|n| n.1 == 2 && n.3 == 36).collect();
        assert!(kicks.len() >= 8);
        for k in kicks {
            assert_eq!(k.2, 9, "drums on channel 10");
            assert!(
                (k.0 - k.0.round()).abs() <= sample,
                "kick at {} off the beat",
                k.0
            );
        }
    }
}
