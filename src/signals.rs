//! Signals of the daemon.
//!
//! - **SIGHUP** re-reads `realm.toml` now (the daemon convention; closing
//!   the terminal the daemon runs in does not stop it).
//! - **Every other signal whose default action ends the process** (SIGINT,
//!   SIGTERM, SIGQUIT, SIGUSR1, SIGUSR2, SIGALRM, SIGVTALRM, SIGPROF,
//!   SIGXCPU, SIGXFSZ, SIGPWR, SIGIO, SIGSTKFLT) starts the same graceful
//!   stop as `impresario stop`: imps frozen (their notes ended), the vault
//!   saved, the socket removed. Not handled: SIGKILL and SIGSTOP (they
//!   cannot be), the fault signals a bug raises (SIGSEGV, SIGBUS, SIGILL,
//!   SIGFPE, SIGABRT, SIGTRAP, SIGSYS) and the real-time signals.
//! - **A second one during the stop** (a hung imp, a stuck device) exits at
//!   once, after writing the newest vault data if the vault is not itself
//!   stuck (2 s at most); exit status 128 + the signal.
//!
//! The handlers are installed first thing in `run`, before the backend,
//! the libraries or the realm start, so a signal in the first milliseconds
//! of a start stops it cleanly too.

use realm::Message;
use signal_hook::consts::*;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::Sender;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

/// The signals that stop the daemon gracefully.
pub const STOPPING: &[i32] = &[
    SIGINT,
    SIGTERM,
    SIGQUIT,
    SIGUSR1,
    SIGUSR2,
    SIGALRM,
    SIGVTALRM,
    SIGPROF,
    SIGXCPU,
    SIGXFSZ,
    libc::SIGPWR,
    SIGIO,
    libc::SIGSTKFLT,
];

/// The signal's name, e.g. `SIGTERM`.
pub fn name(signal: i32) -> String {
    signal_hook::low_level::signal_name(signal)
        .map(str::to_string)
        .unwrap_or_else(|| format!("signal {signal}"))
}

/// What the signal thread shares with `run`.
pub struct SignalState {
    stopping: AtomicBool,
    emergency: OnceLock<vault::EmergencySave>,
    socket: OnceLock<std::path::PathBuf>,
}

impl SignalState {
    /// True once a stop was asked for by a signal.
    pub fn stopping(&self) -> bool {
        self.stopping.load(Ordering::Acquire)
    }

    /// Hands over the vault's emergency writer once the realm exists.
    pub fn set_emergency(&self, save: vault::EmergencySave) {
        let _ = self.emergency.set(save);
    }

    /// The control socket, removed by an exit at once too.
    pub fn set_socket(&self, path: std::path::PathBuf) {
        let _ = self.socket.set(path);
    }
}

/// Installs the handlers and starts the thread that turns signals into
/// messages for the realm's loop (queued until the loop runs).
pub fn install(tx: Sender<Message>) -> std::io::Result<Arc<SignalState>> {
    let mut all = STOPPING.to_vec();
    all.push(SIGHUP);
    let mut signals = signal_hook::iterator::Signals::new(&all)?;
    let state = Arc::new(SignalState {
        stopping: AtomicBool::new(false),
        emergency: OnceLock::new(),
        socket: OnceLock::new(),
    });
    let shared = state.clone();
    std::thread::Builder::new()
        .name("impresario-signals".into())
        .spawn(move || {
            for signal in signals.forever() {
                if signal == SIGHUP {
                    tracing::info!("SIGHUP: re-reading the realm file");
                    let _ = tx.send(Message::Reread);
                    continue;
                }
                if !shared.stopping.swap(true, Ordering::AcqRel) {
                    tracing::info!("{}: stopping (send it again to exit at once)", name(signal));
                    let _ = tx.send(Message::Shutdown);
                    continue;
                }
                exit_now(&shared, signal);
            }
        })?;
    Ok(state)
}

/// The second signal: write the vault if it can be, and exit.
fn exit_now(state: &SignalState, signal: i32) -> ! {
    match state.emergency.get() {
        Some(save) => match save.save(Duration::from_secs(2)) {
            Ok(generation) => tracing::warn!(
                "{} again during the stop: exiting now; vault saved (generation {generation})",
                name(signal)
            ),
            Err(e) => tracing::error!(
                "{} again during the stop: exiting now; VAULT NOT SAVED ({e})",
                name(signal)
            ),
        },
        None => tracing::warn!(
            "{} again while starting: exiting now (nothing to save yet)",
            name(signal)
        ),
    }
    if let Some(socket) = state.socket.get() {
        let _ = std::fs::remove_file(socket);
    }
    std::process::exit(128 + signal)
}
