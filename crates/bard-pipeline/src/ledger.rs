//! Stuck-note safety: what is sounding on the outputs, which held key caused
//! which output notes, and which generated notes end when.
//!
//! Everything is fixed-capacity; nothing here allocates after construction.

use crate::event::{EventSink, NoteEvent};
use crate::limits::*;

/// One sounding output note (after every stage): numbered output, 0-based
/// channel, note.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct OutNote {
    pub port: u8,
    pub channel: u8,
    pub note: u8,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Slot {
    pub n: OutNote,
    /// How many owners (held keys, generator notes) hold this note on.
    pub count: u8,
    /// Its note-off did not fit in the sink and is due at the next chance.
    pub pending_off: bool,
}

/// Reference-counted table of sounding output notes. It keeps the output
/// stream well formed per (port, channel, note): on, off, on, off…; a second
/// owner of a sounding note re-strikes it (off + on) and only the last owner's
/// release sends the note-off.
#[derive(Clone, Debug)]
pub(crate) struct OutputTable {
    pub slots: [Slot; MAX_SOUNDING],
    pub len: usize,
}

impl OutputTable {
    pub fn new() -> Self {
        OutputTable {
            slots: [Slot::default(); MAX_SOUNDING],
            len: 0,
        }
    }

    fn find(&self, n: OutNote) -> Option<usize> {
        self.slots[..self.len].iter().position(|s| s.n == n)
    }

    fn remove(&mut self, i: usize) {
        // Ordered removal keeps all-notes-off in note-on order (deterministic).
        self.slots.copy_within(i + 1..self.len, i);
        self.len -= 1;
    }

    /// Sends a note-on and takes a reference. Returns `false` (nothing sent,
    /// nothing recorded) when the sink or the table is full.
    pub fn note_on(&mut self, n: OutNote, vel: u8, frame: u32, sink: &mut impl EventSink) -> bool {
        match self.find(n) {
            Some(i) => {
                let s = self.slots[i];
                if s.count == u8::MAX || sink.remaining() < 2 {
                    return false;
                }
                if s.count > 0 || s.pending_off {
                    sink.push(NoteEvent::note_off(frame, n.port, n.channel, n.note));
                }
                sink.push(NoteEvent::note_on(frame, n.port, n.channel, n.note, vel));
                self.slots[i].count += 1;
                self.slots[i].pending_off = false;
                true
            }
            None => {
                if self.len == MAX_SOUNDING || sink.remaining() < 1 {
                    return false;
                }
                sink.push(NoteEvent::note_on(frame, n.port, n.channel, n.note, vel));
                self.slots[self.len] = Slot {
                    n,
                    count: 1,
                    pending_off: false,
                };
                self.len += 1;
                true
            }
        }
    }

    /// Drops one reference; the last one sends the note-off (or marks it
    /// pending when the sink is full).
    pub fn note_off(&mut self, n: OutNote, frame: u32, sink: &mut impl EventSink) {
        let Some(i) = self.find(n) else { return };
        let s = &mut self.slots[i];
        if s.count == 0 {
            return;
        }
        s.count -= 1;
        if s.count == 0 {
            if sink.push(NoteEvent::note_off(frame, n.port, n.channel, n.note)) {
                self.remove(i);
            } else {
                s.pending_off = true;
            }
        }
    }

    /// Sends the note-offs that did not fit earlier.
    pub fn flush_pending(&mut self, frame: u32, sink: &mut impl EventSink) {
        let mut i = 0;
        while i < self.len {
            let s = self.slots[i];
            if s.count == 0 && s.pending_off {
                if !sink.push(NoteEvent::note_off(frame, s.n.port, s.n.channel, s.n.note)) {
                    return;
                }
                self.remove(i);
            } else {
                i += 1;
            }
        }
    }

    /// Sends a note-off for every sounding note, then an All Notes Off
    /// (CC 123) on each (port, channel) that had one. Notes whose note-off
    /// does not fit stay pending.
    pub fn all_off(&mut self, frame: u32, sink: &mut impl EventSink) {
        // Channels touched, per port.
        let mut touched = [0u16; 256];
        let mut i = 0;
        while i < self.len {
            let s = self.slots[i];
            if sink.push(NoteEvent::note_off(frame, s.n.port, s.n.channel, s.n.note)) {
                touched[s.n.port as usize] |= 1 << s.n.channel;
                self.remove(i);
            } else {
                self.slots[i].count = 0;
                self.slots[i].pending_off = true;
                i += 1;
            }
        }
        for (port, &mask) in touched.iter().enumerate() {
            for ch in 0..16u8 {
                if mask & (1 << ch) != 0 {
                    sink.push(NoteEvent::control_change(frame, port as u8, ch, 123, 0));
                }
            }
        }
    }
}

