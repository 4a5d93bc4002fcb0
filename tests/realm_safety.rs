//! The realm against the files and mistakes of real use: truncated
//! libraries, library copies, identical rebuilds.

mod common;
use common::*;
use realm::{control, Reply, Request};
use std::path::Path;

const MON: &str = "[imps.a]\nlibrary = \"monitor\"\nconfig = { label = \"a\", log = false }\n";

fn prefix_of_monitor(len: usize) -> Vec<u8> {
    let bytes = std::fs::read(built_library("monitor")).unwrap();
    assert!(
        bytes.len() > len,
        "libmonitor.so is only {} bytes",
        bytes.len()
    );
    bytes[..len].to_vec()
}

const SIZES: [usize; 3] = [4 * 1024, 100 * 1024, 3 * 1024 * 1024];

#[test]
fn a_truncated_library_at_start_is_refused_and_loaded_once_complete() {
    for len in SIZES {
        let dir = Daemon::prepare(&[]);
        let lib = dir.path().join("libs/libmonitor.so");
        std::fs::write(&lib, prefix_of_monitor(len)).unwrap();
        std::fs::write(dir.path().join("realm.toml"), realm_text(MON)).unwrap();
        let mut d = Daemon::start_in(dir, &[]);
        let s = d.wait_for("the refusal", |s| {
            imp_of(s, "a")["last_error"]
                .as_str()
                .is_some_and(|e| e.contains("incomplete"))
        });
        assert_eq!(imp_of(&s, "a")["state"], "missing", "{len} bytes");
        assert_eq!(s["loaded_builds"], 0, "{len} bytes: nothing was mapped");
        std::thread::sleep(std::time::Duration::from_millis(300));
        assert!(
            d.is_running(),
            "{len} bytes: the daemon died:\n{}",
            d.log_text()
        );

        // The finished file arrives (in place): it is loaded.
        std::fs::copy(built_library("monitor"), &lib).unwrap();
        d.wait_for("the complete library to load", |s| {
            imp_of(s, "a")["state"] == "thawed"
        });
        assert!(d.stop().success());
    }
}

#[test]
fn a_library_truncated_in_place_while_running_is_refused_and_the_imps_play_on() {
    let mut d = Daemon::start(&["monitor"], MON);
    let first = d.wait_for("a to thaw", |s| imp_of(s, "a")["state"] == "thawed");
    let build = imp_of(&first, "a")["build_id"].clone();
    let lib = d.path("libs/libmonitor.so");
    for (i, len) in SIZES.into_iter().enumerate() {
        // In place: truncate, then write (same inode), as `cp` does.
        std::fs::write(&lib, prefix_of_monitor(len)).unwrap();
        let s = d.wait_for("the refusal", |s| {
            s["libraries"]["monitor"]["last_error"]
                .as_str()
                .is_some_and(|e| e.contains("incomplete") && e.contains(&format!("{len} bytes")))
        });
        assert!(
            d.is_running(),
            "{len} bytes: the daemon died:\n{}",
            d.log_text()
        );
        let a = imp_of(&s, "a");
        assert_eq!(a["state"], "thawed", "{len} bytes: {a:#}");
        assert_eq!(a["build_id"], build);
        d.send("a", &["90", "3c", "64"]);
        d.wait_for("the old build to count", |s| {
            imp_of(s, "a")["status"]["total"] == i as u64 + 1
        });
    }
    // The complete file again: it is the live build, the error clears.
    std::fs::copy(built_library("monitor"), &lib).unwrap();
    let s = d.wait_for("the error to clear", |s| {
        s["libraries"]["monitor"]["last_error"].is_null()
    });
    assert_eq!(s["loaded_builds"], 1);
    assert!(d.stop().success());
}

fn uid() -> u32 {
    // SAFETY: no preconditions.
    unsafe { libc::getuid() }
}

fn private_dirs(tmp: &Path) -> Vec<std::path::PathBuf> {
    std::fs::read_dir(tmp)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with("impresario-libs-"))
        })
        .collect()
}

