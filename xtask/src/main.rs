//! `cargo xtask`: the project's two front doors, usable on a fresh
//! Debian/Ubuntu machine that has only the Rust toolchain.
//!
//! - `cargo xtask run [ARGS...]`: install missing system packages, build the
//!   daemon and every imp in release mode, run `impresario run ARGS...`.
//! - `cargo xtask test`: install missing system packages, build the
//!   workspace, run the whole test suite.
//! - `cargo xtask bench [ARGS...]`: run every criterion benchmark.
//! - `cargo xtask reload-latency [RELOADS] [DEBOUNCE_MS]`: measure hot-reload latency.
//! - `cargo xtask jack-latency [EVENTS]`: measure the latency added on JACK.
//!
//! This crate has no dependencies, so it builds before any `-sys` crate
//! could fail for lack of its system library.

use std::path::{Path, PathBuf};
use std::process::{exit, Command};

/// Debian packages the build needs (alsa-sys and jack-sys find their
/// libraries through pkg-config), with a file that shows each is installed.
const BUILD_PACKAGES: &[(&str, &str)] = &[
    ("pkg-config", "/usr/bin/pkg-config"),
    ("libasound2-dev", "/usr/include/alsa/asoundlib.h"),
    ("libjack-jackd2-dev", "/usr/include/jack/jack.h"),
];

/// What the tests need on top: a JACK server and Debian's JACK clients
/// (`jackd`, `jack_wait`, `jack_lsp`, `jack_midiseq`, `jack_midi_dump`), and
/// `systemd-analyze` to verify the unit files `impresario service` writes.
const TEST_PACKAGES: &[(&str, &str)] = &[
    ("jackd2", "/usr/bin/jack_midiseq"),
    ("systemd", "/usr/bin/systemd-analyze"),
];

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("xtask lives in the workspace")
        .to_path_buf()
}

fn cargo() -> Command {
    let mut c = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
    c.current_dir(workspace());
    c
}

fn run(mut cmd: Command) {
    eprintln!("xtask: running {cmd:?}");
    match cmd.status() {
        Ok(s) if s.success() => {}
        Ok(s) => exit(s.code().unwrap_or(1)),
        Err(e) => {
            eprintln!("xtask: cannot run {cmd:?}: {e}");
            exit(1)
        }
    }
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false)
}

/// Installs the packages that are missing (as root, with apt-get), or says
/// exactly what to run.
fn ensure_packages(packages: &[&[(&str, &str)]]) {
    let missing: Vec<&str> = packages
        .iter()
        .flat_map(|p| p.iter())
        .filter(|(_, file)| !Path::new(file).exists())
        .map(|(pkg, _)| *pkg)
        .collect();
    if missing.is_empty() {
        return;
    }
    let list = missing.join(" ");
    if !is_root() {
        eprintln!("xtask: missing system packages: {list}\nxtask: install them with: sudo apt-get install -y {list}");
        exit(1);
    }
    eprintln!("xtask: installing missing system packages: {list}");
    let mut update = Command::new("apt-get");
    update
        .args(["update", "-q"])
        .env("DEBIAN_FRONTEND", "noninteractive");
    run(update);
    let mut install = Command::new("apt-get");
    install
        .args(["install", "-y", "-q", "--no-install-recommends"])
        .args(&missing)
        .env("DEBIAN_FRONTEND", "noninteractive");
    run(install);
}

/// Folders a SoundFont is looked for in (the fluidsynth imp's list).
fn soundfont_found() -> bool {
    let mut dirs = vec![
        PathBuf::from("/usr/share/sounds/sf2"),
        PathBuf::from("/usr/share/soundfonts"),
    ];
    if let Some(home) = std::env::var_os("HOME") {
        dirs.push(Path::new(&home).join(".local/share/soundfonts"));
        dirs.push(Path::new(&home).join(".local/share/sounds/sf2"));
    }
    for d in std::env::var("XDG_DATA_DIRS")
        .unwrap_or_default()
        .split(':')
    {
        if !d.is_empty() {
            dirs.push(Path::new(d).join("sounds/sf2"));
            dirs.push(Path::new(d).join("soundfonts"));
        }
    }
    dirs.iter().any(|d| {
        std::fs::read_dir(d)
            .into_iter()
            .flatten()
            .flatten()
            .any(|e| {
                e.path()
                    .extension()
                    .is_some_and(|x| x.eq_ignore_ascii_case("sf2"))
            })
    })
}

