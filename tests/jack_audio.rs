//! The audio path end to end through a real JACK server: the FluidSynth
//! imp plays a note, impresario's own JACK audio ports carry it, and a JACK
//! client of the test's own records them.

mod common;
use common::soundfont;
use common::*;
use std::time::Duration;

/// Records a JACK audio port into a lock-free ring, read after the fact.
struct Recorder {
    _client: jack::AsyncClient<(), jack::contrib::ClosureProcessHandler<(), Record>>,
    samples: rtrb::Consumer<f32>,
}

type Record = Box<dyn FnMut(&jack::Client, &jack::ProcessScope) -> jack::Control + Send>;

impl Recorder {
    fn start(jack: &JackServer) -> Recorder {
        let client = jack_client(jack, "recorder");
        let port = client
            .register_port("in", jack::AudioIn::default())
            .unwrap();
        let (mut tx, rx) = rtrb::RingBuffer::new(48_000 * 4);
        let record: Record = Box::new(move |_, ps| {
            for s in port.as_slice(ps) {
                let _ = tx.push(*s);
            }
            jack::Control::Continue
        });
        let client = client
            .activate_async((), jack::contrib::ClosureProcessHandler::new(record))
            .unwrap();
        Recorder {
            _client: client,
            samples: rx,
        }
    }

    fn take(&mut self) -> Vec<f32> {
        let mut out = Vec::new();
        while let Ok(s) = self.samples.pop() {
            out.push(s);
        }
        out
    }
}

#[test]
fn a_note_reaches_a_jack_client_through_impresarios_audio_ports() {
    let jack = JackServer::start_with_period(256);
    let dir = Daemon::prepare(&["fluidsynth"]);
    let font = dir.path().join("test.sf2");
    soundfont::write(&font);
    std::fs::write(
        dir.path().join("realm.toml"),
        format!(
            "[realm]\nlibrary_dir = \"libs\"\nmidi_backend = \"jack\"\njack_client_name = \"impresario\"\n{FAST}\n\
             [imps.synth]\nlibrary = \"fluidsynth\"\n\
             config = {{ soundfont = {font:?}, gain = 1.0, reverb = {{ on = false }} }}\n"
        ),
    )
    .unwrap();
    let (k, v) = jack.env();
    let d = Daemon::start_in(dir, &[(k, v)]);
    d.wait_for("the synth to thaw", |s| {
        imp_of(s, "synth")["state"] == "thawed"
    });
    let ports = jack.ports();
    assert!(ports.contains("impresario:out_left"), "{ports}");
    assert!(
        ports.contains("impresario:out_left\n   system:playback_1"),
        "connected to the playback ports: {ports}"
    );
    let mut recorder = Recorder::start(&jack);
    let out = jack
        .command("jack_connect")
        .args(["impresario:out_left", "recorder:in"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    std::thread::sleep(Duration::from_millis(200));
    recorder.take();
    d.send("synth", &["90", "45", "7f"]);
    std::thread::sleep(Duration::from_millis(600));
    let heard = recorder.take();
    d.send("synth", &["80", "45", "00"]);
    let start = heard
        .iter()
        .position(|s| s.abs() > 1e-4)
        .expect("the note reaches the JACK client");
    let tone = &heard[start + 4800..(start + 4800 + 9600).min(heard.len())];
    let f = soundfont::frequency(tone, 48_000.0);
    assert!((f / 440.0 - 1.0).abs() < 0.01, "A4 at {f} Hz");
    assert!(soundfont::rms(tone) > 0.02);
}
