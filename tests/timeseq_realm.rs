//! TimeSeq scripts in a realm on a manual clock (the in-process loopback
//! shape: the realm's supervisor and the engine core in one test, no audio
//! or MIDI system): a script dropped into the scripts folder plays notes at
//! the sample-exact frames its trace implies, and MIDI played into it
//! reaches its inputs at the frame it arrives. The engine's allocation
//! guard watches every cycle.

mod common;
use common::*;
use engine::alloc_guard::{self, GuardedAllocator};
use engine::{EmittedEvent, EngineConfig, EngineCore};
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
    events: Vec<EmittedEvent>,
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
            let s = serde_json::to_value(self.realm.status()).unwrap();
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
/// MIDI channel 1): voice `c` is channel `c` of both ports, as many voices
/// as output 2 has channels, a mono gate serving them all; a gate rising to
/// ≥ 1 V starts the note of the pitch at that sample, falling ends it, a
/// pitch change under a held gate retriggers; per sample, voices in order.
/// The trace comes from the `impresario timeseq trace` command itself.
fn notes_from_trace(script: &Path, samples: u64, ports: (u8, u8)) -> Vec<(u64, [u8; 3])> {
    let (pitch_port, gate_port) = (ports.0.to_string(), ports.1.to_string());
    let out = std::process::Command::new(binary())
        .args(["timeseq", "trace"])
        .arg(script)
        .args(["--sample-rate", "48000", "--samples", &samples.to_string()])
        .output()
        .unwrap();
    assert!(out.status.success());
    let (mut pitch, mut gate) = ([0.0f64; 16], [0.0f64; 16]);
    let (mut poly_pitch, mut poly_gate) = (1usize, 1usize);
    let mut sounding: [Option<u8>; 16] = [None; 16];
    let mut notes = Vec::new();
    for line in String::from_utf8(out.stdout).unwrap().lines() {
        let Some(rest) = line.strip_prefix('@') else {
            continue;
        };
        let mut words = rest.split_whitespace();
        let at: u64 = words.next().unwrap().parse().unwrap();
        for w in words {
            let (key, value) = w.split_once('=').unwrap();
            match key.strip_prefix("poly") {
                Some(p) if p == pitch_port => poly_pitch = value.parse().unwrap(),
                Some(p) if p == gate_port => poly_gate = value.parse().unwrap(),
                Some(_) => {}
                None => {
                    let Some((port, ch)) = key.strip_prefix('o').and_then(|k| k.split_once('.'))
                    else {
                        continue;
                    };
                    let ch: usize = ch.parse::<usize>().unwrap() - 1;
                    // (A port can be both pitch and gate.)
                    if port == pitch_port {
                        pitch[ch] = value.parse().unwrap();
                    }
                    if port == gate_port {
                        gate[ch] = value.parse().unwrap();
                    }
                }
            }
        }
        for v in 0..16 {
            let g = if poly_gate <= 1 { gate[0] } else { gate[v] };
            let high = v < poly_pitch && g >= 1.0;
            let note = (60.0 + pitch[v] * 12.0).round().clamp(0.0, 127.0) as u8;
            if let Some(n) = sounding[v] {
                if !high || n != note {
                    notes.push((at, [0x80, n, 0]));
                    sounding[v] = None;
                }
            }
            if high && sounding[v].is_none() {
                notes.push((at, [0x90, note, 100]));
                sounding[v] = Some(note);
            }
        }
    }
    notes
}

/// Drops `script` into a fresh realm (after some cycles), plays `samples`
/// samples and compares every note event with the trace's, sample for
/// sample; the allocation guard watches the cycles.
fn plays_its_trace(script: &Path, samples: u64, ports: (u8, u8)) -> Vec<(u64, [u8; 3])> {
    let mut rig = Rig::new(&format!(
        "[imps]\n[scripts.song]\nnotes = [{{ pitch = {}, gate = {} }}]\n",
        ports.0, ports.1
    ));
    // Some time passes first, so script sample 0 is not engine sample 0.
    rig.cycles(37);
    std::fs::copy(script, rig.scripts.join("song.json")).unwrap();
    let status = rig.until("the script to play", |s| {
        imp_of(s, "seq.song")["state"] == "thawed"
    });
    assert_eq!(imp_of(&status, "seq.song")["library"], "timeseq_player");

    let violations = alloc_guard::thread_violations();
    rig.cycles(samples as usize / 64 + 2);
    assert_eq!(
        alloc_guard::thread_violations(),
        violations,
        "no allocation on the engine thread while the script plays"
    );
    rig.realm.tick();
    let player = imp_of(
        &serde_json::to_value(rig.realm.status()).unwrap(),
        "seq.song",
    )["status"]
        .clone();
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
    let expected = notes_from_trace(script, samples, ports);
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
    played
}

