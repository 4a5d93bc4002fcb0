//! A MIDI 1.0 byte-stream parser.
//!
//! Three layers:
//!
//! - [`Parser`]: fixed size (a few bytes of state), never allocates, safe on
//!   the real-time engine thread. It emits complete [`ShortMessage`]s and
//!   reports SysEx as [`SysexChunk`]s that borrow the input slice.
//! - [`SysexAssembler`]: collects chunks into whole SysEx messages. It owns a
//!   `Vec`, so use it on ordinary threads (or preallocate with
//!   [`SysexAssembler::with_capacity`] and stay below that capacity).
//! - [`Decoder`]: both together, for ordinary threads (the ALSA input
//!   callback uses it).
//!
//! The rules are listed in the crate docs ("Parser rules").

use crate::message::{data_len, ShortMessage};

/// A piece of a SysEx message, borrowed from the bytes given to
/// [`Parser::feed`].
///
/// The chunks of one SysEx, concatenated, are its wire bytes: the first chunk
/// (`start == true`) begins with 0xF0; when the SysEx ends normally the last
/// chunk (`end == true`, `aborted == false`) ends with 0xF7. Real-time bytes
/// inside the SysEx are never part of a chunk (they split it and are emitted
/// as messages in between).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SysexChunk<'a> {
    /// The bytes (may be empty only in an aborting chunk).
    pub bytes: &'a [u8],
    /// This chunk begins the SysEx (its first byte is 0xF0).
    pub start: bool,
    /// This chunk ends the SysEx (normally, or aborted).
    pub end: bool,
    /// The SysEx was cut off by a status byte before its 0xF7: the message is
    /// incomplete and should be discarded. Implies `end`.
    pub aborted: bool,
}

/// What [`Parser::feed`] emits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Event<'a> {
    /// A complete short message (channel voice, system common or real-time).
    Message(ShortMessage),
    /// A piece of a SysEx message.
    Sysex(SysexChunk<'a>),
}

/// Counters of what the parser skipped. All counts only grow (until
/// [`Parser::reset_stats`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ParserStats {
    /// Bytes skipped: data bytes with no status to attach to, undefined status
    /// bytes (0xF4, 0xF5, 0xF9, 0xFD) and 0xF7 outside a SysEx.
    pub stray_bytes: u64,
    /// Short messages cut off by a status byte before all their data bytes
    /// arrived (their bytes are dropped).
    pub incomplete_messages: u64,
    /// SysEx messages cut off by a status byte before their 0xF7.
    pub aborted_sysex: u64,
}

/// The fixed-size MIDI 1.0 stream parser.
///
/// `Parser` holds 8 bytes of state and three `u64` counters, is cheap to
/// create and never allocates: create it anywhere, feed it from one thread
/// at a time, including the real-time engine thread.
#[derive(Debug, Clone, Default)]
pub struct Parser {
    /// Bytes of the short message in progress; `buf[0]` is its status.
    buf: [u8; 3],
    /// Bytes of `buf` filled; 0 = no status (no running status either).
    have: u8,
    /// Total length of the message in progress (status included).
    need: u8,
    /// `buf[0]` arrived as a byte since the last complete message (it is not
    /// merely the running status kept from the previous message).
    fresh_status: bool,
    /// Inside a SysEx.
    in_sysex: bool,
    /// The next SysEx chunk is the first of its message.
    sysex_first: bool,
    stats: ParserStats,
}

impl Parser {
    /// A parser with no running status. Any thread; never allocates.
    #[must_use]
    pub const fn new() -> Self {
        Self {
            buf: [0; 3],
            have: 0,
            need: 0,
            fresh_status: false,
            in_sysex: false,
            sysex_first: false,
            stats: ParserStats {
                stray_bytes: 0,
                incomplete_messages: 0,
                aborted_sysex: 0,
            },
        }
    }

    /// Forgets the message in progress, the running status and an open SysEx
    /// (without reporting it; a [`Decoder`] reports the unfinished SysEx as
    /// aborted when the next one starts). Counters are kept.
    /// Any thread; never allocates.
    pub fn reset(&mut self) {
        let stats = self.stats;
        *self = Self::new();
        self.stats = stats;
    }

    /// What was skipped so far. Any thread; never allocates.
    #[must_use]
    pub const fn stats(&self) -> ParserStats {
        self.stats
    }

