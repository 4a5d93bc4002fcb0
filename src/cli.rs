//! The command line: `run` (the daemon), and the commands that talk to a
//! running daemon over its control socket.

use anyhow::{bail, Context, Result};
use clap::{Parser, Subcommand};
use realm::control;
use realm::{Realm, RealmConfig, Reply, Request};
use serde_json::Value;
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
    /// (note-on, middle C, velocity 100). Bytes are hexadecimal.
    Send {
        /// The imp's name in realm.toml.
        imp: String,
        /// One to three bytes in hex.
        #[arg(required = true, num_args = 1..=3)]
        bytes: Vec<String>,
    },
    /// Send a control message (JSON) to an imp and print its reply.
    Control {
        /// The imp's name in realm.toml.
        imp: String,
        /// The message, as JSON, e.g. '{"command": "reset"}'.
        message: String,
    },
    /// Stop the running daemon gracefully.
    Stop,
    /// List the MIDI ports each backend sees (ALSA and JACK), with the
    /// names to use as `connect` patterns in realm.toml.
    Ports,
    /// TimeSeq scripts: check, trace and benchmark them.
    Timeseq {
        #[command(subcommand)]
        command: TimeseqCommand,
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
        Command::Stop => simple(&realm_path, Request::Shutdown),
        Command::Ports => ports(),
        Command::Timeseq { command } => return timeseq(command),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("impresario: {e:#}");
            ExitCode::FAILURE
        }
    }
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
        Direction::Input => "in  (plays into impresario: use in a `direction = \"in\"` port)",
        Direction::Output => "out (impresario can play to it: `direction = \"out\"`)",
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

fn parse_hex(bytes: &[String]) -> Result<Vec<u8>> {
    bytes
        .iter()
        .map(|b| {
            u8::from_str_radix(b.trim_start_matches("0x"), 16)
                .with_context(|| format!("`{b}` is not a hexadecimal byte (00 to ff)"))
        })
        .collect()
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
    let uptime = v["uptime_s"].as_f64().unwrap_or(0.0) as u64;
    println!(
        "impresario (pid {}) up {}h {:02}m {:02}s, realm {}",
        v["pid"],
        uptime / 3600,
        uptime / 60 % 60,
        uptime % 60,
        v["realm"].as_str().unwrap_or("?")
    );
    if let Some(e) = v["realm_error"].as_str() {
        println!("realm.toml edit REJECTED (the running realm is kept): {e}");
    }
    println!(
        "{:<14} {:<12} {:<22} {:<8} {:>7}  LAST ERROR",
        "IMP", "LIBRARY", "BUILD", "STATE", "RELOADS"
    );
    for imp in v["imps"].as_array().into_iter().flatten() {
        println!(
            "{:<14} {:<12} {:<22} {:<8} {:>7}  {}",
            imp["name"].as_str().unwrap_or("?"),
            imp["library"].as_str().unwrap_or("?"),
            imp["build_id"].as_str().unwrap_or("-"),
            imp["state"].as_str().unwrap_or("?"),
            imp["reload_count"].as_u64().unwrap_or(0),
            imp["last_error"].as_str().unwrap_or("-"),
        );
    }
    let e = &v["engine"];
    println!(
        "engine: {} Hz / {} frames, {} cycles, slowest {:.1} µs ({:.1}% of a block), {} overruns, {} swaps, \
         {} dropped events, queue high-water {}/{} (commands/input), {} allocations on the engine thread",
        e["sample_rate"],
        e["block_size"],
        e["cycles"],
        e["slowest_cycle_us"].as_f64().unwrap_or(0.0),
        e["slowest_cycle_load"].as_f64().unwrap_or(0.0) * 100.0,
        e["overruns"],
        e["swaps"],
        e["dropped_events"],
        e["command_queue_high_water"],
        e["input_queue_high_water"],
        e["alloc_violations"],
    );
    println!(
        "vault: {} (generation {}){}; {} library builds mapped",
        v["vault"]["path"].as_str().unwrap_or("?"),
        v["vault"]["generation"],
        v["vault"]["last_error"]
            .as_str()
            .map(|e| format!(", LAST WRITE FAILED: {e}"))
            .unwrap_or_default(),
        v["loaded_builds"],
    );
    Ok(())
}

fn init_logging() {
    use tracing_subscriber::EnvFilter;
    let filter =
        EnvFilter::try_from_env("IMPRESARIO_LOG").unwrap_or_else(|_| EnvFilter::new("info"));
    use std::io::IsTerminal;
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(std::io::stderr)
        .init();
}

fn run(realm_path: &Path) -> Result<()> {
    init_logging();
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
    };
    let choice: backend::Choice = settings.midi_backend.parse()?;
    let (running, handle) = backend::start(choice, &settings.jack_client_name, engine_config)?;

    let _watcher =
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
    control::serve(&settings.socket, tx.clone()).with_context(|| {
        format!(
            "cannot open the control socket {}",
            settings.socket.display()
        )
    })?;
    signals.set_socket(settings.socket.clone());

    let mut realm = Realm::new(config, handle).map_err(anyhow::Error::new)?;
    signals.set_emergency(realm.vault_emergency());
    tracing::info!(
        "realm {} is up; control socket {}",
        realm_path.display(),
        settings.socket.display()
    );
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
    Ok(())
}