#[test]
fn a_dropped_script_plays_the_notes_of_its_trace_at_their_exact_samples() {
    // 4 bars at 120 BPM = 8 s = 384000 samples: the whole loop and into
    // the next.
    let played = plays_its_trace(&sample("chords-and-notes-arp-gate.json"), 400_000, (2, 3));
    assert!(played.len() > 60, "the trace implies notes: {played:?}");
}

#[test]
fn the_oscillator_plays_its_notes_at_their_samples_while_its_other_outputs_run_unwatched() {
    // The square (output 1, ±5 V, two 261.63 Hz segments) as pitch and
    // gate: a note every 367 samples (C9 = 5 V) while the saw, triangle,
    // sine and noise change every sample, unwatched.
    let played = plays_its_trace(&sample("oscillator.json"), 48_000, (1, 1));
    assert!(played.len() > 200, "{}", played.len());
    // The saw as pitch and the triangle as gate: notes retriggered every
    // few samples, every one at its sample.
    let played = plays_its_trace(&sample("oscillator.json"), 24_000, (2, 3));
    assert!(played.len() > 2000, "{}", played.len());
}

#[test]
fn a_two_voice_script_plays_both_voices_at_their_exact_samples() {
    // The demo: arpeggio on channel 1 of outputs 2/3, bass on channel 2;
    // 4 bars at 100 BPM = 460800 samples.
    let played = plays_its_trace(&workspace().join("scripts/demo.json"), 480_000, (2, 3));
    let notes: std::collections::BTreeSet<u8> = played
        .iter()
        .filter(|(_, b)| b[0] == 0x90)
        .map(|(_, b)| b[1])
        .collect();
    assert!(
        notes.contains(&45) && notes.contains(&69),
        "bass A2 and arpeggio A4: {notes:?}"
    );
    // Both voices sound at once.
    let mut sounding = 0i32;
    let mut most = 0;
    for (_, b) in &played {
        sounding += if b[0] == 0x90 { 1 } else { -1 };
        most = most.max(sounding);
    }
    assert_eq!(most, 2);
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
        let s = serde_json::to_value(rig.realm.status()).unwrap();
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
        imp_of(
            &serde_json::to_value(rig.realm.status()).unwrap(),
            "seq.clock"
        )["status"]["running"],
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
        imp_of(
            &serde_json::to_value(rig.realm.status()).unwrap(),
            "seq.clock"
        )["status"]["running"],
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

/// Output 4 glides 0 → 10 V over 1000 samples, then holds 3 V for 500;
/// output 5 glides -5 → 5 V over 700 samples.
const GLIDES: &str = r#"{
  "type": "not-things_timeseq_script", "version": "1.2.0",
  "timelines": [{ "lanes": [
    { "auto-start": true, "loop": true, "segments": [
      { "duration": { "samples": 1000 }, "actions": [
        { "timing": "glide", "start-value": 0, "end-value": 10, "output": 4 } ] },
      { "duration": { "samples": 500 }, "actions": [
        { "set-value": { "output": 4, "value": 3 } } ] } ] },
    { "auto-start": true, "loop": true, "segments": [
      { "duration": { "samples": 700 }, "actions": [
        { "timing": "glide", "start-value": -5, "end-value": 5, "output": 5 } ] } ] }
  ] }]
}"#;

#[test]
fn cc_and_pitch_bend_leave_when_their_value_changes_at_that_sample() {
    let mut rig = Rig::new(
        "[imps]\n[scripts.glides]\nnotes = []\ncc = [{ port = 4, cc = 1, channel = 2 }]\n\
         bend = [{ port = 5, range = 5.0 }]\n",
    );
    std::fs::write(rig.scripts.join("glides.json"), GLIDES).unwrap();
    rig.until("the glides to play", |s| {
        imp_of(s, "seq.glides")["state"] == "thawed"
    });
    let samples = 6000u64;
    let violations = alloc_guard::thread_violations();
    rig.cycles(samples as usize / 64 + 2);
    assert_eq!(alloc_guard::thread_violations(), violations);
    rig.realm.tick();
    let start = imp_of(
        &serde_json::to_value(rig.realm.status()).unwrap(),
        "seq.glides",
    )["status"]["started_at"]
        .as_u64()
        .unwrap();
    let played: Vec<(u64, [u8; 3])> = rig
        .events
        .iter()
        .filter(|e| e.time >= start && e.time < start + samples)
        .map(|e| (e.time - start, e.event.bytes))
        .collect();

    // The expectation, from the timeseq crate sample by sample: CC 1 on
    // channel 2 = round(v / 10 × 127), bend = 8192 + round(v / 5 × 8191),
    // each sent at the sample its value changes (and at sample 0).
    let mut e = timeseq::Engine::load(GLIDES, 48000.0).unwrap();
    e.start(0);
    let (mut cc, mut bend) = (-1i32, -1i32);
    let mut expected = Vec::new();
    for n in 0..samples {
        e.process(1);
        let c = (e.output(3, 0) / 10.0 * 127.0).round().clamp(0.0, 127.0) as i32;
        if c != cc {
            cc = c;
            expected.push((n, [0xB1, 1, c as u8]));
        }
        let x = (e.output(4, 0) / 5.0).clamp(-1.0, 1.0);
        let b = (8192.0 + (x * 8191.0).round()) as i32;
        if b != bend {
            bend = b;
            expected.push((n, [0xE0, (b & 0x7F) as u8, (b >> 7) as u8]));
        }
    }
    assert!(expected.len() > 1000, "{}", expected.len());
    assert_eq!(played.len(), expected.len());
    for (i, (p, x)) in played.iter().zip(&expected).enumerate() {
        assert_eq!(p, x, "event {i}");
    }
}

