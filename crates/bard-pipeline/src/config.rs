//! The bard's configuration as it lives in the vault (JSON), its validation,
//! and the control messages that change it.
//!
//! Everything here runs off the engine thread and may allocate.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::limits::*;

/// The whole bard configuration. `BardConfig::default()` is a transparent
/// pass-through: one zone that takes every note and changes nothing.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct BardConfig {
    /// Keyboard zones; a note goes through every zone it matches (layering),
    /// and a note that matches no zone is silent (splits).
    pub zones: Vec<ZoneConfig>,
    /// Stage 6: global transpose, applied to every note except drum notes.
    pub transpose: Transpose,
    /// Pass non-note messages (pedals, CC, pitch bend, aftertouch…) on:
    /// along the zones of their source and channel, else to `thru_output`.
    pub pass_other: bool,
    /// Numbered output of the non-note messages that no zone takes (other
    /// sources or channels, system messages).
    pub thru_output: u8,
    /// Seed of the arpeggiator's random mode (deterministic).
    pub seed: u64,
}

impl Default for BardConfig {
    fn default() -> Self {
        BardConfig {
            zones: vec![ZoneConfig::default()],
            transpose: Transpose::default(),
            pass_other: true,
            thru_output: 0,
            seed: 0x5eed_b47d,
        }
    }
}

/// Stage 6: transpose by octaves and semitones (they add up).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Transpose {
    /// -10..=10
    pub octaves: i8,
    /// -127..=127
    pub semitones: i8,
}

impl Transpose {
    /// Checks the ranges (octaves -10..=10, semitones -127..=127); `p` is
    /// the path of the field for the error.
    fn validate(&self, p: &str) -> Result<(), ConfigError> {
        range(&format!("{p}.octaves"), self.octaves as f64, -10.0, 10.0)?;
        range(
            &format!("{p}.semitones"),
            self.semitones as f64,
            -127.0,
            127.0,
        )
    }

    /// Total shift in semitones.
    pub fn total(&self) -> i16 {
        self.octaves as i16 * 12 + self.semitones as i16
    }
}

/// A zone: which notes it takes (source, channel, note range, velocity
/// window) and the stages they go through.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ZoneConfig {
    /// Free text for humans (and the control messages that name zones).
    pub name: String,
    /// Source number (the input port as wired in `realm.toml`); `None` = any.
    pub source: Option<u8>,
    /// Input MIDI channel 1..=16; `None` = any.
    pub channel: Option<u8>,
    /// Lowest input note taken (inclusive).
    pub low: u8,
    /// Highest input note taken (inclusive).
    pub high: u8,
    /// Lowest input velocity taken (inclusive, 1..=127).
    pub vel_low: u8,
    /// Highest input velocity taken (inclusive, 1..=127).
    pub vel_high: u8,
    /// Stage 1.
    pub velocity: VelocityConfig,
    /// Stage 2; `None` = off.
    pub scale: Option<ScaleConfig>,
    /// Stage 3; `None` = off.
    pub chord: Option<ChordConfig>,
    /// Stage 4; `None` = off.
    pub arp: Option<ArpConfig>,
    /// Stage 5 (step patterns); `None` = off.
    pub movement: Option<MovementConfig>,
    /// Stage 5 (drum mode for played notes); `None` = off.
    pub drums: Option<DrumConfig>,
    /// Stage 7: numbered output of this zone.
    pub output: u8,
    /// Output channel 1..=16; `None` = keep the input channel.
    pub out_channel: Option<u8>,
    /// Pedals, control changes, pitch bend, pressure and program changes
    /// from this zone's source and channel go to this zone's output and
    /// channel (default); `false` opts the zone out.
    pub controllers: bool,
    /// Stage 6: this zone's own transpose (octaves + semitones, same
    /// ranges as the global one), added to the global transpose; not
    /// applied to drum notes.
    pub transpose: Transpose,
    /// Takes played notes (default). `false` makes a zone that only plays
    /// its `movement` (run `always`): it matches no played note and no
    /// controller, whatever its source, channel and note range say. The
    /// enchanter's drum patterns and metronome are such zones.
    pub notes: bool,
}

impl Default for ZoneConfig {
    fn default() -> Self {
        ZoneConfig {
            name: String::new(),
            source: None,
            channel: None,
            low: 0,
            high: 127,
            vel_low: 1,
            vel_high: 127,
            velocity: VelocityConfig::default(),
            scale: None,
            chord: None,
            arp: None,
            movement: None,
            drums: None,
            output: 0,
            out_channel: None,
            controllers: true,
            transpose: Transpose::default(),
            notes: true,
        }
    }
}

