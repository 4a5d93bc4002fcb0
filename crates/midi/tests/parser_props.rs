//! Property tests of the MIDI parser.
//!
//! (a) no input panics and every output is well formed;
//! (b) messages serialised with random running-status compression and random
//!     real-time bytes inserted anywhere (also inside messages and SysEx) are
//!     recovered in order after a garbage prefix of *any* bytes. Precisely:
//!     after feeding the garbage, the events produced by the embedded stream
//!     are exactly the embedded messages (and the inserted real-time
//!     messages) in order, plus at most one `SysexAborted`, which can only be
//!     the garbage's own unfinished SysEx and which comes before every
//!     non-real-time embedded message. This holds for arbitrary garbage
//!     because the embedded stream starts with an explicit status byte (its
//!     serialiser starts with no running status), and that status byte drops
//!     whatever partial message, running status or SysEx the garbage left;
//!     real-time bytes of the garbage are emitted while the garbage is fed.
//! (c) any chunking of the same stream gives the same output and counters.
//!
//! `PROPTEST_CASES` overrides the number of cases.

use midi::{data_len, Decoded, Decoder, Event, Parser, ShortMessage};
use proptest::prelude::*;

#[derive(Debug, Clone, PartialEq, Eq)]
enum Out {
    Msg(ShortMessage),
    Sysex(Vec<u8>),
    Aborted,
    TooLong(usize),
}

fn decode_chunks(d: &mut Decoder, chunks: &[&[u8]]) -> Vec<Out> {
    let mut out = Vec::new();
    for c in chunks {
        d.feed(c, |e| {
            out.push(match e {
                Decoded::Message(m) => Out::Msg(m),
                Decoded::Sysex(b) => Out::Sysex(b.to_vec()),
                Decoded::SysexAborted => Out::Aborted,
                Decoded::SysexTooLong { len } => Out::TooLong(len),
            })
        });
    }
    out
}

fn short_message() -> impl Strategy<Value = ShortMessage> {
    (0x80u8..=0xFF, 0u8..0x80, 0u8..0x80).prop_filter_map("defined status", |(s, a, b)| {
        data_len(s).map(|n| ShortMessage::from_bytes(&[s, a, b][..=n]).unwrap())
    })
}

fn realtime() -> impl Strategy<Value = u8> {
    prop::sample::select(vec![0xF8u8, 0xFA, 0xFB, 0xFC, 0xFE, 0xFF])
}

#[derive(Debug, Clone)]
enum Item {
    Short(ShortMessage),
    /// SysEx payload (data bytes only).
    Sysex(Vec<u8>),
}

fn item() -> impl Strategy<Value = Item> {
    prop_oneof![
        8 => short_message().prop_map(Item::Short),
        1 => prop::collection::vec(0u8..0x80, 0..40).prop_map(Item::Sysex),
    ]
}

/// A serialised stream: each byte, with the event its arrival completes.
fn serialise(
    items: &[Item],
    compress: &[bool],
    rt: &[(prop::sample::Index, u8)],
) -> (Vec<u8>, Vec<Out>) {
    let mut annotated: Vec<(u8, Option<Out>)> = Vec::new();
    let mut running: Option<u8> = None;
    for (i, item) in items.iter().enumerate() {
        match item {
            Item::Short(m) => {
                let bytes = m.as_bytes();
                let skip_status = m.is_channel_voice()
                    && running == Some(m.status())
                    && compress.get(i).copied().unwrap_or(false);
                if m.is_channel_voice() {
                    running = Some(m.status());
                } else if m.is_system_common() {
                    running = None;
                }
                let bytes = if skip_status { &bytes[1..] } else { bytes };
                for (k, &b) in bytes.iter().enumerate() {
                    let done = (k == bytes.len() - 1).then_some(Out::Msg(*m));
                    annotated.push((b, done));
                }
            }
            Item::Sysex(data) => {
                running = None;
                annotated.push((0xF0, None));
                annotated.extend(data.iter().map(|&b| (b, None)));
                let mut whole = vec![0xF0];
                whole.extend_from_slice(data);
                whole.push(0xF7);
                annotated.push((0xF7, Some(Out::Sysex(whole))));
            }
        }
    }
    for (at, b) in rt {
        let pos = at.index(annotated.len() + 1);
        let m = ShortMessage::from_bytes(&[*b]).unwrap();
        annotated.insert(pos, (*b, Some(Out::Msg(m))));
    }
    let bytes = annotated.iter().map(|(b, _)| *b).collect();
    let expected = annotated.into_iter().filter_map(|(_, o)| o).collect();
    (bytes, expected)
}

