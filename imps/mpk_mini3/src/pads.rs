//! The pads: General MIDI drums, or chords on the degrees of the selected
//! zone's scale. Pure and allocation-free (the RT part runs it).
//!
//! The pushed program ([`crate::program`]) makes pads 1–16 (bank A 1–8,
//! bank B 9–16) send notes 36–51 on channel 10.
//!
//! - `drums`: they pass unchanged, General MIDI drums on channel 10
//!   (36 bass drum, 38 snare, 42 closed hi-hat, …).
//! - `chords`: pad *n* plays the triad on degree *n* of the selected
//!   zone's scale (pad 1 the tonic, pad 2 the second degree, … with a
//!   seven-note scale pad 8 is the tonic an octave up; bank B goes on
//!   from there), from the tonic in octave 3
//!   (C3 = 48 … B3 = 59): the degree's note with the scale's third and
//!   fifth above it. A scale of `off` counts as major. The notes go out on
//!   the selected zone's input channel (channel 1 when it takes any), at
//!   the pad's velocity, so the bard plays them like keys of that zone.
//!   A pad's release ends exactly the notes its press started, even when
//!   the key or scale changed meanwhile.
//!
//! Anything else from the pads (CC and program change when the device's
//! own CC / PROG CH buttons switch them) passes unchanged.

use crate::program::{PADS, PAD_CHANNEL, PAD_FIRST_NOTE};

/// Notes in a pad's chord.
pub const CHORD: usize = 3;

/// What the pads play.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Deserialize, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum PadMode {
    /// General MIDI drums on channel 10.
    #[default]
    Drums,
    /// Triads on the degrees of the selected zone's scale.
    Chords,
}

/// The selected zone's harmony, as the pads need it (a plain value: it
/// crosses to the engine thread through a ring, and to the next build of
/// the imp as its frozen state).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Deserialize, serde::Serialize)]
pub struct Harmony {
    /// The key's pitch class, 0 (C) ..= 11 (B).
    pub key: u8,
    /// The scale's pitch classes above the key, bit `i` = `i` semitones;
    /// 0 = no scale (`off`, played as major).
    pub scale: u16,
    /// The channel chords go out on, from 0.
    pub channel: u8,
}

/// Pitch classes of the major scale (what `off` plays).
pub const MAJOR: u16 = 0b1010_1011_0101;

impl Harmony {
    /// The scale's pitch classes in ascending order and their count (the
    /// key always among them).
    fn tones(&self) -> ([u8; 12], usize) {
        let mask = if self.scale == 0 { MAJOR } else { self.scale } | 1;
        let mut tones = [0u8; 12];
        let mut n = 0;
        for pc in 0..12u8 {
            if mask & (1 << pc) != 0 {
                tones[n] = pc;
                n += 1;
            }
        }
        (tones, n)
    }

    /// The note of scale degree `degree` (0 = the tonic in octave 3).
    fn degree(&self, degree: usize) -> i16 {
        let (tones, n) = self.tones();
        48 + (self.key % 12) as i16 + 12 * (degree / n) as i16 + tones[degree % n] as i16
    }

    /// The triad on degree `degree` (0 = the tonic): its root, third and
    /// fifth in the scale, ascending; notes above 127 left out.
    pub fn triad(&self, degree: usize) -> ([u8; CHORD], usize) {
        let mut notes = [0u8; CHORD];
        let mut len = 0;
        for step in [0, 2, 4] {
            let note = self.degree(degree + step);
            if (0..=127).contains(&note) {
                notes[len] = note as u8;
                len += 1;
            }
        }
        (notes, len)
    }
}

/// The notes a held pad started: its channel and notes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct Held {
    channel: u8,
    notes: [u8; CHORD],
    len: u8,
}

/// Up to two chords' messages one pad message becomes (a press of a pad
/// still holding a chord ends that one, then plays).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Played {
    /// The messages, `len` of them.
    pub messages: [[u8; 3]; 2 * CHORD],
    /// How many.
    pub len: usize,
}

impl Played {
    fn one(bytes: [u8; 3]) -> Played {
        let mut p = Played::default();
        p.push(bytes);
        p
    }

    fn push(&mut self, bytes: [u8; 3]) {
        if self.len < self.messages.len() {
            self.messages[self.len] = bytes;
            self.len += 1;
        }
    }

    /// The messages.
    pub fn as_slice(&self) -> &[[u8; 3]] {
        &self.messages[..self.len]
    }
}

