//! The Yamaha P-85 imp in the daemon, on a real JACK server (dummy
//! driver): a JACK client of the test's own plays the exact bytes the P-85
//! sends (note-on with velocity 0 as note-off, CC 64/66/67, active sensing
//! `FE`) into the port the imp connects to, at exact frame offsets, so the
//! engine's sample clock sees the taps and holds as scripted. The imp plays
//! into the bard, watched by a monitor, and edits the enchanter.

mod common;

use common::*;
use serde_json::Value;
use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The test's piano: a JACK client `pianolink` with an output port `out`.
const PIANO_PORT: &str = "pianolink:out";

const LIBS: &[&str] = &["p85", "bard", "enchanter", "monitor"];

fn realm(enchanter_set: &str) -> String {
    format!(
        r#"[realm]
library_dir = "libs"
midi_backend = "jack"
jack_client_name = "impresario"
{FAST}

[imps.piano]
library = "p85"
config = {{ connect = "{PIANO_PORT}", enchanter = "enchanter" }}

[imps.bard]
library = "bard"
config = {{}}

[imps.enchanter]
library = "enchanter"
config = {{ bard = "bard"{enchanter_set} }}

[imps.watch]
library = "monitor"
config = {{ label = "watch", log = true }}

[[wires]]
from = "piano"
to = "bard"

[[wires]]
from = "bard"
to = "watch"
"#
    )
}

/// The piano's process callback.
type Play = Box<dyn FnMut(&jack::Client, &jack::ProcessScope) -> jack::Control + Send>;

/// Scripted events waiting for their frame: (frame, bytes), in order.
type Script = Arc<Mutex<VecDeque<(u64, Vec<u8>)>>>;

/// Frames per millisecond (the server runs at 48 kHz).
const PER_MS: u64 = 48;

/// Plays scripted events at exact frames, and active sensing every 250 ms
/// while `sensing` is on.
struct Piano {
    _client: jack::AsyncClient<(), jack::contrib::ClosureProcessHandler<(), Play>>,
    script: Script,
    now: Arc<AtomicU64>,
    sensing: Arc<AtomicBool>,
}

impl Piano {
    fn start(jack: &JackServer) -> Piano {
        let client = jack_client(jack, "pianolink");
        let mut port = client
            .register_port("out", jack::MidiOut::default())
            .unwrap();
        let script: Script = Arc::default();
        let now = Arc::new(AtomicU64::new(0));
        let sensing = Arc::new(AtomicBool::new(false));
        let (q, clock, fe) = (script.clone(), now.clone(), sensing.clone());
        let mut next_fe: Option<u64> = None;
        let process: Play = Box::new(move |_, ps| {
            let start = ps.last_frame_time() as u64;
            let end = start + ps.n_frames() as u64;
            let mut due: Vec<(u64, Vec<u8>)> = Vec::new();
            if fe.load(Ordering::Relaxed) {
                let mut at = next_fe.unwrap_or(start).max(start);
                while at < end {
                    due.push((at, vec![0xFE]));
                    at += 250 * PER_MS;
                }
                next_fe = Some(at);
            } else {
                next_fe = None;
            }
            // The test's own client: a lock is fine here (never the daemon's).
            if let Ok(mut q) = q.try_lock() {
                while q.front().is_some_and(|(t, _)| *t < end) {
                    let (t, bytes) = q.pop_front().unwrap();
                    due.push((t.max(start), bytes));
                }
            }
            due.sort_by_key(|(t, _)| *t);
            let mut w = port.writer(ps);
            for (t, bytes) in &due {
                let _ = w.write(&jack::RawMidi {
                    time: (t - start) as u32,
                    bytes,
                });
            }
            clock.store(end, Ordering::Relaxed);
            jack::Control::Continue
        });
        let client = client
            .activate_async((), jack::contrib::ClosureProcessHandler::new(process))
            .unwrap();
        Piano {
            _client: client,
            script,
            now,
            sensing,
        }
    }

