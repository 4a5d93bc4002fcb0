//! Every error code of SPEC.md §17 with its location.

use timeseq::{Engine, LoadError};

const SEG: &str = "/timelines/0/lanes/0/segments/0";
const ACT: &str = "/timelines/0/lanes/0/segments/0/actions/0";
const VAL: &str = "/timelines/0/lanes/0/segments/0/actions/0/set-value/value";
const IF: &str = "/timelines/0/lanes/0/segments/0/actions/0/if";
const CALC: &str = "/timelines/0/lanes/0/segments/0/actions/0/set-value/value/calc/0";
const DUR: &str = "/timelines/0/lanes/0/segments/0/duration";
const LANE: &str = "/timelines/0/lanes/0";

fn root(version: &str, body: &str) -> String {
    let sep = if body.is_empty() { "" } else { "," };
    format!(r#"{{"type":"not-things_timeseq_script","version":"{version}"{sep}{body}}}"#)
}

/// A script with one lane (time-scale bpm 120, bpb 4) holding `seg`, plus extra root keys.
fn with_seg_v(version: &str, seg: &str, extra: &str) -> String {
    let sep = if extra.is_empty() { "" } else { "," };
    root(
        version,
        &format!(
            r#""timelines":[{{"time-scale":{{"bpm":120,"bpb":4}},"lanes":[{{"segments":[{seg}]}}]}}]{sep}{extra}"#
        ),
    )
}

fn with_seg(seg: &str) -> String {
    with_seg_v("1.2.0", seg, "")
}

fn with_lane(lane: &str) -> String {
    root("1.2.0", &format!(r#""timelines":[{{"lanes":[{lane}]}}]"#))
}

fn with_action_x(act: &str, extra: &str) -> String {
    with_seg_v(
        "1.2.0",
        &format!(r#"{{"duration":{{"samples":10}},"actions":[{act}]}}"#),
        extra,
    )
}

fn with_action(act: &str) -> String {
    with_action_x(act, "")
}

fn with_action_v(version: &str, act: &str) -> String {
    with_seg_v(
        version,
        &format!(r#"{{"duration":{{"samples":10}},"actions":[{act}]}}"#),
        "",
    )
}

fn with_value(v: &str) -> String {
    with_action(&format!(r#"{{"set-value":{{"output":1,"value":{v}}}}}"#))
}

fn with_value_x(v: &str, extra: &str) -> String {
    with_action_x(
        &format!(r#"{{"set-value":{{"output":1,"value":{v}}}}}"#),
        extra,
    )
}

fn with_if(i: &str) -> String {
    with_action(&format!(
        r#"{{"set-value":{{"output":1,"value":1}},"if":{i}}}"#
    ))
}

fn with_calc_v(version: &str, c: &str) -> String {
    with_action_v(
        version,
        &format!(r#"{{"set-value":{{"output":1,"value":{{"voltage":1,"calc":[{c}]}}}}}}"#),
    )
}

fn with_calc(c: &str) -> String {
    with_calc_v("1.2.0", c)
}

fn with_dur(d: &str) -> String {
    with_seg(&format!(r#"{{"duration":{d}}}"#))
}

fn with_pool(pool: &str, seg_ref: &str) -> String {
    with_seg_v("1.2.0", seg_ref, &format!(r#""component-pool":{pool}"#))
}

fn errors(json: &str) -> Vec<(String, Option<u32>)> {
    match Engine::load(json, 48000.0) {
        Ok(_) => vec![],
        Err(e) => e
            .errors()
            .into_iter()
            .map(|e| (e.location, e.code))
            .collect(),
    }
}

#[track_caller]
fn expect(json: &str, loc: &str, code: u32) {
    let errs = errors(json);
    assert!(
        errs.iter().any(|(l, c)| l == loc && *c == Some(code)),
        "expected ({loc}, {code}) in {errs:?}\nscript: {json}"
    );
}

#[test]
fn valid_templates_load() {
    for s in [
        with_seg(r#"{"duration":{"samples":10}}"#),
        with_value("1"),
        with_if(r#"{"eq":[1,1]}"#),
        with_calc(r#"{"add":1}"#),
        with_lane(r#"{"segments":[]}"#),
    ] {
        assert_eq!(errors(&s), vec![], "{s}");
    }
}

#[test]
fn json_syntax_error_has_no_code_and_root_location() {
    let e = Engine::load("{\n  \"type\": ,\n}", 48000.0).unwrap_err();
    let LoadError::Syntax(err) = e else {
        panic!("expected a syntax error")
    };
    assert_eq!(err.location, "/");
    assert_eq!(err.code, None);
    assert!(err.message.contains("line 2"), "{}", err.message);
    assert!(err.to_string().starts_with("/ : "));
    assert!(!err.to_string().ends_with(']'));
}

#[test]
fn general_codes() {
    expect(&with_value(r#"{"ref":5}"#), VAL, 1);
    expect(&with_value(r#"{"ref":""}"#), VAL, 2);
    expect(
        &with_pool(
            r#"{"values":[{"id":"a","ref":"b","voltage":1}]}"#,
            r#"{"duration":{"samples":1}}"#,
        ),
        "/component-pool/values/0",
        3,
    );
    expect(&with_value(r#"{"ref":"nope"}"#), VAL, 4);
    expect(
        &with_value_x(
            r#"{"ref":"a"}"#,
            r#""component-pool":{"values":[{"id":"a","variable":"x","calc":[{"add":{"ref":"a"}}]}]}"#,
        ),
        "/component-pool/values/0/calc/0/add",
        5,
    );
    expect(
        &with_pool(
            r#"{"values":[{"voltage":1}]}"#,
            r#"{"duration":{"samples":1}}"#,
        ),
        "/component-pool/values/0",
        6,
    );
    expect(
        &with_pool(
            r#"{"values":[{"id":"","voltage":1}]}"#,
            r#"{"duration":{"samples":1}}"#,
        ),
        "/component-pool/values/0",
        7,
    );
    expect(&with_value(r#"{"id":"x","voltage":1}"#), VAL, 8);
    expect(
        &with_pool(
            r#"{"values":[{"id":"a","voltage":1},{"id":"a","voltage":2}]}"#,
            r#"{"duration":{"samples":1}}"#,
        ),
        "/component-pool/values/1",
        9,
    );
    expect(&with_value(r#"{"voltage":1,"bogus":1}"#), VAL, 10);
    expect(&with_calc_v("1.0.0", r#"{"max":1}"#), CALC, 11);
}

#[test]
fn x_keys_are_ignored_everywhere() {
    let s = with_value(r#"{"voltage":1,"x-anything":{"bogus":[1,2]}}"#);
    assert_eq!(errors(&s), vec![]);
    let s = with_seg(r#"{"duration":{"samples":1,"x-c":1},"x-d":null}"#);
    assert_eq!(errors(&s), vec![]);
    // Case-sensitive prefix: "X-" is not exempt.
    expect(&with_value(r#"{"voltage":1,"X-no":1}"#), VAL, 10);
    // A ref if is not key-checked.
    let s = with_action_x(
        r#"{"set-value":{"output":1,"value":1},"if":{"ref":"i","bogus":1}}"#,
        r#""component-pool":{"ifs":[{"id":"i","eq":[1,1]}]}"#,
    );
    assert_eq!(errors(&s), vec![]);
}

#[test]
fn root_codes() {
    expect(r#"{"version":"1.2.0","timelines":[]}"#, "/", 101);
    expect(r#"{"type":"x","version":"1.2.0","timelines":[]}"#, "/", 102);
    expect(
        r#"{"type":"not-things_timeseq_script","timelines":[]}"#,
        "/",
        103,
    );
    expect(
        r#"{"type":"not-things_timeseq_script","version":"2.0.0","timelines":[]}"#,
        "/",
        104,
    );
    expect(&root("1.2.0", ""), "/", 105);
    expect(&root("1.2.0", r#""timelines":[1]"#), "/timelines/0", 106);
    let pools = [
        ("segment-blocks", 107, 108),
        ("segments", 109, 110),
        ("inputs", 111, 112),
        ("outputs", 113, 114),
        ("calcs", 115, 116),
        ("values", 117, 118),
        ("actions", 119, 120),
        ("ifs", 121, 122),
        ("tunings", 129, 130),
    ];
    for (key, arr, obj) in pools {
        expect(
            &root(
                "1.2.0",
                &format!(r#""timelines":[],"component-pool":{{"{key}":1}}"#),
            ),
            "/component-pool",
            arr,
        );
        expect(
            &root(
                "1.2.0",
                &format!(r#""timelines":[],"component-pool":{{"{key}":[1]}}"#),
            ),
            &format!("/component-pool/{key}/0"),
            obj,
        );
    }
    expect(
        &root("1.2.0", r#""timelines":[],"input-triggers":1"#),
        "/",
        123,
    );
    expect(
        &root("1.2.0", r#""timelines":[],"input-triggers":[1]"#),
        "/input-triggers/0",
        124,
    );
    expect(
        &root("1.2.0", r#""timelines":[],"global-actions":1"#),
        "/",
        125,
    );
    expect(
        &root("1.2.0", r#""timelines":[],"global-actions":[1]"#),
        "/global-actions/0",
        126,
    );
    expect(
        &root(
            "1.2.0",
            r#""timelines":[],"global-actions":[{"timing":"end","trigger":"x"}]"#,
        ),
        "/global-actions/0",
        127,
    );
    expect(
        &root("1.2.0", r#""timelines":[],"component-pool":1"#),
        "/",
        128,
    );
    expect(&root("1.2.0", r#""timelines":[],"sequences":1"#), "/", 131);
    expect(
        &root("1.2.0", r#""timelines":[],"sequences":[1]"#),
        "/sequences/0",
        132,
    );
    // Version gates of root keys.
    expect(
        &root("1.0.0", r#""timelines":[],"component-pool":{"tunings":[]}"#),
        "/component-pool",
        11,
    );
    expect(&root("1.0.0", r#""timelines":[],"sequences":[]"#), "/", 11);
    assert_eq!(
        errors(&root("1.1.0", r#""timelines":[],"sequences":[]"#)),
        vec![]
    );
}

#[test]
fn timeline_and_time_scale_codes() {
    expect(
        &root("1.2.0", r#""timelines":[{"time-scale":1,"lanes":[]}]"#),
        "/timelines/0",
        200,
    );
    expect(&root("1.2.0", r#""timelines":[{}]"#), "/timelines/0", 201);
    expect(
        &root("1.2.0", r#""timelines":[{"lanes":[1]}]"#),
        "/timelines/0/lanes/0",
        202,
    );
    expect(
        &root("1.2.0", r#""timelines":[{"lanes":[],"loop-lock":1}]"#),
        "/timelines/0",
        203,
    );
    let ts = |t: &str| {
        root(
            "1.2.0",
            &format!(r#""timelines":[{{"time-scale":{t},"lanes":[]}}]"#),
        )
    };
    expect(&ts(r#"{"sample-rate":0}"#), "/timelines/0/time-scale", 303);
    expect(&ts(r#"{"bpm":120.0}"#), "/timelines/0/time-scale", 304);
    expect(
        &ts(r#"{"bpm":120,"bpb":-1}"#),
        "/timelines/0/time-scale",
        305,
    );
    expect(
        &ts(r#"{"sample-rate":48000,"bpb":4}"#),
        "/timelines/0/time-scale",
        306,
    );
    expect(&ts(r#"{}"#), "/timelines/0/time-scale", 307);
    assert_eq!(
        errors(&ts(r#"{"sample-rate":48000,"bpm":120,"bpb":4}"#)),
        vec![]
    );
}

#[test]
fn lane_codes() {
    let ok = r#""segments":[]"#;
    expect(
        &with_lane(&format!(r#"{{{ok},"auto-start":1}}"#)),
        LANE,
        400,
    );
    expect(&with_lane(&format!(r#"{{{ok},"loop":"yes"}}"#)), LANE, 401);
    expect(&with_lane(&format!(r#"{{{ok},"repeat":1.5}}"#)), LANE, 402);
    expect(
        &with_lane(&format!(r#"{{{ok},"start-trigger":1}}"#)),
        LANE,
        403,
    );
    expect(
        &with_lane(&format!(r#"{{{ok},"start-trigger":""}}"#)),
        LANE,
        404,
    );
    expect(
        &with_lane(&format!(r#"{{{ok},"restart-trigger":1}}"#)),
        LANE,
        405,
    );
    expect(
        &with_lane(&format!(r#"{{{ok},"restart-trigger":""}}"#)),
        LANE,
        406,
    );
    expect(
        &with_lane(&format!(r#"{{{ok},"stop-trigger":1}}"#)),
        LANE,
        407,
    );
    expect(
        &with_lane(&format!(r#"{{{ok},"stop-trigger":""}}"#)),
        LANE,
        408,
    );
    expect(&with_lane("{}"), LANE, 409);
    expect(
        &with_lane(r#"{"segments":[1]}"#),
        "/timelines/0/lanes/0/segments/0",
        410,
    );
    expect(
        &with_lane(&format!(r#"{{{ok},"disable-ui":0}}"#)),
        LANE,
        411,
    );
}

#[test]
fn if_codes() {
    expect(
        &with_action_x(
            r#"{"set-value":{"output":1,"value":1},"if":{"ref":"i","eq":[1,1]}}"#,
            r#""component-pool":{"ifs":[{"id":"i","eq":[1,1]}]}"#,
        ),
        IF,
        500,
    );
    for (i, op) in ["eq", "ne", "lt", "lte", "gt", "gte", "and", "or"]
        .iter()
        .enumerate()
    {
        expect(&with_if(&format!(r#"{{"{op}":1}}"#)), IF, 501 + i as u32);
    }
    expect(&with_if("{}"), IF, 509);
    expect(&with_if(r#"{"eq":[1,1],"ne":[1,2]}"#), IF, 510);
    expect(&with_if(r#"{"eq":[1]}"#), &format!("{IF}/eq"), 511);
    expect(
        &with_if(r#"{"and":[{"eq":[1,1]}]}"#),
        &format!("{IF}/and"),
        511,
    );
    // A non-object child of and/or is parsed as an if without operator.
    expect(
        &with_if(r#"{"or":[{"eq":[1,1]},3]}"#),
        &format!("{IF}/or/1"),
        509,
    );
    expect(&with_if(r#"{"eq":[1,true]}"#), &format!("{IF}/eq/1"), 512);
    expect(&with_if(r#"{"eq":[1,1],"tolerance":-1}"#), IF, 513);
    // More than 2 children needs 1.2.0.
    let three = r#"{"set-value":{"output":1,"value":1},"if":{"or":[{"eq":[1,1]},{"eq":[1,1]},{"eq":[1,1]}]}}"#;
    expect(&with_action_v("1.1.0", three), &format!("{IF}/or"), 11);
    assert_eq!(errors(&with_action_v("1.2.0", three)), vec![]);
    // Circular if.
    expect(
        &with_action_x(
            r#"{"set-value":{"output":1,"value":1},"if":{"ref":"a"}}"#,
            r#""component-pool":{"ifs":[{"id":"a","and":[{"ref":"a"},{"eq":[1,1]}]}]}"#,
        ),
        "/component-pool/ifs/0/and/0",
        5,
    );
}

#[test]
fn segment_codes() {
    expect(
        &with_pool(
            r#"{"segments":[{"id":"s","duration":{"samples":1}}]}"#,
            r#"{"ref":"s","duration":{"samples":1}}"#,
        ),
        SEG,
        600,
    );
    expect(&with_seg("{}"), SEG, 601);
    expect(
        &with_seg(r#"{"duration":{"samples":1},"actions":1}"#),
        SEG,
        602,
    );
    expect(
        &with_seg(r#"{"duration":{"samples":1},"actions":[1]}"#),
        &format!("{SEG}/actions/0"),
        603,
    );
    expect(&with_seg(r#"{"segment-block":1}"#), SEG, 604);
    expect(&with_seg(r#"{"segment-block":""}"#), SEG, 605);
    expect(
        &with_pool(
            r#"{"segment-blocks":[{"id":"b","segments":[{"duration":{"samples":1}}]}]}"#,
            r#"{"segment-block":"b","actions":[{"timing":"gate","output":1}]}"#,
        ),
        &format!("{SEG}/actions/0"),
        606,
    );
    expect(
        &with_seg(r#"{"segment-block":"b","duration":{"samples":1}}"#),
        SEG,
        607,
    );
    expect(
        &with_seg(r#"{"duration":{"samples":1},"disable-ui":"no"}"#),
        SEG,
        608,
    );
}

#[test]
fn segment_block_codes() {
    let pool = |b: &str| {
        with_pool(
            &format!(r#"{{"segment-blocks":[{b}]}}"#),
            r#"{"duration":{"samples":1}}"#,
        )
    };
    // 700 (segment-block ref-or-instance) is never emitted: blocks only live in the pool,
    // where a 'ref' is error 3 and the block is still parsed as an instance.
    let e = errors(&pool(r#"{"id":"b","ref":"c","segments":[]}"#));
    assert_eq!(
        e,
        vec![("/component-pool/segment-blocks/0".to_string(), Some(3))]
    );
    assert!(!e.iter().any(|(_, c)| *c == Some(700)));
    expect(
        &pool(r#"{"id":"b","segments":1}"#),
        "/component-pool/segment-blocks/0",
        701,
    );
    expect(
        &pool(r#"{"id":"b","segments":[1]}"#),
        "/component-pool/segment-blocks/0/segments/0",
        702,
    );
    expect(
        &pool(r#"{"id":"b","segments":[],"repeat":0}"#),
        "/component-pool/segment-blocks/0",
        703,
    );
    // Circular block.
    expect(
        &with_pool(
            r#"{"segment-blocks":[{"id":"b","segments":[{"segment-block":"b"}]}]}"#,
            r#"{"segment-block":"b"}"#,
        ),
        "/component-pool/segment-blocks/0/segments/0/segment-block",
        5,
    );
    // A segment and a block may share an id.
    let s = with_pool(
        r#"{"segment-blocks":[{"id":"x","segments":[{"ref":"x"}]}],"segments":[{"id":"x","duration":{"samples":1}}]}"#,
        r#"{"segment-block":"x"}"#,
    );
    assert_eq!(errors(&s), vec![]);
}

#[test]
fn duration_codes() {
    expect(&with_dur(r#"{"samples":1.5}"#), DUR, 800);
    expect(&with_dur(r#"{"millis":0}"#), DUR, 801);
    expect(&with_dur(r#"{"beats":1,"bars":0}"#), DUR, 802);
    expect(&with_dur(r#"{"beats":-1}"#), DUR, 803);
    expect(&with_dur(r#"{"hz":"x"}"#), DUR, 804);
    expect(&with_dur(r#"{}"#), DUR, 805);
    expect(&with_dur(r#"{"samples":1,"hz":1}"#), DUR, 806);
    expect(&with_dur(r#"{"bars":1,"samples":4}"#), DUR, 807);
    // bars alone: no unit at all, so only 805 (the checks are an else-if chain).
    assert_eq!(
        errors(&with_dur(r#"{"bars":1}"#)),
        vec![(DUR.to_string(), Some(805))]
    );
    expect(&with_dur(r#"{"beats":{"voltage":1},"bars":1}"#), DUR, 807);
    let no_bpm = root(
        "1.2.0",
        r#""timelines":[{"time-scale":{"sample-rate":48000},"lanes":[{"segments":[{"duration":{"beats":1}}]}]}]"#,
    );
    expect(&no_bpm, DUR, 808);
    let no_bpb = root(
        "1.2.0",
        r#""timelines":[{"time-scale":{"bpm":120},"lanes":[{"segments":[{"duration":{"beats":0,"bars":1}}]}]}]"#,
    );
    expect(&no_bpb, DUR, 809);
    expect(&with_dur(r#"{"beats":0}"#), DUR, 810);
    assert_eq!(errors(&with_dur(r#"{"beats":0,"bars":2}"#)), vec![]);
}

#[test]
fn action_codes() {
    let pool = r#""component-pool":{"actions":[{"id":"a","trigger":"t"}]}"#;
    expect(
        &with_action_x(r#"{"ref":"a","trigger":"x"}"#, pool),
        ACT,
        900,
    );
    expect(
        &with_action(r#"{"timing":"later","trigger":"x"}"#),
        ACT,
        901,
    );
    for (i, op) in [
        "set-value",
        "set-variable",
        "set-polyphony",
        "set-label",
        "assert",
    ]
    .iter()
    .enumerate()
    {
        expect(
            &with_action(&format!(r#"{{"{op}":1}}"#)),
            ACT,
            902 + i as u32,
        );
    }
    expect(&with_action(r#"{"trigger":1}"#), ACT, 907);
    expect(&with_action(r#"{"trigger":""}"#), ACT, 908);
    let glide = |rest: &str| with_action(&format!(r#"{{"timing":"glide","output":1,{rest}}}"#));
    expect(
        &glide(r#""start-value":true,"end-value":1"#),
        &format!("{ACT}/start-value"),
        909,
    );
    expect(
        &glide(r#""start-value":1,"end-value":[]"#),
        &format!("{ACT}/end-value"),
        910,
    );
    expect(
        &glide(r#""start-value":1,"end-value":1,"ease-factor":"x""#),
        ACT,
        911,
    );
    expect(
        &glide(r#""start-value":1,"end-value":1,"ease-factor":6"#),
        ACT,
        912,
    );
    expect(
        &glide(r#""start-value":1,"end-value":1,"ease-algorithm":"lin""#),
        ACT,
        913,
    );
    expect(
        &with_action(r#"{"timing":"glide","output":"x","start-value":1,"end-value":1}"#),
        ACT,
        914,
    );
    expect(
        &with_action(r#"{"timing":"glide","variable":1,"start-value":1,"end-value":1}"#),
        ACT,
        915,
    );
    expect(
        &with_action(r#"{"timing":"glide","variable":"","start-value":1,"end-value":1}"#),
        ACT,
        916,
    );
    expect(&with_action(r#"{"trigger":"x","if":1}"#), ACT, 917);
    expect(
        &glide(r#""start-value":1,"end-value":1,"trigger":"x""#),
        ACT,
        918,
    );
    expect(&glide(r#""start-value":1"#), ACT, 919);
    expect(
        &with_action(r#"{"timing":"glide","start-value":1,"end-value":1}"#),
        ACT,
        920,
    );
    expect(
        &glide(r#""start-value":1,"end-value":1,"variable":"v""#),
        ACT,
        921,
    );
    expect(&with_action(r#"{"trigger":"x","ease-factor":1}"#), ACT, 922);
    expect(&with_action(r#"{"timing":"end"}"#), ACT, 923);
    expect(
        &with_action(r#"{"trigger":"x","clear-sequence":"s"}"#),
        ACT,
        924,
    );
    expect(
        &with_action(r#"{"timing":"gate","output":1,"variable":"v"}"#),
        ACT,
        925,
    );
    expect(
        &with_action(r#"{"timing":"gate","output":1,"gate-high-ratio":"x"}"#),
        ACT,
        926,
    );
    expect(
        &with_action(r#"{"timing":"gate","output":1,"gate-high-ratio":1.5}"#),
        ACT,
        927,
    );
    expect(&with_action(r#"{"timing":"gate"}"#), ACT, 928);
    expect(&with_action(r#"{"move-sequence":1}"#), ACT, 929);
    expect(&with_action(r#"{"clear-sequence":1}"#), ACT, 930);
    expect(&with_action(r#"{"clear-sequence":""}"#), ACT, 931);
    expect(&with_action(r#"{"add-to-sequence":1}"#), ACT, 932);
    expect(&with_action(r#"{"remove-from-sequence":1}"#), ACT, 933);
    // Sequence operations need 1.2.0.
    expect(
        &with_action_v("1.1.0", r#"{"clear-sequence":"s"}"#),
        ACT,
        11,
    );
    // A pool action is reported at the referencing site.
    expect(
        &with_action_x(
            r#"{"ref":"a"}"#,
            r#""component-pool":{"actions":[{"id":"a","set-value":{"output":{"ref":"zz"},"value":1}}]}"#,
        ),
        &format!("{ACT}/set-value/output"),
        4,
    );
    // A non-string timing is silently 'start'.
    assert_eq!(
        errors(&with_action(r#"{"timing":3,"trigger":"x"}"#)),
        vec![]
    );
}

#[test]
fn operation_codes() {
    let op = |o: &str| with_action(o);
    expect(
        &op(r#"{"set-value":{"value":1}}"#),
        &format!("{ACT}/set-value"),
        1000,
    );
    expect(
        &op(r#"{"set-value":{"output":1}}"#),
        &format!("{ACT}/set-value"),
        1001,
    );
    expect(
        &op(r#"{"set-variable":{"name":1,"value":1}}"#),
        &format!("{ACT}/set-variable"),
        1100,
    );
    expect(
        &op(r#"{"set-variable":{"name":"","value":1}}"#),
        &format!("{ACT}/set-variable"),
        1101,
    );
    expect(
        &op(r#"{"set-variable":{"name":"a"}}"#),
        &format!("{ACT}/set-variable"),
        1102,
    );
    expect(
        &op(r#"{"set-polyphony":{"index":"1","channels":1}}"#),
        &format!("{ACT}/set-polyphony"),
        1200,
    );
    expect(
        &op(r#"{"set-polyphony":{"index":9,"channels":1}}"#),
        &format!("{ACT}/set-polyphony"),
        1201,
    );
    expect(
        &op(r#"{"set-polyphony":{"index":1,"channels":1.0}}"#),
        &format!("{ACT}/set-polyphony"),
        1202,
    );
    expect(
        &op(r#"{"set-polyphony":{"index":1,"channels":17}}"#),
        &format!("{ACT}/set-polyphony"),
        1203,
    );
    expect(
        &op(r#"{"assert":{"name":1,"expect":{"eq":[1,1]}}}"#),
        &format!("{ACT}/assert"),
        1301,
    );
    expect(
        &op(r#"{"assert":{"name":"","expect":{"eq":[1,1]}}}"#),
        &format!("{ACT}/assert"),
        1302,
    );
    expect(
        &op(r#"{"assert":{"name":"a"}}"#),
        &format!("{ACT}/assert"),
        1303,
    );
    expect(
        &op(r#"{"assert":{"name":"a","expect":{"eq":[1,1]},"stop-on-fail":1}}"#),
        &format!("{ACT}/assert"),
        1304,
    );
    expect(
        &op(r#"{"set-label":{"index":0,"label":"x"}}"#),
        &format!("{ACT}/set-label"),
        2001,
    );
    expect(
        &op(r#"{"set-label":{"index":"a","label":"x"}}"#),
        &format!("{ACT}/set-label"),
        2000,
    );
    expect(
        &op(r#"{"set-label":{"index":1,"label":2}}"#),
        &format!("{ACT}/set-label"),
        2002,
    );
    expect(
        &op(r#"{"set-label":{"index":1,"label":""}}"#),
        &format!("{ACT}/set-label"),
        2003,
    );
}

#[test]
fn value_codes() {
    expect(
        &with_value_x(
            r#"{"ref":"a","voltage":1}"#,
            r#""component-pool":{"values":[{"id":"a","voltage":1}]}"#,
        ),
        VAL,
        1400,
    );
    expect(&with_value(r#"{"calc":[]}"#), VAL, 1402);
    expect(&with_value(r#"{"voltage":1,"variable":"x"}"#), VAL, 1403);
    expect(&with_value(r#"{"voltage":"1"}"#), VAL, 1404);
    expect(&with_value(r#"{"voltage":10.5}"#), VAL, 1405);
    expect(&with_value("-11"), VAL, 1405);
    assert_eq!(errors(&with_value(r#"{"voltage":-10}"#)), vec![]);
    assert_eq!(
        errors(&with_value(r#"{"voltage":100,"no-limit":true}"#)),
        vec![]
    );
    expect(&with_value(r#"{"variable":1}"#), VAL, 1406);
    expect(&with_value(r#"{"variable":""}"#), VAL, 1407);
    expect(&with_value(r#"{"note":1}"#), VAL, 1408);
    expect(&with_value(r#"{"note":"e-4"}"#), VAL, 1409);
    expect(&with_value(r#""H4""#), VAL, 1409);
    expect(&with_value(r#"{"input":"a"}"#), VAL, 1410);
    expect(&with_value(r#"{"output":true}"#), VAL, 1411);
    expect(&with_value(r#"{"rand":1}"#), VAL, 1412);
    expect(&with_value(r#"{"voltage":1,"calc":1}"#), VAL, 1413);
    expect(
        &with_value(r#"{"voltage":1,"calc":[1]}"#),
        &format!("{VAL}/calc/0"),
        1414,
    );
    expect(&with_value(r#"{"voltage":1,"quantize":1}"#), VAL, 1415);
    expect(&with_value(r#"{"voltage":1,"no-limit":1}"#), VAL, 1416);
    expect(
        &with_value(r#"{"variable":"x","no-limit":true}"#),
        VAL,
        1417,
    );
    expect(
        &with_value(r#"{"rand":{"upper":1}}"#),
        &format!("{VAL}/rand"),
        1700,
    );
    expect(
        &with_value(r#"{"rand":{"lower":1}}"#),
        &format!("{VAL}/rand"),
        1701,
    );
    // sequence values
    let seqs = r#""sequences":[{"id":"s","values":[1]}]"#;
    expect(
        &with_value_x(r#"{"sequence":""}"#, seqs),
        &format!("{VAL}/sequence"),
        2301,
    );
    expect(
        &with_value_x(r#"{"sequence":{"id":1}}"#, seqs),
        &format!("{VAL}/sequence"),
        2302,
    );
    expect(
        &with_value_x(r#"{"sequence":{"id":""}}"#, seqs),
        &format!("{VAL}/sequence"),
        2303,
    );
    expect(
        &with_value_x(r#"{"sequence":{"id":"s","move-before":1}}"#, seqs),
        &format!("{VAL}/sequence"),
        2304,
    );
    expect(
        &with_value_x(r#"{"sequence":{"id":"s","move-after":"up"}}"#, seqs),
        &format!("{VAL}/sequence"),
        2305,
    );
    expect(
        &with_value_x(r#"{"sequence":{"id":"s","wrap":1}}"#, seqs),
        &format!("{VAL}/sequence"),
        2306,
    );
    expect(
        &with_value_x(r#"{"sequence":1}"#, seqs),
        &format!("{VAL}/sequence"),
        2307,
    );
    expect(
        &with_value_x(r#"{"sequence":"nope"}"#, seqs),
        &format!("{VAL}/sequence"),
        2308,
    );
    assert_eq!(
        errors(&with_value_x(r#"{"sequence":{"id":"s","bogus":1}}"#, seqs)),
        vec![]
    );
    expect(
        &with_action_v(
            "1.1.0",
            r#"{"set-value":{"output":1,"value":{"sequence":"s"}}}"#,
        ),
        VAL,
        11,
    );
}

#[test]
fn io_codes() {
    for (key, base) in [("output", 1500u32), ("input", 1600u32)] {
        let pool = if key == "output" { "outputs" } else { "inputs" };
        expect(
            &with_value_x(
                &format!(r#"{{"{key}":{{"ref":"p","index":1}}}}"#),
                &format!(r#""component-pool":{{"{pool}":[{{"id":"p","index":1}}]}}"#),
            ),
            &format!("{VAL}/{key}"),
            base,
        );
        expect(
            &with_value(&format!(r#"{{"{key}":{{"index":1.5}}}}"#)),
            &format!("{VAL}/{key}"),
            base + 1,
        );
        expect(
            &with_value(&format!(r#"{{"{key}":{{"index":9}}}}"#)),
            &format!("{VAL}/{key}"),
            base + 2,
        );
        expect(
            &with_value(&format!(r#"{{"{key}":{{"index":1,"channel":"1"}}}}"#)),
            &format!("{VAL}/{key}"),
            base + 3,
        );
        expect(
            &with_value(&format!(r#"{{"{key}":{{"index":1,"channel":17}}}}"#)),
            &format!("{VAL}/{key}"),
            base + 4,
        );
        // Shorthand: located at the parent object.
        expect(&with_value(&format!(r#"{{"{key}":0}}"#)), VAL, base + 2);
        expect(
            &with_value(&format!(r#"{{"{key}":{{"ref":"missing"}}}}"#)),
            &format!("{VAL}/{key}"),
            4,
        );
    }
}

#[test]
fn calc_codes() {
    expect(
        &with_action_x(
            r#"{"set-value":{"output":1,"value":{"voltage":1,"calc":[{"ref":"c","add":1}]}}}"#,
            r#""component-pool":{"calcs":[{"id":"c","add":1}]}"#,
        ),
        CALC,
        1800,
    );
    expect(&with_calc("{}"), CALC, 1801);
    expect(&with_calc(r#"{"add":1,"sub":1}"#), CALC, 1802);
    for (i, op) in ["add", "sub", "div", "mult", "max", "min", "remain"]
        .iter()
        .enumerate()
    {
        expect(
            &with_calc(&format!(r#"{{"{op}":true}}"#)),
            &format!("{CALC}/{op}"),
            1803 + i as u32,
        );
    }
    expect(&with_calc(r#"{"trunc":false}"#), CALC, 1810);
    expect(&with_calc(r#"{"frac":1}"#), CALC, 1811);
    expect(&with_calc(r#"{"round":1}"#), CALC, 1812);
    expect(&with_calc(r#"{"round":"half"}"#), CALC, 1813);
    expect(&with_calc(r#"{"quantize":1}"#), CALC, 1814);
    expect(
        &with_calc(r#"{"quantize":{"ref":"nope"}}"#),
        &format!("{CALC}/quantize"),
        1815,
    );
    expect(&with_calc(r#"{"sign":1}"#), CALC, 1816);
    expect(&with_calc(r#"{"sign":"up"}"#), CALC, 1817);
    expect(&with_calc(r#"{"vtof":1}"#), CALC, 1818);
    for op in [
        r#"{"max":1}"#,
        r#"{"trunc":true}"#,
        r#"{"vtof":true}"#,
        r#"{"sign":"pos"}"#,
    ] {
        expect(&with_calc_v("1.0.0", op), CALC, 11);
        assert_eq!(errors(&with_calc_v("1.1.0", op)), vec![]);
    }
    // Circular calc.
    expect(
        &with_action_x(
            r#"{"set-value":{"output":1,"value":{"voltage":1,"calc":[{"ref":"c"}]}}}"#,
            r#""component-pool":{"calcs":[{"id":"c","add":{"voltage":1,"calc":[{"ref":"c"}]}}]}"#,
        ),
        "/component-pool/calcs/0/add/calc/0",
        5,
    );
}

#[test]
fn tuning_codes() {
    expect(
        &with_action_x(
            r#"{"set-value":{"output":1,"value":{"voltage":1,"calc":[{"quantize":{"ref":"t","notes":[0]}}]}}}"#,
            r#""component-pool":{"tunings":[{"id":"t","notes":[0]}]}"#,
        ),
        &format!("{CALC}/quantize"),
        2100,
    );
    expect(
        &with_calc(r#"{"quantize":{"notes":1}}"#),
        &format!("{CALC}/quantize"),
        2101,
    );
    expect(
        &with_calc(r#"{"quantize":{"notes":[]}}"#),
        &format!("{CALC}/quantize/notes"),
        2102,
    );
    expect(
        &with_calc(r#"{"quantize":{"notes":[true]}}"#),
        &format!("{CALC}/quantize/notes/0"),
        2103,
    );
    expect(
        &with_calc(r#"{"quantize":{"notes":["C4"]}}"#),
        &format!("{CALC}/quantize/notes/0"),
        2104,
    );
}

#[test]
fn input_trigger_codes() {
    let it = |t: &str| {
        root(
            "1.2.0",
            &format!(r#""timelines":[],"input-triggers":[{t}]"#),
        )
    };
    expect(&it(r#"{"id":1,"input":1}"#), "/input-triggers/0", 1900);
    expect(&it(r#"{"id":"","input":1}"#), "/input-triggers/0", 1901);
    expect(&it(r#"{"id":"a"}"#), "/input-triggers/0", 1902);
    expect(
        &it(r#"{"id":"a","input":{"ref":"zz"}}"#),
        "/input-triggers/0/input",
        4,
    );
}

#[test]
fn sequence_codes() {
    let sq = |s: &str| root("1.2.0", &format!(r#""timelines":[],"sequences":[{s}]"#));
    // 2200 (sequence ref-or-instance) is never emitted: 'ref' is an unknown key on a
    // sequence (10) and not allowed on an id'd item (3).
    let e = errors(&sq(r#"{"id":"s","ref":"t","values":[]}"#));
    assert_eq!(
        e,
        vec![
            ("/sequences/0".to_string(), Some(10)),
            ("/sequences/0".to_string(), Some(3))
        ]
    );
    assert!(!e.iter().any(|(_, c)| *c == Some(2200)));
    expect(
        &sq(r#"{"id":"s","values":[],"shared":1}"#),
        "/sequences/0",
        2201,
    );
    expect(
        &sq(r#"{"id":"s","values":[],"retrieve-voltage-once":1}"#),
        "/sequences/0",
        2202,
    );
    expect(&sq(r#"{"id":"s","values":1}"#), "/sequences/0", 2203);
    expect(
        &sq(r#"{"id":"s","values":[true]}"#),
        "/sequences/0/values/0",
        2204,
    );
    expect(
        &sq(r#"{"id":"s","values":[]},{"id":"s","values":[]}"#),
        "/sequences/1",
        9,
    );
    // Deviation (d): errors inside sequences are located at /sequences/<i>/...
    expect(
        &sq(
            r#"{"id":"a","values":[]},{"id":"b","values":[{"variable":"x","calc":[{"ref":"zz"}]}]}"#,
        ),
        "/sequences/1/values/0/calc/0",
        4,
    );
    // A sequence can only reference an earlier sequence.
    expect(
        &sq(r#"{"id":"a","values":[{"sequence":"b"}]},{"id":"b","values":[]}"#),
        "/sequences/0/values/0/sequence",
        2308,
    );
    expect(
        &sq(r#"{"id":"a","values":[{"sequence":"a"}]}"#),
        "/sequences/0/values/0/sequence",
        2308,
    );
    assert_eq!(
        errors(&sq(
            r#"{"id":"a","values":[1]},{"id":"b","values":[{"sequence":"a"}]}"#
        )),
        vec![]
    );
}

#[test]
fn sequence_operation_codes() {
    let seqs = r#""sequences":[{"id":"s","values":[1]},{"id":"n","values":[1],"shared":false}]"#;
    let a = |o: &str| with_action_x(o, seqs);
    let ms = format!("{ACT}/move-sequence");
    expect(&a(r#"{"move-sequence":{"id":1}}"#), &ms, 2400);
    expect(&a(r#"{"move-sequence":{"id":""}}"#), &ms, 2401);
    expect(
        &a(r#"{"move-sequence":{"id":"s","position":1.5}}"#),
        &ms,
        2402,
    );
    expect(&a(r#"{"move-sequence":{"id":"s","wrap":1}}"#), &ms, 2403);
    expect(
        &a(r#"{"move-sequence":{"id":"s","direction":1}}"#),
        &ms,
        2404,
    );
    expect(
        &a(r#"{"move-sequence":{"id":"s","direction":"up"}}"#),
        &ms,
        2405,
    );
    expect(
        &a(r#"{"move-sequence":{"id":"s","position":0,"wrap":true}}"#),
        &ms,
        2406,
    );
    expect(&a(r#"{"move-sequence":{"id":"zz"}}"#), &ms, 2407);
    expect(
        &a(r#"{"move-sequence":{"id":"s","position":0,"direction":"forward"}}"#),
        &ms,
        2408,
    );
    expect(&a(r#"{"move-sequence":{"id":"n"}}"#), &ms, 2409);
    let add = format!("{ACT}/add-to-sequence");
    expect(&a(r#"{"add-to-sequence":{"id":1,"value":1}}"#), &add, 2500);
    expect(&a(r#"{"add-to-sequence":{"id":"","value":1}}"#), &add, 2501);
    expect(&a(r#"{"add-to-sequence":{"id":"s"}}"#), &add, 2502);
    expect(
        &a(r#"{"add-to-sequence":{"id":"s","value":1,"position":"x"}}"#),
        &add,
        2503,
    );
    expect(
        &a(r#"{"add-to-sequence":{"id":"s","value":1,"as-constant-voltage":1}}"#),
        &add,
        2504,
    );
    expect(
        &a(r#"{"add-to-sequence":{"id":"zz","value":1}}"#),
        &add,
        2505,
    );
    let rm = format!("{ACT}/remove-from-sequence");
    expect(&a(r#"{"remove-from-sequence":{"id":1}}"#), &rm, 2600);
    expect(&a(r#"{"remove-from-sequence":{"id":""}}"#), &rm, 2601);
    expect(
        &a(r#"{"remove-from-sequence":{"id":"s","position":0.5}}"#),
        &rm,
        2602,
    );
    expect(&a(r#"{"remove-from-sequence":{"id":"zz"}}"#), &rm, 2603);
    expect(
        &a(r#"{"clear-sequence":"zz"}"#),
        &format!("{ACT}/clear-sequence"),
        2700,
    );
    // clear/add/remove work on non-shared sequences too.
    assert_eq!(errors(&a(r#"{"clear-sequence":"n"}"#)), vec![]);
    assert_eq!(
        errors(&a(
            r#"{"add-to-sequence":{"id":"n","value":1,"position":-1}}"#
        )),
        vec![]
    );
}

#[test]
fn unreferenced_pool_items_skip_the_build_phase() {
    // A pool value with an unresolvable ref loads when nothing uses it.
    let s = with_pool(
        r#"{"values":[{"id":"v","variable":"x","calc":[{"ref":"nope"}]}]}"#,
        r#"{"duration":{"samples":1}}"#,
    );
    assert_eq!(errors(&s), vec![]);
}

#[test]
fn all_structure_errors_are_collected() {
    let s =
        with_seg(r#"{"duration":{},"actions":[{"trigger":""},{"timing":"gate"}],"disable-ui":1}"#);
    let errs = errors(&s);
    for (loc, code) in [
        (DUR, 805),
        (&format!("{SEG}/actions/0")[..], 908),
        (&format!("{SEG}/actions/1")[..], 928),
        (SEG, 608),
    ] {
        assert!(
            errs.iter().any(|(l, c)| l == loc && *c == Some(code)),
            "({loc},{code}) in {errs:?}"
        );
    }
}

#[test]
fn error_display_format() {
    let e = Engine::load(&with_value("11"), 48000.0).unwrap_err();
    let s = e.errors()[0].to_string();
    assert!(
        s.starts_with(&format!("{VAL} : ")) && s.ends_with(" [1405]"),
        "{s}"
    );
}

#[test]
fn every_spec_code_is_exercised() {
    // Keeps this file honest: the list of codes of SPEC.md §17 must all appear in this file.
    let me = include_str!("errors.rs");
    let mut codes: Vec<u32> = (1..=11).collect();
    codes.extend(101..=132);
    codes.extend(200..=203);
    codes.extend(303..=307);
    codes.extend(400..=411);
    codes.extend(500..=513);
    codes.extend(600..=608);
    codes.extend(700..=703);
    codes.extend(800..=810);
    codes.extend(900..=933);
    codes.extend([
        1000, 1001, 1100, 1101, 1102, 1200, 1201, 1202, 1203, 1301, 1302, 1303, 1304, 1400,
    ]);
    codes.extend(1402..=1417);
    codes.extend(1500..=1504);
    codes.extend(1600..=1604);
    codes.extend([1700, 1701]);
    codes.extend(1800..=1818);
    codes.extend(1900..=1902);
    codes.extend(2000..=2003);
    codes.extend(2100..=2104);
    codes.extend(2200..=2204);
    codes.extend(2301..=2308);
    codes.extend(2400..=2409);
    codes.extend(2500..=2505);
    codes.extend(2600..=2603);
    codes.push(2700);
    // Codes covered through loops over ranges above (base + offset) are listed here.
    let looped: &[u32] = &[
        107, 108, 109, 110, 111, 112, 113, 114, 115, 116, 117, 118, 119, 120, 121, 122, 129, 130,
        501, 502, 503, 504, 505, 506, 507, 508, 902, 903, 904, 905, 906, 1500, 1501, 1502, 1503,
        1504, 1600, 1601, 1602, 1603, 1604, 1803, 1804, 1805, 1806, 1807, 1808, 1809,
    ];
    for c in codes {
        let direct = me.contains(&format!("Some({c}))"))
            || me.contains(&format!(", {c});"))
            || me
                .lines()
                .any(|l| l.trim() == format!("{c},") || l.trim().ends_with(&format!(", {c}),")));
        assert!(direct || looped.contains(&c), "error code {c} has no test");
    }
}
