//! Loading imp libraries.
//!
//! A library is never loaded from the build output path (the compiler
//! overwrites that file while we might be reading it): it is copied to a
//! uniquely named file first, loaded from there, and the copy is removed
//! once loaded (the mapping stays valid on Linux).
//!
//! **Libraries are never unloaded.** Code of an old build may still run
//! after a respawn: the engine keeps playing the old RT part until the
//! swap, and threads or callbacks an imp started may outlive it. Calling
//! `dlclose` under them would crash the daemon, so each build stays mapped
//! until the process exits. The cost is the library's memory per reload
//! (a few MB for a typical imp); `impresario status` shows how many builds
//! are mapped. The test `old_builds_stay_callable_after_reload` backs this.

use crate::host::{with_current_imp, HOST_TABLE};
use imp::abi::*;
use serde_json::Value;
use std::ffi::c_void;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

static COPY_COUNTER: AtomicU64 = AtomicU64::new(0);
static LOADED_BUILDS: AtomicU64 = AtomicU64::new(0);

/// Why a library could not be loaded. The running imps are unaffected.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// The file could not be copied.
    #[error("cannot copy {path} for loading: {source}")]
    Copy {
        /// The library file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// The dynamic loader refused the file.
    #[error("cannot load {path}: {reason}")]
    Open {
        /// The library file.
        path: PathBuf,
        /// The loader's message.
        reason: String,
    },
    /// The file has no entry symbol.
    #[error("{path} is not an impresario imp library (no `impresario_imp_library` symbol); build it with `imp::export!`")]
    NotAnImp {
        /// The library file.
        path: PathBuf,
    },
    /// ABI versions differ.
    #[error(
        "{path}: library ABI version {library} does not match the host's ABI version {host}; \
         rebuild the library against this impresario (the running imps stay as they are)"
    )]
    AbiVersion {
        /// The library file.
        path: PathBuf,
        /// The library's version.
        library: u32,
        /// The host's version.
        host: u32,
    },
    /// Layout fingerprints differ.
    #[error(
        "{path}: library layout fingerprint {library:#018x} does not match the host's {host:#018x}; \
         the boundary types differ: rebuild the library against this impresario"
    )]
    Fingerprint {
        /// The library file.
        path: PathBuf,
        /// The library's fingerprint.
        library: u64,
        /// The host's fingerprint.
        host: u64,
    },
    /// The library's `init` failed.
    #[error("{path}: library initialisation failed")]
    Init {
        /// The library file.
        path: PathBuf,
    },
}

/// How a call into an imp failed.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum CallError {
    /// The imp returned an error.
    #[error("{0}")]
    Failed(String),
    /// `thaw` only: the imp's device is absent; retry later.
    #[error("not ready: {0}")]
    NotReady(String),
    /// The imp panicked.
    #[error("panicked: {0}")]
    Panicked(String),
}

/// A loaded build of an imp library. Never unloaded (see module docs).
pub struct Library {
    table: &'static LibraryTable,
    name: String,
    build_id: String,
    source: PathBuf,
}

impl std::fmt::Debug for Library {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Library")
            .field("name", &self.name)
            .field("build_id", &self.build_id)
            .field("source", &self.source)
            .finish()
    }
}

/// The file name a library crate builds to on this platform.
pub fn library_file_name(library: &str) -> String {
    format!(
        "{}{}{}",
        std::env::consts::DLL_PREFIX,
        library,
        std::env::consts::DLL_SUFFIX
    )
}

/// Number of library builds mapped in this process.
pub fn loaded_builds() -> u64 {
    LOADED_BUILDS.load(Ordering::Relaxed)
}

impl Library {
    /// Copies `source` to a unique name, loads it, checks its ABI version
    /// and fingerprint, and initialises it. Control thread.
    pub fn load(source: &Path) -> Result<Arc<Library>, LoadError> {
        let n = COPY_COUNTER.fetch_add(1, Ordering::Relaxed);
        let stem = source.file_stem().and_then(|s| s.to_str()).unwrap_or("imp");
        let copy = std::env::temp_dir().join(format!(
            "impresario-{}-{stem}-{n}{}",
            std::process::id(),
            std::env::consts::DLL_SUFFIX
        ));
        std::fs::copy(source, &copy).map_err(|e| LoadError::Copy {
            path: source.to_path_buf(),
            source: e,
        })?;
        // SAFETY: loading runs the library's static constructors; imp
        // libraries are built from this workspace's `imp` crate.
        let opened = unsafe { libloading::Library::new(&copy) };
        let _ = std::fs::remove_file(&copy);
        let lib = opened.map_err(|e| LoadError::Open {
            path: source.to_path_buf(),
            reason: e.to_string(),
        })?;
        // Never unloaded: see the module docs.
        let lib: &'static libloading::Library = Box::leak(Box::new(lib));
        LOADED_BUILDS.fetch_add(1, Ordering::Relaxed);
        // SAFETY: the symbol has the signature `imp::export!` generates.
        let entry =
            unsafe { lib.get::<EntryFn>(ENTRY_SYMBOL) }.map_err(|_| LoadError::NotAnImp {
                path: source.to_path_buf(),
            })?;
        // SAFETY: the entry returns a pointer to a static table.
        let table: &'static LibraryTable = unsafe { &*entry() };
        if table.abi_version != ABI_VERSION {
            return Err(LoadError::AbiVersion {
                path: source.to_path_buf(),
                library: table.abi_version,
                host: ABI_VERSION,
            });
        }
        if table.fingerprint != layout_fingerprint() {
            return Err(LoadError::Fingerprint {
                path: source.to_path_buf(),
                library: table.fingerprint,
                host: layout_fingerprint(),
            });
        }
        // SAFETY: the table is valid; HOST_TABLE lives forever.
        if unsafe { (table.init)(&HOST_TABLE) } != STATUS_OK {
            return Err(LoadError::Init {
                path: source.to_path_buf(),
            });
        }
        // SAFETY: static text in the library image, which stays mapped.
        let (name, build_id) = unsafe {
            (
                table.name.as_str().to_string(),
                table.build_id.as_str().to_string(),
            )
        };
        Ok(Arc::new(Library {
            table,
            name,
            build_id,
            source: source.to_path_buf(),
        }))
    }

