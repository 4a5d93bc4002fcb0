//! System MIDI ports through `midir` (ALSA sequencer on Linux).
//!
//! - [`list_ports`]: the inputs and outputs that exist now.
//! - [`MidiInput`]: a connection to an input port found by name pattern, or a
//!   virtual input port. Its callback runs on midir's input thread and gets
//!   every message with its arrival [`Instant`] (monotonic clock, read when
//!   midir hands the bytes over), after the bytes went through [`Decoder`].
//! - [`MidiOutput`] + [`OutputSender`]: a connection to an output port (by
//!   pattern, or virtual) driven by a sender thread. The engine pushes
//!   `(due, message)` into a bounded lock-free ring with
//!   [`OutputSender::try_send`] (never blocks, never allocates); the sender
//!   thread sends each message when it is due. [`spawn_sender`] gives the
//!   same thread over any byte sink (tests, loopback backends).
//!
//! Both connections can tell whether their port still exists
//! ([`MidiInput::is_connected`], [`MidiOutput::is_connected`]), so the realm
//! can freeze an imp when its device is unplugged and open the port again
//! when it comes back.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::error::MidiError;
use crate::message::ShortMessage;
use crate::parser::{Decoded, Decoder};

/// Direction of a port, seen from impresario (`In`: we receive from it, a
/// controller's output; `Out`: we send to it): the one `Direction` of the
/// imp boundary.
pub use imp::ports::Direction;

/// How a direction reads in messages.
fn direction_word(d: Direction) -> &'static str {
    match d {
        Direction::In => "input",
        Direction::Out => "output",
    }
}

/// A port as listed by [`list_ports`].
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct PortInfo {
    /// Human-readable name as midir reports it (ALSA: "client:port name  client:port").
    pub name: String,
    /// midir's stable id for the port while it exists (ALSA: "client:port").
    pub id: String,
    /// Input or output.
    pub direction: Direction,
}

/// Checks that the ALSA sequencer device exists before asking alsa-lib (which
/// would print its own error to stderr).
fn check_sequencer() -> Result<(), MidiError> {
    #[cfg(target_os = "linux")]
    {
        let dev = std::path::Path::new("/dev/snd/seq");
        if !dev.exists() {
            return Err(MidiError::AlsaUnavailable {
                detail: if std::path::Path::new("/dev/snd").exists() {
                    "/dev/snd/seq missing".into()
                } else {
                    "/dev/snd/seq missing, no /dev/snd at all".into()
                },
            });
        }
    }
    Ok(())
}

fn new_input(client_name: &str) -> Result<midir::MidiInput, MidiError> {
    check_sequencer()?;
    let mut input = midir::MidiInput::new(client_name).map_err(|e| MidiError::AlsaUnavailable {
        detail: format!("cannot open the sequencer: {e}"),
    })?;
    input.ignore(midir::Ignore::None);
    Ok(input)
}

fn new_output(client_name: &str) -> Result<midir::MidiOutput, MidiError> {
    check_sequencer()?;
    midir::MidiOutput::new(client_name).map_err(|e| MidiError::AlsaUnavailable {
        detail: format!("cannot open the sequencer: {e}"),
    })
}

/// Lists the input and output ports that exist now (inputs first).
///
/// Ordinary threads: opens a short-lived sequencer client, allocates.
///
/// # Errors
/// [`MidiError::AlsaUnavailable`] when the sequencer cannot be opened.
pub fn list_ports() -> Result<Vec<PortInfo>, MidiError> {
    let input = new_input("impresario-list")?;
    let output = new_output("impresario-list")?;
    let mut out = Vec::new();
    for p in input.ports() {
        if let Ok(name) = input.port_name(&p) {
            out.push(PortInfo {
                name,
                id: p.id(),
                direction: Direction::In,
            });
        }
    }
    for p in output.ports() {
        if let Ok(name) = output.port_name(&p) {
            out.push(PortInfo {
                name,
                id: p.id(),
                direction: Direction::Out,
            });
        }
    }
    Ok(out)
}

/// True when `name` contains `pattern`, ignoring case (an empty pattern
/// matches everything). Any thread; allocates (lowercases both).
#[must_use]
pub fn name_matches(name: &str, pattern: &str) -> bool {
    name.to_lowercase().contains(&pattern.to_lowercase())
}

