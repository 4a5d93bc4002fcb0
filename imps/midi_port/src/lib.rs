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
//!
//! MIDI clock out: an output port with `clock_out = true` also sends MIDI
//! clock from the engine's sample clock and tempo ([`clock`]): Song
//! Position 0 and Start when it opens, 24 ticks per quarter note, each at
//! its exact frame, Stop when it closes. Control messages
//! `{"cmd": "clock", "transport": "stop" | "continue" | "start"}` stop it,
//! continue from where it stopped, or start again from 0. A rebuilt
//! library carries the clock on without a new Start.

pub mod clock;

use clock::{Clock, Transport};
use imp::ports::{Direction, Port, PortSpec};
use imp::{
    BlockContext, CreateContext, EventWriter, Imp, ImpError, RtEvent, RtPart, TRANSIENT_BYTES,
};
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
    /// Send MIDI clock (output ports only).
    #[serde(default)]
    pub clock_out: bool,
}

/// The control part.
pub struct MidiPort {
    spec: PortSpec,
    port: Option<Port>,
    clock_out: bool,
    /// Transport commands to the RT part's clock.
    transport: Option<rtrb::Producer<u8>>,
}

/// The RT part: a cable (the engine does the port I/O for the slot), and
/// the MIDI clock when asked for.
pub struct Through {
    clock: Option<(Clock, rtrb::Consumer<u8>)>,
}

/// Most clock events one block can carry (ticks and transport).
const CLOCK_EVENTS: usize = 128;

impl Imp for MidiPort {
    type Config = Config;
    type Frozen = ();
    type Rt = Through;

    fn create(ctx: &CreateContext, config: Config, _: Option<()>) -> Result<Self, ImpError> {
        if config.clock_out && config.direction != Direction::Out {
            return Err(ImpError::invalid(
                "clock_out = true needs direction = \"out\" (MIDI clock is sent, not received)",
            ));
        }
        Ok(MidiPort {
            clock_out: config.clock_out,
            transport: None,
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
        let clock = self.clock_out.then(|| {
            let (tx, rx) = rtrb::RingBuffer::new(16);
            self.transport = Some(tx);
            (Clock::default(), rx)
        });
        Ok(Some(Through { clock }))
    }

    fn freeze(&mut self) {
        self.port = None;
        self.transport = None;
    }

    fn control(&mut self, message: Value) -> Result<Value, ImpError> {
        if message["cmd"] != "clock" {
            return Err(ImpError::invalid(format!(
                "unknown message {message}; this imp takes {{\"cmd\": \"clock\", \"transport\": \"stop\" | \"continue\" | \"start\"}}"
            )));
        }
        let t = match message["transport"].as_str() {
            Some("start") => Transport::Start,
            Some("stop") => Transport::Stop,
            Some("continue") => Transport::Continue,
            _ => {
                return Err(ImpError::invalid(
                    "`transport` is one of \"start\", \"stop\", \"continue\"",
                ))
            }
        };
        let Some(tx) = self.transport.as_mut() else {
            return Err(ImpError::invalid(if self.clock_out {
                "the port is not open (frozen): no clock runs"
            } else {
                "this port sends no clock; set clock_out = true"
            }));
        };
        tx.push(t.code())
            .map_err(|_| ImpError::invalid("too many transport commands at once; try again"))?;
        Ok(json!({ "transport": message["transport"] }))
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
    fn process(&mut self, ctx: &BlockContext, input: &[RtEvent], out: &mut EventWriter<'_>) {
        let Some((clock, commands)) = self.clock.as_mut() else {
            for e in input {
                let mut e = *e;
                e.port = 0;
                out.push(e);
            }
            return;
        };
        while let Ok(code) = commands.pop() {
            if let Some(t) = Transport::from_code(code) {
                clock.command(t);
            }
        }
        let mut clock_buf = [RtEvent::default(); CLOCK_EVENTS];
        let mut w = EventWriter::new(&mut clock_buf);
        clock.process(ctx, &mut w);
        let n = w.len();
        // Input and clock merged in frame order (clock first on a tie: a
        // tick is the most timing-critical byte).
        let mut ticks = clock_buf[..n].iter().peekable();
        for e in input {
            while let Some(t) = ticks.next_if(|t| t.frame <= e.frame) {
                out.push(*t);
            }
            let mut e = *e;
            e.port = 0;
            out.push(e);
        }
        for t in ticks {
            out.push(*t);
        }
    }

    fn save_transient(&self, buf: &mut [u8; TRANSIENT_BYTES]) {
        if let Some((clock, _)) = &self.clock {
            clock.save(buf);
        }
    }

    fn restore_transient(&mut self, buf: &[u8; TRANSIENT_BYTES]) -> bool {
        if let (Some((clock, _)), Some(saved)) = (self.clock.as_mut(), Clock::restore(buf)) {
            *clock = saved;
        }
        true
    }

    fn all_notes_off(&mut self, out: &mut EventWriter<'_>) {
        if let Some((clock, _)) = self.clock.as_mut() {
            clock.stop_now(out);
        }
    }
}

imp::export!(MidiPort);
