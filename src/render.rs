//! `impresario render`: runs a realm's graph without devices, faster than
//! real time, and writes what its synths play into a WAV file.
//!
//! The realm is built as the daemon builds it (same imps, same wiring, the
//! same engine), but its ports are offline ones: the MIDI file plays into
//! every input port imp, output ports go nowhere, and the engine's audio
//! bus is the WAV file. A TimeSeq script plays as it would from the scripts
//! folder (`seq.<stem>`, with the realm's `[scripts.<stem>]` mapping and
//! wiring, into `synth` by default); the realm's own scripts folder is left
//! out. The daemon's vault is not touched (the render uses a vault of its
//! own that is thrown away).

use anyhow::{bail, Context, Result};
use backend::offline::OfflinePorts;
use imp::RtEvent;
use midly::{MetaMessage, Smf, Timing, TrackEventKind};
use realm::{Realm, RealmConfig};
use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

/// What to render: the command line's options.
#[derive(clap::Args, Clone, Debug)]
pub struct RenderArgs {
    /// A Standard MIDI File to play into the realm's input port imps.
    #[arg(long, value_name = "FILE.mid")]
    pub midi: Option<PathBuf>,
    /// A TimeSeq script to play as a sequencer of the realm (into `synth`,
    /// or as its `[scripts.<name>]` table says).
    #[arg(long, value_name = "FILE.json")]
    pub script: Option<PathBuf>,
    /// How many seconds to render.
    #[arg(long, value_name = "N")]
    pub seconds: f64,
    /// The WAV file to write.
    #[arg(long, value_name = "FILE.wav")]
    pub out: PathBuf,
    /// Sample rate: 44100 or 48000.
    #[arg(long, default_value_t = 48_000)]
    pub rate: u32,
    /// Write 32-bit float samples (default: 16-bit integers).
    #[arg(long)]
    pub float: bool,
}

/// A render: the realm file and what to render from it.
pub struct Job {
    /// The realm file.
    pub realm: PathBuf,
    /// What to render.
    pub args: RenderArgs,
}

/// A timed MIDI message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Timed {
    /// Sample at which it plays.
    pub sample: u64,
    /// The message's bytes (status first).
    pub bytes: Vec<u8>,
}

/// The channel messages of a Standard MIDI File, with their sample times
/// at `rate` (tempo changes and SMPTE timing included), in time order.
pub fn midi_events(path: &Path, rate: u32) -> Result<Vec<Timed>> {
    let data = std::fs::read(path)
        .with_context(|| format!("cannot read the MIDI file {}", path.display()))?;
    let smf = Smf::parse(&data)
        .with_context(|| format!("{} is not a Standard MIDI File", path.display()))?;
    // Per track: (tick, order, message or tempo).
    enum What {
        Midi(Vec<u8>),
        Tempo(u32),
    }
    let mut all: Vec<(u64, usize, What)> = Vec::new();
    for track in &smf.tracks {
        let mut tick = 0u64;
        for event in track {
            tick += event.delta.as_int() as u64;
            let order = all.len();
            match event.kind {
                TrackEventKind::Midi { channel, message } => {
                    let mut bytes = Vec::with_capacity(3);
                    midly::live::LiveEvent::Midi { channel, message }
                        .write_std(&mut bytes)
                        .context("cannot encode a MIDI event")?;
                    all.push((tick, order, What::Midi(bytes)));
                }
                TrackEventKind::Meta(MetaMessage::Tempo(t)) => {
                    all.push((tick, order, What::Tempo(t.as_int())));
                }
                _ => {}
            }
        }
    }
    // Tempo changes come before notes at the same tick.
    all.sort_by_key(|(tick, order, what)| (*tick, !matches!(what, What::Tempo(_)), *order));
    let seconds_per_tick = |tempo_us: u32| -> f64 {
        match smf.header.timing {
            Timing::Metrical(tpb) => tempo_us as f64 / 1e6 / tpb.as_int().max(1) as f64,
            Timing::Timecode(fps, sub) => 1.0 / (fps.as_f32() as f64 * sub.max(1) as f64),
        }
    };
    let mut tempo = 500_000u32; // 120 BPM until told otherwise
    let (mut last_tick, mut seconds) = (0u64, 0.0f64);
    let mut out = Vec::new();
    for (tick, _, what) in all {
        seconds += (tick - last_tick) as f64 * seconds_per_tick(tempo);
        last_tick = tick;
        match what {
            What::Tempo(t) => tempo = t.max(1),
            What::Midi(bytes) => out.push(Timed {
                sample: (seconds * rate as f64).round() as u64,
                bytes,
            }),
        }
    }
    Ok(out)
}

