//! Faults, each against the real daemon: a vault that cannot be written,
//! large foreign vault data, every signal, a JACK server that goes away.

mod common;
use common::faults::*;
use common::*;
use std::time::{Duration, Instant};

/// A chaos imp whose vault data changes on every tick (50 ms), written at
/// most every 100 ms.
const CHURN: &str = "[imps.churn]\nlibrary = \"chaos\"\nconfig = { churn = true }\n";

fn vault_of(s: &serde_json::Value) -> &serde_json::Value {
    &s["vault"]
}

#[test]
fn a_directory_in_place_of_the_vault_keeps_the_backups_and_shows_in_status() {
    let mut d = Daemon::start(&["chaos"], CHURN);
    let vault = d.path("vault.json");
    // Enough writes for every backup to exist.
    d.wait_for("six vault writes", |s| {
        vault_of(s)["writes"].as_u64() >= Some(6)
    });

    // A directory where vault.json must go (root ignores permissions, so
    // this is the failure a root daemon meets too).
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let _ = std::fs::remove_file(&vault);
        if std::fs::create_dir(&vault).is_ok() {
            break;
        }
        assert!(Instant::now() < deadline, "cannot put a directory in place");
    }
    let s = d.wait_for("the vault to show as failing", |s| {
        vault_of(s)["failing"] == true
    });
    let error = vault_of(&s)["last_error"].as_str().unwrap().to_string();
    assert!(
        error.contains("is a directory") && error.contains("move it away"),
        "{error}"
    );
    let before = backups(&vault, 5);
    assert_eq!(before.len(), 5, "five backups");

    // Under churn, for a while: retried with backoff, nothing rotates.
    std::thread::sleep(Duration::from_millis(1500));
    let s = d.status();
    assert_eq!(vault_of(&s)["failing"], true, "{s:#}");
    assert!(vault_of(&s)["retry_in_ms"].is_u64(), "{s:#}");
    let attempts = vault_of(&s)["failed_attempts"].as_u64().unwrap();
    assert!(
        (2..=6).contains(&attempts),
        "backoff: {attempts} attempts in 1.5 s"
    );
    assert_eq!(
        backups(&vault, 5),
        before,
        "the backups must stay as they were"
    );
    assert!(
        !d.path("vault.json.tmp").exists(),
        "no stale temporary file"
    );
    let log = d.log_text();
    assert_eq!(
        log.matches("VAULT NOT SAVED").count(),
        1,
        "logged once per cause:\n{log}"
    );

    // Fixed: the next attempt saves, with the newest data.
    std::fs::remove_dir(&vault).unwrap();
    let s = d.wait_for("the vault to save again", |s| {
        vault_of(s)["failing"] == false && vault_of(s)["generation"].as_u64() > Some(before[0].0)
    });
    assert!(vault_of(&s)["last_error"].is_null());
    let doc = read_vault(&vault);
    assert!(doc["generation"].as_u64() > Some(before[0].0));
    assert!(d.log_text().contains("saved again"), "{}", d.log_text());

    // A failure at shutdown is reported as such, never as "saved".
    std::fs::remove_file(&vault).unwrap();
    std::fs::create_dir(&vault).unwrap();
    assert!(d.stop().success());
    std::thread::sleep(Duration::from_millis(50));
    let log = d.log_text();
    let last = log
        .lines()
        .rev()
        .find(|l| l.contains("realm stopped"))
        .unwrap_or("");
    assert!(last.contains("VAULT NOT SAVED"), "{log}");
    assert!(!log.contains("vault saved to"), "{log}");
}

#[test]
fn a_parent_that_became_a_file_is_reported_and_survived() {
    let dir = Daemon::prepare(&["chaos"]);
    std::fs::create_dir(dir.path().join("data")).unwrap();
    std::fs::write(
        dir.path().join("realm.toml"),
        realm_text(CHURN).replace("[realm]\n", "[realm]\nvault = \"data/vault.json\"\n"),
    )
    .unwrap();
    let d = Daemon::start_in(dir, &[]);
    d.wait_for("a vault write", |s| {
        vault_of(s)["writes"].as_u64() >= Some(1)
    });
    let data = d.path("data");
    std::fs::rename(&data, d.path("data.moved")).unwrap();
    std::fs::write(&data, b"not a directory").unwrap();
    let s = d.wait_for("the vault to show as failing", |s| {
        vault_of(s)["failing"] == true
    });
    assert!(
        vault_of(&s)["last_error"]
            .as_str()
            .is_some_and(|e| e.contains("not a directory")),
        "{s:#}"
    );
    std::fs::remove_file(&data).unwrap();
    std::fs::rename(d.path("data.moved"), &data).unwrap();
    d.wait_for("the vault to save again", |s| {
        vault_of(s)["failing"] == false
    });
}

/// A vault that holds `mb` MB of data of an imp that is not in the realm.
fn big_foreign_vault(dir: &std::path::Path, mb: usize) {
    let blob = "x".repeat(mb << 20);
    let doc = serde_json::json!({
        "version": 1,
        "generation": 7,
        "imps": { "ghost": { "library": "gone", "version": 1, "data": { "blob": blob } } }
    });
    std::fs::write(dir.join("vault.json"), serde_json::to_vec(&doc).unwrap()).unwrap();
}

#[test]
fn large_foreign_data_is_not_rewritten_and_status_answers_while_it_is() {
    let dir = Daemon::prepare(&["monitor", "chaos"]);
    big_foreign_vault(dir.path(), 50);
    std::fs::write(
        dir.path().join("realm.toml"),
        realm_text("[imps.mon]\nlibrary = \"monitor\"\n"),
    )
    .unwrap();
    let d = Daemon::start_in(dir, &[]);
    // Loading the library records its build: one write, then quiet.
    let s = d.wait_for("the vault to settle", |s| {
        vault_of(s)["dirty"] == false && vault_of(s)["writing"] == false
    });
    let writes = vault_of(&s)["writes"].as_u64().unwrap();
    let generation = vault_of(&s)["generation"].as_u64().unwrap();
    let modified = std::fs::metadata(d.path("vault.json"))
        .unwrap()
        .modified()
        .unwrap();
    std::thread::sleep(Duration::from_secs(2)); // 40 reconcile ticks
    let s = d.status();
    assert_eq!(vault_of(&s)["writes"].as_u64(), Some(writes), "{s:#}");
    assert_eq!(vault_of(&s)["generation"].as_u64(), Some(generation));
    assert_eq!(
        std::fs::metadata(d.path("vault.json"))
            .unwrap()
            .modified()
            .unwrap(),
        modified,
        "nothing changed, nothing is written"
    );

    // Now data changes all the time: each write carries 50 MB, and runs on
    // the vault's writer thread while status keeps answering.
    std::fs::write(
        d.realm(),
        realm_text(&format!("[imps.mon]\nlibrary = \"monitor\"\n{CHURN}")),
    )
    .unwrap();
    let mut answered_while_writing = 0;
    let deadline = Instant::now() + Duration::from_secs(60);
    while answered_while_writing < 3 {
        assert!(
            Instant::now() < deadline,
            "status never answered during a write"
        );
        let s = d.status();
        if vault_of(&s)["writing"] == true {
            answered_while_writing += 1;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    let s = d.wait_for("more writes", |s| {
        vault_of(s)["writes"].as_u64() >= Some(writes + 2)
    });
    assert!(vault_of(&s)["failing"] == false);
    let doc = read_vault(&d.path("vault.json"));
    assert_eq!(
        doc["imps"]["ghost"]["data"]["blob"].as_str().map(str::len),
        Some(50 << 20),
        "the foreign data is kept"
    );
}
