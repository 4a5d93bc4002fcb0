//! The APC as the performer uses it: what each button, pad and knob does,
//! and what every LED shows. Pure and allocation-free, so the RT part runs
//! it on the engine thread; the gestures it produces go to the enchanter.
//!
//! | control | what it does |
//! |---|---|
//! | pads | the drum step editor: rows are the voices of the selected drum pattern (bottom: kick, snare, closed hat, open hat, top: clap), columns 8 steps of the page; a pad toggles its step (velocity 100) |
//! | Shift + pads | the preset selector: the top three rows are presets 1–8, 9–16, 17–24 of the selected zone; a pad recalls its preset |
//! | Shift + Record + pad | stores the selected zone's settings in that preset |
//! | buttons under the grid | select zone 1–8 |
//! | Shift + buttons under the grid | page 1–8 of the pattern (8 steps each) |
//! | buttons at the right | select drum pattern 1–5 |
//! | Play/Pause | start or stop the selected drum pattern |
//! | Stop All Clips | stop the drum pattern |
//! | knobs 1–8 | the selected zone's octave, semitone, program, key, scale, chord, arpeggiator pattern, arpeggiator rate (one step per detent) |
//! | keys | play the selected zone: on its input channel, moved by octaves into its note range |
//!
//! LEDs: a step that plays lights in its voice's colour; while the pattern
//! plays, the running step is a white column (on the mk1: yellow, red where
//! a step plays) moving in time with the engine's beat. In the Shift layer
//! a saved preset is green and the last recalled one pulses. The selected
//! zone's button is lit (in Shift: the page's), the selected pattern's
//! button is lit, blinking while it plays.

use crate::protocol::{self, button_led, pad_led, Color, Look, Model};
use imp::RtEvent;

/// Voices of a drum pattern (the enchanter's five).
pub const VOICES: usize = 5;
/// Most steps of a drum pattern.
pub const MAX_STEPS: usize = 64;
/// Presets per zone.
pub const PRESETS: u8 = 24;

/// What the enchanter's state says, as the surface needs it: a plain
/// value, so it crosses to the engine thread through a ring.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Snapshot {
    /// The selected drum pattern, 1..=5.
    pub pattern: u8,
    /// Its length in steps.
    pub length: u8,
    /// Its steps: velocity per voice and step (0 = off).
    pub steps: [[u8; MAX_STEPS]; VOICES],
    /// The drum pattern plays.
    pub playing: bool,
    /// The selected zone, from 1.
    pub zone: u8,
    /// Number of zones.
    pub zones: u8,
    /// Presets of the selected zone that hold something (bit n-1 = preset n).
    pub presets: u32,
    /// The selected zone's input channel (1..=16), 0 = any.
    pub channel: u8,
    /// The selected zone's note range.
    pub low: u8,
    /// The selected zone's note range.
    pub high: u8,
}

impl Default for Snapshot {
    fn default() -> Self {
        Snapshot {
            pattern: 1,
            length: 16,
            steps: [[0; MAX_STEPS]; VOICES],
            playing: false,
            zone: 1,
            zones: 1,
            presets: 0,
            channel: 0,
            low: 0,
            high: 127,
        }
    }
}

/// The keys the knobs turn, in order (a bare zone key: the selected zone).
pub const KNOB_KEYS: [&str; 8] = [
    "octave",
    "semitone",
    "program",
    "key",
    "scale",
    "chord",
    "arp_pattern",
    "arp_rate",
];

/// A gesture for the enchanter.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Gesture {
    /// Set one drum step.
    Step {
        /// 1..=5
        pattern: u8,
        /// 1..=5
        voice: u8,
        /// 1..=64
        step: u8,
        /// 0 = off
        velocity: u8,
    },
    /// Recall (or save) a preset of the selected zone.
    Preset {
        /// Save instead of recall.
        save: bool,
        /// 1..=24
        number: u8,
    },
    /// Select zone n (from 1).
    Zone(u8),
    /// Select drum pattern n.
    Pattern(u8),
    /// Start or stop the drum pattern.
    Drums(bool),
    /// Turn knob `n` (0..8) by `delta` steps.
    Knob(u8, i32),
}

