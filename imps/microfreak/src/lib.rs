//! # microfreak: the Arturia MicroFreak as controller and output
//!
//! The MicroFreak is a keyboard and a synth at once. Through this library
//! its keyboard plays through the bard, the bard's notes play its synth,
//! and its sound (the knobs' values) belongs to the enchanter's zones:
//! every knob turned is recorded in the zone's parameter snapshot, saved
//! with its presets, and sent back to the MicroFreak when a preset is
//! recalled.
//!
//! **Two imps, one MicroFreak.** The realm refuses a loop of wires, and
//! "keyboard → bard" plus "bard → synth" on one imp is one. So the
//! MicroFreak is two imps of this library, each with its own port to the
//! same device (JACK and ALSA both let two ports read one): the *synth*
//! part (`part = "synth"`, the default) plays what the bard sends it,
//! records the knobs and gets the snapshots back; the *keyboard* part
//! (`part = "keyboard"`) plays the keyboard into the bard.
//!
//! ```toml
//! [imps.freak]              # the synth: the bard's output 1 plays it, its knobs are recorded
//! library = "microfreak"
//! config = { connect = "MicroFreak", enchanter = "enchanter" }   # channel = 1, zone = "lower", device = "microfreak", name = "freak"
//!
//! [imps.freak_keys]         # its keyboard, into the bard
//! library = "microfreak"
//! config = { connect = "MicroFreak", part = "keyboard" }
//!
//! [[wires]]
//! from = "freak_keys"
//! to = "bard"
//!
//! [[wires]]
//! from = "bard"
//! output = 1
//! to = "freak"
//! ```
//!
//! **Ports and numbers.** `connect` is a case-insensitive part of the
//! MicroFreak's port name (both directions); while it is unplugged the
//! imps stay frozen and come back by themselves. The MicroFreak's port
//! arrives on input 1 ([`freak::DEVICE_INPUT`]); wires into the synth part
//! (the bard) arrive on input 0, the default. The synth part's output 0
//! ([`freak::DEVICE_OUTPUT`]) is bound to the MicroFreak's port: what the
//! bard sends it and the snapshot's CCs; it has no other output. The
//! keyboard part's output 0 ([`freak::PLAYED_OUTPUT`]) is what is played
//! on the MicroFreak: wire it to the bard. What arrives from the bard never
//! goes back to the bard: no loop. When a zone plays the MicroFreak's
//! keyboard back into it, turn its Local Control off (Utility > MIDI) or
//! each note sounds twice.
//!
//! **What is played** (keyboard part): notes, poly and channel pressure,
//! pitch bend, and the control changes that are not sound parameters (the
//! Hold button, CC 64, and anything on another channel). Program changes
//! (the MicroFreak's own preset browsing) and system messages (clock,
//! SysEx) are not passed on.
//!
//! **What is recorded** (synth part): the parameter CCs of the chart
//! ([`chart`]) on the MicroFreak's `channel`, reported to the enchanter as
//! `{"cmd":"param","device":"microfreak","cc":23,"value":64}` (with
//! `"zone"` when `zone` is set), from the RT part without allocating; a
//! knob sweep is thinned to one message per knob every 20 ms of engine
//! time, its final value always sent. They are not played: a synth's
//! parameter is not music, and through the bard it would reach other
//! synths (where CC 23 means something else) or come back to this one.
//!
//! **What is sent back** (synth part): the zone's snapshot
//! (`params.microfreak` of the `zone` set in the config, else of the
//! selected zone, which is where the knobs record; the imp cannot see
//! which bard output is wired to it) is what the MicroFreak should have.
//! When it changes other than by these knobs (a preset recall, another
//! zone selected), and after every (re)connect, each value of it the
//! MicroFreak does not have is sent as a control change on `channel` at
//! the start of the next block (see [`freak`] for how a knob being turned
//! keeps its parameter). Only the parameters a zone recorded are in its
//! snapshot: the others stay as the MicroFreak has them.
//!
//! The MIDI numbers are Arturia's MicroFreak CC chart (sources and what is
//! not confirmed: [`chart`]).

