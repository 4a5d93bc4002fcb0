//! # vault: persisted state in `vault.json`
//!
//! The vault keeps data per library and per imp across reloads and restarts.
//!
//! - **Readable diffs.** Keys are stable strings in sorted maps, pretty
//!   printed, so `vault.json` diffs stay readable.
//! - **Atomic writes.** A save writes `vault.json.tmp` and fsyncs it, checks
//!   that `vault.json` is a file it can replace, hard-links the current file
//!   aside, renames the temporary file over `vault.json`, and only then
//!   shifts the backups (`vault.json.bak1` newest … `bakN`) and fsyncs the
//!   directory. A crash at any point leaves a `vault.json` that parses: the
//!   old one or the new one.
//! - **Failed saves keep the backups.** A save that fails at any step
//!   removes its temporary file and leaves `vault.json` and every backup as
//!   they were; [`Vault::poll`] reports the failure once per distinct cause
//!   with what to do, and background saves are retried with exponential
//!   backoff ([`Health`]).
//! - **Saves only when something changed**, and off the caller's thread:
//!   with [`Vault::spawn_writer`], [`Vault::save_in_background`] hands a
//!   snapshot (shared, copy-on-write entries: no deep copy) to a writer
//!   thread, which serialises and writes it. A large entry that does not
//!   change costs nothing until something else changes.
//! - **Corruption.** A `vault.json` that does not parse is moved aside to
//!   `vault.json.corrupt-<unix seconds>` and the newest valid backup is used,
//!   with an error in the log. Nothing is deleted.
//! - **Versioned.** The file has a format `version`; [`migrate`] runs on
//!   load, before any imp is thawed. Each imp's data also carries the
//!   imp's own format version, which the imp's `migrate_vault` handles.
//! - **Nothing is dropped.** Data of imps that are not in the realm right
//!   now stays in the file.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::BTreeMap;
use std::fs::{self, File};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::time::{Duration, Instant};

/// Version of the `vault.json` format this build writes.
pub const FORMAT_VERSION: u32 = 1;

/// How many backups a vault keeps by default.
pub const DEFAULT_BACKUPS: usize = 5;

/// Errors of the vault.
#[derive(Debug, thiserror::Error)]
pub enum VaultError {
    /// Reading or writing a file failed.
    #[error("vault {path}: {source}{}", advice(source))]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: io::Error,
    },
    /// Something that is not a file is where the vault file must go.
    #[error(
        "vault {path} is {what}, not a file, so it cannot be replaced; move it away \
         (e.g. `mv {path} {path}.moved`): the vault is saved as soon as it can be, and \
         its backups stay as they are"
    )]
    NotAFile {
        /// The path.
        path: PathBuf,
        /// What is there ("a directory").
        what: &'static str,
    },
    /// The file holds a format newer than this build understands.
    #[error(
        "vault {path}: format version {found} is newer than this build of impresario understands \
         (version {FORMAT_VERSION}); run a newer impresario, or move the file away to start empty"
    )]
    TooNew {
        /// The file.
        path: PathBuf,
        /// The version found.
        found: u32,
    },
    /// Neither the file nor any backup parses.
    #[error("vault {path}: the file and every backup are unreadable: {reason}")]
    Unreadable {
        /// The file.
        path: PathBuf,
        /// Why the file itself failed.
        reason: String,
    },
}

/// What to do about a failed file operation, by cause.
fn advice(e: &io::Error) -> &'static str {
    use io::ErrorKind as K;
    match e.kind() {
        K::StorageFull | K::QuotaExceeded => {
            "; the disk (or quota) is full: free some space, the vault is saved as soon as it can be"
        }
        K::ReadOnlyFilesystem => {
            "; the file system is read-only: remount it read-write or set `vault` in realm.toml \
             to a writable place (takes effect at the next start)"
        }
        K::PermissionDenied => {
            "; check the permissions of the file and its directory, and `lsattr` for an \
             immutable flag (`chattr -i`)"
        }
        K::NotADirectory | K::NotFound => {
            "; a part of the path is missing or is not a directory: fix the path or set \
             `vault` in realm.toml (takes effect at the next start)"
        }
        K::IsADirectory => "; a directory is in the way: move it away",
        _ => "",
    }
}

fn io_err(path: &Path) -> impl FnOnce(io::Error) -> VaultError + '_ {
    move |source| VaultError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// Data the host keeps about a library.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
