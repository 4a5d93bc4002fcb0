//! The APC Key 25's MIDI implementation (AKAI's "APC Key 25 Communication
//! Protocol" documents, mk1 and mk2), as constants and encoders.
//!
//! Both models: the 5×8 pad grid sends note-on/off 0x00–0x27 on channel 1,
//! row by row from the bottom (bottom row 0x00–0x07, top row 0x20–0x27);
//! the eight buttons under the grid 0x40–0x47, the five at its right
//! 0x52–0x56, Stop All Clips 0x51, Play/Pause 0x5B, Record 0x5D, Shift
//! 0x62; the eight knobs CC 0x30–0x37 on channel 1 (mk2: relative, 1–63 up
//! and 127–65 down; mk1: absolute 0–127). An LED is set with a note-on to
//! its button's note: the pads of the mk2 take a colour from its 128-colour
//! palette as the velocity, and the MIDI channel sets the behaviour
//! (channels 1–7 brightness 10 % … 100 %, 8–11 pulsing, 12–16 blinking);
//! the mk1's pads take 0 off, 1 green, 2 green blinking, 3 red, 4 red
//! blinking, 5 yellow, 6 yellow blinking. The single-colour buttons take
//! 0 off, 1 on, 2 blinking on both.

/// Which APC Key 25.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Deserialize, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Model {
    /// The original (2014): tri-colour pads, absolute knobs.
    Mk1,
    /// The mk2 (2020): RGB pads, relative knobs.
    #[default]
    Mk2,
}

/// Pads: notes 0..PADS.
pub const PADS: u8 = 40;
/// Columns of the grid.
pub const COLUMNS: u8 = 8;
/// Rows of the grid.
pub const ROWS: u8 = 5;
/// The eight buttons under the grid.
pub const TRACK_FIRST: u8 = 0x40;
/// The five buttons at the right of the grid.
pub const SCENE_FIRST: u8 = 0x52;
/// Stop All Clips.
pub const STOP_ALL: u8 = 0x51;
/// Play/Pause.
pub const PLAY: u8 = 0x5B;
/// Record.
pub const RECORD: u8 = 0x5D;
/// Shift.
pub const SHIFT: u8 = 0x62;
/// The first knob's controller number (eight: 0x30..0x38).
pub const KNOB_FIRST: u8 = 0x30;

/// The pad at `row` (0 = bottom) and `column` (0 = left).
pub const fn pad(row: u8, column: u8) -> u8 {
    row * COLUMNS + column
}

/// A pad colour.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Color {
    /// Red.
    Red,
    /// Orange.
    Orange,
    /// Yellow.
    Yellow,
    /// Green.
    Green,
    /// Cyan.
    Cyan,
    /// Blue.
    Blue,
    /// White.
    White,
}

/// How a pad LED looks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Look {
    /// Dark.
    Off,
    /// Lit at a quarter of full brightness (mk1: lit).
    Dim(Color),
    /// Lit.
    On(Color),
    /// Pulsing (mk1: blinking).
    Pulse(Color),
    /// Blinking.
    Blink(Color),
}

/// The mk2 palette index of a colour.
const fn mk2_color(c: Color) -> u8 {
    match c {
        Color::Red => 5,
        Color::Orange => 9,
        Color::Yellow => 13,
        Color::Green => 21,
        Color::Cyan => 37,
        Color::Blue => 45,
        Color::White => 3,
    }
}

/// The mk1 velocity of a colour (lit), one more for blinking.
const fn mk1_color(c: Color) -> u8 {
    match c {
        Color::Red | Color::Orange => 3,
        Color::Yellow | Color::White => 5,
        Color::Green | Color::Cyan | Color::Blue => 1,
    }
}

/// The note-on that shows `look` on pad `pad`.
pub fn pad_led(model: Model, pad: u8, look: Look) -> [u8; 3] {
    match model {
        Model::Mk2 => {
            // Channel 7 = 100 %, 3 = 25 %, 10 = pulsing 1/4, 14 = blinking 1/4.
            let (channel, velocity) = match look {
                Look::Off => (0, 0),
                Look::Dim(c) => (2, mk2_color(c)),
                Look::On(c) => (6, mk2_color(c)),
                Look::Pulse(c) => (9, mk2_color(c)),
                Look::Blink(c) => (13, mk2_color(c)),
            };
            [0x90 | channel, pad, velocity]
        }
        Model::Mk1 => {
            let velocity = match look {
                Look::Off => 0,
                Look::Dim(c) | Look::On(c) => mk1_color(c),
                Look::Pulse(c) | Look::Blink(c) => mk1_color(c) + 1,
            };
            [0x90, pad, velocity]
        }
    }
}

