//! The supervisor: the loop that keeps the live imps matching `realm.toml`.
//!
//! It runs on one control thread and owns every imp's control part, the
//! engine's control handle and the vault. Each reconcile period it:
//! collects what the engine let go of and which RT parts panicked, re-reads
//! `realm.toml` (an invalid edit is rejected and the running realm kept),
//! respawns libraries whose new build has settled, polls thawed imps and
//! saves their vault data, retries frozen imps every thaw-retry period, and
//! writes the vault when it changed (at most once per debounce period).
//!
//! Respawn of a library: freeze every imp of it (their RT parts keep
//! playing) → `on_before_load` on the old build → load the new copy →
//! `on_after_load(token)` → create the imps from their frozen state →
//! restore their vault data → thaw, handing each old RT part's transient
//! state to the new one between two engine cycles. A failure at any step
//! thaws the old imps again, so they keep running, and is reported.

use crate::config::{script_imp, valid_script_stem, ConfigError, ImpSpec, LiveScript, RealmConfig};
use crate::loader::{
    library_file_name, loaded_builds, loaded_bytes, CallError, ImpHandle, Library, LibraryImage,
};
use crate::mail::{Letter, REALM};
use crate::protocol::{Reply, Request};
use crate::status::{
    EngineStatus, ImpStatus, LibraryStatus, RealtimeStatus, ScriptStatus, ScriptsStatus, Status,
    VaultStatus,
};
use engine::{EngineHandle, Routing, Wire, MAX_SLOTS};
use imp::RtEvent;
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::sync::Arc;
use std::time::{Duration, Instant};
use vault::{ImpEntry, LibraryEntry, Vault};

use crate::imp_state::{FileStamp, ImpState, LibState};
pub use crate::status::Lifecycle;

/// One `*.json` of the scripts folder.
#[derive(Default)]
struct ScriptFile {
    path: PathBuf,
    /// The text that plays (validated).
    live: Option<String>,
    /// A new text waiting to settle, and since when.
    pending: Option<(String, Instant)>,
    /// The inode when last read: a new one means the file arrived by rename.
    ino: Option<u64>,
    /// The text last refused (not validated again until it changes).
    rejected: Option<String>,
    /// Why it was refused: `{location, code, message, errors}`.
    error: Option<Value>,
    /// Versions loaded so far.
    versions: u64,
}

/// The notify watch on the scripts folder: it only wakes the realm, which
/// scans the folder (and does so every reconcile period anyway, so a
/// folder that appears later is picked up too).
struct ScriptsWatch {
    dir: PathBuf,
    tx: mpsc::Sender<Message>,
    armed_on: Option<(u64, u64)>,
    _watcher: Option<notify::RecommendedWatcher>,
}

impl ScriptsWatch {
    fn identity(dir: &Path) -> Option<(u64, u64)> {
        use std::os::unix::fs::MetadataExt;
        let m = std::fs::metadata(dir).ok()?;
        m.is_dir().then(|| (m.dev(), m.ino()))
    }

    /// (Re-)arms the watch when the folder appeared, moved or was replaced.
    fn check(&mut self, dir: &Path) {
        let now = Self::identity(dir);
        if dir == self.dir && now == self.armed_on {
            return;
        }
        self.dir = dir.to_path_buf();
        self.armed_on = now;
        self._watcher = None;
        if now.is_none() {
            return;
        }
        use notify::Watcher;
        let tx = self.tx.clone();
        let watcher = notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
            if let Ok(event) = event {
                if !matches!(event.kind, notify::EventKind::Access(_)) {
                    let _ = tx.send(Message::ScriptsChanged);
                }
            }
        });
        match watcher {
            Ok(mut w) => match w.watch(dir, notify::RecursiveMode::NonRecursive) {
                Ok(()) => {
                    tracing::debug!("watching the scripts folder {}", dir.display());
                    self._watcher = Some(w);
                }
                Err(e) => tracing::warn!(
                    "cannot watch {} ({e}); it is scanned every reconcile period",
                    dir.display()
                ),
            },
            Err(e) => tracing::warn!("cannot watch the scripts folder: {e}"),
        }
    }
}

/// What reaches the supervisor's loop.
pub enum Message {
    /// A request from the control socket, with where to send the reply.
    Request(Request, mpsc::Sender<Reply>),
    /// A library file changed (library name).
    LibraryChanged(String),
    /// Something changed in the scripts folder.
    ScriptsChanged,
    /// Stop: freeze everything, save the vault, return from [`Realm::run`].
    Shutdown,
    /// Re-read `realm.toml` now (SIGHUP).
    Reread,
    /// Messages between imps are waiting (see [`crate::mail`]).
    Mail,
}

/// The running realm.
pub struct Realm {
    config: RealmConfig,
    /// `realm.toml` as applied, without the scripts folder's imps.
    file_config: RealmConfig,
    /// The scripts folder, by file stem.
    scripts: BTreeMap<String, ScriptFile>,
    /// Script stems refused for their name (said once).
    bad_script_names: std::collections::BTreeSet<String>,
    scripts_watch: Option<ScriptsWatch>,
    applied_text: String,
    rejected_text: Option<String>,
    realm_error: Option<String>,
    /// A changed realm.toml text waiting to settle, and since when.
    realm_pending: Option<(String, Instant)>,
    /// The inode of realm.toml when last read: a new one means the file
    /// arrived by rename, complete.
    realm_ino: Option<u64>,
    libraries: BTreeMap<String, LibState>,
    imps: BTreeMap<String, ImpState>,
    free_slots: Vec<usize>,
    engine: EngineHandle,
    vault: Vault,
    vault_changed_at: Option<Instant>,
    vault_error: Option<String>,
    last_thaw_try: Instant,
    started: Instant,
    pending_libraries: BTreeMap<String, Instant>,
    ticks: u64,
    library_watch: Option<crate::watch::LibraryWatch>,
    observer: Option<crate::observer::LoopObserver>,
    /// Messages for imps that are not thawed, by imp, oldest first.
    waiting: BTreeMap<String, std::collections::VecDeque<Letter>>,
    /// Names messages were sent to that are not in the realm (said once).
    unknown_recipients: std::collections::BTreeSet<String>,
}

fn err_text(e: &CallError) -> String {
    e.to_string()
}

impl Realm {
    /// Opens the vault and brings up every imp of `config`. Control thread.
    pub fn new(config: RealmConfig, engine: EngineHandle) -> Result<Realm, vault::VaultError> {
        let (vault, report) = Vault::open(&config.settings.vault, config.settings.vault_backups)?;
        match &report {
            vault::OpenReport::Created => {
                tracing::info!("vault {} will be created", config.settings.vault.display())
            }
            vault::OpenReport::Loaded => {
                tracing::info!("vault {} loaded", config.settings.vault.display())
            }
            vault::OpenReport::Recovered { .. } => {}
        }
        let text = std::fs::read_to_string(&config.path).unwrap_or_default();
        // Imps render at the engine's rate (JACK's, when JACK drives it).
        crate::host::set_sample_rate(engine.config().sample_rate as f64);
        crate::mail::install(None);
        let mut realm = Realm {
            config: RealmConfig {
                imps: BTreeMap::new(),
                wires: Vec::new(),
                ..config.clone()
            },
            file_config: config.clone(),
            scripts: BTreeMap::new(),
            bad_script_names: Default::default(),
            scripts_watch: None,
            applied_text: String::new(),
            rejected_text: None,
            realm_error: None,
            realm_pending: None,
            realm_ino: file_ino(&config.path),
            libraries: BTreeMap::new(),
            imps: BTreeMap::new(),
            free_slots: (0..MAX_SLOTS).rev().collect(),
            engine,
            vault,
            vault_changed_at: None,
            vault_error: None,
            last_thaw_try: Instant::now(),
            started: Instant::now(),
            pending_libraries: BTreeMap::new(),
            ticks: 0,
            library_watch: None,
            observer: None,
            waiting: BTreeMap::new(),
            unknown_recipients: Default::default(),
        };
        if let vault::OpenReport::Recovered { .. } = report {
            realm.vault_changed_at = Some(Instant::now());
        }
        // Scripts already in the folder are complete: they play at once.
        realm.scan_scripts(true);
        realm.apply(config.with_scripts(&realm.live_scripts()));
        realm.applied_text = text;
        Ok(realm)
    }

