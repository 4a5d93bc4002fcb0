//! # p85: the Yamaha P-85 digital piano as a controller
//!
//! The P-85's MIDI out (DIN, through a USB-MIDI interface) sends, per its
//! owner's manual (MIDI data format): notes on channel 1 as note-on `9n`
//! with velocity 0 for note-off, the damper as CC 64 (0/127), sostenuto
//! CC 66, soft CC 67, and active sensing `FE` about every 300 ms.
//!
//! ```toml
//! [imps.piano]
//! library = "p85"
//! config = { connect = "usb midi", enchanter = "enchanter" }
//!
//! [[wires]]
//! from = "piano"
//! to = "bard"
//! ```
//!
//! - **Playing**: notes and the sustain and sostenuto pedals go out of the
//!   imp (wire it to the bard); active sensing does not.
//! - **Settings**: while the soft pedal is down the keyboard edits the
//!   enchanter's settings instead (see [`settings`] for the key map) and
//!   nothing of it sounds; a note held from before still ends when it is
//!   released. The gestures reach the enchanter imp named `enchanter` as its
//!   control messages, sent from the RT part without allocating.
//! - **Active sensing**: once `FE` has arrived, more than
//!   `sensing_timeout_ms` (300) without a byte from the piano means it went
//!   away (cable pulled, power off): every note it left held gets its
//!   note-off and the pedals are lifted.
//!
//! `connect` is a case-insensitive part of the interface's port name; the
//! imp stays frozen while no port matches, like `midi_port`. `name`
//! (default: the imp's name) is impresario's own port.

pub mod messages;
pub mod settings;

use imp::ports::{Direction, Port, PortSpec};
use imp::{
    BlockContext, CreateContext, EventWriter, Imp, ImpError, MailError, Messenger, RtEvent, RtPart,
    TRANSIENT_BYTES,
};
use messages::{key, Msg, Outbox};
use serde::Deserialize;
use serde_json::{json, Value};
use settings::{Action, Settings, Target};
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, AtomicU8, Ordering::Relaxed};
use std::sync::Arc;

/// The imp's `config` in realm.toml.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// A case-insensitive part of the MIDI interface's port name.
    pub connect: String,
    /// Impresario's own port name (default: the imp's name).
    #[serde(default)]
    pub name: Option<String>,
    /// The enchanter imp the settings gestures go to.
    #[serde(default = "default_enchanter")]
    pub enchanter: String,
    /// Silence after active sensing that means the piano went away, in ms.
    #[serde(default = "default_sensing_timeout")]
    pub sensing_timeout_ms: u32,
}

fn default_enchanter() -> String {
    "enchanter".into()
}

fn default_sensing_timeout() -> u32 {
    300
}

/// What the RT part and the control part share: counters for `status`,
/// and a mirror of the enchanter's switches (so a toggle key knows which
/// way to turn). Atomics only: the engine thread never waits.
#[derive(Debug, Default)]
pub struct Shared {
    /// Settings mode (soft pedal down).
    pub settings_mode: AtomicBool,
    /// Notes passed on and still held.
    pub notes_held: AtomicU32,
    /// Active sensing is being watched.
    pub sensing: AtomicBool,
    /// Times the piano went silent after active sensing.
    pub sensing_timeouts: AtomicU64,
    /// Messages the realm took.
    pub sent: AtomicU64,
    /// Blocks on which the realm's queue was full (the messages waited).
    pub retried: AtomicU64,
    /// Messages waiting in the outbox.
    pub waiting: AtomicU32,
    /// Messages that could not be sent (outbox full, or refused as invalid).
    pub failed: AtomicU64,
    /// Numbers entered out of their target's range (not sent).
    pub out_of_range: AtomicU64,
    /// The selected zone's scale is `off` (a key signature then sets `major`).
    pub scale_off: AtomicBool,
    /// The selected zone's arpeggiator is on.
    pub arp_on: AtomicBool,
    /// The metronome is on.
    pub metronome_on: AtomicBool,
    /// Drum mode is on.
    pub drum_mode_on: AtomicBool,
    /// A drum pattern is playing.
    pub drums_on: AtomicBool,
    /// The selected drum pattern, 1..=5.
    pub drum_pattern: AtomicU8,
}

impl Shared {
    fn new() -> Shared {
        let s = Shared::default();
        // The enchanter's defaults, until its state arrives.
        s.scale_off.store(true, Relaxed);
        s.drum_pattern.store(1, Relaxed);
        s
    }

