//! # fluidsynth: a General MIDI synth in the engine
//!
//! Plays the MIDI that reaches it with FluidSynth (the fluidlite library)
//! and renders stereo audio into the engine's bus, on the engine's sample
//! clock. It makes sound with nothing else installed but a SoundFont.
//!
//! ```toml
//! [imps.synth]
//! library = "fluidsynth"
//! config = { soundfont = "/usr/share/sounds/sf2/TimGM6mb.sf2", gain = 0.3,
//!            channels = { "1" = { program = 0 }, "2" = { bank = 0, program = 48 } } }
//! ```
//!
//! - `soundfont`: an `.sf2` file (`~` is the home folder). Without it the
//!   usual places are searched (`/usr/share/sounds/sf2`,
//!   `/usr/share/soundfonts`, `~/.local/share/soundfonts`, and the
//!   `soundfonts` and `sounds/sf2` folders of `$XDG_DATA_DIRS`) for a
//!   General MIDI SoundFont. While none is found the imp stays frozen and
//!   says what to install; it thaws when one appears.
//! - `channels`: bank and program per MIDI channel (`"1"` … `"16"`); MIDI
//!   bank select (CC 0 / 32) and program change work too.
//! - `gain` (default 0.3), `voices` (most voices at once, default 64),
//!   `reverb = { on, room_size, damping, width, level }` (on by default),
//!   `chorus = { on, voices, level, speed, depth }` (off by default).
//!
//! Timing: FluidSynth renders in blocks of 64 samples and starts a note at
//! such a block's boundary, so each event takes effect at the boundary
//! nearest its frame: within ±32 samples (±0.7 ms at 48 kHz) of it.
//!
//! Control messages: `{"cmd": "soundfont", "path": "…"}` loads another
//! SoundFont (off the engine thread; the finished synth is swapped in
//! between two blocks and the old one fades out with its release), and
//! `{"cmd": "reload"}` loads the current one again (after editing it).
//!
//! Hot reload: a rebuilt `fluidsynth` takes over the programs and the
//! channel controllers (volume, pan, expression, modulation, sound
//! controllers, effect sends, pitch bend). Notes sounding at the swap are
//! released and end with their own release on the old build, which the
//! engine keeps rendering (fading out over up to a second) until it is
//! silent; new notes play on the new build. Nothing is cut, nothing sticks.

use sf2_search as soundfonts;
mod synth;

use imp::{
    BlockContext, CreateContext, EventWriter, Imp, ImpError, RtEvent, RtPart, TRANSIENT_BYTES,
};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::Arc;
use synth::{Chorus, Reverb, Setup, Synth, FLUID_BLOCK};

/// Longest block the RT part renders a fading synth for.
const MAX_FRAMES: usize = 8192;
/// How long an old synth fades out after a SoundFont change, in seconds.
const FADE_SECONDS: f64 = 0.5;
/// Controllers carried to a new build: modulation, volume, pan,
/// expression, sound controllers 1–5, reverb and chorus send.
const CARRIED_CCS: [u8; 10] = [1, 7, 10, 11, 71, 72, 73, 74, 91, 93];
/// Version tag of the transient layout.
const TRANSIENT_TAG: &[u8; 8] = b"fluid\0\0\x01";

/// Reverb settings.
#[derive(Clone, Copy, Debug, Deserialize, Serialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct ReverbConfig {
    /// Reverb on.
    pub on: bool,
    /// 0.0 ..= 1.2
    pub room_size: f64,
    /// 0.0 ..= 1.0
    pub damping: f64,
    /// 0.0 ..= 100.0
    pub width: f64,
    /// 0.0 ..= 1.0
    pub level: f64,
}

impl Default for ReverbConfig {
    fn default() -> Self {
        ReverbConfig {
            on: true,
            room_size: 0.2,
            damping: 0.0,
            width: 0.5,
            level: 0.9,
        }
    }
}

