//! What the enchanter sends: the bard's configuration, bank select and
//! program changes, the tempo.

use std::collections::BTreeMap;

use bard_pipeline::{
    ArpConfig, BardConfig, ChordConfig, ChordShape, DrumConfig, MovementConfig, PatternConfig,
    PatternNote, RunMode, ScaleConfig, Snap, Transpose, VelocityConfig, VoiceConfig, ZoneConfig,
};

use crate::model::*;
use crate::values::*;

/// Name of the bard zone that plays the running drum pattern.
pub const DRUM_ZONE: &str = "enchanter_drums";
/// Name of the bard zone that plays the metronome.
pub const METRONOME_ZONE: &str = "enchanter_metronome";
/// Ticks per beat of the drum and metronome movements: sixteenth notes.
const TICKS_PER_BEAT: u16 = 4;

impl Enchantment {
    /// The bard configuration this state derives: one bard zone per zone,
    /// in order, then (when they play) the drum pattern's zone and the
    /// metronome's zone, both `notes = false`. It always passes
    /// [`BardConfig::validate`].
    pub fn bard_config(&self) -> BardConfig {
        let g = &self.global;
        let mut zones: Vec<ZoneConfig> = self
            .zones
            .iter()
            .map(|z| zone_config(&z.name, &z.settings, g.drum_mode.0))
            .collect();
        if g.drums.0 {
            zones.push(self.drum_zone());
        }
        if g.metronome.0 {
            zones.push(self.metronome_zone());
        }
        BardConfig {
            zones,
            ..BardConfig::default()
        }
    }

    /// The selected pattern as a free-running movement of five drum voices
    /// (channel 10, not transposed) on `drum_output`; a step is a sixteenth.
    fn drum_zone(&self) -> ZoneConfig {
        let g = &self.global;
        let pattern = &g.drum_patterns[(g.drum_pattern as usize - 1).min(DRUM_PATTERNS - 1)];
        let mut patterns = BTreeMap::new();
        let mut voices = Vec::new();
        for v in &pattern.voices {
            let notes = v
                .steps
                .0
                .iter()
                .enumerate()
                .filter(|(_, &vel)| vel > 0)
                .map(|(i, &vel)| PatternNote {
                    tick: i as u32,
                    note: v.note,
                    velocity: vel,
                    duration: 1,
                })
                .collect();
            patterns.insert(
                v.voice.clone(),
                PatternConfig {
                    length: pattern.length as u32,
                    notes,
                },
            );
            voices.push(VoiceConfig {
                patterns: vec![v.voice.clone()],
                drums: true,
                ..VoiceConfig::default()
            });
        }
        movement_zone(
            DRUM_ZONE,
            g.drum_output,
            MovementConfig {
                ticks_per_beat: TICKS_PER_BEAT,
                run: RunMode::Always,
                patterns,
                voices,
                ..MovementConfig::default()
            },
        )
    }

    /// One bar of clicks per the time signature: the accent on the bar's
    /// first beat, the normal click on the others.
    fn metronome_zone(&self) -> ZoneConfig {
        let g = &self.global;
        let per_beat = g.time_signature.sixteenths_per_beat();
        let notes = (0..g.time_signature.beats as u32)
            .map(|b| PatternNote {
                tick: b * per_beat,
                note: if b == 0 {
                    g.metronome_accent
                } else {
                    g.metronome_note
                },
                velocity: if b == 0 {
                    g.metronome_accent_velocity
                } else {
                    g.metronome_velocity
                },
                duration: 1,
            })
            .collect();
        let patterns = BTreeMap::from([(
            "bar".to_string(),
            PatternConfig {
                length: g.time_signature.beats as u32 * per_beat,
                notes,
            },
        )]);
        movement_zone(
            METRONOME_ZONE,
            g.metronome_output,
            MovementConfig {
                ticks_per_beat: TICKS_PER_BEAT,
                run: RunMode::Always,
                patterns,
                // Not a drum voice: the channel is the metronome's own. The
                // zone has no transpose and the global one stays 0.
                voices: vec![VoiceConfig {
                    patterns: vec!["bar".into()],
                    channel: Some(g.metronome_channel),
                    ..VoiceConfig::default()
                }],
                ..MovementConfig::default()
            },
        )
    }

