//! `impresario doctor [--json]`: what decides whether a live set will
//! glitch, checked on this machine, each with pass / warn / fail and the
//! exact fix.

use serde_json::{json, Value};
use std::path::Path;

/// How a check came out.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Status {
    /// Fine for live playing.
    Pass,
    /// Works, but may glitch or limit something.
    Warn,
    /// Will not work, or will glitch.
    Fail,
}

impl Status {
    fn name(self) -> &'static str {
        match self {
            Status::Pass => "pass",
            Status::Warn => "warn",
            Status::Fail => "fail",
        }
    }
}

/// One check's result. `fix` is empty exactly when the check passes.
pub struct Check {
    /// Short name, e.g. `rtprio`.
    pub name: &'static str,
    /// The outcome.
    pub status: Status,
    /// What was found.
    pub detail: String,
    /// What to do about it (empty on pass).
    pub fix: String,
}

fn pass(name: &'static str, detail: impl Into<String>) -> Check {
    Check {
        name,
        status: Status::Pass,
        detail: detail.into(),
        fix: String::new(),
    }
}

fn not_pass(
    name: &'static str,
    status: Status,
    detail: impl Into<String>,
    fix: impl Into<String>,
) -> Check {
    Check {
        name,
        status,
        detail: detail.into(),
        fix: fix.into(),
    }
}

const LIMITS_FILE: &str = "/etc/security/limits.d/audio.conf";
const RELOGIN: &str =
    "then log out and in again (a systemd user unit: `sudo systemctl restart user@$(id -u)`)";

fn rlimit(resource: libc::__rlimit_resource_t) -> Option<u64> {
    let mut r = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes into the rlimit we pass.
    (unsafe { libc::getrlimit(resource, &mut r) } == 0).then_some(r.rlim_cur)
}

/// Effective capability `bit` (capability(7) numbers).
fn has_cap(bit: u32) -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("CapEff:"))
                .and_then(|h| u64::from_str_radix(h.trim(), 16).ok())
        })
        .is_some_and(|caps| caps & (1 << bit) != 0)
}

const CAP_IPC_LOCK: u32 = 14;
const CAP_SYS_NICE: u32 = 23;

fn check_rtprio() -> Check {
    let name = "rtprio";
    let need = engine::realtime::ENGINE_PRIORITY as u64;
    let fix = format!(
        "add `@audio - rtprio 95` to {LIMITS_FILE} and join the audio group (`sudo usermod -aG audio $USER`), {RELOGIN}"
    );
    match rlimit(libc::RLIMIT_RTPRIO) {
        Some(r) if r == libc::RLIM_INFINITY || r >= need => {
            pass(name, format!("RLIMIT_RTPRIO {}: the engine may run at SCHED_FIFO {need}", show_limit(r)))
        }
        _ if has_cap(CAP_SYS_NICE) => pass(
            name,
            "CAP_SYS_NICE: the engine may run at any real-time priority",
        ),
        Some(0) | None => not_pass(
            name,
            Status::Fail,
            "RLIMIT_RTPRIO is 0: the engine cannot get real-time priority and will glitch under load",
            fix,
        ),
        Some(r) => not_pass(
            name,
            Status::Warn,
            format!("RLIMIT_RTPRIO {r}: below the engine's priority {need} (it is refused SCHED_FIFO {need})"),
            fix,
        ),
    }
}

fn show_limit(v: u64) -> String {
    if v == libc::RLIM_INFINITY {
        "unlimited".into()
    } else {
        v.to_string()
    }
}

fn check_memlock() -> Check {
    let name = "memlock";
    match rlimit(libc::RLIMIT_MEMLOCK) {
        Some(r) if r == libc::RLIM_INFINITY => {
            pass(name, "RLIMIT_MEMLOCK unlimited: the daemon locks all its memory")
        }
        _ if has_cap(CAP_IPC_LOCK) => pass(name, "CAP_IPC_LOCK: the daemon locks all its memory"),
        r => not_pass(
            name,
            Status::Warn,
            format!(
                "RLIMIT_MEMLOCK {} KiB: the daemon does not lock its memory; a page swapped out during a set is a glitch",
                r.map_or("unknown".into(), |r| (r / 1024).to_string())
            ),
            format!("add `@audio - memlock unlimited` to {LIMITS_FILE} and join the audio group, {RELOGIN}"),
        ),
    }
}

