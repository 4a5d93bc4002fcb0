//! The configuration value: zones, global state, drum patterns, presets.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::values::*;

/// Version of the vault layout written by this build.
pub const VERSION: u32 = 1;
/// Most zones a performer can define (the bard holds 16; two are kept for
/// the drum patterns and the metronome).
pub const MAX_ZONES: usize = bard_pipeline::limits::MAX_ZONES - 2;
/// Preset slots per zone, numbered 1..=24.
pub const PRESETS: u8 = 24;
/// Number of drum patterns, numbered 1..=5.
pub const DRUM_PATTERNS: usize = 5;
/// The drum voices of every pattern, in order (also addressed 1..=5).
pub const DRUM_VOICES: [&str; 5] = ["kick", "snare", "hat", "open_hat", "clap"];
/// Their default General MIDI notes: kick 36, snare 38, closed hat 42,
/// open hat 46, clap 39.
pub const DRUM_NOTES: [u8; 5] = [36, 38, 42, 46, 39];
/// Steps of a new drum pattern (a 4/4 bar of sixteenths).
pub const DEFAULT_STEPS: u8 = 16;
/// The highest controller number a device parameter may have: 120..=127
/// are channel mode messages (all sound off, reset, local control, all
/// notes off, omni, mono, poly), never a sound's parameter.
pub const MAX_PARAM_CC: u8 = 119;
/// Most devices with a parameter snapshot in one zone (a bound on what a
/// misbehaving controller can make the vault hold).
pub const MAX_PARAM_DEVICES: usize = 16;

/// The enchanter's whole live configuration, as kept in the vault.
///
/// Serde: every field has a default (an older vault loads), unknown fields
/// are ignored (a newer vault loads, loudly checked by
/// [`from_json`](Self::from_json)), maps are `BTreeMap`s and values are
/// written the way a musician types them, so `vault.json` diffs read well.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Enchantment {
    /// Layout version ([`VERSION`]).
    pub version: u32,
    /// Tempo, metronome, drums, the selected zone.
    pub global: Global,
    /// Zones, in order (zone number n is the n-th, from 1).
    pub zones: Vec<Zone>,
    /// Saved presets: zone name → slot (1..=24) → that zone's settings.
    /// Kept by name, so a zone removed and added again finds its presets.
    pub presets: BTreeMap<String, BTreeMap<u8, ZoneSettings>>,
}

impl Default for Enchantment {
    fn default() -> Self {
        Enchantment {
            version: VERSION,
            global: Global::default(),
            zones: vec![Zone {
                name: "main".into(),
                settings: ZoneSettings::default(),
            }],
            presets: BTreeMap::new(),
        }
    }
}

/// A named zone.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Zone {
    /// Lower-case name (`lower`, `upper`, `main`…).
    pub name: String,
    /// Everything a preset holds.
    #[serde(flatten)]
    pub settings: ZoneSettings,
}

/// A zone's settings (what a preset saves and recalls).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ZoneSettings {
    /// Input number the zone takes notes from, or any.
    pub source: Source,
    /// Input channel, or any.
    pub channel: Channel,
    /// Lowest note taken.
    pub low: Note,
    /// Highest note taken.
    pub high: Note,
    /// Numbered bard output.
    pub output: u8,
    /// Output channel, or the same as the input.
    pub out_channel: OutChannel,
    /// Bank select sent with the program.
    pub bank: Bank,
    /// Program change (1..=128).
    pub program: Program,
    /// Transpose in octaves, -4..=4.
    pub octave: i8,
    /// Transpose in semitones, -11..=11.
    pub semitone: i8,
    /// Key of the scale.
    pub key: Tonic,
    /// Scale (out-of-scale notes snap to the nearest scale note).
    pub scale: Scale,
    /// Chord played from each note.
    pub chord: Chord,
    /// Arpeggiator on or off.
    pub arp: Switch,
    /// Arpeggiator order.
    pub arp_pattern: ArpPattern,
    /// Arpeggiator rate.
    pub arp_rate: ArpRate,
    /// Velocity curve.
    pub velocity: Velocity,
    /// This zone's played notes go through the bard's drum map (also when
    /// the global `drum_mode` is on).
    pub drum_keys: Switch,
    /// Parameter snapshots of synths, by device name (`microfreak`):
    /// controller number → value, as the device's own knobs last sent them.
    /// Recorded by the device's imp (the `param` message), saved and
    /// recalled with the zone's presets, sent back to the device by its
    /// imp. Never part of the bard's configuration.
    pub params: BTreeMap<String, CcValues>,
}

/// One device's parameter values by controller number (0..=119), each
/// 0..=127.
///
/// JSON: an object with the controller numbers as keys, in numeric order
/// (`{"5": 0, "23": 64, "105": 10}`), so the vault diffs read well. Read
/// back from string keys (JSON's only kind) also where serde buffers the
/// zone (its settings are flattened into it), and checked by
/// [`Enchantment::validate`](crate::Enchantment::validate).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct CcValues(pub BTreeMap<u8, u8>);

