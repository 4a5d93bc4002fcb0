//! The control socket and the CLI against wrong paths, broken files and
//! misbehaving clients.

mod common;
use common::*;
use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::net::UnixStream;
use std::process::Command;
use std::time::{Duration, Instant};

const MON: &str = "[imps.a]\nlibrary = \"monitor\"\nconfig = { log = false }\n";

fn run_to_exit(dir: &std::path::Path) -> std::process::Output {
    let mut child = Command::new(binary())
        .arg("run")
        .arg("--realm")
        .arg(dir.join("realm.toml"))
        .current_dir(dir)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("the daemon started although it should not have");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    child.wait_with_output().unwrap()
}

#[test]
fn a_socket_path_on_a_regular_file_is_refused_and_the_file_is_intact() {
    let dir = Daemon::prepare(&["monitor"]);
    let vault = dir.path().join("vault.json");
    std::fs::write(&vault, b"{\"precious\": true}").unwrap();
    std::fs::write(
        dir.path().join("realm.toml"),
        format!("[realm]\nlibrary_dir = \"libs\"\nsocket = \"vault.json\"\n{MON}"),
    )
    .unwrap();
    let out = run_to_exit(dir.path());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(err.contains("is not a socket"), "{err}");
    assert_eq!(std::fs::read(&vault).unwrap(), b"{\"precious\": true}");
}

#[test]
fn a_failed_start_leaves_no_socket_and_says_its_cause_once() {
    let dir = Daemon::prepare(&["monitor"]);
    // The vault cannot be opened: a directory is in its place.
    std::fs::create_dir(dir.path().join("vault.json")).unwrap();
    std::fs::write(dir.path().join("realm.toml"), realm_text(MON)).unwrap();
    let out = run_to_exit(dir.path());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{err}");
    assert!(
        !dir.path().join("impresario.sock").exists(),
        "stale socket left:\n{err}"
    );
    let last = err.lines().last().unwrap_or_default();
    assert_eq!(
        last.matches("Is a directory").count(),
        1,
        "the cause is printed once: {last}"
    );
}

fn connect(d: &Daemon) -> UnixStream {
    let s = UnixStream::connect(d.path("impresario.sock")).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    s
}

fn reply_line(s: &UnixStream) -> serde_json::Value {
    let mut line = String::new();
    BufReader::new(s).read_line(&mut line).unwrap();
    serde_json::from_str(&line).unwrap_or_else(|e| panic!("{e}: {line:?}"))
}

fn threads(pid: u64) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/task"))
        .unwrap()
        .count()
}

