//! Each stage alone and in combination, with the expected notes and their
//! absolute sample times written out (48 kHz, 120 BPM: a beat is 24000
//! samples, a 1/16 step 6000; blocks of 64 frames, so the times also check the
//! frame offsets inside blocks). Every real-time call runs under the
//! allocation guard of `common`.

mod common;

use bard_pipeline::*;
use common::*;

#[global_allocator]
static A: Counting = Counting;

#[test]
fn default_config_is_a_pass_through() {
    let mut r = Rig::new(PreparedConfig::default());
    let cc_in = (70, NoteEvent::control_change(0, 0, 0, 1, 64));
    r.run(
        200,
        &[
            key_on(10, 0, 60, 100),
            cc_in,
            key_off(100, 0, 60),
            key_on(130, 5, 61, 1),
            key_off(131, 5, 61),
        ],
    );
    assert_eq!(
        r.take(),
        vec![
            on(10, 0, 0, 60, 100),
            cc(70, 0, 0, 1, 64),
            off(100, 0, 0, 60),
            on(130, 0, 5, 61, 1),
            off(131, 0, 5, 61)
        ]
    );
    // `{}` is the default too.
    assert_eq!(BardConfig::from_json("{}").unwrap(), BardConfig::default());
}

#[test]
fn velocity_curve_window_and_fixed() {
    let mut r = Rig::json(r#"{"zones":[{"velocity":{"curve":2.0}}]}"#);
    r.run(64, &[key_on(1, 0, 60, 64), key_off(2, 0, 60)]);
    assert_eq!(r.take(), vec![on(1, 0, 0, 60, 33), off(2, 0, 0, 60)]);
    let mut r = Rig::json(r#"{"zones":[{"velocity":{"min":40,"max":100}}]}"#);
    r.run(
        64,
        &[
            key_on(1, 0, 60, 127),
            key_on(2, 0, 61, 1),
            key_on(3, 0, 62, 64),
        ],
    );
    let vels: Vec<u8> = r.take().iter().map(|e| e.bytes[2]).collect();
    assert_eq!(vels, vec![100, 40, 70]);
    let mut r = Rig::json(r#"{"zones":[{"velocity":{"fixed":90}}]}"#);
    r.run(64, &[key_on(1, 0, 60, 3)]);
    assert_eq!(r.take(), vec![on(1, 0, 0, 60, 90)]);
}

#[test]
fn zones_split_by_range_channel_velocity_and_source() {
    let mut r = Rig::json(
        r#"{"zones":[
            {"high":59,"output":1,"out_channel":3},
            {"low":60,"channel":1,"vel_low":50,"output":2},
            {"source":3,"output":4}
        ]}"#,
    );
    let from3 = (40, NoteEvent::note_on(0, 3, 0, 30, 90));
    r.run(
        128,
        &[
            key_on(1, 0, 48, 100), // lower zone
            key_on(2, 0, 72, 100), // upper zone
            key_on(3, 1, 72, 100), // wrong channel: silent
            key_on(4, 0, 73, 20),  // below the velocity window: silent
            from3,                 // source 3: zone 0 and zone 2 (layered)
            key_off(70, 0, 48),
            key_off(71, 0, 72),
        ],
    );
    assert_eq!(
        r.take(),
        vec![
            on(1, 1, 2, 48, 100),
            on(2, 2, 0, 72, 100),
            on(40, 1, 2, 30, 90),
            on(40, 4, 0, 30, 90),
            off(70, 1, 2, 48),
            off(71, 2, 0, 72),
        ]
    );
}

#[test]
fn scale_snaps_down_up_nearest() {
    // C major; C# and D# are outside. Nearest ties go down.
    for (snap, want) in [
        ("down", [60, 60, 62, 62]),
        ("up", [60, 62, 62, 64]),
        ("nearest", [60, 60, 62, 62]),
    ] {
        let mut r = Rig::json(&format!(
            r#"{{"zones":[{{"scale":{{"key":"C","scale":"major","snap":"{snap}"}}}}]}}"#
        ));
        r.run(
            64,
            &[
                key_on(1, 0, 60, 100),
                key_on(2, 0, 61, 100),
                key_on(3, 0, 62, 100),
                key_on(4, 0, 63, 100),
            ],
        );
        let ons: Vec<u8> = note_ons(&r.take()).iter().map(|x| x.1).collect();
        assert_eq!(ons, want, "{snap}");
    }
    // E minor pentatonic (E G A B D), nearest: F -> E, F# -> G (tie down is E? no: F# is 2 from E, 1 from G).
    let mut r = Rig::json(r#"{"zones":[{"scale":{"key":"E","scale":"minor_pentatonic"}}]}"#);
    r.run(
        64,
        &[
            key_on(1, 0, 65, 100),
            key_on(2, 0, 66, 100),
            key_on(3, 0, 68, 100),
        ],
    );
    assert_eq!(note_ons(&r.take()), vec![(1, 64), (2, 67), (3, 67)]);
}

#[test]
fn white_keys_play_d_dorian() {
    let mut r =
        Rig::json(r#"{"zones":[{"scale":{"key":"D","scale":"dorian","white_keys":true}}]}"#);
    r.run(
        64,
        &[
            key_on(1, 0, 60, 100),
            key_on(2, 0, 61, 100),
            key_on(3, 0, 65, 100),
            key_off(4, 0, 65),
        ],
    );
    assert_eq!(
        r.take(),
        vec![on(1, 0, 0, 62, 100), on(3, 0, 0, 67, 100), off(4, 0, 0, 67)]
    );
}

#[test]
fn chord_with_inversion_and_diatonic() {
    let mut r = Rig::json(r#"{"zones":[{"chord":{"shape":"maj7","inversion":1}}]}"#);
    r.run(128, &[key_on(5, 0, 60, 100), key_off(70, 0, 60)]);
    assert_eq!(
        r.take(),
        vec![
            on(5, 0, 0, 64, 100),
            on(5, 0, 0, 67, 100),
            on(5, 0, 0, 71, 100),
            on(5, 0, 0, 72, 100),
            off(70, 0, 0, 64),
            off(70, 0, 0, 67),
            off(70, 0, 0, 71),
            off(70, 0, 0, 72),
        ]
    );
    // Diatonic triads in A minor: the key A gives a minor chord, B a diminished one.
    let mut r = Rig::json(
        r#"{"zones":[{"scale":{"key":"A","scale":"minor"},"chord":{"shape":"maj","diatonic":true}}]}"#,
    );
    r.run(64, &[key_on(1, 0, 57, 100), key_on(2, 0, 59, 100)]);
    let notes: Vec<u8> = r.take().iter().map(|e| e.bytes[1]).collect();
    assert_eq!(notes, vec![57, 60, 64, 59, 62, 65]);
    // Raw intervals.
    let mut r = Rig::json(r#"{"zones":[{"chord":{"shape":[0,7,12,19]}}]}"#);
    r.run(64, &[key_on(1, 0, 48, 100)]);
    let notes: Vec<u8> = r.take().iter().map(|e| e.bytes[1]).collect();
    assert_eq!(notes, vec![48, 55, 60, 67]);
}

fn arp(mode: &str, extra: &str) -> Rig {
    Rig::json(&format!(
        r#"{{"zones":[{{"arp":{{"mode":"{mode}","rate":"1/16","gate":0.5,"quantize_start":true{extra}}}}}]}}"#
    ))
}

fn note_ons(out: &[At]) -> Vec<(u64, u8)> {
    out.iter()
        .filter(|e| e.bytes[0] & 0xf0 == 0x90)
        .map(|e| (e.t, e.bytes[1]))
        .collect()
}

#[test]
fn arp_up_two_octaves_sample_exact() {
    let mut r = arp("up", r#","octaves":2"#);
    let keys = [
        key_on(1000, 0, 60, 100),
        key_on(1001, 0, 64, 90),
        key_on(1002, 0, 67, 80),
        key_off(25000, 0, 60),
        key_off(25000, 0, 64),
        key_off(25000, 0, 67),
    ];
    r.run(40000, &keys);
    assert_eq!(
        r.take(),
        vec![
            on(6000, 0, 0, 60, 100),
            off(9000, 0, 0, 60),
            on(12000, 0, 0, 64, 90),
            off(15000, 0, 0, 64),
            on(18000, 0, 0, 67, 80),
            off(21000, 0, 0, 67),
            on(24000, 0, 0, 72, 100),
            off(27000, 0, 0, 72),
        ]
    );
}

#[test]
fn arp_modes_order() {
    let keys = [
        key_on(10, 0, 67, 100),
        key_on(11, 0, 60, 100),
        key_on(12, 0, 64, 100),
    ];
    let steps = |mode: &str, n: u64| {
        let mut r = arp(mode, "");
        r.run(6000 * n + 1, &keys);
        note_ons(&r.take())
            .into_iter()
            .map(|x| x.1)
            .collect::<Vec<_>>()
    };
    assert_eq!(steps("up", 4), vec![60, 64, 67, 60]);
    assert_eq!(steps("down", 4), vec![67, 64, 60, 67]);
    assert_eq!(steps("up_down", 6), vec![60, 64, 67, 64, 60, 64]);
    assert_eq!(steps("down_up", 6), vec![67, 64, 60, 64, 67, 64]);
    assert_eq!(steps("as_played", 4), vec![67, 60, 64, 67]);
    assert_eq!(steps("chord", 2), vec![60, 64, 67, 60, 64, 67]);
    let a = steps("random", 16);
    assert_eq!(a, steps("random", 16), "random is deterministic");
    assert!(a.iter().all(|n| [60, 64, 67].contains(n)));
    assert!(a.iter().any(|&n| n != a[0]), "random varies: {a:?}");
}

#[test]
fn arp_rates_swing_and_immediate_start() {
    let keys = [key_on(1000, 0, 60, 100)];
    let times = |rate: &str, extra: &str, n: u64| {
        let mut r = Rig::json(&format!(
            r#"{{"zones":[{{"arp":{{"rate":"{rate}","gate":0.25{extra}}}}}]}}"#
        ));
        r.run(n, &keys);
        r.take()
            .iter()
            .map(|e| (e.t, e.bytes[0] & 0xf0))
            .collect::<Vec<_>>()
    };
    // Immediate start at the key, then the grid (next step at least half a step later).
    assert_eq!(
        times("1/16", "", 13000),
        vec![
            (1000, 0x90),
            (2500, 0x80),
            (6000, 0x90),
            (7500, 0x80),
            (12000, 0x90)
        ]
    );
    // Triplet eighth = 8000 samples, dotted eighth = 18000.
    assert_eq!(
        times("1/8T", r#","quantize_start":true"#, 16001),
        vec![(8000, 0x90), (10000, 0x80), (16000, 0x90)]
    );
    assert_eq!(
        times("1/8.", r#","quantize_start":true"#, 36001),
        vec![(18000, 0x90), (22500, 0x80), (36000, 0x90)]
    );
    // Swing 66%: odd steps are 0.32 of a step (1920 samples) late.
    assert_eq!(
        times("1/16", r#","quantize_start":true,"swing":0.66"#, 19921),
        vec![
            (7920, 0x90),
            (9420, 0x80),
            (12000, 0x90),
            (13500, 0x80),
            (19920, 0x90)
        ]
    );
    // 1/1 and 1/32.
    assert_eq!(
        times("1/1", r#","quantize_start":true"#, 96001)[0],
        (96000, 0x90)
    );
    assert_eq!(
        times("1/32", r#","quantize_start":true"#, 3001)[0],
        (3000, 0x90)
    );
}

#[test]
fn arp_follows_the_engine_tempo() {
    let mut r = arp("up", "");
    r.run(12032, &[key_on(100, 0, 60, 100)]);
    r.bpm = 60.0; // from block 12032 on: beat 0.50133…, a 1/16 is 12000 samples
    r.run(40000, &[]);
    let ons = note_ons(&r.take());
    assert_eq!(
        ons.iter().map(|x| x.0).collect::<Vec<_>>(),
        vec![6000, 12000, 23968, 35968]
    );
}

#[test]
fn arp_latch_holds_until_a_new_key() {
    let mut r = arp("up", r#","latch":true"#);
    let keys = [
        key_on(100, 0, 60, 100),
        key_on(101, 0, 64, 100),
        key_off(200, 0, 60),
        key_off(201, 0, 64),
        key_on(20000, 0, 70, 100),
        key_off(20001, 0, 70),
    ];
    r.run(36001, &keys);
    assert_eq!(
        note_ons(&r.take()),
        vec![
            (6000, 60),
            (12000, 64),
            (18000, 60),
            (24000, 70),
            (30000, 70),
            (36000, 70)
        ]
    );
    // All notes off forgets the latch.
    r.all_off();
    r.run(50000, &[]);
    assert_eq!(note_ons(&r.take()), vec![]);
}

#[test]
fn movement_voices_repeat_switch_and_mute() {
    let cfg = r#"{"zones":[{"high":0,"movement":{"ticks_per_beat":4,"patterns":{
        "a":{"length":4,"notes":[{"tick":0,"note":60,"duration":2},{"tick":0,"note":64,"velocity":80},{"tick":2,"note":67}]},
        "b":{"length":2,"notes":[{"tick":0,"note":72,"velocity":70}]}},
        "voices":[{"patterns":["a","b"],"repeat":2,"output":3,"channel":2}]}}]}"#;
    let mut r = Rig::json(cfg);
    r.run(72001, &[]);
    let out = r.take();
    let a = |t: u64| {
        vec![
            on(t, 3, 1, 60, 100),
            on(t, 3, 1, 64, 80),
            off(t + 6000, 3, 1, 64),
            off(t + 12000, 3, 1, 60),
            on(t + 12000, 3, 1, 67, 100),
            off(t + 18000, 3, 1, 67),
        ]
    };
    let mut want = a(0);
    want.extend(a(24000));
    want.extend([
        on(48000, 3, 1, 72, 70),
        off(54000, 3, 1, 72),
        on(60000, 3, 1, 72, 70),
        off(66000, 3, 1, 72),
    ]);
    want.extend([on(72000, 3, 1, 60, 100), on(72000, 3, 1, 64, 80)]);
    assert_eq!(out, want);
    // Muting keeps the position; unmuting resumes in phase.
    let mut r = Rig::json(cfg);
    r.run(30000, &[]);
    let muted = BardConfig::from_json(cfg)
        .unwrap()
        .apply_control(&ControlMessage::MuteVoice {
            zone: 0,
            voice: 0,
            mute: true,
        })
        .unwrap();
    r.apply(PreparedConfig::new(&muted).unwrap());
    r.take();
    r.run(47000, &[]);
    assert_eq!(note_ons(&r.take()), vec![]);
    let unmuted = muted
        .apply_control(&ControlMessage::MuteVoice {
            zone: 0,
            voice: 0,
            mute: false,
        })
        .unwrap();
    r.apply(PreparedConfig::new(&unmuted).unwrap());
    r.run(54001, &[]);
    assert_eq!(note_ons(&r.take()), vec![(48000, 72)]);
}

#[test]
fn movement_while_held_is_transposed_by_the_key_and_drum_voices_are_not() {
    let cfg = r#"{"transpose":{"octaves":1},"zones":[{"movement":{"ticks_per_beat":4,"run":"while_held","root":60,"patterns":{
        "p":{"length":2,"notes":[{"tick":0,"note":60}]},
        "d":{"length":1,"notes":[{"tick":0,"note":36}]}},
        "voices":[{"patterns":["p"]},{"patterns":["d"],"drums":true}]}}]}"#;
    let mut r = Rig::json(cfg);
    r.run(30000, &[key_on(1000, 0, 62, 100), key_off(20000, 0, 62)]);
    assert_eq!(
        r.take(),
        vec![
            on(6000, 0, 0, 74, 100),
            on(6000, 0, 9, 36, 100),
            off(12000, 0, 0, 74),
            off(12000, 0, 9, 36),
            on(12000, 0, 9, 36, 100),
            off(18000, 0, 9, 36),
            on(18000, 0, 0, 74, 100),
            on(18000, 0, 9, 36, 100),
            off(24000, 0, 0, 74),
            off(24000, 0, 9, 36),
        ]
    );
}

#[test]
fn drum_mode_maps_keys_to_gm_drums_on_channel_10() {
    let mut r = Rig::json(
        r#"{"transpose":{"semitones":5},"zones":[{"output":2,"drums":{"map":{"60":38}}}]}"#,
    );
    r.run(
        64,
        &[
            key_on(1, 0, 60, 100),
            key_on(2, 0, 61, 100),
            key_off(3, 0, 60),
        ],
    );
    assert_eq!(
        r.take(),
        vec![on(1, 2, 9, 38, 100), on(2, 2, 9, 49, 100), off(3, 2, 9, 38)]
    );
    let mut r = Rig::json(r#"{"zones":[{"drums":{"fold":false,"map":{"60":38}}}]}"#);
    r.run(64, &[key_on(2, 0, 61, 100)]);
    assert_eq!(r.take(), vec![]);
}

#[test]
fn global_transpose_octaves_and_semitones() {
    let mut r = Rig::json(r#"{"transpose":{"octaves":-1,"semitones":2}}"#);
    r.run(
        64,
        &[
            key_on(1, 0, 60, 100),
            key_on(2, 0, 5, 100),
            key_off(3, 0, 60),
        ],
    );
    // 5 - 10 is below 0: silent.
    assert_eq!(r.take(), vec![on(1, 0, 0, 50, 100), off(3, 0, 0, 50)]);
}

#[test]
fn full_chain_scale_chord_arp_transpose_output() {
    let mut r = Rig::json(
        r#"{"transpose":{"semitones":12},"zones":[{"output":1,"out_channel":5,
            "velocity":{"fixed":77},
            "scale":{"key":"C","scale":"major","snap":"down"},
            "chord":{"shape":"7","diatonic":true},
            "arp":{"mode":"up","rate":"1/16","gate":0.5,"quantize_start":true}}]}"#,
    );
    // D# snaps down to D: Dm7 = D F A C, played up, an octave higher.
    r.run(24001, &[key_on(50, 0, 63, 100), key_off(23000, 0, 63)]);
    assert_eq!(
        r.take(),
        vec![
            on(6000, 1, 4, 74, 77),
            off(9000, 1, 4, 74),
            on(12000, 1, 4, 77, 77),
            off(15000, 1, 4, 77),
            on(18000, 1, 4, 81, 77),
            off(21000, 1, 4, 81),
        ]
    );
}

#[test]
fn note_off_follows_the_note_on_mapping_across_config_changes() {
    let mut r = Rig::json(
        r#"{"zones":[{"output":1,"chord":{"shape":"maj"},"scale":{"key":"C","scale":"major"}}]}"#,
    );
    r.run(64, &[key_on(1, 0, 60, 100)]);
    // Everything changes while the key is held.
    r.apply_json(r#"{"transpose":{"octaves":2},"zones":[{"output":2,"chord":{"shape":"m7"},"scale":{"key":"E","scale":"blues"}}]}"#);
    r.run(128, &[key_off(100, 0, 60)]);
    assert_eq!(
        r.take(),
        vec![
            on(1, 1, 0, 60, 100),
            on(1, 1, 0, 64, 100),
            on(1, 1, 0, 67, 100),
            off(100, 1, 0, 60),
            off(100, 1, 0, 64),
            off(100, 1, 0, 67)
        ]
    );
}

#[test]
fn removing_the_arp_while_it_plays_still_ends_its_note() {
    let mut r = arp("up", "");
    r.run(7000, &[key_on(10, 0, 60, 100)]);
    r.apply(PreparedConfig::default());
    r.run(20000, &[key_off(8000, 0, 60)]);
    assert_eq!(r.take(), vec![on(6000, 0, 0, 60, 100), off(9000, 0, 0, 60)]);
}

#[test]
fn velocity_zero_repeated_note_on_and_shared_notes() {
    let mut r = Rig::json(r#"{"zones":[{"scale":{"key":"C","scale":"major","snap":"down"}}]}"#);
    let zero = (30, NoteEvent::from_bytes(0, 0, &[0x90, 60, 0]).unwrap());
    r.run(
        128,
        &[
            key_on(10, 0, 60, 100),
            key_on(20, 0, 60, 90), // again without note-off: ends the first
            zero,                  // velocity 0 = note-off
            key_on(40, 0, 60, 100),
            key_on(41, 0, 61, 100), // snaps onto 60: re-strike
            key_off(50, 0, 60),     // 61 still holds 60
            key_off(60, 0, 61),
        ],
    );
    let out = r.take();
    assert_eq!(
        out,
        vec![
            on(10, 0, 0, 60, 100),
            off(20, 0, 0, 60),
            on(20, 0, 0, 60, 90),
            off(30, 0, 0, 60),
            on(40, 0, 0, 60, 100),
            off(41, 0, 0, 60),
            on(41, 0, 0, 60, 100),
            off(60, 0, 0, 60),
        ]
    );
    assert_balanced(&out);
}

#[test]
fn all_notes_off_per_sounding_channel() {
    let mut r = Rig::new(PreparedConfig::default());
    r.run(
        64,
        &[
            key_on(1, 0, 60, 100),
            key_on(2, 0, 64, 100),
            key_on(3, 1, 67, 100),
        ],
    );
    r.take();
    r.all_off();
    assert_eq!(
        r.take(),
        vec![
            off(64, 0, 0, 60),
            off(64, 0, 0, 64),
            off(64, 0, 1, 67),
            cc(64, 0, 0, 123, 0),
            cc(64, 0, 1, 123, 0)
        ]
    );
    assert_eq!(r.bard.sounding(), 0);
    // Releasing the keys afterwards sends nothing more.
    r.run(
        128,
        &[key_off(70, 0, 60), key_off(71, 0, 64), key_off(72, 1, 67)],
    );
    assert_eq!(r.take(), vec![]);
}

#[test]
fn a_full_sink_drops_note_ons_and_defers_note_offs() {
    let mut bard = Bard::from_config(
        &BardConfig::from_json(r#"{"zones":[{"chord":{"shape":"maj"}}]}"#).unwrap(),
    )
    .unwrap();
    let ctx = |s| BlockContext::new(s, 48000.0, 120.0, 64);
    let mut two = FixedSink::<2>::new();
    no_alloc("process", || {
        bard.process(&[NoteEvent::note_on(3, 0, 0, 60, 100)], &ctx(0), &mut two)
    });
    assert_eq!(
        two.events(),
        &[
            NoteEvent::note_on(3, 0, 0, 60, 100),
            NoteEvent::note_on(3, 0, 0, 64, 100)
        ]
    );
    assert_eq!(bard.stats().dropped_note_ons, 1);
    let mut one = FixedSink::<1>::new();
    no_alloc("process", || {
        bard.process(&[NoteEvent::note_off(9, 0, 0, 60)], &ctx(64), &mut one)
    });
    assert_eq!(one.events(), &[NoteEvent::note_off(9, 0, 0, 60)]);
    assert_eq!(bard.sounding(), 1);
    one.clear();
    no_alloc("process", || bard.process(&[], &ctx(128), &mut one));
    assert_eq!(one.events(), &[NoteEvent::note_off(0, 0, 0, 64)]);
    assert_eq!(bard.sounding(), 0);
}

/// Runs a busy session on `a` for `blocks` blocks, saving and restoring into
/// a fresh instance at block `swap_at` (if any), and returns the output.
fn session(swap_at: Option<u64>, blocks: u64) -> Vec<At> {
    let cfg = r#"{"zones":[
        {"high":59,"chord":{"shape":"min"},"arp":{"mode":"random","rate":"1/32T","gate":0.8,"octaves":3,"swing":0.6}},
        {"low":60,"high":80,"chord":{"shape":"maj7"}},
        {"low":81,"movement":{"ticks_per_beat":8,"run":"while_held","patterns":{
           "p":{"length":5,"notes":[{"tick":0,"note":60,"duration":7},{"tick":3,"note":63,"duration":2}]}},
           "voices":[{"patterns":["p"],"repeat":3}]}},
        {"high":0,"movement":{"ticks_per_beat":3,"bpm":97.0,"patterns":{"q":{"length":7,"notes":[{"tick":1,"note":50,"duration":4}]}},
           "voices":[{"patterns":["q"]}]}}
    ]}"#;
    let prepared = || PreparedConfig::new(&BardConfig::from_json(cfg).unwrap()).unwrap();
    let mut r = Rig::new(prepared());
    let mut input = Vec::new();
    for i in 0..40u64 {
        let t = i * 1700 + 13;
        let note = [40u8, 45, 62, 70, 85, 90][(i % 6) as usize];
        input.push(key_on(t, 0, note, 60 + i as u8));
        input.push(key_off(t + 2500 + (i % 5) * 3000, 0, note));
    }
    for b in 0..blocks {
        if Some(b) == swap_at {
            r.swap_to(prepared());
        }
        r.block(&input);
    }
    r.all_off();
    r.take()
}

#[test]
fn transient_state_handoff_continues_exactly() {
    let reference = session(None, 1500);
    assert!(note_ons(&reference).len() > 80, "a busy session");
    assert_balanced(&reference);
    for k in [1, 17, 400, 777, 1201] {
        assert_eq!(session(Some(k), 1500), reference, "swap at block {k}");
    }
}

#[test]
fn transient_state_refuses_foreign_bytes() {
    let mut bard = Bard::new(PreparedConfig::default());
    let mut buf = Box::new([0u8; TRANSIENT_STATE_BYTES]);
    assert_eq!(bard.restore_transient(&buf), Err(TransientError::BadMagic));
    bard.save_transient(&mut buf);
    buf[4] = 99;
    assert_eq!(
        bard.restore_transient(&buf),
        Err(TransientError::Version {
            found: 99,
            expected: TRANSIENT_VERSION
        })
    );
}

#[test]
#[should_panic(expected = "allocated")]
fn the_allocation_guard_catches_an_allocation() {
    no_alloc("a Vec", || {
        std::hint::black_box(Vec::<u8>::with_capacity(8))
    });
}

#[test]
fn movement_own_tempo_and_a_voice_that_stops() {
    // 60 BPM and 1 tick per beat: a tick is 48000 samples whatever the engine tempo.
    let mut r = Rig::json(
        r#"{"zones":[{"high":0,"movement":{"ticks_per_beat":1,"bpm":60.0,
            "patterns":{"a":{"length":1,"notes":[{"tick":0,"note":50}]}},
            "voices":[{"patterns":["a"],"repeat":2,"cycle":false}]}}]}"#,
    );
    r.bpm = 133.0;
    r.run(200_000, &[]);
    assert_eq!(
        r.take(),
        vec![
            on(0, 0, 0, 50, 100),
            off(48000, 0, 0, 50),
            on(48000, 0, 0, 50, 100),
            off(96000, 0, 0, 50)
        ]
    );
}