impl<'de> Deserialize<'de> for CcValues {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        // Through string keys: a `u8` key cannot be read from the buffer
        // serde keeps for a flattened struct.
        let text: BTreeMap<String, u8> = BTreeMap::deserialize(d)?;
        text.into_iter()
            .map(|(k, v)| {
                k.trim().parse::<u8>().map(|cc| (cc, v)).map_err(|_| {
                    serde::de::Error::custom(format!(
                        "{k:?} is not a controller number (0..={MAX_PARAM_CC})"
                    ))
                })
            })
            .collect::<Result<_, _>>()
            .map(CcValues)
    }
}

impl Default for ZoneSettings {
    fn default() -> Self {
        ZoneSettings {
            source: Source::Any,
            channel: Channel::Any,
            low: Note(0),
            high: Note(127),
            output: 0,
            out_channel: OutChannel::Same,
            bank: Bank(None),
            program: Program(None),
            octave: 0,
            semitone: 0,
            key: Tonic::default(),
            scale: Scale(None),
            chord: Chord(None),
            arp: Switch(false),
            arp_pattern: ArpPattern::default(),
            arp_rate: ArpRate::default(),
            velocity: Velocity::Linear,
            drum_keys: Switch(false),
            params: BTreeMap::new(),
        }
    }
}

/// The global state.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Global {
    /// The zone controllers edit (a name).
    pub selected: String,
    /// Beats (quarter notes) per minute, 20..=300.
    pub tempo: f64,
    /// Time signature of the metronome's bar.
    pub time_signature: TimeSignature,
    /// Metronome clicking or not.
    pub metronome: Switch,
    /// Numbered bard output of the metronome.
    pub metronome_output: u8,
    /// Channel of the metronome, 1..=16 (10: General MIDI drums).
    pub metronome_channel: u8,
    /// Note of the bar's first beat (GM 76, hi wood block).
    pub metronome_accent: u8,
    /// Note of the other beats (GM 77, low wood block).
    pub metronome_note: u8,
    /// Velocity of the bar's first beat.
    pub metronome_accent_velocity: u8,
    /// Velocity of the other beats.
    pub metronome_velocity: u8,
    /// Every zone's played notes go through the bard's drum map.
    pub drum_mode: Switch,
    /// The selected drum pattern playing or not.
    pub drums: Switch,
    /// The drum pattern that plays, 1..=5.
    pub drum_pattern: u8,
    /// Numbered bard output of the drum patterns (channel 10).
    pub drum_output: u8,
    /// The five drum patterns.
    pub drum_patterns: Vec<DrumPattern>,
}

impl Default for Global {
    fn default() -> Self {
        let mut patterns = vec![DrumPattern::default(); DRUM_PATTERNS];
        // Pattern 1: a basic beat; 2: four on the floor; 3–5 empty.
        let basic = [
            "x.......x.x.....",
            "....x.......x...",
            "x.x.x.x.x.x.x.x.",
            "",
            "",
        ];
        let floor = [
            "x...x...x...x...",
            "",
            "..x...x...x...x.",
            "",
            "....x.......x...",
        ];
        for (p, rows) in [(0, basic), (1, floor)] {
            for (v, row) in rows.iter().enumerate() {
                let mut steps: Steps = row.parse().expect("default steps parse");
                steps.0.resize(DEFAULT_STEPS as usize, 0);
                patterns[p].voices[v].steps = steps;
            }
        }
        Global {
            selected: "main".into(),
            tempo: 120.0,
            time_signature: TimeSignature::default(),
            metronome: Switch(false),
            metronome_output: 0,
            metronome_channel: 10,
            metronome_accent: 76,
            metronome_note: 77,
            metronome_accent_velocity: 127,
            metronome_velocity: 100,
            drum_mode: Switch(false),
            drums: Switch(false),
            drum_pattern: 1,
            drum_output: 0,
            drum_patterns: patterns,
        }
    }
}

/// A drum pattern: five voices over `length` sixteenth-note steps.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct DrumPattern {
    /// Steps, 1..=64 (sixteenth notes; 16 = one 4/4 bar).
    pub length: u8,
    /// The voices, in the order of [`DRUM_VOICES`].
    pub voices: Vec<DrumVoice>,
}

impl Default for DrumPattern {
    fn default() -> Self {
        DrumPattern {
            length: DEFAULT_STEPS,
            voices: DRUM_VOICES
                .iter()
                .zip(DRUM_NOTES)
                .map(|(name, note)| DrumVoice {
                    voice: (*name).into(),
                    note,
                    steps: Steps(vec![0; DEFAULT_STEPS as usize]),
                })
                .collect(),
        }
    }
}

/// One voice of a drum pattern.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DrumVoice {
    /// Its name (one of [`DRUM_VOICES`], for the reader of the vault).
    pub voice: String,
    /// General MIDI note it plays.
    pub note: u8,
    /// Velocity of each step, 0 = off (a step string in JSON).
    pub steps: Steps,
}
