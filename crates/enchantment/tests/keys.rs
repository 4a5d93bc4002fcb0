//! Every key set and read back, every refusal's message.

use enchantment::*;
use serde_json::{json, Value};

fn two_zones() -> Enchantment {
    let mut e = Enchantment::default();
    e.set("zones", "lower, upper").unwrap();
    e
}

/// Sets and reads back; returns the value `get_key` shows.
fn roundtrip(e: &mut Enchantment, key: &str, value: &str) -> Value {
    let c = e
        .set(key, value)
        .unwrap_or_else(|err| panic!("{key} = {value}: {err}"));
    assert_eq!(c.new, e.get_key(key).unwrap(), "{key}");
    c.new
}

#[test]
fn every_zone_key_sets_and_reads_back() {
    let mut e = two_zones();
    let cases: &[(&str, &str, Value)] = &[
        ("source", "2", json!(2)),
        ("source", "any", json!("any")),
        ("channel", "3", json!(3)),
        ("channel", "ANY", json!("any")),
        ("low", "C2", json!("C2")),
        ("low", "Bb-1", json!("A#-1")),
        ("high", "F#4", json!("F#4")),
        ("high", "127", json!("G9")),
        ("low", "60", json!("C4")),
        ("low", "Db4", json!("C#4")),
        ("output", "3", json!(3)),
        ("out_channel", "16", json!(16)),
        ("out_channel", "same", json!("same")),
        ("bank", "16383", json!(16383)),
        ("bank", "none", json!("none")),
        ("program", "1", json!(1)),
        ("program", "128", json!(128)),
        ("program", "none", json!("none")),
        ("octave", "-4", json!(-4)),
        ("octave", "+4", json!(4)),
        ("semitone", "-11", json!(-11)),
        ("semitone", "11", json!(11)),
        ("key", "Eb", json!("D#")),
        ("key", "f#", json!("F#")),
        ("key", "B", json!("B")),
        ("scale", "major", json!("major")),
        ("scale", "ionian", json!("major")),
        ("scale", "Minor", json!("minor")),
        ("scale", "aeolian", json!("minor")),
        ("scale", "harmonic minor", json!("harmonic_minor")),
        ("scale", "whole-tone", json!("whole_tone")),
        ("scale", "off", json!("off")),
        ("chord", "maj7", json!("maj7")),
        ("chord", "m7", json!("m7")),
        ("chord", "7", json!("7")),
        ("chord", "minor", json!("min")),
        ("chord", "off", json!("off")),
        ("arp", "on", json!("on")),
        ("arp", "false", json!("off")),
        ("arp_pattern", "up_down", json!("up_down")),
        ("arp_pattern", "as played", json!("as_played")),
        ("arp_pattern", "chord", json!("chord")),
        ("arp_pattern", "1", json!("up")),
        ("arp_pattern", "2", json!("down")),
        ("arp_pattern", "3", json!("up_down")),
        ("arp_pattern", "4", json!("random")),
        ("arp_rate", "1/8T", json!("1/8T")),
        ("arp_rate", "1/4.", json!("1/4.")),
        ("arp_rate", "1/16", json!("1/16")),
        ("velocity", "soft", json!("soft")),
        ("velocity", "hard", json!("hard")),
        ("velocity", "1.5", json!("1.5")),
        ("velocity", "fixed 90", json!("fixed 90")),
        ("velocity", "linear", json!("linear")),
        ("drum_keys", "on", json!("on")),
        ("drum_keys", "off", json!("off")),
    ];
    for zone in ["lower", "2"] {
        for (k, v, shown) in cases {
            let key = format!("{zone}.{k}");
            assert_eq!(&roundtrip(&mut e, &key, v), shown, "{key} = {v}");
        }
    }
    assert_eq!(e.get_key("upper.velocity").unwrap(), json!("linear"));
    assert_eq!(e.zones[0].settings, e.zones[1].settings);
}

