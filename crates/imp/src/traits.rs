//! The safe traits an imp author implements.
//!
//! An imp has two halves:
//! - the **control part** ([`Imp`]), which lives on the realm's control
//!   thread: it is created, thawed, frozen, polled, configured and asked for
//!   its vault data there, and may allocate, block and log freely;
//! - the optional **RT part** ([`RtPart`]), which `thaw` hands to the engine
//!   and which the engine thread calls once per block. It must not allocate,
//!   lock, block or log through `tracing`; it talks to its control part
//!   through lock-free rings or atomics it owns.

use crate::abi::{BlockContext, RtEvent, TRANSIENT_BYTES};
use crate::error::ImpError;
use crate::mail::Messenger;
use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::Value;

/// What the realm tells an imp when it creates it.
#[derive(Clone, Debug)]
pub struct CreateContext {
    name: String,
    sample_rate: f64,
    messenger: Messenger,
}

impl CreateContext {
    #[doc(hidden)]
    pub fn new(name: String, sample_rate: f64) -> CreateContext {
        CreateContext {
            messenger: Messenger::new(name.clone()),
            name,
            sample_rate,
        }
    }

    /// The imp's handle for messages to other imps (send, subscribe,
    /// publish, and an [`RtSender`](crate::RtSender) for its RT part).
    /// Keep a clone.
    pub fn messenger(&self) -> &Messenger {
        &self.messenger
    }

    /// The imp's name in `realm.toml` (e.g. `keys`).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The engine's sample rate in Hz: the rate to render audio at (every
    /// block's `BlockContext::sample_rate` says the same).
    pub fn sample_rate(&self) -> f64 {
        self.sample_rate
    }
}

/// The control part of an imp. One value per imp named in `realm.toml`.
///
/// Every method runs on the realm's control thread (never the engine
/// thread), one at a time, and may allocate. A panic in any of them is
/// caught at the boundary: the imp is marked failed and frozen, and the rest
/// of the realm carries on.
pub trait Imp: Sized + Send + 'static {
    /// The imp's `config` table from `realm.toml`, deserialised from JSON.
    type Config: DeserializeOwned;
    /// State carried from the old code to the new code across a respawn
    /// (and back into the same code after a failed respawn).
    type Frozen: Serialize + DeserializeOwned;
    /// The RT part; use [`NoRt`] for an imp without one.
    type Rt: RtPart;

    /// Version of the format of [`Imp::get_vault_data`]. Bump it when the
    /// format changes and handle the old one in [`Imp::migrate_vault`].
    const VAULT_VERSION: u32 = 1;

    /// Creates the imp, frozen: it must not open devices or start threads
    /// here. `frozen` is the state the previous instance returned from
    /// [`Imp::freeze`] during a respawn, and `None` on a fresh start.
    /// Control thread; may allocate.
    fn create(
        ctx: &CreateContext,
        config: Self::Config,
        frozen: Option<Self::Frozen>,
    ) -> Result<Self, ImpError>;

    /// Acquires external resources (ports, devices) and returns the RT part
    /// for the engine, if the imp has one. Return
    /// [`ImpError::not_ready`] when a device is absent: the imp stays frozen
    /// and the realm retries. Control thread; may allocate.
    fn thaw(&mut self) -> Result<Option<Self::Rt>, ImpError>;

    /// Releases external resources and returns the state to carry over. The
    /// engine has already stopped calling the RT part, except during a
    /// respawn, where the old RT part keeps playing until its successor
    /// replaces it. Control thread; may allocate.
    fn freeze(&mut self) -> Self::Frozen;

    /// Periodic housekeeping (drain rings filled by the RT part, log what
    /// happened) and a status for `impresario status`. Called every
    /// reconcile period while thawed. Return [`ImpError::not_ready`] when
    /// the device went away: the realm freezes the imp and retries it every
    /// thaw-retry period until the device is back. Control thread; may
    /// allocate.
    fn poll(&mut self) -> Result<Value, ImpError> {
        Ok(Value::Null)
    }

    /// A control message (JSON) from another imp or the CLI, and its reply.
    /// Control thread; may allocate.
    fn control(&mut self, message: Value) -> Result<Value, ImpError> {
        let _ = message;
        Err(ImpError::new(
            crate::ErrorKind::Unsupported,
            "this imp takes no control messages",
        ))
    }

    /// The data to keep in the vault, or `None` for nothing. Called when the
    /// realm saves the vault (debounced on change, on respawn, on shutdown).
    /// Use [`crate::vault_field!`] to persist one serde field. Control
    /// thread; may allocate.
    fn get_vault_data(&self) -> Option<Value> {
        None
    }

    /// Restores vault data (already migrated to [`Imp::VAULT_VERSION`]).
    /// Called after `create`, before `thaw`. Control thread; may allocate.
    fn set_vault_data(&mut self, data: Value) -> Result<(), ImpError> {
        let _ = data;
        Ok(())
    }

    /// Converts vault data written with format `from_version` to
    /// [`Imp::VAULT_VERSION`]. Runs before `set_vault_data`, so before thaw.
    /// Control thread; may allocate.
    fn migrate_vault(from_version: u32, data: Value) -> Result<Value, ImpError> {
        if from_version == Self::VAULT_VERSION {
            Ok(data)
        } else {
            Err(ImpError::invalid(format!(
                "vault data has format version {from_version}, this build reads version {}; \
                 add a migration in `migrate_vault`",
                Self::VAULT_VERSION
            )))
        }
    }

    /// Library hook, on the **old** code, after every imp of the library was
    /// frozen for a respawn: returns a token for the new code. Control thread.
    fn on_before_load() -> Option<Value> {
        None
    }

    /// Library hook, on the **new** code, before any imp is created: `token`
    /// is what the old code's [`Imp::on_before_load`] returned, `None` on the
    /// first load. Control thread.
    fn on_after_load(token: Option<Value>) -> Result<(), ImpError> {
        let _ = token;
        Ok(())
    }
}

