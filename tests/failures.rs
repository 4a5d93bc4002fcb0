//! Failure paths of the realm, each through the real daemon and a real
//! misbehaving library (`imps/chaos`): the daemon and every other imp
//! carry on.

mod common;
use common::*;
use serde_json::Value;

/// A realm with a healthy monitor next to the chaos imp under test.
fn realm_with(chaos_config: &str) -> String {
    format!(
        "[imps.healthy]\nlibrary = \"monitor\"\n\n[imps.trouble]\nlibrary = \"chaos\"\nconfig = {chaos_config}\n\n\
         [[wires]]\nfrom = \"trouble\"\nto = \"healthy\"\n"
    )
}

fn assert_healthy_carries_on(d: &Daemon) {
    let before = d.imp("healthy")["status"]["total"].as_u64().unwrap_or(0);
    d.send("healthy", &["90", "40", "40"]);
    d.wait_for("the healthy imp to keep counting", |s| {
        imp_of(s, "healthy")["state"] == "thawed"
            && imp_of(s, "healthy")["status"]["total"].as_u64() == Some(before + 1)
    });
}

fn wait_failed(d: &Daemon, needle: &str) -> Value {
    let s = d.wait_for("the chaos imp to be marked failed", |s| {
        imp_of(s, "trouble")["state"] == "failed"
    });
    let err = imp_of(&s, "trouble")["last_error"]
        .as_str()
        .unwrap_or("")
        .to_string();
    assert!(
        err.contains(needle),
        "last_error `{err}` should mention `{needle}`"
    );
    // The panic message reaches the log through the imp's panic hook (and
    // last_error, where the call returns it).
    assert!(
        err.contains("deliberate panic") || d.log_text().contains("deliberate panic"),
        "the panic message should be reported; log:\n{}",
        d.log_text()
    );
    s
}

#[test]
fn panic_in_create_marks_the_imp_failed() {
    let d = Daemon::start(
        &["monitor", "chaos"],
        &realm_with("{ panic_in = \"create\" }"),
    );
    wait_failed(&d, "failed to start");
    assert_healthy_carries_on(&d);
}

#[test]
fn panic_in_thaw_marks_the_imp_failed() {
    let d = Daemon::start(
        &["monitor", "chaos"],
        &realm_with("{ panic_in = \"thaw\" }"),
    );
    wait_failed(&d, "thaw");
    assert_healthy_carries_on(&d);
}

#[test]
fn panic_in_event_handling_marks_the_imp_failed() {
    let d = Daemon::start(
        &["monitor", "chaos"],
        &realm_with("{ panic_in = \"process\" }"),
    );
    d.wait_for("chaos to thaw", |s| {
        imp_of(s, "trouble")["state"] == "thawed"
    });
    d.send("trouble", &["90", "3c", "64"]);
    wait_failed(&d, "processing events");
    assert_healthy_carries_on(&d);
}

#[test]
fn panic_in_poll_marks_the_imp_failed() {
    let d = Daemon::start(
        &["monitor", "chaos"],
        &realm_with("{ panic_in = \"poll\" }"),
    );
    wait_failed(&d, "poll");
    assert_healthy_carries_on(&d);
}

#[test]
fn panic_in_get_vault_data_marks_the_imp_failed() {
    let d = Daemon::start(
        &["monitor", "chaos"],
        &realm_with("{ panic_in = \"get_vault_data\" }"),
    );
    wait_failed(&d, "get_vault_data");
    assert_healthy_carries_on(&d);
}

#[test]
fn panic_in_set_vault_data_marks_the_imp_failed() {
    let dir = Daemon::prepare(&["monitor", "chaos"]);
    std::fs::write(
        dir.path().join("realm.toml"),
        realm_text(&realm_with("{ panic_in = \"set_vault_data\" }")),
    )
    .unwrap();
    std::fs::write(
        dir.path().join("vault.json"),
        r#"{"version": 1, "imps": {"trouble": {"library": "chaos", "version": 1, "data": {"generation": 7}}}}"#,
    )
    .unwrap();
    let d = Daemon::start_in(dir, &[]);
    wait_failed(&d, "failed to start");
    assert_healthy_carries_on(&d);
}

