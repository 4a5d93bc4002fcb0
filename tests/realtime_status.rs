//! Real-time setup at start: `impresario status` says whether memory is
//! locked and how the engine thread is scheduled, consistently with the
//! limits and capabilities this test reads itself.

mod common;
use common::*;

const MON: &str = "[imps.a]\nlibrary = \"monitor\"\nconfig = { log = false }\n";

fn limit(resource: libc::__rlimit_resource_t) -> u64 {
    let mut r = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes into the rlimit we pass.
    assert_eq!(unsafe { libc::getrlimit(resource, &mut r) }, 0);
    r.rlim_cur
}

/// Effective capability `bit` of this (test) process; the daemon, its
/// child, inherits the same set.
fn has_cap(bit: u32) -> bool {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let hex = status
        .lines()
        .find_map(|l| l.strip_prefix("CapEff:"))
        .unwrap();
    u64::from_str_radix(hex.trim(), 16).unwrap() & (1 << bit) != 0
}

#[test]
fn status_reports_memory_lock_and_engine_priority_as_the_limits_allow() {
    let d = Daemon::start(&["monitor"], MON);
    let s = d.wait_for("the engine thread to report", |s| {
        !s["realtime"]["engine_priority"]
            .as_str()
            .unwrap_or("unknown")
            .starts_with("unknown")
    });
    let rt = &s["realtime"];
    let memory_locked = rt["memory_locked"].as_bool().expect("memory_locked");
    let memory = rt["memory"].as_str().expect("memory");
    let priority = rt["engine_priority"].as_str().expect("engine_priority");

    let memlock = limit(libc::RLIMIT_MEMLOCK);
    let may_lock = memlock == libc::RLIM_INFINITY || has_cap(14 /* CAP_IPC_LOCK */);
    if may_lock {
        assert!(memory_locked, "memlock {memlock}, may lock, but: {memory}");
    } else {
        assert!(!memory_locked, "{memory}");
        let kib = format!("{} KiB", memlock / 1024);
        assert!(
            memory.contains(&kib) && memory.contains("memlock unlimited"),
            "{memory}"
        );
    }

    let rtprio = limit(libc::RLIMIT_RTPRIO);
    let may_fifo =
        rtprio == libc::RLIM_INFINITY || rtprio >= 70 || has_cap(23 /* CAP_SYS_NICE */);
    if may_fifo {
        // Allowed by the limits; a cgroup without real-time budget can
        // still refuse, and then the refusal must say why.
        assert!(
            priority == "fifo 70" || priority.starts_with("refused: "),
            "{priority}"
        );
    } else {
        assert!(
            priority.starts_with("refused: EPERM"),
            "rtprio {rtprio}: {priority}"
        );
        assert!(priority.contains("rtprio 95"), "{priority}");
    }
    let text = d.cli(&["status"]);
    let text = String::from_utf8_lossy(&text.stdout);
    assert!(
        text.contains(&format!("engine thread {priority}")),
        "{text}"
    );
    eprintln!("this machine: memory {memory}; engine {priority}");
    // The log says what it got at start, too.
    let log = d.log_text();
    assert!(
        log.contains("memory locked (mlockall)") == memory_locked,
        "{log}"
    );
}