/// Picks the first port whose name matches `pattern` (see [`name_matches`]).
fn find<'a, P>(
    ports: &'a [(P, String)],
    pattern: &str,
    direction: Direction,
) -> Result<&'a (P, String), MidiError> {
    ports
        .iter()
        .find(|(_, name)| name_matches(name, pattern))
        .ok_or_else(|| MidiError::PortNotFound {
            direction: direction_word(direction),
            pattern: pattern.to_string(),
            available: ports.iter().map(|(_, n)| n.clone()).collect(),
        })
}

/// Which port a connection is bound to, to check that it still exists.
#[derive(Debug, Clone)]
struct Binding {
    name: String,
    /// `None` for a virtual port (it exists as long as the connection).
    id: Option<String>,
}

impl Binding {
    fn still_listed(&self, direction: Direction) -> bool {
        let Some(id) = &self.id else {
            return check_sequencer().is_ok();
        };
        match list_ports() {
            Ok(ports) => ports
                .iter()
                .any(|p| p.direction == direction && &p.id == id && p.name == self.name),
            Err(_) => false,
        }
    }
}

/// Turns the bytes midir hands over into [`Decoded`] messages with their
/// arrival time. Used by [`MidiInput`]; public so other byte sources (a
/// loopback, tests) get exactly the same treatment.
///
/// Runs on the input thread: allocates only for SysEx.
pub struct InputHandler<F> {
    decoder: Decoder,
    callback: F,
}

impl<F: FnMut(Instant, Decoded<'_>)> InputHandler<F> {
    /// Wraps `callback`. Any thread; does not allocate.
    pub const fn new(callback: F) -> Self {
        Self {
            decoder: Decoder::new(),
            callback,
        }
    }

    /// Handles one delivery of bytes that arrived at `arrival`: every message
    /// they complete is passed to the callback with that time. Input thread;
    /// allocates only for SysEx.
    pub fn handle(&mut self, arrival: Instant, bytes: &[u8]) {
        let cb = &mut self.callback;
        self.decoder.feed(bytes, |d| cb(arrival, d));
    }

    /// The decoder's counters (stray bytes, aborted SysEx…). Any thread;
    /// never allocates.
    pub const fn stats(&self) -> crate::ParserStats {
        self.decoder.stats()
    }
}

/// An open MIDI input (ALSA sequencer port through midir). Dropping it
/// closes the connection.
pub struct MidiInput {
    conn: midir::MidiInputConnection<()>,
    binding: Binding,
}

impl std::fmt::Debug for MidiInput {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MidiInput")
            .field("port", &self.binding.name)
            .field("virtual", &self.binding.id.is_none())
            .finish()
    }
}

