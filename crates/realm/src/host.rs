//! The table of host functions every library gets at `init`: allocation
//! through the host's global allocator (so the engine's allocation guard
//! sees imps too) and logging into the host's `tracing` subscriber, tagged
//! with the imp being called.

use imp::abi::{BytesRef, HostTable, ABI_VERSION};
use std::alloc::Layout;
use std::cell::RefCell;

thread_local! {
    static CURRENT_IMP: RefCell<String> = const { RefCell::new(String::new()) };
}

/// Runs `f` with `name` as the imp that log lines from this thread belong to.
pub(crate) fn with_current_imp<R>(name: &str, f: impl FnOnce() -> R) -> R {
    let previous = CURRENT_IMP.with(|c| std::mem::replace(&mut *c.borrow_mut(), name.to_string()));
    let r = f();
    CURRENT_IMP.with(|c| *c.borrow_mut() = previous);
    r
}

unsafe extern "C" fn host_alloc(size: usize, align: usize) -> *mut u8 {
    std::alloc::alloc(Layout::from_size_align_unchecked(size, align))
}

unsafe extern "C" fn host_alloc_zeroed(size: usize, align: usize) -> *mut u8 {
    std::alloc::alloc_zeroed(Layout::from_size_align_unchecked(size, align))
}

unsafe extern "C" fn host_dealloc(ptr: *mut u8, size: usize, align: usize) {
    std::alloc::dealloc(ptr, Layout::from_size_align_unchecked(size, align))
}

unsafe extern "C" fn host_realloc(
    ptr: *mut u8,
    size: usize,
    align: usize,
    new_size: usize,
) -> *mut u8 {
    std::alloc::realloc(
        ptr,
        Layout::from_size_align_unchecked(size, align),
        new_size,
    )
}

unsafe extern "C" fn host_log(level: u8, target: BytesRef, message: BytesRef) {
    let target = String::from_utf8_lossy(target.as_option().unwrap_or_default());
    let message = String::from_utf8_lossy(message.as_option().unwrap_or_default());
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

/// The one host table; lives for the whole process, as the ABI requires.
pub(crate) static HOST_TABLE: HostTable = HostTable {
    abi_version: ABI_VERSION,
    alloc: host_alloc,
    alloc_zeroed: host_alloc_zeroed,
    dealloc: host_dealloc,
    realloc: host_realloc,
    log: host_log,
};
