//! # bard-pipeline: the bard's real-time note pipeline
//!
//! The bard turns played notes into output notes. This crate is the pure,
//! real-time-safe logic; the `imps/bard` imp wraps it and the engine drives it.
//!
//! ## Stages, in order
//!
//! Every incoming note goes through each *zone* it matches (a zone is a
//! source, a channel, a note range and a velocity window, so a keyboard can be
//! split or layered; a note in no zone is silent). Per zone:
//!
//! 1. **velocity**: `min + (max - min) * ((v - 1) / 126) ^ curve`, or a fixed
//!    velocity (compiled to a lookup table off-thread);
//! 2. **scale**: key + scale (the seven diatonic modes, harmonic and melodic
//!    minor, major and minor pentatonic, blues, whole-tone, chromatic, custom
//!    pitch-class sets), out-of-scale notes snap down, up or to the nearest;
//!    or "white keys play the scale" (middle C = tonic of octave 4, black
//!    keys silent);
//! 3. **chord**: named chords (`maj min 7 maj7 m7 dim aug sus2 sus4 add9 6 m6 9`)
//!    or raw interval lists, inversions, optionally diatonic (built from scale
//!    degrees, the scale gives the quality);
//! 4. **arpeggiator**: up, down, up_down, down_up, as_played, random, chord;
//!    rate 1/1 … 1/32, triplet (`T`) or dotted (`.`); gate; octaves 1–4; latch;
//!    swing; follows the engine tempo;
//! 5. **step patterns** (a *movement*: voices play patterns, a pattern is a
//!    polyphonic sequence of notes with durations in ticks, ticks per beat +
//!    BPM give the tick length; voices repeat, mute, switch patterns; free
//!    running or gated and transposed by the played key) and **drum mode**
//!    (played keys → General MIDI drums on channel 10);
//! 6. **transpose**: the global transpose plus the zone's own `transpose`
//!    (octaves + semitones each; not applied to drum notes);
//! 7. **numbered outputs**: each zone (and each voice) sends to output N, the
//!    imp wired as N in `realm.toml`.
//!
//! Non-note messages (pedals, CCs, pitch bend, pressure, program change)
//! follow the zones their source and channel's notes go through, each to
//! the zone's output and `out_channel` (a zone opts out with
//! `controllers = false`); what no zone takes, and system messages, go
//! unchanged to `thru_output` (nothing passes when `pass_other` is false).
//! A pedal held down while a zone's destination changes is lifted on the
//! old destination and pressed on the new one.
//!
//! ## Timing
//!
//! The engine hands a [`BlockContext`] per block: absolute sample position of
//! the block start, block length, sample rate and tempo. The arpeggiator and
//! the step patterns are scheduled on a beat grid anchored at absolute sample
//! 0 (re-anchored where the tempo changes), so they are sample-exact,
//! deterministic, and stay in phase across a configuration change or a hot
//! swap. Output events carry their frame offset inside the block and come out
//! in frame order; at one instant note-offs go before note-ons.
//!
//! ## Stuck-note safety
//!
//! * A ledger of held keys records the output notes each note-on produced; the
//!   note-off ends exactly those, whatever scale, chord, transpose or zone
//!   changed meanwhile. A note-on with velocity 0 is a note-off.
//! * Sounding output notes are reference counted per (output, channel, note):
//!   the output stream is always on, off, on, off… per note, a second owner
//!   re-strikes the note, only the last release ends it.
//! * Generated notes (arpeggio, patterns) carry their note-off time, kept even
//!   if their generator is reconfigured away.
//! * A note-on is only sent if its note-off is guaranteed a place (tables have
//!   room); a note-off that does not fit in the sink is retried at frame 0 of
//!   the next block.
//! * [`Bard::all_notes_off`] ends everything (note-offs, then CC 123 per
//!   channel that had sounding notes): on shutdown, on a failed swap and when
//!   an imp fails.
//!
//! ## Real-time rules
//!
//! After [`Bard::new`] (which may allocate, off the engine thread),
//! [`Bard::process`], [`Bard::all_notes_off`], [`Bard::apply_config`],
//! [`Bard::save_transient`] and [`Bard::restore_transient`] never allocate,
//! free, lock, make a system call or log. A configuration change is prepared
//! off-thread ([`BardConfig::apply_control`] → [`PreparedConfig::new`]), moved
//! in with [`Bard::apply_config`], and the old [`PreparedConfig`] it returns is
//! sent back to be dropped off-thread. The tests check all of this with a
//! counting global allocator. Capacities are fixed ([`limits`]); beyond them
//! note-ons are dropped (counted in [`Stats`]), never note-offs.
//!
//! ## Which thread calls what
//!
//! | call | thread | allocates |
//! |---|---|---|
//! | [`BardConfig::from_json`], [`BardConfig::apply_control`], [`ControlMessage::from_json`], [`PreparedConfig::new`], [`Bard::new`] | any non-real-time thread | yes |
//! | [`Bard::process`], [`Bard::all_notes_off`], [`Bard::apply_config`], [`Bard::send`], [`Bard::send_room`], [`Bard::save_transient`], [`Bard::restore_transient`], [`Bard::stats`], [`Bard::sounding`] | the engine thread | never |
//! | [`OutMidi::new`] | any | only for its error |
//! | dropping a [`PreparedConfig`] or a [`Bard`] | a non-real-time thread | frees |
//! | [`NoteEvent`], [`BlockContext`], [`FixedSink`], [`SliceSink`] (plain data) | any | never |
//!
//! ## Decisions
//!
//! * A note in no zone is silent; a note in several zones plays in each.
//! * Two owners of the same output note (two keys snapped onto one scale
//!   note, a chord note and an arpeggio note…): the second re-strikes it
//!   (note-off + note-on at the same frame), the last release ends it.
//! * The arpeggiator's first note sounds at the key press and the next ones
//!   follow the grid (the first grid step at least half a step later);
//!   `quantize_start` waits for the grid instead. Latch: released notes keep
//!   playing until a key is pressed with none held, which starts a new set.
//! * On a configuration change, notes already in an arpeggiator stay as they
//!   were computed (new keys use the new stages); an arpeggiator whose zone
//!   loses it stops, its sounding note still ends on time. A step pattern
//!   switched or muted keeps its tick position (the switch is immediate,
//!   in phase). A free-running movement starts on the first tick after the
//!   configuration that adds it, at the place the engine's beat gives: a
//!   cycling voice of a `run = always` movement lays its patterns (each
//!   `repeat` times) end to end from beat 0, so a one-bar pattern
//!   (beats per bar × `ticks_per_beat` ticks) plays its first tick on the
//!   bar's first beat (beat 0, 4, 8… in 4/4) whenever it starts, and stays
//!   there across tempo changes, reconfigurations, hot swaps and transport
//!   jumps. A voice with `cycle = false` (a one-shot) and a `while_held`
//!   movement play from their start.
//! * White-key mode: black keys are silent. Drum notes are not transposed.
//! * `all_notes_off` writes at frame 0; it is meant between blocks.
//! * Output channel: the zone's `out_channel`, else the input channel; drums
//!   always on channel 10.
//! * A zone with `notes = false` takes no played note and no controller: it
//!   only plays its movement (which must run `always`). The enchanter's
//!   drum patterns and metronome are such zones.
//! * `send` (a [`ControlMessage::Send`]) carries one channel message, not a
//!   note (a note-on sent that way would escape the ledger), to a numbered
//!   output at frame 0 of the next block: after the note-offs still pending,
//!   before the block's notes. The control part checks it
//!   ([`OutMidi::new`]) and moves the plain [`OutMidi`] to the engine thread
//!   through a ring; [`Bard::send`] queues up to [`limits::MAX_SENDS`].
//!   Queued sends are not carried across a hot swap (they leave at the very
//!   next block unless the output buffer is full).
//!
//! ## Configuration (vault JSON)
//!
//! Every field has a default; `{}` is a transparent pass-through. Channels are
//! 1–16 in JSON. Example: a split keyboard, lower half drums, upper half a
//! D-dorian arpeggio of minor-seventh chords, one octave up, to output 1,
//! and a free-running hi-hat pattern:
//!
//! ```
//! let json = r#"{
//!   "transpose": { "octaves": 1, "semitones": 0 },
//!   "zones": [
//!     { "name": "drums", "high": 47, "drums": { "map": { "36": 36, "38": 38 } } },
//!     { "name": "lead", "low": 48, "output": 1, "out_channel": 2,
//!       "velocity": { "curve": 1.5, "min": 30, "max": 120 },
//!       "scale": { "key": "D", "scale": "dorian", "snap": "nearest" },
//!       "chord": { "shape": "m7", "inversion": 1, "diatonic": false },
//!       "arp": { "mode": "up_down", "rate": "1/16T", "gate": 0.5, "octaves": 2,
//!                "latch": false, "swing": 0.5 } },
//!     { "name": "hats", "low": 0, "high": 0,
//!       "movement": { "ticks_per_beat": 4, "run": "always",
//!         "patterns": { "hat": { "length": 4, "notes": [
//!           { "tick": 0, "note": 42, "velocity": 90, "duration": 1 },
//!           { "tick": 2, "note": 42, "velocity": 60, "duration": 1 } ] } },
//!         "voices": [ { "patterns": ["hat"], "repeat": 1, "drums": true } ] } }
//!   ]
//! }"#;
//! let cfg = bard_pipeline::BardConfig::from_json(json).unwrap();
//! let bard = bard_pipeline::Bard::from_config(&cfg).unwrap();
//! # let _ = bard;
//! ```
//!
//! Errors name the field: `bard config at zones[1].arp.octaves: 7 is outside 1..=4`.
//!
//! Control messages change the configuration: [`ControlMessage`]s
//! (`{"cmd": "set", "path": "/zones/1/scale/key", "value": "E"}`, `transpose`,
//! `mute_voice`, `switch_patterns`, `replace`, and `send`:
//! `{"cmd": "send", "output": 1, "midi": [192, 4]}`).

