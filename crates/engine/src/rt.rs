//! An owned RT part of an imp, as the engine holds it.

use imp::abi::{RtInstance, STATUS_ERROR, STATUS_OK};
use imp::{BlockContext, RtEvent, TRANSIENT_BYTES};

/// The engine's owning handle to an RT part that an imp's `thaw` handed
/// over (the imp implements the `imp::RtPart` trait behind it). The engine
/// calls it; it is created and dropped on the control thread (dropping runs
/// imp code that frees memory, which the engine thread must not do).
pub struct OwnedRtPart {
    raw: RtInstance,
}

// SAFETY: OwnedRtPart values are moved between the control and engine threads
// but used by one thread at a time; the imp's RT type is `Send`.
unsafe impl Send for OwnedRtPart {}

/// Outcome of calling into an RT part.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RtCall {
    /// It returned normally.
    Ok,
    /// It declined (restore_transient: the saved state is not understood).
    Declined,
    /// It panicked (the panic was caught inside the library).
    Panicked,
}

impl OwnedRtPart {
    /// Takes ownership of a raw instance from a library.
    ///
    /// # Safety
    /// `raw` must come from a successful `thaw` of a library that stays
    /// loaded for as long as this value exists, and its state must be non-null.
    pub unsafe fn from_raw(raw: RtInstance) -> OwnedRtPart {
        OwnedRtPart { raw }
    }

    /// Audio channels the part writes (0: MIDI only).
    pub fn audio_channels(&self) -> u32 {
        self.raw.audio_channels.min(imp::MAX_AUDIO_CHANNELS)
    }

    fn status(s: u32) -> RtCall {
        match s {
            STATUS_OK => RtCall::Ok,
            STATUS_ERROR => RtCall::Declined,
            _ => RtCall::Panicked,
        }
    }

    /// Processes one block. Engine thread.
    pub fn process(
        &mut self,
        ctx: &BlockContext,
        input: &[RtEvent],
        output: &mut [RtEvent],
    ) -> (RtCall, usize) {
        let mut n = 0usize;
        // SAFETY: pointers are valid for the call; lengths match.
        let s = guarded(|| unsafe {
            (self.raw.process)(
                self.raw.state,
                ctx,
                input.as_ptr(),
                input.len(),
                output.as_mut_ptr(),
                output.len(),
                &mut n,
            )
        });
        (Self::status(s), n.min(output.len()))
    }

    /// Writes transient state for a successor. Engine thread.
    pub fn save_transient(&self, buf: &mut [u8; TRANSIENT_BYTES]) -> RtCall {
        // SAFETY: the buffer has the size the ABI fixes.
        Self::status(guarded(|| unsafe {
            (self.raw.save_transient)(self.raw.state, buf.as_mut_ptr())
        }))
    }

    /// Takes over a predecessor's transient state. Engine thread.
    pub fn restore_transient(&mut self, buf: &[u8; TRANSIENT_BYTES]) -> RtCall {
        // SAFETY: the buffer has the size the ABI fixes.
        Self::status(guarded(|| unsafe {
            (self.raw.restore_transient)(self.raw.state, buf.as_ptr())
        }))
    }

    /// Asks the part to end its notes. Engine thread.
    pub fn all_notes_off(&mut self, output: &mut [RtEvent]) -> (RtCall, usize) {
        let mut n = 0usize;
        // SAFETY: pointers are valid for the call.
        let s = guarded(|| unsafe {
            (self.raw.all_notes_off)(self.raw.state, output.as_mut_ptr(), output.len(), &mut n)
        });
        (Self::status(s), n.min(output.len()))
    }
}

/// Calls into an imp; what a panic in there allocates is counted apart.
fn guarded(call: impl FnOnce() -> u32) -> u32 {
    crate::alloc_guard::excuse_panic(call, |s| *s != STATUS_OK && *s != STATUS_ERROR)
}

impl Drop for OwnedRtPart {
    fn drop(&mut self) {
        // SAFETY: the state came from the library's thaw and is dropped once.
        unsafe { (self.raw.drop)(self.raw.state) }
    }
}
