//! The JACK backend: impresario is one JACK client. Its process callback
//! *is* the engine clock: each callback reads the input ports at their frame
//! offsets, runs one engine cycle of the callback's length, and writes what
//! the port-bound imps emitted at the same frame offsets. An event that
//! arrives at frame f of cycle k leaves at frame f of cycle k: the
//! pass-through adds no latency beyond the JACK period. SysEx too: a JACK
//! MIDI event of any length holding a whole SysEx goes into the engine's
//! arena at its frame (one split over several events is reassembled in the
//! port's reserved buffer, [`JACK_SYSEX_REASSEMBLY_BYTES`]), and a SysEx
//! the engine emits is written whole as one JACK event at its frame.
//!
//! **The server going away.** JACK's shutdown callback (a killed or
//! restarted server) sets a flag; a watcher thread then takes the engine
//! over to an internal block clock (same rate and period), forgets every
//! port (the port imps see their ports dead, report not-ready and are
//! frozen by the realm), closes the dead client, and tries to connect again
//! every 500 ms. When a server runs again it activates a new client that
//! drives the engine as before; the port imps thaw at their next retry,
//! reconnect their `connect` patterns, and impresario's own ports are
//! connected again to the ports they were connected to before.
//!
//! The engine core and the port table live in a [`PartsCell`]: whichever
//! clock runs a cycle takes them out and puts them back (one atomic swap
//! each: wait-free, allocation-free), so the JACK callback and the fallback
//! clock can never use them at the same time.

use crate::port_table::{registry, EngineSide, Registry};
use engine::{alloc_guard, EngineConfig, EngineCore, EngineHandle};
use imp::ports::{Direction, PortSpec};
use imp::RtEvent;
use jack::{
    AudioOut, Client, ClientOptions, Control, MidiIn, MidiOut, Port, PortFlags, ProcessHandler,
    ProcessScope, RawMidi,
};
use realm::ports::{PortError, PortService};
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicPtr, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How often the watcher tries to reach a server that went away.
const RECONNECT_EVERY: Duration = Duration::from_millis(500);

/// Longest SysEx a JACK input port reassembles from pieces (a SysEx split
/// over several JACK events, or cut by real-time bytes). A SysEx that
/// comes whole in one JACK event needs no reassembly and is limited only
/// by the engine's arena.
pub const JACK_SYSEX_REASSEMBLY_BYTES: usize = 64 * 1024;

/// A JACK port as the engine thread holds it.
pub enum JackPort {
    /// Impresario receives on it, through the MIDI 1.0 parser every backend
    /// uses (running status, real-time bytes inside other messages), and a
    /// SysEx assembler whose buffer is reserved when the port opens.
    In(Port<MidiIn>, midi::Parser, Box<midi::SysexAssembler>),
    /// Impresario sends on it.
    Out(Port<MidiOut>),
}

/// What a cycle needs: the engine core and the port table.
pub struct EngineParts {
    core: EngineCore,
    side: EngineSide<JackPort>,
    final_cycle_ran: bool,
}

/// The engine's parts, held by whichever clock runs the current cycle.
pub struct PartsCell(AtomicPtr<EngineParts>);

impl PartsCell {
    fn new(parts: EngineParts) -> PartsCell {
        PartsCell(AtomicPtr::new(Box::into_raw(Box::new(parts))))
    }

    /// Takes the parts (`None`: another clock has them). Wait-free, no allocation.
    fn take(&self) -> Option<Box<EngineParts>> {
        let p = self.0.swap(std::ptr::null_mut(), Ordering::AcqRel);
        // SAFETY: a non-null pointer came from `Box::into_raw` in `new` or
        // `put`, and the swap made this the only owner.
        (!p.is_null()).then(|| unsafe { Box::from_raw(p) })
    }

    /// Puts the parts back. Wait-free, no allocation.
    fn put(&self, parts: Box<EngineParts>) {
        let old = self.0.swap(Box::into_raw(parts), Ordering::AcqRel);
        debug_assert!(old.is_null(), "one owner at a time");
    }

    /// Takes the parts, waiting up to `limit` for the clock that has them.
    fn take_within(&self, limit: Duration) -> Option<Box<EngineParts>> {
        let deadline = Instant::now() + limit;
        loop {
            if let Some(parts) = self.take() {
                return Some(parts);
            }
            if Instant::now() >= deadline {
                return None;
            }
            std::thread::sleep(Duration::from_micros(200));
        }
    }
}

