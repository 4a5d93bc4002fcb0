//! The settings keyboard: which key does what while the soft pedal is held,
//! and the recognition of taps, holds, multi-taps and the store modifier.
//!
//! Pure and allocation-free: [`Settings`] takes key presses and releases
//! with their sample times (the engine's clock, never the wall clock) and
//! reports [`Action`]s through a callback. [`Settings::tick`] lets time pass
//! without a key event (a number entry that ends, a key held long enough),
//! so the RT part calls it once per block.
//!
//! The key map (A0 = 21 … C8 = 108), grouped by octave:
//!
//! | keys | notes | what |
//! |---|---|---|
//! | A0 | 21 | **store** modifier: hold it and tap a preset key to save |
//! | A#0 | 22 | metronome on/off |
//! | B0 | 23 | drum mode on/off |
//! | C1–B2 | 24–47 | presets 1–24: tap = recall (with store held: save) |
//! | C3–D#4 | 48–63 | number keys 1–16 (multi-tap adds 16) |
//! | E4–G#4 | 64–68 | where numbers go: program (default), bank, output, channel, zone |
//! | A4, A#4 | 69, 70 | octave down, up (held ≥ 500 ms: octave 0) |
//! | B4 | 71 | transpose reset (octave and semitone 0) |
//! | C5–B5 | 72–83 | key signature, the key of the pitch pressed: C Db D Eb E F F# G Ab A Bb B |
//! | C6, C#6 | 84, 85 | semitone down, up (held ≥ 500 ms: semitone 0) |
//! | D6 | 86 | arpeggiator on/off |
//! | D#6–F#6 | 87–90 | arpeggiator pattern 1–4 |
//! | G6–B6 | 91–95 | drum pattern 1–5 (tap the running one to stop) |
//! | C7–F7 | 96–101 | time signature 2/4 3/4 4/4 5/4 6/8 7/8 |
//! | F#7–C8 | 102–108 | tempo 60 72 90 100 120 140 160 |

/// A0: held while a preset key is tapped, the preset is saved.
pub const STORE: u8 = 21;
/// A#0: metronome on/off.
pub const METRONOME: u8 = 22;
/// B0: drum mode on/off.
pub const DRUM_MODE: u8 = 23;
/// C1: preset 1 (… B2: preset 24).
pub const FIRST_PRESET: u8 = 24;
/// Presets per zone (the enchanter's 24).
pub const PRESETS: u8 = 24;
/// C3: number key 1 (… D#4: number key 16).
pub const FIRST_NUMBER: u8 = 48;
/// Number keys.
pub const NUMBERS: u8 = 16;
/// E4: the first number-target key (program, bank, output, channel, zone).
pub const FIRST_TARGET: u8 = 64;
/// A4: octave down.
pub const OCTAVE_DOWN: u8 = 69;
/// A#4: octave up.
pub const OCTAVE_UP: u8 = 70;
/// B4: octave and semitone back to 0.
pub const TRANSPOSE_RESET: u8 = 71;
/// C5: key signature C (… B5: B), by the pitch pressed.
pub const FIRST_KEY: u8 = 72;
/// C6: semitone down.
pub const SEMITONE_DOWN: u8 = 84;
/// C#6: semitone up.
pub const SEMITONE_UP: u8 = 85;
/// D6: arpeggiator on/off.
pub const ARP: u8 = 86;
/// D#6: arpeggiator pattern 1 (… F#6: pattern 4).
pub const FIRST_ARP_PATTERN: u8 = 87;
/// G6: drum pattern 1 (… B6: pattern 5).
pub const FIRST_DRUM_PATTERN: u8 = 91;
/// C7: the first time-signature key.
pub const FIRST_TIME_SIGNATURE: u8 = 96;
/// F#7: the first tempo key.
pub const FIRST_TEMPO: u8 = 102;

/// The key names the key-signature keys set (5 flats … 6 sharps), by
/// pitch class from C.
pub const KEY_NAMES: [&str; 12] = [
    "C", "Db", "D", "Eb", "E", "F", "F#", "G", "Ab", "A", "Bb", "B",
];
/// The time signatures of C7–F7.
pub const TIME_SIGNATURES: [&str; 6] = ["2/4", "3/4", "4/4", "5/4", "6/8", "7/8"];
/// The tempos (BPM) of F#7–C8.
pub const TEMPOS: [u16; 7] = [60, 72, 90, 100, 120, 140, 160];

