//! Real-time setup of the process and what it got: memory locked
//! (`mlockall`) and the engine thread's scheduling (SCHED_FIFO), each
//! refusal with its cause and the fix, for the log and `impresario status`.
//!
//! The outcome is process-wide (one engine per daemon): whichever thread
//! drives the engine last records how it is scheduled.

use std::sync::atomic::{AtomicI32, Ordering::Relaxed};

/// The priority the engine's own clock threads ask for.
pub const ENGINE_PRIORITY: i32 = 70;

/// The fix for a refused real-time priority or memory lock.
pub const LIMITS_FIX: &str = "add `@audio - rtprio 95` and `@audio - memlock unlimited` to \
     /etc/security/limits.d/audio.conf, add yourself to the audio group (`sudo usermod -aG audio \
     $USER`) and log in again; under systemd the unit needs LimitRTPRIO=95 and \
     LimitMEMLOCK=infinity (`impresario service install` writes them)";

// Engine scheduling: 0 unknown; 1..=99 SCHED_FIFO at that priority;
// 101..=199 SCHED_RR at p - 100; NORMAL: a thread some server gave no
// real-time priority; below 0: promotion refused with errno -v.
static ENGINE: AtomicI32 = AtomicI32::new(0);
const NORMAL: i32 = 1000;
// Memory: 0 not tried; 1 locked; 2 not tried because the limit is too low
// (see MEMLOCK_KB); below 0: mlockall failed with errno -v.
static MEMORY: AtomicI32 = AtomicI32::new(0);
const TOO_LOW: i32 = 2;
static MEMLOCK_KB: AtomicI32 = AtomicI32::new(0);

/// The scheduling of the engine's thread, as recorded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EnginePriority {
    /// No engine thread has started yet.
    Unknown,
    /// SCHED_FIFO at this priority.
    Fifo(i32),
    /// SCHED_RR at this priority.
    RoundRobin(i32),
    /// Ordinary time sharing (e.g. a JACK server started without `-R`).
    Normal,
    /// The system refused SCHED_FIFO (the errno).
    Refused(i32),
}

/// The memory lock, as recorded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MemoryLock {
    /// `lock_memory` was not called.
    NotTried,
    /// All memory, current and future, is locked.
    Locked,
    /// Not tried: RLIMIT_MEMLOCK is this many KiB and the process lacks
    /// CAP_IPC_LOCK; locking future memory under a limit would make later
    /// allocations fail.
    LimitTooLow(u64),
    /// `mlockall` failed (the errno).
    Failed(i32),
}

fn errno_text(errno: i32) -> String {
    let name = match errno {
        libc::EPERM => "EPERM",
        libc::EAGAIN => "EAGAIN",
        libc::ENOMEM => "ENOMEM",
        libc::EINVAL => "EINVAL",
        _ => "errno",
    };
    format!("{name} ({})", std::io::Error::from_raw_os_error(errno))
}

impl EnginePriority {
    /// What `impresario status` shows: `fifo 70`, `normal`, `refused: EPERM ...`.
    pub fn text(self) -> String {
        match self {
            EnginePriority::Unknown => "unknown (no engine thread yet)".into(),
            EnginePriority::Fifo(p) => format!("fifo {p}"),
            EnginePriority::RoundRobin(p) => format!("rr {p}"),
            EnginePriority::Normal => {
                "normal (the thread that drives the engine has no real-time priority; start the \
                 JACK server with -R)"
                    .into()
            }
            EnginePriority::Refused(e) => format!("refused: {}; fix: {LIMITS_FIX}", errno_text(e)),
        }
    }
}

impl MemoryLock {
    /// What `impresario status` shows.
    pub fn text(self) -> String {
        match self {
            MemoryLock::NotTried => "not tried".into(),
            MemoryLock::Locked => "locked (mlockall, current and future)".into(),
            MemoryLock::LimitTooLow(kb) => format!(
                "not locked: RLIMIT_MEMLOCK is {kb} KiB (locking with a limit would make later \
                 allocations fail); fix: {LIMITS_FIX}"
            ),
            MemoryLock::Failed(e) => {
                format!("not locked: mlockall: {}; fix: {LIMITS_FIX}", errno_text(e))
            }
        }
    }
}

