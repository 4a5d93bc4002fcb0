//! The MicroFreak's MIDI CC chart: which control changes are sound
//! parameters (recorded in the enchanter, sent back on recall) and which
//! are playing (forwarded to the bard).
//!
//! Source: the MIDI CC chart of Arturia's MicroFreak user manual (chapter
//! "MIDI Implementation" / appendix "CC# values", manual v5), as
//! reproduced in the open MIDI CC dataset of midi.guide
//! (`github.com/usercamp/midi`, `Arturia/MicroFreak.csv`: 21 rows, every
//! value 0..=127, no NRPN) and in the MicroFreak references of other open
//! projects that cite the manual's appendix. Arturia's PDF itself was not
//! reachable from here: every number below agrees across those copies but
//! is not checked against the PDF. Not confirmed either: that every
//! firmware transmits all of them (the chart lists what the MicroFreak
//! receives; the knobs send the same numbers); and CC 9 (oscillator
//! type): Arturia's forum reports that the values the MicroFreak
//! *transmits* for some types fall outside the ranges it *receives* for
//! them, so a recalled type may land on the neighbouring one. The imp sends
//! back exactly the value it recorded.

/// One parameter of the chart.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Param {
    /// Controller number.
    pub cc: u8,
    /// The panel's name for it.
    pub name: &'static str,
}

const fn p(cc: u8, name: &'static str) -> Param {
    Param { cc, name }
}

/// The sound parameters of the chart, by controller number.
pub const PARAMS: [Param; 20] = [
    p(2, "keyboard spice"),
    p(5, "glide"),
    p(9, "oscillator type"),
    p(10, "oscillator wave"),
    p(12, "oscillator timbre"),
    p(13, "oscillator shape"),
    p(23, "filter cutoff"),
    p(24, "cycling envelope amount"),
    p(26, "envelope filter amount"),
    p(28, "cycling envelope hold"),
    p(29, "envelope sustain"),
    p(83, "filter resonance"),
    p(91, "arpeggiator/sequencer rate (free)"),
    p(92, "arpeggiator/sequencer rate (sync)"),
    p(93, "LFO rate (free)"),
    p(94, "LFO rate (sync)"),
    p(102, "cycling envelope rise"),
    p(103, "cycling envelope fall"),
    p(105, "envelope attack"),
    p(106, "envelope decay"),
];

/// The one control change of the chart that is playing, not sound: the
/// keyboard's Hold button (CC 64, the sustain pedal's number). It goes to
/// the bard like a pedal, and is never recorded.
pub const HOLD: u8 = 64;

/// True when `cc` is one of [`PARAMS`].
pub const fn is_param(cc: u8) -> bool {
    let mut i = 0;
    while i < PARAMS.len() {
        if PARAMS[i].cc == cc {
            return true;
        }
        i += 1;
    }
    false
}

/// The parameter's name, if `cc` is one.
pub fn name(cc: u8) -> Option<&'static str> {
    PARAMS.iter().find(|p| p.cc == cc).map(|p| p.name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_chart_is_sorted_unique_and_leaves_hold_and_mode_messages_out() {
        assert!(PARAMS.windows(2).all(|w| w[0].cc < w[1].cc));
        assert!(!is_param(HOLD));
        assert!((120..=127).all(|cc| !is_param(cc)));
        assert!(is_param(23) && is_param(83) && is_param(5) && is_param(9));
        assert_eq!(name(23), Some("filter cutoff"));
        assert_eq!(name(1), None);
    }
}