/// Between two taps of a number key that count into the same number, and
/// from the last tap until the number is sent.
pub const MULTI_TAP_MS: f64 = 400.0;
/// A transpose key held this long resets its transpose instead of stepping.
pub const HOLD_MS: f64 = 500.0;

/// Where an entered number goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Target {
    /// The zone's program, 1..=128.
    Program,
    /// The zone's bank: number k is bank k − 1 (0..=127).
    Bank,
    /// The zone's numbered bard output: number k is output k − 1.
    Output,
    /// The zone's output MIDI channel, 1..=16.
    Channel,
    /// The zone to edit (`selected`), 1..=14.
    Zone,
}

impl Target {
    const ALL: [Target; 5] = [
        Target::Program,
        Target::Bank,
        Target::Output,
        Target::Channel,
        Target::Zone,
    ];

    /// The value number `n` (1-based, as entered) sets, or `None` when out
    /// of the key's range.
    pub fn value(self, n: u16) -> Option<u16> {
        let ok = match self {
            Target::Program | Target::Bank => (1..=128).contains(&n),
            Target::Output => (1..=256).contains(&n),
            Target::Channel => (1..=16).contains(&n),
            Target::Zone => (1..=14).contains(&n),
        };
        ok.then(|| match self {
            Target::Bank | Target::Output => n - 1,
            _ => n,
        })
    }
}

/// What a gesture asks for. Toggles and drum patterns are resolved against
/// the enchanter's current state by the caller.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    /// A number entered for a target, already in the key's range.
    Number(Target, u16),
    /// A number out of the target's range (entered, not sent).
    OutOfRange(Target, u16),
    /// Recall preset 1..=24 of the selected zone.
    Recall(u8),
    /// Save the selected zone into preset 1..=24.
    Save(u8),
    /// Octave transpose by ±1.
    Octave(i8),
    /// Semitone transpose by ±1.
    Semitone(i8),
    /// Octave back to 0 (a held octave key).
    OctaveReset,
    /// Semitone back to 0 (a held semitone key).
    SemitoneReset,
    /// Octave and semitone back to 0.
    TransposeReset,
    /// Key signature: index into [`KEY_NAMES`].
    Key(u8),
    /// Arpeggiator on/off.
    ArpToggle,
    /// Arpeggiator pattern 1..=4.
    ArpPattern(u8),
    /// Drum mode on/off.
    DrumModeToggle,
    /// Drum pattern 1..=5: start it, or stop it when it is the one running.
    DrumPattern(u8),
    /// Metronome on/off.
    MetronomeToggle,
    /// Tempo in BPM.
    Tempo(u16),
    /// Time signature: index into [`TIME_SIGNATURES`].
    TimeSignature(u8),
}

/// A transpose key that acts on release (tap) or after [`HOLD_MS`] (hold).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Hold {
    Up,
    Down(u64),
    /// The hold already fired; the release does nothing.
    Fired,
}

/// The number being entered: key 1..=16 tapped `taps` times, the last at
/// sample `last`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Entry {
    key: u8,
    taps: u16,
    last: u64,
}

/// The gesture recogniser (one per imp; state survives leaving settings
/// mode, except what [`Settings::leave`] ends).
#[derive(Clone, Debug)]
pub struct Settings {
    multi_tap: u64,
    hold: u64,
    store_held: bool,
    target: Target,
    entry: Option<Entry>,
    /// Octave down, octave up, semitone down, semitone up.
    holds: [Hold; 4],
}

/// The transpose keys with a hold gesture, in `Settings::holds` order.
const HOLD_KEYS: [u8; 4] = [OCTAVE_DOWN, OCTAVE_UP, SEMITONE_DOWN, SEMITONE_UP];