/// A single-colour button LED: 0 off, 1 on, 2 blinking.
pub fn button_led(note: u8, state: u8) -> [u8; 3] {
    [0x90, note, state.min(2)]
}

/// A knob's movement in detents: mk2 sends relative values (two's
/// complement in 7 bits), mk1 absolute positions, turned into a change of
/// one step per `MK1_UNITS_PER_STEP` units (`last`: the knob's previous
/// position, updated; `rest`: what did not make a whole step yet).
pub fn knob_delta(model: Model, value: u8, last: &mut Option<u8>, rest: &mut i32) -> i32 {
    match model {
        Model::Mk2 => {
            let v = value as i32;
            if v < 64 {
                v
            } else {
                v - 128
            }
        }
        Model::Mk1 => {
            let Some(before) = last.replace(value) else {
                return 0;
            };
            *rest += value as i32 - before as i32;
            let steps = *rest / MK1_UNITS_PER_STEP;
            *rest -= steps * MK1_UNITS_PER_STEP;
            steps
        }
    }
}

/// mk1: knob units per step (a full turn, 127 units, is about 16 steps).
pub const MK1_UNITS_PER_STEP: i32 = 8;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mk2_pads_take_palette_colours_and_behaviour_channels() {
        assert_eq!(pad_led(Model::Mk2, 0, Look::On(Color::Red)), [0x96, 0, 5]);
        assert_eq!(
            pad_led(Model::Mk2, 39, Look::Pulse(Color::Green)),
            [0x99, 39, 21]
        );
        assert_eq!(
            pad_led(Model::Mk2, 7, Look::Blink(Color::White)),
            [0x9D, 7, 3]
        );
        assert_eq!(
            pad_led(Model::Mk2, 7, Look::Dim(Color::Blue)),
            [0x92, 7, 45]
        );
        assert_eq!(pad_led(Model::Mk2, 7, Look::Off), [0x90, 7, 0]);
    }

    #[test]
    fn mk1_pads_take_tri_colour_velocities() {
        assert_eq!(pad_led(Model::Mk1, 3, Look::On(Color::Green)), [0x90, 3, 1]);
        assert_eq!(
            pad_led(Model::Mk1, 3, Look::Blink(Color::Green)),
            [0x90, 3, 2]
        );
        assert_eq!(pad_led(Model::Mk1, 3, Look::On(Color::Red)), [0x90, 3, 3]);
        assert_eq!(
            pad_led(Model::Mk1, 3, Look::Pulse(Color::Red)),
            [0x90, 3, 4]
        );
        assert_eq!(
            pad_led(Model::Mk1, 3, Look::On(Color::Yellow)),
            [0x90, 3, 5]
        );
        assert_eq!(
            pad_led(Model::Mk1, 3, Look::Blink(Color::Yellow)),
            [0x90, 3, 6]
        );
        assert_eq!(pad_led(Model::Mk1, 3, Look::Off), [0x90, 3, 0]);
    }

    #[test]
    fn knobs_mk2_relative_mk1_absolute() {
        let (mut last, mut rest) = (None, 0);
        assert_eq!(knob_delta(Model::Mk2, 1, &mut last, &mut rest), 1);
        assert_eq!(knob_delta(Model::Mk2, 3, &mut last, &mut rest), 3);
        assert_eq!(knob_delta(Model::Mk2, 127, &mut last, &mut rest), -1);
        assert_eq!(knob_delta(Model::Mk2, 125, &mut last, &mut rest), -3);
        // mk1: the first position only sets the reference.
        assert_eq!(knob_delta(Model::Mk1, 64, &mut last, &mut rest), 0);
        assert_eq!(knob_delta(Model::Mk1, 70, &mut last, &mut rest), 0);
        assert_eq!(knob_delta(Model::Mk1, 74, &mut last, &mut rest), 1);
        assert_eq!(knob_delta(Model::Mk1, 50, &mut last, &mut rest), -2);
    }
}