#[test]
fn every_global_key_sets_and_reads_back() {
    let mut e = two_zones();
    let cases: &[(&str, &str, Value)] = &[
        ("selected", "upper", json!("upper")),
        ("selected", "1", json!("lower")),
        ("tempo", "20", json!(20.0)),
        ("tempo", "300", json!(300.0)),
        ("tempo", "98.5", json!(98.5)),
        ("time_signature", "3/4", json!("3/4")),
        ("time_signature", "7/8", json!("7/8")),
        ("time_signature", "16/16", json!("16/16")),
        ("time_signature", "1/1", json!("1/1")),
        ("metronome", "on", json!("on")),
        ("metronome_output", "4", json!(4)),
        ("metronome_channel", "1", json!(1)),
        ("metronome_accent", "75", json!(75)),
        ("metronome_note", "C2", json!(36)),
        ("metronome_accent_velocity", "127", json!(127)),
        ("metronome_velocity", "1", json!(1)),
        ("drum_mode", "on", json!("on")),
        ("drums", "start", json!("on")),
        ("drums", "stop", json!("off")),
        ("drum_pattern", "5", json!(5)),
        ("drum_output", "2", json!(2)),
        ("zones", "a, b c", json!("a, b, c")),
    ];
    for (k, v, shown) in cases {
        assert_eq!(&roundtrip(&mut e, k, v), shown, "{k} = {v}");
    }
}

#[test]
fn drum_keys_set_and_read_back() {
    let mut e = Enchantment::default();
    assert_eq!(
        roundtrip(&mut e, "drums.3.kick", "x... x... X... (64)..."),
        json!("x...x...X...(64)...")
    );
    assert_eq!(e.global.drum_patterns[2].voices[0].steps.0[12], 64);
    // Shorter than the pattern: the rest is off.
    assert_eq!(
        roundtrip(&mut e, "drums.3.2", "..x"),
        json!("..x.............")
    );
    assert_eq!(roundtrip(&mut e, "drums.3.open_hat.note", "47"), json!(47));
    assert_eq!(roundtrip(&mut e, "drums.3.5.note", "D#2"), json!(39));
    assert_eq!(roundtrip(&mut e, "drums.3.length", "8"), json!(8));
    assert_eq!(e.get_key("drums.3.kick").unwrap(), json!("x...x..."));
    assert_eq!(roundtrip(&mut e, "drums.3.length", "12"), json!(12));
    assert_eq!(e.get_key("drums.3.kick").unwrap(), json!("x...x......."));
    assert_eq!(
        roundtrip(&mut e, "drums.3.hat", "123456789"),
        json!("123456789...")
    );
    assert_eq!(
        e.global.drum_patterns[2].voices[2].steps.0[..9],
        [14, 28, 42, 56, 70, 84, 98, 112, 126]
    );
}

#[test]
fn step_strings_print_back_exactly() {
    use enchantment::values::Steps;
    let all: Vec<u8> = (0..=127).collect();
    for chunk in all.chunks(64) {
        let s = Steps(chunk.to_vec());
        let back: Steps = s.to_string().parse().unwrap();
        assert_eq!(back, s);
    }
    let s: Steps = "x-X|9 (0)".parse().unwrap();
    assert_eq!(s.0, vec![100, 0, 127, 126, 0]);
    assert_eq!(s.to_string(), "x.X9.");
}

#[test]
fn a_bare_zone_key_edits_the_selected_zone() {
    let mut e = two_zones();
    e.set("selected", "upper").unwrap();
    let c = e.set("octave", "2").unwrap();
    assert_eq!(c.key, "upper.octave");
    assert_eq!(e.zones[1].settings.octave, 2);
    assert_eq!(e.zones[0].settings.octave, 0);
    assert_eq!(e.selected(), "upper");
}

#[test]
fn change_reports_the_full_key_and_both_values() {
    let mut e = two_zones();
    let c = e.set("2.OCTAVE", "1").unwrap();
    assert_eq!(c.key, "upper.octave");
    assert_eq!((c.old.clone(), c.new.clone()), (json!(0), json!(1)));
    assert!(c.changed());
    assert!(!e.set("upper.octave", "1").unwrap().changed());
}

fn err(e: &mut Enchantment, key: &str, value: &str) -> String {
    let before = e.clone();
    let msg = e.set(key, value).unwrap_err().to_string();
    assert_eq!(*e, before, "a refused edit changes nothing");
    msg
}

