//! The command line: `run` (the daemon), and the commands that talk to a
//! running daemon over its control socket.

use anyhow::{bail, Context, Result};
use clap::{Parser, Subcommand};
use realm::control;
use realm::{Realm, RealmConfig, Reply, Request};
use serde_json::Value;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::mpsc;

/// impresario: a live-reloadable MIDI performance daemon.
///
/// Your controllers play through imps (small plugins: the bard's note
/// pipeline, synths, monitors) that you can rebuild while you keep
/// playing. Which imps run, and how they are wired, is in realm.toml;
/// edit it while the daemon runs and the change is applied.
#[derive(Parser)]
#[command(name = "impresario", version, propagate_version = true)]
struct Cli {
    /// The realm file (default: ./realm.toml).
    #[arg(long, global = true, value_name = "PATH")]
    realm: Option<PathBuf>,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Run the daemon in the foreground (the default command). Stop it with
    /// Ctrl-C or `impresario stop`: imps are frozen and the vault is saved.
    Run,
    /// Show every imp (library, build, state, reloads, last error), the
    /// engine's counters and the daemon's uptime.
    Status {
        /// Print machine-readable JSON.
        #[arg(long)]
        json: bool,
    },
    /// Rebuild-free respawn: reload the library of IMP from disk and
    /// recreate its imps, carrying their state over.
    Reload {
        /// The imp's name in realm.toml.
        imp: String,
    },
    /// Play one MIDI message into an imp, e.g. `impresario send keys 90 3c 64`
    /// (note-on, middle C, velocity 100), or a whole SysEx
    /// (`impresario send synth f0 43 10 4c 00 00 7e 00 f7`). Bytes are
    /// hexadecimal.
    Send {
        /// The imp's name in realm.toml.
        imp: String,
        /// One to three bytes in hex, or a SysEx from F0 to F7.
        #[arg(required = true, num_args = 1..)]
        bytes: Vec<String>,
    },
    /// Send a control message (JSON) to an imp and print its reply.
    Control {
        /// The imp's name in realm.toml.
        imp: String,
        /// The message, as JSON, e.g. '{"cmd": "reset"}'.
        message: String,
    },
    /// Change one live setting through the enchanter: `impresario set
    /// lower.octave -1`, `impresario set lower.scale minor`, `impresario set
    /// tempo 96` (every key: crates/enchantment/KEYS.md).
    Set {
        /// `ZONE.KEY` (zone by name or number) or a global key.
        key: String,
        /// The new value.
        #[arg(allow_hyphen_values = true)]
        value: String,
        /// The enchanter imp (default: the one imp of library `enchanter`).
        #[arg(long)]
        imp: Option<String>,
    },
    /// Show the live settings: every zone and the global ones, or one zone.
    Get {
        /// A zone (by name or number); all when absent.
        zone: Option<String>,
        /// Print JSON.
        #[arg(long)]
        json: bool,
        /// The enchanter imp (default: the one imp of library `enchanter`).
        #[arg(long)]
        imp: Option<String>,
    },
    /// Save a zone's settings as preset N (1–24), or recall it.
    Preset {
        /// `save` or `recall`.
        action: PresetAction,
        /// The preset number, 1–24.
        number: u32,
        /// The zone (default: the selected zone).
        #[arg(long)]
        zone: Option<String>,
        /// The enchanter imp (default: the one imp of library `enchanter`).
        #[arg(long)]
        imp: Option<String>,
    },
    /// Stop the running daemon gracefully.
    Stop,
    /// Render the realm's sound without devices, faster than real time, into
    /// a WAV file: `--midi FILE.mid` plays into the realm's input ports,
    /// `--script FILE.json` plays a TimeSeq script as one of its sequencers
    /// (`impresario render --realm realm.toml --midi song.mid --seconds 30
    /// --out song.wav`).
    Render(crate::render::RenderArgs),
    /// List the MIDI ports each backend sees (ALSA and JACK), with the
    /// names to use as `connect` patterns in realm.toml.
    Ports,
    /// The sequencers of the scripts folder: list them, start, stop or
    /// reset one (NAME is the script's file name without `.json`).
    Seq {
        #[command(subcommand)]
        command: SeqCommand,
    },
    /// TimeSeq scripts: check, trace and benchmark them.
    Timeseq {
        #[command(subcommand)]
        command: TimeseqCommand,
    },
    /// Check this machine for live playing: real-time limits, the audio
    /// group, CPU governor, kernel preemption, ALSA sequencer, JACK, the
    /// SoundFont and the realm file; each with pass/warn/fail and the fix.
    /// Exits with 1 when a check fails.
    Doctor {
        /// Print `{"checks": [{"name", "status", "detail", "fix"}]}`.
        #[arg(long)]
        json: bool,
    },
    /// Run the daemon in the background under systemd: install, remove or
    /// inspect the user unit (`impresario service install --realm PATH`).
    Service {
        #[command(subcommand)]
        command: ServiceCommand,
    },
}

