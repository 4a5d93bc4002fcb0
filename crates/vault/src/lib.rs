//! # vault: persisted state in `vault.json`
//!
//! The vault keeps data per library and per imp across reloads and restarts.
//!
//! - **Readable diffs.** Keys are stable strings in sorted maps, pretty
//!   printed, so `vault.json` diffs stay readable.
//! - **Atomic writes.** A save writes `vault.json.tmp`, fsyncs it, keeps the
//!   previous file as the newest backup (`vault.json.bak1`, older ones
//!   shift up to `bakN`), renames the temporary file over `vault.json` and
//!   fsyncs the directory. A crash at any point leaves a `vault.json` that
//!   parses: the old one or the new one.
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

/// Version of the `vault.json` format this build writes.
pub const FORMAT_VERSION: u32 = 1;

/// How many backups a vault keeps by default.
pub const DEFAULT_BACKUPS: usize = 5;

/// Errors of the vault.
#[derive(Debug, thiserror::Error)]
pub enum VaultError {
    /// Reading or writing a file failed.
    #[error("vault {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: io::Error,
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

/// An open vault.
#[derive(Debug)]
pub struct Vault {
    path: PathBuf,
    doc: VaultDoc,
    backups: usize,
    dirty: bool,
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
        Ok((
            Vault {
                path,
                doc,
                backups,
                dirty,
            },
            report,
        ))
    }

    /// Where the vault lives.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The whole document.
    pub fn doc(&self) -> &VaultDoc {
        &self.doc
    }

    /// True when something changed since the last save.
    pub fn is_dirty(&self) -> bool {
        self.dirty
    }

    /// Data of imp `name`.
    pub fn imp(&self, name: &str) -> Option<&ImpEntry> {
        self.doc.imps.get(name)
    }

    /// Stores data of imp `name`; returns true when it changed.
    pub fn set_imp(&mut self, name: &str, entry: ImpEntry) -> bool {
        if self.doc.imps.get(name) == Some(&entry) {
            return false;
        }
        self.doc.imps.insert(name.to_string(), entry);
        self.dirty = true;
        true
    }

    /// Data of library `name`.
    pub fn library(&self, name: &str) -> Option<&LibraryEntry> {
        self.doc.libraries.get(name)
    }

    /// Stores data of library `name`; returns true when it changed.
    pub fn set_library(&mut self, name: &str, entry: LibraryEntry) -> bool {
        if self.doc.libraries.get(name) == Some(&entry) {
            return false;
        }
        self.doc.libraries.insert(name.to_string(), entry);
        self.dirty = true;
        true
    }

    /// Writes the vault atomically (see the crate docs) and returns the
    /// generation written. Blocks on fsync: never call on the engine thread.
    pub fn save(&mut self) -> Result<u64, VaultError> {
        let mut doc = self.doc.clone();
        doc.generation += 1;
        let mut text = serde_json::to_vec_pretty(&doc).expect("vault documents always serialise");
        text.push(b'\n');

        let tmp = sibling(&self.path, ".tmp");
        {
            let mut f = File::create(&tmp).map_err(io_err(&tmp))?;
            f.write_all(&text).map_err(io_err(&tmp))?;
            f.sync_all().map_err(io_err(&tmp))?;
        }
        if self.path.exists() && self.backups > 0 {
            for i in (1..self.backups).rev() {
                let from = backup_name(&self.path, i);
                if from.exists() {
                    fs::rename(&from, backup_name(&self.path, i + 1)).map_err(io_err(&from))?;
                }
            }
            // A hard link keeps `vault.json` in place until the rename below.
            let newest = backup_name(&self.path, 1);
            let _ = fs::remove_file(&newest);
            fs::hard_link(&self.path, &newest)
                .or_else(|_| fs::copy(&self.path, &newest).map(|_| ()))
                .map_err(io_err(&newest))?;
        }
        fs::rename(&tmp, &self.path).map_err(io_err(&self.path))?;
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
        self.doc.generation = doc.generation;
        self.dirty = false;
        Ok(doc.generation)
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
        assert_eq!(v2.doc().generation, 1);
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
}
