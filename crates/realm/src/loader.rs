//! Loading imp libraries.
//!
//! A library is never loaded from the build output path (the compiler
//! overwrites that file while we might be reading it). The file is read
//! whole, checked to be a *complete* ELF shared object (every header,
//! segment and section inside the file: a truncated library would be
//! mapped past its end and kill the daemon with SIGBUS on first use), then
//! written to a new file in this daemon's private directory (mode 0700,
//! created exclusively) and loaded from there; the copy is removed once
//! loaded (the mapping stays valid on Linux). The private directory is
//! removed at exit, and directories left by daemons that crashed are removed
//! at the next start.
//!
//! **Libraries are never unloaded.** Code of an old build may still run
//! after a respawn: the engine keeps playing the old RT part until the
//! swap, and threads or callbacks an imp started may outlive it. Calling
//! `dlclose` under them would crash the daemon, so each build stays mapped
//! until the process exits. The cost is the library's memory per reload
//! (a few MB for a typical imp); a reload of byte-identical content is
//! skipped (see [`LibraryImage::hash`]), and `impresario status` shows how
//! many builds are mapped and how many bytes they hold. The test
//! `old_builds_stay_callable_after_reload` backs this.

use crate::host::{with_current_imp, HOST_TABLE};
use imp::abi::*;
use serde_json::Value;
use std::ffi::c_void;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

static COPY_COUNTER: AtomicU64 = AtomicU64::new(0);
static LOADED_BUILDS: AtomicU64 = AtomicU64::new(0);
static LOADED_BYTES: AtomicU64 = AtomicU64::new(0);

/// Why a library could not be loaded. The running imps are unaffected.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// The file could not be read or copied.
    #[error("cannot copy {path} for loading: {reason}")]
    Copy {
        /// The library file.
        path: PathBuf,
        /// The cause.
        reason: String,
    },
    /// The file is not a complete ELF shared object (still being written,
    /// or truncated); it is retried on its next change.
    #[error(
        "{path} is incomplete ({reason}): not loaded; it is tried again when the file changes"
    )]
    Incomplete {
        /// The library file.
        path: PathBuf,
        /// What is missing.
        reason: String,
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
    hash: u64,
}

impl std::fmt::Debug for Library {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Library")
            .field("name", &self.name)
            .field("build_id", &self.build_id)
            .field("source", &self.source)
            .field("hash", &self.hash)
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

/// The library a file in the library directory belongs to, if it is one.
pub fn library_of(path: &Path) -> Option<String> {
    let file = path.file_name()?.to_str()?;
    let stem = file
        .strip_prefix(std::env::consts::DLL_PREFIX)?
        .strip_suffix(std::env::consts::DLL_SUFFIX)?;
    Some(stem.to_string())
}

/// Number of library builds mapped in this process.
pub fn loaded_builds() -> u64 {
    LOADED_BUILDS.load(Ordering::Relaxed)
}

/// Bytes held by the library builds mapped in this process (the sum of
/// their file sizes).
pub fn loaded_bytes() -> u64 {
    LOADED_BYTES.load(Ordering::Relaxed)
}

/// A library build, copied into the daemon's private directory and checked
/// there (the copy is what gets loaded, and nobody else can write it).
/// Control thread.
pub struct LibraryImage {
    source: PathBuf,
    copy: PathBuf,
    len: u64,
    hash: u64,
}

impl Drop for LibraryImage {
    fn drop(&mut self) {
        // Loaded or not, the copy is not needed any more (a mapping stays
        // valid after its file is removed).
        let _ = std::fs::remove_file(&self.copy);
    }
}

impl LibraryImage {
    /// The identity of the build at `source` without copying it: checks
    /// that the file is a complete ELF shared object and returns its
    /// [`LibraryImage::hash`]. Cheap when the library carries a GNU build-id
    /// note (the linker's hash of its contents; Debian's toolchain adds one):
    /// only the headers are read.
    pub fn identify(source: &Path) -> Result<u64, LoadError> {
        let file = std::fs::File::open(source).map_err(|e| LoadError::Copy {
            path: source.to_path_buf(),
            reason: e.to_string(),
        })?;
        identity_of(source, &file, Check::Whole).map(|(hash, _)| hash)
    }