/// The real-time part of an imp, called by the engine thread.
///
/// No method may allocate, take a lock, block, or log through `tracing`;
/// the engine's allocation guard catches allocations in tests. The value is
/// created and dropped on the control thread.
pub trait RtPart: Send + 'static {
    /// Audio channels this part writes through [`EventWriter::audio`]
    /// (0: MIDI only; 1 or 2). The engine mixes them into its output bus.
    const AUDIO_CHANNELS: u32 = 0;

    /// Processes one block: `input` holds this block's events for the imp
    /// in frame order; write output events with `out`, and audio (when
    /// [`RtPart::AUDIO_CHANNELS`] > 0) into `out.audio()`. Engine thread;
    /// no allocation.
    fn process(&mut self, ctx: &BlockContext, input: &[RtEvent], out: &mut EventWriter<'_>);

    /// Writes the transient state (held notes, phases) for a successor
    /// during a hot swap. Engine thread; no allocation.
    fn save_transient(&self, buf: &mut [u8; TRANSIENT_BYTES]) {
        let _ = buf;
    }

    /// Takes over the transient state a predecessor saved. Return false
    /// when the bytes are not understood (e.g. from an incompatible build):
    /// the engine then ends the predecessor's notes itself. Engine thread;
    /// no allocation.
    fn restore_transient(&mut self, buf: &[u8; TRANSIENT_BYTES]) -> bool {
        let _ = buf;
        true
    }

    /// Emits a note-off for every note this part left sounding. Called when
    /// the part is removed (freeze, failure, shutdown). Engine thread; no
    /// allocation.
    fn all_notes_off(&mut self, out: &mut EventWriter<'_>) {
        let _ = out;
    }
}

/// The RT part of an imp that has none.
pub enum NoRt {}

impl RtPart for NoRt {
    fn process(&mut self, _: &BlockContext, _: &[RtEvent], _: &mut EventWriter<'_>) {
        match *self {}
    }
}

/// Writes events into the engine's preallocated output buffer, and gives
/// access to the block's audio output.
///
/// Long messages (SysEx) go through [`EventWriter::push_sysex`], which
/// copies their bytes into the engine's output long-data arena for this
/// call (reserved up front; nothing is allocated). [`EventWriter::push`]
/// of an input SysEx event passes it on the same way, so a part that
/// forwards its input forwards SysEx too.
pub struct EventWriter<'a> {
    buf: &'a mut [RtEvent],
    len: usize,
    dropped: usize,
    audio: AudioOut<'a>,
    long: LongData<'a>,
}