/// Stage 1: `out = min + (max - min) * ((v - 1) / 126) ^ curve`, or `fixed`.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct VelocityConfig {
    /// Exponent, 0.1..=10; 1 is linear, above 1 softer, below 1 harder.
    pub curve: f64,
    /// When set, every note gets this velocity (1..=127).
    pub fixed: Option<u8>,
    /// Output window, 1..=127, `min <= max`.
    pub min: u8,
    /// Output window, 1..=127.
    pub max: u8,
}

impl Default for VelocityConfig {
    fn default() -> Self {
        VelocityConfig {
            curve: 1.0,
            fixed: None,
            min: 1,
            max: 127,
        }
    }
}

/// A pitch class, written as a name ("C", "F#", "Bb") or a number 0..=11.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Key(pub u8);

const KEY_NAMES: [&str; 12] = [
    "C", "C#", "D", "D#", "E", "F", "F#", "G", "G#", "A", "A#", "B",
];

impl Key {
    /// Parses "C", "c#", "Db", "B", ...
    pub fn parse(s: &str) -> Option<Key> {
        let mut chars = s.trim().chars();
        let base = match chars.next()?.to_ascii_uppercase() {
            'C' => 0i8,
            'D' => 2,
            'E' => 4,
            'F' => 5,
            'G' => 7,
            'A' => 9,
            'B' => 11,
            _ => return None,
        };
        let acc = match chars.as_str() {
            "" => 0,
            "#" | "♯" | "s" => 1,
            "b" | "♭" => -1,
            _ => return None,
        };
        Some(Key((base + acc).rem_euclid(12) as u8))
    }
}

impl Serialize for Key {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(KEY_NAMES[(self.0 % 12) as usize])
    }
}

impl<'de> Deserialize<'de> for Key {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Repr {
            Num(u8),
            Name(String),
        }
        match Repr::deserialize(d)? {
            Repr::Num(n) if n < 12 => Ok(Key(n)),
            Repr::Num(n) => Err(serde::de::Error::custom(format!(
                "key number {n} is not a pitch class 0..=11"
            ))),
            Repr::Name(s) => Key::parse(&s).ok_or_else(|| {
                serde::de::Error::custom(format!(
                    "{s:?} is not a key name like \"C\", \"F#\", \"Bb\""
                ))
            }),
        }
    }
}

/// Scales. `Custom` is a user pitch-class set relative to the key.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ScaleKind {
    /// Major.
    #[default]
    #[serde(alias = "major")]
    Ionian,
    Dorian,
    Phrygian,
    Lydian,
    Mixolydian,
    /// Natural minor.
    #[serde(alias = "minor", alias = "natural_minor")]
    Aeolian,
    Locrian,
    HarmonicMinor,
    /// Ascending melodic minor.
    MelodicMinor,
    MajorPentatonic,
    MinorPentatonic,
    /// Minor blues: 1 b3 4 b5 5 b7.
    Blues,
    WholeTone,
    Chromatic,
    /// Pitch classes 0..=11 relative to the key; 0 is added if missing.
    Custom(Vec<u8>),
}

/// Which way a note outside the scale moves.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Snap {
    /// To the nearest scale note below.
    Down,
    /// To the nearest scale note above.
    Up,
    /// To the nearest scale note; a tie goes down.
    #[default]
    Nearest,
}

/// Stage 2.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ScaleConfig {
    /// Tonic.
    pub key: Key,
    /// Scale.
    pub scale: ScaleKind,
    /// Snapping of out-of-scale notes.
    pub snap: Snap,
    /// White keys play successive scale degrees (middle C = the tonic of
    /// octave 4); black keys are silent.
    pub white_keys: bool,
}

/// Named chords.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ChordName {
    #[serde(rename = "maj")]
    Maj,
    #[serde(rename = "min")]
    Min,
    #[serde(rename = "7")]
    Dom7,
    #[serde(rename = "maj7")]
    Maj7,
    #[serde(rename = "m7")]
    Min7,
    #[serde(rename = "dim")]
    Dim,
    #[serde(rename = "aug")]
    Aug,
    #[serde(rename = "sus2")]
    Sus2,
    #[serde(rename = "sus4")]
    Sus4,
    #[serde(rename = "add9")]
    Add9,
    #[serde(rename = "6")]
    Six,
    #[serde(rename = "m6")]
    Min6,
    #[serde(rename = "9")]
    Nine,
}

