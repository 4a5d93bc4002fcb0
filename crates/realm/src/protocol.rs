//! Requests to the running daemon over its control socket: one JSON line
//! in, one JSON line out.

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// A request to the daemon.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(tag = "cmd", rename_all = "kebab-case")]
pub enum Request {
    /// Everything `impresario status` shows.
    Status,
    /// Respawn the library of this imp (and so every imp of that library).
    Reload {
        /// The imp's name.
        imp: String,
    },
    /// Deliver raw MIDI bytes to an imp at the start of the next block.
    Send {
        /// The imp's name.
        imp: String,
        /// One MIDI message (1 to 3 bytes).
        bytes: Vec<u8>,
    },
    /// A control message (JSON) for an imp; the reply is the imp's.
    Control {
        /// The imp's name.
        imp: String,
        /// The message.
        message: Value,
    },
    /// Freeze everything, save the vault and exit.
    Shutdown,
}

/// The daemon's answer.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "kebab-case")]
pub enum Reply {
    /// It worked; the payload depends on the request.
    Ok(Value),
    /// It did not; the message says why and what to do.
    Error(String),
}
