//! What the enchanter needs from the bard: per-zone transpose, zones that
//! only play their movement (`notes = false`), and `send` messages (bank
//! select, program change) on a numbered output. 48 kHz, 120 BPM, blocks of
//! 64 frames; every real-time call runs under the allocation guard.

mod common;

use bard_pipeline::*;
use common::*;

#[global_allocator]
static A: Counting = Counting;

#[test]
fn zone_transpose_adds_to_the_global_one_and_skips_drums() {
    let mut r = Rig::json(
        r#"{"transpose":{"octaves":-1},"zones":[
            {"high":59,"transpose":{"semitones":3}},
            {"low":60,"high":79,"output":1},
            {"low":80,"output":2,"transpose":{"octaves":2},"drums":{"map":{"90":38}}}]}"#,
    );
    r.run(
        64,
        &[
            key_on(1, 0, 50, 100),
            key_on(2, 0, 60, 100),
            key_on(3, 0, 90, 100),
            key_off(4, 0, 50),
            key_off(5, 0, 60),
            key_off(6, 0, 90),
        ],
    );
    assert_eq!(
        r.take(),
        vec![
            on(1, 0, 0, 41, 100),
            on(2, 1, 0, 48, 100),
            on(3, 2, 9, 38, 100),
            off(4, 0, 0, 41),
            off(5, 1, 0, 48),
            off(6, 2, 9, 38),
        ]
    );
}

#[test]
fn zone_transpose_out_of_range_is_silent_and_validated() {
    let mut r = Rig::json(r#"{"zones":[{"transpose":{"octaves":10}}]}"#);
    r.run(64, &[key_on(1, 0, 60, 100), key_on(2, 0, 7, 100)]);
    // 60 + 120 is above 127: silent; 7 + 120 = 127 plays.
    assert_eq!(r.take(), vec![on(2, 0, 0, 127, 100)]);
    let e = BardConfig::from_json(r#"{"zones":[{},{"transpose":{"octaves":11}}]}"#).unwrap_err();
    assert_eq!(e.path, "zones[1].transpose.octaves");
    assert_eq!(
        e.to_string(),
        "bard config at zones[1].transpose.octaves: 11 is outside -10..=10"
    );
    let e = BardConfig::from_json(r#"{"zones":[{"transpose":{"semitones":-128}}]}"#).unwrap_err();
    assert!(
        e.to_string().contains("zones[0].transpose.semitones"),
        "{e}"
    );
}

#[test]
fn zone_transpose_change_while_held_ends_the_note_that_started() {
    let mut r = Rig::json(r#"{"zones":[{"output":1,"transpose":{"semitones":2}}]}"#);
    r.run(64, &[key_on(1, 0, 60, 100)]);
    r.apply_json(r#"{"zones":[{"output":1,"transpose":{"octaves":1,"semitones":-5}}]}"#);
    r.run(
        128,
        &[
            key_off(70, 0, 60),
            key_on(80, 0, 60, 90),
            key_off(90, 0, 60),
        ],
    );
    let out = r.take();
    assert_eq!(
        out,
        vec![
            on(1, 1, 0, 62, 100),
            off(70, 1, 0, 62),
            on(80, 1, 0, 67, 90),
            off(90, 1, 0, 67),
        ]
    );
    assert_balanced(&out);
}

#[test]
fn zone_transpose_applies_to_arpeggios_and_movements_and_stays_balanced() {
    // Arp: each step's note is computed with the transpose in force and
    // carries its own note-off.
    let mut r = Rig::json(
        r#"{"zones":[{"transpose":{"semitones":1},"arp":{"rate":"1/16","quantize_start":true}}]}"#,
    );
    r.run(7000, &[key_on(10, 0, 60, 100)]);
    r.apply_json(
        r#"{"zones":[{"transpose":{"semitones":-1},"arp":{"rate":"1/16","quantize_start":true}}]}"#,
    );
    r.run(13000, &[key_off(12500, 0, 60)]);
    r.all_off();
    let out = r.take();
    assert_eq!(note_ons(&out), vec![(6000, 61), (12000, 59)], "{out:?}");
    assert_balanced(&out);

    // A while_held movement: zone transpose on top of the key's transpose;
    // drum voices untouched.
    let cfg = r#"{"zones":[{"transpose":{"semitones":-2},"movement":{"ticks_per_beat":4,"run":"while_held","root":60,"patterns":{
        "p":{"length":2,"notes":[{"tick":0,"note":60}]},
        "d":{"length":2,"notes":[{"tick":0,"note":36}]}},
        "voices":[{"patterns":["p"]},{"patterns":["d"],"drums":true}]}}]}"#;
    let mut r = Rig::json(cfg);
    r.run(8000, &[key_on(1000, 0, 62, 100)]);
    r.apply_json(&cfg.replace("-2", "5"));
    r.run(30000, &[key_off(20000, 0, 62)]);
    r.all_off();
    let out = r.take();
    assert_eq!(
        note_ons(&out),
        vec![(6000, 60), (6000, 36), (18000, 67), (18000, 36)],
        "{out:?}"
    );
    assert_balanced(&out);
}

