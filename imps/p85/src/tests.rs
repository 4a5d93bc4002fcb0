//! The RT logic block by block, with the bytes the P-85 sends.

use super::*;
use settings::{FIRST_KEY, FIRST_NUMBER, FIRST_PRESET, STORE};

const SR: f64 = 48_000.0;
const FRAMES: u32 = 128;

/// A player and a fake realm queue that takes `capacity` messages per block.
struct Rig {
    p: Player,
    shared: Arc<Shared>,
    block: u64,
    sent: Vec<String>,
    capacity: usize,
}

impl Rig {
    fn new() -> Rig {
        let shared = Arc::new(Shared::new());
        Rig {
            p: Player::new(SR, 300, shared.clone()),
            shared,
            block: 0,
            sent: Vec::new(),
            capacity: usize::MAX,
        }
    }

    /// Runs one block with `input` (frame, bytes); returns what went out.
    fn run(&mut self, input: &[(u32, &[u8])]) -> Vec<(u32, Vec<u8>)> {
        let ctx = BlockContext::new(self.block * FRAMES as u64, SR, 120.0, FRAMES);
        let events: Vec<RtEvent> = input.iter().map(|(f, b)| RtEvent::midi(*f, b)).collect();
        let mut buf = [RtEvent::default(); 512];
        let mut out = EventWriter::new(&mut buf);
        let mut room = self.capacity;
        let sent = &mut self.sent;
        self.p.process(&ctx, &events, &mut out, &mut |m| {
            if room == 0 {
                return Err(MailError::Full);
            }
            room -= 1;
            sent.push(m.to_string());
            Ok(())
        });
        let n = out.len();
        self.block += 1;
        buf[..n]
            .iter()
            .map(|e| (e.frame, e.midi_bytes().to_vec()))
            .collect()
    }

    /// Runs empty blocks for `ms` milliseconds; returns what went out.
    fn idle(&mut self, ms: u64) -> Vec<(u32, Vec<u8>)> {
        let blocks = (ms as f64 * SR / 1000.0 / FRAMES as f64).ceil() as u64;
        (0..blocks).flat_map(|_| self.run(&[])).collect()
    }

    fn bytes(out: &[(u32, Vec<u8>)]) -> Vec<Vec<u8>> {
        out.iter().map(|(_, b)| b.clone()).collect()
    }
}

#[test]
fn playing_passes_notes_and_pedals_and_drops_sensing_and_the_soft_pedal() {
    let mut r = Rig::new();
    let out = r.run(&[
        (0, &[0xFE]),
        (1, &[0x90, 60, 80]),
        (2, &[0xB0, 64, 127]),
        (3, &[0x90, 60, 0]),
        (4, &[0xB0, 66, 127]),
        (5, &[0xB0, 64, 0]),
        (6, &[0xB0, 66, 0]),
    ]);
    assert_eq!(
        Rig::bytes(&out),
        [
            vec![0x90, 60, 80],
            vec![0xB0, 64, 127],
            vec![0x90, 60, 0],
            vec![0xB0, 66, 127],
            vec![0xB0, 64, 0],
            vec![0xB0, 66, 0]
        ]
    );
    assert_eq!(out[0].0, 1);
    assert!(r.sent.is_empty());
}

