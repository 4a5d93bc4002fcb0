//! systemd readiness and watchdog: the daemon's `sd_notify` messages reach a
//! `NOTIFY_SOCKET` the test listens on, in order.

mod common;
use common::*;
use std::os::unix::net::UnixDatagram;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const MON: &str = "[imps.a]\nlibrary = \"monitor\"\nconfig = { log = false }\n";

type Heard = Arc<Mutex<Vec<(Instant, String)>>>;

/// Collects every datagram until `STOPPING=1` (or 60 s).
fn listen(socket: UnixDatagram) -> (Heard, std::thread::JoinHandle<()>) {
    let heard: Heard = Arc::default();
    let sink = heard.clone();
    socket
        .set_read_timeout(Some(Duration::from_millis(100)))
        .unwrap();
    let thread = std::thread::spawn(move || {
        let end = Instant::now() + Duration::from_secs(60);
        let mut buf = [0u8; 4096];
        while Instant::now() < end {
            if let Ok(n) = socket.recv(&mut buf) {
                let text = String::from_utf8_lossy(&buf[..n]).into_owned();
                let last = text.lines().any(|l| l == "STOPPING=1");
                sink.lock().unwrap().push((Instant::now(), text));
                if last {
                    return;
                }
            }
        }
    });
    (heard, thread)
}

fn first_lines(heard: &Heard) -> Vec<String> {
    heard
        .lock()
        .unwrap()
        .iter()
        .map(|(_, m)| m.lines().next().unwrap_or("").to_string())
        .collect()
}

#[test]
fn ready_then_watchdog_pings_then_stopping() {
    let dir = Daemon::prepare(&["monitor"]);
    std::fs::write(dir.path().join("realm.toml"), realm_text(MON)).unwrap();
    let path = dir.path().join("notify.sock");
    let (heard, thread) = listen(UnixDatagram::bind(&path).unwrap());
    // 200 ms watchdog: a ping every 100 ms; the test realm ticks every 50.
    let mut d = Daemon::start_in(
        dir,
        &[
            ("NOTIFY_SOCKET", path.to_str().unwrap()),
            ("WATCHDOG_USEC", "200000"),
        ],
    );
    let deadline = Instant::now() + Duration::from_secs(20);
    while first_lines(&heard)
        .iter()
        .filter(|m| *m == "WATCHDOG=1")
        .count()
        < 6
    {
        assert!(
            Instant::now() < deadline,
            "no watchdog pings: {:?}\n{}",
            first_lines(&heard),
            d.log_text()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(d.stop().success());
    thread.join().unwrap();
    let lines = first_lines(&heard);
    assert_eq!(
        lines.first().map(String::as_str),
        Some("READY=1"),
        "{lines:?}"
    );
    assert_eq!(
        lines.last().map(String::as_str),
        Some("STOPPING=1"),
        "{lines:?}"
    );
    let middle = &lines[1..lines.len() - 1];
    assert!(middle.len() >= 6, "{lines:?}");
    assert!(middle.iter().all(|m| m == "WATCHDOG=1"), "{lines:?}");
    // Paced at WATCHDOG_USEC / 2: never closer than the interval (less
    // what the receiving thread's wake-ups can shift, 30 ms at most here),
    // and far fewer pings than loop ticks (50 ms).
    let heard = heard.lock().unwrap();
    let pings: Vec<Instant> = heard
        .iter()
        .filter(|(_, m)| m == "WATCHDOG=1")
        .map(|(t, _)| *t)
        .collect();
    let span = *pings.last().unwrap() - pings[0];
    assert!(
        span >= Duration::from_millis(100) * (pings.len() as u32 - 1) - Duration::from_millis(30),
        "{} pings in {span:?}: faster than one per 100 ms",
        pings.len()
    );
    assert!(heard[0].1.contains("STATUS="), "{:?}", heard[0].1);
    // journald-friendly: stderr is a pipe here, as under systemd, so the
    // log carries no colour codes.
    let log = d.log_text();
    assert!(log.contains("told systemd the realm is ready"), "{log}");
    assert!(!log.contains('\x1b'), "ANSI escapes in the log:\n{log}");
}

#[test]
fn abstract_socket_without_watchdog_gets_ready_and_stopping_only() {
    use std::os::linux::net::SocketAddrExt;
    let name = format!("impresario-notify-test-{}", std::process::id());
    let addr = std::os::unix::net::SocketAddr::from_abstract_name(name.as_bytes()).unwrap();
    let (heard, thread) = listen(UnixDatagram::bind_addr(&addr).unwrap());
    let dir = Daemon::prepare(&["monitor"]);
    std::fs::write(dir.path().join("realm.toml"), realm_text(MON)).unwrap();
    let mut d = Daemon::start_in(dir, &[("NOTIFY_SOCKET", &format!("@{name}"))]);
    // Several loop ticks without a watchdog asked for.
    d.wait_for("ten reconcile ticks", |s| {
        s["reconcile_ticks"].as_u64().unwrap_or(0) >= 10
    });
    assert!(d.stop().success());
    thread.join().unwrap();
    assert_eq!(first_lines(&heard), ["READY=1", "STOPPING=1"]);
}
