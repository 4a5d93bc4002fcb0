//! Helpers of the fault tests (`tests/faults.rs`): signals, files, waiting.

use super::Daemon;
use serde_json::Value;
use std::path::Path;
use std::time::{Duration, Instant};

/// Sends `signal` to the daemon.
pub fn signal(d: &Daemon, signal: i32) {
    let pid = d.child.as_ref().expect("running").id() as i32;
    // SAFETY: signalling our own child process.
    unsafe { libc::kill(pid, signal) };
}

/// Waits (at most `limit`) for the daemon to exit; its exit status.
pub fn wait_exit(d: &mut Daemon, limit: Duration) -> Option<std::process::ExitStatus> {
    let deadline = Instant::now() + limit;
    let child = d.child.as_mut()?;
    loop {
        if let Ok(Some(status)) = child.try_wait() {
            d.child = None;
            // The log pipe closes with the process; let the reader catch up.
            std::thread::sleep(Duration::from_millis(50));
            return Some(status);
        }
        if Instant::now() > deadline {
            return None;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// The vault file's document (panics when it does not parse).
pub fn read_vault(path: &Path) -> Value {
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_slice(&bytes)
        .unwrap_or_else(|e| panic!("{} does not parse: {e}", path.display()))
}

/// Generation and bytes of each backup `vault.json.bak1..=n` that exists.
pub fn backups(vault: &Path, n: usize) -> Vec<(u64, Vec<u8>)> {
    (1..=n)
        .filter_map(|i| {
            let mut p = vault.as_os_str().to_owned();
            p.push(format!(".bak{i}"));
            let bytes = std::fs::read(p).ok()?;
            let doc: Value = serde_json::from_slice(&bytes).expect("backups parse");
            Some((doc["generation"].as_u64().unwrap(), bytes))
        })
        .collect()
}

/// True when the signal's handler is installed in process `pid`
/// (`SigCgt` in /proc/<pid>/status).
pub fn catches(pid: u32, signal: i32) -> bool {
    let Ok(text) = std::fs::read_to_string(format!("/proc/{pid}/status")) else {
        return false;
    };
    text.lines()
        .find_map(|l| l.strip_prefix("SigCgt:"))
        .and_then(|mask| u64::from_str_radix(mask.trim(), 16).ok())
        .is_some_and(|mask| mask & (1 << (signal - 1)) != 0)
}