#[test]
fn unknown_keys_and_zones_list_what_there_is() {
    let mut e = two_zones();
    let m = err(&mut e, "lower.octav", "1");
    assert!(
        m.starts_with("unknown key \"lower.octav\": a zone's keys are source, channel, low, high, output, out_channel, bank, program, octave,"),
        "{m}"
    );
    assert_eq!(
        err(&mut e, "lowr.octave", "1"),
        "unknown zone \"lowr\": zones are lower, upper"
    );
    assert_eq!(
        err(&mut e, "3.octave", "1"),
        "unknown zone \"3\": zones are lower, upper"
    );
    let m = err(&mut e, "tempoo", "1");
    assert!(
        m.starts_with("unknown key \"tempoo\": global keys are zones, selected, tempo,"),
        "{m}"
    );
    assert!(m.contains("ZONE.KEY"), "{m}");
    let m = err(&mut e, "drums.6.kick", "x");
    assert!(m.contains("drum pattern keys are drums.P.VOICE"), "{m}");
    assert!(m.contains("P 1..=5"), "{m}");
    let m = err(&mut e, "drums.1.cowbell", "x");
    assert!(
        m.contains("kick, snare, hat, open_hat, clap or 1..=5"),
        "{m}"
    );
    let m = err(&mut e, "drums.1", "x");
    assert!(m.contains("drum pattern keys"), "{m}");
    let m = err(&mut e, "a.b.c", "x");
    assert!(m.starts_with("unknown key \"a.b.c\""), "{m}");
}

