//! The Arturia MicroFreak through a real JACK server (dummy driver): a
//! JACK client of the test's own is the MicroFreak (two imps: its synth and
//! its keyboard), with an output port
//! (what the synth sends: its keyboard and knobs, exact bytes from
//! Arturia's CC chart) and an input port (what reaches the synth). The
//! knobs are recorded in the enchanter's zone, a preset recall sends the
//! saved values back, the bard's notes reach the synth, the keyboard plays
//! through the bard without a loop, and the presets survive a reload of
//! the imp and a daemon restart.

mod common;

use common::*;
use serde_json::{json, Value};
use std::time::{Duration, Instant};

const LIBS: &[&str] = &["bard", "enchanter", "monitor", "microfreak"];

/// Cutoff, resonance, glide and oscillator type, per the chart.
const CUTOFF: u8 = 0x17;
const RESONANCE: u8 = 0x53;
const GLIDE: u8 = 0x05;
const OSC_TYPE: u8 = 0x09;

const REALM: &str = r#"midi_backend = "jack"

[imps.bard]
library = "bard"
config = {}

[imps.enchanter]
library = "enchanter"
config = { bard = "bard" }

[imps.freak]
library = "microfreak"
config = { connect = "freaktest", enchanter = "enchanter" }

[imps.freak_keys]
library = "microfreak"
config = { connect = "freaktest", part = "keyboard" }

[imps.watch]
library = "monitor"
config = { label = "watch", log = true }

[imps.keys]
library = "monitor"
config = { label = "keys", log = true }

[[wires]]          # the MicroFreak's keyboard plays through the bard
from = "freak_keys"
to = "bard"

[[wires]]          # what the MicroFreak played, watched
from = "freak_keys"
to = "keys"

[[wires]]          # the bard's output 0 plays the MicroFreak
from = "bard"
to = "freak"

[[wires]]
from = "bard"
to = "watch"
"#;

fn plug(jack: &JackServer) -> JackDevice {
    JackDevice::plug(jack, "freaktest", &["midi out"], &["midi in"])
}

