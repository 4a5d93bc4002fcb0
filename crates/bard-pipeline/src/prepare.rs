//! A validated configuration compiled into the plain form the engine thread
//! reads: lookup tables, fixed arrays, pattern indices instead of names.

use crate::config::{ArpMode, BardConfig, ConfigError, RunMode};
use crate::limits::*;
use crate::theory::{velocity_lut, PChord, PScale};

/// A configuration ready for the engine thread. Build it off-thread with
/// [`PreparedConfig::new`] (allocates), hand it to
/// [`Bard::apply_config`](crate::Bard::apply_config) (does not), and drop the
/// one you get back off-thread.
#[derive(Clone, Debug)]
pub struct PreparedConfig {
    pub(crate) source: BardConfig,
    pub(crate) zones: Vec<PZone>,
    pub(crate) transpose: i16,
    pub(crate) pass_other: bool,
    pub(crate) thru_output: u8,
    pub(crate) seed: u64,
}

#[derive(Clone, Debug)]
pub(crate) struct PZone {
    pub source: Option<u8>,
    pub channel: Option<u8>,
    pub low: u8,
    pub high: u8,
    pub vel_low: u8,
    pub vel_high: u8,
    pub vel: [u8; 128],
    pub scale: Option<PScale>,
    pub chord: Option<PChord>,
    pub arp: Option<PArp>,
    pub movement: Option<PMovement>,
    /// Key → drum note, `NO_NOTE` = silent.
    pub drums: Option<[u8; 128]>,
    pub output: u8,
    pub out_channel: Option<u8>,
    pub controllers: bool,
    /// The zone's own transpose in semitones (added to the global one).
    pub transpose: i16,
    /// Takes played notes and controllers.
    pub notes: bool,
}

pub(crate) const NO_NOTE: u8 = 255;

#[derive(Clone, Copy, Debug)]
pub(crate) struct PArp {
    pub mode: ArpMode,
    pub step_beats: f64,
    pub gate: f64,
    pub octaves: u8,
    pub latch: bool,
    pub swing: f64,
    pub quantize_start: bool,
}

#[derive(Clone, Debug)]
pub(crate) struct PMovement {
    pub tpb: u32,
    pub bpm: Option<f64>,
    pub run: RunMode,
    pub root: u8,
    pub patterns: Vec<PPattern>,
    pub voices: Vec<PVoice>,
}

#[derive(Clone, Debug)]
pub(crate) struct PPattern {
    pub length: u32,
    /// Sorted by tick.
    pub notes: Vec<PNote>,
}

#[derive(Clone, Copy, Debug)]
pub(crate) struct PNote {
    pub tick: u32,
    pub note: u8,
    pub velocity: u8,
    pub duration: u32,
}

#[derive(Clone, Debug)]
pub(crate) struct PVoice {
    /// Indices into `PMovement::patterns`.
    pub patterns: Vec<usize>,
    pub repeat: u32,
    pub cycle: bool,
    pub mute: bool,
    pub output: u8,
    pub channel: u8,
    pub drums: bool,
}

impl Default for PreparedConfig {
    fn default() -> Self {
        PreparedConfig::new(&BardConfig::default()).expect("the default config is valid")
    }
}

impl PreparedConfig {
    /// Validates and compiles a configuration.
    ///
    /// Thread: any non-real-time thread. Allocates.
    pub fn new(cfg: &BardConfig) -> Result<PreparedConfig, ConfigError> {
        cfg.validate()?;
        let zones = cfg
            .zones
            .iter()
            .map(|z| PZone {
                source: z.source,
                channel: z.channel.map(|c| c - 1),
                low: z.low,
                high: z.high,
                vel_low: z.vel_low,
                vel_high: z.vel_high,
                vel: velocity_lut(&z.velocity),
                scale: z.scale.as_ref().map(PScale::new),
                chord: z.chord.as_ref().map(PChord::new),
                arp: z.arp.map(|a| PArp {
                    mode: a.mode,
                    step_beats: a.rate.beats(),
                    gate: a.gate,
                    octaves: a.octaves,
                    latch: a.latch,
                    swing: a.swing,
                    quantize_start: a.quantize_start,
                }),
                movement: z.movement.as_ref().map(|m| {
                    let names: Vec<&String> = m.patterns.keys().collect();
                    PMovement {
                        tpb: m.ticks_per_beat as u32,
                        bpm: m.bpm,
                        run: m.run,
                        root: m.root,
                        patterns: m
                            .patterns
                            .values()
                            .map(|p| {
                                let mut notes: Vec<PNote> = p
                                    .notes
                                    .iter()
                                    .map(|n| PNote {
                                        tick: n.tick,
                                        note: n.note,
                                        velocity: n.velocity,
                                        duration: n.duration,
                                    })
                                    .collect();
                                notes.sort_by_key(|n| n.tick);
                                PPattern {
                                    length: p.length,
                                    notes,
                                }
                            })
                            .collect(),
                        voices: m
                            .voices
                            .iter()
                            .map(|v| PVoice {
                                patterns: v
                                    .patterns
                                    .iter()
                                    .map(|n| names.iter().position(|k| *k == n).expect("validated"))
                                    .collect(),
                                repeat: v.repeat,
                                cycle: v.cycle,
                                mute: v.mute,
                                output: v.output.unwrap_or(z.output),
                                channel: if v.drums {
                                    DRUM_CHANNEL
                                } else {
                                    v.channel.or(z.out_channel).map(|c| c - 1).unwrap_or(0)
                                },
                                drums: v.drums,
                            })
                            .collect(),
                    }
                }),
                drums: z.drums.as_ref().map(|d| {
                    let mut map = [NO_NOTE; 128];
                    for (k, slot) in map.iter_mut().enumerate() {
                        if let Some(&v) = d.map.get(&(k as u8)) {
                            *slot = v;
                        } else if d.fold {
                            *slot = 36 + (k as u8 % 24);
                        }
                    }
                    map
                }),
                output: z.output,
                out_channel: z.out_channel.map(|c| c - 1),
                controllers: z.controllers,
                transpose: z.transpose.total(),
                notes: z.notes,
            })
            .collect();
        Ok(PreparedConfig {
            source: cfg.clone(),
            zones,
            transpose: cfg.transpose.total(),
            pass_other: cfg.pass_other,
            thru_output: cfg.thru_output,
            seed: cfg.seed,
        })
    }

    /// The configuration this was prepared from.
    pub fn config(&self) -> &BardConfig {
        &self.source
    }
}