impl Settings {
    /// A recogniser for `sample_rate` (the time windows are counted in samples).
    pub fn new(sample_rate: f64) -> Settings {
        let samples = |ms: f64| (ms * sample_rate / 1000.0).round().max(1.0) as u64;
        Settings {
            multi_tap: samples(MULTI_TAP_MS),
            hold: samples(HOLD_MS),
            store_held: false,
            target: Target::Program,
            entry: None,
            holds: [Hold::Up; 4],
        }
    }

    /// Where numbers go now.
    pub fn target(&self) -> Target {
        self.target
    }

    /// True while a number is being entered (not sent yet).
    pub fn entering(&self) -> bool {
        self.entry.is_some()
    }

    /// A key went down at sample `at`.
    pub fn key_down(&mut self, note: u8, at: u64, out: &mut impl FnMut(Action)) {
        self.tick(at, out);
        if let Some(k) = index(note, FIRST_NUMBER, NUMBERS) {
            let key = k + 1;
            match &mut self.entry {
                // The next tap of the same key, in time: the same number, 16 more.
                Some(e) if e.key == key && at.saturating_sub(e.last) <= self.multi_tap => {
                    e.taps = e.taps.saturating_add(1);
                    e.last = at;
                }
                _ => {
                    self.commit(out);
                    self.entry = Some(Entry {
                        key,
                        taps: 1,
                        last: at,
                    });
                }
            }
            return;
        }
        // Any other key ends the number first, so it goes where it was meant
        // to go and before what this key does.
        if note != STORE {
            self.commit(out);
        }
        if let Some(i) = HOLD_KEYS.iter().position(|&k| k == note) {
            self.holds[i] = Hold::Down(at);
            return;
        }
        let action = match note {
            STORE => {
                self.store_held = true;
                return;
            }
            METRONOME => Action::MetronomeToggle,
            DRUM_MODE => Action::DrumModeToggle,
            TRANSPOSE_RESET => Action::TransposeReset,
            ARP => Action::ArpToggle,
            _ => {
                if let Some(p) = index(note, FIRST_PRESET, PRESETS) {
                    if self.store_held {
                        Action::Save(p + 1)
                    } else {
                        Action::Recall(p + 1)
                    }
                } else if let Some(t) = index(note, FIRST_TARGET, Target::ALL.len() as u8) {
                    self.target = Target::ALL[t as usize];
                    return;
                } else if let Some(k) = index(note, FIRST_KEY, 12) {
                    Action::Key(k)
                } else if let Some(p) = index(note, FIRST_ARP_PATTERN, 4) {
                    Action::ArpPattern(p + 1)
                } else if let Some(p) = index(note, FIRST_DRUM_PATTERN, 5) {
                    Action::DrumPattern(p + 1)
                } else if let Some(t) = index(note, FIRST_TIME_SIGNATURE, 6) {
                    Action::TimeSignature(t)
                } else if let Some(t) = index(note, FIRST_TEMPO, TEMPOS.len() as u8) {
                    Action::Tempo(TEMPOS[t as usize])
                } else {
                    // Below A0 or above C8: not a P-85 key.
                    return;
                }
            }
        };
        out(action);
    }

    /// A key came up at sample `at`.
    pub fn key_up(&mut self, note: u8, at: u64, out: &mut impl FnMut(Action)) {
        self.tick(at, out);
        if note == STORE {
            self.store_held = false;
            return;
        }
        if let Some(i) = HOLD_KEYS.iter().position(|&k| k == note) {
            // Released before the hold time: a tap, one step.
            if let Hold::Down(_) = self.holds[i] {
                out(step(i));
            }
            self.holds[i] = Hold::Up;
        }
    }

    /// Time passed up to sample `now` without a key event: a number whose
    /// last tap is older than the multi-tap window is sent, a transpose key
    /// held for the hold time resets its transpose.
    pub fn tick(&mut self, now: u64, out: &mut impl FnMut(Action)) {
        if let Some(e) = self.entry {
            if now.saturating_sub(e.last) > self.multi_tap {
                self.commit(out);
            }
        }
        for i in 0..HOLD_KEYS.len() {
            if let Hold::Down(since) = self.holds[i] {
                if now.saturating_sub(since) >= self.hold {
                    self.holds[i] = Hold::Fired;
                    out(if i < 2 {
                        Action::OctaveReset
                    } else {
                        Action::SemitoneReset
                    });
                }
            }
        }
    }

