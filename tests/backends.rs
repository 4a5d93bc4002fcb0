//! Backend choice at run time, and the loopback ports.

mod common;
use common::soundfont;
use common::*;

#[test]
fn alsa_without_a_sound_card_is_a_clear_message_not_a_crash() {
    if std::path::Path::new("/dev/snd/seq").exists() {
        eprintln!(
            "SKIPPED alsa_without_a_sound_card_is_a_clear_message_not_a_crash: /dev/snd/seq \
             exists on this machine, so the missing-ALSA path cannot happen"
        );
        return;
    }
    let dir = Daemon::prepare(&["midi_port"]);
    let realm = realm_text("[imps.keys]\nlibrary = \"midi_port\"\nconfig = { direction = \"in\", connect = \"mpk\" }\n")
        .replace("[realm]\n", "[realm]\nmidi_backend = \"alsa\"\n");
    std::fs::write(dir.path().join("realm.toml"), realm).unwrap();
    let d = Daemon::start_in(dir, &[]);
    let s = d.wait_for("the port imp to wait for ALSA", |s| {
        imp_of(s, "keys")["last_error"]
            .as_str()
            .is_some_and(|e| e.contains("ALSA sequencer not available"))
    });
    assert_eq!(imp_of(&s, "keys")["state"], "frozen");
    assert!(
        d.log_text()
            .contains("MIDI backend: alsa, but ALSA sequencer not available"),
        "{}",
        d.log_text()
    );
    // No audio device either: the engine runs on its internal clock and
    // the log says why.
    assert!(
        d.log_text().contains("audio: ")
            && d.log_text()
                .contains("the engine runs on its internal clock"),
        "{}",
        d.log_text()
    );
}

#[test]
fn auto_without_jack_or_alsa_says_why_it_uses_the_loopback() {
    if std::path::Path::new("/dev/snd/seq").exists() {
        eprintln!(
            "SKIPPED auto_without_jack_or_alsa_says_why_it_uses_the_loopback: /dev/snd/seq \
             exists on this machine, so auto picks ALSA, not the loopback"
        );
        return;
    }
    let dir = Daemon::prepare(&["monitor"]);
    std::fs::write(
        dir.path().join("realm.toml"),
        realm_text("[imps.m]\nlibrary = \"monitor\"\n"),
    )
    .unwrap();
    let d = Daemon::start_in(dir, &[("JACK_DEFAULT_SERVER", "impresario-no-such-server")]);
    let log = d.log_text();
    let line = log
        .lines()
        .find(|l| l.contains("MIDI backend: loopback (auto:"))
        .unwrap_or_else(|| panic!("{log}"));
    assert!(line.contains("JACK") && line.contains("ALSA"), "{line}");
}

#[test]
fn loopback_ports_connect_an_output_to_an_input_of_the_same_name() {
    let d = Daemon::start(
        &["midi_port", "monitor"],
        "[imps.send]\nlibrary = \"midi_port\"\nconfig = { direction = \"out\", name = \"cable\" }\n\
         [imps.recv]\nlibrary = \"midi_port\"\nconfig = { direction = \"in\", connect = \"cable\" }\n\
         [imps.watch]\nlibrary = \"monitor\"\n\
         [[wires]]\nfrom = \"recv\"\nto = \"watch\"\n",
    );
    d.wait_for("both ports", |s| {
        imp_of(s, "send")["state"] == "thawed" && imp_of(s, "recv")["state"] == "thawed"
    });
    d.send("send", &["90", "40", "70"]);
    let s = d.wait_for("the note to come round", |s| {
        imp_of(s, "watch")["status"]["total"] == 1
    });
    assert_eq!(
        imp_of(&s, "watch")["status"]["last_event"],
        "note-on ch1 E4 vel 112"
    );
}

#[test]
fn the_default_realm_runs_with_no_midi_hardware() {
    let dir = Daemon::prepare(&[
        "midi_port",
        "bard",
        "monitor",
        "fluidsynth",
        "enchanter",
        "letters",
    ]);
    let realm = std::fs::read_to_string(workspace().join("realm.toml"))
        .unwrap()
        .replace("library_dir = \"target/release\"", "library_dir = \"libs\"");
    // Two listeners: what the synth and the bard publish reaches subscribers.
    let realm = format!(
        "{realm}\n[imps.hears_synth]\nlibrary = \"letters\"\nconfig = {{ subscribe = \"synth\" }}\n\n\
         [imps.hears_bard]\nlibrary = \"letters\"\nconfig = {{ subscribe = \"bard\" }}\n"
    );
    assert!(realm.contains("library_dir = \"libs\""));
    std::fs::write(dir.path().join("realm.toml"), realm).unwrap();
    // The synth finds a General MIDI SoundFont where the system keeps them
    // (`$XDG_DATA_DIRS/soundfonts`); here, the one the test writes.
    let share = dir.path().join("share");
    std::fs::create_dir_all(share.join("soundfonts")).unwrap();
    soundfont::write(&share.join("soundfonts/test.sf2"));
    let d = Daemon::start_in(
        dir,
        &[
            ("JACK_DEFAULT_SERVER", "impresario-no-such-server"),
            ("XDG_DATA_DIRS", share.to_str().unwrap()),
            ("HOME", "/nonexistent"),
        ],
    );
    let s = d.wait_for("every imp to thaw", |s| {
        s["imps"]
            .as_array()
            .is_some_and(|a| a.len() == 7 && a.iter().all(|i| i["state"] == "thawed"))
    });
    assert!(s["realm_error"].is_null());
    // The enchanter owns the live settings out of the box.
    let out = d.cli(&["set", "main.octave", "1"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    d.send("bard", &["90", "39", "64"]);
    d.wait_for("the monitor to log the note an octave up", |s| {
        imp_of(s, "monitor")["status"]["last_event"] == "note-on ch1 A4 vel 100"
    });
    d.send("bard", &["80", "39", "00"]);
    d.wait_for("the bard's zones published, with the octave", |s| {
        imp_of(s, "hears_bard")["status"]["newest_state"]["config"]["zones"][0]["transpose"]
            ["octaves"]
            == 1
    });
    assert!(d.cli(&["set", "main.octave", "0"]).status.success());
    // A program change on channel 1: the synth publishes its programs.
    d.send("bard", &["c0", "05"]);
    d.wait_for("the synth's programs published", |s| {
        imp_of(s, "hears_synth")["status"]["newest_state"]["programs"]["1"]["program"] == 5
    });
    assert_eq!(imp_of(&s, "synth")["library"], "fluidsynth");
    d.send("bard", &["90", "45", "64"]);
    d.wait_for("the monitor to log the note", |s| {
        imp_of(s, "monitor")["status"]["last_event"] == "note-on ch1 A4 vel 100"
    });
    // No audio device here: the synth still renders, and status shows it.
    d.wait_for("the output level to show the note", |s| {
        s["engine"]["output_peak"]
            .as_f64()
            .is_some_and(|p| p > 0.01)
    });
    d.send("bard", &["80", "45", "00"]);
}
