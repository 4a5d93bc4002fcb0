//! `impresario service install | uninstall | status | system-unit`: the
//! systemd unit that runs the daemon in the background.
//!
//! The user unit goes to `$XDG_CONFIG_HOME/systemd/user/impresario.service`
//! (`~/.config/...` by default). It is `Type=notify` with a watchdog (see
//! [`super::notify`]), restarts on failure, and raises the limits real-time
//! audio needs. systemd lowers a `Limit*=` value to what the user's manager
//! may grant instead of failing, but a negative `Nice=` it cannot grant
//! makes the start fail, so the user unit asks for `Nice=-10` only when
//! this user's `RLIMIT_NICE` allows it. The system-wide variant (a dedicated
//! music box: `User=`, root's manager grants everything) is printed for the
//! user to install as root.

use anyhow::{bail, Context, Result};
use std::path::{Path, PathBuf};
use std::process::Command;

/// The unit's file name.
pub const UNIT_NAME: &str = "impresario.service";
/// `WatchdogSec=`: the daemon pings every half of it.
pub const WATCHDOG_SEC: u32 = 10;

/// Where the user unit lives: `$XDG_CONFIG_HOME/systemd/user/`, else
/// `$HOME/.config/systemd/user/`.
pub fn user_unit_dir() -> Result<PathBuf> {
    let config = match std::env::var_os("XDG_CONFIG_HOME").filter(|v| !v.is_empty()) {
        Some(dir) => PathBuf::from(dir),
        None => {
            let home = std::env::var_os("HOME")
                .filter(|v| !v.is_empty())
                .context("neither XDG_CONFIG_HOME nor HOME is set")?;
            PathBuf::from(home).join(".config")
        }
    };
    Ok(config.join("systemd").join("user"))
}

/// What goes into a unit.
pub struct UnitSpec {
    /// The daemon's binary (absolute).
    pub binary: PathBuf,
    /// The realm file (absolute).
    pub realm: PathBuf,
    /// `Some(user)`: the system-wide variant, running as `user`.
    pub system_user: Option<String>,
    /// Whether to ask for `Nice=-10`.
    pub nice: bool,
}

/// One `ExecStart=` word: `%` doubled (systemd's specifiers), quoted with
/// C escapes when it holds blanks, quotes or backslashes.
fn exec_word(word: &str) -> String {
    let word = word.replace('%', "%%");
    if word
        .chars()
        .any(|c| c.is_whitespace() || c == '"' || c == '\'' || c == '\\')
    {
        let escaped = word.replace('\\', "\\\\").replace('"', "\\\"");
        format!("\"{escaped}\"")
    } else {
        word
    }
}

/// The unit file's text.
pub fn unit_text(spec: &UnitSpec) -> String {
    let binary = spec.binary.to_string_lossy();
    let realm = spec.realm.to_string_lossy();
    let dir = spec
        .realm
        .parent()
        .unwrap_or(Path::new("/"))
        .to_string_lossy()
        .replace('%', "%%");
    let mut t = String::new();
    t.push_str("[Unit]\n");
    t.push_str("Description=impresario: live-reloadable MIDI performance daemon\n");
    match &spec.system_user {
        None => t.push_str("After=pipewire.service jack.service\n"),
        Some(_) => t.push_str("After=sound.target\nWants=sound.target\n"),
    }
    t.push_str("\n[Service]\n");
    t.push_str("Type=notify\n");
    t.push_str("NotifyAccess=main\n");
    t.push_str(&format!(
        "ExecStart={} run --realm {}\n",
        exec_word(&binary),
        exec_word(&realm)
    ));
    t.push_str(&format!("WorkingDirectory={dir}\n"));
    if let Some(user) = &spec.system_user {
        t.push_str(&format!("User={user}\n"));
        t.push_str("SupplementaryGroups=audio\n");
    }
    t.push_str(&format!("WatchdogSec={WATCHDOG_SEC}\n"));
    t.push_str("Restart=on-failure\n");
    t.push_str("RestartSec=2\n");
    t.push_str("TimeoutStopSec=20\n");
    t.push_str("# Real-time audio: SCHED_FIFO up to 95 for the engine, all memory locked.\n");
    t.push_str("LimitRTPRIO=95\n");
    t.push_str("LimitMEMLOCK=infinity\n");
    if spec.nice || spec.system_user.is_some() {
        t.push_str("Nice=-10\n");
    } else {
        t.push_str(
            "# No Nice=-10: this user may not raise priority (RLIMIT_NICE), and systemd would\n\
             # refuse to start the unit. Add `@audio - nice -10` to /etc/security/limits.d/audio.conf,\n\
             # log in again and re-run `impresario service install` to get it.\n",
        );
    }
    t.push_str("Environment=IMPRESARIO_LOG=info\n");
    t.push_str("\n[Install]\n");
    match &spec.system_user {
        None => t.push_str("WantedBy=default.target\n"),
        Some(_) => t.push_str("WantedBy=multi-user.target\n"),
    }
    t
}

