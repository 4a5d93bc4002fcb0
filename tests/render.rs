//! `impresario render` through the real binary: a MIDI file the test
//! writes plays into a realm with the FluidSynth imp and a SoundFont the
//! test writes; the WAV has the notes at their times and pitches.

mod common;
use common::soundfont;
use common::*;
use std::process::Command;

/// A format-0 MIDI file at 480 ticks per beat and 120 BPM (a beat is 0.5 s):
/// A4 for a beat, a rest, then program 1 and A4 again for a beat.
fn write_midi(path: &std::path::Path) {
    let mut track: Vec<u8> = Vec::new();
    let mut event = |delta: u32, bytes: &[u8]| {
        // Variable-length delta.
        let mut v = [(delta & 0x7F) as u8; 4];
        let mut n = 1;
        let mut d = delta >> 7;
        while d > 0 {
            v[n] = (d & 0x7F) as u8 | 0x80;
            d >>= 7;
            n += 1;
        }
        track.extend(v[..n].iter().rev());
        track.extend_from_slice(bytes);
    };
    event(0, &[0xFF, 0x51, 3, 0x07, 0xA1, 0x20]); // tempo 500000 µs
    event(0, &[0x90, 69, 110]);
    event(480, &[0x80, 69, 0]);
    event(480, &[0xC0, 1]);
    event(0, &[0x90, 69, 110]);
    event(480, &[0x80, 69, 0]);
    event(0, &[0xFF, 0x2F, 0]);
    let mut file = b"MThd\0\0\0\x06\0\0\0\x01\x01\xE0MTrk".to_vec();
    file.extend_from_slice(&(track.len() as u32).to_be_bytes());
    file.extend_from_slice(&track);
    std::fs::write(path, file).unwrap();
}

/// A realm in `dir` whose synth is the FluidSynth imp with the test's
/// SoundFont, `body` before it.
fn write_realm(dir: &std::path::Path, body: &str) {
    let font = dir.join("test.sf2");
    soundfont::write(&font);
    std::fs::write(
        dir.join("realm.toml"),
        format!(
            "[realm]\nlibrary_dir = \"libs\"\n\n{body}\
             [imps.synth]\nlibrary = \"fluidsynth\"\n\
             config = {{ soundfont = {font:?}, gain = 1.0, reverb = {{ on = false }} }}\n"
        ),
    )
    .unwrap();
}

/// Runs `impresario render` on the realm in `dir` with `args` into a float
/// WAV; returns what the command printed and the left channel.
fn render(dir: &std::path::Path, args: &[&std::ffi::OsStr]) -> (String, Vec<f32>) {
    let wav = dir.join("out.wav");
    let out = Command::new(binary())
        .args(["render", "--realm"])
        .arg(dir.join("realm.toml"))
        .args(args)
        .args(["--float", "--out"])
        .arg(&wav)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut reader = hound::WavReader::open(&wav).unwrap();
    let spec = reader.spec();
    assert_eq!((spec.channels, spec.sample_rate), (2, 48_000));
    let samples: Vec<f32> = reader.samples::<f32>().map(Result::unwrap).collect();
    (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        samples.chunks(2).map(|c| c[0]).collect(),
    )
}

#[test]
fn render_writes_the_notes_of_a_midi_file_at_their_times_and_pitches() {
    let dir = Daemon::prepare(&["midi_port", "fluidsynth"]);
    write_realm(
        dir.path(),
        "[imps.keys]\nlibrary = \"midi_port\"\nconfig = { direction = \"in\" }\n\n\
         [[wires]]\nfrom = \"keys\"\nto = \"synth\"\n\n",
    );
    let midi = dir.path().join("song.mid");
    write_midi(&midi);
    let (said, left) = render(
        dir.path(),
        &[
            "--midi".as_ref(),
            midi.as_os_str(),
            "--seconds".as_ref(),
            "2".as_ref(),
        ],
    );
    assert!(said.contains("real time"), "{said}");
    assert!(
        !dir.path().join("vault.json").exists(),
        "a render leaves the realm's vault alone"
    );
    assert_eq!(left.len(), 96_000, "exactly 2 s");
    let rate = 48_000.0;
    let at = |s: f64| (s * rate) as usize;
    let onset = |from: usize| from + left[from..].iter().position(|s| s.abs() > 1e-6).unwrap();
    // The first note at 0 s, the second at 1.0 s: each within 32 samples.
    assert!(onset(0) <= 32, "first onset at {}", onset(0));
    let second = onset(at(0.75));
    assert!(second.abs_diff(at(1.0)) <= 32, "second onset at {second}");
    let f1 = soundfont::frequency(&left[at(0.1)..at(0.45)], rate);
    let f2 = soundfont::frequency(&left[at(1.1)..at(1.45)], rate);
    assert!((f1 / 440.0 - 1.0).abs() < 0.01, "program 0: {f1} Hz");
    assert!((f2 / 880.0 - 1.0).abs() < 0.01, "program 1: {f2} Hz");
    // Silence between the notes (after the 0.1 s release) and at the end.
    assert!(soundfont::rms(&left[at(0.7)..at(0.95)]) < 1e-5);
    assert!(soundfont::rms(&left[at(1.7)..]) < 1e-5);
    assert!(soundfont::rms(&left[at(0.1)..at(0.45)]) > 0.02);
}

/// A TimeSeq script: A4 (0.75 V on output 2) gated by output 3 for 0.5 s,
/// once.
const SCRIPT: &str = r#"{
  "type": "not-things_timeseq_script",
  "version": "1.2.0",
  "timelines": [{ "lanes": [{ "auto-start": true, "segments": [
    { "duration": { "millis": 500 }, "actions": [
      { "timing": "start", "set-value": { "output": 2, "value": 0.75 } },
      { "timing": "start", "set-value": { "output": 3, "value": 10 } },
      { "timing": "end", "set-value": { "output": 3, "value": 0 } } ] } ] }] }]
}"#;

#[test]
fn render_plays_a_timeseq_script_into_the_synth() {
    let dir = Daemon::prepare(&["timeseq_player", "fluidsynth"]);
    write_realm(dir.path(), "");
    let script = dir.path().join("a4.json");
    std::fs::write(&script, SCRIPT).unwrap();
    let (_, left) = render(
        dir.path(),
        &[
            "--script".as_ref(),
            script.as_os_str(),
            "--seconds".as_ref(),
            "1".as_ref(),
        ],
    );
    let rate = 48_000.0;
    let at = |s: f64| (s * rate) as usize;
    let onset = left
        .iter()
        .position(|s| s.abs() > 1e-6)
        .expect("the script plays");
    assert!(onset <= 32, "the note starts with the script: {onset}");
    let f = soundfont::frequency(&left[at(0.1)..at(0.45)], rate);
    assert!((f / 440.0 - 1.0).abs() < 0.01, "0.75 V is A4: {f} Hz");
    assert!(
        soundfont::rms(&left[at(0.7)..]) < 1e-5,
        "the gate closed at 0.5 s"
    );
}
