//! Command logic for `impresario timeseq check|trace|bench`.
//!
//! This is the only module of the crate that does I/O (reading the script file, writing
//! to the given writer, reading the clock for `bench`).

use crate::engine::{Engine, Status};
use crate::fmt::fmt_g;
use std::io::Write;
use std::path::Path;

/// Errors of the `trace` and `bench` commands.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    /// Bad command line.
    #[error("usage error: {0}")]
    Usage(String),
    /// Reading the script or writing the output failed.
    #[error(transparent)]
    Io(#[from] std::io::Error),
}

/// Sample rate used by `check` and `bench`.
pub const DEFAULT_SAMPLE_RATE: f32 = 48000.0;

/// `impresario timeseq check FILE`: prints every error as `<location> : <message> [<code>]`
/// and returns the exit code (0 valid, 2 invalid).
pub fn check(path: &Path, out: &mut dyn Write) -> std::io::Result<i32> {
    let text = std::fs::read_to_string(path)?;
    let errors = crate::engine::validate(&text, DEFAULT_SAMPLE_RATE);
    for e in &errors {
        writeln!(out, "{e}")?;
    }
    Ok(if errors.is_empty() { 0 } else { 2 })
}

#[derive(Debug, Clone)]
enum Drive {
    Const(f32),
    Step(u64, f32),
    Square {
        period: u64,
        high: f32,
        high_len: u64,
    },
    Saw {
        period: u64,
        lo: f64,
        hi: f64,
    },
}

/// Parsed `trace` options.
#[derive(Debug, Clone)]
pub struct TraceOptions {
    /// Script file.
    pub file: String,
    /// Engine sample rate.
    pub sample_rate: f32,
    /// Number of samples to run.
    pub samples: u64,
    drives: Vec<(usize, usize, Drive)>,
    /// `rand` seed.
    pub seed: Option<u64>,
    /// Print variable changes.
    pub vars: bool,
    /// Print fired triggers.
    pub triggers: bool,
}

fn parse_pc(s: &str) -> Result<(usize, usize, &str), CliError> {
    let bad = || CliError::Usage(format!("expected P:C=VALUE, got '{s}'"));
    let (pc, v) = s.split_once('=').ok_or_else(bad)?;
    let (p, c) = pc.split_once(':').ok_or_else(bad)?;
    let p: usize = p.trim().parse().map_err(|_| bad())?;
    let c: usize = c.trim().parse().map_err(|_| bad())?;
    if !(1..=8).contains(&p) || !(1..=16).contains(&c) {
        return Err(CliError::Usage(format!(
            "port must be 1-8 and channel 1-16 in '{s}'"
        )));
    }
    Ok((p - 1, c - 1, v))
}

fn num<T: std::str::FromStr>(s: &str) -> Result<T, CliError> {
    s.trim()
        .parse()
        .map_err(|_| CliError::Usage(format!("invalid number '{s}'")))
}

