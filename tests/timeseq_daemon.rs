//! TimeSeq scripts in the running daemon (loopback backend): saving an
//! invalid version keeps the old one playing and shows the error with the
//! spec's location and code in `status --json`; a valid version swaps in
//! between two cycles without a stuck note; a half-written file is never
//! loaded; deleting the file ends all its notes; `impresario seq` drives
//! the transport. The harness checks the engine's allocation guard (zero)
//! when the daemon ends.

mod common;
use common::*;
use serde_json::Value;
use std::time::Duration;

/// A script that holds one note (gate high all the time) on output 2/3.
fn hold(note: &str) -> String {
    format!(
        r#"{{"type":"not-things_timeseq_script","version":"1.2.0","timelines":[{{"lanes":[{{
  "auto-start":true,"loop":true,"segments":[{{"duration":{{"millis":500}},"actions":[
    {{"set-value":{{"output":2,"value":"{note}"}}}},
    {{"set-value":{{"output":3,"value":10}}}}]}}]}}]}}]}}"#
    )
}

/// Output 9 does not exist: error 1502 at the action.
const INVALID: &str = r#"{"type":"not-things_timeseq_script","version":"1.2.0","timelines":[{"lanes":[{
  "auto-start":true,"loop":true,"segments":[{"duration":{"millis":500},"actions":[
    {"set-value":{"output":9,"value":"E4"}}]}]}]}]}"#;

const REALM: &str = "[realm]\nlibrary_dir = \"libs\"\nreconcile_ms = 50\nthaw_retry_ms = 200\n\
     vault_debounce_ms = 100\nmidi_backend = \"loopback\"\n\n\
     [imps.watch]\nlibrary = \"monitor\"\nconfig = { log = false }\n\n\
     [scripts.song]\nto = \"watch\"\n";

fn script_entry(s: &Value, name: &str) -> Value {
    s["scripts"]["files"]
        .as_array()
        .and_then(|a| a.iter().find(|f| f["name"] == name))
        .cloned()
        .unwrap_or(Value::Null)
}

fn counts(s: &Value) -> (u64, u64) {
    let c = &imp_of(s, "watch")["status"]["counts"];
    (
        c["note_on"].as_u64().unwrap_or(0),
        c["note_off"].as_u64().unwrap_or(0),
    )
}

fn last_event(s: &Value) -> String {
    imp_of(s, "watch")["status"]["last_event"]
        .as_str()
        .unwrap_or("")
        .to_string()
}

/// Writes `text` to `path` the way editors do: a temporary file, renamed.
fn save(path: &std::path::Path, text: &str) {
    let tmp = path.with_extension("json.tmp");
    std::fs::write(&tmp, text).unwrap();
    std::fs::rename(&tmp, path).unwrap();
}

