//! The C ABI between the host and an imp library.
//!
//! Everything here is `#[repr(C)]` and free of Rust-specific types. Imp
//! authors never touch this module: `imp::export!` generates the table and
//! the host's loader reads it.
//!
//! Ownership rules:
//! - [`BytesRef`] is borrowed for the duration of one call.
//! - [`ImpBytes`] is allocated by the imp and freed by the host through
//!   [`LibraryTable::free_bytes`] (the side that allocated frees).
//! - [`RtEvent`] buffers are owned by the caller (the engine), and so are
//!   the long-data arenas a [`BlockContext`] points at (SysEx bytes): the
//!   input arena is read-only for the call, the output arena is the part's
//!   to fill for the call (through `EventWriter::push_sysex`), and neither
//!   may be kept past the call.

use core::ffi::c_void;
use core::mem::{align_of, offset_of, size_of};

/// Defines a boundary item and a constant `$shape` holding its source text,
/// which [`layout_fingerprint`] hashes (doc comments and whitespace left
/// out): every field's name and type, every function pointer's signature,
/// in order. A change that keeps sizes and offsets (two function pointers
/// of the same size swapped, a parameter's type changed) still changes the
/// fingerprint.
macro_rules! boundary {
    ($shape:ident; $item:item) => {
        $item
        #[doc(hidden)]
        pub const $shape: &str = stringify!($item);
    };
}

/// Version of this ABI. Bumped on any change of meaning that the layout
/// fingerprint cannot see (for example a new rule about who frees what).
pub const ABI_VERSION: u32 = 3;

/// Name of the one symbol every imp library exports.
pub const ENTRY_SYMBOL: &[u8] = b"impresario_imp_library\0";

/// Most audio channels an RT part can write (the engine's bus is stereo).
pub const MAX_AUDIO_CHANNELS: u32 = 2;

/// Size of the buffer through which an RT part hands its transient state
/// (held notes, arpeggiator phase, ...) to its successor during a hot swap.
pub const TRANSIENT_BYTES: usize = 32 * 1024;

boundary! { STATUS_SHAPE;
/// Result of every exported function.
pub type Status = u32;
}
/// The call succeeded.
pub const STATUS_OK: Status = 0;
/// The call failed; the error buffer holds a message.
pub const STATUS_ERROR: Status = 1;
/// `thaw` only: the imp cannot run yet (its device is absent); retry later.
pub const STATUS_NOT_READY: Status = 2;
/// The imp panicked; the error buffer holds the panic message.
pub const STATUS_PANICKED: Status = 3;

boundary! { BYTES_REF_SHAPE;
/// Borrowed bytes, valid for one call. `present == 0` means "none" (an
/// absent token or frozen state), which is not the same as empty.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct BytesRef {
    /// Start of the bytes (may be dangling when `len == 0`).
    pub ptr: *const u8,
    /// Number of bytes.
    pub len: usize,
    /// 1 when the value is present, 0 for "none".
    pub present: u8,
}
}

impl BytesRef {
    /// The absent value.
    pub const NONE: BytesRef = BytesRef {
        ptr: core::ptr::null(),
        len: 0,
        present: 0,
    };

    /// Borrows a slice.
    pub fn from_slice(bytes: &[u8]) -> BytesRef {
        BytesRef {
            ptr: bytes.as_ptr(),
            len: bytes.len(),
            present: 1,
        }
    }

    /// Borrows an optional slice.
    pub fn from_option(bytes: Option<&[u8]>) -> BytesRef {
        bytes.map_or(Self::NONE, Self::from_slice)
    }

    /// # Safety
    /// `ptr` must be valid for `len` bytes for the lifetime `'a`.
    pub unsafe fn as_option<'a>(self) -> Option<&'a [u8]> {
        if self.present == 0 {
            None
        } else if self.len == 0 {
            Some(&[])
        } else {
            // SAFETY: the caller promises `len` valid bytes for `'a`.
            Some(unsafe { core::slice::from_raw_parts(self.ptr, self.len) })
        }
    }
}

boundary! { IMP_BYTES_SHAPE;
/// Bytes allocated by the imp and handed to the host, which frees them with
/// [`LibraryTable::free_bytes`]. All zero means "nothing".
#[repr(C)]
#[derive(Debug)]
pub struct ImpBytes {
    /// Start of the allocation (null when empty).
    pub ptr: *mut u8,
    /// Number of initialised bytes.
    pub len: usize,
    /// Capacity of the allocation.
    pub cap: usize,
}
}