#[serde(default)]
pub struct LibraryEntry {
    /// Build id of the last build that was live.
    pub build_id: String,
    /// Token-free data the library's imps share; free-form.
    #[serde(skip_serializing_if = "Value::is_null")]
    pub data: Value,
}

/// Data of one imp.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
#[serde(default)]
pub struct ImpEntry {
    /// The library that wrote it.
    pub library: String,
    /// The imp's own format version of `data`.
    pub version: u32,
    /// What the imp's `get_vault_data` returned.
    pub data: Value,
}

/// The whole file.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(default)]
pub struct VaultDoc {
    /// Format version ([`FORMAT_VERSION`]).
    pub version: u32,
    /// Incremented by every save; tells which write a file holds.
    pub generation: u64,
    /// Per library, by library name.
    pub libraries: BTreeMap<String, LibraryEntry>,
    /// Per imp, by imp name.
    pub imps: BTreeMap<String, ImpEntry>,
}

impl Default for VaultDoc {
    fn default() -> Self {
        VaultDoc {
            version: FORMAT_VERSION,
            generation: 0,
            libraries: BTreeMap::new(),
            imps: BTreeMap::new(),
        }
    }
}

/// Brings a parsed file of any known version to [`FORMAT_VERSION`]. The
/// hook for future format changes: add a step per version here.
pub fn migrate(path: &Path, mut doc: Value) -> Result<Value, VaultError> {
    let found = doc.get("version").and_then(Value::as_u64).unwrap_or(1) as u32;
    if found > FORMAT_VERSION {
        return Err(VaultError::TooNew {
            path: path.to_path_buf(),
            found,
        });
    }
    // Version 1 is the first format: nothing to convert yet.
    if let Some(obj) = doc.as_object_mut() {
        obj.insert("version".into(), Value::from(FORMAT_VERSION));
    }
    Ok(doc)
}

fn parse(path: &Path, bytes: &[u8]) -> Result<VaultDoc, String> {
    let value: Value = serde_json::from_slice(bytes).map_err(|e| e.to_string())?;
    if !value.is_object() {
        return Err("the top level is not a JSON object".into());
    }
    let value = migrate(path, value).map_err(|e| e.to_string())?;
    serde_json::from_value(value).map_err(|e| e.to_string())
}

/// How [`Vault::open`] found the file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum OpenReport {
    /// There was no file: the vault starts empty.
    Created,
    /// The file was read.
    Loaded,
    /// The file was corrupt; it was moved to `moved_to` and the backup
    /// `backup` was used instead.
    Recovered {
        /// Where the corrupt file now is.
        moved_to: PathBuf,
        /// The backup that was used (`None`: no valid backup, started empty).
        backup: Option<PathBuf>,
        /// Why the file was unreadable.
        reason: String,
    },
}

/// What a writer writes: the document at one moment. Cloning it is cheap
/// (shared maps and entries, copy-on-write in the [`Vault`]).
#[derive(Clone, Debug, Serialize)]
struct Snapshot {
    version: u32,
    generation: u64,
    libraries: Arc<BTreeMap<String, LibraryEntry>>,
    imps: Arc<BTreeMap<String, Arc<ImpEntry>>>,
}

impl Snapshot {
    fn to_bytes(&self) -> Vec<u8> {
        let mut text = serde_json::to_vec_pretty(self).expect("vault documents always serialise");
        text.push(b'\n');
        text
    }
}

/// Writes vault files: the temporary file, the atomic replace, the backups.
#[derive(Debug)]
struct FileWriter {
    path: PathBuf,
    backups: usize,
}

impl FileWriter {
    /// Writes `bytes` as the new vault file. On any failure the temporary
    /// file is removed and `vault.json` and its backups are as they were.
    fn write(&self, bytes: &[u8]) -> Result<(), VaultError> {
        let tmp = sibling(&self.path, ".tmp");
        let prev = sibling(&self.path, ".prev");
        let result = self.write_steps(&tmp, &prev, bytes);
        if result.is_err() {
            let _ = fs::remove_file(&tmp);
            let _ = fs::remove_file(&prev);
        }
        result
    }