/// The enchanter's control message for the gesture (JSON), written
/// without allocating.
impl core::fmt::Display for Gesture {
    fn fmt(&self, w: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match *self {
            Gesture::Step {
                pattern,
                voice,
                step,
                velocity,
            } => write!(
                w,
                r#"{{"cmd":"step","pattern":{pattern},"voice":{voice},"step":{step},"velocity":{velocity}}}"#
            ),
            Gesture::Preset { save, number } => write!(
                w,
                r#"{{"cmd":"preset","action":"{}","number":{number}}}"#,
                if save { "save" } else { "recall" }
            ),
            Gesture::Zone(n) => write!(w, r#"{{"cmd":"set","key":"selected","value":"{n}"}}"#),
            Gesture::Pattern(n) => {
                write!(w, r#"{{"cmd":"set","key":"drum_pattern","value":"{n}"}}"#)
            }
            Gesture::Drums(on) => write!(
                w,
                r#"{{"cmd":"set","key":"drums","value":"{}"}}"#,
                if on { "on" } else { "off" }
            ),
            Gesture::Knob(n, delta) => write!(
                w,
                r#"{{"cmd":"adjust","key":"{}","delta":{delta}}}"#,
                KNOB_KEYS[n as usize % 8]
            ),
        }
    }
}

/// Gestures waiting to be sent (a full queue on the way drops the oldest
/// here: counted).
const PENDING: usize = 32;

/// The surface's state on the engine thread.
pub struct Surface {
    model: Model,
    /// The enchanter's state, with this surface's own gestures applied
    /// ahead of its answer (so a second tap toggles back at once).
    pub state: Snapshot,
    shift: bool,
    record: bool,
    page: u8,
    recalled: Option<u8>,
    knob_last: [Option<u8>; 8],
    knob_rest: [i32; 8],
    /// The note each held key sent (channel, note), so its note-off
    /// matches whatever changed meanwhile.
    held: [Option<(u8, u8)>; 128],
    /// LED state the device has, by note: (status, velocity).
    sent: [Option<(u8, u8)>; 128],
    /// The running step shown (while playing).
    running: Option<u8>,
    pending: imp::RtOutbox<Gesture, PENDING>,
    /// Gestures lost to a full queue.
    pub lost: u64,
}

/// What an input event became.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Played {
    /// A note (or pedal) for the bard.
    Note(RtEvent),
    /// Used by the surface.
    Consumed,
}

impl Surface {
    /// A surface that has shown nothing yet (every LED is sent at the
    /// first [`Surface::leds`]).
    pub fn new(model: Model, state: Snapshot) -> Surface {
        Surface {
            model,
            state,
            shift: false,
            record: false,
            page: 0,
            recalled: None,
            knob_last: [None; 8],
            knob_rest: [0; 8],
            held: [None; 128],
            sent: [None; 128],
            running: None,
            pending: imp::RtOutbox::default(),
            lost: 0,
        }
    }

    /// Takes the enchanter's newest state.
    pub fn update(&mut self, state: Snapshot) {
        if state.zone != self.state.zone {
            self.recalled = None;
        }
        self.state = state;
        let pages = self.state.length.div_ceil(protocol::COLUMNS).max(1);
        if self.page >= pages {
            self.page = pages - 1;
        }
    }

    fn push(&mut self, g: Gesture) {
        if self.pending.push_dropping_oldest(g) {
            self.lost += 1;
        }
    }

    /// The oldest gesture not sent yet.
    pub fn next_gesture(&self) -> Option<Gesture> {
        self.pending.front()
    }

    /// The oldest gesture went out.
    pub fn sent_gesture(&mut self) {
        self.pending.pop();
    }

    /// One event from the device. `keys`: it came from the keys port.
    pub fn input(&mut self, e: &RtEvent, keys: bool) -> Played {
        if e.kind != imp::event_kind::MIDI || e.len == 0 {
            return Played::Consumed;
        }
        let b = e.bytes;
        let status = b[0] & 0xF0;
        let control_channel = b[0] & 0x0F == 0 && !keys;
        if control_channel && e.len == 3 && (status == 0x90 || status == 0x80) {
            let down = status == 0x90 && b[2] > 0;
            self.button(b[1], down);
            return Played::Consumed;
        }
        if control_channel && e.len == 3 && status == 0xB0 {
            let knob = b[1].wrapping_sub(protocol::KNOB_FIRST);
            if knob < 8 {
                let i = knob as usize;
                let d = protocol::knob_delta(
                    self.model,
                    b[2],
                    &mut self.knob_last[i],
                    &mut self.knob_rest[i],
                );
                if d != 0 {
                    self.push(Gesture::Knob(knob, d));
                }
                return Played::Consumed;
            }
        }
        self.key(e)
    }

