//! Test harness: runs the real `impresario` binary on a temporary realm and
//! talks to it like a musician would (realm.toml edits, `status --json`,
//! `send`), plus helpers that build imp libraries with cargo.
#![allow(dead_code)]

pub mod faults;
pub mod soundfont;

use serde_json::Value;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The workspace root.
pub fn workspace() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The `impresario` binary under test (for examples: the one next to them).
pub fn binary() -> PathBuf {
    match option_env!("CARGO_BIN_EXE_impresario") {
        Some(p) => PathBuf::from(p),
        None => {
            let exe = std::env::current_exe().expect("current exe");
            exe.parent()
                .and_then(Path::parent)
                .expect("target/<profile>/examples")
                .join("impresario")
        }
    }
}

/// A library the workspace build produced next to the binary.
pub fn built_library(name: &str) -> PathBuf {
    let dir = binary()
        .parent()
        .expect("binary has a directory")
        .to_path_buf();
    let path = dir.join(format!("lib{name}.so"));
    assert!(
        path.exists(),
        "{} is missing: build the workspace first (`cargo build --workspace`, which `cargo xtask test` does)",
        path.display()
    );
    path
}

/// `jack_midi_dump -a` lines: (absolute time in samples, bytes); lines
/// without MIDI bytes are skipped.
pub fn parse_midi_dump(text: &str) -> Vec<(u64, Vec<u8>)> {
    text.lines()
        .filter_map(|l| {
            let (time, rest) = l.trim().split_once(": ")?;
            let bytes: Vec<u8> = rest
                .split_whitespace()
                .take_while(|w| w.len() == 2 && u8::from_str_radix(w, 16).is_ok())
                .map(|w| u8::from_str_radix(w, 16).unwrap())
                .collect();
            (!bytes.is_empty()).then_some((time.trim().parse().ok()?, bytes))
        })
        .collect()
}

/// Loads the built library `lib`, creates an imp with `config` (for engine
/// slot `slot`, which a port imp needs to open its port) and thaws it;
/// returns its control part and RT part.
pub fn thawed_part(
    lib: &str,
    slot: Option<usize>,
    config: serde_json::Value,
) -> (realm::ImpHandle, engine::OwnedRtPart) {
    let lib = realm::Library::load(&built_library(lib)).unwrap();
    lib.on_after_load(None).unwrap();
    let mut imp = lib.create(lib.name(), &config, None).unwrap();
    if let Some(slot) = slot {
        imp.set_slot(slot);
    }
    let rt = imp.thaw().unwrap().expect("an RT part");
    (imp, rt)
}

/// A daemon running on a temporary realm.
pub struct Daemon {
    pub dir: tempfile::TempDir,
    pub child: Option<Child>,
    pub log: Arc<Mutex<Vec<String>>>,
    /// Set by the one test whose imp allocates on the engine thread on
    /// purpose; every other daemon ends with the guard at zero.
    pub allocations_expected: bool,
}

/// Realm settings that keep tests quick.
pub const FAST: &str =
    "reconcile_ms = 50\nthaw_retry_ms = 200\nvault_debounce_ms = 100\nreload_debounce_ms = 150\n";

impl Daemon {
    /// A temporary directory with `libs/` holding copies of `libraries`.
    pub fn prepare(libraries: &[&str]) -> tempfile::TempDir {
        let dir = tempfile::tempdir().expect("temp dir");
        std::fs::create_dir_all(dir.path().join("libs")).unwrap();
        for lib in libraries {
            std::fs::copy(
                built_library(lib),
                dir.path().join("libs").join(format!("lib{lib}.so")),
            )
            .unwrap();
        }
        dir
    }

    /// Writes `realm.toml` (a `[realm]` table with `library_dir = "libs"`
    /// and [`FAST`] settings is put in front of `body`) and starts the daemon.
    pub fn start(libraries: &[&str], body: &str) -> Daemon {
        let dir = Self::prepare(libraries);
        std::fs::write(dir.path().join("realm.toml"), realm_text(body)).unwrap();
        Self::start_in(dir, &[])
    }