    /// Takes the enchanter's published state (what `get` shows).
    pub fn mirror(&self, state: &Value) {
        let on = |v: &Value| v.as_str() == Some("on");
        let g = &state["global"];
        self.metronome_on.store(on(&g["metronome"]), Relaxed);
        self.drum_mode_on.store(on(&g["drum_mode"]), Relaxed);
        self.drums_on.store(on(&g["drums"]), Relaxed);
        if let Some(p) = g["drum_pattern"].as_u64() {
            self.drum_pattern.store(p.min(255) as u8, Relaxed);
        }
        let zone = state["zones"]
            .as_array()
            .and_then(|zs| zs.iter().find(|z| z["name"] == g["selected"]));
        if let Some(z) = zone {
            self.scale_off
                .store(z["scale"].as_str() == Some("off"), Relaxed);
            self.arp_on.store(on(&z["arp"]), Relaxed);
        }
    }
}

/// The control part.
pub struct P85 {
    spec: PortSpec,
    port: Option<Port>,
    enchanter: String,
    messenger: Messenger,
    shared: Arc<Shared>,
    sample_rate: f64,
    sensing_timeout_ms: u32,
}

/// The RT part: the MIDI translation and the gesture sender.
pub struct P85Rt {
    player: Player,
    sender: imp::RtSender,
    enchanter: String,
}

impl Imp for P85 {
    type Config = Config;
    type Frozen = ();
    type Rt = P85Rt;

    fn create(ctx: &CreateContext, config: Config, _: Option<()>) -> Result<Self, ImpError> {
        if config.sensing_timeout_ms == 0 {
            return Err(ImpError::invalid("sensing_timeout_ms must be above 0"));
        }
        Ok(P85 {
            spec: PortSpec::new(
                Direction::In,
                config.name.unwrap_or_else(|| ctx.name().to_string()),
                Some(config.connect),
            ),
            port: None,
            enchanter: config.enchanter,
            messenger: ctx.messenger().clone(),
            shared: Arc::new(Shared::new()),
            sample_rate: ctx.sample_rate(),
            sensing_timeout_ms: config.sensing_timeout_ms,
        })
    }

    fn thaw(&mut self) -> Result<Option<P85Rt>, ImpError> {
        let sender = self
            .messenger
            .rt_sender()
            .map_err(|e| ImpError::invalid(e.to_string()))?;
        self.port = Some(Port::open(&self.spec)?);
        // The enchanter's switches, so toggles know their state.
        if let Err(e) = self.messenger.subscribe(&self.enchanter) {
            tracing::warn!("cannot follow the enchanter `{}`: {e}", self.enchanter);
        }
        tracing::info!(
            "P-85 port {} open, connected to `{}`; gestures go to `{}`",
            self.spec.name,
            self.spec.connect.as_deref().unwrap_or_default(),
            self.enchanter
        );
        Ok(Some(P85Rt {
            player: Player::new(
                self.sample_rate,
                self.sensing_timeout_ms,
                self.shared.clone(),
            ),
            sender,
            enchanter: self.enchanter.clone(),
        }))
    }

    fn freeze(&mut self) {
        self.port = None;
    }

    fn control(&mut self, message: Value) -> Result<Value, ImpError> {
        match message["cmd"].as_str() {
            Some("notify") if message["from"] == self.enchanter.as_str() => {
                self.shared.mirror(&message["state"]);
                Ok(json!({ "ok": true }))
            }
            Some("notify") => Ok(json!({ "ok": true })),
            _ => Err(ImpError::invalid(format!(
                "the p85 imp takes no control messages (it follows the enchanter's state), not {message}"
            ))),
        }
    }

    fn poll(&mut self) -> Result<Value, ImpError> {
        if let Some(port) = &self.port {
            if !port.is_alive() {
                return Err(ImpError::not_ready(format!(
                    "the port connected to `{}` went away",
                    self.spec.connect.as_deref().unwrap_or_default()
                )));
            }
        }
        let s = &self.shared;
        let failed = s.failed.load(Relaxed);
        if failed > 0 {
            tracing::debug!(
                "{failed} gestures could not be sent to `{}`",
                self.enchanter
            );
        }
        Ok(json!({
            "port": self.spec.name,
            "connect": self.spec.connect,
            "mode": if s.settings_mode.load(Relaxed) { "settings" } else { "playing" },
            "notes_held": s.notes_held.load(Relaxed),
            "sensing": s.sensing.load(Relaxed),
            "sensing_timeouts": s.sensing_timeouts.load(Relaxed),
            "gestures": {
                "sent": s.sent.load(Relaxed),
                "waiting": s.waiting.load(Relaxed),
                "retried": s.retried.load(Relaxed),
                "failed": failed,
                "out_of_range": s.out_of_range.load(Relaxed),
            },
        }))
    }
}