#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod bard;
mod controllers;
// Enum variants there (scale, chord, mode names) are self-describing.
#[allow(missing_docs)]
pub mod config;
mod event;
mod ledger;
mod prepare;
#[allow(missing_docs)]
mod theory;
mod transient;

/// Fixed capacities of the real-time state.
pub mod limits {
    /// Zones per configuration.
    pub const MAX_ZONES: usize = 16;
    /// Notes in one chord.
    pub const MAX_CHORD_NOTES: usize = 8;
    /// Voices per movement.
    pub const MAX_VOICES: usize = 8;
    /// Distinct sounding output notes.
    pub const MAX_SOUNDING: usize = 256;
    /// Generated notes waiting for their note-off.
    pub const MAX_TIMED: usize = 256;
    /// Held (key, zone) pairs.
    pub const MAX_HELD: usize = 128;
    /// Notes in one arpeggiator.
    pub const MAX_ARP_NOTES: usize = 32;
    /// 0-based MIDI channel of General MIDI drums (channel 10).
    pub const DRUM_CHANNEL: u8 = 9;
    /// Messages of `send` control messages waiting for the next block.
    pub const MAX_SENDS: usize = 64;
    /// Size of the transient-state buffer for hot swaps.
    pub const TRANSIENT_STATE_BYTES: usize = 24 * 1024;
}

pub use bard::{Bard, Stats};
pub use config::{
    ArpConfig, ArpMode, BardConfig, ChordConfig, ChordName, ChordShape, ConfigError,
    ControlMessage, DrumConfig, Feel, Key, MovementConfig, OutMidi, PatternConfig, PatternNote,
    Problem, Rate, RunMode, ScaleConfig, ScaleKind, Snap, Transpose, VelocityConfig, VoiceConfig,
    ZoneConfig,
};
pub use event::{BlockContext, EventSink, FixedSink, Midi, NoteEvent, SliceSink};
pub use limits::TRANSIENT_STATE_BYTES;
pub use prepare::PreparedConfig;
pub use transient::{TransientError, TRANSIENT_VERSION};
