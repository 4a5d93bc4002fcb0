//! What `impresario status` reports, as types: the daemon builds a
//! [`Status`], the socket carries it as JSON, the CLI reads it back into the
//! same types. One definition of every field.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::PathBuf;

/// Where an imp is in its life.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Lifecycle {
    /// Its library is not loaded (not built yet, or refused).
    Missing,
    /// Created, holding no resources, receiving no events.
    Frozen,
    /// Running.
    Thawed,
    /// It panicked; retried on the next build of its library.
    Failed,
}

impl Lifecycle {
    /// The word `status` prints.
    pub fn word(self) -> &'static str {
        match self {
            Lifecycle::Missing => "missing",
            Lifecycle::Frozen => "frozen",
            Lifecycle::Thawed => "thawed",
            Lifecycle::Failed => "failed",
        }
    }
}

/// The whole status of a running realm.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Status {
    /// Seconds since the daemon started.
    pub uptime_s: f64,
    /// The daemon's process id.
    pub pid: u32,
    /// Reconcile periods run.
    pub reconcile_ticks: u64,
    /// The realm file.
    pub realm: PathBuf,
    /// Why the last edit of the realm file was refused (`file:line:column: …`).
    pub realm_error: Option<String>,
    /// Every imp, by name.
    pub imps: Vec<ImpStatus>,
    /// Every library loaded or asked for, by name.
    pub libraries: BTreeMap<String, LibraryStatus>,
    /// Library builds mapped in the process (never unloaded).
    pub loaded_builds: u64,
    /// Bytes of those builds' mapped images.
    pub mapped_build_bytes: u64,
    /// The vault.
    pub vault: VaultStatus,
    /// Memory locking and the engine thread's scheduling.
    pub realtime: RealtimeStatus,
    /// The engine's counters.
    pub engine: EngineStatus,
    /// The scripts folder.
    pub scripts: ScriptsStatus,
    /// Messages between imps.
    #[serde(default)]
    pub messages: crate::mail::MailCounts,
}

/// One imp.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ImpStatus {
    /// Its name in `realm.toml` (or `seq.<stem>` for a script).
    pub name: String,
    /// Its library.
    pub library: String,
    /// The build it runs, when it has one.
    pub build_id: Option<String>,
    /// Where it is in its life.
    pub state: Lifecycle,
    /// Respawns onto new builds so far.
    pub reload_count: u64,
    /// Why it is not running, or what the last attempt said.
    pub last_error: Option<String>,
    /// What the imp itself reports (its `poll`).
    pub status: Value,
}

/// One library.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LibraryStatus {
    /// The live build.
    pub build_id: Option<String>,
    /// Respawns onto new builds.
    pub reloads: u64,
    /// Changed files that held the live build again (skipped).
    pub identical_skipped: u64,
    /// Why the last build was refused.
    pub last_error: Option<String>,
}

/// The vault file.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct VaultStatus {
    /// Where it is.
    pub path: PathBuf,
    /// Its generation (one more per write).
    pub generation: u64,
    /// Data changed since the last write.
    pub dirty: bool,
    /// Why the last write failed.
    pub last_error: Option<String>,
    /// The last write failed and none succeeded since.
    pub failing: bool,
    /// Failed writes in a row.
    pub failed_attempts: u32,
    /// When the next attempt is due, in ms.
    pub retry_in_ms: Option<u64>,
    /// Writes since the daemon started.
    pub writes: u64,
    /// A write is running.
    pub writing: bool,
}

/// What the real-time setup got at start.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RealtimeStatus {
    /// The daemon's memory is locked (mlockall).
    pub memory_locked: bool,
    /// What the memory lock did, or why not, with the fix.
    pub memory: String,
    /// The engine thread's scheduling (e.g. `fifo 70`), or why it was
    /// refused, with the fix.
    pub engine_priority: String,
}

/// The engine's settings and counters.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EngineStatus {
    /// Sample rate in Hz.
    pub sample_rate: u32,
    /// Frames per block (JACK: per period).
    pub block_size: u32,
    /// The slowest cycle, in µs.
    pub slowest_cycle_us: f64,
    /// The counters.
    #[serde(flatten)]
    pub counters: engine::StatsSnapshot,
}

/// The scripts folder.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ScriptsStatus {
    /// The folder.
    pub dir: PathBuf,
    /// Its scripts.
    pub files: Vec<ScriptStatus>,
}

/// One script of the folder.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ScriptStatus {
    /// Its file name without `.json`.
    pub name: String,
    /// Its imp (`seq.<name>`).
    pub imp: String,
    /// The file.
    pub file: PathBuf,
    /// `playing`, `waiting`, or `invalid` (the newest version was refused;
    /// a previous one may still play: `playing`).
    pub state: String,
    /// A version of it plays.
    pub playing: bool,
    /// Versions loaded so far.
    pub versions: u64,
    /// Why the newest version was refused: `{location, code, message, errors}`.
    pub error: Option<Value>,
}
