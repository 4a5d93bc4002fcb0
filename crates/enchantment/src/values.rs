//! The value types of the keys: each parses what a musician types (the
//! `FromStr` error says what is allowed) and prints the same form
//! (`Display`), and that printed form is also its JSON in the vault, so
//! `get` shows exactly what `set` accepts.

use std::fmt;
use std::str::FromStr;

use bard_pipeline::{ArpMode, ChordName, Key, ScaleKind};
use serde::{Deserialize, Serialize};

/// Implements serde through `Display` / `FromStr`: a value is written as its
/// number when `number()` says it is one, else as its text; it is read from a
/// JSON string or number.
macro_rules! text_serde {
    ($t:ty) => {
        impl Serialize for $t {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                match self.number() {
                    Some(n) => s.serialize_i64(n),
                    None => s.collect_str(self),
                }
            }
        }
        impl<'de> Deserialize<'de> for $t {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let text = match serde_json::Value::deserialize(d)? {
                    serde_json::Value::String(s) => s,
                    serde_json::Value::Number(n) => n.to_string(),
                    serde_json::Value::Bool(b) => b.to_string(),
                    other => {
                        return Err(serde::de::Error::custom(format!(
                            "{other} is not a value here"
                        )))
                    }
                };
                text.parse()
                    .map_err(|e: String| serde::de::Error::custom(format!("{text:?}: {e}")))
            }
        }
    };
}

/// Lower-cases and turns spaces and dashes into underscores, so `"Up Down"`,
/// `"up-down"` and `"up_down"` are one word.
pub(crate) fn word(s: &str) -> String {
    s.trim().to_ascii_lowercase().replace([' ', '-'], "_")
}

/// Parses an integer in `min..=max`.
pub(crate) fn int_in(s: &str, min: i64, max: i64) -> Option<i64> {
    let s = s.trim();
    let s = s.strip_prefix('+').unwrap_or(s);
    s.parse::<i64>().ok().filter(|n| (min..=max).contains(n))
}

/// On or off. Accepts on/off, true/false, yes/no, 1/0, start/stop.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Switch(pub bool);

impl Switch {
    fn number(&self) -> Option<i64> {
        None
    }
}

impl FromStr for Switch {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match word(s).as_str() {
            "on" | "true" | "yes" | "1" | "start" => Ok(Switch(true)),
            "off" | "false" | "no" | "0" | "stop" => Ok(Switch(false)),
            _ => Err("is on or off".into()),
        }
    }
}

impl fmt::Display for Switch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(if self.0 { "on" } else { "off" })
    }
}
text_serde!(Switch);

/// A MIDI note number 0..=127, written with its name: middle C = `C4` = 60,
/// sharps `C#4` (flats accepted: `Db4`), lowest `C-1` = 0, highest `G9`.
/// A plain number is accepted too.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Note(pub u8);

const NOTE_NAMES: [&str; 12] = [
    "C", "C#", "D", "D#", "E", "F", "F#", "G", "G#", "A", "A#", "B",
];

impl Note {
    fn number(&self) -> Option<i64> {
        None
    }

    /// Parses `C4`, `F#4`, `Bb-1`, `60`.
    pub fn parse(s: &str) -> Option<Note> {
        let s = s.trim();
        if let Some(n) = int_in(s, 0, 127) {
            return Some(Note(n as u8));
        }
        let mut chars = s.chars();
        let letter = chars.next()?;
        let rest = chars.as_str();
        let (acc, octave) = if let Some(r) = rest.strip_prefix(['#', '♯']) {
            ("#", r)
        } else if let Some(r) = rest.strip_prefix(['b', '♭']) {
            ("b", r)
        } else {
            ("", rest)
        };
        let pc = Key::parse(&format!("{letter}{acc}"))?.0 as i64;
        // Cb and B# cross the octave boundary.
        let carry = match (letter.to_ascii_uppercase(), acc) {
            ('C', "b") => -12,
            ('B', "#") => 12,
            _ => 0,
        };
        let octave: i64 = octave.parse().ok()?;
        let n = (octave + 1) * 12 + pc + carry;
        (0..=127).contains(&n).then_some(Note(n as u8))
    }
}

