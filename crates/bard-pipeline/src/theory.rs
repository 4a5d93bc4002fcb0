//! Music theory: velocity curves, scales, snapping, white-key mode, chords.
//! The `P*` types are the prepared (compiled) forms used on the engine thread:
//! plain arrays, no allocation.

use crate::config::{
    ChordConfig, ChordName, ChordShape, ScaleConfig, ScaleKind, Snap, VelocityConfig,
};
use crate::limits::MAX_CHORD_NOTES;

/// Pitch-class set of a scale, bit `i` = `i` semitones above the key.
pub fn scale_mask(kind: &ScaleKind) -> u16 {
    let pcs: &[u8] = match kind {
        ScaleKind::Ionian => &[0, 2, 4, 5, 7, 9, 11],
        ScaleKind::Dorian => &[0, 2, 3, 5, 7, 9, 10],
        ScaleKind::Phrygian => &[0, 1, 3, 5, 7, 8, 10],
        ScaleKind::Lydian => &[0, 2, 4, 6, 7, 9, 11],
        ScaleKind::Mixolydian => &[0, 2, 4, 5, 7, 9, 10],
        ScaleKind::Aeolian => &[0, 2, 3, 5, 7, 8, 10],
        ScaleKind::Locrian => &[0, 1, 3, 5, 6, 8, 10],
        ScaleKind::HarmonicMinor => &[0, 2, 3, 5, 7, 8, 11],
        ScaleKind::MelodicMinor => &[0, 2, 3, 5, 7, 9, 11],
        ScaleKind::MajorPentatonic => &[0, 2, 4, 7, 9],
        ScaleKind::MinorPentatonic => &[0, 3, 5, 7, 10],
        ScaleKind::Blues => &[0, 3, 5, 6, 7, 10],
        ScaleKind::WholeTone => &[0, 2, 4, 6, 8, 10],
        ScaleKind::Chromatic => &[0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11],
        ScaleKind::Custom(v) => v,
    };
    // The tonic is always part of the set, so snapping always finds a note.
    pcs.iter().fold(1u16, |m, &pc| m | (1 << (pc % 12)))
}

/// Scale-degree steps of a named chord built diatonically.
pub fn chord_degrees(name: ChordName) -> &'static [i8] {
    match name {
        ChordName::Maj | ChordName::Min | ChordName::Dim | ChordName::Aug => &[0, 2, 4],
        ChordName::Dom7 | ChordName::Maj7 | ChordName::Min7 => &[0, 2, 4, 6],
        ChordName::Sus2 => &[0, 1, 4],
        ChordName::Sus4 => &[0, 3, 4],
        ChordName::Add9 => &[0, 2, 4, 8],
        ChordName::Six | ChordName::Min6 => &[0, 2, 4, 5],
        ChordName::Nine => &[0, 2, 4, 6, 8],
    }
}

/// Stage 1 compiled to a lookup table (the curve's `powf` runs off-thread).
pub fn velocity_lut(cfg: &VelocityConfig) -> [u8; 128] {
    let mut lut = [0u8; 128];
    for (v, slot) in lut.iter_mut().enumerate().skip(1) {
        *slot = match cfg.fixed {
            Some(f) => f,
            None => {
                let x = (v as f64 - 1.0) / 126.0;
                let span = cfg.max as f64 - cfg.min as f64;
                (cfg.min as f64 + span * x.powf(cfg.curve))
                    .round()
                    .clamp(1.0, 127.0) as u8
            }
        };
    }
    lut
}

/// Stage 2, prepared.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PScale {
    pub root: u8,
    pub mask: u16,
    /// Scale tones in ascending order, `tones[0] == 0`.
    pub tones: [u8; 12],
    pub n: u8,
    pub snap: Snap,
    pub white_keys: bool,
}

const WHITE_INDEX: [i8; 12] = [0, -1, 1, -1, 2, 3, -1, 4, -1, 5, -1, 6];

impl PScale {
    pub fn new(cfg: &ScaleConfig) -> PScale {
        let mask = scale_mask(&cfg.scale);
        let mut tones = [0u8; 12];
        let mut n = 0;
        for pc in 0..12u8 {
            if mask & (1 << pc) != 0 {
                tones[n] = pc;
                n += 1;
            }
        }
        PScale {
            root: cfg.key.0,
            mask,
            tones,
            n: n as u8,
            snap: cfg.snap,
            white_keys: cfg.white_keys,
        }
    }

    fn contains(&self, note: i16) -> bool {
        let pc = (note - self.root as i16).rem_euclid(12);
        self.mask & (1 << pc) != 0
    }

