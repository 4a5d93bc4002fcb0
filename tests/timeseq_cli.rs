//! `impresario timeseq ...` through the real binary, against the upstream
//! core's recorded output (the library's own tests cover every case; this
//! checks the command line wiring and exit codes).

mod common;
use common::*;
use std::process::Command;

fn fixtures() -> std::path::PathBuf {
    workspace().join("crates/timeseq/tests/fixtures/conformance")
}

#[test]
fn trace_matches_the_reference_output() {
    for case in ["000", "007", "015", "029"] {
        let expected =
            std::fs::read_to_string(fixtures().join(format!("{case}.expected"))).unwrap();
        let header = expected.lines().next().unwrap();
        let args: Vec<&str> = header
            .trim_start_matches("# trace ")
            .split_whitespace()
            .skip(1)
            .collect();
        let out = Command::new(binary())
            .args(["timeseq", "trace"])
            .arg(fixtures().join(format!("{case}.json")))
            .args(&args)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{case}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let got: Vec<String> = String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter(|l| l.starts_with('@'))
            .map(str::to_string)
            .collect();
        let want: Vec<&str> = expected.lines().filter(|l| l.starts_with('@')).collect();
        assert_eq!(got, want, "case {case}");
    }
}

#[test]
fn check_exits_2_with_located_errors() {
    let out = Command::new(binary())
        .args(["timeseq", "check"])
        .arg(fixtures().join("300.json"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let text = String::from_utf8_lossy(&out.stdout);
    let expected = std::fs::read_to_string(fixtures().join("300.expected")).unwrap();
    for line in expected
        .lines()
        .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
    {
        let (location, code) = line.rsplit_once(' ').unwrap_or((line, ""));
        assert!(
            text.lines().any(|l| l.starts_with(location.trim())
                && l.ends_with(&format!("[{}]", code.trim_matches(['[', ']'])))),
            "missing `{line}` in:\n{text}"
        );
    }
    let ok = Command::new(binary())
        .args(["timeseq", "check"])
        .arg(workspace().join("crates/timeseq/tests/fixtures/samples/clock.json"))
        .output()
        .unwrap();
    assert_eq!(
        ok.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&ok.stdout)
    );
}
