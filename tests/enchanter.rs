//! The enchanter in the daemon: `impresario set`, `get` and `preset`
//! change what the bard plays (checked at the bard's output), presets
//! survive a daemon restart and a reload of the enchanter, and a preset
//! recalled while notes are held leaves no note stuck.

mod common;

use common::*;
use std::collections::BTreeMap;
use std::process::Output;

const REALM: &str = r#"
[imps.bard]
library = "bard"
config = {}

[imps.enchanter]
library = "enchanter"
config = { bard = "bard", set = { zones = "lower,upper", "lower.high" = "B3", "upper.low" = "C4" } }

[imps.watch]
library = "monitor"
config = { label = "watch", log = true }

[imps.second]
library = "monitor"
config = { label = "second", log = true }

[[wires]]
from = "bard"
to = "watch"

[[wires]]
from = "bard"
output = 1
to = "second"
"#;

const LIBS: &[&str] = &["bard", "enchanter", "monitor"];

fn ok(out: Output) -> String {
    assert!(
        out.status.success(),
        "failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn refused(out: Output) -> String {
    assert!(
        !out.status.success(),
        "accepted: {}",
        String::from_utf8_lossy(&out.stdout)
    );
    String::from_utf8_lossy(&out.stderr).into_owned()
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

/// Waits until `imp` logged `event` more times than `before`.
fn wait_seen(d: &Daemon, imp: &str, event: &str, before: usize) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while seen(d, imp).iter().filter(|e| *e == event).count() <= before {
        assert!(
            std::time::Instant::now() < deadline,
            "{imp} never saw {event:?}; it saw {:?}\nlog:\n{}",
            seen(d, imp),
            d.log_text()
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

/// Plays note `key` (hex) into the bard and waits for `expect` at `imp`.
fn play(d: &Daemon, key: &str, imp: &str, expect: &str) {
    let before = seen(d, imp).iter().filter(|e| *e == expect).count();
    d.send("bard", &["90", key, "64"]);
    wait_seen(d, imp, expect, before);
    d.send("bard", &["80", key, "00"]);
}

fn thawed(d: &Daemon) {
    d.wait_for("bard and enchanter thawed", |s| {
        imp_of(s, "bard")["state"] == "thawed" && imp_of(s, "enchanter")["state"] == "thawed"
    });
}

/// Note-ons minus note-offs per (channel, note) in `events`.
fn balance(events: &[String]) -> BTreeMap<String, i64> {
    let mut b = BTreeMap::new();
    for e in events {
        if let Some(rest) = e.strip_prefix("note-on ") {
            let key = rest.split(" vel").next().unwrap().to_string();
            *b.entry(key).or_insert(0) += 1;
        } else if let Some(rest) = e.strip_prefix("note-off ") {
            *b.entry(rest.to_string()).or_insert(0) -= 1;
        }
    }
    b.retain(|_, v| *v != 0);
    b
}

#[test]
fn set_get_and_presets_change_what_the_bard_plays_and_survive_restart_and_reload() {
    let mut d = Daemon::start(LIBS, REALM);
    thawed(&d);
    // The zones from realm.toml: C4 is in `upper`, plays as it is.
    play(&d, "3c", "watch", "note-on ch1 C4 vel 100");

    assert_eq!(
        ok(d.cli(&["set", "upper.octave", "1"])).trim(),
        "upper.octave = 1"
    );
    play(&d, "3c", "watch", "note-on ch1 C5 vel 100");
    // `lower` is untouched.
    play(&d, "30", "watch", "note-on ch1 C3 vel 100");
    let got = ok(d.cli(&["get", "upper"]));
    assert!(got.contains("octave = 1"), "{got}");
    let all: serde_json::Value =
        serde_json::from_str(&ok(d.cli(&["get", "--json"]))).expect("get --json is JSON");
    assert_eq!(all["zones"][1]["name"], "upper", "{all:#}");

    // Errors name the key and what it takes; nothing changes.
    let e = refused(d.cli(&["set", "upper.octav", "1"]));
    assert!(e.contains("octav") && e.contains("octave"), "{e}");
    let e = refused(d.cli(&["set", "upper.octave", "9"]));
    assert!(e.contains("upper.octave") && e.contains("-4..=4"), "{e}");
    let e = refused(d.cli(&["set", "uper.octave", "1"]));
    assert!(
        e.contains("uper") && e.contains("lower") && e.contains("upper"),
        "{e}"
    );
    let e = refused(d.cli(&["preset", "recall", "7", "--zone", "upper"]));
    assert!(e.contains('7'), "{e}");
    play(&d, "3c", "watch", "note-on ch1 C5 vel 100");

    // Preset 3: an octave up. Preset 4: a fifth up, on output 1.
    ok(d.cli(&["preset", "save", "3", "--zone", "upper"]));
    ok(d.cli(&["set", "upper.octave", "0"]));
    ok(d.cli(&["set", "upper.semitone", "7"]));
    ok(d.cli(&["set", "upper.output", "1"]));
    play(&d, "3c", "second", "note-on ch1 G4 vel 100");
    ok(d.cli(&["preset", "save", "4", "--zone", "upper"]));
    ok(d.cli(&["preset", "recall", "3", "--zone", "upper"]));
    play(&d, "3c", "watch", "note-on ch1 C5 vel 100");

    // A program goes out on the zone's own output and channel.
    ok(d.cli(&["set", "upper.out_channel", "3"]));
    ok(d.cli(&["set", "upper.program", "5"]));
    wait_seen(&d, "watch", "midi [c2, 04]", 0);
    play(&d, "3c", "watch", "note-on ch3 C5 vel 100");

    // The tempo is the engine's.
    ok(d.cli(&["set", "tempo", "96"]));
    d.wait_for("the engine at 96 BPM", |s| s["engine"]["tempo_bpm"] == 96.0);

    // A daemon restart: the live state and the presets come back.
    assert!(d.stop().success());
    let dir = std::mem::replace(&mut d.dir, tempfile::tempdir().unwrap());
    let mut d = Daemon::start_in(dir, &[]);
    thawed(&d);
    play(&d, "3c", "watch", "note-on ch3 C5 vel 100");
    d.wait_for("the engine at 96 BPM again", |s| {
        s["engine"]["tempo_bpm"] == 96.0
    });
    ok(d.cli(&["preset", "recall", "4", "--zone", "upper"]));
    play(&d, "3c", "second", "note-on ch1 G4 vel 100");

    // A new build of the enchanter: the same again.
    let lib = d.path("libs").join("libenchanter.so");
    let tmp = d.path("libs").join("libenchanter.so.tmp");
    std::fs::write(&tmp, another_build_of("enchanter", 1)).unwrap();
    std::fs::rename(&tmp, &lib).unwrap();
    d.wait_for("the enchanter respawned", |s| {
        imp_of(s, "enchanter")["reload_count"] == 1 && imp_of(s, "enchanter")["state"] == "thawed"
    });
    ok(d.cli(&["preset", "recall", "3", "--zone", "upper"]));
    play(&d, "3c", "watch", "note-on ch1 C5 vel 100");
    let got = ok(d.cli(&["get", "upper"]));
    assert!(
        got.contains("presets") && got.contains('3') && got.contains('4'),
        "{got}"
    );
    assert_eq!(d.status()["messages"]["refused"], 0);

    // The bard changed behind the enchanter's back gets its zones again.
    ok(d.cli(&[
        "control",
        "bard",
        r#"{"cmd": "transpose", "octaves": 2, "semitones": 0}"#,
    ]));
    play(&d, "3c", "watch", "note-on ch1 C5 vel 100");
    d.stop();
}

#[test]
fn a_preset_recall_while_notes_are_held_leaves_no_stuck_note() {
    let mut d = Daemon::start(LIBS, REALM);
    thawed(&d);
    // Preset 1: major chords an octave up. Preset 2: plain, an octave down.
    ok(d.cli(&["set", "upper.chord", "maj"]));
    ok(d.cli(&["set", "upper.octave", "1"]));
    ok(d.cli(&["preset", "save", "1", "--zone", "upper"]));
    ok(d.cli(&["set", "upper.chord", "off"]));
    ok(d.cli(&["set", "upper.octave", "-1"]));
    ok(d.cli(&["preset", "save", "2", "--zone", "upper"]));
    ok(d.cli(&["preset", "recall", "1", "--zone", "upper"]));

    // Hold C4 and E4 (chords), recall preset 2, hold G4, recall 1, release all.
    d.send("bard", &["90", "3c", "64"]);
    d.send("bard", &["90", "40", "64"]);
    wait_seen(&d, "watch", "note-on ch1 G#5 vel 100", 0); // E major's fifth, up an octave
    ok(d.cli(&["preset", "recall", "2", "--zone", "upper"]));
    d.send("bard", &["90", "43", "64"]);
    wait_seen(&d, "watch", "note-on ch1 G3 vel 100", 0);
    ok(d.cli(&["preset", "recall", "1", "--zone", "upper"]));
    for key in ["3c", "40", "43"] {
        d.send("bard", &["80", key, "00"]);
    }
    // Everything that started has ended, each where it started.
    d.wait_for("the bard silent", |s| {
        imp_of(s, "bard")["status"]["sounding"] == 0
    });
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let events = seen(&d, "watch");
        let open = balance(&events);
        if open.is_empty() {
            assert!(events.iter().filter(|e| e.starts_with("note-on")).count() >= 7);
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "stuck notes {open:?} in {events:#?}"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    d.stop();
}
