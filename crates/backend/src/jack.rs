//! The JACK backend: impresario is one JACK client. Its process callback
//! *is* the engine clock: each callback reads the input ports at their frame
//! offsets, runs one engine cycle of the callback's length, and writes what
//! the port-bound imps emitted at the same frame offsets. An event that
//! arrives at frame f of cycle k leaves at frame f of cycle k: the
//! pass-through adds no latency beyond the JACK period.

use crate::port_table::{registry, EngineSide, Registry};
use engine::{alloc_guard, EngineConfig, EngineCore, EngineHandle};
use imp::ports::{Direction, PortSpec};
use imp::RtEvent;
use jack::{
    AudioOut, Client, ClientOptions, Control, MidiIn, MidiOut, Port, PortFlags, ProcessHandler,
    ProcessScope, RawMidi,
};
use realm::ports::{PortError, PortService};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// A JACK port as the engine thread holds it.
pub enum JackPort {
    /// Impresario receives on it.
    In(Port<MidiIn>),
    /// Impresario sends on it.
    Out(Port<MidiOut>),
}

/// The process callback: owns the engine core.
pub struct JackProcess {
    core: EngineCore,
    side: EngineSide<JackPort>,
    stopping: Arc<AtomicBool>,
    stopped: Arc<AtomicBool>,
    final_cycle_ran: bool,
    /// impresario's own audio output ports (left, right), fed from the
    /// engine's bus; `None` with `audio_output = "none"`.
    audio: Option<[Port<AudioOut>; 2]>,
}

impl ProcessHandler for JackProcess {
    fn process(&mut self, _: &Client, ps: &ProcessScope) -> Control {
        let frames = ps.n_frames();
        if self.stopping.load(Ordering::Acquire) {
            // The last cycles: the engine ends what its slots left sounding
            // and every output port what it left sounding; a second cycle
            // leaves the port buffers empty (JACK would repeat an unwritten
            // buffer); then the client can go (see `JackBackend::stop`).
            if !self.stopped.load(Ordering::Relaxed) {
                let first = !self.final_cycle_ran;
                self.final_cycle_ran = true;
                let done = alloc_guard::rt_section(|| {
                    self.side.apply();
                    if first {
                        self.core.all_notes_off();
                        self.side.table.close_all();
                    }
                    self.write_outputs(ps, frames);
                    self.side.retire_closing();
                    self.write_audio(ps, true);
                    self.side.table.iter_mut().next().is_none()
                });
                if done {
                    self.stopped.store(true, Ordering::Release);
                }
            }
            return Control::Continue;
        }
        alloc_guard::rt_section(|| {
            self.side.apply();
            for b in self.side.table.iter_mut() {
                if b.is_closing() {
                    continue;
                }
                if let JackPort::In(port) = &b.port {
                    for raw in port.iter(ps) {
                        // Short messages only: SysEx is not real-time material.
                        if !raw.bytes.is_empty()
                            && raw.bytes.len() <= 3
                            && raw.bytes[0] >= 0x80
                            && raw.bytes[0] != 0xF0
                        {
                            self.core
                                .push_input(b.slot, RtEvent::midi(raw.time, raw.bytes));
                        }
                    }
                }
            }
        });
        self.core.cycle(frames);
        alloc_guard::rt_section(|| {
            self.write_outputs(ps, frames);
            self.side.retire_closing();
            self.write_audio(ps, false);
        });
        Control::Continue
    }
}

impl JackProcess {
    /// Copies the engine's output bus into impresario's audio ports
    /// (silence when stopping, or for a period longer than the engine
    /// renders audio for).
    fn write_audio(&mut self, ps: &ProcessScope, silent: bool) {
        let Some(ports) = self.audio.as_mut() else {
            return;
        };
        let (left, right) = self.core.audio_out();
        for (port, bus) in ports.iter_mut().zip([left, right]) {
            let out = port.as_mut_slice(ps);
            if silent || bus.len() != out.len() {
                out.fill(0.0);
            } else {
                out.copy_from_slice(bus);
            }
        }
    }

    /// Writes what the port-bound slots emitted in this cycle at their
    /// frames, through each port's ledger; a closing port then ends what it
    /// still has sounding, at the cycle's last frame.
    fn write_outputs(&mut self, ps: &ProcessScope, frames: u32) {
        let last = frames.saturating_sub(1);
        for b in self.side.table.iter_mut() {
            let slot = b.slot;
            let (JackPort::Out(port), mut gate) = b.output() else {
                continue;
            };
            let mut writer = port.writer(ps);
            // JACK takes events in time order only; the engine emits each
            // slot's events in frame order, and a late one is moved up to
            // the last written frame rather than lost.
            let mut at = 0u32;
            let mut write = |e: &RtEvent| {
                at = at.max(e.frame.min(last));
                writer
                    .write(&RawMidi {
                        time: at,
                        bytes: e.midi_bytes(),
                    })
                    .is_ok()
            };
            for t in self.core.emitted() {
                if t.slot == slot {
                    if let Some(e) = gate.admit(&t.event) {
                        write(&e);
                    }
                }
            }
            gate.release_if_closing(last, |e| write(&e));
        }
    }
}

