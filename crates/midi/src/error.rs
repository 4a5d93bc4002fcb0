//! Typed errors of the crate.

use thiserror::Error;

/// Why a byte slice is not a valid [`ShortMessage`](crate::ShortMessage).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
pub enum MessageError {
    /// The slice holds no byte.
    #[error("empty MIDI message")]
    Empty,
    /// The first byte is a data byte, SysEx start/end or an undefined status byte.
    #[error("byte {0:#04X} is not the status byte of a short MIDI message")]
    InvalidStatus(u8),
    /// The number of bytes does not match the status byte.
    #[error("MIDI status {status:#04X} needs {expected} bytes, got {got}")]
    WrongLength {
        /// The status byte.
        status: u8,
        /// Bytes the status needs, status included.
        expected: usize,
        /// Bytes given.
        got: usize,
    },
    /// A data byte has its top bit set.
    #[error("MIDI data byte {0:#04X} is out of range (must be below 0x80)")]
    DataByteOutOfRange(u8),
}

/// Errors of the port backends (ALSA through midir, JACK listing).
///
/// Every variant's message says what is missing and what to do about it.
#[derive(Debug, Error)]
pub enum MidiError {
    /// The ALSA sequencer cannot be opened.
    #[error(
        "ALSA sequencer not available ({detail}): is the snd-seq kernel module loaded \
         (`modprobe snd-seq`) and is /dev/snd/seq readable by this user (group `audio`)? \
         On a machine without a sound card use the jack or loopback backend"
    )]
    AlsaUnavailable {
        /// What was found missing, e.g. "/dev/snd/seq missing".
        detail: String,
    },
    /// No port name contains the pattern (case-insensitive).
    #[error(
        "no MIDI {direction} port matches {pattern:?} (case-insensitive substring); available: {available:?}"
    )]
    PortNotFound {
        /// "input" or "output".
        direction: &'static str,
        /// The pattern searched for.
        pattern: String,
        /// The names of the ports that exist now.
        available: Vec<String>,
    },
    /// The port exists but the backend refused to connect to it, or to create a virtual port.
    #[error("cannot open MIDI {direction} port {port:?}: {reason}")]
    Connect {
        /// "input" or "output".
        direction: &'static str,
        /// Port name (or the virtual port's name).
        port: String,
        /// The backend's reason.
        reason: String,
    },
    /// Virtual ports are not supported on this platform (Windows).
    #[error(
        "virtual MIDI ports are not supported on this platform: create a loopMIDI port \
         named {0:?} and connect to it by name instead"
    )]
    VirtualUnsupported(String),
    /// The sender thread could not be started.
    #[error("cannot start the MIDI sender thread: {0}")]
    Thread(#[from] std::io::Error),
    /// No JACK server runs (or the client could not connect to it).
    #[error(
        "no JACK server running ({detail}): start one (e.g. `jackd -d alsa` or `jackd -d dummy`), \
         check JACK_DEFAULT_SERVER, or use the alsa or loopback backend"
    )]
    JackUnavailable {
        /// What the JACK library reported.
        detail: String,
    },
}
