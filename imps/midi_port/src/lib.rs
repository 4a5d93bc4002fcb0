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
//! SysEx passes through whole in both directions: what arrives on an input
//! port (a device's reply to a request, a dump) is this imp's input and
//! goes on along its wires; what reaches an output port leaves it, at its
//! frame. The RT part forwards every input event with `EventWriter::push`,
//! which carries a SysEx's bytes along (see the README's "SysEx").
//!
//! MIDI clock out: an output port with `clock_out = true` also sends MIDI
//! clock from the engine's sample clock and tempo ([`clock`]): Song
//! Position 0 and Start when it opens, 24 ticks per quarter note, each at
//! its exact frame, Stop when it closes. Control messages
//! `{"cmd": "clock", "transport": "stop" | "continue" | "start"}` stop it,
//! continue from where it stopped, or start again from 0. A rebuilt
//! library carries the clock on without a new Start.
//!
//! MIDI clock in: an input port with `clock_in = true` makes the engine
//! follow the clock that arrives on it. The tempo is a least-squares fit
//! over the last two beats of ticks ([`follow`]), so a jittery USB clock
//! gives a steady tempo (within 0.1 BPM after two beats at ±1 ms jitter),
//! and each tick puts the engine's beat on the clock's 24-per-beat grid at
//! the tick's frame, so tempo-synced imps (the bard's arpeggiator and step
//! patterns) play on the ticks. Start, Stop and Continue drive the engine's
//! transport: Stop holds the beat (the arpeggiator and step patterns wait),
//! Start makes the next tick beat 0, Continue goes on from where it stopped.
//! The clock bytes also pass on like any input. `status` shows the followed
//! tempo as `clock_in_bpm`.

pub mod clock;
pub mod follow;

use clock::{Clock, Transport};
use follow::ClockFollower;
use imp::ports::{Direction, Port, PortSpec};
use imp::{
    BlockContext, CreateContext, EventWriter, Imp, ImpError, RtEvent, RtPart, TRANSIENT_BYTES,
};
use serde::Deserialize;
use serde_json::{json, Value};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

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
    /// Follow the MIDI clock arriving on the port (input ports only).
    #[serde(default)]
    pub clock_in: bool,
}

/// The control part.
pub struct MidiPort {
    spec: PortSpec,
    port: Option<Port>,
    clock_out: bool,
    clock_in: bool,
    /// Transport commands to the RT part's clock.
    transport: Option<rtrb::Producer<u8>>,
    /// The followed tempo (f64 bits; 0 while none), written by the RT part.
    followed_bpm: Arc<AtomicU64>,
}

/// The RT part: a cable (the engine does the port I/O for the slot), and
/// the MIDI clock when asked for.
pub struct Through {
    clock: Option<(Clock, rtrb::Consumer<u8>)>,
    follower: Option<(ClockFollower, Arc<AtomicU64>)>,
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
        if config.clock_in && config.direction != Direction::In {
            return Err(ImpError::invalid(
                "clock_in = true needs direction = \"in\" (MIDI clock is followed where it arrives)",
            ));
        }
        Ok(MidiPort {
            clock_out: config.clock_out,
            clock_in: config.clock_in,
            followed_bpm: Arc::new(AtomicU64::new(0)),
            transport: None,
            spec: PortSpec::new(
                config.direction,
                config.name.unwrap_or_else(|| ctx.name().to_string()),
                config.connect,
            ),
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
        let follower = self
            .clock_in
            .then(|| (ClockFollower::default(), self.followed_bpm.clone()));
        Ok(Some(Through { clock, follower }))
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
        let mut status = json!({ "port": self.spec.name, "direction": self.spec.direction, "connect": self.spec.connect });
        if self.clock_in {
            let bpm = f64::from_bits(self.followed_bpm.load(Ordering::Relaxed));
            status["clock_in_bpm"] = if bpm > 0.0 { json!(bpm) } else { Value::Null };
        }
        Ok(status)
    }
}

impl RtPart for Through {
    fn process(&mut self, ctx: &BlockContext, input: &[RtEvent], out: &mut EventWriter<'_>) {
        if let Some((follower, shared)) = self.follower.as_mut() {
            for e in input {
                if e.kind == imp::event_kind::MIDI && e.len == 1 && e.bytes[0] == 0xf8 {
                    let at = ctx.sample_position + e.frame as u64;
                    if let Some(bpm) = follower.tick(at, ctx.sample_rate) {
                        shared.store(bpm.to_bits(), Ordering::Relaxed);
                        out.push(control_event(imp::event_kind::TEMPO, e.frame, bpm));
                    }
                    out.push(control_event(
                        imp::event_kind::GRID_TICK,
                        e.frame,
                        follow::TICKS_PER_BEAT,
                    ));
                }
                if e.kind == imp::event_kind::MIDI && e.len == 1 {
                    let code = match e.bytes[0] {
                        0xfa => Some(imp::transport::START),
                        0xfb => Some(imp::transport::CONTINUE),
                        0xfc => Some(imp::transport::STOP),
                        _ => None,
                    };
                    if let Some(code) = code {
                        out.push(control_event(
                            imp::event_kind::TRANSPORT,
                            e.frame,
                            code as f64,
                        ));
                    }
                }
                let mut e = *e;
                e.port = 0;
                out.push(e);
            }
            return;
        }
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

/// A control event (tempo, grid tick) at `frame`.
fn control_event(kind: u8, frame: u32, value: f64) -> RtEvent {
    RtEvent {
        frame,
        kind,
        value: value as f32,
        ..RtEvent::default()
    }
}

imp::export!(MidiPort);
