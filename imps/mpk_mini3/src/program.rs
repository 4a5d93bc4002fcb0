//! The program impresario pushes into the MPK mini mk3's RAM at connect,
//! and its SysEx encoder.
//!
//! Pure, `std`-free logic with no dependency (the end-to-end test compiles
//! this very file to build the bytes it expects).
//!
//! # Source of the layout
//!
//! Akai publishes no MIDI implementation for the MPK mini mk3 and its user
//! guide has no SysEx. The layout below is the one the community
//! reverse-engineered from Akai's editor, as implemented by the GTK editor
//! **mpk3-settings** by Tomas Smetana (<https://github.com/tsmetana/mpk3-settings>,
//! `src/message.h` for the offsets and constants, `src/device.c` for how a
//! program is written, `src/app_win.c` and `src/presets.c` for the meaning
//! and encoding of each value). It was read for behaviour; this encoder is
//! impresario's own. Not checked against a physical device here: the
//! end-to-end test checks the bytes impresario sends, not how an MPK
//! takes them.
//!
//! One write is 254 bytes:
//!
//! | offset | bytes | what | value pushed |
//! |---|---|---|---|
//! | 0 | 1 | SysEx start | `F0` |
//! | 1 | 1 | manufacturer (Akai) | `47` |
//! | 2 | 1 | direction: `7F` to the device (`00` from it) | `7F` |
//! | 3 | 1 | product (MPK mini mk3) | `49` |
//! | 4 | 1 | command: `64` write program (`66` query, `67` reply) | `64` |
//! | 5 | 2 | payload length, two 7-bit bytes, high first: 246 | `01 76` |
//! | 7 | 1 | program number: `00` = RAM (1–8 the stored programs) | `00` |
//! | 8 | 16 | program name, ASCII, padded with `00` | `program_name` |
//! | 24 | 1 | pad MIDI channel, from 0 | `09` (channel 10) |
//! | 25 | 1 | aftertouch: 0 off, 1 channel, 2 polyphonic | `00` |
//! | 26 | 1 | keybed and controls (knobs, joystick) channel, from 0 | `00` (channel 1) |
//! | 27 | 1 | keybed octave, 4 = no shift | `04` |
//! | 28 | 1 | arpeggiator: 0 off, `7F` on | `00` |
//! | 29 | 1 | arpeggiator mode (0 up … 5 random) | `00` |
//! | 30 | 1 | arpeggiator time division (0 1/4 … 7 1/32T) | `04` (1/16) |
//! | 31 | 1 | clock: 0 internal, 1 external | `00` |
//! | 32 | 1 | latch: 0 off, 1 on | `00` |
//! | 33 | 1 | swing, 0 = 50 % … `19` = 75 % | `00` |
//! | 34 | 1 | tempo taps, 2–4 | `03` |
//! | 35 | 2 | tempo, 60–240 BPM, two 7-bit bytes, high first | `00 78` (120) |
//! | 37 | 1 | arpeggiator octaves, from 0 (= 1 octave) | `00` |
//! | 38 | 1 | joystick X mode: 0 pitch bend, 1 one CC, 2 a CC each way | `00` |
//! | 39 | 2 | joystick X CCs (unused for pitch bend) | `00 00` |
//! | 41 | 1 | joystick Y mode, the same | `01` (one CC) |
//! | 42 | 2 | joystick Y CCs (both set: sources differ on which one single mode reads) | `01 01` (modulation) |
//! | 44 | 16 × 3 | pads 1–16 (bank A 1–8, bank B 9–16): note, program, CC | notes 36–51, programs 0–15, CCs 16–31 |
//! | 92 | 8 × 20 | knobs K1–K8: mode (0 absolute, 1 relative), CC, low, high, name (16 ASCII, padded with `00`) | relative, CCs 70–77, 0, 127, the enchanter keys they turn |
//! | 252 | 1 | transpose, 12 = none (0–24: −12…+12) | `0C` |
//! | 253 | 1 | SysEx end | `F7` |

/// Length of one program write, `F0` to `F7`.
pub const LENGTH: usize = 254;
/// The payload length the header declares: what follows the 7 header
/// bytes, up to the `F7` (program number to transpose).
pub const PAYLOAD: usize = LENGTH - 8;
/// Characters of the program name and of each knob name.
pub const NAME_LEN: usize = 16;