    /// Starts the daemon in a prepared directory.
    pub fn start_in(dir: tempfile::TempDir, env: &[(&str, &str)]) -> Daemon {
        let mut cmd = Command::new(binary());
        cmd.arg("run")
            .arg("--realm")
            .arg(dir.path().join("realm.toml"))
            .current_dir(dir.path())
            .env("IMPRESARIO_LOG", "info,realm=debug")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        for (k, v) in env {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().expect("start impresario");
        let log = Arc::new(Mutex::new(Vec::new()));
        let stderr = child.stderr.take().unwrap();
        let sink = log.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                sink.lock().unwrap().push(line);
            }
        });
        let d = Daemon {
            dir,
            child: Some(child),
            log,
            allocations_expected: false,
        };
        d.wait_for("the realm to come up", |_| true);
        d
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    pub fn realm(&self) -> PathBuf {
        self.path("realm.toml")
    }

    /// Runs an `impresario` subcommand against this daemon.
    pub fn cli(&self, args: &[&str]) -> std::process::Output {
        Command::new(binary())
            .args(args)
            .arg("--realm")
            .arg(self.realm())
            .output()
            .expect("run impresario")
    }

    /// `status --json`, or `None` when the daemon does not answer.
    pub fn try_status(&self) -> Option<Value> {
        let out = self.cli(&["status", "--json"]);
        if !out.status.success() {
            return None;
        }
        serde_json::from_slice(&out.stdout).ok()
    }

    /// `status --json` read into the daemon's own status types, or `None`
    /// when the daemon does not answer.
    pub fn try_typed_status(&self) -> Option<realm::status::Status> {
        let v = self.try_status()?;
        Some(serde_json::from_value(v).expect("the status has the daemon's shape"))
    }

    pub fn status(&self) -> Value {
        self.try_status()
            .unwrap_or_else(|| panic!("daemon does not answer; log:\n{}", self.log_text()))
    }

    /// Status entry of imp `name`.
    pub fn imp(&self, name: &str) -> Value {
        imp_of(&self.status(), name)
    }

    /// Polls `status --json` until `pred` holds (60 s at most).
    pub fn wait_for(&self, what: &str, pred: impl Fn(&Value) -> bool) -> Value {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Some(s) = self.try_status() {
                if pred(&s) {
                    return s;
                }
            }
            if Instant::now() > deadline {
                panic!(
                    "timed out waiting for {what}; last status:\n{:#}\nlog:\n{}",
                    self.try_status().unwrap_or(Value::Null),
                    self.log_text()
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn send(&self, imp: &str, bytes: &[&str]) {
        let mut args = vec!["send", imp];
        args.extend_from_slice(bytes);
        let out = self.cli(&args);
        assert!(
            out.status.success(),
            "send failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    pub fn log_text(&self) -> String {
        self.log.lock().unwrap().join("\n")
    }

    pub fn is_running(&mut self) -> bool {
        matches!(self.child.as_mut().map(|c| c.try_wait()), Some(Ok(None)))
    }

    /// Asserts that the engine counted no allocation on its thread so far
    /// (through every config swap, respawn, panic and backend callback the
    /// test caused).
    pub fn assert_no_engine_allocations(&self) {
        if self.allocations_expected {
            return;
        }
        if let Some(s) = self.try_typed_status() {
            assert_eq!(
                s.engine.counters.alloc_violations,
                0,
                "allocations on the engine thread; log:\n{}",
                self.log_text()
            );
        }
    }

    /// Checks the allocation guard, then SIGTERM and wait for a clean exit.
    pub fn stop(&mut self) -> std::process::ExitStatus {
        self.assert_no_engine_allocations();
        let mut child = self.child.take().expect("running");
        // SAFETY: signalling our own child process.
        unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
        child.wait().expect("wait")
    }

    /// SIGKILL, then reap.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        // Every daemon-level test ends with the allocation guard at zero;
        // the daemon is killed whatever the check says.
        let checked = if !std::thread::panicking() && self.child.is_some() {
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                self.assert_no_engine_allocations()
            }))
        } else {
            Ok(())
        };
        self.kill();
        if let Err(failure) = checked {
            std::panic::resume_unwind(failure);
        }
    }
}

/// The realm text the harness writes: settings, then `body`.
pub fn realm_text(body: &str) -> String {
    format!("[realm]\nlibrary_dir = \"libs\"\n{FAST}\n{body}")
}

/// Status entry of imp `name`.
pub fn imp_of(status: &Value, name: &str) -> Value {
    status["imps"]
        .as_array()
        .and_then(|a| a.iter().find(|i| i["name"] == name))
        .cloned()
        .unwrap_or(Value::Null)
}

/// A copy of an imp crate outside the workspace, which a test can edit and
/// rebuild with cargo while a daemon runs.
pub struct ImpCrate {
    pub dir: PathBuf,
    pub target: PathBuf,
    pub name: String,
}

