//! The input path: bytes as midir delivers them go through the parser rules
//! and reach the callback with their arrival time.

use std::time::{Duration, Instant};

use midi::alsa::InputHandler;
use midi::{Decoded, Message};

#[derive(Debug, PartialEq)]
enum Got {
    Msg(Message),
    Sysex(Vec<u8>),
    Aborted,
}

#[test]
fn deliveries_are_decoded_and_timestamped() {
    let mut got: Vec<(Instant, Got)> = Vec::new();
    let t0 = Instant::now();
    let t1 = t0 + Duration::from_millis(1);
    let t2 = t0 + Duration::from_millis(2);
    let t3 = t0 + Duration::from_millis(3);
    {
        let mut h = InputHandler::new(|t, d| {
            got.push((
                t,
                match d {
                    Decoded::Message(m) => Got::Msg(m.message()),
                    Decoded::Sysex(b) => Got::Sysex(b.to_vec()),
                    _ => Got::Aborted,
                },
            ))
        });
        // midir delivers whole messages, but a long SysEx may come in pieces
        // and odd devices send running status or stray bytes.
        h.handle(t0, &[0x90, 60, 100]);
        h.handle(t1, &[0xF0, 0x41, 0x10]);
        h.handle(t2, &[0x42, 0xF8, 0xF7, 61, 0]);
        h.handle(t3, &[0x05, 0xB0, 64, 127]);
        assert_eq!(h.stats().stray_bytes, 3);
    }
    let note = |key, velocity| {
        Got::Msg(Message::NoteOn {
            channel: 0,
            key,
            velocity,
        })
    };
    assert_eq!(
        got,
        vec![
            (t0, note(60, 100)),
            (t2, Got::Msg(Message::Clock)),
            (t2, Got::Sysex(vec![0xF0, 0x41, 0x10, 0x42, 0xF7])),
            (
                t3,
                Got::Msg(Message::ControlChange {
                    channel: 0,
                    controller: 64,
                    value: 127
                })
            ),
        ]
    );
}