impl MidiInput {
    /// Connects to the first input port whose name contains `pattern`
    /// (case-insensitive). `client_name` names our sequencer client.
    /// `callback` runs on midir's input thread for each message, with the
    /// [`Instant`] at which its bytes arrived; it should hand the message to
    /// the engine through a lock-free queue and return quickly.
    ///
    /// Ordinary threads; allocates.
    ///
    /// # Errors
    /// [`MidiError::AlsaUnavailable`], [`MidiError::PortNotFound`] (with the
    /// list of existing ports), [`MidiError::Connect`].
    pub fn open<F>(client_name: &str, pattern: &str, callback: F) -> Result<Self, MidiError>
    where
        F: FnMut(Instant, Decoded<'_>) + Send + 'static,
    {
        let input = new_input(client_name)?;
        let ports: Vec<(midir::MidiInputPort, String)> = input
            .ports()
            .into_iter()
            .filter_map(|p| input.port_name(&p).ok().map(|n| (p, n)))
            .collect();
        let (port, name) = find(&ports, pattern, Direction::In)?;
        let mut handler = InputHandler::new(callback);
        let conn = input
            .connect(
                port,
                "in",
                move |_, bytes, _| handler.handle(Instant::now(), bytes),
                (),
            )
            .map_err(|e| MidiError::Connect {
                direction: "input",
                port: name.clone(),
                reason: e.to_string(),
            })?;
        tracing::info!(port = %name, "MIDI input connected");
        Ok(Self {
            conn,
            binding: Binding {
                name: name.clone(),
                id: Some(port.id()),
            },
        })
    }

    /// Creates a virtual input port named `port_name` that other programs
    /// can connect to; `callback` as in [`MidiInput::open`].
    ///
    /// Ordinary threads; allocates.
    ///
    /// # Errors
    /// [`MidiError::AlsaUnavailable`], [`MidiError::Connect`];
    /// [`MidiError::VirtualUnsupported`] on Windows.
    pub fn open_virtual<F>(
        client_name: &str,
        port_name: &str,
        callback: F,
    ) -> Result<Self, MidiError>
    where
        F: FnMut(Instant, Decoded<'_>) + Send + 'static,
    {
        #[cfg(unix)]
        {
            use midir::os::unix::VirtualInput;
            let input = new_input(client_name)?;
            let mut handler = InputHandler::new(callback);
            let conn = input
                .create_virtual(
                    port_name,
                    move |_, bytes, _| handler.handle(Instant::now(), bytes),
                    (),
                )
                .map_err(|e| MidiError::Connect {
                    direction: "input",
                    port: port_name.to_string(),
                    reason: e.to_string(),
                })?;
            tracing::info!(port = %port_name, "virtual MIDI input created");
            Ok(Self {
                conn,
                binding: Binding {
                    name: port_name.to_string(),
                    id: None,
                },
            })
        }
        #[cfg(not(unix))]
        {
            let _ = (client_name, callback);
            Err(MidiError::VirtualUnsupported(port_name.to_string()))
        }
    }

    /// The name of the bound port (or of the virtual port).
    /// Any thread; never allocates.
    #[must_use]
    pub fn port_name(&self) -> &str {
        &self.binding.name
    }

    /// True while the bound port is still listed by the system (same id and
    /// name); always true for a virtual port while the sequencer exists.
    /// Ordinary threads (re-lists the ports; allocates).
    #[must_use]
    pub fn is_connected(&self) -> bool {
        self.binding.still_listed(Direction::In)
    }

    /// Closes the connection (same as dropping it). Ordinary threads.
    pub fn close(self) {
        let _ = self.conn.close();
    }
}

/// Tuning of the sender thread.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SenderOptions {
    /// Capacity of the lock-free ring between the engine and the sender
    /// thread, in messages.
    pub ring_capacity: usize,
    /// Most messages the sender thread holds waiting for their due time
    /// (preallocated). When it is full, the sender stops draining the ring,
    /// so `try_send` reports [`TrySendError::Full`].
    pub max_pending: usize,
    /// Longest sleep of the sender thread between looks at the ring. A
    /// message pushed with a due time closer than this may leave up to this
    /// much late; the engine's output latency should exceed it.
    pub poll_interval: Duration,
    /// Capacity in bytes of the second lock-free ring, which carries the
    /// bytes of timed SysEx ([`OutputSender::try_send_sysex`]): the most
    /// SysEx bytes queued and not yet picked up by the sender thread.
    pub sysex_ring_bytes: usize,
}

impl Default for SenderOptions {
    fn default() -> Self {
        Self {
            ring_capacity: 1024,
            max_pending: 4096,
            poll_interval: Duration::from_micros(500),
            sysex_ring_bytes: 64 * 1024,
        }
    }
}

/// What the ring between the engine and the sender thread carries: a short
/// message, or a SysEx whose `len` bytes wait in the byte ring (in order).
#[derive(Debug, Clone, Copy)]
enum Payload {
    Short(ShortMessage),
    Sysex(u32),
}

/// One entry of the ring.
#[derive(Debug, Clone, Copy)]
struct Timed {
    due: Instant,
    payload: Payload,
}

/// A message to send at a given time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TimedMessage {
    /// When to send it (monotonic clock). A time in the past means "now".
    pub due: Instant,
    /// What to send.
    pub message: ShortMessage,
}