#[test]
fn panic_in_control_marks_the_imp_failed() {
    let d = Daemon::start(
        &["monitor", "chaos"],
        &realm_with("{ panic_in = \"control\" }"),
    );
    d.wait_for("chaos to thaw", |s| {
        imp_of(s, "trouble")["state"] == "thawed"
    });
    let out = d.cli(&["control", "trouble", "{\"hello\": 1}"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("panicked"));
    wait_failed(&d, "control");
    assert_healthy_carries_on(&d);
}

#[test]
fn panic_in_freeze_marks_the_imp_failed_and_removal_goes_on() {
    let mut d = Daemon::start(
        &["monitor", "chaos"],
        &realm_with("{ panic_in = \"freeze\" }"),
    );
    d.wait_for("chaos to thaw", |s| {
        imp_of(s, "trouble")["state"] == "thawed"
    });
    // Removing the imp freezes it first.
    std::fs::write(
        d.realm(),
        realm_text("[imps.healthy]\nlibrary = \"monitor\"\n"),
    )
    .unwrap();
    d.wait_for("chaos to be gone", |s| imp_of(s, "trouble").is_null());
    assert!(
        d.log_text().contains("failed in freeze"),
        "log:\n{}",
        d.log_text()
    );
    assert_healthy_carries_on(&d);
    assert!(d.is_running());
}

#[test]
fn panic_in_on_after_load_refuses_the_library_and_others_carry_on() {
    let dir = Daemon::prepare(&["monitor", "chaos"]);
    std::fs::write(dir.path().join("realm.toml"), realm_text(&realm_with("{}"))).unwrap();
    let d = Daemon::start_in(dir, &[("CHAOS_PANIC_ON_AFTER_LOAD", "1")]);
    let s = d.wait_for("chaos to be missing", |s| {
        imp_of(s, "trouble")["state"] == "missing"
    });
    let err = imp_of(&s, "trouble")["last_error"]
        .as_str()
        .unwrap_or("")
        .to_string();
    assert!(err.contains("on_after_load"), "{err}");
    assert_healthy_carries_on(&d);
}

#[test]
fn library_with_wrong_abi_is_refused_and_old_imps_keep_running() {
    let d = Daemon::start(&["monitor", "chaos"], &realm_with("{}"));
    let first = d.wait_for("chaos to thaw", |s| {
        imp_of(s, "trouble")["state"] == "thawed"
    });
    let build = imp_of(&first, "trouble")["build_id"].clone();

    // A real build of chaos that declares another ABI version.
    install_chaos_build(&d, ("CHAOS_WRONG_ABI", "1"));

    let s = d.wait_for("the refusal", |s| {
        imp_of(s, "trouble")["last_error"]
            .as_str()
            .is_some_and(|e| e.contains("ABI version"))
    });
    let trouble = imp_of(&s, "trouble");
    let err = trouble["last_error"].as_str().unwrap();
    let expected = format!(
        "library ABI version {} does not match the host's ABI version {}",
        imp::ABI_VERSION + 1000,
        imp::ABI_VERSION
    );
    assert!(err.contains(&expected), "{err}");
    assert_eq!(trouble["state"], "thawed", "the old build keeps running");
    assert_eq!(trouble["build_id"], build);
    assert_eq!(trouble["reload_count"], 0);
    d.send("trouble", &["90", "3c", "64"]);
    d.wait_for("events to flow through the old chaos build", |s| {
        imp_of(s, "healthy")["status"]["total"].as_u64() == Some(1)
    });
}

#[test]
fn absent_device_keeps_the_imp_frozen_until_it_appears() {
    let dir = Daemon::prepare(&["monitor", "chaos"]);
    let device = dir.path().join("device");
    std::fs::write(
        dir.path().join("realm.toml"),
        realm_text(&realm_with(&format!("{{ device_file = {device:?} }}"))),
    )
    .unwrap();
    let d = Daemon::start_in(dir, &[]);
    let s = d.wait_for("chaos to wait for its device", |s| {
        imp_of(s, "trouble")["last_error"]
            .as_str()
            .is_some_and(|e| e.contains("absent"))
    });
    assert_eq!(imp_of(&s, "trouble")["state"], "frozen");
    std::fs::write(&device, b"").unwrap();
    d.wait_for("chaos to thaw by itself", |s| {
        imp_of(s, "trouble")["state"] == "thawed"
    });
    std::fs::remove_file(&device).unwrap();
    d.wait_for("chaos to freeze when unplugged", |s| {
        imp_of(s, "trouble")["state"] == "frozen"
    });
    std::fs::write(&device, b"").unwrap();
    d.wait_for("chaos to come back", |s| {
        imp_of(s, "trouble")["state"] == "thawed"
    });
}

#[test]
fn allocation_inside_an_imp_on_the_engine_thread_is_caught() {
    let mut d = Daemon::start(
        &["monitor", "chaos"],
        &realm_with("{ alloc_in_process = true }"),
    );
    d.wait_for("chaos to thaw", |s| {
        imp_of(s, "trouble")["state"] == "thawed"
    });
    // The monitor alone allocates nothing on the engine thread.
    d.send("healthy", &["90", "3c", "64"]);
    d.wait_for("the monitor to count", |s| {
        imp_of(s, "healthy")["status"]["total"] == 1
    });
    assert_eq!(d.status()["engine"]["alloc_violations"], 0);
    d.allocations_expected = true;
    // The chaos imp allocates inside its own library, with its own
    // `#[global_allocator]`: the guard must still see it.
    d.send("trouble", &["90", "3c", "64"]);
    d.wait_for("the guard to count the allocation", |s| {
        s["engine"]["alloc_violations"].as_u64().unwrap_or(0) > 0
    });
}

/// A new build that fails at a step of the respawn: the old build must keep
/// running, with its state, and the failure must be reported.
fn bad_build_keeps_the_old_one(point: &str, needle: &str) {
    let d = Daemon::start(&["monitor", "chaos"], &realm_with("{ churn = true }"));
    let first = d.wait_for("chaos to thaw", |s| {
        imp_of(s, "trouble")["state"] == "thawed"
    });
    let build = imp_of(&first, "trouble")["build_id"].clone();
    install_chaos_build(&d, ("CHAOS_BUILD_PANIC_IN", point));
    let s = d.wait_for("the respawn to fail", |s| {
        imp_of(s, "trouble")["last_error"]
            .as_str()
            .is_some_and(|e| e.contains("respawn failed"))
    });
    let trouble = imp_of(&s, "trouble");
    assert!(
        trouble["last_error"].as_str().unwrap().contains(needle),
        "{trouble:#}"
    );
    assert_eq!(trouble["state"], "thawed", "the old build runs again");
    assert_eq!(trouble["build_id"], build);
    assert_eq!(trouble["reload_count"], 0);
    // Its state survived the attempt, and it keeps working.
    let generation = trouble["status"]["generation"].as_u64().unwrap();
    d.wait_for("the old build to keep polling", |s| {
        imp_of(s, "trouble")["status"]["generation"]
            .as_u64()
            .is_some_and(|g| g > generation)
    });
    d.send("trouble", &["90", "3c", "64"]);
    d.wait_for("events to flow through the old build", |s| {
        imp_of(s, "healthy")["status"]["total"] == 1
    });
}

#[test]
fn respawn_whose_new_build_panics_in_create_keeps_the_old_build() {
    bad_build_keeps_the_old_one("create", "panicked");
}

#[test]
fn respawn_whose_new_build_panics_in_thaw_keeps_the_old_build() {
    bad_build_keeps_the_old_one("thaw", "failed to thaw");
}