impl ChordName {
    /// Semitone intervals of the chord.
    pub fn intervals(self) -> &'static [i8] {
        match self {
            ChordName::Maj => &[0, 4, 7],
            ChordName::Min => &[0, 3, 7],
            ChordName::Dom7 => &[0, 4, 7, 10],
            ChordName::Maj7 => &[0, 4, 7, 11],
            ChordName::Min7 => &[0, 3, 7, 10],
            ChordName::Dim => &[0, 3, 6],
            ChordName::Aug => &[0, 4, 8],
            ChordName::Sus2 => &[0, 2, 7],
            ChordName::Sus4 => &[0, 5, 7],
            ChordName::Add9 => &[0, 4, 7, 14],
            ChordName::Six => &[0, 4, 7, 9],
            ChordName::Min6 => &[0, 3, 7, 9],
            ChordName::Nine => &[0, 4, 7, 10, 14],
        }
    }
}

/// A chord: a name (`"maj7"`) or a raw interval list (`[0, 7, 12]`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum ChordShape {
    Named(ChordName),
    Intervals(Vec<i8>),
}

impl Default for ChordShape {
    fn default() -> Self {
        ChordShape::Named(ChordName::Maj)
    }
}

/// Stage 3.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ChordConfig {
    /// The chord.
    pub shape: ChordShape,
    /// 0 = root position; n moves the n lowest notes up an octave.
    pub inversion: u8,
    /// Build the chord from scale degrees of the zone's scale: a named chord
    /// gives its degree pattern (triads 1-3-5, sevenths 1-3-5-7, sus2 1-2-5,
    /// sus4 1-4-5, add9 1-3-5-9, sixths 1-3-5-6, 9 1-3-5-7-9) and the scale
    /// gives the quality; raw intervals count scale steps.
    pub diatonic: bool,
}

/// Arpeggiator order.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ArpMode {
    #[default]
    Up,
    Down,
    UpDown,
    DownUp,
    AsPlayed,
    Random,
    Chord,
}

/// A note value: 1/1 .. 1/32, straight, triplet ("1/8T") or dotted ("1/8.").
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Rate {
    /// 1, 2, 4, 8, 16 or 32.
    pub denominator: u8,
    /// Straight, triplet or dotted.
    pub feel: Feel,
}

/// Rhythmic feel of a [`Rate`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Feel {
    Straight,
    Triplet,
    Dotted,
}

impl Default for Rate {
    fn default() -> Self {
        Rate {
            denominator: 16,
            feel: Feel::Straight,
        }
    }
}

impl Rate {
    /// Length of one step in beats (quarter notes).
    pub fn beats(&self) -> f64 {
        let base = 4.0 / self.denominator as f64;
        match self.feel {
            Feel::Straight => base,
            Feel::Triplet => base * 2.0 / 3.0,
            Feel::Dotted => base * 1.5,
        }
    }

    /// Parses "1/16", "1/8T", "1/4." ("d"/"D" also means dotted).
    pub fn parse(s: &str) -> Option<Rate> {
        let rest = s.trim().strip_prefix("1/")?;
        let (num, feel) = if let Some(n) = rest.strip_suffix(['T', 't']) {
            (n, Feel::Triplet)
        } else if let Some(n) = rest.strip_suffix(['.', 'd', 'D']) {
            (n, Feel::Dotted)
        } else {
            (rest, Feel::Straight)
        };
        let denominator: u8 = num.parse().ok()?;
        matches!(denominator, 1 | 2 | 4 | 8 | 16 | 32).then_some(Rate { denominator, feel })
    }
}

impl fmt::Display for Rate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let suffix = match self.feel {
            Feel::Straight => "",
            Feel::Triplet => "T",
            Feel::Dotted => ".",
        };
        write!(f, "1/{}{}", self.denominator, suffix)
    }
}

impl Serialize for Rate {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Rate {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Rate::parse(&s).ok_or_else(|| {
            serde::de::Error::custom(format!(
                "{s:?} is not a rate: 1/1, 1/2, 1/4, 1/8, 1/16 or 1/32, optionally followed by T (triplet) or . (dotted)"
            ))
        })
    }
}