#[test]
fn library_copies_live_in_a_private_directory_removed_at_exit() {
    use std::os::unix::fs::PermissionsExt;
    let dir = Daemon::prepare(&["monitor"]);
    let tmp = dir.path().join("tmp");
    std::fs::create_dir(&tmp).unwrap();
    // A directory left by a daemon that crashed (its pid is gone).
    let mut gone = std::process::Command::new("true").spawn().unwrap();
    let gone_pid = gone.id();
    gone.wait().unwrap();
    let stale = tmp.join(format!("impresario-libs-{}-{gone_pid}-0", uid()));
    std::fs::create_dir(&stale).unwrap();
    std::fs::write(stale.join("libmonitor-0.so"), b"left behind").unwrap();
    // Another user's file in the temp dir is not touched.
    std::fs::write(tmp.join("impresario-other"), b"keep").unwrap();

    std::fs::write(dir.path().join("realm.toml"), realm_text(MON)).unwrap();
    let tmp_str = tmp.to_str().unwrap().to_string();
    let mut d = Daemon::start_in(dir, &[("TMPDIR", &tmp_str)]);
    let s = d.wait_for("a to thaw", |s| imp_of(s, "a")["state"] == "thawed");
    assert!(!stale.exists(), "the stale directory was cleaned up");
    let dirs = private_dirs(&tmp);
    assert_eq!(dirs.len(), 1, "{dirs:?}");
    let name = dirs[0].file_name().unwrap().to_str().unwrap().to_string();
    assert!(
        name.starts_with(&format!("impresario-libs-{}-{}-", uid(), s["pid"])),
        "{name}"
    );
    let mode = std::fs::metadata(&dirs[0]).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o700, "{name}");
    // The copies themselves are removed once mapped.
    assert_eq!(std::fs::read_dir(&dirs[0]).unwrap().count(), 0);
    assert!(d.stop().success());
    assert!(private_dirs(&tmp).is_empty(), "removed at exit");
    assert!(tmp.join("impresario-other").exists());
}

fn rss_kb(pid: u64) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap()
}

#[test]
fn identical_reloads_are_skipped_and_hold_no_memory() {
    let mut d = Daemon::start(&["monitor"], MON);
    let first = d.wait_for("a to thaw", |s| imp_of(s, "a")["state"] == "thawed");
    assert_eq!(first["loaded_builds"], 1);
    assert!(first["mapped_build_bytes"].as_u64().unwrap() > 0);
    let pid = first["pid"].as_u64().unwrap();
    let socket = d.path("impresario.sock");
    let reload = || match control::request(&socket, &Request::Reload { imp: "a".into() }).unwrap() {
        Reply::Ok(_) => {}
        Reply::Error(e) => panic!("reload failed: {e}"),
    };
    // A warm-up round of everything the measured round does, so that the
    // allocator's and the thread-stack cache's high-water marks are
    // reached first: what the measured round adds is what reloads keep.
    let round = |skipped_after: u64| {
        for _ in 0..200 {
            reload();
        }
        for _ in 0..20 {
            d.status();
        }
        // A rewrite of the same bytes (a no-op rebuild) is skipped too.
        std::fs::copy(built_library("monitor"), d.path("libs/libmonitor.so")).unwrap();
        d.wait_for("the rewrite to be seen", |s| {
            s["libraries"]["monitor"]["identical_skipped"] == skipped_after
        })
    };
    round(201);
    let rss_before = rss_kb(pid);
    let s = round(402);
    let rss_after = rss_kb(pid);
    assert_eq!(s["loaded_builds"], 1, "no further build was mapped");
    assert_eq!(imp_of(&s, "a")["reload_count"], 0);
    assert_eq!(first["mapped_build_bytes"], s["mapped_build_bytes"]);
    assert!(
        rss_after < rss_before + 4 * 1024,
        "resident memory grew from {rss_before} kB to {rss_after} kB"
    );
    assert!(d.stop().success());
}