    /// Checks `source`, copies what the dynamic loader maps of it (headers
    /// and segments; in the kernel, into a file created exclusively, mode
    /// 0500) into the private directory, then checks the copy: its headers
    /// and segments all lie inside it.
    pub fn read(source: &Path) -> Result<LibraryImage, LoadError> {
        use std::io::Read;
        use std::os::unix::fs::OpenOptionsExt;
        let copy_error = |e: std::io::Error| LoadError::Copy {
            path: source.to_path_buf(),
            reason: e.to_string(),
        };
        let from = std::fs::File::open(source).map_err(copy_error)?;
        let n = COPY_COUNTER.fetch_add(1, Ordering::Relaxed);
        let stem = source.file_stem().and_then(|s| s.to_str()).unwrap_or("imp");
        let copy = private_dir()
            .map_err(copy_error)?
            .join(format!("{stem}-{n}{}", std::env::consts::DLL_SUFFIX));
        // Created exclusively: a file someone put there is never used.
        let mut to = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .mode(0o500)
            .open(&copy)
            .map_err(copy_error)?;
        let mut image = LibraryImage {
            source: source.to_path_buf(),
            copy,
            len: 0,
            hash: 0,
        };
        // Only what the dynamic loader maps is copied (the segments; not
        // the debug info after them, which is most of a debug build).
        let (_, load_end) = identity_of(source, &from, Check::Whole)?;
        image.len = std::io::copy(&mut (&from).take(load_end), &mut to).map_err(copy_error)?;
        let (hash, _) = identity_of(source, &to, Check::Segments)?;
        image.hash = hash;
        Ok(image)
    }

    /// The build's identity: the hash of its GNU build-id note, or of its
    /// whole contents when it has none. Two images with the same hash are
    /// the same build, and reloading it would only map another copy.
    pub fn hash(&self) -> u64 {
        self.hash
    }
}

/// Checks `file` (whose name is `path`) and returns its identity and
/// where its last segment ends.
fn identity_of(path: &Path, file: &std::fs::File, check: Check) -> Result<(u64, u64), LoadError> {
    let len = file
        .metadata()
        .map_err(|e| LoadError::Copy {
            path: path.to_path_buf(),
            reason: e.to_string(),
        })?
        .len();
    let info = check_elf(&FileSource { file, len }, check).map_err(|e| match e {
        ElfProblem::NotElf(reason) => LoadError::Open {
            path: path.to_path_buf(),
            reason,
        },
        ElfProblem::Incomplete(reason) => LoadError::Incomplete {
            path: path.to_path_buf(),
            reason,
        },
    })?;
    let hash = match info.build_id {
        Some(id) => content_hash(&id) ^ info.load_end.rotate_left(17),
        None => {
            use std::os::unix::fs::FileExt;
            let mut bytes = vec![0; info.load_end as usize];
            file.read_exact_at(&mut bytes, 0)
                .map_err(|e| LoadError::Copy {
                    path: path.to_path_buf(),
                    reason: e.to_string(),
                })?;
            content_hash(&bytes)
        }
    };
    Ok((hash, info.load_end))
}

/// A fast 64-bit hash of `bytes` (not cryptographic: it tells builds apart).
fn content_hash(bytes: &[u8]) -> u64 {
    const K: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut h: u64 = bytes.len() as u64 ^ 0x243f_6a88_85a3_08d3;
    let mut chunks = bytes.chunks_exact(8);
    for c in &mut chunks {
        let w = u64::from_le_bytes(c.try_into().expect("8 bytes"));
        h = (h ^ w).wrapping_mul(K).rotate_left(29);
    }
    for &b in chunks.remainder() {
        h = (h ^ b as u64).wrapping_mul(K).rotate_left(29);
    }
    h ^ (h >> 31)
}

/// Random access to a file's bytes, for [`check_elf`].
trait ElfSource {
    fn len(&self) -> u64;
    /// `n` bytes at `offset`; `None` when they are not all there.
    fn read(&self, offset: u64, n: usize) -> Option<Vec<u8>>;
}

impl ElfSource for [u8] {
    fn len(&self) -> u64 {
        <[u8]>::len(self) as u64
    }
    fn read(&self, offset: u64, n: usize) -> Option<Vec<u8>> {
        let start = usize::try_from(offset).ok()?;
        self.get(start..start.checked_add(n)?).map(<[u8]>::to_vec)
    }
}

struct FileSource<'a> {
    file: &'a std::fs::File,
    len: u64,
}

