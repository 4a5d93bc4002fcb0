//! Measures hot-reload latency: the time from a rebuilt imp library being
//! written by cargo to the new code being live in a running daemon.
//!
//! ```text
//! cargo xtask reload-latency            # or:
//! cargo build --release --workspace && cargo run --release --example reload_latency -- [RELOADS] [DEBOUNCE_MS]
//! ```
//!
//! It copies `imps/monitor` to a temporary crate, starts `impresario run`
//! on a realm whose `library_dir` is that crate's target directory, and
//! RELOADS times (default 20): changes the source, runs `cargo build`, takes
//! the library file's change time (cargo's hard link that puts the finished
//! file in place; or its modification time if later) as "written", and polls
//! the daemon's control socket every millisecond, while cargo runs, until
//! `status` shows the new build id ("live"). Without DEBOUNCE_MS the realm's
//! default settings are used (`reload_debounce_ms` = 0: the loader's ELF
//! completeness check, not a quiet time, keeps a half-written file from
//! being loaded); the daemon's own respawn time (check, copy, load, freeze,
//! create, thaw, swap, vault save) is reported separately from its log.
//! `RELOAD_LATENCY_LOG=1` prints the daemon's log (debug level for the
//! realm: every watcher event) at the end.

#[path = "../tests/common/mod.rs"]
mod common;

use common::*;
use realm::{control, Reply, Request};
use std::time::{Duration, Instant, SystemTime};

fn percentile(sorted: &[f64], p: f64) -> f64 {
    let i = ((sorted.len() - 1) as f64 * p).round() as usize;
    sorted[i]
}

fn main() {
    let mut args = std::env::args().skip(1);
    let reloads: usize = args
        .next()
        .map(|a| a.parse().expect("RELOADS is a number"))
        .unwrap_or(20);
    let debounce: Option<u64> = args
        .next()
        .map(|a| a.parse().expect("DEBOUNCE_MS is a number"));
    let debounce_line = debounce
        .map(|d| format!("reload_debounce_ms = {d}\n"))
        .unwrap_or_default();

    let work = tempfile::tempdir().unwrap();
    let target = workspace().join("target").join("e2e-imps");
    let krate = ImpCrate::copy("monitor", &work.path().join("monitor"), &target);
    eprintln!("building the monitor copy (the first build compiles its dependencies)...");
    krate.build();

    let dir = tempfile::tempdir().unwrap();
    let realm = format!(
        "[realm]\nlibrary_dir = {:?}\n{debounce_line}\
         [imps.mon]\nlibrary = \"monitor\"\nconfig = {{ log = false }}\n",
        krate.library_dir()
    );
    std::fs::write(dir.path().join("realm.toml"), realm).unwrap();
    let daemon = Daemon::start_in(dir, &[]);
    let socket = daemon.path("impresario.sock");
    let build_id = || -> Option<String> {
        match control::request(&socket, &Request::Status).ok()? {
            Reply::Ok(v) => imp_of(&v, "mon")["build_id"].as_str().map(str::to_string),
            Reply::Error(_) => None,
        }
    };
    let library = krate.library_dir().join("libmonitor.so");
    let mut latencies = Vec::new();
    for i in 0..reloads {
        let before = build_id().expect("daemon answers");
        let src = krate.dir.join("src/lib.rs");
        let mut text = std::fs::read_to_string(&src).unwrap();
        text.push_str(&format!("\n// reload {i}\n"));
        std::fs::write(&src, text).unwrap();
        // The build runs while the daemon is polled, so that the moment
        // the new build shows is seen even before cargo has exited.
        let (live, written) = std::thread::scope(|scope| {
            let build = scope.spawn(|| krate.build());
            let deadline = Instant::now() + Duration::from_secs(120);
            while build_id().as_deref() == Some(before.as_str()) {
                assert!(
                    Instant::now() < deadline,
                    "reload {i} did not happen:\n{}",
                    daemon.log_text()
                );
                std::thread::sleep(Duration::from_millis(1));
            }
            let live = SystemTime::now();
            build.join().expect("cargo build");
            // Cargo's final write: the linker writes the library under
            // deps/ (its modification time), then cargo puts it in place
            // with a hard link, which sets the inode's change time. The
            // later of the two.
            let meta = std::fs::metadata(&library).unwrap();
            let changed = {
                use std::os::unix::fs::MetadataExt;
                SystemTime::UNIX_EPOCH
                    + Duration::new(meta.ctime() as u64, meta.ctime_nsec() as u32)
            };
            (live, meta.modified().unwrap().max(changed))
        });
        let ms = live
            .duration_since(written)
            .unwrap_or_default()
            .as_secs_f64()
            * 1e3;
        eprintln!("reload {:>2}: {ms:.1} ms", i + 1);
        latencies.push(ms);
    }
    let respawn: Vec<f64> = daemon
        .log_text()
        .lines()
        .filter_map(|l| l.split(" in ").last()?.strip_suffix(" ms")?.parse().ok())
        .collect();

    if std::env::var_os("RELOAD_LATENCY_LOG").is_some() {
        eprintln!("{}", daemon.log_text());
    }
    let mut sorted = latencies.clone();
    sorted.sort_by(f64::total_cmp);
    let mut respawn_sorted = respawn.clone();
    respawn_sorted.sort_by(f64::total_cmp);
    match debounce {
        Some(d) => println!("reloads: {reloads}, reload_debounce_ms: {d}"),
        None => println!("reloads: {reloads}, default settings"),
    }
    println!(
        "library written -> new code live: median {:.1} ms, max {:.1} ms, min {:.1} ms",
        percentile(&sorted, 0.5),
        sorted[sorted.len() - 1],
        sorted[0]
    );
    if !respawn_sorted.is_empty() {
        println!(
            "respawn itself (load copy, freeze, create, thaw, swap): median {:.2} ms, max {:.2} ms",
            percentile(&respawn_sorted, 0.5),
            respawn_sorted[respawn_sorted.len() - 1]
        );
    }
}