/// Whether this user may set a nice value of -10 (root, or RLIMIT_NICE ≥ 30).
fn may_renice() -> bool {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } == 0 {
        return true;
    }
    let mut r = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes into the rlimit we pass and reads nothing else.
    let ok = unsafe { libc::getrlimit(libc::RLIMIT_NICE, &mut r) } == 0;
    ok && (r.rlim_cur == libc::RLIM_INFINITY || r.rlim_cur >= 30)
}

/// The unit for this binary and realm (`system_user`: the system variant).
pub fn spec_for(realm: &Path, system_user: Option<String>) -> Result<UnitSpec> {
    let realm = std::fs::canonicalize(realm).with_context(|| {
        format!(
            "the realm file {} does not exist (give it with --realm PATH)",
            realm.display()
        )
    })?;
    if let Err(e) = realm::RealmConfig::load(&realm) {
        bail!("the realm file is not valid, the service would not start: {e}");
    }
    let binary = std::env::current_exe()
        .and_then(std::fs::canonicalize)
        .context("cannot find the impresario binary's own path")?;
    Ok(UnitSpec {
        binary,
        realm,
        system_user,
        nice: may_renice(),
    })
}

/// The user running this command.
fn user_name() -> String {
    std::env::var("USER")
        .or_else(|_| std::env::var("LOGNAME"))
        .unwrap_or_else(|_| "music".to_string())
}

/// `service install`: writes the user unit, prints what to do next and
/// the system-wide variant.
pub fn install(realm: &Path) -> Result<()> {
    let spec = spec_for(realm, None)?;
    let dir = user_unit_dir()?;
    std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let path = dir.join(UNIT_NAME);
    let text = unit_text(&spec);
    let tmp = dir.join(format!(".{UNIT_NAME}.tmp"));
    std::fs::write(&tmp, &text).with_context(|| format!("cannot write {}", tmp.display()))?;
    std::fs::rename(&tmp, &path).with_context(|| format!("cannot write {}", path.display()))?;
    println!("wrote {}", path.display());
    println!(
        "  runs: {} run --realm {}",
        spec.binary.display(),
        spec.realm.display()
    );
    if spec.binary.components().any(|c| c.as_os_str() == "target") {
        println!(
            "  note: that binary is inside a cargo target directory; `cargo clean` would break the service \
             (`cargo install --path .` and re-run `impresario service install` to use ~/.cargo/bin)"
        );
    }
    println!("start it now and at every login:");
    println!("  systemctl --user daemon-reload && systemctl --user enable --now impresario");
    println!("start it at boot, before anyone logs in:");
    println!("  sudo loginctl enable-linger {}", user_name());
    println!("its log: journalctl --user -u impresario -f");
    println!();
    println!(
        "For a dedicated music box, the system-wide unit (runs as {} at boot), as root:",
        user_name()
    );
    println!(
        "  impresario service system-unit --realm {} | sudo tee /etc/systemd/system/{UNIT_NAME}",
        spec.realm.display()
    );
    println!("  sudo systemctl daemon-reload && sudo systemctl enable --now impresario");
    Ok(())
}

/// `service system-unit`: prints the system-wide unit.
pub fn print_system_unit(realm: &Path, user: Option<String>) -> Result<()> {
    let spec = spec_for(realm, Some(user.unwrap_or_else(user_name)))?;
    print!("{}", unit_text(&spec));
    Ok(())
}

/// The `enable` link systemd makes for `WantedBy=default.target`.
fn wants_link(dir: &Path) -> PathBuf {
    dir.join("default.target.wants").join(UNIT_NAME)
}

