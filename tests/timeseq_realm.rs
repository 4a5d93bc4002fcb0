//! TimeSeq scripts in a realm on a manual clock (the in-process loopback
//! shape: the realm's supervisor and the engine core in one test, no audio
//! or MIDI system): a script dropped into the scripts folder plays notes at
//! the sample-exact frames its trace implies, and MIDI played into it
//! reaches its inputs at the frame it arrives. The engine's allocation
//! guard watches every cycle.

mod common;
use common::*;
use engine::alloc_guard::{self, GuardedAllocator};
use engine::{EngineConfig, EngineCore, TapEvent};
use realm::{Realm, RealmConfig};
use std::path::Path;
use std::time::{Duration, Instant};

#[global_allocator]
static ALLOCATOR: GuardedAllocator = GuardedAllocator;

/// One of the TimeSeq sample scripts (the copies the timeseq crate tests).
fn sample(name: &str) -> std::path::PathBuf {
    workspace()
        .join("crates/timeseq/tests/fixtures/samples")
        .join(name)
}

struct Rig {
    _dir: tempfile::TempDir,
    scripts: std::path::PathBuf,
    realm: Realm,
    core: EngineCore,
    /// Every event the engine emitted: (slot, absolute sample, bytes).
    events: Vec<TapEvent>,
}

impl Rig {
    fn new(body: &str) -> Rig {
        let dir = Daemon::prepare(&["timeseq_player", "monitor"]);
        let scripts = dir.path().join("scripts");
        std::fs::create_dir_all(&scripts).unwrap();
        let path = dir.path().join("realm.toml");
        std::fs::write(&path, realm_text(body)).unwrap();
        let config = RealmConfig::load(&path).unwrap();
        let (handle, core) = engine::engine(EngineConfig::default());
        let realm = Realm::new(config, handle).unwrap();
        Rig {
            _dir: dir,
            scripts,
            realm,
            core,
            events: Vec::new(),
        }
    }

    fn cycles(&mut self, n: usize) {
        for _ in 0..n {
            self.core.cycle(64);
            self.events.extend_from_slice(self.core.emitted());
        }
    }

    /// Ticks the realm (and the clock) until `pred` holds on its status.
    fn until(
        &mut self,
        what: &str,
        pred: impl Fn(&serde_json::Value) -> bool,
    ) -> serde_json::Value {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            self.realm.tick();
            let s = self.realm.status();
            if pred(&s) {
                return s;
            }
            assert!(
                Instant::now() < deadline,
                "timed out waiting for {what}:\n{s:#}"
            );
            self.cycles(1);
            std::thread::sleep(Duration::from_millis(5));
        }
    }
}

/// Note events `(sample, bytes)` that a trace of the script implies for
/// the default mapping (pitch on output 2, gate on output 3, velocity 100,
/// channel 1): a gate rising to ≥ 1 V starts the note of the pitch at that
/// sample, falling ends it, a pitch change under a held gate retriggers.
/// The trace comes from the `impresario timeseq trace` command itself.
fn notes_from_trace(script: &Path, samples: u64) -> Vec<(u64, [u8; 3])> {
    let out = std::process::Command::new(binary())
        .args(["timeseq", "trace"])
        .arg(script)
        .args(["--sample-rate", "48000", "--samples", &samples.to_string()])
        .output()
        .unwrap();
    assert!(out.status.success());
    let (mut pitch, mut gate) = (0.0f64, 0.0f64);
    let mut sounding: Option<u8> = None;
    let mut notes = Vec::new();
    for line in String::from_utf8(out.stdout).unwrap().lines() {
        let Some(rest) = line.strip_prefix('@') else {
            continue;
        };
        let mut words = rest.split_whitespace();
        let at: u64 = words.next().unwrap().parse().unwrap();
        for w in words {
            if let Some(v) = w.strip_prefix("o2.1=") {
                pitch = v.parse().unwrap();
            } else if let Some(v) = w.strip_prefix("o3.1=") {
                gate = v.parse().unwrap();
            }
        }
        let note = (60.0 + pitch * 12.0).round().clamp(0.0, 127.0) as u8;
        let high = gate >= 1.0;
        if let Some(n) = sounding {
            if !high || n != note {
                notes.push((at, [0x80, n, 0]));
                sounding = None;
            }
        }
        if high && sounding.is_none() {
            notes.push((at, [0x90, note, 100]));
            sounding = Some(note);
        }
    }
    notes
}

