//! Knobs K1–K8: their CCs decoded into steps, and the `adjust` gestures
//! they become. Pure and allocation-free (the RT part runs it).
//!
//! The pushed program ([`crate::program`]) sets the knobs to *relative*:
//! each sends CC 70–77 on channel 1 with the turn since its last message,
//! as a 7-bit two's complement number: 1 is one step clockwise, 127 one
//! step anticlockwise, a faster turn gives larger steps (2, 3, … and 126,
//! 125, …); 0 and 64 move nothing. Relative knobs have no position to
//! catch up with, so the first turn after a preset recall or a restart
//! already moves the setting from where it is, and the enchanter clamps
//! at both ends. (This is how community code reads the mk3's relative
//! mode, e.g. `1` = clockwise; Akai documents none of it.)

use crate::program::{KNOBS, KNOB_FIRST_CC};

/// The knob (0..8) that CC number `cc` is, if any.
pub fn knob_of(cc: u8) -> Option<usize> {
    let k = cc.wrapping_sub(KNOB_FIRST_CC) as usize;
    (k < KNOBS).then_some(k)
}

/// The steps a relative knob value means: 1..=63 clockwise, 65..=127
/// anticlockwise (value − 128), 0 and 64 none.
pub fn relative_delta(value: u8) -> i32 {
    match value & 0x7F {
        0 | 64 => 0,
        v @ 1..=63 => v as i32,
        v => v as i32 - 128,
    }
}

/// Turns waiting to be sent, at most this many (a full queue to the
/// enchanter keeps them here; beyond that the oldest is dropped, counted).
pub const PENDING: usize = 32;

/// Knob turns waiting for the enchanter, oldest first. Turns of the same
/// knob in a row add up into one gesture.
#[derive(Clone, Debug, Default)]
pub struct Turns {
    pending: imp::RtOutbox<(u8, i32), PENDING>,
    /// Turns dropped because the queue was full.
    pub lost: u64,
}

impl Turns {
    /// Adds a turn of `knob` by `delta` steps.
    pub fn push(&mut self, knob: usize, delta: i32) {
        if delta == 0 || knob >= KNOBS {
            return;
        }
        if let Some(last) = self.pending.back_mut() {
            if last.0 as usize == knob {
                last.1 = last.1.saturating_add(delta);
                return;
            }
        }
        if self.pending.push_dropping_oldest((knob as u8, delta)) {
            self.lost += 1;
        }
    }

    /// The oldest turn not sent yet: (knob, delta).
    pub fn next(&self) -> Option<(usize, i32)> {
        self.pending.front().map(|(k, d)| (k as usize, d))
    }

    /// The oldest turn went out.
    pub fn sent(&mut self) {
        self.pending.pop();
    }

    /// Turns waiting.
    pub fn len(&self) -> usize {
        self.pending.len()
    }

    /// Nothing waits.
    pub fn is_empty(&self) -> bool {
        self.pending.is_empty()
    }
}

/// The enchanter's `adjust` message for turning `key` by `delta`, written
/// by its `Display` (into a stack buffer on the engine thread). `key` is a
/// checked enchanter key (letters, digits, `_` and `.`: see [`check_key`]),
/// so it needs no JSON escaping.
#[derive(Clone, Copy, Debug)]
pub struct Adjust<'a> {
    /// The enchanter key.
    pub key: &'a str,
    /// Steps turned (negative: anticlockwise).
    pub delta: i32,
}

impl core::fmt::Display for Adjust<'_> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        let (key, delta) = (self.key, self.delta);
        write!(f, r#"{{"cmd":"adjust","key":"{key}","delta":{delta}}}"#)
    }
}

/// Whether `key` can be a knob's enchanter key: an `adjust`able key of
/// `crates/enchantment/KEYS.md`, bare (the selected zone's, or global) or
/// `ZONE.KEY`, or a drum pattern's `drums.P.length` / `drums.P.VOICE.note`.
/// `None` when it can, else why not.
pub fn check_key(key: &str) -> Option<String> {
    if key.is_empty()
        || key.len() > 60
        || !key
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'.')
    {
        return Some(format!(
            "knob key {key:?}: an enchanter key is letters, digits, `_` and `.`"
        ));
    }
    let last = key.rsplit('.').next().unwrap_or(key);
    let zone_key = enchantment::ZONE_KEYS.contains(&last);
    let global = enchantment::GLOBAL_KEYS.contains(&last) && last != "zones" && !key.contains('.');
    let drums = key.starts_with("drums.") && (last == "length" || last == "note");
    if zone_key || global || drums {
        None
    } else {
        Some(format!(
            "knob key {key:?} is no key `adjust` turns: zone keys ({}) bare or as ZONE.KEY, or global keys ({}) but `zones`",
            enchantment::ZONE_KEYS.join(", "),
            enchantment::GLOBAL_KEYS.join(", ")
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relative_values_decode_as_twos_complement() {
        assert_eq!(relative_delta(1), 1);
        assert_eq!(relative_delta(3), 3);
        assert_eq!(relative_delta(63), 63);
        assert_eq!(relative_delta(127), -1);
        assert_eq!(relative_delta(125), -3);
        assert_eq!(relative_delta(65), -63);
        assert_eq!(relative_delta(0), 0);
        assert_eq!(relative_delta(64), 0);
    }

    #[test]
    fn knobs_are_ccs_70_to_77() {
        assert_eq!(knob_of(70), Some(0));
        assert_eq!(knob_of(77), Some(7));
        assert_eq!(knob_of(69), None);
        assert_eq!(knob_of(78), None);
        assert_eq!(knob_of(1), None);
    }

    #[test]
    fn turns_of_one_knob_add_up_and_keep_their_order() {
        let mut t = Turns::default();
        t.push(0, 1);
        t.push(0, 1);
        t.push(2, -1);
        t.push(0, 0);
        t.push(0, 1);
        let mut got = Vec::new();
        while let Some(x) = t.next() {
            got.push(x);
            t.sent();
        }
        assert_eq!(got, vec![(0, 2), (2, -1), (0, 1)]);
        assert!(t.is_empty());
    }

    #[test]
    fn a_full_queue_drops_the_oldest_counted() {
        let mut t = Turns::default();
        for i in 0..PENDING + 3 {
            t.push(i % 2, 1);
        }
        assert_eq!(t.len(), PENDING);
        assert_eq!(t.lost, 3);
        assert_eq!(t.next(), Some((1, 1)));
    }

    #[test]
    fn the_gesture_is_the_enchanters_adjust() {
        let s = Adjust {
            key: "arp_rate",
            delta: -2,
        }
        .to_string();
        assert_eq!(s, r#"{"cmd":"adjust","key":"arp_rate","delta":-2}"#);
    }

    #[test]
    fn knob_keys_are_checked() {
        for ok in [
            "octave",
            "lower.scale",
            "2.chord",
            "tempo",
            "metronome",
            "drums.1.length",
            "drums.2.kick.note",
        ] {
            assert_eq!(check_key(ok), None, "{ok}");
        }
        for bad in ["", "octav", "zones", "lower.tempo", "drums.1.kick", "a\"b"] {
            assert!(check_key(bad).is_some(), "{bad}");
        }
    }
}
