//! The enchanter's control messages a gesture becomes, as small `Copy`
//! values formatted into JSON on the stack (no allocation on the engine
//! thread), and the fixed outbox that holds them until the realm's queue
//! takes them.

use core::fmt;

/// The enchanter keys the settings keyboard changes (bare zone keys mean
/// the selected zone).
pub const KEYS: [&str; 17] = [
    "selected",
    "program",
    "bank",
    "output",
    "out_channel",
    "octave",
    "semitone",
    "key",
    "scale",
    "arp",
    "arp_pattern",
    "drum_mode",
    "drums",
    "drum_pattern",
    "metronome",
    "tempo",
    "time_signature",
];

/// Index of `name` in [`KEYS`] (a constant lookup, for readable call sites).
pub const fn key(name: &str) -> u8 {
    let mut i = 0;
    while i < KEYS.len() {
        if eq(KEYS[i].as_bytes(), name.as_bytes()) {
            return i as u8;
        }
        i += 1;
    }
    panic!("not an enchanter key of the settings keyboard");
}

const fn eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    let mut i = 0;
    while i < a.len() {
        if a[i] != b[i] {
            return false;
        }
        i += 1;
    }
    true
}

/// A value as text: `on`, `off`, `major`, a key name, a time signature.
pub const TEXTS: [&str; 21] = [
    "on", "off", "major", "C", "Db", "D", "Eb", "E", "F", "F#", "G", "Ab", "A", "Bb", "B", "2/4",
    "3/4", "4/4", "5/4", "6/8", "7/8",
];
/// `TEXTS` index of "on".
pub const ON: u16 = 0;
/// `TEXTS` index of "off".
pub const OFF: u16 = 1;
/// `TEXTS` index of "major".
pub const MAJOR: u16 = 2;
/// `TEXTS` index of the first key name (C).
pub const FIRST_KEY_NAME: u16 = 3;
/// `TEXTS` index of the first time signature (2/4).
pub const FIRST_TIME_SIGNATURE: u16 = 15;

/// One control message for the enchanter. Plain numbers and indices, so it
/// can be copied, queued and handed to the next build in the transient
/// state.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Msg {
    /// `{"cmd":"set","key":KEYS[k],"value":"<n>"}`.
    SetNumber(u8, i32),
    /// `{"cmd":"set","key":KEYS[k],"value":TEXTS[t]}`.
    SetText(u8, u16),
    /// `{"cmd":"adjust","key":KEYS[k],"delta":d}`.
    Adjust(u8, i32),
    /// `{"cmd":"preset","action":"save","number":n}`.
    Save(u8),
    /// `{"cmd":"preset","action":"recall","number":n}`.
    Recall(u8),
}

impl fmt::Display for Msg {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = |k: u8| KEYS.get(k as usize).copied().unwrap_or("?");
        match *self {
            Msg::SetNumber(k, n) => {
                write!(f, r#"{{"cmd":"set","key":"{}","value":"{n}"}}"#, name(k))
            }
            Msg::SetText(k, t) => write!(
                f,
                r#"{{"cmd":"set","key":"{}","value":"{}"}}"#,
                name(k),
                TEXTS.get(t as usize).copied().unwrap_or("?")
            ),
            Msg::Adjust(k, d) => write!(f, r#"{{"cmd":"adjust","key":"{}","delta":{d}}}"#, name(k)),
            Msg::Save(n) => write!(f, r#"{{"cmd":"preset","action":"save","number":{n}}}"#),
            Msg::Recall(n) => write!(f, r#"{{"cmd":"preset","action":"recall","number":{n}}}"#),
        }
    }
}

impl Msg {
    /// Six bytes for the transient state.
    pub fn encode(&self) -> [u8; 6] {
        let (tag, a, b) = match *self {
            Msg::SetNumber(k, n) => (1, k, n),
            Msg::SetText(k, t) => (2, k, t as i32),
            Msg::Adjust(k, d) => (3, k, d),
            Msg::Save(n) => (4, n, 0),
            Msg::Recall(n) => (5, n, 0),
        };
        let b = b.clamp(i16::MIN as i32, i16::MAX as i32) as i16;
        let [b0, b1] = b.to_le_bytes();
        [tag, a, b0, b1, 0, 0]
    }

    /// Reads what [`Msg::encode`] wrote (`None` for anything else).
    pub fn decode(bytes: &[u8]) -> Option<Msg> {
        let [tag, a, b0, b1, ..] = *bytes else {
            return None;
        };
        let b = i16::from_le_bytes([b0, b1]) as i32;
        let known_key = (a as usize) < KEYS.len();
        Some(match tag {
            1 if known_key => Msg::SetNumber(a, b),
            2 if known_key && (0..TEXTS.len() as i32).contains(&b) => Msg::SetText(a, b as u16),
            3 if known_key => Msg::Adjust(a, b),
            4 => Msg::Save(a),
            5 => Msg::Recall(a),
            _ => return None,
        })
    }
}

/// Messages waiting for the realm's engine-thread queue: a fixed ring, so
/// queueing never allocates. A gesture that does not fit is counted, never
/// dropped silently.
pub type Outbox = imp::RtOutbox<Msg, OUTBOX>;

/// Messages the outbox holds: far more than a performer taps between two
/// blocks, and the realm's queue (256) is drained every few milliseconds.
pub const OUTBOX: usize = 128;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_are_the_enchanters_json() {
        let cases = [
            (
                Msg::SetNumber(key("selected"), 2),
                r#"{"cmd":"set","key":"selected","value":"2"}"#,
            ),
            (
                Msg::Adjust(key("octave"), 1),
                r#"{"cmd":"adjust","key":"octave","delta":1}"#,
            ),
            (
                Msg::Recall(5),
                r#"{"cmd":"preset","action":"recall","number":5}"#,
            ),
            (
                Msg::Save(24),
                r#"{"cmd":"preset","action":"save","number":24}"#,
            ),
            (
                Msg::SetText(key("key"), FIRST_KEY_NAME + 6),
                r#"{"cmd":"set","key":"key","value":"F#"}"#,
            ),
            (
                Msg::SetText(key("time_signature"), FIRST_TIME_SIGNATURE + 4),
                r#"{"cmd":"set","key":"time_signature","value":"6/8"}"#,
            ),
        ];
        for (m, json) in cases {
            assert_eq!(m.to_string(), json);
            let v: serde_json::Value = serde_json::from_str(json).unwrap();
            assert!(v.is_object());
            assert_eq!(Msg::decode(&m.encode()), Some(m));
        }
        assert_eq!(
            &TEXTS[FIRST_KEY_NAME as usize..FIRST_KEY_NAME as usize + 12],
            &crate::settings::KEY_NAMES
        );
        assert_eq!(
            &TEXTS[FIRST_TIME_SIGNATURE as usize..],
            &crate::settings::TIME_SIGNATURES
        );
        assert_eq!(Msg::decode(&[9, 0, 0, 0, 0, 0]), None);
    }

    #[test]
    fn the_outbox_keeps_order_and_refuses_when_full() {
        let mut o = Outbox::default();
        for i in 0..OUTBOX {
            assert!(o.push(Msg::Recall(i as u8)));
        }
        assert!(!o.push(Msg::Recall(0)));
        assert_eq!(o.front(), Some(Msg::Recall(0)));
        o.pop();
        assert!(o.push(Msg::Save(1)));
        assert_eq!(o.iter().last(), Some(Msg::Save(1)));
        assert_eq!(o.len(), OUTBOX);
    }
}
