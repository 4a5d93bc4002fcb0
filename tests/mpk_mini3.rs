//! The AKAI MPK mini mk3 through a real JACK server: a JACK client of the
//! test's own plays the exact bytes the MPK sends (with the program the
//! imp pushes) and records what reaches it. At connect, and again after
//! an unplug and a reload of the imp, the device receives the SysEx
//! program byte for byte; the keys, joystick and pads play through the
//! bard (drums on channel 10, or the scale's chords); a knob turns an
//! enchanter setting; presets survive a reload of the imp and a restart.

mod common;

/// The imp's own encoder, compiled into the test: the bytes the device
/// must receive are built from the same config here.
#[allow(dead_code)]
#[path = "../imps/mpk_mini3/src/program.rs"]
mod program;

use common::*;
use serde_json::Value;
use std::time::{Duration, Instant};

const LIBS: &[&str] = &["bard", "enchanter", "monitor", "mpk_mini3"];

/// The imp's default knob keys (README, `imps/mpk_mini3`).
const KNOBS: [&str; 8] = [
    "octave", "semitone", "program", "key", "scale", "chord", "arp_rate", "velocity",
];

fn realm(pads: &str) -> String {
    format!(
        r#"midi_backend = "jack"

[imps.bard]
library = "bard"
config = {{}}

[imps.enchanter]
library = "enchanter"
config = {{ bard = "bard" }}

[imps.mpk]
library = "mpk_mini3"
config = {{ connect = "mpktest:midi", enchanter = "enchanter", pads = "{pads}" }}

[imps.watch]
library = "monitor"
config = {{ label = "watch", log = true }}

[[wires]]
from = "mpk"
to = "bard"

[[wires]]
from = "bard"
to = "watch"
"#
    )
}

fn plug(jack: &JackServer) -> JackDevice {
    JackDevice::plug(jack, "mpktest", &["midi out"], &["midi in"])
}

fn start(jack: &JackServer, pads: &str) -> Daemon {
    let dir = Daemon::prepare(LIBS);
    std::fs::write(dir.path().join("realm.toml"), realm_text(&realm(pads))).unwrap();
    Daemon::start_in(dir, &[jack.env()])
}

fn wait_thawed(d: &Daemon) {
    d.wait_for("the MPK thawed", |s| imp_of(s, "mpk")["state"] == "thawed");
}