impl FromStr for Note {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        Note::parse(s).ok_or_else(|| {
            "is a note: a name like C4 (middle C, 60), F#2, Bb-1 (C-1 .. G9) or a number 0..=127"
                .into()
        })
    }
}

impl fmt::Display for Note {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let n = self.0 as i32;
        write!(f, "{}{}", NOTE_NAMES[(n % 12) as usize], n / 12 - 1)
    }
}
text_serde!(Note);

/// Where a zone takes notes from: `any` source, or source number N (an
/// input as wired in `realm.toml`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Source {
    /// Every source.
    #[default]
    Any,
    /// One source number.
    Input(u8),
}

impl Source {
    fn number(&self) -> Option<i64> {
        match self {
            Source::Any => None,
            Source::Input(n) => Some(*n as i64),
        }
    }
}

impl FromStr for Source {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        if word(s) == "any" {
            return Ok(Source::Any);
        }
        int_in(s, 0, 255)
            .map(|n| Source::Input(n as u8))
            .ok_or_else(|| "is any or an input number 0..=255".into())
    }
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Source::Any => f.write_str("any"),
            Source::Input(n) => write!(f, "{n}"),
        }
    }
}
text_serde!(Source);

/// An input channel: `any` or 1..=16.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Channel {
    /// Every channel.
    #[default]
    Any,
    /// One channel, 1..=16.
    Only(u8),
}

impl Channel {
    fn number(&self) -> Option<i64> {
        match self {
            Channel::Any => None,
            Channel::Only(n) => Some(*n as i64),
        }
    }
}

impl FromStr for Channel {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        if word(s) == "any" {
            return Ok(Channel::Any);
        }
        int_in(s, 1, 16)
            .map(|n| Channel::Only(n as u8))
            .ok_or_else(|| "is any or a channel 1..=16".into())
    }
}

impl fmt::Display for Channel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Channel::Any => f.write_str("any"),
            Channel::Only(n) => write!(f, "{n}"),
        }
    }
}
text_serde!(Channel);

/// An output channel: `same` (as the note came in) or 1..=16.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum OutChannel {
    /// The input channel.
    #[default]
    Same,
    /// This channel, 1..=16.
    Channel(u8),
}

impl OutChannel {
    fn number(&self) -> Option<i64> {
        match self {
            OutChannel::Same => None,
            OutChannel::Channel(n) => Some(*n as i64),
        }
    }
}

impl FromStr for OutChannel {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        if word(s) == "same" {
            return Ok(OutChannel::Same);
        }
        int_in(s, 1, 16)
            .map(|n| OutChannel::Channel(n as u8))
            .ok_or_else(|| "is same or a channel 1..=16".into())
    }
}

impl fmt::Display for OutChannel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            OutChannel::Same => f.write_str("same"),
            OutChannel::Channel(n) => write!(f, "{n}"),
        }
    }
}
text_serde!(OutChannel);

/// A bank number 0..=16383 (sent as bank select MSB, CC 0, and LSB, CC 32)
/// or `none` (no bank select is sent).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Bank(pub Option<u16>);

impl Bank {
    fn number(&self) -> Option<i64> {
        self.0.map(|n| n as i64)
    }
}

impl FromStr for Bank {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        if matches!(word(s).as_str(), "none" | "off") {
            return Ok(Bank(None));
        }
        int_in(s, 0, 16383)
            .map(|n| Bank(Some(n as u16)))
            .ok_or_else(|| "is none or a bank 0..=16383".into())
    }
}

impl fmt::Display for Bank {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            None => f.write_str("none"),
            Some(n) => write!(f, "{n}"),
        }
    }
}
text_serde!(Bank);

/// A program 1..=128 as printed on synths (sent as 0..=127), or `none`
/// (no program change is sent).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Program(pub Option<u8>);

impl Program {
    fn number(&self) -> Option<i64> {
        self.0.map(|n| n as i64)
    }
}

impl FromStr for Program {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        if matches!(word(s).as_str(), "none" | "off") {
            return Ok(Program(None));
        }
        int_in(s, 1, 128)
            .map(|n| Program(Some(n as u8)))
            .ok_or_else(|| "is none or a program 1..=128".into())
    }
}