/// Chorus settings.
#[derive(Clone, Copy, Debug, Deserialize, Serialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct ChorusConfig {
    /// Chorus on.
    pub on: bool,
    /// 0 ..= 99
    pub voices: i32,
    /// 0.0 ..= 10.0
    pub level: f64,
    /// Hz, 0.29 ..= 5.0
    pub speed: f64,
    /// ms, 0.0 ..= 21.0
    pub depth: f64,
}

impl Default for ChorusConfig {
    fn default() -> Self {
        ChorusConfig {
            on: false,
            voices: 3,
            level: 2.0,
            speed: 0.3,
            depth: 8.0,
        }
    }
}

/// Bank and program of one channel.
#[derive(Clone, Copy, Debug, Default, Deserialize, Serialize, PartialEq, Eq)]
#[serde(default, deny_unknown_fields)]
pub struct ChannelPreset {
    /// Bank 0 ..= 16383 (128: General MIDI drum kits).
    pub bank: u16,
    /// Program 0 ..= 127.
    pub program: u8,
}

/// The synth's configuration.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// The SoundFont; `None` searches the usual places.
    pub soundfont: Option<PathBuf>,
    /// Master gain, 0.0 ..= 10.0.
    pub gain: f32,
    /// Most voices sounding at once, 1 ..= 4096.
    pub voices: u16,
    /// Reverb.
    pub reverb: ReverbConfig,
    /// Chorus.
    pub chorus: ChorusConfig,
    /// Bank and program per channel, keyed `"1"` … `"16"`.
    pub channels: BTreeMap<String, ChannelPreset>,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            soundfont: None,
            gain: 0.3,
            voices: 64,
            reverb: ReverbConfig::default(),
            chorus: ChorusConfig::default(),
            channels: BTreeMap::new(),
        }
    }
}

impl Config {
    /// Checks ranges; returns the channel presets by 0-based channel.
    fn validate(&self) -> Result<Vec<(u8, ChannelPreset)>, ImpError> {
        let bad = |what: String| Err(ImpError::invalid(what));
        if !(0.0..=10.0).contains(&self.gain) {
            return bad(format!(
                "gain = {} is out of range; use 0.0 to 10.0",
                self.gain
            ));
        }
        if !(1..=4096).contains(&self.voices) {
            return bad(format!(
                "voices = {} is out of range; use 1 to 4096",
                self.voices
            ));
        }
        let r = &self.reverb;
        if !(0.0..=1.2).contains(&r.room_size)
            || !(0.0..=1.0).contains(&r.damping)
            || !(0.0..=100.0).contains(&r.width)
            || !(0.0..=1.0).contains(&r.level)
        {
            return bad(
                "reverb: room_size 0.0–1.2, damping 0.0–1.0, width 0–100, level 0.0–1.0".into(),
            );
        }
        let c = &self.chorus;
        if !(0..=99).contains(&c.voices)
            || !(0.0..=10.0).contains(&c.level)
            || !(0.29..=5.0).contains(&c.speed)
            || !(0.0..=21.0).contains(&c.depth)
        {
            return bad(
                "chorus: voices 0–99, level 0.0–10.0, speed 0.29–5.0 Hz, depth 0–21 ms".into(),
            );
        }
        let mut presets = Vec::new();
        for (key, p) in &self.channels {
            let ch: u8 = match key.parse() {
                Ok(ch) if (1..=16).contains(&ch) => ch,
                _ => return bad(format!("channels.\"{key}\": channels are \"1\" to \"16\"")),
            };
            if p.program > 127 || p.bank > 16383 {
                return bad(format!(
                    "channels.\"{key}\": program 0–127, bank 0–16383 (got bank {}, program {})",
                    p.bank, p.program
                ));
            }
            presets.push((ch - 1, *p));
        }
        Ok(presets)
    }

