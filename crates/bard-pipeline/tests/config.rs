//! Configuration: JSON round trip, defaults, typed errors with the path of the
//! offending field, and the control messages.

use bard_pipeline::*;

const FULL: &str = r#"{
  "transpose": { "octaves": -1, "semitones": 3 },
  "pass_other": false,
  "thru_output": 2,
  "seed": 42,
  "zones": [
    { "name": "bass", "source": 1, "channel": 2, "low": 0, "high": 59, "vel_low": 10, "vel_high": 120,
      "velocity": { "curve": 0.5, "fixed": null, "min": 20, "max": 110 },
      "scale": { "key": "Bb", "scale": { "custom": [0, 3, 7] }, "snap": "up", "white_keys": false },
      "chord": { "shape": [0, 7, 12], "inversion": 1, "diatonic": false },
      "output": 3, "out_channel": 4 },
    { "name": "lead", "low": 60,
      "scale": { "key": 2, "scale": "melodic_minor", "snap": "down", "white_keys": true },
      "chord": { "shape": "sus4", "inversion": 2, "diatonic": true },
      "arp": { "mode": "down_up", "rate": "1/4.", "gate": 0.9, "octaves": 4, "latch": true, "swing": 0.55, "quantize_start": true } },
    { "name": "beat", "drums": { "map": { "36": 36, "37": 38 }, "fold": false },
      "movement": { "ticks_per_beat": 96, "bpm": 90.5, "run": "always", "root": 48,
        "patterns": { "kick": { "length": 384, "notes": [ { "tick": 0, "note": 36, "velocity": 127, "duration": 10 } ] },
                      "fill": { "length": 96, "notes": [] } },
        "voices": [ { "patterns": ["kick", "fill"], "repeat": 3, "cycle": false, "mute": true, "output": 1, "channel": 10, "drums": true } ] } }
  ]
}"#;

#[test]
fn full_config_round_trips_and_serializes_stably() {
    let cfg = BardConfig::from_json(FULL).unwrap();
    let json = cfg.to_json();
    let again = BardConfig::from_json(&json).unwrap();
    assert_eq!(again, cfg);
    assert_eq!(again.to_json(), json, "stable serialization");
    assert_eq!(cfg.zones[0].scale.as_ref().unwrap().key, Key(10));
    assert_eq!(
        cfg.zones[1].arp.unwrap().rate,
        Rate {
            denominator: 4,
            feel: Feel::Dotted
        }
    );
    assert!(json.contains("\"1/4.\""), "rates serialize as written");
    assert!(json.contains("\"Bb\"") || json.contains("\"A#\""));
    PreparedConfig::new(&cfg).unwrap();
}

#[test]
fn defaults_are_transparent() {
    let d = BardConfig::default();
    assert_eq!(d.zones.len(), 1);
    let z = &d.zones[0];
    assert!(
        z.scale.is_none()
            && z.chord.is_none()
            && z.arp.is_none()
            && z.movement.is_none()
            && z.drums.is_none()
    );
    assert_eq!((z.low, z.high, z.vel_low, z.vel_high), (0, 127, 1, 127));
    assert_eq!(d.transpose.total(), 0);
    assert_eq!(BardConfig::from_json(&d.to_json()).unwrap(), d);
}

fn error(json: &str) -> ConfigError {
    BardConfig::from_json(json).unwrap_err()
}

