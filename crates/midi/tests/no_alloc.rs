//! What the engine thread calls never allocates: a counting global allocator
//! watches the calling thread while `Parser::feed` parses a stream with every
//! kind of message, SysEx, garbage and real-time bytes, and while
//! `OutputSender::try_send` pushes into a sender thread's ring (including
//! when the ring is full).
//!
//! One test per file keeps other test threads out of the count.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::sync::atomic::{AtomicUsize, Ordering};

struct Counting;

static ALLOCATIONS: AtomicUsize = AtomicUsize::new(0);

thread_local! {
    static WATCHED: Cell<bool> = const { Cell::new(false) };
}

// SAFETY: every call forwards to the system allocator; the count is a thread-local.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if WATCHED.with(Cell::get) {
            ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        }
        // SAFETY: the caller's contract, passed on unchanged.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: the caller's contract, passed on unchanged.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

#[test]
fn engine_thread_calls_never_allocate() {
    let mut stream = Vec::new();
    for i in 0..2000u32 {
        let b = (i % 128) as u8;
        stream.extend_from_slice(&[0x90, b, 100, b, 0, 0xF8, 0xB1, 7, b, 0xE0, 0, 64]);
        stream.extend_from_slice(&[0xF0, 0x43, b, 0xF8, 1, 2, 0xF7, 0xF2, 1, 2, 0xF6]);
        stream.extend_from_slice(&[b, 0xF4, 0xF9, 0xF7, 0x90, 1, 0xF0, 5, 0x80, 1, 2]);
    }
    let mut parser = midi::Parser::new();
    let (mut msgs, mut sysex_bytes) = (0usize, 0usize);
    WATCHED.with(|w| w.set(true));
    for chunk in stream.chunks(7) {
        parser.feed(chunk, |e| match e {
            midi::Event::Message(m) => msgs += m.len(),
            midi::Event::Sysex(c) => sysex_bytes += c.bytes.len(),
        });
    }
    WATCHED.with(|w| w.set(false));
    assert_eq!(ALLOCATIONS.load(Ordering::Relaxed), 0);
    assert!(
        msgs > 10_000 && sysex_bytes > 10_000,
        "{msgs} {sysex_bytes}"
    );
    assert_eq!(parser.stats().aborted_sysex, 2000);

    let opts = midi::alsa::SenderOptions {
        ring_capacity: 64,
        ..Default::default()
    };
    let (thread, mut tx) = midi::alsa::spawn_sender("no-alloc", |_| Ok(()), opts).unwrap();
    let due = std::time::Instant::now() + std::time::Duration::from_secs(3600);
    let (mut ok, mut full) = (0, 0);
    WATCHED.with(|w| w.set(true));
    for k in 0..10_000u32 {
        match tx.try_send(due, midi::ShortMessage::note_on(0, (k % 128) as u8, 1)) {
            Ok(()) => ok += 1,
            Err(_) => full += 1,
        }
    }
    WATCHED.with(|w| w.set(false));
    assert_eq!(ALLOCATIONS.load(Ordering::Relaxed), 0);
    assert!(ok >= 64 && full > 0, "{ok} {full}");
    drop(thread);
}