#[test]
fn switching_patterns_keeps_the_position() {
    let cfg = BardConfig::from_json(
        r#"{"zones":[{"high":0,"movement":{"ticks_per_beat":4,"patterns":{
            "a":{"length":4,"notes":[{"tick":0,"note":60}]},
            "b":{"length":4,"notes":[{"tick":1,"note":72},{"tick":3,"note":74}]}},
            "voices":[{"patterns":["a"]}]}}]}"#,
    )
    .unwrap();
    let mut r = Rig::new(PreparedConfig::new(&cfg).unwrap());
    r.run(13000, &[]);
    let b = cfg
        .apply_control(&ControlMessage::SwitchPatterns {
            zone: 0,
            voice: 0,
            patterns: vec!["b".into()],
        })
        .unwrap();
    r.apply(PreparedConfig::new(&b).unwrap());
    r.run(31000, &[]);
    assert_eq!(note_ons(&r.take()), vec![(0, 60), (18000, 74), (30000, 72)]);
}

#[test]
fn arpeggiated_drums() {
    let mut r = Rig::json(
        r#"{"zones":[{"drums":{"map":{"60":36,"62":38}},"arp":{"mode":"up","rate":"1/8","gate":0.5,"quantize_start":true}}]}"#,
    );
    r.run(36001, &[key_on(5, 0, 62, 100), key_on(6, 0, 60, 90)]);
    assert_eq!(
        r.take(),
        vec![
            on(12000, 0, 9, 36, 90),
            off(18000, 0, 9, 36),
            on(24000, 0, 9, 38, 100),
            off(30000, 0, 9, 38),
            on(36000, 0, 9, 36, 90)
        ]
    );
}