/// Why [`OutputSender::try_send`] did not queue a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum TrySendError {
    /// The ring is full (the sender thread is behind or its pending buffer is
    /// full); the message is handed back.
    #[error("MIDI output ring is full")]
    Full(TimedMessage),
    /// The sender thread has stopped (its output was closed).
    #[error("MIDI output is closed")]
    Closed(TimedMessage),
    /// The bytes given to [`OutputSender::try_send_bytes`] are not one
    /// complete short message.
    #[error("not a short MIDI message: {0}")]
    Invalid(crate::error::MessageError),
    /// [`OutputSender::try_send_sysex`]: the rings have no room for this
    /// SysEx of `len` bytes now (it is not queued, not even in part).
    #[error("no room in the MIDI output rings for a SysEx of {len} bytes")]
    SysexFull {
        /// Length of the SysEx.
        len: usize,
    },
    /// [`OutputSender::try_send_sysex`]: the bytes are not one whole SysEx
    /// (`0xF0 … 0xF7`).
    #[error("not a whole SysEx message (0xF0 ... 0xF7)")]
    NotSysex,
    /// [`OutputSender::try_send_sysex`]: the sender thread has stopped.
    #[error("MIDI output is closed")]
    SysexClosed,
}

/// Counters of a sender thread.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SenderStats {
    /// Messages handed to the port.
    pub sent: u64,
    /// Messages the port refused.
    pub failed: u64,
    /// Messages sent more than the poll interval after their due time.
    pub late: u64,
}

#[derive(Debug, Default)]
struct SharedStats {
    sent: AtomicU64,
    failed: AtomicU64,
    late: AtomicU64,
}

/// The engine's end of an output: pushes timed messages into the ring.
/// `Send`, not `Sync`: one producer thread at a time.
#[derive(Debug)]
pub struct OutputSender {
    producer: rtrb::Producer<Timed>,
    /// Bytes of queued SysEx, in the order of their entries in `producer`.
    bytes: rtrb::Producer<u8>,
}

impl OutputSender {
    /// Queues `message` to be sent at `due`. Engine thread: wait-free, never
    /// blocks, never allocates.
    ///
    /// # Errors
    /// [`TrySendError::Full`] or [`TrySendError::Closed`], with the message.
    pub fn try_send(&mut self, due: Instant, message: ShortMessage) -> Result<(), TrySendError> {
        let ev = TimedMessage { due, message };
        if self.producer.is_abandoned() {
            return Err(TrySendError::Closed(ev));
        }
        self.producer
            .push(Timed {
                due,
                payload: Payload::Short(message),
            })
            .map_err(|_| TrySendError::Full(ev))
    }

    /// Queues a whole SysEx (`0xF0 … 0xF7`) to be sent at `due`, in order
    /// with the short messages: its bytes are copied into the byte ring
    /// reserved when the sender started ([`SenderOptions::sysex_ring_bytes`]),
    /// and the sender thread sends them as one message when due. Engine
    /// thread: wait-free, never blocks, never allocates.
    ///
    /// # Errors
    /// [`TrySendError::NotSysex`], [`TrySendError::SysexFull`] (nothing
    /// queued, not even in part), [`TrySendError::SysexClosed`].
    pub fn try_send_sysex(&mut self, due: Instant, bytes: &[u8]) -> Result<(), TrySendError> {
        let whole = bytes.len() >= 2 && bytes[0] == 0xF0 && bytes[bytes.len() - 1] == 0xF7;
        let Ok(len) = u32::try_from(bytes.len()) else {
            return Err(TrySendError::SysexFull { len: bytes.len() });
        };
        if !whole {
            return Err(TrySendError::NotSysex);
        }
        if self.producer.is_abandoned() {
            return Err(TrySendError::SysexClosed);
        }
        if self.producer.slots() == 0 {
            return Err(TrySendError::SysexFull { len: bytes.len() });
        }
        let Ok(mut chunk) = self.bytes.write_chunk(bytes.len()) else {
            return Err(TrySendError::SysexFull { len: bytes.len() });
        };
        let (a, b) = chunk.as_mut_slices();
        let split = a.len();
        a.copy_from_slice(&bytes[..split]);
        b.copy_from_slice(&bytes[split..]);
        chunk.commit_all();
        // One producer: the slot checked above is still free. The entry is
        // pushed after its bytes, so the sender finds them when it pops it.
        let _ = self.producer.push(Timed {
            due,
            payload: Payload::Sysex(len),
        });
        Ok(())
    }

