//! Property tests: random valid scripts never panic, never allocate while processing, and
//! the skip-ahead/fast paths produce exactly the same per-sample state as plain processing.

mod common;

use proptest::prelude::*;
use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use timeseq::Engine;

struct Counting;

thread_local! {
    static COUNTING: Cell<bool> = const { Cell::new(false) };
    static COUNT: Cell<usize> = const { Cell::new(0) };
}

// SAFETY: every call forwards to the system allocator; the count is a thread-local.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        if COUNTING.with(|c| c.get()) {
            COUNT.with(|c| c.set(c.get() + 1));
        }
        // SAFETY: the caller's contract, passed on unchanged.
        unsafe { System.alloc(l) }
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        if COUNTING.with(|c| c.get()) {
            COUNT.with(|c| c.set(c.get() + 1));
        }
        // SAFETY: the caller's contract, passed on unchanged.
        unsafe { System.dealloc(p, l) }
    }
    unsafe fn realloc(&self, p: *mut u8, l: Layout, n: usize) -> *mut u8 {
        if COUNTING.with(|c| c.get()) {
            COUNT.with(|c| c.set(c.get() + 1));
        }
        // SAFETY: the caller's contract, passed on unchanged.
        unsafe { System.realloc(p, l, n) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// Counts heap operations (alloc, dealloc, realloc) made by `f` on this thread.
fn allocations<R>(f: impl FnOnce() -> R) -> (R, usize) {
    COUNT.with(|c| c.set(0));
    COUNTING.with(|c| c.set(true));
    let r = f();
    COUNTING.with(|c| c.set(false));
    (r, COUNT.with(|c| c.get()))
}

type State = ([[f32; 16]; 8], [u8; 8], Vec<f32>, usize, usize);

fn snapshot(e: &Engine) -> State {
    let mut poly = [0u8; 8];
    for (p, v) in poly.iter_mut().enumerate() {
        *v = e.polyphony(p);
    }
    let vars = (0..e.variable_names().len())
        .map(|i| e.variable(i))
        .collect();
    (
        *e.outputs(),
        poly,
        vars,
        e.fired_triggers().count(),
        e.assert_failures().len(),
    )
}

fn drive(e: &mut Engine, n: usize) {
    let v = match n % 97 {
        0..=10 => 5.0,
        11..=40 => 0.0,
        41..=60 => 0.5,
        _ => -2.0 + (n % 13) as f32,
    };
    e.set_input(0, 0, v);
    e.set_input(1, 1, (n % 7) as f32 - 3.0);
}

/// Runs `samples` samples, asserting zero allocations, and returns the per-sample states
/// (recorded outside the counted region).
fn run_checked(json: &str, samples: usize, plain: bool) -> Vec<State> {
    let mut e =
        Engine::load(json, 48000.0).unwrap_or_else(|err| panic!("{:?}\n{json}", err.errors()));
    e.set_plain_processing(plain);
    e.start(0);
    let mut states = Vec::with_capacity(samples);
    for n in 0..samples {
        drive(&mut e, n);
        let ((), allocs) = allocations(|| e.process(1));
        assert_eq!(allocs, 0, "allocation while processing sample {n}\n{json}");
        states.push(snapshot(&e));
    }
    states
}

fn differential(json: &str, samples: usize) {
    let fast = run_checked(json, samples, false);
    let plain = run_checked(json, samples, true);
    for (n, (a, b)) in fast.iter().zip(plain.iter()).enumerate() {
        assert!(
            a.0.iter()
                .flatten()
                .map(|x| x.to_bits())
                .eq(b.0.iter().flatten().map(|x| x.to_bits()))
                && a.1 == b.1
                && a.2
                    .iter()
                    .map(|x| x.to_bits())
                    .eq(b.2.iter().map(|x| x.to_bits()))
                && a.3 == b.3
                && a.4 == b.4,
            "fast and plain processing differ at sample {n}\n{json}"
        );
    }
}

/// Block sizes used by the block-processing differential (cycled).
const BLOCK_SCHEDULES: &[&[u32]] = &[&[1], &[7], &[64], &[1000], &[1, 7, 64, 1000, 3]];

/// Observable state at a block boundary plus the events of the block.
type BlockState = (State, Vec<String>, usize, timeseq::Status);

/// Per-sample reference for `process_block`: `process(1)` per sample with the inputs of
/// each block (set from `drive` at the block's first sample) held constant.
fn run_blocks(json: &str, samples: usize, schedule: &[u32], block: bool) -> Vec<BlockState> {
    let mut e =
        Engine::load(json, 48000.0).unwrap_or_else(|err| panic!("{:?}\n{json}", err.errors()));
    e.start(0);
    let mut out = Vec::new();
    let (mut n, mut k) = (0usize, 0usize);
    while n < samples {
        let size = schedule[k % schedule.len()] as usize;
        k += 1;
        drive(&mut e, n);
        let (fired, asserts) = if block {
            let ((), allocs) = allocations(|| e.process_block(size as u32));
            assert_eq!(
                allocs, 0,
                "allocation in process_block at sample {n}\n{json}"
            );
            let fired: Vec<String> = e.fired_triggers().map(str::to_string).collect();
            (fired, e.assert_failures().len())
        } else {
            let mut fired = Vec::new();
            let mut asserts = 0;
            for _ in 0..size {
                e.process(1);
                fired.extend(e.fired_triggers().map(str::to_string));
                asserts += e.assert_failures().len();
            }
            (fired, asserts)
        };
        n += size;
        out.push((snapshot(&e), fired, asserts, e.status()));
    }
    if block {
        // Keep the dropped-event count visible to the comparison.
        out.push((
            snapshot(&e),
            Vec::new(),
            e.dropped_events() as usize,
            e.status(),
        ));
    }
    out
}

/// `process_block` with varied block sizes gives the same outputs, polyphony, variables,
/// status and (up to the event buffers) triggers and assert counts at every block boundary
/// as per-sample processing. Returns the number of batched samples.
fn block_differential(json: &str, samples: usize) -> u64 {
    let mut batched = 0;
    for schedule in BLOCK_SCHEDULES {
        let reference = run_blocks(json, samples, schedule, false);
        let mut blocks = run_blocks(json, samples, schedule, true);
        let dropped = blocks.pop().unwrap().2;
        for (i, (a, b)) in blocks.iter().zip(reference.iter()).enumerate() {
            let (sa, sb) = (&a.0, &b.0);
            let same_state = sa.0.iter().flatten().map(|x| x.to_bits()).eq(sb
                .0
                .iter()
                .flatten()
                .map(|x| x.to_bits()))
                && sa.1 == sb.1
                && sa
                    .2
                    .iter()
                    .map(|x| x.to_bits())
                    .eq(sb.2.iter().map(|x| x.to_bits()));
            assert!(
                same_state && a.3 == b.3,
                "block {i} (schedule {schedule:?}): state differs\n{:?}\n{:?}\n{json}",
                (&sa.0[..2], &sa.2, a.3),
                (&sb.0[..2], &sb.2, b.3)
            );
            if dropped == 0 {
                assert_eq!(
                    a.1, b.1,
                    "block {i} (schedule {schedule:?}): triggers\n{json}"
                );
                assert_eq!(
                    a.2, b.2,
                    "block {i} (schedule {schedule:?}): asserts\n{json}"
                );
            } else {
                assert_eq!(a.1[..], b.1[..a.1.len()], "block {i}: triggers\n{json}");
                assert!(a.2 <= b.2, "block {i}: asserts\n{json}");
            }
        }
        let mut e = Engine::load(json, 48000.0).unwrap();
        e.start(0);
        for _ in 0..samples / 64 {
            e.process_block(64);
        }
        batched += e.batched_samples();
    }
    batched
}

#[test]
fn samples_and_conformance_scripts_block_equals_per_sample_without_allocation() {
    let files = common::fixture_scripts();
    for f in files {
        let json = std::fs::read_to_string(&f).unwrap();
        if Engine::load(&json, 48000.0).is_err() {
            continue; // the invalid conformance cases
        }
        let batched = block_differential(&json, 20_000);
        if f.ends_with("oscillator.json") {
            assert!(batched > 10_000, "oscillator not batched: {batched}");
        }
    }
}

/// Host calls in the middle of per-sample spans and batches (pause, start, reset, seed,
/// `process(rate)`, `process_block`, switching to plain processing) keep the fast engine
/// identical to a plain one.
#[test]
fn host_calls_mid_span_keep_fast_equal_to_plain() {
    let base = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/samples");
    for name in [
        "oscillator.json",
        "clock.json",
        "chords-and-notes-arp-gate.json",
    ] {
        let json = std::fs::read_to_string(base.join(name)).unwrap();
        let mut fast = Engine::load(&json, 48000.0).unwrap();
        let mut plain = Engine::load(&json, 48000.0).unwrap();
        plain.set_plain_processing(true);
        for e in [&mut fast, &mut plain] {
            e.start(0);
        }
        let mut rng = 12345u64;
        for step in 0..4000u32 {
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            let r = rng % 1000;
            for e in [&mut fast, &mut plain] {
                match r {
                    0..=2 => e.pause(),
                    3..=8 => e.start((r % 3) as u32),
                    9 => e.reset(),
                    10 => e.seed(r + step as u64),
                    11..=30 => e.process((r % 4) as u32),
                    31..=60 => e.process_block((r % 200) as u32),
                    61..=62 => e.set_input(0, 0, (r % 3) as f32),
                    _ => e.process(1),
                }
            }
            if r == 63 {
                // Switch the fast engine to plain processing and back, mid-span.
                fast.set_plain_processing(true);
                fast.set_plain_processing(false);
            }
            let (a, b) = (snapshot(&fast), snapshot(&plain));
            assert!(
                a.0.iter().flatten().map(|x| x.to_bits()).eq(b
                    .0
                    .iter()
                    .flatten()
                    .map(|x| x.to_bits()))
                    && a.1 == b.1
                    && a.2
                        .iter()
                        .map(|x| x.to_bits())
                        .eq(b.2.iter().map(|x| x.to_bits()))
                    && a.3 == b.3
                    && a.4 == b.4
                    && fast.status() == plain.status(),
                "{name}: fast and plain differ after step {step} (op {r})"
            );
        }
    }
}

/// A clone taken mid-run continues exactly like the original, without allocating (the
/// preallocated buffers keep their capacity).
#[test]
fn cloned_engines_continue_identically_without_allocation() {
    let files = common::fixture_scripts();
    for f in files {
        let json = std::fs::read_to_string(&f).unwrap();
        let Ok(mut e) = Engine::load(&json, 48000.0) else {
            continue;
        };
        e.start(0);
        for n in 0..1000 {
            drive(&mut e, n);
            e.process(1);
        }
        let mut c = e.clone();
        for n in 1000..6000 {
            drive(&mut e, n);
            drive(&mut c, n);
            e.process(1);
            let ((), allocs) = allocations(|| c.process(1));
            assert_eq!(
                allocs, 0,
                "allocation in a cloned engine at sample {n}: {f:?}"
            );
            let (a, b) = (snapshot(&e), snapshot(&c));
            assert!(
                a.0.iter().flatten().map(|x| x.to_bits()).eq(b
                    .0
                    .iter()
                    .flatten()
                    .map(|x| x.to_bits()))
                    && a.1 == b.1
                    && a.2
                        .iter()
                        .map(|x| x.to_bits())
                        .eq(b.2.iter().map(|x| x.to_bits()))
                    && a.3 == b.3
                    && a.4 == b.4,
                "clone differs at sample {n}: {f:?}"
            );
            let (ta, tb): (Vec<_>, Vec<_>) =
                (e.fired_triggers().collect(), c.fired_triggers().collect());
            assert_eq!(ta, tb, "clone triggers differ at sample {n}: {f:?}");
        }
    }
}

#[test]
fn samples_and_conformance_scripts_fast_equals_plain_without_allocation() {
    let files = common::fixture_scripts();
    for f in files {
        let json = std::fs::read_to_string(&f).unwrap();
        if Engine::load(&json, 48000.0).is_err() {
            continue; // the invalid conformance cases
        }
        differential(&json, 30_000);
    }
}

// ---------- random script generation ----------

fn voltage() -> impl Strategy<Value = String> {
    (-100i32..=100).prop_map(|v| format!("{}", v as f32 / 10.0))
}

fn calc() -> impl Strategy<Value = String> {
    prop_oneof![
        (
            prop::sample::select(vec!["add", "sub", "mult", "div", "max", "min", "remain"]),
            voltage()
        )
            .prop_map(|(op, v)| format!(r#"{{"{op}":{v}}}"#)),
        Just(r#"{"trunc":true}"#.to_string()),
        Just(r#"{"frac":true}"#.to_string()),
        prop::sample::select(vec!["up", "down", "near"])
            .prop_map(|r| format!(r#"{{"round":"{r}"}}"#)),
        prop::sample::select(vec!["pos", "neg"]).prop_map(|r| format!(r#"{{"sign":"{r}"}}"#)),
        Just(r#"{"quantize":{"notes":[0,0.25,"E","G+"]}}"#.to_string()),
        Just(r#"{"vtof":true}"#.to_string()),
    ]
}

fn value() -> impl Strategy<Value = String> {
    let source = prop_oneof![
        voltage().prop_map(|v| format!(r#""voltage":{v}"#)),
        prop::sample::select(vec!["v", "w"]).prop_map(|n| format!(r#""variable":"{n}""#)),
        (1u8..=2, 1u8..=2).prop_map(|(p, c)| format!(r#""input":{{"index":{p},"channel":{c}}}"#)),
        (1u8..=3, 1u8..=3).prop_map(|(p, c)| format!(r#""output":{{"index":{p},"channel":{c}}}"#)),
        (voltage(), voltage()).prop_map(|(a, b)| format!(r#""rand":{{"lower":{a},"upper":{b}}}"#)),
        prop::sample::select(vec!["forward", "backward", "random", "none"])
            .prop_map(|d| format!(r#""sequence":{{"id":"s","move-after":"{d}"}}"#)),
        prop::sample::select(vec!["C4", "e2-", "B9+"]).prop_map(|n| format!(r#""note":"{n}""#)),
    ];
    (source, prop::collection::vec(calc(), 0..3), any::<bool>())
        .prop_map(|(s, calcs, q)| format!(r#"{{{s},"calc":[{}],"quantize":{q}}}"#, calcs.join(",")))
}

fn cond() -> impl Strategy<Value = String> {
    (
        prop::sample::select(vec!["eq", "ne", "lt", "lte", "gt", "gte"]),
        value(),
        value(),
        any::<bool>(),
    )
        .prop_map(|(op, a, b, tol)| {
            let t = if tol { r#","tolerance":0.5"# } else { "" };
            format!(r#"{{"{op}":[{a},{b}]{t}}}"#)
        })
}

fn output() -> impl Strategy<Value = String> {
    (1u8..=3, 1u8..=3).prop_map(|(p, c)| format!(r#"{{"index":{p},"channel":{c}}}"#))
}

fn action() -> impl Strategy<Value = String> {
    let timing = prop::sample::select(vec!["start", "end"]);
    let op = prop_oneof![
        (output(), value())
            .prop_map(|(o, v)| format!(r#""set-value":{{"output":{o},"value":{v}}}"#)),
        (prop::sample::select(vec!["v", "w"]), value())
            .prop_map(|(n, v)| format!(r#""set-variable":{{"name":"{n}","value":{v}}}"#)),
        prop::sample::select(vec!["a", "b", "c"]).prop_map(|t| format!(r#""trigger":"{t}""#)),
        (1u8..=8, 1u8..=16)
            .prop_map(|(i, c)| format!(r#""set-polyphony":{{"index":{i},"channels":{c}}}"#)),
        (1u8..=8).prop_map(|i| format!(r#""set-label":{{"index":{i},"label":"L{i}"}}"#)),
        cond()
            .prop_map(|c| format!(r#""assert":{{"name":"n","expect":{c},"stop-on-fail":false}}"#)),
        prop::sample::select(vec!["forward", "backward", "random", "none"])
            .prop_map(|d| format!(r#""move-sequence":{{"id":"s","direction":"{d}"}}"#)),
        (-1i32..4).prop_map(|p| format!(r#""move-sequence":{{"id":"s","position":{p}}}"#)),
        (value(), -1i32..4, any::<bool>()).prop_map(|(v, p, c)| format!(
            r#""add-to-sequence":{{"id":"s","value":{v},"position":{p},"as-constant-voltage":{c}}}"#
        )),
        (-1i32..4).prop_map(|p| format!(r#""remove-from-sequence":{{"id":"s","position":{p}}}"#)),
        Just(r#""clear-sequence":"s""#.to_string()),
    ];
    let plain = (timing, op, prop::option::of(cond())).prop_map(|(t, o, c)| {
        let c = c.map(|c| format!(r#","if":{c}"#)).unwrap_or_default();
        format!(r#"{{"timing":"{t}",{o}{c}}}"#)
    });
    let glide = (value(), value(), prop_oneof![output().prop_map(|o| format!(r#""output":{o}"#)), Just(r#""variable":"g""#.to_string())], -50i32..=50, any::<bool>(), prop::option::of(cond()))
        .prop_map(|(s, e, t, f, pow, c)| {
            let algo = if pow { "pow" } else { "sig" };
            let c = c.map(|c| format!(r#","if":{c}"#)).unwrap_or_default();
            format!(
                r#"{{"timing":"glide","start-value":{s},"end-value":{e},{t},"ease-factor":{},"ease-algorithm":"{algo}"{c}}}"#,
                f as f32 / 10.0
            )
        });
    let gate = (output(), 0u32..=10, prop::option::of(cond())).prop_map(|(o, r, c)| {
        let c = c.map(|c| format!(r#","if":{c}"#)).unwrap_or_default();
        format!(
            r#"{{"timing":"gate","output":{o},"gate-high-ratio":{}{c}}}"#,
            r as f32 / 10.0
        )
    });
    prop_oneof![4 => plain, 2 => glide, 2 => gate]
}

fn duration() -> impl Strategy<Value = String> {
    prop_oneof![
        (1u32..60).prop_map(|n| format!(r#"{{"samples":{n}}}"#)),
        (1u32..100).prop_map(|n| format!(r#"{{"millis":{}}}"#, n as f32 / 97.0)),
        (700u32..70000).prop_map(|n| format!(r#"{{"hz":{}}}"#, n as f32 + 0.37)),
        (1u32..40).prop_map(|n| format!(r#"{{"beats":{}}}"#, n as f32 / 233.0)),
        value().prop_map(|v| format!(r#"{{"samples":{v}}}"#)),
        value().prop_map(|v| format!(
            r#"{{"hz":{{"voltage":9000,"no-limit":true,"calc":[{{"add":{v}}}]}}}}"#
        )),
    ]
}

fn segment() -> impl Strategy<Value = String> {
    prop_oneof![
        5 => (duration(), prop::collection::vec(action(), 0..4), any::<bool>())
            .prop_map(|(d, a, ui)| format!(r#"{{"duration":{d},"actions":[{}],"disable-ui":{ui}}}"#, a.join(","))),
        1 => prop::collection::vec(action().prop_filter("start/end only", |a| a.contains(r#""timing":"start""#) || a.contains(r#""timing":"end""#)), 0..2)
            .prop_map(|a| format!(r#"{{"segment-block":"blk","actions":[{}]}}"#, a.join(","))),
    ]
}

fn trig() -> impl Strategy<Value = String> {
    prop::option::of(prop::sample::select(vec!["a", "b", "c"]))
        .prop_map(|t| t.map(|t| format!(r#""{t}""#)).unwrap_or_default())
}

fn lane() -> impl Strategy<Value = String> {
    (
        any::<bool>(),
        any::<bool>(),
        0u32..4,
        trig(),
        trig(),
        trig(),
        prop::collection::vec(segment(), 0..4),
        0u8..10,
    )
        .prop_map(|(auto, lp, rep, st, rs, sp, segs, auto_bias)| {
            let mut keys = vec![
                format!(r#""auto-start":{}"#, auto || auto_bias > 2),
                format!(r#""loop":{lp}"#),
                format!(r#""repeat":{rep}"#),
            ];
            for (k, v) in [
                ("start-trigger", st),
                ("restart-trigger", rs),
                ("stop-trigger", sp),
            ] {
                if !v.is_empty() {
                    keys.push(format!(r#""{k}":{v}"#));
                }
            }
            format!(r#"{{{},"segments":[{}]}}"#, keys.join(","), segs.join(","))
        })
}

fn timeline() -> impl Strategy<Value = String> {
    (
        any::<bool>(),
        40u32..240,
        1u32..8,
        prop::collection::vec(lane(), 0..4),
    )
        .prop_map(|(ll, bpm, bpb, lanes)| {
            format!(
                r#"{{"time-scale":{{"bpm":{bpm},"bpb":{bpb}}},"loop-lock":{ll},"lanes":[{}]}}"#,
                lanes.join(",")
            )
        })
}

fn script() -> impl Strategy<Value = String> {
    (
        prop::collection::vec(timeline(), 0..3),
        prop::collection::vec(value().prop_filter("no self reference", |v| !v.contains("sequence")), 0..4),
        prop::collection::vec(action().prop_filter("start only", |a| a.contains(r#""timing":"start""#)), 0..2),
        any::<bool>(),
        prop::collection::vec(segment().prop_filter("no nested block", |s| !s.contains("segment-block")), 1..3),
        1u32..3,
    )
        .prop_map(|(tls, seq, globals, it, blk, rep)| {
            let it = if it { r#"{"id":"a","input":1},{"id":"c","input":{"index":2,"channel":2}}"# } else { "" };
            format!(
                r#"{{"type":"not-things_timeseq_script","version":"1.2.0","timelines":[{}],
                "sequences":[{{"id":"s","values":[{}]}}],"global-actions":[{}],"input-triggers":[{it}],
                "component-pool":{{"segment-blocks":[{{"id":"blk","repeat":{rep},"segments":[{}]}}]}}}}"#,
                tls.join(","),
                seq.join(","),
                globals.join(","),
                blk.join(",")
            )
        })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: std::env::var("PROPTEST_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(96), ..ProptestConfig::default() })]

    #[test]
    fn random_valid_scripts_never_panic_or_allocate(json in script()) {
        let errs = Engine::load(&json, 48000.0).err().map(|e| e.errors());
        prop_assert!(errs.is_none(), "generated script rejected: {:?}\n{}", errs, json);
        differential(&json, 3000);
        block_differential(&json, 3000);
    }
}

/// `quiet_ahead` is a promise: a host that steps one sample where it says 0 and
/// processes `min(quiet_ahead, until the next input change)` samples in one block
/// elsewhere sees exactly the per-sample outputs, and no output changes inside the
/// blocks it skipped over. Inputs change every 97 samples (input triggers included).
#[test]
fn quiet_ahead_never_hides_an_output_change() {
    for f in common::fixture_scripts() {
        let json = std::fs::read_to_string(&f).unwrap();
        let Ok(mut reference) = Engine::load(&json, 48000.0) else {
            continue;
        };
        let mut host = reference.clone();
        reference.start(0);
        host.start(0);
        let inputs = |n: u64, e: &mut Engine| {
            if n.is_multiple_of(97) {
                e.set_input(0, 0, if (n / 97).is_multiple_of(2) { 5.0 } else { 0.0 });
            }
        };
        let samples = 20_000u64;
        let mut n = 0u64;
        let mut stepped = 0u64;
        while n < samples {
            inputs(n, &mut host);
            inputs(n, &mut reference);
            host.process(1);
            reference.process(1);
            stepped += 1;
            assert_eq!(
                host.outputs(),
                reference.outputs(),
                "{}: sample {n}",
                f.display()
            );
            n += 1;
            let next_change = (n / 97 + 1) * 97;
            let quiet = host.quiet_ahead().min(samples - n).min(next_change - n);
            if quiet == 0 || n.is_multiple_of(97) {
                continue;
            }
            let held = *reference.outputs();
            for k in 0..quiet {
                reference.process(1);
                assert_eq!(
                    reference.outputs(),
                    &held,
                    "{}: an output changed at sample {} inside a quiet run",
                    f.display(),
                    n + k
                );
            }
            host.process_block(quiet as u32);
            assert_eq!(host.outputs(), reference.outputs(), "{}", f.display());
            n += quiet;
        }
        if f.ends_with("chords-and-notes-arp-gate.json") {
            assert!(stepped < samples / 10, "{}: stepped {stepped}", f.display());
        }
    }
}

/// `quiet_ahead_for(ports)` is a promise about the watched ports: a host that steps one
/// sample where it says 0 and processes the rest in blocks (cut at input changes, every
/// 97 samples) sees every change of those ports' voltages and polyphony at its sample,
/// while the other outputs may change inside the blocks; the state after each block is
/// exactly the per-sample state. Checked for every fixture and each single watched port.
#[test]
fn quiet_ahead_for_never_hides_a_change_of_a_watched_port() {
    let mut blocked_total = 0u64;
    for f in common::fixture_scripts() {
        let json = std::fs::read_to_string(&f).unwrap();
        let Ok(proto) = Engine::load(&json, 48000.0) else {
            continue;
        };
        for port in 0..8usize {
            let mask = 1u8 << port;
            let mut reference = proto.clone();
            let mut host = proto.clone();
            reference.start(0);
            host.start(0);
            let inputs = |n: u64, e: &mut Engine| {
                if n.is_multiple_of(97) {
                    e.set_input(0, 0, if (n / 97).is_multiple_of(2) { 5.0 } else { 0.0 });
                }
            };
            let watched = |e: &Engine| (e.outputs()[port], e.polyphony(port));
            let samples = 12_000u64;
            let mut n = 0u64;
            while n < samples {
                inputs(n, &mut host);
                inputs(n, &mut reference);
                host.process(1);
                reference.process(1);
                assert_eq!(
                    host.outputs(),
                    reference.outputs(),
                    "{}: sample {n}",
                    f.display()
                );
                n += 1;
                let next_change = (n / 97 + 1) * 97;
                let quiet = host
                    .quiet_ahead_for(mask)
                    .min(samples - n)
                    .min(next_change - n);
                if quiet == 0 || n.is_multiple_of(97) {
                    continue;
                }
                let held = watched(&reference);
                for k in 0..quiet {
                    reference.process(1);
                    assert_eq!(
                        watched(&reference),
                        held,
                        "{}: port {} changed at sample {} inside a quiet run",
                        f.display(),
                        port + 1,
                        n + k
                    );
                }
                host.process_block(quiet as u32);
                assert_eq!(host.outputs(), reference.outputs(), "{}", f.display());
                n += quiet;
                blocked_total += quiet;
            }
        }
    }
    assert!(blocked_total > 0);
}

#[test]
fn quiet_ahead_for_skips_the_oscillators_other_outputs() {
    // Only the square (output 1) watched: its lane writes every 184 samples,
    // while the saw, triangle, sine and noise lanes write every sample.
    let json = std::fs::read_to_string(
        common::fixture_scripts()
            .into_iter()
            .find(|f| f.ends_with("samples/oscillator.json"))
            .unwrap(),
    )
    .unwrap();
    let mut e = Engine::load(&json, 48000.0).unwrap();
    e.start(0);
    let (mut n, mut steps) = (0u64, 0u64);
    while n < 48_000 {
        e.process(1);
        steps += 1;
        n += 1;
        let q = e.quiet_ahead_for(1).min(48_000 - n);
        if q > 0 {
            e.process_block(q as u32);
            n += q;
        }
    }
    assert_eq!(e.quiet_ahead(), 0, "the other outputs change every sample");
    assert!(steps < 48_000 / 40, "stepped {steps} of 48000 samples");
}