impl ImpBytes {
    /// The empty value.
    pub const EMPTY: ImpBytes = ImpBytes {
        ptr: core::ptr::null_mut(),
        len: 0,
        cap: 0,
    };
}

boundary! { STR_REF_SHAPE;
/// Static UTF-8 text inside the library image (name, build id).
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct StrRef {
    /// Start of the text.
    pub ptr: *const u8,
    /// Length in bytes.
    pub len: usize,
}
}

// SAFETY: a StrRef only ever points at 'static, immutable text.
unsafe impl Sync for StrRef {}

impl StrRef {
    /// Wraps static text.
    pub const fn new(s: &'static str) -> StrRef {
        StrRef {
            ptr: s.as_ptr(),
            len: s.len(),
        }
    }

    /// # Safety
    /// The text must be valid UTF-8 that lives as long as `'a`.
    pub unsafe fn as_str<'a>(self) -> &'a str {
        // SAFETY: the caller promises valid UTF-8 that lives for `'a`.
        unsafe { core::str::from_utf8_unchecked(core::slice::from_raw_parts(self.ptr, self.len)) }
    }
}

/// What an [`RtEvent`] carries.
pub mod event_kind {
    /// A MIDI 1.0 channel or system message in `bytes[..len]`.
    pub const MIDI: u8 = 0;
    /// A tempo change: `value` is the new tempo in BPM. Emitted by an RT
    /// part (a MIDI clock follower), it sets the engine's tempo from the
    /// next block on.
    pub const TEMPO: u8 = 1;
    /// A beat-grid tick at its frame: `value` ticks per beat (24 for MIDI
    /// clock). Emitted by an RT part, it puts the engine's beat position on
    /// that grid at that frame (the nearest tick), so the beat follows an
    /// external clock's phase.
    pub const GRID_TICK: u8 = 2;
    /// A transport message at its frame: `value` is one of
    /// [`transport`](crate::transport) (MIDI Start, Stop, Continue from an
    /// external clock). Emitted by an RT part, it starts, stops or
    /// continues the engine's beat; after Start or Continue the beat moves
    /// again from the next [`GRID_TICK`].
    pub const TRANSPORT: u8 = 3;
    /// A message longer than 3 bytes: a whole SysEx, `0xF0 … 0xF7`. Its
    /// bytes are not in the event but in engine-owned storage reserved up
    /// front (nothing is allocated to carry them): `data_offset` and
    /// `data_len` locate them in the block's input long-data arena (see
    /// [`BlockContext::sysex_bytes`](crate::BlockContext::sysex_bytes)).
    /// `len` is 0 and `bytes` unused. Write one with
    /// [`EventWriter::push_sysex`](crate::EventWriter::push_sysex);
    /// [`EventWriter::push`](crate::EventWriter::push) of an input SysEx
    /// event passes it on (its bytes are copied). SysEx never enters the
    /// engine's note ledgers.
    pub const SYSEX: u8 = 4;
    /// MIDI bytes for a device, not music, in `bytes[..len]`: the LED and
    /// display messages a controller sends back to its own device. They
    /// go along wires and out of ports exactly as written; the note
    /// ledgers leave them alone (a note-on here lights a pad, it starts no
    /// note, and a velocity-0 note-on turns the pad off).
    pub const FEEDBACK: u8 = 5;
}

/// The `value` of a [`event_kind::TRANSPORT`] event.
pub mod transport {
    /// Stop: the beat holds where it is.
    pub const STOP: u8 = 0;
    /// Start: the next grid tick is beat 0.
    pub const START: u8 = 1;
    /// Continue: the next grid tick goes on from where the beat stopped.
    pub const CONTINUE: u8 = 2;
}

boundary! { RT_EVENT_SHAPE;
/// One real-time event: a MIDI message (or control event) at a sample
/// offset inside the current block. Fixed size, so buffers of them can be
/// preallocated and passed across the boundary without allocation. A
/// message longer than 3 bytes (SysEx, [`event_kind::SYSEX`]) keeps its
/// bytes in the engine's long-data arenas, reserved up front; the event
/// locates them (`data_offset`, `data_len`) in the arena of the block it
/// belongs to, and is meaningless outside that block.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct RtEvent {
    /// Sample offset inside the block, `0..frames`.
    pub frame: u32,
    /// For output events: the numbered output (`0` = the default output).
    /// For input events: the number of the wire it arrived on.
    pub port: u8,
    /// One of [`event_kind`].
    pub kind: u8,
    /// Number of valid bytes in `bytes` (MIDI events).
    pub len: u8,
    /// MIDI bytes (status first).
    pub bytes: [u8; 3],
    /// Payload of control events (e.g. tempo in BPM).
    pub value: f32,
    /// [`event_kind::SYSEX`] only: where the message's bytes start in the
    /// long-data arena of the block (0 otherwise).
    pub data_offset: u32,
    /// [`event_kind::SYSEX`] only: the message's length in bytes, `0xF0`
    /// and `0xF7` included (0 otherwise).
    pub data_len: u32,
}
}

