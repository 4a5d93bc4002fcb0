//! Hot reload end to end: the daemon runs a monitor imp built from a copy
//! of `imps/monitor`; the test feeds it events, changes its code, rebuilds
//! it with cargo while the daemon runs, and checks that the new build is
//! live, its state survived, and the new behaviour shows.

mod common;
use common::*;

#[test]
fn rebuilt_monitor_is_respawned_with_its_state() {
    let work = tempfile::tempdir().unwrap();
    let target = workspace().join("target").join("e2e-imps");
    let krate = ImpCrate::copy("monitor", &work.path().join("monitor"), &target);
    krate.build();

    let dir = tempfile::tempdir().unwrap();
    let realm = format!(
        "[realm]\nlibrary_dir = {:?}\n{FAST}\n[imps.mon]\nlibrary = \"monitor\"\nconfig = {{ label = \"keys\" }}\n",
        krate.library_dir()
    );
    std::fs::write(dir.path().join("realm.toml"), realm).unwrap();
    let mut daemon = Daemon::start_in(dir, &[]);
    let first = daemon.wait_for("the monitor to thaw", |s| {
        imp_of(s, "mon")["state"] == "thawed"
    });
    let first_build = imp_of(&first, "mon")["build_id"]
        .as_str()
        .unwrap()
        .to_string();

    // Three note-ons and a note-off; C#4 is note 61 (0x3d).
    for bytes in [
        ["90", "3c", "64"],
        ["90", "3e", "64"],
        ["80", "3c", "00"],
        ["90", "3d", "50"],
    ] {
        daemon.send("mon", &bytes);
    }
    let before = daemon.wait_for("the events to be counted", |s| {
        imp_of(s, "mon")["status"]["total"] == 4
    });
    assert_eq!(
        imp_of(&before, "mon")["status"]["last_event"],
        "note-on ch1 C#4 vel 80"
    );

    // New behaviour: flats instead of sharps.
    krate.edit("\"C#\", \"D\", \"D#\"", "\"Db\", \"D\", \"Eb\"");
    krate.build();

    let after = daemon.wait_for("the new build to be live", |s| {
        let m = imp_of(s, "mon");
        m["reload_count"] == 1
            && m["build_id"].as_str() != Some(first_build.as_str())
            && m["state"] == "thawed"
    });
    let mon = imp_of(&after, "mon");
    assert_eq!(
        mon["status"]["total"], 4,
        "counts carried across the respawn: {mon:#}"
    );
    assert_eq!(mon["status"]["counts"]["note_on"], 3);
    assert_eq!(after["loaded_builds"], 2, "the old build stays mapped");

    daemon.send("mon", &["90", "3d", "40"]);
    let later = daemon.wait_for("the new code to count the event", |s| {
        imp_of(s, "mon")["status"]["total"] == 5
    });
    assert_eq!(
        imp_of(&later, "mon")["status"]["last_event"],
        "note-on ch1 Db4 vel 64",
        "the new code names notes with flats"
    );

    assert!(daemon.stop().success());
    let vault: serde_json::Value =
        serde_json::from_slice(&std::fs::read(daemon.path("vault.json")).unwrap()).unwrap();
    assert_eq!(
        vault["imps"]["mon"]["data"]["note_on"], 4,
        "saved on shutdown"
    );
    assert_eq!(vault["libraries"]["monitor"]["build_id"], mon["build_id"]);
}
