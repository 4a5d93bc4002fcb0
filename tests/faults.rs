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

/// A chaos imp (holds the notes it passes) feeding a logging monitor.
const HELD: &str = "[imps.src]\nlibrary = \"chaos\"\nconfig = { churn = true }\n\n\
    [imps.mon]\nlibrary = \"monitor\"\nconfig = { label = \"heard\", log = true }\n\n\
    [[wires]]\nfrom = \"src\"\nto = \"mon\"\n";

/// Starts a realm holding a note, sends `sig`, checks the graceful stop:
/// note-off heard, vault saved with the newest data, socket gone, exit 0.
fn graceful_stop_on(sig: i32) {
    let mut d = Daemon::start(&["chaos", "monitor"], HELD);
    d.send("src", &["90", "3c", "64"]);
    d.wait_for("the note to be heard", |s| {
        imp_of(s, "mon")["status"]["counts"]["note_on"] == 1
    });
    let generation = d.imp("src")["status"]["generation"].as_u64().unwrap();
    signal(&d, sig);
    let status = wait_exit(&mut d, Duration::from_secs(20))
        .unwrap_or_else(|| panic!("signal {sig}: still running\n{}", d.log_text()));
    let log = d.log_text();
    assert!(status.success(), "signal {sig}: {status:?}\n{log}");
    assert!(log.contains(": stopping"), "{log}");
    assert!(
        log.contains("heard: note-off ch1 C4"),
        "signal {sig}: the held note was not ended\n{log}"
    );
    assert!(log.contains("vault saved to"), "{log}");
    let doc = read_vault(&d.path("vault.json"));
    assert!(
        doc["imps"]["src"]["data"]["generation"].as_u64() >= Some(generation),
        "signal {sig}: the vault lacks the newest data: {doc:#}"
    );
    assert!(
        !d.path("impresario.sock").exists(),
        "signal {sig}: socket left behind"
    );
}

#[test]
fn sigint_stops_gracefully() {
    graceful_stop_on(libc::SIGINT);
}

#[test]
fn sigterm_stops_gracefully() {
    graceful_stop_on(libc::SIGTERM);
}

#[test]
fn sigquit_stops_gracefully() {
    graceful_stop_on(libc::SIGQUIT);
}

#[test]
fn sigusr1_stops_gracefully() {
    graceful_stop_on(libc::SIGUSR1);
}

#[test]
fn sigusr2_stops_gracefully() {
    graceful_stop_on(libc::SIGUSR2);
}

#[test]
fn sighup_rereads_the_realm_file_and_keeps_running() {
    // Reconcile once a minute: only the signal can make the edit apply now.
    let dir = Daemon::prepare(&["monitor"]);
    let text =
        |body: &str| format!("[realm]\nlibrary_dir = \"libs\"\nreconcile_ms = 60000\n\n{body}");
    std::fs::write(
        dir.path().join("realm.toml"),
        text("[imps.a]\nlibrary = \"monitor\"\n"),
    )
    .unwrap();
    let mut d = Daemon::start_in(dir, &[]);
    std::fs::write(
        d.realm(),
        text("[imps.a]\nlibrary = \"monitor\"\n[imps.b]\nlibrary = \"monitor\"\n"),
    )
    .unwrap();
    signal(&d, libc::SIGHUP);
    let started = Instant::now();
    d.wait_for("imp b to come up", |s| imp_of(s, "b")["state"] == "thawed");
    assert!(started.elapsed() < Duration::from_secs(30));
    assert!(d.is_running());
    assert!(
        d.log_text().contains("SIGHUP: re-reading"),
        "{}",
        d.log_text()
    );
    assert!(d.stop().success());
}

#[test]
fn a_second_signal_during_a_hung_stop_exits_at_once_with_the_vault_saved() {
    let mut d = Daemon::start(
        &["chaos"],
        "[imps.stuck]\nlibrary = \"chaos\"\nconfig = { churn = true, hang_in_freeze_ms = 60000 }\n",
    );
    d.wait_for("a vault write", |s| {
        s["vault"]["writes"].as_u64() >= Some(1)
    });
    signal(&d, libc::SIGTERM);
    // The stop hangs in the imp's freeze.
    std::thread::sleep(Duration::from_millis(500));
    assert!(d.is_running(), "the stop should hang here");
    // What the imp had when the stop began (polled every tick until then).
    let last_seen = std::fs::read(d.path("vault.json")).unwrap();
    let last_seen: serde_json::Value = serde_json::from_slice(&last_seen).unwrap();
    let sent = Instant::now();
    signal(&d, libc::SIGINT);
    let status = wait_exit(&mut d, Duration::from_secs(10)).expect("exits at once");
    assert!(sent.elapsed() < Duration::from_secs(5));
    assert_eq!(status.code(), Some(128 + libc::SIGINT), "{status:?}");
    let log = d.log_text();
    assert!(log.contains("exiting now; vault saved"), "{log}");
    let doc = read_vault(&d.path("vault.json"));
    assert!(
        doc["generation"].as_u64() > last_seen["generation"].as_u64(),
        "the emergency save wrote a new generation"
    );
    assert!(
        doc["imps"]["stuck"]["data"]["generation"].as_u64()
            >= last_seen["imps"]["stuck"]["data"]["generation"].as_u64()
    );
    assert!(!d.path("impresario.sock").exists(), "socket left behind");
}