impl RtEvent {
    /// A MIDI event at `frame` on port 0.
    pub fn midi(frame: u32, bytes: &[u8]) -> RtEvent {
        let mut b = [0u8; 3];
        let len = bytes.len().min(3);
        b[..len].copy_from_slice(&bytes[..len]);
        RtEvent {
            frame,
            port: 0,
            kind: event_kind::MIDI,
            len: len as u8,
            bytes: b,
            value: 0.0,
            data_offset: 0,
            data_len: 0,
        }
    }

    /// True for a long message ([`event_kind::SYSEX`]); its bytes are read
    /// with [`BlockContext::sysex_bytes`].
    pub fn is_sysex(&self) -> bool {
        self.kind == event_kind::SYSEX
    }

    /// The MIDI bytes of this event (empty for a SysEx event, whose bytes
    /// live in the block's arena: [`BlockContext::sysex_bytes`]).
    pub fn midi_bytes(&self) -> &[u8] {
        &self.bytes[..(self.len as usize).min(3)]
    }

    /// True for a note-on with velocity > 0.
    pub fn is_note_on(&self) -> bool {
        self.kind == event_kind::MIDI
            && self.len == 3
            && self.bytes[0] & 0xF0 == 0x90
            && self.bytes[2] > 0
    }

    /// True for a note-off, or a note-on with velocity 0.
    pub fn is_note_off(&self) -> bool {
        self.kind == event_kind::MIDI
            && self.len == 3
            && (self.bytes[0] & 0xF0 == 0x80
                || (self.bytes[0] & 0xF0 == 0x90 && self.bytes[2] == 0))
    }
}

boundary! { BLOCK_CONTEXT_SHAPE;
/// Timing of the block being processed, counted in samples.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct BlockContext {
    /// Absolute sample position of the first frame of this block.
    pub sample_position: u64,
    /// Sample rate in Hz.
    pub sample_rate: f64,
    /// Engine tempo in beats per minute.
    pub tempo_bpm: f64,
    /// Number of frames in this block.
    pub frames: u32,
    /// The block's audio output: `audio_channels` pointers to engine-owned
    /// `f32` buffers of `frames` samples each, zeroed before the call (null
    /// when the part writes no audio). Sample `i` sounds at frame `i`, on
    /// the same clock as the MIDI events' frames.
    pub audio: *const *mut f32,
    /// Number of audio channels behind `audio` (0 when none).
    pub audio_channels: u32,
    /// The engine's beat position at the block's first frame (beats since
    /// the start, following the tempo and, when one is followed, an
    /// external clock's phase); NaN when the host keeps none.
    pub beat_position: f64,
    /// 1 while the engine's beat moves, 0 while an external clock's
    /// transport holds it (Stop, or Start/Continue before the first tick):
    /// tempo-synced generators wait.
    pub playing: u32,
    /// The block's input long-data arena (engine-owned, null when none):
    /// the bytes of this block's [`event_kind::SYSEX`] input events. Kept
    /// private so that safe code cannot point it anywhere; read it through
    /// [`BlockContext::sysex_bytes`].
    long_in: *const u8,
    /// Valid bytes behind `long_in`.
    long_in_len: usize,
    /// The part's output long-data arena (engine-owned, null when none),
    /// which [`EventWriter::push_sysex`](crate::EventWriter::push_sysex)
    /// fills from offset 0; an output SysEx event's `data_offset` is into it.
    long_out: *mut u8,
    /// Capacity of `long_out` in bytes.
    long_out_cap: usize,
    /// Where the part's writer counts the SysEx it could not write (no
    /// room, not a whole SysEx), for the engine's `sysex_dropped` stat
    /// (null when none).
    long_dropped: *mut u32,
}

}

impl BlockContext {
    /// A block without audio buffers.
    pub fn new(sample_position: u64, sample_rate: f64, tempo_bpm: f64, frames: u32) -> Self {
        BlockContext {
            sample_position,
            sample_rate,
            tempo_bpm,
            frames,
            audio: core::ptr::null(),
            audio_channels: 0,
            beat_position: f64::NAN,
            playing: 1,
            long_in: core::ptr::null(),
            long_in_len: 0,
            long_out: core::ptr::null_mut(),
            long_out_cap: 0,
            long_dropped: core::ptr::null_mut(),
        }
    }