    fn write_steps(&self, tmp: &Path, prev: &Path, bytes: &[u8]) -> Result<(), VaultError> {
        // 1. The new content, on disk.
        {
            let mut f = File::create(tmp).map_err(io_err(tmp))?;
            f.write_all(bytes).map_err(io_err(tmp))?;
            f.sync_all().map_err(io_err(tmp))?;
        }
        // 2. What is in the way must be a file the rename can replace.
        let exists = match fs::symlink_metadata(&self.path) {
            Ok(m) if m.is_dir() => {
                return Err(VaultError::NotAFile {
                    path: self.path.clone(),
                    what: "a directory",
                })
            }
            Ok(m) if !(m.is_file() || m.file_type().is_symlink()) => {
                return Err(VaultError::NotAFile {
                    path: self.path.clone(),
                    what: "a special file",
                })
            }
            Ok(_) => true,
            Err(e) if e.kind() == io::ErrorKind::NotFound => false,
            Err(e) => return Err(io_err(&self.path)(e)),
        };
        // 3. Keep the current file aside (a hard link: no copy) until the
        //    new one is in place.
        let keep = exists && self.backups > 0;
        if keep {
            let _ = fs::remove_file(prev);
            fs::hard_link(&self.path, prev)
                .or_else(|_| fs::copy(&self.path, prev).map(|_| ()))
                .map_err(io_err(prev))?;
        }
        // 4. The atomic replace.
        fs::rename(tmp, &self.path).map_err(io_err(&self.path))?;
        // 5. Only now do the backups move: the previous file becomes bak1.
        if keep {
            if let Err(e) = self.rotate(prev) {
                tracing::warn!(
                    "vault {} saved, but its backups could not be rotated: {e}",
                    self.path.display()
                );
            }
        }
        if let Some(dir) = self.path.parent() {
            let dir = if dir.as_os_str().is_empty() {
                Path::new(".")
            } else {
                dir
            };
            if let Ok(d) = File::open(dir) {
                let _ = d.sync_all();
            }
        }
        Ok(())
    }

    fn rotate(&self, prev: &Path) -> Result<(), VaultError> {
        for i in (1..self.backups).rev() {
            let from = backup_name(&self.path, i);
            if from.exists() {
                fs::rename(&from, backup_name(&self.path, i + 1)).map_err(io_err(&from))?;
            }
        }
        let newest = backup_name(&self.path, 1);
        fs::rename(prev, &newest).map_err(io_err(&newest))
    }
}

/// What one background write did.
struct Outcome {
    generation: u64,
    bytes: usize,
    elapsed: Duration,
    result: Result<(), VaultError>,
}