/// The default realm's synth needs a General MIDI SoundFont: Debian's
/// `timgm6mb-soundfont` (6 MB) when the machine has none.
fn ensure_soundfont() {
    if soundfont_found() {
        return;
    }
    if !is_root() {
        eprintln!(
            "xtask: no SoundFont found; the synth stays silent until one is installed:\n\
             xtask:   sudo apt-get install -y timgm6mb-soundfont"
        );
        return;
    }
    eprintln!("xtask: no SoundFont found: installing timgm6mb-soundfont (General MIDI, 6 MB)");
    ensure_packages(&[&[("timgm6mb-soundfont", "/usr/share/sounds/sf2/TimGM6mb.sf2")]]);
}

/// JACK keeps a registry of at most 8 servers in shared memory; a server
/// that died without cleaning up (a killed test run) keeps its entry, and
/// after a few no server starts ("Too many servers already active"). The
/// tests start their own servers, so with none running the stale registry
/// is removed before they run.
fn clear_stale_jack_registry() {
    let running = std::fs::read_dir("/proc").map_or(true, |procs| {
        procs.flatten().any(|p| {
            let comm = std::fs::read_to_string(p.path().join("comm")).unwrap_or_default();
            let stat = std::fs::read_to_string(p.path().join("stat")).unwrap_or_default();
            let zombie = stat
                .rsplit_once(") ")
                .is_some_and(|(_, r)| r.starts_with('Z'));
            comm.trim() == "jackd" && !zombie
        })
    });
    if running {
        return;
    }
    for e in std::fs::read_dir("/dev/shm")
        .into_iter()
        .flatten()
        .flatten()
    {
        if e.file_name().to_string_lossy().starts_with("jack") {
            let _ = std::fs::remove_file(e.path());
        }
    }
}

fn main() {
    let mut args = std::env::args().skip(1);
    let task = args.next().unwrap_or_default();
    let rest: Vec<String> = args.collect();
    match task.as_str() {
        "run" => {
            ensure_packages(&[BUILD_PACKAGES]);
            ensure_soundfont();
            let mut build = cargo();
            build.args(["build", "--release", "--workspace"]);
            run(build);
            let mut daemon = Command::new(workspace().join("target/release/impresario"));
            daemon.current_dir(workspace());
            if rest.is_empty() {
                daemon.arg("run");
            } else {
                daemon.args(&rest);
            }
            run(daemon);
        }
        "test" => {
            ensure_packages(&[BUILD_PACKAGES, TEST_PACKAGES]);
            // The end-to-end tests load the imp libraries the workspace
            // build puts next to the binary.
            let mut build = cargo();
            build.args(["build", "--workspace", "--all-targets"]);
            run(build);
            clear_stale_jack_registry();
            let mut test = cargo();
            test.args(["test", "--workspace", "--no-fail-fast"])
                .args(&rest);
            run(test);
        }
        "bench" => {
            ensure_packages(&[BUILD_PACKAGES]);
            let mut build = cargo();
            build.args(["build", "--release", "--workspace"]);
            run(build);
            let mut bench = cargo();
            bench.args(["bench", "--workspace"]).args(&rest);
            run(bench);
        }
        "jack-latency" => {
            ensure_packages(&[BUILD_PACKAGES, TEST_PACKAGES]);
            let mut build = cargo();
            build.args(["build", "--release", "--workspace"]);
            run(build);
            let mut measure = cargo();
            measure
                .args(["run", "--release", "--example", "jack_latency", "--"])
                .args(&rest);
            run(measure);
        }
        "reload-latency" => {
            ensure_packages(&[BUILD_PACKAGES]);
            let mut build = cargo();
            build.args(["build", "--release", "--workspace"]);
            run(build);
            let mut measure = cargo();
            measure
                .args(["run", "--release", "--example", "reload_latency", "--"])
                .args(&rest);
            run(measure);
        }
        _ => {
            eprintln!(
                "usage: cargo xtask <task>\n\n\
                 tasks:\n  \
                 run [ARGS...]                      build everything (release) and run `impresario ARGS` (default: run)\n  \
                 test [ARGS...]                     build the workspace and run the whole test suite\n  \
                 bench [ARGS...]                    build everything (release) and run the criterion benchmarks\n  \
                 reload-latency [RELOADS] [DEBOUNCE_MS]  measure rebuilt-library-to-live latency\n  \
                 jack-latency [EVENTS]              measure the latency impresario adds on JACK"
            );
            exit(if task.is_empty() || task == "help" || task == "--help" {
                0
            } else {
                2
            });
        }
    }
}