    /// The library's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The build id of this build.
    pub fn build_id(&self) -> &str {
        &self.build_id
    }

    /// The imp's vault data format version.
    pub fn vault_version(&self) -> u32 {
        self.table.vault_version
    }

    fn take(&self, bytes: ImpBytes) -> Vec<u8> {
        if bytes.ptr.is_null() {
            return Vec::new();
        }
        // SAFETY: the library filled these bytes; we copy, then it frees.
        let v = unsafe { std::slice::from_raw_parts(bytes.ptr, bytes.len) }.to_vec();
        // SAFETY: returned exactly once to the side that allocated it.
        unsafe { (self.table.free_bytes)(bytes) };
        v
    }

    fn take_opt(&self, bytes: ImpBytes) -> Option<Vec<u8>> {
        if bytes.ptr.is_null() {
            None
        } else {
            Some(self.take(bytes))
        }
    }

    fn check(&self, status: Status, err: ImpBytes) -> Result<(), CallError> {
        let text = String::from_utf8_lossy(&self.take(err)).into_owned();
        match status {
            STATUS_OK => Ok(()),
            STATUS_NOT_READY => Err(CallError::NotReady(text)),
            STATUS_PANICKED => Err(CallError::Panicked(text)),
            _ => Err(CallError::Failed(text)),
        }
    }

    /// Old code: the token for the next build. Control thread.
    pub fn on_before_load(&self) -> Result<Option<Vec<u8>>, CallError> {
        let mut token = ImpBytes::EMPTY;
        let mut err = ImpBytes::EMPTY;
        // SAFETY: valid out pointers.
        let s = unsafe { (self.table.on_before_load)(&mut token, &mut err) };
        let token = self.take_opt(token);
        self.check(s, err).map(|_| token)
    }

    /// New code: receive the token (`None` on first load). Control thread.
    pub fn on_after_load(&self, token: Option<&[u8]>) -> Result<(), CallError> {
        let mut err = ImpBytes::EMPTY;
        // SAFETY: the token outlives the call.
        let s = unsafe { (self.table.on_after_load)(BytesRef::from_option(token), &mut err) };
        self.check(s, err)
    }

    /// Creates an imp, frozen. Control thread.
    pub fn create(
        self: &Arc<Self>,
        name: &str,
        config: &Value,
        frozen: Option<&[u8]>,
    ) -> Result<ImpHandle, CallError> {
        let config = serde_json::to_vec(config).expect("JSON values serialise");
        let mut handle: *mut c_void = std::ptr::null_mut();
        let mut err = ImpBytes::EMPTY;
        let s = with_current_imp(name, None, || {
            // SAFETY: every pointer is valid for the call.
            unsafe {
                (self.table.create)(
                    BytesRef::from_slice(name.as_bytes()),
                    BytesRef::from_slice(&config),
                    BytesRef::from_option(frozen),
                    &mut handle,
                    &mut err,
                )
            }
        });
        self.check(s, err)?;
        Ok(ImpHandle {
            library: self.clone(),
            name: name.to_string(),
            slot: None,
            ptr: handle,
        })
    }
}

/// A live imp instance inside a library. Dropping it destroys the imp.
pub struct ImpHandle {
    library: Arc<Library>,
    name: String,
    slot: Option<usize>,
    ptr: *mut c_void,
}

// SAFETY: the handle is used by one control thread at a time; imps are `Send`.
unsafe impl Send for ImpHandle {}

impl ImpHandle {
    /// The library build this imp runs.
    pub fn library(&self) -> &Arc<Library> {
        &self.library
    }

    /// Tells the handle which engine slot its RT part goes to (ports the
    /// imp opens are bound to it).
    pub fn set_slot(&mut self, slot: usize) {
        self.slot = Some(slot);
    }