impl RtPart for P85Rt {
    fn process(&mut self, ctx: &BlockContext, input: &[RtEvent], out: &mut EventWriter<'_>) {
        let (sender, to) = (&self.sender, self.enchanter.as_str());
        self.player.process(ctx, input, out, &mut |m| {
            sender.try_send_fmt(to, format_args!("{m}"))
        });
    }

    fn save_transient(&self, buf: &mut [u8; TRANSIENT_BYTES]) {
        self.player.save(buf);
    }

    fn restore_transient(&mut self, buf: &[u8; TRANSIENT_BYTES]) -> bool {
        self.player.restore(buf)
    }

    fn all_notes_off(&mut self, out: &mut EventWriter<'_>) {
        self.player.release_all(0, out);
    }
}

/// The RT logic, apart from the realm's sender so unit tests drive it.
pub struct Player {
    settings: Settings,
    settings_mode: bool,
    /// Per note: 0 when not passed on, else its channel + 1.
    held: [u8; 128],
    /// Channels whose sustain / sostenuto went out down.
    sustain: u16,
    sostenuto: u16,
    /// Active sensing seen and not timed out; the piano's last byte.
    sensing: bool,
    last_seen: u64,
    timeout: u64,
    outbox: Outbox,
    shared: Arc<Shared>,
}

/// Marks the transient state of this build's layout.
const TRANSIENT_MAGIC: [u8; 4] = *b"P85\x01";

impl Player {
    /// A player at `sample_rate` that takes `timeout_ms` of silence after
    /// active sensing as the piano gone.
    pub fn new(sample_rate: f64, timeout_ms: u32, shared: Arc<Shared>) -> Player {
        Player {
            settings: Settings::new(sample_rate),
            settings_mode: false,
            held: [0; 128],
            sustain: 0,
            sostenuto: 0,
            sensing: false,
            last_seen: 0,
            timeout: (timeout_ms as f64 * sample_rate / 1000.0).round() as u64,
            outbox: Outbox::default(),
            shared,
        }
    }

    /// One block: translates `input`, and sends what gestures produced
    /// with `send` (until it refuses; the rest waits for the next block).
    pub fn process(
        &mut self,
        ctx: &BlockContext,
        input: &[RtEvent],
        out: &mut EventWriter<'_>,
        send: &mut dyn FnMut(&Msg) -> Result<(), MailError>,
    ) {
        let start = ctx.sample_position;
        let mut floor = 0u32;
        for e in input {
            let at = start + e.frame as u64;
            floor = floor.max(self.watch(at, start, floor, ctx.frames, out));
            self.event(e, at, out);
            floor = floor.max(e.frame);
        }
        let last = start + ctx.frames.max(1) as u64 - 1;
        self.watch(last, start, floor, ctx.frames, out);
        let Player {
            settings,
            outbox,
            shared,
            ..
        } = self;
        settings.tick(last, &mut |a| gesture(a, outbox, shared));
        self.flush(send);
        let held = self.held.iter().filter(|&&h| h != 0).count() as u32;
        let s = &self.shared;
        s.notes_held.store(held, Relaxed);
        s.settings_mode.store(self.settings_mode, Relaxed);
        s.sensing.store(self.sensing, Relaxed);
        s.waiting.store(self.outbox.len() as u32, Relaxed);
    }

    /// Sends the outbox in order until the realm's queue is full.
    fn flush(&mut self, send: &mut dyn FnMut(&Msg) -> Result<(), MailError>) {
        while let Some(m) = self.outbox.front() {
            match send(&m) {
                Ok(()) => {
                    self.shared.sent.fetch_add(1, Relaxed);
                    self.outbox.pop();
                }
                Err(MailError::Full) => {
                    // Kept, in order: the next block tries again.
                    self.shared.retried.fetch_add(1, Relaxed);
                    return;
                }
                Err(_) => {
                    // Malformed, or no realm: trying again cannot help.
                    self.shared.failed.fetch_add(1, Relaxed);
                    self.outbox.pop();
                }
            }
        }
    }