/// What `impresario preset` does.
#[derive(Clone, Copy, Debug, clap::ValueEnum)]
enum PresetAction {
    /// Store the zone's settings in the preset.
    Save,
    /// Load the preset into the zone.
    Recall,
}

#[derive(Subcommand)]
enum ServiceCommand {
    /// Write the systemd user unit ($XDG_CONFIG_HOME/systemd/user/impresario.service)
    /// for this binary and the realm file, and print the next steps and the
    /// system-wide variant.
    Install,
    /// Remove the user unit and its enable link.
    Uninstall,
    /// Whether the user unit is installed, enabled and running.
    Status,
    /// Print the system-wide unit (for /etc/systemd/system; a dedicated
    /// music box), running as USER (default: you).
    SystemUnit {
        /// The account the daemon runs as.
        #[arg(long, value_name = "USER")]
        user: Option<String>,
    },
}

#[derive(Subcommand)]
enum SeqCommand {
    /// Every script in the folder: state, transport, position, notes, errors.
    List {
        /// Print machine-readable JSON.
        #[arg(long)]
        json: bool,
    },
    /// Start (or continue) a stopped sequencer.
    Start {
        /// The script's name (file name without `.json`).
        name: String,
    },
    /// Stop a sequencer: its notes end; `start` continues where it stopped.
    Stop {
        /// The script's name.
        name: String,
    },
    /// Back to the script's start (its load state); keeps running or stopped.
    Reset {
        /// The script's name.
        name: String,
    },
}

#[derive(Subcommand)]
enum TimeseqCommand {
    /// Validate a script; prints each error as `<location> : <message> [<code>]`
    /// and exits with 2 when the script is invalid.
    Check {
        /// The script (JSON).
        file: PathBuf,
    },
    /// Run a script sample by sample and print every change:
    /// `FILE --sample-rate R --samples N [--input P:C=V]... [--input-at S@P:C=V]...
    /// [--square P:C=PERIOD[,HIGH[,DUTY]]]... [--saw P:C=PERIOD[,LO,HI]]... [--seed K] [--vars] [--triggers]`.
    #[command(disable_help_flag = true)]
    Trace {
        /// The script and the options above.
        #[arg(trailing_var_arg = true, allow_hyphen_values = true, required = true)]
        args: Vec<String>,
    },
    /// Measure how many samples per second a script runs at:
    /// `FILE [--samples N] [--runs K]`; the last line is `<median> samples/s`.
    #[command(disable_help_flag = true)]
    Bench {
        /// The script and the options above.
        #[arg(trailing_var_arg = true, allow_hyphen_values = true, required = true)]
        args: Vec<String>,
    },
}