    /// Sets the counters back to 0. Any thread; never allocates.
    pub fn reset_stats(&mut self) {
        self.stats = ParserStats::default();
    }

    /// True while a SysEx is open (its 0xF0 was seen, its end not yet).
    /// Any thread; never allocates.
    #[must_use]
    pub const fn in_sysex(&self) -> bool {
        self.in_sysex
    }

    /// Parses `input` (any chunk of the stream; messages may span calls) and
    /// calls `sink` for each complete message and each SysEx chunk, in stream
    /// order. An open SysEx's bytes received so far are reported before
    /// `feed` returns (with `end == false`).
    ///
    /// Any thread, including the real-time engine thread: never allocates,
    /// never blocks (as long as `sink` does neither).
    pub fn feed<'a, F: FnMut(Event<'a>)>(&mut self, input: &'a [u8], mut sink: F) {
        // Index of the first byte of the open SysEx not reported yet.
        let mut chunk_from = 0usize;
        for (i, &b) in input.iter().enumerate() {
            if b >= 0xF8 {
                // Real-time: never disturbs anything. Inside a SysEx it splits the chunk.
                if self.in_sysex {
                    self.emit_chunk(&input[chunk_from..i], false, false, &mut sink);
                    chunk_from = i + 1;
                }
                if b == 0xF9 || b == 0xFD {
                    self.stats.stray_bytes += 1;
                } else {
                    sink(Event::Message(ShortMessage::from_parts([b, 0, 0], 1)));
                }
                continue;
            }
            if self.in_sysex {
                if b < 0x80 {
                    continue;
                }
                if b == 0xF7 {
                    self.in_sysex = false;
                    self.emit_chunk(&input[chunk_from..=i], true, false, &mut sink);
                    continue;
                }
                // Any other status byte aborts the SysEx and is then processed.
                self.in_sysex = false;
                self.stats.aborted_sysex += 1;
                self.emit_chunk(&input[chunk_from..i], true, true, &mut sink);
            }
            if b < 0x80 {
                self.data_byte(b, &mut sink);
                continue;
            }
            // A status byte other than real-time: drops a partial message and
            // clears running status.
            self.drop_partial();
            match b {
                0xF0 => {
                    self.in_sysex = true;
                    self.sysex_first = true;
                    chunk_from = i;
                }
                0xF6 => sink(Event::Message(ShortMessage::from_parts([b, 0, 0], 1))),
                _ => match data_len(b) {
                    Some(n) => {
                        self.buf = [b, 0, 0];
                        self.have = 1;
                        self.need = n as u8 + 1;
                        self.fresh_status = true;
                    }
                    // 0xF4, 0xF5, stray 0xF7.
                    None => self.stats.stray_bytes += 1,
                },
            }
        }
        if self.in_sysex && chunk_from < input.len() {
            self.emit_chunk(&input[chunk_from..], false, false, &mut sink);
        }
    }

    fn emit_chunk<'a, F: FnMut(Event<'a>)>(
        &mut self,
        bytes: &'a [u8],
        end: bool,
        aborted: bool,
        sink: &mut F,
    ) {
        if bytes.is_empty() && !end {
            return;
        }
        let start = self.sysex_first;
        self.sysex_first = false;
        sink(Event::Sysex(SysexChunk {
            bytes,
            start,
            end,
            aborted,
        }));
    }

    fn drop_partial(&mut self) {
        if self.have > 1 || (self.have == 1 && self.fresh_status) {
            self.stats.incomplete_messages += 1;
        }
        self.have = 0;
        self.fresh_status = false;
    }

    fn data_byte<'a, F: FnMut(Event<'a>)>(&mut self, b: u8, sink: &mut F) {
        if self.have == 0 {
            self.stats.stray_bytes += 1;
            return;
        }
        self.buf[self.have as usize] = b;
        self.have += 1;
        if self.have == self.need {
            let msg = ShortMessage::from_parts(self.buf, self.need);
            self.buf[1] = 0;
            self.buf[2] = 0;
            // Channel voice keeps running status; system common does not.
            self.have = u8::from(self.buf[0] < 0xF0);
            self.fresh_status = false;
            sink(Event::Message(msg));
        }
    }
}