    /// Hands over the watch on `library_dir`, which the realm re-arms when
    /// the directory is removed and comes back (`cargo clean`).
    pub fn watch_libraries(&mut self, watch: crate::watch::LibraryWatch) {
        self.library_watch = Some(watch);
    }

    /// Lets messages from imps wake the loop as [`Message::Mail`], so they
    /// are delivered within milliseconds (without it, at the next tick).
    pub fn wake_for_mail(&mut self, tx: mpsc::Sender<Message>) {
        crate::mail::install(Some(tx));
    }

    /// Watches the scripts folder; changes wake the loop as
    /// [`Message::ScriptsChanged`]. Without it the folder is still scanned
    /// every reconcile period.
    pub fn watch_scripts(&mut self, tx: mpsc::Sender<Message>) {
        let dir = self.file_config.settings.scripts_dir.clone();
        let mut w = ScriptsWatch {
            dir: dir.clone(),
            tx,
            armed_on: None,
            _watcher: None,
        };
        w.armed_on = Some((u64::MAX, u64::MAX));
        w.check(&dir);
        self.scripts_watch = Some(w);
    }

    /// The scripts that play, by stem.
    fn live_scripts(&self) -> BTreeMap<String, LiveScript> {
        self.scripts
            .iter()
            .filter_map(|(stem, s)| {
                Some((
                    stem.clone(),
                    LiveScript {
                        path: s.path.clone(),
                        text: s.live.clone()?,
                    },
                ))
            })
            .collect()
    }

    /// Scans the scripts folder and applies what changed: a new or changed
    /// valid script (settled) starts or swaps in, a deleted one stops.
    fn check_scripts(&mut self) {
        if let Some(w) = self.scripts_watch.as_mut() {
            w.check(&self.file_config.settings.scripts_dir);
        }
        if self.scan_scripts(false) {
            let new = self.file_config.with_scripts(&self.live_scripts());
            self.apply(new);
        }
    }

    /// Reads the scripts folder; returns true when the set of live scripts
    /// or one of their texts changed.
    ///
    /// A new text is validated once it is unchanged for the settle time
    /// (half a reconcile period, 20–100 ms), or at once when the file
    /// arrived by rename (editors rename complete files) and is valid; at
    /// start (`initial`) every file is taken as complete. Validation is
    /// the whole TimeSeq load (JSON, structure, processor build) at the
    /// engine's rate, here on the control thread. An invalid version is
    /// reported (log and status, with the spec's location and code) and the
    /// previous version keeps playing.
    fn scan_scripts(&mut self, initial: bool) -> bool {
        let dir = self.file_config.settings.scripts_dir.clone();
        let settle = self.realm_settle();
        let rate = self.engine.config().sample_rate as f32;
        let mut changed = false;
        let mut seen = std::collections::BTreeSet::new();
        let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
            .map(|d| d.flatten().map(|e| e.path()).collect())
            .unwrap_or_default();
        files.sort();
        for path in files {
            if path.extension().and_then(|e| e.to_str()) != Some("json") || !path.is_file() {
                continue;
            }
            let Some(stem) = path
                .file_stem()
                .and_then(|s| s.to_str())
                .map(str::to_string)
            else {
                continue;
            };
            if stem.starts_with('.') {
                continue; // editors' hidden temporary files
            }
            if !valid_script_stem(&stem) {
                if self.bad_script_names.insert(stem.clone()) {
                    tracing::warn!(
                        "script {} is ignored: a script name may only use letters, digits, `_`, `-` and `.`",
                        path.display()
                    );
                }
                continue;
            }
            let Ok(text) = std::fs::read_to_string(&path) else {
                continue;
            };
            seen.insert(stem.clone());
            let ino = file_ino(&path);
            let st = self
                .scripts
                .entry(stem.clone())
                .or_insert_with(|| ScriptFile {
                    path: path.clone(),
                    ..Default::default()
                });
            if st.live.as_deref() == Some(text.as_str()) {
                st.pending = None;
                st.ino = ino;
                if st.rejected.take().is_some() {
                    st.error = None;
                    tracing::info!("script {stem}: back to the version that plays");
                }
                continue;
            }
            if st.rejected.as_deref() == Some(text.as_str()) {
                st.pending = None;
                continue;
            }
            let renamed = st.ino.is_some() && ino.is_some() && ino != st.ino;
            let quiet = st
                .pending
                .as_ref()
                .is_some_and(|(t, since)| *t == text && since.elapsed() >= settle);
            if !(initial || renamed || quiet) {
                if st.pending.as_ref().is_none_or(|(t, _)| *t != text) {
                    st.pending = Some((text, Instant::now()));
                }
                continue;
            }
            match timeseq::Engine::load(&text, rate) {
                Ok(_) => {
                    st.pending = None;
                    st.ino = ino;
                    st.live = Some(text);
                    st.rejected = None;
                    st.error = None;
                    st.versions += 1;
                    changed = true;
                    tracing::info!(
                        "script {}: version {} valid, {}",
                        path.display(),
                        st.versions,
                        if st.versions == 1 {
                            "starting it"
                        } else {
                            "swapping it in"
                        }
                    );
                }
                Err(_) if !(initial || quiet) => {
                    // Arrived by rename but not valid: maybe still being
                    // written; it is judged once it settles.
                    st.pending = Some((text, Instant::now()));
                }
                Err(e) => {
                    let errors = e.errors();
                    let first = errors.first().cloned();
                    let keeps = if st.live.is_some() {
                        "the previous version keeps playing"
                    } else {
                        "it does not play until it is fixed"
                    };
                    for err in &errors {
                        tracing::error!("script {}: {err}", path.display());
                    }
                    tracing::error!(
                        "script {}: {} error(s); {keeps}",
                        path.display(),
                        errors.len()
                    );
                    st.error = Some(json!({
                        "location": first.as_ref().map(|f| f.location.clone()),
                        "code": first.as_ref().and_then(|f| f.code),
                        "message": first.as_ref().map(|f| f.message.clone()),
                        "errors": errors.iter().map(|e| e.to_string()).collect::<Vec<_>>(),
                    }));
                    st.pending = None;
                    st.ino = ino;
                    st.rejected = Some(text);
                }
            }
        }
        let gone: Vec<String> = self
            .scripts
            .keys()
            .filter(|k| !seen.contains(*k))
            .cloned()
            .collect();
        for stem in gone {
            if let Some(st) = self.scripts.remove(&stem) {
                if st.live.is_some() {
                    tracing::info!("script {}: deleted, stopping it", st.path.display());
                    changed = true;
                }
            }
        }
        changed
    }

    /// The realm's settings as applied.
    pub fn config(&self) -> &RealmConfig {
        &self.config
    }

    fn library_path(&self, library: &str) -> PathBuf {
        self.config
            .settings
            .library_dir
            .join(library_file_name(library))
    }

