//! # mpk_mini3: the AKAI MPK mini mk3 as a controller
//!
//! The keys and the joystick play through the bard, the pads play General
//! MIDI drums or chords in the selected zone's scale, and knobs K1–K8 turn
//! eight enchanter settings. So that the device sends what this imp
//! expects whatever program it was left on, every time it connects (at
//! start, and each time it is plugged in again) the imp writes a known
//! program into the device's RAM over SysEx, with the names of the
//! settings the knobs turn, which the MPK shows on its display (see
//! [`program`] for its bytes and where the layout comes from).
//!
//! ```toml
//! [imps.mpk]
//! library = "mpk_mini3"
//! config = { connect = "MPK mini 3", enchanter = "enchanter", pads = "drums" }
//! # knobs = ["octave", "semitone", "program", "key", "scale", "chord", "arp_rate", "velocity"]
//! # program_name = "impresario", name = "mpk" (impresario's own port names start with it)
//!
//! [[wires]]            # keys, joystick and pads play through the bard
//! from = "mpk"
//! to = "bard"
//! ```
//!
//! | control | what it sends (pushed program) | what the imp does |
//! |---|---|---|
//! | keys | notes, channel 1 | to the bard (numbered output 0) |
//! | joystick X | pitch bend, channel 1 | to the bard |
//! | joystick Y | CC 1 (modulation), channel 1 | to the bard |
//! | anything else on channel 1 (the sustain pedal's CC 64 …) | | to the bard |
//! | pads 1–16 (banks A, B) | notes 36–51, channel 10 | `pads = "drums"`: to the bard unchanged (GM drums); `"chords"`: the triad on the pad's degree of the selected zone's scale (see [`pads`]) |
//! | knobs K1–K8 | CC 70–77 relative, channel 1 | `adjust` of `knobs[i]` by the steps turned, to the enchanter (see [`knobs`]) |
//!
//! `connect` is a case-insensitive part of the MPK's port name (`impresario
//! ports` lists them; ALSA calls it `MPK mini 3`). The imp opens the
//! device's input and output (the output is bound to the imp's numbered
//! output 1: only the program goes there, nothing reaches the bard
//! through it). While the MPK is unplugged the imp stays frozen; plugged
//! in again, it thaws and writes the program again. The gestures go to the
//! enchanter from the engine thread, without allocating; the imp follows
//! the enchanter's published state for the selected zone's key, scale and
//! channel.

pub mod knobs;
pub mod pads;
pub mod program;

use imp::ports::{Direction, Port, PortSpec};
use imp::{
    BlockContext, CreateContext, EventWriter, Imp, ImpError, MailError, Messenger, RtEvent, RtPart,
    RtSender, TRANSIENT_BYTES,
};
use knobs::{knob_of, relative_delta, Adjust, Turns};
use pads::{Harmony, PadMode, Pads};
use serde::Deserialize;
use serde_json::{json, Value};
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;

/// The numbered output bound to the device's port: the program goes there.
pub const DEVICE_OUTPUT: u8 = 1;
/// The numbered output of what plays (wire it to the bard).
pub const PLAY_OUTPUT: u8 = 0;

/// The knobs' enchanter keys when the config names none.
pub const DEFAULT_KNOBS: [&str; program::KNOBS] = [
    "octave", "semitone", "program", "key", "scale", "chord", "arp_rate", "velocity",
];

/// The imp's `config` in realm.toml.
#[derive(Clone, Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// A case-insensitive part of the MPK's port name.
    pub connect: String,
    /// The enchanter imp the knobs turn and whose state the chords follow.
    pub enchanter: String,
    /// Impresario's own port names start with this (default: the imp's name).
    pub name: Option<String>,
    /// What the pads play: `drums` (default) or `chords`.
    pub pads: PadMode,
    /// The enchanter keys knobs K1–K8 turn (eight; `adjust`able keys).
    pub knobs: Vec<String>,
    /// The program's name on the MPK's display (16 ASCII characters shown).
    pub program_name: String,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            connect: "MPK mini 3".into(),
            enchanter: "enchanter".into(),
            name: None,
            pads: PadMode::Drums,
            knobs: DEFAULT_KNOBS.iter().map(|k| k.to_string()).collect(),
            program_name: "impresario".into(),
        }
    }
}

