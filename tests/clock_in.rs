//! MIDI clock in, through the real engine and the real port and bard
//! libraries on a manual clock: a jittery 120 BPM clock arrives on a
//! `clock_in` port while the engine runs at 100 BPM; the engine follows the
//! tempo within 0.1 BPM after two beats, and the bard's 1/16 arpeggio steps
//! land on the clock's ticks; Start, Stop and Continue start, hold and
//! resume the arpeggio.

mod common;
use common::*;
use engine::alloc_guard::{self, GuardedAllocator};
use engine::{EngineConfig, Routing, Wire};
use imp::RtEvent;
use realm::ImpHandle;
use serde_json::json;
use std::sync::Arc;

#[global_allocator]
static ALLOCATOR: GuardedAllocator = GuardedAllocator;

const PORT: usize = 0;
const BARD: usize = 1;
const BLOCK: u32 = 64;
/// 120 BPM at 48 kHz: 24 ticks per beat are 1000 samples apart.
const TICK: u64 = 1000;
/// ±1 ms of jitter at 48 kHz.
const JITTER: i64 = 48;

/// Nominal tick `k`'s time and its jittered arrival (deterministic).
fn ticks(n: usize) -> Vec<(u64, u64)> {
    let mut x: u64 = 0x2545_F491_4F6C_DD1D;
    (0..n as u64)
        .map(|k| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let j = (x % (2 * JITTER as u64 + 1)) as i64 - JITTER;
            let nominal = 4_800 + k * TICK;
            (nominal, (nominal as i64 + j) as u64)
        })
        .collect()
}

/// A realm of a `clock_in` port wired to a bard with a 1/16 arpeggio, on
/// an engine started at 100 BPM.
struct Rig {
    handle: engine::EngineHandle,
    core: engine::EngineCore,
    port: ImpHandle,
    _bard: ImpHandle,
}

impl Rig {
    fn new() -> Rig {
        static PORTS: std::sync::Once = std::sync::Once::new();
        PORTS.call_once(|| {
            let (ports, driver) = backend::loopback::loopback();
            std::mem::forget(driver);
            realm::ports::install(Arc::new(ports));
        });
        let (mut handle, core) = engine::engine(EngineConfig {
            tempo_bpm: 100.0,
            ..EngineConfig::default()
        });
        let (port, p) = thawed_part(
            "midi_port",
            Some(PORT),
            json!({ "direction": "in", "name": "clock", "clock_in": true }),
        );
        let (bard, b) = thawed_part(
            "bard",
            Some(BARD),
            json!({ "zones": [{ "arp": { "mode": "up", "rate": "1/16" } }] }),
        );
        handle.install(PORT, p, false).unwrap();
        handle.install(BARD, b, false).unwrap();
        handle
            .set_routing(
                Routing::new(
                    &[PORT, BARD],
                    &[Wire {
                        from: PORT,
                        output: 0,
                        to: BARD,
                        input: 0,
                    }],
                )
                .unwrap(),
            )
            .unwrap();
        Rig {
            handle,
            core,
            port,
            _bard: bard,
        }
    }

    /// Plays `clock` (arrival time, byte) into the port and holds a chord
    /// on the bard from `chord_at`; returns the bard's note-on times and
    /// the engine tempo after each block from `tempo_from` on.
    fn play(
        &mut self,
        clock: &[(u64, u8)],
        chord_at: u64,
        tempo_from: u64,
    ) -> (Vec<u64>, Vec<f64>) {
        let end = clock.last().unwrap().0 + TICK;
        let violations = alloc_guard::thread_violations();
        let (mut next, mut position, mut held) = (0, 0u64, false);
        let (mut steps, mut tempos) = (Vec::new(), Vec::new());
        while position < end {
            let block_end = position + BLOCK as u64;
            while next < clock.len() && clock[next].0 < block_end {
                let frame = (clock[next].0 - position) as u32;
                let e = RtEvent::midi(frame, &[clock[next].1]);
                self.handle.inject(PORT, e).unwrap();
                next += 1;
            }
            if !held && chord_at < block_end {
                for n in [60, 64, 67] {
                    let e = RtEvent::midi(0, &[0x90, n, 100]);
                    self.handle.inject(BARD, e).unwrap();
                }
                held = true;
            }
            alloc_guard::rt_section(|| self.core.cycle(BLOCK));
            for e in self.core.emitted().iter().filter(|e| e.slot == BARD) {
                if e.event.is_note_on() {
                    steps.push(e.time);
                }
            }
            if position >= tempo_from {
                tempos.push(self.handle.stats().tempo_bpm);
            }
            self.handle.collect_garbage();
            position = block_end;
        }
        assert_eq!(alloc_guard::thread_violations(), violations);
        (steps, tempos)
    }
}

/// The tick nearest to `t` among `nominal`, and how far it is.
fn nearest(nominal: &[u64], t: u64) -> (usize, u64) {
    nominal
        .iter()
        .enumerate()
        .map(|(k, n)| (k, n.abs_diff(t)))
        .min_by_key(|(_, d)| *d)
        .unwrap()
}

