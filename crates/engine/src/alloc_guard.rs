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
static IN_PANICS: AtomicU64 = AtomicU64::new(0);
static TRACE: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Prints a backtrace of every allocation on the engine thread to stderr
/// (a debugging aid: the daemon turns it on with
/// `IMPRESARIO_ALLOC_BACKTRACE=1`). Printing allocates, so only for finding
/// where a violation comes from.
pub fn trace_violations(on: bool) {
    TRACE.store(on, Ordering::Relaxed);
}

/// The system allocator plus the guard. Compatible with `System`, as the
/// imp boundary requires.
pub struct GuardedAllocator;

#[inline]
fn check() {
    if IN_RT.with(|f| f.get()) {
        VIOLATIONS.fetch_add(1, Ordering::Relaxed);
        THREAD_VIOLATIONS.with(|v| v.set(v.get() + 1));
        if TRACE.load(Ordering::Relaxed) {
            // Leave the section while printing (which allocates itself).
            IN_RT.with(|f| f.set(false));
            eprintln!(
                "allocation on the engine thread:\n{}",
                std::backtrace::Backtrace::force_capture()
            );
            IN_RT.with(|f| f.set(true));
        }
    }
}

// SAFETY: every call forwards to `System`; the check only reads a
// thread-local flag and bumps an atomic.
unsafe impl GlobalAlloc for GuardedAllocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        check();
        // SAFETY: the caller's contract, passed on unchanged.
        unsafe { System.alloc(layout) }
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        check();
        // SAFETY: the caller's contract, passed on unchanged.
        unsafe { System.alloc_zeroed(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        check();
        // SAFETY: the caller's contract, passed on unchanged.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        check();
        // SAFETY: the caller's contract, passed on unchanged.
        unsafe { System.realloc(ptr, layout, new_size) }
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

/// Allocations and frees seen inside [`rt_section`] so far, process-wide,
/// except those of a panic's unwinding (see [`in_panics`]). Only
/// meaningful when [`GuardedAllocator`] is the global allocator.
pub fn violations() -> u64 {
    VIOLATIONS.load(Ordering::Relaxed)
}

/// Allocations made on the engine thread while an imp panicked there: Rust
/// boxes a panic's payload and unwinding frees it. A panicking imp is a
/// fault that stops it for good, so these are counted apart from
/// [`violations`], which stays the measure of the healthy path.
pub fn in_panics() -> u64 {
    IN_PANICS.load(Ordering::Relaxed)
}

/// Runs `f`, an RT call into an imp; when `panicked(&result)` says it
/// panicked, the allocations it made move from [`violations`] to
/// [`in_panics`]. Allocation-free itself.
#[inline]
pub fn excuse_panic<R>(f: impl FnOnce() -> R, panicked: impl FnOnce(&R) -> bool) -> R {
    let before = thread_violations();
    let r = f();
    if panicked(&r) {
        let n = thread_violations() - before;
        if n > 0 {
            VIOLATIONS.fetch_sub(n, Ordering::Relaxed);
            IN_PANICS.fetch_add(n, Ordering::Relaxed);
            THREAD_VIOLATIONS.with(|v| v.set(v.get() - n));
        }
    }
    r
}
