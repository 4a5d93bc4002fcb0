//! impresario's MIDI layer: a MIDI 1.0 byte-stream parser, system MIDI ports
//! on ALSA (through `midir`) and JACK MIDI port listing.
//!
//! # Modules
//!
//! - [`message`]: [`ShortMessage`] (3 bytes + length, `Copy`) and its typed
//!   view [`Message`].
//! - [`parser`]: [`Parser`] (fixed size, never allocates, fit for the
//!   real-time engine thread), [`SysexAssembler`] and [`Decoder`] (allocate:
//!   ordinary threads).
//! - [`alsa`]: list ALSA sequencer ports, open inputs (callback with a
//!   monotonic arrival timestamp) and outputs (a sender thread fed by a
//!   lock-free ring, sending each event when it is due), virtual ports.
//! - [`jack_ports`]: list the MIDI ports of a running JACK server.
//! - [`error`]: [`MidiError`] and [`MessageError`].
//!
//! # Parser rules
//!
//! [`Parser::feed`] takes bytes in any chunking (a message may span calls)
//! and emits, in stream order:
//!
//! 1. **Channel voice messages** (0x80–0xEF) once all their data bytes
//!    arrived. **Running status**: after a channel voice message, data bytes
//!    without a status byte reuse the last status. Running status is cleared
//!    by every status byte other than real-time: system common (0xF1–0xF6),
//!    SysEx start (0xF0) and end (0xF7), and the undefined 0xF4/0xF5.
//! 2. **System common messages**: MTC quarter frame (0xF1 + 1), song position
//!    (0xF2 + 2), song select (0xF3 + 1), tune request (0xF6, emitted at once).
//! 3. **System real-time messages** (0xF8 clock, 0xFA start, 0xFB continue,
//!    0xFC stop, 0xFE active sensing, 0xFF reset) are emitted the moment they
//!    arrive, wherever they are: between the bytes of another message or
//!    inside a SysEx, which they do not disturb. The undefined 0xF9 and 0xFD
//!    are skipped (and counted).
//! 4. **SysEx** (0xF0 … 0xF7) of any length is reported as
//!    [`SysexChunk`]s borrowing the input (no copy, no allocation): the
//!    chunks of one SysEx concatenated are its wire bytes, 0xF0 first and
//!    0xF7 last; real-time bytes inside are not part of any chunk. A SysEx
//!    interrupted by a status byte other than real-time ends with an
//!    `aborted` chunk (counted in [`ParserStats::aborted_sysex`]) and that
//!    status byte is then processed normally. [`SysexAssembler`] /
//!    [`Decoder`] collect whole SysEx messages (with a size limit, 1 MiB by
//!    default).
//! 5. **Skipped bytes** (counted in [`ParserStats::stray_bytes`]): data bytes
//!    with no status to attach to (at the start of the stream, after system
//!    common messages or after a SysEx), 0xF4, 0xF5, 0xF9, 0xFD, and 0xF7
//!    outside a SysEx. They never make the parser lose sync: the next status
//!    byte starts a fresh message.
//! 6. A short message cut off by a status byte before its data is complete is
//!    dropped (counted in [`ParserStats::incomplete_messages`]); the new
//!    status byte is processed.
//! 7. Note-on with velocity 0 keeps its bytes (0x9n kk 00);
//!    [`ShortMessage::is_note_off`] treats it as a note-off.
//!
//! Tested by unit tests, proptest properties (no panic on any input;
//! messages embedded after any garbage prefix are recovered in order;
//! chunking does not change the output) and a fuzz target.
//!
//! # Backends
//!
//! - **ALSA** ([`alsa`]), through `midir` with its default (ALSA) backend on
//!   Linux. Ports are found by a case-insensitive substring of their name;
//!   virtual ports are created under a given name. Incoming bytes go through
//!   the same [`Decoder`] rules as everything else. Without `/dev/snd/seq`
//!   (no sound card, `snd-seq` not loaded, containers) every call returns
//!   [`MidiError::AlsaUnavailable`] with what to do; nothing panics.
//! - **JACK** ([`jack_ports`]): only port listing here (the engine owns the
//!   JACK process callback). `libjack` is loaded at run time, so the crate
//!   works on machines without JACK; without a running server the listing
//!   returns [`MidiError::JackUnavailable`].
//! - **Windows**: `midir` uses WinMM there, which cannot create virtual
//!   ports. [`alsa::MidiInput::open_virtual`] / [`alsa::MidiOutput::open_virtual`]
//!   return [`MidiError::VirtualUnsupported`]; create a port with loopMIDI
//!   and connect to it by name with `open` instead. (This crate is only
//!   built and tested on Linux.)
//!
//! # Threads and allocation
//!
//! Every public function says which thread may call it and whether it may
//! allocate. On the engine thread only these are allowed: [`Parser`]
//! methods, [`ShortMessage`]/[`Message`] methods, and
//! [`alsa::OutputSender::try_send`] (a wait-free push into a preallocated
//! ring).
//!
//! # Fuzzing
//!
//! `crates/midi/fuzz` is a `cargo fuzz` project (its own workspace, not part
//! of the main one and not run by CI). Its target `parser` feeds random bytes
//! in random chunks to [`Parser`] and [`Decoder`] and checks the invariants
//! (well-formed messages, chunks that concatenate to valid SysEx, same output
//! for any chunking). `cargo fuzz` needs nightly; with a stable toolchain
//! (1.95 here) run it with `RUSTC_BOOTSTRAP=1`:
//!
//! ```text
//! cargo install cargo-fuzz          # once, from crates.io
//! cd crates/midi
//! RUSTC_BOOTSTRAP=1 cargo fuzz run parser -- -max_total_time=30
//! ```
//!
//! # Benchmark
//!
//! `cargo bench -p midi --bench parser` measures parser throughput (bytes/s)
//! for a typical performance stream (notes with running status, CCs, pitch
//! bend, clock bytes, an occasional SysEx), fed in 64-byte chunks, through
//! [`Parser`] alone and through [`Decoder`]. On the shared 2-core
//! development machine (release build, 2 s measurement) both ran at roughly
//! 200–350 MiB/s, i.e. well under a microsecond per message; the numbers are
//! noisy there and are a sanity check, not a promise.

#![warn(missing_docs)]

pub mod alsa;
pub mod error;
pub mod jack_ports;
pub mod message;
pub mod parser;

pub use error::{MessageError, MidiError};
pub use message::{data_len, Message, ShortMessage};
pub use parser::{
    Decoded, Decoder, Event, Parser, ParserStats, SysexAssembler, SysexChunk, SysexStatus,
};