impl Config {
    /// Checks the knobs; the SysEx program this config pushes.
    pub fn program(&self) -> Result<[u8; program::LENGTH], ImpError> {
        let knobs: [&str; program::KNOBS] = self
            .knobs
            .iter()
            .map(String::as_str)
            .collect::<Vec<_>>()
            .try_into()
            .map_err(|v: Vec<&str>| {
                ImpError::invalid(format!(
                    "knobs: eight enchanter keys (K1–K8), not {}",
                    v.len()
                ))
            })?;
        if let Some(why) = knobs.iter().find_map(|k| knobs::check_key(k)) {
            return Err(ImpError::invalid(why));
        }
        Ok(program::encode(&self.program_name, &knobs))
    }
}

/// Counters the RT part keeps for `status`.
#[derive(Debug, Default)]
struct Counters {
    programs_sent: AtomicU64,
    program_retries: AtomicU64,
    gestures: AtomicU64,
    gestures_retried: AtomicU64,
    gestures_failed: AtomicU64,
    gestures_lost: AtomicU64,
    chords_held: AtomicU64,
}

/// The control part.
pub struct Mpk {
    config: Config,
    name: String,
    program: [u8; program::LENGTH],
    messenger: Messenger,
    ports: Vec<Port>,
    harmony: Harmony,
    to_rt: Option<rtrb::Producer<Harmony>>,
    counters: Arc<Counters>,
}

/// The RT part.
pub struct MpkRt {
    program: [u8; program::LENGTH],
    program_sent: bool,
    pads: Pads,
    turns: Turns,
    knob_keys: Vec<String>,
    states: rtrb::Consumer<Harmony>,
    sender: RtSender,
    enchanter: String,
    counters: Arc<Counters>,
}

/// Pitch classes of a scale of the bard (bit `i` = `i` semitones above
/// the key; the key always in).
fn scale_mask(kind: &bard_pipeline::ScaleKind) -> u16 {
    use bard_pipeline::ScaleKind as S;
    let pcs: &[u8] = match kind {
        S::Ionian => &[0, 2, 4, 5, 7, 9, 11],
        S::Dorian => &[0, 2, 3, 5, 7, 9, 10],
        S::Phrygian => &[0, 1, 3, 5, 7, 8, 10],
        S::Lydian => &[0, 2, 4, 6, 7, 9, 11],
        S::Mixolydian => &[0, 2, 4, 5, 7, 9, 10],
        S::Aeolian => &[0, 2, 3, 5, 7, 8, 10],
        S::Locrian => &[0, 1, 3, 5, 6, 8, 10],
        S::HarmonicMinor => &[0, 2, 3, 5, 7, 8, 11],
        S::MelodicMinor => &[0, 2, 3, 5, 7, 9, 11],
        S::MajorPentatonic => &[0, 2, 4, 7, 9],
        S::MinorPentatonic => &[0, 3, 5, 7, 10],
        S::Blues => &[0, 3, 5, 6, 7, 10],
        S::WholeTone => &[0, 2, 4, 6, 8, 10],
        S::Chromatic => &[0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11],
        S::Custom(v) => v,
    };
    pcs.iter().fold(1u16, |m, &pc| m | (1 << (pc % 12)))
}

/// The selected zone's key, scale and channel from the enchanter's
/// published state (what `get` shows).
pub fn harmony(state: &Value) -> Option<Harmony> {
    let global: enchantment::Global = serde_json::from_value(state.get("global")?.clone()).ok()?;
    let zones = state.get("zones")?.as_array()?;
    let zone_json = zones
        .iter()
        .find(|z| z["name"] == global.selected.as_str())
        .or(zones.first())?;
    let zone: enchantment::Zone = serde_json::from_value(zone_json.clone()).ok()?;
    let s = zone.settings;
    Some(Harmony {
        key: s.key.0 .0 % 12,
        scale: s.scale.0.as_ref().map_or(0, scale_mask),
        channel: match s.channel {
            enchantment::values::Channel::Only(c) => c.saturating_sub(1) & 0x0F,
            enchantment::values::Channel::Any => program::KEYS_CHANNEL,
        },
    })
}

impl Mpk {
    fn spec(&self, direction: Direction, suffix: &str) -> PortSpec {
        PortSpec {
            direction,
            name: format!("{}{suffix}", self.name),
            connect: Some(self.config.connect.clone()),
            output: (direction == Direction::Out).then_some(DEVICE_OUTPUT),
            input: 0,
        }
    }
}