    /// The keybed: notes move to the selected zone.
    fn key(&mut self, e: &RtEvent) -> Played {
        let mut out = *e;
        out.port = 0;
        let status = e.bytes[0] & 0xF0;
        let channel = match self.state.channel {
            1..=16 => self.state.channel - 1,
            _ => e.bytes[0] & 0x0F,
        };
        if e.len == 3 && (status == 0x80 || status == 0x90) {
            let key = e.bytes[1] as usize & 0x7F;
            if e.is_note_on() {
                let note = self.moved_into_zone(e.bytes[1]);
                self.held[key] = Some((channel, note));
                out.bytes = [0x90 | channel, note, e.bytes[2]];
            } else {
                let Some((ch, note)) = self.held[key].take() else {
                    return Played::Consumed;
                };
                out.bytes = [0x80 | ch, note, 0];
            }
            return Played::Note(out);
        }
        if (0x80..0xF0).contains(&e.bytes[0]) {
            out.bytes[0] = status | channel;
        }
        Played::Note(out)
    }

    /// Moves a key by octaves into the selected zone's range (when the
    /// range spans an octave or more).
    fn moved_into_zone(&self, note: u8) -> u8 {
        let (low, high) = (self.state.low as i16, self.state.high as i16);
        let mut n = note as i16;
        if high - low >= 11 {
            while n < low {
                n += 12;
            }
            while n > high {
                n -= 12;
            }
        }
        n.clamp(0, 127) as u8
    }

    fn button(&mut self, note: u8, down: bool) {
        match note {
            protocol::SHIFT => self.shift = down,
            protocol::RECORD => self.record = down,
            _ if !down => {}
            n if n < protocol::PADS => self.pad(n / protocol::COLUMNS, n % protocol::COLUMNS),
            n if (protocol::TRACK_FIRST..protocol::TRACK_FIRST + 8).contains(&n) => {
                let i = n - protocol::TRACK_FIRST;
                if self.shift {
                    if (i as u16 * 8) < self.state.length as u16 {
                        self.page = i;
                    }
                } else if i < self.state.zones {
                    self.state.zone = i + 1;
                    self.recalled = None;
                    self.push(Gesture::Zone(i + 1));
                }
            }
            n if (protocol::SCENE_FIRST..protocol::SCENE_FIRST + 5).contains(&n) => {
                let p = n - protocol::SCENE_FIRST + 1;
                self.state.pattern = p;
                self.push(Gesture::Pattern(p));
            }
            protocol::PLAY => {
                self.state.playing = !self.state.playing;
                self.push(Gesture::Drums(self.state.playing));
            }
            protocol::STOP_ALL => {
                self.state.playing = false;
                self.push(Gesture::Drums(false));
            }
            _ => {}
        }
    }

    fn pad(&mut self, row: u8, column: u8) {
        if self.shift {
            // Top row: presets 1–8, then 9–16, 17–24.
            let from_top = protocol::ROWS - 1 - row;
            let number = from_top * protocol::COLUMNS + column + 1;
            if number <= PRESETS {
                if self.record {
                    self.state.presets |= 1 << (number - 1);
                    self.push(Gesture::Preset { save: true, number });
                } else {
                    self.recalled = Some(number);
                    self.push(Gesture::Preset {
                        save: false,
                        number,
                    });
                }
            }
            return;
        }
        let voice = row as usize;
        let step = self.page as usize * protocol::COLUMNS as usize + column as usize;
        if voice >= VOICES || step >= self.state.length as usize {
            return;
        }
        let velocity = if self.state.steps[voice][step] > 0 {
            0
        } else {
            100
        };
        self.state.steps[voice][step] = velocity;
        self.push(Gesture::Step {
            pattern: self.state.pattern,
            voice: voice as u8 + 1,
            step: step as u8 + 1,
            velocity,
        });
    }

    /// The running step at `beat` (beats since the engine's start), or
    /// `None` when the pattern does not play. The pattern is laid from
    /// beat 0, a step per sixteenth, as the bard plays it.
    pub fn step_at(&self, beat: f64) -> Option<u8> {
        if !self.state.playing || !beat.is_finite() || beat < 0.0 {
            return None;
        }
        let sixteenths = (beat * 4.0 + 1e-9).floor() as u64;
        Some((sixteenths % self.state.length.max(1) as u64) as u8)
    }

    /// Moves the running light to `step`.
    pub fn set_running(&mut self, step: Option<u8>) {
        self.running = step;
    }