/// Entry point of the binary.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    let realm_path = cli
        .realm
        .clone()
        .unwrap_or_else(|| PathBuf::from("realm.toml"));
    let result = match cli.command.unwrap_or(Command::Run) {
        Command::Run => run(&realm_path),
        Command::Status { json } => status(&realm_path, json),
        Command::Reload { imp } => simple(&realm_path, Request::Reload { imp }),
        Command::Send { imp, bytes } => {
            parse_hex(&bytes).and_then(|bytes| simple(&realm_path, Request::Send { imp, bytes }))
        }
        Command::Control { imp, message } => serde_json::from_str(&message)
            .context("the message is not valid JSON")
            .and_then(|message| simple(&realm_path, Request::Control { imp, message })),
        Command::Set { key, value, imp } => enchant(
            &realm_path,
            imp,
            serde_json::json!({ "cmd": "set", "key": key, "value": value }),
        )
        .map(|v| print_settings(&v)),
        Command::Get { zone, json, imp } => enchant(
            &realm_path,
            imp,
            serde_json::json!({ "cmd": "get", "zone": zone }),
        )
        .and_then(|v| {
            if json {
                println!("{}", serde_json::to_string_pretty(&v)?);
            } else {
                print_settings(&v);
            }
            Ok(())
        }),
        Command::Preset {
            action,
            number,
            zone,
            imp,
        } => enchant(
            &realm_path,
            imp,
            serde_json::json!({
                "cmd": "preset",
                "action": match action {
                    PresetAction::Save => "save",
                    PresetAction::Recall => "recall",
                },
                "number": number,
                "zone": zone,
            }),
        )
        .map(|v| print_settings(&v)),
        Command::Stop => simple(&realm_path, Request::Shutdown),
        Command::Ports => ports(),
        Command::Seq { command } => seq(&realm_path, command),
        Command::Render(args) => {
            init_logging();
            let job = crate::render::Job {
                realm: realm_path.clone(),
                args,
            };
            crate::render::render(&job).map(|took| {
                println!(
                    "rendered {:.1} s into {} in {took:.2} s ({:.0}x real time)",
                    job.args.seconds,
                    job.args.out.display(),
                    job.args.seconds / took.max(1e-9)
                );
            })
        }
        Command::Timeseq { command } => return timeseq(command),
        Command::Doctor { json } => return crate::doctor::run(&realm_path, json),
        Command::Service { command } => match command {
            ServiceCommand::Install => crate::service::unit::install(&realm_path),
            ServiceCommand::Uninstall => crate::service::unit::uninstall(),
            ServiceCommand::Status => crate::service::unit::status(),
            ServiceCommand::SystemUnit { user } => {
                crate::service::unit::print_system_unit(&realm_path, user)
            }
        },
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("impresario: {}", error_text(&e));
            ExitCode::FAILURE
        }
    }
}

/// An error and its causes on one line, each cause said once: many errors
/// already quote their cause in their own message.
fn error_text(e: &anyhow::Error) -> String {
    let mut text = e.to_string();
    for cause in e.chain().skip(1) {
        let cause = cause.to_string();
        if !text.contains(&cause) {
            text.push_str(": ");
            text.push_str(&cause);
        }
    }
    text
}

