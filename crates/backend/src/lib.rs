//! # backend: where MIDI comes from and goes to, and what drives the clock
//!
//! - `jack`: impresario is a JACK client; JACK's process callback drives the
//!   engine, MIDI ports are served in it at their frame offsets.
//! - `alsa`: ALSA sequencer ports through midir; the engine runs on its
//!   internal block clock, input is timestamped on arrival and placed at a
//!   sample offset, output leaves from a sender thread when due.
//! - `loopback`: in-process ports only (an output port `X` feeds the input
//!   ports named `X`); the engine runs on its internal block clock. Needs no
//!   MIDI system.
//! - `auto`: JACK if a server runs, else ALSA if its sequencer opens, else
//!   the loopback; one log line says which and why.
//!
//! The chosen backend serves `imp::ports` requests (the `midi_port` imp)
//! through [`realm::ports::PortService`].

pub mod alsa;
pub mod audio_device;
pub mod jack;
pub mod loopback;
pub mod offline;
pub mod port_table;

use engine::{EngineConfig, EngineHandle, InternalClock};
use std::sync::Arc;

/// The backends one can ask for in `realm.toml` (`midi_backend`): the
/// realm config's one list of them.
pub use realm::config::MidiBackend as Choice;

/// Why a backend could not start.
#[derive(Debug, thiserror::Error)]
pub enum BackendError {
    /// JACK was asked for and is not there.
    #[error(transparent)]
    Jack(#[from] jack::JackError),
    /// The audio device was found but would not play.
    #[error("audio: {0}; set audio_output = \"none\" in realm.toml to run without it")]
    Audio(String),
    /// The engine thread could not start.
    #[error("cannot start the engine thread: {0}")]
    Thread(#[from] std::io::Error),
}

/// Where the engine's audio goes (the `audio_output` and `audio_connect`
/// settings of `realm.toml`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AudioSettings {
    /// `auto`, `none`, or an ALSA PCM device name.
    pub output: String,
    /// JACK: connect to the system's playback ports.
    pub connect: bool,
}

impl Default for AudioSettings {
    fn default() -> Self {
        AudioSettings {
            output: "auto".into(),
            connect: true,
        }
    }
}

/// A started backend: keeps the clock (or the JACK client) alive.
pub enum Running {
    /// The JACK client drives the engine.
    Jack(Arc<jack::JackBackend>),
    /// The internal clock drives the engine; ALSA ports.
    Alsa(InternalClock),
    /// An ALSA audio device's callback drives the engine; ALSA ports.
    AlsaAudio(audio_device::DeviceClock),
    /// The internal clock drives the engine; loopback ports.
    Loopback(InternalClock),
}

impl Running {
    /// The backend's name.
    pub fn name(&self) -> &'static str {
        match self {
            Running::Jack(_) => "jack",
            Running::Alsa(_) | Running::AlsaAudio(_) => "alsa",
            Running::Loopback(_) => "loopback",
        }
    }

    /// Stops the clock after the realm has frozen its imps.
    pub fn stop(self) {
        match self {
            Running::Jack(j) => j.stop(),
            Running::Alsa(clock) | Running::Loopback(clock) => drop(clock.stop()),
            Running::AlsaAudio(device) => device.stop(),
        }
    }
}

/// Starts the chosen backend and the engine it drives, and installs its
/// port service for the imps.
pub fn start(
    choice: Choice,
    client_name: &str,
    config: EngineConfig,
    audio: &AudioSettings,
) -> Result<(Running, EngineHandle), BackendError> {
    let chosen = match choice {
        Choice::Auto => {
            // Probing: no server is an expected answer, said in one INFO
            // line below, so libjack's own complaints are silenced meanwhile.
            ::jack::set_logger(::jack::LoggerType::None);
            let probe = jack::JackBackend::start(client_name, config, audio);
            ::jack::set_logger(::jack::LoggerType::default());
            let jack_error = match probe {
                Ok((backend, handle)) => {
                    tracing::info!(
                        "MIDI backend: jack (auto: a JACK server runs; {} Hz, {} frames per period)",
                        backend.sample_rate(),
                        backend.buffer_size()
                    );
                    let backend = Arc::new(backend);
                    realm::ports::install(backend.clone());
                    return Ok((Running::Jack(backend), handle));
                }
                Err(e) => e,
            };
            match midi::alsa::list_ports() {
                Ok(_) => {
                    tracing::info!(
                        "MIDI backend: alsa (auto: {jack_error}; the ALSA sequencer opens)"
                    );
                    Choice::Alsa
                }
                Err(alsa_error) => {
                    tracing::info!("MIDI backend: loopback (auto: {jack_error}; {alsa_error})");
                    Choice::Loopback
                }
            }
        }
        other => other,
    };
    match chosen {
        Choice::Jack => {
            let (backend, handle) = jack::JackBackend::start(client_name, config, audio)?;
            tracing::info!(
                "MIDI backend: jack ({} Hz, {} frames per period)",
                backend.sample_rate(),
                backend.buffer_size()
            );
            let backend = Arc::new(backend);
            realm::ports::install(backend.clone());
            Ok((Running::Jack(backend), handle))
        }
        Choice::Alsa => {
            if let Err(e) = midi::alsa::list_ports() {
                tracing::warn!(
                    "MIDI backend: alsa, but {e}; port imps wait until it can be opened"
                );
            } else if choice == Choice::Alsa {
                tracing::info!(
                    "MIDI backend: alsa (internal clock, {} frames per block)",
                    config.block_size
                );
            }
            let (handle, core) = engine::engine(config);
            let (ports, driver) = alsa::alsa(client_name, config.sample_rate, config.block_size);
            realm::ports::install(Arc::new(ports));
            let device = match audio.output.as_str() {
                "none" => None,
                wanted => match audio_device::find(wanted, config) {
                    Ok(device) => Some(device),
                    Err(why) => {
                        tracing::info!(
                            "audio: {why}; the engine runs on its internal clock and the sound is \
                             rendered without playing (set audio_output = \"none\" to say so)"
                        );
                        None
                    }
                },
            };
            let Some(device) = device else {
                return Ok((
                    Running::Alsa(InternalClock::start(core, config, driver)?),
                    handle,
                ));
            };
            tracing::info!(
                "audio: ALSA device {} drives the engine ({} frames per block)",
                device.name(),
                config.block_size
            );
            let clock = audio_device::DeviceClock::start(device, core, driver)
                .map_err(BackendError::Audio)?;
            Ok((Running::AlsaAudio(clock), handle))
        }
        Choice::Loopback | Choice::Auto => {
            if choice == Choice::Loopback {
                tracing::info!("MIDI backend: loopback (in-process ports, internal clock)");
            }
            let (handle, core) = engine::engine(config);
            let (ports, driver) = loopback::loopback();
            realm::ports::install(Arc::new(ports));
            Ok((
                Running::Loopback(InternalClock::start(core, config, driver)?),
                handle,
            ))
        }
    }
}