#[test]
fn a_mapping_edit_in_realm_toml_is_checked_by_the_player_and_applied() {
    let mut rig = Rig::new("[imps]\n");
    std::fs::write(rig.scripts.join("glides.json"), GLIDES).unwrap();
    rig.until("the script to play", |s| {
        imp_of(s, "seq.glides")["state"] == "thawed"
    });
    let realm = rig._dir.path().join("realm.toml");
    // A bad port: refused with the line of the table and the key.
    std::fs::write(
        &realm,
        realm_text("[imps]\n\n[scripts.glides]\nnotes = [{ pitch = 9, gate = 3 }]\n"),
    )
    .unwrap();
    let s = rig.until("the edit to be refused", |s| !s["realm_error"].is_null());
    let e = s["realm_error"].as_str().unwrap();
    assert!(
        e.contains("notes[0].pitch = 9") && e.contains("realm.toml:"),
        "{e}"
    );
    assert_eq!(imp_of(&s, "seq.glides")["state"], "thawed");
    assert_eq!(imp_of(&s, "seq.glides")["reload_count"], 0);

    // A good one: the player is swapped with the new mapping (CC 7 from
    // output 4), and the CCs start to flow.
    std::fs::write(
        &realm,
        realm_text("[imps]\n\n[scripts.glides]\nnotes = []\ncc = [{ port = 4, cc = 7 }]\n"),
    )
    .unwrap();
    rig.until("the edit to apply", |s| {
        s["realm_error"].is_null()
            && s["imps"]
                .as_array()
                .is_some_and(|a| a.iter().any(|i| i["name"] == "seq.glides"))
    });
    rig.events.clear();
    rig.cycles(40);
    assert!(
        rig.events
            .iter()
            .any(|e| e.event.bytes[0] == 0xB0 && e.event.bytes[1] == 7),
        "CC 7 flows after the edit"
    );
}

/// No lane runs until the MIDI clock input (4) fires the input trigger
/// `clk`; the started lane then gates output 3 for 10 of its 20 samples.
const TRIGGERED: &str = r#"{
  "type": "not-things_timeseq_script", "version": "1.2.0",
  "input-triggers": [{ "id": "clk", "input": { "index": 4 } }],
  "timelines": [{ "lanes": [{ "auto-start": false, "start-trigger": "clk", "segments": [
    { "duration": { "samples": 20 }, "actions": [
      { "timing": "gate", "output": 3 } ] } ] }] }]
}"#;

#[test]
fn an_input_trigger_starts_an_idle_lane_one_sample_after_the_clock() {
    let mut rig = Rig::new(
        "[imps.keys]\nlibrary = \"monitor\"\nconfig = { log = false }\n\n\
         [scripts.trig]\nfrom = \"keys\"\nto = []\n",
    );
    std::fs::write(rig.scripts.join("trig.json"), TRIGGERED).unwrap();
    rig.until("the script to load", |s| {
        imp_of(s, "seq.trig")["state"] == "thawed"
    });
    rig.cycles(300); // idle for a while: nothing runs but time
    rig.events.clear();
    let t = rig.core.position();
    // Through the keys imp: find its slot from the clock event itself.
    rig.realm.handle(realm::Request::Send {
        imp: "keys".into(),
        bytes: vec![0xF8],
    });
    rig.cycles(2);
    let keys = rig.events[0].slot;
    let notes: Vec<(u64, [u8; 3])> = rig
        .events
        .iter()
        .filter(|e| e.slot != keys)
        .map(|e| (e.time, e.event.bytes))
        .collect();
    // The trigger fires in the clock's sample (after the lanes), the lane
    // starts in the next one.
    assert_eq!(
        notes,
        vec![(t + 1, [0x90, 60, 100]), (t + 11, [0x80, 60, 0])]
    );
}
