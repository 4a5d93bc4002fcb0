//! Runs every conformance case against `cli::trace` / `cli::check` and compares exactly.

use std::collections::BTreeSet;
use std::path::PathBuf;

fn fixtures() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/conformance")
}

fn trace_case(n: u32) -> Result<(), String> {
    let dir = fixtures();
    let expected = std::fs::read_to_string(dir.join(format!("{n:03}.expected"))).unwrap();
    let first = expected.lines().next().unwrap();
    let mut words: Vec<String> = first.split_whitespace().map(String::from).collect();
    assert_eq!(&words[..2], &["#", "trace"]);
    words.drain(..2);
    words[0] = dir.join(&words[0]).to_string_lossy().into_owned();
    let mut out = Vec::new();
    let code = timeseq::cli::trace(&words, &mut out).map_err(|e| e.to_string())?;
    if code != 0 {
        return Err(format!(
            "{n:03}: exit code {code}: {}",
            String::from_utf8_lossy(&out)
        ));
    }
    let got = String::from_utf8(out).unwrap();
    let got: Vec<&str> = got.lines().filter(|l| l.starts_with('@')).collect();
    let want: Vec<&str> = expected.lines().filter(|l| l.starts_with('@')).collect();
    for (i, (g, w)) in got.iter().zip(want.iter()).enumerate() {
        if g != w {
            return Err(format!(
                "{n:03}: line {i} differs\n  got:  {g}\n  want: {w}"
            ));
        }
    }
    if got.len() != want.len() {
        return Err(format!(
            "{n:03}: {} lines, expected {}; first extra: {:?} / {:?}",
            got.len(),
            want.len(),
            got.get(want.len()),
            want.get(got.len())
        ));
    }
    Ok(())
}

#[test]
fn conformance_traces() {
    let failures: Vec<String> = (0..30).filter_map(|n| trace_case(n).err()).collect();
    for f in &failures {
        eprintln!("{f}");
    }
    assert!(
        failures.is_empty(),
        "{} of 30 trace cases failed",
        failures.len()
    );
}

fn check_case(n: u32) -> Result<(), String> {
    let dir = fixtures();
    let expected = std::fs::read_to_string(dir.join(format!("{n:03}.expected"))).unwrap();
    let want: BTreeSet<String> = expected
        .lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .map(String::from)
        .collect();
    let mut out = Vec::new();
    let code = timeseq::cli::check(&dir.join(format!("{n:03}.json")), &mut out).unwrap();
    let text = String::from_utf8(out).unwrap();
    let got: BTreeSet<String> = text
        .lines()
        .map(|l| {
            let (loc, rest) = l.split_once(" : ").unwrap();
            let code = rest
                .rsplit_once('[')
                .map(|(_, c)| c.trim_end_matches(']'))
                .unwrap_or("");
            format!("{loc} [{code}]")
        })
        .collect();
    if code != 2 || got != want {
        return Err(format!("{n:03}: exit {code}, got {got:?}, want {want:?}"));
    }
    Ok(())
}

#[test]
fn conformance_checks() {
    let failures: Vec<String> = (300..310).filter_map(|n| check_case(n).err()).collect();
    for f in &failures {
        eprintln!("{f}");
    }
    assert!(
        failures.is_empty(),
        "{} of 10 check cases failed",
        failures.len()
    );
}
