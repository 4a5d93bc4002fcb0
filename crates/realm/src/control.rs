//! The control socket: a Unix socket (mode 0600 from the moment it exists)
//! through which `impresario status`, `reload`, `send` and `stop` talk to
//! the daemon. One JSON request line in, one JSON reply line out.
//!
//! Limits, so that no client can hurt the daemon: a request line is at most
//! [`MAX_REQUEST`] bytes; at most [`MAX_CLIENTS`] clients are served at once
//! (one short-lived thread each; more are answered with an error and
//! closed); a client that sends nothing for [`IDLE_TIMEOUT`] is closed.
//! Bytes that are not a request get an error reply, never silence.

use crate::protocol::{Reply, Request};
use crate::supervisor::Message;
use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{self, Sender};
use std::sync::Arc;
use std::time::Duration;

/// The longest request line accepted, in bytes.
pub const MAX_REQUEST: usize = 64 * 1024;
/// How many clients are served at once.
pub const MAX_CLIENTS: usize = 32;
/// How long a client may stay silent before it is closed.
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(5);

/// Errors talking to the daemon.
#[derive(Debug, thiserror::Error)]
pub enum ControlError {
    /// No daemon listens on the socket.
    #[error("no impresario daemon answers on {path} ({source}); start one with `impresario run`")]
    NotRunning {
        /// The socket.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// The exchange failed half-way.
    #[error("talking to the daemon on {path}: {source}")]
    Io {
        /// The socket.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// The daemon's answer is not understood.
    #[error("the daemon on {path} answered something unexpected: {reason}")]
    Protocol {
        /// The socket.
        path: PathBuf,
        /// What was wrong.
        reason: String,
    },
}

/// The bound control socket. Dropping it removes the socket file (if it is
/// still the one this daemon bound), so that a daemon that stops, or fails
/// to start, leaves nothing behind.
pub struct ControlSocket {
    path: PathBuf,
    ino: u64,
}

impl Drop for ControlSocket {
    fn drop(&mut self) {
        if std::fs::symlink_metadata(&self.path).is_ok_and(|m| m.ino() == self.ino) {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

/// Binds the socket and serves it on a thread, passing requests to the
/// supervisor through `tx`. Refuses to replace a socket a live daemon
/// holds, and anything at `path` that is not a socket.
pub fn serve(path: &Path, tx: Sender<Message>) -> std::io::Result<ControlSocket> {
    if let Ok(meta) = std::fs::symlink_metadata(path) {
        if !meta.file_type().is_socket() {
            return Err(std::io::Error::new(
                std::io::ErrorKind::AlreadyExists,
                format!(
                    "{} exists and is not a socket; impresario never replaces it: \
                     choose another `socket` path in realm.toml",
                    path.display()
                ),
            ));
        }
        if UnixStream::connect(path).is_ok() {
            return Err(std::io::Error::new(
                std::io::ErrorKind::AddrInUse,
                format!(
                    "another impresario daemon is running on {}; stop it with `impresario stop` first",
                    path.display()
                ),
            ));
        }
        // A stale socket from a daemon that was killed.
        std::fs::remove_file(path)?;
    }
    // The socket gets mode 0600 as it is created: no moment in which
    // another user could connect. (umask is per process; nothing else
    // creates files at this point of the start.)
    // SAFETY: umask has no preconditions.
    let old_mask = unsafe { libc::umask(0o177) };
    let bound = UnixListener::bind(path);
    // SAFETY: as above.
    unsafe { libc::umask(old_mask) };
    let listener = bound?;
    let ino = std::fs::symlink_metadata(path)?.ino();
    let socket = ControlSocket {
        path: path.to_path_buf(),
        ino,
    };
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))?;
    let clients = Arc::new(AtomicUsize::new(0));
    std::thread::Builder::new()
        .name("impresario-control".into())
        .spawn(move || {
            for stream in listener.incoming() {
                let Ok(mut stream) = stream else { continue };
                let _ = stream.set_write_timeout(Some(IDLE_TIMEOUT));
                if clients.fetch_add(1, Ordering::AcqRel) >= MAX_CLIENTS {
                    clients.fetch_sub(1, Ordering::AcqRel);
                    let _ = write_reply(
                        &mut stream,
                        &Reply::Error(format!(
                            "too many clients (at most {MAX_CLIENTS} at once); try again"
                        )),
                    );
                    continue;
                }
                let tx = tx.clone();
                let count = clients.clone();
                // One short-lived thread per client keeps a slow client from
                // blocking the others; their number is bounded above.
                let spawned = std::thread::Builder::new()
                    .name("impresario-client".into())
                    .spawn(move || {
                        serve_client(stream, tx);
                        count.fetch_sub(1, Ordering::AcqRel);
                    });
                if spawned.is_err() {
                    clients.fetch_sub(1, Ordering::AcqRel);
                }
            }
        })?;
    Ok(socket)
}

fn write_reply(stream: &mut UnixStream, reply: &Reply) -> std::io::Result<()> {
    let mut text = serde_json::to_string(reply).expect("replies serialise");
    text.push('\n');
    stream.write_all(text.as_bytes())
}

fn serve_client(stream: UnixStream, tx: Sender<Message>) {
    let _ = stream.set_read_timeout(Some(IDLE_TIMEOUT));
    let mut writer = match stream.try_clone() {
        Ok(w) => w,
        Err(_) => return,
    };
    let mut reader = BufReader::new(stream);
    let mut line = Vec::new();
    loop {
        line.clear();
        let read = (&mut reader)
            .take(MAX_REQUEST as u64 + 1)
            .read_until(b'\n', &mut line);
        match read {
            Ok(0) => return,
            Ok(_) => {}
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                let _ = write_reply(
                    &mut writer,
                    &Reply::Error(format!(
                        "no request within {} s: closing",
                        IDLE_TIMEOUT.as_secs()
                    )),
                );
                return;
            }
            Err(_) => return,
        }
        // A line without newline is either too long, or the client's last
        // (it closed the connection): that one is answered.
        if line.last() != Some(&b'\n') && line.len() > MAX_REQUEST {
            let _ = write_reply(
                &mut writer,
                &Reply::Error(format!(
                    "request longer than {MAX_REQUEST} bytes: refused, closing"
                )),
            );
            return;
        }
        let reply = match serde_json::from_slice::<Request>(&line) {
            Ok(request) => {
                let (rtx, rrx) = mpsc::channel();
                if tx.send(Message::Request(request, rtx)).is_err() {
                    Reply::Error(
                        "the daemon is shutting down; the request was not carried out".into(),
                    )
                } else {
                    match rrx.recv_timeout(Duration::from_secs(60)) {
                        Ok(reply) => reply,
                        Err(mpsc::RecvTimeoutError::Disconnected) => Reply::Error(
                            "the daemon is shutting down; the request was not carried out".into(),
                        ),
                        Err(mpsc::RecvTimeoutError::Timeout) => {
                            Reply::Error("the daemon did not answer in time".into())
                        }
                    }
                }
            }
            Err(e) => Reply::Error(match std::str::from_utf8(&line) {
                Ok(_) => format!("bad request: {e}"),
                Err(_) => "bad request: not UTF-8 (one JSON object per line)".into(),
            }),
        };
        if write_reply(&mut writer, &reply).is_err() {
            return;
        }
    }
}

/// Sends one request to the daemon listening on `path` and waits for the reply.
pub fn request(path: &Path, request: &Request) -> Result<Reply, ControlError> {
    let io = |source| ControlError::Io {
        path: path.to_path_buf(),
        source,
    };
    let mut stream = UnixStream::connect(path).map_err(|source| ControlError::NotRunning {
        path: path.to_path_buf(),
        source,
    })?;
    let mut text = serde_json::to_string(request).expect("requests serialise");
    text.push('\n');
    stream.write_all(text.as_bytes()).map_err(io)?;
    let mut line = String::new();
    BufReader::new(stream).read_line(&mut line).map_err(io)?;
    serde_json::from_str(&line).map_err(|e| ControlError::Protocol {
        path: path.to_path_buf(),
        reason: e.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_request_cut_off_by_shutdown_says_so() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.sock");
        let (tx, rx) = mpsc::channel();
        let socket = serve(&path, tx).unwrap();
        // The supervisor takes the request and stops without answering.
        let supervisor = std::thread::spawn(move || {
            let first = rx.recv().unwrap();
            drop(first);
            drop(rx);
        });
        let reply = request(&path, &Request::Status).unwrap();
        supervisor.join().unwrap();
        match reply {
            Reply::Error(e) => assert!(e.contains("shutting down"), "{e}"),
            other => panic!("{other:?}"),
        }
        // After it is gone entirely, too.
        let reply = request(&path, &Request::Status).unwrap();
        assert!(
            matches!(&reply, Reply::Error(e) if e.contains("shutting down")),
            "{reply:?}"
        );
        drop(socket);
        assert!(!path.exists(), "the socket is removed with its handle");
    }

    #[test]
    fn a_regular_file_at_the_socket_path_is_never_removed() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("vault.json");
        std::fs::write(&path, b"precious").unwrap();
        let (tx, _rx) = mpsc::channel();
        let err = serve(&path, tx).err().expect("refused");
        assert!(err.to_string().contains("not a socket"), "{err}");
        assert_eq!(std::fs::read(&path).unwrap(), b"precious");
    }
}
