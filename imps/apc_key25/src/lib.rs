//! # apc_key25: the AKAI APC Key 25 as a step editor, preset selector and
//! zone editor
//!
//! The pads edit the enchanter's drum patterns (8 steps × 5 voices per
//! page), Shift turns them into a preset selector, the buttons select
//! zones, pages and patterns and start and stop them, the knobs edit the
//! selected zone, and the keys play it. Every LED mirrors the enchanter's
//! state, and the running step moves in time with the engine's beat; all of
//! them are sent again whenever the APC comes back (see [`surface`] for
//! the whole map).
//!
//! ```toml
//! [imps.apc]
//! library = "apc_key25"
//! config = { model = "mk2", connect = "APC Key 25 mk2 C", keys_connect = "APC Key 25 mk2 K", enchanter = "enchanter" }
//!
//! [[wires]]            # the keys play through the bard
//! from = "apc"
//! to = "bard"
//! ```
//!
//! `connect` is a part of the name of the APC's port with the pads,
//! buttons and knobs (its LEDs are sent back through the port of the same
//! name); the mk2 has its keys on a port of their own: `keys_connect`.
//! Without it the keys are whatever arrives on another MIDI channel than 1
//! on the `connect` port (the mk1 plays its keys there). `impresario
//! ports` lists the names. While the APC is unplugged the imp stays frozen;
//! it comes back, LEDs and all, when it is plugged in.
//!
//! The gestures go to the enchanter as control messages (from the engine
//! thread, through the realm's queue); the APC never changes the bard
//! itself.

pub mod protocol;
pub mod surface;

use imp::ports::{Direction, Port, PortSpec};
use imp::{
    BlockContext, CreateContext, EventWriter, Imp, ImpError, Messenger, RtEvent, RtPart, RtSender,
};
use protocol::Model;
use serde::Deserialize;
use serde_json::{json, Value};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use surface::{Played, Snapshot, Surface, MAX_STEPS, VOICES};

/// The numbered output the LEDs leave by (bound to the APC's port).
pub const LED_OUTPUT: u8 = 1;
/// The input number of events from the keys port.
const KEYS_INPUT: u8 = 1;

/// The imp's configuration.
#[derive(Clone, Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// `mk2` (default) or `mk1`.
    pub model: Model,
    /// Part of the name of the port with the pads, buttons and knobs.
    pub connect: String,
    /// Part of the name of the keys' port (mk2).
    pub keys_connect: Option<String>,
    /// The enchanter imp.
    pub enchanter: String,
    /// Impresario's own port names start with this (default: the imp's name).
    pub name: Option<String>,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            model: Model::Mk2,
            connect: "APC Key 25".into(),
            keys_connect: None,
            enchanter: "enchanter".into(),
            name: None,
        }
    }
}

/// Counters the RT part keeps for `status`.
#[derive(Default)]
struct Counters {
    gestures: AtomicU64,
    lost: AtomicU64,
    leds: AtomicU64,
}

/// The control part.
pub struct Apc {
    config: Config,
    name: String,
    messenger: Messenger,
    ports: Vec<Port>,
    snapshot: Snapshot,
    to_rt: Option<rtrb::Producer<Snapshot>>,
    counters: Arc<Counters>,
}

/// The RT part.
pub struct ApcRt {
    surface: Surface,
    states: rtrb::Consumer<Snapshot>,
    sender: RtSender,
    enchanter: String,
    counters: Arc<Counters>,
}

/// The surface's view of the enchanter's published state.
fn snapshot(state: &Value) -> Option<Snapshot> {
    let global: enchantment::Global = serde_json::from_value(state.get("global")?.clone()).ok()?;
    let zones = state.get("zones")?.as_array()?;
    let index = zones
        .iter()
        .position(|z| z["name"] == global.selected.as_str())
        .unwrap_or(0);
    let zone_json = zones.get(index)?;
    let zone: enchantment::Zone = serde_json::from_value(zone_json.clone()).ok()?;
    let mut s = Snapshot {
        pattern: global.drum_pattern,
        playing: global.drums.0,
        zone: index as u8 + 1,
        zones: zones.len().min(255) as u8,
        channel: match zone.settings.channel {
            enchantment::values::Channel::Only(c) => c,
            enchantment::values::Channel::Any => 0,
        },
        low: zone.settings.low.0,
        high: zone.settings.high.0,
        ..Snapshot::default()
    };
    for n in zone_json["presets"].as_array().into_iter().flatten() {
        if let Some(n @ 1..=24) = n.as_u64() {
            s.presets |= 1 << (n - 1);
        }
    }
    let pattern = global.drum_patterns.get(global.drum_pattern as usize - 1)?;
    s.length = pattern.length.min(MAX_STEPS as u8);
    for (v, voice) in pattern.voices.iter().take(VOICES).enumerate() {
        for (i, vel) in voice.steps.0.iter().take(MAX_STEPS).enumerate() {
            s.steps[v][i] = *vel;
        }
    }
    Some(s)
}

impl Apc {
    fn spec(&self, direction: Direction, suffix: &str, connect: &str, input: u8) -> PortSpec {
        PortSpec {
            direction,
            name: format!("{}{suffix}", self.name),
            connect: Some(connect.to_string()),
            output: (direction == Direction::Out).then_some(LED_OUTPUT),
            input,
        }
    }
}

impl Imp for Apc {
    type Config = Config;
    type Frozen = ();
    type Rt = ApcRt;