#[test]
fn every_bad_value_names_the_key_and_what_it_takes() {
    let mut e = two_zones();
    let cases: &[(&str, &str, &str)] = &[
        ("lower.octave", "7", "lower.octave = 7: octave is -4..=4"),
        ("lower.semitone", "12", "lower.semitone = 12: semitone is -11..=11"),
        ("lower.source", "x", "lower.source = x: source is any or an input number 0..=255"),
        ("lower.channel", "17", "lower.channel = 17: channel is any or a channel 1..=16"),
        ("lower.channel", "0", "lower.channel = 0: channel is any or a channel 1..=16"),
        ("lower.low", "H2", "lower.low = H2: low is a note: a name like C4 (middle C, 60), F#2, Bb-1 (C-1 .. G9) or a number 0..=127"),
        ("lower.high", "G#9", "lower.high = G#9: high is a note: a name like C4 (middle C, 60), F#2, Bb-1 (C-1 .. G9) or a number 0..=127"),
        ("lower.output", "256", "lower.output = 256: output is 0..=255"),
        ("lower.out_channel", "any", "lower.out_channel = any: out_channel is same or a channel 1..=16"),
        ("lower.bank", "16384", "lower.bank = 16384: bank is none or a bank 0..=16383"),
        ("lower.program", "0", "lower.program = 0: program is none or a program 1..=128"),
        ("lower.program", "129", "lower.program = 129: program is none or a program 1..=128"),
        ("lower.key", "H", "lower.key = H: key is a key C, C#, Db, D, D#, Eb, E, F, F#, Gb, G, G#, Ab, A, A#, Bb or B"),
        ("lower.arp", "maybe", "lower.arp = maybe: arp is on or off"),
        ("lower.drum_keys", "2", "lower.drum_keys = 2: drum_keys is on or off"),
        ("lower.arp_rate", "1/3", "lower.arp_rate = 1/3: arp_rate is a rate: 1/1., 1/1, 1/2., 1/1T, 1/2, 1/4., 1/2T, 1/4, 1/8., 1/4T, 1/8, 1/16., 1/8T, 1/16, 1/32., 1/16T, 1/32, 1/32T"),
        ("lower.velocity", "11", "lower.velocity = 11: velocity is a velocity curve: linear, soft, hard, an exponent 0.1..=10, or fixed N (N 1..=127)"),
        ("lower.velocity", "fixed 0", "lower.velocity = fixed 0: velocity is a velocity curve: linear, soft, hard, an exponent 0.1..=10, or fixed N (N 1..=127)"),
        ("tempo", "19", "tempo = 19: tempo is 20..=300 BPM"),
        ("tempo", "fast", "tempo = fast: tempo is 20..=300 BPM"),
        ("time_signature", "4/3", "time_signature = 4/3: time_signature is a time signature n/d: n 1..=16, d 1, 2, 4, 8 or 16 (like 4/4, 3/4, 7/8)"),
        ("time_signature", "17/4", "time_signature = 17/4: time_signature is a time signature n/d: n 1..=16, d 1, 2, 4, 8 or 16 (like 4/4, 3/4, 7/8)"),
        ("metronome", "loud", "metronome = loud: metronome is on or off"),
        ("metronome_channel", "0", "metronome_channel = 0: metronome_channel is 1..=16"),
        ("metronome_output", "-1", "metronome_output = -1: metronome_output is 0..=255"),
        ("metronome_accent", "128", "metronome_accent = 128: metronome_accent is a General MIDI note 0..=127 (or a name like C2 = 36)"),
        ("metronome_note", "x", "metronome_note = x: metronome_note is a General MIDI note 0..=127 (or a name like C2 = 36)"),
        ("metronome_velocity", "0", "metronome_velocity = 0: metronome_velocity is 1..=127"),
        ("metronome_accent_velocity", "128", "metronome_accent_velocity = 128: metronome_accent_velocity is 1..=127"),
        ("drum_mode", "x", "drum_mode = x: drum_mode is on or off"),
        ("drums", "x", "drums = x: drums is on or off"),
        ("drum_pattern", "6", "drum_pattern = 6: drum_pattern is 1..=5"),
        ("drum_output", "x", "drum_output = x: drum_output is 0..=255"),
        ("selected", "middle", "selected = middle: selected is a zone name or number: lower, upper"),
        ("drums.1.kick.note", "200", "drums.1.kick.note = 200: note is a General MIDI note 0..=127 (or a name like C2 = 36)"),
        ("drums.1.length", "65", "drums.1.length = 65: length is 1..=64 steps"),
        ("drums.1.length", "0", "drums.1.length = 0: length is 1..=64 steps"),
    ];
    for (k, v, want) in cases {
        assert_eq!(&err(&mut e, k, v), want);
    }
    let m = err(&mut e, "lower.scale", "spooky");
    assert!(
        m.starts_with("lower.scale = spooky: scale is a scale: off, major, minor, dorian,"),
        "{m}"
    );
    assert!(m.contains("chromatic"), "{m}");
    let m = err(&mut e, "lower.chord", "maj13");
    assert!(
        m.starts_with("lower.chord = maj13: chord is a chord: off, maj, min, 7, maj7"),
        "{m}"
    );
    let m = err(&mut e, "lower.arp_pattern", "5");
    assert!(m.contains("arp_pattern is an arpeggio pattern: up, down, up_down, down_up, as_played, random, chord, or 1 (up), 2 (down), 3 (up_down), 4 (random)"), "{m}");
    let m = err(&mut e, "drums.1.kick", "xxQ");
    assert!(m.starts_with("drums.1.kick = xxQ: the steps: 'Q' is not a step; a step string has one character per step"), "{m}");
    let m = err(&mut e, "drums.1.kick", "(300)");
    assert!(m.contains("(300) is not a velocity 0..=127"), "{m}");
    let m = err(&mut e, "drums.1.kick", &"x".repeat(17));
    assert_eq!(m, format!("drums.1.kick = {}: 17 steps, but pattern 1 has 16 (set drums.1.length first, up to 64)", "x".repeat(17)));
    let m = err(&mut e, "drums.1.length", "x");
    assert!(m.contains("length is 1..=64"), "{m}");
}

#[test]
fn low_and_high_keep_their_order() {
    let mut e = two_zones();
    e.set("lower.high", "C4").unwrap();
    assert_eq!(
        err(&mut e, "lower.low", "C5"),
        "lower.low = C5: low must not be above high (C4); set high first"
    );
    e.set("lower.low", "C2").unwrap();
    assert_eq!(
        err(&mut e, "lower.high", "B1"),
        "lower.high = B1: high must not be below low (C2); set low first"
    );
    e.set("lower.high", "C2").unwrap();
}

