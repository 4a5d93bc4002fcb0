//! MIDI 1.0 short messages: a small `Copy` byte form ([`ShortMessage`]) and a
//! typed view of it ([`Message`]).
//!
//! Everything here is pure, never allocates, and may be called from any
//! thread, including the real-time engine thread.

use crate::error::MessageError;

/// Number of data bytes that follow `status`, or `None` when `status` is not
/// the status byte of a short message (data byte, SysEx start/end, or an
/// undefined status byte 0xF4, 0xF5, 0xF9, 0xFD).
///
/// Any thread; never allocates.
#[must_use]
pub const fn data_len(status: u8) -> Option<usize> {
    match status {
        0x80..=0xBF | 0xE0..=0xEF => Some(2),
        0xC0..=0xDF => Some(1),
        0xF1 | 0xF3 => Some(1),
        0xF2 => Some(2),
        0xF6 | 0xF8 | 0xFA | 0xFB | 0xFC | 0xFE | 0xFF => Some(0),
        _ => None,
    }
}

/// A complete MIDI 1.0 message other than SysEx: a status byte and 0 to 2
/// data bytes, stored inline. `Copy`, 4 bytes, no heap.
///
/// A `ShortMessage` is always well formed: its status byte is a defined one
/// and its data bytes are below 0x80 (the constructors check or mask this).
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct ShortMessage {
    bytes: [u8; 3],
    len: u8,
}

impl core::fmt::Debug for ShortMessage {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(
            f,
            "ShortMessage({:02X?} = {:?})",
            self.as_bytes(),
            self.message()
        )
    }
}