/// Stage 4.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ArpConfig {
    /// Order.
    pub mode: ArpMode,
    /// Step length, follows the engine tempo.
    pub rate: Rate,
    /// Note length as a fraction of the step, 0.01..=1.
    pub gate: f64,
    /// Octave range 1..=4.
    pub octaves: u8,
    /// Keep playing released notes until a new key is pressed with none held.
    pub latch: bool,
    /// 0.5 (straight) ..= 0.75: where the second step of each pair falls.
    pub swing: f64,
    /// Wait for the next grid step before the first note (otherwise the first
    /// note sounds at the key press and the next ones follow the grid).
    pub quantize_start: bool,
}

impl Default for ArpConfig {
    fn default() -> Self {
        ArpConfig {
            mode: ArpMode::Up,
            rate: Rate::default(),
            gate: 0.5,
            octaves: 1,
            latch: false,
            swing: 0.5,
            quantize_start: false,
        }
    }
}

/// When a movement plays.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RunMode {
    /// Free-running from the moment the configuration is applied.
    #[default]
    Always,
    /// Plays while a key of the zone is held, from the start of its patterns,
    /// transposed by (played note - `root`); played notes do not sound themselves.
    WhileHeld,
}

/// Stage 5: a movement has voices, a voice plays patterns.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MovementConfig {
    /// Ticks per beat, 1..=960.
    pub ticks_per_beat: u16,
    /// Own tempo; `None` follows the engine tempo.
    pub bpm: Option<f64>,
    /// When it plays.
    pub run: RunMode,
    /// Reference note for `while_held` transposition.
    pub root: u8,
    /// Patterns by name (sorted, so the JSON is stable).
    pub patterns: BTreeMap<String, PatternConfig>,
    /// Voices.
    pub voices: Vec<VoiceConfig>,
}

impl Default for MovementConfig {
    fn default() -> Self {
        MovementConfig {
            ticks_per_beat: 24,
            bpm: None,
            run: RunMode::Always,
            root: 60,
            patterns: BTreeMap::new(),
            voices: Vec::new(),
        }
    }
}

/// A polyphonic sequence of notes.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PatternConfig {
    /// Length in ticks (>= 1).
    pub length: u32,
    /// Notes; several may start on the same tick.
    pub notes: Vec<PatternNote>,
}

/// One note of a pattern.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PatternNote {
    /// Start tick, `< length`.
    pub tick: u32,
    /// MIDI note (a General MIDI drum number for drum voices).
    pub note: u8,
    /// 1..=127
    #[serde(default = "default_velocity")]
    pub velocity: u8,
    /// Duration in ticks (>= 1).
    #[serde(default = "default_duration")]
    pub duration: u32,
}

fn default_velocity() -> u8 {
    100
}
fn default_duration() -> u32 {
    1
}

/// A voice of a movement.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct VoiceConfig {
    /// Pattern names, played in order.
    pub patterns: Vec<String>,
    /// How many times each pattern plays before the next one (>= 1).
    pub repeat: u32,
    /// After the last pattern: start over (`true`) or fall silent.
    pub cycle: bool,
    /// Muted voices keep their position but play nothing.
    pub mute: bool,
    /// Numbered output; `None` = the zone's output.
    pub output: Option<u8>,
    /// Channel 1..=16; `None` = the zone's output channel or 1.
    pub channel: Option<u8>,
    /// Drum voice: channel 10, no transposition.
    pub drums: bool,
}

impl Default for VoiceConfig {
    fn default() -> Self {
        VoiceConfig {
            patterns: Vec::new(),
            repeat: 1,
            cycle: true,
            mute: false,
            output: None,
            channel: None,
            drums: false,
        }
    }
}

/// Stage 5, drum mode: played keys become General MIDI drums on channel 10.
/// A key in `map` plays that drum; other keys fold onto 36 + key % 24
/// (kick, snares, hats, toms, crash, ride…) when `fold` is on, else are silent.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DrumConfig {
    /// Key → GM drum note (35..=81). JSON keys are note numbers as strings.
    #[serde(deserialize_with = "note_keyed_map")]
    pub map: BTreeMap<u8, u8>,
    /// Fold unmapped keys onto the GM kit.
    pub fold: bool,
}

impl Default for DrumConfig {
    fn default() -> Self {
        DrumConfig {
            map: BTreeMap::new(),
            fold: true,
        }
    }
}