    /// The loaded build of `library`, loading it on first use.
    fn ensure_library(&mut self, library: &str) -> Option<Arc<Library>> {
        if let Some(lib) = self.libraries.get(library).and_then(|l| l.current.clone()) {
            return Some(lib);
        }
        let path = self.library_path(library);
        let state = self.libraries.entry(library.to_string()).or_default();
        if !path.exists() {
            let msg = format!(
                "library file {} does not exist yet; build it with `cargo build --release -p {library}` \
                 (the realm picks it up as soon as it appears)",
                path.display()
            );
            if state.last_error.as_deref() != Some(msg.as_str()) {
                tracing::warn!("{msg}");
                state.last_error = Some(msg);
            }
            return None;
        }
        let stamp = FileStamp::of(&path);
        if stamp.is_some() && state.refused == stamp {
            // Refused as it is now: tried again when the file changes.
            return None;
        }
        let loaded = Library::load(&path)
            .map_err(|e| e.to_string())
            .and_then(|lib| {
                lib.on_after_load(None)
                    .map(|_| lib)
                    .map_err(|e| format!("{}: on_after_load failed: {e}", path.display()))
            });
        state.refused = if loaded.is_err() { stamp } else { None };
        match loaded {
            Ok(lib) => {
                tracing::info!("loaded library {} build {}", lib.name(), lib.build_id());
                state.current = Some(lib.clone());
                state.last_error = None;
                let entry = LibraryEntry {
                    build_id: lib.build_id().to_string(),
                    ..self.vault.library(library).cloned().unwrap_or_default()
                };
                self.note_vault_change(|v| v.set_library(library, entry));
                Some(lib)
            }
            Err(e) => {
                if state.last_error.as_deref() != Some(e.as_str()) {
                    tracing::error!("{e}");
                    state.last_error = Some(e);
                }
                None
            }
        }
    }

    fn note_vault_change(&mut self, f: impl FnOnce(&mut Vault) -> bool) {
        if f(&mut self.vault) && self.vault_changed_at.is_none() {
            self.vault_changed_at = Some(Instant::now());
        }
    }

    // ---- messages between imps ---------------------------------------------

    /// Delivers the messages imps posted, in order, and the waiting lines
    /// of imps that thawed. Control thread; called after everything the
    /// loop does.
    pub fn deliver_mail(&mut self) {
        // A reply may post again; a ping-pong between two imps must not
        // hold the loop: what is left waits for the next turn.
        for _ in 0..16 {
            let ready: Vec<String> = self
                .waiting
                .keys()
                .filter(|n| self.takes_mail(n))
                .cloned()
                .collect();
            for n in ready {
                for l in self.waiting.remove(&n).unwrap_or_default() {
                    self.hand_over(l);
                }
            }
            let letters = crate::mail::take();
            if letters.is_empty() {
                return;
            }
            for l in letters {
                self.deliver(l);
            }
        }
        if crate::mail::pending() {
            crate::mail::wake_later();
        }
    }

    fn takes_mail(&self, name: &str) -> bool {
        self.imps
            .get(name)
            .is_some_and(|s| s.lifecycle == Lifecycle::Thawed && s.handle.is_some())
    }

    fn deliver(&mut self, l: Letter) {
        if l.to == REALM {
            self.realm_message(l);
            return;
        }
        if !self.imps.contains_key(&l.to) {
            crate::mail::count(|c| c.undeliverable += 1);
            if self.unknown_recipients.insert(l.to.clone()) {
                tracing::warn!(
                    "imp {} sent a message to `{}`, which is not in the realm; dropped (said once)",
                    l.from,
                    l.to
                );
            }
            return;
        }
        if !self.takes_mail(&l.to) {
            let line = self.waiting.entry(l.to.clone()).or_default();
            if l.notify {
                if let Some(i) = line.iter().position(|w| w.notify && w.from == l.from) {
                    line.remove(i);
                    crate::mail::count(|c| c.superseded += 1);
                }
            }
            if line.len() >= imp::mail::WAITING_CAPACITY {
                crate::mail::count(|c| c.dropped_waiting += 1);
            } else {
                line.push_back(l);
            }
            return;
        }
        // Older messages first.
        for w in self.waiting.remove(&l.to).unwrap_or_default() {
            self.hand_over(w);
        }
        self.hand_over(l);
    }

    /// Calls the receiver's `control` with the message.
    fn hand_over(&mut self, l: Letter) {
        let Some(h) = self.imps.get_mut(&l.to).and_then(|s| s.handle.as_mut()) else {
            crate::mail::count(|c| c.undeliverable += 1);
            return;
        };
        match h.control(&l.message) {
            Ok(_) => crate::mail::count(|c| c.delivered += 1),
            Err(CallError::Panicked(m)) => {
                crate::mail::count(|c| c.refused += 1);
                self.fail(
                    &l.to,
                    format!("panicked in control (a message from {}): {m}", l.from),
                );
            }
            Err(e) => {
                crate::mail::count(|c| c.refused += 1);
                tracing::warn!("imp {} refused a message from {}: {e}", l.to, l.from);
            }
        }
    }

    /// A message to the realm itself.
    fn realm_message(&mut self, l: Letter) {
        let cmd = l.message.get("cmd").and_then(Value::as_str);
        let result = match cmd {
            Some("tempo") => match l.message.get("bpm").and_then(Value::as_f64) {
                Some(bpm) if (1.0..=999.0).contains(&bpm) => self
                    .engine
                    .set_tempo(bpm)
                    .map_err(|e| format!("the engine did not take the tempo: {e}")),
                _ => Err("`tempo` needs `bpm`, a number 1..=999".to_string()),
            },
            _ => Err(format!(
                "the realm takes {{\"cmd\": \"tempo\", \"bpm\": <1..=999>}}; got {}",
                l.message
            )),
        };
        match result {
            Ok(()) => crate::mail::count(|c| c.delivered += 1),
            Err(e) => {
                crate::mail::count(|c| c.refused += 1);
                tracing::warn!("imp {} sent the realm a message it refused: {e}", l.from);
            }
        }
    }

    // ---- one imp ----------------------------------------------------------

    fn fail(&mut self, name: &str, why: String) {
        let Some(s) = self.imps.get_mut(name) else {
            return;
        };
        tracing::error!("imp {name} failed: {why}; it stays frozen until its library is rebuilt");
        s.lifecycle = Lifecycle::Failed;
        s.last_error = Some(why);
        if s.has_rt {
            let _ = self.engine.remove(s.slot);
            s.has_rt = false;
        }
        // Dropping runs the imp's destroy, which catches its own panics.
        s.handle = None;
    }

    /// Creates `name` in `library` from `frozen` state and its vault data.
    fn create_handle(
        &mut self,
        name: &str,
        lib: &Arc<Library>,
        frozen: Option<&[u8]>,
    ) -> Result<ImpHandle, CallError> {
        let spec = self.imps[name].spec.clone();
        let mut handle = lib.create(name, &spec.config, frozen)?;
        handle.set_slot(self.imps[name].slot);
        if let Some(entry) = self.vault.imp(name).filter(|e| e.library == spec.library) {
            handle.set_vault_data(&entry.data, entry.version)?;
        }
        Ok(handle)
    }

    fn try_thaw(&mut self, name: &str, handoff: bool) {
        let Some(s) = self.imps.get_mut(name) else {
            return;
        };
        if s.lifecycle != Lifecycle::Frozen {
            return;
        }
        let Some(handle) = s.handle.as_mut() else {
            return;
        };
        match handle.thaw() {
            Ok(part) => {
                if let Err(e) = self.install(name, part, handoff) {
                    // Not installed: the imp is not running. Freeze its
                    // control part again; the next thaw retry tries again.
                    let text = format!("its RT part could not be installed: {e}; retrying");
                    tracing::warn!("imp {name}: {text}");
                    self.freeze(name, true);
                    if let Some(s) = self.imps.get_mut(name) {
                        s.last_error = Some(text);
                    }
                    return;
                }
                let s = self.imps.get_mut(name).expect("present");
                if s.last_error.is_some() {
                    tracing::info!("imp {name} thawed");
                }
                s.lifecycle = Lifecycle::Thawed;
                s.last_error = None;
            }
            Err(CallError::Panicked(m)) => self.fail(name, format!("panicked in thaw: {m}")),
            Err(e) => {
                let text = err_text(&e);
                if s.last_error.as_deref() != Some(text.as_str()) {
                    tracing::warn!("imp {name} stays frozen: {text}");
                }
                s.last_error = Some(text);
            }
        }
    }

