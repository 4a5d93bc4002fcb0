//! The layout fingerprint sees more than sizes and offsets: a library built
//! against an entry table whose two function pointers of the same size
//! swapped places (every size and every offset the old fingerprint hashed
//! stay the same) is refused, with both fingerprints named.

mod common;
use common::*;

/// `[workspace.dependencies]` entries the imp crate uses, as plain versions.
const IMP_DEPS: &str = "serde = { version = \"1\", features = [\"derive\"] }\n\
    serde_json = \"1\"\nthiserror = \"2\"\ntracing = \"0.1\"\n\
    tracing-subscriber = { version = \"0.3\", default-features = false, features = [\"registry\", \"std\"] }\n";

#[test]
fn a_library_with_two_same_size_function_pointers_swapped_is_refused() {
    let work = tempfile::tempdir().unwrap();
    let target = workspace().join("target").join("e2e-imps");
    // A copy of the imp crate with on_before_load and on_after_load swapped.
    let imp = work.path().join("imp");
    std::fs::create_dir_all(imp.join("src")).unwrap();
    for entry in std::fs::read_dir(workspace().join("crates/imp/src")).unwrap() {
        let entry = entry.unwrap();
        std::fs::copy(entry.path(), imp.join("src").join(entry.file_name())).unwrap();
    }
    let abi = std::fs::read_to_string(imp.join("src/abi.rs")).unwrap();
    let before = abi
        .lines()
        .find(|l| l.trim_start().starts_with("pub on_before_load:"))
        .unwrap()
        .to_string();
    let after = abi
        .lines()
        .find(|l| l.trim_start().starts_with("pub on_after_load:"))
        .unwrap()
        .to_string();
    let swapped = abi
        .replace(&before, "@@BEFORE@@")
        .replace(&after, &before)
        .replace("@@BEFORE@@", &after);
    assert_ne!(swapped, abi);
    std::fs::write(imp.join("src/abi.rs"), swapped).unwrap();
    std::fs::write(
        imp.join("Cargo.toml"),
        format!("[package]\nname = \"imp\"\nversion = \"0.1.0\"\nedition = \"2021\"\n\n[dependencies]\n{IMP_DEPS}"),
    )
    .unwrap();

    let krate = ImpCrate::copy("monitor", &work.path().join("monitor"), &target);
    let manifest = std::fs::read_to_string(krate.dir.join("Cargo.toml")).unwrap();
    let manifest = manifest
        .lines()
        .map(|l| {
            if l.starts_with("imp = ") {
                format!("imp = {{ path = {imp:?} }}")
            } else {
                l.to_string()
            }
        })
        .collect::<Vec<_>>()
        .join("\n");
    std::fs::write(krate.dir.join("Cargo.toml"), manifest).unwrap();
    krate.build();
    let library = krate.library_dir().join("libmonitor.so");

    let err = realm::Library::load(&library).unwrap_err();
    assert!(matches!(err, realm::LoadError::Fingerprint { .. }), "{err}");
    let text = err.to_string();
    assert!(text.contains("fingerprint"), "{text}");

    // And the daemon: the imp stays missing, the error says why.
    let dir = Daemon::prepare(&[]);
    std::fs::copy(&library, dir.path().join("libs/libmonitor.so")).unwrap();
    std::fs::write(
        dir.path().join("realm.toml"),
        realm_text("[imps.a]\nlibrary = \"monitor\"\n"),
    )
    .unwrap();
    let d = Daemon::start_in(dir, &[]);
    let s = d.wait_for("the refusal", |s| {
        imp_of(s, "a")["last_error"]
            .as_str()
            .is_some_and(|e| e.contains("fingerprint"))
    });
    assert_eq!(imp_of(&s, "a")["state"], "missing");
}