    fn setup(&self, sample_rate: f64) -> Setup {
        Setup {
            sample_rate,
            voices: self.voices,
            gain: self.gain,
            reverb: self.reverb.on.then_some(Reverb {
                room_size: self.reverb.room_size,
                damping: self.reverb.damping,
                width: self.reverb.width,
                level: self.reverb.level,
            }),
            chorus: self.chorus.on.then_some(Chorus {
                voices: self.chorus.voices,
                level: self.chorus.level,
                speed: self.chorus.speed,
                depth: self.chorus.depth,
            }),
        }
    }
}

/// What the RT part tells the control part.
struct Shared {
    /// Per channel: bank << 8 | program, as the synth has it.
    programs: [AtomicU32; 16],
    events: AtomicU64,
    soundfont_swaps: AtomicU64,
}

impl Default for Shared {
    fn default() -> Self {
        Shared {
            programs: std::array::from_fn(|_| AtomicU32::new(0)),
            events: AtomicU64::new(0),
            soundfont_swaps: AtomicU64::new(0),
        }
    }
}

/// State carried across a respawn (the RT part carries the rest).
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Frozen {
    /// A SoundFont chosen by a control message, over the config's.
    soundfont: Option<PathBuf>,
}

/// The control part.
pub struct FluidImp {
    config: Config,
    presets: Vec<(u8, ChannelPreset)>,
    sample_rate: f64,
    /// A SoundFont chosen by a control message (kept in the vault).
    chosen: Option<PathBuf>,
    /// The SoundFont in use.
    loaded: Option<PathBuf>,
    to_rt: Option<rtrb::Producer<Synth>>,
    from_rt: Option<rtrb::Consumer<Synth>>,
    shared: Arc<Shared>,
    /// Publishes the programs to subscribers (the enchanter, controllers).
    messenger: imp::Messenger,
    /// What was published last, so only changes go out.
    published: Option<Value>,
}

/// The RT part: plays the synth into the engine's bus.
pub struct FluidRt {
    synth: Synth,
    fading: Option<Synth>,
    faded: usize,
    fade_frames: usize,
    scratch: Box<[f32]>,
    incoming: rtrb::Consumer<Synth>,
    spent: rtrb::Producer<Synth>,
    /// Frames consumed of FluidSynth's current 64-frame block.
    phase: usize,
    shared: Arc<Shared>,
}

impl FluidImp {
    fn soundfont(&self) -> Result<PathBuf, ImpError> {
        if let Some(p) = self.chosen.as_ref().or(self.config.soundfont.as_ref()) {
            let p = soundfonts::expand_home(p);
            if !p.is_file() {
                return Err(ImpError::not_ready(format!(
                    "SoundFont {} not found; fix `soundfont` in realm.toml (the synth thaws when the file appears)",
                    p.display()
                )));
            }
            return Ok(p);
        }
        let dirs = soundfonts::search_dirs();
        soundfonts::find(&dirs).ok_or_else(|| {
            ImpError::not_ready(format!(
                "no SoundFont found in {}; install one (Debian: `apt-get install timgm6mb-soundfont`; \
                 `cargo xtask run` does it) or set `soundfont = \"/path/to/font.sf2\"`",
                dirs.iter()
                    .map(|d| d.display().to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            ))
        })
    }

    /// Builds a synth with its SoundFont and the channel presets (config,
    /// then what the running synth had). Control thread.
    fn build(&self, path: &std::path::Path) -> Result<Synth, ImpError> {
        let mut synth = Synth::load(path, &self.config.setup(self.sample_rate))
            .map_err(|e| ImpError::invalid(e.to_string()))?;
        for (ch, p) in &self.presets {
            if !synth.select(*ch, p.bank, p.program) {
                tracing::warn!(
                    "channel {}: {} has no preset bank {} program {}",
                    ch + 1,
                    path.display(),
                    p.bank,
                    p.program
                );
            }
        }
        Ok(synth)
    }

    fn collect_spent(&mut self) {
        if let Some(rx) = self.from_rt.as_mut() {
            while let Ok(old) = rx.pop() {
                drop(old);
            }
        }
    }

    /// Loads `path` and hands the finished synth to the RT part.
    fn swap_soundfont(&mut self, path: PathBuf) -> Result<Value, ImpError> {
        self.collect_spent();
        let mut synth = self.build(&path)?;
        // The running synth's programs go on.
        for ch in 0..16u8 {
            let v = self.shared.programs[ch as usize].load(Ordering::Relaxed);
            synth.select(ch, (v >> 8) as u16, v as u8);
        }
        let Some(tx) = self.to_rt.as_mut() else {
            return Err(ImpError::new(
                imp::ErrorKind::NotReady,
                "the synth is not running; the SoundFont is used when it thaws",
            ));
        };
        if tx.push(synth).is_err() {
            return Err(ImpError::new(
                imp::ErrorKind::Other,
                "a SoundFont change is already on its way; try again",
            ));
        }
        tracing::info!("SoundFont {} loaded", path.display());
        self.loaded = Some(path.clone());
        Ok(json!({ "loaded": path }))
    }
}

impl Imp for FluidImp {
    type Config = Config;
    type Frozen = Frozen;
    type Rt = FluidRt;

