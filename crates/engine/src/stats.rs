//! Engine counters, written by the engine thread with relaxed atomics and
//! read by the control thread for `impresario status`.

use crate::EngineConfig;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::Duration;

/// Counters shared between the engine thread and the control thread.
#[derive(Default)]
pub struct EngineStats {
    cycles: AtomicU64,
    slowest_ns: AtomicU64,
    slowest_budget_ns: AtomicU64,
    overruns: AtomicU64,
    swaps: AtomicU64,
    dropped_events: AtomicU64,
    leaked: AtomicU64,
    note_offs_sent: AtomicU64,
    command_queue_high: AtomicU64,
    input_queue_high: AtomicU64,
    failures: AtomicU64,
    alloc_violations: AtomicU64,
    sysex_dropped: AtomicU64,
    /// Highest output peak since the last snapshot (f32 bits).
    output_peak: std::sync::atomic::AtomicU32,
    /// RMS of the last cycle's output (f32 bits).
    output_rms: std::sync::atomic::AtomicU32,
    /// The tempo of the last cycle (f64 bits).
    tempo_bpm: AtomicU64,
}

/// A copy of the counters (as `impresario status` shows them).
#[derive(Clone, Copy, Debug, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct StatsSnapshot {
    /// Cycles run.
    pub cycles: u64,
    /// The slowest cycle, in nanoseconds.
    pub slowest_cycle_ns: u64,
    /// The slowest cycle as a share of its time budget (1.0 = the whole block).
    pub slowest_cycle_load: f64,
    /// Cycles that took longer than their block, or a clock that fell behind.
    pub overruns: u64,
    /// RT parts installed or swapped.
    pub swaps: u64,
    /// Events dropped because a buffer or queue was full.
    pub dropped_events: u64,
    /// Note-offs the engine sent itself (removal, failure, shutdown).
    pub note_offs_sent: u64,
    /// High-water mark of the command queue.
    pub command_queue_high_water: u64,
    /// High-water mark of the input queue.
    pub input_queue_high_water: u64,
    /// Allocations seen on the engine thread (must stay 0).
    pub alloc_violations: u64,
    /// Allocations made while an imp panicked on the engine thread (Rust's
    /// panic payload and unwinding), counted apart from `alloc_violations`.
    pub allocations_in_panics: u64,
    /// Highest output sample (absolute, 1.0 = full scale) since the last
    /// snapshot.
    pub output_peak: f32,
    /// RMS of the output in the last cycle.
    pub output_rms: f32,
    /// The engine's tempo in the last cycle, in BPM (set in `realm.toml`,
    /// or followed from an external MIDI clock).
    pub tempo_bpm: f64,
    /// SysEx messages dropped whole because a long-data arena had no room
    /// for them (see `EngineConfig::sysex_arena_bytes`), or because they
    /// came by a path that cannot carry them; never truncated.
    #[serde(default)]
    pub sysex_dropped: u64,
}

fn raise(a: &AtomicU64, v: u64) {
    a.fetch_max(v, Relaxed);
}

impl EngineStats {
    pub(crate) fn note_cycle(
        &self,
        took: Duration,
        frames: u32,
        sample_rate: f64,
        violations: u64,
    ) {
        self.cycles.fetch_add(1, Relaxed);
        let ns = took.as_nanos() as u64;
        let budget = (frames as f64 / sample_rate * 1e9) as u64;
        if ns > self.slowest_ns.load(Relaxed) {
            self.slowest_ns.store(ns, Relaxed);
            self.slowest_budget_ns.store(budget, Relaxed);
        }
        if ns > budget {
            self.overruns.fetch_add(1, Relaxed);
        }
        self.alloc_violations.store(violations, Relaxed);
    }
    pub(crate) fn note_level(&self, peak: f32, rms: f32) {
        // Non-negative floats order like their bits.
        self.output_peak.fetch_max(peak.to_bits(), Relaxed);
        self.output_rms.store(rms.to_bits(), Relaxed);
    }
    pub(crate) fn note_tempo(&self, bpm: f64) {
        self.tempo_bpm.store(bpm.to_bits(), Relaxed);
    }
    pub(crate) fn note_overrun(&self) {
        self.overruns.fetch_add(1, Relaxed);
    }
    pub(crate) fn note_swap(&self) {
        self.swaps.fetch_add(1, Relaxed);
    }
    pub(crate) fn note_dropped(&self) {
        self.dropped_events.fetch_add(1, Relaxed);
    }
    /// A SysEx message dropped whole (no room in an arena). Any thread;
    /// a backend that cannot carry one counts it here too.
    pub fn note_sysex_dropped(&self) {
        self.add_sysex_dropped(1);
    }
    pub(crate) fn add_sysex_dropped(&self, n: u64) {
        self.sysex_dropped.fetch_add(n, Relaxed);
    }
    pub(crate) fn note_leak(&self) {
        self.leaked.fetch_add(1, Relaxed);
    }
    pub(crate) fn note_offs_sent(&self, n: u64) {
        self.note_offs_sent.fetch_add(n, Relaxed);
    }
    pub(crate) fn note_command_queue(&self, used: usize) {
        raise(&self.command_queue_high, used as u64);
    }
    pub(crate) fn note_input_queue(&self, used: usize) {
        raise(&self.input_queue_high, used as u64);
    }
    pub(crate) fn note_failure(&self, slot: usize) {
        self.failures.fetch_or(1 << slot, Relaxed);
    }
    pub(crate) fn take_failures(&self) -> u64 {
        self.failures.swap(0, Relaxed)
    }

    /// Cycles run so far.
    pub fn cycles(&self) -> u64 {
        self.cycles.load(Relaxed)
    }

    /// Reads all counters.
    pub fn snapshot(&self, _config: EngineConfig) -> StatsSnapshot {
        let slowest = self.slowest_ns.load(Relaxed);
        let budget = self.slowest_budget_ns.load(Relaxed).max(1);
        StatsSnapshot {
            cycles: self.cycles.load(Relaxed),
            slowest_cycle_ns: slowest,
            slowest_cycle_load: slowest as f64 / budget as f64,
            overruns: self.overruns.load(Relaxed),
            swaps: self.swaps.load(Relaxed),
            dropped_events: self.dropped_events.load(Relaxed),
            note_offs_sent: self.note_offs_sent.load(Relaxed),
            command_queue_high_water: self.command_queue_high.load(Relaxed),
            input_queue_high_water: self.input_queue_high.load(Relaxed),
            alloc_violations: self.alloc_violations.load(Relaxed),
            allocations_in_panics: crate::alloc_guard::in_panics(),
            output_peak: f32::from_bits(self.output_peak.swap(0, Relaxed)),
            output_rms: f32::from_bits(self.output_rms.load(Relaxed)),
            tempo_bpm: f64::from_bits(self.tempo_bpm.load(Relaxed)),
            sysex_dropped: self.sysex_dropped.load(Relaxed),
        }
    }
}