    /// The soft pedal came up (or the piano went away): the number being
    /// entered is sent, the store modifier and any held transpose key are
    /// forgotten (their release will not reach this recogniser).
    pub fn leave(&mut self, out: &mut impl FnMut(Action)) {
        self.commit(out);
        self.store_held = false;
        self.holds = [Hold::Up; 4];
    }

    /// Sends the number being entered, if any.
    fn commit(&mut self, out: &mut impl FnMut(Action)) {
        if let Some(e) = self.entry.take() {
            let n = (e.key as u16).saturating_add(16u16.saturating_mul(e.taps - 1));
            out(match self.target.value(n) {
                Some(v) => Action::Number(self.target, v),
                None => Action::OutOfRange(self.target, n),
            });
        }
    }
}

/// The tap of hold key `i` (see `HOLD_KEYS`).
fn step(i: usize) -> Action {
    match i {
        0 => Action::Octave(-1),
        1 => Action::Octave(1),
        2 => Action::Semitone(-1),
        _ => Action::Semitone(1),
    }
}

/// `note - first` when `note` is one of the `count` keys from `first`.
fn index(note: u8, first: u8, count: u8) -> Option<u8> {
    note.checked_sub(first).filter(|&i| i < count)
}

#[cfg(test)]
mod tests {
    use super::*;

    const SR: f64 = 48_000.0;
    /// Samples in `ms` milliseconds at 48 kHz.
    fn ms(ms: u64) -> u64 {
        ms * 48
    }

    /// A scripted event: key down or up (or just time passing) at a time in ms.
    #[derive(Clone, Copy)]
    enum Ev {
        Down(u8, u64),
        Up(u8, u64),
        Tick(u64),
        Leave,
    }
    use Ev::*;

    fn tap(note: u8, at: u64) -> [Ev; 2] {
        [Down(note, at), Up(note, at + 50)]
    }

    fn run(events: &[Ev]) -> Vec<Action> {
        let mut s = Settings::new(SR);
        let mut got = Vec::new();
        let mut out = |a| got.push(a);
        for e in events {
            match *e {
                Down(n, t) => s.key_down(n, ms(t), &mut out),
                Up(n, t) => s.key_up(n, ms(t), &mut out),
                Tick(t) => s.tick(ms(t), &mut out),
                Leave => s.leave(&mut out),
            }
        }
        got
    }

    fn seq(parts: &[&[Ev]]) -> Vec<Ev> {
        parts.iter().flat_map(|p| p.iter().copied()).collect()
    }

    #[test]
    fn the_map_covers_the_88_keys_without_overlap() {
        // Every key from A0 to C8 does one thing; nothing outside does anything.
        let mut owner = [0u8; 128];
        let mut mark = |first: u8, count: u8| {
            for n in first..first + count {
                owner[n as usize] += 1;
            }
        };
        mark(STORE, 1);
        mark(METRONOME, 1);
        mark(DRUM_MODE, 1);
        mark(FIRST_PRESET, PRESETS);
        mark(FIRST_NUMBER, NUMBERS);
        mark(FIRST_TARGET, 5);
        mark(OCTAVE_DOWN, 1);
        mark(OCTAVE_UP, 1);
        mark(TRANSPOSE_RESET, 1);
        mark(FIRST_KEY, 12);
        mark(SEMITONE_DOWN, 1);
        mark(SEMITONE_UP, 1);
        mark(ARP, 1);
        mark(FIRST_ARP_PATTERN, 4);
        mark(FIRST_DRUM_PATTERN, 5);
        mark(FIRST_TIME_SIGNATURE, 6);
        mark(FIRST_TEMPO, TEMPOS.len() as u8);
        for (n, &c) in owner.iter().enumerate() {
            let on_piano = (21..=108).contains(&n);
            assert_eq!(c, u8::from(on_piano), "key {n}");
        }
        assert!(run(&seq(&[&tap(20, 0), &tap(109, 100), &[Tick(2000)]])).is_empty());
    }

