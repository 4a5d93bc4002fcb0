//! The table of host functions every library gets at `init`: allocation
//! through the host's global allocator (so the engine's allocation guard
//! sees imps too) and logging into the host's `tracing` subscriber, tagged
//! with the imp being called.
//!
//! Every `unsafe extern "C"` function here is called by an imp library
//! through the table, with what the ABI (`imp::abi::HostTable`) promises:
//! pointers valid for the call, buffers as long as stated, and the layouts
//! of memory the library got from this same allocator.

use crate::ports::PortError;
use imp::abi::{BytesRef, HostTable, ABI_VERSION, MAIL_INVALID, PORT_INVALID, PORT_NOT_READY};
use imp::ports::PortSpec;
use std::alloc::Layout;
use std::cell::{Cell, RefCell};

thread_local! {
    static CURRENT_IMP: RefCell<String> = const { RefCell::new(String::new()) };
    static CURRENT_SLOT: Cell<Option<usize>> = const { Cell::new(None) };
}

/// Runs `f` with `name` (engine slot `slot`) as the imp that log lines and
/// port requests from this thread belong to.
pub(crate) fn with_current_imp<R>(name: &str, slot: Option<usize>, f: impl FnOnce() -> R) -> R {
    let previous = CURRENT_IMP.with(|c| std::mem::replace(&mut *c.borrow_mut(), name.to_string()));
    let previous_slot = CURRENT_SLOT.with(|c| c.replace(slot));
    let r = f();
    CURRENT_IMP.with(|c| *c.borrow_mut() = previous);
    CURRENT_SLOT.with(|c| c.set(previous_slot));
    r
}

unsafe extern "C" fn host_port_open(
    spec: BytesRef,
    err_buf: *mut u8,
    err_cap: usize,
    err_len: *mut usize,
) -> i64 {
    let fail = |code: i64, text: &str| {
        let n = text.len().min(err_cap);
        // SAFETY: the library owns `err_cap` bytes at `err_buf` and an out
        // pointer at `err_len` for the call; at most `err_cap` are written.
        unsafe {
            std::ptr::copy_nonoverlapping(text.as_ptr(), err_buf, n);
            *err_len = n;
        }
        code
    };
    // SAFETY: the spec bytes are valid for the call.
    let spec = unsafe { spec.as_option() };
    let spec: PortSpec = match serde_json::from_slice(spec.unwrap_or_default()) {
        Ok(s) => s,
        Err(e) => return fail(PORT_INVALID, &format!("invalid port spec: {e}")),
    };
    let Some(slot) = CURRENT_SLOT.with(|c| c.get()) else {
        return fail(
            PORT_INVALID,
            "ports can only be opened while the realm thaws the imp",
        );
    };
    let imp = CURRENT_IMP.with(|c| c.borrow().clone());
    match crate::ports::open(slot, &imp, &spec) {
        Ok(id) => id as i64,
        Err(PortError::NotReady(m)) => fail(PORT_NOT_READY, &m),
        Err(PortError::Invalid(m)) => fail(PORT_INVALID, &m),
    }
}

unsafe extern "C" fn host_port_close(id: i64) {
    if let Ok(id) = u64::try_from(id) {
        crate::ports::close(id);
    }
}

unsafe extern "C" fn host_port_alive(id: i64) -> u8 {
    u64::try_from(id).is_ok_and(crate::ports::alive) as u8
}

/// The engine's sample rate as the imps see it (f64 bits).
static SAMPLE_RATE: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// Tells the imps created from now on the engine's sample rate. Call
/// before the realm creates its imps.
pub fn set_sample_rate(rate: f64) {
    SAMPLE_RATE.store(rate.to_bits(), std::sync::atomic::Ordering::Relaxed);
}

unsafe extern "C" fn host_sample_rate() -> f64 {
    match f64::from_bits(SAMPLE_RATE.load(std::sync::atomic::Ordering::Relaxed)) {
        r if r > 0.0 => r,
        _ => 48_000.0,
    }
}

// The four allocation functions: size and alignment come from a `Layout`
// inside the library's `HostAllocator`, so they are a valid layout, and a
// pointer given back was allocated here with the same layout.

unsafe extern "C" fn host_alloc(size: usize, align: usize) -> *mut u8 {
    // SAFETY: a valid layout (see above).
    unsafe { std::alloc::alloc(Layout::from_size_align_unchecked(size, align)) }
}

unsafe extern "C" fn host_alloc_zeroed(size: usize, align: usize) -> *mut u8 {
    // SAFETY: a valid layout (see above).
    unsafe { std::alloc::alloc_zeroed(Layout::from_size_align_unchecked(size, align)) }
}

