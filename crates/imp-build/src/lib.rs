//! Build-script helper for imp libraries.
//!
//! Call [`stamp`] from the imp crate's `build.rs`. It gives every build a new
//! build id (`IMP_BUILD_ID`), which `imp::export!` puts into the library's
//! entry table, so `impresario status` can show which build of a library is
//! live after a hot reload.
//!
//! A library is rebuilt when its own sources change, and also when a crate
//! it depends on by path changes (the bard's logic lives in
//! `crates/bard-pipeline`). So the build script tells Cargo to run it again
//! whenever any of those change: the sources (`src/`, `Cargo.toml`,
//! `build.rs`) of the package and of every path dependency, found through
//! the manifests (including `x.workspace = true` entries), and the
//! workspace's `Cargo.lock` (a registry dependency changed). A rebuilt
//! library therefore always has a new build id.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

/// Emits `cargo:rustc-env=IMP_BUILD_ID=<version>+<time-based stamp>` and the
/// `rerun-if-changed` lines described in the crate docs.
///
/// Called from `build.rs` of an imp crate: `fn main() { imp_build::stamp() }`.
pub fn stamp() {
    let version = std::env::var("CARGO_PKG_VERSION").unwrap_or_else(|_| "0.0.0".into());
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    // Base-36 keeps the id short enough to read in `impresario status`.
    println!("cargo:rustc-env=IMP_BUILD_ID={version}+{}", base36(nanos));
    if let Ok(dir) = std::env::var("CARGO_MANIFEST_DIR") {
        for path in watched_paths(Path::new(&dir)) {
            println!("cargo:rerun-if-changed={}", path.display());
        }
    }
}

/// What a change to should give the library built from `package` a new
/// build id: the sources of the package and of its path dependencies
/// (transitively), and the workspace's lock file.
pub fn watched_paths(package: &Path) -> Vec<PathBuf> {
    let mut packages = BTreeSet::new();
    collect(package, &mut packages);
    let mut out = Vec::new();
    for p in &packages {
        for part in ["src", "Cargo.toml", "build.rs"] {
            let path = p.join(part);
            if path.exists() {
                out.push(path);
            }
        }
    }
    if let Some(root) = workspace_root(package) {
        let lock = root.join("Cargo.lock");
        if lock.exists() {
            out.push(lock);
        }
    }
    out
}

fn read_manifest(dir: &Path) -> Option<toml::Table> {
    std::fs::read_to_string(dir.join("Cargo.toml"))
        .ok()?
        .parse::<toml::Table>()
        .ok()
}

/// The directory of the nearest manifest with a `[workspace]` table.
fn workspace_root(package: &Path) -> Option<PathBuf> {
    package
        .ancestors()
        .find(|d| read_manifest(d).is_some_and(|m| m.contains_key("workspace")))
        .map(Path::to_path_buf)
}

fn collect(package: &Path, seen: &mut BTreeSet<PathBuf>) {
    let package = package
        .canonicalize()
        .unwrap_or_else(|_| package.to_path_buf());
    if !seen.insert(package.clone()) {
        return;
    }
    let Some(manifest) = read_manifest(&package) else {
        return;
    };
    let root = workspace_root(&package);
    let workspace_deps = root.as_ref().and_then(|r| {
        let m = read_manifest(r)?;
        Some((
            r.clone(),
            m.get("workspace")?.get("dependencies")?.as_table()?.clone(),
        ))
    });
    for section in ["dependencies", "build-dependencies"] {
        let Some(deps) = manifest.get(section).and_then(|d| d.as_table()) else {
            continue;
        };
        for (name, spec) in deps {
            let path = if spec.get("workspace").and_then(|w| w.as_bool()) == Some(true) {
                workspace_deps.as_ref().and_then(|(r, deps)| {
                    let p = deps.get(name)?.get("path")?.as_str()?;
                    Some(r.join(p))
                })
            } else {
                spec.get("path")
                    .and_then(|p| p.as_str())
                    .map(|p| package.join(p))
            };
            if let Some(path) = path {
                collect(&path, seen);
            }
        }
    }
}

fn base36(mut n: u128) -> String {
    const DIGITS: &[u8; 36] = b"0123456789abcdefghijklmnopqrstuvwxyz";
    let mut out = Vec::new();
    loop {
        out.push(DIGITS[(n % 36) as usize]);
        n /= 36;
        if n == 0 {
            break;
        }
    }
    out.reverse();
    String::from_utf8(out).expect("ascii digits")
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    #[test]
    fn base36_digits() {
        assert_eq!(super::base36(0), "0");
        assert_eq!(super::base36(35), "z");
        assert_eq!(super::base36(36), "10");
    }

    #[test]
    fn the_bard_watches_its_pipeline_and_the_imp_crate() {
        let ws = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
        let ws = ws.canonicalize().unwrap();
        let watched = super::watched_paths(&ws.join("imps/bard"));
        for p in [
            "imps/bard/src",
            "imps/bard/build.rs",
            "crates/bard-pipeline/src",
            "crates/bard-pipeline/Cargo.toml",
            "crates/imp/src",
            "crates/imp-build/src",
            "Cargo.lock",
        ] {
            assert!(watched.contains(&ws.join(p)), "{p} not in {watched:?}");
        }
        assert!(!watched.iter().any(|p| p.starts_with(ws.join("target"))));
    }
}