    #[test]
    fn one_tap_of_number_key_k_is_k_after_the_window() {
        // Key 5 = C3 + 4. Nothing until 400 ms after the tap.
        let five = FIRST_NUMBER + 4;
        assert!(run(&seq(&[&tap(five, 0), &[Tick(400)]])).is_empty());
        assert_eq!(
            run(&seq(&[&tap(five, 0), &[Tick(401)]])),
            [Action::Number(Target::Program, 5)]
        );
    }

    #[test]
    fn taps_in_time_add_16_each() {
        let five = FIRST_NUMBER + 4;
        assert_eq!(
            run(&seq(&[&tap(five, 0), &tap(five, 300), &[Tick(1000)]])),
            [Action::Number(Target::Program, 21)]
        );
        // Each tap within 400 ms of the one before, however long the chain.
        let mut ev = Vec::new();
        for i in 0..8 {
            ev.extend(tap(FIRST_NUMBER + 15, i * 390));
        }
        ev.push(Tick(10_000));
        assert_eq!(run(&ev), [Action::Number(Target::Program, 128)]);
    }

    #[test]
    fn a_tap_too_late_starts_a_new_number() {
        let two = FIRST_NUMBER + 1;
        // 401 ms after the first tap: the first number is sent, then a new one.
        assert_eq!(
            run(&seq(&[&tap(two, 0), &tap(two, 401), &[Tick(2000)]])),
            [
                Action::Number(Target::Program, 2),
                Action::Number(Target::Program, 2)
            ]
        );
    }

    #[test]
    fn another_number_key_sends_the_first_number_at_once() {
        let (one, three) = (FIRST_NUMBER, FIRST_NUMBER + 2);
        let got = run(&seq(&[&tap(one, 0), &tap(three, 100)]));
        assert_eq!(got, [Action::Number(Target::Program, 1)]);
        let got = run(&seq(&[&tap(one, 0), &tap(three, 100), &[Tick(600)]]));
        assert_eq!(
            got,
            [
                Action::Number(Target::Program, 1),
                Action::Number(Target::Program, 3)
            ]
        );
    }

    #[test]
    fn target_keys_choose_where_numbers_go_and_convert_them() {
        let one = FIRST_NUMBER;
        let t = |i: u8| FIRST_TARGET + i;
        let got = run(&seq(&[
            &tap(t(1), 0),
            &tap(one, 100), // bank 0
            &tap(t(2), 200),
            &tap(one + 2, 300), // output 2
            &tap(t(3), 400),
            &tap(one + 9, 500), // channel 10
            &tap(t(4), 600),
            &tap(one + 1, 700), // zone 2
            &[Tick(2000)],
        ]));
        assert_eq!(
            got,
            [
                Action::Number(Target::Bank, 0),
                Action::Number(Target::Output, 2),
                Action::Number(Target::Channel, 10),
                Action::Number(Target::Zone, 2),
            ]
        );
    }

    #[test]
    fn a_target_key_during_entry_sends_the_number_to_the_old_target() {
        let got = run(&seq(&[
            &tap(FIRST_NUMBER + 6, 0),
            &tap(FIRST_TARGET + 3, 100),
            &[Tick(1000)],
        ]));
        assert_eq!(got, [Action::Number(Target::Program, 7)]);
    }

    #[test]
    fn numbers_out_of_range_are_reported_not_sent() {
        let got = run(&seq(&[
            &tap(FIRST_TARGET + 3, 0), // channel
            &tap(FIRST_NUMBER + 4, 100),
            &tap(FIRST_NUMBER + 4, 200), // 21: no such channel
            &[Tick(1000)],
        ]));
        assert_eq!(got, [Action::OutOfRange(Target::Channel, 21)]);
    }

    #[test]
    fn preset_keys_recall_and_save_with_the_store_modifier() {
        let p = |n: u8| FIRST_PRESET + n - 1;
        let got = run(&seq(&[
            &tap(p(1), 0),
            &[Down(STORE, 100)],
            &tap(p(4), 200),
            &tap(p(24), 300),
            &[Up(STORE, 400)],
            &tap(p(4), 500),
        ]));
        assert_eq!(
            got,
            [
                Action::Recall(1),
                Action::Save(4),
                Action::Save(24),
                Action::Recall(4)
            ]
        );
    }