impl ImpCrate {
    /// Copies `imps/<name>` to `dir`, as its own workspace, depending on
    /// this workspace's `imp` and `imp-build` by path and pinned by its
    /// Cargo.lock. Builds go to `target` (shared between runs, so only the
    /// first build compiles the dependencies).
    pub fn copy(name: &str, dir: &Path, target: &Path) -> ImpCrate {
        let ws = workspace();
        std::fs::create_dir_all(dir.join("src")).unwrap();
        let src = ws.join("imps").join(name);
        std::fs::copy(src.join("src/lib.rs"), dir.join("src/lib.rs")).unwrap();
        std::fs::copy(src.join("build.rs"), dir.join("build.rs")).unwrap();
        std::fs::copy(ws.join("Cargo.lock"), dir.join("Cargo.lock")).unwrap();
        let manifest = std::fs::read_to_string(src.join("Cargo.toml")).unwrap();
        let root: toml_like::Root = toml_like::Root::read(&ws.join("Cargo.toml"));
        let mut out = String::new();
        let mut in_lints = false;
        for line in manifest.lines() {
            let line = line.trim_end();
            // The copy is a workspace of its own: the shared lints stay behind.
            if line.starts_with('[') {
                in_lints = line == "[lints]";
            }
            if in_lints {
                continue;
            }
            if line.starts_with("version.workspace") {
                out.push_str("version = \"0.1.0\"\n");
            } else if line.starts_with("edition.workspace") {
                out.push_str("edition = \"2021\"\n");
            } else if line.starts_with("license.workspace") {
            } else if let Some(dep) = line.strip_suffix(".workspace = true") {
                out.push_str(&format!("{dep} = {}\n", root.dependency(dep, &ws)));
            } else if line.starts_with("imp-build = ") {
                out.push_str(&format!(
                    "imp-build = {{ path = {:?} }}\n",
                    ws.join("crates/imp-build")
                ));
            } else {
                out.push_str(line);
                out.push('\n');
            }
        }
        out.push_str("\n[workspace]\n");
        std::fs::write(dir.join("Cargo.toml"), out).unwrap();
        ImpCrate {
            dir: dir.to_path_buf(),
            target: target.to_path_buf(),
            name: name.to_string(),
        }
    }

    /// Replaces `from` by `to` in `src/lib.rs` (which must contain it).
    pub fn edit(&self, from: &str, to: &str) {
        let path = self.dir.join("src/lib.rs");
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(
            text.contains(from),
            "src/lib.rs of {} has no `{from}`",
            self.name
        );
        std::fs::write(&path, text.replacen(from, to, 1)).unwrap();
    }

