//! No stuck note on any path, end to end: the real daemon on a real JACK
//! server (dummy driver), with Debian's `jack_midi_dump` as the independent
//! observer at each output. Every note that went out must get exactly one
//! note-off on the port, channel and note it sounded on, and no note-off
//! may go out for a note that was not sounding.

mod common;
use common::*;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// A JACK server with `jack_midi_dump` observers, each writing to a file.
struct Stage {
    jack: JackServer,
    dumps: Vec<(String, usize, PathBuf)>,
    dir: tempfile::TempDir,
}

impl Stage {
    fn new(observers: &[&str]) -> Stage {
        // 1024-frame cycles (21 ms): on a loaded machine a client that
        // misses a short cycle's deadline loses that cycle's events, which
        // would look like a note-on or note-off impresario never sent.
        let mut jack = JackServer::start_with_period(1024);
        let dir = tempfile::tempdir().unwrap();
        let mut dumps = Vec::new();
        for name in observers {
            let path = dir.path().join(format!("{name}.txt"));
            let file = std::fs::File::create(&path).unwrap();
            let i = jack.spawn("jack_midi_dump", &["-a", name], Stdio::from(file));
            dumps.push((name.to_string(), i, path));
        }
        // The observers' ports exist before the daemon looks for them.
        let deadline = Instant::now() + Duration::from_secs(10);
        while !observers
            .iter()
            .all(|o| jack.ports().contains(&format!("{o}:input")))
        {
            assert!(Instant::now() < deadline, "observers did not come up");
            std::thread::sleep(Duration::from_millis(20));
        }
        Stage { jack, dumps, dir }
    }

    fn daemon(&self, libraries: &[&str], body: &str) -> Daemon {
        let dir = Daemon::prepare(libraries);
        let realm = format!(
            "[realm]\nlibrary_dir = \"libs\"\nmidi_backend = \"jack\"\njack_client_name = \"impresario\"\n{FAST}\n{body}"
        );
        std::fs::write(dir.path().join("realm.toml"), realm).unwrap();
        let (k, v) = self.jack.env();
        Daemon::start_in(dir, &[(k, v)])
    }

    /// Stops the observers and returns what each saw: name → events.
    fn observed(&mut self) -> BTreeMap<String, Vec<Vec<u8>>> {
        self.observed_with_times()
            .into_iter()
            .map(|(name, events)| (name, events.into_iter().map(|(_, e)| e).collect()))
            .collect()
    }

    /// Stops the observers and returns what each saw, with JACK frame times.
    fn observed_with_times(&mut self) -> BTreeMap<String, Vec<(u64, Vec<u8>)>> {
        // Let the last cycles reach the observers.
        std::thread::sleep(Duration::from_millis(300));
        let mut seen = BTreeMap::new();
        for (name, i, path) in &self.dumps {
            self.jack.stop_peer(*i);
            let text = std::fs::read_to_string(path).unwrap();
            seen.insert(name.clone(), parse_midi_dump(&text));
        }
        let _ = &self.dir;
        seen
    }
}

/// Per (channel, note): note-ons and note-offs seen; panics on an orphan
/// note-off (a note-off while the note was not sounding).
fn balance(events: &[Vec<u8>]) -> BTreeMap<(u8, u8), (u32, u32)> {
    let mut sounding: BTreeMap<(u8, u8), i64> = BTreeMap::new();
    let mut counts: BTreeMap<(u8, u8), (u32, u32)> = BTreeMap::new();
    for e in events {
        if e.len() != 3 {
            continue;
        }
        let key = (e[0] & 0x0F, e[1]);
        let kind = e[0] & 0xF0;
        if kind == 0x90 && e[2] > 0 {
            *sounding.entry(key).or_default() += 1;
            counts.entry(key).or_default().0 += 1;
        } else if kind == 0x80 || kind == 0x90 {
            let s = sounding.entry(key).or_default();
            assert!(*s > 0, "orphan note-off {e:02x?} in {events:02x?}");
            *s -= 1;
            counts.entry(key).or_default().1 += 1;
        }
    }
    counts
}