impl Imp for Mpk {
    type Config = Config;
    /// The enchanter's harmony: it publishes its state to a subscriber
    /// once, when it first subscribes, so a new build carries it over.
    type Frozen = Harmony;
    type Rt = MpkRt;

    fn create(
        ctx: &CreateContext,
        config: Config,
        frozen: Option<Harmony>,
    ) -> Result<Self, ImpError> {
        let program = config.program()?;
        Ok(Mpk {
            name: config
                .name
                .clone()
                .unwrap_or_else(|| ctx.name().to_string()),
            program,
            config,
            messenger: ctx.messenger().clone(),
            ports: Vec::new(),
            harmony: frozen.unwrap_or_default(),
            to_rt: None,
            counters: Arc::new(Counters::default()),
        })
    }

    fn thaw(&mut self) -> Result<Option<MpkRt>, ImpError> {
        let sender = self
            .messenger
            .rt_sender()
            .map_err(|e| ImpError::invalid(e.to_string()))?;
        self.ports = vec![
            Port::open(&self.spec(Direction::In, "_in"))?,
            Port::open(&self.spec(Direction::Out, "_out"))?,
        ];
        self.messenger
            .subscribe(&self.config.enchanter)
            .map_err(|e| ImpError::invalid(e.to_string()))?;
        let (tx, rx) = rtrb::RingBuffer::new(8);
        self.to_rt = Some(tx);
        tracing::info!(
            "MPK mini mk3 connected (`{}`): pushing program `{}` to its RAM, pads play {:?}",
            self.config.connect,
            self.config.program_name,
            self.config.pads
        );
        Ok(Some(MpkRt {
            program: self.program,
            program_sent: false,
            pads: Pads::new(self.config.pads, self.harmony),
            turns: Turns::default(),
            knob_keys: self.config.knobs.clone(),
            states: rx,
            sender,
            enchanter: self.config.enchanter.clone(),
            counters: self.counters.clone(),
        }))
    }

    fn freeze(&mut self) -> Harmony {
        self.ports.clear();
        self.to_rt = None;
        self.harmony
    }

    fn poll(&mut self) -> Result<Value, ImpError> {
        if self.ports.iter().any(|p| !p.is_alive()) {
            return Err(ImpError::not_ready(format!(
                "the MPK mini (`{}`) went away",
                self.config.connect
            )));
        }
        let c = &self.counters;
        Ok(json!({
            "pads": self.config.pads,
            "knobs": self.config.knobs,
            "programs_sent": c.programs_sent.load(Relaxed),
            "program_retries": c.program_retries.load(Relaxed),
            "chords_held": c.chords_held.load(Relaxed),
            "gestures": {
                "sent": c.gestures.load(Relaxed),
                "retried": c.gestures_retried.load(Relaxed),
                "failed": c.gestures_failed.load(Relaxed),
                "lost": c.gestures_lost.load(Relaxed),
            },
        }))
    }

    fn control(&mut self, message: Value) -> Result<Value, ImpError> {
        if message["cmd"] != "notify" {
            return Err(ImpError::invalid(
                "the MPK mini takes only the enchanter's state ({\"cmd\": \"notify\"})",
            ));
        }
        if message["from"] != self.config.enchanter.as_str() {
            return Ok(json!({ "ok": true }));
        }
        let Some(h) = harmony(&message["state"]) else {
            return Err(ImpError::invalid("the enchanter's state is not understood"));
        };
        self.harmony = h;
        if let Some(tx) = self.to_rt.as_mut() {
            // Full: the RT part is behind; the newest comes with the next change.
            let _ = tx.push(h);
        }
        Ok(json!({ "ok": true }))
    }
}

impl MpkRt {
    /// Sends the waiting knob turns, oldest first; a full queue keeps the
    /// rest for the next block.
    fn send_turns(&mut self) {
        while let Some((knob, delta)) = self.turns.next() {
            let key = self.knob_keys.get(knob).map_or("", String::as_str);
            let sent = self
                .sender
                .try_send_fmt(&self.enchanter, format_args!("{}", Adjust { key, delta }));
            match sent {
                Ok(()) => {
                    self.counters.gestures.fetch_add(1, Relaxed);
                }
                Err(MailError::Full) => {
                    self.counters.gestures_retried.fetch_add(1, Relaxed);
                    break;
                }
                Err(_) => {
                    self.counters.gestures_failed.fetch_add(1, Relaxed);
                }
            }
            self.turns.sent();
        }
        self.counters.gestures_lost.store(self.turns.lost, Relaxed);
    }
}