impl ShortMessage {
    /// Checks `bytes` (status byte first, exactly the right number of data
    /// bytes) and builds the message.
    ///
    /// Any thread; never allocates.
    ///
    /// # Errors
    /// [`MessageError`] when the slice is empty, starts with a data byte or an
    /// undefined/SysEx status byte, has the wrong length for its status, or
    /// holds a data byte ≥ 0x80.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, MessageError> {
        let (&status, data) = bytes.split_first().ok_or(MessageError::Empty)?;
        let need = data_len(status).ok_or(MessageError::InvalidStatus(status))?;
        if data.len() != need {
            return Err(MessageError::WrongLength {
                status,
                expected: need + 1,
                got: bytes.len(),
            });
        }
        if let Some(&b) = data.iter().find(|&&b| b >= 0x80) {
            return Err(MessageError::DataByteOutOfRange(b));
        }
        let mut out = [0u8; 3];
        out[..bytes.len()].copy_from_slice(bytes);
        Ok(Self {
            bytes: out,
            len: bytes.len() as u8,
        })
    }

    /// Builds a message from parts the caller knows are valid (used by the
    /// parser, which has already checked them).
    pub(crate) const fn from_parts(bytes: [u8; 3], len: u8) -> Self {
        Self { bytes, len }
    }

    const fn channel_msg(kind: u8, channel: u8, d1: u8, d2: u8, len: u8) -> Self {
        let d2 = if len == 3 { d2 & 0x7F } else { 0 };
        Self {
            bytes: [kind | (channel & 0x0F), d1 & 0x7F, d2],
            len,
        }
    }

    /// Note-on (0x9n). `channel` is 0–15, `key` and `velocity` 0–127; values
    /// out of range are masked. Any thread; never allocates.
    #[must_use]
    pub const fn note_on(channel: u8, key: u8, velocity: u8) -> Self {
        Self::channel_msg(0x90, channel, key, velocity, 3)
    }

    /// Note-off (0x8n). Values are masked as in [`ShortMessage::note_on`].
    /// Any thread; never allocates.
    #[must_use]
    pub const fn note_off(channel: u8, key: u8, velocity: u8) -> Self {
        Self::channel_msg(0x80, channel, key, velocity, 3)
    }

    /// Control change (0xBn). Any thread; never allocates.
    #[must_use]
    pub const fn control_change(channel: u8, controller: u8, value: u8) -> Self {
        Self::channel_msg(0xB0, channel, controller, value, 3)
    }

    /// Program change (0xCn). Any thread; never allocates.
    #[must_use]
    pub const fn program_change(channel: u8, program: u8) -> Self {
        Self::channel_msg(0xC0, channel, program, 0, 2)
    }

    /// Pitch bend (0xEn); `value` is 0–16383 with 8192 the centre (masked to
    /// 14 bits). Any thread; never allocates.
    #[must_use]
    pub const fn pitch_bend(channel: u8, value: u16) -> Self {
        Self::channel_msg(0xE0, channel, (value & 0x7F) as u8, (value >> 7) as u8, 3)
    }

    /// The wire bytes (1 to 3). Any thread; never allocates.
    #[must_use]
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes[..self.len as usize]
    }

    /// The three byte slots (unused ones are 0) and the length, for fixed-size
    /// event structs such as the imp ABI's. Any thread; never allocates.
    #[must_use]
    pub const fn raw(&self) -> ([u8; 3], u8) {
        (self.bytes, self.len)
    }

    /// Number of wire bytes (1 to 3). Any thread; never allocates.
    #[must_use]
    #[allow(clippy::len_without_is_empty)] // never empty
    pub const fn len(&self) -> usize {
        self.len as usize
    }

    /// The status byte. Any thread; never allocates.
    #[must_use]
    pub const fn status(&self) -> u8 {
        self.bytes[0]
    }

    /// Channel 0–15 for channel voice messages, `None` otherwise.
    /// Any thread; never allocates.
    #[must_use]
    pub const fn channel(&self) -> Option<u8> {
        if self.is_channel_voice() {
            Some(self.bytes[0] & 0x0F)
        } else {
            None
        }
    }

    /// True for channel voice messages (0x80–0xEF). Any thread; never allocates.
    #[must_use]
    pub const fn is_channel_voice(&self) -> bool {
        self.bytes[0] < 0xF0
    }

    /// True for system common messages (0xF1, 0xF2, 0xF3, 0xF6).
    /// Any thread; never allocates.
    #[must_use]
    pub const fn is_system_common(&self) -> bool {
        self.bytes[0] >= 0xF0 && self.bytes[0] < 0xF8
    }

    /// True for system real-time messages (0xF8–0xFF).
    /// Any thread; never allocates.
    #[must_use]
    pub const fn is_realtime(&self) -> bool {
        self.bytes[0] >= 0xF8
    }

    /// True for a note-on with velocity > 0. Any thread; never allocates.
    #[must_use]
    pub const fn is_note_on(&self) -> bool {
        self.bytes[0] & 0xF0 == 0x90 && self.bytes[2] > 0
    }

    /// True for a note-off, including a note-on with velocity 0 (which the
    /// bytes keep as 0x9n kk 00). Any thread; never allocates.
    #[must_use]
    pub const fn is_note_off(&self) -> bool {
        let kind = self.bytes[0] & 0xF0;
        kind == 0x80 || (kind == 0x90 && self.bytes[2] == 0)
    }

    /// The typed view of this message. Any thread; never allocates.
    #[must_use]
    pub const fn message(&self) -> Message {
        let [s, d1, d2] = self.bytes;
        let channel = s & 0x0F;
        match s {
            0x80..=0x8F => Message::NoteOff {
                channel,
                key: d1,
                velocity: d2,
            },
            0x90..=0x9F => Message::NoteOn {
                channel,
                key: d1,
                velocity: d2,
            },
            0xA0..=0xAF => Message::PolyPressure {
                channel,
                key: d1,
                pressure: d2,
            },
            0xB0..=0xBF => Message::ControlChange {
                channel,
                controller: d1,
                value: d2,
            },
            0xC0..=0xCF => Message::ProgramChange {
                channel,
                program: d1,
            },
            0xD0..=0xDF => Message::ChannelPressure {
                channel,
                pressure: d1,
            },
            0xE0..=0xEF => Message::PitchBend {
                channel,
                value: (d1 as u16) | ((d2 as u16) << 7),
            },
            0xF1 => Message::MtcQuarterFrame(d1),
            0xF2 => Message::SongPosition((d1 as u16) | ((d2 as u16) << 7)),
            0xF3 => Message::SongSelect(d1),
            0xF6 => Message::TuneRequest,
            0xF8 => Message::Clock,
            0xFA => Message::Start,
            0xFB => Message::Continue,
            0xFC => Message::Stop,
            0xFE => Message::ActiveSensing,
            // 0xFF; a ShortMessage never holds another status byte.
            _ => Message::Reset,
        }
    }
}

