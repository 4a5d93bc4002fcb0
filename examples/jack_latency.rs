//! Measures the latency impresario adds on JACK, over 10,000 events.
//!
//! ```text
//! cargo xtask jack-latency            # or:
//! cargo build --workspace && cargo run --example jack_latency -- [EVENTS]
//! ```
//!
//! It starts its own JACK server (dummy driver, 48 kHz, 128 frames), a
//! daemon with a pass-through realm (`midi_port` in → `midi_port` out), and
//! two probe clients: `probe-send` plays notes at random frames into
//! impresario's input, `probe-recv` records what leaves impresario's output.
//! Each note carries its own number (note and velocity), so every event is
//! matched with its send time. The latency of an event is its receive time
//! minus its send time, in frames (JACK frame time + frame offset): 0 means
//! it left at the same frame of the same cycle it came in.

#[path = "../tests/common/mod.rs"]
mod common;

use common::*;
use jack::{Client, ClientOptions, Control, MidiIn, MidiOut, ProcessScope, RawMidi};
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

fn main() {
    let wanted: usize = std::env::args()
        .nth(1)
        .map(|a| a.parse().expect("EVENTS is a number"))
        .unwrap_or(10_000);
    let jack = JackServer::start();
    std::env::set_var("JACK_DEFAULT_SERVER", &jack.name);

    let (send_log_tx, mut send_log) = rtrb::RingBuffer::<(u32, u64)>::new(65536);
    let (recv_log_tx, mut recv_log) = rtrb::RingBuffer::<(u32, u64)>::new(65536);

    // The receiver first, so the daemon's output port can connect to it.
    let (recv_client, _) =
        Client::new("probe-recv", ClientOptions::NO_START_SERVER).expect("JACK client");
    let inport = recv_client.register_port("in", MidiIn::default()).unwrap();
    let mut recv_log_tx = recv_log_tx;
    let recv = recv_client
        .activate_async(
            (),
            jack::contrib::ClosureProcessHandler::new(move |_: &Client, ps: &ProcessScope| {
                let base = ps.last_frame_time() as u64;
                for e in inport.iter(ps) {
                    if e.bytes.len() == 3 && e.bytes[0] == 0x90 {
                        let id = e.bytes[1] as u32 | ((e.bytes[2] as u32 - 1) << 7);
                        let _ = recv_log_tx.push((id, base + e.time as u64));
                    }
                }
                Control::Continue
            }),
        )
        .unwrap();

    let (send_client, _) =
        Client::new("probe-send", ClientOptions::NO_START_SERVER).expect("JACK client");
    let mut outport = send_client
        .register_port("out", MidiOut::default())
        .unwrap();
    let mut next_id: u32 = 0;
    let mut x: u64 = 0x2545_F491_4F6C_DD1D;
    let limit = wanted as u32;
    let mut send_log_tx = send_log_tx;
    // Sending starts once impresario's ports are connected.
    let go = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let go_rt = go.clone();
    let body = format!(
        "[realm]\nlibrary_dir = \"libs\"\nmidi_backend = \"jack\"\n{FAST}\n\
         [imps.in]\nlibrary = \"midi_port\"\nconfig = {{ direction = \"in\", connect = \"probe-send:\" }}\n\
         [imps.out]\nlibrary = \"midi_port\"\nconfig = {{ direction = \"out\", connect = \"probe-recv:\" }}\n\
         [[wires]]\nfrom = \"in\"\nto = \"out\"\n"
    );
    let send = send_client
        .activate_async(
            (),
            jack::contrib::ClosureProcessHandler::new(move |_: &Client, ps: &ProcessScope| {
                let mut w = outport.writer(ps);
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                // About one event in two cycles, at a random frame.
                if go_rt.load(std::sync::atomic::Ordering::Relaxed)
                    && next_id < limit
                    && x.is_multiple_of(2)
                {
                    let frame = ((x >> 8) % ps.n_frames() as u64) as u32;
                    let id = next_id;
                    let bytes = [0x90, (id & 0x7F) as u8, ((id >> 7) % 127 + 1) as u8];
                    if w.write(&RawMidi {
                        time: frame,
                        bytes: &bytes,
                    })
                    .is_ok()
                    {
                        let _ = send_log_tx.push((id, ps.last_frame_time() as u64 + frame as u64));
                        next_id += 1;
                    }
                }
                Control::Continue
            }),
        )
        .unwrap();

    let dir = Daemon::prepare(&["midi_port"]);
    std::fs::write(dir.path().join("realm.toml"), body).unwrap();
    let daemon = Daemon::start_in(dir, &[jack.env()]);
    daemon.wait_for("both ports", |s| {
        imp_of(s, "in")["state"] == "thawed" && imp_of(s, "out")["state"] == "thawed"
    });
    go.store(true, std::sync::atomic::Ordering::Relaxed);

    let mut sent: BTreeMap<u32, u64> = BTreeMap::new();
    let mut received: BTreeMap<u32, u64> = BTreeMap::new();
    // Ids are unique up to 16256 events.
    assert!(wanted <= 16_256, "at most 16256 events");
    let deadline = Instant::now() + Duration::from_secs(600);
    while received.len() < wanted && Instant::now() < deadline {
        while let Ok((id, t)) = send_log.pop() {
            sent.insert(id, t);
        }
        while let Ok((id, t)) = recv_log.pop() {
            received.entry(id).or_insert(t);
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    while let Ok((id, t)) = send_log.pop() {
        sent.insert(id, t);
    }
    drop(send);
    drop(recv);

    let mut latencies: Vec<i64> = received
        .iter()
        .filter_map(|(id, r)| Some(*r as i64 - *sent.get(id)? as i64))
        .collect();
    let lost = sent.keys().filter(|id| !received.contains_key(id)).count();
    latencies.sort();
    let n = latencies.len();
    assert!(n > 0, "no events came back:\n{}", daemon.log_text());
    let mut histogram: BTreeMap<i64, usize> = BTreeMap::new();
    for l in &latencies {
        *histogram.entry(*l).or_default() += 1;
    }
    println!("JACK 48 kHz, 128 frames per period (dummy driver); {n} events through impresario, {lost} lost");
    println!(
        "added latency in frames: min {}, median {}, p99 {}, max {}",
        latencies[0],
        latencies[n / 2],
        latencies[(n * 99) / 100],
        latencies[n - 1]
    );
    println!("distribution (frames: events):");
    for (l, c) in histogram {
        println!("  {l:>6}: {c}");
    }
}