#[test]
fn out_of_order_and_out_of_range_frames_are_clamped() {
    let mut bard = Bard::new(PreparedConfig::default());
    let mut sink = FixedSink::<8>::new();
    let ctx = BlockContext::new(0, 48000.0, 120.0, 64);
    let input = [
        NoteEvent::note_on(30, 0, 0, 60, 100),
        NoteEvent::note_on(10, 0, 0, 61, 100),
        NoteEvent::note_on(99, 0, 0, 62, 100),
    ];
    no_alloc("process", || bard.process(&input, &ctx, &mut sink));
    let frames: Vec<u32> = sink.events().iter().map(|e| e.frame).collect();
    assert_eq!(frames, vec![30, 30, 63]);
}

#[test]
fn a_jump_of_the_engine_clock_keeps_notes_ending_and_the_grid() {
    let mut r = arp("up", "");
    r.run(7040, &[key_on(10, 0, 60, 100), key_on(11, 0, 64, 100)]);
    // Relocate the transport back to 0 while the note at 6000 (ends at 9000) sounds.
    r.pos = 0;
    r.run(12001, &[]);
    assert_eq!(
        r.take(),
        vec![
            on(6000, 0, 0, 60, 100),
            // The grid is the absolute one again: a step on sample 0 …
            on(0, 0, 0, 64, 100),
            // … and the 1960 samples the first note had left, it still has.
            off(1960, 0, 0, 60),
            off(3000, 0, 0, 64),
            on(6000, 0, 0, 60, 100),
            off(9000, 0, 0, 60),
            on(12000, 0, 0, 64, 100),
        ]
    );
}