    fn create(
        ctx: &CreateContext,
        config: Config,
        frozen: Option<Frozen>,
    ) -> Result<Self, ImpError> {
        let presets = config.validate()?;
        Ok(FluidImp {
            config,
            presets,
            sample_rate: ctx.sample_rate(),
            chosen: frozen.and_then(|f| f.soundfont),
            loaded: None,
            to_rt: None,
            from_rt: None,
            shared: Arc::new(Shared::default()),
            messenger: ctx.messenger().clone(),
            published: None,
        })
    }

    fn thaw(&mut self) -> Result<Option<FluidRt>, ImpError> {
        let path = self.soundfont()?;
        let synth = self.build(&path)?;
        for ch in 0..16u8 {
            let (bank, program) = synth.program(ch).unwrap_or((0, 0));
            self.shared.programs[ch as usize]
                .store((bank as u32) << 8 | program as u32, Ordering::Relaxed);
        }
        tracing::info!(
            "SoundFont {} loaded at {} Hz",
            path.display(),
            self.sample_rate
        );
        self.loaded = Some(path);
        let (to_rt, incoming) = rtrb::RingBuffer::new(2);
        let (spent, from_rt) = rtrb::RingBuffer::new(4);
        self.to_rt = Some(to_rt);
        self.from_rt = Some(from_rt);
        Ok(Some(FluidRt {
            synth,
            fading: None,
            faded: 0,
            fade_frames: (FADE_SECONDS * self.sample_rate) as usize,
            scratch: vec![0.0; 2 * MAX_FRAMES].into_boxed_slice(),
            incoming,
            spent,
            phase: 0,
            shared: self.shared.clone(),
        }))
    }

    fn freeze(&mut self) -> Frozen {
        self.collect_spent();
        self.to_rt = None;
        self.from_rt = None;
        Frozen {
            soundfont: self.chosen.clone(),
        }
    }

    fn poll(&mut self) -> Result<Value, ImpError> {
        self.collect_spent();
        let programs: BTreeMap<String, Value> = (0..16)
            .filter_map(|ch| {
                let v = self.shared.programs[ch].load(Ordering::Relaxed);
                (v != 0 || ch == 0 || ch == 9).then(|| {
                    (
                        (ch + 1).to_string(),
                        json!({ "bank": v >> 8, "program": v & 0xFF }),
                    )
                })
            })
            .collect();
        // Subscribers hear of a program or SoundFont change at the next poll.
        let state = json!({ "soundfont": self.loaded, "programs": programs });
        if self.published.as_ref() != Some(&state) {
            if let Err(e) = self.messenger.publish(&state) {
                tracing::debug!("programs not published: {e}");
            }
            self.published = Some(state);
        }
        Ok(json!({
            "soundfont": self.loaded,
            "sample_rate": self.sample_rate,
            "voices": self.config.voices,
            "events": self.shared.events.load(Ordering::Relaxed),
            "soundfont_swaps": self.shared.soundfont_swaps.load(Ordering::Relaxed),
            "programs": programs,
        }))
    }