impl ElfSource for FileSource<'_> {
    fn len(&self) -> u64 {
        self.len
    }
    fn read(&self, offset: u64, n: usize) -> Option<Vec<u8>> {
        use std::os::unix::fs::FileExt;
        let mut buf = vec![0; n];
        self.file.read_exact_at(&mut buf, offset).ok()?;
        Some(buf)
    }
}

/// Why a file is not a loadable ELF shared object.
#[derive(Debug, PartialEq)]
enum ElfProblem {
    /// Not an ELF shared object at all.
    NotElf(String),
    /// The headers point past the end of the file.
    Incomplete(String),
}

/// How much of the file [`check_elf`] checks.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Check {
    /// Everything: a complete file as the linker wrote it.
    Whole,
    /// What the dynamic loader uses (headers and segments): a copy that
    /// ends after the last segment.
    Segments,
}

/// What [`check_elf`] found out.
#[derive(Debug, PartialEq)]
struct ElfInfo {
    /// The GNU build-id note's bytes, if the library has one.
    build_id: Option<Vec<u8>>,
    /// Where the ELF header, the program headers and the last segment end:
    /// everything the dynamic loader reads.
    load_end: u64,
}

/// Checks that `src` holds a complete ELF shared object of this machine's
/// byte order: the ELF header, the program headers and the section headers
/// lie inside the file, and so does the file range of every segment and of
/// every section that has contents. Anything the dynamic loader would map
/// is then backed by the file. Reads only the headers (and the notes).
fn check_elf(src: &(impl ElfSource + ?Sized), check: Check) -> Result<ElfInfo, ElfProblem> {
    use ElfProblem::*;
    let len = src.len();
    let Some(ident) = src.read(0, 16) else {
        let head = src.read(0, len.min(4) as usize).unwrap_or_default();
        return Err(if b"\x7fELF".starts_with(&head) {
            Incomplete(format!("{len} bytes, shorter than an ELF header"))
        } else {
            NotElf("not an ELF shared object".into())
        });
    };
    if &ident[..4] != b"\x7fELF" {
        return Err(NotElf("not an ELF shared object".into()));
    }
    let wide = match ident[4] {
        1 => false,
        2 => true,
        c => return Err(NotElf(format!("unknown ELF class {c}"))),
    };
    let native = if cfg!(target_endian = "little") { 1 } else { 2 };
    if ident[5] != native {
        return Err(NotElf("ELF file of the other byte order".into()));
    }
    let ehsize: usize = if wide { 64 } else { 52 };
    let Some(eh) = src.read(0, ehsize) else {
        return Err(Incomplete(format!(
            "{len} bytes, shorter than its ELF header"
        )));
    };
    let u16_at = |b: &[u8], o: usize| u16::from_ne_bytes([b[o], b[o + 1]]) as u64;
    let u32_at =
        |b: &[u8], o: usize| u32::from_ne_bytes(b[o..o + 4].try_into().expect("4 bytes")) as u64;
    let u64_at = |b: &[u8], o: usize| u64::from_ne_bytes(b[o..o + 8].try_into().expect("8 bytes"));
    if u16_at(&eh, 16) != 3 {
        return Err(NotElf(format!(
            "ELF file of type {} is not a shared object",
            u16_at(&eh, 16)
        )));
    }
    let (phoff, shoff) = if wide {
        (u64_at(&eh, 32), u64_at(&eh, 40))
    } else {
        (u32_at(&eh, 28), u32_at(&eh, 32))
    };
    let at = if wide { 54 } else { 42 };
    let (phentsize, phnum, shentsize, mut shnum) = (
        u16_at(&eh, at),
        u16_at(&eh, at + 2),
        u16_at(&eh, at + 4),
        u16_at(&eh, at + 6),
    );
    let inside = |what: &str, off: u64, size: u64| -> Result<(), ElfProblem> {
        match off.checked_add(size) {
            Some(end) if end <= len => Ok(()),
            _ => Err(Incomplete(format!(
                "{what} at bytes {off}..{} lies past the end of the file ({len} bytes)",
                off.saturating_add(size)
            ))),
        }
    };
    let (min_ph, min_sh) = if wide { (56, 64) } else { (32, 40) };
    if phnum == 0 {
        return Err(NotElf("the ELF file has no program headers".into()));
    }
    if phentsize < min_ph {
        return Err(NotElf(format!("program header size {phentsize}")));
    }
    inside("the program header table", phoff, phentsize * phnum)?;
    let ph = src
        .read(phoff, (phentsize * phnum) as usize)
        .ok_or_else(|| Incomplete("the program headers cannot be read".into()))?;
    let mut notes = Vec::new();
    let mut load_end = (ehsize as u64).max(phoff + phentsize * phnum);
    for i in 0..phnum {
        let h = (i * phentsize) as usize;
        let (offset, filesz) = if wide {
            (u64_at(&ph, h + 8), u64_at(&ph, h + 32))
        } else {
            (u32_at(&ph, h + 4), u32_at(&ph, h + 16))
        };
        inside(&format!("segment {i}"), offset, filesz)?;
        load_end = load_end.max(offset + filesz);
        const PT_NOTE: u64 = 4;
        if u32_at(&ph, h) == PT_NOTE && filesz <= 64 * 1024 {
            notes.push((offset, filesz));
        }
    }
    if shoff != 0 && check == Check::Whole {
        if shentsize < min_sh {
            return Err(NotElf(format!("section header size {shentsize}")));
        }
        inside("the first section header", shoff, shentsize)?;
        if shnum == 0 {
            // More sections than fit in e_shnum: the count is in section 0.
            let first = src
                .read(shoff, shentsize as usize)
                .ok_or_else(|| Incomplete("section 0 cannot be read".into()))?;
            shnum = if wide {
                u64_at(&first, 32)
            } else {
                u32_at(&first, 20)
            };
        }
        inside(
            "the section header table",
            shoff,
            shentsize.saturating_mul(shnum),
        )?;
        let sh = src
            .read(shoff, (shentsize * shnum) as usize)
            .ok_or_else(|| Incomplete("the section headers cannot be read".into()))?;
        for i in 0..shnum {
            let h = (i * shentsize) as usize;
            const SHT_NOBITS: u64 = 8;
            if u32_at(&sh, h + 4) == SHT_NOBITS {
                continue;
            }
            let (offset, size) = if wide {
                (u64_at(&sh, h + 24), u64_at(&sh, h + 32))
            } else {
                (u32_at(&sh, h + 16), u32_at(&sh, h + 20))
            };
            inside(&format!("section {i}"), offset, size)?;
        }
    }
    // The GNU build-id note: namesz, descsz, type (3), "GNU\0", the id.
    let mut build_id = None;
    for (offset, size) in notes {
        let Some(n) = src.read(offset, size as usize) else {
            continue;
        };
        let mut p = 0usize;
        while p + 12 <= n.len() {
            let namesz = u32_at(&n, p) as usize;
            let descsz = u32_at(&n, p + 4) as usize;
            let kind = u32_at(&n, p + 8);
            let name_at = p + 12;
            let desc_at = name_at + namesz.div_ceil(4) * 4;
            let end = desc_at + descsz.div_ceil(4) * 4;
            if desc_at + descsz > n.len() {
                break;
            }
            if kind == 3 && namesz == 4 && &n[name_at..name_at + 4] == b"GNU\0" {
                build_id = Some(n[desc_at..desc_at + descsz].to_vec());
            }
            p = end;
        }
    }
    Ok(ElfInfo { build_id, load_end })
}