    /// Puts the RT part a thaw returned into the imp's engine slot (or
    /// takes the slot's part away when the imp now has none).
    fn install(
        &mut self,
        name: &str,
        part: Option<engine::OwnedRtPart>,
        handoff: bool,
    ) -> Result<(), engine::EngineError> {
        let s = self.imps.get_mut(name).expect("present");
        match part {
            Some(part) => {
                self.engine.install(s.slot, part, handoff)?;
                s.has_rt = true;
            }
            None if s.has_rt => {
                self.engine.remove(s.slot)?;
                s.has_rt = false;
            }
            None => {}
        }
        Ok(())
    }

    /// Freezes `name`; returns its frozen state. With `keep_rt` its RT part
    /// keeps playing until a successor replaces it (respawn).
    fn freeze(&mut self, name: &str, keep_rt: bool) -> Option<Vec<u8>> {
        let s = self.imps.get_mut(name)?;
        if !matches!(s.lifecycle, Lifecycle::Frozen | Lifecycle::Thawed) {
            return None;
        }
        if !keep_rt && s.has_rt {
            let _ = self.engine.remove(s.slot);
            s.has_rt = false;
        }
        match s.handle.as_mut()?.freeze() {
            Ok(state) => {
                s.lifecycle = Lifecycle::Frozen;
                Some(state)
            }
            Err(e) => {
                self.fail(name, format!("failed in freeze: {e}"));
                None
            }
        }
    }

    fn save_imp_data(&mut self, name: &str) {
        let Some(s) = self.imps.get_mut(name) else {
            return;
        };
        if !matches!(s.lifecycle, Lifecycle::Frozen | Lifecycle::Thawed) {
            return;
        }
        let Some(handle) = s.handle.as_mut() else {
            return;
        };
        match handle.get_vault_data() {
            Ok(Some(data)) => {
                let entry = ImpEntry {
                    library: s.spec.library.clone(),
                    version: handle.library().vault_version(),
                    data,
                };
                let name = name.to_string();
                self.note_vault_change(|v| v.set_imp(&name, entry));
            }
            Ok(None) => {}
            Err(e) => self.fail(name, format!("failed in get_vault_data: {e}")),
        }
    }

    fn add_imp(&mut self, name: &str, spec: ImpSpec) {
        let Some(slot) = self.free_slots.pop() else {
            tracing::error!("imp {name}: the engine has no free slot (at most {MAX_SLOTS} imps)");
            return;
        };
        self.imps.insert(
            name.to_string(),
            ImpState {
                spec: spec.clone(),
                handle: None,
                lifecycle: Lifecycle::Missing,
                slot,
                has_rt: false,
                reload_count: 0,
                last_error: None,
                status: Value::Null,
            },
        );
        self.bring_up(name);
    }

    /// Creates and thaws an imp that has no handle (missing or failed).
    fn bring_up(&mut self, name: &str) {
        let library = self.imps[name].spec.library.clone();
        let Some(lib) = self.ensure_library(&library) else {
            let err = self
                .libraries
                .get(&library)
                .and_then(|l| l.last_error.clone());
            let s = self.imps.get_mut(name).expect("present");
            s.lifecycle = Lifecycle::Missing;
            s.last_error = err;
            return;
        };
        match self.create_handle(name, &lib, None) {
            Ok(handle) => {
                let s = self.imps.get_mut(name).expect("present");
                s.handle = Some(handle);
                s.lifecycle = Lifecycle::Frozen;
                s.last_error = None;
                tracing::info!("imp {name} created ({library} {})", lib.build_id());
                self.try_thaw(name, false);
            }
            Err(e) => self.fail(name, format!("failed to start: {e}")),
        }
    }

    fn remove_imp(&mut self, name: &str) {
        self.freeze(name, false);
        self.save_imp_data(name);
        if let Some(s) = self.imps.remove(name) {
            if s.has_rt {
                let _ = self.engine.remove(s.slot);
            }
            self.free_slots.push(s.slot);
            crate::mail::forget(name);
            if let Some(line) = self.waiting.remove(name) {
                crate::mail::count(|c| c.undeliverable += line.len() as u64);
            }
            tracing::info!("imp {name} removed (its vault data is kept)");
        }
    }

    // ---- swapping builds and configs ---------------------------------------

    /// Replaces the imps in `names` with new instances from `lib` (with the
    /// specs now in `self.imps`), carrying their frozen state. `hooks`
    /// runs the library hooks (old → new) between freezing and creating.
    ///
    /// The old RT parts keep playing until every new instance has been
    /// created *and thawed*; only then do the new RT parts go to the engine,
    /// each taking its predecessor's transient state (held notes, phases)
    /// between two cycles. On any failure no new RT part reaches the
    /// engine: the old control parts are thawed again (same build) and
    /// their fresh RT parts take the running ones' transient state the same
    /// way, so the old build plays on with its held notes, which end on key
    /// release as usual. Port closes are held for the whole swap, so a port
    /// imp's new instance takes over the open port (no gap), and on a
    /// rollback the old instance takes it back.
    fn swap(
        &mut self,
        names: &[String],
        lib: &Arc<Library>,
        hooks: Option<Option<Arc<Library>>>,
    ) -> Result<(), String> {
        let _ports = crate::ports::hold();
        // 1. Freeze; the RT parts keep playing.
        let mut frozen: BTreeMap<String, (Option<Vec<u8>>, bool)> = BTreeMap::new();
        for n in names {
            let was_thawed = self.imps[n].lifecycle == Lifecycle::Thawed;
            let state = self.freeze(n, true);
            self.save_imp_data(n);
            frozen.insert(n.clone(), (state, was_thawed));
        }
        let rollback = |realm: &mut Realm, frozen: &BTreeMap<String, (Option<Vec<u8>>, bool)>| {
            for (n, (_, was_thawed)) in frozen {
                if *was_thawed {
                    realm.try_thaw(n, true);
                    if realm.imps[n].lifecycle != Lifecycle::Thawed {
                        // The old build cannot run either (its device went
                        // away meanwhile): nothing owns the RT part now.
                        let s = realm.imps.get_mut(n).expect("present");
                        if s.has_rt && realm.engine.remove(s.slot).is_ok() {
                            s.has_rt = false;
                        }
                    }
                }
            }
        };
        // 2. Library hooks.
        if let Some(old) = hooks {
            let token = match old.as_ref().map(|o| o.on_before_load()) {
                Some(Err(e)) => {
                    rollback(self, &frozen);
                    return Err(format!("on_before_load of the old build failed: {e}"));
                }
                Some(Ok(t)) => t,
                None => None,
            };
            if let Err(e) = lib.on_after_load(token.as_deref()) {
                rollback(self, &frozen);
                return Err(format!("on_after_load of the new build failed: {e}"));
            }
        }
        // 3. Create every new instance and thaw it, before the engine sees
        //    any of it.
        let mut created = Vec::new();
        for n in names {
            let (state, was_thawed) = frozen.get(n).cloned().unwrap_or((None, false));
            let mut handle = match self.create_handle(n, lib, state.as_deref()) {
                Ok(h) => h,
                Err(e) => {
                    drop(created);
                    rollback(self, &frozen);
                    return Err(format!("imp {n}: {e}"));
                }
            };
            // Frozen ones are tried too: a device that was absent may be back.
            let part = match handle.thaw() {
                Ok(part) => Some(part),
                Err(e) if was_thawed => {
                    drop(handle);
                    drop(created);
                    rollback(self, &frozen);
                    return Err(format!("imp {n}: the new build failed to thaw: {e}"));
                }
                Err(e) => {
                    tracing::warn!("imp {n} stays frozen: {e}");
                    None
                }
            };
            created.push((n.clone(), handle, part));
        }
        // 4. Commit: the new control parts take their place, and their RT
        //    parts go to the engine with the handoff.
        for (n, handle, part) in created {
            let s = self.imps.get_mut(&n).expect("present");
            // The old instance goes (its code stays mapped).
            drop(s.handle.replace(handle));
            s.lifecycle = Lifecycle::Frozen;
            let Some(part) = part else {
                if s.has_rt && self.engine.remove(s.slot).is_ok() {
                    s.has_rt = false;
                }
                continue;
            };
            match self.install(&n, part, true) {
                Ok(()) => {
                    let s = self.imps.get_mut(&n).expect("present");
                    s.lifecycle = Lifecycle::Thawed;
                    s.last_error = None;
                }
                Err(e) => {
                    self.freeze(&n, true);
                    self.imps.get_mut(&n).expect("present").last_error =
                        Some(format!("its RT part could not be installed: {e}; retrying"));
                }
            }
        }
        Ok(())
    }

