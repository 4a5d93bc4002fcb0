//! Watching the library directory for new builds.
//!
//! The watcher only notes that a library file changed; the supervisor waits
//! until no change came for `reload_debounce_ms` (the compiler writes and
//! links in several steps) before it copies and loads the file.

use crate::supervisor::{library_of, Message};
use notify::{EventKind, RecursiveMode, Watcher};
use std::path::Path;
use std::sync::mpsc::Sender;

/// Starts watching `dir` (created if missing); changes to library files
/// arrive as [`Message::LibraryChanged`]. Keep the returned watcher alive.
pub fn watch_libraries(
    dir: &Path,
    tx: Sender<Message>,
) -> notify::Result<notify::RecommendedWatcher> {
    std::fs::create_dir_all(dir).map_err(notify::Error::io)?;
    let mut watcher = notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
        let Ok(event) = event else { return };
        if matches!(event.kind, EventKind::Access(_)) {
            return;
        }
        for path in &event.paths {
            if let Some(library) = library_of(path) {
                let _ = tx.send(Message::LibraryChanged(library));
            }
        }
    })?;
    watcher.watch(dir, RecursiveMode::NonRecursive)?;
    Ok(watcher)
}
