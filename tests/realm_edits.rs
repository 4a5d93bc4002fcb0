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

const CHAIN: &str = "[imps.bard]\nlibrary = \"bard\"\n\
    [imps.mon]\nlibrary = \"monitor\"\nconfig = { label = \"mon\", log = false }\n\
    [[wires]]\nfrom = \"bard\"\nto = \"mon\"\n";

#[test]
fn an_editor_saving_in_place_never_tears_the_realm_down() {
    use std::io::Write;
    let d = Daemon::start(&["bard", "monitor"], CHAIN);
    d.wait_for("the chain to thaw", |s| {
        imp_of(s, "bard")["state"] == "thawed" && imp_of(s, "mon")["state"] == "thawed"
    });
    // A held note: on, and never off.
    d.send("bard", &["90", "3c", "64"]);
    d.wait_for("the note to reach the monitor", |s| {
        imp_of(s, "mon")["status"]["counts"]["note_on"] == 1
    });
    let created = |log: &str| log.lines().filter(|l| l.contains(" created (")).count();
    let created_before = created(&d.log_text());

    // 50 saves the way many editors do them: truncate, then write (here in
    // two halves), with pauses a busy machine could put in between.
    for i in 0..50u64 {
        let text = realm_text(&format!("{CHAIN}# save {i}\n"));
        let (first, rest) = text.split_at(text.len() / 2);
        let mut f = std::fs::File::create(d.realm()).unwrap();
        std::thread::sleep(std::time::Duration::from_millis(5 + (i % 4) * 10));
        f.write_all(first.as_bytes()).unwrap();
        f.flush().unwrap();
        std::thread::sleep(std::time::Duration::from_millis(5 + (i % 3) * 10));
        f.write_all(rest.as_bytes()).unwrap();
        drop(f);
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    std::thread::sleep(std::time::Duration::from_millis(300));
    let s = d.status();
    let log = d.log_text();
    assert!(
        !log.contains(" removed (its vault data is kept)"),
        "an imp was removed:\n{log}"
    );
    assert_eq!(
        created(&log),
        created_before,
        "an imp was recreated:\n{log}"
    );
    let mon = imp_of(&s, "mon");
    assert_eq!(
        mon["status"]["counts"]["note_off"], 0,
        "the note was cut: {mon:#}"
    );
    assert_eq!(s["engine"]["note_offs_sent"], 0, "the engine ended notes");
    assert_eq!(imp_of(&s, "bard")["state"], "thawed");
    assert!(s["realm_error"].is_null(), "{}", s["realm_error"]);
}

#[test]
fn an_empty_file_keeps_the_imps_and_imps_equals_empty_removes_them() {
    let d = Daemon::start(&["monitor"], ONE);
    d.wait_for("a to thaw", |s| imp_of(s, "a")["state"] == "thawed");
    std::fs::write(d.realm(), "").unwrap();
    let s = d.wait_for("the refusal", |s| s["realm_error"].is_string());
    let err = s["realm_error"].as_str().unwrap();
    assert!(err.contains("empty `[imps]` table"), "{err}");
    assert_eq!(imp_of(&s, "a")["state"], "thawed");
    // The unmistakable way.
    std::fs::write(d.realm(), realm_text("[imps]\n")).unwrap();
    d.wait_for("every imp to go", |s| {
        s["realm_error"].is_null() && s["imps"].as_array().is_some_and(|a| a.is_empty())
    });
}

/// Line and column (1-based) of the first `needle` in `text`.
fn line_col_of(text: &str, needle: &str) -> (usize, usize) {
    let at = text.find(needle).unwrap_or_else(|| panic!("no `{needle}`"));
    let before = &text[..at];
    let line = before.matches('\n').count() + 1;
    let col = at - before.rfind('\n').map_or(0, |i| i + 1) + 1;
    (line, col)
}

#[test]
fn an_edit_with_any_error_changes_nothing_and_names_line_and_column() {
    let d = Daemon::start(&["monitor"], ONE);
    let before = d.wait_for("a to thaw", |s| imp_of(s, "a")["state"] == "thawed");
    d.send("a", &["90", "3c", "64"]);
    d.wait_for("a to count", |s| imp_of(s, "a")["status"]["total"] == 1);
    let b = "[imps.b]\nlibrary = \"monitor\"\n";
    let with = |body: &str| realm_text(&format!("{body}{b}"));
    // (file text, what the error points at, its column inside that, word in the message)
    let cases = [
        // The imp's own parser refuses the config; b comes with the same edit.
        (
            with("[imps.a]\nlibrary = \"monitor\"\nconfig = { label = \"a\", lable = \"x\" }\n"),
            "config = {",
            9,
            "lable",
        ),
        // A typo in `library`.
        (
            with("[imps.a]\nlibrary = \"monitr\"\nconfig = { label = \"a\" }\n"),
            "library = \"monitr\"",
            10,
            "monitr",
        ),
        // Range errors in [realm].
        (
            with(&format!("block_size = 0\n{ONE}")),
            "block_size = 0",
            13,
            "block_size",
        ),
        (
            with(&format!("midi_backend = \"oss\"\n{ONE}")),
            "midi_backend = ",
            15,
            "midi_backend",
        ),
        (
            with(&format!("sample_rate = 1\n{ONE}")),
            "sample_rate = 1",
            14,
            "sample_rate",
        ),
        (
            with(ONE).replace("reconcile_ms = 50", "reconcile_ms = 0"),
            "reconcile_ms = 0",
            15,
            "reconcile_ms",
        ),
    ];
    for (text, at, offset, word) in cases {
        let (line, col) = line_col_of(&text, at);
        let col = col + offset;
        std::fs::write(d.realm(), &text).unwrap();
        let s = d.wait_for("the rejection", |s| {
            s["realm_error"].as_str().is_some_and(|e| e.contains(word))
        });
        let err = s["realm_error"].as_str().unwrap();
        assert!(
            err.starts_with(&format!("{}:{line}:{col}:", d.realm().display())),
            "{word}: expected {line}:{col}: {err}"
        );
        let a = imp_of(&s, "a");
        assert_eq!(a["state"], "thawed", "{word}: {a:#}");
        assert_eq!(a["build_id"], imp_of(&before, "a")["build_id"]);
        assert_eq!(a["reload_count"], 0, "{word}: a was not recreated");
        assert_eq!(a["status"]["label"], "a", "{word}");
        assert_eq!(a["status"]["total"], 1, "{word}");
        assert!(imp_of(&s, "b").is_null(), "{word}: b was added");
        assert_eq!(s["imps"].as_array().unwrap().len(), 1);

        // Back to the applied text: the error is gone.
        std::fs::write(d.realm(), realm_text(ONE)).unwrap();
        d.wait_for("the error to clear", |s| s["realm_error"].is_null());
    }
    let log = d.log_text();
    assert!(!log.contains("imp a removed"), "{log}");
}

#[test]
fn an_edit_that_arrives_by_rename_is_applied() {
    let d = Daemon::start(&["monitor"], ONE);
    d.wait_for("a to thaw", |s| imp_of(s, "a")["state"] == "thawed");
    let tmp = d.path("realm.toml.swp");
    std::fs::write(
        &tmp,
        realm_text(&format!("{ONE}[imps.b]\nlibrary = \"monitor\"\n")),
    )
    .unwrap();
    std::fs::rename(&tmp, d.realm()).unwrap();
    d.wait_for("b to thaw", |s| imp_of(s, "b")["state"] == "thawed");
    assert!(d.log_text().contains("changed: applying"));
}