impl fmt::Display for Program {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            None => f.write_str("none"),
            Some(n) => write!(f, "{n}"),
        }
    }
}
text_serde!(Program);

/// A key (tonic): `C`, `C#`/`Db`, … `B`; written with sharps.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Tonic(pub Key);

impl Tonic {
    fn number(&self) -> Option<i64> {
        None
    }
}

impl FromStr for Tonic {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        Key::parse(s).map(Tonic).ok_or_else(|| {
            "is a key C, C#, Db, D, D#, Eb, E, F, F#, Gb, G, G#, Ab, A, A#, Bb or B".into()
        })
    }
}

impl fmt::Display for Tonic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(NOTE_NAMES[(self.0 .0 % 12) as usize])
    }
}
text_serde!(Tonic);

/// Every scale name, in the order `adjust` steps through them.
pub const SCALE_NAMES: [&str; 15] = [
    "off",
    "major",
    "minor",
    "dorian",
    "phrygian",
    "lydian",
    "mixolydian",
    "locrian",
    "harmonic_minor",
    "melodic_minor",
    "major_pentatonic",
    "minor_pentatonic",
    "blues",
    "whole_tone",
    "chromatic",
];

/// A scale: `off` or one of the bard's scales ([`SCALE_NAMES`]; also
/// `ionian` = major, `aeolian` = natural minor).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Scale(pub Option<ScaleKind>);

impl Scale {
    fn number(&self) -> Option<i64> {
        None
    }
}

impl FromStr for Scale {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let w = word(s);
        if w == "off" {
            return Ok(Scale(None));
        }
        match serde_json::from_value::<ScaleKind>(serde_json::Value::String(w)) {
            Ok(ScaleKind::Custom(_)) | Err(_) => {
                Err(format!("is a scale: {}", SCALE_NAMES.join(", ")))
            }
            Ok(k) => Ok(Scale(Some(k))),
        }
    }
}

impl fmt::Display for Scale {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.0 {
            None => f.write_str("off"),
            Some(ScaleKind::Ionian) => f.write_str("major"),
            Some(ScaleKind::Aeolian) => f.write_str("minor"),
            Some(k) => match serde_json::to_value(k) {
                Ok(serde_json::Value::String(s)) => f.write_str(&s),
                _ => f.write_str("custom"),
            },
        }
    }
}
text_serde!(Scale);

/// Every chord name, in the order `adjust` steps through them.
pub const CHORD_NAMES: [&str; 14] = [
    "off", "maj", "min", "7", "maj7", "m7", "dim", "aug", "sus2", "sus4", "add9", "6", "m6", "9",
];

/// A chord: `off` or one of the bard's named chords ([`CHORD_NAMES`];
/// `major` and `minor` are accepted for `maj` and `min`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Chord(pub Option<ChordName>);

impl Chord {
    fn number(&self) -> Option<i64> {
        None
    }
}

impl FromStr for Chord {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let w = s.trim().to_string();
        let w = match word(&w).as_str() {
            "off" => return Ok(Chord(None)),
            "major" => "maj".to_string(),
            "minor" => "min".to_string(),
            "m" => "min".to_string(),
            _ => w,
        };
        serde_json::from_value::<ChordName>(serde_json::Value::String(w))
            .map(|c| Chord(Some(c)))
            .map_err(|_| format!("is a chord: {}", CHORD_NAMES.join(", ")))
    }
}

impl fmt::Display for Chord {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            None => f.write_str("off"),
            Some(c) => match serde_json::to_value(c) {
                Ok(serde_json::Value::String(s)) => f.write_str(&s),
                _ => f.write_str("?"),
            },
        }
    }
}
text_serde!(Chord);

/// Every arpeggio pattern name, in the order `adjust` steps through them.
pub const ARP_PATTERN_NAMES: [&str; 7] = [
    "up",
    "down",
    "up_down",
    "down_up",
    "as_played",
    "random",
    "chord",
];

/// An arpeggiator order: a name ([`ARP_PATTERN_NAMES`]) or a number
/// 1..=4 = up, down, up_down, random (the "patterns 1–4" of a keyboard).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ArpPattern(pub ArpMode);