/// Reads `{"36": 38}`. Going through string keys keeps this working inside
/// internally tagged enums (control messages), where serde buffers the input
/// and no longer turns "36" into a number.
fn note_keyed_map<'de, D: serde::Deserializer<'de>>(d: D) -> Result<BTreeMap<u8, u8>, D::Error> {
    let raw = BTreeMap::<String, u8>::deserialize(d)?;
    raw.into_iter()
        .map(|(k, v)| match k.trim().parse::<u8>() {
            Ok(n) if n < 128 => Ok((n, v)),
            _ => Err(serde::de::Error::custom(format!(
                "drum map key {k:?} is not a note 0..=127"
            ))),
        })
        .collect()
}

/// A configuration error: where (path of the field in the JSON, like
/// `zones[1].arp.octaves`) and what.
#[derive(Debug, Clone, PartialEq, Error)]
#[error("bard config at {path}: {problem}")]
pub struct ConfigError {
    /// Path of the offending field (`.` for the root).
    pub path: String,
    /// What is wrong.
    pub problem: Problem,
}

/// What is wrong with a configuration.
#[derive(Debug, Clone, PartialEq, Error)]
pub enum Problem {
    /// The JSON does not parse or does not have the right shape.
    #[error("{0}")]
    Json(String),
    /// A number is outside its range.
    #[error("{value} is outside {min}..={max}")]
    OutOfRange { value: f64, min: f64, max: f64 },
    /// Too many items for the fixed-size real-time state.
    #[error("{count} {what}, at most {max}")]
    TooMany {
        what: &'static str,
        count: usize,
        max: usize,
    },
    /// A voice names a pattern that does not exist.
    #[error("no pattern named {0:?}")]
    UnknownPattern(String),
    /// Anything else.
    #[error("{0}")]
    Invalid(&'static str),
    /// A control message names a path that does not exist.
    #[error("no such field")]
    NoSuchField,
    /// The bytes of a `send` message are not one channel message the bard
    /// may send.
    #[error("{0}")]
    Midi(String),
}

fn err(path: impl Into<String>, problem: Problem) -> ConfigError {
    ConfigError {
        path: path.into(),
        problem,
    }
}

fn range(path: &str, value: f64, min: f64, max: f64) -> Result<(), ConfigError> {
    if value.is_finite() && value >= min && value <= max {
        Ok(())
    } else {
        Err(err(path, Problem::OutOfRange { value, min, max }))
    }
}

impl BardConfig {
    /// Parses and validates vault JSON.
    ///
    /// Thread: any non-real-time thread. Allocates.
    pub fn from_json(json: &str) -> Result<BardConfig, ConfigError> {
        let de = &mut serde_json::Deserializer::from_str(json);
        let cfg: BardConfig = serde_path_to_error::deserialize(de)
            .map_err(|e| err(e.path().to_string(), Problem::Json(e.inner().to_string())))?;
        cfg.validate()?;
        Ok(cfg)
    }

    /// Like [`from_json`](Self::from_json) from a parsed JSON value.
    pub fn from_value(value: serde_json::Value) -> Result<BardConfig, ConfigError> {
        // Through text: serde_json's `Value` deserializer does not turn the
        // string keys of JSON objects into the integer keys of the drum map.
        BardConfig::from_json(&value.to_string())
    }

    /// Pretty JSON for the vault (stable key order).
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).expect("BardConfig always serializes")
    }

    /// Checks every range and cross-reference; the error names the field.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.zones.len() > MAX_ZONES {
            return Err(err(
                "zones",
                Problem::TooMany {
                    what: "zones",
                    count: self.zones.len(),
                    max: MAX_ZONES,
                },
            ));
        }
        self.transpose.validate("transpose")?;
        for (i, z) in self.zones.iter().enumerate() {
            z.validate(&format!("zones[{i}]"))?;
        }
        Ok(())
    }

    /// Applies a control message, returning the new validated configuration
    /// (the current one is left unchanged on error).
    ///
    /// Thread: any non-real-time thread (the imp's control path). Allocates.
    pub fn apply_control(&self, msg: &ControlMessage) -> Result<BardConfig, ConfigError> {
        let next = match msg {
            ControlMessage::Replace { config } => (**config).clone(),
            ControlMessage::Set { path, value } => {
                let mut doc = serde_json::to_value(self).expect("BardConfig always serializes");
                set_pointer(&mut doc, path, value.clone())?;
                return BardConfig::from_value(doc);
            }
            ControlMessage::Send { output, midi } => {
                // Changes nothing in the configuration; the caller hands
                // the checked message to the RT part (see `Bard::send`).
                OutMidi::new(*output, midi)?;
                self.clone()
            }
            ControlMessage::Transpose { octaves, semitones } => {
                let mut c = self.clone();
                c.transpose = Transpose {
                    octaves: *octaves,
                    semitones: *semitones,
                };
                c
            }
            ControlMessage::MuteVoice { zone, voice, mute } => {
                let mut c = self.clone();
                voice_mut(&mut c, *zone, *voice)?.mute = *mute;
                c
            }
            ControlMessage::SwitchPatterns {
                zone,
                voice,
                patterns,
            } => {
                let mut c = self.clone();
                voice_mut(&mut c, *zone, *voice)?.patterns = patterns.clone();
                c
            }
        };
        next.validate()?;
        Ok(next)
    }
}