/// The writer thread and its channels.
struct WriterThread {
    jobs: Option<mpsc::Sender<Snapshot>>,
    outcomes: mpsc::Receiver<Outcome>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Drop for WriterThread {
    fn drop(&mut self) {
        self.jobs = None;
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// State shared with the writer thread and [`EmergencySave`].
#[derive(Debug)]
struct Shared {
    /// Held while a file is written: one write at a time.
    file: Mutex<FileWriter>,
    /// The newest document (for an emergency save).
    latest: Mutex<Snapshot>,
    /// The newest generation on disk.
    written: AtomicU64,
}

/// A save that failed, and when it is tried again.
#[derive(Clone, Debug)]
struct Failure {
    error: String,
    attempts: u32,
    retry_at: Instant,
    backoff: Duration,
}

/// How saving goes, for `impresario status`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Health {
    /// The last save failed (and nothing succeeded since).
    pub failing: bool,
    /// Why the last save failed.
    pub last_error: Option<String>,
    /// Failed attempts in a row.
    pub failed_attempts: u32,
    /// When the next background attempt is due, in ms from now.
    pub retry_in_ms: Option<u64>,
    /// Successful writes since the vault was opened.
    pub writes: u64,
    /// A write is running on the writer thread.
    pub writing: bool,
}

/// What [`Vault::poll`] reports.
#[derive(Debug)]
pub enum SaveEvent {
    /// A write finished.
    Saved {
        /// The generation now in the file.
        generation: u64,
        /// Its size.
        bytes: usize,
        /// How long the serialisation and write took.
        elapsed: Duration,
        /// Failed attempts before this one (0: nothing was failing).
        after_failures: u32,
    },
    /// A write failed; nothing on disk changed.
    Failed {
        /// The generation that was not written.
        generation: u64,
        /// Why, with what to do.
        error: String,
        /// This cause differs from the previous failure's (log it).
        new_cause: bool,
        /// Until the next attempt.
        retry_in: Duration,
    },
}

/// First and longest wait before a failed background save is retried.
pub const RETRY_FIRST: Duration = Duration::from_millis(250);
/// See [`RETRY_FIRST`].
pub const RETRY_MAX: Duration = Duration::from_secs(30);

/// An open vault.
pub struct Vault {
    path: PathBuf,
    version: u32,
    generation: u64,
    libraries: Arc<BTreeMap<String, LibraryEntry>>,
    imps: Arc<BTreeMap<String, Arc<ImpEntry>>>,
    dirty: bool,
    shared: Arc<Shared>,
    writer: Option<WriterThread>,
    in_flight: Option<u64>,
    failure: Option<Failure>,
    writes: u64,
    events: Vec<SaveEvent>,
}

impl std::fmt::Debug for Vault {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Vault")
            .field("path", &self.path)
            .field("generation", &self.generation)
            .field("dirty", &self.dirty)
            .finish()
    }
}

impl Vault {
    /// Opens (or starts) the vault at `path`, recovering from corruption.
    /// Call off the engine thread.
    pub fn open(
        path: impl Into<PathBuf>,
        backups: usize,
    ) -> Result<(Vault, OpenReport), VaultError> {
        let path = path.into();
        let (doc, report) = match fs::read(&path) {
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                (VaultDoc::default(), OpenReport::Created)
            }
            Err(e) => return Err(io_err(&path)(e)),
            Ok(bytes) => match parse(&path, &bytes) {
                Ok(doc) => (doc, OpenReport::Loaded),
                Err(reason) => {
                    // A newer format is not corruption: refuse rather than
                    // replace someone's data with an older backup.
                    if let Ok(v) = serde_json::from_slice::<Value>(&bytes) {
                        migrate(&path, v)?;
                    }
                    let moved_to = corrupt_name(&path);
                    fs::rename(&path, &moved_to).map_err(io_err(&path))?;
                    let mut found = None;
                    for i in 1..=backups.max(1) {
                        let b = backup_name(&path, i);
                        if let Ok(bytes) = fs::read(&b) {
                            if let Ok(doc) = parse(&b, &bytes) {
                                found = Some((doc, b));
                                break;
                            }
                        }
                    }
                    let backup = found.as_ref().map(|(_, b)| b.clone());
                    tracing::error!(
                        "VAULT {} IS CORRUPT ({reason}); moved it to {} and {}",
                        path.display(),
                        moved_to.display(),
                        match &backup {
                            Some(b) => format!("restored the newest valid backup {}", b.display()),
                            None => "found no valid backup: starting with an empty vault".into(),
                        }
                    );
                    (
                        found.map(|(d, _)| d).unwrap_or_default(),
                        OpenReport::Recovered {
                            moved_to,
                            backup,
                            reason,
                        },
                    )
                }
            },
        };
        let dirty = report != OpenReport::Loaded;
        let snapshot = Snapshot {
            version: doc.version,
            generation: doc.generation,
            libraries: Arc::new(doc.libraries),
            imps: Arc::new(
                doc.imps
                    .into_iter()
                    .map(|(k, v)| (k, Arc::new(v)))
                    .collect(),
            ),
        };
        let shared = Arc::new(Shared {
            file: Mutex::new(FileWriter {
                path: path.clone(),
                backups,
            }),
            latest: Mutex::new(snapshot.clone()),
            written: AtomicU64::new(doc.generation),
        });
        Ok((
            Vault {
                path,
                version: snapshot.version,
                generation: snapshot.generation,
                libraries: snapshot.libraries,
                imps: snapshot.imps,
                dirty,
                shared,
                writer: None,
                in_flight: None,
                failure: None,
                writes: 0,
                events: Vec::new(),
            },
            report,
        ))
    }

    /// Where the vault lives.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The generation of the newest write that completed (or of the file
    /// as it was loaded).
    pub fn generation(&self) -> u64 {
        self.generation
    }

    /// The whole document (a copy).
    pub fn doc(&self) -> VaultDoc {
        VaultDoc {
            version: self.version,
            generation: self.generation,
            libraries: (*self.libraries).clone(),
            imps: self
                .imps
                .iter()
                .map(|(k, v)| (k.clone(), (**v).clone()))
                .collect(),
        }
    }

    /// True when something changed since the last successful save (or the
    /// last save failed).
    pub fn is_dirty(&self) -> bool {
        self.dirty
    }

    /// Data of imp `name`.
    pub fn imp(&self, name: &str) -> Option<&ImpEntry> {
        self.imps.get(name).map(|e| &**e)
    }

    /// Stores data of imp `name`; returns true when it changed.
    pub fn set_imp(&mut self, name: &str, entry: ImpEntry) -> bool {
        if self.imp(name) == Some(&entry) {
            return false;
        }
        Arc::make_mut(&mut self.imps).insert(name.to_string(), Arc::new(entry));
        self.changed();
        true
    }