/// A generated note (arpeggiator, step pattern) and when it ends.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct TimedOff {
    pub at: u64,
    pub n: OutNote,
}

#[derive(Clone, Debug)]
pub(crate) struct TimedOffs {
    pub items: [TimedOff; MAX_TIMED],
    pub len: usize,
}

impl TimedOffs {
    pub fn new() -> Self {
        TimedOffs {
            items: [TimedOff::default(); MAX_TIMED],
            len: 0,
        }
    }
    pub fn is_full(&self) -> bool {
        self.len == MAX_TIMED
    }
    pub fn push(&mut self, t: TimedOff) {
        if self.len < MAX_TIMED {
            self.items[self.len] = t;
            self.len += 1;
        }
    }
    /// Earliest due time.
    pub fn next_at(&self) -> Option<u64> {
        self.items[..self.len].iter().map(|t| t.at).min()
    }
    /// Releases every note due at or before `t`, in due order (stable).
    pub fn release_due(
        &mut self,
        t: u64,
        frame: u32,
        table: &mut OutputTable,
        sink: &mut impl EventSink,
    ) {
        let mut i = 0;
        while i < self.len {
            if self.items[i].at <= t {
                table.note_off(self.items[i].n, frame, sink);
                // Keep order: shift down (the list is short).
                self.items.copy_within(i + 1..self.len, i);
                self.len -= 1;
            } else {
                i += 1;
            }
        }
    }
}

/// How a held key is being played.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) enum Route {
    /// Its output notes are in `outs`.
    #[default]
    Direct = 0,
    /// It feeds the zone's arpeggiator.
    Arp = 1,
    /// It gates and transposes the zone's movement.
    Movement = 2,
}

/// A held input key in one zone, and the output notes its note-on produced.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Held {
    pub source: u8,
    pub channel: u8,
    pub note: u8,
    pub zone: u8,
    pub route: Route,
    pub n_outs: u8,
    pub outs: [OutNote; MAX_CHORD_NOTES],
}

#[derive(Clone, Debug)]
pub(crate) struct HeldTable {
    pub items: [Held; MAX_HELD],
    pub len: usize,
}

impl HeldTable {
    pub fn new() -> Self {
        HeldTable {
            items: [Held::default(); MAX_HELD],
            len: 0,
        }
    }
    pub fn is_full(&self) -> bool {
        self.len == MAX_HELD
    }
    pub fn push(&mut self, h: Held) {
        if self.len < MAX_HELD {
            self.items[self.len] = h;
            self.len += 1;
        }
    }
    /// Removes and returns the first entry for this key, if any.
    pub fn take(&mut self, source: u8, channel: u8, note: u8) -> Option<Held> {
        let i = self.items[..self.len]
            .iter()
            .position(|h| h.source == source && h.channel == channel && h.note == note)?;
        let h = self.items[i];
        // Keep press order (the as-played arpeggio and movement transposition use it).
        self.items.copy_within(i + 1..self.len, i);
        self.len -= 1;
        Some(h)
    }
    pub fn any_in_zone(&self, zone: u8, route: Route) -> bool {
        self.items[..self.len]
            .iter()
            .any(|h| h.zone == zone && h.route == route)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::FixedSink;

    #[test]
    fn shared_note_restrikes_and_ends_once() {
        let mut t = OutputTable::new();
        let mut s = FixedSink::<16>::new();
        let n = OutNote {
            port: 0,
            channel: 0,
            note: 60,
        };
        assert!(t.note_on(n, 100, 0, &mut s));
        assert!(t.note_on(n, 90, 1, &mut s));
        t.note_off(n, 2, &mut s);
        t.note_off(n, 3, &mut s);
        assert_eq!(
            s.events(),
            &[
                NoteEvent::note_on(0, 0, 0, 60, 100),
                NoteEvent::note_off(1, 0, 0, 60),
                NoteEvent::note_on(1, 0, 0, 60, 90),
                NoteEvent::note_off(3, 0, 0, 60),
            ]
        );
        assert_eq!(t.len, 0);
    }

    #[test]
    fn full_sink_defers_note_off_and_refuses_note_on() {
        let mut t = OutputTable::new();
        let mut s = FixedSink::<1>::new();
        let n = OutNote {
            port: 2,
            channel: 9,
            note: 36,
        };
        assert!(t.note_on(n, 100, 0, &mut s));
        assert!(!t.note_on(OutNote { note: 37, ..n }, 100, 0, &mut s));
        t.note_off(n, 5, &mut s);
        assert_eq!(t.len, 1);
        s.clear();
        t.flush_pending(0, &mut s);
        assert_eq!(s.events(), &[NoteEvent::note_off(0, 2, 9, 36)]);
        assert_eq!(t.len, 0);
    }
}