fn voice_mut(
    c: &mut BardConfig,
    zone: usize,
    voice: usize,
) -> Result<&mut VoiceConfig, ConfigError> {
    c.zones
        .get_mut(zone)
        .and_then(|z| z.movement.as_mut())
        .and_then(|m| m.voices.get_mut(voice))
        .ok_or_else(|| {
            err(
                format!("zones[{zone}].movement.voices[{voice}]"),
                Problem::NoSuchField,
            )
        })
}

/// Sets the value at a JSON pointer (`/zones/0/scale`); the last segment may
/// name a missing object key (an absent optional stage).
fn set_pointer(
    doc: &mut serde_json::Value,
    pointer: &str,
    value: serde_json::Value,
) -> Result<(), ConfigError> {
    if pointer.is_empty() || pointer == "/" {
        *doc = value;
        return Ok(());
    }
    if let Some(slot) = doc.pointer_mut(pointer) {
        *slot = value;
        return Ok(());
    }
    let (parent, last) = pointer.rsplit_once('/').unwrap_or(("", pointer));
    let parent_val = if parent.is_empty() {
        Some(doc)
    } else {
        doc.pointer_mut(parent)
    };
    match parent_val {
        Some(serde_json::Value::Object(map)) => {
            map.insert(last.replace("~1", "/").replace("~0", "~"), value);
            Ok(())
        }
        _ => Err(err(pointer, Problem::NoSuchField)),
    }
}

