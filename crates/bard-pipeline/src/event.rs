//! Plain event, timing and sink types shared with the engine.
//!
//! Everything here is plain data: any thread may use it, nothing allocates.

/// One MIDI event at a sample offset inside the current block.
///
/// On input, `port` is the *source* number (which controller the event came
/// from, as wired in `realm.toml`); on output it is the *numbered output*
/// (0 = default). `bytes[..len]` is one complete channel message
/// (running status is not used).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub struct NoteEvent {
    /// Sample offset inside the current block.
    pub frame: u32,
    /// Source number on input, numbered output on output.
    pub port: u8,
    /// Raw MIDI bytes; only `bytes[..len]` is meaningful.
    pub bytes: [u8; 3],
    /// Number of valid bytes (1..=3).
    pub len: u8,
}

/// A decoded view of a [`NoteEvent`], as far as the bard cares.
#[allow(missing_docs)] // fields: 0-based channel, note, velocity
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Midi {
    /// Note-on with a non-zero velocity. Channel is 0-based.
    NoteOn { channel: u8, note: u8, velocity: u8 },
    /// Note-off, or note-on with velocity 0. Channel is 0-based.
    NoteOff { channel: u8, note: u8 },
    /// Any other message; the bard passes it through unchanged.
    Other,
}

impl NoteEvent {
    /// A note-on. `channel` is 0-based (0..=15).
    pub const fn note_on(frame: u32, port: u8, channel: u8, note: u8, velocity: u8) -> Self {
        NoteEvent {
            frame,
            port,
            bytes: [0x90 | (channel & 0x0f), note & 0x7f, velocity & 0x7f],
            len: 3,
        }
    }

    /// A note-off (status 0x80, release velocity 0). `channel` is 0-based.
    pub const fn note_off(frame: u32, port: u8, channel: u8, note: u8) -> Self {
        NoteEvent {
            frame,
            port,
            bytes: [0x80 | (channel & 0x0f), note & 0x7f, 0],
            len: 3,
        }
    }

    /// A control change. `channel` is 0-based.
    pub const fn control_change(frame: u32, port: u8, channel: u8, cc: u8, value: u8) -> Self {
        NoteEvent {
            frame,
            port,
            bytes: [0xb0 | (channel & 0x0f), cc & 0x7f, value & 0x7f],
            len: 3,
        }
    }

    /// Builds an event from raw bytes; `None` when `bytes` is empty or longer than 3.
    pub fn from_bytes(frame: u32, port: u8, bytes: &[u8]) -> Option<Self> {
        if bytes.is_empty() || bytes.len() > 3 {
            return None;
        }
        let mut b = [0u8; 3];
        b[..bytes.len()].copy_from_slice(bytes);
        Some(NoteEvent {
            frame,
            port,
            bytes: b,
            len: bytes.len() as u8,
        })
    }

    /// The valid bytes of this event.
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes[..(self.len.min(3) as usize)]
    }

    /// Decodes the message. A note-on with velocity 0 is a note-off.
    pub fn decode(&self) -> Midi {
        if self.len < 3 {
            return Midi::Other;
        }
        let status = self.bytes[0];
        let channel = status & 0x0f;
        let note = self.bytes[1] & 0x7f;
        match status & 0xf0 {
            0x90 if self.bytes[2] & 0x7f != 0 => Midi::NoteOn {
                channel,
                note,
                velocity: self.bytes[2] & 0x7f,
            },
            0x90 | 0x80 => Midi::NoteOff { channel, note },
            _ => Midi::Other,
        }
    }
}

/// Timing of one processing block: the engine's own block context
/// (`sample_position`, `frames`, `sample_rate`, `tempo_bpm`), so the bard
/// reads exactly what the engine hands every imp.
pub use imp::BlockContext;

/// The block's sample rate, or 48 kHz when the engine hands over nonsense
/// (keeps the scheduler finite instead of dividing by zero).
pub(crate) fn rate(ctx: &BlockContext) -> f64 {
    if ctx.sample_rate.is_finite() && ctx.sample_rate >= 1.0 {
        ctx.sample_rate
    } else {
        48_000.0
    }
}

/// The block's tempo, or 120 BPM when the engine hands over nonsense.
pub(crate) fn tempo(ctx: &BlockContext) -> f64 {
    if ctx.tempo_bpm.is_finite() && ctx.tempo_bpm >= 1.0 {
        ctx.tempo_bpm.min(10_000.0)
    } else {
        120.0
    }
}