    /// Hands the block's long-data arenas to the part (the engine does
    /// this before each `process` call).
    ///
    /// # Safety
    /// `input` must be valid for reads of `input_len` bytes and `output`
    /// valid for writes of `output_cap` bytes (or null with 0), not
    /// overlapping, and `dropped` valid for writes (or null), for as long as
    /// this context (or a copy of it) is used.
    #[doc(hidden)]
    pub unsafe fn set_long_data(
        &mut self,
        input: *const u8,
        input_len: usize,
        output: *mut u8,
        output_cap: usize,
        dropped: *mut u32,
    ) {
        self.long_in = input;
        self.long_in_len = input_len;
        self.long_out = output;
        self.long_out_cap = output_cap;
        self.long_dropped = dropped;
    }

    /// The block's input long-data arena (empty when none).
    pub fn long_data(&self) -> &[u8] {
        if self.long_in.is_null() || self.long_in_len == 0 {
            &[]
        } else {
            // SAFETY: the fields are private; only `set_long_data`, whose
            // caller promises `long_in_len` readable bytes, sets them.
            unsafe { core::slice::from_raw_parts(self.long_in, self.long_in_len) }
        }
    }

    /// The bytes of an input [`event_kind::SYSEX`] event (`0xF0 … 0xF7`),
    /// or `None` for any other event or one that points outside this
    /// block's arena. Engine thread; no allocation.
    pub fn sysex_bytes(&self, e: &RtEvent) -> Option<&[u8]> {
        // A whole SysEx is at least F0 F7.
        if !e.is_sysex() || e.data_len < 2 {
            return None;
        }
        let start = e.data_offset as usize;
        let end = start.checked_add(e.data_len as usize)?;
        self.long_data().get(start..end)
    }

    /// The part's output long-data arena and its capacity (null, 0 when
    /// none), and the drop counter.
    pub(crate) fn long_out(&self) -> (*mut u8, usize, *mut u32) {
        if self.long_out.is_null() {
            (core::ptr::null_mut(), 0, self.long_dropped)
        } else {
            (self.long_out, self.long_out_cap, self.long_dropped)
        }
    }
}

boundary! { HOST_TABLE_SHAPE;
/// Functions the host hands to a library at `init`. The host keeps this
/// table alive for the life of the process.
#[repr(C)]
pub struct HostTable {
    /// The host's [`ABI_VERSION`].
    pub abi_version: u32,
    /// Allocate through the host's global allocator (which the engine's
    /// allocation guard watches). The host's allocator must be compatible
    /// with the system allocator, because a library may free through the
    /// host memory it allocated before `init`.
    pub alloc: unsafe extern "C" fn(size: usize, align: usize) -> *mut u8,
    /// Zeroed allocation through the host.
    pub alloc_zeroed: unsafe extern "C" fn(size: usize, align: usize) -> *mut u8,
    /// Free through the host.
    pub dealloc: unsafe extern "C" fn(ptr: *mut u8, size: usize, align: usize),
    /// Reallocate through the host.
    pub realloc:
        unsafe extern "C" fn(ptr: *mut u8, size: usize, align: usize, new_size: usize) -> *mut u8,
    /// Forward one log record (level: 1 error .. 5 trace) to the host's logger.
    pub log: unsafe extern "C" fn(level: u8, target: BytesRef, message: BytesRef),
    /// Open a MIDI port for the imp being thawed (spec: JSON, see
    /// `imp::ports::PortSpec`). Returns a port id >= 0, [`PORT_NOT_READY`]
    /// or [`PORT_INVALID`]; the reason is written into `err_buf` (UTF-8,
    /// `err_len` bytes), which the caller owns. Control thread.
    pub port_open: unsafe extern "C" fn(
        spec: BytesRef,
        err_buf: *mut u8,
        err_cap: usize,
        err_len: *mut usize,
    ) -> i64,
    /// Close a port. Control thread.
    pub port_close: unsafe extern "C" fn(id: i64),
    /// 1 while the port (and the device it is bound to) is there, else 0. Control thread.
    pub port_alive: unsafe extern "C" fn(id: i64) -> u8,
    /// The engine's sample rate in Hz (the rate an imp renders audio at).
    /// Any thread.
    pub sample_rate: unsafe extern "C" fn() -> f64,
    /// Posts a control message (JSON) from imp `from` to imp `to` (or to
    /// `realm`). Returns one of the `MAIL_*` codes. Any thread but the
    /// engine's; never blocks for long (a short lock).
    pub send: unsafe extern "C" fn(from: BytesRef, to: BytesRef, message: BytesRef) -> u32,
    /// Posts a control message from an RT part. Engine thread: copies into
    /// a preallocated lock-free queue, never allocates, locks or blocks.
    /// Returns one of the `MAIL_*` codes.
    pub rt_send: unsafe extern "C" fn(from: BytesRef, to: BytesRef, message: BytesRef) -> u32,
    /// Subscribes imp `subscriber` to the state `publisher` publishes
    /// (`on == 1`), or ends the subscription (`on == 0`). Control thread.
    pub subscribe: unsafe extern "C" fn(subscriber: BytesRef, publisher: BytesRef, on: u8) -> u32,
    /// Publishes imp `from`'s state (JSON) to its subscribers. Control thread.
    pub publish: unsafe extern "C" fn(from: BytesRef, state: BytesRef) -> u32,
}
}