#[test]
fn the_pipeline_and_its_config_can_move_between_threads() {
    fn send<T: Send + 'static>() {}
    send::<Bard>();
    send::<PreparedConfig>();
    send::<BardConfig>();
}

#[test]
fn pedals_and_controllers_follow_the_zones_of_their_channel() {
    // A split: low keys to output 1 on channel 3, high keys to output 2 on
    // channel 5; a third zone on channel 2 opts out of controllers.
    let mut r = Rig::json(
        r#"{"zones": [
            {"channel": 1, "high": 59, "output": 1, "out_channel": 3},
            {"channel": 1, "low": 60, "output": 2, "out_channel": 5},
            {"channel": 2, "output": 3, "controllers": false}]}"#,
    );
    let pedal = |t, ch, v| (t, NoteEvent::control_change(0, 0, ch, 64, v));
    let bend = (40, NoteEvent::from_bytes(0, 0, &[0xE0, 0, 80]).unwrap());
    r.run(
        128,
        &[
            pedal(10, 0, 127),
            bend,
            pedal(50, 1, 127),  // channel 2: its only zone opts out
            pedal(60, 15, 127), // channel 16: no zone, goes to thru_output
        ],
    );
    assert_eq!(
        r.take(),
        vec![
            cc(10, 1, 2, 64, 127),
            cc(10, 2, 4, 64, 127),
            At {
                t: 40,
                port: 1,
                bytes: [0xE2, 0, 80]
            },
            At {
                t: 40,
                port: 2,
                bytes: [0xE4, 0, 80]
            },
            cc(60, 0, 15, 64, 127),
        ]
    );
}