unsafe extern "C" fn host_dealloc(ptr: *mut u8, size: usize, align: usize) {
    // SAFETY: `ptr` was allocated here with this layout (see above).
    unsafe { std::alloc::dealloc(ptr, Layout::from_size_align_unchecked(size, align)) }
}

unsafe extern "C" fn host_realloc(
    ptr: *mut u8,
    size: usize,
    align: usize,
    new_size: usize,
) -> *mut u8 {
    // SAFETY: `ptr` was allocated here with this layout (see above).
    unsafe {
        std::alloc::realloc(
            ptr,
            Layout::from_size_align_unchecked(size, align),
            new_size,
        )
    }
}

unsafe extern "C" fn host_log(level: u8, target: BytesRef, message: BytesRef) {
    // SAFETY: both are valid for the call.
    let (target, message) = unsafe { (target.as_option(), message.as_option()) };
    let target = String::from_utf8_lossy(target.unwrap_or_default());
    let message = String::from_utf8_lossy(message.unwrap_or_default());
    let imp = CURRENT_IMP.with(|c| c.borrow().clone());
    let imp = if imp.is_empty() {
        target.split("::").next().unwrap_or("imp").to_string()
    } else {
        imp
    };
    match level {
        1 => tracing::error!(target: "imp", imp = %imp, "{message}"),
        2 => tracing::warn!(target: "imp", imp = %imp, "{message}"),
        3 => tracing::info!(target: "imp", imp = %imp, "{message}"),
        4 => tracing::debug!(target: "imp", imp = %imp, "{message}"),
        _ => tracing::trace!(target: "imp", imp = %imp, "{message}"),
    }
}

/// Reads a name (UTF-8) passed by an imp.
///
/// # Safety
/// The bytes must be valid for the call.
unsafe fn name_of<'a>(b: BytesRef) -> Option<&'a str> {
    // SAFETY: the caller promises valid bytes.
    std::str::from_utf8(unsafe { b.as_option() }?).ok()
}

unsafe extern "C" fn host_send(from: BytesRef, to: BytesRef, message: BytesRef) -> u32 {
    // SAFETY: all three are valid for the call (ABI contract).
    let (from, to, message) = unsafe { (name_of(from), name_of(to), message.as_option()) };
    let (Some(from), Some(to), Some(message)) = (from, to, message) else {
        return MAIL_INVALID;
    };
    match serde_json::from_slice(message) {
        Ok(message) => crate::mail::post(from, to, message),
        Err(_) => MAIL_INVALID,
    }
}

unsafe extern "C" fn host_rt_send(from: BytesRef, to: BytesRef, message: BytesRef) -> u32 {
    // SAFETY: all three are valid for the call (ABI contract).
    let (Some(from), Some(to), Some(message)) =
        (unsafe { (from.as_option(), to.as_option(), message.as_option()) })
    else {
        return MAIL_INVALID;
    };
    crate::mail::rt_post(from, to, message)
}

unsafe extern "C" fn host_subscribe(subscriber: BytesRef, publisher: BytesRef, on: u8) -> u32 {
    // SAFETY: both are valid for the call (ABI contract).
    let (Some(subscriber), Some(publisher)) =
        (unsafe { (name_of(subscriber), name_of(publisher)) })
    else {
        return MAIL_INVALID;
    };
    crate::mail::subscribe(subscriber, publisher, on != 0)
}

unsafe extern "C" fn host_publish(from: BytesRef, state: BytesRef) -> u32 {
    // SAFETY: both are valid for the call (ABI contract).
    let (Some(from), Some(state)) = (unsafe { (name_of(from), state.as_option()) }) else {
        return MAIL_INVALID;
    };
    match serde_json::from_slice(state) {
        Ok(state) => crate::mail::publish(from, state),
        Err(_) => MAIL_INVALID,
    }
}

/// The one host table; lives for the whole process, as the ABI requires.
pub(crate) static HOST_TABLE: HostTable = HostTable {
    abi_version: ABI_VERSION,
    alloc: host_alloc,
    alloc_zeroed: host_alloc_zeroed,
    dealloc: host_dealloc,
    realloc: host_realloc,
    log: host_log,
    port_open: host_port_open,
    port_close: host_port_close,
    port_alive: host_port_alive,
    sample_rate: host_sample_rate,
    send: host_send,
    rt_send: host_rt_send,
    subscribe: host_subscribe,
    publish: host_publish,
};