    /// Data of library `name`.
    pub fn library(&self, name: &str) -> Option<&LibraryEntry> {
        self.libraries.get(name)
    }

    /// Stores data of library `name`; returns true when it changed.
    pub fn set_library(&mut self, name: &str, entry: LibraryEntry) -> bool {
        if self.libraries.get(name) == Some(&entry) {
            return false;
        }
        Arc::make_mut(&mut self.libraries).insert(name.to_string(), entry);
        self.changed();
        true
    }

    fn changed(&mut self) {
        self.dirty = true;
        let snapshot = self.snapshot(self.generation);
        *self.shared.latest.lock().unwrap_or_else(|e| e.into_inner()) = snapshot;
    }

    fn snapshot(&self, generation: u64) -> Snapshot {
        Snapshot {
            version: self.version,
            generation,
            libraries: self.libraries.clone(),
            imps: self.imps.clone(),
        }
    }

    /// Moves writing to a thread of its own: [`Vault::save_in_background`]
    /// then returns at once. Call once, off the engine thread.
    pub fn spawn_writer(&mut self) -> io::Result<()> {
        if self.writer.is_some() {
            return Ok(());
        }
        let (jobs_tx, jobs_rx) = mpsc::channel::<Snapshot>();
        let (out_tx, out_rx) = mpsc::channel();
        let shared = self.shared.clone();
        let thread = std::thread::Builder::new()
            .name("impresario-vault".into())
            .spawn(move || {
                while let Ok(snapshot) = jobs_rx.recv() {
                    let outcome = write_snapshot(&shared, &snapshot);
                    if out_tx.send(outcome).is_err() {
                        break;
                    }
                }
            })?;
        self.writer = Some(WriterThread {
            jobs: Some(jobs_tx),
            outcomes: out_rx,
            thread: Some(thread),
        });
        Ok(())
    }

    /// How saving goes.
    pub fn health(&self) -> Health {
        Health {
            failing: self.failure.is_some(),
            last_error: self.failure.as_ref().map(|f| f.error.clone()),
            failed_attempts: self.failure.as_ref().map_or(0, |f| f.attempts),
            retry_in_ms: self.failure.as_ref().map(|f| {
                f.retry_at
                    .saturating_duration_since(Instant::now())
                    .as_millis() as u64
            }),
            writes: self.writes,
            writing: self.in_flight.is_some(),
        }
    }

    /// Starts a background write when something changed, no write is
    /// running and no failed save is waiting for its retry time. Returns
    /// true when a write started. Without a writer thread it writes here,
    /// and [`Vault::poll`] reports the outcome.
    pub fn save_in_background(&mut self) -> bool {
        if !self.dirty || self.in_flight.is_some() {
            return false;
        }
        if self
            .failure
            .as_ref()
            .is_some_and(|f| Instant::now() < f.retry_at)
        {
            return false;
        }
        let generation = self.generation + 1;
        let snapshot = self.snapshot(generation);
        self.dirty = false;
        self.in_flight = Some(generation);
        let unsent = match self.writer.as_ref().and_then(|w| w.jobs.as_ref()) {
            Some(jobs) => jobs.send(snapshot).err().map(|e| e.0),
            None => Some(snapshot),
        };
        if let Some(snapshot) = unsent {
            let outcome = write_snapshot(&self.shared, &snapshot);
            let event = self.apply(outcome).1;
            self.events.push(event);
        }
        true
    }

    /// Collects what background writes did since the last call. Never blocks.
    pub fn poll(&mut self) -> Vec<SaveEvent> {
        while let Some(outcome) = self
            .writer
            .as_ref()
            .and_then(|w| w.outcomes.try_recv().ok())
        {
            let event = self.apply(outcome).1;
            self.events.push(event);
        }
        std::mem::take(&mut self.events)
    }

    /// Waits for a running background write (its outcome is reported by
    /// the next [`Vault::poll`]).
    pub fn wait_for_writer(&mut self) {
        if self.in_flight.is_none() {
            return;
        }
        let outcome = self.writer.as_ref().and_then(|w| w.outcomes.recv().ok());
        match outcome {
            Some(outcome) => {
                let event = self.apply(outcome).1;
                self.events.push(event);
            }
            None => self.in_flight = None,
        }
    }