/// What [`SysexAssembler::push`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SysexStatus<'a> {
    /// The SysEx continues (or the chunk was ignored, see [`SysexAssembler::push`]).
    Pending,
    /// A whole SysEx: its wire bytes, 0xF0 … 0xF7. Valid until the next push.
    Complete(&'a [u8]),
    /// The SysEx was cut off by a status byte, or a new SysEx started before
    /// this one ended; its bytes are discarded.
    Aborted,
    /// The SysEx ended but was longer than the assembler's maximum; its bytes
    /// are discarded. `len` is its full length.
    TooLong {
        /// Length of the whole SysEx in bytes.
        len: usize,
    },
}

/// Collects [`SysexChunk`]s into whole SysEx messages.
///
/// Allocates (its buffer grows up to `max_len`): use it on ordinary threads,
/// e.g. the MIDI input thread, not on the engine thread.
#[derive(Debug, Clone)]
pub struct SysexAssembler {
    buf: Vec<u8>,
    active: bool,
    len: usize,
    max_len: usize,
}

impl Default for SysexAssembler {
    fn default() -> Self {
        Self::new()
    }
}

impl SysexAssembler {
    /// Default maximum SysEx length kept: 1 MiB.
    pub const DEFAULT_MAX_LEN: usize = 1 << 20;

    /// An assembler with the default maximum length. Ordinary threads;
    /// does not allocate until the first chunk.
    #[must_use]
    pub const fn new() -> Self {
        Self::with_max_len(Self::DEFAULT_MAX_LEN)
    }

    /// An assembler that reports SysEx longer than `max_len` bytes as
    /// [`SysexStatus::TooLong`] instead of keeping them. Ordinary threads;
    /// does not allocate.
    #[must_use]
    pub const fn with_max_len(max_len: usize) -> Self {
        Self {
            buf: Vec::new(),
            active: false,
            len: 0,
            max_len,
        }
    }

    /// Like [`SysexAssembler::with_max_len`] with the buffer preallocated to
    /// `max_len`: afterwards `push` never allocates. Ordinary threads (it
    /// allocates here).
    #[must_use]
    pub fn with_capacity(max_len: usize) -> Self {
        Self {
            buf: Vec::with_capacity(max_len),
            ..Self::with_max_len(max_len)
        }
    }

    /// True while a SysEx has started and not ended. Any thread; never allocates.
    #[must_use]
    pub const fn is_open(&self) -> bool {
        self.active
    }

    /// Adds a chunk. A start chunk while a SysEx is still open (only after
    /// [`Parser::reset`]) silently discards the open one; check
    /// [`SysexAssembler::is_open`] first to report it. A chunk that does not
    /// start a SysEx while none is open (the assembler joined the stream
    /// mid-SysEx) is ignored: [`SysexStatus::Pending`], or
    /// [`SysexStatus::Aborted`] when it is the last one. Ordinary threads: may
    /// allocate (unless built with [`SysexAssembler::with_capacity`] or
    /// `max_len` is small).
    pub fn push(&mut self, chunk: SysexChunk<'_>) -> SysexStatus<'_> {
        if chunk.start {
            self.active = true;
            self.buf.clear();
            self.len = 0;
        } else if !self.active {
            return if chunk.end {
                SysexStatus::Aborted
            } else {
                SysexStatus::Pending
            };
        }
        self.len += chunk.bytes.len();
        if self.len <= self.max_len {
            self.buf.extend_from_slice(chunk.bytes);
        }
        if !chunk.end {
            return SysexStatus::Pending;
        }
        self.active = false;
        if chunk.aborted {
            SysexStatus::Aborted
        } else if self.len > self.max_len {
            SysexStatus::TooLong { len: self.len }
        } else {
            SysexStatus::Complete(&self.buf)
        }
    }
}

/// What [`Decoder::feed`] emits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decoded<'a> {
    /// A complete short message.
    Message(ShortMessage),
    /// A whole SysEx message (0xF0 … 0xF7), valid during the callback.
    Sysex(&'a [u8]),
    /// A SysEx was cut off (see [`SysexStatus::Aborted`]).
    SysexAborted,
    /// A SysEx longer than the maximum was dropped.
    SysexTooLong {
        /// Its length in bytes.
        len: usize,
    },
}

/// [`Parser`] + [`SysexAssembler`]: bytes in, whole messages out.
///
/// Ordinary threads (SysEx assembly allocates).
#[derive(Debug, Clone, Default)]
pub struct Decoder {
    parser: Parser,
    sysex: SysexAssembler,
}

impl Decoder {
    /// A decoder keeping SysEx up to [`SysexAssembler::DEFAULT_MAX_LEN`].
    /// Ordinary threads; does not allocate.
    #[must_use]
    pub const fn new() -> Self {
        Self {
            parser: Parser::new(),
            sysex: SysexAssembler::new(),
        }
    }