impl ZoneConfig {
    fn validate(&self, p: &str) -> Result<(), ConfigError> {
        self.transpose.validate(&format!("{p}.transpose"))?;
        if let Some(c) = self.channel {
            range(&format!("{p}.channel"), c as f64, 1.0, 16.0)?;
        }
        if let Some(c) = self.out_channel {
            range(&format!("{p}.out_channel"), c as f64, 1.0, 16.0)?;
        }
        range(&format!("{p}.low"), self.low as f64, 0.0, 127.0)?;
        range(
            &format!("{p}.high"),
            self.high as f64,
            self.low as f64,
            127.0,
        )?;
        range(&format!("{p}.vel_low"), self.vel_low as f64, 1.0, 127.0)?;
        range(
            &format!("{p}.vel_high"),
            self.vel_high as f64,
            self.vel_low as f64,
            127.0,
        )?;
        let v = &self.velocity;
        range(&format!("{p}.velocity.curve"), v.curve, 0.1, 10.0)?;
        if let Some(f) = v.fixed {
            range(&format!("{p}.velocity.fixed"), f as f64, 1.0, 127.0)?;
        }
        range(&format!("{p}.velocity.min"), v.min as f64, 1.0, 127.0)?;
        range(
            &format!("{p}.velocity.max"),
            v.max as f64,
            v.min as f64,
            127.0,
        )?;
        if let Some(s) = &self.scale {
            if let ScaleKind::Custom(pcs) = &s.scale {
                for (i, &pc) in pcs.iter().enumerate() {
                    range(
                        &format!("{p}.scale.scale.custom[{i}]"),
                        pc as f64,
                        0.0,
                        11.0,
                    )?;
                }
            }
        }
        if let Some(c) = &self.chord {
            let n = match &c.shape {
                ChordShape::Named(name) => name.intervals().len(),
                ChordShape::Intervals(iv) => {
                    if iv.is_empty() {
                        return Err(err(
                            format!("{p}.chord.shape"),
                            Problem::Invalid("an interval list needs at least one interval"),
                        ));
                    }
                    for (i, &x) in iv.iter().enumerate() {
                        range(&format!("{p}.chord.shape[{i}]"), x as f64, -48.0, 48.0)?;
                    }
                    iv.len()
                }
            };
            if n > MAX_CHORD_NOTES {
                return Err(err(
                    format!("{p}.chord.shape"),
                    Problem::TooMany {
                        what: "chord notes",
                        count: n,
                        max: MAX_CHORD_NOTES,
                    },
                ));
            }
            range(
                &format!("{p}.chord.inversion"),
                c.inversion as f64,
                0.0,
                (n - 1) as f64,
            )?;
            if c.diatonic && self.scale.is_none() {
                return Err(err(
                    format!("{p}.chord.diatonic"),
                    Problem::Invalid("a diatonic chord needs a scale in the same zone"),
                ));
            }
        }
        if let Some(a) = &self.arp {
            range(&format!("{p}.arp.gate"), a.gate, 0.01, 1.0)?;
            range(&format!("{p}.arp.octaves"), a.octaves as f64, 1.0, 4.0)?;
            range(&format!("{p}.arp.swing"), a.swing, 0.5, 0.75)?;
        }
        if let Some(m) = &self.movement {
            let mp = format!("{p}.movement");
            if self.arp.is_some() && m.run == RunMode::WhileHeld {
                return Err(err(
                    format!("{mp}.run"),
                    Problem::Invalid(
                        "a while_held movement and an arpeggiator cannot share a zone",
                    ),
                ));
            }
            if !self.notes && m.run == RunMode::WhileHeld {
                return Err(err(
                    format!("{mp}.run"),
                    Problem::Invalid(
                        "a zone with notes = false takes no key to hold: its movement must run always",
                    ),
                ));
            }
            range(
                &format!("{mp}.ticks_per_beat"),
                m.ticks_per_beat as f64,
                1.0,
                960.0,
            )?;
            if let Some(b) = m.bpm {
                range(&format!("{mp}.bpm"), b, 1.0, 1000.0)?;
            }
            range(&format!("{mp}.root"), m.root as f64, 0.0, 127.0)?;
            if m.voices.len() > MAX_VOICES {
                return Err(err(
                    format!("{mp}.voices"),
                    Problem::TooMany {
                        what: "voices",
                        count: m.voices.len(),
                        max: MAX_VOICES,
                    },
                ));
            }
            for (name, pat) in &m.patterns {
                let pp = format!("{mp}.patterns.{name}");
                range(&format!("{pp}.length"), pat.length as f64, 1.0, 1_000_000.0)?;
                for (i, n) in pat.notes.iter().enumerate() {
                    let np = format!("{pp}.notes[{i}]");
                    range(
                        &format!("{np}.tick"),
                        n.tick as f64,
                        0.0,
                        (pat.length - 1) as f64,
                    )?;
                    range(&format!("{np}.note"), n.note as f64, 0.0, 127.0)?;
                    range(&format!("{np}.velocity"), n.velocity as f64, 1.0, 127.0)?;
                    range(
                        &format!("{np}.duration"),
                        n.duration as f64,
                        1.0,
                        1_000_000.0,
                    )?;
                }
            }
            for (i, v) in m.voices.iter().enumerate() {
                let vp = format!("{mp}.voices[{i}]");
                range(&format!("{vp}.repeat"), v.repeat as f64, 1.0, 1_000_000.0)?;
                if let Some(c) = v.channel {
                    range(&format!("{vp}.channel"), c as f64, 1.0, 16.0)?;
                }
                for (j, name) in v.patterns.iter().enumerate() {
                    if !m.patterns.contains_key(name) {
                        return Err(err(
                            format!("{vp}.patterns[{j}]"),
                            Problem::UnknownPattern(name.clone()),
                        ));
                    }
                }
            }
        }
        if let Some(d) = &self.drums {
            for (&k, &v) in &d.map {
                range(&format!("{p}.drums.map.{k}"), v as f64, 0.0, 127.0)?;
                range(&format!("{p}.drums.map.{k}"), k as f64, 0.0, 127.0)?;
            }
        }
        Ok(())
    }
}