impl ArpPattern {
    fn number(&self) -> Option<i64> {
        None
    }
}

impl FromStr for ArpPattern {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let mode = match word(s).as_str() {
            "1" => Some(ArpMode::Up),
            "2" => Some(ArpMode::Down),
            "3" => Some(ArpMode::UpDown),
            "4" => Some(ArpMode::Random),
            w => serde_json::from_value::<ArpMode>(serde_json::Value::String(w.into())).ok(),
        };
        mode.map(ArpPattern).ok_or_else(|| {
            format!(
                "is an arpeggio pattern: {}, or 1 (up), 2 (down), 3 (up_down), 4 (random)",
                ARP_PATTERN_NAMES.join(", ")
            )
        })
    }
}

impl fmt::Display for ArpPattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match serde_json::to_value(self.0) {
            Ok(serde_json::Value::String(s)) => f.write_str(&s),
            _ => f.write_str("?"),
        }
    }
}
text_serde!(ArpPattern);

/// Every arpeggio rate, in the order `adjust` steps through them (slow to fast).
pub const ARP_RATES: [&str; 18] = [
    "1/1.", "1/1", "1/2.", "1/1T", "1/2", "1/4.", "1/2T", "1/4", "1/8.", "1/4T", "1/8", "1/16.",
    "1/8T", "1/16", "1/32.", "1/16T", "1/32", "1/32T",
];

/// An arpeggio rate: `1/1` … `1/32`, triplet `T` or dotted `.` (see [`ARP_RATES`]).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ArpRate(pub bard_pipeline::Rate);

impl ArpRate {
    fn number(&self) -> Option<i64> {
        None
    }
}

impl FromStr for ArpRate {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        bard_pipeline::Rate::parse(s)
            .map(ArpRate)
            .ok_or_else(|| format!("is a rate: {}", ARP_RATES.join(", ")))
    }
}

impl fmt::Display for ArpRate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}
text_serde!(ArpRate);

/// A velocity curve: `linear` (as played), `soft` (exponent 2: quieter),
/// `hard` (exponent 0.5: louder), an exponent `0.1`..=`10`, or `fixed N`
/// (every note at velocity N, 1..=127).
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub enum Velocity {
    /// As played.
    #[default]
    Linear,
    /// Exponent 2.
    Soft,
    /// Exponent 0.5.
    Hard,
    /// Any exponent 0.1..=10.
    Curve(f64),
    /// Every note at this velocity.
    Fixed(u8),
}

/// The velocity names `adjust` steps through.
pub const VELOCITY_NAMES: [&str; 3] = ["hard", "linear", "soft"];

impl Velocity {
    fn number(&self) -> Option<i64> {
        None
    }

    /// The exponent (1 for fixed velocities).
    pub fn exponent(&self) -> f64 {
        match self {
            Velocity::Linear | Velocity::Fixed(_) => 1.0,
            Velocity::Soft => 2.0,
            Velocity::Hard => 0.5,
            Velocity::Curve(c) => *c,
        }
    }
}

impl FromStr for Velocity {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let w = word(s);
        let bad = || {
            "is a velocity curve: linear, soft, hard, an exponent 0.1..=10, or fixed N (N 1..=127)"
                .to_string()
        };
        match w.as_str() {
            "linear" => return Ok(Velocity::Linear),
            "soft" => return Ok(Velocity::Soft),
            "hard" => return Ok(Velocity::Hard),
            _ => {}
        }
        if let Some(n) = w.strip_prefix("fixed") {
            let n = n.trim_start_matches(['_', ' ', '=']);
            return int_in(n, 1, 127)
                .map(|n| Velocity::Fixed(n as u8))
                .ok_or_else(bad);
        }
        match w.parse::<f64>() {
            Ok(c) if c.is_finite() && (0.1..=10.0).contains(&c) => Ok(Velocity::Curve(c)),
            _ => Err(bad()),
        }
    }
}

impl fmt::Display for Velocity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Velocity::Linear => f.write_str("linear"),
            Velocity::Soft => f.write_str("soft"),
            Velocity::Hard => f.write_str("hard"),
            Velocity::Curve(c) => write!(f, "{c}"),
            Velocity::Fixed(n) => write!(f, "fixed {n}"),
        }
    }
}
text_serde!(Velocity);