    /// Plays `events` (milliseconds from now, bytes), each at its exact
    /// frame, and returns once the last one went out.
    fn play(&self, events: &[(u64, &[u8])]) {
        // A margin so that the first event is not already late.
        let base = self.now.load(Ordering::Relaxed) + 100 * PER_MS;
        let last = base + events.iter().map(|(ms, _)| ms * PER_MS).max().unwrap_or(0);
        {
            let mut q = self.script.lock().unwrap();
            let mut all: Vec<(u64, Vec<u8>)> = q.drain(..).collect();
            all.extend(
                events
                    .iter()
                    .map(|(ms, b)| (base + ms * PER_MS, b.to_vec())),
            );
            all.sort_by_key(|(t, _)| *t);
            q.extend(all);
        }
        let deadline = Instant::now() + Duration::from_secs(60);
        while self.now.load(Ordering::Relaxed) <= last || !self.script.lock().unwrap().is_empty() {
            assert!(Instant::now() < deadline, "the piano's JACK client stalled");
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// A tap of `note`: down at `at` ms, up (note-on velocity 0, as the
    /// P-85 sends it) 60 ms later.
    fn tap(at: u64, note: u8) -> [(u64, Vec<u8>); 2] {
        [(at, vec![0x90, note, 64]), (at + 60, vec![0x90, note, 0])]
    }
}

/// Plays a script of owned events.
fn play(piano: &Piano, events: &[(u64, Vec<u8>)]) {
    let refs: Vec<(u64, &[u8])> = events.iter().map(|(t, b)| (*t, b.as_slice())).collect();
    piano.play(&refs);
}

struct Stage {
    piano: Piano,
    // Dropped after the piano's client (fields drop in order). It holds
    // the lock that runs JACK tests one at a time, across test processes.
    jack: JackServer,
}

impl Stage {
    fn new() -> Stage {
        // Long cycles give the clients slack on a loaded machine.
        let jack = JackServer::start_with_period(1024);
        let piano = Piano::start(&jack);
        Stage { piano, jack }
    }

    fn daemon(&self, enchanter_set: &str) -> Daemon {
        let dir = Daemon::prepare(LIBS);
        std::fs::write(dir.path().join("realm.toml"), realm(enchanter_set)).unwrap();
        self.start(dir)
    }

    fn start(&self, dir: tempfile::TempDir) -> Daemon {
        let (k, v) = self.jack.env();
        let d = Daemon::start_in(dir, &[(k, v)]);
        d.wait_for("every imp thawed", |s| {
            ["piano", "bard", "enchanter", "watch"]
                .iter()
                .all(|n| imp_of(s, n)["state"] == "thawed")
        });
        d
    }
}

/// The monitor `watch`'s log lines so far (`note-on ch1 C5 vel 100`, …).
fn seen(d: &Daemon) -> Vec<String> {
    d.log_text()
        .lines()
        .filter_map(|l| l.split_once("watch: "))
        .map(|(_, e)| e.split(" imp=").next().unwrap_or(e).trim().to_string())
        .collect()
}

/// Waits until the monitor logged `event` more than `before` times.
fn wait_seen(d: &Daemon, event: &str, before: usize) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while seen(d).iter().filter(|e| *e == event).count() <= before {
        assert!(
            Instant::now() < deadline,
            "the bard's output never had {event:?}; it had {:?}\nlog:\n{}",
            seen(d),
            d.log_text()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// `impresario get --json`.
fn get(d: &Daemon) -> Value {
    let out = d.cli(&["get", "--json"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("get --json is JSON")
}

/// Waits until `get --json` satisfies `pred`.
fn wait_get(d: &Daemon, what: &str, pred: impl Fn(&Value) -> bool) -> Value {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let g = get(d);
        if pred(&g) {
            return g;
        }
        assert!(
            Instant::now() < deadline,
            "the enchanter never got {what}: {g:#}\np85: {:#}\nlog:\n{}",
            d.imp("piano"),
            d.log_text()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The p85 imp's status.
fn p85(d: &Daemon) -> Value {
    d.imp("piano")["status"].clone()
}

/// The end of every test: no gesture lost, nothing refused.
fn no_gesture_lost(d: &Daemon) {
    let s = p85(d);
    assert_eq!(s["gestures"]["failed"], 0, "{s:#}");
    assert_eq!(s["gestures"]["waiting"], 0, "{s:#}");
    assert_eq!(s["gestures"]["out_of_range"], 0, "{s:#}");
    assert_eq!(d.status()["messages"]["refused"], 0, "{}", d.log_text());
}

const SOFT_DOWN: [u8; 3] = [0xB0, 67, 127];
const SOFT_UP: [u8; 3] = [0xB0, 67, 0];

#[test]
fn playing_notes_with_velocity_0_note_offs_and_sustain_reach_the_bard() {
    let stage = Stage::new();
    let mut d = stage.daemon("");
    stage.piano.sensing.store(true, Ordering::Relaxed);
    stage.piano.play(&[
        (0, &[0x90, 60, 80]),
        (100, &[0xB0, 64, 127]),
        (200, &[0x90, 60, 0]),
        (250, &[0x90, 64, 70]),
        (300, &[0x90, 64, 0]),
        (400, &[0xB0, 64, 0]),
        (450, &[0xB0, 66, 127]),
        (500, &[0xB0, 66, 0]),
    ]);
    for (i, e) in [
        "note-on ch1 C4 vel 80",
        "cc ch1 #64 = 127",
        "note-off ch1 C4",
        "note-on ch1 E4 vel 70",
        "note-off ch1 E4",
        "cc ch1 #64 = 0",
        "cc ch1 #66 = 127",
        "cc ch1 #66 = 0",
    ]
    .iter()
    .enumerate()
    {
        wait_seen(&d, e, 0);
        // In the order played.
        let pos = seen(&d).iter().position(|s| s == e).unwrap();
        assert!(pos >= i, "{:?}", seen(&d));
    }
    // Active sensing stays in the piano's imp.
    std::thread::sleep(Duration::from_millis(300));
    assert!(!seen(&d).iter().any(|e| e.contains("fe")), "{:?}", seen(&d));
    let s = p85(&d);
    assert_eq!(s["mode"], "playing");
    assert_eq!(s["notes_held"], 0);
    assert_eq!(s["sensing"], true);
    stage.piano.sensing.store(false, Ordering::Relaxed);
    d.stop();
}

#[test]
fn the_settings_keyboard_edits_the_enchanter_silently_and_changes_what_the_bard_plays() {
    let stage = Stage::new();
    let mut d = stage
        .daemon(r#", set = { zones = "lower,upper", "lower.high" = "B3", "upper.low" = "C4" }"#);
    let mut part1: Vec<(u64, Vec<u8>)> = vec![(0, SOFT_DOWN.to_vec())];
    // Zone 2: the zone target (G#4), number key 2 (C#3).
    part1.extend(Piano::tap(50, 68));
    part1.extend(Piano::tap(150, 49));
    // Program 21: the program target (E4), then number key 5 (E3) twice
    // within 400 ms (5 + 16).
    part1.extend(Piano::tap(700, 64));
    part1.extend(Piano::tap(800, 52));
    part1.extend(Piano::tap(1050, 52));
    // Octave up twice (A#4); key signature E (E5); arpeggiator on (D6),
    // pattern 3 (F6).
    part1.extend(Piano::tap(1700, 70));
    part1.extend(Piano::tap(1850, 70));
    part1.extend(Piano::tap(2000, 76));
    part1.extend(Piano::tap(2100, 86));
    part1.extend(Piano::tap(2200, 89));
    // Store (A0) held while preset 4 (D#1) is tapped: saved.
    part1.push((2300, vec![0x90, 21, 64]));
    part1.extend(Piano::tap(2400, 27));
    part1.push((2550, vec![0x90, 21, 0]));
    // Changes: octave down (A4), semitone up twice (C#6), then C#6 held
    // for 600 ms (semitone back to 0), key signature C (C5).
    part1.extend(Piano::tap(2700, 69));
    part1.extend(Piano::tap(2800, 85));
    part1.extend(Piano::tap(2900, 85));
    part1.push((3000, vec![0x90, 85, 90]));
    part1.push((3600, vec![0x90, 85, 0]));
    part1.extend(Piano::tap(3700, 72));
    play(&stage.piano, &part1);

    let changed = wait_get(&d, "the changes after the store", |g| {
        // Key C is the last gesture, after the store: all of them arrived.
        let z = &g["zones"][1];
        z["key"] == "C" && z["presets"] == serde_json::json!([4])
    });
    let upper = &changed["zones"][1];
    assert_eq!(changed["global"]["selected"], "upper", "{changed:#}");
    assert_eq!(upper["octave"], 1, "{upper:#}");
    assert_eq!(upper["program"], 21, "{upper:#}");
    assert_eq!(upper["semitone"], 0, "the held key reset it: {upper:#}");
    assert_eq!(upper["arp"], "on", "{upper:#}");
    assert_eq!(upper["scale"], "major", "{upper:#}");
    assert_eq!(upper["presets"], serde_json::json!([4]), "{upper:#}");
    assert_eq!(p85(&d)["mode"], "settings");

    // Recall preset 4 (D#1), soft pedal up.
    let mut part2: Vec<(u64, Vec<u8>)> = Piano::tap(0, 27).to_vec();
    part2.push((200, SOFT_UP.to_vec()));
    play(&stage.piano, &part2);
    let g = wait_get(&d, "preset 4 back", |g| g["zones"][1]["octave"] == 2);
    let (lower, upper) = (&g["zones"][0], &g["zones"][1]);
    assert_eq!(g["global"]["selected"], "upper");
    assert_eq!(upper["program"], 21, "{upper:#}");
    assert_eq!(upper["octave"], 2, "{upper:#}");
    assert_eq!(upper["semitone"], 0, "{upper:#}");
    assert_eq!(upper["key"], "E", "{upper:#}");
    assert_eq!(upper["scale"], "major", "{upper:#}");
    assert_eq!(upper["arp"], "on", "{upper:#}");
    let pattern = &upper["arp_pattern"];
    assert!(
        *pattern == "up_down" || *pattern == 3,
        "arp pattern 3 is up_down: {upper:#}"
    );
    // The lower zone was never selected: untouched.
    assert_eq!(lower["octave"], 0, "{lower:#}");
    assert_eq!(lower["program"], "none", "{lower:#}");
    assert_eq!(lower["arp"], "off", "{lower:#}");
    d.wait_for("the piano playing again", |s| {
        imp_of(s, "piano")["status"]["mode"] == "playing"
    });

    // Not one of the settings keys sounded.
    std::thread::sleep(Duration::from_millis(300));
    let before = seen(&d);
    assert!(
        !before.iter().any(|e| e.starts_with("note-")),
        "settings keys sounded: {before:?}"
    );
    // The program went out for the upper zone (program 21 = 0x14).
    assert!(before.iter().any(|e| e == "midi [c0, 14]"), "{before:?}");

    // E4 in the upper zone now plays two octaves up, arpeggiated.
    stage.piano.play(&[(0, &[0x90, 64, 100])]);
    wait_seen(&d, "note-on ch1 E6 vel 100", 0);
    wait_seen(&d, "note-on ch1 E6 vel 100", 1);
    stage.piano.play(&[(0, &[0x90, 64, 0])]);
    d.wait_for("the bard silent", |s| {
        imp_of(s, "bard")["status"]["sounding"] == 0
    });
    no_gesture_lost(&d);
    assert!(p85(&d)["gestures"]["sent"].as_u64().unwrap() >= 14);
    d.stop();
}

#[test]
fn silence_after_active_sensing_ends_the_held_note() {
    let stage = Stage::new();
    let mut d = stage.daemon("");
    stage.piano.sensing.store(true, Ordering::Relaxed);
    stage.piano.play(&[(300, &[0x90, 60, 90])]);
    wait_seen(&d, "note-on ch1 C4 vel 90", 0);
    // Active sensing every 250 ms keeps the note.
    std::thread::sleep(Duration::from_millis(1000));
    assert!(
        !seen(&d).iter().any(|e| e == "note-off ch1 C4"),
        "{:?}",
        seen(&d)
    );
    assert_eq!(p85(&d)["notes_held"], 1);
    // The cable is pulled: nothing more from the piano.
    stage.piano.sensing.store(false, Ordering::Relaxed);
    wait_seen(&d, "note-off ch1 C4", 0);
    let s = p85(&d);
    assert_eq!(s["sensing_timeouts"], 1, "{s:#}");
    assert_eq!(s["notes_held"], 0, "{s:#}");
    assert_eq!(s["sensing"], false, "{s:#}");
    // The key's own release, later, adds no second note-off.
    stage.piano.play(&[(0, &[0x90, 60, 0])]);
    std::thread::sleep(Duration::from_millis(300));
    let offs = seen(&d).iter().filter(|e| *e == "note-off ch1 C4").count();
    assert_eq!(offs, 1, "{:?}", seen(&d));
    d.stop();
}

#[test]
fn presets_survive_a_daemon_restart_and_a_reload_of_the_p85_imp() {
    let stage = Stage::new();
    let mut d = stage.daemon("");
    // Octave up, store into preset 7 (F#1), transpose reset (B4).
    let mut script: Vec<(u64, Vec<u8>)> = vec![(0, SOFT_DOWN.to_vec())];
    script.extend(Piano::tap(50, 70));
    script.push((200, vec![0x90, 21, 64]));
    script.extend(Piano::tap(300, 30));
    script.push((450, vec![0x90, 21, 0]));
    script.extend(Piano::tap(550, 71));
    script.push((700, SOFT_UP.to_vec()));
    play(&stage.piano, &script);
    wait_get(&d, "preset 7 saved and the octave reset", |g| {
        g["zones"][0]["presets"] == serde_json::json!([7]) && g["zones"][0]["octave"] == 0
    });
    no_gesture_lost(&d);

    let recall = |d: &Daemon| {
        // Transpose reset first, so that the recall has something to change.
        let mut s: Vec<(u64, Vec<u8>)> = vec![(0, SOFT_DOWN.to_vec())];
        s.extend(Piano::tap(50, 71));
        s.push((200, SOFT_UP.to_vec()));
        play(&stage.piano, &s);
        wait_get(d, "the octave reset", |g| g["zones"][0]["octave"] == 0);
        let mut s: Vec<(u64, Vec<u8>)> = vec![(0, SOFT_DOWN.to_vec())];
        s.extend(Piano::tap(50, 30));
        s.push((200, SOFT_UP.to_vec()));
        play(&stage.piano, &s);
        wait_get(d, "preset 7 recalled", |g| g["zones"][0]["octave"] == 1);
        // It plays an octave up.
        let before = seen(d)
            .iter()
            .filter(|e| *e == "note-on ch1 C5 vel 99")
            .count();
        stage
            .piano
            .play(&[(0, &[0x90, 60, 99]), (100, &[0x90, 60, 0])]);
        wait_seen(d, "note-on ch1 C5 vel 99", before);
    };

    // A daemon restart.
    assert!(d.stop().success());
    let dir = std::mem::replace(&mut d.dir, tempfile::tempdir().unwrap());
    let mut d = stage.start(dir);
    recall(&d);

    // A new build of the p85 imp.
    let lib = d.path("libs").join("libp85.so");
    let tmp = d.path("libs").join("libp85.so.tmp");
    std::fs::write(&tmp, another_build_of("p85", 1)).unwrap();
    std::fs::rename(&tmp, &lib).unwrap();
    d.wait_for("the p85 imp respawned", |s| {
        imp_of(s, "piano")["reload_count"] == 1 && imp_of(s, "piano")["state"] == "thawed"
    });
    recall(&d);
    no_gesture_lost(&d);
    d.stop();
}

#[test]
fn unplugged_the_imp_waits_frozen_and_a_pull_mid_note_ends_the_note() {
    let jack = JackServer::start_with_period(1024);
    let dir = Daemon::prepare(LIBS);
    std::fs::write(dir.path().join("realm.toml"), realm("")).unwrap();
    let (k, v) = jack.env();
    let mut d = Daemon::start_in(dir, &[(k, v)]);
    // No interface yet: the imp waits, frozen; the rest plays.
    d.wait_for("the piano frozen, the rest thawed", |s| {
        imp_of(s, "piano")["state"] == "frozen"
            && ["bard", "enchanter", "watch"]
                .iter()
                .all(|n| imp_of(s, n)["state"] == "thawed")
    });
    // Plugged in: it connects.
    let piano = Piano::start(&jack);
    d.wait_for("the piano thawed", |s| {
        imp_of(s, "piano")["state"] == "thawed"
    });
    piano.play(&[(0, &[0x90, 60, 90]), (50, &[0xB0, 64, 127])]);
    wait_seen(&d, "note-on ch1 C4 vel 90", 0);
    wait_seen(&d, "cc ch1 #64 = 127", 0);
    // Pulled mid-note: frozen again, and what it left held ends.
    drop(piano);
    d.wait_for("the piano frozen again", |s| {
        imp_of(s, "piano")["state"] == "frozen"
    });
    wait_seen(&d, "note-off ch1 C4", 0);
    wait_seen(&d, "cc ch1 #64 = 0", 0);
    // Back again: it plays.
    let piano = Piano::start(&jack);
    d.wait_for("the piano thawed again", |s| {
        imp_of(s, "piano")["state"] == "thawed"
    });
    piano.play(&[(0, &[0x90, 62, 90]), (50, &[0x90, 62, 0])]);
    wait_seen(&d, "note-off ch1 D4", 0);
    d.stop();
    drop(piano);
    drop(jack);
}