/// Runs the job; returns the seconds of wall time it took.
pub fn render(job: &Job) -> Result<f64> {
    if !(job.args.seconds > 0.0 && job.args.seconds <= 24.0 * 3600.0) {
        bail!(
            "--seconds {} is out of range; use more than 0 and at most a day",
            job.args.seconds
        );
    }
    if job.args.rate != 44_100 && job.args.rate != 48_000 {
        bail!(
            "--rate {} is not offered; use 44100 or 48000",
            job.args.rate
        );
    }
    if job.args.midi.is_none() && job.args.script.is_none() {
        bail!("nothing to play: give --midi FILE.mid and/or --script FILE.json");
    }
    let events = match &job.args.midi {
        Some(path) => midi_events(path, job.args.rate)?,
        None => Vec::new(),
    };
    let mut config = RealmConfig::load(&job.realm).map_err(anyhow::Error::new)?;
    let scratch = tempfile::tempdir().context("cannot create a temporary folder")?;
    config.settings.vault = scratch.path().join("vault.json");
    config.settings.socket = scratch.path().join("render.sock");
    config.settings.sample_rate = job.args.rate;
    // Only the script asked for plays, not the realm's scripts folder.
    config.settings.scripts_dir = scratch.path().join("scripts");
    std::fs::create_dir_all(&config.settings.scripts_dir)
        .context("cannot create a temporary folder")?;
    if let Some(script) = &job.args.script {
        let name = script
            .file_name()
            .with_context(|| format!("{} is not a file", script.display()))?;
        let text = std::fs::read_to_string(script)
            .with_context(|| format!("cannot read the script {}", script.display()))?;
        if let Err(errors) = timeseq::Engine::load(&text, job.args.rate as f32) {
            bail!(
                "{} is not a valid TimeSeq script:\n{errors}",
                script.display()
            );
        }
        std::fs::write(config.settings.scripts_dir.join(name), text)
            .context("cannot copy the script")?;
    }
    let block = config.settings.block_size;
    let (handle, mut core) = engine::engine(engine::EngineConfig {
        sample_rate: job.args.rate,
        block_size: block,
        tempo_bpm: config.settings.tempo,
        sysex_arena_bytes: config.settings.sysex_arena_bytes,
    });
    let ports = Arc::new(OfflinePorts::default());
    realm::ports::install(ports.clone());
    let mut realm = Realm::new(config, handle).map_err(anyhow::Error::new)?;
    let inputs = ports.input_slots();
    if job.args.midi.is_some() && inputs.is_empty() {
        bail!(
            "{} has no input port imp to play the MIDI file into; add a `midi_port` imp with \
             config = {{ direction = \"in\" }} wired to what should play it",
            job.realm.display()
        );
    }
    for imp in realm.status().imps {
        if imp.state != realm::Lifecycle::Thawed {
            tracing::warn!(
                "imp {} is {} ({}); the render goes on without it",
                imp.name,
                imp.state.word(),
                imp.last_error.as_deref().unwrap_or("no error")
            );
        }
    }

    let spec = hound::WavSpec {
        channels: 2,
        sample_rate: job.args.rate,
        bits_per_sample: if job.args.float { 32 } else { 16 },
        sample_format: if job.args.float {
            hound::SampleFormat::Float
        } else {
            hound::SampleFormat::Int
        },
    };
    let mut wav = hound::WavWriter::create(&job.args.out, spec)
        .with_context(|| format!("cannot write {}", job.args.out.display()))?;
    let total = (job.args.seconds * job.args.rate as f64).round() as u64;
    let progress = std::io::stderr().is_terminal() && job.args.seconds >= 10.0;
    let started = Instant::now();
    let mut next = 0usize;
    let mut pos = 0u64;
    let mut blocks = 0u64;
    while pos < total {
        let frames = (total - pos).min(block as u64) as u32;
        while next < events.len() && events[next].sample < pos + frames as u64 {
            let e = &events[next];
            let frame = e.sample.saturating_sub(pos) as u32;
            for &slot in &inputs {
                core.push_input(slot, RtEvent::midi(frame, &e.bytes));
            }
            next += 1;
        }
        core.cycle(frames);
        let (left, right) = core.audio_out();
        for i in 0..frames as usize {
            let (l, r) = (
                left.get(i).copied().unwrap_or(0.0),
                right.get(i).copied().unwrap_or(0.0),
            );
            if job.args.float {
                wav.write_sample(l)?;
                wav.write_sample(r)?;
            } else {
                wav.write_sample((l.clamp(-1.0, 1.0) * 32767.0).round() as i16)?;
                wav.write_sample((r.clamp(-1.0, 1.0) * 32767.0).round() as i16)?;
            }
        }
        pos += frames as u64;
        blocks += 1;
        // The realm's housekeeping (dropping what the engine let go of) at
        // about the daemon's pace in rendered time.
        if blocks.is_multiple_of(256) {
            realm.tick();
            if progress {
                eprint!(
                    "\rrendering {:.1} s of {:.1} s ({:.0}%)",
                    pos as f64 / job.args.rate as f64,
                    job.args.seconds,
                    100.0 * pos as f64 / total as f64
                );
            }
        }
    }
    if progress {
        eprintln!();
    }
    wav.finalize()
        .with_context(|| format!("cannot finish {}", job.args.out.display()))?;
    realm.shutdown();
    core.all_notes_off();
    Ok(started.elapsed().as_secs_f64())
}