/// Waits for a SysEx at the device after its first `from` messages;
/// returns its bytes.
fn wait_sysex(dev: &JackDevice, from: usize) -> Vec<u8> {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let got = dev.received("midi in");
        if let Some((_, b)) = got.iter().skip(from).find(|(_, b)| b[0] == 0xF0) {
            return b.clone();
        }
        assert!(Instant::now() < deadline, "no SysEx; got {got:02x?}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Checks the program the device got: the encoder's bytes for the
/// default config, and a few bytes read independently of it.
fn check_program(bytes: &[u8]) {
    let expected = program::encode("impresario", &KNOBS);
    assert_eq!(bytes, &expected[..], "the program, byte for byte");
    assert_eq!(bytes.len(), 254);
    // Akai, to the device, MPK mini mk3, write program, 246 bytes, RAM.
    assert_eq!(bytes[..8], [0xF0, 0x47, 0x7F, 0x49, 0x64, 0x01, 0x76, 0x00]);
    assert_eq!(&bytes[8..24], b"impresario\0\0\0\0\0\0", "the program name");
    assert_eq!(bytes[24], 9, "pads on channel 10");
    assert_eq!(bytes[26], 0, "keys and knobs on channel 1");
    assert_eq!(bytes[44], 36, "pad 1: note 36");
    assert_eq!(bytes[92..96], [1, 70, 0, 127], "K1: relative, CC 70");
    assert_eq!(&bytes[96..112], b"octave\0\0\0\0\0\0\0\0\0\0", "K1's name");
    assert_eq!(&bytes[176..184], b"scale\0\0\0", "K5's name");
    assert_eq!(bytes[253], 0xF7);
}

/// The monitor `imp`'s log lines so far (`note-on ch1 C5 vel 100`, …).
fn seen(d: &Daemon, imp: &str) -> Vec<String> {
    let tag = format!("{imp}: ");
    d.log_text()
        .lines()
        .filter_map(|l| l.split_once(&tag))
        .map(|(_, e)| e.split(" imp=").next().unwrap_or(e).trim().to_string())
        .collect()
}

/// Waits until the monitor's lines after the first `from` hold every one
/// of `events`; returns how many lines there are then.
fn wait_seen(d: &Daemon, from: usize, events: &[&str]) -> usize {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let s = seen(d, "watch");
        let after = &s[from.min(s.len())..];
        if events.iter().all(|e| after.iter().any(|x| x == e)) {
            return s.len();
        }
        assert!(
            Instant::now() < deadline,
            "the bard's output never had {events:?}; after line {from} it had {after:?}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn settings(d: &Daemon) -> Value {
    let out = d.cli(&["get", "--json"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

fn main_zone(s: &Value) -> Value {
    s["zones"]
        .as_array()
        .unwrap()
        .iter()
        .find(|z| z["name"] == "main")
        .cloned()
        .unwrap()
}

fn wait_main(d: &Daemon, what: &str, pred: impl Fn(&Value) -> bool) {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let z = main_zone(&settings(d));
        if pred(&z) {
            return;
        }
        assert!(Instant::now() < deadline, "{what}: {z:#}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Ends a test: the daemon exits cleanly (closing its JACK client)
/// before the device's client closes. A daemon killed while the device's
/// client closes can leave `jack_client_close` waiting on the dummy
/// server for good.
fn stop_then_unplug(mut d: Daemon, mut dev: JackDevice) {
    if d.child.is_some() {
        assert!(d.stop().success());
    }
    drop(d);
    dev.unplug();
}

fn cli_ok(d: &Daemon, args: &[&str]) {
    let out = d.cli(args);
    assert!(
        out.status.success(),
        "impresario {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn the_program_is_pushed_keys_and_drum_pads_play_and_knobs_edit_the_enchanter() {
    let jack = JackServer::start();
    let mut dev = plug(&jack);
    let mut d = start(&jack, "drums");
    wait_thawed(&d);

    // At connect: the program, into RAM, with the knobs' names.
    check_program(&wait_sysex(&dev, 0));

    // The keys (channel 1) and the joystick play through the bard.
    let n = seen(&d, "watch").len();
    dev.play("midi out", &[0x90, 60, 100]);
    dev.play("midi out", &[0xE0, 0x00, 0x50]);
    dev.play("midi out", &[0xB0, 1, 64]);
    dev.play("midi out", &[0x80, 60, 0]);
    let n = wait_seen(
        &d,
        n,
        &[
            "note-on ch1 C4 vel 100",
            "pitch-bend ch1 2048",
            "cc ch1 #1 = 64",
            "note-off ch1 C4",
        ],
    );

    // Pads (channel 10, notes 36–51): General MIDI drums, unchanged.
    dev.play("midi out", &[0x99, 36, 110]);
    dev.play("midi out", &[0x99, 42, 90]); // pad 7: closed hi-hat
    dev.play("midi out", &[0x89, 36, 0]);
    dev.play("midi out", &[0x89, 42, 0]);
    wait_seen(
        &d,
        n,
        &[
            "note-on ch10 C2 vel 110",
            "note-on ch10 F#2 vel 90",
            "note-off ch10 C2",
            "note-off ch10 F#2",
        ],
    );

    // Knobs (relative CC 70–77 on channel 1): K1 two steps clockwise
    // (octave +2), K2 one anticlockwise (semitone -1), K5 one clockwise
    // (scale off → major).
    dev.play("midi out", &[0xB0, 70, 1]);
    dev.play("midi out", &[0xB0, 70, 1]);
    dev.play("midi out", &[0xB0, 71, 127]);
    dev.play("midi out", &[0xB0, 74, 1]);
    wait_main(&d, "the knobs' turns", |z| {
        z["octave"] == 2 && z["semitone"] == -1 && z["scale"] == "major"
    });
    // They never reach the bard.
    assert!(
        !seen(&d, "watch").iter().any(|e| e.contains("#70")),
        "{:?}",
        seen(&d, "watch")
    );

    // Unplugged, then plugged in again: the program again.
    dev.unplug();
    d.wait_for("the MPK frozen", |s| imp_of(s, "mpk")["state"] == "frozen");
    let dev = plug(&jack);
    wait_thawed(&d);
    check_program(&wait_sysex(&dev, 0));

    // Preset 1 holds octave 2, semitone -1; a knob changes the zone; a
    // new build of the imp: the program again, the knobs still turn, and
    // the preset comes back.
    cli_ok(&d, &["preset", "save", "1"]);
    let from = dev.received("midi in").len();
    let lib = d.path("libs").join("libmpk_mini3.so");
    let tmp = d.path("libs").join("libmpk_mini3.so.tmp");
    std::fs::write(&tmp, another_build_of("mpk_mini3", 1)).unwrap();
    std::fs::rename(&tmp, &lib).unwrap();
    d.wait_for("the MPK respawned", |s| {
        imp_of(s, "mpk")["reload_count"] == 1 && imp_of(s, "mpk")["state"] == "thawed"
    });
    check_program(&wait_sysex(&dev, from));
    dev.play("midi out", &[0xB0, 70, 126]); // K1: two steps anticlockwise
    wait_main(&d, "K1 after the reload", |z| z["octave"] == 0);
    cli_ok(&d, &["preset", "recall", "1"]);
    wait_main(&d, "preset 1 recalled after the reload", |z| {
        z["octave"] == 2 && z["semitone"] == -1
    });

    // A daemon restart: the preset is still there, the program pushed again.
    dev.play("midi out", &[0xB0, 70, 127]);
    wait_main(&d, "K1 down one", |z| z["octave"] == 1);
    assert!(d.stop().success());
    let dir = std::mem::replace(&mut d.dir, tempfile::tempdir().unwrap());
    let from = dev.received("midi in").len();
    let d = Daemon::start_in(dir, &[jack.env()]);
    wait_thawed(&d);
    check_program(&wait_sysex(&dev, from));
    wait_main(&d, "the settings kept over the restart", |z| {
        z["octave"] == 1
    });
    cli_ok(&d, &["preset", "recall", "1"]);
    wait_main(&d, "preset 1 recalled after the restart", |z| {
        z["octave"] == 2 && z["semitone"] == -1
    });
    // `status` counts the program sent by the imp now thawed.
    let s = d.wait_for("the program counted in status", |s| {
        imp_of(s, "mpk")["status"]["programs_sent"].as_u64() >= Some(1)
    });
    let status = imp_of(&s, "mpk");
    assert_eq!(status["status"]["gestures"]["failed"], 0, "{status:#}");
    stop_then_unplug(d, dev);
}

#[test]
fn chord_pads_play_the_scales_triads_and_end_what_they_started() {
    let jack = JackServer::start();
    let dev = plug(&jack);
    let d = start(&jack, "chords");
    wait_thawed(&d);
    check_program(&wait_sysex(&dev, 0));

    cli_ok(&d, &["set", "main.scale", "minor"]);
    cli_ok(&d, &["set", "main.key", "A"]);
    wait_main(&d, "A minor", |z| z["scale"] == "minor" && z["key"] == "A");
    // The imp follows the enchanter's published state: wait until a pad
    // plays A minor's tonic triad (the state may arrive a moment after
    // `get` shows it).
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut n = seen(&d, "watch").len();
    loop {
        dev.play("midi out", &[0x99, 36, 100]); // pad 1
        dev.play("midi out", &[0x89, 36, 0]);
        std::thread::sleep(Duration::from_millis(200));
        let s = seen(&d, "watch");
        if s[n..].iter().any(|e| e == "note-on ch1 A3 vel 100") {
            break;
        }
        assert!(Instant::now() < deadline, "no A minor chord: {s:?}");
        n = s.len();
    }
    // Pad 1: A3 C4 E4, on the zone's channel (it takes any: channel 1).
    let n = wait_seen(
        &d,
        n,
        &[
            "note-on ch1 A3 vel 100",
            "note-on ch1 C4 vel 100",
            "note-on ch1 E4 vel 100",
            "note-off ch1 A3",
            "note-off ch1 C4",
            "note-off ch1 E4",
        ],
    );

    // A new build of the imp still plays A minor (the enchanter's state
    // is carried over: it is not published again).
    let lib = d.path("libs").join("libmpk_mini3.so");
    let tmp = d.path("libs").join("libmpk_mini3.so.tmp");
    std::fs::write(&tmp, another_build_of("mpk_mini3", 1)).unwrap();
    std::fs::rename(&tmp, &lib).unwrap();
    d.wait_for("the MPK respawned", |s| {
        imp_of(s, "mpk")["reload_count"] == 1 && imp_of(s, "mpk")["state"] == "thawed"
    });
    dev.play("midi out", &[0x99, 36, 70]); // pad 1: A3 C4 E4
    dev.play("midi out", &[0x89, 36, 0]);
    let n = wait_seen(
        &d,
        n,
        &[
            "note-on ch1 A3 vel 70",
            "note-on ch1 C4 vel 70",
            "note-on ch1 E4 vel 70",
            "note-off ch1 E4",
        ],
    );

    // Pad 5 held (E minor: E4 G4 B4) while the key changes to C: its
    // release ends E4 G4 B4, and the next press plays C minor's fifth
    // degree (G3 Bb3 D4: the tonic lies in octave 3).
    dev.play("midi out", &[0x99, 40, 80]);
    let n = wait_seen(
        &d,
        n,
        &[
            "note-on ch1 E4 vel 80",
            "note-on ch1 G4 vel 80",
            "note-on ch1 B4 vel 80",
        ],
    );
    cli_ok(&d, &["set", "main.key", "C"]);
    wait_main(&d, "C minor", |z| z["key"] == "C");
    std::thread::sleep(Duration::from_millis(300));
    dev.play("midi out", &[0x89, 40, 0]);
    let n = wait_seen(
        &d,
        n,
        &["note-off ch1 E4", "note-off ch1 G4", "note-off ch1 B4"],
    );
    dev.play("midi out", &[0x99, 40, 80]);
    dev.play("midi out", &[0x89, 40, 0]);
    wait_seen(
        &d,
        n,
        &[
            "note-on ch1 G3 vel 80",
            "note-on ch1 A#3 vel 80",
            "note-on ch1 D4 vel 80",
            "note-off ch1 D4",
        ],
    );
    // Every note that started ended.
    let mut balance = std::collections::BTreeMap::<String, i64>::new();
    for e in seen(&d, "watch") {
        let mut w = e.split_whitespace();
        match (w.next(), w.next(), w.next()) {
            (Some("note-on"), Some(ch), Some(note)) => {
                *balance.entry(format!("{ch} {note}")).or_default() += 1
            }
            (Some("note-off"), Some(ch), Some(note)) => {
                *balance.entry(format!("{ch} {note}")).or_default() -= 1
            }
            _ => {}
        }
    }
    assert!(balance.values().all(|&b| b == 0), "{balance:?}");
    stop_then_unplug(d, dev);
}