    /// `cargo build` (debug) with the target dir; panics with cargo's output on failure.
    pub fn build(&self) {
        let out = Command::new(env!("CARGO"))
            .args(["build", "--offline", "--quiet"])
            .current_dir(&self.dir)
            .env("CARGO_TARGET_DIR", &self.target)
            .output()
            .expect("run cargo");
        assert!(
            out.status.success(),
            "cargo build failed:\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// Where the build puts the library.
    pub fn library_dir(&self) -> PathBuf {
        self.target.join("debug")
    }
}

/// Just enough of the root Cargo.toml to resolve `x.workspace = true`.
mod toml_like {
    use std::path::Path;

    pub struct Root {
        deps: Vec<(String, String)>,
    }

    impl Root {
        pub fn read(path: &Path) -> Root {
            let text = std::fs::read_to_string(path).unwrap();
            let mut in_deps = false;
            let mut deps = Vec::new();
            for line in text.lines() {
                if line.starts_with('[') {
                    in_deps = line.trim() == "[workspace.dependencies]";
                    continue;
                }
                if in_deps {
                    if let Some((k, v)) = line.split_once(" = ") {
                        deps.push((k.trim().to_string(), v.trim().to_string()));
                    }
                }
            }
            Root { deps }
        }

        pub fn dependency(&self, name: &str, ws: &Path) -> String {
            let v = &self
                .deps
                .iter()
                .find(|(k, _)| k == name)
                .unwrap_or_else(|| panic!("no workspace dependency {name}"))
                .1;
            // Path dependencies are relative to the workspace root.
            match v.split_once("path = \"") {
                Some((_, rest)) => {
                    let rel = rest.split('"').next().unwrap();
                    format!("{{ path = {:?} }}", ws.join(rel))
                }
                None => v.clone(),
            }
        }
    }
}

/// A JACK server (dummy driver) of its own, stopped on drop. Clients started
/// with [`JackServer::command`] or [`JackServer::env`] talk to it.
pub struct JackServer {
    pub name: String,
    child: Option<Child>,
    peers: Vec<Child>,
    _guard: std::sync::MutexGuard<'static, ()>,
    /// The lock that serialises JACK tests across test processes too
    /// (nextest runs each test in a process of its own); released on drop.
    _across_processes: std::fs::File,
}

static JACK_LOCK: Mutex<()> = Mutex::new(());

impl JackServer {
    /// Starts `jackd -d dummy` (48 kHz, 128 frames) under a unique name.
    /// One server at a time per test binary: two dummy servers starting at
    /// once get in each other's way.
    pub fn start() -> JackServer {
        Self::start_with_period(128)
    }

    /// Starts `jackd -d dummy` at 48 kHz with `period` frames per cycle. A
    /// long period gives the clients slack on a loaded machine, where a
    /// client that misses a short cycle's deadline loses that cycle's events.
    pub fn start_with_period(period: u32) -> JackServer {
        let guard = JACK_LOCK.lock().unwrap_or_else(|e| e.into_inner());
        let across_processes = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(std::env::temp_dir().join("impresario-jack-tests.lock"))
            .expect("the JACK tests' lock file");
        // SAFETY: flock on a descriptor we own; blocks until the test
        // holding it (in another process) dropped its server.
        let locked = unsafe {
            use std::os::fd::AsRawFd;
            libc::flock(across_processes.as_raw_fd(), libc::LOCK_EX)
        };
        assert_eq!(locked, 0, "flock: {}", std::io::Error::last_os_error());
        clear_stale_jack_registry();
        let period = period.to_string();
        let name = format!("impresario-test-{}-{:x}", std::process::id(), rand_u64());
        let child = Command::new("jackd")
            .args([
                "-n", &name, "-R", "-P", "70", "-p", "32", "-d", "dummy", "-r", "48000", "-p",
                &period,
            ])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("jackd is installed (package jackd2; `cargo xtask test` installs it)");
        let server = JackServer {
            name,
            child: Some(child),
            peers: Vec::new(),
            _guard: guard,
            _across_processes: across_processes,
        };
        let ok = server
            .command("jack_wait")
            .args(["-w", "-t", "10"])
            .output()
            .expect("jack_wait");
        assert!(ok.status.success(), "the JACK server did not come up");
        server
    }

    /// A command that talks to this server.
    pub fn command(&self, program: &str) -> Command {
        let mut c = Command::new(program);
        c.env("JACK_DEFAULT_SERVER", &self.name)
            .stdin(Stdio::null());
        c
    }

    /// The environment a daemon needs to talk to this server.
    pub fn env(&self) -> (&'static str, &str) {
        ("JACK_DEFAULT_SERVER", &self.name)
    }

    /// Starts a peer client (killed when the server guard drops); returns its index.
    pub fn spawn(&mut self, program: &str, args: &[&str], stdout: Stdio) -> usize {
        let child = self
            .command(program)
            .args(args)
            .stdout(stdout)
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("start {program}: {e}"));
        self.peers.push(child);
        self.peers.len() - 1
    }

    /// Waits (20 s at most) until peer `i` has registered a port of JACK
    /// client `client`, so what the test starts next finds it; panics
    /// saying so if the peer exited or never registered.
    pub fn wait_for_client(&mut self, i: usize, client: &str) {
        let deadline = Instant::now() + Duration::from_secs(20);
        let prefix = format!("{client}:");
        loop {
            if self.ports().lines().any(|l| l.starts_with(&prefix)) {
                return;
            }
            if let Ok(Some(status)) = self.peers[i].try_wait() {
                panic!("JACK peer `{client}` exited ({status}) before registering its port");
            }
            assert!(
                Instant::now() < deadline,
                "JACK peer `{client}` registered no port in 20 s; ports:\n{}",
                self.ports()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// The peer started as number `i`.
    pub fn peer(&mut self, i: usize) -> &mut Child {
        &mut self.peers[i]
    }

    /// Stops peer `i` (SIGTERM, then reap).
    pub fn stop_peer(&mut self, i: usize) {
        let child = &mut self.peers[i];
        // SAFETY: signalling our own child process.
        unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
        let _ = child.wait();
    }

    /// Full names of the server's ports (with connections indented below, as `jack_lsp -c` prints).
    pub fn ports(&self) -> String {
        let out = self
            .command("jack_lsp")
            .arg("-c")
            .output()
            .expect("jack_lsp");
        String::from_utf8_lossy(&out.stdout).into_owned()
    }
}

/// True while a `jackd` process runs (zombies do not count).
fn a_jack_server_runs() -> bool {
    let Ok(procs) = std::fs::read_dir("/proc") else {
        return true;
    };
    procs.flatten().any(|p| {
        let comm = std::fs::read_to_string(p.path().join("comm")).unwrap_or_default();
        let stat = std::fs::read_to_string(p.path().join("stat")).unwrap_or_default();
        // `pid (comm) S ...`: the state follows the closing parenthesis.
        let state = stat.rsplit_once(") ").map(|(_, r)| r.chars().next());
        comm.trim() == "jackd" && state != Some(Some('Z'))
    })
}

/// Set once this test process has opened a JACK client itself (libjack
/// maps the server registry once per process and keeps that mapping):
/// from then on the registry is never removed, or the next server of
/// this process would register in a new one the process cannot see.
static IN_PROCESS_JACK_CLIENT: std::sync::atomic::AtomicBool =
    std::sync::atomic::AtomicBool::new(false);

/// Opens a JACK client named `name` of the test's own process on
/// `server` (and notes it: see [`IN_PROCESS_JACK_CLIENT`]).
pub fn jack_client(server: &JackServer, name: &str) -> jack::Client {
    // libjack finds the test's server by this variable.
    std::env::set_var("JACK_DEFAULT_SERVER", &server.name);
    IN_PROCESS_JACK_CLIENT.store(true, std::sync::atomic::Ordering::Relaxed);
    jack::Client::new(name, jack::ClientOptions::NO_START_SERVER)
        .unwrap_or_else(|e| panic!("JACK client {name}: {e}"))
        .0
}

/// JACK keeps a registry of at most 8 servers in shared memory, and a
/// server that died without cleaning up (SIGKILL, a killed test run) keeps
/// its entry for good: after a few, no server starts ("Too many servers
/// already active"). With no server running, the registry holds nothing
/// worth keeping, so it is removed and JACK makes a new one.
pub fn clear_stale_jack_registry() {
    if a_jack_server_runs() || IN_PROCESS_JACK_CLIENT.load(std::sync::atomic::Ordering::Relaxed) {
        return;
    }
    let Ok(entries) = std::fs::read_dir("/dev/shm") else {
        return;
    };
    for e in entries.flatten() {
        if e.file_name().to_string_lossy().starts_with("jack") {
            let _ = std::fs::remove_file(e.path());
        }
    }
}

fn rand_u64() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u64(7);
    h.finish()
}

impl Drop for JackServer {
    fn drop(&mut self) {
        for p in &mut self.peers {
            let _ = p.kill();
            let _ = p.wait();
        }
        if let Some(mut c) = self.child.take() {
            // SAFETY: signalling our own child process.
            unsafe { libc::kill(c.id() as i32, libc::SIGTERM) };
            let _ = c.wait();
        }
    }
}

/// Builds chaos with `env` and puts it in the daemon's library dir in one
/// rename, as a new build. The builds share a target dir (the dependencies
/// compile once); the lock keeps one test's build from replacing another's
/// library before it is copied.
pub fn install_chaos_build(d: &Daemon, env: (&str, &str)) {
    static BUILD: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _one_at_a_time = BUILD.lock().unwrap_or_else(|e| e.into_inner());
    let target = workspace().join("target").join("e2e-chaos");
    let out = Command::new(env!("CARGO"))
        .args(["build", "--offline", "--quiet", "-p", "chaos"])
        .current_dir(workspace())
        .env("CARGO_TARGET_DIR", &target)
        .env(env.0, env.1)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let staged = d.path("libs/libchaos.so.new");
    std::fs::copy(target.join("debug/libchaos.so"), &staged).unwrap();
    std::fs::rename(&staged, d.path("libs/libchaos.so")).unwrap();
}

/// The bytes of the built library `name`, made into another build: the
/// linker's GNU build-id note (which the realm takes as a build's identity)
/// gets `round` mixed in; the code stays the same. For tests that need a
/// respawn without compiling anything.
pub fn another_build_of(name: &str, round: u8) -> Vec<u8> {
    let mut bytes = std::fs::read(built_library(name)).unwrap();
    // An ELF note: namesz = 4, descsz, type = 3 (NT_GNU_BUILD_ID), "GNU\0", desc.
    let tag = b"\x03\x00\x00\x00GNU\x00";
    let at = bytes
        .windows(tag.len())
        .position(|w| w == tag)
        .filter(|&i| i >= 8 && bytes[i - 8..i - 4] == [4, 0, 0, 0])
        .expect("the library has a GNU build-id note");
    bytes[at + tag.len()] ^= round.max(1);
    bytes
}

/// A MIDI device played by the test: a JACK client of the test's own with
/// output ports (what the device sends: the test queues exact bytes) and
/// input ports (what reaches the device, recorded with its absolute frame
/// time). Dropping it (or [`JackDevice::unplug`]) removes its ports, as
/// unplugging the device would.
pub struct JackDevice {
    client: Option<jack::AsyncClient<(), jack::contrib::ClosureProcessHandler<(), DeviceProcess>>>,
    queued: Queued,
    received: Received,
    outs: Vec<String>,
    ins: Vec<String>,
}

type DeviceProcess = Box<dyn FnMut(&jack::Client, &jack::ProcessScope) -> jack::Control + Send>;
/// Messages waiting to be played: (output port index, bytes).
type Queued = Arc<Mutex<Vec<(usize, Vec<u8>)>>>;
/// Messages received: (input port index, frame time, bytes).
type Received = Arc<Mutex<Vec<(usize, u64, Vec<u8>)>>>;

impl JackDevice {
    /// Registers JACK client `name` with output ports `outs` and input
    /// ports `ins` on `server`, active at once.
    pub fn plug(server: &JackServer, name: &str, outs: &[&str], ins: &[&str]) -> JackDevice {
        let client = jack_client(server, name);
        let mut out_ports: Vec<jack::Port<jack::MidiOut>> = outs
            .iter()
            .map(|p| client.register_port(p, jack::MidiOut::default()).unwrap())
            .collect();
        let in_ports: Vec<jack::Port<jack::MidiIn>> = ins
            .iter()
            .map(|p| client.register_port(p, jack::MidiIn::default()).unwrap())
            .collect();
        let queued: Queued = Arc::default();
        let received: Received = Arc::default();
        let (q, r) = (queued.clone(), received.clone());
        // The test's own client: a lock that is free nearly always is fine
        // here (it is not impresario's engine).
        let process: DeviceProcess = Box::new(move |_, ps| {
            if let Ok(mut q) = q.try_lock() {
                let mut writers: Vec<_> = out_ports.iter_mut().map(|p| p.writer(ps)).collect();
                for (port, bytes) in q.drain(..) {
                    let _ = writers[port].write(&jack::RawMidi {
                        time: 0,
                        bytes: &bytes,
                    });
                }
            }
            let start = ps.last_frame_time() as u64;
            if let Ok(mut r) = r.lock() {
                for (i, port) in in_ports.iter().enumerate() {
                    for m in port.iter(ps) {
                        r.push((i, start + m.time as u64, m.bytes.to_vec()));
                    }
                }
            }
            jack::Control::Continue
        });
        let client = client
            .activate_async((), jack::contrib::ClosureProcessHandler::new(process))
            .unwrap();
        JackDevice {
            client: Some(client),
            queued,
            received,
            outs: outs.iter().map(|s| s.to_string()).collect(),
            ins: ins.iter().map(|s| s.to_string()).collect(),
        }
    }

    /// Sends `bytes` (one MIDI message) from output port `port` in the next cycle.
    pub fn play(&self, port: &str, bytes: &[u8]) {
        let i = self
            .outs
            .iter()
            .position(|p| p == port)
            .expect("an output port");
        self.queued.lock().unwrap().push((i, bytes.to_vec()));
    }

    /// Everything input port `port` received so far: (frame time, bytes).
    pub fn received(&self, port: &str) -> Vec<(u64, Vec<u8>)> {
        let i = self
            .ins
            .iter()
            .position(|p| p == port)
            .expect("an input port");
        self.received
            .lock()
            .unwrap()
            .iter()
            .filter(|(p, _, _)| *p == i)
            .map(|(_, t, b)| (*t, b.clone()))
            .collect()
    }

    /// Forgets what was received.
    pub fn clear(&self) {
        self.received.lock().unwrap().clear();
    }

    /// Removes the client and its ports.
    pub fn unplug(&mut self) {
        if let Some(c) = self.client.take() {
            let _ = c.deactivate();
        }
    }
}

impl Drop for JackDevice {
    fn drop(&mut self) {
        self.unplug();
    }
}
