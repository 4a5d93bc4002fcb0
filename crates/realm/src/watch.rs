//! Watching the library directory for new builds.
//!
//! The watcher only notes that a library file changed; the supervisor loads
//! it once it has settled (see `reload_debounce_ms`) and is complete.
//!
//! A watch is on one directory: when the directory is removed (`cargo
//! clean`) the watch goes with it. [`LibraryWatch::check`], called every
//! reconcile period, notices that, waits for the directory to come back,
//! watches it again (saying so in the log) and reports every library file
//! already in it, so a build that landed meanwhile is not missed.

use crate::loader::library_of;
use crate::supervisor::Message;
use notify::{EventKind, RecursiveMode, Watcher};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::Sender;
use std::sync::Arc;

/// The watch on `library_dir`.
pub struct LibraryWatch {
    dir: PathBuf,
    tx: Sender<Message>,
    watcher: Option<notify::RecommendedWatcher>,
    /// (device, inode) of the directory the watch is on.
    armed_on: Option<(u64, u64)>,
    /// Set by the watcher when the directory itself went away.
    lost: Arc<AtomicBool>,
}

fn identity(dir: &Path) -> Option<(u64, u64)> {
    let m = std::fs::metadata(dir).ok()?;
    m.is_dir().then(|| (m.dev(), m.ino()))
}

impl LibraryWatch {
    /// Starts watching `dir` (created if missing); changes to library files
    /// arrive as [`Message::LibraryChanged`].
    pub fn new(dir: &Path, tx: Sender<Message>) -> notify::Result<LibraryWatch> {
        std::fs::create_dir_all(dir).map_err(notify::Error::io)?;
        let mut w = LibraryWatch {
            dir: dir.to_path_buf(),
            tx,
            watcher: None,
            armed_on: None,
            lost: Arc::new(AtomicBool::new(false)),
        };
        w.arm()?;
        Ok(w)
    }

    fn arm(&mut self) -> notify::Result<()> {
        self.watcher = None;
        let lost = Arc::new(AtomicBool::new(false));
        self.lost = lost.clone();
        let tx = self.tx.clone();
        let dir = self.dir.clone();
        let mut watcher =
            notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
                let Ok(event) = event else { return };
                if matches!(event.kind, EventKind::Access(_)) {
                    return;
                }
                if matches!(event.kind, EventKind::Remove(_))
                    && event.paths.iter().any(|p| p == &dir)
                {
                    lost.store(true, Ordering::Release);
                    return;
                }
                for path in &event.paths {
                    if let Some(library) = library_of(path) {
                        tracing::debug!("{:?} on {}", event.kind, path.display());
                        let _ = tx.send(Message::LibraryChanged(library));
                    }
                }
            })?;
        let identity_before = identity(&self.dir);
        watcher.watch(&self.dir, RecursiveMode::NonRecursive)?;
        self.watcher = Some(watcher);
        self.armed_on = identity_before;
        Ok(())
    }

    /// Re-arms the watch when the directory was removed and is back (or was
    /// replaced). Returns true when it did. Control thread; cheap (one stat).
    pub fn check(&mut self) -> bool {
        let now = identity(&self.dir);
        let lost = self.lost.load(Ordering::Acquire);
        if now.is_none() {
            if self.armed_on.take().is_some() || lost {
                tracing::warn!(
                    "library directory {} was removed; reloads resume when it is back",
                    self.dir.display()
                );
                self.watcher = None;
                self.lost.store(false, Ordering::Release);
            }
            return false;
        }
        if now == self.armed_on && !lost {
            return false;
        }
        if let Err(e) = self.arm() {
            tracing::error!("cannot watch {} again: {e}", self.dir.display());
            self.armed_on = None;
            return false;
        }
        tracing::info!(
            "library directory {} is back: watching it again",
            self.dir.display()
        );
        // Builds that arrived before the watch was back.
        if let Ok(entries) = std::fs::read_dir(&self.dir) {
            for entry in entries.flatten() {
                if let Some(library) = library_of(&entry.path()) {
                    let _ = self.tx.send(Message::LibraryChanged(library));
                }
            }
        }
        true
    }
}

/// Starts watching `dir` (created if missing); changes to library files
/// arrive as [`Message::LibraryChanged`]. Keep the returned watch alive, and
/// hand it to the realm ([`crate::Realm::watch_libraries`]) so that it is
/// re-armed when the directory is recreated.
pub fn watch_libraries(dir: &Path, tx: Sender<Message>) -> notify::Result<LibraryWatch> {
    LibraryWatch::new(dir, tx)
}