#[test]
fn zones_keep_settings_by_name_and_refuse_bad_lists() {
    let mut e = Enchantment::default();
    e.set("main.octave", "2").unwrap();
    e.set("zones", "lower main").unwrap();
    assert_eq!(e.zones[1].name, "main");
    assert_eq!(e.zones[1].settings.octave, 2);
    assert_eq!(e.zones[0].settings.octave, 0);
    assert_eq!(e.selected(), "main");
    e.set("zones", "lower, upper").unwrap();
    // The selected zone went away: the first one is selected.
    assert_eq!(e.selected(), "lower");
    for bad in [
        "",
        "a a",
        "tempo",
        "drums",
        "1a",
        "Upper!",
        "metronome",
        "preset",
    ] {
        let m = err(&mut e, "zones", bad);
        assert!(
            m.contains("zones is a list of 1..=14 different zone names"),
            "{bad}: {m}"
        );
    }
    let fifteen: Vec<String> = (0..15).map(|i| format!("z{i}")).collect();
    let m = err(&mut e, "zones", &fifteen.join(","));
    assert!(m.contains("1..=14"), "{m}");
    e.set("zones", &fifteen[..14].join(",")).unwrap();
    assert_eq!(e.zones.len(), 14);
}

#[test]
fn adjust_moves_clamps_and_never_wraps() {
    let mut e = two_zones();
    let a = |e: &mut Enchantment, k: &str, d: i32| e.adjust(k, d).unwrap().new;
    assert_eq!(a(&mut e, "lower.octave", 3), json!(3));
    assert_eq!(a(&mut e, "lower.octave", 3), json!(4));
    assert_eq!(a(&mut e, "lower.octave", -100), json!(-4));
    assert_eq!(a(&mut e, "lower.semitone", 30), json!(11));
    assert_eq!(a(&mut e, "lower.channel", 1), json!(1));
    assert_eq!(a(&mut e, "lower.channel", -1), json!("any"));
    assert_eq!(a(&mut e, "lower.channel", -1), json!("any"));
    assert_eq!(a(&mut e, "lower.channel", 100), json!(16));
    assert_eq!(a(&mut e, "lower.out_channel", 2), json!(2));
    assert_eq!(a(&mut e, "lower.program", 1), json!(1));
    assert_eq!(a(&mut e, "lower.program", 200), json!(128));
    assert_eq!(a(&mut e, "lower.program", -500), json!("none"));
    assert_eq!(a(&mut e, "lower.bank", 3), json!(2));
    assert_eq!(a(&mut e, "lower.source", 1), json!(0));
    assert_eq!(a(&mut e, "lower.key", 2), json!("D"));
    assert_eq!(a(&mut e, "lower.key", 20), json!("B"));
    assert_eq!(a(&mut e, "lower.scale", 1), json!("major"));
    assert_eq!(a(&mut e, "lower.scale", 1), json!("minor"));
    assert_eq!(a(&mut e, "lower.scale", 100), json!("chromatic"));
    assert_eq!(a(&mut e, "lower.scale", -100), json!("off"));
    assert_eq!(a(&mut e, "lower.chord", 4), json!("maj7"));
    assert_eq!(a(&mut e, "lower.arp", 1), json!("on"));
    assert_eq!(a(&mut e, "lower.arp", -1), json!("off"));
    assert_eq!(a(&mut e, "lower.arp_pattern", 2), json!("up_down"));
    assert_eq!(a(&mut e, "lower.arp_rate", 1), json!("1/32."));
    assert_eq!(a(&mut e, "lower.arp_rate", 10), json!("1/32T"));
    assert_eq!(a(&mut e, "lower.velocity", 1), json!("soft"));
    assert_eq!(a(&mut e, "lower.velocity", -5), json!("hard"));
    e.set("lower.high", "C4").unwrap();
    assert_eq!(a(&mut e, "lower.low", 100), json!("C4"));
    assert_eq!(a(&mut e, "lower.high", -1), json!("C4"));
    assert_eq!(a(&mut e, "lower.high", 1), json!("C#4"));
    assert_eq!(a(&mut e, "tempo", 5), json!(125.0));
    assert_eq!(a(&mut e, "tempo", 1000), json!(300.0));
    assert_eq!(a(&mut e, "tempo", -1000), json!(20.0));
    assert_eq!(a(&mut e, "time_signature", -1), json!("3/4"));
    assert_eq!(a(&mut e, "selected", 1), json!("upper"));
    assert_eq!(a(&mut e, "selected", 1), json!("upper"));
    assert_eq!(a(&mut e, "drum_pattern", 9), json!(5));
    assert_eq!(a(&mut e, "drums", 1), json!("on"));
    assert_eq!(a(&mut e, "metronome_velocity", 100), json!(127));
    assert_eq!(a(&mut e, "drums.1.length", 100), json!(64));
    assert_eq!(a(&mut e, "drums.1.kick.note", -1), json!(35));
    let m = e.adjust("zones", 1).unwrap_err().to_string();
    assert_eq!(
        m,
        "zones cannot be adjusted up or down: set it to a list of names, like \"lower, upper\""
    );
    let m = e.adjust("drums.1.kick", 1).unwrap_err().to_string();
    assert!(m.starts_with("drums.1.kick cannot be adjusted"), "{m}");
    assert!(e.adjust("lower.octav", 1).is_err());
}