pub mod chart;
pub mod freak;

use freak::{Freak, FromDevice, Snapshot, DEVICE_INPUT, DEVICE_OUTPUT, PLAYED_OUTPUT};
use imp::ports::{Direction, Port, PortSpec};
use imp::{
    BlockContext, CreateContext, EventWriter, Imp, ImpError, Messenger, RtEvent, RtPart, RtSender,
    TRANSIENT_BYTES,
};
use serde::Deserialize;
use serde_json::{json, Value};
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;

/// Which part of the MicroFreak an imp is.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Part {
    /// The synth: plays what the bard sends it, records the knobs, gets
    /// the zone's snapshot back.
    #[default]
    Synth,
    /// The keyboard: plays into the bard.
    Keyboard,
}

/// The imp's `config` in realm.toml.
#[derive(Clone, Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// `synth` (default) or `keyboard`.
    pub part: Part,
    /// A case-insensitive part of the MicroFreak's port name.
    pub connect: String,
    /// The enchanter imp (the parameters' owner).
    pub enchanter: String,
    /// Impresario's own port names start with this (default: the imp's name).
    pub name: Option<String>,
    /// The MicroFreak's MIDI channel, 1..=16 (its Utility > MIDI > Channel).
    pub channel: u8,
    /// The enchanter zone (name or number) whose snapshot the knobs record
    /// and a recall sends; default: the selected zone.
    pub zone: Option<String>,
    /// The name of its parameters in the zones (`params.microfreak`): give
    /// a second MicroFreak its own.
    pub device: String,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            part: Part::Synth,
            connect: "MicroFreak".into(),
            enchanter: "enchanter".into(),
            name: None,
            channel: 1,
            zone: None,
            device: "microfreak".into(),
        }
    }
}

impl Config {
    fn check(&self) -> Result<(), ImpError> {
        if !(1..=16).contains(&self.channel) {
            return Err(ImpError::invalid(format!(
                "channel = {}: the MicroFreak's MIDI channel is 1..=16",
                self.channel
            )));
        }
        let mut chars = self.device.chars();
        let valid = chars.next().is_some_and(|c| c.is_ascii_lowercase())
            && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
            && self.device.len() <= 24;
        if !valid {
            return Err(ImpError::invalid(format!(
                "device = {:?}: a-z first, then a-z, 0-9 or _, at most 24 characters",
                self.device
            )));
        }
        // Written into the RT part's messages as they are: keep them plain.
        let plain = |s: &str| {
            s.chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
        };
        if !plain(&self.enchanter) || self.zone.as_deref().is_some_and(|z| !plain(z)) {
            return Err(ImpError::invalid(
                "enchanter and zone are names: letters, digits, _ and -",
            ));
        }
        Ok(())
    }
}

/// Counters the RT part keeps for `status`.
#[derive(Default)]
struct Counters {
    played: AtomicU64,
    to_device: AtomicU64,
    reported: AtomicU64,
    report_retries: AtomicU64,
    params_sent: AtomicU64,
    waiting: AtomicU64,
}

/// The control part.
pub struct Microfreak {
    config: Config,
    name: String,
    messenger: Messenger,
    ports: Vec<Port>,
    /// The enchanter's newest snapshot for the zone.
    snapshot: Snapshot,
    /// A snapshot the RT part has not taken yet (its ring was full).
    unsent: Option<Snapshot>,
    to_rt: Option<rtrb::Producer<Snapshot>>,
    counters: Arc<Counters>,
    sample_rate: f64,
}

/// The RT part.
pub struct MicrofreakRt {
    part: Part,
    freak: Freak,
    states: rtrb::Consumer<Snapshot>,
    sender: RtSender,
    enchanter: String,
    device: String,
    zone: Option<String>,
    counters: Arc<Counters>,
}

