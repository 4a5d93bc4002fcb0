//! The loader's decisions, checked on real libraries.

mod common;
use common::*;
use realm::{Library, LoadError};
use serde_json::json;

/// Libraries are never unloaded: after a newer build of the same library
/// is loaded, code of the older build (its imps, its RT parts) must still
/// be callable, because the engine may still be running it.
#[test]
fn old_builds_stay_callable_after_reload() {
    let path = built_library("monitor");
    let old = Library::load(&path).unwrap();
    old.on_after_load(None).unwrap();
    let mut old_imp = old.create("old", &json!({"log": false}), None).unwrap();
    let old_rt = old_imp.thaw().unwrap().expect("the monitor has an RT part");

    let new = Library::load(&path).unwrap();
    new.on_after_load(None).unwrap();
    let mut new_imp = new.create("new", &json!({"log": false}), None).unwrap();

    // Both builds answer, independently (each copy has its own statics).
    assert_eq!(old_imp.poll().unwrap()["total"], 0);
    assert_eq!(new_imp.poll().unwrap()["total"], 0);
    drop(new_imp);
    drop(new);
    // The old build's RT part and control part still run after the newer
    // build's handle is gone.
    let mut rt = old_rt;
    let ctx = imp::BlockContext::new(0, 48_000.0, 120.0, 64);
    let mut out = [imp::RtEvent::default(); 8];
    let (call, n) = rt.process(&ctx, &[imp::RtEvent::midi(3, &[0x90, 60, 100])], &mut out);
    assert_eq!(call, engine::RtCall::Ok);
    assert_eq!(n, 1, "the monitor passes events through");
    assert_eq!(out[0].frame, 3);
    assert_eq!(old_imp.poll().unwrap()["total"], 1);
    drop(rt);
    drop(old_imp);
    assert!(realm::loader::loaded_builds() >= 2);
}

#[test]
fn a_file_that_is_not_an_imp_is_refused_with_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let fake = dir.path().join("libfake.so");
    std::fs::write(&fake, b"not a shared object").unwrap();
    let err = Library::load(&fake).unwrap_err();
    assert!(matches!(err, LoadError::Open { .. }), "{err}");
    assert!(err.to_string().contains("libfake.so"), "{err}");
}

#[test]
fn imp_log_lines_reach_the_host_with_the_imp_name() {
    // The imp's own `tracing` statics are separate from the host's: the
    // export macro forwards them. Checked here through the daemon's log.
    let d = Daemon::start(
        &["monitor"],
        "[imps.watch]\nlibrary = \"monitor\"\nconfig = { label = \"keys\" }\n",
    );
    d.wait_for("watch to thaw", |s| imp_of(s, "watch")["state"] == "thawed");
    d.send("watch", &["90", "3c", "64"]);
    d.wait_for("the event", |s| imp_of(s, "watch")["status"]["total"] == 1);
    let log = d.log_text();
    let line = log
        .lines()
        .find(|l| l.contains("keys: note-on ch1 C4 vel 100"))
        .unwrap_or_else(|| panic!("no forwarded log line:\n{log}"));
    assert!(line.contains("imp=watch"), "{line}");
}