/// Where the bard writes its output. Implementations must not allocate.
pub trait EventSink {
    /// How many more events fit. The bard checks this before emitting a
    /// note-on so that it never sends a note-on whose ledger entry it could not
    /// keep; note-offs that do not fit are retried at the start of the next block.
    fn remaining(&self) -> usize;
    /// Appends one event; returns `false` (and drops it) when full.
    fn push(&mut self, event: NoteEvent) -> bool;
}

/// A fixed-capacity output buffer living on the stack or inside the engine.
#[derive(Clone, Debug)]
pub struct FixedSink<const N: usize> {
    events: [NoteEvent; N],
    len: usize,
    overflowed: usize,
}

impl<const N: usize> Default for FixedSink<N> {
    fn default() -> Self {
        Self::new()
    }
}

impl<const N: usize> FixedSink<N> {
    /// An empty buffer.
    pub const fn new() -> Self {
        FixedSink {
            events: [NoteEvent {
                frame: 0,
                port: 0,
                bytes: [0; 3],
                len: 0,
            }; N],
            len: 0,
            overflowed: 0,
        }
    }
    /// Events written so far.
    pub fn events(&self) -> &[NoteEvent] {
        &self.events[..self.len]
    }
    /// Number of pushes refused since the last [`clear`](Self::clear).
    pub fn overflowed(&self) -> usize {
        self.overflowed
    }
    /// Empties the buffer (no deallocation, nothing to free).
    pub fn clear(&mut self) {
        self.len = 0;
        self.overflowed = 0;
    }
}

impl<const N: usize> EventSink for FixedSink<N> {
    fn remaining(&self) -> usize {
        N - self.len
    }
    fn push(&mut self, event: NoteEvent) -> bool {
        if self.len < N {
            self.events[self.len] = event;
            self.len += 1;
            true
        } else {
            self.overflowed += 1;
            false
        }
    }
}

/// A sink over a caller-owned slice (for example the engine's output buffer).
#[derive(Debug)]
pub struct SliceSink<'a> {
    buf: &'a mut [NoteEvent],
    len: usize,
}

impl<'a> SliceSink<'a> {
    /// Wraps `buf`; nothing is written yet.
    pub fn new(buf: &'a mut [NoteEvent]) -> Self {
        SliceSink { buf, len: 0 }
    }
    /// Number of events written.
    pub fn len(&self) -> usize {
        self.len
    }
    /// Whether nothing was written.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
    /// The events written.
    pub fn events(&self) -> &[NoteEvent] {
        &self.buf[..self.len]
    }
}

impl EventSink for SliceSink<'_> {
    fn remaining(&self) -> usize {
        self.buf.len() - self.len
    }
    fn push(&mut self, event: NoteEvent) -> bool {
        if self.len < self.buf.len() {
            self.buf[self.len] = event;
            self.len += 1;
            true
        } else {
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zero_velocity_note_on_is_note_off() {
        let e = NoteEvent::from_bytes(0, 0, &[0x93, 60, 0]).unwrap();
        assert_eq!(
            e.decode(),
            Midi::NoteOff {
                channel: 3,
                note: 60
            }
        );
        let e = NoteEvent::note_on(5, 1, 2, 64, 100);
        assert_eq!(e.as_bytes(), &[0x92, 64, 100]);
        assert_eq!(
            e.decode(),
            Midi::NoteOn {
                channel: 2,
                note: 64,
                velocity: 100
            }
        );
        assert_eq!(
            NoteEvent::from_bytes(0, 0, &[0xf8]).unwrap().decode(),
            Midi::Other
        );
        assert!(NoteEvent::from_bytes(0, 0, &[]).is_none());
    }

    #[test]
    fn fixed_sink_reports_overflow() {
        let mut s = FixedSink::<2>::new();
        assert!(s.push(NoteEvent::note_off(0, 0, 0, 1)));
        assert!(s.push(NoteEvent::note_off(0, 0, 0, 2)));
        assert!(!s.push(NoteEvent::note_off(0, 0, 0, 3)));
        assert_eq!(s.events().len(), 2);
        assert_eq!(s.overflowed(), 1);
        assert_eq!(s.remaining(), 0);
    }
}