#[test]
fn step_sets_one_pad_and_checks_its_numbers() {
    let mut e = Enchantment::default();
    let c = e.step(4, 2, 5, 127).unwrap();
    assert_eq!(c.key, "drums.4.snare");
    assert_eq!(c.new, json!("....X..........."));
    e.step(4, 2, 16, 64).unwrap();
    e.step(4, 2, 5, 0).unwrap();
    assert_eq!(
        e.get_key("drums.4.snare").unwrap(),
        json!("...............(64)")
    );
    assert_eq!(
        e.step(4, 2, 17, 1).unwrap_err().to_string(),
        "drums.4.snare = step 17 velocity 1: step is 1..=16 (the pattern's length)"
    );
    assert_eq!(
        e.step(4, 2, 0, 1).unwrap_err().to_string(),
        "drums.4.snare = step 0 velocity 1: step is 1..=16 (the pattern's length)"
    );
    assert_eq!(
        e.step(4, 2, 1, 128).unwrap_err().to_string(),
        "drums.4.snare = step 1 velocity 128: velocity is 0 (off)..=127"
    );
    assert!(e
        .step(6, 1, 1, 1)
        .unwrap_err()
        .to_string()
        .contains("drum pattern keys"));
    assert!(e
        .step(1, 6, 1, 1)
        .unwrap_err()
        .to_string()
        .contains("drum pattern keys"));
}

#[test]
fn get_shows_a_zone_or_everything() {
    let mut e = two_zones();
    e.set("upper.program", "5").unwrap();
    e.save_preset("upper", 3).unwrap();
    let z = e.get(Some("upper")).unwrap();
    assert_eq!(z["name"], json!("upper"));
    assert_eq!(z["program"], json!(5));
    assert_eq!(z["low"], json!("C-1"));
    assert_eq!(z["presets"], json!([3]));
    for k in ZONE_KEYS {
        assert!(z.get(k).is_some(), "{k} in {z}");
    }
    assert_eq!(e.get(Some("2")).unwrap(), z);
    let all = e.get(None).unwrap();
    assert_eq!(all["version"], json!(1));
    assert_eq!(all["zones"][1], z);
    assert_eq!(all["global"]["tempo"], json!(120.0));
    assert_eq!(
        all["global"]["drum_patterns"][0]["voices"][0]["steps"],
        json!("x.......x.x.....")
    );
    assert_eq!(
        e.get(Some("x")).unwrap_err().to_string(),
        "unknown zone \"x\": zones are lower, upper"
    );
}

#[test]
fn keys_md_lists_every_key() {
    let doc = include_str!("../KEYS.md");
    for k in ZONE_KEYS.iter().chain(GLOBAL_KEYS.iter()) {
        assert!(doc.contains(&format!("| `{k}` |")), "KEYS.md lacks {k}");
    }
    for k in ["drums.P.VOICE", "drums.P.VOICE.note", "drums.P.length"] {
        assert!(doc.contains(&format!("| `{k}` |")), "KEYS.md lacks {k}");
    }
}
