//! The control socket: a Unix socket (mode 0600) through which
//! `impresario status`, `reload`, `send` and `stop` talk to the daemon.
//! One JSON request line in, one JSON reply line out.

use crate::protocol::{Reply, Request};
use crate::supervisor::Message;
use std::io::{BufRead, BufReader, Write};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::mpsc::{self, Sender};
use std::time::Duration;

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

/// Binds the socket and serves it on a thread, passing requests to the
/// supervisor through `tx`. Refuses to replace a socket a live daemon holds.
pub fn serve(path: &Path, tx: Sender<Message>) -> std::io::Result<std::thread::JoinHandle<()>> {
    if path.exists() {
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
    let listener = UnixListener::bind(path)?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))?;
    std::thread::Builder::new()
        .name("impresario-control".into())
        .spawn(move || {
            for stream in listener.incoming() {
                let Ok(stream) = stream else { continue };
                let tx = tx.clone();
                // One short-lived thread per client keeps a slow client from
                // blocking the others.
                let _ = std::thread::Builder::new()
                    .name("impresario-client".into())
                    .spawn(move || serve_client(stream, tx));
            }
        })
}

fn serve_client(stream: UnixStream, tx: Sender<Message>) {
    let _ = stream.set_read_timeout(Some(Duration::from_secs(30)));
    let mut writer = match stream.try_clone() {
        Ok(w) => w,
        Err(_) => return,
    };
    let reader = BufReader::new(stream);
    for line in reader.lines() {
        let Ok(line) = line else { return };
        let reply = match serde_json::from_str::<Request>(&line) {
            Ok(request) => {
                let (rtx, rrx) = mpsc::channel();
                if tx.send(Message::Request(request, rtx)).is_err() {
                    Reply::Error("the daemon is shutting down".into())
                } else {
                    rrx.recv_timeout(Duration::from_secs(60))
                        .unwrap_or_else(|_| {
                            Reply::Error("the daemon did not answer in time".into())
                        })
                }
            }
            Err(e) => Reply::Error(format!("bad request: {e}")),
        };
        let mut text = serde_json::to_string(&reply).expect("replies serialise");
        text.push('\n');
        if writer.write_all(text.as_bytes()).is_err() {
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
