//! # midi_port: a MIDI input or output port
//!
//! An input port imp brings a keyboard's MIDI into the realm: what arrives
//! on the port is this imp's input, at its sample offset, and the imp passes
//! it on along its wires. An output port imp sends what reaches it out of
//! the port, at its sample offset.
//!
//! ```toml
//! [imps.keys]                     # a system port, by name pattern
//! library = "midi_port"
//! config = { direction = "in", connect = "mpk mini" }
//!
//! [imps.synth]                    # impresario's own (virtual) port, for others to connect to
//! library = "midi_port"
//! config = { direction = "out", name = "to-synth" }
//! ```
//!
//! `connect` is a case-insensitive part of the system port's name. While no
//! port matches (the device is unplugged) the imp stays frozen; the realm
//! retries every thaw-retry period and connects when the device appears, and
//! an unplug freezes the imp again. `name` (default: the imp's name) is the
//! name of impresario's own port on JACK and of the virtual port on ALSA.
//!
//! On Windows there are no virtual ports: create a loopMIDI port and give
//! its name as `connect`.

use imp::ports::{Direction, Port, PortSpec};
use imp::{BlockContext, CreateContext, EventWriter, Imp, ImpError, RtEvent, RtPart};
use serde::Deserialize;
use serde_json::{json, Value};

/// The port imp's configuration.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// `in` or `out`.
    pub direction: Direction,
    /// Impresario's own port name (default: the imp's name).
    #[serde(default)]
    pub name: Option<String>,
    /// Pattern of the system port to connect to.
    #[serde(default)]
    pub connect: Option<String>,
}

/// The control part.
pub struct MidiPort {
    spec: PortSpec,
    port: Option<Port>,
}

/// The RT part: a cable. The engine does the port I/O for the slot.
pub struct Through;

impl Imp for MidiPort {
    type Config = Config;
    type Frozen = ();
    type Rt = Through;

    fn create(ctx: &CreateContext, config: Config, _: Option<()>) -> Result<Self, ImpError> {
        Ok(MidiPort {
            spec: PortSpec {
                direction: config.direction,
                name: config.name.unwrap_or_else(|| ctx.name().to_string()),
                connect: config.connect,
            },
            port: None,
        })
    }

    fn thaw(&mut self) -> Result<Option<Through>, ImpError> {
        self.port = Some(Port::open(&self.spec)?);
        tracing::info!(
            "port {} ({:?}) open{}",
            self.spec.name,
            self.spec.direction,
            self.spec
                .connect
                .as_deref()
                .map(|c| format!(", connected to `{c}`"))
                .unwrap_or_default()
        );
        Ok(Some(Through))
    }

    fn freeze(&mut self) {
        self.port = None;
    }

    fn poll(&mut self) -> Result<Value, ImpError> {
        if let Some(port) = &self.port {
            if !port.is_alive() {
                return Err(ImpError::not_ready(format!(
                    "the port connected to `{}` went away",
                    self.spec.connect.as_deref().unwrap_or(&self.spec.name)
                )));
            }
        }
        Ok(
            json!({ "port": self.spec.name, "direction": self.spec.direction, "connect": self.spec.connect }),
        )
    }
}

impl RtPart for Through {
    fn process(&mut self, _: &BlockContext, input: &[RtEvent], out: &mut EventWriter<'_>) {
        for e in input {
            let mut e = *e;
            e.port = 0;
            out.push(e);
        }
    }
}

imp::export!(MidiPort);