impl RtPart for MpkRt {
    fn process(&mut self, _: &BlockContext, input: &[RtEvent], out: &mut EventWriter<'_>) {
        while let Ok(h) = self.states.pop() {
            self.pads.harmony = h;
        }
        // The program first, at the block's start, until the arena takes it.
        if !self.program_sent {
            if out.push_sysex(0, DEVICE_OUTPUT, &self.program) {
                self.program_sent = true;
                self.counters.programs_sent.fetch_add(1, Relaxed);
            } else {
                self.counters.program_retries.fetch_add(1, Relaxed);
            }
        }
        for e in input {
            // The device's SysEx (a reply) and anything but MIDI stays here.
            if e.kind != imp::event_kind::MIDI || e.len == 0 {
                continue;
            }
            let b = e.bytes;
            let status = b[0] & 0xF0;
            let channel = b[0] & 0x0F;
            if e.len == 3 && status == 0xB0 && channel == program::KEYS_CHANNEL {
                if let Some(knob) = knob_of(b[1]) {
                    self.turns.push(knob, relative_delta(b[2]));
                    continue;
                }
            }
            if Pads::is_pad(b[0]) && e.len == 3 && (status == 0x80 || status == 0x90) {
                let played = self.pads.input(b, 3);
                for m in played.as_slice() {
                    out.push(RtEvent::midi(e.frame, m));
                }
                continue;
            }
            let mut pass = *e;
            pass.port = PLAY_OUTPUT;
            out.push(pass);
        }
        self.counters
            .chords_held
            .store(self.pads.held() as u64, Relaxed);
        self.send_turns();
    }

    fn save_transient(&self, buf: &mut [u8; TRANSIENT_BYTES]) {
        self.pads.save(buf);
    }

    fn restore_transient(&mut self, buf: &[u8; TRANSIENT_BYTES]) -> bool {
        self.pads.restore(buf)
    }

    fn all_notes_off(&mut self, out: &mut EventWriter<'_>) {
        self.pads.release_all(|m| {
            out.push(RtEvent::midi(0, &m));
        });
    }
}

imp::export!(Mpk);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_config_pushes_the_default_knob_names() {
        let p = Config::default().program().unwrap();
        assert_eq!(&p[8..18], b"impresario");
        assert_eq!(&p[96..102], b"octave");
        assert_eq!(&p[236..244], b"velocity");
    }

    #[test]
    fn knobs_are_checked() {
        let seven = Config {
            knobs: DEFAULT_KNOBS[..7].iter().map(|k| k.to_string()).collect(),
            ..Config::default()
        };
        assert!(seven.program().unwrap_err().to_string().contains("eight"));
        let mut typo = Config::default();
        typo.knobs[3] = "kee".into();
        assert!(typo.program().unwrap_err().to_string().contains("kee"));
    }

    #[test]
    fn the_config_reads_from_toml_like_json() {
        let c: Config = serde_json::from_value(json!({
            "connect": "MPK", "pads": "chords", "program_name": "live",
            "knobs": ["tempo", "octave", "lower.scale", "key", "chord", "arp", "arp_rate", "velocity"]
        }))
        .unwrap();
        assert_eq!(c.pads, PadMode::Chords);
        let p = c.program().unwrap();
        assert_eq!(&p[96..101], b"tempo");
        assert_eq!(&p[136..147], b"lower.scale");
        assert!(serde_json::from_value::<Config>(json!({ "pads": "piano" })).is_err());
        assert!(serde_json::from_value::<Config>(json!({ "bogus": 1 })).is_err());
    }

    #[test]
    fn the_enchanters_state_gives_the_selected_zones_harmony() {
        let mut live = enchantment::Enchantment::default();
        live.set("zones", "lower, upper").unwrap();
        live.set("upper.key", "A").unwrap();
        live.set("upper.scale", "minor").unwrap();
        live.set("upper.channel", "3").unwrap();
        live.set("selected", "upper").unwrap();
        let h = harmony(&live.get(None).unwrap()).unwrap();
        assert_eq!(
            h,
            Harmony {
                key: 9,
                scale: 0b0101_1010_1101,
                channel: 2
            }
        );
        live.set("selected", "lower").unwrap();
        let h = harmony(&live.get(None).unwrap()).unwrap();
        assert_eq!(h, Harmony::default());
    }
}
