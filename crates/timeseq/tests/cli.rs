//! The `timeseq::cli` command functions.

use std::path::PathBuf;

fn sample(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/samples")
        .join(name)
}

fn args(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| s.to_string()).collect()
}

#[test]
fn check_valid_script_exits_0_without_output() {
    let mut out = Vec::new();
    assert_eq!(
        timeseq::cli::check(&sample("clock.json"), &mut out).unwrap(),
        0
    );
    assert!(out.is_empty());
}

#[test]
fn check_reports_syntax_errors_without_code() {
    let path = std::env::temp_dir().join(format!("timeseq-syntax-{}.json", std::process::id()));
    std::fs::write(
        &path,
        "{\n  \"type\": \"not-things_timeseq_script\",\n  oops\n}",
    )
    .unwrap();
    let mut out = Vec::new();
    let code = timeseq::cli::check(&path, &mut out).unwrap();
    std::fs::remove_file(&path).ok();
    let text = String::from_utf8(out).unwrap();
    assert_eq!(code, 2);
    assert!(text.starts_with("/ : "), "{text}");
    assert!(text.contains("line 3"), "{text}");
    assert!(!text.trim_end().ends_with(']'), "{text}");
}

#[test]
fn bench_ends_with_median_line() {
    let mut out = Vec::new();
    let p = sample("clock.json");
    let code = timeseq::cli::bench(
        &args(&[p.to_str().unwrap(), "--samples", "20000", "--runs", "3"]),
        &mut out,
    )
    .unwrap();
    assert_eq!(code, 0);
    let text = String::from_utf8(out).unwrap();
    let last = text.lines().last().unwrap();
    let n = last
        .strip_suffix(" samples/s")
        .expect("ends with samples/s");
    assert!(n.parse::<u64>().unwrap() > 0, "{last}");
}

#[test]
fn trace_options_are_validated() {
    let p = sample("clock.json");
    let p = p.to_str().unwrap();
    let mut out = Vec::new();
    for bad in [
        vec![p, "--samples", "10"],
        vec![p, "--sample-rate", "48000"],
        vec![
            p,
            "--sample-rate",
            "48000",
            "--samples",
            "10",
            "--input",
            "9:1=1",
        ],
        vec![p, "--sample-rate", "48000", "--samples", "10", "--bogus"],
        vec![
            p,
            "--sample-rate",
            "48000",
            "--samples",
            "10",
            "--square",
            "1:1=0",
        ],
    ] {
        assert!(
            matches!(
                timeseq::cli::trace(&args(&bad), &mut out),
                Err(timeseq::cli::CliError::Usage(_))
            ),
            "{bad:?}"
        );
    }
}

#[test]
fn trace_of_the_clock_sample_starts_with_the_beat() {
    let p = sample("clock.json");
    let mut out = Vec::new();
    let a = args(&[
        p.to_str().unwrap(),
        "--sample-rate",
        "48000",
        "--samples",
        "100000",
    ]);
    assert_eq!(timeseq::cli::trace(&a, &mut out).unwrap(), 0);
    let text = String::from_utf8(out).unwrap();
    let lines: Vec<&str> = text.lines().filter(|l| l.starts_with('@')).collect();
    // Global action: polyphony 5 on output 1; all five gates open at sample 0.
    assert_eq!(
        lines[0],
        "@0 poly1=5 o1.1=10 o1.2=10 o1.3=10 o1.4=10 o1.5=10"
    );
    // 70 bpm lane (output 1 channel 4): beats at 0, 41142 and 82285.
    let rises: Vec<u64> = lines
        .iter()
        .filter(|l| l.contains("o1.4=10"))
        .map(|l| l[1..l.find(' ').unwrap()].parse().unwrap())
        .collect();
    assert_eq!(rises, vec![0, 41142, 82285]);
}