/// The zone's snapshot in the enchanter's published state (`None`: the
/// state is not understood).
fn snapshot(state: &Value, zone: Option<&str>, device: &str) -> Option<Snapshot> {
    let zones = state.get("zones")?.as_array()?;
    let wanted = match zone {
        Some(z) => z.to_ascii_lowercase(),
        None => state.get("global")?.get("selected")?.as_str()?.to_string(),
    };
    let z = zones
        .iter()
        .find(|z| z["name"] == wanted.as_str())
        .or_else(|| {
            let n: usize = wanted.trim().parse().ok()?;
            zones.get(n.checked_sub(1)?)
        })?;
    let mut s = Snapshot::default();
    if let Some(values) = z
        .get("params")
        .and_then(|p| p.get(device))
        .and_then(Value::as_object)
    {
        for (cc, v) in values {
            let (Ok(cc), Some(v)) = (cc.parse::<u8>(), v.as_u64()) else {
                continue;
            };
            if cc < 128 && v < 128 {
                s.values[cc as usize] = Some(v as u8);
            }
        }
    }
    Some(s)
}

impl Microfreak {
    fn spec(&self, direction: Direction) -> PortSpec {
        let suffix = match direction {
            Direction::In => "_in",
            Direction::Out => "_out",
        };
        PortSpec {
            direction,
            name: format!("{}{suffix}", self.name),
            connect: Some(self.config.connect.clone()),
            output: (direction == Direction::Out).then_some(DEVICE_OUTPUT),
            input: DEVICE_INPUT,
        }
    }

    /// Hands the newest snapshot to the RT part, if it has room.
    fn hand_over(&mut self) {
        let (Some(tx), Some(s)) = (self.to_rt.as_mut(), self.unsent) else {
            return;
        };
        if tx.push(s).is_ok() {
            self.unsent = None;
        }
    }
}

impl Imp for Microfreak {
    type Config = Config;
    /// The enchanter's newest values for the zone: a respawn starts from
    /// them (the subscription does not deliver the state again).
    type Frozen = Vec<(u8, u8)>;
    type Rt = MicrofreakRt;

    fn create(
        ctx: &CreateContext,
        config: Config,
        frozen: Option<Vec<(u8, u8)>>,
    ) -> Result<Self, ImpError> {
        config.check()?;
        let mut snapshot = Snapshot::default();
        for (cc, v) in frozen.unwrap_or_default() {
            if cc < 128 && v < 128 {
                snapshot.values[cc as usize] = Some(v);
            }
        }
        Ok(Microfreak {
            name: config
                .name
                .clone()
                .unwrap_or_else(|| ctx.name().to_string()),
            config,
            messenger: ctx.messenger().clone(),
            ports: Vec::new(),
            snapshot,
            unsent: None,
            to_rt: None,
            counters: Arc::new(Counters::default()),
            sample_rate: ctx.sample_rate(),
        })
    }

    fn thaw(&mut self) -> Result<Option<MicrofreakRt>, ImpError> {
        self.ports = vec![Port::open(&self.spec(Direction::In))?];
        if self.config.part == Part::Synth {
            self.ports.push(Port::open(&self.spec(Direction::Out))?);
            self.messenger
                .subscribe(&self.config.enchanter)
                .map_err(|e| ImpError::invalid(e.to_string()))?;
        }
        let (tx, rx) = rtrb::RingBuffer::new(8);
        self.to_rt = Some(tx);
        self.unsent = None;
        tracing::info!(
            "MicroFreak {:?} connected (`{}`)",
            self.config.part,
            self.config.connect
        );
        Ok(Some(MicrofreakRt {
            part: self.config.part,
            // Just connected: the whole snapshot goes at the first block.
            freak: Freak::new(self.config.channel, self.sample_rate, self.snapshot),
            states: rx,
            sender: self
                .messenger
                .rt_sender()
                .map_err(|e| ImpError::invalid(e.to_string()))?,
            enchanter: self.config.enchanter.clone(),
            device: self.config.device.clone(),
            zone: self.config.zone.clone(),
            counters: self.counters.clone(),
        }))
    }