/// The user's name and whether this process is in the `audio` group
/// (and whether /etc/group lists the user there).
fn check_audio_group() -> Check {
    let name = "audio-group";
    let groups = std::fs::read_to_string("/etc/group").unwrap_or_default();
    let Some(line) = groups.lines().find(|l| l.starts_with("audio:")) else {
        return not_pass(
            name,
            Status::Warn,
            "there is no `audio` group on this system",
            "install Debian's jackd2 (it creates the group and /etc/security/limits.d/audio.conf): `sudo apt-get install jackd2`, then `sudo usermod -aG audio $USER`",
        );
    };
    let fields: Vec<&str> = line.split(':').collect();
    let gid: Option<libc::gid_t> = fields.get(2).and_then(|g| g.parse().ok());
    let members: Vec<&str> = fields
        .get(3)
        .map(|m| m.split(',').filter(|m| !m.is_empty()).collect())
        .unwrap_or_default();
    // SAFETY: getuid has no preconditions.
    if unsafe { libc::getuid() } == 0 {
        return pass(name, "running as root (real-time limits do not apply)");
    }
    let mut list = [0 as libc::gid_t; 256];
    // SAFETY: getgroups writes at most `list.len()` ids into `list`.
    let n = unsafe { libc::getgroups(list.len() as i32, list.as_mut_ptr()) };
    let mine = &list[..n.max(0) as usize];
    // SAFETY: getegid has no preconditions.
    let in_group = gid.is_some_and(|g| mine.contains(&g) || unsafe { libc::getegid() } == g);
    let user = std::env::var("USER").unwrap_or_default();
    if in_group {
        pass(name, "this session is in the audio group")
    } else if !user.is_empty() && members.contains(&user.as_str()) {
        not_pass(
            name,
            Status::Warn,
            format!("{user} is in the audio group, but this session was started before"),
            RELOGIN.trim_start_matches("then "),
        )
    } else {
        not_pass(
            name,
            Status::Fail,
            "not in the audio group: the audio limits and /dev/snd do not apply to you",
            format!(
                "`sudo usermod -aG audio {}`, {RELOGIN}",
                if user.is_empty() { "$USER" } else { &user }
            ),
        )
    }
}

fn check_governor() -> Check {
    let name = "cpu-governor";
    let mut found: Vec<(String, String)> = Vec::new();
    if let Ok(cpus) = std::fs::read_dir("/sys/devices/system/cpu") {
        for cpu in cpus.flatten() {
            let file = cpu.path().join("cpufreq/scaling_governor");
            if let Ok(g) = std::fs::read_to_string(&file) {
                found.push((
                    cpu.file_name().to_string_lossy().into_owned(),
                    g.trim().to_string(),
                ));
            }
        }
    }
    found.sort();
    let fix = "`echo performance | sudo tee /sys/devices/system/cpu/cpu*/cpufreq/scaling_governor` \
               (for every boot: `sudo apt-get install cpufrequtils` and GOVERNOR=\"performance\" in /etc/default/cpufrequtils)";
    if found.is_empty() {
        return not_pass(
            name,
            Status::Warn,
            "no /sys/devices/system/cpu/cpu*/cpufreq/scaling_governor: frequency scaling is not visible here (a virtual machine or container, or no cpufreq driver)",
            format!("on the machine that plays, check the governor is `performance`: {fix}"),
        );
    }
    let slow: Vec<String> = found
        .iter()
        .filter(|(_, g)| g != "performance")
        .map(|(c, g)| format!("{c}: {g}"))
        .collect();
    if slow.is_empty() {
        pass(name, format!("performance on all {} CPUs", found.len()))
    } else {
        not_pass(
            name,
            Status::Warn,
            format!(
                "not `performance`: {} (a CPU clocking up mid-set is a glitch)",
                slow.join(", ")
            ),
            fix,
        )
    }
}

/// The kernel's preemption model: from the debugfs switch, the command
/// line, then `uname -v`.
fn preemption() -> (String, bool) {
    if let Ok(s) = std::fs::read_to_string("/sys/kernel/debug/sched/preempt") {
        // e.g. "none voluntary (full) lazy": the current one in parentheses.
        if let Some(mode) = s.split_whitespace().find(|w| w.starts_with('(')) {
            let mode = mode.trim_matches(|c| c == '(' || c == ')').to_string();
            let good = mode == "full" || mode == "lazy";
            return (format!("{mode} (/sys/kernel/debug/sched/preempt)"), good);
        }
    }
    let version = uname_version();
    if version.contains("PREEMPT_RT") {
        return ("PREEMPT_RT kernel".into(), true);
    }
    let cmdline = std::fs::read_to_string("/proc/cmdline").unwrap_or_default();
    if let Some(mode) = cmdline
        .split_whitespace()
        .find_map(|w| w.strip_prefix("preempt="))
    {
        return (
            format!("preempt={mode} (kernel command line)"),
            mode == "full",
        );
    }
    if version.contains("PREEMPT_DYNAMIC") {
        return (
            "PREEMPT_DYNAMIC kernel at its default mode (voluntary on Debian)".into(),
            false,
        );
    }
    if version.contains("PREEMPT ") || version.ends_with("PREEMPT") {
        return ("PREEMPT (full) kernel".into(), true);
    }
    (format!("not preemptible ({version})"), false)
}