#[test]
fn settings_keys_never_sound_and_a_note_from_before_ends_normally() {
    let mut r = Rig::new();
    r.run(&[(0, &[0x90, 40, 70])]); // E2 held while playing
    let out = r.run(&[
        (0, &[0xB0, 67, 127]),
        (1, &[0x90, FIRST_PRESET + 2, 64]), // recall preset 3
        (2, &[0x90, FIRST_PRESET + 2, 0]),
        (3, &[0x90, 40, 0]),             // the old note ends
        (4, &[0x90, FIRST_KEY + 4, 64]), // key E, held over the pedal release
        (5, &[0xB0, 67, 0]),
        (6, &[0x90, FIRST_KEY + 4, 0]), // its release: nothing
    ]);
    assert_eq!(Rig::bytes(&out), [vec![0x90, 40, 0]]);
    assert_eq!(
        r.sent,
        [
            r#"{"cmd":"preset","action":"recall","number":3}"#,
            r#"{"cmd":"set","key":"key","value":"E"}"#,
            r#"{"cmd":"set","key":"scale","value":"major"}"#,
        ]
    );
    assert!(!r.shared.settings_mode.load(Relaxed));
    // Playing again; a second key signature leaves the scale alone.
    assert_eq!(
        Rig::bytes(&r.run(&[(0, &[0x90, 60, 1])])),
        [vec![0x90, 60, 1]]
    );
    r.run(&[(0, &[0xB0, 67, 127]), (1, &[0x90, FIRST_KEY + 9, 64])]);
    assert_eq!(r.sent[3], r#"{"cmd":"set","key":"key","value":"A"}"#);
    assert_eq!(r.sent.len(), 4);
}

#[test]
fn a_multi_tap_number_is_sent_after_the_window_from_the_engine_clock() {
    let mut r = Rig::new();
    let five = FIRST_NUMBER + 4;
    r.run(&[
        (0, &[0xB0, 67, 127]),
        (10, &[0x90, five, 64]),
        (20, &[0x90, five, 0]),
    ]);
    r.idle(200);
    r.run(&[(0, &[0x90, five, 64]), (10, &[0x90, five, 0])]);
    r.idle(390);
    assert!(r.sent.is_empty(), "{:?}", r.sent);
    r.idle(30);
    assert_eq!(r.sent, [r#"{"cmd":"set","key":"program","value":"21"}"#]);
}

#[test]
fn store_with_the_modifier_and_toggles_from_the_enchanters_state() {
    let mut r = Rig::new();
    r.shared.mirror(&json!({
        "global": {"selected": "b", "metronome": "on", "drums": "on", "drum_pattern": 2, "drum_mode": "off"},
        "zones": [{"name": "a", "scale": "off", "arp": "off"}, {"name": "b", "scale": "minor", "arp": "on"}],
    }));
    r.run(&[
        (0, &[0xB0, 67, 127]),
        (1, &[0x90, STORE, 64]),
        (2, &[0x90, FIRST_PRESET + 3, 64]),
        (3, &[0x90, STORE, 0]),
        (4, &[0x90, settings::ARP, 64]),
        (5, &[0x90, settings::METRONOME, 64]),
        (6, &[0x90, settings::FIRST_DRUM_PATTERN + 1, 64]), // the running one: stop
        (7, &[0x90, settings::FIRST_DRUM_PATTERN + 2, 64]), // 3: start
        (8, &[0x90, FIRST_KEY, 64]),                        // C; the scale stays minor
    ]);
    assert_eq!(
        r.sent,
        [
            r#"{"cmd":"preset","action":"save","number":4}"#,
            r#"{"cmd":"set","key":"arp","value":"off"}"#,
            r#"{"cmd":"set","key":"metronome","value":"off"}"#,
            r#"{"cmd":"set","key":"drums","value":"off"}"#,
            r#"{"cmd":"set","key":"drum_pattern","value":"3"}"#,
            r#"{"cmd":"set","key":"drums","value":"on"}"#,
            r#"{"cmd":"set","key":"key","value":"C"}"#,
        ]
    );
}

#[test]
fn a_full_queue_keeps_the_gestures_in_order_for_the_next_blocks() {
    let mut r = Rig::new();
    r.capacity = 0;
    r.run(&[
        (0, &[0xB0, 67, 127]),
        (1, &[0x90, FIRST_PRESET, 64]),
        (2, &[0x90, FIRST_PRESET + 1, 64]),
        (3, &[0x90, FIRST_PRESET + 2, 64]),
    ]);
    assert!(r.sent.is_empty());
    assert_eq!(r.shared.waiting.load(Relaxed), 3);
    assert_eq!(r.shared.retried.load(Relaxed), 1);
    r.capacity = 1;
    r.run(&[]);
    r.run(&[]);
    r.capacity = usize::MAX;
    r.run(&[]);
    let numbers: Vec<&str> = r
        .sent
        .iter()
        .map(|m| &m[m.len() - 2..m.len() - 1])
        .collect();
    assert_eq!(numbers, ["1", "2", "3"]);
    assert_eq!(r.shared.sent.load(Relaxed), 3);
    assert_eq!(r.shared.failed.load(Relaxed), 0);
}

#[test]
fn silence_after_active_sensing_releases_held_notes_and_pedals() {
    let mut r = Rig::new();
    r.run(&[
        (0, &[0xFE]),
        (1, &[0x90, 60, 80]),
        (2, &[0xB0, 64, 127]),
        (3, &[0xB0, 66, 127]),
    ]);
    // Sensing every 250 ms keeps it alive for a long time.
    for _ in 0..8 {
        assert!(r.idle(250).is_empty());
        r.run(&[(0, &[0xFE])]);
    }
    assert!(r.shared.sensing.load(Relaxed));
    let start = r.block * FRAMES as u64;
    let mut released = Vec::new();
    let mut when = 0;
    while released.is_empty() {
        let block = r.block;
        released = r.run(&[]);
        when = block * FRAMES as u64 + released.first().map_or(0, |e| e.0 as u64);
        assert!(r.block < 10_000);
    }
    // More than 300 ms after the last byte (at `start - FRAMES`), at once.
    let silence = when - (start - FRAMES as u64);
    assert_eq!(silence, 300 * 48 + 1, "released after {silence} samples");
    assert_eq!(
        Rig::bytes(&released),
        [vec![0x80, 60, 0], vec![0xB0, 64, 0], vec![0xB0, 66, 0]]
    );
    assert!(!r.shared.sensing.load(Relaxed));
    assert_eq!(r.shared.notes_held.load(Relaxed), 0);
    // Not expected any more: silence is fine until the next FE.
    r.run(&[(0, &[0x90, 62, 80])]);
    assert!(r.idle(1000).is_empty());
}

#[test]
fn without_active_sensing_silence_is_fine() {
    let mut r = Rig::new();
    r.run(&[(0, &[0x90, 60, 80])]);
    assert!(r.idle(2000).is_empty());
    assert_eq!(r.shared.notes_held.load(Relaxed), 1);
}

#[test]
fn the_transient_state_carries_notes_mode_and_waiting_gestures() {
    let mut r = Rig::new();
    r.capacity = 0;
    r.run(&[
        (0, &[0xFE]),
        (1, &[0x90, 50, 80]),
        (2, &[0xB0, 64, 127]),
        (3, &[0xB0, 67, 127]),
        (4, &[0x90, FIRST_PRESET + 5, 64]),
    ]);
    let mut buf = Box::new([0u8; TRANSIENT_BYTES]);
    r.p.save(&mut buf);
    let mut next = Rig::new();
    assert!(next.p.restore(&buf));
    assert!(!Rig::new().p.restore(&Box::new([0u8; TRANSIENT_BYTES])));
    // The pending recall goes out from the successor; the settings key's
    // release stays silent; the old note ends.
    let out = next.run(&[
        (0, &[0x90, FIRST_PRESET + 5, 0]),
        (1, &[0x90, 50, 0]),
        (2, &[0xFE]),
    ]);
    assert_eq!(Rig::bytes(&out), [vec![0x90, 50, 0]]);
    assert_eq!(
        next.sent,
        [r#"{"cmd":"preset","action":"recall","number":6}"#]
    );
    let mut w = [RtEvent::default(); 8];
    let mut out = EventWriter::new(&mut w);
    next.p.release_all(0, &mut out);
    assert_eq!(out.len(), 1, "the sustain pedal is lifted");
}
