//! Shared test harness: a counting global allocator that fails a test when a
//! guarded real-time call allocates, and a block runner that records output
//! with absolute sample times.
#![allow(dead_code)]

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

use bard_pipeline::{
    Bard, BlockContext, FixedSink, NoteEvent, PreparedConfig, TRANSIENT_STATE_BYTES,
};

pub struct Counting;

thread_local! {
    // Const-initialised, no destructor: safe to touch from the allocator.
    static ARMED: Cell<bool> = const { Cell::new(false) };
    static COUNT: Cell<usize> = const { Cell::new(0) };
}

fn note_alloc() {
    let _ = ARMED.try_with(|a| {
        if a.get() {
            let _ = COUNT.try_with(|c| c.set(c.get() + 1));
        }
    });
}

// SAFETY: every call forwards to the system allocator; the count is a thread-local.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        note_alloc();
        // SAFETY: the caller's contract, passed on unchanged.
        unsafe { System.alloc(l) }
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        note_alloc();
        // SAFETY: the caller's contract, passed on unchanged.
        unsafe { System.dealloc(p, l) }
    }
    unsafe fn alloc_zeroed(&self, l: Layout) -> *mut u8 {
        note_alloc();
        // SAFETY: the caller's contract, passed on unchanged.
        unsafe { System.alloc_zeroed(l) }
    }
    unsafe fn realloc(&self, p: *mut u8, l: Layout, n: usize) -> *mut u8 {
        note_alloc();
        // SAFETY: the caller's contract, passed on unchanged.
        unsafe { System.realloc(p, l, n) }
    }
}

/// Runs `f` and panics if it allocated, freed or reallocated on this thread.
pub fn no_alloc<R>(what: &str, f: impl FnOnce() -> R) -> R {
    COUNT.with(|c| c.set(0));
    ARMED.with(|a| a.set(true));
    let r = f();
    ARMED.with(|a| a.set(false));
    let n = COUNT.with(|c| c.get());
    assert_eq!(n, 0, "{what} allocated {n} times on the real-time path");
    r
}

/// Output event with its absolute sample time.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct At {
    pub t: u64,
    pub port: u8,
    pub bytes: [u8; 3],
}

pub fn on(t: u64, port: u8, ch: u8, note: u8, vel: u8) -> At {
    At {
        t,
        port,
        bytes: [0x90 | ch, note, vel],
    }
}
pub fn off(t: u64, port: u8, ch: u8, note: u8) -> At {
    At {
        t,
        port,
        bytes: [0x80 | ch, note, 0],
    }
}
pub fn cc(t: u64, port: u8, ch: u8, n: u8, v: u8) -> At {
    At {
        t,
        port,
        bytes: [0xb0 | ch, n, v],
    }
}

pub const RATE: f64 = 48_000.0;
pub const BLOCK: u32 = 64;

/// Drives a bard block by block, feeding input at absolute times.
pub struct Rig {
    pub bard: Bard,
    pub pos: u64,
    pub bpm: f64,
    pub out: Vec<At>,
    pub sink: Box<FixedSink<1024>>,
}

impl Rig {
    pub fn new(cfg: PreparedConfig) -> Rig {
        Rig {
            bard: Bard::new(cfg),
            pos: 0,
            bpm: 120.0,
            out: Vec::new(),
            sink: Box::new(FixedSink::new()),
        }
    }

    pub fn json(json: &str) -> Rig {
        let cfg = bard_pipeline::BardConfig::from_json(json).unwrap();
        Rig::new(PreparedConfig::new(&cfg).unwrap())
    }

    fn collect(&mut self, start: u64) {
        for e in self.sink.events() {
            assert!(e.len == 3, "unexpected event {e:?}");
            self.out.push(At {
                t: start + e.frame as u64,
                port: e.port,
                bytes: e.bytes,
            });
        }
        self.sink.clear();
    }

    /// Runs one block with `input` given as (absolute time, event).
    pub fn block(&mut self, input: &[(u64, NoteEvent)]) {
        let start = self.pos;
        let mut evs = [NoteEvent::default(); 64];
        let mut n = 0;
        for (t, e) in input {
            if *t >= start && *t < start + BLOCK as u64 {
                evs[n] = NoteEvent {
                    frame: (*t - start) as u32,
                    ..*e
                };
                n += 1;
            }
        }
        let ctx = BlockContext::new(start, RATE, self.bpm, BLOCK);
        let bard = &mut self.bard;
        let sink = &mut *self.sink;
        no_alloc("process", || bard.process(&evs[..n], &ctx, sink));
        self.pos += BLOCK as u64;
        self.collect(start);
    }

    /// Runs blocks until `until` (exclusive, rounded up to a block), feeding `input`.
    pub fn run(&mut self, until: u64, input: &[(u64, NoteEvent)]) {
        while self.pos < until {
            self.block(input);
        }
    }

    pub fn all_off(&mut self) {
        let bard = &mut self.bard;
        let sink = &mut *self.sink;
        no_alloc("all_notes_off", || bard.all_notes_off(sink));
        let start = self.pos;
        self.collect(start);
    }

    pub fn apply(&mut self, cfg: PreparedConfig) {
        let bard = &mut self.bard;
        let old = no_alloc("apply_config", || bard.apply_config(cfg));
        drop(old);
    }

    pub fn apply_json(&mut self, json: &str) {
        let cfg = bard_pipeline::BardConfig::from_json(json).unwrap();
        self.apply(PreparedConfig::new(&cfg).unwrap());
    }

    /// Saves into a fresh bard with `cfg` and continues there.
    pub fn swap_to(&mut self, cfg: PreparedConfig) {
        let mut buf = Box::new([0u8; TRANSIENT_STATE_BYTES]);
        let mut next = Bard::new(cfg);
        let b = &mut *buf;
        let old = &self.bard;
        no_alloc("save_transient", || old.save_transient(b));
        no_alloc("restore_transient", || next.restore_transient(b)).unwrap();
        self.bard = next;
    }

    pub fn take(&mut self) -> Vec<At> {
        std::mem::take(&mut self.out)
    }
}

pub fn key_on(t: u64, ch: u8, note: u8, vel: u8) -> (u64, NoteEvent) {
    (t, NoteEvent::note_on(0, 0, ch, note, vel))
}
pub fn key_off(t: u64, ch: u8, note: u8) -> (u64, NoteEvent) {
    (t, NoteEvent::note_off(0, 0, ch, note))
}

/// Checks the output is well formed: per (port, channel, note) on and off
/// alternate, and nothing is left on.
pub fn assert_balanced(out: &[At]) {
    use std::collections::HashMap;
    let mut on: HashMap<(u8, u8, u8), bool> = HashMap::new();
    for e in out {
        let key = (e.port, e.bytes[0] & 0x0f, e.bytes[1]);
        match e.bytes[0] & 0xf0 {
            0x90 if e.bytes[2] > 0 => {
                assert!(
                    !on.get(&key).copied().unwrap_or(false),
                    "double note-on {e:?} in {out:?}"
                );
                on.insert(key, true);
            }
            0x80 | 0x90 => {
                assert!(
                    on.get(&key).copied().unwrap_or(false),
                    "note-off without note-on {e:?}"
                );
                on.insert(key, false);
            }
            _ => {}
        }
    }
    let stuck: Vec<_> = on.iter().filter(|(_, v)| **v).collect();
    assert!(stuck.is_empty(), "stuck notes {stuck:?}");
}