fn uname_version() -> String {
    // SAFETY: utsname is plain old data; uname fills it.
    let mut u: libc::utsname = unsafe { std::mem::zeroed() };
    // SAFETY: a valid pointer to our utsname.
    if unsafe { libc::uname(&mut u) } != 0 {
        return String::new();
    }
    // SAFETY: uname NUL-terminates the field.
    unsafe { std::ffi::CStr::from_ptr(u.version.as_ptr()) }
        .to_string_lossy()
        .into_owned()
}

const GRUB_FIX: &str = "add `preempt=full threadirqs` to GRUB_CMDLINE_LINUX_DEFAULT in /etc/default/grub, \
                        `sudo update-grub` and reboot (or a real-time kernel: `sudo apt-get install linux-image-rt-amd64`)";

fn check_preemption() -> Check {
    let (mode, good) = preemption();
    if good {
        pass("preemption", mode)
    } else {
        not_pass(
            "preemption",
            Status::Warn,
            format!("{mode}: a long kernel path can delay the engine by milliseconds"),
            GRUB_FIX,
        )
    }
}

fn check_threadirqs() -> Check {
    let cmdline = std::fs::read_to_string("/proc/cmdline").unwrap_or_default();
    if cmdline.split_whitespace().any(|w| w == "threadirqs") {
        pass("threadirqs", "threadirqs is on the kernel command line")
    } else if uname_version().contains("PREEMPT_RT") {
        pass("threadirqs", "PREEMPT_RT kernel: interrupts run in threads")
    } else {
        not_pass(
            "threadirqs",
            Status::Warn,
            "interrupt handlers are not threaded: the sound card's interrupt cannot be given priority",
            GRUB_FIX,
        )
    }
}

fn check_alsa_seq(backend: Option<realm::config::MidiBackend>) -> Check {
    let name = "alsa-seq";
    let needed = backend == Some(realm::config::MidiBackend::Alsa);
    let missing = if needed { Status::Fail } else { Status::Warn };
    let module =
        Path::new("/sys/module/snd_seq").exists() || Path::new("/proc/asound/seq").exists();
    let dev = Path::new("/dev/snd/seq");
    if !dev.exists() {
        return not_pass(
            name,
            missing,
            format!(
                "/dev/snd/seq does not exist (snd-seq module {}): no ALSA MIDI ports",
                if module { "loaded" } else { "not loaded" }
            ),
            "`sudo modprobe snd-seq`, and for every boot `echo snd-seq | sudo tee /etc/modules-load.d/snd-seq.conf` \
             (in a container: pass the device, e.g. `--device /dev/snd`)",
        );
    }
    let c = std::ffi::CString::new("/dev/snd/seq").expect("no NUL");
    // SAFETY: a valid C string; access only reads it.
    let ok = unsafe { libc::access(c.as_ptr(), libc::R_OK | libc::W_OK) } == 0;
    if ok {
        pass(name, "snd-seq loaded, /dev/snd/seq readable and writable")
    } else {
        not_pass(
            name,
            missing,
            format!("/dev/snd/seq: {}", std::io::Error::last_os_error()),
            format!("join the audio group (`sudo usermod -aG audio $USER`), {RELOGIN}"),
        )
    }
}

fn check_jack(backend: Option<realm::config::MidiBackend>) -> Check {
    let name = "jack";
    // No server is an answer here: libjack's own complaints are silenced.
    jack::set_logger(jack::LoggerType::None);
    let probe = jack::Client::new("impresario-doctor", jack::ClientOptions::NO_START_SERVER);
    jack::set_logger(jack::LoggerType::default());
    let needed = backend == Some(realm::config::MidiBackend::Jack);
    match probe {
        Ok((client, _)) => {
            let rate = client.sample_rate() as f64;
            let period = client.buffer_size();
            let ms = period as f64 / rate * 1e3;
            let detail = format!(
                "a JACK server runs: {rate:.0} Hz, {period} frames per period = {ms:.2} ms per period"
            );
            if ms > 10.0 {
                not_pass(
                    name,
                    Status::Warn,
                    format!("{detail}: over 10 ms, playing will feel late"),
                    "restart the server with a shorter period, e.g. `jackd -R -d alsa -p 128 -n 2 -r 48000` \
                     (PipeWire: `pw-metadata -n settings 0 clock.force-quantum 128`)",
                )
            } else {
                pass(name, detail)
            }
        }
        Err(e) => not_pass(
            name,
            if needed { Status::Fail } else { Status::Warn },
            format!(
                "no JACK server ({e}){}",
                if needed { "; the realm's midi_backend is jack" } else { "; the daemon uses ALSA or its loopback" }
            ),
            "start one: `jackd -R -d alsa -d hw:0 -p 128 -n 2 -r 48000` (or PipeWire's JACK: `sudo apt-get install pipewire-jack`)",
        ),
    }
}