    /// A decoder keeping SysEx up to `max_len` bytes. Ordinary threads;
    /// does not allocate.
    #[must_use]
    pub const fn with_max_sysex_len(max_len: usize) -> Self {
        Self {
            parser: Parser::new(),
            sysex: SysexAssembler::with_max_len(max_len),
        }
    }

    /// The parser's counters. Any thread; never allocates.
    #[must_use]
    pub const fn stats(&self) -> ParserStats {
        self.parser.stats()
    }

    /// Parses `input` and calls `sink` for each complete message, in stream
    /// order. Ordinary threads: may allocate for SysEx.
    pub fn feed<F: FnMut(Decoded<'_>)>(&mut self, input: &[u8], mut sink: F) {
        let sysex = &mut self.sysex;
        self.parser.feed(input, |ev| match ev {
            Event::Message(m) => sink(Decoded::Message(m)),
            Event::Sysex(chunk) => {
                if chunk.start && sysex.is_open() {
                    sink(Decoded::SysexAborted);
                }
                match sysex.push(chunk) {
                    SysexStatus::Pending => {}
                    SysexStatus::Complete(b) => sink(Decoded::Sysex(b)),
                    SysexStatus::Aborted => sink(Decoded::SysexAborted),
                    SysexStatus::TooLong { len } => sink(Decoded::SysexTooLong { len }),
                }
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::message::Message;

    /// Owned form of the parser's output, for comparisons.
    #[derive(Debug, Clone, PartialEq, Eq)]
    enum Out {
        M(Vec<u8>),
        Chunk(Vec<u8>, bool, bool, bool),
    }

    fn parse(p: &mut Parser, input: &[u8]) -> Vec<Out> {
        let mut out = Vec::new();
        p.feed(input, |ev| match ev {
            Event::Message(m) => out.push(Out::M(m.as_bytes().to_vec())),
            Event::Sysex(c) => out.push(Out::Chunk(c.bytes.to_vec(), c.start, c.end, c.aborted)),
        });
        out
    }

    fn msgs(input: &[u8]) -> (Vec<Out>, ParserStats) {
        let mut p = Parser::new();
        let out = parse(&mut p, input);
        (out, p.stats())
    }

    fn m(b: &[u8]) -> Out {
        Out::M(b.to_vec())
    }

    #[test]
    fn channel_messages_of_both_lengths() {
        let (out, stats) = msgs(&[0x90, 60, 100, 0xC3, 7, 0xE0, 0, 0x40]);
        assert_eq!(
            out,
            vec![m(&[0x90, 60, 100]), m(&[0xC3, 7]), m(&[0xE0, 0, 0x40])]
        );
        assert_eq!(stats, ParserStats::default());
    }

    #[test]
    fn running_status_repeats_the_last_channel_status() {
        let (out, _) = msgs(&[0x90, 60, 100, 62, 0, 0xC0, 1, 2, 3]);
        assert_eq!(
            out,
            vec![
                m(&[0x90, 60, 100]),
                m(&[0x90, 62, 0]),
                m(&[0xC0, 1]),
                m(&[0xC0, 2]),
                m(&[0xC0, 3])
            ]
        );
    }

    #[test]
    fn running_status_survives_realtime_bytes() {
        let (out, _) = msgs(&[0xB0, 7, 100, 0xF8, 7, 0xFA, 90]);
        assert_eq!(
            out,
            vec![
                m(&[0xB0, 7, 100]),
                m(&[0xF8]),
                m(&[0xFA]),
                m(&[0xB0, 7, 90])
            ]
        );
    }

    #[test]
    fn system_common_clears_running_status() {
        let (out, stats) = msgs(&[0x90, 60, 100, 0xF3, 5, 62, 100]);
        assert_eq!(out, vec![m(&[0x90, 60, 100]), m(&[0xF3, 5])]);
        assert_eq!(stats.stray_bytes, 2);
        let (out, stats) = msgs(&[0x90, 60, 100, 0xF6, 62, 100]);
        assert_eq!(out, vec![m(&[0x90, 60, 100]), m(&[0xF6])]);
        assert_eq!(stats.stray_bytes, 2);
    }

    #[test]
    fn sysex_clears_running_status() {
        let (out, stats) = msgs(&[0x90, 60, 100, 0xF0, 1, 0xF7, 62, 100]);
        assert_eq!(
            out,
            vec![
                m(&[0x90, 60, 100]),
                Out::Chunk(vec![0xF0, 1, 0xF7], true, true, false)
            ]
        );
        assert_eq!(stats.stray_bytes, 2);
    }

    #[test]
    fn system_common_messages() {
        let (out, stats) = msgs(&[0xF1, 0x23, 0xF2, 0x01, 0x02, 0xF3, 9, 0xF6]);
        assert_eq!(
            out,
            vec![
                m(&[0xF1, 0x23]),
                m(&[0xF2, 1, 2]),
                m(&[0xF3, 9]),
                m(&[0xF6])
            ]
        );
        assert_eq!(stats, ParserStats::default());
    }

    #[test]
    fn realtime_inside_a_message_is_emitted_at_once() {
        let (out, stats) = msgs(&[0x90, 0xF8, 60, 0xFE, 100, 0xFF]);
        assert_eq!(
            out,
            vec![m(&[0xF8]), m(&[0xFE]), m(&[0x90, 60, 100]), m(&[0xFF])]
        );
        assert_eq!(stats, ParserStats::default());
        let (out, _) = msgs(&[0xF2, 1, 0xFC, 2]);
        assert_eq!(out, vec![m(&[0xFC]), m(&[0xF2, 1, 2])]);
    }

    #[test]
    fn every_defined_realtime_byte_is_a_message() {
        for b in [0xF8u8, 0xFA, 0xFB, 0xFC, 0xFE, 0xFF] {
            assert_eq!(msgs(&[b]).0, vec![m(&[b])]);
        }
        let kinds: Vec<Message> = [0xF8u8, 0xFA, 0xFB, 0xFC, 0xFE, 0xFF]
            .iter()
            .map(|&b| ShortMessage::from_bytes(&[b]).unwrap().message())
            .collect();
        assert_eq!(
            kinds,
            vec![
                Message::Clock,
                Message::Start,
                Message::Continue,
                Message::Stop,
                Message::ActiveSensing,
                Message::Reset
            ]
        );
    }

    #[test]
    fn undefined_realtime_bytes_are_skipped_without_disturbing() {
        let (out, stats) = msgs(&[0x90, 60, 0xF9, 100, 0xFD, 61, 0xF9, 0]);
        assert_eq!(out, vec![m(&[0x90, 60, 100]), m(&[0x90, 61, 0])]);
        assert_eq!(stats.stray_bytes, 3);
        let (out, stats) = msgs(&[0xF0, 1, 0xFD, 2, 0xF7]);
        assert_eq!(
            out,
            vec![
                Out::Chunk(vec![0xF0, 1], true, false, false),
                Out::Chunk(vec![2, 0xF7], false, true, false)
            ]
        );
        assert_eq!(stats.stray_bytes, 1);
    }

    #[test]
    fn realtime_inside_sysex_splits_the_chunk() {
        let (out, _) = msgs(&[0xF0, 0x7E, 0xF8, 0x01, 0xF8, 0xF8, 0xF7]);
        assert_eq!(
            out,
            vec![
                Out::Chunk(vec![0xF0, 0x7E], true, false, false),
                m(&[0xF8]),
                Out::Chunk(vec![0x01], false, false, false),
                m(&[0xF8]),
                m(&[0xF8]),
                Out::Chunk(vec![0xF7], false, true, false),
            ]
        );
    }

    #[test]
    fn sysex_spanning_several_feeds() {
        let mut p = Parser::new();
        let mut out = parse(&mut p, &[0x80, 1, 2, 0xF0, 1]);
        assert!(p.in_sysex());
        out.extend(parse(&mut p, &[2, 3]));
        out.extend(parse(&mut p, &[]));
        out.extend(parse(&mut p, &[4, 0xF7, 0x90]));
        assert!(!p.in_sysex());
        assert_eq!(
            out,
            vec![
                m(&[0x80, 1, 2]),
                Out::Chunk(vec![0xF0, 1], true, false, false),
                Out::Chunk(vec![2, 3], false, false, false),
                Out::Chunk(vec![4, 0xF7], false, true, false),
            ]
        );
    }

    #[test]
    fn status_byte_aborts_sysex_and_is_processed() {
        let (out, stats) = msgs(&[0xF0, 1, 2, 0x90, 60, 100]);
        assert_eq!(
            out,
            vec![
                Out::Chunk(vec![0xF0, 1, 2], true, true, true),
                m(&[0x90, 60, 100]),
            ]
        );
        assert_eq!(stats.aborted_sysex, 1);
        // Across feeds the aborting chunk is empty.
        let mut p = Parser::new();
        let mut out = parse(&mut p, &[0xF0, 1]);
        out.extend(parse(&mut p, &[0xC0, 5]));
        assert_eq!(
            out,
            vec![
                Out::Chunk(vec![0xF0, 1], true, false, false),
                Out::Chunk(vec![], false, true, true),
                m(&[0xC0, 5]),
            ]
        );
        // A new SysEx aborts the open one.
        let (out, stats) = msgs(&[0xF0, 1, 0xF0, 2, 0xF7]);
        assert_eq!(
            out,
            vec![
                Out::Chunk(vec![0xF0, 1], true, true, true),
                Out::Chunk(vec![0xF0, 2, 0xF7], true, true, false),
            ]
        );
        assert_eq!(stats.aborted_sysex, 1);
        // Undefined system common bytes abort too (and are skipped).
        let (out, stats) = msgs(&[0xF0, 1, 0xF5, 0xF6]);
        assert_eq!(
            out,
            vec![Out::Chunk(vec![0xF0, 1], true, true, true), m(&[0xF6])]
        );
        assert_eq!((stats.aborted_sysex, stats.stray_bytes), (1, 1));
    }

    #[test]
    fn stray_bytes_are_skipped_and_counted() {
        let (out, stats) = msgs(&[1, 2, 3, 0xF4, 4, 0xF5, 0xF7, 0x90, 60, 100]);
        assert_eq!(out, vec![m(&[0x90, 60, 100])]);
        assert_eq!(stats.stray_bytes, 7);
        assert_eq!(stats.incomplete_messages, 0);
    }

    #[test]
    fn undefined_status_clears_running_status() {
        let (out, stats) = msgs(&[0x90, 60, 100, 0xF4, 61, 100]);
        assert_eq!(out, vec![m(&[0x90, 60, 100])]);
        assert_eq!(stats.stray_bytes, 3);
    }

    #[test]
    fn interrupted_message_is_dropped_and_counted() {
        let (out, stats) = msgs(&[0x90, 60, 0xB0, 7, 100, 0xC0, 0x90, 1, 2]);
        assert_eq!(out, vec![m(&[0xB0, 7, 100]), m(&[0x90, 1, 2])]);
        assert_eq!(stats.incomplete_messages, 2);
        // A kept running status interrupted by a new status is not an incomplete message.
        let (_, stats) = msgs(&[0x90, 60, 100, 0xB0, 7, 100]);
        assert_eq!(stats.incomplete_messages, 0);
    }

    #[test]
    fn note_on_velocity_zero_stays_note_on_bytes() {
        let mut got = Vec::new();
        Parser::new().feed(&[0x95, 60, 0], |e| {
            if let Event::Message(m) = e {
                got.push(m)
            }
        });
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].as_bytes(), &[0x95, 60, 0]);
        assert!(got[0].is_note_off());
    }

    #[test]
    fn reset_forgets_running_status_and_keeps_counters() {
        let mut p = Parser::new();
        parse(&mut p, &[5, 0x90, 60, 100]);
        p.reset();
        assert_eq!(parse(&mut p, &[61, 100]), vec![]);
        assert_eq!(p.stats().stray_bytes, 3);
        p.reset_stats();
        assert_eq!(p.stats(), ParserStats::default());
    }

    fn decode(d: &mut Decoder, input: &[u8]) -> Vec<String> {
        let mut out = Vec::new();
        d.feed(input, |e| out.push(format!("{e:02X?}")));
        out
    }

    #[test]
    fn decoder_assembles_sysex_around_realtime() {
        let mut d = Decoder::new();
        let mut out = decode(&mut d, &[0xF0, 0x43, 0xF8, 0x10]);
        out.extend(decode(&mut d, &[0x4C, 0xF7, 0xF0, 1]));
        out.extend(decode(&mut d, &[0x80, 60, 0]));
        let clock = format!("{:02X?}", Decoded::Message(Message::Clock.to_short()));
        let sysex = format!("{:02X?}", Decoded::Sysex(&[0xF0, 0x43, 0x10, 0x4C, 0xF7]));
        let off = format!(
            "{:02X?}",
            Decoded::Message(ShortMessage::note_off(0, 60, 0))
        );
        let aborted = format!("{:02X?}", Decoded::SysexAborted);
        assert_eq!(out, vec![clock, sysex, aborted, off]);
        assert_eq!(d.stats().aborted_sysex, 1);
    }

    #[test]
    fn decoder_drops_too_long_sysex_and_recovers() {
        let mut d = Decoder::with_max_sysex_len(4);
        let out = decode(&mut d, &[0xF0, 1, 2, 3, 4, 0xF7, 0xF0, 1, 0xF7]);
        assert_eq!(
            out,
            vec![
                format!("{:02X?}", Decoded::SysexTooLong { len: 6 }),
                format!("{:02X?}", Decoded::Sysex(&[0xF0, 1, 0xF7])),
            ]
        );
    }

    #[test]
    fn decoder_reports_sysex_left_open_by_reset() {
        let mut d = Decoder::new();
        decode(&mut d, &[0xF0, 1]);
        d.parser.reset();
        let out = decode(&mut d, &[0xF0, 2, 0xF7]);
        assert_eq!(
            out,
            vec![
                format!("{:02X?}", Decoded::SysexAborted),
                format!("{:02X?}", Decoded::Sysex(&[0xF0, 2, 0xF7])),
            ]
        );
    }

    #[test]
    fn assembler_ignores_chunks_of_a_sysex_it_did_not_see_start() {
        let mut a = SysexAssembler::with_capacity(16);
        let mid = SysexChunk {
            bytes: &[1, 2],
            start: false,
            end: false,
            aborted: false,
        };
        assert_eq!(a.push(mid), SysexStatus::Pending);
        let end = SysexChunk {
            bytes: &[3, 0xF7],
            end: true,
            ..mid
        };
        assert_eq!(a.push(end), SysexStatus::Aborted);
        assert!(!a.is_open());
        let whole = SysexChunk {
            bytes: &[0xF0, 9, 0xF7],
            start: true,
            end: true,
            aborted: false,
        };
        assert_eq!(a.push(whole), SysexStatus::Complete(&[0xF0, 9, 0xF7]));
    }

    #[test]
    fn a_sysex_delivered_in_pieces_is_reassembled_whole() {
        // midir may hand a long SysEx over in several deliveries, with
        // real-time bytes inside.
        let mut whole = vec![0xF0];
        whole.extend((0..1022).map(|i| (i % 128) as u8));
        whole.push(0xF7);
        let mut stream = whole.clone();
        stream.insert(300, 0xF8);
        let mut decoder = Decoder::with_max_sysex_len(4096);
        let mut out: Vec<Vec<u8>> = Vec::new();
        for piece in stream.chunks(97) {
            decoder.feed(piece, |d| match d {
                Decoded::Message(m) => out.push(m.as_bytes().to_vec()),
                Decoded::Sysex(b) => out.push(b.to_vec()),
                other => panic!("{other:?}"),
            });
        }
        assert_eq!(out, vec![vec![0xF8], whole]);
    }

    #[test]
    fn a_preallocated_assembler_never_grows_and_refuses_what_is_too_long() {
        let mut a = SysexAssembler::with_capacity(64);
        let cap = a.buf.capacity();
        let mut p = Parser::new();
        let mut seen = Vec::new();
        let mut long = vec![0xF0];
        long.extend([5u8; 100]);
        long.push(0xF7);
        for piece in [&[0xF0, 1, 2][..], &[3, 0xF7][..], &long[..50], &long[50..]] {
            p.feed(piece, |e| {
                if let Event::Sysex(c) = e {
                    match a.push(c) {
                        SysexStatus::Complete(b) => seen.push(Ok(b.to_vec())),
                        SysexStatus::TooLong { len } => seen.push(Err(len)),
                        SysexStatus::Pending => {}
                        SysexStatus::Aborted => panic!("aborted"),
                    }
                }
            });
        }
        assert_eq!(seen, vec![Ok(vec![0xF0, 1, 2, 3, 0xF7]), Err(102)]);
        assert_eq!(a.buf.capacity(), cap, "the buffer grew");
    }
}