/// Control messages that change the configuration. They are applied
/// off the engine thread with [`BardConfig::apply_control`]; the result is
/// prepared and handed to the engine with [`crate::Bard::apply_config`].
///
/// JSON: `{"cmd": "set", "path": "/zones/0/scale", "value": {"key": "D", "scale": "dorian"}}`,
/// `{"cmd": "transpose", "octaves": 1, "semitones": 0}`,
/// `{"cmd": "mute_voice", "zone": 0, "voice": 1, "mute": true}`,
/// `{"cmd": "switch_patterns", "zone": 0, "voice": 0, "patterns": ["fill"]}`,
/// `{"cmd": "replace", "config": {...}}`,
/// `{"cmd": "send", "output": 1, "midi": [192, 4]}`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "cmd", rename_all = "snake_case", deny_unknown_fields)]
pub enum ControlMessage {
    /// Replaces the whole configuration.
    Replace { config: Box<BardConfig> },
    /// Sets one field, addressed by a JSON pointer (RFC 6901).
    Set {
        path: String,
        value: serde_json::Value,
    },
    /// Sets the global transpose.
    Transpose { octaves: i8, semitones: i8 },
    /// Mutes or unmutes a voice of a zone's movement.
    MuteVoice {
        zone: usize,
        voice: usize,
        mute: bool,
    },
    /// Gives a voice a new pattern list.
    SwitchPatterns {
        zone: usize,
        voice: usize,
        patterns: Vec<String>,
    },
    /// Sends one channel message (bank select, program change, a CC…) on
    /// numbered output `output` at the start of the next block; checked by
    /// [`OutMidi::new`]. It changes no configuration.
    Send { output: u8, midi: Vec<u8> },
}

/// One MIDI channel message for a numbered output, checked: a status byte
/// 0xA0..=0xEF followed by exactly the data bytes it takes (each 0..=127).
/// Notes (0x80, 0x90) are refused: their note-offs would bypass the note
/// ledger that guarantees nothing sticks; play notes through a zone.
/// System messages (0xF0..) are refused: they are not per output channel.
///
/// Plain data (`Copy`): it crosses into the engine thread through a ring.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OutMidi {
    output: u8,
    bytes: [u8; 3],
    len: u8,
}

impl OutMidi {
    /// Checks `midi` and builds the message for output `output`.
    ///
    /// Thread: any (allocates only for an error).
    pub fn new(output: u8, midi: &[u8]) -> Result<OutMidi, ConfigError> {
        let bad = |m: String| Err(err("midi", Problem::Midi(m)));
        let Some(&status) = midi.first() else {
            return bad(
                "is empty: give one channel message, e.g. [176, 0, 1] (bank select) or [192, 4] (program change)"
                    .into(),
            );
        };
        let (name, data) = match status & 0xf0 {
            0x80 | 0x90 => {
                return bad(format!(
                    "status byte {status} ({status:#04x}) is a note message; send carries no notes (their note-offs would bypass the bard's note ledger): play notes through a zone"
                ))
            }
            0xa0 => ("polyphonic pressure", 2),
            0xb0 => ("control change", 2),
            0xc0 => ("program change", 1),
            0xd0 => ("channel pressure", 1),
            0xe0 => ("pitch bend", 2),
            _ => {
                return bad(format!(
                    "first byte {status} ({status:#04x}) is not a channel status byte: one of 0xA0..=0xEF (pressure, control change, program change, pitch bend) is needed"
                ))
            }
        };
        if midi.len() != 1 + data {
            return bad(format!(
                "status byte {status} ({status:#04x}) is a {name}, which takes {data} data byte{}, got {}",
                if data == 1 { "" } else { "s" },
                midi.len() - 1
            ));
        }
        if let Some((i, &b)) = midi.iter().enumerate().skip(1).find(|(_, &b)| b > 127) {
            return bad(format!("data byte {i} is {b}; data bytes are 0..=127"));
        }
        let mut bytes = [0u8; 3];
        bytes[..midi.len()].copy_from_slice(midi);
        Ok(OutMidi {
            output,
            bytes,
            len: midi.len() as u8,
        })
    }

    /// The numbered output it goes to.
    pub fn output(&self) -> u8 {
        self.output
    }

    /// The message's bytes (2 or 3).
    pub fn bytes(&self) -> &[u8] {
        &self.bytes[..self.len as usize]
    }
}

impl ControlMessage {
    /// Parses a control message from JSON bytes.
    pub fn from_json(json: &[u8]) -> Result<ControlMessage, ConfigError> {
        let de = &mut serde_json::Deserializer::from_slice(json);
        serde_path_to_error::deserialize(de)
            .map_err(|e| err(e.path().to_string(), Problem::Json(e.inner().to_string())))
    }
}