    fn freeze(&mut self) -> Vec<(u8, u8)> {
        self.ports.clear();
        self.to_rt = None;
        self.snapshot
            .values
            .iter()
            .enumerate()
            .filter_map(|(cc, v)| v.map(|v| (cc as u8, v)))
            .collect()
    }

    fn poll(&mut self) -> Result<Value, ImpError> {
        if self.ports.iter().any(|p| !p.is_alive()) {
            return Err(ImpError::not_ready(format!(
                "the MicroFreak (`{}`) went away",
                self.config.connect
            )));
        }
        self.hand_over();
        let c = &self.counters;
        let params: serde_json::Map<String, Value> = self
            .snapshot
            .values
            .iter()
            .enumerate()
            .filter_map(|(cc, v)| v.map(|v| (cc.to_string(), json!(v))))
            .collect();
        if self.config.part == Part::Keyboard {
            return Ok(json!({
                "part": self.config.part,
                "played": c.played.load(Relaxed),
            }));
        }
        Ok(json!({
            "part": self.config.part,
            "zone": self.config.zone.as_deref().unwrap_or("selected"),
            "params": params,
            "played": c.played.load(Relaxed),
            "to_device": c.to_device.load(Relaxed),
            "reported": c.reported.load(Relaxed),
            "report_retries": c.report_retries.load(Relaxed),
            "waiting": c.waiting.load(Relaxed),
            "params_sent": c.params_sent.load(Relaxed),
        }))
    }

    fn control(&mut self, message: Value) -> Result<Value, ImpError> {
        if message["cmd"] != "notify" {
            return Err(ImpError::invalid(
                "the MicroFreak takes only the enchanter's state ({\"cmd\": \"notify\"})",
            ));
        }
        let Some(s) = snapshot(
            &message["state"],
            self.config.zone.as_deref(),
            &self.config.device,
        ) else {
            return Err(ImpError::invalid(format!(
                "the enchanter's state is not understood (or has no zone {:?})",
                self.config.zone.as_deref().unwrap_or("selected")
            )));
        };
        self.snapshot = s;
        // The newest replaces one still waiting; `poll` retries a full ring.
        self.unsent = Some(s);
        self.hand_over();
        Ok(json!({ "ok": true }))
    }
}

impl RtPart for MicrofreakRt {
    fn process(&mut self, ctx: &BlockContext, input: &[RtEvent], out: &mut EventWriter<'_>) {
        match self.part {
            Part::Keyboard => self.keyboard(input, out),
            Part::Synth => self.synth(ctx, input, out),
        }
    }

    /// What the MicroFreak has and the knobs' state, so a new build
    /// neither sends the whole snapshot again nor a knob's echo.
    fn save_transient(&self, buf: &mut [u8; TRANSIENT_BYTES]) {
        self.freak.save(buf);
    }

    fn restore_transient(&mut self, buf: &[u8; TRANSIENT_BYTES]) -> bool {
        // Not understood: this part starts as if just connected (the
        // snapshot is sent whole). The notes passing through are the
        // slot's (its ledger stays), not this part's: true either way.
        self.freak.restore(buf);
        true
    }
}

impl MicrofreakRt {
    /// The keyboard part: what is played goes out; knobs and the rest
    /// stay (the synth part records the knobs).
    fn keyboard(&mut self, input: &[RtEvent], out: &mut EventWriter<'_>) {
        for e in input.iter().filter(|e| e.port == DEVICE_INPUT) {
            if let FromDevice::Play(played) = self.freak.from_device(e) {
                debug_assert_eq!(played.port, PLAYED_OUTPUT);
                if out.push(played) {
                    self.counters.played.fetch_add(1, Relaxed);
                }
            }
        }
    }

