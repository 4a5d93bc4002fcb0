//! The voltage ↔ MIDI mapping of one script (its `realm.toml` config), the
//! way VCV Rack's CV-MIDI and MIDI-CV modules map them. Ports and channels
//! are 1-based, as in TimeSeq scripts (`"output": 2`) and MIDI (channel 1–16).

use serde::Deserialize;

/// One script's configuration. The realm fills `script` (the file's text)
/// and `file`; `mapping` is the script's `[scripts.<name>]` table (without
/// the realm's own keys `to` and `from`).
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// The script (TimeSeq JSON text).
    pub script: String,
    /// Where the script came from (shown in status and messages).
    #[serde(default)]
    pub file: Option<String>,
    /// The mapping.
    #[serde(default)]
    pub mapping: Mapping,
}

/// How the script's voltages become MIDI and MIDI becomes its voltages.
#[derive(Clone, Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Mapping {
    /// Start playing as soon as the script is loaded (the transport can
    /// stop it: `impresario seq stop NAME`, or MIDI stop).
    pub autostart: bool,
    /// Note voices out: pitch + gate (+ velocity) ports.
    pub notes: Vec<NotesOut>,
    /// Control changes out.
    pub cc: Vec<CcOut>,
    /// Pitch bend out.
    pub bend: Vec<BendOut>,
    /// MIDI notes in → pitch/gate/velocity inputs.
    pub notes_in: NotesIn,
    /// MIDI control changes in → inputs.
    pub cc_in: Vec<CcIn>,
    /// The input port (channel 1) that MIDI clock (0xF8) pulses, or 0 for none.
    pub clock_in: u8,
    /// Length of a clock pulse in ms.
    pub clock_pulse_ms: f32,
    /// Whether MIDI start / continue / stop drive the transport.
    pub midi_transport: bool,
}

impl Default for Mapping {
    fn default() -> Self {
        Mapping {
            autostart: true,
            notes: vec![NotesOut::default()],
            cc: Vec::new(),
            bend: Vec::new(),
            notes_in: NotesIn::default(),
            cc_in: Vec::new(),
            clock_in: 4,
            clock_pulse_ms: 1.0,
            midi_transport: true,
        }
    }
}

/// A group of note voices: channel `c` of the pitch port and channel `c`
/// of the gate port make voice `c`; the pitch port's polyphony says how
/// many voices play. A mono gate (or velocity) port serves every voice.
#[derive(Clone, Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct NotesOut {
    /// Output port with the pitch, 1 V/oct, 0 V = C4 = MIDI note 60.
    pub pitch: u8,
    /// Output port with the gate: a note sounds while it is at 1 V or more.
    pub gate: u8,
    /// Output port with the velocity (0–10 V → 1–127), or 0 for `velocity_default`.
    pub velocity: u8,
    /// Velocity when there is no velocity port.
    pub velocity_default: u8,
    /// MIDI channel (1–16).
    pub channel: u8,
    /// The imp's numbered output the notes leave on.
    pub output: u8,
}

impl Default for NotesOut {
    fn default() -> Self {
        // The TimeSeq sample scripts play their melody on output 2 with its
        // gate on output 3 (output 1 carries the chord root).
        NotesOut {
            pitch: 2,
            gate: 3,
            velocity: 0,
            velocity_default: 100,
            channel: 1,
            output: 0,
        }
    }
}

/// A control change from one channel of an output port.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CcOut {
    /// Output port.
    pub port: u8,
    /// Channel of the port (1–16).
    #[serde(default = "one")]
    pub voice: u8,
    /// Controller number (0–119).
    pub cc: u8,
    /// MIDI channel (1–16).
    #[serde(default = "one")]
    pub channel: u8,
    /// Voltage that gives 0.
    #[serde(default)]
    pub min: f32,
    /// Voltage that gives 127.
    #[serde(default = "ten")]
    pub max: f32,
    /// The imp's numbered output.
    #[serde(default)]
    pub output: u8,
}