#[test]
fn a_dropped_script_plays_the_notes_of_its_trace_at_their_exact_samples() {
    let mut rig = Rig::new("[imps]\n");
    // Some time passes first, so script sample 0 is not engine sample 0.
    rig.cycles(37);
    let script = sample("chords-and-notes-arp-gate.json");
    std::fs::copy(&script, rig.scripts.join("arp.json")).unwrap();
    let status = rig.until("the script to play", |s| {
        imp_of(s, "seq.arp")["state"] == "thawed"
    });
    assert_eq!(imp_of(&status, "seq.arp")["library"], "timeseq_player");

    let violations = alloc_guard::thread_violations();
    // 4 bars at 120 BPM = 8 s = 384000 samples: the whole loop and into
    // the next.
    let samples: u64 = 400_000;
    rig.cycles(samples as usize / 64 + 2);
    assert_eq!(
        alloc_guard::thread_violations(),
        violations,
        "no allocation on the engine thread while the script plays"
    );
    rig.realm.tick();
    let player = imp_of(&rig.realm.status(), "seq.arp")["status"].clone();
    let start = player["started_at"].as_u64().expect("started");
    assert!(start >= 37 * 64, "started after the drop: {player}");
    assert!(
        start.is_multiple_of(64),
        "a part starts at the first frame of a cycle"
    );

    let played: Vec<(u64, [u8; 3])> = rig
        .events
        .iter()
        .filter(|e| e.time >= start && e.time < start + samples)
        .map(|e| (e.time - start, e.event.bytes))
        .collect();
    let expected = notes_from_trace(&script, samples);
    assert!(expected.len() > 60, "the trace implies notes: {expected:?}");
    assert_eq!(played.len(), expected.len());
    for (i, (p, e)) in played.iter().zip(&expected).enumerate() {
        assert_eq!(
            p, e,
            "note event {i}: played (sample, bytes) vs the trace's"
        );
    }
    // Events that leave mid-block leave at their frame: most of these are
    // not at a block boundary.
    assert!(played.iter().any(|(t, _)| !(t + start).is_multiple_of(64)));
}

/// A script that copies its note inputs to its outputs every sample:
/// input 1 (pitch) → output 2, input 2 (gate) → output 3.
const ECHO: &str = r#"{
  "type": "not-things_timeseq_script", "version": "1.2.0",
  "timelines": [{ "lanes": [{ "auto-start": true, "loop": true, "segments": [
    { "duration": { "samples": 1 }, "actions": [
      { "set-value": { "output": 2, "value": { "input": 1 } } },
      { "set-value": { "output": 3, "value": { "input": 2 } } }
    ] }
  ] }] }]
}"#;

#[test]
fn midi_in_reaches_the_script_inputs_at_its_frame() {
    let mut rig = Rig::new(
        "[imps.keys]\nlibrary = \"monitor\"\nconfig = { log = false }\n\n\
         [scripts.echo]\nfrom = \"keys\"\nto = []\n",
    );
    std::fs::write(rig.scripts.join("echo.json"), ECHO).unwrap();
    rig.until("the echo script to play", |s| {
        imp_of(s, "seq.echo")["state"] == "thawed"
    });
    rig.cycles(4);
    rig.events.clear();
    let violations = alloc_guard::thread_violations();
    // Through the keys imp into the script: E4 at frame 17 of the next
    // cycle, released at frame 3 of the one after; then G4 at frame 40.
    let slot_of_keys = |rig: &Rig| {
        rig.events
            .iter()
            .find(|e| e.event.bytes == [0x90, 64, 90])
            .map(|e| e.slot)
    };
    rig.realm.handle(realm::Request::Send {
        imp: "keys".into(),
        bytes: vec![0x90, 64, 90],
    });
    let t0 = rig.core.position();
    rig.cycles(1);
    let keys = slot_of_keys(&rig).expect("the keys imp passed the note on");
    let script_notes = |rig: &Rig| -> Vec<(u64, [u8; 3])> {
        rig.events
            .iter()
            .filter(|e| e.slot != keys)
            .map(|e| (e.time, e.event.bytes))
            .collect()
    };
    // `send` delivers at frame 0 of the next cycle.
    assert_eq!(script_notes(&rig), vec![(t0, [0x90, 64, 100])]);
    rig.realm.handle(realm::Request::Send {
        imp: "keys".into(),
        bytes: vec![0x80, 64, 0],
    });
    let t1 = rig.core.position();
    rig.cycles(2);
    assert_eq!(
        script_notes(&rig),
        vec![(t0, [0x90, 64, 100]), (t1, [0x80, 64, 0])]
    );
    assert_eq!(alloc_guard::thread_violations(), violations);

    // Mid-cycle frames: events pushed straight into the engine at a frame.
    rig.events.clear();
    let t2 = rig.core.position();
    rig.core
        .push_input(keys, imp::RtEvent::midi(17, &[0x90, 67, 90]));
    rig.core
        .push_input(keys, imp::RtEvent::midi(41, &[0x80, 67, 0]));
    rig.cycles(1);
    assert_eq!(
        script_notes(&rig),
        vec![(t2 + 17, [0x90, 67, 100]), (t2 + 41, [0x80, 67, 0])],
        "the note reached the script's inputs at its frame and came back out there"
    );
    assert_eq!(alloc_guard::thread_violations(), violations);
}

