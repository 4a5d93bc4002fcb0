//! Semantic tests per SPEC.md section, with expected sample indices derived by hand.

mod common;
use common::*;
use timeseq::{Engine, Status};

// ---------- §7 durations ----------

#[test]
fn beats_at_70_bpm_start_at_0_41142_82285() {
    // x = 48000*60/70 = 41142.857: D = 41142, drift 0.857 per beat. The second beat's
    // accumulated drift reaches 1.714 at its nominal end, so one sample is inserted.
    let s = one_timeline(
        r#"{"bpm":70}"#,
        &[
            r#"{"loop":true,"segments":[{"duration":{"beats":1},"actions":[{"timing":"gate","output":1}]}]}"#,
        ],
        "",
    );
    let f = run(&s, 90000);
    assert_eq!(rises(&f, 1, 1, 10.0), vec![0, 41142, 82285]);
}

#[test]
fn samples_with_timeline_sample_rate_are_rescaled() {
    // 100 samples at a 44100 time-scale, engine at 48000: x = 100*48000/44100 = 108.84,
    // D = 108, drift .8435. Segment 1: samples 0..=107 (acc .84). Segment 2 starts at 108,
    // acc 1.69 at its nominal end 215 -> one inserted sample, ends at 216 (acc .69).
    // Segment 3 starts at 217, acc 1.53 -> inserted again, ends at 325; next at 326.
    let s = one_timeline(
        r#"{"sample-rate":44100}"#,
        &[r#"{"loop":true,"segments":[{"duration":{"samples":100},"actions":[{"trigger":"t"}]}]}"#],
        "",
    );
    let f = run(&s, 330);
    assert_eq!(trig_samples(&f, "t"), vec![0, 108, 217, 326]);
}

#[test]
fn millis_and_hz_durations() {
    // 1.5 ms at 48 kHz = 72 samples exactly; 1000 hz = 48 samples.
    let s = one_timeline(
        "",
        &[
            r#"{"loop":true,"segments":[{"duration":{"millis":1.5},"actions":[{"trigger":"m"}]}]}"#,
            r#"{"loop":true,"segments":[{"duration":{"hz":1000},"actions":[{"trigger":"h"}]}]}"#,
        ],
        "",
    );
    let f = run(&s, 150);
    assert_eq!(trig_samples(&f, "m"), vec![0, 72, 144]);
    assert_eq!(trig_samples(&f, "h"), vec![0, 48, 96, 144]);
}

#[test]
fn sub_sample_durations_borrow_time() {
    // hz 96000 at 48 kHz: x = 0.5, D = 1, drift -0.5. Every segment is 1 sample; the
    // negative drift never inserts samples.
    let s = one_timeline(
        "",
        &[r#"{"loop":true,"segments":[{"duration":{"hz":96000},"actions":[{"trigger":"t"}]}]}"#],
        "",
    );
    let f = run(&s, 5);
    assert_eq!(trig_samples(&f, "t"), vec![0, 1, 2, 3, 4]);
}

#[test]
fn value_based_duration_is_evaluated_after_start_actions() {
    // The start action sets d = 3 before the duration is evaluated: 3-sample segments.
    let s = one_timeline(
        "",
        &[
            r#"{"loop":true,"segments":[{"duration":{"samples":{"variable":"d"}},"actions":[
            {"set-variable":{"name":"d","value":3}},{"trigger":"t"}]}]}"#,
        ],
        "",
    );
    let f = run(&s, 10);
    assert_eq!(trig_samples(&f, "t"), vec![0, 3, 6, 9]);
}

// ---------- §8 actions ----------