/// The block's long-data arenas as the writer sees them: the input arena
/// (read, to pass input SysEx on) and the output arena (filled from 0).
struct LongData<'a> {
    input: *const u8,
    input_len: usize,
    output: *mut u8,
    output_cap: usize,
    output_len: usize,
    /// The engine's count of SysEx this part could not write (or null).
    dropped: *mut u32,
    _arenas: core::marker::PhantomData<&'a mut [u8]>,
}

impl LongData<'_> {
    const NONE: LongData<'static> = LongData {
        input: core::ptr::null(),
        input_len: 0,
        output: core::ptr::null_mut(),
        output_cap: 0,
        output_len: 0,
        dropped: core::ptr::null_mut(),
        _arenas: core::marker::PhantomData,
    };

    /// Tells the engine a SysEx was dropped.
    fn count_drop(&mut self) {
        if !self.dropped.is_null() {
            // SAFETY: `with_audio`'s caller promised a writable counter for `'a`.
            unsafe { *self.dropped = (*self.dropped).saturating_add(1) };
        }
    }

    /// The bytes of an input SysEx event, if they are in the input arena.
    fn input_bytes(&self, e: &RtEvent) -> Option<&[u8]> {
        if self.input.is_null() {
            return None;
        }
        let start = e.data_offset as usize;
        let end = start.checked_add(e.data_len as usize)?;
        if end > self.input_len {
            return None;
        }
        // SAFETY: `with_audio`'s caller promised `input_len` readable
        // bytes for `'a`; the range is inside them.
        Some(unsafe { core::slice::from_raw_parts(self.input.add(start), end - start) })
    }
}

/// The block's audio output: engine-owned `f32` buffers, one per channel,
/// `frames` samples long, zeroed at the start of the block. Add to them
/// (`+=`) or overwrite; sample `i` sounds at frame `i`.
pub struct AudioOut<'a> {
    channels: [*mut f32; crate::abi::MAX_AUDIO_CHANNELS as usize],
    count: usize,
    frames: usize,
    _buffers: core::marker::PhantomData<&'a mut [f32]>,
}

impl AudioOut<'_> {
    /// No audio.
    pub fn none() -> AudioOut<'static> {
        AudioOut {
            channels: [core::ptr::null_mut(); crate::abi::MAX_AUDIO_CHANNELS as usize],
            count: 0,
            frames: 0,
            _buffers: core::marker::PhantomData,
        }
    }

    /// Number of channels (0 when the part declared none).
    pub fn channels(&self) -> usize {
        self.count
    }

    /// Frames per channel in this block.
    pub fn frames(&self) -> usize {
        self.frames
    }

    /// Channel `i`, or `None` past the last one.
    pub fn channel(&mut self, i: usize) -> Option<&mut [f32]> {
        if i >= self.count {
            return None;
        }
        // SAFETY: the engine hands `count` distinct buffers of `frames`
        // samples, valid and unaliased for the whole call (`'a`).
        Some(unsafe { core::slice::from_raw_parts_mut(self.channels[i], self.frames) })
    }

    /// Left and right (a mono part gets `None`).
    pub fn stereo(&mut self) -> Option<(&mut [f32], &mut [f32])> {
        if self.count < 2 {
            return None;
        }
        // SAFETY: as in `channel`; the two buffers are distinct.
        unsafe {
            Some((
                core::slice::from_raw_parts_mut(self.channels[0], self.frames),
                core::slice::from_raw_parts_mut(self.channels[1], self.frames),
            ))
        }
    }
}