fn start(jack: &JackServer) -> Daemon {
    let dir = Daemon::prepare(LIBS);
    std::fs::write(dir.path().join("realm.toml"), realm_text(REALM)).unwrap();
    Daemon::start_in(dir, &[jack.env()])
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

/// The selected (only) zone's MicroFreak parameters.
fn params(s: &Value) -> Value {
    s["zones"][0]["params"]["microfreak"].clone()
}

fn wait_params(d: &Daemon, what: &str, want: Value) {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let s = settings(d);
        if params(&s) == want {
            return;
        }
        assert!(Instant::now() < deadline, "{what}: {s:#}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn ok(d: &Daemon, args: &[&str]) {
    let out = d.cli(args);
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// What the synth received after index `from`.
fn received_since(freak: &JackDevice, from: usize) -> Vec<Vec<u8>> {
    freak
        .received("midi in")
        .into_iter()
        .skip(from)
        .map(|(_, b)| b)
        .collect()
}

/// Waits until the synth received `bytes` after index `from`.
fn wait_received(freak: &JackDevice, from: usize, bytes: &[u8]) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !received_since(freak, from).iter().any(|b| b == bytes) {
        assert!(
            Instant::now() < deadline,
            "the MicroFreak never got {bytes:02x?}; it got {:02x?}",
            received_since(freak, from)
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The control changes the synth received after index `from`, once
/// nothing more has come for 300 ms.
fn settled_ccs(freak: &JackDevice, from: usize) -> Vec<Vec<u8>> {
    let mut seen = freak.received("midi in").len();
    loop {
        std::thread::sleep(Duration::from_millis(300));
        let now = freak.received("midi in").len();
        if now == seen {
            break;
        }
        seen = now;
    }
    received_since(freak, from)
        .into_iter()
        .filter(|b| b[0] & 0xF0 == 0xB0)
        .collect()
}

fn wait_thawed(d: &Daemon, reloads: u64) {
    d.wait_for("both MicroFreak imps thawed", |s| {
        ["freak", "freak_keys"].iter().all(|name| {
            let f = imp_of(s, name);
            f["state"] == "thawed" && f["reload_count"] == reloads
        })
    });
}

fn counts(d: &Daemon, monitor: &str) -> Value {
    d.imp(monitor)["status"]["counts"].clone()
}

/// Turns the cutoff knob to `value` and waits until the enchanter has it.
fn turn_cutoff(d: &Daemon, freak: &JackDevice, value: u8, want: Value) {
    freak.play("midi out", &[0xB0, CUTOFF, value]);
    wait_params(d, "the cutoff recorded", want);
}

#[test]
fn knobs_are_recorded_and_recalled_notes_pass_both_ways_and_presets_last() {
    let jack = JackServer::start();
    let freak = plug(&jack);
    let mut d = start(&jack);
    wait_thawed(&d, 0);
    let swaps = |d: &Daemon| d.imp("bard")["status"]["config_swaps"].as_u64().unwrap();
    d.wait_for("the enchanter configured the bard", |s| {
        imp_of(s, "bard")["status"]["config_swaps"]
            .as_u64()
            .is_some_and(|n| n >= 1)
    });
    let bard_swaps = swaps(&d);

    // (a) Knobs: cutoff 64, resonance 10, glide 0, recorded in the zone.
    freak.play("midi out", &[0xB0, CUTOFF, 0x40]);
    freak.play("midi out", &[0xB0, RESONANCE, 0x0A]);
    freak.play("midi out", &[0xB0, GLIDE, 0x00]);
    wait_params(
        &d,
        "three knobs recorded",
        json!({"5": 0, "23": 64, "83": 10}),
    );
    // A parameter is not music: nothing of it reached the bard, and
    // nothing went back to the synth.
    assert_eq!(counts(&d, "keys")["control_change"], 0);
    assert_eq!(counts(&d, "watch")["control_change"], 0);
    assert_eq!(settled_ccs(&freak, 0), Vec::<Vec<u8>>::new(), "no echo");

    // A sweep, one value per millisecond: thinned to a message every
    // 20 ms of engine time, the final value always recorded.
    let before = d.imp("freak")["status"]["reported"].as_u64().unwrap();
    for v in 0..=100u8 {
        freak.play("midi out", &[0xB0, OSC_TYPE, v]);
        std::thread::sleep(Duration::from_millis(1));
    }
    wait_params(
        &d,
        "the sweep's final value",
        json!({"5": 0, "9": 100, "23": 64, "83": 10}),
    );
    let sent = d.imp("freak")["status"]["reported"].as_u64().unwrap() - before;
    assert!((1..=50).contains(&sent), "{sent} reports for 101 values");
    assert_eq!(settled_ccs(&freak, 0), Vec::<Vec<u8>>::new(), "no echo");
    assert_eq!(
        swaps(&d),
        bard_swaps,
        "recording a parameter left the bard alone"
    );

    // (b) Save preset 2, turn the knobs, recall it: the synth gets the
    // saved values of what changed, nothing else.
    ok(&d, &["preset", "save", "2"]);
    freak.play("midi out", &[0xB0, CUTOFF, 0x64]);
    freak.play("midi out", &[0xB0, RESONANCE, 0x1E]);
    wait_params(
        &d,
        "knobs turned",
        json!({"5": 0, "9": 100, "23": 100, "83": 30}),
    );
    let n = freak.received("midi in").len();
    ok(&d, &["preset", "recall", "2"]);
    wait_params(
        &d,
        "preset 2 recalled",
        json!({"5": 0, "9": 100, "23": 64, "83": 10}),
    );
    wait_received(&freak, n, &[0xB0, CUTOFF, 0x40]);
    wait_received(&freak, n, &[0xB0, RESONANCE, 0x0A]);
    let mut got = settled_ccs(&freak, n);
    got.sort();
    assert_eq!(
        got,
        vec![vec![0xB0, CUTOFF, 0x40], vec![0xB0, RESONANCE, 0x0A]],
        "exactly the saved values that differ, once"
    );
    let status = d.imp("freak")["status"].clone();
    assert_eq!(
        status["params"],
        json!({"5": 0, "9": 100, "23": 64, "83": 10})
    );

    // (c) As an output: a note into the bard reaches the synth...
    let n = freak.received("midi in").len();
    d.send("bard", &["90", "3c", "64"]);
    wait_received(&freak, n, &[0x90, 0x3C, 0x64]);
    d.send("bard", &["80", "3c", "00"]);
    let deadline = Instant::now() + Duration::from_secs(20);
    while !received_since(&freak, n)
        .iter()
        .any(|b| b[0] == 0x80 && b[1] == 0x3C)
    {
        assert!(Instant::now() < deadline, "no note-off at the synth");
        std::thread::sleep(Duration::from_millis(20));
    }
    // ...and never comes back out as something the MicroFreak played.
    assert_eq!(counts(&d, "keys")["note_on"], 0);

    // The keyboard plays through the bard (whose zone plays the
    // MicroFreak: the note reaches it once, no loop).
    freak.play("midi out", &[0x90, 0x40, 0x64]);
    d.wait_for("the keyboard through the bard", |s| {
        imp_of(s, "watch")["status"]["last_event"] == "note-on ch1 E4 vel 100"
    });
    wait_received(&freak, n, &[0x90, 0x40, 0x64]);
    freak.play("midi out", &[0x80, 0x40, 0x00]);
    d.wait_for("the key released", |s| {
        imp_of(s, "watch")["status"]["last_event"] == "note-off ch1 E4"
    });
    std::thread::sleep(Duration::from_millis(300));
    let notes: Vec<Vec<u8>> = received_since(&freak, n)
        .into_iter()
        .filter(|b| b[0] & 0xF0 == 0x90 && b[2] > 0)
        .collect();
    assert_eq!(
        notes,
        vec![vec![0x90, 0x3C, 0x64], vec![0x90, 0x40, 0x64]],
        "each note once"
    );
    assert_eq!(counts(&d, "keys")["note_on"], 1);
    assert_eq!(counts(&d, "watch")["note_on"], 2);

    // (d) A new build of the imps: the preset is recalled through it.
    let lib = d.path("libs").join("libmicrofreak.so");
    let tmp = d.path("libs").join("libmicrofreak.so.tmp");
    let n = freak.received("midi in").len();
    std::fs::write(&tmp, another_build_of("microfreak", 1)).unwrap();
    std::fs::rename(&tmp, &lib).unwrap();
    wait_thawed(&d, 1);
    // The new build took over what the MicroFreak has: nothing sent again.
    assert_eq!(settled_ccs(&freak, n), Vec::<Vec<u8>>::new());
    turn_cutoff(
        &d,
        &freak,
        0x5A,
        json!({"5": 0, "9": 100, "23": 90, "83": 10}),
    );
    let n = freak.received("midi in").len();
    ok(&d, &["preset", "recall", "2"]);
    wait_received(&freak, n, &[0xB0, CUTOFF, 0x40]);

    // A daemon restart: on connecting, the synth gets the zone's values;
    // the preset is still there.
    assert!(d.stop().success());
    let dir = std::mem::replace(&mut d.dir, tempfile::tempdir().unwrap());
    let n = freak.received("midi in").len();
    let d = Daemon::start_in(dir, &[jack.env()]);
    wait_thawed(&d, 0);
    for (cc, v) in [(GLIDE, 0), (OSC_TYPE, 100), (CUTOFF, 64), (RESONANCE, 10)] {
        wait_received(&freak, n, &[0xB0, cc, v]);
    }
    turn_cutoff(
        &d,
        &freak,
        0x7F,
        json!({"5": 0, "9": 100, "23": 127, "83": 10}),
    );
    let n = freak.received("midi in").len();
    ok(&d, &["preset", "recall", "2"]);
    wait_received(&freak, n, &[0xB0, CUTOFF, 0x40]);
    assert_eq!(
        settings(&d)["zones"][0]["presets"],
        json!([2]),
        "preset 2 kept"
    );
}

#[test]
fn unplugged_it_waits_and_plugged_in_again_gets_the_zones_values() {
    let jack = JackServer::start();
    let mut freak = plug(&jack);
    let d = start(&jack);
    wait_thawed(&d, 0);
    freak.play("midi out", &[0xB0, CUTOFF, 0x21]);
    wait_params(&d, "the cutoff recorded", json!({"23": 33}));
    freak.unplug();
    d.wait_for("both MicroFreak imps frozen", |s| {
        imp_of(s, "freak")["state"] == "frozen" && imp_of(s, "freak_keys")["state"] == "frozen"
    });
    let freak = plug(&jack);
    wait_thawed(&d, 0);
    wait_received(&freak, 0, &[0xB0, CUTOFF, 0x21]);
    assert_eq!(settled_ccs(&freak, 0), vec![vec![0xB0, CUTOFF, 0x21]]);
}