/// This daemon's private directory for library copies: created on first
/// use in the system temp dir, mode 0700, named after the user and process.
static PRIVATE_DIR: Mutex<Option<PathBuf>> = Mutex::new(None);

const PRIVATE_PREFIX: &str = "impresario-libs-";

fn private_dir() -> std::io::Result<PathBuf> {
    use std::os::unix::fs::{DirBuilderExt, MetadataExt, PermissionsExt};
    let mut guard = PRIVATE_DIR.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(dir) = guard.as_ref() {
        return Ok(dir.clone());
    }
    // SAFETY: getuid has no preconditions.
    let uid = unsafe { libc::getuid() };
    remove_stale_private_dirs(uid);
    let stamp = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    let dir = std::env::temp_dir().join(format!(
        "{PRIVATE_PREFIX}{uid}-{}-{stamp:08x}",
        std::process::id()
    ));
    // Fails if anything is already there: nobody else can have prepared it.
    std::fs::DirBuilder::new().mode(0o700).create(&dir)?;
    let meta = std::fs::symlink_metadata(&dir)?;
    if !meta.is_dir() || meta.uid() != uid {
        return Err(std::io::Error::other(format!(
            "{} is not a directory of this user",
            dir.display()
        )));
    }
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700))?;
    *guard = Some(dir.clone());
    Ok(dir)
}