/// `send`, `rt_send`, `subscribe`, `publish`: accepted.
pub const MAIL_OK: u32 = 0;
/// The realm's queue (or the engine-thread queue) is full: not sent, counted.
pub const MAIL_FULL: u32 = 1;
/// Malformed: not UTF-8 names, not JSON, or longer than the limits.
pub const MAIL_INVALID: u32 = 2;

/// Longest imp name in an RT message, in bytes.
pub const RT_MAIL_NAME_BYTES: usize = 64;
/// Longest message an RT part can send, in bytes of JSON.
pub const RT_MAIL_BYTES: usize = 1024;

/// `port_open`: the device or peer port is absent; retry later.
pub const PORT_NOT_READY: i64 = -1;
/// `port_open`: the spec is invalid, or the host has no MIDI backend.
pub const PORT_INVALID: i64 = -2;

boundary! { RT_INSTANCE_SHAPE;
/// The RT part of an imp, handed to the engine. The function pointers live
/// in the library image, which the host never unloads, so they stay valid
/// as long as the instance exists.
#[repr(C)]
#[derive(Debug)]
pub struct RtInstance {
    /// The imp's RT state (a `Box<T::Rt>` turned into a raw pointer).
    pub state: *mut c_void,
    /// Processes one block. Engine thread; must not allocate or block.
    pub process: unsafe extern "C" fn(
        state: *mut c_void,
        ctx: *const BlockContext,
        input: *const RtEvent,
        input_len: usize,
        output: *mut RtEvent,
        output_cap: usize,
        output_len: *mut usize,
    ) -> Status,
    /// Writes the transient state into a [`TRANSIENT_BYTES`] buffer. Engine thread.
    pub save_transient: unsafe extern "C" fn(state: *mut c_void, buf: *mut u8) -> Status,
    /// Reads the transient state from a [`TRANSIENT_BYTES`] buffer. Engine thread.
    pub restore_transient: unsafe extern "C" fn(state: *mut c_void, buf: *const u8) -> Status,
    /// Emits a note-off for every sounding note. Engine thread.
    pub all_notes_off: unsafe extern "C" fn(
        state: *mut c_void,
        output: *mut RtEvent,
        output_cap: usize,
        output_len: *mut usize,
    ) -> Status,
    /// Drops the state. Never on the engine thread.
    pub drop: unsafe extern "C" fn(state: *mut c_void),
    /// Audio channels the part writes (0 = MIDI only, at most
    /// [`MAX_AUDIO_CHANNELS`]).
    pub audio_channels: u32,
}
}

impl RtInstance {
    /// No RT part: what the host hands to `thaw` to be filled in. Its
    /// `state` stays null when the imp has no RT part, and its functions do
    /// nothing, so it is safe to call by mistake.
    pub const EMPTY: RtInstance = RtInstance {
        state: core::ptr::null_mut(),
        process: empty_process,
        save_transient: empty_save,
        restore_transient: empty_restore,
        all_notes_off: empty_all_notes_off,
        drop: empty_drop,
        audio_channels: 0,
    };
}

unsafe extern "C" fn empty_process(
    _: *mut c_void,
    _: *const BlockContext,
    _: *const RtEvent,
    _: usize,
    _: *mut RtEvent,
    _: usize,
    n: *mut usize,
) -> Status {
    // SAFETY: `n` is a valid out pointer, as for every `process`.
    unsafe { *n = 0 };
    STATUS_OK
}