fn assert_balanced(name: &str, events: &[Vec<u8>], expect_notes: &[(u8, u8, u32)]) {
    let counts = balance(events);
    for &(ch, note, ons) in expect_notes {
        assert_eq!(
            counts.get(&(ch, note)),
            Some(&(ons, ons)),
            "{name}: channel {} note {note}: (note-ons, note-offs); saw {events:02x?}",
            ch + 1
        );
    }
    for (key, (on, off)) in &counts {
        assert_eq!(on, off, "{name}: {key:?} left sounding; saw {events:02x?}");
    }
}

fn out_port(name: &str, connect: &str) -> String {
    format!(
        "[imps.{name}]\nlibrary = \"midi_port\"\nconfig = {{ direction = \"out\", connect = \"{connect}:\" }}\n\n"
    )
}

fn wire(from: &str, output: u8, to: &str) -> String {
    format!("[[wires]]\nfrom = \"{from}\"\noutput = {output}\nto = \"{to}\"\n\n")
}

/// Waits until every imp named is thawed.
fn wait_thawed(d: &Daemon, names: &[&str]) {
    d.wait_for("the imps to thaw", |s| {
        names.iter().all(|n| imp_of(s, n)["state"] == "thawed")
    });
}

/// Lets a few engine cycles pass (an event sent with `send` is delivered
/// at the next cycle; the CLI returns once it is queued).
fn settle() {
    std::thread::sleep(Duration::from_millis(100));
}

#[test]
fn layered_zones_to_two_outputs_both_get_their_note_off() {
    let mut stage = Stage::new(&["one", "two"]);
    let body = format!(
        "[imps.bard]\nlibrary = \"bard\"\nconfig = {{ zones = [{{ output = 1 }}, {{ output = 2 }}] }}\n\n{}{}{}{}",
        out_port("out1", "one"),
        out_port("out2", "two"),
        wire("bard", 1, "out1"),
        wire("bard", 2, "out2"),
    );
    let mut d = stage.daemon(&["bard", "midi_port"], &body);
    wait_thawed(&d, &["bard", "out1", "out2"]);
    // Note-off as 0x80 ...
    d.send("bard", &["90", "3c", "64"]);
    settle();
    d.send("bard", &["80", "3c", "00"]);
    // ... and as a note-on with velocity 0.
    d.send("bard", &["90", "3e", "64"]);
    settle();
    d.send("bard", &["90", "3e", "00"]);
    settle();
    d.assert_no_engine_allocations();
    let seen = stage.observed();
    for name in ["one", "two"] {
        assert_balanced(name, &seen[name], &[(0, 60, 1), (0, 62, 1)]);
    }
    assert!(d.stop().success());
}

#[test]
fn an_imp_holding_notes_on_outputs_1_and_2_panics_and_both_get_note_offs() {
    let mut stage = Stage::new(&["one", "two"]);
    let body = format!(
        "[imps.layers]\nlibrary = \"chaos\"\nconfig = {{ outputs = [1, 2], panic_on_note = 127 }}\n\n{}{}{}{}",
        out_port("out1", "one"),
        out_port("out2", "two"),
        wire("layers", 1, "out1"),
        wire("layers", 2, "out2"),
    );
    let d = stage.daemon(&["chaos", "midi_port"], &body);
    wait_thawed(&d, &["layers", "out1", "out2"]);
    d.send("layers", &["90", "3c", "64"]);
    d.send("layers", &["92", "40", "64"]);
    settle();
    d.send("layers", &["90", "7f", "64"]);
    d.wait_for("the imp to fail", |s| {
        imp_of(s, "layers")["state"] == "failed"
    });
    settle();
    let seen = stage.observed();
    for name in ["one", "two"] {
        assert_balanced(name, &seen[name], &[(0, 60, 1), (2, 64, 1)]);
    }
}

/// How a test stops the daemon.
#[derive(Clone, Copy, Debug)]
enum StopBy {
    Sigint,
    Sigterm,
    StopCommand,
}