impl Drop for PartsCell {
    fn drop(&mut self) {
        drop(self.take());
    }
}

/// The process callback: runs the engine held in the cell.
pub struct JackProcess {
    cell: Arc<PartsCell>,
    stopping: Arc<AtomicBool>,
    stopped: Arc<AtomicBool>,
    /// impresario's own audio output ports (left, right) of this client,
    /// fed from the engine's bus; `None` with `audio_output = "none"`.
    audio: AudioPorts,
    /// Whether this process thread's scheduling was recorded for status.
    sched_noted: bool,
}

impl ProcessHandler for JackProcess {
    fn process(&mut self, _: &Client, ps: &ProcessScope) -> Control {
        if !self.sched_noted {
            // Once: JACK's thread, at the server's priority (or none).
            engine::realtime::note_current_thread();
            self.sched_noted = true;
        }
        // The fallback clock may hold the parts for a moment while a new
        // client takes over: this cycle is then silent.
        let Some(mut parts) = self.cell.take() else {
            return Control::Continue;
        };
        parts.process(ps, &self.stopping, &self.stopped);
        let silent = self.stopping.load(Ordering::Acquire);
        alloc_guard::rt_section(|| self.write_audio(ps, &parts, silent));
        self.cell.put(parts);
        Control::Continue
    }
}

impl JackProcess {
    /// Copies the engine's output bus into impresario's audio ports
    /// (silence when stopping, or for a period longer than the engine
    /// renders audio for).
    fn write_audio(&mut self, ps: &ProcessScope, parts: &EngineParts, silent: bool) {
        let Some(ports) = self.audio.as_mut() else {
            return;
        };
        let (left, right) = parts.core.audio_out();
        for (port, bus) in ports.iter_mut().zip([left, right]) {
            let out = port.as_mut_slice(ps);
            if silent || bus.len() != out.len() {
                out.fill(0.0);
            } else {
                out.copy_from_slice(bus);
            }
        }
    }
}

/// impresario's audio output ports (left, right).
type AudioPorts = Option<[Port<AudioOut>; 2]>;

/// Registers impresario's audio output ports on `client` (none with
/// `audio_output = "none"`); returns them and their full names.
fn audio_ports(
    client: &Client,
    audio: &crate::AudioSettings,
) -> Result<(AudioPorts, Vec<String>), JackError> {
    if audio.output == "none" {
        return Ok((None, Vec::new()));
    }
    let register = |name: &str| {
        client
            .register_port(name, AudioOut::default())
            .map_err(|e| JackError(format!("cannot create the JACK audio port {name}: {e}")))
    };
    let ports = [register("out_left")?, register("out_right")?];
    let names = ports.iter().filter_map(|p| p.name().ok()).collect();
    Ok((Some(ports), names))
}

