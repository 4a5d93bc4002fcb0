//! Feeds random bytes to the MIDI parser and checks its invariants.
//!
//! The first input byte picks a chunk size (1–64) so the same stream is also
//! fed in pieces; both runs must give the same output.
//!
//! Run (see the `midi` crate docs): `RUSTC_BOOTSTRAP=1 cargo fuzz run parser`

#![no_main]

use libfuzzer_sys::fuzz_target;
use midi::{Decoded, Decoder, Event, Parser, ShortMessage};

#[derive(Debug, PartialEq)]
enum Out {
    Msg(ShortMessage),
    Sysex(Vec<u8>),
    Aborted,
    TooLong(usize),
}

fn decode(bytes: &[u8], chunk: usize) -> (Vec<Out>, midi::ParserStats) {
    let mut d = Decoder::with_max_sysex_len(256);
    let mut out = Vec::new();
    for c in bytes.chunks(chunk) {
        d.feed(c, |e| {
            out.push(match e {
                Decoded::Message(m) => Out::Msg(m),
                Decoded::Sysex(b) => Out::Sysex(b.to_vec()),
                Decoded::SysexAborted => Out::Aborted,
                Decoded::SysexTooLong { len } => Out::TooLong(len),
            })
        });
    }
    (out, d.stats())
}

fuzz_target!(|data: &[u8]| {
    let Some((&first, bytes)) = data.split_first() else {
        return;
    };
    let chunk = usize::from(first % 64) + 1;

    let (whole, stats) = decode(bytes, bytes.len().max(1));
    let (pieces, stats_pieces) = decode(bytes, chunk);
    assert_eq!(whole, pieces);
    assert_eq!(stats, stats_pieces);

    let mut consumed = 0usize;
    for o in &whole {
        match o {
            Out::Msg(m) => {
                assert_eq!(ShortMessage::from_bytes(m.as_bytes()), Ok(*m));
                assert_eq!(m.message().to_short(), *m);
                consumed += 1;
            }
            Out::Sysex(b) => {
                assert!(b.len() >= 2 && b.len() <= 256);
                assert_eq!(b[0], 0xF0);
                assert_eq!(b[b.len() - 1], 0xF7);
                assert!(b[1..b.len() - 1].iter().all(|&x| x < 0x80));
                consumed += 2;
            }
            Out::Aborted | Out::TooLong(_) => {}
        }
    }
    // Each message needs at least one byte of its own (SysEx two).
    assert!(consumed <= bytes.len());
    assert!(stats.stray_bytes as usize <= bytes.len());

    // Raw parser: chunk flags and contents are consistent.
    let mut p = Parser::new();
    let mut open = false;
    for c in bytes.chunks(chunk) {
        p.feed(c, |e| {
            if let Event::Sysex(s) = e {
                assert_eq!(s.start, !open, "start flag must match the open state");
                assert!(!s.aborted || s.end);
                open = !s.end;
                for (i, &b) in s.bytes.iter().enumerate() {
                    let ok = b < 0x80
                        || (b == 0xF0 && i == 0 && s.start)
                        || (b == 0xF7 && i + 1 == s.bytes.len() && s.end && !s.aborted);
                    assert!(ok, "byte {b:02X} in chunk {s:02X?}");
                }
            }
        });
        assert_eq!(p.in_sysex(), open);
    }
});
