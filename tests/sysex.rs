//! SysEx end to end through a real JACK server (dummy driver): the test's
//! own JACK clients play SysEx (and notes) into an impresario input port (a
//! `midi_port` imp, direction in) wired to an output port (`midi_port`,
//! direction out) and record what leaves it, with exact bytes and frames.
//! The sender runs before impresario and the recorder after it in JACK's
//! graph, so what impresario passes on lands in the same cycle.

mod common;
use common::*;
use jack::contrib::ClosureProcessHandler;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

type Process = Box<dyn FnMut(&jack::Client, &jack::ProcessScope) -> jack::Control + Send>;
type Active = jack::AsyncClient<(), ClosureProcessHandler<(), Process>>;
/// Messages to play in one cycle: (frame offset, bytes).
type Batch = Vec<(u32, Vec<u8>)>;
/// Per cycle the sender played in: its absolute first frame, and whether
/// JACK took each write.
type Played = Arc<Mutex<Vec<(u32, Vec<bool>)>>>;
/// What the recorder received: (absolute frame, bytes).
type Recorded = Arc<Mutex<Batch>>;

/// A JACK server, the test's sender and recorder clients, and the daemon.
struct Rig {
    daemon: Daemon,
    /// The next batch for the sender to play (in one cycle).
    outbox: Arc<Mutex<Option<Batch>>>,
    /// The absolute frame of each cycle the sender played a batch in, and
    /// the results of its writes.
    played: Played,
    /// What the recorder received: (absolute frame, bytes).
    recorded: Recorded,
    _clients: (Active, Active),
    // Dropped last: the server outlives its clients.
    _jack: JackServer,
}

impl Rig {
    /// Starts everything; `settings` go into the `[realm]` table.
    fn start(settings: &str) -> Rig {
        // 2048-frame periods: slack on a loaded machine, and JACK MIDI
        // buffers big enough for several KiB of SysEx in one cycle.
        let jack = JackServer::start_with_period(2048);
        let outbox: Arc<Mutex<Option<Batch>>> = Arc::default();
        let played: Played = Arc::default();
        let recorded: Recorded = Arc::default();

        let client = jack_client(&jack, "sx-send");
        let mut out = client
            .register_port("out", jack::MidiOut::default())
            .unwrap();
        let (ob, pl) = (outbox.clone(), played.clone());
        let send: Process = Box::new(move |_, ps| {
            let mut writer = out.writer(ps);
            // A test thread only ever holds the lock for a moment.
            if let Some(batch) = ob.try_lock().ok().and_then(|mut b| b.take()) {
                let results = batch
                    .iter()
                    .map(|(time, bytes)| {
                        writer.write(&jack::RawMidi { time: *time, bytes }).is_ok()
                    })
                    .collect();
                pl.lock().unwrap().push((ps.last_frame_time(), results));
            }
            jack::Control::Continue
        });
        let sender = client
            .activate_async((), ClosureProcessHandler::new(send))
            .unwrap();

        let client = jack_client(&jack, "sx-rec");
        let input = client.register_port("in", jack::MidiIn::default()).unwrap();
        let rec = recorded.clone();
        let record: Process = Box::new(move |_, ps| {
            let start = ps.last_frame_time();
            for e in input.iter(ps) {
                rec.lock().unwrap().push((start + e.time, e.bytes.to_vec()));
            }
            jack::Control::Continue
        });
        let recorder = client
            .activate_async((), ClosureProcessHandler::new(record))
            .unwrap();

        let dir = Daemon::prepare(&["midi_port"]);
        let realm = format!(
            "[realm]\nlibrary_dir = \"libs\"\nmidi_backend = \"jack\"\n\
             jack_client_name = \"impresario\"\n{FAST}{settings}\n\n\
             [imps.sx_in]\nlibrary = \"midi_port\"\n\
             config = {{ direction = \"in\", connect = \"sx-send:out\" }}\n\n\
             [imps.sx_out]\nlibrary = \"midi_port\"\n\
             config = {{ direction = \"out\", connect = \"sx-rec:in\" }}\n\n\
             [[wires]]\nfrom = \"sx_in\"\nto = \"sx_out\"\n"
        );
        std::fs::write(dir.path().join("realm.toml"), realm).unwrap();
        let (k, v) = jack.env();
        let daemon = Daemon::start_in(dir, &[(k, v)]);
        daemon.wait_for("the port imps to thaw", |s| {
            ["sx_in", "sx_out"]
                .iter()
                .all(|n| imp_of(s, n)["state"] == "thawed")
        });
        let rig = Rig {
            daemon,
            outbox,
            played,
            recorded,
            _clients: (sender, recorder),
            _jack: jack,
        };
        // Both connections are made before the imps report thawed; a note
        // through the chain proves the path is live.
        rig.play(vec![(0, vec![0xB0, 120, 0])]);
        rig.wait_recorded(1);
        rig.recorded.lock().unwrap().clear();
        rig
    }