    /// Loads the current file of `library` and respawns its imps. Control thread.
    pub fn respawn(&mut self, library: &str) -> Result<(), String> {
        let path = self.library_path(library);
        let names: Vec<String> = self
            .imps
            .iter()
            .filter(|(_, s)| s.spec.library == library)
            .map(|(n, _)| n.clone())
            .collect();
        let started = Instant::now();
        let refuse = |realm: &mut Realm, e: crate::loader::LoadError| {
            let msg = e.to_string();
            if matches!(e, crate::loader::LoadError::Incomplete { .. }) {
                // Usually a file still being written: the next change
                // retries. Said once per library until it loads.
                let again = realm
                    .libraries
                    .get(library)
                    .and_then(|l| l.last_error.as_deref())
                    .is_some_and(|m| m.contains(" is incomplete ("));
                if again {
                    tracing::debug!("{library} not reloaded yet: {msg}");
                } else {
                    tracing::warn!("{library} not reloaded yet: {msg}");
                }
            } else {
                tracing::error!("reload of {library} refused: {msg}");
            }
            let state = realm.libraries.entry(library.to_string()).or_default();
            state.last_error = Some(msg.clone());
            state.refused = FileStamp::of(&path);
            for n in &names {
                realm.imps.get_mut(n).expect("present").last_error =
                    Some(format!("new build refused: {msg}"));
            }
            msg
        };
        if !path.exists() {
            // Removed (`cargo clean`, or a build in progress): nothing to load.
            let msg = format!(
                "library file {} is gone; the running build stays until a new one arrives",
                path.display()
            );
            tracing::debug!("{msg}");
            return Err(msg);
        }
        // The identity first (headers only): an identical build is skipped
        // without copying anything.
        let identity = match LibraryImage::identify(&path) {
            Ok(identity) => identity,
            Err(e) => return Err(refuse(self, e)),
        };
        if let Some(state) = self.libraries.get_mut(library) {
            if let Some(current) = state.current.as_ref() {
                if current.content_hash() == identity {
                    // The same build as the live one: loading it would
                    // only map another copy.
                    tracing::info!(
                        "{library}: the file holds build {}, which is live; nothing to reload",
                        current.build_id()
                    );
                    state.identical_skipped += 1;
                    state.refused = None;
                    if state.last_error.take().is_some() {
                        for n in &names {
                            let s = self.imps.get_mut(n).expect("present");
                            if s.last_error
                                .as_deref()
                                .is_some_and(|e| e.starts_with("new build refused"))
                            {
                                s.last_error = None;
                            }
                        }
                    }
                    return Ok(());
                }
            }
        }
        let image = match LibraryImage::read(&path) {
            Ok(image) => image,
            Err(e) => return Err(refuse(self, e)),
        };
        let lib = match Library::load_image(image) {
            Ok(lib) => lib,
            Err(e) => return Err(refuse(self, e)),
        };
        let old = self.libraries.get(library).and_then(|l| l.current.clone());
        // Missing or failed imps get a fresh start on the new build.
        let (live, fresh): (Vec<String>, Vec<String>) = names
            .into_iter()
            .partition(|n| self.imps[n].handle.is_some());
        match self.swap(&live, &lib, Some(old.clone())) {
            Ok(()) => {}
            Err(e) => {
                tracing::error!("respawn of {library} failed, the old build keeps running: {e}");
                self.libraries
                    .entry(library.to_string())
                    .or_default()
                    .last_error = Some(e.clone());
                for n in &live {
                    self.imps.get_mut(n).expect("present").last_error =
                        Some(format!("respawn failed: {e}"));
                }
                return Err(e);
            }
        }
        let state = self.libraries.entry(library.to_string()).or_default();
        state.current = Some(lib.clone());
        state.last_error = None;
        state.refused = None;
        if old.is_some() {
            state.reloads += 1;
        }
        for n in &live {
            let s = self.imps.get_mut(n).expect("present");
            s.reload_count += 1;
        }
        for n in &fresh {
            self.bring_up(n);
        }
        let entry = LibraryEntry {
            build_id: lib.build_id().to_string(),
            ..self.vault.library(library).cloned().unwrap_or_default()
        };
        self.note_vault_change(|v| v.set_library(library, entry));
        self.save_vault();
        tracing::info!(
            "respawned {library}: build {} live for {} imp(s) in {:.1} ms",
            lib.build_id(),
            live.len() + fresh.len(),
            started.elapsed().as_secs_f64() * 1e3
        );
        Ok(())
    }

    // ---- realm.toml --------------------------------------------------------

    /// Makes the live realm match `new`.
    fn apply(&mut self, new: RealmConfig) {
        let old = std::mem::replace(&mut self.config, new.clone());
        // These are fixed while running: the engine, watcher, vault and
        // socket were set up with them.
        let restart_only = crate::diff::restart_only_changes(&old.settings, &new.settings);
        if !restart_only.is_empty() {
            tracing::warn!(
                "changes to {} take effect at the next start",
                restart_only.join(", ")
            );
            let s = &mut self.config.settings;
            s.sample_rate = old.settings.sample_rate;
            s.block_size = old.settings.block_size;
            s.sysex_arena_bytes = old.settings.sysex_arena_bytes;
            s.library_dir = old.settings.library_dir.clone();
            s.vault = old.settings.vault.clone();
            s.socket = old.settings.socket.clone();
        }
        if old.settings.tempo != new.settings.tempo {
            let _ = self.engine.set_tempo(new.settings.tempo);
        }
        let running: BTreeMap<String, ImpSpec> = self
            .imps
            .iter()
            .map(|(n, s)| (n.clone(), s.spec.clone()))
            .collect();
        let diff = crate::diff::ImpDiff::between(&running, &new.imps);
        for n in &diff.removed {
            self.remove_imp(n);
        }
        for (n, spec) in diff.added {
            self.add_imp(&n, spec);
        }
        let mut reconfigured = Vec::new();
        for (n, spec) in diff.reconfigured {
            if let Some(s) = self.imps.get_mut(&n) {
                let old_spec = std::mem::replace(&mut s.spec, spec);
                reconfigured.push((n, old_spec));
            }
        }
        for (n, old_spec) in reconfigured {
            let library = self.imps[&n].spec.library.clone();
            match self.libraries.get(&library).and_then(|l| l.current.clone()) {
                Some(lib) if self.imps[&n].handle.is_some() => {
                    if let Err(e) = self.swap(std::slice::from_ref(&n), &lib, None) {
                        tracing::error!(
                            "imp {n}: new config refused, the old one keeps running: {e}"
                        );
                        let s = self.imps.get_mut(&n).expect("present");
                        s.spec = old_spec;
                        s.last_error = Some(format!("new config refused: {e}"));
                    } else {
                        tracing::info!("imp {n}: new config applied");
                    }
                }
                _ => self.bring_up(&n),
            }
        }
        self.update_routing();
    }