fn seq(d: &Daemon, args: &[&str]) -> std::process::Output {
    let mut a = vec!["seq"];
    a.extend_from_slice(args);
    let out = d.cli(&a);
    assert!(
        out.status.success(),
        "seq {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

#[test]
fn scripts_swap_refuse_invalid_versions_stop_and_end_their_notes() {
    let dir = Daemon::prepare(&["timeseq_player", "monitor"]);
    std::fs::write(dir.path().join("realm.toml"), REALM).unwrap();
    let scripts = dir.path().join("scripts");
    std::fs::create_dir_all(&scripts).unwrap();
    let file = scripts.join("song.json");
    let d = Daemon::start_in(dir, &[]);

    // Dropped: it plays C4 into the monitor.
    std::fs::write(&file, hold("C4")).unwrap();
    let s = d.wait_for("the script to play C4", |s| counts(s) == (1, 0));
    assert_eq!(last_event(&s), "note-on ch1 C4 vel 100");
    assert_eq!(script_entry(&s, "song")["versions"], 1);

    // An invalid version: reported with location and code, C4 plays on.
    save(&file, INVALID);
    let s = d.wait_for("the invalid version to be reported", |s| {
        script_entry(s, "song")["state"] == "invalid"
    });
    let error = &script_entry(&s, "song")["error"];
    assert_eq!(
        error["location"],
        "/timelines/0/lanes/0/segments/0/actions/0/set-value"
    );
    assert_eq!(error["code"], 1502);
    assert_eq!(script_entry(&s, "song")["versions"], 1);
    let before = imp_of(&s, "seq.song")["status"]["script_samples"]
        .as_u64()
        .unwrap();
    std::thread::sleep(Duration::from_millis(200));
    let s = d.status();
    assert_eq!(imp_of(&s, "seq.song")["state"], "thawed");
    assert!(
        imp_of(&s, "seq.song")["status"]["script_samples"]
            .as_u64()
            .unwrap()
            > before,
        "the previous version keeps playing"
    );
    assert_eq!(counts(&s), (1, 0), "C4 still sounds, nothing else happened");
    assert!(d.log_text().contains("[1502]"), "the log has the error too");
    let text = String::from_utf8(d.cli(&["status"]).stdout).unwrap();
    assert!(
        text.contains("REFUSED (the previous version keeps playing)") && text.contains("[1502]"),
        "{text}"
    );
    let text = String::from_utf8(seq(&d, &["list"]).stdout).unwrap();
    assert!(text.contains("song") && text.contains("[1502]"), "{text}");

    // A half-written valid version (written in place, not renamed) is never
    // loaded: at most reported, while C4 plays on.
    let e4 = hold("E4");
    std::fs::write(&file, &e4[..e4.len() / 2]).unwrap();
    std::thread::sleep(Duration::from_millis(400));
    let s = d.status();
    assert_eq!(script_entry(&s, "song")["versions"], 1);
    assert_eq!(counts(&s), (1, 0));

    // The valid version swaps in between cycles: C4 ends, E4 starts.
    save(&file, &e4);
    let s = d.wait_for("the new version to play E4", |s| counts(s) == (2, 1));
    assert_eq!(last_event(&s), "note-on ch1 E4 vel 100");
    assert_eq!(script_entry(&s, "song")["versions"], 2);
    assert_eq!(script_entry(&s, "song")["state"], "playing");
    assert_eq!(script_entry(&s, "song")["error"], Value::Null);
    assert_eq!(imp_of(&s, "seq.song")["status"]["sounding"], 1);

    // A new build of the player library: the new instance takes the held
    // E4 over and ends it at its first frame, then the script starts from
    // its load state and plays E4 again.
    let staged = d.path("libs/libtimeseq_player.so.new");
    std::fs::write(&staged, another_build_of("timeseq_player", 1)).unwrap();
    std::fs::rename(&staged, d.path("libs/libtimeseq_player.so")).unwrap();
    let s = d.wait_for("the respawn to hand E4 over", |s| {
        imp_of(s, "seq.song")["reload_count"] == 1 && counts(s) == (3, 2)
    });
    assert_eq!(last_event(&s), "note-on ch1 E4 vel 100");

    // Transport: stop ends the note, start plays again, list shows it.
    seq(&d, &["stop", "song"]);
    let s = d.wait_for("stop to end E4", |s| counts(s) == (3, 3));
    assert_eq!(last_event(&s), "note-off ch1 E4");
    let list: Value = serde_json::from_slice(&seq(&d, &["list", "--json"]).stdout).unwrap();
    assert_eq!(list[0]["name"], "song");
    assert_eq!(list[0]["player"]["running"], false);
    seq(&d, &["start", "song"]);
    d.wait_for("start to play E4 again", |s| counts(s) == (4, 3));
    seq(&d, &["reset", "song"]);
    let s = d.wait_for("the reset to be counted", |s| {
        imp_of(s, "seq.song")["status"]["resets"] == 1
    });
    // The reset runs inside the script's sample 0, before the lanes set
    // the note again: E4 holds through it.
    let (on, off) = counts(&s);
    assert_eq!(on, off + 1, "one note sounds after the reset");

    // Deleted: the sequencer goes and every note it played has ended.
    std::fs::remove_file(&file).unwrap();
    let s = d.wait_for("the sequencer to go and its note to end", |s| {
        let (on, off) = counts(s);
        imp_of(s, "seq.song").is_null() && script_entry(s, "song").is_null() && on == off
    });
    let (on, off) = counts(&s);
    assert_eq!(
        on, off,
        "no stuck note after the delete: {on} on, {off} off"
    );
    assert_eq!(last_event(&s), "note-off ch1 E4");
    assert_eq!(s["engine"]["alloc_violations"], 0);
}