/// Removes the private directories of this user's daemons that are gone.
fn remove_stale_private_dirs(uid: u32) {
    use std::os::unix::fs::MetadataExt;
    let Ok(entries) = std::fs::read_dir(std::env::temp_dir()) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(rest) = name.to_str().and_then(|n| n.strip_prefix(PRIVATE_PREFIX)) else {
            continue;
        };
        let mut parts = rest.split('-');
        let (Some(owner), Some(pid)) = (parts.next(), parts.next()) else {
            continue;
        };
        let (Ok(owner), Ok(pid)) = (owner.parse::<u32>(), pid.parse::<i32>()) else {
            continue;
        };
        let Ok(meta) = std::fs::symlink_metadata(entry.path()) else {
            continue;
        };
        if owner != uid || meta.uid() != uid || !meta.is_dir() || pid <= 0 {
            continue;
        }
        // SAFETY: signal 0 only asks whether the process exists.
        let gone = unsafe { libc::kill(pid, 0) } != 0
            && std::io::Error::last_os_error().raw_os_error() == Some(libc::ESRCH);
        if gone {
            match std::fs::remove_dir_all(entry.path()) {
                Ok(()) => tracing::info!(
                    "removed {}, left by an impresario daemon that is gone",
                    entry.path().display()
                ),
                Err(e) => tracing::warn!("cannot remove {}: {e}", entry.path().display()),
            }
        }
    }
}

/// Removes this daemon's private directory of library copies. Called at exit.
pub fn remove_private_dir() {
    let dir = PRIVATE_DIR.lock().unwrap_or_else(|e| e.into_inner()).take();
    if let Some(dir) = dir {
        let _ = std::fs::remove_dir_all(dir);
    }
}

impl Library {
    /// Reads and checks `source`, copies it, loads the copy, checks its ABI
    /// version and fingerprint, and initialises it. Control thread.
    pub fn load(source: &Path) -> Result<Arc<Library>, LoadError> {
        Self::load_image(LibraryImage::read(source)?)
    }