struct OpenPort {
    full_name: String,
    connect: Option<String>,
}

struct Inner {
    client: Option<jack::AsyncClient<(), JackProcess>>,
    ports: Registry<JackPort, OpenPort>,
    stopping: Arc<AtomicBool>,
    stopped: Arc<AtomicBool>,
}

/// The JACK backend's control side; serves `imp::ports` requests.
pub struct JackBackend {
    inner: Mutex<Inner>,
    sample_rate: u32,
    buffer_size: u32,
}

impl std::fmt::Debug for JackBackend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JackBackend")
            .field("sample_rate", &self.sample_rate)
            .finish()
    }
}

/// Why JACK could not be used.
#[derive(Debug, thiserror::Error)]
#[error("JACK: {0}")]
pub struct JackError(String);

impl JackBackend {
    /// Connects to a running JACK server (never starts one) as `client_name`,
    /// creates the engine at JACK's sample rate, and activates the client:
    /// from then on JACK's process callback drives the engine.
    pub fn start(
        client_name: &str,
        config: EngineConfig,
        audio: &crate::AudioSettings,
    ) -> Result<(JackBackend, EngineHandle), JackError> {
        let (client, _status) = Client::new(client_name, ClientOptions::NO_START_SERVER)
            .map_err(|e| JackError(format!("no JACK server to connect to ({e}); start one (e.g. `jackd -d alsa`) or use midi_backend = \"alsa\" / \"loopback\"")))?;
        let sample_rate = client.sample_rate();
        let buffer_size = client.buffer_size();
        if sample_rate != config.sample_rate {
            tracing::info!(
                "JACK runs at {sample_rate} Hz; the engine follows it (realm.toml says {})",
                config.sample_rate
            );
        }
        let (handle, core) = engine::engine(EngineConfig {
            sample_rate,
            block_size: buffer_size,
            ..config
        });
        let audio_ports = if audio.output == "none" {
            None
        } else {
            let register = |name: &str| {
                client
                    .register_port(name, AudioOut::default())
                    .map_err(|e| {
                        JackError(format!("cannot create the JACK audio port {name}: {e}"))
                    })
            };
            Some([register("out_left")?, register("out_right")?])
        };
        let port_names: Vec<String> = audio_ports
            .iter()
            .flatten()
            .filter_map(|p| p.name().ok())
            .collect();
        let (ports, side) = registry();
        let stopping = Arc::new(AtomicBool::new(false));
        let stopped = Arc::new(AtomicBool::new(false));
        let process = JackProcess {
            core,
            side,
            stopping: stopping.clone(),
            stopped: stopped.clone(),
            final_cycle_ran: false,
            audio: audio_ports,
        };
        let active = client
            .activate_async((), process)
            .map_err(|e| JackError(format!("cannot activate the JACK client: {e}")))?;
        if audio.connect && !port_names.is_empty() {
            connect_playback(active.as_client(), &port_names);
        }
        Ok((
            JackBackend {
                inner: Mutex::new(Inner {
                    client: Some(active),
                    ports,
                    stopping,
                    stopped,
                }),
                sample_rate,
                buffer_size,
            },
            handle,
        ))
    }

    /// JACK's sample rate.
    pub fn sample_rate(&self) -> u32 {
        self.sample_rate
    }

    /// JACK's period in frames.
    pub fn buffer_size(&self) -> u32 {
        self.buffer_size
    }

    /// Stops the client after the realm has frozen every imp: one last
    /// process cycle ends whatever the engine's and the ports' ledgers still
    /// hold and writes those note-offs out of the ports; then the client is
    /// deactivated. Waits for that cycle at most 500 ms (a server that no
    /// longer runs cycles cannot carry them anyway).
    pub fn stop(&self) {
        let mut inner = self.inner.lock().expect("jack backend");
        let Some(active) = inner.client.take() else {
            return;
        };
        inner.stopping.store(true, Ordering::Release);
        let deadline = Instant::now() + Duration::from_millis(500);
        while !inner.stopped.load(Ordering::Acquire) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(1));
        }
        if !inner.stopped.load(Ordering::Acquire) {
            tracing::warn!(
                "the JACK server ran no cycle in 500 ms: the last note-offs could not be sent"
            );
        }
        if let Err(e) = active.deactivate() {
            tracing::warn!("deactivating the JACK client: {e}");
        }
    }
}

impl Inner {
    /// Unregisters the ports the engine thread let go of.
    fn unregister_retired(&mut self) {
        let client = self.client.as_ref().map(|a| a.as_client());
        self.ports.drain_retired(|port, _| {
            if let Some(client) = client {
                let _ = match port {
                    JackPort::In(p) => client.unregister_port(p),
                    JackPort::Out(p) => client.unregister_port(p),
                };
            }
        });
    }
}