/// The typed view of a [`ShortMessage`]. Channels are 0–15; data values are
/// 0–127 (7 bit) or 0–16383 (14 bit). Convert back with
/// [`Message::to_short`] (values out of range are masked).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Message {
    /// 0x8n: note-off.
    NoteOff {
        /// Channel 0–15.
        channel: u8,
        /// Key 0–127.
        key: u8,
        /// Release velocity 0–127.
        velocity: u8,
    },
    /// 0x9n: note-on. Velocity 0 means note-off (see
    /// [`ShortMessage::is_note_off`]).
    NoteOn {
        /// Channel 0–15.
        channel: u8,
        /// Key 0–127.
        key: u8,
        /// Velocity 0–127.
        velocity: u8,
    },
    /// 0xAn: polyphonic key pressure.
    PolyPressure {
        /// Channel 0–15.
        channel: u8,
        /// Key 0–127.
        key: u8,
        /// Pressure 0–127.
        pressure: u8,
    },
    /// 0xBn: control change (including channel mode messages, controllers 120–127).
    ControlChange {
        /// Channel 0–15.
        channel: u8,
        /// Controller number 0–127.
        controller: u8,
        /// Value 0–127.
        value: u8,
    },
    /// 0xCn: program change.
    ProgramChange {
        /// Channel 0–15.
        channel: u8,
        /// Program 0–127.
        program: u8,
    },
    /// 0xDn: channel pressure (aftertouch).
    ChannelPressure {
        /// Channel 0–15.
        channel: u8,
        /// Pressure 0–127.
        pressure: u8,
    },
    /// 0xEn: pitch bend, 0–16383, centre 8192.
    PitchBend {
        /// Channel 0–15.
        channel: u8,
        /// 14-bit value, 8192 = no bend.
        value: u16,
    },
    /// 0xF1: MIDI time code quarter frame (the data byte: piece type and value).
    MtcQuarterFrame(u8),
    /// 0xF2: song position pointer in MIDI beats (sixteenth notes), 0–16383.
    SongPosition(u16),
    /// 0xF3: song select, 0–127.
    SongSelect(u8),
    /// 0xF6: tune request.
    TuneRequest,
    /// 0xF8: timing clock (24 per quarter note).
    Clock,
    /// 0xFA: start.
    Start,
    /// 0xFB: continue.
    Continue,
    /// 0xFC: stop.
    Stop,
    /// 0xFE: active sensing.
    ActiveSensing,
    /// 0xFF: system reset.
    Reset,
}

impl Message {
    /// The byte form of this message; channels and data values out of range
    /// are masked. Any thread; never allocates.
    #[must_use]
    pub const fn to_short(self) -> ShortMessage {
        use Message::*;
        const fn sys(s: u8, d1: u8, d2: u8, len: u8) -> ShortMessage {
            let d1 = if len > 1 { d1 & 0x7F } else { 0 };
            let d2 = if len > 2 { d2 & 0x7F } else { 0 };
            ShortMessage {
                bytes: [s, d1, d2],
                len,
            }
        }
        match self {
            NoteOff {
                channel,
                key,
                velocity,
            } => ShortMessage::channel_msg(0x80, channel, key, velocity, 3),
            NoteOn {
                channel,
                key,
                velocity,
            } => ShortMessage::channel_msg(0x90, channel, key, velocity, 3),
            PolyPressure {
                channel,
                key,
                pressure,
            } => ShortMessage::channel_msg(0xA0, channel, key, pressure, 3),
            ControlChange {
                channel,
                controller,
                value,
            } => ShortMessage::channel_msg(0xB0, channel, controller, value, 3),
            ProgramChange { channel, program } => {
                ShortMessage::channel_msg(0xC0, channel, program, 0, 2)
            }
            ChannelPressure { channel, pressure } => {
                ShortMessage::channel_msg(0xD0, channel, pressure, 0, 2)
            }
            PitchBend { channel, value } => ShortMessage::pitch_bend(channel, value),
            MtcQuarterFrame(v) => sys(0xF1, v, 0, 2),
            SongPosition(v) => sys(0xF2, (v & 0x7F) as u8, (v >> 7) as u8, 3),
            SongSelect(v) => sys(0xF3, v, 0, 2),
            TuneRequest => sys(0xF6, 0, 0, 1),
            Clock => sys(0xF8, 0, 0, 1),
            Start => sys(0xFA, 0, 0, 1),
            Continue => sys(0xFB, 0, 0, 1),
            Stop => sys(0xFC, 0, 0, 1),
            ActiveSensing => sys(0xFE, 0, 0, 1),
            Reset => sys(0xFF, 0, 0, 1),
        }
    }
}

