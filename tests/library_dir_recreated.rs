//! `cargo clean`: the library directory is removed and comes back with a
//! new build; the daemon watches it again and reloads the imp.

mod common;
use common::*;

#[test]
fn a_removed_and_recreated_library_dir_is_watched_again() {
    let work = tempfile::tempdir().unwrap();
    let target = workspace().join("target").join("e2e-imps");
    let krate = ImpCrate::copy("monitor", &work.path().join("monitor"), &target);
    krate.build();
    let dir = Daemon::prepare(&[]);
    let libs = dir.path().join("libs");
    let built = krate.library_dir().join("libmonitor.so");
    std::fs::copy(&built, libs.join("libmonitor.so")).unwrap();
    std::fs::write(
        dir.path().join("realm.toml"),
        realm_text("[imps.mon]\nlibrary = \"monitor\"\nconfig = { log = false }\n"),
    )
    .unwrap();
    let d = Daemon::start_in(dir, &[]);
    let first = d.wait_for("mon to thaw", |s| imp_of(s, "mon")["state"] == "thawed");
    let first_build = imp_of(&first, "mon")["build_id"].clone();

    // `cargo clean`, then a new build lands in a new directory of that name.
    std::fs::remove_dir_all(&libs).unwrap();
    std::thread::sleep(std::time::Duration::from_millis(300));
    krate.edit("\"C#\", \"D\", \"D#\"", "\"Db\", \"D\", \"Eb\"");
    krate.build();
    std::fs::create_dir(&libs).unwrap();
    std::fs::copy(&built, libs.join("libmonitor.so")).unwrap();

    let s = d.wait_for("the new build to be live", |s| {
        let m = imp_of(s, "mon");
        m["reload_count"] == 1 && m["build_id"] != first_build && m["state"] == "thawed"
    });
    assert!(s["libraries"]["monitor"]["last_error"].is_null());
    let log = d.log_text();
    assert!(log.contains("was removed"), "{log}");
    assert!(log.contains("is back: watching it again"), "{log}");

    // And it keeps watching: one more build.
    let before = imp_of(&s, "mon")["build_id"].clone();
    krate.edit("\"Db\", \"D\", \"Eb\"", "\"C#\", \"D\", \"D#\"");
    krate.build();
    std::fs::copy(&built, libs.join("libmonitor.so")).unwrap();
    d.wait_for("the next build", |s| {
        imp_of(s, "mon")["reload_count"] == 2 && imp_of(s, "mon")["build_id"] != before
    });
}