    /// Like [`OutputSender::try_send`] for raw bytes (status byte first,
    /// exactly the data bytes its status needs; SysEx goes through
    /// [`SenderThread::send_raw_now`]). Engine thread: never blocks, never
    /// allocates.
    ///
    /// # Errors
    /// [`TrySendError::Invalid`] when `bytes` is not one complete short
    /// message; otherwise as [`OutputSender::try_send`].
    pub fn try_send_bytes(&mut self, due: Instant, bytes: &[u8]) -> Result<(), TrySendError> {
        let message = ShortMessage::from_bytes(bytes).map_err(TrySendError::Invalid)?;
        self.try_send(due, message)
    }

    /// Free slots in the ring now. Engine thread; never allocates.
    #[must_use]
    pub fn free_slots(&self) -> usize {
        self.producer.slots()
    }
}

/// A running sender thread (see [`spawn_sender`]). Dropping it stops the
/// thread after it sent everything still queued, at once, in due order (so
/// no note-off is lost on shutdown), and joins it.
#[derive(Debug)]
pub struct SenderThread {
    stop: Arc<AtomicBool>,
    stats: Arc<SharedStats>,
    sysex: Option<mpsc::Sender<Vec<u8>>>,
    handle: Option<JoinHandle<()>>,
}

impl SenderThread {
    /// What the thread did so far. Any thread; never allocates.
    #[must_use]
    pub fn stats(&self) -> SenderStats {
        SenderStats {
            sent: self.stats.sent.load(Ordering::Relaxed),
            failed: self.stats.failed.load(Ordering::Relaxed),
            late: self.stats.late.load(Ordering::Relaxed),
        }
    }

    /// Sends raw bytes (a SysEx, or anything not fitting a short message) as
    /// soon as the sender thread looks at them (within the poll interval),
    /// before the timed messages due at that moment. Ordinary threads;
    /// allocates. Returns false when the thread has stopped.
    pub fn send_raw_now(&self, bytes: Vec<u8>) -> bool {
        match &self.sysex {
            Some(tx) => tx.send(bytes).is_ok(),
            None => false,
        }
    }

    fn shutdown(&mut self) {
        self.stop.store(true, Ordering::Release);
        self.sysex = None;
        if let Some(h) = self.handle.take() {
            h.thread().unpark();
            if h.join().is_err() {
                tracing::error!("MIDI sender thread panicked");
            }
        }
    }
}

impl Drop for SenderThread {
    fn drop(&mut self) {
        self.shutdown();
    }
}