    #[test]
    fn the_store_key_alone_does_nothing_and_does_not_end_a_number() {
        let got = run(&seq(&[
            &tap(FIRST_NUMBER, 0),
            &tap(STORE, 100),
            &tap(FIRST_NUMBER, 200),
            &[Tick(1000)],
        ]));
        assert_eq!(got, [Action::Number(Target::Program, 17)]);
    }

    #[test]
    fn a_transpose_tap_steps_on_release_and_a_hold_resets() {
        assert_eq!(
            run(&seq(&[&tap(OCTAVE_UP, 0), &tap(OCTAVE_UP, 100)])),
            [Action::Octave(1), Action::Octave(1)]
        );
        assert_eq!(
            run(&[Down(OCTAVE_DOWN, 0), Up(OCTAVE_DOWN, 499)]),
            [Action::Octave(-1)]
        );
        // Held 500 ms: the reset fires while it is still held (a tick), and
        // the release adds nothing.
        assert_eq!(
            run(&[Down(OCTAVE_DOWN, 0), Tick(499)]),
            Vec::<Action>::new()
        );
        assert_eq!(
            run(&[Down(OCTAVE_DOWN, 0), Tick(500), Up(OCTAVE_DOWN, 900)]),
            [Action::OctaveReset]
        );
        assert_eq!(
            run(&[Down(SEMITONE_UP, 0), Up(SEMITONE_UP, 1200)]),
            [Action::SemitoneReset]
        );
        assert_eq!(
            run(&seq(&[&tap(SEMITONE_DOWN, 0), &tap(TRANSPOSE_RESET, 100)])),
            [Action::Semitone(-1), Action::TransposeReset]
        );
    }

    #[test]
    fn the_single_keys_and_the_groups() {
        let got = run(&seq(&[
            &tap(METRONOME, 0),
            &tap(DRUM_MODE, 10),
            &tap(ARP, 20),
            &tap(FIRST_ARP_PATTERN + 2, 30),
            &tap(FIRST_DRUM_PATTERN + 4, 40),
            &tap(FIRST_KEY + 4, 50),
            &tap(FIRST_KEY + 1, 60),
            &tap(FIRST_TIME_SIGNATURE + 4, 70),
            &tap(FIRST_TEMPO, 80),
            &tap(108, 90),
        ]));
        assert_eq!(
            got,
            [
                Action::MetronomeToggle,
                Action::DrumModeToggle,
                Action::ArpToggle,
                Action::ArpPattern(3),
                Action::DrumPattern(5),
                Action::Key(4),
                Action::Key(1),
                Action::TimeSignature(4),
                Action::Tempo(60),
                Action::Tempo(160),
            ]
        );
        assert_eq!(KEY_NAMES[4], "E");
        assert_eq!(TIME_SIGNATURES[4], "6/8");
    }

    #[test]
    fn another_key_sends_the_number_first() {
        let got = run(&seq(&[&tap(FIRST_NUMBER + 2, 0), &tap(FIRST_KEY, 100)]));
        assert_eq!(got, [Action::Number(Target::Program, 3), Action::Key(0)]);
    }

    #[test]
    fn leaving_sends_the_number_and_forgets_held_keys() {
        let got = run(&[
            Down(STORE, 0),
            Down(OCTAVE_UP, 10),
            Down(FIRST_NUMBER + 1, 20),
            Leave,
            // Released after the pedal came up: these never reach the
            // recogniser; the store modifier is no longer held.
            Down(FIRST_PRESET, 2000),
            Tick(5000),
        ]);
        assert_eq!(got, [Action::Number(Target::Program, 2), Action::Recall(1)]);
    }

    #[test]
    fn windows_follow_the_sample_rate() {
        // At 96 kHz, 400 ms is 38 400 samples.
        let mut s = Settings::new(96_000.0);
        let mut got = Vec::new();
        s.key_down(FIRST_NUMBER, 0, &mut |a| got.push(a));
        s.key_down(FIRST_NUMBER, 38_400, &mut |a| got.push(a));
        s.tick(76_800, &mut |a| got.push(a));
        assert!(got.is_empty(), "{got:?}");
        s.tick(76_801, &mut |a| got.push(a));
        assert_eq!(got, [Action::Number(Target::Program, 17)]);
    }
}
