//! `impresario doctor --json` on this machine: every check present with a
//! status, and a fix wherever it does not pass; the JACK check reads a
//! running server's rate and period; a broken realm file fails its check.

mod common;
use common::*;
use serde_json::Value;
use std::process::{Command, Output};
use std::sync::Mutex;

/// The tests of this file that touch JACK run one at a time: while one
/// starts or stops a server, libjack's shared metadata files in /dev/shm
/// come and go, and a doctor run beside it would see (and print) that.
static JACK: Mutex<()> = Mutex::new(());

const CHECKS: [&str; 10] = [
    "rtprio",
    "memlock",
    "audio-group",
    "cpu-governor",
    "preemption",
    "threadirqs",
    "alsa-seq",
    "jack",
    "soundfont",
    "realm",
];

fn doctor(realm: &std::path::Path, env: &[(&str, &str)]) -> (Output, Value) {
    let mut cmd = Command::new(binary());
    cmd.args(["doctor", "--json", "--realm"]).arg(realm);
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().expect("run impresario doctor");
    let v: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "doctor --json printed no JSON ({e}):\n{}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    });
    (out, v)
}

fn check<'a>(v: &'a Value, name: &str) -> &'a Value {
    v["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == name)
        .unwrap_or_else(|| panic!("no `{name}` check in {v:#}"))
}

/// Every check once, a known status, a detail, and a fix exactly when
/// the check does not pass; the exit status is 1 exactly when one fails.
fn assert_well_formed(out: &Output, v: &Value) {
    let checks = v["checks"].as_array().expect("checks");
    let names: Vec<&str> = checks.iter().map(|c| c["name"].as_str().unwrap()).collect();
    assert_eq!(names, CHECKS, "{v:#}");
    for c in checks {
        let status = c["status"].as_str().unwrap();
        assert!(["pass", "warn", "fail"].contains(&status), "{c}");
        assert!(!c["detail"].as_str().unwrap().is_empty(), "{c}");
        let fix = c["fix"].as_str().unwrap();
        assert_eq!(fix.is_empty(), status == "pass", "{c}");
    }
    let failed = checks.iter().any(|c| c["status"] == "fail");
    assert_eq!(out.status.success(), !failed, "{v:#}");
}

#[test]
fn every_check_on_this_machine_has_a_status_and_a_fix_where_it_does_not_pass() {
    let _jack = JACK.lock().unwrap_or_else(|e| e.into_inner());
    let realm = workspace().join("realm.toml");
    let (out, v) = doctor(
        &realm,
        &[("JACK_DEFAULT_SERVER", "impresario-doctor-no-such-server")],
    );
    assert_well_formed(&out, &v);
    assert_eq!(check(&v, "realm")["status"], "pass", "{v:#}");
    // No server by that name: a warning (the default realm does not need
    // JACK), and nothing of libjack's own complaints on stderr.
    assert_eq!(check(&v, "jack")["status"], "warn", "{v:#}");
    assert!(
        !String::from_utf8_lossy(&out.stderr).contains("jack"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // The memory-lock check agrees with what the daemon will do: the
    // same rule, `realtime.memory_locked` in status.
    let memlock = check(&v, "memlock")["status"].as_str().unwrap();
    let d = Daemon::start(&["monitor"], "[imps.a]\nlibrary = \"monitor\"\n");
    let locked = d.status()["realtime"]["memory_locked"].as_bool().unwrap();
    assert_eq!(locked, memlock == "pass", "doctor: {memlock}");
    for c in v["checks"].as_array().unwrap() {
        eprintln!(
            "{:5} {:13} {}",
            c["status"].as_str().unwrap(),
            c["name"].as_str().unwrap(),
            c["detail"].as_str().unwrap()
        );
    }
}

#[test]
fn the_jack_check_reads_the_servers_rate_and_period() {
    let _jack = JACK.lock().unwrap_or_else(|e| e.into_inner());
    let server = JackServer::start_with_period(256);
    let realm = workspace().join("realm.toml");
    let (out, v) = doctor(&realm, &[server.env()]);
    assert_well_formed(&out, &v);
    let jack = check(&v, "jack");
    assert_eq!(jack["status"], "pass", "{jack}");
    let detail = jack["detail"].as_str().unwrap();
    // 256 / 48000 s = 5.33 ms.
    assert!(
        detail.contains("48000 Hz") && detail.contains("256 frames") && detail.contains("5.33 ms"),
        "{detail}"
    );
}

#[test]
fn a_broken_realm_file_fails_with_its_line_and_a_fix() {
    let dir = tempfile::tempdir().unwrap();
    let realm = dir.path().join("realm.toml");
    std::fs::write(&realm, "[realm]\nsample_rate = \"fast\"\n").unwrap();
    let (out, v) = doctor(&realm, &[]);
    assert_well_formed(&out, &v);
    assert!(!out.status.success());
    let c = check(&v, "realm");
    assert_eq!(c["status"], "fail", "{c}");
    assert!(c["detail"].as_str().unwrap().contains(":2"), "{c}");
}