impl From<Message> for ShortMessage {
    fn from(m: Message) -> Self {
        m.to_short()
    }
}

impl From<ShortMessage> for Message {
    fn from(m: ShortMessage) -> Self {
        m.message()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn from_bytes_checks_length_status_and_data() {
        assert_eq!(ShortMessage::from_bytes(&[]), Err(MessageError::Empty));
        assert_eq!(
            ShortMessage::from_bytes(&[0x40, 1]),
            Err(MessageError::InvalidStatus(0x40))
        );
        assert_eq!(
            ShortMessage::from_bytes(&[0xF0, 1]),
            Err(MessageError::InvalidStatus(0xF0))
        );
        assert_eq!(
            ShortMessage::from_bytes(&[0xF4]),
            Err(MessageError::InvalidStatus(0xF4))
        );
        assert_eq!(
            ShortMessage::from_bytes(&[0x90, 60]),
            Err(MessageError::WrongLength {
                status: 0x90,
                expected: 3,
                got: 2
            })
        );
        assert_eq!(
            ShortMessage::from_bytes(&[0x90, 60, 0x80]),
            Err(MessageError::DataByteOutOfRange(0x80))
        );
        let m = ShortMessage::from_bytes(&[0x93, 60, 100]).unwrap();
        assert_eq!(m.as_bytes(), &[0x93, 60, 100]);
        assert_eq!(m.channel(), Some(3));
        assert_eq!(
            m.message(),
            Message::NoteOn {
                channel: 3,
                key: 60,
                velocity: 100
            }
        );
    }

    #[test]
    fn note_on_velocity_zero_is_note_off_but_keeps_bytes() {
        let m = ShortMessage::from_bytes(&[0x90, 60, 0]).unwrap();
        assert!(m.is_note_off());
        assert!(!m.is_note_on());
        assert_eq!(m.as_bytes(), &[0x90, 60, 0]);
        assert!(matches!(m.message(), Message::NoteOn { velocity: 0, .. }));
        assert!(ShortMessage::note_off(0, 60, 64).is_note_off());
        assert!(ShortMessage::note_on(0, 60, 1).is_note_on());
        assert!(!ShortMessage::control_change(0, 60, 0).is_note_off());
    }

    #[test]
    fn every_defined_status_round_trips_through_the_typed_view() {
        for status in 0x80u8..=0xFF {
            let Some(n) = data_len(status) else { continue };
            let bytes = [status, 0x12, 0x34];
            let m = ShortMessage::from_bytes(&bytes[..=n]).unwrap();
            assert_eq!(m.message().to_short(), m, "status {status:02X}");
            assert_eq!(ShortMessage::from(Message::from(m)), m);
            assert_eq!(
                m.is_channel_voice() as u8 + m.is_system_common() as u8 + m.is_realtime() as u8,
                1
            );
        }
    }

    #[test]
    fn fourteen_bit_values() {
        let m = ShortMessage::pitch_bend(2, 8192);
        assert_eq!(m.as_bytes(), &[0xE2, 0x00, 0x40]);
        assert_eq!(
            m.message(),
            Message::PitchBend {
                channel: 2,
                value: 8192
            }
        );
        let sp = Message::SongPosition(16383).to_short();
        assert_eq!(sp.as_bytes(), &[0xF2, 0x7F, 0x7F]);
        assert_eq!(sp.message(), Message::SongPosition(16383));
    }

    #[test]
    fn constructors_mask_out_of_range_values() {
        let m = ShortMessage::note_on(17, 200, 255);
        assert_eq!(m.as_bytes(), &[0x91, 200 & 0x7F, 0x7F]);
        assert_eq!(ShortMessage::program_change(0, 5).as_bytes(), &[0xC0, 5]);
        assert_eq!(Message::Clock.to_short().as_bytes(), &[0xF8]);
        assert_eq!(
            Message::ChannelPressure {
                channel: 1,
                pressure: 0xFF
            }
            .to_short()
            .as_bytes(),
            &[0xD1, 0x7F]
        );
    }

    #[test]
    fn raw_slots_are_zero_padded() {
        assert_eq!(ShortMessage::program_change(1, 9).raw(), ([0xC1, 9, 0], 2));
        assert_eq!(Message::Stop.to_short().raw(), ([0xFC, 0, 0], 1));
    }
}