unsafe extern "C" fn empty_save(_: *mut c_void, _: *mut u8) -> Status {
    STATUS_OK
}

unsafe extern "C" fn empty_restore(_: *mut c_void, _: *const u8) -> Status {
    STATUS_OK
}

unsafe extern "C" fn empty_all_notes_off(
    _: *mut c_void,
    _: *mut RtEvent,
    _: usize,
    n: *mut usize,
) -> Status {
    // SAFETY: `n` is a valid out pointer, as for every `all_notes_off`.
    unsafe { *n = 0 };
    STATUS_OK
}

unsafe extern "C" fn empty_drop(_: *mut c_void) {}

boundary! { LIBRARY_TABLE_SHAPE;
/// The entry table a library exports through [`ENTRY_SYMBOL`].
#[repr(C)]
pub struct LibraryTable {
    /// The library's [`ABI_VERSION`].
    pub abi_version: u32,
    /// The library's [`layout_fingerprint`].
    pub fingerprint: u64,
    /// The library (crate) name.
    pub name: StrRef,
    /// A build id that changes with every build.
    pub build_id: StrRef,
    /// The version of the imp's vault data format.
    pub vault_version: u32,
    /// Called once after loading: installs the host allocator and logger.
    pub init: unsafe extern "C" fn(host: *const HostTable) -> Status,
    /// Old code, after all its imps were frozen: returns a token for the new code.
    pub on_before_load: unsafe extern "C" fn(token: *mut ImpBytes, err: *mut ImpBytes) -> Status,
    /// New code, before any imp is created; `token.present == 0` on first load.
    pub on_after_load: unsafe extern "C" fn(token: BytesRef, err: *mut ImpBytes) -> Status,
    /// Creates an imp, frozen. `frozen` is absent except during a respawn.
    pub create: unsafe extern "C" fn(
        name: BytesRef,
        config: BytesRef,
        frozen: BytesRef,
        handle: *mut *mut c_void,
        err: *mut ImpBytes,
    ) -> Status,
    /// Drops a frozen imp.
    pub destroy: unsafe extern "C" fn(handle: *mut c_void) -> Status,
    /// Acquires resources; fills `rt` (state may stay null: no RT part).
    pub thaw: unsafe extern "C" fn(
        handle: *mut c_void,
        rt: *mut RtInstance,
        err: *mut ImpBytes,
    ) -> Status,
    /// Releases resources and returns the frozen state (JSON).
    pub freeze: unsafe extern "C" fn(
        handle: *mut c_void,
        state: *mut ImpBytes,
        err: *mut ImpBytes,
    ) -> Status,
    /// Returns the imp's vault data (JSON; empty = nothing to persist).
    pub get_vault_data: unsafe extern "C" fn(
        handle: *mut c_void,
        data: *mut ImpBytes,
        err: *mut ImpBytes,
    ) -> Status,
    /// Restores vault data saved with format `version`.
    pub set_vault_data: unsafe extern "C" fn(
        handle: *mut c_void,
        data: BytesRef,
        version: u32,
        err: *mut ImpBytes,
    ) -> Status,
    /// A control message (JSON) and its reply (JSON).
    pub control: unsafe extern "C" fn(
        handle: *mut c_void,
        message: BytesRef,
        reply: *mut ImpBytes,
        err: *mut ImpBytes,
    ) -> Status,
    /// Periodic housekeeping on the control thread; returns a status (JSON).
    pub poll: unsafe extern "C" fn(
        handle: *mut c_void,
        status: *mut ImpBytes,
        err: *mut ImpBytes,
    ) -> Status,
    /// Frees bytes this library allocated.
    pub free_bytes: unsafe extern "C" fn(bytes: ImpBytes),
}
}

// SAFETY: the table holds only function pointers and 'static text.
unsafe impl Sync for LibraryTable {}

const fn fnv(mut hash: u64, value: u64) -> u64 {
    let bytes = value.to_le_bytes();
    let mut i = 0;
    while i < 8 {
        hash ^= bytes[i] as u64;
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
        i += 1;
    }
    hash
}