/// Akai's manufacturer id.
pub const MANUFACTURER: u8 = 0x47;
/// Direction byte of a message to the device.
pub const TO_DEVICE: u8 = 0x7F;
/// The MPK mini mk3's product id.
pub const PRODUCT: u8 = 0x49;
/// Command: write a program.
pub const WRITE_PROGRAM: u8 = 0x64;
/// Program number of the device's RAM (the program it plays now, not stored).
pub const RAM: u8 = 0x00;

/// Offset of the program name.
pub const OFF_NAME: usize = 8;
/// Offset of the pads' MIDI channel.
pub const OFF_PAD_CHANNEL: usize = 24;
/// Offset of the aftertouch mode.
pub const OFF_AFTERTOUCH: usize = 25;
/// Offset of the keybed and controls' MIDI channel.
pub const OFF_KEYS_CHANNEL: usize = 26;
/// Offset of the keybed octave.
pub const OFF_OCTAVE: usize = 27;
/// Offset of the arpeggiator switch (then mode, division, clock, latch,
/// swing, taps, tempo (2), octaves).
pub const OFF_ARP: usize = 28;
/// Offset of the joystick's X mode (then its two CCs, Y mode, Y's two CCs).
pub const OFF_JOYSTICK: usize = 38;
/// Offset of pad 1's note (then its program and CC; 3 bytes a pad).
pub const OFF_PADS: usize = 44;
/// Offset of knob K1's mode (then CC, low, high, name; 20 bytes a knob).
pub const OFF_KNOBS: usize = 92;
/// Bytes per knob.
pub const KNOB_BYTES: usize = 4 + NAME_LEN;
/// Offset of the transpose.
pub const OFF_TRANSPOSE: usize = 252;

/// The pads' MIDI channel in the pushed program, from 0 (channel 10, the
/// General MIDI drum channel).
pub const PAD_CHANNEL: u8 = 9;
/// The keybed's, knobs' and joystick's MIDI channel, from 0 (channel 1).
pub const KEYS_CHANNEL: u8 = 0;
/// Pads 1–16 send notes from this one up (bank A 36–43, bank B 44–51:
/// General MIDI drums from the bass drum).
pub const PAD_FIRST_NOTE: u8 = 36;
/// Number of pads (two banks of 8).
pub const PADS: usize = 16;
/// Pads in CC mode send CCs from this one up (16–31, general purpose).
pub const PAD_FIRST_CC: u8 = 16;
/// Knobs K1–K8 send these CCs (70–77), relative.
pub const KNOB_FIRST_CC: u8 = 70;
/// Number of knobs.
pub const KNOBS: usize = 8;
/// The joystick's Y axis sends this CC (modulation); its X axis sends pitch bend.
pub const JOYSTICK_Y_CC: u8 = 1;
/// Knob mode byte: relative.
pub const KNOB_RELATIVE: u8 = 1;

/// Writes `text` as a 16-character name: printable ASCII kept, anything
/// else (SysEx data must stay below `0x80`) written as `?`, cut at 16,
/// padded with `00`.
fn put_name(dst: &mut [u8], text: &str) {
    dst.fill(0);
    for (d, c) in dst.iter_mut().zip(text.chars()) {
        *d = if (' '..='~').contains(&c) {
            c as u8
        } else {
            b'?'
        };
    }
}

/// The program write for the device's RAM: `name` on the display, and
/// `knob_names[i]` as knob K(i+1)'s name. Every other value is the table
/// above.
pub fn encode(name: &str, knob_names: &[&str; KNOBS]) -> [u8; LENGTH] {
    let mut m = [0u8; LENGTH];
    m[..8].copy_from_slice(&[
        0xF0,
        MANUFACTURER,
        TO_DEVICE,
        PRODUCT,
        WRITE_PROGRAM,
        (PAYLOAD >> 7) as u8 & 0x7F,
        PAYLOAD as u8 & 0x7F,
        RAM,
    ]);
    put_name(&mut m[OFF_NAME..OFF_NAME + NAME_LEN], name);
    m[OFF_PAD_CHANNEL] = PAD_CHANNEL;
    m[OFF_AFTERTOUCH] = 0;
    m[OFF_KEYS_CHANNEL] = KEYS_CHANNEL;
    m[OFF_OCTAVE] = 4;
    // Arpeggiator off (the bard arpeggiates); the rest its usual values.
    m[OFF_ARP..OFF_ARP + 10].copy_from_slice(&[0, 0, 4, 0, 0, 0, 3, 0, 120, 0]);
    // X: pitch bend; Y: one CC, modulation.
    m[OFF_JOYSTICK..OFF_JOYSTICK + 6].copy_from_slice(&[0, 0, 0, 1, JOYSTICK_Y_CC, JOYSTICK_Y_CC]);
    for i in 0..PADS {
        let at = OFF_PADS + 3 * i;
        m[at] = PAD_FIRST_NOTE + i as u8;
        m[at + 1] = i as u8;
        m[at + 2] = PAD_FIRST_CC + i as u8;
    }
    for (i, knob_name) in knob_names.iter().enumerate() {
        let at = OFF_KNOBS + KNOB_BYTES * i;
        m[at] = KNOB_RELATIVE;
        m[at + 1] = KNOB_FIRST_CC + i as u8;
        m[at + 2] = 0;
        m[at + 3] = 127;
        put_name(&mut m[at + 4..at + KNOB_BYTES], knob_name);
    }
    m[OFF_TRANSPOSE] = 12;
    m[LENGTH - 1] = 0xF7;
    m
}