#[test]
fn errors_name_the_field() {
    let e = error(r#"{"zones":[{},{"arp":{"octaves":7}}]}"#);
    assert_eq!(e.path, "zones[1].arp.octaves");
    assert_eq!(
        e.problem,
        Problem::OutOfRange {
            value: 7.0,
            min: 1.0,
            max: 4.0
        }
    );
    assert_eq!(
        e.to_string(),
        "bard config at zones[1].arp.octaves: 7 is outside 1..=4"
    );

    let e = error(r#"{"zones":[{"arp":{"rate":"1/7"}}]}"#);
    assert_eq!(e.path, "zones[0].arp.rate");
    assert!(
        matches!(e.problem, Problem::Json(ref m) if m.contains("is not a rate")),
        "{e}"
    );

    let e = error(r#"{"zones":[{"scal":{}}]}"#);
    assert!(e.path.starts_with("zones[0]"), "{e}");
    assert!(
        matches!(e.problem, Problem::Json(ref m) if m.contains("unknown field `scal`")),
        "{e}"
    );

    let e = error(r#"{"zones":[{"scale":{"key":"H"}}]}"#);
    assert_eq!(e.path, "zones[0].scale.key");

    let e = error(r#"{"zones":[{"channel":17}]}"#);
    assert_eq!(e.path, "zones[0].channel");

    let e = error(r#"{"zones":[{"low":70,"high":60}]}"#);
    assert_eq!(e.path, "zones[0].high");

    let e = error(r#"{"zones":[{"chord":{"shape":"maj","inversion":3}}]}"#);
    assert_eq!(e.path, "zones[0].chord.inversion");

    let e = error(r#"{"zones":[{"chord":{"shape":"m7","diatonic":true}}]}"#);
    assert_eq!(e.path, "zones[0].chord.diatonic");

    let e = error(r#"{"zones":[{"chord":{"shape":[0,1,2,3,4,5,6,7,8]}}]}"#);
    assert_eq!(
        e.problem,
        Problem::TooMany {
            what: "chord notes",
            count: 9,
            max: 8
        }
    );

    let e = error(r#"{"zones":[{"scale":{"scale":{"custom":[0,12]}}}]}"#);
    assert_eq!(e.path, "zones[0].scale.scale.custom[1]");

    let e = error(
        r#"{"zones":[{"movement":{"patterns":{"a":{"length":4}},"voices":[{"patterns":["a","b"]}]}}]}"#,
    );
    assert_eq!(e.path, "zones[0].movement.voices[0].patterns[1]");
    assert_eq!(e.problem, Problem::UnknownPattern("b".into()));

    let e = error(
        r#"{"zones":[{"movement":{"patterns":{"a":{"length":4,"notes":[{"tick":4,"note":1}]}}}}]}"#,
    );
    assert_eq!(e.path, "zones[0].movement.patterns.a.notes[0].tick");

    let e = error(r#"{"zones":[{"arp":{},"movement":{"run":"while_held"}}]}"#);
    assert_eq!(e.path, "zones[0].movement.run");

    let zones = vec!["{}"; 17].join(",");
    let e = error(&format!(r#"{{"zones":[{zones}]}}"#));
    assert_eq!(e.path, "zones");

    let e = error(r#"{"transpose":{"octaves":11}}"#);
    assert_eq!(e.path, "transpose.octaves");
}

#[test]
fn control_messages() {
    let cfg = BardConfig::default();
    let msg = ControlMessage::from_json(
        br#"{"cmd":"set","path":"/zones/0/scale","value":{"key":"E","scale":"phrygian"}}"#,
    )
    .unwrap();
    let next = cfg.apply_control(&msg).unwrap();
    let s = next.zones[0].scale.as_ref().unwrap();
    assert_eq!(
        (s.key, &s.scale, s.snap),
        (Key(4), &ScaleKind::Phrygian, Snap::Nearest)
    );

    let msg =
        ControlMessage::from_json(br#"{"cmd":"set","path":"/zones/0/scale/key","value":"G"}"#)
            .unwrap();
    assert_eq!(
        next.apply_control(&msg).unwrap().zones[0]
            .scale
            .as_ref()
            .unwrap()
            .key,
        Key(7)
    );

    let msg =
        ControlMessage::from_json(br#"{"cmd":"transpose","octaves":1,"semitones":-2}"#).unwrap();
    assert_eq!(cfg.apply_control(&msg).unwrap().transpose.total(), 10);

    // Invalid values are rejected with the path, and the old config stays.
    let msg =
        ControlMessage::from_json(br#"{"cmd":"set","path":"/zones/0/arp","value":{"octaves":9}}"#)
            .unwrap();
    assert_eq!(
        cfg.apply_control(&msg).unwrap_err().path,
        "zones[0].arp.octaves"
    );
    let msg =
        ControlMessage::from_json(br#"{"cmd":"set","path":"/zones/3/arp","value":{}}"#).unwrap();
    assert_eq!(
        cfg.apply_control(&msg).unwrap_err().problem,
        Problem::NoSuchField
    );

    let with_movement = BardConfig::from_json(FULL).unwrap();
    let msg = ControlMessage::from_json(br#"{"cmd":"mute_voice","zone":2,"voice":0,"mute":false}"#)
        .unwrap();
    assert!(
        !with_movement.apply_control(&msg).unwrap().zones[2]
            .movement
            .as_ref()
            .unwrap()
            .voices[0]
            .mute
    );
    let msg = ControlMessage::from_json(
        br#"{"cmd":"switch_patterns","zone":2,"voice":0,"patterns":["fill"]}"#,
    )
    .unwrap();
    assert_eq!(
        with_movement.apply_control(&msg).unwrap().zones[2]
            .movement
            .as_ref()
            .unwrap()
            .voices[0]
            .patterns,
        vec!["fill"]
    );
    let msg = ControlMessage::from_json(
        br#"{"cmd":"switch_patterns","zone":2,"voice":0,"patterns":["nope"]}"#,
    )
    .unwrap();
    assert_eq!(
        with_movement.apply_control(&msg).unwrap_err().problem,
        Problem::UnknownPattern("nope".into())
    );
    let msg = ControlMessage::from_json(br#"{"cmd":"mute_voice","zone":0,"voice":0,"mute":true}"#)
        .unwrap();
    assert_eq!(
        with_movement.apply_control(&msg).unwrap_err().path,
        "zones[0].movement.voices[0]"
    );

    let msg = ControlMessage::Replace {
        config: Box::new(with_movement.clone()),
    };
    let json = serde_json::to_vec(&msg).unwrap();
    assert_eq!(ControlMessage::from_json(&json).unwrap(), msg);
    assert_eq!(cfg.apply_control(&msg).unwrap(), with_movement);

    let e = ControlMessage::from_json(br#"{"cmd":"explode"}"#).unwrap_err();
    assert!(matches!(e.problem, Problem::Json(_)));
}

#[test]
fn rates_parse_and_print() {
    for (s, beats) in [
        ("1/1", 4.0),
        ("1/2", 2.0),
        ("1/4", 1.0),
        ("1/8", 0.5),
        ("1/16", 0.25),
        ("1/32", 0.125),
        ("1/8T", 1.0 / 3.0),
        ("1/4.", 1.5),
        ("1/16d", 0.375),
    ] {
        let r = Rate::parse(s).unwrap();
        assert!((r.beats() - beats).abs() < 1e-12, "{s}");
    }
    assert!(Rate::parse("1/64").is_none());
    assert!(Rate::parse("2/4").is_none());
    assert_eq!(Rate::parse("1/16d").unwrap().to_string(), "1/16.");
}
