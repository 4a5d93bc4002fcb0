//! What an edit of `realm.toml` changes: which imps go, which come, which
//! get a new config. Pure: the supervisor acts on it.

use crate::config::{ImpSpec, Settings};
use std::collections::BTreeMap;

/// The difference between the imps running and the imps a realm file asks for.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ImpDiff {
    /// Imps to remove: gone from the file, or now of another library (those
    /// are removed, then added afresh).
    pub removed: Vec<String>,
    /// Imps to create, with their specs.
    pub added: Vec<(String, ImpSpec)>,
    /// Imps of the same library whose config changed: (name, new spec).
    pub reconfigured: Vec<(String, ImpSpec)>,
}

impl ImpDiff {
    /// Compares the running imps' specs with the new file's.
    pub fn between(
        running: &BTreeMap<String, ImpSpec>,
        new: &BTreeMap<String, ImpSpec>,
    ) -> ImpDiff {
        let mut diff = ImpDiff::default();
        for (name, spec) in running {
            if new.get(name).is_none_or(|n| n.library != spec.library) {
                diff.removed.push(name.clone());
            }
        }
        for (name, spec) in new {
            match running.get(name) {
                Some(old) if old.library == spec.library => {
                    if old != spec {
                        diff.reconfigured.push((name.clone(), spec.clone()));
                    }
                }
                _ => diff.added.push((name.clone(), spec.clone())),
            }
        }
        diff
    }

    /// True when nothing changes.
    pub fn is_empty(&self) -> bool {
        self.removed.is_empty() && self.added.is_empty() && self.reconfigured.is_empty()
    }
}

/// The settings that only take effect at the next start (the engine,
/// watcher, vault and socket were set up with them), as they differ
/// between `old` and `new`: their names.
pub fn restart_only_changes(old: &Settings, new: &Settings) -> Vec<&'static str> {
    let mut changed = Vec::new();
    if old.sample_rate != new.sample_rate {
        changed.push("sample_rate");
    }
    if old.block_size != new.block_size {
        changed.push("block_size");
    }
    if old.sysex_arena_bytes != new.sysex_arena_bytes {
        changed.push("sysex_arena_bytes");
    }
    if old.library_dir != new.library_dir {
        changed.push("library_dir");
    }
    if old.vault != new.vault {
        changed.push("vault");
    }
    if old.socket != new.socket {
        changed.push("socket");
    }
    changed
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn spec(library: &str, config: serde_json::Value) -> ImpSpec {
        ImpSpec {
            library: library.into(),
            config,
        }
    }

    fn imps(list: &[(&str, ImpSpec)]) -> BTreeMap<String, ImpSpec> {
        list.iter()
            .map(|(n, s)| (n.to_string(), s.clone()))
            .collect()
    }

    #[test]
    fn unchanged_realms_differ_in_nothing() {
        let a = imps(&[("m", spec("monitor", json!({})))]);
        assert!(ImpDiff::between(&a, &a).is_empty());
    }

    #[test]
    fn added_removed_and_reconfigured_imps_are_told_apart() {
        let old = imps(&[
            ("keep", spec("monitor", json!({}))),
            ("gone", spec("monitor", json!({}))),
            (
                "tune",
                spec("bard", json!({ "transpose": { "octaves": 0 } })),
            ),
        ]);
        let new = imps(&[
            ("keep", spec("monitor", json!({}))),
            (
                "tune",
                spec("bard", json!({ "transpose": { "octaves": 1 } })),
            ),
            ("fresh", spec("chaos", json!({}))),
        ]);
        let d = ImpDiff::between(&old, &new);
        assert_eq!(d.removed, vec!["gone".to_string()]);
        assert_eq!(
            d.added,
            vec![("fresh".to_string(), spec("chaos", json!({})))]
        );
        assert_eq!(
            d.reconfigured,
            vec![(
                "tune".to_string(),
                spec("bard", json!({ "transpose": { "octaves": 1 } }))
            )]
        );
    }

    #[test]
    fn a_new_library_under_the_same_name_is_a_removal_and_an_addition() {
        let old = imps(&[("x", spec("monitor", json!({})))]);
        let new = imps(&[("x", spec("chaos", json!({})))]);
        let d = ImpDiff::between(&old, &new);
        assert_eq!(d.removed, vec!["x".to_string()]);
        assert_eq!(d.added.len(), 1);
        assert!(d.reconfigured.is_empty());
    }

    #[test]
    fn restart_only_settings_are_named() {
        let old = Settings::default();
        let mut new = old.clone();
        new.block_size = 128;
        new.tempo = 90.0;
        assert_eq!(restart_only_changes(&old, &new), vec!["block_size"]);
    }
}
