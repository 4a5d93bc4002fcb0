//! The allocation guard: a global allocator that counts allocations made
//! while the current thread is inside an engine cycle.
//!
//! The host binary installs [`GuardedAllocator`] as its `#[global_allocator]`.
//! Imp libraries forward their allocations to the host (see
//! `imp::HostAllocator`), so the guard sees allocations made inside imps too.
//! The engine wraps every cycle in [`rt_section`]; an allocation or free
//! inside it is counted in [`violations`] (shown by `impresario status`),
//! and tests assert the count stays zero.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::sync::atomic::{AtomicU64, Ordering};

thread_local! {
    // Const-initialised and without a destructor, so it is safe to touch
    // from inside the allocator.
    static IN_RT: Cell<bool> = const { Cell::new(false) };
    static THREAD_VIOLATIONS: Cell<u64> = const { Cell::new(0) };
}

static VIOLATIONS: AtomicU64 = AtomicU64::new(0);

/// The system allocator plus the guard. Compatible with `System`, as the
/// imp boundary requires.
pub struct GuardedAllocator;

#[inline]
fn check() {
    if IN_RT.with(|f| f.get()) {
        VIOLATIONS.fetch_add(1, Ordering::Relaxed);
        THREAD_VIOLATIONS.with(|v| v.set(v.get() + 1));
    }
}

// SAFETY: every call forwards to `System`; the check only reads a
// thread-local flag and bumps an atomic.
unsafe impl GlobalAlloc for GuardedAllocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        check();
        System.alloc(layout)
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        check();
        System.alloc_zeroed(layout)
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        check();
        System.dealloc(ptr, layout)
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        check();
        System.realloc(ptr, layout, new_size)
    }
}

/// Runs `f` as real-time code: allocations inside are counted.
#[inline]
pub fn rt_section<R>(f: impl FnOnce() -> R) -> R {
    let was = IN_RT.with(|flag| flag.replace(true));
    let r = f();
    IN_RT.with(|flag| flag.set(was));
    r
}

/// Allocations and frees seen inside [`rt_section`] on the calling thread
/// so far (a manual-clock test runs its cycles on its own thread, so other
/// tests running at the same time do not disturb the count).
pub fn thread_violations() -> u64 {
    THREAD_VIOLATIONS.with(|v| v.get())
}

/// Allocations and frees seen inside [`rt_section`] so far, process-wide.
/// Only meaningful when [`GuardedAllocator`] is the global allocator.
pub fn violations() -> u64 {
    VIOLATIONS.load(Ordering::Relaxed)
}