    fn control(&mut self, message: Value) -> Result<Value, ImpError> {
        match message.get("cmd").and_then(Value::as_str) {
            Some("soundfont") => {
                let Some(path) = message.get("path").and_then(Value::as_str) else {
                    return Err(ImpError::invalid(
                        "`soundfont` takes a path: {\"cmd\": \"soundfont\", \"path\": \"/path/to/font.sf2\"}",
                    ));
                };
                let path = soundfonts::expand_home(std::path::Path::new(path));
                let reply = self.swap_soundfont(path.clone())?;
                self.chosen = Some(path);
                Ok(reply)
            }
            Some("reload") => {
                let path = self.soundfont()?;
                self.swap_soundfont(path)
            }
            _ => Err(ImpError::invalid(
                "unknown message; the synth takes {\"cmd\": \"soundfont\", \"path\": \"…\"} and {\"cmd\": \"reload\"}",
            )),
        }
    }

    fn get_vault_data(&self) -> Option<Value> {
        self.chosen.as_ref().map(|p| json!({ "soundfont": p }))
    }

    fn set_vault_data(&mut self, data: Value) -> Result<(), ImpError> {
        if self.chosen.is_none() {
            self.chosen = data
                .get("soundfont")
                .and_then(Value::as_str)
                .map(PathBuf::from);
        }
        Ok(())
    }
}

impl FluidRt {
    /// Renders the synth from frame `from` to `to`, keeping track of where
    /// FluidSynth is in its 64-frame block.
    fn render(&mut self, left: &mut [f32], right: &mut [f32], from: usize, to: usize) {
        if to > from {
            self.synth.render(&mut left[from..to], &mut right[from..to]);
            self.phase = (self.phase + (to - from)) % FLUID_BLOCK;
        }
    }

    /// The frame an event at `frame` takes effect from: the boundary of
    /// FluidSynth's 64-frame blocks nearest to it (or now, when that
    /// boundary has been rendered already).
    fn boundary(&self, pos: usize, frame: usize, frames: usize) -> usize {
        let first = (pos + (FLUID_BLOCK - self.phase) % FLUID_BLOCK) as isize;
        let k =
            (frame as isize - first + FLUID_BLOCK as isize / 2).div_euclid(FLUID_BLOCK as isize);
        let nearest = first + k * FLUID_BLOCK as isize;
        if nearest <= pos as isize {
            pos
        } else {
            (nearest as usize).min(frames)
        }
    }

    fn note_program(&self, bytes: &[u8]) {
        let status = bytes.first().copied().unwrap_or(0);
        let kind = status & 0xF0;
        let bank_select = kind == 0xB0 && matches!(bytes.get(1), Some(0) | Some(32));
        if kind == 0xC0 || bank_select {
            let ch = status & 0x0F;
            if let Some((bank, program)) = self.synth.program(ch) {
                self.shared.programs[ch as usize]
                    .store((bank as u32) << 8 | program as u32, Ordering::Relaxed);
            }
        }
    }

