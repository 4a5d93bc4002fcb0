//! Messages between imps, through the real daemon: ordered, never
//! duplicated, and every drop counted, while both imps are respawned again
//! and again, and while the receiver is frozen.

mod common;

use common::Daemon;
use serde_json::Value;
use std::time::Duration;

/// The receiver's record of letters from `route` (`<sender>/<via>`).
fn track(status: &Value, imp: &str, route: &str) -> Value {
    common::imp_of(status, imp)["status"]["received"][route].clone()
}

fn n(v: &Value) -> u64 {
    v.as_u64().unwrap_or(0)
}

#[test]
fn letters_both_ways_while_both_imps_are_respawned_arrive_in_order_once() {
    let mut d = Daemon::start(
        &["letters"],
        r#"
[imps.a]
library = "letters"
config = { to = "b", per_poll = 5, rt_every = 4, publish = true }

[imps.b]
library = "letters"
config = { to = "a", per_poll = 5, rt_every = 4, subscribe = "a" }
"#,
    );
    d.wait_for("letters from both parts of both imps", |s| {
        ["a/control", "a/rt"]
            .iter()
            .all(|r| n(&track(s, "b", r)["count"]) > 20)
            && ["b/control", "b/rt"]
                .iter()
                .all(|r| n(&track(s, "a", r)["count"]) > 20)
    });
    // Both imps are of one library: each new build respawns both at once.
    let lib = d.path("libs").join("libletters.so");
    for round in 1..=15u8 {
        let tmp = d.path("libs").join("libletters.so.tmp");
        std::fs::write(&tmp, common::another_build_of("letters", round)).unwrap();
        std::fs::rename(&tmp, &lib).unwrap();
        d.wait_for("the respawn onto the new build", |s| {
            common::imp_of(s, "a")["reload_count"] == round as u64
                && common::imp_of(s, "b")["reload_count"] == round as u64
        });
        std::thread::sleep(Duration::from_millis(30));
    }
    let before = d.status();
    let (b_ctl, b_rt) = (
        n(&track(&before, "b", "a/control")["count"]),
        n(&track(&before, "b", "a/rt")["count"]),
    );
    let s = d.wait_for("letters still flowing after the respawns", |s| {
        n(&track(s, "b", "a/control")["count"]) > b_ctl + 20
            && n(&track(s, "b", "a/rt")["count"]) > b_rt + 20
    });
    assert_eq!(common::imp_of(&s, "a")["reload_count"], 15, "{s:#}");
    let messages = &s["messages"];
    let dropped = n(&messages["dropped_full"]) + n(&messages["dropped_waiting"]);
    let mut missing = 0;
    for (imp, route) in [
        ("b", "a/control"),
        ("b", "a/rt"),
        ("a", "b/control"),
        ("a", "b/rt"),
    ] {
        let t = track(&s, imp, route);
        assert_eq!(t["duplicates"], 0, "{route} to {imp}: {t}");
        missing += n(&t["missing"]);
        // Every number up to the newest arrived once, or was dropped.
        assert_eq!(
            n(&t["count"]) + n(&t["missing"]),
            n(&t["last"]) + 1,
            "{route} to {imp}: {t}"
        );
    }
    assert_eq!(missing, dropped, "every gap is a counted drop: {messages}");
    assert_eq!(messages["undeliverable"], 0, "{messages}");
    assert_eq!(messages["refused"], 0, "{messages}");
    // The subscription lasts across the respawns: b hears a's newest state.
    let b = common::imp_of(&s, "b");
    assert!(n(&b["status"]["notifications"]) > 15, "{b:#}");
    assert!(n(&b["status"]["newest_state"]["n"]) > 0, "{b:#}");
    d.stop();
}

#[test]
fn letters_to_a_frozen_imp_wait_for_it_and_the_overflow_is_counted() {
    let dir = Daemon::prepare(&["letters"]);
    let device = dir.path().join("device");
    std::fs::write(&device, "").unwrap();
    std::fs::write(
        dir.path().join("realm.toml"),
        common::realm_text(&format!(
            r#"
[imps.a]
library = "letters"
config = {{ to = "b", per_poll = 20 }}

[imps.b]
library = "letters"
config = {{ device_file = "{}" }}

[imps.c]
library = "letters"
config = {{ to = "nobody", per_poll = 1 }}
"#,
            device.display()
        )),
    )
    .unwrap();
    let mut d = Daemon::start_in(dir, &[]);
    d.wait_for("b receiving", |s| {
        n(&track(s, "b", "a/control")["count"]) > 40
    });
    std::fs::remove_file(&device).unwrap();
    d.wait_for("b frozen", |s| common::imp_of(s, "b")["state"] == "frozen");
    // 20 letters per 50 ms poll: the waiting line (256) overflows in < 1 s.
    let s = d.wait_for("the waiting line full and overflowing", |s| {
        n(&s["messages"]["waiting"]) >= imp::mail::WAITING_CAPACITY as u64
            && n(&s["messages"]["dropped_waiting"]) > 100
    });
    assert!(
        n(&s["messages"]["undeliverable"]) > 0,
        "letters to `nobody`: {s:#}"
    );
    std::fs::write(&device, "").unwrap();
    let s = d.wait_for("b thawed with its letters delivered", |s| {
        common::imp_of(s, "b")["state"] == "thawed" && n(&s["messages"]["waiting"]) == 0
    });
    let s = d.wait_for("more letters after the thaw", |x| {
        n(&track(x, "b", "a/control")["count"]) > n(&track(&s, "b", "a/control")["count"]) + 40
    });
    let t = track(&s, "b", "a/control");
    assert_eq!(t["duplicates"], 0, "{t}");
    assert_eq!(
        n(&t["missing"]),
        n(&s["messages"]["dropped_waiting"]) + n(&s["messages"]["dropped_full"]),
        "every gap is a counted drop: {}",
        s["messages"]
    );
    assert!(n(&t["missing"]) > 0, "{t}");
    d.stop();
}