#[test]
fn gate_high_ratios() {
    let lane = |ratio: &str| {
        format!(
            r#"{{"segments":[{{"duration":{{"samples":10}},"actions":[{{"timing":"gate","output":1{ratio}}}]}}]}}"#
        )
    };
    // ratio 0.5: lowPos = ceil(5) = 5, high for positions 1..5 = samples 0..4.
    let f = run(&one_timeline("", &[&lane("")], ""), 10);
    assert_eq!(out(&f, 1, 1), [10., 10., 10., 10., 10., 0., 0., 0., 0., 0.]);
    // ratio 0: 1 sample; ratio 1: D-1 = 9 samples.
    let f = run(
        &one_timeline("", &[&lane(r#","gate-high-ratio":0"#)], ""),
        10,
    );
    assert_eq!(rises(&f, 1, 1, 10.0), vec![0]);
    assert_eq!(out(&f, 1, 1)[1], 0.0);
    let f = run(
        &one_timeline("", &[&lane(r#","gate-high-ratio":1"#)], ""),
        10,
    );
    assert_eq!(out(&f, 1, 1)[8], 10.0);
    assert_eq!(out(&f, 1, 1)[9], 0.0);
}

#[test]
fn one_sample_gate_shows_no_pulse() {
    let s = one_timeline(
        "",
        &[
            r#"{"loop":true,"segments":[{"duration":{"samples":1},"actions":[{"timing":"gate","output":1}]}]}"#,
        ],
        "",
    );
    let f = run(&s, 5);
    assert!(out(&f, 1, 1).iter().all(|v| *v == 0.0));
}

#[test]
fn glide_runs_start_to_end_inclusive() {
    let s = one_timeline(
        "",
        &[r#"{"segments":[{"duration":{"samples":10},"actions":[
            {"timing":"glide","start-value":0,"end-value":4.5,"output":1}]}]}"#],
        "",
    );
    let f = run(&s, 12);
    let want: Vec<f32> = (0..10).map(|i| i as f32 / 2.0).chain([4.5, 4.5]).collect();
    assert_eq!(out(&f, 1, 1), want);
}

#[test]
fn one_sample_glide_writes_the_end_value() {
    let s = one_timeline(
        "",
        &[r#"{"segments":[{"duration":{"samples":1},"actions":[
            {"timing":"glide","start-value":2,"end-value":3,"output":1}]}]}"#],
        "",
    );
    assert_eq!(out(&run(&s, 1), 1, 1), vec![3.0]);
}

#[test]
fn glide_easing_in_f32() {
    for (algo, factor) in [("sig", 1.0f32), ("sig", -2.0), ("pow", 0.5), ("pow", -1.5)] {
        let s = one_timeline(
            "",
            &[&format!(
                r#"{{"segments":[{{"duration":{{"samples":11}},"actions":[
                {{"timing":"glide","start-value":-5,"end-value":5,"output":1,"ease-factor":{factor},"ease-algorithm":"{algo}"}}]}}]}}"#
            )],
            "",
        );
        let f = run(&s, 11);
        let inv = 1.0f64 / 10.0;
        for i in 0..10u64 {
            let t = (inv * i as f64) as f32;
            let e = if algo == "pow" {
                if factor > 0.0 {
                    t.powf(1.0 + factor * 2.0)
                } else {
                    1.0 - (1.0 - t).powf(1.0 - factor * 2.0)
                }
            } else {
                let ff = factor * 3.5;
                if ff > 0.0 {
                    t / (1.0 + ff * (1.0 - t))
                } else {
                    1.0 - ((1.0 - t) / (1.0 - ff * t))
                }
            };
            let want = (-5.0f64 + 10.0 * e as f64) as f32;
            assert_eq!(
                f[i as usize].outputs[0][0], want,
                "{algo} {factor} sample {i}"
            );
        }
        assert_eq!(f[10].outputs[0][0], 5.0);
    }
}

#[test]
fn start_end_actions_order_and_same_sample_reads() {
    let s = one_timeline(
        "",
        &[r#"{"segments":[
            {"duration":{"samples":3},"actions":[
                {"set-value":{"output":1,"value":1}},
                {"timing":"end","set-value":{"output":1,"value":2}}]},
            {"duration":{"samples":1},"actions":[
                {"set-value":{"output":2,"value":{"output":1}}},
                {"set-value":{"output":3,"value":1}},
                {"timing":"end","set-value":{"output":3,"value":{"output":3,"calc":[{"add":1}]}}}]}]}"#],
        "",
    );
    let f = run(&s, 5);
    assert_eq!(out(&f, 1, 1), [1., 1., 2., 2., 2.]);
    assert_eq!(out(&f, 2, 1), [0., 0., 0., 2., 2.]);
    // A 1-sample segment runs start and end actions in the same sample.
    assert_eq!(out(&f, 3, 1), [0., 0., 0., 2., 2.]);
}

#[test]
fn action_if_is_evaluated_each_time_and_glide_if_once() {
    // x counts up by one each sample; the start action runs only when x < 2.
    let s = one_timeline(
        "",
        &[
            r#"{"loop":true,"segments":[{"duration":{"samples":1},"actions":[
            {"set-variable":{"name":"x","value":{"variable":"x","calc":[{"add":1}]}}},
            {"trigger":"t","if":{"lt":[{"variable":"x"},3]}}]}]}"#,
        ],
        "",
    );
    let f = run(&s, 5);
    assert_eq!(trig_samples(&f, "t"), vec![0, 1]);
}

