//! One test per deliberate deviation of SPEC.md (compatibility policy 3).

mod common;
use common::*;

/// (a) Glide underflow: a 1-sample segment with accumulated drift writes the end value,
/// where the reference writes ~1.8e19 V.
#[test]
fn a_glide_underflow_writes_end_value() {
    // hz 30000 at 48 kHz: x = 1.6, D = 1, drift .6. Segment 2 starts (sample 1) with
    // acc 1.2 >= 1, so its first sample is an inserted one with position 0.
    let s = one_timeline(
        "",
        &[
            r#"{"loop":true,"segments":[{"duration":{"hz":30000},"actions":[
            {"timing":"glide","start-value":-1,"end-value":5,"output":1}]}]}"#,
        ],
        "",
    );
    let f = run(&s, 50);
    for (i, v) in out(&f, 1, 1).iter().enumerate() {
        assert_eq!(*v, 5.0, "sample {i}");
    }
}

/// (b) An assert's expectation is evaluated once, without short-circuiting, and the message
/// shows the values that failed.
#[test]
fn b_assert_evaluated_once_without_short_circuit() {
    let s = one_timeline(
        "",
        &[r#"{"segments":[
            {"duration":{"samples":1},"actions":[{"assert":{"name":"x","stop-on-fail":false,"expect":
                {"and":[{"eq":[{"sequence":"s"},9]},{"eq":[{"sequence":"s"},9]}]}}}]},
            {"duration":{"samples":1},"actions":[{"set-variable":{"name":"next","value":{"sequence":"s"}}}]}]}"#],
        r#""sequences":[{"id":"s","values":[1,2,3,4,5,6]}]"#,
    );
    let f = run(&s, 2);
    // Both children ran (no short-circuit), each read advanced the sequence once.
    assert_eq!(
        f[0].asserts,
        vec![(
            "x".to_string(),
            "((1 eq 9) and (2 eq 9))".to_string(),
            false
        )]
    );
    // Evaluated once: the sequence moved twice (not four times as in the reference).
    assert_eq!(var(&f[1], "next"), 3.0);
}

/// (c) Loop-lock lanes do not hang when the last running lane is stopped by a trigger.
#[test]
fn c_loop_lock_stop_does_not_hang() {
    let s = script(
        "1.2.0",
        r#"[{"loop-lock":true,"lanes":[
            {"loop":true,"segments":[{"duration":{"samples":2},"actions":[{"trigger":"short"}]}]},
            {"loop":true,"stop-trigger":"halt","segments":[{"duration":{"samples":100},"actions":[{"trigger":"long"}]}]}]},
           {"lanes":[{"segments":[{"duration":{"samples":5}},{"duration":{"samples":1},"actions":[{"trigger":"halt"}]}]}]}]"#,
        "",
    );
    let f = run(&s, 20);
    // The short lane finishes at sample 1 and waits; the long lane is stopped by "halt"
    // (fired at 5, seen at 6). The loop-lock check runs in that sample, so the short lane loops.
    assert_eq!(trig_samples(&f, "short"), vec![0, 6, 8, 10, 12, 14, 16, 18]);
    assert_eq!(trig_samples(&f, "long"), vec![0]);
}

/// (d) Errors inside sequences are located at /sequences/<i>/..., and a resolved sequence
/// value does not corrupt later locations.
#[test]
fn d_sequence_error_locations() {
    let s = script(
        "1.2.0",
        "[]",
        r#""sequences":[{"id":"a","values":[1]},{"id":"b","values":[{"variable":"v","calc":[{"ref":"nope"}]}]}],
           "global-actions":[{"set-variable":{"name":"x","value":{"sequence":"a"}}},
                             {"set-variable":{"name":"y","value":{"ref":"missing"}}}]"#,
    );
    let errs: Vec<(String, Option<u32>)> = timeseq::Engine::load(&s, 48000.0)
        .unwrap_err()
        .errors()
        .into_iter()
        .map(|e| (e.location, e.code))
        .collect();
    assert!(
        errs.contains(&("/sequences/1/values/0/calc/0".to_string(), Some(4))),
        "{errs:?}"
    );
    assert!(
        errs.contains(&("/global-actions/1/set-variable/value".to_string(), Some(4))),
        "{errs:?}"
    );
}