fn note_ons(out: &[At]) -> Vec<(u64, u8)> {
    out.iter()
        .filter(|e| e.bytes[0] & 0xf0 == 0x90)
        .map(|e| (e.t, e.bytes[1]))
        .collect()
}

#[test]
fn a_zone_without_notes_plays_only_its_movement() {
    let cfg = r#"{"zones":[
        {"output":1},
        {"notes":false,"output":2,"movement":{"ticks_per_beat":1,"patterns":{
            "click":{"length":2,"notes":[{"tick":0,"note":76,"velocity":110}]}},
            "voices":[{"patterns":["click"],"channel":10}]}}]}"#;
    let mut r = Rig::json(cfg);
    let pedal = (300, NoteEvent::control_change(0, 0, 0, 64, 127));
    r.run(
        48001,
        &[key_on(100, 0, 60, 100), pedal, key_off(200, 0, 60)],
    );
    let out = r.take();
    assert_eq!(
        out,
        vec![
            on(0, 2, 9, 76, 110),
            on(100, 1, 0, 60, 100),
            off(200, 1, 0, 60),
            cc(300, 1, 0, 64, 127),
            off(24000, 2, 9, 76),
            on(48000, 2, 9, 76, 110),
        ]
    );
    // A notes = false zone alone: played notes and pedals go nowhere (the
    // pedal is not "taken" by the zone, so it goes to the thru output).
    let mut r = Rig::json(r#"{"zones":[{"notes":false,"output":3}]}"#);
    r.run(
        64,
        &[
            key_on(1, 0, 60, 100),
            (2, NoteEvent::control_change(0, 0, 0, 64, 0)),
        ],
    );
    assert_eq!(r.take(), vec![cc(2, 0, 0, 64, 0)]);
}