#[test]
fn polyphony_and_labels() {
    let s = one_timeline(
        "",
        &[r#"{"segments":[{"duration":{"samples":2},"actions":[
            {"set-polyphony":{"index":2,"channels":4}},
            {"set-label":{"index":3,"label":"Lead"}},
            {"set-value":{"output":{"index":2,"channel":16},"value":1}}]}]}"#],
        "",
    );
    let f = run(&s, 2);
    assert_eq!(f[0].poly[1], 4);
    assert_eq!(f[0].labels, vec![(2, "Lead".to_string())]);
    assert!(f[1].labels.is_empty());
    // Channels above the polyphony are stored too.
    assert_eq!(f[0].outputs[1][15], 1.0);
}

#[test]
fn assert_message_and_stop_on_fail() {
    let s = one_timeline(
        "",
        &[
            r#"{"loop":true,"segments":[{"duration":{"samples":2},"actions":[
            {"assert":{"name":"a","expect":{"eq":[2,9]},"stop-on-fail":false}},
            {"assert":{"name":"b","expect":{"and":[{"gt":[1,0]},{"lt":[3,2]}]}}},
            {"set-variable":{"name":"n","value":{"variable":"n","calc":[{"add":1}]}}}]}]}"#,
        ],
        "",
    );
    let mut e = load(&s, 48000.0);
    e.start(0);
    e.process(1);
    let f = frame(&e);
    assert_eq!(
        f.asserts,
        vec![
            ("a".to_string(), "(2 eq 9)".to_string(), false),
            ("b".to_string(), "((1 gt 0) and (3 lt 2))".to_string(), true)
        ]
    );
    // stop-on-fail paused the engine after that sample: nothing changes any more.
    assert_eq!(e.status(), Status::Paused);
    for _ in 0..10 {
        e.process(1);
    }
    assert_eq!(e.variable_by_name("n"), 1.0);
}

// ---------- §9 / §10 values, calcs, tunings ----------