#[test]
fn garbage_oversized_and_idle_clients_get_errors_and_bounded_resources() {
    use std::os::unix::fs::PermissionsExt;
    let d = Daemon::start(&["monitor"], MON);
    let s0 = d.wait_for("a to thaw", |s| imp_of(s, "a")["state"] == "thawed");
    let pid = s0["pid"].as_u64().unwrap();
    let mode = std::fs::metadata(d.path("impresario.sock"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);

    // Undecodable bytes and bad JSON: an error reply, not silence.
    for garbage in [
        &b"\xff\xfe\x00garbage\n"[..],
        b"{nonsense\n",
        b"{\"cmd\": \"dance\"}\n",
    ] {
        let mut s = connect(&d);
        s.write_all(garbage).unwrap();
        let r = reply_line(&s);
        assert!(
            r["error"]
                .as_str()
                .is_some_and(|e| e.starts_with("bad request")),
            "{garbage:?}: {r}"
        );
    }

    // 10 MB without a newline: refused once it passes the cap, not buffered.
    let mut s = connect(&d);
    let chunk = vec![b'x'; 1 << 20];
    let mut sent = 0;
    for _ in 0..10 {
        match s.write_all(&chunk) {
            Ok(()) => sent += chunk.len(),
            Err(_) => break, // the daemon closed the connection
        }
    }
    let mut rest = String::new();
    let _ = BufReader::new(&s).read_line(&mut rest);
    assert!(
        rest.contains("request longer than"),
        "{rest:?} after {sent} bytes"
    );

    // 200 clients that send nothing.
    let base = threads(pid);
    let idle: Vec<UnixStream> = (0..200).map(|_| connect(&d)).collect();
    std::thread::sleep(Duration::from_millis(500));
    let during = threads(pid);
    assert!(
        during <= base + 33,
        "{during} threads with 200 idle clients (from {base})"
    );
    // Every one of them is answered: too many, or timed out.
    for mut c in idle {
        let mut text = String::new();
        let _ = c.read_to_string(&mut text);
        assert!(
            text.contains("too many clients") || text.contains("no request within"),
            "{text:?}"
        );
    }
    d.wait_for("the daemon to answer again", |_| true);
    // The client threads end (each after its answer; on a loaded machine
    // that can take a moment).
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while threads(pid) > base + 1 {
        assert!(
            std::time::Instant::now() < deadline,
            "client threads did not end: {} threads (from {base})",
            threads(pid)
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn the_cli_finds_its_daemon_through_a_broken_realm_file() {
    let dir = Daemon::prepare(&["monitor"]);
    std::fs::write(
        dir.path().join("realm.toml"),
        format!(
            "[realm]\nlibrary_dir = \"libs\"\nsocket = \"ctl.sock\" # not the default\n{FAST}\n{MON}"
        ),
    )
    .unwrap();
    let mut d = Daemon::start_in(dir, &[]);
    d.wait_for("a to thaw", |s| imp_of(s, "a")["state"] == "thawed");
    // A syntax error below the socket line.
    let broken = format!(
        "[realm]\nlibrary_dir = \"libs\"\nsocket = \"ctl.sock\" # not the default\n{FAST}\n\
         [imps.a]\nlibrary = \"monitor\nconfig = {{ log = false }}\n"
    );
    std::fs::write(d.realm(), broken).unwrap();
    d.wait_for("the rejection", |s| s["realm_error"].is_string());
    let out = d.cli(&["status"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(text.contains("REJECTED"), "{text}");
    let out = d.cli(&["stop"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let status = d.child.take().unwrap().wait().unwrap();
    assert!(status.success());
    assert!(!d.path("ctl.sock").exists());
}

#[test]
fn no_jack_server_is_one_info_line_not_errors() {
    let d = Daemon::start(&["monitor"], MON);
    d.wait_for("a to thaw", |s| imp_of(s, "a")["state"] == "thawed");
    let log = d.log_text();
    if log.contains("MIDI backend: jack") {
        eprintln!("SKIPPED: a JACK server runs on this machine; the probe found it");
        return;
    }
    assert!(!log.contains("jack::logging"), "{log}");
    assert!(!log.contains("ERROR"), "{log}");
    assert_eq!(log.matches("MIDI backend:").count(), 1, "{log}");
}

#[test]
fn send_delivers_only_well_formed_midi_messages() {
    let d = Daemon::start(&["monitor"], MON);
    d.wait_for("a to thaw", |s| imp_of(s, "a")["state"] == "thawed");
    for (args, why) in [
        (&["90"][..], "needs 3 bytes"),
        (&["f0"], "a SysEx is f0"),
        (&["0x0x90"], "not a hexadecimal byte"),
        (&["+90"], "not a hexadecimal byte"),
    ] {
        let mut cmd = vec!["send", "a"];
        cmd.extend_from_slice(args);
        let out = d.cli(&cmd);
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{args:?} was sent");
        assert!(err.contains(why), "{args:?}: {err}");
    }
    // The daemon checks too (other clients than the CLI).
    let socket = d.path("impresario.sock");
    for bytes in [
        vec![0x90],
        vec![0xf0],
        vec![0xf0, 0x80, 0xf7],
        vec![0x90, 0x3c],
        vec![0x3c, 0x64, 0x00],
    ] {
        let r = realm::control::request(
            &socket,
            &realm::Request::Send {
                imp: "a".into(),
                bytes: bytes.clone(),
            },
        )
        .unwrap();
        assert!(matches!(r, realm::Reply::Error(_)), "{bytes:?}: {r:?}");
    }
    d.send("a", &["ff"]);
    d.send("a", &["90", "3c", "64"]);
    let s = d.wait_for("two events", |s| imp_of(s, "a")["status"]["total"] == 2);
    assert_eq!(imp_of(&s, "a")["status"]["counts"]["note_on"], 1);
}
