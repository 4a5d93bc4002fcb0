//! The bard in the daemon: control messages change it live, a held note
//! still ends with the note its note-on played, and the live configuration
//! survives a restart through the vault.

mod common;
use common::*;

const REALM: &str =
    "[imps.bard]\nlibrary = \"bard\"\nconfig = {}\n\n[imps.watch]\nlibrary = \"monitor\"\n\n\
                     [[wires]]\nfrom = \"bard\"\nto = \"watch\"\n";

fn last(d: &Daemon, total: u64) -> String {
    let s = d.wait_for("the monitor to see the event", |s| {
        imp_of(s, "watch")["status"]["total"] == total
    });
    imp_of(&s, "watch")["status"]["last_event"]
        .as_str()
        .unwrap()
        .to_string()
}

#[test]
fn control_messages_transpose_live_and_persist() {
    let mut d = Daemon::start(&["bard", "monitor"], REALM);
    d.wait_for("the bard to thaw", |s| {
        imp_of(s, "bard")["state"] == "thawed"
    });

    d.send("bard", &["90", "3e", "64"]); // D4 held through the change
    assert_eq!(last(&d, 1), "note-on ch1 D4 vel 100");

    let out = d.cli(&[
        "control",
        "bard",
        r#"{"cmd": "transpose", "octaves": 1, "semitones": 0}"#,
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    d.send("bard", &["90", "3c", "64"]);
    assert_eq!(
        last(&d, 2),
        "note-on ch1 C5 vel 100",
        "transposed up an octave"
    );

    d.send("bard", &["80", "3e", "00"]);
    assert_eq!(
        last(&d, 3),
        "note-off ch1 D4",
        "the held note ends as it started"
    );

    // An invalid message is refused with the path of the problem; nothing changes.
    let out = d.cli(&[
        "control",
        "bard",
        r#"{"cmd": "set", "path": "/zones/0/arp/octaves", "value": 9}"#,
    ]);
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("bard config"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    assert!(d.stop().success());
    let dir = std::mem::replace(&mut d.dir, tempfile::tempdir().unwrap());
    let d = Daemon::start_in(dir, &[]);
    d.wait_for("the bard to thaw again", |s| {
        imp_of(s, "bard")["state"] == "thawed"
    });
    let before = d.imp("watch")["status"]["total"].as_u64().unwrap();
    d.send("bard", &["90", "40", "64"]);
    assert_eq!(
        last(&d, before + 1),
        "note-on ch1 E5 vel 100",
        "the transpose came back from the vault"
    );
}
