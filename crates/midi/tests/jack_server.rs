//! JACK listing against a real server: the test starts `jackd -d dummy`
//! under a unique server name, starts Debian's `jack_midiseq` (a client with
//! a MIDI output port), checks the listing, and kills both by PID in a Drop
//! guard (also when an assertion fails). Its own test binary, because it
//! sets `JACK_DEFAULT_SERVER` for the process.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use midi::alsa::Direction;
use midi::jack_ports::{list_all_ports, list_ports, MIDI_TYPE};

/// Processes this test started; stopped by PID, newest first, on drop.
struct Procs(Vec<(&'static str, Child)>);

impl Procs {
    fn stop(&mut self, name: &str) {
        if let Some(i) = self.0.iter().position(|(n, _)| *n == name) {
            let (_, child) = self.0.remove(i);
            terminate(child);
        }
    }
}

fn terminate(mut child: Child) {
    // SIGTERM first so jackd removes its sockets and shared memory.
    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    let deadline = Instant::now() + Duration::from_secs(5);
    while Instant::now() < deadline {
        if let Ok(Some(_)) = child.try_wait() {
            return;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = child.kill();
    let _ = child.wait();
}

impl Drop for Procs {
    fn drop(&mut self) {
        while let Some((_, child)) = self.0.pop() {
            terminate(child);
        }
    }
}

fn available(tool: &str) -> bool {
    Command::new("sh")
        .args(["-c", &format!("command -v {tool}")])
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

fn wait_until<T>(what: &str, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn lists_midi_ports_of_a_real_server() {
    for tool in ["jackd", "jack_wait", "jack_midiseq"] {
        assert!(available(tool), "{tool} missing: apt-get install jackd2");
    }
    let server = format!("impresario-midi-{}", std::process::id());
    std::env::set_var("JACK_DEFAULT_SERVER", &server);
    let mut procs = Procs(Vec::new());
    let jackd = Command::new("jackd")
        .args(["-n", &server, "-R", "-P", "70", "-p", "32"])
        .args(["-d", "dummy", "-r", "48000", "-p", "128"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn jackd");
    procs.0.push(("jackd", jackd));
    let waited = Command::new("jack_wait")
        .args(["-w", "-t", "10"])
        .env("JACK_DEFAULT_SERVER", &server)
        .stdout(Stdio::null())
        .status()
        .expect("run jack_wait");
    assert!(waited.success(), "jackd did not come up within 10 s");

    // The server runs, no MIDI port yet (the dummy driver has audio only).
    let all = list_all_ports().unwrap();
    let capture = all
        .iter()
        .find(|p| p.name == "system:capture_1")
        .expect("system:capture_1");
    assert!(capture.is_physical);
    assert_eq!(capture.direction, Direction::In);
    assert_ne!(capture.port_type, MIDI_TYPE);
    let playback = all
        .iter()
        .find(|p| p.name == "system:playback_1")
        .expect("system:playback_1");
    assert!(playback.is_physical);
    assert_eq!(playback.direction, Direction::Out);
    assert!(list_ports()
        .unwrap()
        .iter()
        .all(|p| p.port_type == MIDI_TYPE));

    // jack_midiseq NAME NSAMP [START NOTE LENGTH]...: a MIDI output port NAME:out.
    let seq = Command::new("jack_midiseq")
        .args(["impseq", "24000", "0", "60", "8000"])
        .env("JACK_DEFAULT_SERVER", &server)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn jack_midiseq");
    procs.0.push(("jack_midiseq", seq));
    let port = wait_until("impseq:out in the listing", || {
        list_ports()
            .unwrap()
            .into_iter()
            .find(|p| p.name == "impseq:out")
    });
    assert_eq!(
        port.direction,
        Direction::In,
        "a JACK output port is an input for us"
    );
    assert!(!port.is_physical);
    assert_eq!(port.port_type, MIDI_TYPE);
    assert!(list_ports()
        .unwrap()
        .iter()
        .all(|p| !p.name.starts_with("system:")));

    // Unplug: the port leaves the listing.
    procs.stop("jack_midiseq");
    wait_until("impseq:out to disappear", || {
        (!list_ports().unwrap().iter().any(|p| p.name == "impseq:out")).then_some(())
    });

    // Server gone: the typed error.
    procs.stop("jackd");
    assert!(matches!(
        list_ports(),
        Err(midi::MidiError::JackUnavailable { .. })
    ));
}
