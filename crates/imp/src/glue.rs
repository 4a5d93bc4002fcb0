//! The `extern "C"` functions behind the entry table, generic over the
//! imp's type. `imp::export!` instantiates them; imp authors never call them.
//!
//! Every function catches panics: a panic never unwinds into the host.
//!
//! Soundness rests on the ABI contract (`abi.rs`), which the host keeps:
//! every pointer is valid for the call, buffers are as long as stated,
//! `handle`s come from `create::<T>` of this library and `state`s from its
//! `thaw`, each used by one thread at a time, and bytes this library hands
//! out come back only through `free_bytes`.

use crate::abi::*;
use crate::error::{panic_text, ErrorKind, ImpError};
use crate::traits::{CreateContext, EventWriter, Imp, RtPart};
use core::ffi::c_void;
use serde_json::Value;
use std::panic::{catch_unwind, AssertUnwindSafe};

fn give(out: *mut ImpBytes, bytes: Vec<u8>) {
    if out.is_null() {
        return;
    }
    let mut bytes = std::mem::ManuallyDrop::new(bytes);
    // SAFETY: the host passes a valid out pointer; it frees through free_bytes.
    unsafe {
        *out = ImpBytes {
            ptr: bytes.as_mut_ptr(),
            len: bytes.len(),
            cap: bytes.capacity(),
        }
    };
}

/// Runs `f`, turning errors and panics into a status and an error message.
fn guard(err: *mut ImpBytes, f: impl FnOnce() -> Result<(), ImpError>) -> Status {
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(Ok(())) => STATUS_OK,
        Ok(Err(e)) => {
            give(err, e.message().as_bytes().to_vec());
            if e.kind() == ErrorKind::NotReady {
                STATUS_NOT_READY
            } else {
                STATUS_ERROR
            }
        }
        Err(payload) => {
            // Building the message may allocate; this is a failure path.
            give(err, panic_text(payload.as_ref()).into_bytes());
            STATUS_PANICKED
        }
    }
}

fn json_in(bytes: BytesRef, what: &str) -> Result<Option<Value>, ImpError> {
    // SAFETY: the host guarantees validity for the call.
    match unsafe { bytes.as_option() } {
        None => Ok(None),
        Some(b) => serde_json::from_slice(b)
            .map(Some)
            .map_err(|e| ImpError::invalid(format!("{what} is not valid JSON: {e}"))),
    }
}

fn json_out<S: serde::Serialize>(out: *mut ImpBytes, value: &S) -> Result<(), ImpError> {
    let bytes =
        serde_json::to_vec(value).map_err(|e| ImpError::new(ErrorKind::Other, e.to_string()))?;
    give(out, bytes);
    Ok(())
}

/// # Safety
/// `handle` must come from `create::<T>`, and nothing else may use it for
/// the lifetime `'a`.
unsafe fn imp_mut<'a, T>(handle: *mut c_void) -> &'a mut T {
    // SAFETY: `create::<T>` made `handle` from a `Box<T>`; the caller owns it now.
    unsafe { &mut *(handle as *mut T) }
}

unsafe extern "C" fn init(host: *const HostTable) -> Status {
    guard(std::ptr::null_mut(), || {
        crate::host::install(host);
        crate::log::install();
        Ok(())
    })
}

unsafe extern "C" fn on_before_load<T: Imp>(token: *mut ImpBytes, err: *mut ImpBytes) -> Status {
    guard(err, || match T::on_before_load() {
        Some(v) => json_out(token, &v),
        None => Ok(()),
    })
}

unsafe extern "C" fn on_after_load<T: Imp>(token: BytesRef, err: *mut ImpBytes) -> Status {
    guard(err, || {
        T::on_after_load(json_in(token, "the library token")?)
    })
}

unsafe extern "C" fn create<T: Imp>(
    name: BytesRef,
    config: BytesRef,
    frozen: BytesRef,
    handle: *mut *mut c_void,
    err: *mut ImpBytes,
) -> Status {
    guard(err, || {
        // SAFETY: the name is valid for the call (ABI contract).
        let name = unsafe { name.as_option() };
        let name = String::from_utf8_lossy(name.unwrap_or_default()).into_owned();
        let config =
            json_in(config, "the config")?.unwrap_or_else(|| Value::Object(Default::default()));
        let config: T::Config = serde_json::from_value(config)
            .map_err(|e| ImpError::invalid(format!("invalid config: {e}")))?;
        let frozen = match json_in(frozen, "the frozen state")? {
            Some(v) => Some(serde_json::from_value(v).map_err(|e| {
                ImpError::invalid(format!(
                    "frozen state from the previous build does not fit: {e}"
                ))
            })?),
            None => None,
        };
        let sample_rate = crate::host::host()
            // SAFETY: a function of the host's table, which lives as long as the process.
            .map(|h| unsafe { (h.sample_rate)() })
            .unwrap_or(48_000.0);
        let imp = T::create(&CreateContext::new(name, sample_rate), config, frozen)?;
        // SAFETY: `handle` is a valid out pointer (ABI contract).
        unsafe { *handle = Box::into_raw(Box::new(imp)) as *mut c_void };
        Ok(())
    })
}

