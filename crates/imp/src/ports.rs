//! MIDI ports, opened through the host.
//!
//! The host's MIDI backend (JACK, ALSA or the in-process loopback) owns the
//! ports; an imp asks for one in `thaw` and gets a [`Port`] that stays open
//! until it is dropped (in `freeze`). The port is bound to the imp's RT part:
//! events arriving on an input port are the RT part's input (at their
//! sample offset), events the RT part emits go out of an output port.

use crate::abi::{BytesRef, PORT_NOT_READY};
use crate::error::ImpError;
use serde::{Deserialize, Serialize};

/// Direction of a port, seen from impresario.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Direction {
    /// MIDI comes in (from a keyboard).
    In,
    /// MIDI goes out (to a synth).
    Out,
}

/// What port to open.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PortSpec {
    /// In or out.
    pub direction: Direction,
    /// Name of impresario's own port (JACK port, ALSA virtual port).
    pub name: String,
    /// Case-insensitive pattern of the system port to connect to (a part of
    /// its name, e.g. `"microfreak"`). `None`: only create impresario's own
    /// (virtual) port, for others to connect to.
    #[serde(default)]
    pub connect: Option<String>,
    /// Output ports: only events on this numbered output of the imp leave
    /// through the port (`None`: every event the imp emits). An imp with
    /// a device port and wires to other imps (a controller sending notes to
    /// the bard and LED messages to its device) binds the port to one
    /// output.
    #[serde(default)]
    pub output: Option<u8>,
    /// Input ports: the input number the port's events arrive on at the
    /// imp (an imp with two input ports tells them apart by it).
    #[serde(default)]
    pub input: u8,
}

impl PortSpec {
    /// A port taking every output of the imp (out) or arriving on input 0 (in).
    pub fn new(direction: Direction, name: impl Into<String>, connect: Option<String>) -> PortSpec {
        PortSpec {
            direction,
            name: name.into(),
            connect,
            output: None,
            input: 0,
        }
    }
}

/// An open port; closed when dropped.
#[derive(Debug)]
pub struct Port {
    id: i64,
}

impl Port {
    /// Opens a port for the imp being thawed. Call from `Imp::thaw` only.
    /// Absent devices give an [`ImpError::not_ready`], so the realm retries.
    pub fn open(spec: &PortSpec) -> Result<Port, ImpError> {
        let Some(host) = crate::host::host() else {
            return Err(ImpError::invalid(
                "no host: ports can only be opened inside impresario",
            ));
        };
        let json = serde_json::to_vec(spec)?;
        let mut err = [0u8; 512];
        let mut len = 0usize;
        // SAFETY: valid pointers for the call; the host writes at most err.len() bytes.
        let id = unsafe {
            (host.port_open)(
                BytesRef::from_slice(&json),
                err.as_mut_ptr(),
                err.len(),
                &mut len,
            )
        };
        if id >= 0 {
            return Ok(Port { id });
        }
        let reason = String::from_utf8_lossy(&err[..len.min(err.len())]).into_owned();
        if id == PORT_NOT_READY {
            Err(ImpError::not_ready(reason))
        } else {
            Err(ImpError::invalid(reason))
        }
    }

    /// True while the port and the device it is bound to are there. Use in
    /// `poll`: when it turns false, return [`ImpError::not_ready`].
    pub fn is_alive(&self) -> bool {
        // SAFETY: plain call with a valid id.
        crate::host::host().is_some_and(|h| unsafe { (h.port_alive)(self.id) } != 0)
    }
}

impl Drop for Port {
    fn drop(&mut self) {
        if let Some(h) = crate::host::host() {
            // SAFETY: closes the port this value owns, once.
            unsafe { (h.port_close)(self.id) };
        }
    }
}