/// The pads' state on the engine thread.
#[derive(Clone, Debug)]
pub struct Pads {
    mode: PadMode,
    /// The selected zone's key, scale and channel.
    pub harmony: Harmony,
    held: [Held; PADS],
}

/// Bytes of [`Pads::save`]: a marker, then 5 bytes a pad.
pub const SAVED_BYTES: usize = 4 + PADS * 5;
const MARKER: [u8; 4] = *b"mpk1";

impl Pads {
    /// Pads playing `mode`, nothing held.
    pub fn new(mode: PadMode, harmony: Harmony) -> Pads {
        Pads {
            mode,
            harmony,
            held: [Held::default(); PADS],
        }
    }

    /// Whether `bytes` (a channel message of `len` bytes) came from the pads.
    pub fn is_pad(status: u8) -> bool {
        (0x80..0xF0).contains(&status) && status & 0x0F == PAD_CHANNEL
    }

    /// One message from the pads (channel 10), as it should leave.
    pub fn input(&mut self, bytes: [u8; 3], len: usize) -> Played {
        let status = bytes[0] & 0xF0;
        let is_note = len == 3 && (status == 0x80 || status == 0x90);
        let pad = (bytes[1] as usize).wrapping_sub(PAD_FIRST_NOTE as usize);
        if self.mode == PadMode::Drums || !is_note || pad >= PADS {
            return Played::one(bytes);
        }
        let mut out = Played::default();
        // A press while the pad still holds a chord (a lost release) ends
        // that one first: nothing is left hanging.
        let held = core::mem::take(&mut self.held[pad]);
        for &n in &held.notes[..held.len as usize] {
            out.push([0x80 | held.channel, n, 0]);
        }
        if status == 0x90 && bytes[2] > 0 {
            let (notes, len) = self.harmony.triad(pad);
            let channel = self.harmony.channel & 0x0F;
            self.held[pad] = Held {
                channel,
                notes,
                len: len as u8,
            };
            for &n in &notes[..len] {
                out.push([0x90 | channel, n, bytes[2]]);
            }
        }
        out
    }

    /// Note-offs for every chord a pad holds, forgetting them.
    pub fn release_all(&mut self, mut each: impl FnMut([u8; 3])) {
        for held in &mut self.held {
            let h = core::mem::take(held);
            for &n in &h.notes[..h.len as usize] {
                each([0x80 | h.channel, n, 0]);
            }
        }
    }

    /// Chords held now (for `status`).
    pub fn held(&self) -> usize {
        self.held.iter().filter(|h| h.len > 0).count()
    }

    /// Writes the held chords for a successor (a hot swap).
    pub fn save(&self, buf: &mut [u8]) {
        if buf.len() < SAVED_BYTES {
            return;
        }
        buf[..4].copy_from_slice(&MARKER);
        for (i, h) in self.held.iter().enumerate() {
            let at = 4 + 5 * i;
            buf[at] = h.channel;
            buf[at + 1] = h.len;
            buf[at + 2..at + 5].copy_from_slice(&h.notes);
        }
    }