#[test]
fn notes_defaults_to_true_and_a_while_held_movement_needs_notes() {
    let cfg = BardConfig::from_json(r#"{"zones":[{}]}"#).unwrap();
    assert!(cfg.zones[0].notes);
    assert!(cfg.to_json().contains("\"notes\": true"));
    let e = BardConfig::from_json(r#"{"zones":[{"notes":false,"movement":{"run":"while_held"}}]}"#)
        .unwrap_err();
    assert_eq!(e.path, "zones[0].movement.run");
    assert!(e.to_string().contains("notes = false"), "{e}");
}

#[test]
fn out_midi_accepts_channel_messages_and_explains_refusals() {
    let pc = OutMidi::new(2, &[0xc3, 4]).unwrap();
    assert_eq!((pc.output(), pc.bytes()), (2, &[0xc3u8, 4][..]));
    assert_eq!(
        OutMidi::new(0, &[0xb0, 0, 1]).unwrap().bytes(),
        &[0xb0, 0, 1]
    );
    assert!(OutMidi::new(0, &[0xe0, 0, 64]).is_ok());
    assert!(OutMidi::new(0, &[0xd0, 5]).is_ok());
    assert!(OutMidi::new(0, &[0xa0, 60, 5]).is_ok());
    let msg = |m: &[u8]| OutMidi::new(1, m).unwrap_err().to_string();
    assert!(msg(&[]).contains("is empty"), "{}", msg(&[]));
    assert!(
        msg(&[0xc0]).contains("program change, which takes 1 data byte, got 0"),
        "{}",
        msg(&[0xc0])
    );
    assert!(msg(&[0xb0, 0]).contains("control change, which takes 2 data bytes, got 1"));
    assert!(msg(&[0xc0, 1, 2]).contains("takes 1 data byte, got 2"));
    assert!(msg(&[0x90, 60, 100]).contains("note message"));
    assert!(msg(&[0x80, 60, 0]).contains("note message"));
    assert!(msg(&[0xf8]).contains("not a channel status byte"));
    assert!(msg(&[0x40, 1]).contains("not a channel status byte"));
    assert!(msg(&[0xb0, 0, 200]).contains("data byte 2 is 200; data bytes are 0..=127"));
    assert!(msg(&[0xc0]).starts_with("bard config at midi: "));
}

#[test]
fn send_control_message_parses_and_changes_no_config() {
    let m = ControlMessage::from_json(br#"{"cmd":"send","output":3,"midi":[176,0,1]}"#).unwrap();
    assert_eq!(
        m,
        ControlMessage::Send {
            output: 3,
            midi: vec![176, 0, 1]
        }
    );
    let cfg = BardConfig::default();
    assert_eq!(cfg.apply_control(&m).unwrap(), cfg);
    let bad = ControlMessage::Send {
        output: 3,
        midi: vec![0x90, 60, 1],
    };
    assert!(cfg.apply_control(&bad).is_err());
}

#[test]
fn sends_go_out_at_frame_0_of_the_next_block_in_order_before_notes() {
    let mut bard = Bard::new(PreparedConfig::default());
    let msgs = [
        OutMidi::new(2, &[0xb4, 0, 1]).unwrap(),
        OutMidi::new(2, &[0xb4, 32, 3]).unwrap(),
        OutMidi::new(2, &[0xc4, 9]).unwrap(),
    ];
    for m in msgs {
        assert!(no_alloc("send", || bard.send(m)));
    }
    assert_eq!(bard.send_room(), limits::MAX_SENDS - 3);
    let mut sink = FixedSink::<16>::new();
    let input = [NoteEvent::note_on(0, 0, 4, 60, 100)];
    let ctx = BlockContext::new(0, RATE, 120.0, BLOCK);
    no_alloc("process", || bard.process(&input, &ctx, &mut sink));
    let got: Vec<(u32, u8, Vec<u8>)> = sink
        .events()
        .iter()
        .map(|e| (e.frame, e.port, e.as_bytes().to_vec()))
        .collect();
    assert_eq!(
        got,
        vec![
            (0, 2, vec![0xb4, 0, 1]),
            (0, 2, vec![0xb4, 32, 3]),
            (0, 2, vec![0xc4, 9]),
            (0, 0, vec![0x94, 60, 100]),
        ]
    );
    assert_eq!(bard.send_room(), limits::MAX_SENDS);
    // Sent once only.
    sink.clear();
    let ctx = BlockContext::new(64, RATE, 120.0, BLOCK);
    bard.process(&[], &ctx, &mut sink);
    assert!(sink.events().is_empty());
}

#[test]
fn sends_wait_when_the_sink_is_full_and_the_queue_is_bounded() {
    let mut bard = Bard::new(PreparedConfig::default());
    for i in 0..limits::MAX_SENDS {
        assert!(bard.send(OutMidi::new(1, &[0xc0, i as u8]).unwrap()));
    }
    assert!(!bard.send(OutMidi::new(1, &[0xc0, 100]).unwrap()));
    assert_eq!(bard.send_room(), 0);
    let mut got = Vec::new();
    let mut pos = 0;
    while got.len() < limits::MAX_SENDS {
        let mut sink = FixedSink::<5>::new();
        let ctx = BlockContext::new(pos, RATE, 120.0, BLOCK);
        no_alloc("process", || bard.process(&[], &ctx, &mut sink));
        assert!(sink.events().len() <= 5);
        got.extend(sink.events().iter().map(|e| e.bytes[1]));
        pos += BLOCK as u64;
    }
    assert_eq!(got, (0..limits::MAX_SENDS as u8).collect::<Vec<_>>());
}

#[test]
fn pending_note_offs_go_before_sends() {
    let mut bard = Bard::new(PreparedConfig::default());
    let mut sink = FixedSink::<1>::new();
    let ctx = BlockContext::new(0, RATE, 120.0, BLOCK);
    let input = [
        NoteEvent::note_on(0, 0, 0, 60, 100),
        NoteEvent::note_off(1, 0, 0, 60),
    ];
    bard.process(&input, &ctx, &mut sink);
    assert_eq!(sink.events().len(), 1);
    bard.send(OutMidi::new(0, &[0xc0, 1]).unwrap());
    let mut sink = FixedSink::<4>::new();
    let ctx = BlockContext::new(64, RATE, 120.0, BLOCK);
    bard.process(&[], &ctx, &mut sink);
    let got: Vec<Vec<u8>> = sink
        .events()
        .iter()
        .map(|e| e.as_bytes().to_vec())
        .collect();
    assert_eq!(got, vec![vec![0x80, 60, 0], vec![0xc0, 1]]);
}