/// Runs a `timeseq` subcommand; its exit code is the command's own (2: invalid script).
fn timeseq(command: TimeseqCommand) -> ExitCode {
    let mut out = std::io::stdout().lock();
    let result = match command {
        TimeseqCommand::Check { file } => {
            timeseq::cli::check(&file, &mut out).map_err(anyhow::Error::from)
        }
        TimeseqCommand::Trace { args } => {
            timeseq::cli::trace(&args, &mut out).map_err(anyhow::Error::from)
        }
        TimeseqCommand::Bench { args } => {
            timeseq::cli::bench(&args, &mut out).map_err(anyhow::Error::from)
        }
    };
    match result {
        Ok(code) => ExitCode::from(code.clamp(0, 255) as u8),
        Err(e) => {
            eprintln!("impresario timeseq: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn ports() -> Result<()> {
    use midi::alsa::Direction;
    let arrow = |d: Direction| match d {
        Direction::In => "in  (plays into impresario: use in a `direction = \"in\"` port)",
        Direction::Out => "out (impresario can play to it: `direction = \"out\"`)",
    };
    println!("ALSA:");
    match midi::alsa::list_ports() {
        Ok(ports) if ports.is_empty() => println!("  no ports"),
        Ok(ports) => ports
            .iter()
            .for_each(|p| println!("  {:<40} {}", p.name, arrow(p.direction))),
        Err(e) => println!("  unavailable: {e}"),
    }
    println!("JACK:");
    match midi::jack_ports::list_ports() {
        Ok(ports) if ports.is_empty() => println!("  no MIDI ports"),
        Ok(ports) => ports
            .iter()
            .for_each(|p| println!("  {:<40} {}", p.name, arrow(p.direction))),
        Err(e) => println!("  unavailable: {e}"),
    }
    println!("loopback: ports exist inside a running daemon only (an output port `X` feeds input ports `X`)");
    Ok(())
}

/// The bytes of `impresario send`: each one or two hex digits, with an
/// optional `0x`; together one well-formed MIDI message. A lone status byte
/// is refused unless the MIDI spec makes it a whole message (the one-byte
/// system real-time and tune-request messages: `f6`, `f8`, `fa`-`fc`, `fe`,
/// and `ff`, system reset, which real devices do act on); `f0` starts a
/// SysEx, which `send` does not carry.
fn parse_hex(bytes: &[String]) -> Result<Vec<u8>> {
    let bytes = bytes
        .iter()
        .map(|b| {
            let digits = b
                .strip_prefix("0x")
                .or_else(|| b.strip_prefix("0X"))
                .unwrap_or(b);
            if digits.is_empty()
                || digits.len() > 2
                || !digits.chars().all(|c| c.is_ascii_hexdigit())
            {
                bail!("`{b}` is not a hexadecimal byte (00 to ff, optionally written 0x..)");
            }
            Ok(u8::from_str_radix(digits, 16).expect("checked hex digits"))
        })
        .collect::<Result<Vec<u8>>>()?;
    if bytes.first() == Some(&0xF0) {
        let whole = bytes.len() >= 2
            && bytes[bytes.len() - 1] == 0xF7
            && bytes[1..bytes.len() - 1].iter().all(|b| *b < 0x80);
        if !whole {
            bail!("a SysEx is f0, then data bytes (00 to 7f), then f7");
        }
        return Ok(bytes);
    }
    midi::ShortMessage::from_bytes(&bytes).map_err(|e| {
        anyhow::anyhow!(
            "{e}: send takes one complete MIDI message, a status byte (80 to ff) and its data bytes \
             (00 to 7f), e.g. `90 3c 64` (note-on) or `b0 07 64` (control change), or a SysEx \
             from f0 to f7"
        )
    })?;
    Ok(bytes)
}

/// The imp of a script named `name` (`demo` or `seq.demo`).
fn seq_imp(name: &str) -> String {
    if name.starts_with("seq.") {
        name.to_string()
    } else {
        realm::config::script_imp(name)
    }
}

fn seq(realm_path: &Path, command: SeqCommand) -> Result<()> {
    let (name, cmd) = match command {
        SeqCommand::List { json } => return seq_list(realm_path, json),
        SeqCommand::Start { name } => (name, "start"),
        SeqCommand::Stop { name } => (name, "stop"),
        SeqCommand::Reset { name } => (name, "reset"),
    };
    simple(
        realm_path,
        Request::Control {
            imp: seq_imp(&name),
            message: serde_json::json!({ "cmd": cmd }),
        },
    )
}

fn seq_list(realm_path: &Path, json: bool) -> Result<()> {
    let v = ask(realm_path, Request::Status)?;
    let imps = v["imps"].as_array().cloned().unwrap_or_default();
    let list: Vec<Value> = v["scripts"]["files"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|s| {
            let imp = imps
                .iter()
                .find(|i| i["name"] == s["imp"])
                .cloned()
                .unwrap_or(Value::Null);
            serde_json::json!({
                "name": s["name"],
                "imp": s["imp"],
                "file": s["file"],
                "state": s["state"],
                "versions": s["versions"],
                "error": s["error"],
                "imp_state": imp["state"],
                "player": imp["status"],
            })
        })
        .collect();
    if json {
        println!("{}", serde_json::to_string_pretty(&list)?);
        return Ok(());
    }
    println!(
        "scripts folder {}",
        v["scripts"]["dir"].as_str().unwrap_or("?")
    );
    println!(
        "{:<20} {:<8} {:<8} {:>8} {:>12} {:>8}  ERROR",
        "NAME", "STATE", "RUNNING", "VERSIONS", "SAMPLES", "SOUNDING"
    );
    for s in &list {
        let p = &s["player"];
        println!(
            "{:<20} {:<8} {:<8} {:>8} {:>12} {:>8}  {}",
            s["name"].as_str().unwrap_or("?"),
            s["state"].as_str().unwrap_or("?"),
            match p["running"].as_bool() {
                Some(true) => "yes",
                Some(false) => "stopped",
                None => "-",
            },
            s["versions"],
            p["script_samples"].as_u64().unwrap_or(0),
            p["sounding"].as_u64().unwrap_or(0),
            s["error"]["errors"][0].as_str().unwrap_or("-"),
        );
    }
    Ok(())
}

/// Sends `message` to the enchanter (`imp`, or the one imp of library
/// `enchanter`) and returns its reply.
fn enchant(realm_path: &Path, imp: Option<String>, message: Value) -> Result<Value> {
    let imp = match imp {
        Some(imp) => imp,
        None => {
            let status = ask(realm_path, Request::Status)?;
            let names: Vec<String> = status["imps"]
                .as_array()
                .into_iter()
                .flatten()
                .filter(|i| i["library"] == "enchanter")
                .filter_map(|i| i["name"].as_str().map(String::from))
                .collect();
            match names.as_slice() {
                [one] => one.clone(),
                [] => bail!(
                    "no enchanter in the realm: add one to realm.toml\n\n\
                     [imps.enchanter]\nlibrary = \"enchanter\"\nconfig = {{ bard = \"bard\" }}"
                ),
                several => bail!(
                    "several enchanters in the realm ({}); choose one with --imp",
                    several.join(", ")
                ),
            }
        }
    };
    ask(realm_path, Request::Control { imp, message })
}

/// Prints a settings reply as `key = value` lines, each key written the
/// way `impresario set` takes it: global keys bare (`tempo`), drum
/// patterns as `drums.P.VOICE` (steps), `drums.P.VOICE.note` and
/// `drums.P.length`, zone keys as `ZONE.KEY`, a zone's saved presets as
/// `ZONE.presets`. A reply to `set` or `preset` is already `{key: value}`.
fn print_settings(v: &Value) {
    fn text(v: &Value) -> String {
        match v {
            Value::String(s) => s.clone(),
            Value::Array(a) => a.iter().map(text).collect::<Vec<_>>().join(", "),
            other => other.to_string(),
        }
    }
    fn zone(z: &Value, lines: &mut Vec<String>) {
        let name = z["name"].as_str().unwrap_or("?");
        for (k, v) in z.as_object().into_iter().flatten() {
            if k != "name" {
                lines.push(format!("{name}.{k} = {}", text(v)));
            }
        }
    }
    let mut lines = Vec::new();
    if v.get("global").is_some() && v.get("zones").is_some() {
        for (k, g) in v["global"].as_object().into_iter().flatten() {
            if k != "drum_patterns" {
                lines.push(format!("{k} = {}", text(g)));
            }
        }
        for (p, pattern) in v["global"]["drum_patterns"]
            .as_array()
            .into_iter()
            .flatten()
            .enumerate()
        {
            let p = p + 1;
            lines.push(format!("drums.{p}.length = {}", text(&pattern["length"])));
            for voice in pattern["voices"].as_array().into_iter().flatten() {
                let name = voice["voice"].as_str().unwrap_or("?");
                lines.push(format!("drums.{p}.{name} = {}", text(&voice["steps"])));
                lines.push(format!("drums.{p}.{name}.note = {}", text(&voice["note"])));
            }
        }
        for z in v["zones"].as_array().into_iter().flatten() {
            zone(z, &mut lines);
        }
    } else if v.get("name").is_some() {
        zone(v, &mut lines);
    } else {
        for (k, x) in v.as_object().into_iter().flatten() {
            match x.as_object() {
                // A preset: the settings it holds.
                Some(settings) => {
                    lines.push(format!("{k}:"));
                    for (s, y) in settings {
                        lines.push(format!("  {s} = {}", text(y)));
                    }
                }
                None => lines.push(format!("{k} = {}", text(x))),
            }
        }
    }
    // A closed pipe (`impresario get | head`) is no error.
    let mut out = std::io::stdout().lock();
    for l in lines {
        if writeln!(out, "{l}").is_err() {
            return;
        }
    }
}

fn socket_of(realm_path: &Path) -> Result<PathBuf> {
    Ok(RealmConfig::socket_path(realm_path))
}

fn ask(realm_path: &Path, request: Request) -> Result<Value> {
    let socket = socket_of(realm_path)?;
    match control::request(&socket, &request)? {
        Reply::Ok(v) => Ok(v),
        Reply::Error(e) => bail!("{e}"),
    }
}

fn simple(realm_path: &Path, request: Request) -> Result<()> {
    let v = ask(realm_path, request)?;
    println!("{}", serde_json::to_string_pretty(&v)?);
    Ok(())
}

fn status(realm_path: &Path, json: bool) -> Result<()> {
    let v = ask(realm_path, Request::Status)?;
    if json {
        println!("{}", serde_json::to_string_pretty(&v)?);
        return Ok(());
    }
    let s: realm::status::Status = serde_json::from_value(v).context(
        "the daemon answered with a status this impresario does not read (another version?)",
    )?;
    let uptime = s.uptime_s as u64;
    println!(
        "impresario (pid {}) up {}h {:02}m {:02}s, realm {}",
        s.pid,
        uptime / 3600,
        uptime / 60 % 60,
        uptime % 60,
        s.realm.display()
    );
    if let Some(e) = &s.realm_error {
        println!("realm.toml edit REJECTED (the running realm is kept): {e}");
    }
    println!(
        "{:<14} {:<12} {:<22} {:<8} {:>7}  LAST ERROR",
        "IMP", "LIBRARY", "BUILD", "STATE", "RELOADS"
    );
    for imp in &s.imps {
        println!(
            "{:<14} {:<12} {:<22} {:<8} {:>7}  {}",
            imp.name,
            imp.library,
            imp.build_id.as_deref().unwrap_or("-"),
            imp.state.word(),
            imp.reload_count,
            imp.last_error.as_deref().unwrap_or("-"),
        );
    }
    for script in &s.scripts.files {
        if let Some(errors) = script.error.as_ref().and_then(|e| e["errors"].as_array()) {
            println!(
                "script {} REFUSED ({}): {}",
                script.file.display(),
                if script.playing {
                    "the previous version keeps playing"
                } else {
                    "not playing"
                },
                errors
                    .iter()
                    .filter_map(Value::as_str)
                    .collect::<Vec<_>>()
                    .join("; ")
            );
        }
    }
    let (e, c) = (&s.engine, &s.engine.counters);
    println!(
        "engine: {} Hz / {} frames, {} cycles, slowest {:.1} µs ({:.1}% of a block), {} overruns, {} swaps, \
         {} dropped events, {} SysEx dropped, queue high-water {}/{} (commands/input), {} allocations on \
         the engine thread",
        e.sample_rate,
        e.block_size,
        c.cycles,
        e.slowest_cycle_us,
        c.slowest_cycle_load * 100.0,
        c.overruns,
        c.swaps,
        c.dropped_events,
        c.sysex_dropped,
        c.command_queue_high_water,
        c.input_queue_high_water,
        c.alloc_violations,
    );
    println!(
        "realtime: memory {}; engine thread {}",
        s.realtime.memory, s.realtime.engine_priority,
    );
    let db = |x: f32| {
        if x > 0.0 {
            format!("{:.1} dBFS", 20.0 * x.log10())
        } else {
            "silent".to_string()
        }
    };
    println!(
        "audio out: peak {} since the last status, level {} now",
        db(c.output_peak),
        db(c.output_rms),
    );
    println!(
        "vault: {} (generation {}){}; {} library builds mapped ({:.1} MB)",
        s.vault.path.display(),
        s.vault.generation,
        s.vault
            .last_error
            .as_deref()
            .map(|e| format!(", LAST WRITE FAILED: {e}"))
            .unwrap_or_default(),
        s.loaded_builds,
        s.mapped_build_bytes as f64 / 1e6,
    );
    Ok(())
}

fn init_logging() {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_env("IMPRESARIO_LOG")
        .unwrap_or_else(|_| EnvFilter::new("info,jack_sys=warn"));
    use std::io::IsTerminal;
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(std::io::stderr)
        .init();
}

/// Locks the daemon's memory (see `engine::realtime::lock_memory`) and
/// logs a refusal with its cause and fix.
fn lock_memory() {
    use engine::realtime::MemoryLock;
    match engine::realtime::lock_memory() {
        MemoryLock::Locked => tracing::info!("memory locked (mlockall)"),
        refused => tracing::warn!(
            "memory {}; pages may be swapped out during a set",
            refused.text()
        ),
    }
}

fn run(realm_path: &Path) -> Result<()> {
    init_logging();
    lock_memory();
    // First, before anything slow: a signal from now on stops cleanly.
    let (tx, rx) = mpsc::channel();
    let signals =
        crate::signals::install(tx.clone()).context("cannot install the signal handlers")?;
    if std::env::var_os("IMPRESARIO_ALLOC_BACKTRACE").is_some() {
        engine::alloc_guard::trace_violations(true);
    }
    let config = RealmConfig::load(realm_path).map_err(anyhow::Error::new)?;
    let settings = config.settings.clone();
    let engine_config = engine::EngineConfig {
        sample_rate: settings.sample_rate,
        block_size: settings.block_size,
        tempo_bpm: settings.tempo,
        sysex_arena_bytes: settings.sysex_arena_bytes,
    };
    let choice = settings.midi_backend;
    let audio = backend::AudioSettings {
        output: settings.audio_output.clone(),
        connect: settings.audio_connect,
    };
    let (running, handle) =
        backend::start(choice, &settings.jack_client_name, engine_config, &audio)?;

    let watcher =
        realm::watch::watch_libraries(&settings.library_dir, tx.clone()).with_context(|| {
            format!(
                "cannot watch the library directory {}",
                settings.library_dir.display()
            )
        })?;
    if signals.stopping() {
        tracing::info!("stopped while starting");
        running.stop();
        return Ok(());
    }
    let _control = control::serve(&settings.socket, tx.clone()).with_context(|| {
        format!(
            "cannot open the control socket {}",
            settings.socket.display()
        )
    })?;
    signals.set_socket(settings.socket.clone());

    let mut realm = Realm::new(config, handle).map_err(anyhow::Error::new)?;
    realm.watch_libraries(watcher);
    realm.watch_scripts(tx.clone());
    realm.wake_for_mail(tx.clone());
    signals.set_emergency(realm.vault_emergency());
    tracing::info!(
        "realm {} is up; control socket {}",
        realm_path.display(),
        settings.socket.display()
    );
    let reconcile = std::time::Duration::from_millis(settings.reconcile_ms);
    crate::service::notify::attach(&mut realm, reconcile);
    realm.run(rx);
    // The realm froze every imp (their notes went out); now stop the clock.
    let stopping = std::time::Instant::now();
    let backend_name = running.name();
    running.stop();
    drop(realm);
    let _ = std::fs::remove_file(&settings.socket);
    // With the realm's own line ("realm stopped in N ms"), this says where
    // a slow stop spends its time.
    tracing::info!(
        "{} backend stopped in {:.1} ms",
        backend_name,
        stopping.elapsed().as_secs_f64() * 1e3
    );
    realm::loader::remove_private_dir();
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::parse_hex;

    fn hex(args: &[&str]) -> Result<Vec<u8>, String> {
        let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
        parse_hex(&args).map_err(|e| e.to_string())
    }

    #[test]
    fn well_formed_messages_pass() {
        assert_eq!(hex(&["90", "3c", "64"]), Ok(vec![0x90, 0x3c, 0x64]));
        assert_eq!(hex(&["0xC0", "5"]), Ok(vec![0xc0, 5]));
        assert_eq!(
            hex(&["ff"]),
            Ok(vec![0xff]),
            "system reset is a whole message"
        );
        assert_eq!(hex(&["f8"]), Ok(vec![0xf8]));
    }

    #[test]
    fn malformed_messages_say_why() {
        for (args, why) in [
            (&["90"][..], "needs 3 bytes"),
            (&["f0"], "a SysEx is f0"),
            (&["f0", "80", "f7"], "a SysEx is f0"),
            (&["0x0x90"], "not a hexadecimal byte"),
            (&["+90"], "not a hexadecimal byte"),
            (&["3c", "64"], "not the status byte"),
            (&["90", "80", "64"], "out of range"),
            (&["123"], "not a hexadecimal byte"),
        ] {
            let e = hex(args).unwrap_err();
            assert!(e.contains(why), "{args:?}: {e}");
        }
    }
}
