//! The vault survives corruption and crashes.

mod common;
use common::*;
use std::time::Duration;

#[test]
fn corrupt_vault_at_start_falls_back_to_the_newest_valid_backup() {
    let dir = Daemon::prepare(&["monitor"]);
    std::fs::write(
        dir.path().join("realm.toml"),
        realm_text("[imps.mon]\nlibrary = \"monitor\"\n"),
    )
    .unwrap();
    std::fs::write(
        dir.path().join("vault.json"),
        b"{\"version\": 1, \"imps\": {\"mon\": ",
    )
    .unwrap();
    std::fs::write(dir.path().join("vault.json.bak1"), b"also garbage").unwrap();
    std::fs::write(
        dir.path().join("vault.json.bak2"),
        br#"{"version": 1, "generation": 41, "imps": {"mon": {"library": "monitor", "version": 1,
            "data": {"note_on": 7, "note_off": 5, "control_change": 0, "other": 0}}}}"#,
    )
    .unwrap();
    let d = Daemon::start_in(dir, &[]);
    let s = d.wait_for("the counts from the backup", |s| {
        imp_of(s, "mon")["status"]["total"] == 12
    });
    assert_eq!(imp_of(&s, "mon")["state"], "thawed");
    let log = d.log_text();
    assert!(
        log.contains("IS CORRUPT") && log.contains("vault.json.bak2"),
        "loud warning expected:\n{log}"
    );
    let moved: Vec<_> = std::fs::read_dir(d.dir.path())
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| {
            e.file_name()
                .to_string_lossy()
                .starts_with("vault.json.corrupt-")
        })
        .collect();
    assert_eq!(moved.len(), 1, "the corrupt file is kept aside");
    assert_eq!(
        std::fs::read(moved[0].path()).unwrap(),
        b"{\"version\": 1, \"imps\": {\"mon\": "
    );
}

fn last_saved_generation(log: &str) -> Option<u64> {
    log.lines()
        .rev()
        .filter_map(|l| l.split("vault saved (generation ").nth(1))
        .find_map(|rest| rest.split(')').next()?.parse().ok())
}

#[test]
fn sigkill_during_heavy_vault_writes_never_breaks_the_vault() {
    let dir = Daemon::prepare(&["chaos"]);
    // Vault data changes on every 5 ms tick and is written on every tick.
    let realm = "[realm]\nlibrary_dir = \"libs\"\nreconcile_ms = 5\nvault_debounce_ms = 0\n\n\
                 [imps.churn]\nlibrary = \"chaos\"\nconfig = { churn = true }\n";
    std::fs::write(dir.path().join("realm.toml"), realm).unwrap();
    let vault_path = dir.path().join("vault.json");
    let mut dir = Some(dir);
    let mut previous = 0;
    for round in 0..100u64 {
        let mut d = Daemon::start_in(dir.take().unwrap(), &[]);
        // Let some writes complete, then kill at a varying moment.
        while last_saved_generation(&d.log_text()).is_none_or(|g| g <= previous) {
            std::thread::sleep(Duration::from_millis(2));
        }
        std::thread::sleep(Duration::from_micros(500 + (round * 7919) % 20_000));
        d.kill();
        // The log pipe is closed: every line the daemon wrote is in.
        std::thread::sleep(Duration::from_millis(20));
        let completed = last_saved_generation(&d.log_text()).unwrap();
        let bytes = std::fs::read(&vault_path).unwrap();
        let doc: serde_json::Value = serde_json::from_slice(&bytes).unwrap_or_else(|e| {
            panic!(
                "round {round}: vault does not parse ({e}):\n{}",
                String::from_utf8_lossy(&bytes)
            )
        });
        let generation = doc["generation"].as_u64().unwrap();
        // The file holds the last completed write, or the one that was
        // being renamed into place when the kill came.
        assert!(
            generation == completed || generation == completed + 1,
            "round {round}: vault holds generation {generation}, last completed write was {completed}"
        );
        assert!(doc["imps"]["churn"]["data"]["generation"].is_u64());
        previous = generation;
        dir = Some(std::mem::replace(&mut d.dir, tempfile::tempdir().unwrap()));
    }
}