    /// Checks active sensing at sample `now`: past the timeout, the piano
    /// is gone. Returns the frame the releases went out at (or `floor`).
    fn watch(
        &mut self,
        now: u64,
        start: u64,
        floor: u32,
        frames: u32,
        out: &mut EventWriter<'_>,
    ) -> u32 {
        if !self.sensing {
            return floor;
        }
        let gone_at = self.last_seen + self.timeout + 1;
        if now < gone_at {
            return floor;
        }
        let frame = (gone_at.saturating_sub(start) as u32)
            .max(floor)
            .min(frames.saturating_sub(1));
        self.release_all(frame, out);
        self.sensing = false;
        self.shared.sensing_timeouts.fetch_add(1, Relaxed);
        if self.settings_mode {
            // Its soft pedal is as gone as the rest.
            self.settings_mode = false;
            let Player {
                settings,
                outbox,
                shared,
                ..
            } = self;
            settings.leave(&mut |a| gesture(a, outbox, shared));
        }
        frame
    }

    /// Note-offs for every note passed on and still held, pedals up.
    pub fn release_all(&mut self, frame: u32, out: &mut EventWriter<'_>) {
        for (note, h) in self.held.iter_mut().enumerate() {
            if *h != 0 {
                out.push(RtEvent::midi(frame, &[0x80 | (*h - 1), note as u8, 0]));
                *h = 0;
            }
        }
        for ch in 0..16u8 {
            if self.sustain & (1 << ch) != 0 {
                out.push(RtEvent::midi(frame, &[0xB0 | ch, 64, 0]));
            }
            if self.sostenuto & (1 << ch) != 0 {
                out.push(RtEvent::midi(frame, &[0xB0 | ch, 66, 0]));
            }
        }
        self.sustain = 0;
        self.sostenuto = 0;
    }

    /// One event from the piano at sample `at`.
    fn event(&mut self, e: &RtEvent, at: u64, out: &mut EventWriter<'_>) {
        let mut pass = *e;
        pass.port = 0;
        if e.kind != imp::event_kind::MIDI || e.len == 0 {
            out.push(pass);
            return;
        }
        // Any byte is a sign of life.
        self.last_seen = at;
        let b = e.bytes;
        let ch = b[0] & 0x0F;
        let Player {
            settings,
            outbox,
            shared,
            ..
        } = self;
        let mut send = |a| gesture(a, outbox, shared);
        match b[0] {
            0xFE => self.sensing = true,
            _ if e.is_note_on() => {
                let note = (b[1] & 0x7F) as usize;
                if self.settings_mode {
                    settings.key_down(note as u8, at, &mut send);
                } else {
                    self.held[note] = ch + 1;
                    out.push(pass);
                }
            }
            _ if e.is_note_off() => {
                let note = (b[1] & 0x7F) as usize;
                if self.held[note] != 0 {
                    // Played before the soft pedal went down: it ends as usual.
                    self.held[note] = 0;
                    out.push(pass);
                } else if self.settings_mode {
                    settings.key_up(note as u8, at, &mut send);
                }
                // Otherwise a settings key released after the pedal came
                // up: it never sounded, so no note-off either.
            }
            0xB0..=0xBF if e.len == 3 => {
                let down = b[2] >= 64;
                match b[1] {
                    67 => {
                        if down && !self.settings_mode {
                            self.settings_mode = true;
                        } else if !down && self.settings_mode {
                            self.settings_mode = false;
                            settings.leave(&mut send);
                        }
                    }
                    64 | 66 => {
                        let bits = if b[1] == 64 {
                            &mut self.sustain
                        } else {
                            &mut self.sostenuto
                        };
                        if down {
                            *bits |= 1 << ch;
                        } else {
                            *bits &= !(1 << ch);
                        }
                        out.push(pass);
                    }
                    _ => {
                        out.push(pass);
                    }
                }
            }
            _ => {
                out.push(pass);
            }
        }
    }

    /// Writes held notes, pedals, mode, sensing and waiting gestures.
    pub fn save(&self, buf: &mut [u8; TRANSIENT_BYTES]) {
        buf[..4].copy_from_slice(&TRANSIENT_MAGIC);
        buf[4..132].copy_from_slice(&self.held);
        buf[132..134].copy_from_slice(&self.sustain.to_le_bytes());
        buf[134..136].copy_from_slice(&self.sostenuto.to_le_bytes());
        buf[136] = u8::from(self.settings_mode);
        buf[137] = u8::from(self.sensing);
        buf[138..146].copy_from_slice(&self.last_seen.to_le_bytes());
        buf[146..148].copy_from_slice(&(self.outbox.len() as u16).to_le_bytes());
        for (i, m) in self.outbox.iter().enumerate() {
            let at = 148 + i * 6;
            buf[at..at + 6].copy_from_slice(&m.encode());
        }
    }