fn held_note_ends_when_the_daemon_stops(how: StopBy) {
    let mut stage = Stage::new(&["synth"]);
    let body = format!(
        "[imps.bard]\nlibrary = \"bard\"\nconfig = {{}}\n\n{}{}",
        out_port("out", "synth"),
        wire("bard", 0, "out"),
    );
    let mut d = stage.daemon(&["bard", "midi_port"], &body);
    wait_thawed(&d, &["bard", "out"]);
    d.send("bard", &["90", "3c", "64"]);
    d.send("bard", &["b0", "40", "7f"]);
    settle();
    d.assert_no_engine_allocations();
    let mut child = d.child.take().unwrap();
    match how {
        StopBy::Sigint => unsafe {
            // SAFETY: signalling our own child process.
            libc::kill(child.id() as i32, libc::SIGINT);
        },
        StopBy::Sigterm => unsafe {
            // SAFETY: signalling our own child process.
            libc::kill(child.id() as i32, libc::SIGTERM);
        },
        StopBy::StopCommand => {
            let out = d.cli(&["stop"]);
            assert!(out.status.success(), "{out:?}");
        }
    }
    assert!(child.wait().unwrap().success());
    let seen = stage.observed();
    assert_balanced("synth", &seen["synth"], &[(0, 60, 1)]);
    assert!(
        seen["synth"].contains(&vec![0xB0, 64, 0]),
        "{how:?}: the sustain pedal is lifted too: {:02x?}",
        seen["synth"]
    );
}

#[test]
fn held_note_ends_when_the_daemon_stops_on_sigint() {
    held_note_ends_when_the_daemon_stops(StopBy::Sigint);
}

#[test]
fn held_note_ends_when_the_daemon_stops_on_sigterm() {
    held_note_ends_when_the_daemon_stops(StopBy::Sigterm);
}

#[test]
fn held_note_ends_when_the_daemon_stops_on_impresario_stop() {
    held_note_ends_when_the_daemon_stops(StopBy::StopCommand);
}

/// What happens to the output port imp while a note sounds through it.
#[derive(Clone, Copy, Debug)]
enum PortChange {
    Removed,
    Reconfigured,
    Rebuilt,
}