/// Output 3 (the gate) follows input 4 (the MIDI clock pulse); the pitch
/// (output 2) stays at 0 V = C4.
const CLOCK_ECHO: &str = r#"{
  "type": "not-things_timeseq_script", "version": "1.2.0",
  "timelines": [{ "lanes": [{ "auto-start": true, "loop": true, "segments": [
    { "duration": { "samples": 1 }, "actions": [
      { "set-value": { "output": 3, "value": { "input": 4 } } }
    ] }
  ] }] }]
}"#;

#[test]
fn midi_clock_pulses_an_input_and_midi_transport_stops_and_continues() {
    let mut rig = Rig::new(
        "[imps.keys]\nlibrary = \"monitor\"\nconfig = { log = false }\n\n\
         [scripts.clock]\nfrom = \"keys\"\nto = []\n",
    );
    std::fs::write(rig.scripts.join("clock.json"), CLOCK_ECHO).unwrap();
    rig.until("the clock script to play", |s| {
        imp_of(s, "seq.clock")["state"] == "thawed"
    });
    rig.cycles(4);
    let keys = {
        let s = rig.realm.status();
        assert_eq!(imp_of(&s, "keys")["state"], "thawed");
        // The keys imp passes everything on; find its slot from an event.
        rig.realm.handle(realm::Request::Send {
            imp: "keys".into(),
            bytes: vec![0xB0, 1, 1],
        });
        rig.events.clear();
        rig.cycles(1);
        rig.events[0].slot
    };
    let script_notes = |rig: &Rig| -> Vec<(u64, [u8; 3])> {
        rig.events
            .iter()
            .filter(|e| e.slot != keys)
            .map(|e| (e.time, e.event.bytes))
            .collect()
    };
    let violations = alloc_guard::thread_violations();
    // A clock tick at frame 10: a 1 ms (48-sample) pulse on input 4,
    // crossing into the next cycle.
    rig.events.clear();
    let t = rig.core.position();
    rig.core.push_input(keys, imp::RtEvent::midi(10, &[0xF8]));
    rig.cycles(2);
    assert_eq!(
        script_notes(&rig),
        vec![(t + 10, [0x90, 60, 100]), (t + 58, [0x80, 60, 0])]
    );

    // A tick at 20, MIDI stop at 30: the note ends at the stop; nothing
    // plays while stopped, not even the next tick.
    rig.events.clear();
    let t = rig.core.position();
    rig.core.push_input(keys, imp::RtEvent::midi(20, &[0xF8]));
    rig.core.push_input(keys, imp::RtEvent::midi(30, &[0xFC]));
    rig.cycles(2);
    rig.core.push_input(keys, imp::RtEvent::midi(5, &[0xF8]));
    rig.cycles(2);
    assert_eq!(
        script_notes(&rig),
        vec![(t + 20, [0x90, 60, 100]), (t + 30, [0x80, 60, 0])]
    );
    rig.realm.tick();
    assert_eq!(
        imp_of(&rig.realm.status(), "seq.clock")["status"]["running"],
        false
    );

    // MIDI continue at 3, a tick at 40: it plays again.
    rig.events.clear();
    let t = rig.core.position();
    rig.core.push_input(keys, imp::RtEvent::midi(3, &[0xFB]));
    rig.core.push_input(keys, imp::RtEvent::midi(40, &[0xF8]));
    rig.cycles(2);
    assert_eq!(
        script_notes(&rig),
        vec![(t + 40, [0x90, 60, 100]), (t + 88, [0x80, 60, 0])]
    );
    assert_eq!(alloc_guard::thread_violations(), violations);
    rig.realm.tick();
    assert_eq!(
        imp_of(&rig.realm.status(), "seq.clock")["status"]["running"],
        true
    );
}

#[test]
fn the_demo_script_is_valid_and_plays_into_the_default_realms_synth() {
    let path = workspace().join("scripts/demo.json");
    let text = std::fs::read_to_string(&path).unwrap();
    if let Err(e) = timeseq::Engine::load(&text, 48000.0) {
        panic!("scripts/demo.json: {:?}", e.errors());
    }
    let config = RealmConfig::load(&workspace().join("realm.toml")).unwrap();
    assert_eq!(config.settings.scripts_dir, workspace().join("scripts"));
    let live = [("demo".to_string(), realm::config::LiveScript { path, text })]
        .into_iter()
        .collect();
    let merged = config.with_scripts(&live);
    assert_eq!(merged.imps["seq.demo"].library, "timeseq_player");
    assert!(
        merged
            .wires
            .iter()
            .any(|w| w.from == "seq.demo" && w.to == "synth"),
        "the default realm has an imp named synth, and scripts play into it"
    );
}
