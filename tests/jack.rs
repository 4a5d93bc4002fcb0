//! End to end through a real JACK server (dummy driver) that each test
//! starts and stops, with Debian's own JACK clients as independent peers.

mod common;
use common::*;
use std::process::Stdio;
use std::time::Duration;

const PASS_THROUGH: &str =
    "[imps.in]\nlibrary = \"midi_port\"\nconfig = { direction = \"in\", connect = \"seq:\" }\n\n\
     [imps.out]\nlibrary = \"midi_port\"\nconfig = { direction = \"out\", connect = \"dump:\" }\n\n\
     [[wires]]\nfrom = \"in\"\nto = \"out\"\n";

fn start_daemon(jack: &JackServer, body: &str) -> Daemon {
    let dir = Daemon::prepare(&["midi_port"]);
    let realm = format!(
        "[realm]\nlibrary_dir = \"libs\"\nmidi_backend = \"jack\"\njack_client_name = \"impresario\"\n{FAST}\n{body}"
    );
    std::fs::write(dir.path().join("realm.toml"), realm).unwrap();
    let (k, v) = jack.env();
    Daemon::start_in(dir, &[(k, v)])
}

#[test]
fn jack_midiseq_through_impresario_into_jack_midi_dump() {
    let mut jack = JackServer::start();
    let mut d = start_daemon(&jack, PASS_THROUGH);
    let dump_out = d.path("dump.txt");
    let file = std::fs::File::create(&dump_out).unwrap();
    let dump = jack.spawn("jack_midi_dump", &["-a", "dump"], Stdio::from(file));
    jack.wait_for_client(dump, "dump");
    // A loop of 24000 samples: C4 at 0 for 8000, D#4 at 12000 for 8000.
    jack.spawn(
        "jack_midiseq",
        &["seq", "24000", "0", "60", "8000", "12000", "63", "8000"],
        Stdio::null(),
    );
    d.wait_for("both ports to connect", |s| {
        imp_of(s, "in")["state"] == "thawed" && imp_of(s, "out")["state"] == "thawed"
    });
    std::thread::sleep(Duration::from_millis(1500));
    jack.stop_peer(dump);
    let events = parse_midi_dump(&std::fs::read_to_string(&dump_out).unwrap());
    assert!(
        events.len() >= 8,
        "jack_midi_dump recorded {} events:\n{}",
        events.len(),
        d.log_text()
    );

    // Every event is one of the sequence's, and they come in its order with
    // its exact spacing in samples. The dummy driver has occasional xruns,
    // which shift the peers' clocks by whole periods: those gaps are
    // counted, and must stay rare.
    let pattern: [(Vec<u8>, u64); 4] = [
        (vec![0x90, 60, 64], 8000),
        (vec![0x80, 60, 64], 4000),
        (vec![0x90, 63, 64], 8000),
        (vec![0x80, 63, 64], 4000),
    ];
    let start = pattern
        .iter()
        .position(|(b, _)| *b == events[0].1)
        .expect("a known event");
    let mut xrun_gaps = 0;
    for (i, pair) in events.windows(2).enumerate() {
        let (bytes, gap) = &pattern[(start + i) % 4];
        assert_eq!(&pair[0].1, bytes, "event {i}: {events:?}");
        let got = pair[1].0 as i64 - pair[0].0 as i64;
        if got != *gap as i64 {
            assert_eq!(
                (got - *gap as i64) % 128,
                0,
                "spacing after event {i} is off by a fraction of a period: {events:?}"
            );
            xrun_gaps += 1;
        }
    }
    assert!(
        xrun_gaps * 4 <= events.len(),
        "too many shifted gaps ({xrun_gaps}): {events:?}"
    );
    assert!(d.stop().success());
}

#[test]
fn output_port_hot_plug_on_jack() {
    let mut jack = JackServer::start();
    let d = start_daemon(
        &jack,
        "[imps.out]\nlibrary = \"midi_port\"\nconfig = { direction = \"out\", name = \"to-synth\", connect = \"synth\" }\n",
    );
    let s = d.wait_for("the port imp to wait for its peer", |s| {
        imp_of(s, "out")["last_error"]
            .as_str()
            .is_some_and(|e| e.contains("no JACK MIDI port matches"))
    });
    assert_eq!(imp_of(&s, "out")["state"], "frozen");

    // The synth appears: connected within one thaw-retry period (200 ms =
    // 4 reconcile ticks of 50 ms; one more for the tick that notices).
    let t0 = d.status()["reconcile_ticks"].as_u64().unwrap();
    let synth = jack.spawn("jack_midi_dump", &["synth"], Stdio::null());
    let s = d.wait_for("the port imp to connect", |s| {
        imp_of(s, "out")["state"] == "thawed"
    });
    let ticks = s["reconcile_ticks"].as_u64().unwrap() - t0;
    assert!(ticks <= 6, "connecting took {ticks} reconcile ticks");
    assert!(
        jack.ports().contains("impresario:to-synth\n   synth:input"),
        "{}",
        jack.ports()
    );

    // Unplugged: the imp freezes.
    jack.stop_peer(synth);
    d.wait_for("the port imp to freeze", |s| {
        imp_of(s, "out")["state"] == "frozen"
    });

    // Back again: it reconnects.
    jack.spawn("jack_midi_dump", &["synth"], Stdio::null());
    d.wait_for("the port imp to reconnect", |s| {
        imp_of(s, "out")["state"] == "thawed"
    });
    assert!(
        jack.ports().contains("impresario:to-synth\n   synth:input"),
        "{}",
        jack.ports()
    );
}