/// Starts a sender thread named `name` that calls `sink` with the bytes of
/// each message when it is due (`sink` returns `Err` with a reason when the
/// port refused it; it is counted and logged). Returns the thread handle
/// (keep it on an ordinary thread) and the ring's producer (give it to the
/// engine).
///
/// Ordinary threads; allocates the ring and the pending buffer here, and
/// never afterwards (except for [`SenderThread::send_raw_now`]).
///
/// # Errors
/// [`MidiError::Thread`] when the thread cannot be spawned.
pub fn spawn_sender<S>(
    name: &str,
    mut sink: S,
    options: SenderOptions,
) -> Result<(SenderThread, OutputSender), MidiError>
where
    S: FnMut(&[u8]) -> Result<(), String> + Send + 'static,
{
    let (producer, mut consumer) = rtrb::RingBuffer::<Timed>::new(options.ring_capacity.max(1));
    let (bytes_producer, mut bytes_consumer) =
        rtrb::RingBuffer::<u8>::new(options.sysex_ring_bytes.max(1));
    let stop = Arc::new(AtomicBool::new(false));
    let stats = Arc::new(SharedStats::default());
    let (sysex_tx, sysex_rx) = mpsc::channel::<Vec<u8>>();
    let thread_stop = Arc::clone(&stop);
    let thread_stats = Arc::clone(&stats);
    let max_pending = options.max_pending.max(1);
    let poll = options.poll_interval;
    let port = name.to_string();
    let handle = std::thread::Builder::new()
        .name(format!("midi-out {name}"))
        .spawn(move || {
            let mut pending: BinaryHeap<Reverse<PendingEntry>> =
                BinaryHeap::with_capacity(max_pending);
            let mut seq = 0u64;
            let mut flush_rounds = 0u32;
            let mut send = |bytes: &[u8], late: bool| {
                match sink(bytes) {
                    Ok(()) => thread_stats.sent.fetch_add(1, Ordering::Relaxed),
                    Err(reason) => {
                        tracing::warn!(port = %port, %reason, "MIDI send failed");
                        thread_stats.failed.fetch_add(1, Ordering::Relaxed)
                    }
                };
                if late {
                    thread_stats.late.fetch_add(1, Ordering::Relaxed);
                }
            };
            loop {
                let stopping = thread_stop.load(Ordering::Acquire);
                while pending.len() < max_pending {
                    let Ok(ev) = consumer.pop() else { break };
                    let message = match ev.payload {
                        Payload::Short(m) => {
                            let (bytes, len) = m.raw();
                            Pending::Short(bytes, len)
                        }
                        // Its bytes were committed before the entry was pushed.
                        Payload::Sysex(len) => match bytes_consumer.read_chunk(len as usize) {
                            Ok(chunk) => {
                                let (a, b) = chunk.as_slices();
                                let mut whole = Vec::with_capacity(len as usize);
                                whole.extend_from_slice(a);
                                whole.extend_from_slice(b);
                                chunk.commit_all();
                                Pending::Sysex(whole)
                            }
                            Err(_) => continue,
                        },
                    };
                    pending.push(Reverse((ev.due, seq, message)));
                    seq += 1;
                }
                while let Ok(raw) = sysex_rx.try_recv() {
                    send(&raw, false);
                }
                let now = Instant::now();
                while let Some(Reverse((due, ..))) = pending.peek() {
                    if *due > now && !stopping {
                        break;
                    }
                    let Some(Reverse((due, _, message))) = pending.pop() else {
                        break;
                    };
                    let late = !stopping && now.saturating_duration_since(due) > poll;
                    send(message.bytes(), late);
                }
                if stopping {
                    // Everything queued when the stop was asked is sent now;
                    // a producer that keeps pushing cannot hold the thread.
                    flush_rounds += 1;
                    if consumer.is_empty() || flush_rounds > 4 {
                        break;
                    }
                    continue;
                }
                let wait = match pending.peek() {
                    Some(Reverse((due, ..))) => due.saturating_duration_since(now).min(poll),
                    None => poll,
                };
                if pending.len() < max_pending && !consumer.is_empty() {
                    continue;
                }
                std::thread::park_timeout(wait);
            }
        })?;
    Ok((
        SenderThread {
            stop,
            stats,
            sysex: Some(sysex_tx),
            handle: Some(handle),
        },
        OutputSender {
            producer,
            bytes: bytes_producer,
        },
    ))
}

/// A message waiting in the sender thread: due time, sequence number (FIFO
/// order among equal due times), the message.
type PendingEntry = (Instant, u64, Pending);

/// The bytes of a waiting message.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
enum Pending {
    /// A short message: bytes and length.
    Short([u8; 3], u8),
    /// A whole SysEx (allocated on the sender thread).
    Sysex(Vec<u8>),
}

impl Pending {
    fn bytes(&self) -> &[u8] {
        match self {
            Pending::Short(b, len) => &b[..*len as usize],
            Pending::Sysex(b) => b,
        }
    }
}

/// An open MIDI output (ALSA sequencer port through midir) and its sender
/// thread. Dropping it sends what is still queued, stops the thread and
/// closes the port.
#[derive(Debug)]
pub struct MidiOutput {
    sender: SenderThread,
    binding: Binding,
}

fn connection_sink(
    mut conn: midir::MidiOutputConnection,
) -> impl FnMut(&[u8]) -> Result<(), String> + Send {
    move |bytes| conn.send(bytes).map_err(|e| e.to_string())
}