/// Pitch bend from one channel of an output port: `-range`..`+range` volts
/// is the whole bend, 0 V none.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BendOut {
    /// Output port.
    pub port: u8,
    /// Channel of the port (1–16).
    #[serde(default = "one")]
    pub voice: u8,
    /// MIDI channel (1–16).
    #[serde(default = "one")]
    pub channel: u8,
    /// Volts for a full bend.
    #[serde(default = "five")]
    pub range: f32,
    /// The imp's numbered output.
    #[serde(default)]
    pub output: u8,
}

/// MIDI notes in: voice `c` (0-based) sets channel `c` of the pitch, gate
/// and velocity input ports.
#[derive(Clone, Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct NotesIn {
    /// Input port for the pitch (1 V/oct, C4 = 0 V), 0 for none.
    pub pitch: u8,
    /// Input port for the gate (10 V while held), 0 for none.
    pub gate: u8,
    /// Input port for the velocity (1–127 → 0–10 V), 0 for none.
    pub velocity: u8,
    /// How many voices (channels) notes are spread over; 0 ignores notes.
    pub voices: u8,
    /// Only this MIDI channel (1–16), or 0 for every channel.
    pub channel: u8,
}

impl Default for NotesIn {
    fn default() -> Self {
        NotesIn {
            pitch: 1,
            gate: 2,
            velocity: 3,
            voices: 1,
            channel: 0,
        }
    }
}

/// A MIDI control change in → one channel of an input port.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CcIn {
    /// Controller number.
    pub cc: u8,
    /// Input port.
    pub port: u8,
    /// Channel of the port (1–16).
    #[serde(default = "one")]
    pub voice: u8,
    /// Only this MIDI channel (1–16), or 0 for every channel.
    #[serde(default)]
    pub channel: u8,
    /// Voltage for 0.
    #[serde(default)]
    pub min: f32,
    /// Voltage for 127.
    #[serde(default = "ten")]
    pub max: f32,
}

fn one() -> u8 {
    1
}
fn five() -> f32 {
    5.0
}
fn ten() -> f32 {
    10.0
}

fn port(what: &str, p: u8, optional: bool) -> Result<(), String> {
    if (optional && p == 0) || (1..=8).contains(&p) {
        Ok(())
    } else if optional {
        Err(format!("{what} = {p}: a port is 1–8 (0 for none)"))
    } else {
        Err(format!("{what} = {p}: a port is 1–8"))
    }
}

fn range(what: &str, v: u8, lo: u8, hi: u8) -> Result<(), String> {
    if (lo..=hi).contains(&v) {
        Ok(())
    } else {
        Err(format!("{what} = {v}: must be {lo}–{hi}"))
    }
}

impl Mapping {
    /// Checks every number; the message names the key.
    pub fn validate(&self) -> Result<(), String> {
        for (i, n) in self.notes.iter().enumerate() {
            let at = |k: &str| format!("notes[{i}].{k}");
            port(&at("pitch"), n.pitch, false)?;
            port(&at("gate"), n.gate, false)?;
            port(&at("velocity"), n.velocity, true)?;
            range(&at("velocity_default"), n.velocity_default, 1, 127)?;
            range(&at("channel"), n.channel, 1, 16)?;
        }
        for (i, c) in self.cc.iter().enumerate() {
            let at = |k: &str| format!("cc[{i}].{k}");
            port(&at("port"), c.port, false)?;
            range(&at("voice"), c.voice, 1, 16)?;
            range(&at("cc"), c.cc, 0, 119)?;
            range(&at("channel"), c.channel, 1, 16)?;
            if !(c.max - c.min).is_normal() {
                return Err(format!("{}: min and max must differ", at("max")));
            }
        }
        for (i, b) in self.bend.iter().enumerate() {
            let at = |k: &str| format!("bend[{i}].{k}");
            port(&at("port"), b.port, false)?;
            range(&at("voice"), b.voice, 1, 16)?;
            range(&at("channel"), b.channel, 1, 16)?;
            if !(b.range.is_normal() && b.range > 0.0) {
                return Err(format!("{} must be above 0 V", at("range")));
            }
        }
        let n = &self.notes_in;
        port("notes_in.pitch", n.pitch, true)?;
        port("notes_in.gate", n.gate, true)?;
        port("notes_in.velocity", n.velocity, true)?;
        range("notes_in.voices", n.voices, 0, 16)?;
        range("notes_in.channel", n.channel, 0, 16)?;
        for (i, c) in self.cc_in.iter().enumerate() {
            let at = |k: &str| format!("cc_in[{i}].{k}");
            range(&at("cc"), c.cc, 0, 127)?;
            port(&at("port"), c.port, false)?;
            range(&at("voice"), c.voice, 1, 16)?;
            range(&at("channel"), c.channel, 0, 16)?;
        }
        port("clock_in", self.clock_in, true)?;
        if !(self.clock_pulse_ms > 0.0 && self.clock_pulse_ms <= 100.0) {
            return Err(format!(
                "clock_pulse_ms = {}: must be above 0 and at most 100",
                self.clock_pulse_ms
            ));
        }
        if self.notes.len() > MAX_GROUPS {
            return Err(format!("at most {MAX_GROUPS} `notes` groups"));
        }
        Ok(())
    }
}

