//! `impresario service`: the unit files it writes pass `systemd-analyze
//! verify` without a single warning, and install / status / uninstall
//! work on a private `XDG_CONFIG_HOME`.

mod common;
use common::*;
use std::path::Path;
use std::process::{Command, Output};

fn impresario(config_home: &Path, args: &[&str]) -> Output {
    Command::new(binary())
        .args(args)
        .env("XDG_CONFIG_HOME", config_home)
        .output()
        .expect("run impresario")
}

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// `systemd-analyze verify FILE` works offline; it exits 0 even for a
/// directive it ignores, so any output at all counts as a failure.
fn verify(unit: &Path) {
    let out = Command::new("systemd-analyze")
        .arg("verify")
        .arg(unit)
        .output()
        .expect("systemd-analyze (Debian's `systemd` package; `cargo xtask test` installs it)");
    assert!(
        out.status.success() && out.stderr.is_empty() && out.stdout.is_empty(),
        "{}:\n{}\n{}",
        unit.display(),
        text(&out),
        std::fs::read_to_string(unit).unwrap()
    );
}

#[test]
fn installed_user_unit_and_system_variant_pass_systemd_analyze_verify() {
    let dir = tempfile::tempdir().unwrap();
    let realm = dir.path().join("my set").join("realm.toml");
    std::fs::create_dir_all(realm.parent().unwrap()).unwrap();
    std::fs::write(&realm, "[realm]\nlibrary_dir = \"libs\"\n").unwrap();
    let config = dir.path().join("config");

    let out = impresario(
        &config,
        &["service", "install", "--realm", realm.to_str().unwrap()],
    );
    assert!(out.status.success(), "{}", text(&out));
    let unit = config.join("systemd/user/impresario.service");
    let written = std::fs::read_to_string(&unit).expect("the user unit");
    let realm_abs = std::fs::canonicalize(&realm).unwrap();
    let bin = std::fs::canonicalize(binary()).unwrap();
    let exec = format!(
        "ExecStart={} run --realm \"{}\"\n",
        bin.display(),
        realm_abs.display()
    );
    assert!(written.contains(&exec), "wants {exec:?} in\n{written}");
    for line in [
        "Type=notify",
        "WatchdogSec=10",
        "Restart=on-failure",
        "LimitRTPRIO=95",
        "LimitMEMLOCK=infinity",
        "WantedBy=default.target",
    ] {
        assert!(
            written.lines().any(|l| l == line),
            "{line} missing:\n{written}"
        );
    }
    verify(&unit);
    assert!(text(&out).contains("system-unit"), "{}", text(&out));

    let out = impresario(
        &config,
        &[
            "service",
            "system-unit",
            "--user",
            "root",
            "--realm",
            realm.to_str().unwrap(),
        ],
    );
    assert!(out.status.success(), "{}", text(&out));
    let system = dir.path().join("impresario.service");
    std::fs::write(&system, &out.stdout).unwrap();
    let system_text = String::from_utf8_lossy(&out.stdout);
    for line in [
        "User=root",
        "Nice=-10",
        "WantedBy=multi-user.target",
        "Type=notify",
    ] {
        assert!(
            system_text.lines().any(|l| l == line),
            "{line} missing:\n{system_text}"
        );
    }
    verify(&system);

    let out = impresario(&config, &["service", "status"]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("installed: yes"), "{}", text(&out));
    assert!(text(&out).contains("enabled: "), "{}", text(&out));

    let out = impresario(&config, &["service", "uninstall"]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(!unit.exists());
    let out = impresario(&config, &["service", "status"]);
    assert!(text(&out).contains("installed: no"), "{}", text(&out));
}

#[test]
fn install_refuses_a_missing_or_invalid_realm() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("config");
    let missing = dir.path().join("nope.toml");
    let out = impresario(
        &config,
        &["service", "install", "--realm", missing.to_str().unwrap()],
    );
    assert!(!out.status.success());
    assert!(text(&out).contains("does not exist"), "{}", text(&out));
    let bad = dir.path().join("realm.toml");
    std::fs::write(&bad, "[realm\n").unwrap();
    let out = impresario(
        &config,
        &["service", "install", "--realm", bad.to_str().unwrap()],
    );
    assert!(!out.status.success());
    assert!(text(&out).contains("not valid"), "{}", text(&out));
    assert!(!config.join("systemd/user/impresario.service").exists());
}
