//! A rebuilt library always gets a new build id, also when only a crate it
//! depends on changed (the bard's logic lives in `bard-pipeline`).

mod common;
use common::*;

#[test]
fn editing_a_dependency_gives_a_new_build_id() {
    let work = tempfile::tempdir().unwrap();
    let target = workspace().join("target").join("e2e-imps");
    // A copy of bard-pipeline the test may edit.
    let pipeline = work.path().join("bard-pipeline");
    std::fs::create_dir_all(pipeline.join("src")).unwrap();
    for entry in std::fs::read_dir(workspace().join("crates/bard-pipeline/src")).unwrap() {
        let entry = entry.unwrap();
        std::fs::copy(entry.path(), pipeline.join("src").join(entry.file_name())).unwrap();
    }
    std::fs::write(
        pipeline.join("Cargo.toml"),
        format!(
            "[package]\nname = \"bard-pipeline\"\nversion = \"0.1.0\"\nedition = \"2021\"\n\n\
             [dependencies]\nimp = {{ path = {:?} }}\nserde = {{ version = \"1\", features = [\"derive\"] }}\n\
             serde_json = \"1\"\nthiserror = \"2\"\nserde_path_to_error = \"0.1\"\n",
            workspace().join("crates/imp")
        ),
    )
    .unwrap();
    // A copy of the bard that uses it.
    let krate = ImpCrate::copy("bard", &work.path().join("bard"), &target);
    let manifest = std::fs::read_to_string(krate.dir.join("Cargo.toml")).unwrap();
    let manifest = manifest
        .lines()
        .map(|l| {
            if l.starts_with("bard-pipeline") {
                format!("bard-pipeline = {{ path = {pipeline:?} }}")
            } else {
                l.to_string()
            }
        })
        .collect::<Vec<_>>()
        .join("\n");
    std::fs::write(krate.dir.join("Cargo.toml"), manifest).unwrap();

    let build_id = || {
        krate.build();
        let lib = realm::Library::load(&krate.library_dir().join("libbard.so")).unwrap();
        lib.build_id().to_string()
    };
    let first = build_id();
    // Only the dependency changes.
    let lib_rs = pipeline.join("src/lib.rs");
    let mut text = std::fs::read_to_string(&lib_rs).unwrap();
    text.push_str("\n/// Edited by the test.\npub const EDITED: u32 = 1;\n");
    std::fs::write(&lib_rs, text).unwrap();
    let second = build_id();
    assert_ne!(first, second, "the rebuilt bard kept its build id");
}