    /// Takes over what [`Player::save`] wrote; false for anything else.
    pub fn restore(&mut self, buf: &[u8; TRANSIENT_BYTES]) -> bool {
        if buf[..4] != TRANSIENT_MAGIC {
            return false;
        }
        self.held.copy_from_slice(&buf[4..132]);
        if self.held.iter().any(|&h| h > 16) {
            self.held = [0; 128];
            return false;
        }
        self.sustain = u16::from_le_bytes([buf[132], buf[133]]);
        self.sostenuto = u16::from_le_bytes([buf[134], buf[135]]);
        self.settings_mode = buf[136] != 0;
        self.sensing = buf[137] != 0;
        self.last_seen = u64::from_le_bytes(buf[138..146].try_into().unwrap_or([0; 8]));
        let waiting = u16::from_le_bytes([buf[146], buf[147]]) as usize;
        for i in 0..waiting.min(messages::OUTBOX) {
            let at = 148 + i * 6;
            match Msg::decode(&buf[at..at + 6]) {
                Some(m) => {
                    self.outbox.push(m);
                }
                None => {
                    self.shared.failed.fetch_add(1, Relaxed);
                }
            }
        }
        true
    }
}

/// Queues the messages of one gesture, resolving toggles against the
/// enchanter's mirrored state (and updating it, so a second tap before the
/// enchanter's next state turns the switch back).
fn gesture(a: Action, outbox: &mut Outbox, s: &Shared) {
    let mut queue = |m: Msg| {
        if !outbox.push(m) {
            s.failed.fetch_add(1, Relaxed);
        }
    };
    let switch = |flag: &AtomicBool| {
        let now_on = !flag.load(Relaxed);
        flag.store(now_on, Relaxed);
        if now_on {
            messages::ON
        } else {
            messages::OFF
        }
    };
    match a {
        Action::Number(t, v) => {
            let k = match t {
                Target::Program => key("program"),
                Target::Bank => key("bank"),
                Target::Output => key("output"),
                Target::Channel => key("out_channel"),
                Target::Zone => key("selected"),
            };
            queue(Msg::SetNumber(k, v as i32));
        }
        Action::OutOfRange(..) => {
            s.out_of_range.fetch_add(1, Relaxed);
        }
        Action::Recall(n) => queue(Msg::Recall(n)),
        Action::Save(n) => queue(Msg::Save(n)),
        Action::Octave(d) => queue(Msg::Adjust(key("octave"), d as i32)),
        Action::Semitone(d) => queue(Msg::Adjust(key("semitone"), d as i32)),
        Action::OctaveReset => queue(Msg::SetNumber(key("octave"), 0)),
        Action::SemitoneReset => queue(Msg::SetNumber(key("semitone"), 0)),
        Action::TransposeReset => {
            queue(Msg::SetNumber(key("octave"), 0));
            queue(Msg::SetNumber(key("semitone"), 0));
        }
        Action::Key(k) => {
            queue(Msg::SetText(
                key("key"),
                messages::FIRST_KEY_NAME + k as u16,
            ));
            // A key means nothing without a scale: major, unless one is set.
            if s.scale_off.swap(false, Relaxed) {
                queue(Msg::SetText(key("scale"), messages::MAJOR));
            }
        }
        Action::ArpToggle => queue(Msg::SetText(key("arp"), switch(&s.arp_on))),
        Action::ArpPattern(p) => queue(Msg::SetNumber(key("arp_pattern"), p as i32)),
        Action::DrumModeToggle => queue(Msg::SetText(key("drum_mode"), switch(&s.drum_mode_on))),
        Action::MetronomeToggle => queue(Msg::SetText(key("metronome"), switch(&s.metronome_on))),
        Action::DrumPattern(p) => {
            if s.drums_on.load(Relaxed) && s.drum_pattern.load(Relaxed) == p {
                s.drums_on.store(false, Relaxed);
                queue(Msg::SetText(key("drums"), messages::OFF));
            } else {
                s.drum_pattern.store(p, Relaxed);
                s.drums_on.store(true, Relaxed);
                queue(Msg::SetNumber(key("drum_pattern"), p as i32));
                queue(Msg::SetText(key("drums"), messages::ON));
            }
        }
        Action::Tempo(bpm) => queue(Msg::SetNumber(key("tempo"), bpm as i32)),
        Action::TimeSignature(t) => queue(Msg::SetText(
            key("time_signature"),
            messages::FIRST_TIME_SIGNATURE + t as u16,
        )),
    }
}

imp::export!(P85);

#[cfg(test)]
mod tests;