    fn update_routing(&mut self) {
        let slots: Vec<usize> = self.imps.values().map(|s| s.slot).collect();
        let wires: Vec<Wire> = self
            .config
            .wires
            .iter()
            .filter_map(|w| {
                Some(Wire {
                    from: self.imps.get(&w.from)?.slot,
                    output: w.output,
                    to: self.imps.get(&w.to)?.slot,
                    input: w.input,
                })
            })
            .collect();
        match Routing::new(&slots, &wires) {
            Ok(r) => {
                if let Err(e) = self.engine.set_routing(r) {
                    tracing::error!("routing not applied: {e}");
                }
            }
            Err(e) => tracing::error!("routing not applied: {e}"),
        }
    }

    /// Re-reads `realm.toml`; applies it when it changed, has settled and
    /// is valid as a whole.
    ///
    /// Editors truncate and rewrite, or write a temporary file and rename
    /// it. A new text is applied once it is unchanged for [`realm_settle`]
    /// (or at once when the file arrived by rename, which editors do only
    /// with a complete file), so a half-written file is never applied.
    fn check_realm_file(&mut self) {
        let path = self.config.path.clone();
        let Ok(text) = std::fs::read_to_string(&path) else {
            return;
        };
        let ino = file_ino(&path);
        if text == self.applied_text {
            self.realm_pending = None;
            self.realm_ino = ino;
            if self.realm_error.take().is_some() {
                tracing::info!(
                    "{} is back to the applied text; the rejected edit is forgotten",
                    path.display()
                );
            }
            self.rejected_text = None;
            return;
        }
        if self.rejected_text.as_deref() == Some(text.as_str()) {
            self.realm_pending = None;
            return;
        }
        let renamed = ino.is_some() && ino != self.realm_ino;
        let settled = self
            .realm_pending
            .as_ref()
            .is_some_and(|(t, since)| *t == text && since.elapsed() >= self.realm_settle());
        if !renamed && !settled {
            if self.realm_pending.as_ref().is_none_or(|(t, _)| *t != text) {
                self.realm_pending = Some((text, Instant::now()));
            }
            return;
        }
        self.realm_pending = None;
        self.realm_ino = ino;
        let live = self.live_scripts();
        let parsed = RealmConfig::parse(&path, &text).and_then(|file| {
            let merged = self.check_edit(file.with_scripts(&live))?;
            Ok((file, merged))
        });
        match parsed {
            Ok((file, new)) => {
                tracing::info!("{} changed: applying", path.display());
                self.file_config = file;
                self.apply(new);
                self.applied_text = text;
                self.rejected_text = None;
                self.realm_error = None;
            }
            Err(e) => {
                tracing::error!("{e}; the running realm is kept");
                self.realm_error = Some(e.to_string());
                self.rejected_text = Some(text);
            }
        }
    }

    /// Checks what only the running realm can check, before anything of
    /// the edit is applied: a file that declares no imps does not remove
    /// the running ones; every imp that is new or changed names a library
    /// that exists, and its config is accepted by the imp's own parser (a
    /// throwaway instance is created, frozen, and dropped; frozen imps hold
    /// no resources). Control thread.
    fn check_edit(&mut self, new: RealmConfig) -> Result<RealmConfig, ConfigError> {
        if !new.imps_declared && !self.imps.is_empty() {
            return Err(ConfigError::at(
                &new.path,
                (1, 1),
                "the file declares no imps (empty, or still being written?): the running imps are kept; \
                 to remove every imp, declare an empty `[imps]` table"
                    .into(),
            ));
        }
        for (name, spec) in &new.imps {
            if self.imps.get(name).is_some_and(|s| s.spec == *spec) {
                continue;
            }
            let at = new.locations.get(name).copied().unwrap_or_default();
            let loaded = self
                .libraries
                .get(&spec.library)
                .and_then(|l| l.current.clone());
            let lib = match loaded {
                Some(lib) => lib,
                None => {
                    let file = self.library_path(&spec.library);
                    if !file.exists() {
                        return Err(ConfigError::at(
                            &new.path,
                            at.library,
                            format!(
                                "imp `{name}`: library `{}` is not in {} (no {}); fix the name, or build it first \
                                 (`cargo build --release -p {}`)",
                                spec.library,
                                self.config.settings.library_dir.display(),
                                library_file_name(&spec.library),
                                spec.library
                            ),
                        ));
                    }
                    match self.ensure_library(&spec.library) {
                        Some(lib) => lib,
                        // Refused (being rebuilt?): the imp waits, missing.
                        None => continue,
                    }
                }
            };
            if let Err(e) = lib.create(name, &spec.config, None) {
                return Err(ConfigError::at(
                    &new.path,
                    at.config,
                    format!(
                        "imp `{name}`: its config is refused by {}: {e}",
                        spec.library
                    ),
                ));
            }
        }
        Ok(new)
    }

    // ---- the loop -----------------------------------------------------------

    /// Starts writing the vault now (no debounce) if something changed;
    /// the write runs on the vault's writer thread.
    fn save_vault(&mut self) {
        if let Err(e) = self.vault.spawn_writer() {
            tracing::warn!(
                "no vault writer thread ({e}); the vault is written on the control thread"
            );
        }
        if self.vault.save_in_background() || !self.vault.is_dirty() {
            self.vault_changed_at = None;
        }
    }

    /// Logs what the vault's writer did: saves at debug level, a failure
    /// once per distinct cause, the recovery once.
    fn poll_vault(&mut self) {
        for event in self.vault.poll() {
            match event {
                vault::SaveEvent::Saved {
                    generation,
                    bytes,
                    elapsed,
                    after_failures,
                } => {
                    tracing::debug!(
                        "vault saved (generation {generation}): {bytes} bytes in {:.1} ms",
                        elapsed.as_secs_f64() * 1e3
                    );
                    if after_failures > 0 {
                        tracing::info!(
                            "vault {} saved again (generation {generation}) after {after_failures} failed attempt(s)",
                            self.vault.path().display()
                        );
                    }
                }
                vault::SaveEvent::Failed {
                    generation,
                    error,
                    new_cause,
                    retry_in,
                } => {
                    if new_cause {
                        tracing::error!(
                            "VAULT NOT SAVED: {error}. The file and its backups are untouched \
                             (generation {} and older); retrying with backoff, next in {} ms",
                            self.vault.generation(),
                            retry_in.as_millis()
                        );
                    } else {
                        tracing::debug!(
                            "vault save of generation {generation} failed again; next try in {} ms",
                            retry_in.as_millis()
                        );
                    }
                }
            }
        }
        self.vault_error = self.vault.health().last_error;
    }

    /// The vault's emergency writer, for a second signal during a hung
    /// shutdown (it writes the newest data from another thread).
    pub fn vault_emergency(&self) -> vault::EmergencySave {
        self.vault.emergency()
    }

    /// Sets the observer [`Realm::run`] reports its ticks and the start
    /// of the stop to (see [`crate::observer`]).
    pub fn set_observer(&mut self, observer: crate::observer::LoopObserver) {
        self.observer = Some(observer);
    }