fn global_vars(values: &[(&str, &str)]) -> Engine {
    let acts: Vec<String> = values
        .iter()
        .map(|(n, v)| format!(r#"{{"set-variable":{{"name":"{n}","value":{v}}}}}"#))
        .collect();
    let s = script(
        "1.2.0",
        "[]",
        &format!(r#""global-actions":[{}]"#, acts.join(",")),
    );
    let mut e = load(&s, 48000.0);
    e.start(0);
    e.process(1);
    e
}

#[test]
fn notes_and_calcs() {
    let e = global_vars(&[
        ("c0m", r#""C0-""#),
        ("e4m", r#""e4-""#),
        ("b9p", r#""B9+""#),
        ("div0", r#"{"voltage":5,"calc":[{"div":0}]}"#),
        ("rem", r#"{"voltage":-7,"calc":[{"remain":3}]}"#),
        ("rem0", r#"{"voltage":7,"calc":[{"remain":0}]}"#),
        ("near", r#"{"voltage":2.5,"calc":[{"round":"near"}]}"#),
        ("nearn", r#"{"voltage":-2.5,"calc":[{"round":"near"}]}"#),
        ("up", r#"{"voltage":-2.5,"calc":[{"round":"up"}]}"#),
        ("frac", r#"{"voltage":-2.75,"calc":[{"frac":true}]}"#),
        ("trunc", r#"{"voltage":-2.75,"calc":[{"trunc":true}]}"#),
        ("neg", r#"{"voltage":3,"calc":[{"sign":"neg"}]}"#),
        ("pos", r#"{"voltage":-3,"calc":[{"sign":"pos"}]}"#),
        ("vtof", r#"{"voltage":1,"calc":[{"vtof":true}]}"#),
        (
            "max",
            r#"{"voltage":1,"calc":[{"max":4},{"min":2},{"mult":-3},{"sub":1},{"add":0.5}]}"#,
        ),
        ("big", r#"{"voltage":10,"calc":[{"mult":10}]}"#),
    ]);
    assert_eq!(
        timeseq::fmt::fmt_g(e.variable_by_name("c0m") as f64, 9),
        "-4.08333349"
    );
    assert_eq!(e.variable_by_name("e4m"), 0.25);
    assert_eq!(e.variable_by_name("b9p"), 6.0);
    assert_eq!(e.variable_by_name("div0"), 0.0);
    assert_eq!(e.variable_by_name("rem"), -1.0);
    assert_eq!(e.variable_by_name("rem0"), 0.0);
    assert_eq!(e.variable_by_name("near"), 3.0);
    assert_eq!(e.variable_by_name("nearn"), -3.0);
    assert_eq!(e.variable_by_name("up"), -2.0);
    assert_eq!(e.variable_by_name("frac"), -0.75);
    assert_eq!(e.variable_by_name("trunc"), -2.0);
    assert_eq!(e.variable_by_name("neg"), -3.0);
    assert_eq!(e.variable_by_name("pos"), 3.0);
    assert_eq!(
        e.variable_by_name("vtof"),
        (2.0 * 261.6256f32 as f64) as f32
    );
    assert_eq!(e.variable_by_name("max"), -6.5);
    // Calc results are not clamped.
    assert_eq!(e.variable_by_name("big"), 100.0);
}

#[test]
fn semitone_quantize() {
    let e = global_vars(&[
        ("a", r#"{"voltage":0.04,"quantize":true}"#),
        ("b", r#"{"voltage":0.0417,"quantize":true}"#),
        ("c", r#"{"voltage":-0.04,"quantize":true}"#),
        ("d", r#"{"voltage":0.99,"quantize":true}"#),
    ]);
    assert_eq!(e.variable_by_name("a"), 0.0);
    assert_eq!(e.variable_by_name("b"), (1.0f32 / 12.0));
    // -0.04: octave -1, fraction 0.96 -> rounds up to the next C.
    assert_eq!(e.variable_by_name("c"), 0.0);
    assert_eq!(e.variable_by_name("d"), 1.0);
}

#[test]
fn tuning_quantize() {
    let q = |v: f32| format!(r#"{{"voltage":{v},"calc":[{{"quantize":{{"notes":[0,0.5]}}}}]}}"#);
    let e = global_vars(&[
        ("a", &q(0.2)),
        ("b", &q(0.3)),
        ("c", &q(0.8)),
        ("d", &q(-0.2)),
        ("e", &q(2.25)),
    ]);
    assert_eq!(e.variable_by_name("a"), 0.0);
    assert_eq!(e.variable_by_name("b"), 0.5);
    assert_eq!(e.variable_by_name("c"), 1.0);
    assert_eq!(e.variable_by_name("d"), 0.0);
    // Exact midpoint rounds up.
    assert_eq!(e.variable_by_name("e"), 2.5);
    // Note-name tunings: "C" and "G" -> 0 and 7/12.
    let e = global_vars(&[(
        "g",
        r#"{"voltage":0.5,"calc":[{"quantize":{"notes":["G","c"]}}]}"#,
    )]);
    assert_eq!(e.variable_by_name("g"), 7.0f32 / 12.0);
}

#[test]
fn rand_respects_bounds_and_equal_bounds() {
    let e = global_vars(&[("eq", r#"{"rand":{"lower":2,"upper":2}}"#)]);
    assert_eq!(e.variable_by_name("eq"), 2.0);
    let s = one_timeline(
        "",
        &[
            r#"{"loop":true,"segments":[{"duration":{"samples":1},"actions":[
            {"set-value":{"output":1,"value":{"rand":{"lower":3,"upper":-1}}}}]}]}"#,
        ],
        "",
    );
    for v in out(&run(&s, 500), 1, 1) {
        assert!((-1.0..3.0).contains(&v), "{v}");
    }
}

// ---------- §11 ifs ----------

#[test]
fn if_tolerance() {
    let e = global_vars(&[("a", r#"{"voltage":1}"#), ("b", r#"{"voltage":1.1}"#)]);
    assert_eq!(e.variable_by_name("a"), 1.0);
    let s = script(
        "1.2.0",
        "[]",
        r#""global-actions":[
            {"set-variable":{"name":"t","value":1},"if":{"eq":[1,1.1],"tolerance":0.2}},
            {"set-variable":{"name":"u","value":1},"if":{"eq":[1,1.1]}},
            {"set-variable":{"name":"v","value":1},"if":{"ne":[1,1.1],"tolerance":0.2}},
            {"set-variable":{"name":"w","value":1},"if":{"or":[{"gt":[1,2]},{"lte":[2,2]}]}}]"#,
    );
    let mut e = load(&s, 48000.0);
    e.start(0);
    e.process(1);
    assert_eq!(e.variable_by_name("t"), 1.0);
    assert_eq!(e.variable_by_name("u"), 0.0);
    assert_eq!(e.variable_by_name("v"), 0.0);
    assert_eq!(e.variable_by_name("w"), 1.0);
}

// ---------- §5 lanes and §13 triggers ----------

#[test]
fn triggers_are_seen_in_the_next_sample() {
    let s = one_timeline(
        "",
        &[
            r#"{"segments":[{"duration":{"samples":1},"actions":[{"trigger":"go"}]},{"duration":{"samples":100}}]}"#,
            r#"{"auto-start":false,"start-trigger":"go","segments":[{"duration":{"samples":5},"actions":[{"set-value":{"output":1,"value":5}}]}]}"#,
        ],
        "",
    );
    let f = run(&s, 3);
    assert_eq!(trig_samples(&f, "go"), vec![0]);
    assert_eq!(out(&f, 1, 1), [0., 5., 5.]);
}

#[test]
fn repeat_and_loop() {
    let lane = |extra: &str| {
        one_timeline(
            "",
            &[&format!(
                r#"{{{extra}"segments":[{{"duration":{{"samples":4}},"actions":[{{"trigger":"t"}}]}}]}}"#
            )],
            "",
        )
    };
    assert_eq!(trig_samples(&run(&lane(""), 20), "t"), vec![0]);
    assert_eq!(
        trig_samples(&run(&lane(r#""repeat":1,"#), 20), "t"),
        vec![0]
    );
    assert_eq!(
        trig_samples(&run(&lane(r#""repeat":3,"#), 20), "t"),
        vec![0, 4, 8]
    );
    assert_eq!(
        trig_samples(&run(&lane(r#""loop":true,"repeat":2,"#), 13), "t"),
        vec![0, 4, 8, 12]
    );
    // A lane without segments never runs; auto-start false waits.
    assert_eq!(
        trig_samples(&run(&lane(r#""auto-start":false,"#), 20), "t"),
        Vec::<usize>::new()
    );
}

#[test]
fn loop_lock_waits_for_all_lanes() {
    let lanes = [
        r#"{"loop":true,"segments":[{"duration":{"samples":3},"actions":[{"trigger":"a"}]}]}"#,
        r#"{"loop":true,"segments":[{"duration":{"samples":5},"actions":[{"trigger":"b"}]}]}"#,
    ];
    let free = script(
        "1.2.0",
        &format!(r#"[{{"lanes":[{}]}}]"#, lanes.join(",")),
        "",
    );
    let f = run(&free, 11);
    assert_eq!(trig_samples(&f, "a"), vec![0, 3, 6, 9]);
    assert_eq!(trig_samples(&f, "b"), vec![0, 5, 10]);
    let locked = script(
        "1.2.0",
        &format!(r#"[{{"loop-lock":true,"lanes":[{}]}}]"#, lanes.join(",")),
        "",
    );
    let f = run(&locked, 11);
    assert_eq!(trig_samples(&f, "a"), vec![0, 5, 10]);
    assert_eq!(trig_samples(&f, "b"), vec![0, 5, 10]);
}

#[test]
fn start_restart_stop_triggers() {
    // Driver lane fires at samples 0 (start), 3 (restart), 6 (stop), 8 (start+stop).
    let driver = r#"{"segments":[
        {"duration":{"samples":3},"actions":[{"trigger":"start"}]},
        {"duration":{"samples":3},"actions":[{"trigger":"restart"}]},
        {"duration":{"samples":2},"actions":[{"trigger":"stop"}]},
        {"duration":{"samples":5},"actions":[{"trigger":"start"},{"trigger":"stop"}]}]}"#;
    let target = r#"{"auto-start":false,"start-trigger":"start","restart-trigger":"restart","stop-trigger":"stop",
        "segments":[{"duration":{"samples":2},"actions":[{"trigger":"seg"}]}],"loop":true}"#;
    let f = run(&one_timeline("", &[driver, target], ""), 14);
    // Started at 1, segment every 2 samples (1, 3); restarted at 4 -> 4; stopped at 7;
    // start and stop in the same sample (9) leave it idle.
    assert_eq!(trig_samples(&f, "seg"), vec![1, 3, 4, 6]);
}

#[test]
fn segment_block_repeat_and_link_actions() {
    let s = one_timeline(
        "",
        &[
            r#"{"segments":[{"segment-block":"b","actions":[{"trigger":"pre"},{"timing":"end","trigger":"post"}]}]}"#,
        ],
        r#""component-pool":{"segment-blocks":[{"id":"b","repeat":2,"segments":[{"duration":{"samples":2},"actions":[{"trigger":"s"}]}]}]}"#,
    );
    let f = run(&s, 6);
    assert_eq!(f[0].triggers, vec!["pre", "s"]);
    assert_eq!(trig_samples(&f, "s"), vec![0, 2]);
    assert_eq!(trig_samples(&f, "post"), vec![3]);
}

#[test]
fn nested_blocks_order_outer_start_first_inner_end_first() {
    let s = one_timeline(
        "",
        &[
            r#"{"segments":[{"segment-block":"outer","actions":[{"trigger":"os"},{"timing":"end","trigger":"oe"}]}]}"#,
        ],
        r#""component-pool":{"segment-blocks":[
            {"id":"outer","segments":[{"segment-block":"inner","actions":[{"trigger":"is"},{"timing":"end","trigger":"ie"}]}]},
            {"id":"inner","segments":[{"duration":{"samples":1},"actions":[{"trigger":"s"},{"timing":"end","trigger":"e"}]}]}]}"#,
    );
    let f = run(&s, 1);
    assert_eq!(f[0].triggers, vec!["os", "is", "s", "e", "ie", "oe"]);
}

#[test]
fn input_trigger_schmitt() {
    let s = script("1.2.0", "[]", r#""input-triggers":[{"id":"in","input":1}]"#);
    let volts = [
        5.0, 5.0, 5.0, 0.0, 5.0, 0.5, 5.0, 0.0, 1.0, 0.99, -1.0, 0.99, 1.0,
    ];
    let f = run_with(&s, 48000.0, volts.len(), |e, i| e.set_input(0, 0, volts[i]));
    // Initially high: the first rise only counts after a low. 0.5 V does not re-arm.
    assert_eq!(trig_samples(&f, "in"), vec![4, 8, 12]);
}

// ---------- §12 sequences ----------

#[test]
fn sequence_reads_move_after_forward_with_wrap() {
    let s = one_timeline(
        "",
        &[
            r#"{"loop":true,"segments":[{"duration":{"samples":1},"actions":[
            {"set-variable":{"name":"x","value":{"sequence":"s"}}}]}]}"#,
        ],
        r#""sequences":[{"id":"s","values":[1,2,3]}]"#,
    );
    let f = run(&s, 5);
    let xs: Vec<f32> = f.iter().map(|fr| var(fr, "x")).collect();
    assert_eq!(xs, [1., 2., 3., 1., 2.]);
}

#[test]
fn sequence_operations_and_cache() {
    // One sample per step; each step's start actions listed in order.
    let steps = [
        // 0: read (no move) -> 1; cached
        r#"[{"set-variable":{"name":"v","value":{"sequence":{"id":"s","move-after":"none"}}}}]"#,
        // 1: add 9 at front, read without move: cache survives -> 1
        r#"[{"add-to-sequence":{"id":"s","value":9,"position":0}},{"set-variable":{"name":"v","value":{"sequence":{"id":"s","move-after":"none"}}}}]"#,
        // 2: move to position 0 (clears cache) and read -> 9
        r#"[{"move-sequence":{"id":"s","position":0}},{"set-variable":{"name":"v","value":{"sequence":{"id":"s","move-after":"none"}}}}]"#,
        // 3: clear, read: stale cache 9 survives
        r#"[{"clear-sequence":"s"},{"set-variable":{"name":"v","value":{"sequence":{"id":"s","move-after":"none"}}}}]"#,
        // 4: remove from empty (no-op), move none clears cache, read empty -> 0
        r#"[{"remove-from-sequence":{"id":"s"}},{"move-sequence":{"id":"s","direction":"none"}},{"set-variable":{"name":"v","value":{"sequence":{"id":"s","move-after":"none"}}}}]"#,
        // 5: add 4, 5 (append), move backward with wrap from 0 -> 1 -> reads 5
        r#"[{"add-to-sequence":{"id":"s","value":4}},{"add-to-sequence":{"id":"s","value":5,"position":-1}},{"move-sequence":{"id":"s","direction":"backward"}},{"set-variable":{"name":"v","value":{"sequence":{"id":"s","move-after":"none"}}}}]"#,
        // 6: remove last, position 1 now out of range -> reads the last value (4); move clears cache first
        r#"[{"remove-from-sequence":{"id":"s","position":-1}},{"move-sequence":{"id":"s","direction":"none"}},{"set-variable":{"name":"v","value":{"sequence":{"id":"s","move-after":"none"}}}}]"#,
    ];
    let segs: Vec<String> = steps
        .iter()
        .map(|a| format!(r#"{{"duration":{{"samples":1}},"actions":{a}}}"#))
        .collect();
    let s = one_timeline(
        "",
        &[&format!(r#"{{"segments":[{}]}}"#, segs.join(","))],
        r#""sequences":[{"id":"s","values":[1,2]}]"#,
    );
    let f = run(&s, 7);
    let vs: Vec<f32> = f.iter().map(|fr| var(fr, "v")).collect();
    assert_eq!(vs, [1., 1., 9., 9., 0., 5., 4.]);
}

#[test]
fn non_shared_sequences_have_a_position_per_site() {
    let s = one_timeline(
        "",
        &[
            r#"{"loop":true,"segments":[{"duration":{"samples":1},"actions":[
            {"set-variable":{"name":"a","value":{"sequence":"s"}}},
            {"set-variable":{"name":"b","value":{"sequence":"s"}}}]}]}"#,
        ],
        r#""sequences":[{"id":"s","values":[1,2,3],"shared":false},{"id":"t","values":[1,2,3]}]"#,
    );
    let f = run(&s, 3);
    let ab: Vec<(f32, f32)> = f.iter().map(|fr| (var(fr, "a"), var(fr, "b"))).collect();
    assert_eq!(ab, [(1., 1.), (2., 2.), (3., 3.)]);
}

// ---------- §14 variables, §16 lifecycle ----------

#[test]
fn writing_zero_clears_a_variable_in_the_trace() {
    let s = one_timeline(
        "",
        &[
            r#"{"segments":[{"duration":{"samples":1},"actions":[{"set-variable":{"name":"x","value":2}}]},
            {"duration":{"samples":1},"actions":[{"set-variable":{"name":"x","value":0}}]}]}"#,
        ],
        "",
    );
    let path = std::env::temp_dir().join(format!("timeseq-var-{}.json", std::process::id()));
    std::fs::write(&path, &s).unwrap();
    let args: Vec<String> = [
        path.to_str().unwrap(),
        "--sample-rate",
        "48000",
        "--samples",
        "3",
        "--vars",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let mut outbuf = Vec::new();
    assert_eq!(timeseq::cli::trace(&args, &mut outbuf).unwrap(), 0);
    std::fs::remove_file(&path).ok();
    let text = String::from_utf8(outbuf).unwrap();
    assert_eq!(
        text.lines()
            .filter(|l| l.starts_with('@'))
            .collect::<Vec<_>>(),
        ["@0 var:x=2", "@1 var:x=0"]
    );
}

#[test]
fn reset_runs_global_actions_before_lanes_and_clears_state() {
    let s = one_timeline(
        "",
        &[r#"{"segments":[{"duration":{"samples":100},"actions":[
            {"set-value":{"output":2,"value":{"output":1}}},
            {"set-variable":{"name":"x","value":{"variable":"x","calc":[{"add":1}]}}}]}]}"#],
        r#""global-actions":[{"set-value":{"output":1,"value":3}},{"set-polyphony":{"index":1,"channels":3}}]"#,
    );
    let mut e = load(&s, 48000.0);
    // Before start: the load reset runs the global actions, but no lane processing.
    e.process(1);
    assert_eq!(e.status(), Status::Paused);
    assert_eq!(e.output(0, 0), 3.0);
    assert_eq!(e.output(1, 0), 0.0);
    e.start(0);
    e.process(1);
    assert_eq!(e.output(1, 0), 3.0);
    assert_eq!(e.variable_by_name("x"), 1.0);
    // Pause keeps everything; start does not reset.
    e.pause();
    e.process(1);
    e.start(0);
    e.process(1);
    assert_eq!(e.variable_by_name("x"), 1.0);
    // Reset: variables cleared, outputs zeroed, global actions again, lanes restart.
    e.set_input(0, 0, 0.0);
    e.reset();
    e.process(1);
    assert_eq!(e.variable_by_name("x"), 1.0);
    assert_eq!(e.polyphony(0), 3);
    assert_eq!(e.output(1, 0), 3.0);
}

#[test]
fn start_delay_defers_processing() {
    let s = one_timeline(
        "",
        &[r#"{"segments":[{"duration":{"samples":5},"actions":[{"trigger":"t"}]}]}"#],
        "",
    );
    let mut e = load(&s, 48000.0);
    e.start(2);
    e.process(1);
    e.process(1);
    assert_eq!(e.fired_triggers().count(), 0);
    e.process(1);
    assert_eq!(e.fired_triggers().collect::<Vec<_>>(), ["t"]);
}

#[test]
fn sample_rate_change_reloads_and_rescales() {
    let s = one_timeline(
        "",
        &[
            r#"{"loop":true,"segments":[{"duration":{"millis":1},"actions":[{"trigger":"t"},{"set-variable":{"name":"n","value":1}}]}]}"#,
        ],
        "",
    );
    let mut e = load(&s, 48000.0);
    e.start(0);
    let mut at = Vec::new();
    for i in 0..100 {
        e.process(1);
        if e.fired_triggers().count() > 0 {
            at.push(i);
        }
    }
    assert_eq!(at, [0, 48, 96]);
    e.set_sample_rate(96000.0).unwrap();
    assert_eq!(e.variable_by_name("n"), 0.0);
    assert_eq!(e.status(), Status::Loading);
    e.start(0);
    let mut at = Vec::new();
    for i in 0..200 {
        e.process(1);
        if e.fired_triggers().count() > 0 {
            at.push(i);
        }
    }
    assert_eq!(at, [0, 96, 192]);
}

#[test]
fn process_rate_runs_several_script_samples() {
    let s = one_timeline(
        "",
        &[
            r#"{"loop":true,"segments":[{"duration":{"samples":4},"actions":[{"set-variable":{"name":"n","value":{"variable":"n","calc":[{"add":1}]}}}]}]}"#,
        ],
        "",
    );
    let mut e = load(&s, 48000.0);
    e.start(0);
    e.process(8);
    assert_eq!(e.variable_by_name("n"), 2.0);
}

#[test]
fn start_while_running_is_ignored_and_pause_clears_the_delay() {
    let s = one_timeline(
        "",
        &[r#"{"loop":true,"segments":[{"duration":{"samples":1},"actions":[{"trigger":"t"}]}]}"#],
        "",
    );
    let mut e = load(&s, 48000.0);
    let fired = |e: &mut timeseq::Engine| {
        e.process(1);
        e.fired_triggers().count() > 0
    };
    e.start(0);
    assert!(fired(&mut e));
    e.start(5); // already running: ignored, no delay
    assert!(fired(&mut e));
    e.pause();
    assert!(!fired(&mut e));
    e.start(2);
    assert!(!fired(&mut e));
    assert!(!fired(&mut e));
    assert!(fired(&mut e));
    // A start delay is dropped by pause.
    e.pause();
    e.start(0);
    assert!(fired(&mut e));
}

#[test]
fn stop_on_fail_in_a_global_action_pauses_before_the_lanes() {
    let s = one_timeline(
        "",
        &[
            r#"{"segments":[{"duration":{"samples":5},"actions":[{"set-value":{"output":1,"value":1}}]}]}"#,
        ],
        r#""global-actions":[{"assert":{"name":"g","expect":{"eq":[1,2]}}}]"#,
    );
    let mut e = load(&s, 48000.0);
    e.start(0);
    e.process(1);
    assert_eq!(e.status(), Status::Paused);
    assert_eq!(e.assert_failures().len(), 1);
    assert_eq!(e.output(0, 0), 0.0);
}

#[test]
fn stop_on_fail_finishes_the_current_process_call() {
    // With process(rate), the remaining script samples of that call still run.
    let s = one_timeline(
        "",
        &[
            r#"{"loop":true,"segments":[{"duration":{"samples":1},"actions":[
            {"assert":{"name":"a","expect":{"eq":[1,2]}}},
            {"set-variable":{"name":"n","value":{"variable":"n","calc":[{"add":1}]}}}]}]}"#,
        ],
        "",
    );
    let mut e = load(&s, 48000.0);
    e.start(0);
    e.process(3);
    assert_eq!(e.status(), Status::Paused);
    assert_eq!(e.variable_by_name("n"), 3.0);
    e.process(3);
    assert_eq!(e.variable_by_name("n"), 3.0);
}