    /// Writes the vault now when something changed (see the crate docs) and
    /// returns the generation in the file. Waits for a running background
    /// write first; ignores the retry backoff. Blocks on fsync: never call
    /// on the engine thread.
    pub fn save(&mut self) -> Result<u64, VaultError> {
        self.wait_for_writer();
        if !self.dirty {
            return Ok(self.generation);
        }
        let generation = self.generation + 1;
        let snapshot = self.snapshot(generation);
        self.dirty = false;
        self.in_flight = Some(generation);
        let outcome = write_snapshot(&self.shared, &snapshot);
        let (result, _) = self.apply(outcome);
        result.map(|()| generation)
    }

    /// Takes in one write's outcome.
    fn apply(&mut self, mut outcome: Outcome) -> (Result<(), VaultError>, SaveEvent) {
        self.in_flight = None;
        let result = std::mem::replace(&mut outcome.result, Ok(()));
        let event = match &result {
            Ok(()) => {
                self.generation = outcome.generation;
                self.writes += 1;
                SaveEvent::Saved {
                    generation: outcome.generation,
                    bytes: outcome.bytes,
                    elapsed: outcome.elapsed,
                    after_failures: self.failure.take().map_or(0, |f| f.attempts),
                }
            }
            Err(e) => {
                self.dirty = true;
                let error = e.to_string();
                let previous = self.failure.take();
                let new_cause = previous.as_ref().is_none_or(|f| f.error != error);
                let backoff = previous
                    .as_ref()
                    .map_or(RETRY_FIRST, |f| (f.backoff * 2).min(RETRY_MAX));
                self.failure = Some(Failure {
                    error: error.clone(),
                    attempts: previous.map_or(0, |f| f.attempts) + 1,
                    retry_at: Instant::now() + backoff,
                    backoff,
                });
                SaveEvent::Failed {
                    generation: outcome.generation,
                    error,
                    new_cause,
                    retry_in: backoff,
                }
            }
        };
        (result, event)
    }

    /// A handle that can write the newest data from another thread when
    /// this one is stuck (a second Ctrl-C during a hung shutdown).
    pub fn emergency(&self) -> EmergencySave {
        EmergencySave(self.shared.clone())
    }
}

/// Serialises and writes one snapshot. Any thread but the engine's.
fn write_snapshot(shared: &Shared, snapshot: &Snapshot) -> Outcome {
    let started = Instant::now();
    let bytes = snapshot.to_bytes();
    let result = shared
        .file
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .write(&bytes);
    if result.is_ok() {
        shared
            .written
            .fetch_max(snapshot.generation, Ordering::AcqRel);
    }
    Outcome {
        generation: snapshot.generation,
        bytes: bytes.len(),
        elapsed: started.elapsed(),
        result,
    }
}

/// See [`Vault::emergency`].
#[derive(Clone, Debug)]
pub struct EmergencySave(Arc<Shared>);

impl EmergencySave {
    /// Writes the newest data the vault holds, unless the vault or a write
    /// stays busy for longer than `wait` (a stuck disk). Returns the
    /// generation written.
    pub fn save(&self, wait: Duration) -> Result<u64, String> {
        let deadline = Instant::now() + wait;
        let snapshot = loop {
            match self.0.latest.try_lock() {
                Ok(s) => break s.clone(),
                Err(std::sync::TryLockError::Poisoned(p)) => break p.into_inner().clone(),
                Err(_) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(5)),
                Err(_) => return Err("the vault stayed busy".into()),
            }
        };
        let file = loop {
            match self.0.file.try_lock() {
                Ok(f) => break f,
                Err(std::sync::TryLockError::Poisoned(p)) => break p.into_inner(),
                Err(_) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(5)),
                Err(_) => return Err("a vault write is stuck".into()),
            }
        };
        let generation = self.0.written.load(Ordering::Acquire) + 1;
        let snapshot = Snapshot {
            generation,
            ..snapshot
        };
        file.write(&snapshot.to_bytes())
            .map_err(|e| e.to_string())?;
        self.0.written.store(generation, Ordering::Release);
        Ok(generation)
    }
}

fn sibling(path: &Path, suffix: &str) -> PathBuf {
    let mut s = path.as_os_str().to_owned();
    s.push(suffix);
    PathBuf::from(s)
}

/// Path of backup number `i` (1 = newest).
pub fn backup_name(path: &Path, i: usize) -> PathBuf {
    sibling(path, &format!(".bak{i}"))
}