    /// Bank select (CC 0 = bank / 128, CC 32 = bank % 128, when a bank is
    /// set) and program change for every zone with a program whose bank,
    /// program, output or output channel differ from `previous` (a zone
    /// new by name counts as changed); every zone with a program when
    /// `previous` is `None`. Each message is `(numbered output, bytes)`,
    /// on the zone's output channel: `out_channel`, else its input
    /// `channel`, else channel 1. A zone without a program sends nothing
    /// (a bank select alone does not change the sound).
    pub fn program_messages(&self, previous: Option<&Self>) -> Vec<(u8, Vec<u8>)> {
        let mut out = Vec::new();
        for z in &self.zones {
            let s = &z.settings;
            let Some(program) = s.program.0 else { continue };
            let before = previous.and_then(|p| p.zones.iter().find(|x| x.name == z.name));
            let unchanged = before.is_some_and(|b| {
                let b = &b.settings;
                b.bank == s.bank
                    && b.program == s.program
                    && b.output == s.output
                    && out_channel(b) == out_channel(s)
            });
            if unchanged {
                continue;
            }
            let ch = out_channel(s) - 1;
            if let Some(bank) = s.bank.0 {
                out.push((s.output, vec![0xb0 | ch, 0, (bank >> 7) as u8]));
                out.push((s.output, vec![0xb0 | ch, 32, (bank & 0x7f) as u8]));
            }
            out.push((s.output, vec![0xc0 | ch, program - 1]));
        }
        out
    }

    /// [`program_messages`](Self::program_messages) as bard control
    /// messages (`{"cmd": "send", "output": N, "midi": [...]}`).
    pub fn program_controls(&self, previous: Option<&Self>) -> Vec<serde_json::Value> {
        self.program_messages(previous)
            .into_iter()
            .map(
                |(output, midi)| serde_json::json!({"cmd": "send", "output": output, "midi": midi}),
            )
            .collect()
    }

    /// [`bard_config`](Self::bard_config) as a bard control message
    /// (`{"cmd": "replace", "config": {...}}`).
    pub fn bard_control(&self) -> serde_json::Value {
        serde_json::json!({"cmd": "replace", "config": self.bard_config()})
    }

    /// The tempo in BPM (quarter notes per minute) for the engine.
    pub fn tempo(&self) -> f64 {
        self.global.tempo
    }
}

/// 1..=16: where a zone's program change goes.
fn out_channel(s: &ZoneSettings) -> u8 {
    match (s.out_channel, s.channel) {
        (OutChannel::Channel(c), _) => c,
        (OutChannel::Same, Channel::Only(c)) => c,
        (OutChannel::Same, Channel::Any) => 1,
    }
}

fn zone_config(name: &str, s: &ZoneSettings, drum_mode: bool) -> ZoneConfig {
    ZoneConfig {
        name: name.into(),
        source: match s.source {
            Source::Any => None,
            Source::Input(n) => Some(n),
        },
        channel: match s.channel {
            Channel::Any => None,
            Channel::Only(c) => Some(c),
        },
        low: s.low.0,
        high: s.high.0,
        velocity: match s.velocity {
            Velocity::Fixed(v) => VelocityConfig {
                fixed: Some(v),
                ..VelocityConfig::default()
            },
            v => VelocityConfig {
                curve: v.exponent(),
                ..VelocityConfig::default()
            },
        },
        scale: s.scale.0.clone().map(|scale| ScaleConfig {
            key: s.key.0,
            scale,
            snap: Snap::Nearest,
            white_keys: false,
        }),
        chord: s.chord.0.map(|c| ChordConfig {
            shape: ChordShape::Named(c),
            ..ChordConfig::default()
        }),
        arp: s.arp.0.then(|| ArpConfig {
            mode: s.arp_pattern.0,
            rate: s.arp_rate.0,
            ..ArpConfig::default()
        }),
        drums: (drum_mode || s.drum_keys.0).then(DrumConfig::default),
        output: s.output,
        out_channel: match s.out_channel {
            OutChannel::Same => None,
            OutChannel::Channel(c) => Some(c),
        },
        transpose: Transpose {
            octaves: s.octave,
            semitones: s.semitone,
        },
        ..ZoneConfig::default()
    }
}

fn movement_zone(name: &str, output: u8, movement: MovementConfig) -> ZoneConfig {
    ZoneConfig {
        name: name.into(),
        notes: false,
        controllers: false,
        output,
        movement: Some(movement),
        ..ZoneConfig::default()
    }
}