fn held_note_through_a_port_that_changes(change: PortChange) {
    let mut stage = Stage::new(&["synth"]);
    let port = |name: &str| {
        format!(
            "[imps.out]\nlibrary = \"midi_port\"\nconfig = {{ direction = \"out\", name = \"{name}\", connect = \"synth:\" }}\n\n"
        )
    };
    let body = format!(
        "[imps.keys]\nlibrary = \"monitor\"\nconfig = {{ log = false }}\n\n{}{}",
        port("to-synth"),
        wire("keys", 0, "out"),
    );
    let d = stage.daemon(&["monitor", "midi_port"], &body);
    wait_thawed(&d, &["keys", "out"]);
    d.send("keys", &["90", "3c", "64"]);
    settle();
    // A stream of short notes keeps running through the port around the change.
    let stream = {
        let realm = d.realm();
        let binary = binary();
        std::thread::spawn(move || {
            for i in 0..40u8 {
                let note = format!("{:02x}", 70 + i % 20);
                for bytes in [["90", &note, "50"], ["80", &note, "00"]] {
                    let out = Command::new(&binary)
                        .args(["send", "keys", bytes[0], bytes[1], bytes[2], "--realm"])
                        .arg(&realm)
                        .output()
                        .unwrap();
                    assert!(out.status.success(), "{out:?}");
                }
                std::thread::sleep(Duration::from_millis(10));
            }
        })
    };
    std::thread::sleep(Duration::from_millis(150));
    let text = std::fs::read_to_string(d.realm()).unwrap();
    match change {
        PortChange::Removed => {
            let without = text
                .replace(&port("to-synth"), "")
                .replace(&wire("keys", 0, "out"), "");
            std::fs::write(d.realm(), without).unwrap();
            d.wait_for("the port imp to go", |s| {
                s["imps"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .all(|i| i["name"] != "out")
            });
        }
        PortChange::Reconfigured => {
            std::fs::write(d.realm(), text.replace("to-synth", "to-synth-2")).unwrap();
            d.wait_for("the new config to apply", |_| {
                jack_ports(&stage.jack).contains("impresario:to-synth-2")
            });
        }
        PortChange::Rebuilt => {
            // A new build (another build id, same code) lands in one
            // rename, as cargo does.
            let staged = d.path("libs/libmidi_port.so.new");
            std::fs::write(&staged, another_build_of("midi_port", 1)).unwrap();
            std::fs::rename(&staged, d.path("libs/libmidi_port.so")).unwrap();
            d.wait_for("the respawn", |s| imp_of(s, "out")["reload_count"] == 1);
        }
    }
    stream.join().unwrap();
    settle();
    // The held key is released after the change.
    d.send("keys", &["80", "3c", "00"]);
    settle();
    d.assert_no_engine_allocations();
    let seen = stage.observed();
    let events = &seen["synth"];
    assert_balanced("synth", events, &[(0, 60, 1)]);
    let stream_ons = events
        .iter()
        .filter(|e| e[0] == 0x90 && e[2] > 0 && e[1] >= 70)
        .count();
    match change {
        // Whatever of the stream left before the removal is balanced (checked above).
        PortChange::Removed => {}
        // The port stays open across the swap: nothing of the stream is lost.
        PortChange::Rebuilt => assert_eq!(stream_ons, 40, "{events:02x?}"),
        // A new port: everything reaches the synth, once through the old
        // port or the new one (both are connected to it).
        PortChange::Reconfigured => assert!(stream_ons >= 40, "{events:02x?}"),
    }
    if let PortChange::Rebuilt = change {
        // The held note kept sounding through the respawn: its note-off is
        // the one the key release sent, after the whole stream.
        let off = events
            .iter()
            .position(|e| e[0] == 0x80 && e[1] == 60)
            .unwrap();
        let last_stream = events.iter().rposition(|e| e[1] >= 70).unwrap();
        assert!(off > last_stream, "{events:02x?}");
    }
}

fn jack_ports(jack: &JackServer) -> String {
    jack.ports()
}

#[test]
fn held_note_then_the_output_port_imp_is_removed() {
    held_note_through_a_port_that_changes(PortChange::Removed);
}

#[test]
fn held_note_then_the_output_port_imp_is_reconfigured() {
    held_note_through_a_port_that_changes(PortChange::Reconfigured);
}

#[test]
fn held_note_then_the_output_port_library_is_rebuilt() {
    held_note_through_a_port_that_changes(PortChange::Rebuilt);
}

/// How the attempt to replace the running chaos instance fails (in `thaw`).
#[derive(Clone, Copy, Debug)]
enum BadSuccessor {
    /// A new build whose `thaw` panics.
    BuildPanics,
    /// A new build whose `thaw` returns an error.
    BuildErrs,
    /// A realm.toml edit whose new instance panics in `thaw`.
    ConfigPanics,
}

fn failed_successor_keeps_the_old_one_playing(bad: BadSuccessor) {
    let mut stage = Stage::new(&["synth"]);
    let body = format!(
        "[imps.trouble]\nlibrary = \"chaos\"\nconfig = {{}}\n\n{}{}",
        out_port("out", "synth"),
        wire("trouble", 0, "out"),
    );
    let d = stage.daemon(&["chaos", "midi_port"], &body);
    wait_thawed(&d, &["trouble", "out"]);
    let build = d.imp("trouble")["build_id"].clone();
    d.send("trouble", &["90", "3c", "64"]);
    settle();
    match bad {
        BadSuccessor::BuildPanics => install_chaos_build(&d, ("CHAOS_BUILD_PANIC_IN", "thaw")),
        BadSuccessor::BuildErrs => install_chaos_build(&d, ("CHAOS_BUILD_THAW_ERROR", "1")),
        BadSuccessor::ConfigPanics => {
            let text = std::fs::read_to_string(d.realm()).unwrap();
            let edited = text.replace(
                "library = \"chaos\"\nconfig = {}",
                "library = \"chaos\"\nconfig = { panic_in = \"thaw\" }",
            );
            assert_ne!(text, edited);
            std::fs::write(d.realm(), edited).unwrap();
        }
    }
    let s = d.wait_for("the failed attempt to be reported", |s| {
        imp_of(s, "trouble")["last_error"]
            .as_str()
            .is_some_and(|e| e.contains("failed to thaw"))
    });
    let trouble = imp_of(&s, "trouble");
    assert_eq!(trouble["state"], "thawed", "{bad:?}: {trouble:#}");
    assert_eq!(trouble["build_id"], build, "{bad:?}: the old build runs");
    // A marker after the attempt, then the held key is released.
    d.send("trouble", &["90", "7e", "64"]);
    d.send("trouble", &["80", "7e", "00"]);
    settle();
    d.send("trouble", &["80", "3c", "00"]);
    settle();
    // Control messages reach the running RT part: it now transposes.
    let out = d.cli(&["control", "trouble", r#"{"transpose": 2}"#]);
    assert!(out.status.success(), "{out:?}");
    d.send("trouble", &["90", "40", "64"]);
    settle();
    d.send("trouble", &["80", "40", "00"]);
    settle();
    d.assert_no_engine_allocations();
    let seen = stage.observed();
    let events = &seen["synth"];
    assert_balanced("synth", events, &[(0, 60, 1), (0, 126, 1), (0, 66, 1)]);
    let marker = events.iter().position(|e| e[1] == 0x7e).unwrap();
    let off = events
        .iter()
        .position(|e| e[1] == 0x3c && e[0] & 0xF0 == 0x80)
        .unwrap();
    assert!(
        off > marker,
        "{bad:?}: the held note sounded on through the failed attempt and ended on key release: {events:02x?}"
    );
}

#[test]
fn a_new_build_that_panics_in_thaw_leaves_the_old_one_playing() {
    failed_successor_keeps_the_old_one_playing(BadSuccessor::BuildPanics);
}

#[test]
fn a_new_build_whose_thaw_fails_leaves_the_old_one_playing() {
    failed_successor_keeps_the_old_one_playing(BadSuccessor::BuildErrs);
}

#[test]
fn a_config_change_whose_new_instance_fails_leaves_the_old_one_playing() {
    failed_successor_keeps_the_old_one_playing(BadSuccessor::ConfigPanics);
}

#[test]
fn sustain_follows_a_two_zone_split_and_is_lifted_after_a_zone_change() {
    let mut stage = Stage::new(&["low", "high"]);
    let bard = "[imps.bard]\nlibrary = \"bard\"\nconfig = { zones = [\
        { high = 59, output = 1, out_channel = 3 }, \
        { low = 60, output = 2, out_channel = 5 }] }\n\n";
    let body = format!(
        "{bard}{}{}{}{}",
        out_port("out1", "low"),
        out_port("out2", "high"),
        wire("bard", 1, "out1"),
        wire("bard", 2, "out2"),
    );
    let d = stage.daemon(&["bard", "midi_port"], &body);
    wait_thawed(&d, &["bard", "out1", "out2"]);
    d.send("bard", &["90", "30", "64"]);
    d.send("bard", &["90", "48", "64"]);
    d.send("bard", &["b0", "40", "7f"]);
    settle();
    // The upper zone now plays on output 1 too: output 2 loses it while the
    // pedal is down, so its pedal must be lifted there.
    let out = d.cli(&[
        "control",
        "bard",
        r#"{"cmd": "set", "path": "/zones/1/output", "value": 1}"#,
    ]);
    assert!(out.status.success(), "{out:?}");
    settle();
    d.send("bard", &["80", "30", "00"]);
    d.send("bard", &["80", "48", "00"]);
    d.send("bard", &["b0", "40", "00"]);
    settle();
    d.assert_no_engine_allocations();
    let seen = stage.observed();
    let (low, high) = (&seen["low"], &seen["high"]);
    assert!(low.contains(&vec![0xB2, 64, 127]), "{low:02x?}");
    assert!(high.contains(&vec![0xB4, 64, 127]), "{high:02x?}");
    let lifted = high.iter().position(|e| *e == vec![0xB4, 64, 0]);
    assert!(
        lifted.is_some(),
        "output 2 got its pedal lifted: {high:02x?}"
    );
    // Output 1 now also carries the upper zone's channel, pedal pressed.
    assert!(low.contains(&vec![0xB4, 64, 127]), "{low:02x?}");
    assert!(low.contains(&vec![0xB2, 64, 0]) && low.contains(&vec![0xB4, 64, 0]));
    assert_balanced("low", low, &[(2, 48, 1)]);
    assert_balanced("high", high, &[(4, 72, 1)]);
}

/// A JACK client of the test's own that plays one event per JACK cycle: a
/// note-on, then its note-off, the note counting up, so that a lost event
/// shows as a break in the count.
/// The stream's process callback.
type Play = Box<dyn FnMut(&jack::Client, &jack::ProcessScope) -> jack::Control + Send>;

struct Stream {
    _client: jack::AsyncClient<(), jack::contrib::ClosureProcessHandler<(), Play>>,
}

impl Stream {
    fn start(jack: &JackServer) -> Stream {
        let client = jack_client(jack, "stream");
        let mut port = client
            .register_port("out", jack::MidiOut::default())
            .unwrap();
        let mut k: u64 = 0;
        let process: Play = Box::new(move |_, ps| {
            let note = ((k / 2) % 100) as u8;
            let status = if k.is_multiple_of(2) { 0x90 } else { 0x80 };
            let _ = port.writer(ps).write(&jack::RawMidi {
                time: 0,
                bytes: &[status, note, 64],
            });
            k += 1;
            jack::Control::Continue
        });
        let client = client
            .activate_async((), jack::contrib::ClosureProcessHandler::new(process))
            .unwrap();
        Stream { _client: client }
    }
}

/// Every JACK cycle carries an event through the port while its library is
/// respawned, six times: the new instance takes over the open port, so the
/// stream goes on without a gap, and a note held through the respawns ends
/// once, on key release. (A respawn that closed and reopened the port would
/// break the stream at each of the six; a loaded machine may drop a JACK
/// cycle now and then, so two breaks are tolerated.)
#[test]
fn a_port_rebuilt_under_a_dense_stream_loses_no_event() {
    let mut stage = Stage::new(&["synth"]);
    let _stream = Stream::start(&stage.jack);
    let body = format!(
        "[imps.in]\nlibrary = \"midi_port\"\nconfig = {{ direction = \"in\", connect = \"stream:out\" }}\n\n\
         [imps.keys]\nlibrary = \"monitor\"\nconfig = {{ log = false }}\n\n{}{}{}",
        out_port("out", "synth"),
        wire("in", 0, "out"),
        wire("keys", 0, "out"),
    );
    let d = stage.daemon(&["monitor", "midi_port"], &body);
    wait_thawed(&d, &["in", "keys", "out"]);
    d.send("keys", &["90", "7f", "64"]);
    std::thread::sleep(Duration::from_millis(300));
    for round in 1..=6u64 {
        // Another build lands; `reload` respawns it at once.
        let staged = d.path("libs/libmidi_port.so.new");
        std::fs::write(&staged, another_build_of("midi_port", round as u8)).unwrap();
        std::fs::rename(&staged, d.path("libs/libmidi_port.so")).unwrap();
        let out = d.cli(&["reload", "out"]);
        assert!(out.status.success(), "{out:?}");
        let s = d.status();
        assert_eq!(imp_of(&s, "out")["reload_count"].as_u64(), Some(round));
        std::thread::sleep(Duration::from_millis(150));
    }
    d.send("keys", &["80", "7f", "00"]);
    settle();
    d.assert_no_engine_allocations();
    let seen = stage.observed();
    let events: Vec<&Vec<u8>> = seen["synth"].iter().filter(|e| e[1] != 0x7f).collect();
    assert!(events.len() > 50, "{} events", events.len());
    // The stream's k-th event: note k / 2, on for even k, off for odd.
    let index = |e: &Vec<u8>| (e[1] as u64) * 2 + u64::from(e[0] & 0xF0 == 0x80);
    let breaks: Vec<(usize, &Vec<u8>, &Vec<u8>)> = events
        .windows(2)
        .enumerate()
        .filter(|(_, p)| (index(p[0]) + 1) % 200 != index(p[1]))
        .map(|(i, p)| (i, p[0], p[1]))
        .collect();
    assert!(
        breaks.len() <= 2,
        "the stream broke {} times around 6 respawns: {breaks:02x?}",
        breaks.len()
    );
    let held: Vec<&Vec<u8>> = seen["synth"].iter().filter(|e| e[1] == 0x7f).collect();
    assert_eq!(held.len(), 2, "the held note: one on, one off: {held:02x?}");
}