unsafe extern "C" fn destroy<T: Imp>(handle: *mut c_void) -> Status {
    guard(std::ptr::null_mut(), || {
        // SAFETY: `handle` came from `create::<T>` and is destroyed once.
        drop(unsafe { Box::from_raw(handle as *mut T) });
        Ok(())
    })
}

unsafe extern "C" fn thaw<T: Imp>(
    handle: *mut c_void,
    rt: *mut RtInstance,
    err: *mut ImpBytes,
) -> Status {
    guard(err, || {
        // SAFETY: a handle from `create::<T>` (ABI contract).
        let part = unsafe { imp_mut::<T>(handle) }.thaw()?;
        if let Some(part) = part {
            // SAFETY: `rt` is a valid out pointer (ABI contract).
            unsafe { *rt = rt_instance::<T::Rt>(Box::new(part)) };
        }
        Ok(())
    })
}

unsafe extern "C" fn freeze<T: Imp>(
    handle: *mut c_void,
    state: *mut ImpBytes,
    err: *mut ImpBytes,
) -> Status {
    guard(err, || {
        // SAFETY: a handle from `create::<T>` (ABI contract).
        let frozen = unsafe { imp_mut::<T>(handle) }.freeze();
        json_out(state, &frozen)
    })
}

unsafe extern "C" fn get_vault_data<T: Imp>(
    handle: *mut c_void,
    data: *mut ImpBytes,
    err: *mut ImpBytes,
) -> Status {
    guard(err, || {
        // SAFETY: a handle from `create::<T>` (ABI contract).
        let imp = unsafe { imp_mut::<T>(handle) };
        match imp.get_vault_data() {
            Some(v) => json_out(data, &v),
            None => Ok(()),
        }
    })
}

unsafe extern "C" fn set_vault_data<T: Imp>(
    handle: *mut c_void,
    data: BytesRef,
    version: u32,
    err: *mut ImpBytes,
) -> Status {
    guard(err, || {
        let Some(value) = json_in(data, "the vault data")? else {
            return Ok(());
        };
        let value = T::migrate_vault(version, value)?;
        // SAFETY: a handle from `create::<T>` (ABI contract).
        unsafe { imp_mut::<T>(handle) }.set_vault_data(value)
    })
}

unsafe extern "C" fn control<T: Imp>(
    handle: *mut c_void,
    message: BytesRef,
    reply: *mut ImpBytes,
    err: *mut ImpBytes,
) -> Status {
    guard(err, || {
        let message = json_in(message, "the control message")?.unwrap_or(Value::Null);
        // SAFETY: a handle from `create::<T>` (ABI contract).
        let answer = unsafe { imp_mut::<T>(handle) }.control(message)?;
        json_out(reply, &answer)
    })
}

unsafe extern "C" fn poll<T: Imp>(
    handle: *mut c_void,
    status: *mut ImpBytes,
    err: *mut ImpBytes,
) -> Status {
    guard(err, || {
        // SAFETY: a handle from `create::<T>` (ABI contract).
        let value = unsafe { imp_mut::<T>(handle) }.poll()?;
        json_out(status, &value)
    })
}

unsafe extern "C" fn free_bytes(bytes: ImpBytes) {
    if !bytes.ptr.is_null() {
        // SAFETY: `give` made these parts from a Vec of this library's
        // allocator, and they come back once (ABI contract).
        drop(unsafe { Vec::from_raw_parts(bytes.ptr, bytes.len, bytes.cap) });
    }
}

fn rt_instance<R: RtPart>(part: Box<R>) -> RtInstance {
    RtInstance {
        state: Box::into_raw(part) as *mut c_void,
        process: rt_process::<R>,
        save_transient: rt_save::<R>,
        restore_transient: rt_restore::<R>,
        all_notes_off: rt_all_notes_off::<R>,
        drop: rt_drop::<R>,
        audio_channels: R::AUDIO_CHANNELS.min(MAX_AUDIO_CHANNELS),
    }
}

