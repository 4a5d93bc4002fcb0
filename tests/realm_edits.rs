//! Editing realm.toml while the daemon runs.

mod common;
use common::*;

const ONE: &str = "[imps.a]\nlibrary = \"monitor\"\nconfig = { label = \"a\" }\n";

#[test]
fn invalid_edit_is_rejected_with_location_and_the_realm_is_kept() {
    let d = Daemon::start(&["monitor"], ONE);
    let before = d.wait_for("a to thaw", |s| imp_of(s, "a")["state"] == "thawed");

    // A syntax error: the unterminated string is on line 9 of the file the harness writes.
    let text = realm_text("[imps.a]\nlibrary = \"monitor\n");
    let line = text
        .lines()
        .position(|l| l.starts_with("library = \"monitor"))
        .unwrap()
        + 1;
    std::fs::write(d.realm(), &text).unwrap();
    let s = d.wait_for("the rejection", |s| s["realm_error"].is_string());
    let err = s["realm_error"].as_str().unwrap();
    let realm = d.realm();
    assert!(
        err.starts_with(&format!("{}:{line}:", realm.display())),
        "{err}"
    );
    assert_eq!(
        imp_of(&s, "a")["build_id"],
        imp_of(&before, "a")["build_id"]
    );
    assert_eq!(imp_of(&s, "a")["state"], "thawed");
    assert_eq!(s["imps"].as_array().unwrap().len(), 1);

    // A semantic error: a wire to an imp that does not exist.
    let text = realm_text(&format!(
        "{ONE}[imps.b]\nlibrary = \"monitor\"\n[[wires]]\nfrom = \"a\"\nto = \"c\"\n"
    ));
    let line = text.lines().position(|l| l == "to = \"c\"").unwrap() + 1;
    std::fs::write(d.realm(), &text).unwrap();
    let s = d.wait_for("the second rejection", |s| {
        s["realm_error"].as_str().is_some_and(|e| e.contains("`c`"))
    });
    let err = s["realm_error"].as_str().unwrap();
    assert!(
        err.starts_with(&format!("{}:{line}:6:", realm.display())),
        "{err}"
    );
    assert!(
        imp_of(&s, "b").is_null(),
        "nothing of the rejected edit was applied"
    );

    // Fixing the file clears the error and applies it.
    std::fs::write(
        d.realm(),
        realm_text(&format!("{ONE}[imps.b]\nlibrary = \"monitor\"\n")),
    )
    .unwrap();
    d.wait_for("the fix to apply", |s| {
        s["realm_error"].is_null() && imp_of(s, "b")["state"] == "thawed"
    });
}

/// Polls until `pred`, and returns how many reconcile ticks passed between
/// the edit and the first status that shows it. Logical time, not wall clock.
fn ticks_until(d: &Daemon, edit: impl FnOnce(), pred: impl Fn(&serde_json::Value) -> bool) -> u64 {
    let t0 = d.status()["reconcile_ticks"].as_u64().unwrap();
    edit();
    let s = d.wait_for("the edit to apply", pred);
    s["reconcile_ticks"].as_u64().unwrap() - t0
}

#[test]
fn adding_and_removing_imps_takes_effect_within_one_reconcile_period() {
    let d = Daemon::start(&["monitor"], ONE);
    d.wait_for("a to thaw", |s| imp_of(s, "a")["state"] == "thawed");

    let added = ticks_until(
        &d,
        || {
            std::fs::write(
                d.realm(),
                realm_text(&format!("{ONE}[imps.b]\nlibrary = \"monitor\"\n")),
            )
            .unwrap()
        },
        |s| imp_of(s, "b")["state"] == "thawed",
    );
    // The edit lands somewhere inside a period; the next tick applies it.
    assert!(added <= 2, "adding took {added} reconcile ticks");

    d.send("b", &["90", "3c", "64"]);
    d.wait_for("b to count", |s| imp_of(s, "b")["status"]["total"] == 1);

    let removed = ticks_until(
        &d,
        || std::fs::write(d.realm(), realm_text(ONE)).unwrap(),
        |s| imp_of(s, "b").is_null(),
    );
    assert!(removed <= 2, "removing took {removed} reconcile ticks");
    assert_eq!(d.imp("a")["state"], "thawed");
}

#[test]
fn removed_imp_keeps_its_vault_data_and_gets_it_back() {
    let d = Daemon::start(
        &["monitor"],
        &format!("{ONE}[imps.b]\nlibrary = \"monitor\"\n"),
    );
    d.wait_for("b to thaw", |s| imp_of(s, "b")["state"] == "thawed");
    for _ in 0..3 {
        d.send("b", &["90", "3c", "64"]);
    }
    d.wait_for("b to count", |s| imp_of(s, "b")["status"]["total"] == 3);
    std::fs::write(d.realm(), realm_text(ONE)).unwrap();
    d.wait_for("b to go", |s| imp_of(s, "b").is_null());
    std::fs::write(
        d.realm(),
        realm_text(&format!("{ONE}[imps.b]\nlibrary = \"monitor\"\n")),
    )
    .unwrap();
    d.wait_for("b to come back with its counts", |s| {
        imp_of(s, "b")["status"]["total"] == 3
    });
}

#[test]
fn config_change_recreates_the_imp_with_its_state() {
    let d = Daemon::start(&["monitor"], ONE);
    d.wait_for("a to thaw", |s| imp_of(s, "a")["state"] == "thawed");
    d.send("a", &["90", "3c", "64"]);
    d.wait_for("a to count", |s| imp_of(s, "a")["status"]["total"] == 1);
    std::fs::write(
        d.realm(),
        realm_text("[imps.a]\nlibrary = \"monitor\"\nconfig = { label = \"renamed\" }\n"),
    )
    .unwrap();
    let s = d.wait_for("the new label", |s| {
        imp_of(s, "a")["status"]["label"] == "renamed"
    });
    assert_eq!(imp_of(&s, "a")["status"]["total"], 1);
}