    fn call<R>(&self, f: impl FnOnce(&LibraryTable, *mut c_void) -> R) -> R {
        with_current_imp(&self.name, self.slot, || f(self.library.table, self.ptr))
    }

    /// Acquires resources; returns the RT part, if any. Control thread.
    pub fn thaw(&mut self) -> Result<Option<engine::OwnedRtPart>, CallError> {
        let mut rt = RtInstance {
            state: std::ptr::null_mut(),
            process: noop_process,
            save_transient: noop_buf,
            restore_transient: noop_buf_const,
            all_notes_off: noop_off,
            drop: noop_drop,
            audio_channels: 0,
        };
        let mut err = ImpBytes::EMPTY;
        // SAFETY: valid pointers for the call.
        let s = self.call(|t, p| unsafe { (t.thaw)(p, &mut rt, &mut err) });
        self.library.check(s, err)?;
        if rt.state.is_null() {
            Ok(None)
        } else {
            // SAFETY: from a successful thaw; the library is never unloaded.
            Ok(Some(unsafe { engine::OwnedRtPart::from_raw(rt) }))
        }
    }

    /// Releases resources; returns the frozen state (JSON). Control thread.
    pub fn freeze(&mut self) -> Result<Vec<u8>, CallError> {
        let mut state = ImpBytes::EMPTY;
        let mut err = ImpBytes::EMPTY;
        // SAFETY: valid pointers for the call.
        let s = self.call(|t, p| unsafe { (t.freeze)(p, &mut state, &mut err) });
        let state = self.library.take(state);
        self.library.check(s, err).map(|_| state)
    }

    /// The imp's vault data, if it keeps any. Control thread.
    pub fn get_vault_data(&mut self) -> Result<Option<Value>, CallError> {
        let mut data = ImpBytes::EMPTY;
        let mut err = ImpBytes::EMPTY;
        // SAFETY: valid pointers for the call.
        let s = self.call(|t, p| unsafe { (t.get_vault_data)(p, &mut data, &mut err) });
        let data = self.library.take_opt(data);
        self.library.check(s, err)?;
        data.map(|d| {
            serde_json::from_slice(&d)
                .map_err(|e| CallError::Failed(format!("vault data is not JSON: {e}")))
        })
        .transpose()
    }

    /// Restores vault data written with format `version`. Control thread.
    pub fn set_vault_data(&mut self, data: &Value, version: u32) -> Result<(), CallError> {
        let bytes = serde_json::to_vec(data).expect("JSON values serialise");
        let mut err = ImpBytes::EMPTY;
        // SAFETY: valid pointers for the call.
        let s = self.call(|t, p| unsafe {
            (t.set_vault_data)(p, BytesRef::from_slice(&bytes), version, &mut err)
        });
        self.library.check(s, err)
    }

    /// Sends a control message; returns the reply. Control thread.
    pub fn control(&mut self, message: &Value) -> Result<Value, CallError> {
        let bytes = serde_json::to_vec(message).expect("JSON values serialise");
        let mut reply = ImpBytes::EMPTY;
        let mut err = ImpBytes::EMPTY;
        // SAFETY: valid pointers for the call.
        let s = self.call(|t, p| unsafe {
            (t.control)(p, BytesRef::from_slice(&bytes), &mut reply, &mut err)
        });
        let reply = self.library.take(reply);
        self.library.check(s, err)?;
        Ok(serde_json::from_slice(&reply).unwrap_or(Value::Null))
    }

    /// Housekeeping; returns the imp's status. Control thread.
    pub fn poll(&mut self) -> Result<Value, CallError> {
        let mut status = ImpBytes::EMPTY;
        let mut err = ImpBytes::EMPTY;
        // SAFETY: valid pointers for the call.
        let s = self.call(|t, p| unsafe { (t.poll)(p, &mut status, &mut err) });
        let status = self.library.take(status);
        self.library.check(s, err)?;
        Ok(serde_json::from_slice(&status).unwrap_or(Value::Null))
    }
}

impl Drop for ImpHandle {
    fn drop(&mut self) {
        // SAFETY: the handle came from `create` and is destroyed once.
        let s = self.call(|t, p| unsafe { (t.destroy)(p) });
        if s != STATUS_OK {
            tracing::error!("imp {} panicked while being destroyed", self.name);
        }
    }
}

unsafe extern "C" fn noop_process(
    _: *mut c_void,
    _: *const BlockContext,
    _: *const RtEvent,
    _: usize,
    _: *mut RtEvent,
    _: usize,
    n: *mut usize,
) -> Status {
    *n = 0;
    STATUS_OK
}
unsafe extern "C" fn noop_buf(_: *mut c_void, _: *mut u8) -> Status {
    STATUS_OK
}
unsafe extern "C" fn noop_buf_const(_: *mut c_void, _: *const u8) -> Status {
    STATUS_OK
}
unsafe extern "C" fn noop_off(_: *mut c_void, _: *mut RtEvent, _: usize, n: *mut usize) -> Status {
    *n = 0;
    STATUS_OK
}
unsafe extern "C" fn noop_drop(_: *mut c_void) {}