/// Parses the `trace` arguments (everything after `trace`).
pub fn parse_trace_args(args: &[String]) -> Result<TraceOptions, CliError> {
    let mut file = None;
    let mut sample_rate = None;
    let mut samples = None;
    let mut drives = Vec::new();
    let mut seed = None;
    let mut vars = false;
    let mut triggers = false;
    let mut it = args.iter();
    while let Some(a) = it.next() {
        let mut val = |name: &str| -> Result<String, CliError> {
            it.next()
                .cloned()
                .ok_or_else(|| CliError::Usage(format!("{name} needs a value")))
        };
        match a.as_str() {
            "--sample-rate" => sample_rate = Some(num::<f32>(&val(a)?)?),
            "--samples" => samples = Some(num::<u64>(&val(a)?)?),
            "--seed" => seed = Some(num::<u64>(&val(a)?)?),
            "--vars" => vars = true,
            "--triggers" => triggers = true,
            "--input" => {
                let s = val(a)?;
                let (p, c, v) = parse_pc(&s)?;
                drives.push((p, c, Drive::Const(num(v)?)));
            }
            "--input-at" => {
                let s = val(a)?;
                let (at, rest) = s
                    .split_once('@')
                    .ok_or_else(|| CliError::Usage(format!("expected S@P:C=V, got '{s}'")))?;
                let (p, c, v) = parse_pc(rest)?;
                drives.push((p, c, Drive::Step(num(at)?, num(v)?)));
            }
            "--square" => {
                let s = val(a)?;
                let (p, c, v) = parse_pc(&s)?;
                let parts: Vec<&str> = v.split(',').collect();
                let period: u64 = num(parts[0])?;
                let high: f32 = if parts.len() > 1 {
                    num(parts[1])?
                } else {
                    10.0
                };
                let duty: f64 = if parts.len() > 2 { num(parts[2])? } else { 0.5 };
                let high_len = (duty * period as f64).round() as u64;
                if period == 0 {
                    return Err(CliError::Usage("square period must be > 0".into()));
                }
                drives.push((
                    p,
                    c,
                    Drive::Square {
                        period,
                        high,
                        high_len,
                    },
                ));
            }
            "--saw" => {
                let s = val(a)?;
                let (p, c, v) = parse_pc(&s)?;
                let parts: Vec<&str> = v.split(',').collect();
                let period: u64 = num(parts[0])?;
                let (lo, hi) = if parts.len() >= 3 {
                    (num(parts[1])?, num(parts[2])?)
                } else {
                    (-5.0, 5.0)
                };
                if period == 0 {
                    return Err(CliError::Usage("saw period must be > 0".into()));
                }
                drives.push((p, c, Drive::Saw { period, lo, hi }));
            }
            s if s.starts_with("--") => {
                return Err(CliError::Usage(format!("unknown option '{s}'")))
            }
            s => {
                if file.is_some() {
                    return Err(CliError::Usage(format!("unexpected argument '{s}'")));
                }
                file = Some(s.to_string());
            }
        }
    }
    Ok(TraceOptions {
        file: file.ok_or_else(|| CliError::Usage("missing FILE".into()))?,
        sample_rate: sample_rate.ok_or_else(|| CliError::Usage("missing --sample-rate".into()))?,
        samples: samples.ok_or_else(|| CliError::Usage("missing --samples".into()))?,
        drives,
        seed,
        vars,
        triggers,
    })
}

/// `impresario timeseq trace FILE --sample-rate R --samples N ...`: prints one `@<n> ...`
/// line per sample in which anything changed. Returns the exit code (0, or 2 when the
/// script does not load; its errors are then printed like `check` does).
pub fn trace(args: &[String], out: &mut dyn Write) -> Result<i32, CliError> {
    let opts = parse_trace_args(args)?;
    let text = std::fs::read_to_string(&opts.file)?;
    let mut engine = match Engine::load(&text, opts.sample_rate) {
        Ok(e) => e,
        Err(e) => {
            for err in e.errors() {
                writeln!(out, "{err}")?;
            }
            return Ok(2);
        }
    };
    if let Some(s) = opts.seed {
        engine.seed(s);
    }
    run_trace(&mut engine, &opts, out)?;
    Ok(0)
}

