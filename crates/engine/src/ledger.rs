//! What is sounding where, so that whoever let a note start can end it.
//!
//! A [`NoteLedger`] records the events that left one place (an engine
//! slot, or a backend's output port) and keeps, per destination, what is
//! still sounding:
//!
//! - **notes**, keyed by (numbered output, channel, note). MIDI has no note
//!   ids, so two note-ons for the same key on the same destination (two
//!   layered zones playing the same note into one synth channel) are
//!   **counted**: each note-on is owed one note-off, and the ledger lets
//!   exactly as many note-offs through as there were note-ons. A note-off
//!   for a key that is not sounding there is an orphan and is dropped.
//! - **holding pedals**, keyed by (numbered output, channel): sustain
//!   (CC 64) and sostenuto (CC 66) down. A note-off under a held sustain
//!   pedal keeps ringing on a synth, so a release sends the note-offs and
//!   then lifts the pedals.
//!
//! Fixed capacity, no allocation after construction: safe on the engine
//! thread. When the table is full a note-on is refused (the caller drops
//! it and counts it): a note that cannot be tracked must not start,
//! because nobody could end it.

use imp::RtEvent;

/// Keys a ledger can track at once (notes and held pedals together).
pub const LEDGER_CAPACITY: usize = 512;

/// Pedals whose "down" makes a note ring on after its note-off.
const HOLDING_PEDALS: [u8; 2] = [64, 66];

const PEDAL_FLAG: u32 = 1 << 24;

fn note_key(output: u8, channel: u8, note: u8) -> u32 {
    (output as u32) << 16 | (channel as u32) << 8 | note as u32
}

fn pedal_key(output: u8, channel: u8, cc: u8) -> u32 {
    PEDAL_FLAG | note_key(output, channel, cc)
}

/// What the ledger decided about one event.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Let it through.
    Pass,
    /// A note-off for a note that is not sounding there: drop it.
    Orphan,
    /// A note-on the ledger has no room to track: drop it.
    Full,
}

/// Sounding notes and held pedals of one source, per destination.
#[derive(Clone)]
pub struct NoteLedger {
    keys: Box<[u32]>,
    counts: Box<[u16]>,
    len: usize,
}

impl Default for NoteLedger {
    fn default() -> Self {
        Self::new()
    }
}

impl std::fmt::Debug for NoteLedger {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NoteLedger")
            .field("sounding", &self.count())
            .finish()
    }
}

impl NoteLedger {
    /// An empty ledger with room for [`LEDGER_CAPACITY`] keys. Allocates:
    /// call off the engine thread.
    pub fn new() -> NoteLedger {
        NoteLedger {
            keys: vec![0; LEDGER_CAPACITY].into_boxed_slice(),
            counts: vec![0; LEDGER_CAPACITY].into_boxed_slice(),
            len: 0,
        }
    }

    fn find(&self, key: u32) -> Option<usize> {
        self.keys[..self.len].iter().position(|k| *k == key)
    }

    fn add(&mut self, key: u32) -> bool {
        if let Some(i) = self.find(key) {
            self.counts[i] = self.counts[i].saturating_add(1);
            return true;
        }
        if self.len == self.keys.len() {
            return false;
        }
        self.keys[self.len] = key;
        self.counts[self.len] = 1;
        self.len += 1;
        true
    }

    /// Removes one count of `key`; false when it was not there.
    fn take(&mut self, key: u32) -> bool {
        let Some(i) = self.find(key) else {
            return false;
        };
        self.counts[i] -= 1;
        if self.counts[i] == 0 {
            self.len -= 1;
            self.keys[i] = self.keys[self.len];
            self.counts[i] = self.counts[self.len];
        }
        true
    }

    /// Records an event leaving on its numbered output (`e.port`) and says
    /// whether it may go. Engine thread; allocation-free.
    pub fn record(&mut self, e: &RtEvent) -> Verdict {
        let b = e.midi_bytes();
        if b.len() != 3 || b[1] > 127 {
            return Verdict::Pass;
        }
        let channel = b[0] & 0x0F;
        if e.is_note_on() {
            if self.add(note_key(e.port, channel, b[1])) {
                Verdict::Pass
            } else {
                Verdict::Full
            }
        } else if e.is_note_off() {
            if self.take(note_key(e.port, channel, b[1])) {
                Verdict::Pass
            } else {
                Verdict::Orphan
            }
        } else if b[0] & 0xF0 == 0xB0 && HOLDING_PEDALS.contains(&b[1]) {
            let key = pedal_key(e.port, channel, b[1]);
            let down = self.find(key).is_some();
            if b[2] >= 64 && !down {
                // A pedal that cannot be tracked still goes: lifting it
                // later is harmless, and refusing it would change the music.
                self.add(key);
            } else if b[2] < 64 && down {
                self.take(key);
            }
            Verdict::Pass
        } else {
            Verdict::Pass
        }
    }

    /// True when no note sounds and no pedal is held.
    pub fn is_silent(&self) -> bool {
        self.len == 0
    }

    /// Number of note-offs owed (a note counted twice owes two).
    pub fn count(&self) -> u32 {
        (0..self.len)
            .filter(|&i| self.keys[i] & PEDAL_FLAG == 0)
            .map(|i| self.counts[i] as u32)
            .sum()
    }