/// A time signature `n/d`: n 1..=16 beats of 1/d notes, d 1, 2, 4, 8 or 16.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TimeSignature {
    /// Beats per bar, 1..=16.
    pub beats: u8,
    /// Note value of a beat: 1, 2, 4, 8 or 16.
    pub unit: u8,
}

impl Default for TimeSignature {
    fn default() -> Self {
        TimeSignature { beats: 4, unit: 4 }
    }
}

impl TimeSignature {
    fn number(&self) -> Option<i64> {
        None
    }

    /// Length of one beat in 1/16 notes (the drum step and metronome grid).
    pub fn sixteenths_per_beat(&self) -> u32 {
        16 / self.unit as u32
    }

    /// Length of one bar in quarter notes (the engine's beats).
    pub fn quarter_notes_per_bar(&self) -> f64 {
        self.beats as f64 * 4.0 / self.unit as f64
    }
}

impl FromStr for TimeSignature {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let bad = || {
            "is a time signature n/d: n 1..=16, d 1, 2, 4, 8 or 16 (like 4/4, 3/4, 7/8)".to_string()
        };
        let (n, d) = s.trim().split_once('/').ok_or_else(bad)?;
        let beats = int_in(n, 1, 16).ok_or_else(bad)? as u8;
        let unit = int_in(d, 1, 16).ok_or_else(bad)? as u8;
        if !matches!(unit, 1 | 2 | 4 | 8 | 16) {
            return Err(bad());
        }
        Ok(TimeSignature { beats, unit })
    }
}

impl fmt::Display for TimeSignature {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.beats, self.unit)
    }
}
text_serde!(TimeSignature);

/// Most steps in a drum pattern.
pub const MAX_STEPS: usize = 64;

/// The velocities of a drum voice's steps (0 = off), written as a step
/// string: one character per step, `.` (or `-`) off, `x` velocity 100, `X`
/// 127, a digit `1`..`9` velocity 14 × digit (14 … 126), `(N)` velocity N
/// (0..=127); spaces, `|` and `_` are ignored (for grouping: `"x... x... X... x..."`).
/// Printed with the shortest of these for each step, so reading a printed
/// string gives the same velocities back.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Steps(pub Vec<u8>);

impl Steps {
    fn number(&self) -> Option<i64> {
        None
    }
}

impl FromStr for Steps {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let bad = |why: String| {
            Err(format!(
                "{why}; a step string has one character per step: . off, x 100, X 127, 1..9 = 14..126, (N) velocity N; at most {MAX_STEPS} steps"
            ))
        };
        let mut v = Vec::new();
        let mut chars = s.chars();
        while let Some(c) = chars.next() {
            let vel = match c {
                ' ' | '|' | '_' => continue,
                '.' | '-' => 0,
                'x' => 100,
                'X' => 127,
                '1'..='9' => (c as u8 - b'0') * 14,
                '(' => {
                    let inner: String = chars.by_ref().take_while(|&c| c != ')').collect();
                    match int_in(&inner, 0, 127) {
                        Some(n) => n as u8,
                        None => return bad(format!("({inner}) is not a velocity 0..=127")),
                    }
                }
                other => return bad(format!("{other:?} is not a step")),
            };
            v.push(vel);
        }
        if v.len() > MAX_STEPS {
            return bad(format!("{} steps", v.len()));
        }
        Ok(Steps(v))
    }
}

impl fmt::Display for Steps {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for &v in &self.0 {
            match v {
                0 => f.write_str(".")?,
                100 => f.write_str("x")?,
                127 => f.write_str("X")?,
                v if v % 14 == 0 && v <= 126 => write!(f, "{}", v / 14)?,
                v => write!(f, "({v})")?,
            }
        }
        Ok(())
    }
}
text_serde!(Steps);

/// Parses a General MIDI note for drums and clicks: a number 0..=127 or a
/// note name (`C2` = 36).
pub(crate) fn gm_note(s: &str) -> Result<u8, String> {
    Note::parse(s)
        .map(|n| n.0)
        .ok_or_else(|| "is a General MIDI note 0..=127 (or a name like C2 = 36)".into())
}