/// Hashes `text` into `hash`, leaving out whitespace and `#[doc = ...]`
/// attributes (doc comments), so that only the shape of the code counts.
pub const fn shape_hash(mut hash: u64, text: &str) -> u64 {
    let b = text.as_bytes();
    let n = b.len();
    let mut i = 0;
    while i < n {
        let c = b[i];
        if c == b'#' {
            // `#[doc = <string>]`, with any whitespace between the tokens.
            let mut j = i + 1;
            while j < n && b[j].is_ascii_whitespace() {
                j += 1;
            }
            if j < n && b[j] == b'[' {
                j += 1;
                while j < n && b[j].is_ascii_whitespace() {
                    j += 1;
                }
                if j + 3 <= n && b[j] == b'd' && b[j + 1] == b'o' && b[j + 2] == b'c' {
                    i = skip_doc_attribute(b, j + 3);
                    continue;
                }
            }
        }
        if !c.is_ascii_whitespace() {
            hash ^= c as u64;
            hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
        }
        i += 1;
    }
    hash
}

/// From inside `#[doc`, the index just past the attribute's `]`; string
/// literals (plain or raw) are skipped whole, whatever they contain.
const fn skip_doc_attribute(b: &[u8], mut i: usize) -> usize {
    let n = b.len();
    while i < n {
        match b[i] {
            b']' => return i + 1,
            b'"' => {
                i += 1;
                while i < n && b[i] != b'"' {
                    if b[i] == b'\\' {
                        i += 1;
                    }
                    i += 1;
                }
                i += 1;
            }
            b'r' if i + 1 < n && (b[i + 1] == b'"' || b[i + 1] == b'#') => {
                let mut hashes = 0;
                i += 1;
                while i < n && b[i] == b'#' {
                    hashes += 1;
                    i += 1;
                }
                i += 1; // the opening quote
                loop {
                    if i >= n {
                        return n;
                    }
                    if b[i] == b'"' {
                        let mut k = 0;
                        while k < hashes && i + 1 + k < n && b[i + 1 + k] == b'#' {
                            k += 1;
                        }
                        if k == hashes {
                            i += 1 + hashes;
                            break;
                        }
                    }
                    i += 1;
                }
            }
            _ => i += 1,
        }
    }
    n
}

/// Source text of every boundary type, in a fixed order.
const SHAPES: [&str; 10] = [
    STATUS_SHAPE,
    BYTES_REF_SHAPE,
    IMP_BYTES_SHAPE,
    STR_REF_SHAPE,
    RT_EVENT_SHAPE,
    BLOCK_CONTEXT_SHAPE,
    HOST_TABLE_SHAPE,
    RT_INSTANCE_SHAPE,
    LIBRARY_TABLE_SHAPE,
    ENTRY_FN_SHAPE,
];

/// A hash of every boundary type: its source (every field's name and type
/// and every function pointer's full signature, in order; see
/// [`shape_hash`]) and its size, alignment and field offsets on this
/// target. Host and library must agree on it; a change in any `#[repr(C)]`
/// type here changes it, even when someone forgot to bump [`ABI_VERSION`].
pub const fn layout_fingerprint() -> u64 {
    let mut hash = layout_hash();
    let mut i = 0;
    while i < SHAPES.len() {
        hash = shape_hash(hash, SHAPES[i]);
        i += 1;
    }
    hash
}

/// The size, alignment and offsets part of [`layout_fingerprint`].
const fn layout_hash() -> u64 {
    let items: [usize; 63] = [
        size_of::<BytesRef>(),
        align_of::<BytesRef>(),
        offset_of!(BytesRef, present),
        size_of::<ImpBytes>(),
        offset_of!(ImpBytes, cap),
        size_of::<StrRef>(),
        size_of::<RtEvent>(),
        align_of::<RtEvent>(),
        offset_of!(RtEvent, frame),
        offset_of!(RtEvent, port),
        offset_of!(RtEvent, kind),
        offset_of!(RtEvent, len),
        offset_of!(RtEvent, bytes),
        offset_of!(RtEvent, value),
        offset_of!(RtEvent, data_offset),
        offset_of!(RtEvent, data_len),
        size_of::<BlockContext>(),
        offset_of!(BlockContext, sample_position),
        offset_of!(BlockContext, sample_rate),
        offset_of!(BlockContext, tempo_bpm),
        offset_of!(BlockContext, frames),
        offset_of!(BlockContext, audio),
        offset_of!(BlockContext, audio_channels),
        offset_of!(BlockContext, beat_position),
        offset_of!(BlockContext, playing),
        offset_of!(BlockContext, long_in),
        offset_of!(BlockContext, long_in_len),
        offset_of!(BlockContext, long_out),
        offset_of!(BlockContext, long_out_cap),
        offset_of!(BlockContext, long_dropped),
        size_of::<HostTable>(),
        offset_of!(HostTable, alloc),
        offset_of!(HostTable, log),
        offset_of!(HostTable, port_open),
        offset_of!(HostTable, port_alive),
        offset_of!(HostTable, sample_rate),
        offset_of!(HostTable, send),
        offset_of!(HostTable, rt_send),
        offset_of!(HostTable, subscribe),
        offset_of!(HostTable, publish),
        RT_MAIL_NAME_BYTES,
        RT_MAIL_BYTES,
        size_of::<RtInstance>(),
        offset_of!(RtInstance, process),
        offset_of!(RtInstance, save_transient),
        offset_of!(RtInstance, restore_transient),
        offset_of!(RtInstance, all_notes_off),
        offset_of!(RtInstance, drop),
        offset_of!(RtInstance, audio_channels),
        MAX_AUDIO_CHANNELS as usize,
        size_of::<LibraryTable>(),
        offset_of!(LibraryTable, name),
        offset_of!(LibraryTable, build_id),
        offset_of!(LibraryTable, vault_version),
        offset_of!(LibraryTable, init),
        offset_of!(LibraryTable, create),
        offset_of!(LibraryTable, thaw),
        offset_of!(LibraryTable, freeze),
        offset_of!(LibraryTable, set_vault_data),
        offset_of!(LibraryTable, control),
        offset_of!(LibraryTable, poll),
        offset_of!(LibraryTable, free_bytes),
        TRANSIENT_BYTES,
    ];
    let mut hash = 0xcbf2_9ce4_8422_2325;
    let mut i = 0;
    while i < items.len() {
        hash = fnv(hash, items[i] as u64);
        i += 1;
    }
    hash
}