    /// Ends everything: writes, at `frame`, one note-off (`0x80`) for every
    /// note-on still owed, each on the numbered output and channel its note
    /// went to, then lifts every held pedal there; forgets it all. Stops
    /// early (keeping what did not fit) when `out` returns false. Engine
    /// thread; allocation-free.
    pub fn release(&mut self, frame: u32, mut out: impl FnMut(RtEvent) -> bool) -> usize {
        let mut sent = 0;
        // Notes first, then pedals: a note-off under a held pedal would ring on.
        for pedals in [false, true] {
            let mut i = 0;
            while i < self.len {
                let key = self.keys[i];
                if (key & PEDAL_FLAG != 0) != pedals {
                    i += 1;
                    continue;
                }
                let (output, channel, data) = ((key >> 16) as u8, (key >> 8) as u8, key as u8);
                let bytes = if pedals {
                    [0xB0 | channel, data, 0]
                } else {
                    [0x80 | channel, data, 0]
                };
                let mut e = RtEvent::midi(frame, &bytes);
                e.port = output;
                let mut complete = true;
                while self.counts[i] > 0 {
                    if !out(e) {
                        complete = false;
                        break;
                    }
                    self.counts[i] -= 1;
                    sent += 1;
                }
                if !complete {
                    return sent;
                }
                self.len -= 1;
                self.keys[i] = self.keys[self.len];
                self.counts[i] = self.counts[self.len];
            }
        }
        sent
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(port: u8, bytes: &[u8]) -> RtEvent {
        let mut e = RtEvent::midi(0, bytes);
        e.port = port;
        e
    }

    fn release_all(l: &mut NoteLedger) -> Vec<(u8, [u8; 3])> {
        let mut out = Vec::new();
        l.release(5, |e| {
            out.push((e.port, e.bytes));
            true
        });
        out.sort();
        out
    }

    #[test]
    fn note_off_only_for_sounding_notes() {
        let mut l = NoteLedger::new();
        assert_eq!(l.record(&ev(0, &[0x80, 60, 0])), Verdict::Orphan);
        assert_eq!(l.record(&ev(0, &[0x91, 60, 10])), Verdict::Pass);
        assert_eq!(
            l.record(&ev(0, &[0x80, 60, 0])),
            Verdict::Orphan,
            "other channel"
        );
        assert_eq!(
            l.record(&ev(1, &[0x81, 60, 0])),
            Verdict::Orphan,
            "other output"
        );
        assert_eq!(
            l.record(&ev(0, &[0x91, 60, 0])),
            Verdict::Pass,
            "velocity 0 is note-off"
        );
        assert!(l.is_silent());
    }

    #[test]
    fn layered_outputs_on_one_channel_each_get_their_note_off() {
        let mut l = NoteLedger::new();
        l.record(&ev(1, &[0x90, 60, 100]));
        l.record(&ev(2, &[0x90, 60, 100]));
        assert_eq!(l.record(&ev(1, &[0x80, 60, 0])), Verdict::Pass);
        assert_eq!(l.record(&ev(2, &[0x90, 60, 0])), Verdict::Pass);
        assert!(l.is_silent());
    }

    #[test]
    fn two_note_ons_on_one_destination_are_counted() {
        let mut l = NoteLedger::new();
        l.record(&ev(0, &[0x90, 60, 100]));
        l.record(&ev(0, &[0x90, 60, 90]));
        assert_eq!(l.count(), 2);
        assert_eq!(l.record(&ev(0, &[0x80, 60, 0])), Verdict::Pass);
        assert_eq!(l.record(&ev(0, &[0x80, 60, 0])), Verdict::Pass);
        assert_eq!(l.record(&ev(0, &[0x80, 60, 0])), Verdict::Orphan);
        l.record(&ev(0, &[0x90, 61, 100]));
        l.record(&ev(0, &[0x90, 61, 100]));
        assert_eq!(
            release_all(&mut l),
            vec![(0, [0x80, 61, 0]), (0, [0x80, 61, 0])]
        );
    }

    #[test]
    fn release_goes_where_each_note_went_then_lifts_pedals() {
        let mut l = NoteLedger::new();
        l.record(&ev(0, &[0x90, 0, 1]));
        l.record(&ev(3, &[0x9F, 127, 1]));
        l.record(&ev(3, &[0xBF, 64, 127]));
        l.record(&ev(2, &[0xB0, 66, 100]));
        l.record(&ev(2, &[0xB0, 66, 0])); // lifted again
        let mut out = Vec::new();
        l.release(5, |e| {
            out.push((e.frame, e.port, e.bytes));
            true
        });
        assert_eq!(out.len(), 3);
        assert_eq!(
            out.last(),
            Some(&(5, 3, [0xBF, 64, 0])),
            "pedal after notes"
        );
        assert!(out.contains(&(5, 0, [0x80, 0, 0])));
        assert!(out.contains(&(5, 3, [0x8F, 127, 0])));
        assert!(l.is_silent());
    }

    #[test]
    fn a_full_ledger_refuses_note_ons_and_release_resumes() {
        let mut l = NoteLedger::new();
        for i in 0..LEDGER_CAPACITY {
            let e = ev((i / 128) as u8, &[0x90, (i % 128) as u8, 1]);
            assert_eq!(l.record(&e), Verdict::Pass);
        }
        assert_eq!(l.record(&ev(9, &[0x90, 1, 1])), Verdict::Full);
        let mut first = 0;
        l.release(0, |_| {
            first += 1;
            first <= 10
        });
        assert_eq!(l.count() as usize, LEDGER_CAPACITY - 10);
        assert_eq!(
            l.release(0, |_| true),
            LEDGER_CAPACITY - 10,
            "the rest on the next call"
        );
        assert!(l.is_silent());
    }
}