#[cfg(test)]
mod tests {
    use super::*;

    const KNOBS_USED: [&str; KNOBS] = [
        "octave", "semitone", "program", "key", "scale", "chord", "arp_rate", "velocity",
    ];

    #[test]
    fn the_layout_adds_up() {
        assert_eq!(OFF_KNOBS, OFF_PADS + 3 * PADS);
        assert_eq!(OFF_TRANSPOSE, OFF_KNOBS + KNOBS * KNOB_BYTES);
        assert_eq!(LENGTH, OFF_TRANSPOSE + 2);
        assert_eq!(PAYLOAD, 246);
    }

    #[test]
    fn header_length_and_end() {
        let m = encode("impresario", &KNOBS_USED);
        assert_eq!(m.len(), 254);
        assert_eq!(m[..8], [0xF0, 0x47, 0x7F, 0x49, 0x64, 0x01, 0x76, 0x00]);
        assert_eq!(m[253], 0xF7);
        // SysEx data is 7-bit throughout.
        assert!(m[1..253].iter().all(|&b| b < 0x80), "{m:02x?}");
        // The declared length is what lies between the header and F7.
        let declared = ((m[5] as usize) << 7) | m[6] as usize;
        assert_eq!(declared, m.len() - 8);
    }

    #[test]
    fn names_are_ascii_padded_with_zeros() {
        let m = encode("impresario", &KNOBS_USED);
        assert_eq!(&m[8..24], b"impresario\0\0\0\0\0\0");
        assert_eq!(&m[96..112], b"octave\0\0\0\0\0\0\0\0\0\0");
        assert_eq!(&m[236..252], b"velocity\0\0\0\0\0\0\0\0");
        // Too long: cut at 16. Not ASCII: `?`.
        let m = encode("a name longer than sixteen", &KNOBS_USED);
        assert_eq!(&m[8..24], b"a name longer th");
        let m = encode("Größe", &KNOBS_USED);
        assert_eq!(&m[8..24], b"Gr??e\0\0\0\0\0\0\0\0\0\0\0");
    }

    #[test]
    fn channels_pads_knobs_and_joystick() {
        let m = encode("x", &KNOBS_USED);
        assert_eq!(m[24], 9, "pads on channel 10");
        assert_eq!(m[25], 0, "no aftertouch");
        assert_eq!(m[26], 0, "keys and knobs on channel 1");
        assert_eq!(m[27], 4, "no octave shift");
        assert_eq!(m[28], 0, "the device's arpeggiator off");
        assert_eq!(m[35..37], [0, 120]);
        assert_eq!(m[38..44], [0, 0, 0, 1, 1, 1]);
        // Pad 1: C1 (36), bank B's first (pad 9): 44, pad 16: 51.
        assert_eq!(m[44..47], [36, 0, 16]);
        assert_eq!(m[44 + 3 * 8], 44);
        assert_eq!(m[44 + 3 * 15..44 + 3 * 16], [51, 15, 31]);
        // K1: relative, CC 70, 0..127; K8: CC 77.
        assert_eq!(m[92..96], [1, 70, 0, 127]);
        assert_eq!(m[92 + 20 * 7..96 + 20 * 7], [1, 77, 0, 127]);
        assert_eq!(m[252], 12, "no transpose");
    }
}