impl<'a> EventWriter<'a> {
    /// Wraps a caller-owned buffer (no audio).
    pub fn new(buf: &'a mut [RtEvent]) -> EventWriter<'a> {
        EventWriter {
            buf,
            len: 0,
            dropped: 0,
            audio: AudioOut::none(),
            long: LongData::NONE,
        }
    }

    /// Wraps a caller-owned event buffer, the block's audio buffers and its
    /// long-data arenas.
    ///
    /// # Safety
    /// `ctx.audio` must point at `ctx.audio_channels` distinct, valid
    /// buffers of `ctx.frames` samples that outlive `'a` (the engine's), and
    /// the long-data arenas set with `BlockContext::set_long_data` must
    /// outlive `'a` too.
    #[doc(hidden)]
    pub unsafe fn with_audio(buf: &'a mut [RtEvent], ctx: &BlockContext) -> EventWriter<'a> {
        let mut audio = AudioOut::none();
        if !ctx.audio.is_null() {
            audio.count = (ctx.audio_channels as usize).min(audio.channels.len());
            audio.frames = ctx.frames as usize;
            for i in 0..audio.count {
                // SAFETY: the caller promises `audio_channels` valid pointers.
                audio.channels[i] = unsafe { *ctx.audio.add(i) };
            }
        }
        let input = ctx.long_data();
        let (output, output_cap, dropped) = ctx.long_out();
        let long = LongData {
            input: input.as_ptr(),
            input_len: input.len(),
            output,
            output_cap,
            output_len: 0,
            dropped,
            _arenas: core::marker::PhantomData,
        };
        EventWriter {
            buf,
            len: 0,
            dropped: 0,
            audio,
            long,
        }
    }

    /// The block's audio output (no channels unless the part declared
    /// [`RtPart::AUDIO_CHANNELS`]).
    pub fn audio(&mut self) -> &mut AudioOut<'a> {
        &mut self.audio
    }

    /// Appends an event; returns false (and counts it) when the buffer is
    /// full. An input SysEx event ([`RtEvent::is_sysex`]) is passed on with
    /// its bytes, as by [`EventWriter::push_sysex`] (on the event's `port`);
    /// one whose bytes are not in this block's input arena is dropped.
    pub fn push(&mut self, event: RtEvent) -> bool {
        if event.is_sysex() {
            let Some(bytes) = self.long.input_bytes(&event) else {
                self.dropped += 1;
                self.long.count_drop();
                return false;
            };
            // Input and output arenas are distinct engine buffers.
            let (ptr, len) = (bytes.as_ptr(), bytes.len());
            // SAFETY: the bytes stay valid for `'a` (see `input_bytes`) and
            // do not overlap the output arena that `push_sysex` writes.
            let bytes = unsafe { core::slice::from_raw_parts(ptr, len) };
            return self.push_sysex(event.frame, event.port, bytes);
        }
        if let Some(slot) = self.buf.get_mut(self.len) {
            *slot = event;
            self.len += 1;
            true
        } else {
            self.dropped += 1;
            false
        }
    }

    /// Appends a whole SysEx message (`0xF0 …  0xF7`, any length) at
    /// `frame` on the numbered output `port`: its bytes are copied into the
    /// engine's output long-data arena for this call. Returns false (and
    /// counts it as dropped) when `bytes` is not one whole SysEx, the event
    /// buffer is full, or the arena has no room for it (the message is never
    /// truncated); the engine counts SysEx it cannot carry in its
    /// `sysex_dropped` stat. Only `RtPart::process` can write SysEx (not
    /// `all_notes_off`). Engine thread; no allocation.
    pub fn push_sysex(&mut self, frame: u32, port: u8, bytes: &[u8]) -> bool {
        let whole = bytes.len() >= 2 && bytes[0] == 0xF0 && bytes[bytes.len() - 1] == 0xF7;
        let start = self.long.output_len;
        let fits = start
            .checked_add(bytes.len())
            .is_some_and(|end| end <= self.long.output_cap)
            && !self.long.output.is_null()
            && u32::try_from(start + bytes.len()).is_ok();
        if !whole || !fits || self.len >= self.buf.len() {
            self.dropped += 1;
            self.long.count_drop();
            return false;
        }
        // SAFETY: `with_audio`'s caller promised `output_cap` writable bytes
        // for `'a`; `start + len <= output_cap` was checked above, and the
        // source is never the output arena (input arena or the part's own).
        unsafe {
            core::ptr::copy_nonoverlapping(bytes.as_ptr(), self.long.output.add(start), bytes.len())
        };
        self.long.output_len = start + bytes.len();
        self.buf[self.len] = RtEvent {
            frame,
            port,
            kind: crate::abi::event_kind::SYSEX,
            data_offset: start as u32,
            data_len: bytes.len() as u32,
            ..RtEvent::default()
        };
        self.len += 1;
        true
    }

    /// Bytes still free in the output long-data arena (0 when there is none).
    pub fn sysex_room(&self) -> usize {
        self.long.output_cap - self.long.output_len
    }

    /// Number of events written.
    pub fn len(&self) -> usize {
        self.len
    }

    /// How many more events fit.
    pub fn remaining(&self) -> usize {
        self.buf.len() - self.len
    }

    /// True when nothing was written.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Number of events that did not fit.
    pub fn dropped(&self) -> usize {
        self.dropped
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::abi::event_kind;

    /// A context over `input` (the input arena) and `output` (the output
    /// arena), counting drops into `dropped`.
    fn ctx(input: &[u8], output: &mut [u8], dropped: &mut u32) -> BlockContext {
        let mut c = BlockContext::new(0, 48_000.0, 120.0, 64);
        // SAFETY: the buffers outlive every use of the context in each test.
        unsafe {
            c.set_long_data(
                input.as_ptr(),
                input.len(),
                output.as_mut_ptr(),
                output.len(),
                dropped,
            )
        };
        c
    }

    fn sysex_event(frame: u32, offset: u32, len: u32) -> RtEvent {
        RtEvent {
            frame,
            kind: event_kind::SYSEX,
            data_offset: offset,
            data_len: len,
            ..RtEvent::default()
        }
    }

    #[test]
    fn sysex_bytes_are_read_from_the_input_arena_within_bounds() {
        let input = [0x90, 1, 2, 0xF0, 7, 0xF7];
        let (mut output, mut dropped) = ([0u8; 16], 0);
        let c = ctx(&input, &mut output, &mut dropped);
        assert_eq!(
            c.sysex_bytes(&sysex_event(0, 3, 3)),
            Some(&[0xF0, 7, 0xF7][..])
        );
        assert_eq!(c.sysex_bytes(&sysex_event(0, 4, 3)), None, "past the end");
        assert_eq!(c.sysex_bytes(&sysex_event(0, u32::MAX, 3)), None);
        assert_eq!(c.sysex_bytes(&RtEvent::midi(0, &[0x90, 1, 2])), None);
        let none = BlockContext::new(0, 48_000.0, 120.0, 64);
        assert_eq!(none.sysex_bytes(&sysex_event(0, 0, 0)), None);
    }

    #[test]
    fn push_sysex_copies_into_the_output_arena_and_push_passes_input_on() {
        let input = [0xF0, 1, 2, 0xF7];
        let (mut output, mut dropped) = ([0u8; 8], 0);
        let c = ctx(&input, &mut output, &mut dropped);
        let mut events = [RtEvent::default(); 4];
        // SAFETY: no audio; the arenas and the counter outlive the writer.
        let mut w = unsafe { EventWriter::with_audio(&mut events, &c) };
        assert!(w.push_sysex(5, 2, &[0xF0, 9, 0xF7]));
        let mut passed = sysex_event(6, 0, 4);
        passed.port = 1;
        assert!(w.push(passed));
        assert_eq!(w.sysex_room(), 1);
        // Not whole, too long for what is left: refused whole, counted.
        assert!(!w.push_sysex(7, 0, &[0xF0, 1]));
        assert!(!w.push_sysex(7, 0, &[0xF0, 0xF7]));
        assert!(!w.push(sysex_event(8, 2, 4)), "outside the input arena");
        assert_eq!((w.len(), w.dropped()), (2, 3));
        assert_eq!(dropped, 3);
        assert_eq!(
            (
                events[0].frame,
                events[0].port,
                events[0].data_offset,
                events[0].data_len
            ),
            (5, 2, 0, 3)
        );
        assert_eq!(
            (
                events[1].frame,
                events[1].port,
                events[1].data_offset,
                events[1].data_len
            ),
            (6, 1, 3, 4)
        );
        assert_eq!(&output[..7], &[0xF0, 9, 0xF7, 0xF0, 1, 2, 0xF7]);
    }

    #[test]
    fn without_an_arena_no_sysex_is_written() {
        let mut events = [RtEvent::default(); 4];
        let mut w = EventWriter::new(&mut events);
        assert!(!w.push_sysex(0, 0, &[0xF0, 0xF7]));
        assert!(!w.push(sysex_event(0, 0, 2)));
        assert_eq!((w.len(), w.dropped(), w.sysex_room()), (0, 2, 0));
    }
}