    /// Mixes the fading synth (after a SoundFont change) into the block.
    fn fade(&mut self, left: &mut [f32], right: &mut [f32]) {
        let Some(old) = self.fading.as_mut() else {
            return;
        };
        let frames = left.len().min(MAX_FRAMES);
        let (sl, sr) = self.scratch.split_at_mut(MAX_FRAMES);
        old.render(&mut sl[..frames], &mut sr[..frames]);
        let total = self.fade_frames.max(1) as f32;
        for i in 0..frames {
            let g = (1.0 - (self.faded + i) as f32 / total).max(0.0);
            left[i] += sl[i] * g;
            right[i] += sr[i] * g;
        }
        self.faded += frames;
        if self.faded >= self.fade_frames {
            if let Some(old) = self.fading.take() {
                if let Err(rtrb::PushError::Full(old)) = self.spent.push(old) {
                    // Cannot happen (the control part drains every poll);
                    // leaking beats freeing on the engine thread.
                    std::mem::forget(old);
                }
            }
        }
    }
}

impl RtPart for FluidRt {
    const AUDIO_CHANNELS: u32 = 2;

    fn process(&mut self, _ctx: &BlockContext, input: &[RtEvent], out: &mut EventWriter<'_>) {
        if let Ok(mut new) = self.incoming.pop() {
            std::mem::swap(&mut self.synth, &mut new);
            let mut old = new;
            old.release_all();
            if let Some(previous) = self.fading.replace(old) {
                if let Err(rtrb::PushError::Full(previous)) = self.spent.push(previous) {
                    std::mem::forget(previous);
                }
            }
            self.faded = 0;
            self.phase = 0;
            self.shared.soundfont_swaps.fetch_add(1, Ordering::Relaxed);
        }
        let Some((left, right)) = out.audio().stereo() else {
            // No audio buffers (a block longer than the engine renders):
            // the events still reach the synth.
            for e in input {
                self.synth.midi(e.midi_bytes());
            }
            return;
        };
        let frames = left.len();
        let mut pos = 0;
        for e in input {
            let at = self.boundary(pos, e.frame as usize, frames);
            self.render(left, right, pos, at);
            pos = at;
            self.synth.midi(e.midi_bytes());
            self.note_program(e.midi_bytes());
        }
        self.render(left, right, pos, frames);
        self.fade(left, right);
        self.shared
            .events
            .fetch_add(input.len() as u64, Ordering::Relaxed);
    }

    /// Programs, controllers and pitch bend, for a rebuilt synth.
    fn save_transient(&self, buf: &mut [u8; TRANSIENT_BYTES]) {
        buf[..8].copy_from_slice(TRANSIENT_TAG);
        let mut at = 8;
        for ch in 0..16u8 {
            let (bank, program) = self.synth.program(ch).unwrap_or((0, 0));
            buf[at..at + 2].copy_from_slice(&bank.to_le_bytes());
            buf[at + 2] = program;
            at += 3;
            for cc in CARRIED_CCS {
                buf[at] = self.synth.cc(ch, cc);
                at += 1;
            }
            buf[at..at + 2].copy_from_slice(&self.synth.pitch_bend(ch).to_le_bytes());
            at += 2;
        }
    }

    fn restore_transient(&mut self, buf: &[u8; TRANSIENT_BYTES]) -> bool {
        if &buf[..8] != TRANSIENT_TAG {
            // Another layout: the new build starts from its config.
            return true;
        }
        let mut at = 8;
        for ch in 0..16u8 {
            let bank = u16::from_le_bytes([buf[at], buf[at + 1]]);
            let program = buf[at + 2];
            at += 3;
            self.synth.set_program(ch, bank, program);
            for cc in CARRIED_CCS {
                self.synth.midi(&[0xB0 | ch, cc, buf[at] & 0x7F]);
                at += 1;
            }
            let bend = u16::from_le_bytes([buf[at], buf[at + 1]]).min(16383);
            self.synth
                .midi(&[0xE0 | ch, (bend & 0x7F) as u8, (bend >> 7) as u8]);
            at += 2;
            self.shared.programs[ch as usize]
                .store((bank as u32) << 8 | program as u32, Ordering::Relaxed);
        }
        true
    }

    fn all_notes_off(&mut self, _out: &mut EventWriter<'_>) {
        self.synth.release_all();
    }
}

imp::export!(FluidImp);
