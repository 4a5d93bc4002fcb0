//! The host, as an imp library sees it: the table of host functions the
//! host hands over at `init` (allocation, logging, ports, the sample rate),
//! and the allocator the export macro installs inside every imp library.
//!
//! A cdylib carries its own `#[global_allocator]`, so the host's allocation
//! guard would not see an allocation made inside an imp. This allocator
//! forwards every allocation to the host's table once `init` has run; before
//! that (static constructors while the library is being loaded) it uses the
//! system allocator, which the host's allocator is required to be
//! compatible with.

use crate::abi::HostTable;
use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicPtr, Ordering};

static HOST: AtomicPtr<HostTable> = AtomicPtr::new(std::ptr::null_mut());

/// Installs the host table (called by the generated `init`).
pub(crate) fn install(host: *const HostTable) {
    HOST.store(host as *mut HostTable, Ordering::Release);
}

/// The host table, once installed.
pub(crate) fn host() -> Option<&'static HostTable> {
    let p = HOST.load(Ordering::Acquire);
    // SAFETY: the host keeps its table alive for the life of the process.
    unsafe { p.as_ref() }
}

/// Global allocator of an imp library: forwards to the host.
pub struct HostAllocator;

// SAFETY: forwards to the host's allocator, or to the system allocator,
// which the host's allocator is compatible with.
unsafe impl GlobalAlloc for HostAllocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: the caller's layout is valid (GlobalAlloc contract); the
        // host's function takes it as size and alignment.
        unsafe {
            match host() {
                Some(h) => (h.alloc)(layout.size(), layout.align()),
                None => System.alloc(layout),
            }
        }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY: as in `alloc`.
        unsafe {
            match host() {
                Some(h) => (h.alloc_zeroed)(layout.size(), layout.align()),
                None => System.alloc_zeroed(layout),
            }
        }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: `ptr` came from this allocator with `layout` (GlobalAlloc
        // contract); the host's allocator and the system's are compatible,
        // so memory allocated before `init` may be freed through the host.
        unsafe {
            match host() {
                Some(h) => (h.dealloc)(ptr, layout.size(), layout.align()),
                None => System.dealloc(ptr, layout),
            }
        }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: as in `dealloc`, with a valid new size (GlobalAlloc contract).
        unsafe {
            match host() {
                Some(h) => (h.realloc)(ptr, layout.size(), layout.align(), new_size),
                None => System.realloc(ptr, layout, new_size),
            }
        }
    }
}