impl MidiOutput {
    /// Connects to the first output port whose name contains `pattern`
    /// (case-insensitive) and starts its sender thread. Returns the output
    /// (keep it on an ordinary thread) and the engine's [`OutputSender`].
    ///
    /// Ordinary threads; allocates.
    ///
    /// # Errors
    /// [`MidiError::AlsaUnavailable`], [`MidiError::PortNotFound`],
    /// [`MidiError::Connect`], [`MidiError::Thread`].
    pub fn open(
        client_name: &str,
        pattern: &str,
        options: SenderOptions,
    ) -> Result<(Self, OutputSender), MidiError> {
        let output = new_output(client_name)?;
        let ports: Vec<(midir::MidiOutputPort, String)> = output
            .ports()
            .into_iter()
            .filter_map(|p| output.port_name(&p).ok().map(|n| (p, n)))
            .collect();
        let (port, name) = find(&ports, pattern, Direction::Out)?;
        let conn = output
            .connect(port, "out")
            .map_err(|e| MidiError::Connect {
                direction: "output",
                port: name.clone(),
                reason: e.to_string(),
            })?;
        let (sender, tx) = spawn_sender(name, connection_sink(conn), options)?;
        tracing::info!(port = %name, "MIDI output connected");
        Ok((
            Self {
                sender,
                binding: Binding {
                    name: name.clone(),
                    id: Some(port.id()),
                },
            },
            tx,
        ))
    }

    /// Creates a virtual output port named `port_name` that other programs
    /// can connect to, and starts its sender thread.
    ///
    /// Ordinary threads; allocates.
    ///
    /// # Errors
    /// [`MidiError::AlsaUnavailable`], [`MidiError::Connect`],
    /// [`MidiError::Thread`]; [`MidiError::VirtualUnsupported`] on Windows.
    pub fn open_virtual(
        client_name: &str,
        port_name: &str,
        options: SenderOptions,
    ) -> Result<(Self, OutputSender), MidiError> {
        #[cfg(unix)]
        {
            use midir::os::unix::VirtualOutput;
            let output = new_output(client_name)?;
            let conn = output
                .create_virtual(port_name)
                .map_err(|e| MidiError::Connect {
                    direction: "output",
                    port: port_name.to_string(),
                    reason: e.to_string(),
                })?;
            let (sender, tx) = spawn_sender(port_name, connection_sink(conn), options)?;
            tracing::info!(port = %port_name, "virtual MIDI output created");
            Ok((
                Self {
                    sender,
                    binding: Binding {
                        name: port_name.to_string(),
                        id: None,
                    },
                },
                tx,
            ))
        }
        #[cfg(not(unix))]
        {
            let _ = (client_name, options);
            Err(MidiError::VirtualUnsupported(port_name.to_string()))
        }
    }

    /// The name of the bound port (or of the virtual port).
    /// Any thread; never allocates.
    #[must_use]
    pub fn port_name(&self) -> &str {
        &self.binding.name
    }

    /// True while the bound port is still listed by the system; see
    /// [`MidiInput::is_connected`]. Ordinary threads; allocates.
    #[must_use]
    pub fn is_connected(&self) -> bool {
        self.binding.still_listed(Direction::Out)
    }

    /// The sender thread (stats, raw sends). Any thread; never allocates.
    #[must_use]
    pub fn sender(&self) -> &SenderThread {
        &self.sender
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn name_patterns_are_case_insensitive_substrings() {
        assert!(name_matches(
            "MPK mini 3:MPK mini 3 MIDI 1 20:0",
            "mpk MINI"
        ));
        assert!(name_matches("Midi Through:Midi Through Port-0 14:0", ""));
        assert!(!name_matches("Midi Through", "apc"));
    }

    #[test]
    fn port_not_found_names_the_pattern_and_the_ports() {
        let ports = vec![
            ((), "Midi Through Port-0".to_string()),
            ((), "APC Key 25".to_string()),
        ];
        assert_eq!(find(&ports, "apc", Direction::In).unwrap().1, "APC Key 25");
        let err = find(&ports, "microfreak", Direction::Out).unwrap_err();
        let msg = err.to_string();
        assert!(matches!(err, MidiError::PortNotFound { .. }));
        assert!(
            msg.contains("output") && msg.contains("\"microfreak\""),
            "{msg}"
        );
        assert!(
            msg.contains("APC Key 25") && msg.contains("Midi Through Port-0"),
            "{msg}"
        );
    }
}