    /// One reconcile period's work. Control thread.
    pub fn tick(&mut self) {
        self.ticks += 1;
        if let Some(observe) = self.observer.as_mut() {
            observe(crate::observer::LoopEvent::Tick {
                engine_cycles: self.engine.cycles(),
            });
        }
        self.engine.collect_garbage();
        let failures = self.engine.take_failures();
        if failures != 0 {
            let failed: Vec<String> = self
                .imps
                .iter()
                .filter(|(_, s)| failures & (1 << s.slot) != 0)
                .map(|(n, _)| n.clone())
                .collect();
            for n in failed {
                if let Some(s) = self.imps.get_mut(&n) {
                    // The engine already stopped calling it and ended its notes.
                    let _ = self.engine.remove(s.slot);
                    s.has_rt = false;
                }
                self.fail(&n, "panicked while processing events".into());
            }
        }
        self.check_realm_file();
        self.check_scripts();

        self.respawn_due();

        let names: Vec<String> = self.imps.keys().cloned().collect();
        for n in &names {
            let s = self.imps.get_mut(n).expect("present");
            if s.lifecycle != Lifecycle::Thawed {
                continue;
            }
            let Some(h) = s.handle.as_mut() else { continue };
            match h.poll() {
                Ok(status) => s.status = status,
                Err(CallError::NotReady(m)) => {
                    tracing::warn!("imp {n}: {m}; freezing it until it comes back");
                    self.freeze(n, false);
                    self.imps.get_mut(n).expect("present").last_error = Some(m);
                }
                Err(e) => self.fail(n, format!("failed in poll: {e}")),
            }
            self.save_imp_data(n);
        }

        if self.last_thaw_try.elapsed() >= Duration::from_millis(self.config.settings.thaw_retry_ms)
        {
            self.last_thaw_try = Instant::now();
            for n in &names {
                match self.imps[n].lifecycle {
                    Lifecycle::Frozen => self.try_thaw(n, false),
                    Lifecycle::Missing => {
                        let library = self.imps[n].spec.library.clone();
                        if self.library_path(&library).exists() {
                            self.bring_up(n);
                        }
                    }
                    _ => {}
                }
            }
        }

        self.poll_vault();
        if self.vault.is_dirty() {
            let since = *self.vault_changed_at.get_or_insert_with(Instant::now);
            if since.elapsed() >= Duration::from_millis(self.config.settings.vault_debounce_ms) {
                self.save_vault();
            }
        } else {
            self.vault_changed_at = None;
        }
        self.deliver_mail();
    }

    fn realm_settle(&self) -> Duration {
        realm_settle(self.config.settings.reconcile_ms)
    }

    fn reload_debounce(&self) -> Duration {
        Duration::from_millis(self.config.settings.reload_debounce_ms)
    }

    /// When the next library whose file changed, or a changed realm.toml,
    /// will have settled.
    fn next_respawn(&self) -> Option<Instant> {
        let library = self
            .pending_libraries
            .values()
            .min()
            .map(|t| *t + self.reload_debounce());
        let realm = self
            .realm_pending
            .as_ref()
            .map(|(_, t)| *t + self.realm_settle());
        let settle = self.realm_settle();
        let scripts = self
            .scripts
            .values()
            .filter_map(|s| s.pending.as_ref().map(|(_, t)| *t + settle))
            .min();
        library.into_iter().chain(realm).chain(scripts).min()
    }

    /// Respawns every library whose file has not changed for the debounce
    /// time, applies a realm.toml edit that has settled, and re-arms the
    /// library watch if its directory was recreated.
    fn respawn_due(&mut self) {
        if let Some(w) = self.library_watch.as_mut() {
            w.check();
        }
        if self
            .realm_pending
            .as_ref()
            .is_some_and(|(_, t)| t.elapsed() >= self.realm_settle())
        {
            self.check_realm_file();
        }
        if self.scripts.values().any(|s| {
            s.pending
                .as_ref()
                .is_some_and(|(_, t)| t.elapsed() >= self.realm_settle())
        }) {
            self.check_scripts();
        }
        let debounce = self.reload_debounce();
        let due: Vec<String> = self
            .pending_libraries
            .iter()
            .filter(|(_, t)| t.elapsed() >= debounce)
            .map(|(l, _)| l.clone())
            .collect();
        for library in due {
            self.pending_libraries.remove(&library);
            if self.imps.values().any(|s| s.spec.library == library) {
                let _ = self.respawn(&library);
            }
        }
    }

    /// Answers one control request. Control thread.
    pub fn handle(&mut self, request: Request) -> Reply {
        match request {
            Request::Status => match serde_json::to_value(self.status()) {
                Ok(v) => Reply::Ok(v),
                Err(e) => Reply::Error(format!("cannot encode the status: {e}")),
            },
            Request::Reload { imp } => {
                let Some(s) = self.imps.get(&imp) else {
                    return Reply::Error(format!(
                        "no imp named `{imp}` in the realm; see `impresario status`"
                    ));
                };
                let library = s.spec.library.clone();
                match self.respawn(&library) {
                    Ok(()) => Reply::Ok(json!({ "reloaded": library })),
                    Err(e) => Reply::Error(e),
                }
            }
            Request::Send { imp, bytes } => {
                let Some(s) = self.imps.get(&imp) else {
                    return Reply::Error(format!("no imp named `{imp}` in the realm"));
                };
                // A whole SysEx: F0, data bytes below 0x80, F7.
                if bytes.first() == Some(&0xF0) {
                    let data_ok = bytes.len() >= 2
                        && bytes[bytes.len() - 1] == 0xF7
                        && bytes[1..bytes.len() - 1].iter().all(|b| *b < 0x80);
                    if !data_ok {
                        return Reply::Error(
                            "a SysEx is F0, data bytes each below 80, then F7".into(),
                        );
                    }
                    return match self.engine.inject_sysex(s.slot, 0, &bytes) {
                        Ok(()) => Reply::Ok(json!({ "sent": bytes.len() })),
                        Err(e) => Reply::Error(e.to_string()),
                    };
                }
                // One well-formed short message: a status byte and the
                // number of data bytes it needs, each below 0x80.
                if let Err(e) = midi::ShortMessage::from_bytes(&bytes) {
                    return Reply::Error(format!(
                        "send takes one complete MIDI message (status byte, then its data bytes, \
                         each below 80): {e}"
                    ));
                }
                match self.engine.inject(s.slot, RtEvent::midi(0, &bytes)) {
                    Ok(()) => Reply::Ok(json!({ "sent": bytes.len() })),
                    Err(e) => Reply::Error(e.to_string()),
                }
            }
            Request::Control { imp, message } => {
                let Some(s) = self.imps.get_mut(&imp) else {
                    return Reply::Error(format!("no imp named `{imp}` in the realm"));
                };
                let Some(h) = s.handle.as_mut() else {
                    return Reply::Error(format!(
                        "imp `{imp}` is {:?}: it takes no messages now",
                        s.lifecycle
                    ));
                };
                match h.control(&message) {
                    Ok(v) => Reply::Ok(v),
                    Err(CallError::Panicked(m)) => {
                        self.fail(&imp, format!("panicked in control: {m}"));
                        Reply::Error(format!("imp `{imp}` panicked: {m}"))
                    }
                    Err(e) => Reply::Error(e.to_string()),
                }
            }
            Request::Shutdown => Reply::Ok(json!({ "stopping": true })),
        }
    }