/// Most note groups per script (16 voices each).
pub const MAX_GROUPS: usize = 8;

/// The MIDI note of a 1 V/oct pitch (0 V = C4 = 60), clamped to 0–127.
pub fn note_of(volts: f32) -> u8 {
    let n = (60.0 + volts * 12.0).round();
    if n.is_nan() {
        60
    } else {
        n.clamp(0.0, 127.0) as u8
    }
}

/// Velocity of a 0–10 V voltage: 1–127.
pub fn velocity_of(volts: f32) -> u8 {
    let v = (volts / 10.0 * 127.0).round();
    if v.is_nan() {
        1
    } else {
        v.clamp(1.0, 127.0) as u8
    }
}

/// A CC value (0–127) of `volts` in `min..max`.
pub fn cc_of(volts: f32, min: f32, max: f32) -> u8 {
    let v = ((volts - min) / (max - min) * 127.0).round();
    if v.is_nan() {
        0
    } else {
        v.clamp(0.0, 127.0) as u8
    }
}

/// A 14-bit pitch-bend value (8192 = none) of `volts` in `-range..range`.
pub fn bend_of(volts: f32, range: f32) -> u16 {
    let x = (volts / range).clamp(-1.0, 1.0);
    if x.is_nan() {
        return 8192;
    }
    (8192.0 + (x * 8191.0).round()) as u16
}

/// The input voltage of a MIDI note (1 V/oct, C4 = 0 V).
pub fn pitch_of(note: u8) -> f32 {
    (note as f32 - 60.0) / 12.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conversions_follow_vcv() {
        assert_eq!(note_of(0.0), 60);
        assert_eq!(note_of(-1.0), 48);
        assert_eq!(note_of(0.333_333_34), 64);
        assert_eq!(note_of(1.0), 72);
        assert_eq!(note_of(20.0), 127);
        assert_eq!(note_of(-20.0), 0);
        assert_eq!(note_of(f32::NAN), 60);
        assert_eq!(velocity_of(10.0), 127);
        assert_eq!(velocity_of(0.0), 1);
        assert_eq!(velocity_of(5.0), 64);
        assert_eq!(cc_of(5.0, 0.0, 10.0), 64);
        assert_eq!(cc_of(-5.0, -5.0, 5.0), 0);
        assert_eq!(cc_of(50.0, 0.0, 10.0), 127);
        assert_eq!(bend_of(0.0, 5.0), 8192);
        assert_eq!(bend_of(5.0, 5.0), 16383);
        assert_eq!(bend_of(-9.0, 5.0), 1);
        for n in 0..128u8 {
            assert_eq!(note_of(pitch_of(n)), n);
        }
    }

    #[test]
    fn defaults_are_valid_and_bad_numbers_are_named() {
        let m: Mapping = serde_json::from_str("{}").unwrap();
        m.validate().unwrap();
        assert_eq!((m.notes[0].pitch, m.notes[0].gate), (2, 3));
        let m: Mapping = serde_json::from_str(r#"{"notes": [{"pitch": 9}]}"#).unwrap();
        assert!(m.validate().unwrap_err().contains("notes[0].pitch = 9"));
        let m: Mapping =
            serde_json::from_str(r#"{"cc": [{"port": 1, "cc": 7, "min": 2, "max": 2}]}"#).unwrap();
        assert!(m.validate().unwrap_err().contains("cc[0].max"));
    }
}