    /// Applies the stage to an input note; `None` = silent (black key in
    /// white-key mode). The result may be outside 0..=127.
    pub fn apply(&self, note: u8) -> Option<i16> {
        if self.white_keys {
            let idx = WHITE_INDEX[(note % 12) as usize];
            if idx < 0 {
                return None;
            }
            // Middle C (white index 35) plays the tonic of octave 4.
            let r = (note / 12) as i16 * 7 + idx as i16 - 35;
            let n = self.n as i16;
            let deg = r.rem_euclid(n) as usize;
            return Some(60 + self.root as i16 + 12 * r.div_euclid(n) + self.tones[deg] as i16);
        }
        let note = note as i16;
        if self.contains(note) {
            return Some(note);
        }
        let down = (1..12).find(|d| self.contains(note - d)).unwrap_or(0);
        let up = (1..12).find(|d| self.contains(note + d)).unwrap_or(0);
        Some(match self.snap {
            Snap::Down => note - down,
            Snap::Up => note + up,
            Snap::Nearest if up < down => note + up,
            Snap::Nearest => note - down,
        })
    }

    /// The note `steps` scale degrees away from `note` (which keeps its
    /// chromatic offset if it is not itself in the scale).
    pub fn degree_shift(&self, note: i16, steps: i8) -> i16 {
        let rel = note - self.root as i16;
        let oct = rel.div_euclid(12);
        let pc = rel.rem_euclid(12) as u8;
        let n = self.n as i16;
        let deg = (0..self.n as usize)
            .rev()
            .find(|&i| self.tones[i] <= pc)
            .unwrap_or(0);
        let d = deg as i16 + steps as i16;
        self.root as i16
            + 12 * (oct + d.div_euclid(n))
            + self.tones[d.rem_euclid(n) as usize] as i16
            + (pc - self.tones[deg]) as i16
    }
}

/// Stage 3, prepared.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PChord {
    /// Semitone intervals, or scale steps when `diatonic`.
    pub steps: [i8; MAX_CHORD_NOTES],
    pub n: u8,
    pub inversion: u8,
    pub diatonic: bool,
}

impl PChord {
    pub fn new(cfg: &ChordConfig) -> PChord {
        let src: &[i8] = match (&cfg.shape, cfg.diatonic) {
            (ChordShape::Named(n), false) => n.intervals(),
            (ChordShape::Named(n), true) => chord_degrees(*n),
            (ChordShape::Intervals(v), _) => v,
        };
        let mut steps = [0i8; MAX_CHORD_NOTES];
        let n = src.len().min(MAX_CHORD_NOTES);
        steps[..n].copy_from_slice(&src[..n]);
        PChord {
            steps,
            n: n as u8,
            inversion: cfg.inversion,
            diatonic: cfg.diatonic,
        }
    }

