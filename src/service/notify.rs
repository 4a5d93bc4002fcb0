//! systemd's `sd_notify` protocol, without libsystemd: one datagram per
//! message to the Unix socket named by `$NOTIFY_SOCKET` (a path, or an
//! abstract-namespace name written with a leading `@`).
//!
//! The daemon sends `READY=1` once the realm is up, `WATCHDOG=1` from the
//! supervisor's loop every `$WATCHDOG_USEC / 2` while the engine cycles
//! (a loop that hangs, or an engine clock that stops, stops the pings and
//! systemd restarts the service), and `STOPPING=1` when the stop begins.
//! Without `$NOTIFY_SOCKET` (not started by systemd) nothing is sent.

use realm::{LoopEvent, Realm};
use std::ffi::OsStr;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::net::{SocketAddr, UnixDatagram};
use std::time::{Duration, Instant};

/// A connection to the service manager's notification socket.
pub struct Notifier {
    socket: UnixDatagram,
    addr: SocketAddr,
    name: String,
}

impl Notifier {
    /// The notifier `$NOTIFY_SOCKET` names, if set. An unusable value is
    /// logged and treated as unset.
    pub fn from_env() -> Option<Notifier> {
        let value = std::env::var_os("NOTIFY_SOCKET")?;
        match Notifier::open(&value) {
            Ok(n) => Some(n),
            Err(e) => {
                tracing::warn!(
                    "NOTIFY_SOCKET={}: {e}; systemd will not hear that the daemon is ready",
                    value.to_string_lossy()
                );
                None
            }
        }
    }

    /// A notifier for the socket `value` names (`/path` or `@abstract`).
    pub fn open(value: &OsStr) -> io::Result<Notifier> {
        let addr = address(value)?;
        let socket = UnixDatagram::unbound()?;
        Ok(Notifier {
            socket,
            addr,
            name: value.to_string_lossy().into_owned(),
        })
    }

    /// Sends one message, e.g. `READY=1` (lines of `KEY=value`).
    pub fn send(&self, message: &str) -> io::Result<()> {
        let sent = self.socket.send_to_addr(message.as_bytes(), &self.addr)?;
        if sent != message.len() {
            return Err(io::Error::other("the message was cut short"));
        }
        Ok(())
    }

    /// Sends `message`, logging a failure (a notification is never worth
    /// stopping the daemon for).
    fn tell(&self, message: &str) {
        if let Err(e) = self.send(message) {
            tracing::warn!("cannot notify systemd at {} ({message:?}): {e}", self.name);
        }
    }
}

/// The socket address of a `$NOTIFY_SOCKET` value.
fn address(value: &OsStr) -> io::Result<SocketAddr> {
    let bytes = value.as_bytes();
    match bytes.first() {
        Some(b'@') => {
            use std::os::linux::net::SocketAddrExt;
            SocketAddr::from_abstract_name(&bytes[1..])
        }
        Some(b'/') => SocketAddr::from_pathname(value),
        _ => Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "not an absolute path or an @abstract socket name",
        )),
    }
}

/// The watchdog ping interval systemd asks for: half of `$WATCHDOG_USEC`,
/// if set, positive, and (when `$WATCHDOG_PID` is set) meant for `pid`.
pub fn watchdog_interval(usec: Option<&str>, for_pid: Option<&str>, pid: u32) -> Option<Duration> {
    if let Some(p) = for_pid {
        if p.trim().parse::<u32>().ok() != Some(pid) {
            return None;
        }
    }
    let usec: u64 = usec?.trim().parse().ok()?;
    (usec > 0).then(|| Duration::from_micros(usec / 2))
}

/// When to ping the watchdog: once per interval, and only when the engine
/// ran cycles since the last ping.
pub struct Watchdog {
    interval: Duration,
    next: Instant,
    cycles_at_ping: u64,
    stalled_said: bool,
}

impl Watchdog {
    /// A watchdog that pings first at `start` if the engine cycled by then.
    pub fn new(interval: Duration, start: Instant, cycles: u64) -> Watchdog {
        Watchdog {
            interval,
            next: start,
            cycles_at_ping: cycles,
            stalled_said: false,
        }
    }