    fn create(ctx: &CreateContext, config: Config, _: Option<()>) -> Result<Self, ImpError> {
        Ok(Apc {
            name: config
                .name
                .clone()
                .unwrap_or_else(|| ctx.name().to_string()),
            config,
            messenger: ctx.messenger().clone(),
            ports: Vec::new(),
            snapshot: Snapshot::default(),
            to_rt: None,
            counters: Arc::new(Counters::default()),
        })
    }

    fn thaw(&mut self) -> Result<Option<ApcRt>, ImpError> {
        let connect = self.config.connect.clone();
        let mut ports = vec![
            Port::open(&self.spec(Direction::In, "_in", &connect, 0))?,
            Port::open(&self.spec(Direction::Out, "_leds", &connect, 0))?,
        ];
        if let Some(keys) = self.config.keys_connect.clone() {
            ports.push(Port::open(&self.spec(
                Direction::In,
                "_keys",
                &keys,
                KEYS_INPUT,
            ))?);
        }
        self.ports = ports;
        self.messenger
            .subscribe(&self.config.enchanter)
            .map_err(|e| ImpError::invalid(e.to_string()))?;
        let (tx, rx) = rtrb::RingBuffer::new(8);
        self.to_rt = Some(tx);
        tracing::info!(
            "APC Key 25 {:?} connected (`{}`)",
            self.config.model,
            connect
        );
        Ok(Some(ApcRt {
            // A new surface shows nothing yet: every LED goes out.
            surface: Surface::new(self.config.model, self.snapshot),
            states: rx,
            sender: self
                .messenger
                .rt_sender()
                .map_err(|e| ImpError::invalid(e.to_string()))?,
            enchanter: self.config.enchanter.clone(),
            counters: self.counters.clone(),
        }))
    }

    fn freeze(&mut self) {
        self.ports.clear();
        self.to_rt = None;
    }

    fn poll(&mut self) -> Result<Value, ImpError> {
        if self.ports.iter().any(|p| !p.is_alive()) {
            return Err(ImpError::not_ready(format!(
                "the APC (`{}`) went away",
                self.config.connect
            )));
        }
        Ok(json!({
            "model": self.config.model,
            "zone": self.snapshot.zone,
            "pattern": self.snapshot.pattern,
            "playing": self.snapshot.playing,
            "gestures": self.counters.gestures.load(Ordering::Relaxed),
            "gestures_lost": self.counters.lost.load(Ordering::Relaxed),
            "leds_sent": self.counters.leds.load(Ordering::Relaxed),
        }))
    }

    fn control(&mut self, message: Value) -> Result<Value, ImpError> {
        if message["cmd"] != "notify" {
            return Err(ImpError::invalid(
                "the APC takes only the enchanter's state ({\"cmd\": \"notify\"})",
            ));
        }
        let Some(s) = snapshot(&message["state"]) else {
            return Err(ImpError::invalid("the enchanter's state is not understood"));
        };
        self.snapshot = s;
        if let Some(tx) = self.to_rt.as_mut() {
            // Full: the RT part is behind; the newest comes with the next change.
            let _ = tx.push(s);
        }
        Ok(json!({ "ok": true }))
    }
}

impl RtPart for ApcRt {
    fn process(&mut self, ctx: &BlockContext, input: &[RtEvent], out: &mut EventWriter<'_>) {
        while let Ok(s) = self.states.pop() {
            self.surface.update(s);
        }
        for e in input {
            if let Played::Note(n) = self.surface.input(e, e.port == KEYS_INPUT) {
                out.push(n);
            }
        }
        // Gestures, oldest first; a full queue is tried again next block.
        while let Some(g) = self.surface.next_gesture() {
            if self
                .sender
                .try_send_fmt(&self.enchanter, format_args!("{g}"))
                .is_err()
            {
                break;
            }
            self.surface.sent_gesture();
            self.counters.gestures.fetch_add(1, Ordering::Relaxed);
        }
        self.counters
            .lost
            .store(self.surface.lost, Ordering::Relaxed);
        // LEDs at the block's start, then the running light at the frame
        // where the step changes.
        let beat_per_frame = ctx.tempo_bpm / 60.0 / ctx.sample_rate;
        let step_now = self.surface.step_at(ctx.beat_position);
        self.surface.set_running(step_now);
        self.leds(0, out);
        if let Some(now) = step_now {
            let next_beat = ((ctx.beat_position * 4.0 + 1e-9).floor() + 1.0) / 4.0;
            let frames = ((next_beat - ctx.beat_position) / beat_per_frame).ceil();
            if ctx.playing != 0 && frames >= 0.0 && frames < ctx.frames as f64 {
                let next = (now as u16 + 1) % self.surface.state.length.max(1) as u16;
                self.surface.set_running(Some(next as u8));
                self.leds(frames as u32, out);
            }
        }
    }
}

impl ApcRt {
    fn leds(&mut self, frame: u32, out: &mut EventWriter<'_>) {
        let counters = &self.counters;
        self.surface.leds(|bytes| {
            let mut e = RtEvent::midi(frame, &bytes);
            // LED messages are note-ons that start no note.
            e.kind = imp::event_kind::FEEDBACK;
            e.port = LED_OUTPUT;
            let ok = out.push(e);
            if ok {
                counters.leds.fetch_add(1, Ordering::Relaxed);
            }
            ok
        });
    }
}

imp::export!(Apc);