    /// Takes over what [`Pads::save`] wrote; false (nothing taken) for
    /// anything else.
    pub fn restore(&mut self, buf: &[u8]) -> bool {
        if buf.len() < SAVED_BYTES || buf[..4] != MARKER {
            return false;
        }
        let mut held = [Held::default(); PADS];
        for (i, h) in held.iter_mut().enumerate() {
            let at = 4 + 5 * i;
            let (channel, len) = (buf[at], buf[at + 1]);
            if channel > 15 || len as usize > CHORD || buf[at + 2..at + 5].iter().any(|&n| n > 127)
            {
                return false;
            }
            h.channel = channel;
            h.len = len;
            h.notes.copy_from_slice(&buf[at + 2..at + 5]);
        }
        self.held = held;
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A minor: the natural minor scale's pitch classes.
    const MINOR: u16 = 0b0101_1010_1101;

    fn a_minor() -> Harmony {
        Harmony {
            key: 9,
            scale: MINOR,
            channel: 0,
        }
    }

    #[test]
    fn drums_pass_unchanged() {
        let mut p = Pads::new(PadMode::Drums, a_minor());
        assert_eq!(p.input([0x99, 36, 100], 3).as_slice(), &[[0x99, 36, 100]]);
        assert_eq!(p.input([0x89, 36, 0], 3).as_slice(), &[[0x89, 36, 0]]);
        assert_eq!(p.input([0x99, 51, 90], 3).as_slice(), &[[0x99, 51, 90]]);
    }

    #[test]
    fn chords_are_triads_on_the_scale_degrees() {
        let h = a_minor();
        assert_eq!(h.triad(0), ([57, 60, 64], 3), "Am: A3 C4 E4");
        assert_eq!(h.triad(1), ([59, 62, 65], 3), "B dim: B3 D4 F4");
        assert_eq!(h.triad(4), ([64, 67, 71], 3), "Em: E4 G4 B4");
        assert_eq!(h.triad(7), ([69, 72, 76], 3), "pad 8: Am an octave up");
        // C major (scale off plays major): C3 E3 G3, then Dm.
        let c = Harmony::default();
        assert_eq!(c.triad(0), ([48, 52, 55], 3));
        assert_eq!(c.triad(1), ([50, 53, 57], 3));
        // A pentatonic scale stacks its own degrees.
        let pent = Harmony {
            key: 0,
            scale: 0b0010_1001_0101, // C D E G A
            channel: 0,
        };
        assert_eq!(pent.triad(0), ([48, 52, 57], 3));
    }

    #[test]
    fn a_pad_plays_its_chord_on_the_zones_channel() {
        let mut p = Pads::new(
            PadMode::Chords,
            Harmony {
                channel: 2,
                ..a_minor()
            },
        );
        let on = p.input([0x99, 40, 90], 3); // pad 5: Em
        assert_eq!(
            on.as_slice(),
            &[[0x92, 64, 90], [0x92, 67, 90], [0x92, 71, 90]]
        );
        assert_eq!(p.held(), 1);
        let off = p.input([0x89, 40, 64], 3);
        assert_eq!(
            off.as_slice(),
            &[[0x82, 64, 0], [0x82, 67, 0], [0x82, 71, 0]]
        );
        assert_eq!(p.held(), 0);
        // Note-on with velocity 0 is a release too; a release of a pad
        // holding nothing sends nothing.
        assert_eq!(p.input([0x99, 40, 0], 3).len, 0);
    }

    #[test]
    fn a_release_ends_what_the_press_started_whatever_changed() {
        let mut p = Pads::new(PadMode::Chords, a_minor());
        p.input([0x99, 36, 100], 3); // Am on channel 1
        p.harmony = Harmony {
            key: 2,
            scale: 0,
            channel: 5,
        };
        let off = p.input([0x89, 36, 0], 3);
        assert_eq!(
            off.as_slice(),
            &[[0x80, 57, 0], [0x80, 60, 0], [0x80, 64, 0]]
        );
        // Now the new harmony: D major on channel 6.
        let on = p.input([0x99, 36, 100], 3);
        assert_eq!(
            on.as_slice(),
            &[[0x95, 50, 100], [0x95, 54, 100], [0x95, 57, 100]]
        );
    }

    #[test]
    fn other_pad_messages_and_notes_pass() {
        let mut p = Pads::new(PadMode::Chords, a_minor());
        assert_eq!(p.input([0xB9, 16, 127], 3).as_slice(), &[[0xB9, 16, 127]]);
        assert_eq!(p.input([0xC9, 3, 0], 2).as_slice(), &[[0xC9, 3, 0]]);
        assert_eq!(p.input([0x99, 60, 100], 3).as_slice(), &[[0x99, 60, 100]]);
        assert!(Pads::is_pad(0x99));
        assert!(!Pads::is_pad(0x90));
        assert!(!Pads::is_pad(0xF9));
    }

    #[test]
    fn held_chords_survive_a_swap_and_end_on_release_all() {
        let mut p = Pads::new(PadMode::Chords, a_minor());
        p.input([0x99, 36, 100], 3);
        p.input([0x99, 37, 100], 3);
        let mut buf = [0u8; 256];
        p.save(&mut buf);
        let mut q = Pads::new(PadMode::Chords, Harmony::default());
        assert!(q.restore(&buf));
        assert_eq!(q.held(), 2);
        let off = q.input([0x89, 37, 0], 3);
        assert_eq!(
            off.as_slice(),
            &[[0x80, 59, 0], [0x80, 62, 0], [0x80, 65, 0]]
        );
        let mut rest = Vec::new();
        q.release_all(|b| rest.push(b));
        assert_eq!(rest, vec![[0x80, 57, 0], [0x80, 60, 0], [0x80, 64, 0]]);
        assert_eq!(q.held(), 0);
        // Anything else is refused, and nothing taken.
        assert!(!q.restore(&[0u8; 256]));
    }
}