    /// The synth part: the snapshot's values, the bard's events to the
    /// MicroFreak, the knobs to the enchanter.
    fn synth(&mut self, ctx: &BlockContext, input: &[RtEvent], out: &mut EventWriter<'_>) {
        while let Ok(s) = self.states.pop() {
            self.freak.update(&s);
        }
        let c = &self.counters;
        // The snapshot's values first, at the block's start.
        self.freak.sync(ctx.sample_position, |bytes| {
            let mut e = RtEvent::midi(0, &bytes);
            e.port = DEVICE_OUTPUT;
            let ok = out.push(e);
            if ok {
                c.params_sent.fetch_add(1, Relaxed);
            }
            ok
        });
        for e in input {
            if e.port == DEVICE_INPUT {
                // Played notes are the keyboard part's; knobs are recorded.
                self.freak.from_device(e);
            } else if let Some(e) = self.freak.from_wire(e) {
                if out.push(e) {
                    c.to_device.fetch_add(1, Relaxed);
                }
            }
        }
        let now = ctx.sample_position + ctx.frames as u64;
        let (sender, enchanter, device, zone) = (
            &self.sender,
            self.enchanter.as_str(),
            self.device.as_str(),
            self.zone.as_deref(),
        );
        self.freak.report(now, |cc, value| {
            let sent = match zone {
                Some(z) => sender.try_send_fmt(
                    enchanter,
                    format_args!(
                        r#"{{"cmd":"param","device":"{device}","zone":"{z}","cc":{cc},"value":{value}}}"#
                    ),
                ),
                None => sender.try_send_fmt(
                    enchanter,
                    format_args!(
                        r#"{{"cmd":"param","device":"{device}","cc":{cc},"value":{value}}}"#
                    ),
                ),
            };
            if sent.is_ok() {
                c.reported.fetch_add(1, Relaxed);
            } else {
                c.report_retries.fetch_add(1, Relaxed);
            }
            sent.is_ok()
        });
        c.waiting.store(self.freak.waiting() as u64, Relaxed);
    }
}

imp::export!(Microfreak);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_snapshot_is_read_from_the_selected_or_the_configured_zone() {
        let state = json!({
            "global": { "selected": "upper" },
            "zones": [
                { "name": "lower", "params": { "microfreak": { "23": 64, "5": 0 } } },
                { "name": "upper", "params": { "microfreak": { "83": 10 }, "other": { "1": 2 } } }
            ]
        });
        let s = snapshot(&state, None, "microfreak").unwrap();
        assert_eq!(s.values[83], Some(10));
        assert_eq!(s.values.iter().flatten().count(), 1);
        let s = snapshot(&state, Some("lower"), "microfreak").unwrap();
        assert_eq!((s.values[23], s.values[5]), (Some(64), Some(0)));
        let s = snapshot(&state, Some("1"), "microfreak").unwrap();
        assert_eq!(s.values[23], Some(64), "a zone by number");
        assert!(snapshot(&state, Some("middle"), "microfreak").is_none());
        let s = snapshot(&state, Some("lower"), "other").unwrap();
        assert_eq!(s, Snapshot::default(), "no params for that device");
    }

    #[test]
    fn the_config_is_checked() {
        let bad = |c: Config| c.check().unwrap_err().to_string();
        assert!(bad(Config {
            channel: 0,
            ..Config::default()
        })
        .contains("1..=16"));
        assert!(bad(Config {
            device: "Micro Freak".into(),
            ..Config::default()
        })
        .contains("a-z first"));
        assert!(bad(Config {
            zone: Some("a\"b".into()),
            ..Config::default()
        })
        .contains("names"));
        Config::default().check().unwrap();
    }
}
