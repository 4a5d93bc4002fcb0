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

/// Waits (60 s at most) until the daemon's log holds `needle` `count` times.
pub fn wait_log(d: &Daemon, needle: &str, count: usize) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while d.log_text().matches(needle).count() < count {
        assert!(
            Instant::now() < deadline,
            "timed out waiting for `{needle}` x{count} in the log:\n{}",
            d.log_text()
        );
        std::thread::sleep(Duration::from_millis(20));
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

impl super::JackServer {
    /// Ends the server as a crash (`SIGKILL`) or as a user stopping it
    /// (`SIGTERM`), and every peer client with it.
    pub fn end_server(&mut self, signal: i32) {
        if let Some(mut c) = self.child.take() {
            // SAFETY: signalling our own child process.
            unsafe { libc::kill(c.id() as i32, signal) };
            let _ = c.wait();
        }
        for p in &mut self.peers {
            let _ = p.kill();
            let _ = p.wait();
        }
        self.peers.clear();
    }

    /// Starts the server again under the same name (after [`Self::end_server`]).
    pub fn restart(&mut self) {
        assert!(self.child.is_none(), "the server still runs");
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let child = std::process::Command::new("jackd")
                .args([
                    "-n", &self.name, "-R", "-P", "70", "-p", "32", "-d", "dummy", "-r", "48000",
                    "-p", "128",
                ])
                .stdin(std::process::Stdio::null())
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::null())
                .spawn()
                .expect("jackd");
            self.child = Some(child);
            let ok = self
                .command("jack_wait")
                .args(["-w", "-t", "10"])
                .output()
                .expect("jack_wait");
            if ok.status.success() {
                return;
            }
            eprintln!("jackd did not come back at the first try; trying again");
            self.end_server(libc::SIGKILL);
            assert!(
                Instant::now() < deadline,
                "the JACK server does not restart"
            );
        }
    }
}