#[test]
fn a_sigterm_in_the_first_milliseconds_of_a_start_stops_cleanly() {
    let mut before_the_socket = 0;
    for round in 0..5 {
        let dir = Daemon::prepare(&["chaos", "monitor"]);
        std::fs::write(dir.path().join("realm.toml"), realm_text(HELD)).unwrap();
        let mut child = std::process::Command::new(binary())
            .arg("run")
            .arg("--realm")
            .arg(dir.path().join("realm.toml"))
            .current_dir(dir.path())
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        // As soon as the handler is in place (before the realm is up).
        let deadline = Instant::now() + Duration::from_secs(10);
        while !catches(child.id(), libc::SIGTERM) {
            assert!(Instant::now() < deadline, "no SIGTERM handler");
            std::thread::sleep(Duration::from_micros(200 + round * 500));
        }
        let socket_existed = dir.path().join("impresario.sock").exists();
        // SAFETY: signalling our own child process.
        unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
        let status = child.wait().unwrap();
        assert!(
            status.success(),
            "round {round}: {status:?} (realm up when signalled: {socket_existed})"
        );
        assert!(!dir.path().join("impresario.sock").exists());
        before_the_socket += usize::from(!socket_existed);
    }
    // The handlers come before anything slow: the signal usually lands
    // before the control socket exists.
    assert!(
        before_the_socket > 0,
        "the handler was installed only after the socket, in every round"
    );
}

const JACK_REALM: &str = "[imps.out]\nlibrary = \"midi_port\"\n\
    config = { direction = \"out\", name = \"to-synth\", connect = \"synth\" }\n\n\
    [imps.keys]\nlibrary = \"midi_port\"\nconfig = { direction = \"in\" }\n\n\
    [imps.mon]\nlibrary = \"monitor\"\nconfig = { log = false }\n\n\
    [[wires]]\nfrom = \"keys\"\nto = \"mon\"\n";

fn total(s: &serde_json::Value) -> u64 {
    imp_of(s, "mon")["status"]["total"].as_u64().unwrap_or(0)
}

/// The peers of the JACK test: a synth (`jack_midi_dump`) the `out` imp
/// connects to, and a sequencer playing C4 twice a second that the test
/// connects to impresario's own `keys` port (as a user would).
fn start_peers(jack: &mut JackServer) {
    jack.spawn("jack_midi_dump", &["synth"], std::process::Stdio::null());
    jack.spawn(
        "jack_midiseq",
        &["seq", "24000", "0", "60", "8000"],
        std::process::Stdio::null(),
    );
}

#[test]
fn a_jack_server_that_goes_away_and_comes_back() {
    let mut jack = JackServer::start();
    start_peers(&mut jack);
    let dir = Daemon::prepare(&["midi_port", "monitor"]);
    std::fs::write(
        dir.path().join("realm.toml"),
        format!("[realm]\nlibrary_dir = \"libs\"\nmidi_backend = \"jack\"\n{FAST}\n{JACK_REALM}"),
    )
    .unwrap();
    let (k, v) = jack.env();
    let mut d = Daemon::start_in(dir, &[(k, v)]);
    d.wait_for("both ports", |s| {
        imp_of(s, "out")["state"] == "thawed" && imp_of(s, "keys")["state"] == "thawed"
    });
    let connect = |jack: &JackServer| {
        let deadline = Instant::now() + Duration::from_secs(10);
        while !jack
            .command("jack_connect")
            .args(["seq:out", "impresario:keys"])
            .status()
            .unwrap()
            .success()
        {
            assert!(Instant::now() < deadline, "cannot connect seq:out");
            std::thread::sleep(Duration::from_millis(100));
        }
    };
    connect(&jack);
    let heard = total(&d.status());
    d.wait_for("the sequencer to be heard", |s| total(s) >= heard + 2);

    for (round, how) in [(0, libc::SIGKILL), (1, libc::SIGTERM)] {
        jack.end_server(how);
        let s = d.wait_for("the port imps to freeze", |s| {
            imp_of(s, "out")["state"] == "frozen" && imp_of(s, "keys")["state"] == "frozen"
        });
        wait_log(&d, "the JACK server went away", round + 1);
        // The realm carries on, on the internal clock.
        let cycles = s["engine"]["cycles"].as_u64().unwrap();
        // Note-ons only: the note-off that ends what the port was playing
        // when the server went away may still be on its way to the count.
        let note_ons = |s: &serde_json::Value| {
            imp_of(s, "mon")["status"]["counts"]["note_on"]
                .as_u64()
                .unwrap_or(0)
        };
        let before = note_ons(&s);
        d.send("mon", &["90", "40", "40"]);
        let s = d.wait_for("the monitor to count on the internal clock", |s| {
            note_ons(s) == before + 1
        });
        assert!(s["engine"]["cycles"].as_u64().unwrap() > cycles);
        assert!(
            imp_of(&s, "out")["last_error"]
                .as_str()
                .is_some_and(|e| e.contains("went away") || e.contains("JACK server is gone")),
            "{s:#}"
        );

        // The server comes back (and the peers with it).
        jack.restart();
        start_peers(&mut jack);
        d.wait_for("the port imps to thaw", |s| {
            imp_of(s, "out")["state"] == "thawed" && imp_of(s, "keys")["state"] == "thawed"
        });
        wait_log(&d, "the JACK server is back", round + 1);
        // Connections: the `connect` pattern, and what the user had connected.
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let ports = jack.ports();
            if ports.contains("impresario:to-synth\n   synth:input")
                && ports.contains("impresario:keys\n   seq:out")
            {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "round {round}: connections not restored:\n{ports}\n{}",
                d.log_text()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        let heard = total(&d.status());
        d.wait_for("the sequencer to be heard again", |s| total(s) >= heard + 2);
    }
    assert!(d.stop().success(), "{}", d.log_text());
}