boundary! { ENTRY_FN_SHAPE;
/// Signature of the entry symbol.
pub type EntryFn = unsafe extern "C" fn() -> *const LibraryTable;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fingerprint_with(shapes: &[String]) -> u64 {
        let mut hash = layout_hash();
        for s in shapes {
            hash = shape_hash(hash, s);
        }
        hash
    }

    /// The shapes without whitespace (which [`shape_hash`] skips anyway).
    fn shapes() -> Vec<String> {
        SHAPES
            .iter()
            .map(|s| s.chars().filter(|c| !c.is_whitespace()).collect())
            .collect()
    }

    #[test]
    fn the_fingerprint_is_the_hash_of_the_shapes() {
        assert_eq!(fingerprint_with(&shapes()), layout_fingerprint());
    }

    #[test]
    fn doc_comments_and_whitespace_do_not_count() {
        let a = shape_hash(
            0,
            "#[doc = r\" one ]\"] #[doc = r#\" \"two\" \"#] pub a: u32,",
        );
        let b = shape_hash(0, "pub a :\n    u32 ,");
        assert_eq!(a, b);
        assert_ne!(shape_hash(0, "pub a: u32,"), shape_hash(0, "pub a: u64,"));
    }

    #[test]
    fn swapping_two_function_pointers_of_the_same_size_changes_it() {
        // `freeze` and `get_vault_data` have the same signature; swapping
        // their places keeps every size and offset.
        let mut swapped = shapes();
        let table = swapped
            .iter_mut()
            .find(|s| s.contains("pubstructLibraryTable"))
            .unwrap();
        assert!(table.contains("pubfreeze:") && table.contains("pubget_vault_data:"));
        *table = table
            .replace("pubfreeze:", "pub@@:")
            .replace("pubget_vault_data:", "pubfreeze:")
            .replace("pub@@:", "pubget_vault_data:");
        assert_ne!(fingerprint_with(&swapped), layout_fingerprint());

        // A parameter's type changed, same size (`*const` to `*mut`).
        let mut changed = shapes();
        let table = changed
            .iter_mut()
            .find(|s| s.contains("pubstructLibraryTable"))
            .unwrap();
        assert!(table.contains("*constHostTable"));
        *table = table.replacen("*constHostTable", "*mutHostTable", 1);
        assert_ne!(fingerprint_with(&changed), layout_fingerprint());
    }

    #[test]
    fn every_field_of_the_entry_table_is_in_its_shape() {
        for field in [
            "abi_version",
            "fingerprint",
            "name",
            "build_id",
            "vault_version",
            "init",
            "on_before_load",
            "on_after_load",
            "create",
            "destroy",
            "thaw",
            "freeze",
            "get_vault_data",
            "set_vault_data",
            "control",
            "poll",
            "free_bytes",
        ] {
            let shape: String = LIBRARY_TABLE_SHAPE
                .chars()
                .filter(|c| !c.is_whitespace())
                .collect();
            assert!(shape.contains(&format!("pub{field}:")), "{field}");
        }
    }
}