fn check_soundfont(config: Option<&realm::RealmConfig>) -> Check {
    let name = "soundfont";
    let install = "`sudo apt-get install timgm6mb-soundfont` (or fluid-soundfont-gm), or set `soundfont = \"/path/to/font.sf2\"` in the synth's config";
    let synths: Vec<(&String, &realm::config::ImpSpec)> = config
        .map(|c| {
            c.imps
                .iter()
                .filter(|(_, s)| s.library == "fluidsynth")
                .collect()
        })
        .unwrap_or_default();
    for (imp, spec) in &synths {
        if let Some(p) = spec.config.get("soundfont").and_then(Value::as_str) {
            let p = sf2_search::expand_home(Path::new(p));
            if !p.is_file() {
                return not_pass(
                    name,
                    Status::Fail,
                    format!("imp `{imp}`: SoundFont {} not found", p.display()),
                    format!("fix `soundfont` of [imps.{imp}] in realm.toml, or {install}"),
                );
            }
        }
    }
    let dirs = sf2_search::search_dirs();
    let found = sf2_search::find(&dirs);
    let configured: Vec<String> = synths
        .iter()
        .filter_map(|(imp, s)| {
            s.config
                .get("soundfont")
                .and_then(Value::as_str)
                .map(|p| format!("`{imp}`: {p}"))
        })
        .collect();
    match (found, synths.is_empty()) {
        (Some(p), _) => pass(
            name,
            if configured.is_empty() {
                format!("{} (found in the usual folders)", p.display())
            } else {
                format!(
                    "configured {}; found {}",
                    configured.join(", "),
                    p.display()
                )
            },
        ),
        (None, true) => pass(
            name,
            "none found, and the realm has no fluidsynth imp that needs one",
        ),
        (None, false) if configured.len() == synths.len() => {
            pass(name, format!("configured {}", configured.join(", ")))
        }
        (None, false) => not_pass(
            name,
            Status::Fail,
            format!(
                "the realm has a fluidsynth imp, and no SoundFont in {}",
                dirs.iter()
                    .map(|d| d.display().to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            install,
        ),
    }
}

/// Runs every check against the realm file `realm`.
pub fn checks(realm: &Path) -> Vec<Check> {
    let config = realm::RealmConfig::load(realm);
    let realm_check = match &config {
        Ok(c) => pass(
            "realm",
            format!(
                "{} is valid: {} imps, midi_backend {}",
                realm.display(),
                c.imps.len(),
                c.settings.midi_backend.name()
            ),
        ),
        Err(e) => not_pass(
            "realm",
            Status::Fail,
            e.to_string(),
            format!(
                "edit {} where the error says (or give another file with --realm PATH)",
                realm.display()
            ),
        ),
    };
    let config = config.ok();
    let backend = config.as_ref().map(|c| c.settings.midi_backend);
    vec![
        check_rtprio(),
        check_memlock(),
        check_audio_group(),
        check_governor(),
        check_preemption(),
        check_threadirqs(),
        check_alsa_seq(backend),
        check_jack(backend),
        check_soundfont(config.as_ref()),
        realm_check,
    ]
}

/// The JSON of `doctor --json`.
pub fn to_json(checks: &[Check]) -> Value {
    json!({
        "checks": checks.iter().map(|c| json!({
            "name": c.name,
            "status": c.status.name(),
            "detail": c.detail,
            "fix": c.fix,
        })).collect::<Vec<_>>()
    })
}

/// `impresario doctor`: prints the checks; exit status 1 when one fails.
pub fn run(realm: &Path, json: bool) -> std::process::ExitCode {
    let checks = checks(realm);
    if json {
        println!(
            "{}",
            serde_json::to_string_pretty(&to_json(&checks)).expect("JSON")
        );
    } else {
        for c in &checks {
            println!(
                "{:<5} {:<13} {}",
                c.status.name().to_uppercase(),
                c.name,
                c.detail
            );
            if !c.fix.is_empty() {
                println!("{:<19} fix: {}", "", c.fix);
            }
        }
    }
    if checks.iter().any(|c| c.status == Status::Fail) {
        std::process::ExitCode::FAILURE
    } else {
        std::process::ExitCode::SUCCESS
    }
}