/// `service uninstall`: removes the user unit (and its enable link).
pub fn uninstall() -> Result<()> {
    let dir = user_unit_dir()?;
    let path = dir.join(UNIT_NAME);
    let link = wants_link(&dir);
    if link.symlink_metadata().is_ok() {
        std::fs::remove_file(&link).with_context(|| format!("cannot remove {}", link.display()))?;
        println!("removed {}", link.display());
    }
    if !path.exists() {
        println!("not installed: {} does not exist", path.display());
        return Ok(());
    }
    std::fs::remove_file(&path).with_context(|| format!("cannot remove {}", path.display()))?;
    println!("removed {}", path.display());
    println!(
        "if it still runs: systemctl --user stop impresario && systemctl --user daemon-reload"
    );
    Ok(())
}

/// What `systemctl --user` says about the unit, or why it cannot say.
fn systemctl_says(verb: &str) -> std::result::Result<String, String> {
    let out = Command::new("systemctl")
        .args(["--user", verb, UNIT_NAME])
        .output()
        .map_err(|e| format!("systemctl is not available ({e})"))?;
    let said = String::from_utf8_lossy(&out.stdout).trim().to_string();
    let err = String::from_utf8_lossy(&out.stderr).trim().to_string();
    if said.is_empty() {
        Err(format!(
            "systemctl --user cannot answer: {}",
            if err.is_empty() { "no output" } else { &err }
        ))
    } else {
        Ok(said)
    }
}

/// `service status`: installed, enabled, running.
pub fn status() -> Result<()> {
    let dir = user_unit_dir()?;
    let path = dir.join(UNIT_NAME);
    match std::fs::read_to_string(&path) {
        Ok(text) => {
            println!("installed: yes, {}", path.display());
            if let Some(exec) = text.lines().find(|l| l.starts_with("ExecStart=")) {
                println!("  {exec}");
            }
        }
        Err(_) => println!(
            "installed: no ({} does not exist; `impresario service install` writes it)",
            path.display()
        ),
    }
    let linked = wants_link(&dir).symlink_metadata().is_ok();
    match systemctl_says("is-enabled") {
        Ok(state) => println!("enabled: {state} (systemctl --user)"),
        Err(why) => println!(
            "enabled: {} (from the link in default.target.wants; {why})",
            if linked { "yes" } else { "no" }
        ),
    }
    match systemctl_says("is-active") {
        Ok(state) => println!("active: {state} (systemctl --user)"),
        Err(why) => println!("active: unknown ({why})"),
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exec_words_are_quoted_and_specifiers_escaped() {
        assert_eq!(exec_word("/usr/bin/impresario"), "/usr/bin/impresario");
        assert_eq!(
            exec_word("/home/a b/realm.toml"),
            "\"/home/a b/realm.toml\""
        );
        assert_eq!(exec_word("/x/100%/r"), "/x/100%%/r");
        assert_eq!(exec_word("/x/\"q\""), "\"/x/\\\"q\\\"\"");
    }

    #[test]
    fn user_and_system_variants() {
        let mut spec = UnitSpec {
            binary: "/usr/bin/impresario".into(),
            realm: "/home/m/set/realm.toml".into(),
            system_user: None,
            nice: false,
        };
        let user = unit_text(&spec);
        assert!(user.contains("ExecStart=/usr/bin/impresario run --realm /home/m/set/realm.toml\n"));
        assert!(user.contains("WorkingDirectory=/home/m/set\n"));
        assert!(user.contains("Type=notify\n") && user.contains("WatchdogSec=10\n"));
        assert!(user.contains("LimitRTPRIO=95\n") && user.contains("LimitMEMLOCK=infinity\n"));
        assert!(!user.contains("\nNice=") && !user.contains("User="));
        assert!(user.contains("WantedBy=default.target\n"));
        spec.nice = true;
        assert!(unit_text(&spec).contains("\nNice=-10\n"));
        spec.nice = false;
        spec.system_user = Some("music".into());
        let system = unit_text(&spec);
        assert!(system.contains("\nUser=music\n") && system.contains("\nNice=-10\n"));
        assert!(system.contains("WantedBy=multi-user.target\n"));
    }
}