    /// True when a `WATCHDOG=1` is due now, given the engine's cycle count.
    pub fn due(&mut self, now: Instant, cycles: u64) -> bool {
        if now < self.next {
            return false;
        }
        if cycles == self.cycles_at_ping {
            if !self.stalled_said {
                self.stalled_said = true;
                tracing::error!(
                    "the engine has not run a cycle for {:.1} s: no watchdog ping, systemd will restart \
                     the service if it stays so",
                    self.interval.as_secs_f64()
                );
            }
            return false;
        }
        self.stalled_said = false;
        self.cycles_at_ping = cycles;
        self.next = now + self.interval;
        true
    }
}

/// Tells systemd (if it started us) that the realm is up, and has the
/// realm's loop ping the watchdog and announce the stop.
pub fn attach(realm: &mut Realm, reconcile: Duration) {
    let Some(notifier) = Notifier::from_env() else {
        return;
    };
    let interval = watchdog_interval(
        std::env::var("WATCHDOG_USEC").ok().as_deref(),
        std::env::var("WATCHDOG_PID").ok().as_deref(),
        std::process::id(),
    );
    notifier.tell("READY=1\nSTATUS=realm is up");
    tracing::info!("told systemd the realm is ready ({})", notifier.name);
    let mut watchdog = interval.map(|i| {
        if reconcile >= i {
            tracing::warn!(
                "reconcile_ms ({} ms) is not shorter than half the watchdog period ({} ms): pings \
                 will be late; raise WatchdogSec= or lower reconcile_ms",
                reconcile.as_millis(),
                i.as_millis()
            );
        }
        // The first ping waits for the first engine cycles after READY.
        Watchdog::new(i, Instant::now(), 0)
    });
    realm.set_observer(Box::new(move |event| match event {
        LoopEvent::Tick { engine_cycles } => {
            if let Some(w) = watchdog.as_mut() {
                if w.due(Instant::now(), engine_cycles) {
                    notifier.tell("WATCHDOG=1");
                }
            }
        }
        LoopEvent::Stopping => notifier.tell("STOPPING=1\nSTATUS=stopping"),
    }));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn interval_is_half_of_watchdog_usec_for_this_pid() {
        let half = Some(Duration::from_secs(5));
        assert_eq!(watchdog_interval(Some("10000000"), None, 7), half);
        assert_eq!(watchdog_interval(Some("10000000"), Some("7"), 7), half);
        assert_eq!(watchdog_interval(Some("10000000"), Some("8"), 7), None);
        assert_eq!(watchdog_interval(Some("0"), None, 7), None);
        assert_eq!(watchdog_interval(Some("x"), None, 7), None);
        assert_eq!(watchdog_interval(None, None, 7), None);
    }

    #[test]
    fn pings_once_per_interval_and_only_while_the_engine_cycles() {
        let t0 = Instant::now();
        let ms = Duration::from_millis;
        let mut w = Watchdog::new(ms(100), t0, 0);
        assert!(!w.due(t0, 0), "no cycle yet");
        assert!(w.due(t0 + ms(10), 5));
        assert!(!w.due(t0 + ms(50), 9), "interval not over");
        assert!(w.due(t0 + ms(110), 12));
        assert!(!w.due(t0 + ms(300), 12), "the engine stopped");
        assert!(!w.due(t0 + ms(400), 12), "still stopped");
        assert!(w.due(t0 + ms(450), 13), "cycling again");
    }

    #[test]
    fn path_and_abstract_addresses() {
        use std::os::linux::net::SocketAddrExt;
        let a = address(OsStr::new("@sd/notify")).unwrap();
        assert_eq!(a.as_abstract_name(), Some(&b"sd/notify"[..]));
        let p = address(OsStr::new("/run/systemd/notify")).unwrap();
        assert_eq!(
            p.as_pathname(),
            Some(std::path::Path::new("/run/systemd/notify"))
        );
        assert!(address(OsStr::new("relative")).is_err());
        assert!(address(OsStr::new("")).is_err());
    }

    #[test]
    fn messages_reach_an_abstract_socket() {
        use std::os::linux::net::SocketAddrExt;
        let name = format!("impresario-test-{}", std::process::id());
        let listener =
            UnixDatagram::bind_addr(&SocketAddr::from_abstract_name(name.as_bytes()).unwrap())
                .unwrap();
        let n = Notifier::open(OsStr::new(&format!("@{name}"))).unwrap();
        n.send("READY=1").unwrap();
        let mut buf = [0u8; 64];
        let len = listener.recv(&mut buf).unwrap();
        assert_eq!(&buf[..len], b"READY=1");
    }
}