    /// Plays `batch` in one cycle; returns that cycle's absolute first frame.
    fn play(&self, batch: Batch) -> u32 {
        let before = self.played.lock().unwrap().len();
        *self.outbox.lock().unwrap() = Some(batch);
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Some((at, results)) = self.played.lock().unwrap().get(before) {
                assert!(
                    results.iter().all(|ok| *ok),
                    "JACK refused some of the test's events: {results:?}"
                );
                return *at;
            }
            assert!(Instant::now() < deadline, "the sender never played");
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    /// Waits for `n` recorded messages and returns them.
    fn wait_recorded(&self, n: usize) -> Vec<(u32, Vec<u8>)> {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let seen = self.recorded.lock().unwrap().clone();
            if seen.len() >= n {
                return seen;
            }
            assert!(
                Instant::now() < deadline,
                "recorded {} of {n} messages: {:02x?}\nlog:\n{}",
                seen.len(),
                seen.iter().map(|(t, b)| (t, b.len())).collect::<Vec<_>>(),
                self.daemon.log_text()
            );
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    fn sysex_dropped(&self) -> u64 {
        let s = self.daemon.status();
        s["engine"]["sysex_dropped"]
            .as_u64()
            .unwrap_or_else(|| panic!("no sysex_dropped in status: {s}"))
    }
}

/// F0, `len - 2` data bytes counting 0..=0x7F (and again), F7.
fn sysex(len: usize) -> Vec<u8> {
    let mut m = vec![0xF0];
    m.extend((0..len - 2).map(|i| (i % 128) as u8));
    m.push(0xF7);
    m
}

#[test]
fn a_1_kib_sysex_crosses_two_port_imps_byte_exact_at_its_frame() {
    let mut rig = Rig::start("");
    let message = sysex(1024);
    assert_eq!(message.len(), 1024);
    let cycle = rig.play(vec![(437, message.clone())]);
    let seen = rig.wait_recorded(1);
    std::thread::sleep(Duration::from_millis(200));
    let seen_now = rig.recorded.lock().unwrap().clone();
    assert_eq!(seen_now.len(), 1, "one message, once: {seen:02x?}");
    let (at, bytes) = &seen[0];
    assert_eq!(bytes, &message, "the SysEx changed on the way");
    // The JACK backend adds no latency: same cycle, same frame.
    assert_eq!(*at, cycle + 437, "sent in the cycle at {cycle}, frame 437");
    assert_eq!(rig.sysex_dropped(), 0);
    assert!(rig.daemon.stop().success());
}

#[test]
fn sysex_and_notes_in_one_cycle_keep_their_order_and_frames() {
    let mut rig = Rig::start("");
    let batch: Batch = vec![
        (0, vec![0x90, 60, 100]),
        (0, sysex(300)),
        (10, sysex(6)),
        (10, vec![0xB0, 1, 64]),
        (10, sysex(1024)),
        (700, vec![0x80, 60, 0]),
        (700, sysex(2)),
        (2047, sysex(128)),
    ];
    let cycle = rig.play(batch.clone());
    let seen = rig.wait_recorded(batch.len());
    let want: Vec<(u32, Vec<u8>)> = batch.into_iter().map(|(f, b)| (cycle + f, b)).collect();
    assert_eq!(seen.len(), want.len());
    for (i, (got, want)) in seen.iter().zip(&want).enumerate() {
        assert_eq!(got.0, want.0, "message {i}: frame");
        assert_eq!(got.1, want.1, "message {i}: bytes");
    }
    assert_eq!(rig.sysex_dropped(), 0);
    assert!(rig.daemon.stop().success());
}

#[test]
fn a_sysex_larger_than_the_arena_is_dropped_whole_and_counted() {
    let mut rig = Rig::start("sysex_arena_bytes = 4096\n");
    let too_big = sysex(5000);
    let fits = sysex(1000);
    let cycle = rig.play(vec![(5, too_big), (9, fits.clone())]);
    // The one that fits arrives; the other never does, not even in part.
    let seen = rig.wait_recorded(1);
    std::thread::sleep(Duration::from_millis(300));
    let seen_now = rig.recorded.lock().unwrap().clone();
    assert_eq!(seen_now, vec![(cycle + 9, fits)], "{seen:02x?}");
    assert_eq!(rig.sysex_dropped(), 1);
    assert!(rig.daemon.stop().success());
}

#[test]
fn a_sysex_reply_reaches_the_imp_that_owns_the_input_port() {
    // On the loopback backend: what leaves the output port `cable` arrives
    // at the input port connected to it, whose imp's RT part gets it as
    // input and passes it on to the monitor.
    let dir = Daemon::prepare(&["midi_port", "monitor"]);
    let realm = realm_text(
        "[imps.request]\nlibrary = \"midi_port\"\nconfig = { direction = \"out\", name = \"cable\" }\n\
         [imps.reply]\nlibrary = \"midi_port\"\nconfig = { direction = \"in\", connect = \"cable\" }\n\
         [imps.watch]\nlibrary = \"monitor\"\n\
         [[wires]]\nfrom = \"reply\"\nto = \"watch\"\n",
    )
    .replace("[realm]\n", "[realm]\nmidi_backend = \"loopback\"\n");
    std::fs::write(dir.path().join("realm.toml"), realm).unwrap();
    let mut d = Daemon::start_in(dir, &[]);
    d.wait_for("the ports", |s| {
        ["request", "reply", "watch"]
            .iter()
            .all(|n| imp_of(s, n)["state"] == "thawed")
    });
    let message = sysex(1024);
    let hex: Vec<String> = message.iter().map(|b| format!("{b:02x}")).collect();
    let hex: Vec<&str> = hex.iter().map(String::as_str).collect();
    d.send("request", &hex);
    let s = d.wait_for("the SysEx to come round", |s| {
        imp_of(s, "watch")["status"]["total"] == 1
    });
    assert_eq!(
        imp_of(&s, "watch")["status"]["last_event"],
        "sysex 1024 bytes"
    );
    assert_eq!(s["engine"]["sysex_dropped"], 0);
    assert!(d.stop().success());
}

#[test]
fn a_sysex_split_over_two_jack_events_leaves_whole_at_the_frame_that_completed_it() {
    let mut rig = Rig::start("");
    let message = sysex(600);
    let (head, tail) = message.split_at(250);
    let cycle = rig.play(vec![
        (10, head.to_vec()),
        (15, vec![0xF6]),
        (20, tail.to_vec()),
    ]);
    let seen = rig.wait_recorded(1);
    std::thread::sleep(Duration::from_millis(200));
    // A status byte between the pieces (a tune request) ends the SysEx
    // (MIDI 1.0): the head is dropped and counted, the tail's bytes are
    // stray (no running status after a system common message).
    assert_eq!(seen, vec![(cycle + 15, vec![0xF6])]);
    assert_eq!(*rig.recorded.lock().unwrap(), seen);
    assert_eq!(rig.sysex_dropped(), 1);
    // Pieces with nothing but real-time bytes between them are one SysEx,
    // at the frame of the piece that completes it; the clock tick passes.
    let cycle = rig.play(vec![
        (10, head.to_vec()),
        (15, vec![0xF8]),
        (20, tail.to_vec()),
    ]);
    let seen = rig.wait_recorded(3);
    assert_eq!(
        seen[1..],
        [(cycle + 15, vec![0xF8]), (cycle + 20, message)],
        "{seen:02x?}"
    );
    assert_eq!(rig.sysex_dropped(), 1);
    assert!(rig.daemon.stop().success());
}