    /// Loads a checked image from its private copy.
    pub fn load_image(image: LibraryImage) -> Result<Arc<Library>, LoadError> {
        let source = image.source.as_path();
        let copy = image.copy.clone();
        // SAFETY: loading runs the library's static constructors; imp
        // libraries are built from this workspace's `imp` crate.
        let opened = unsafe { libloading::Library::new(&copy) };
        let lib = opened.map_err(|e| LoadError::Open {
            path: source.to_path_buf(),
            reason: e.to_string(),
        })?;
        // Never unloaded: see the module docs.
        let lib: &'static libloading::Library = Box::leak(Box::new(lib));
        LOADED_BUILDS.fetch_add(1, Ordering::Relaxed);
        LOADED_BYTES.fetch_add(image.len, Ordering::Relaxed);
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
            hash: image.hash,
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

    /// The hash of the file this build was loaded from ([`LibraryImage::hash`]).
    pub fn content_hash(&self) -> u64 {
        self.hash
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
        let mut rt = RtInstance::EMPTY;
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

#[cfg(test)]
mod tests {
    use super::*;

    /// Tests that copy files take turns (the copy counter names the files).
    static COPYING: Mutex<()> = Mutex::new(());

    /// This test binary is itself a complete ELF shared object (PIE).
    fn own_image() -> Vec<u8> {
        std::fs::read(std::env::current_exe().unwrap()).unwrap()
    }

    #[test]
    fn a_complete_library_passes_and_its_build_id_is_found() {
        let bytes = own_image();
        let info = check_elf(&bytes[..], Check::Whole).unwrap();
        assert!(info.load_end < bytes.len() as u64);
        // The loadable part alone passes as a copy, not as a whole file.
        let loadable = &bytes[..info.load_end as usize];
        assert_eq!(check_elf(loadable, Check::Segments).unwrap(), info);
        assert!(check_elf(loadable, Check::Whole).is_err());
        let id = info
            .build_id
            .expect("the toolchain adds a GNU build-id note");
        assert!(id.len() >= 8, "{id:?}");
    }

    #[test]
    fn every_prefix_is_incomplete() {
        let bytes = own_image();
        for len in [0, 3, 40, 4096, 100 * 1024, bytes.len() / 2, bytes.len() - 1] {
            match check_elf(&bytes[..len], Check::Whole) {
                Err(ElfProblem::Incomplete(_)) => {}
                other => panic!("prefix of {len} bytes: {other:?}"),
            }
        }
    }

    #[test]
    fn text_is_not_elf() {
        assert!(matches!(
            check_elf(&b"not a shared object"[..], Check::Whole),
            Err(ElfProblem::NotElf(_))
        ));
    }

    #[test]
    fn contents_hash_apart() {
        let a = own_image();
        let mut b = a.clone();
        assert_eq!(content_hash(&a), content_hash(&b));
        let last = b.len() - 1;
        b[last] ^= 1;
        assert_ne!(content_hash(&a), content_hash(&b));
    }

    #[test]
    fn identity_is_stable_and_the_copy_matches_the_source() {
        let _turn = COPYING.lock().unwrap_or_else(|e| e.into_inner());
        let exe = std::env::current_exe().unwrap();
        let a = LibraryImage::identify(&exe).unwrap();
        assert_eq!(a, LibraryImage::identify(&exe).unwrap());
        let image = LibraryImage::read(&exe).unwrap();
        assert_eq!(image.hash(), a);
        let copy = image.copy.clone();
        assert!(copy.exists());
        drop(image);
        assert!(!copy.exists(), "the copy is removed with the image");
    }

    #[test]
    fn copies_are_created_exclusively_in_a_private_directory() {
        use std::os::unix::fs::PermissionsExt;
        let _turn = COPYING.lock().unwrap_or_else(|e| e.into_inner());
        let dir = private_dir().unwrap();
        let mode = std::fs::metadata(&dir).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o700);
        // A file planted under the next copy's name is not overwritten.
        let exe = std::env::current_exe().unwrap();
        let stem = exe.file_stem().unwrap().to_str().unwrap().to_string();
        let n = COPY_COUNTER.load(Ordering::Relaxed);
        let planted = dir.join(format!("{stem}-{n}{}", std::env::consts::DLL_SUFFIX));
        std::fs::write(&planted, b"planted").unwrap();
        let err = LibraryImage::read(&exe).err().expect("refused");
        assert!(matches!(err, LoadError::Copy { .. }), "{err}");
        assert_eq!(std::fs::read(&planted).unwrap(), b"planted");
        std::fs::remove_file(&planted).unwrap();
    }
}
