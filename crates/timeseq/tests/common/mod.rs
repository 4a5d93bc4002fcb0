//! Shared helpers for the integration tests.
#![allow(dead_code)]

use timeseq::Engine;

/// The state after one sample.
#[derive(Debug, Clone, PartialEq)]
pub struct Frame {
    pub outputs: [[f32; 16]; 8],
    pub poly: [u8; 8],
    pub triggers: Vec<String>,
    pub labels: Vec<(usize, String)>,
    pub asserts: Vec<(String, String, bool)>,
    pub vars: Vec<(String, f32)>,
}

pub fn script(version: &str, timelines: &str, extra: &str) -> String {
    let sep = if extra.is_empty() { "" } else { "," };
    format!(
        r#"{{"type":"not-things_timeseq_script","version":"{version}","timelines":{timelines}{sep}{extra}}}"#
    )
}

/// One timeline with the given time-scale (may be empty) and lanes.
pub fn one_timeline(time_scale: &str, lanes: &[&str], extra: &str) -> String {
    let ts = if time_scale.is_empty() {
        String::new()
    } else {
        format!(r#""time-scale":{time_scale},"#)
    };
    script(
        "1.2.0",
        &format!(r#"[{{{ts}"lanes":[{}]}}]"#, lanes.join(",")),
        extra,
    )
}

pub fn load(json: &str, sr: f32) -> Engine {
    match Engine::load(json, sr) {
        Ok(e) => e,
        Err(e) => panic!("load failed: {:?}\n{json}", e.errors()),
    }
}

pub fn frame(e: &Engine) -> Frame {
    let mut poly = [1u8; 8];
    for (p, v) in poly.iter_mut().enumerate() {
        *v = e.polyphony(p);
    }
    Frame {
        outputs: *e.outputs(),
        poly,
        triggers: e.fired_triggers().map(String::from).collect(),
        labels: e.label_events().map(|(p, l)| (p, l.to_string())).collect(),
        asserts: e
            .assert_failures()
            .iter()
            .map(|f| (e.assert_name(f).to_string(), e.assert_message(f), f.stop))
            .collect(),
        vars: e
            .variable_names()
            .iter()
            .enumerate()
            .map(|(i, n)| (n.clone(), e.variable(i)))
            .collect(),
    }
}

/// Loads, starts and runs `n` samples, calling `inputs(engine, sample)` before each sample.
pub fn run_with(
    json: &str,
    sr: f32,
    n: usize,
    mut inputs: impl FnMut(&mut Engine, usize),
) -> Vec<Frame> {
    let mut e = load(json, sr);
    e.start(0);
    let mut out = Vec::with_capacity(n);
    for i in 0..n {
        inputs(&mut e, i);
        e.process(1);
        out.push(frame(&e));
    }
    out
}

pub fn run(json: &str, n: usize) -> Vec<Frame> {
    run_with(json, 48000.0, n, |_, _| {})
}

/// Output (1-based port and channel as in JSON) over all frames.
pub fn out(frames: &[Frame], port: usize, ch: usize) -> Vec<f32> {
    frames.iter().map(|f| f.outputs[port - 1][ch - 1]).collect()
}

/// Sample indices at which the given output changes to `v` (from another value).
pub fn rises(frames: &[Frame], port: usize, ch: usize, v: f32) -> Vec<usize> {
    let o = out(frames, port, ch);
    let mut prev = 0.0f32;
    let mut r = Vec::new();
    for (i, x) in o.iter().enumerate() {
        if *x == v && prev != v {
            r.push(i);
        }
        prev = *x;
    }
    r
}

pub fn var(f: &Frame, name: &str) -> f32 {
    f.vars
        .iter()
        .find(|(n, _)| n == name)
        .map_or(0.0, |(_, v)| *v)
}

pub fn trig_samples(frames: &[Frame], name: &str) -> Vec<usize> {
    frames
        .iter()
        .enumerate()
        .filter(|(_, f)| f.triggers.iter().any(|t| t == name))
        .map(|(i, _)| i)
        .collect()
}

/// Every sample and conformance script in the fixtures, sorted (the invalid
/// conformance cases included).
pub fn fixture_scripts() -> Vec<std::path::PathBuf> {
    let base = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
    let mut files: Vec<_> = std::fs::read_dir(base.join("samples"))
        .unwrap()
        .chain(std::fs::read_dir(base.join("conformance")).unwrap())
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    files.sort();
    files
}