impl PortService for JackBackend {
    fn open(&self, slot: usize, _imp: &str, spec: &PortSpec) -> Result<u64, PortError> {
        let mut inner = self.inner.lock().expect("jack backend");
        inner.unregister_retired();
        let Some(active) = &inner.client else {
            return Err(PortError::Invalid("the JACK client is stopped".into()));
        };
        let client = active.as_client();
        let own = format!("{}:", client.name());
        let peer = match &spec.connect {
            None => None,
            Some(pattern) => {
                let flags = match spec.direction {
                    Direction::In => PortFlags::IS_OUTPUT,
                    Direction::Out => PortFlags::IS_INPUT,
                };
                let wanted = pattern.to_lowercase();
                let found = client
                    .ports(None, Some("midi"), flags)
                    .into_iter()
                    .find(|n| !n.starts_with(&own) && n.to_lowercase().contains(&wanted));
                match found {
                    Some(n) => Some(n),
                    None => {
                        return Err(PortError::NotReady(format!(
                            "no JACK MIDI port matches `{pattern}`"
                        )))
                    }
                }
            }
        };
        // A port of the same name may still be on its way back from the
        // engine thread (a respawn closes and reopens it): wait a few periods.
        let deadline = Instant::now() + Duration::from_millis(500);
        let port = loop {
            let client = inner.client.as_ref().expect("checked").as_client();
            let registered = match spec.direction {
                Direction::In => client
                    .register_port(&spec.name, MidiIn::default())
                    .map(JackPort::In),
                Direction::Out => client
                    .register_port(&spec.name, MidiOut::default())
                    .map(JackPort::Out),
            };
            match registered {
                Ok(p) => break p,
                Err(e) if Instant::now() >= deadline => {
                    return Err(PortError::Invalid(format!(
                        "cannot create JACK port `{}` ({e}); is the name used twice in realm.toml?",
                        spec.name
                    )))
                }
                Err(_) => {
                    drop(inner);
                    std::thread::sleep(Duration::from_millis(2));
                    inner = self.inner.lock().expect("jack backend");
                    inner.unregister_retired();
                    return_if_stopped(&inner)?;
                }
            }
        };
        let client = inner.client.as_ref().expect("checked").as_client();
        let full_name = match &port {
            JackPort::In(p) => p.name(),
            JackPort::Out(p) => p.name(),
        }
        .unwrap_or_else(|_| format!("{own}{}", spec.name));
        if let Some(peer) = &peer {
            let (from, to) = match spec.direction {
                Direction::In => (peer.as_str(), full_name.as_str()),
                Direction::Out => (full_name.as_str(), peer.as_str()),
            };
            if let Err(e) = client.connect_ports_by_name(from, to) {
                let _ = match port {
                    JackPort::In(p) => client.unregister_port(p),
                    JackPort::Out(p) => client.unregister_port(p),
                };
                return Err(PortError::NotReady(format!(
                    "cannot connect {from} to {to}: {e}"
                )));
            }
        }
        let open = OpenPort {
            full_name,
            connect: spec.connect.clone(),
        };
        inner.ports.add(slot, spec.direction, port, open)
    }

    fn close(&self, id: u64) {
        let mut inner = self.inner.lock().expect("jack backend");
        // The port stays registered until the engine wrote its last cycle
        // through it (the note-offs of the imp that closed it).
        inner.ports.remove(id);
        inner.unregister_retired();
    }

    fn alive(&self, id: u64) -> bool {
        let mut inner = self.inner.lock().expect("jack backend");
        inner.unregister_retired();
        let (Some(open), Some(active)) = (inner.ports.get(id), &inner.client) else {
            return false;
        };
        if open.connect.is_none() {
            return true;
        }
        // A port bound to a device is alive while it is connected to it.
        active
            .as_client()
            .port_by_name(&open.full_name)
            .and_then(|p| p.connected_count().ok())
            .is_some_and(|n| n > 0)
    }

    fn backend(&self) -> &'static str {
        "jack"
    }
}

fn return_if_stopped(inner: &Inner) -> Result<(), PortError> {
    if inner.client.is_none() {
        Err(PortError::Invalid("the JACK client is stopped".into()))
    } else {
        Ok(())
    }
}

/// Connects impresario's audio ports to the system's playback ports (the
/// first two physical audio inputs; a mono system gets both sides).
fn connect_playback(client: &Client, ours: &[String]) {
    let playback = client.ports(
        None,
        Some("32 bit float mono audio"),
        PortFlags::IS_INPUT | PortFlags::IS_PHYSICAL,
    );
    if playback.is_empty() {
        tracing::info!(
            "JACK has no playback ports; connect {} yourself (e.g. with qjackctl)",
            ours.join(" and ")
        );
        return;
    }
    for (i, port) in ours.iter().enumerate() {
        let target = &playback[i.min(playback.len() - 1)];
        match client.connect_ports_by_name(port, target) {
            Ok(()) => tracing::info!("audio: {port} -> {target}"),
            Err(e) => tracing::warn!("audio: cannot connect {port} to {target}: {e}"),
        }
    }
}