impl EngineParts {
    /// One JACK cycle.
    fn process(&mut self, ps: &ProcessScope, stopping: &AtomicBool, stopped: &AtomicBool) {
        let frames = ps.n_frames();
        if stopping.load(Ordering::Acquire) {
            // The last cycles: the engine ends what its slots left sounding
            // and every output port what it left sounding; a second cycle
            // leaves the port buffers empty (JACK would repeat an unwritten
            // buffer); then the client can go (see `JackBackend::stop`).
            if !stopped.load(Ordering::Relaxed) {
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
                    self.side.table.iter_mut().next().is_none()
                });
                if done {
                    stopped.store(true, Ordering::Release);
                }
            }
            return;
        }
        alloc_guard::rt_section(|| {
            self.side.apply();
            for b in self.side.table.iter_mut() {
                if b.is_closing() {
                    continue;
                }
                let (slot, input) = (b.slot, b.input);
                if let JackPort::In(port, parser, sysex) = &mut b.port {
                    for raw in port.iter(ps) {
                        let core = &mut self.core;
                        parser.feed(raw.bytes, |event| match event {
                            midi::Event::Message(m) => {
                                let (bytes, len) = m.raw();
                                let mut e = RtEvent::midi(raw.time, &bytes[..len as usize]);
                                e.port = input;
                                core.push_input(slot, e);
                            }
                            // A whole SysEx in one piece (the usual JACK
                            // event): straight into the engine's arena.
                            midi::Event::Sysex(c) if c.start && c.end && !c.aborted => {
                                if sysex.is_open() {
                                    core.stats().note_sysex_dropped();
                                }
                                core.push_input_sysex_on(slot, input, raw.time, c.bytes);
                            }
                            // Pieces: reassembled in the port's reserved
                            // buffer; the message is at the frame of the
                            // event that completes it.
                            midi::Event::Sysex(c) => {
                                if c.start && sysex.is_open() {
                                    core.stats().note_sysex_dropped();
                                }
                                match sysex.push(c) {
                                    midi::SysexStatus::Pending => {}
                                    midi::SysexStatus::Complete(bytes) => {
                                        core.push_input_sysex_on(slot, input, raw.time, bytes);
                                    }
                                    midi::SysexStatus::Aborted
                                    | midi::SysexStatus::TooLong { .. } => {
                                        core.stats().note_sysex_dropped()
                                    }
                                }
                            }
                        });
                    }
                }
            }
        });
        self.core.cycle(frames);
        alloc_guard::rt_section(|| {
            self.write_outputs(ps, frames);
            self.side.retire_closing();
        });
    }

    /// One cycle of the fallback clock (no server: no port I/O).
    fn cycle_without_server(&mut self, frames: u32) {
        alloc_guard::rt_section(|| self.side.apply());
        self.core.cycle(frames);
        alloc_guard::rt_section(|| self.side.retire_closing());
    }

    /// Writes what the port-bound slots emitted in this cycle at their
    /// frames, through each port's ledger; a closing port then ends what it
    /// still has sounding, at the cycle's last frame.
    fn write_outputs(&mut self, ps: &ProcessScope, frames: u32) {
        let last = frames.saturating_sub(1);
        for b in self.side.table.iter_mut() {
            let slot = b.slot;
            let bound_to = b.output;
            let (JackPort::Out(port), mut gate) = b.output() else {
                continue;
            };
            let mut writer = port.writer(ps);
            let core = &self.core;
            // JACK takes events in time order only; the engine emits each
            // slot's events in frame order, and a late one is moved up to
            // the last written frame rather than lost.
            let mut at = 0u32;
            let mut write = |e: &RtEvent| {
                at = at.max(e.frame.min(last));
                // A SysEx leaves whole, as one JACK event.
                let bytes = match core.sysex_bytes(e) {
                    Some(long) => long,
                    None => e.midi_bytes(),
                };
                let ok = writer.write(&RawMidi { time: at, bytes }).is_ok();
                if !ok && e.is_sysex() {
                    // The port's buffer for this period is full.
                    core.stats().note_sysex_dropped();
                }
                ok
            };
            for t in core.emitted() {
                if t.slot == slot && bound_to.is_none_or(|o| t.event.port == o) {
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
    /// Impresario's name of the port (`PortSpec::name`).
    name: String,
    direction: Direction,
}

/// JACK's notifications: only the server going away matters here.
pub struct Notifications {
    gone: Arc<AtomicBool>,
}

impl jack::NotificationHandler for Notifications {
    unsafe fn shutdown(&mut self, _: jack::ClientStatus, _: &str) {
        // Async-signal-safe: a flag for the watcher thread.
        self.gone.store(true, Ordering::Release);
    }
}

type Active = jack::AsyncClient<Notifications, JackProcess>;

struct Inner {
    client: Option<Active>,
    ports: Registry<JackPort, OpenPort>,
    stopping: Arc<AtomicBool>,
    stopped: Arc<AtomicBool>,
    /// Runs the engine while there is no server.
    fallback: Option<Fallback>,
    /// Since when the server is gone (`None`: connected, or stopped).
    gone_since: Option<Instant>,
    /// What impresario's own ports were last seen connected to, by port
    /// name: restored when they open again after a server restart.
    remembered: BTreeMap<String, Vec<String>>,
    /// Connections still to restore (the peer was not back yet).
    to_restore: BTreeMap<String, Vec<String>>,
}

/// What the backend and its watcher thread share.
struct Shared {
    inner: Mutex<Inner>,
    cell: Arc<PartsCell>,
    gone: Arc<AtomicBool>,
    quit: AtomicBool,
    client_name: String,
    audio: crate::AudioSettings,
    sample_rate: u32,
    buffer_size: u32,
}

/// The JACK backend's control side; serves `imp::ports` requests.
pub struct JackBackend {
    shared: Arc<Shared>,
    watcher: Mutex<Option<std::thread::JoinHandle<()>>>,
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
        let (audio_ports, port_names) = audio_ports(&client, audio)?;
        let (ports, side) = registry();
        let stopping = Arc::new(AtomicBool::new(false));
        let stopped = Arc::new(AtomicBool::new(false));
        let cell = Arc::new(PartsCell::new(EngineParts {
            core,
            side,
            final_cycle_ran: false,
        }));
        let gone = Arc::new(AtomicBool::new(false));
        let process = JackProcess {
            cell: cell.clone(),
            stopping: stopping.clone(),
            stopped: stopped.clone(),
            audio: audio_ports,
            sched_noted: false,
        };
        let active = client
            .activate_async(Notifications { gone: gone.clone() }, process)
            .map_err(|e| JackError(format!("cannot activate the JACK client: {e}")))?;
        if audio.connect && !port_names.is_empty() {
            connect_playback(active.as_client(), &port_names);
        }
        let shared = Arc::new(Shared {
            inner: Mutex::new(Inner {
                client: Some(active),
                ports,
                stopping,
                stopped,
                fallback: None,
                gone_since: None,
                remembered: BTreeMap::new(),
                to_restore: BTreeMap::new(),
            }),
            cell,
            gone,
            quit: AtomicBool::new(false),
            client_name: client_name.to_string(),
            audio: audio.clone(),
            sample_rate,
            buffer_size,
        });
        let watched = shared.clone();
        let watcher = std::thread::Builder::new()
            .name("impresario-jack-watch".into())
            .spawn(move || watch(&watched))
            .map_err(|e| JackError(format!("cannot start the JACK watcher thread: {e}")))?;
        Ok((
            JackBackend {
                shared,
                watcher: Mutex::new(Some(watcher)),
                sample_rate,
                buffer_size,
            },
            handle,
        ))
    }

    /// True while the server is gone and the engine runs on the fallback clock.
    pub fn server_gone(&self) -> bool {
        self.shared.lock().gone_since.is_some()
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
        self.shared.quit.store(true, Ordering::Release);
        if let Some(w) = self.watcher.lock().expect("jack watcher").take() {
            w.thread().unpark();
            let _ = w.join();
        }
        let mut inner = self.shared.lock();
        inner.gone_since = None;
        if let Some(fallback) = inner.fallback.take() {
            drop(fallback);
            // No server: the ledgers are ended with nowhere to send them.
            if let Some(mut parts) = self.shared.cell.take_within(Duration::from_millis(100)) {
                parts.core.all_notes_off();
                self.shared.cell.put(parts);
            }
        }
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

impl Shared {
    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Runs the engine on a block clock while there is no server.
struct Fallback {
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Fallback {
    fn start(cell: Arc<PartsCell>, sample_rate: u32, frames: u32) -> std::io::Result<Fallback> {
        let stop = Arc::new(AtomicBool::new(false));
        let stopping = stop.clone();
        let block = Duration::from_secs_f64(frames as f64 / sample_rate as f64);
        let thread = std::thread::Builder::new()
            .name("impresario-engine".into())
            .spawn(move || {
                if let Err(e) = engine::promote_to_realtime(engine::realtime::ENGINE_PRIORITY) {
                    tracing::warn!(
                        "real-time priority refused ({e}) for the clock that runs while no JACK \
                         server is there. Fix: {}",
                        engine::realtime::LIMITS_FIX
                    );
                }
                let mut deadline = Instant::now();
                while !stopping.load(Ordering::Acquire) {
                    if let Some(mut parts) = cell.take() {
                        parts.cycle_without_server(frames);
                        cell.put(parts);
                    }
                    deadline += block;
                    let now = Instant::now();
                    if deadline > now {
                        std::thread::sleep(deadline - now);
                    } else if now - deadline > block * 4 {
                        deadline = now;
                    }
                }
            })?;
        Ok(Fallback {
            stop,
            thread: Some(thread),
        })
    }
}

impl Drop for Fallback {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Release);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// The watcher thread: notices the server going away, and a server coming back.
fn watch(shared: &Shared) {
    let mut last_try: Option<Instant> = None;
    while !shared.quit.load(Ordering::Acquire) {
        std::thread::park_timeout(Duration::from_millis(50));
        if shared.quit.load(Ordering::Acquire) {
            break;
        }
        let (connected, gone) = {
            let inner = shared.lock();
            (inner.client.is_some(), inner.gone_since.is_some())
        };
        if connected && shared.gone.load(Ordering::Acquire) {
            lose_server(shared);
        } else if gone && last_try.is_none_or(|t| t.elapsed() >= RECONNECT_EVERY) {
            last_try = Some(Instant::now());
            try_reconnect(shared);
        }
    }
}

/// The server went away: the fallback clock takes the engine over, the
/// ports are forgotten, the dead client is closed.
fn lose_server(shared: &Shared) {
    // The dead server's process thread no longer runs: the parts are free.
    let Some(mut parts) = shared.cell.take_within(Duration::from_secs(1)) else {
        tracing::warn!(
            "the JACK server went away but its last cycle still holds the engine; retrying"
        );
        return;
    };
    let mut inner = shared.lock();
    let dead = inner.client.take();
    let old_side = std::mem::replace(&mut parts.side, inner.ports.renew());
    shared.cell.put(parts);
    match Fallback::start(shared.cell.clone(), shared.sample_rate, shared.buffer_size) {
        Ok(f) => inner.fallback = Some(f),
        Err(e) => tracing::error!("cannot start the fallback clock: {e}; the engine stands still"),
    }
    inner.gone_since = Some(Instant::now());
    inner.to_restore.clear();
    drop(inner);
    // Dropping port objects calls nothing in JACK.
    drop(old_side);
    tracing::error!(
        "the JACK server went away: the MIDI port imps are frozen until it is back; the realm \
         carries on, on its internal clock ({} Hz, {} frames); trying to reconnect every {} ms",
        shared.sample_rate,
        shared.buffer_size,
        RECONNECT_EVERY.as_millis()
    );
    // Closing the dead client frees libjack's view of the old server.
    drop(dead);
}

/// Tries to connect to a server again; on success JACK drives the engine.
fn try_reconnect(shared: &Shared) {
    // libjack reports every failed attempt as an error: quiet while trying.
    jack::set_logger(jack::LoggerType::None);
    let attempt = Client::new(&shared.client_name, ClientOptions::NO_START_SERVER);
    jack::set_logger(jack::LoggerType::default());
    let Ok((client, _)) = attempt else {
        return;
    };
    if client.sample_rate() != shared.sample_rate {
        tracing::warn!(
            "the JACK server is back at {} Hz, the engine runs at {} Hz: timing is off until \
             impresario is restarted",
            client.sample_rate(),
            shared.sample_rate
        );
    }
    let mut inner = shared.lock();
    // The new client's callback takes over from the fallback clock.
    drop(inner.fallback.take());
    shared.gone.store(false, Ordering::Release);
    inner.stopped.store(false, Ordering::Release);
    let (audio, audio_names) = match audio_ports(&client, &shared.audio) {
        Ok(ports) => ports,
        Err(e) => {
            tracing::warn!("{e}; the sound stays inside until impresario is restarted");
            (None, Vec::new())
        }
    };
    let process = JackProcess {
        cell: shared.cell.clone(),
        stopping: inner.stopping.clone(),
        stopped: inner.stopped.clone(),
        audio,
        sched_noted: false,
    };
    let notifications = Notifications {
        gone: shared.gone.clone(),
    };
    match client.activate_async(notifications, process) {
        Ok(active) => {
            if shared.audio.connect && !audio_names.is_empty() {
                connect_playback(active.as_client(), &audio_names);
            }
            let name = active.as_client().name().to_string();
            inner.client = Some(active);
            let down = inner.gone_since.take().map(|t| t.elapsed());
            tracing::info!(
                "the JACK server is back (gone for {:.1} s): reconnected as `{name}`, JACK drives \
                 the engine again; the MIDI port imps reconnect at their next retry",
                down.unwrap_or_default().as_secs_f64()
            );
        }
        Err(e) => {
            tracing::warn!("the JACK server is back but the client cannot be activated: {e}");
            match Fallback::start(shared.cell.clone(), shared.sample_rate, shared.buffer_size) {
                Ok(f) => inner.fallback = Some(f),
                Err(e) => tracing::error!("cannot restart the fallback clock: {e}"),
            }
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
                    JackPort::In(p, ..) => client.unregister_port(p),
                    JackPort::Out(p) => client.unregister_port(p),
                };
            }
        });
    }
}

impl PortService for JackBackend {
    fn open(&self, slot: usize, _imp: &str, spec: &PortSpec) -> Result<u64, PortError> {
        let mut inner = self.shared.lock();
        if self.shared.gone.load(Ordering::Acquire) || inner.gone_since.is_some() {
            return Err(PortError::NotReady(
                "the JACK server is gone; the port opens again as soon as a server runs".into(),
            ));
        }
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
                    .map(|p| {
                        JackPort::In(
                            p,
                            midi::Parser::new(),
                            Box::new(midi::SysexAssembler::with_capacity(
                                JACK_SYSEX_REASSEMBLY_BYTES,
                            )),
                        )
                    }),
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
                    inner = self.shared.lock();
                    inner.unregister_retired();
                    return_if_stopped(&inner)?;
                }
            }
        };
        let client = inner.client.as_ref().expect("checked").as_client();
        let full_name = match &port {
            JackPort::In(p, ..) => p.name(),
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
                    JackPort::In(p, ..) => client.unregister_port(p),
                    JackPort::Out(p) => client.unregister_port(p),
                };
                return Err(PortError::NotReady(format!(
                    "cannot connect {from} to {to}: {e}"
                )));
            }
        }
        if peer.is_none() {
            // After a server restart: the connections others had made to it.
            let wanted = inner
                .remembered
                .get(&spec.name)
                .cloned()
                .unwrap_or_default();
            let missing = connect_all(client, spec.direction, &full_name, &wanted);
            if !missing.is_empty() {
                inner.to_restore.insert(spec.name.clone(), missing);
            }
        }
        let open = OpenPort {
            full_name,
            connect: spec.connect.clone(),
            name: spec.name.clone(),
            direction: spec.direction,
        };
        inner.ports.add(slot, spec, port, open)
    }

    fn close(&self, id: u64) {
        let mut inner = self.shared.lock();
        // The port stays registered until the engine wrote its last cycle
        // through it (the note-offs of the imp that closed it).
        inner.ports.remove(id);
        inner.unregister_retired();
    }

    fn alive(&self, id: u64) -> bool {
        if self.shared.gone.load(Ordering::Acquire) {
            return false;
        }
        let mut inner = self.shared.lock();
        inner.unregister_retired();
        let inner = &mut *inner;
        let (Some(open), Some(active)) = (inner.ports.get(id), &inner.client) else {
            return false;
        };
        if open.connect.is_none() {
            // Impresario's own port: keep what others connected it to, for
            // a server restart; restore what could not be restored yet.
            let client = active.as_client();
            if let Some(wanted) = inner.to_restore.get(&open.name) {
                let missing = connect_all(client, open.direction, &open.full_name, wanted);
                if missing.is_empty() {
                    inner.to_restore.remove(&open.name);
                } else {
                    inner.to_restore.insert(open.name.clone(), missing);
                }
            } else if let Some(port) = client.port_by_name(&open.full_name) {
                inner
                    .remembered
                    .insert(open.name.clone(), port.get_connections());
            }
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

/// Connects impresario's port `ours` to each of `peers` that exists (and
/// is not connected yet); returns those that do not exist (yet).
fn connect_all(client: &Client, direction: Direction, ours: &str, peers: &[String]) -> Vec<String> {
    let mut missing = Vec::new();
    for peer in peers {
        if client.port_by_name(peer).is_none() {
            missing.push(peer.clone());
            continue;
        }
        let (from, to) = match direction {
            Direction::In => (peer.as_str(), ours),
            Direction::Out => (ours, peer.as_str()),
        };
        match client.connect_ports_by_name(from, to) {
            Ok(()) => tracing::info!("restored the JACK connection {from} -> {to}"),
            Err(e) => tracing::debug!("cannot restore {from} -> {to}: {e}"),
        }
    }
    missing
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