/// The recorded engine scheduling.
pub fn engine_priority() -> EnginePriority {
    match ENGINE.load(Relaxed) {
        0 => EnginePriority::Unknown,
        NORMAL => EnginePriority::Normal,
        p @ 1..=99 => EnginePriority::Fifo(p),
        p @ 101..=199 => EnginePriority::RoundRobin(p - 100),
        e => EnginePriority::Refused(-e),
    }
}

/// The recorded memory lock.
pub fn memory_lock() -> MemoryLock {
    match MEMORY.load(Relaxed) {
        0 => MemoryLock::NotTried,
        1 => MemoryLock::Locked,
        TOO_LOW => MemoryLock::LimitTooLow(MEMLOCK_KB.load(Relaxed) as u64),
        e => MemoryLock::Failed(-e),
    }
}

/// Gives the calling thread SCHED_FIFO priority `priority` and records
/// the outcome.
pub fn promote_to_realtime(priority: i32) -> std::io::Result<()> {
    let param = libc::sched_param {
        sched_priority: priority,
    };
    // SAFETY: plain libc call on the current thread with a valid param.
    let rc = unsafe { libc::pthread_setschedparam(libc::pthread_self(), libc::SCHED_FIFO, &param) };
    if rc == 0 {
        ENGINE.store(priority, Relaxed);
        Ok(())
    } else {
        ENGINE.store(-rc, Relaxed);
        Err(std::io::Error::from_raw_os_error(rc))
    }
}

/// Records how the calling thread (one that drives the engine but that
/// impresario did not start: JACK's process thread, an audio callback) is
/// scheduled. No allocation, one non-blocking system call: call it once.
pub fn note_current_thread() {
    let mut policy = 0;
    let mut param = libc::sched_param { sched_priority: 0 };
    // SAFETY: reads the current thread's scheduling into our locals.
    let rc = unsafe { libc::pthread_getschedparam(libc::pthread_self(), &mut policy, &mut param) };
    if rc != 0 {
        return;
    }
    let v = match policy {
        libc::SCHED_FIFO => param.sched_priority,
        libc::SCHED_RR => param.sched_priority + 100,
        _ => NORMAL,
    };
    ENGINE.store(v, Relaxed);
}

/// capability(7) number of CAP_IPC_LOCK.
const CAP_IPC_LOCK: u32 = 14;

/// Whether the process has CAP_IPC_LOCK (effective), from /proc/self/status.
fn has_ipc_lock() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("CapEff:"))
                .and_then(|hex| u64::from_str_radix(hex.trim(), 16).ok())
        })
        .is_some_and(|caps| caps & (1 << CAP_IPC_LOCK) != 0)
}

/// Locks all memory, current and future (`mlockall(MCL_CURRENT |
/// MCL_FUTURE)`), so no page of the engine, the imps or their buffers is
/// paged out during a set. Tried only when RLIMIT_MEMLOCK is unlimited or
/// the process has CAP_IPC_LOCK: under a finite limit, locking future
/// memory makes allocations beyond the limit fail. Records and returns the
/// outcome.
pub fn lock_memory() -> MemoryLock {
    let mut r = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes into the rlimit we pass.
    let known = unsafe { libc::getrlimit(libc::RLIMIT_MEMLOCK, &mut r) } == 0;
    if known && r.rlim_cur != libc::RLIM_INFINITY && !has_ipc_lock() {
        let kb = (r.rlim_cur / 1024).min(i32::MAX as u64);
        MEMLOCK_KB.store(kb as i32, Relaxed);
        MEMORY.store(TOO_LOW, Relaxed);
        MemoryLock::LimitTooLow(kb)
    } else {
        // SAFETY: mlockall takes flags only.
        let rc = unsafe { libc::mlockall(libc::MCL_CURRENT | libc::MCL_FUTURE) };
        if rc == 0 {
            MEMORY.store(1, Relaxed);
            MemoryLock::Locked
        } else {
            let e = std::io::Error::last_os_error().raw_os_error().unwrap_or(0);
            MEMORY.store(-e, Relaxed);
            MemoryLock::Failed(e)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn texts_say_what_was_got_and_the_fix() {
        assert_eq!(EnginePriority::Fifo(70).text(), "fifo 70");
        let refused = EnginePriority::Refused(libc::EPERM).text();
        assert!(refused.starts_with("refused: EPERM"), "{refused}");
        assert!(refused.contains("rtprio 95") && refused.contains("audio group"));
        let low = MemoryLock::LimitTooLow(8192).text();
        assert!(
            low.contains("8192 KiB") && low.contains("memlock unlimited"),
            "{low}"
        );
    }
}
