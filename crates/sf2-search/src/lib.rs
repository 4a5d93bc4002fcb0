//! # sf2-search: where SoundFonts live on a Linux machine
//!
//! And which one to take when the config names none. One copy of the
//! rules, shared by the fluidsynth imp (which loads the font) and
//! `impresario doctor` (which says which font the synth will find).

use std::path::{Path, PathBuf};

/// General MIDI SoundFonts, best first (Debian's alternatives link first).
const PREFERRED: [&str; 5] = [
    "default-GM.sf2",
    "FluidR3_GM.sf2",
    "GeneralUser GS v1.471.sf2",
    "TimGM6mb.sf2",
    "default.sf2",
];

/// The folders searched, in order: the system's, then the user's, then
/// those of `$XDG_DATA_DIRS`.
pub fn search_dirs() -> Vec<PathBuf> {
    let mut dirs = vec![
        PathBuf::from("/usr/share/sounds/sf2"),
        PathBuf::from("/usr/share/soundfonts"),
    ];
    let data_home = std::env::var_os("XDG_DATA_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| Path::new(&h).join(".local/share")));
    if let Some(home) = data_home {
        dirs.push(home.join("soundfonts"));
        dirs.push(home.join("sounds/sf2"));
    }
    let data_dirs = std::env::var("XDG_DATA_DIRS")
        .unwrap_or_else(|_| "/usr/local/share:/usr/share".to_string());
    for d in data_dirs.split(':').filter(|d| !d.is_empty()) {
        for sub in ["sounds/sf2", "soundfonts"] {
            let p = Path::new(d).join(sub);
            if !dirs.contains(&p) {
                dirs.push(p);
            }
        }
    }
    dirs
}

fn is_soundfont(p: &Path) -> bool {
    p.extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| e.eq_ignore_ascii_case("sf2"))
        && p.is_file()
}

/// The SoundFont to use when none is configured: a known General MIDI one
/// if any folder has it, else the first `.sf2` (by name) of the first
/// folder that has one.
pub fn find(dirs: &[PathBuf]) -> Option<PathBuf> {
    for name in PREFERRED {
        for d in dirs {
            let p = d.join(name);
            if is_soundfont(&p) {
                return Some(p);
            }
        }
    }
    for d in dirs {
        let Ok(entries) = std::fs::read_dir(d) else {
            continue;
        };
        let mut found: Vec<PathBuf> = entries
            .flatten()
            .map(|e| e.path())
            .filter(|p| is_soundfont(p))
            .collect();
        found.sort();
        if let Some(p) = found.into_iter().next() {
            return Some(p);
        }
    }
    None
}

/// `~/x` → the home folder's `x`.
pub fn expand_home(p: &Path) -> PathBuf {
    match (p.strip_prefix("~"), std::env::var_os("HOME")) {
        (Ok(rest), Some(home)) => Path::new(&home).join(rest),
        _ => p.to_path_buf(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_known_general_midi_font_wins_over_others() {
        let dir = std::env::temp_dir().join(format!("impresario-sf-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("aaa.sf2"), b"x").unwrap();
        assert_eq!(find(std::slice::from_ref(&dir)), Some(dir.join("aaa.sf2")));
        std::fs::write(dir.join("TimGM6mb.sf2"), b"x").unwrap();
        assert_eq!(
            find(std::slice::from_ref(&dir)),
            Some(dir.join("TimGM6mb.sf2"))
        );
        std::fs::write(dir.join("readme.txt"), b"x").unwrap();
        assert_eq!(find(&[dir.join("missing")]), None);
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn the_usual_places_are_searched() {
        let dirs = search_dirs();
        assert_eq!(dirs[0], PathBuf::from("/usr/share/sounds/sf2"));
        assert!(dirs.contains(&PathBuf::from("/usr/share/soundfonts")));
    }
}