    /// Everything `impresario status` shows.
    pub fn status(&self) -> Status {
        let imps = self
            .imps
            .iter()
            .map(|(n, s)| ImpStatus {
                name: n.clone(),
                library: s.spec.library.clone(),
                build_id: s
                    .handle
                    .as_ref()
                    .map(|h| h.library().build_id().to_string()),
                state: s.lifecycle,
                reload_count: s.reload_count,
                last_error: s.last_error.clone(),
                status: s.status.clone(),
            })
            .collect();
        let libraries = self
            .libraries
            .iter()
            .map(|(n, l)| {
                (
                    n.clone(),
                    LibraryStatus {
                        build_id: l.current.as_ref().map(|c| c.build_id().to_string()),
                        reloads: l.reloads,
                        identical_skipped: l.identical_skipped,
                        last_error: l.last_error.clone(),
                    },
                )
            })
            .collect();
        let e = self.engine.stats();
        let files = self
            .scripts
            .iter()
            .map(|(stem, s)| ScriptStatus {
                name: stem.clone(),
                imp: script_imp(stem),
                file: s.path.clone(),
                state: if s.error.is_some() {
                    "invalid"
                } else if s.live.is_some() {
                    "playing"
                } else {
                    "waiting"
                }
                .to_string(),
                playing: s.live.is_some(),
                versions: s.versions,
                error: s.error.clone(),
            })
            .collect();
        let vault_health = self.vault.health();
        let memory = engine::realtime::memory_lock();
        let priority = engine::realtime::engine_priority();
        Status {
            uptime_s: self.started.elapsed().as_secs_f64(),
            pid: std::process::id(),
            reconcile_ticks: self.ticks,
            realm: self.config.path.clone(),
            realm_error: self.realm_error.clone(),
            imps,
            libraries,
            loaded_builds: loaded_builds(),
            mapped_build_bytes: loaded_bytes(),
            vault: VaultStatus {
                path: self.vault.path().to_path_buf(),
                generation: self.vault.generation(),
                dirty: self.vault.is_dirty(),
                last_error: vault_health.last_error,
                failing: vault_health.failing,
                failed_attempts: vault_health.failed_attempts,
                retry_in_ms: vault_health.retry_in_ms,
                writes: vault_health.writes,
                writing: vault_health.writing,
            },
            realtime: RealtimeStatus {
                memory_locked: memory == engine::realtime::MemoryLock::Locked,
                memory: memory.text(),
                engine_priority: priority.text(),
            },
            engine: EngineStatus {
                sample_rate: self.engine.config().sample_rate,
                block_size: self.engine.config().block_size,
                slowest_cycle_us: e.slowest_cycle_ns as f64 / 1e3,
                counters: e,
            },
            scripts: ScriptsStatus {
                dir: self.file_config.settings.scripts_dir.clone(),
                files,
            },
            messages: crate::mail::counts(self.waiting.values().map(|l| l.len() as u64).sum()),
        }
    }

    /// Freezes every imp (ending their notes), saves their data and the vault.
    pub fn shutdown(&mut self) {
        let started = Instant::now();
        // Upstream first, one engine cycle between an imp with downstream
        // wires and the next: the note-offs it leaves behind reach the
        // imps after it while they still play.
        let names = self.upstream_first();
        for n in &names {
            let feeds = self.imps.get(n).is_some_and(|s| s.has_rt)
                && self.config.wires.iter().any(|w| w.from == *n);
            self.freeze(n, false);
            if feeds {
                self.wait_engine_cycles(2, Duration::from_millis(50));
            }
            self.save_imp_data(n);
        }
        for n in &names {
            if let Some(s) = self.imps.get_mut(n) {
                s.handle = None;
            }
        }
        self.engine.collect_garbage();
        let before = self.vault.generation();
        let result = self.vault.save();
        self.poll_vault();
        let ms = started.elapsed().as_secs_f64() * 1e3;
        match result {
            Ok(generation) if generation == before => tracing::info!(
                "realm stopped in {ms:.1} ms; vault {} was up to date (generation {generation})",
                self.vault.path().display()
            ),
            Ok(generation) => tracing::info!(
                "realm stopped in {ms:.1} ms; vault saved to {} (generation {generation})",
                self.vault.path().display()
            ),
            Err(e) => tracing::error!(
                "realm stopped in {ms:.1} ms; VAULT NOT SAVED: {e}. What changed since generation {} \
                 is lost; the file and its backups are untouched",
                self.vault.generation()
            ),
        }
    }

    /// The imps, sources before the imps they feed (wiring order; imps in
    /// a wiring loop, which the engine refuses anyway, last by name).
    fn upstream_first(&self) -> Vec<String> {
        let mut incoming: BTreeMap<&str, usize> =
            self.imps.keys().map(|n| (n.as_str(), 0)).collect();
        for w in &self.config.wires {
            if self.imps.contains_key(&w.from) {
                if let Some(c) = incoming.get_mut(w.to.as_str()) {
                    *c += 1;
                }
            }
        }
        let mut order = Vec::new();
        let mut ready: Vec<&str> = incoming
            .iter()
            .filter(|(_, c)| **c == 0)
            .map(|(n, _)| *n)
            .collect();
        ready.reverse();
        while let Some(n) = ready.pop() {
            order.push(n.to_string());
            for w in self.config.wires.iter().filter(|w| w.from == n) {
                if let Some(c) = incoming.get_mut(w.to.as_str()) {
                    *c -= 1;
                    if *c == 0 {
                        ready.push(w.to.as_str());
                    }
                }
            }
        }
        for n in self.imps.keys() {
            if !order.contains(n) {
                order.push(n.clone());
            }
        }
        order
    }

    /// Waits until the engine ran `cycles` more cycles (at most `limit`:
    /// a stopped clock does not hold the stop up).
    fn wait_engine_cycles(&self, cycles: u64, limit: Duration) {
        let start = self.engine.stats().cycles;
        let deadline = Instant::now() + limit;
        while self.engine.stats().cycles < start + cycles && Instant::now() < deadline {
            std::thread::sleep(Duration::from_micros(200));
        }
    }

    /// Runs the supervisor loop until [`Message::Shutdown`] (or every
    /// sender is gone), then shuts down. Control thread.
    pub fn run(&mut self, messages: mpsc::Receiver<Message>) {
        let mut next_tick = Instant::now();
        loop {
            // Wake for the next tick, or as soon as a new build has settled.
            let wake = self.next_respawn().map_or(next_tick, |t| t.min(next_tick));
            let timeout = wake.saturating_duration_since(Instant::now());
            match messages.recv_timeout(timeout) {
                Ok(Message::Request(Request::Shutdown, reply)) => {
                    let _ = reply.send(Reply::Ok(json!({ "stopping": true })));
                    break;
                }
                Ok(Message::Request(r, reply)) => {
                    let _ = reply.send(self.handle(r));
                }
                Ok(Message::LibraryChanged(library)) => {
                    self.pending_libraries.insert(library, Instant::now());
                }
                Ok(Message::ScriptsChanged) => self.check_scripts(),
                Ok(Message::Reread) => self.check_realm_file(),
                Ok(Message::Mail) => {}
                Ok(Message::Shutdown) | Err(mpsc::RecvTimeoutError::Disconnected) => break,
                Err(mpsc::RecvTimeoutError::Timeout) => {}
            }
            if self.next_respawn().is_some_and(|t| Instant::now() >= t) {
                self.respawn_due();
            }
            if Instant::now() >= next_tick {
                self.tick();
                next_tick =
                    Instant::now() + Duration::from_millis(self.config.settings.reconcile_ms);
            }
            self.deliver_mail();
        }
        if let Some(observe) = self.observer.as_mut() {
            observe(crate::observer::LoopEvent::Stopping);
        }
        self.shutdown();
    }
}

/// How long a changed realm.toml must stay unchanged before it is applied:
/// half a reconcile period, between 20 and 100 ms.
fn realm_settle(reconcile_ms: u64) -> Duration {
    Duration::from_millis((reconcile_ms / 2).clamp(20, 100))
}

fn file_ino(path: &Path) -> Option<u64> {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata(path).ok().map(|m| m.ino())
}