#[test]
fn the_engine_follows_a_jittery_clock_and_the_arpeggio_steps_on_its_ticks() {
    let mut rig = Rig::new();
    let ticks = ticks(24 * 8);
    let clock: Vec<(u64, u8)> = ticks.iter().map(|t| (t.1, 0xf8)).collect();
    // The chord from two beats in; the tempo checked from the 49th tick.
    let (steps, tempos) = rig.play(&clock, ticks[47].1, ticks[48].1 + BLOCK as u64);

    // The tempo: within 0.1 BPM of 120 from two beats on.
    assert!(!tempos.is_empty());
    for bpm in &tempos {
        assert!((bpm - 120.0).abs() < 0.1, "followed tempo {bpm}");
    }
    let status = rig.port.poll().unwrap();
    let shown = status["clock_in_bpm"].as_f64().expect("clock_in_bpm");
    assert!((shown - 120.0).abs() < 0.1, "{status}");

    // The steps: every 1/16 (6 ticks) after the first, each within the
    // jitter (plus rounding) of a tick.
    assert!(steps.len() >= 20, "{} arpeggio steps", steps.len());
    let nominal: Vec<u64> = ticks.iter().map(|t| t.0).collect();
    let mut grid_ticks = Vec::new();
    for (i, s) in steps.iter().enumerate().skip(1) {
        let (k, off) = nearest(&nominal, *s);
        assert!(
            off <= 2 * JITTER as u64 + 16,
            "step {i} at {s} is {off} samples from tick {k} at {}",
            nominal[k]
        );
        grid_ticks.push(k);
    }
    for w in grid_ticks.windows(2) {
        assert_eq!(
            w[1] - w[0],
            6,
            "a 1/16 step is 6 ticks: {grid_ticks:?} {steps:?}"
        );
    }
}

#[test]
fn start_stop_and_continue_drive_the_arpeggio() {
    let mut rig = Rig::new();
    let ticks = ticks(24 * 10);
    // Two beats of ticks, then Start (ticks 48.. are beats 0..), Stop after
    // tick 96 (two beats on), no ticks for a while, Continue and ticks again.
    let mut clock: Vec<(u64, u8)> = ticks[..48].iter().map(|t| (t.1, 0xf8)).collect();
    let start_at = ticks[48].0 - 300;
    clock.push((start_at, 0xfa));
    clock.extend(ticks[48..=96].iter().map(|t| (t.1, 0xf8)));
    let stop_at = ticks[96].0 + 300;
    clock.push((stop_at, 0xfc));
    // Two beats of silence: the later ticks come 48 ticks late.
    let pause = 48 * TICK;
    let continue_at = ticks[97].0 + pause - 300;
    clock.push((continue_at, 0xfb));
    clock.extend(ticks[97..].iter().map(|t| (t.1 + pause, 0xf8)));
    let (steps, _) = rig.play(&clock, 0, 0);

    // Before Start the arpeggio runs on the followed clock; at Start the
    // next tick is beat 0, so a step is on tick 48.
    let nominal: Vec<u64> = ticks.iter().map(|t| t.0).collect();
    let from_start: Vec<u64> = steps.iter().copied().filter(|s| *s >= start_at).collect();
    let (k, off) = nearest(&nominal, from_start[0]);
    assert_eq!(
        k, 48,
        "the first step after Start is on its first tick: {steps:?}"
    );
    assert!(off <= 2 * JITTER as u64 + BLOCK as u64, "{off} samples off");
    // Stopped: nothing from the Stop to the first tick after Continue.
    let resumed = ticks[97].0 + pause - JITTER as u64;
    let quiet: Vec<&u64> = steps
        .iter()
        .filter(|s| **s > stop_at && **s < resumed)
        .collect();
    assert!(quiet.is_empty(), "steps while stopped: {quiet:?}");
    // Continue goes on on the same grid: steps every 6 ticks from the
    // first tick after Continue that is a 1/16 (tick 102 = beat 2.25 after
    // Start, the ticks shifted by the pause).
    // (Steps after the last tick, on the tempo it left, are not checked.)
    let last = clock.last().unwrap().0;
    let after: Vec<u64> = steps
        .iter()
        .copied()
        .filter(|s| *s >= resumed && *s <= last + TICK / 2)
        .collect();
    assert!(after.len() >= 10, "{} steps after Continue", after.len());
    let shifted: Vec<u64> = nominal.iter().map(|t| t + pause).collect();
    for (i, s) in after.iter().enumerate() {
        let (k, off) = nearest(&shifted, *s);
        assert!(
            off <= 2 * JITTER as u64 + BLOCK as u64,
            "step {i} {off} samples off"
        );
        assert_eq!(
            (k - 48) % 6,
            0,
            "step {i} on tick {k}, not a 1/16 of the restarted grid"
        );
    }
}