fn corrupt_name(path: &Path) -> PathBuf {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let mut candidate = sibling(path, &format!(".corrupt-{secs}"));
    let mut n = 1;
    while candidate.exists() {
        candidate = sibling(path, &format!(".corrupt-{secs}-{n}"));
        n += 1;
    }
    candidate
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn entry(n: u64) -> ImpEntry {
        ImpEntry {
            library: "monitor".into(),
            version: 1,
            data: json!({ "n": n }),
        }
    }

    #[test]
    fn missing_file_starts_empty_and_saves() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("vault.json");
        let (mut v, report) = Vault::open(&path, 3).unwrap();
        assert_eq!(report, OpenReport::Created);
        v.set_imp("a", entry(1));
        assert_eq!(v.save().unwrap(), 1);
        let (v2, report) = Vault::open(&path, 3).unwrap();
        assert_eq!(report, OpenReport::Loaded);
        assert_eq!(v2.imp("a"), Some(&entry(1)));
        assert_eq!(v2.generation(), 1);
    }

    #[test]
    fn keys_are_sorted_in_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("vault.json");
        let (mut v, _) = Vault::open(&path, 3).unwrap();
        v.set_imp("zeta", entry(1));
        v.set_imp("alpha", entry(2));
        v.save().unwrap();
        let text = fs::read_to_string(&path).unwrap();
        assert!(text.find("\"alpha\"").unwrap() < text.find("\"zeta\"").unwrap());
    }

    #[test]
    fn backups_rotate_and_are_bounded() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("vault.json");
        let (mut v, _) = Vault::open(&path, 2).unwrap();
        for n in 1..=5 {
            v.set_imp("a", entry(n));
            v.save().unwrap();
        }
        let bak1: VaultDoc =
            serde_json::from_slice(&fs::read(backup_name(&path, 1)).unwrap()).unwrap();
        let bak2: VaultDoc =
            serde_json::from_slice(&fs::read(backup_name(&path, 2)).unwrap()).unwrap();
        assert_eq!(bak1.generation, 4);
        assert_eq!(bak2.generation, 3);
        assert!(!backup_name(&path, 3).exists());
    }

    #[test]
    fn corrupt_file_falls_back_to_newest_valid_backup() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("vault.json");
        let (mut v, _) = Vault::open(&path, 3).unwrap();
        for n in 1..=3 {
            v.set_imp("a", entry(n));
            v.save().unwrap();
        }
        // Newest backup corrupt too: the next one must be used.
        fs::write(&path, b"{ not json").unwrap();
        fs::write(backup_name(&path, 1), b"garbage").unwrap();
        let (v, report) = Vault::open(&path, 3).unwrap();
        match report {
            OpenReport::Recovered {
                moved_to, backup, ..
            } => {
                assert_eq!(fs::read(&moved_to).unwrap(), b"{ not json");
                assert_eq!(backup, Some(backup_name(&path, 2)));
            }
            other => panic!("expected recovery, got {other:?}"),
        }
        assert_eq!(v.imp("a"), Some(&entry(1)));
        assert!(v.is_dirty());
    }

    #[test]
    fn newer_format_is_refused_not_replaced() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("vault.json");
        fs::write(&path, br#"{"version": 99}"#).unwrap();
        let err = Vault::open(&path, 3).unwrap_err();
        assert!(matches!(err, VaultError::TooNew { found: 99, .. }), "{err}");
        assert!(path.exists(), "the newer file must stay where it is");
    }

    #[test]
    fn unchanged_data_does_not_dirty() {
        let dir = tempfile::tempdir().unwrap();
        let (mut v, _) = Vault::open(dir.path().join("vault.json"), 3).unwrap();
        assert!(v.set_imp("a", entry(1)));
        v.save().unwrap();
        assert!(!v.set_imp("a", entry(1)));
        assert!(!v.is_dirty());
    }

    fn generation_of(path: &Path) -> u64 {
        let doc: VaultDoc = serde_json::from_slice(&fs::read(path).unwrap()).unwrap();
        doc.generation
    }

    #[test]
    fn a_failing_save_leaves_the_file_and_every_backup_alone() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("vault.json");
        let (mut v, _) = Vault::open(&path, 3).unwrap();
        for n in 1..=4 {
            v.set_imp("a", entry(n));
            v.save().unwrap();
        }
        let backups: Vec<u64> = (1..=3)
            .map(|i| generation_of(&backup_name(&path, i)))
            .collect();
        assert_eq!(backups, vec![3, 2, 1]);
        // A directory where the file must go: every save fails, again and again.
        fs::rename(&path, dir.path().join("aside.json")).unwrap();
        fs::create_dir(&path).unwrap();
        for n in 5..=15 {
            v.set_imp("a", entry(n));
            let err = v.save().unwrap_err();
            assert!(matches!(err, VaultError::NotAFile { .. }), "{err}");
            assert!(err.to_string().contains("move it away"), "{err}");
        }
        let after: Vec<u64> = (1..=3)
            .map(|i| generation_of(&backup_name(&path, i)))
            .collect();
        assert_eq!(
            after, backups,
            "the backups must not rotate on failed saves"
        );
        assert!(!sibling(&path, ".tmp").exists(), "no stale temporary file");
        assert!(v.is_dirty());
        let h = v.health();
        assert!(h.failing && h.failed_attempts == 11, "{h:?}");
        // Fixed: the next save succeeds and carries the newest data.
        fs::remove_dir(&path).unwrap();
        assert_eq!(v.save().unwrap(), 5);
        let (v2, _) = Vault::open(&path, 3).unwrap();
        assert_eq!(v2.imp("a"), Some(&entry(15)));
        assert!(!v.health().failing);
    }

    #[test]
    fn a_parent_that_is_a_file_fails_cleanly() {
        let dir = tempfile::tempdir().unwrap();
        let sub = dir.path().join("sub");
        fs::create_dir(&sub).unwrap();
        let path = sub.join("vault.json");
        let (mut v, _) = Vault::open(&path, 3).unwrap();
        fs::remove_dir(&sub).unwrap();
        fs::write(&sub, b"x").unwrap();
        v.set_imp("a", entry(1));
        let err = v.save().unwrap_err();
        assert!(err.to_string().contains("is not a directory"), "{err}");
    }

    #[test]
    fn background_saves_happen_only_on_change_and_back_off_when_failing() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("vault.json");
        let (mut v, _) = Vault::open(&path, 3).unwrap();
        v.spawn_writer().unwrap();
        v.set_imp("big", entry(1));
        assert!(v.save_in_background());
        assert!(!v.save_in_background(), "one write at a time");
        v.wait_for_writer();
        assert!(matches!(
            v.poll().as_slice(),
            [SaveEvent::Saved { generation: 1, .. }]
        ));
        // Nothing changed: nothing is written.
        assert!(!v.save_in_background());
        assert!(!v.set_imp("big", entry(1)));
        assert!(!v.save_in_background());
        assert_eq!(v.health().writes, 1);

        fs::remove_file(&path).unwrap();
        fs::create_dir(&path).unwrap();
        v.set_imp("big", entry(2));
        assert!(v.save_in_background());
        v.wait_for_writer();
        match v.poll().as_slice() {
            [SaveEvent::Failed {
                new_cause: true,
                retry_in,
                ..
            }] => assert_eq!(*retry_in, RETRY_FIRST),
            other => panic!("{other:?}"),
        }
        // Backing off: no attempt before the retry time.
        assert!(!v.save_in_background());
        let h = v.health();
        assert!(
            h.failing && h.retry_in_ms.is_some_and(|ms| ms <= 250),
            "{h:?}"
        );
        std::thread::sleep(RETRY_FIRST);
        assert!(v.save_in_background());
        v.wait_for_writer();
        match v.poll().as_slice() {
            [SaveEvent::Failed {
                new_cause: false,
                retry_in,
                ..
            }] => assert_eq!(*retry_in, RETRY_FIRST * 2),
            other => panic!("{other:?}"),
        }
        fs::remove_dir(&path).unwrap();
        std::thread::sleep(RETRY_FIRST * 2);
        assert!(v.save_in_background());
        v.wait_for_writer();
        assert!(matches!(
            v.poll().as_slice(),
            [SaveEvent::Saved {
                generation: 2,
                after_failures: 2,
                ..
            }]
        ));
    }

    #[test]
    fn an_emergency_save_writes_the_newest_data() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("vault.json");
        let (mut v, _) = Vault::open(&path, 3).unwrap();
        v.set_imp("a", entry(1));
        v.save().unwrap();
        v.set_imp("a", entry(2));
        let e = v.emergency();
        assert_eq!(e.save(Duration::from_secs(1)).unwrap(), 2);
        let (v2, _) = Vault::open(&path, 3).unwrap();
        assert_eq!(v2.imp("a"), Some(&entry(2)));
    }
}