    /// The LED of every control, as it should be now: calls `show(bytes)`
    /// for each one that differs from what the device shows (everything,
    /// the first time).
    pub fn leds(&mut self, mut show: impl FnMut([u8; 3]) -> bool) {
        for row in 0..protocol::ROWS {
            for column in 0..protocol::COLUMNS {
                let look = self.pad_look(row, column);
                let bytes = pad_led(self.model, protocol::pad(row, column), look);
                self.send(bytes, &mut show);
            }
        }
        for i in 0..8u8 {
            let on = if self.shift {
                i == self.page
            } else {
                i + 1 == self.state.zone
            };
            self.send(button_led(protocol::TRACK_FIRST + i, on as u8), &mut show);
        }
        for i in 0..5u8 {
            let state = match (i + 1 == self.state.pattern, self.state.playing) {
                (false, _) => 0,
                (true, false) => 1,
                (true, true) => 2,
            };
            self.send(button_led(protocol::SCENE_FIRST + i, state), &mut show);
        }
    }

    /// Forgets what the device shows: every LED is sent again (after a
    /// reconnect).
    pub fn forget_leds(&mut self) {
        self.sent = [None; 128];
    }

    fn send(&mut self, bytes: [u8; 3], show: &mut impl FnMut([u8; 3]) -> bool) {
        let slot = &mut self.sent[bytes[1] as usize & 0x7F];
        if *slot != Some((bytes[0], bytes[2])) && show(bytes) {
            *slot = Some((bytes[0], bytes[2]));
        }
    }

    fn pad_look(&self, row: u8, column: u8) -> Look {
        if self.shift {
            let from_top = protocol::ROWS - 1 - row;
            let number = from_top * protocol::COLUMNS + column + 1;
            if number > PRESETS {
                return Look::Off;
            }
            if self.recalled == Some(number) {
                return Look::Pulse(Color::Green);
            }
            return if self.state.presets & (1 << (number - 1)) != 0 {
                Look::On(Color::Green)
            } else {
                Look::Off
            };
        }
        let voice = row as usize;
        let step = self.page as usize * protocol::COLUMNS as usize + column as usize;
        if step >= self.state.length as usize {
            return Look::Off;
        }
        let on = self.state.steps[voice][step] > 0;
        let running = self.running == Some(step as u8);
        match (self.model, on, running) {
            (Model::Mk2, true, false) => Look::On(VOICE_COLORS[voice]),
            (Model::Mk2, true, true) => Look::On(Color::White),
            (Model::Mk2, false, true) => Look::Dim(Color::White),
            (Model::Mk1, true, false) => Look::On(Color::Green),
            (Model::Mk1, true, true) => Look::On(Color::Red),
            (Model::Mk1, false, true) => Look::On(Color::Yellow),
            (_, false, false) => Look::Off,
        }
    }
}

/// Colours of the voices' rows, bottom up (kick, snare, closed hat, open
/// hat, clap).
const VOICE_COLORS: [Color; VOICES] = [
    Color::Red,
    Color::Orange,
    Color::Yellow,
    Color::Cyan,
    Color::Blue,
];

#[cfg(test)]
mod tests {
    use super::*;

    fn note(b: [u8; 3]) -> RtEvent {
        RtEvent::midi(0, &b)
    }

    fn all_leds(s: &mut Surface) -> Vec<[u8; 3]> {
        let mut v = Vec::new();
        s.leds(|b| {
            v.push(b);
            true
        });
        v
    }

    fn gestures(s: &mut Surface) -> Vec<Gesture> {
        let mut v = Vec::new();
        while let Some(g) = s.next_gesture() {
            v.push(g);
            s.sent_gesture();
        }
        v
    }

    #[test]
    fn every_led_first_then_only_changes() {
        let mut s = Surface::new(Model::Mk2, Snapshot::default());
        assert_eq!(all_leds(&mut s).len(), 40 + 8 + 5);
        assert!(all_leds(&mut s).is_empty());
        s.forget_leds();
        assert_eq!(all_leds(&mut s).len(), 53);
    }

    #[test]
    fn a_pad_toggles_its_step_and_lights() {
        let mut s = Surface::new(Model::Mk2, Snapshot::default());
        all_leds(&mut s);
        // Row 1 (snare), column 4: step 5.
        assert_eq!(s.input(&note([0x90, 12, 127]), false), Played::Consumed);
        s.input(&note([0x80, 12, 0]), false);
        assert_eq!(
            gestures(&mut s),
            vec![Gesture::Step {
                pattern: 1,
                voice: 2,
                step: 5,
                velocity: 100
            }]
        );
        assert_eq!(all_leds(&mut s), vec![[0x96, 12, 9]]);
        s.input(&note([0x90, 12, 127]), false);
        assert_eq!(
            gestures(&mut s),
            vec![Gesture::Step {
                pattern: 1,
                voice: 2,
                step: 5,
                velocity: 0
            }]
        );
        assert_eq!(all_leds(&mut s), vec![[0x90, 12, 0]]);
    }