/// (e) A value-based hz of 0 (or any non-finite value-based duration) gives a 1-sample segment.
#[test]
fn e_degenerate_value_durations_are_one_sample() {
    let s = one_timeline(
        "",
        &[
            r#"{"loop":true,"segments":[{"duration":{"hz":{"variable":"zero"}},"actions":[{"trigger":"t"}]}]}"#,
        ],
        "",
    );
    assert_eq!(trig_samples(&run(&s, 4), "t"), vec![0, 1, 2, 3]);
    let s = one_timeline(
        "",
        &[
            r#"{"loop":true,"segments":[{"duration":{"millis":{"voltage":1,"calc":[{"div":{"voltage":0.5}},{"vtof":true},{"vtof":true},{"vtof":true}]}},"actions":[{"trigger":"t"}]}]}"#,
        ],
        "",
    );
    // 2^(2^(2^... 261)) overflows to +inf: 1-sample segments.
    assert_eq!(trig_samples(&run(&s, 3), "t"), vec![0, 1, 2]);
}

/// (f) Huge durations are clamped to 2^53 samples: the segment never ends, no UB.
#[test]
fn f_huge_durations_clamp() {
    for dur in [
        r#"{"millis":3.0e38}"#,
        r#"{"samples":{"voltage":10,"calc":[{"mult":{"voltage":1e17,"no-limit":true}}]}}"#,
    ] {
        let s = one_timeline(
            "",
            &[&format!(
                r#"{{"loop":true,"segments":[{{"duration":{dur},"actions":[{{"trigger":"t"}},{{"timing":"gate","output":1}}]}}]}}"#
            )],
            "",
        );
        let f = run(&s, 2000);
        assert_eq!(trig_samples(&f, "t"), vec![0]);
        assert!(out(&f, 1, 1).iter().all(|v| *v == 10.0));
    }
}

/// (g) add-to-sequence cannot allocate: capacity max(256, 4 x initial); extra adds are counted.
#[test]
fn g_sequence_capacity() {
    let s = one_timeline(
        "",
        &[
            r#"{"repeat":300,"segments":[{"duration":{"samples":1},"actions":[{"add-to-sequence":{"id":"s","value":1}},{"add-to-sequence":{"id":"big","value":1,"position":3}}]}]}"#,
        ],
        r#""sequences":[{"id":"s","values":[]},{"id":"big","values":[0,1,2,3,4,5,6,7,8,9,0,1,2,3,4,5,6,7,8,9,0,1,2,3,4,5,6,7,8,9,0,1,2,3,4,5,6,7,8,9,0,1,2,3,4,5,6,7,8,9,0,1,2,3,4,5,6,7,8,9,0,1,2,3,4,5,6,7,8,9]}]"#,
    );
    let mut e = load(&s, 48000.0);
    e.start(0);
    for _ in 0..400 {
        e.process(1);
    }
    // "s": capacity 256 -> 44 ignored; "big" (70 values): capacity 280 -> 300 - 210 = 90 ignored.
    assert_eq!(e.sequence_overflows(), 44 + 90);
}

/// (h) Robustness addition: a value stored in a sequence that reads the same sequence
/// recurses forever in the reference (stack overflow). We cut the recursion at
/// `MAX_SEQ_DEPTH` nested reads and use 0 V there.
#[test]
fn h_self_referencing_sequence_value_does_not_overflow_the_stack() {
    let s = one_timeline(
        "",
        &[r#"{"segments":[
            {"duration":{"samples":1},"actions":[{"add-to-sequence":{"id":"s","value":{"sequence":"s","calc":[{"add":1}]}}}]},
            {"duration":{"samples":1},"actions":[{"set-variable":{"name":"x","value":{"sequence":{"id":"s","move-after":"none"}}}}]}]}"#],
        r#""sequences":[{"id":"s","values":[]}]"#,
    );
    let mut e = load(&s, 48000.0);
    e.start(0);
    e.process(1);
    e.process(1);
    // 64 nested reads, each adding 1 to the innermost 0 V.
    assert_eq!(e.variable_by_name("x"), timeseq::MAX_SEQ_DEPTH as f32);
    assert_eq!(e.sequence_recursion_cutoffs(), 1);
}
