//! Build-script helper for imp libraries.
//!
//! Call [`stamp`] from the imp crate's `build.rs`. It gives every build a new
//! build id (`IMP_BUILD_ID`), which `imp::export!` puts into the library's
//! entry table, so `impresario status` can show which build of a library is
//! live after a hot reload.
//!
//! The build script prints no `rerun-if-changed` line on purpose: Cargo then
//! reruns it whenever any file of the package changes, which is exactly when
//! the library gets a new build.

use std::time::{SystemTime, UNIX_EPOCH};

/// Emits `cargo:rustc-env=IMP_BUILD_ID=<version>+<time-based stamp>`.
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
    #[test]
    fn base36_digits() {
        assert_eq!(super::base36(0), "0");
        assert_eq!(super::base36(35), "z");
        assert_eq!(super::base36(36), "10");
    }
}