fn split<'a>(bytes: &'a [u8], cuts: &[prop::sample::Index]) -> Vec<&'a [u8]> {
    let mut at: Vec<usize> = cuts.iter().map(|c| c.index(bytes.len() + 1)).collect();
    at.push(0);
    at.push(bytes.len());
    at.sort_unstable();
    at.windows(2).map(|w| &bytes[w[0]..w[1]]).collect()
}

fn stream() -> impl Strategy<Value = (Vec<u8>, Vec<Out>)> {
    (
        prop::collection::vec(item(), 0..40),
        prop::collection::vec(any::<bool>(), 40),
        prop::collection::vec((any::<prop::sample::Index>(), realtime()), 0..20),
    )
        .prop_map(|(items, compress, rt)| serialise(&items, &compress, &rt))
}

fn well_formed(out: &[Out]) {
    for o in out {
        match o {
            Out::Msg(m) => assert_eq!(ShortMessage::from_bytes(m.as_bytes()), Ok(*m)),
            Out::Sysex(b) => {
                assert_eq!(b.first(), Some(&0xF0));
                assert_eq!(b.last(), Some(&0xF7));
                assert!(b[1..b.len() - 1].iter().all(|&x| x < 0x80));
            }
            Out::Aborted | Out::TooLong(_) => {}
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(
        std::env::var("PROPTEST_CASES").ok().and_then(|s| s.parse().ok()).unwrap_or(512)
    ))]

    /// (a) Any bytes: no panic, well-formed output, raw chunks consistent.
    #[test]
    fn any_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..512),
                             cuts in prop::collection::vec(any::<prop::sample::Index>(), 0..8)) {
        let chunks = split(&bytes, &cuts);
        let out = decode_chunks(&mut Decoder::with_max_sysex_len(64), &chunks);
        well_formed(&out);
        // Raw parser: SysEx chunks hold only SysEx bytes, starts begin with F0.
        let mut p = Parser::new();
        let mut emitted = 0usize;
        for c in &chunks {
            p.feed(c, |e| {
                emitted += 1;
                if let Event::Sysex(s) = e {
                    assert!(!s.aborted || s.end);
                    assert!(!s.bytes.is_empty() || s.end);
                    for (i, &b) in s.bytes.iter().enumerate() {
                        let ok = b < 0x80
                            || (b == 0xF0 && i == 0 && s.start)
                            || (b == 0xF7 && i == s.bytes.len() - 1 && s.end && !s.aborted);
                        assert!(ok, "byte {b:02X} in chunk {s:02X?}");
                    }
                }
            });
        }
        prop_assert!(emitted <= bytes.len() + 1);
    }

    /// (b) Embedded messages are recovered after any garbage prefix.
    #[test]
    fn embedded_messages_survive_any_garbage(
        garbage in prop::collection::vec(any::<u8>(), 0..64),
        (bytes, expected) in stream(),
    ) {
        let mut d = Decoder::new();
        let _ = decode_chunks(&mut d, &[&garbage]);
        let out = decode_chunks(&mut d, &[&bytes]);
        let aborted: Vec<usize> = out.iter().enumerate()
            .filter(|(_, o)| **o == Out::Aborted).map(|(i, _)| i).collect();
        prop_assert!(aborted.len() <= 1, "{out:?}");
        if let Some(&i) = aborted.first() {
            prop_assert!(out[..i].iter().all(|o| matches!(o, Out::Msg(m) if m.is_realtime())));
        }
        let recovered: Vec<Out> = out.into_iter().filter(|o| *o != Out::Aborted).collect();
        prop_assert_eq!(recovered, expected);
        // Without garbage the stream decodes cleanly.
        let mut clean = Decoder::new();
        let out = decode_chunks(&mut clean, &[&bytes]);
        prop_assert_eq!(clean.stats(), Default::default());
        prop_assert!(!out.contains(&Out::Aborted));
    }

    /// (c) Chunking does not change the output.
    #[test]
    fn chunking_does_not_change_output(
        garbage in prop::collection::vec(any::<u8>(), 0..64),
        (bytes, _) in stream(),
        cuts in prop::collection::vec(any::<prop::sample::Index>(), 0..32),
    ) {
        let mut whole = garbage;
        whole.extend_from_slice(&bytes);
        let mut one = Decoder::new();
        let expected = decode_chunks(&mut one, &[&whole]);
        let mut many = Decoder::new();
        let got = decode_chunks(&mut many, &split(&whole, &cuts));
        prop_assert_eq!(got, expected);
        prop_assert_eq!(many.stats(), one.stats());
        // Byte by byte too.
        let singles: Vec<&[u8]> = whole.chunks(1).collect();
        let mut bytewise = Decoder::new();
        let got = decode_chunks(&mut bytewise, &singles);
        prop_assert_eq!(got, decode_chunks(&mut Decoder::new(), &[&whole]));
    }
}