    /// Writes the chord on `root` into `out` (ascending), returns its size.
    pub fn build(
        &self,
        root: i16,
        scale: Option<&PScale>,
        out: &mut [i16; MAX_CHORD_NOTES],
    ) -> usize {
        let n = self.n as usize;
        for (o, &step) in out.iter_mut().zip(&self.steps[..n]) {
            *o = match (self.diatonic, scale) {
                (true, Some(s)) => s.degree_shift(root, step),
                _ => root + step as i16,
            };
        }
        out[..n].sort_unstable();
        for _ in 0..self.inversion {
            out[0] += 12;
            out[..n].sort_unstable();
        }
        n
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Key;

    fn scale(key: u8, kind: ScaleKind, snap: Snap, white: bool) -> PScale {
        PScale::new(&ScaleConfig {
            key: Key(key),
            scale: kind,
            snap,
            white_keys: white,
        })
    }

    #[test]
    fn snapping() {
        let s = scale(0, ScaleKind::Ionian, Snap::Down, false);
        assert_eq!(s.apply(61), Some(60));
        assert_eq!(s.apply(62), Some(62));
        let s = scale(0, ScaleKind::Ionian, Snap::Up, false);
        assert_eq!(s.apply(61), Some(62));
        // C minor pentatonic: C Eb F G Bb. D (62) is 2 from C, 1 from Eb.
        let s = scale(0, ScaleKind::MinorPentatonic, Snap::Nearest, false);
        assert_eq!(s.apply(62), Some(63));
        // C# is 1 from C and 2 from Eb: down.
        assert_eq!(s.apply(61), Some(60));
        // Whole tone from C: C# ties between C and D: down.
        let s = scale(0, ScaleKind::WholeTone, Snap::Nearest, false);
        assert_eq!(s.apply(61), Some(60));
        // D dorian custom set relative to key D: {0, 7} = D, A.
        let s = scale(2, ScaleKind::Custom(vec![7]), Snap::Up, false);
        assert_eq!(s.apply(63), Some(69));
        assert_eq!(s.apply(62), Some(62));
    }

    #[test]
    fn every_scale_has_the_right_size() {
        let sizes = [
            (ScaleKind::Ionian, 7),
            (ScaleKind::Dorian, 7),
            (ScaleKind::Phrygian, 7),
            (ScaleKind::Lydian, 7),
            (ScaleKind::Mixolydian, 7),
            (ScaleKind::Aeolian, 7),
            (ScaleKind::Locrian, 7),
            (ScaleKind::HarmonicMinor, 7),
            (ScaleKind::MelodicMinor, 7),
            (ScaleKind::MajorPentatonic, 5),
            (ScaleKind::MinorPentatonic, 5),
            (ScaleKind::Blues, 6),
            (ScaleKind::WholeTone, 6),
            (ScaleKind::Chromatic, 12),
        ];
        for (k, n) in sizes {
            assert_eq!(scale_mask(&k).count_ones(), n, "{k:?}");
        }
    }

    #[test]
    fn white_keys_play_the_scale() {
        // D dorian: C4 D4 E4 ... -> D4 E4 F4 G4 A4 B4 C5 D5
        let s = scale(2, ScaleKind::Dorian, Snap::Down, true);
        let whites = [60u8, 62, 64, 65, 67, 69, 71, 72];
        let out: Vec<_> = whites.iter().map(|&n| s.apply(n).unwrap()).collect();
        assert_eq!(out, vec![62, 64, 65, 67, 69, 71, 72, 74]);
        assert_eq!(s.apply(61), None);
        // B3 is the degree below the tonic.
        assert_eq!(s.apply(59), Some(60));
        // Pentatonic: 5 degrees per octave, white keys wrap every 5.
        let s = scale(0, ScaleKind::MajorPentatonic, Snap::Down, true);
        let out: Vec<_> = [60u8, 62, 64, 65, 67, 69]
            .iter()
            .map(|&n| s.apply(n).unwrap())
            .collect();
        assert_eq!(out, vec![60, 62, 64, 67, 69, 72]);
    }

    #[test]
    fn chords_and_inversions() {
        let mut out = [0i16; MAX_CHORD_NOTES];
        let c = PChord::new(&ChordConfig {
            shape: ChordShape::Named(ChordName::Maj7),
            inversion: 1,
            diatonic: false,
        });
        let n = c.build(60, None, &mut out);
        assert_eq!(&out[..n], &[64, 67, 71, 72]);
        let c = PChord::new(&ChordConfig {
            shape: ChordShape::Intervals(vec![0, 4, 7]),
            inversion: 2,
            diatonic: false,
        });
        let n = c.build(48, None, &mut out);
        assert_eq!(&out[..n], &[55, 60, 64]);
        for (name, iv) in [
            (ChordName::Min, &[0, 3, 7][..]),
            (ChordName::Dom7, &[0, 4, 7, 10]),
            (ChordName::Dim, &[0, 3, 6]),
            (ChordName::Aug, &[0, 4, 8]),
            (ChordName::Sus2, &[0, 2, 7]),
            (ChordName::Sus4, &[0, 5, 7]),
            (ChordName::Add9, &[0, 4, 7, 14]),
            (ChordName::Six, &[0, 4, 7, 9]),
            (ChordName::Min6, &[0, 3, 7, 9]),
            (ChordName::Nine, &[0, 4, 7, 10, 14]),
            (ChordName::Min7, &[0, 3, 7, 10]),
            (ChordName::Maj, &[0, 4, 7]),
        ] {
            let c = PChord::new(&ChordConfig {
                shape: ChordShape::Named(name),
                inversion: 0,
                diatonic: false,
            });
            let n = c.build(60, None, &mut out);
            let rel: Vec<i16> = out[..n].iter().map(|x| x - 60).collect();
            let want: Vec<i16> = iv.iter().map(|&x| x as i16).collect();
            assert_eq!(rel, want, "{name:?}");
        }
    }

    #[test]
    fn diatonic_chords_take_quality_from_the_scale() {
        let s = scale(0, ScaleKind::Ionian, Snap::Down, false);
        let c = PChord::new(&ChordConfig {
            shape: ChordShape::Named(ChordName::Dom7),
            inversion: 0,
            diatonic: true,
        });
        let mut out = [0i16; MAX_CHORD_NOTES];
        // ii7 in C: D F A C
        let n = c.build(62, Some(&s), &mut out);
        assert_eq!(&out[..n], &[62, 65, 69, 72]);
        // vii: B D F A (wraps the octave)
        let n = c.build(71, Some(&s), &mut out);
        assert_eq!(&out[..n], &[71, 74, 77, 81]);
    }

    #[test]
    fn velocity_curves() {
        let lin = velocity_lut(&VelocityConfig::default());
        for (v, &out) in lin.iter().enumerate().skip(1) {
            assert_eq!(out as usize, v);
        }
        let win = velocity_lut(&VelocityConfig {
            curve: 1.0,
            fixed: None,
            min: 40,
            max: 100,
        });
        assert_eq!((win[1], win[64], win[127]), (40, 70, 100));
        let soft = velocity_lut(&VelocityConfig {
            curve: 2.0,
            fixed: None,
            min: 1,
            max: 127,
        });
        // 1 + 126 * 0.5^2 = 32.5 -> 33
        assert_eq!(soft[64], 33);
        let fixed = velocity_lut(&VelocityConfig {
            fixed: Some(90),
            ..VelocityConfig::default()
        });
        assert!(fixed[1..].iter().all(|&v| v == 90));
    }
}