#[test]
fn a_held_pedal_is_lifted_where_a_zone_change_takes_its_destination_away() {
    let split = r#"{"zones": [
        {"high": 59, "output": 1, "out_channel": 3},
        {"low": 60, "output": 2, "out_channel": 5}]}"#;
    let mut r = Rig::json(split);
    r.run(
        64,
        &[
            key_on(5, 0, 48, 100),
            (6, NoteEvent::control_change(0, 0, 0, 64, 127)),
        ],
    );
    assert_eq!(
        r.take(),
        vec![
            on(5, 1, 2, 48, 100),
            cc(6, 1, 2, 64, 127),
            cc(6, 2, 4, 64, 127)
        ]
    );
    // The upper zone moves to output 3: output 2 gets its pedal lifted, and
    // output 3 gets it pressed, at the start of the next block.
    r.apply_json(
        r#"{"zones": [
        {"high": 59, "output": 1, "out_channel": 3},
        {"low": 60, "output": 3, "out_channel": 5}]}"#,
    );
    r.run(128, &[]);
    assert_eq!(r.take(), vec![cc(64, 2, 4, 64, 0), cc(64, 3, 4, 64, 127)]);
    // The zone is removed: its pedal is lifted there too.
    r.apply_json(r#"{"zones": [{"high": 59, "output": 1, "out_channel": 3}]}"#);
    r.run(192, &[]);
    assert_eq!(r.take(), vec![cc(128, 3, 4, 64, 0)]);
    // Releasing the pedal reaches the zone that is left; all notes off
    // lifts nothing more.
    r.run(256, &[(200, NoteEvent::control_change(0, 0, 0, 64, 0))]);
    assert_eq!(r.take(), vec![cc(200, 1, 2, 64, 0)]);
    r.run(320, &[(260, NoteEvent::control_change(0, 0, 0, 64, 127))]);
    r.all_off();
    let out = r.take();
    assert!(out.contains(&cc(320, 1, 2, 64, 0)), "{out:?}");
    assert!(out.contains(&off(320, 1, 2, 48)), "{out:?}");
}
