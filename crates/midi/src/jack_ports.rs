//! Listing the ports of a running JACK server.
//!
//! A short-lived client (never starting a server:
//! `ClientOptions::NO_START_SERVER`) asks the server named by
//! `JACK_DEFAULT_SERVER` (or the default one) for its ports and closes again.
//! The engine owns the long-lived JACK client and its process callback;
//! this module only tells the realm which ports exist, to match the name
//! patterns of `realm.toml` and to notice unplugged devices.
//!
//! `libjack` is loaded at run time (the `jack` crate's `dynamic_loading`),
//! so a machine without JACK installed gets [`MidiError::JackUnavailable`]
//! too, not a failure to start.

use crate::alsa::Direction;
use crate::error::MidiError;

/// The JACK port type of MIDI ports.
pub const MIDI_TYPE: &str = "8 bit raw midi";

/// A JACK port.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct JackPortInfo {
    /// Full name, `client:port` (e.g. `seq:out`, `system:midi_capture_1`).
    pub name: String,
    /// Seen from this program, as in [`crate::alsa::list_ports`]: a JACK
    /// *output* port (it produces data, like a controller's or
    /// `jack_midiseq`'s `out`) is a [`Direction::In`] for us, a JACK
    /// *input* port (a synth's `midi_in`) is a [`Direction::Out`].
    pub direction: Direction,
    /// The port is hardware (JACK's `IsPhysical` flag).
    pub is_physical: bool,
    /// The JACK port type, e.g. [`MIDI_TYPE`] or `32 bit float mono audio`.
    pub port_type: String,
    /// The port's aliases (e.g. the ALSA name of a bridged hardware port).
    pub aliases: Vec<String>,
}

/// Lists the MIDI ports of the running JACK server.
///
/// Ordinary threads: connects and disconnects a client, allocates.
///
/// # Errors
/// [`MidiError::JackUnavailable`] when no server runs (or libjack is missing).
pub fn list_ports() -> Result<Vec<JackPortInfo>, MidiError> {
    list(Some(MIDI_TYPE))
}

/// Lists every port of the running JACK server (audio and MIDI).
///
/// Ordinary threads: connects and disconnects a client, allocates.
///
/// # Errors
/// [`MidiError::JackUnavailable`] when no server runs (or libjack is missing).
pub fn list_all_ports() -> Result<Vec<JackPortInfo>, MidiError> {
    list(None)
}

fn list(port_type: Option<&str>) -> Result<Vec<JackPortInfo>, MidiError> {
    let (client, _status) = jack::Client::new(
        "impresario-list",
        jack::ClientOptions::NO_START_SERVER,
    )
    .map_err(|e| {
        let server = std::env::var("JACK_DEFAULT_SERVER").unwrap_or_else(|_| "default".into());
        MidiError::JackUnavailable {
            detail: format!("server {server:?}: {e}"),
        }
    })?;
    // `jack_get_ports` takes a regular expression; the MIDI type has no
    // special characters.
    let names = client.ports(None, port_type, jack::PortFlags::empty());
    let mut out = Vec::with_capacity(names.len());
    for name in names {
        // A port can vanish between the listing and this look-up.
        let Some(port) = client.port_by_name(&name) else {
            continue;
        };
        let flags = port.flags();
        out.push(JackPortInfo {
            direction: if flags.contains(jack::PortFlags::IS_OUTPUT) {
                Direction::In
            } else {
                Direction::Out
            },
            is_physical: flags.contains(jack::PortFlags::IS_PHYSICAL),
            port_type: port.port_type().unwrap_or_default(),
            aliases: port.aliases().unwrap_or_default(),
            name,
        });
    }
    Ok(out)
}