    #[test]
    fn shift_pads_recall_and_record_stores_presets() {
        let mut s = Surface::new(Model::Mk1, Snapshot::default());
        s.input(&note([0x90, protocol::SHIFT, 127]), false);
        s.input(&note([0x90, 32 + 2, 127]), false); // top row, third: preset 3
        s.input(&note([0x90, protocol::RECORD, 127]), false);
        s.input(&note([0x90, 24, 127]), false); // second row, first: preset 9
        assert_eq!(
            gestures(&mut s),
            vec![
                Gesture::Preset {
                    save: false,
                    number: 3
                },
                Gesture::Preset {
                    save: true,
                    number: 9
                }
            ]
        );
        let leds = all_leds(&mut s);
        assert!(
            leds.contains(&[0x90, 34, 2]),
            "recalled: green blinking: {leds:?}"
        );
        assert!(leds.contains(&[0x90, 24, 1]), "saved: green: {leds:?}");
    }

    #[test]
    fn buttons_knobs_and_transport() {
        let mut s = Surface::new(
            Model::Mk2,
            Snapshot {
                zones: 2,
                ..Snapshot::default()
            },
        );
        s.input(&note([0x90, protocol::TRACK_FIRST + 1, 127]), false);
        s.input(&note([0x90, protocol::TRACK_FIRST + 5, 127]), false); // no zone 6
        s.input(&note([0x90, protocol::SCENE_FIRST + 2, 127]), false);
        s.input(&note([0x90, protocol::PLAY, 127]), false);
        s.input(&note([0xB0, protocol::KNOB_FIRST, 1]), false);
        s.input(&note([0xB0, protocol::KNOB_FIRST + 2, 126]), false);
        s.input(&note([0x90, protocol::STOP_ALL, 127]), false);
        assert_eq!(
            gestures(&mut s),
            vec![
                Gesture::Zone(2),
                Gesture::Pattern(3),
                Gesture::Drums(true),
                Gesture::Knob(0, 1),
                Gesture::Knob(2, -2),
                Gesture::Drums(false)
            ]
        );
        assert_eq!(
            Gesture::Knob(2, -2).to_string(),
            r#"{"cmd":"adjust","key":"program","delta":-2}"#
        );
    }

    #[test]
    fn keys_play_the_selected_zone_and_end_where_they_started() {
        let mut s = Surface::new(
            Model::Mk2,
            Snapshot {
                channel: 3,
                low: 60,
                high: 84,
                ..Snapshot::default()
            },
        );
        // C3 (48) moves up an octave into the zone, on its channel.
        let Played::Note(on) = s.input(&note([0x90, 48, 90]), true) else {
            panic!()
        };
        assert_eq!(on.bytes, [0x92, 60, 90]);
        // The zone changes while the key is held: the note-off still matches.
        s.update(Snapshot {
            channel: 5,
            low: 0,
            high: 127,
            ..Snapshot::default()
        });
        let Played::Note(off) = s.input(&note([0x80, 48, 0]), true) else {
            panic!()
        };
        assert_eq!(off.bytes, [0x82, 60, 0]);
        // A note-off for a key never pressed is dropped.
        assert_eq!(s.input(&note([0x80, 50, 0]), true), Played::Consumed);
    }

    #[test]
    fn the_running_step_follows_the_beat() {
        let mut s = Surface::new(
            Model::Mk2,
            Snapshot {
                playing: true,
                ..Snapshot::default()
            },
        );
        assert_eq!(s.step_at(0.0), Some(0));
        assert_eq!(s.step_at(0.26), Some(1));
        assert_eq!(s.step_at(4.0), Some(0));
        assert_eq!(s.step_at(3.99), Some(15));
        all_leds(&mut s);
        s.set_running(Some(2));
        // Column 2 of every row turns dim white.
        let leds = all_leds(&mut s);
        assert_eq!(leds.len(), 5, "{leds:?}");
        assert!(leds
            .iter()
            .all(|b| b[1] % 8 == 2 && b[0] == 0x92 && b[2] == 3));
    }
}