/// Catches a panic on the engine thread without allocating on the good path.
fn rt_guard(f: impl FnOnce()) -> Status {
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(()) => STATUS_OK,
        Err(payload) => {
            // Dropping the payload frees; this is the failure path only.
            drop(payload);
            STATUS_PANICKED
        }
    }
}

unsafe extern "C" fn rt_process<R: RtPart>(
    state: *mut c_void,
    ctx: *const BlockContext,
    input: *const RtEvent,
    input_len: usize,
    output: *mut RtEvent,
    output_cap: usize,
    output_len: *mut usize,
) -> Status {
    rt_guard(|| {
        // SAFETY: the state, the context, the buffers (of the stated
        // lengths) and the out pointer are valid for the call (ABI contract).
        let (part, ctx, input, out) = unsafe {
            (
                &mut *(state as *mut R),
                &*ctx,
                if input_len == 0 {
                    &[][..]
                } else {
                    std::slice::from_raw_parts(input, input_len)
                },
                if output_cap == 0 {
                    &mut [][..]
                } else {
                    std::slice::from_raw_parts_mut(output, output_cap)
                },
            )
        };
        // SAFETY: the context's audio buffers are the engine's, valid for the call.
        let mut writer = unsafe { EventWriter::with_audio(out, ctx) };
        part.process(ctx, input, &mut writer);
        // SAFETY: a valid out pointer (ABI contract).
        unsafe { *output_len = writer.len() };
    })
}

unsafe extern "C" fn rt_save<R: RtPart>(state: *mut c_void, buf: *mut u8) -> Status {
    // SAFETY: the state and a TRANSIENT_BYTES buffer, valid for the call (ABI contract).
    rt_guard(|| unsafe {
        (*(state as *const R)).save_transient(&mut *(buf as *mut [u8; TRANSIENT_BYTES]))
    })
}

unsafe extern "C" fn rt_restore<R: RtPart>(state: *mut c_void, buf: *const u8) -> Status {
    let mut taken = false;
    let status = rt_guard(|| {
        // SAFETY: the state and a TRANSIENT_BYTES buffer, valid for the call (ABI contract).
        taken = unsafe {
            (*(state as *mut R)).restore_transient(&*(buf as *const [u8; TRANSIENT_BYTES]))
        }
    });
    if status == STATUS_OK && !taken {
        STATUS_ERROR
    } else {
        status
    }
}

unsafe extern "C" fn rt_all_notes_off<R: RtPart>(
    state: *mut c_void,
    output: *mut RtEvent,
    output_cap: usize,
    output_len: *mut usize,
) -> Status {
    rt_guard(|| {
        // SAFETY: the state and a buffer of `output_cap` events, valid for
        // the call (ABI contract).
        let (part, out) = unsafe {
            (
                &mut *(state as *mut R),
                if output_cap == 0 {
                    &mut [][..]
                } else {
                    std::slice::from_raw_parts_mut(output, output_cap)
                },
            )
        };
        let mut writer = EventWriter::new(out);
        part.all_notes_off(&mut writer);
        // SAFETY: a valid out pointer (ABI contract).
        unsafe { *output_len = writer.len() };
    })
}

unsafe extern "C" fn rt_drop<R: RtPart>(state: *mut c_void) {
    let _ = catch_unwind(AssertUnwindSafe(|| {
        // SAFETY: the state came from `thaw` (a `Box<R>`) and is dropped once.
        let part = unsafe { Box::from_raw(state as *mut R) };
        drop(part)
    }));
}

/// Builds the entry table for imp type `T`. Used by `imp::export!`.
#[doc(hidden)]
pub const fn table<T: Imp>(
    name: &'static str,
    build_id: &'static str,
    abi_version: u32,
) -> LibraryTable {
    LibraryTable {
        abi_version,
        fingerprint: layout_fingerprint(),
        name: StrRef::new(name),
        build_id: StrRef::new(build_id),
        vault_version: T::VAULT_VERSION,
        init,
        on_before_load: on_before_load::<T>,
        on_after_load: on_after_load::<T>,
        create: create::<T>,
        destroy: destroy::<T>,
        thaw: thaw::<T>,
        freeze: freeze::<T>,
        get_vault_data: get_vault_data::<T>,
        set_vault_data: set_vault_data::<T>,
        control: control::<T>,
        poll: poll::<T>,
        free_bytes,
    }
}
