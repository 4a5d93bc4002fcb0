//! Which notes each slot has left sounding, so that the engine can end them
//! itself when a slot is removed or fails, without trusting the imp.

use imp::RtEvent;

/// Sounding notes of one slot: one bit per (channel, note).
#[derive(Clone, Copy, Default)]
pub struct NoteLedger {
    bits: [u128; 16],
}

impl NoteLedger {
    /// Records an outgoing event. Returns false for a note-off of a note
    /// that is not sounding (the caller drops it, so every note-on gets
    /// exactly one note-off).
    pub fn record(&mut self, e: &RtEvent) -> bool {
        let b = e.midi_bytes();
        if b.len() != 3 || b[1] > 127 {
            return true;
        }
        let ch = (b[0] & 0x0F) as usize;
        let bit = 1u128 << b[1];
        if e.is_note_on() {
            self.bits[ch] |= bit;
            true
        } else if e.is_note_off() {
            let was = self.bits[ch] & bit != 0;
            self.bits[ch] &= !bit;
            was
        } else {
            true
        }
    }

    /// True when no note sounds.
    pub fn is_silent(&self) -> bool {
        self.bits.iter().all(|b| *b == 0)
    }

    /// Number of sounding notes.
    pub fn count(&self) -> u32 {
        self.bits.iter().map(|b| b.count_ones()).sum()
    }

    /// A note-off at `frame` for every sounding note (the ledger itself is
    /// unchanged; take it first with `std::mem::take` to forget the notes).
    pub fn note_offs(&self, frame: u32) -> impl Iterator<Item = RtEvent> + '_ {
        self.bits.iter().enumerate().flat_map(move |(ch, &bits)| {
            let mut rest = bits;
            std::iter::from_fn(move || {
                if rest == 0 {
                    return None;
                }
                let note = rest.trailing_zeros() as u8;
                rest &= !(1u128 << note);
                Some(RtEvent::midi(frame, &[0x80 | ch as u8, note, 0]))
            })
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn note_off_only_for_sounding_notes() {
        let mut l = NoteLedger::default();
        assert!(!l.record(&RtEvent::midi(0, &[0x80, 60, 0])));
        assert!(l.record(&RtEvent::midi(0, &[0x91, 60, 10])));
        assert!(
            !l.record(&RtEvent::midi(0, &[0x80, 60, 0])),
            "other channel"
        );
        assert!(
            l.record(&RtEvent::midi(0, &[0x91, 60, 0])),
            "velocity 0 is note-off"
        );
        assert!(l.is_silent());
    }

    #[test]
    fn note_offs_end_everything_once() {
        let mut l = NoteLedger::default();
        l.record(&RtEvent::midi(0, &[0x90, 0, 1]));
        l.record(&RtEvent::midi(0, &[0x9F, 127, 1]));
        let out: Vec<_> = std::mem::take(&mut l).note_offs(5).collect();
        assert_eq!(
            out,
            vec![
                RtEvent::midi(5, &[0x80, 0, 0]),
                RtEvent::midi(5, &[0x8F, 127, 0])
            ]
        );
        assert!(l.is_silent());
    }
}
