//! What the supervisor keeps per imp and per library, and how it tells
//! one version of a file from the next.

use crate::config::ImpSpec;
use crate::loader::{ImpHandle, Library};
use crate::status::Lifecycle;
use serde_json::Value;
use std::path::Path;
use std::sync::Arc;

/// One imp as the supervisor keeps it.
pub(crate) struct ImpState {
    pub(crate) spec: ImpSpec,
    pub(crate) handle: Option<ImpHandle>,
    pub(crate) lifecycle: Lifecycle,
    pub(crate) slot: usize,
    pub(crate) has_rt: bool,
    pub(crate) reload_count: u64,
    pub(crate) last_error: Option<String>,
    pub(crate) status: Value,
}

/// One library as the supervisor keeps it.
#[derive(Default)]
pub(crate) struct LibState {
    pub(crate) current: Option<Arc<Library>>,
    pub(crate) last_error: Option<String>,
    pub(crate) reloads: u64,
    /// Reloads skipped because the file held the build already live.
    pub(crate) identical_skipped: u64,
    /// The file that was last refused (not tried again until it changes).
    pub(crate) refused: Option<FileStamp>,
}

/// What tells one version of a file from the next without reading it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct FileStamp {
    pub(crate) len: u64,
    pub(crate) modified: Option<std::time::SystemTime>,
    pub(crate) ino: u64,
}

impl FileStamp {
    pub(crate) fn of(path: &Path) -> Option<FileStamp> {
        use std::os::unix::fs::MetadataExt;
        let m = std::fs::metadata(path).ok()?;
        Some(FileStamp {
            len: m.len(),
            modified: m.modified().ok(),
            ino: m.ino(),
        })
    }
}