fn run_trace(engine: &mut Engine, opts: &TraceOptions, out: &mut dyn Write) -> std::io::Result<()> {
    engine.start(0);
    let mut prev_out = [[0.0f32; 16]; 8];
    let mut prev_poly = [1u8; 8];
    let nvars = engine.variable_names().len();
    let mut prev_vars = vec![0.0f32; nvars];
    let mut order: Vec<usize> = (0..nvars).collect();
    order.sort_by(|a, b| {
        engine.variable_names()[*a]
            .as_bytes()
            .cmp(engine.variable_names()[*b].as_bytes())
    });
    let mut line = String::new();
    for n in 0..opts.samples {
        for (p, c, d) in &opts.drives {
            match d {
                Drive::Const(v) => {
                    if n == 0 {
                        engine.set_input(*p, *c, *v)
                    }
                }
                Drive::Step(at, v) => {
                    if *at == n {
                        engine.set_input(*p, *c, *v)
                    }
                }
                Drive::Square {
                    period,
                    high,
                    high_len,
                } => {
                    let v = if n % period < *high_len { *high } else { 0.0 };
                    engine.set_input(*p, *c, v);
                }
                Drive::Saw { period, lo, hi } => {
                    let v = lo + (hi - lo) * ((n % period) as f64 / *period as f64);
                    engine.set_input(*p, *c, v as f32);
                }
            }
        }
        engine.process(1);
        line.clear();
        for (p, prev) in prev_poly.iter_mut().enumerate() {
            let cur = engine.polyphony(p);
            if cur != *prev {
                line.push_str(&format!(" poly{}={}", p + 1, cur));
                *prev = cur;
            }
        }
        for (p, prev_port) in prev_out.iter_mut().enumerate() {
            for (c, prev) in prev_port.iter_mut().enumerate() {
                let cur = engine.output(p, c);
                if cur.to_bits() != prev.to_bits() {
                    line.push_str(&format!(" o{}.{}={}", p + 1, c + 1, fmt_g(cur as f64, 9)));
                    *prev = cur;
                }
            }
        }
        for (p, l) in engine.label_events() {
            line.push_str(&format!(" label{}=\"{}\"", p + 1, l));
        }
        for f in engine.assert_failures() {
            line.push_str(&format!(
                " assert-failed name=\"{}\" expect=\"{}\" stop={}",
                engine.assert_name(f),
                engine.assert_message(f),
                f.stop
            ));
        }
        if opts.vars {
            for &i in &order {
                let cur = engine.variable(i);
                if cur.to_bits() != prev_vars[i].to_bits() {
                    line.push_str(&format!(
                        " var:{}={}",
                        engine.variable_names()[i],
                        fmt_g(cur as f64, 9)
                    ));
                    prev_vars[i] = cur;
                }
            }
        }
        if opts.triggers {
            for t in engine.fired_triggers() {
                line.push_str(&format!(" trig:{t}"));
            }
        }
        if !line.is_empty() {
            writeln!(out, "@{n}{line}")?;
        }
        if engine.status() == Status::Paused && engine.assert_failures().iter().any(|f| f.stop) {
            writeln!(out, "# paused by assert at sample {n}")?;
            break;
        }
    }
    Ok(())
}

/// Runs `samples` samples of an already loaded engine (started, one `process(1)` per sample).
pub fn run_samples(engine: &mut Engine, samples: u64) {
    for _ in 0..samples {
        engine.process(1);
    }
}

/// `impresario timeseq bench FILE [--samples N]`: runs the script several times and ends
/// with `<median> samples/s`. Returns the exit code.
pub fn bench(args: &[String], out: &mut dyn Write) -> Result<i32, CliError> {
    let mut file = None;
    let mut samples: u64 = 4_800_000;
    let mut runs = 5;
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--samples" => {
                samples = num(it
                    .next()
                    .ok_or_else(|| CliError::Usage("--samples needs a value".into()))?)?
            }
            "--runs" => {
                runs = num(it
                    .next()
                    .ok_or_else(|| CliError::Usage("--runs needs a value".into()))?)?
            }
            s if s.starts_with("--") => {
                return Err(CliError::Usage(format!("unknown option '{s}'")))
            }
            s => file = Some(s.to_string()),
        }
    }
    let file = file.ok_or_else(|| CliError::Usage("missing FILE".into()))?;
    let text = std::fs::read_to_string(&file)?;
    let proto = match Engine::load(&text, DEFAULT_SAMPLE_RATE) {
        Ok(e) => e,
        Err(e) => {
            for err in e.errors() {
                writeln!(out, "{err}")?;
            }
            return Ok(2);
        }
    };
    let mut rates = Vec::new();
    for i in 0..runs.max(1) {
        let mut engine = proto.clone();
        engine.start(0);
        let t = std::time::Instant::now();
        run_samples(&mut engine, samples);
        let secs = t.elapsed().as_secs_f64().max(1e-9);
        let rate = samples as f64 / secs;
        writeln!(out, "# run {}: {:.0} samples/s", i + 1, rate)?;
        rates.push(rate);
    }
    rates.sort_by(|a, b| a.partial_cmp(b).unwrap_or(std::cmp::Ordering::Equal));
    writeln!(out, "{} samples/s", rates[rates.len() / 2] as u64)?;
    Ok(0)
}
