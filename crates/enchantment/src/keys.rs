//! Keys: how `ZONE.KEY`, global keys and `drums.P.VOICE` are resolved,
//! read, written (validated) and stepped by `adjust`.

use serde_json::Value;

use crate::error::EnchantError;
use crate::model::*;
use crate::values::*;

/// A zone's keys, in the order `get` and the docs list them.
pub const ZONE_KEYS: [&str; 18] = [
    "source",
    "channel",
    "low",
    "high",
    "output",
    "out_channel",
    "bank",
    "program",
    "octave",
    "semitone",
    "key",
    "scale",
    "chord",
    "arp",
    "arp_pattern",
    "arp_rate",
    "velocity",
    "drum_keys",
];

/// The global keys.
pub const GLOBAL_KEYS: [&str; 15] = [
    "zones",
    "selected",
    "tempo",
    "time_signature",
    "metronome",
    "metronome_output",
    "metronome_channel",
    "metronome_accent",
    "metronome_note",
    "metronome_accent_velocity",
    "metronome_velocity",
    "drum_mode",
    "drums",
    "drum_pattern",
    "drum_output",
];

/// Checks a device name (the key of a parameter snapshot): a-z first, then
/// a-z 0-9 _, at most 24 characters.
pub(crate) fn valid_device_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars.next().is_some_and(|c| c.is_ascii_lowercase())
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
        && name.len() <= 24
}

/// What a device name may be.
pub(crate) fn device_name_rule() -> &'static str {
    "a device name starts with a-z, then a-z, 0-9 or _, at most 24 characters (like microfreak)"
}

/// Checks one recorded parameter; the error says what is allowed.
pub(crate) fn check_param(cc: i64, value: i64) -> Result<(), String> {
    if !(0..=MAX_PARAM_CC as i64).contains(&cc) {
        return Err(format!(
            "the controller number is 0..={MAX_PARAM_CC} (120..=127 are channel mode messages, no parameters)"
        ));
    }
    if !(0..=127).contains(&value) {
        return Err("the value is 0..=127".into());
    }
    Ok(())
}

/// Zone names nobody may take: they would read as another key.
const RESERVED: [&str; 2] = ["metronome", "preset"];

/// A resolved key.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum KeyRef {
    /// Zone index, key index in [`ZONE_KEYS`].
    Zone(usize, usize),
    /// Key index in [`GLOBAL_KEYS`].
    Global(usize),
    /// `drums.P.VOICE`: pattern index, voice index.
    DrumSteps(usize, usize),
    /// `drums.P.VOICE.note`.
    DrumNote(usize, usize),
    /// `drums.P.length`.
    DrumLength(usize),
}

fn zone_keys_hint() -> String {
    format!("a zone's keys are {}", ZONE_KEYS.join(", "))
}

fn global_keys_hint() -> String {
    format!(
        "global keys are {}; zone keys are written ZONE.KEY (ZONE a name or number; a bare zone key means the selected zone): {}; drum pattern keys are drums.P.VOICE, drums.P.VOICE.note and drums.P.length (P 1..=5, VOICE {} or 1..=5)",
        GLOBAL_KEYS.join(", "),
        ZONE_KEYS.join(", "),
        DRUM_VOICES.join(", ")
    )
}

fn drum_keys_hint() -> String {
    format!(
        "drum pattern keys are drums.P.VOICE (a step string), drums.P.VOICE.note and drums.P.length, with P 1..=5 and VOICE {} or 1..=5",
        DRUM_VOICES.join(", ")
    )
}

/// Checks a zone name: a-z first, then a-z 0-9 _, at most 24 characters, no
/// global key and no reserved word.
pub(crate) fn valid_zone_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars.next().is_some_and(|c| c.is_ascii_lowercase())
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
        && name.len() <= 24
        && !GLOBAL_KEYS.contains(&name)
        && !RESERVED.contains(&name)
}

impl Enchantment {
    /// The zone named (or numbered from 1) `zone`.
    pub(crate) fn zone_index(&self, zone: &str) -> Result<usize, EnchantError> {
        let z = zone.trim();
        if let Some(i) = self
            .zones
            .iter()
            .position(|x| x.name == z.to_ascii_lowercase())
        {
            return Ok(i);
        }
        if let Some(n) = int_in(z, 1, self.zones.len() as i64) {
            return Ok(n as usize - 1);
        }
        Err(EnchantError::UnknownZone {
            zone: zone.into(),
            zones: self.zone_list(),
        })
    }

    /// `lower, upper`.
    pub(crate) fn zone_list(&self) -> String {
        self.zones
            .iter()
            .map(|z| z.name.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    }

    pub(crate) fn selected_index(&self) -> usize {
        self.zones
            .iter()
            .position(|z| z.name == self.global.selected)
            .unwrap_or(0)
    }

    /// Resolves a key as typed.
    pub(crate) fn resolve(&self, key: &str) -> Result<KeyRef, EnchantError> {
        let unknown = |hint: String| EnchantError::UnknownKey {
            key: key.into(),
            hint,
        };
        let k = key.trim().to_ascii_lowercase();
        let parts: Vec<&str> = k.split('.').collect();
        match parts.as_slice() {
            [one] => {
                if let Some(i) = GLOBAL_KEYS.iter().position(|g| g == one) {
                    Ok(KeyRef::Global(i))
                } else if let Some(i) = ZONE_KEYS.iter().position(|g| g == one) {
                    Ok(KeyRef::Zone(self.selected_index(), i))
                } else {
                    Err(unknown(global_keys_hint()))
                }
            }
            // "drums" is a global key, so no zone has that name.
            ["drums", p, rest @ ..] => {
                let p = int_in(p, 1, DRUM_PATTERNS as i64)
                    .ok_or_else(|| unknown(drum_keys_hint()))? as usize
                    - 1;
                let voice = |v: &str| {
                    DRUM_VOICES
                        .iter()
                        .position(|n| *n == v)
                        .or_else(|| int_in(v, 1, 5).map(|n| n as usize - 1))
                };
                match rest {
                    ["length"] => Ok(KeyRef::DrumLength(p)),
                    [v] => voice(v)
                        .map(|v| KeyRef::DrumSteps(p, v))
                        .ok_or_else(|| unknown(drum_keys_hint())),
                    [v, "note"] => voice(v)
                        .map(|v| KeyRef::DrumNote(p, v))
                        .ok_or_else(|| unknown(drum_keys_hint())),
                    _ => Err(unknown(drum_keys_hint())),
                }
            }
            [zone, zk] => {
                let z = self.zone_index(zone)?;
                ZONE_KEYS
                    .iter()
                    .position(|g| g == zk)
                    .map(|i| KeyRef::Zone(z, i))
                    .ok_or_else(|| unknown(zone_keys_hint()))
            }
            _ => Err(unknown(global_keys_hint())),
        }
    }

    /// The key written out in full (`lower.octave`, `drums.1.kick`).
    pub(crate) fn key_name(&self, k: KeyRef) -> String {
        match k {
            KeyRef::Zone(z, i) => format!("{}.{}", self.zones[z].name, ZONE_KEYS[i]),
            KeyRef::Global(i) => GLOBAL_KEYS[i].into(),
            KeyRef::DrumSteps(p, v) => format!("drums.{}.{}", p + 1, DRUM_VOICES[v]),
            KeyRef::DrumNote(p, v) => format!("drums.{}.{}.note", p + 1, DRUM_VOICES[v]),
            KeyRef::DrumLength(p) => format!("drums.{}.length", p + 1),
        }
    }

    /// The key's value, in its JSON (= typed) form.
    pub(crate) fn read(&self, k: KeyRef) -> Value {
        let to = |v: &dyn erased::Ser| v.value();
        match k {
            KeyRef::Zone(z, i) => read_zone(&self.zones[z].settings, i),
            KeyRef::Global(i) => {
                let g = &self.global;
                match GLOBAL_KEYS[i] {
                    "zones" => Value::String(self.zone_list()),
                    "selected" => to(&g.selected),
                    "tempo" => to(&g.tempo),
                    "time_signature" => to(&g.time_signature),
                    "metronome" => to(&g.metronome),
                    "metronome_output" => to(&g.metronome_output),
                    "metronome_channel" => to(&g.metronome_channel),
                    "metronome_accent" => to(&g.metronome_accent),
                    "metronome_note" => to(&g.metronome_note),
                    "metronome_accent_velocity" => to(&g.metronome_accent_velocity),
                    "metronome_velocity" => to(&g.metronome_velocity),
                    "drum_mode" => to(&g.drum_mode),
                    "drums" => to(&g.drums),
                    "drum_pattern" => to(&g.drum_pattern),
                    "drum_output" => to(&g.drum_output),
                    other => unreachable!("global key {other} has no reader"),
                }
            }
            KeyRef::DrumSteps(p, v) => to(&self.global.drum_patterns[p].voices[v].steps),
            KeyRef::DrumNote(p, v) => to(&self.global.drum_patterns[p].voices[v].note),
            KeyRef::DrumLength(p) => to(&self.global.drum_patterns[p].length),
        }
    }

    /// Sets the key from text; on error nothing changes and the error
    /// says what the key takes.
    pub(crate) fn write(&mut self, k: KeyRef, value: &str) -> Result<(), EnchantError> {
        let key = self.key_name(k);
        let bad = |problem: String| EnchantError::BadValue {
            key: key.clone(),
            value: value.into(),
            problem,
        };
        match k {
            KeyRef::Zone(z, i) => {
                let mut s = self.zones[z].settings.clone();
                write_zone(&mut s, i, value).map_err(bad)?;
                self.zones[z].settings = s;
            }
            KeyRef::Global(i) => {
                let name = GLOBAL_KEYS[i];
                let int = |min: i64, max: i64| {
                    int_in(value, min, max).ok_or_else(|| bad(format!("{name} is {min}..={max}")))
                };
                let parsed = |r: Result<u8, String>| r.map_err(|e| bad(format!("{name} {e}")));
                let g = &mut self.global;
                match name {
                    "zones" => {
                        let zones = self.zones_from(value).map_err(bad)?;
                        self.zones = zones;
                        if !self.zones.iter().any(|z| z.name == self.global.selected) {
                            self.global.selected = self.zones[0].name.clone();
                        }
                    }
                    "selected" => {
                        let z = self.zone_index(value).map_err(|_| {
                            bad(format!(
                                "selected is a zone name or number: {}",
                                self.zone_list()
                            ))
                        })?;
                        self.global.selected = self.zones[z].name.clone();
                    }
                    "tempo" => {
                        g.tempo = value
                            .trim()
                            .parse::<f64>()
                            .ok()
                            .filter(|t| (20.0..=300.0).contains(t))
                            .ok_or_else(|| bad("tempo is 20..=300 BPM".into()))?
                    }
                    "time_signature" => {
                        g.time_signature = value.parse().map_err(|e| bad(format!("{name} {e}")))?
                    }
                    "metronome" => g.metronome = switch(name, value).map_err(bad)?,
                    "metronome_output" => g.metronome_output = int(0, 255)? as u8,
                    "metronome_channel" => g.metronome_channel = int(1, 16)? as u8,
                    "metronome_accent" => g.metronome_accent = parsed(gm_note(value))?,
                    "metronome_note" => g.metronome_note = parsed(gm_note(value))?,
                    "metronome_accent_velocity" => g.metronome_accent_velocity = int(1, 127)? as u8,
                    "metronome_velocity" => g.metronome_velocity = int(1, 127)? as u8,
                    "drum_mode" => g.drum_mode = switch(name, value).map_err(bad)?,
                    "drums" => g.drums = switch(name, value).map_err(bad)?,
                    "drum_pattern" => g.drum_pattern = int(1, DRUM_PATTERNS as i64)? as u8,
                    "drum_output" => g.drum_output = int(0, 255)? as u8,
                    other => unreachable!("global key {other} has no writer"),
                }
            }
            KeyRef::DrumSteps(p, v) => {
                let pat = &mut self.global.drum_patterns[p];
                let mut steps: Steps = value.parse().map_err(|e| bad(format!("the steps: {e}")))?;
                if steps.0.len() > pat.length as usize {
                    return Err(bad(format!(
                        "{} steps, but pattern {} has {} (set drums.{}.length first, up to {MAX_STEPS})",
                        steps.0.len(),
                        p + 1,
                        pat.length,
                        p + 1
                    )));
                }
                // A shorter string leaves the rest of the pattern off.
                steps.0.resize(pat.length as usize, 0);
                pat.voices[v].steps = steps;
            }
            KeyRef::DrumNote(p, v) => {
                self.global.drum_patterns[p].voices[v].note =
                    gm_note(value).map_err(|e| bad(format!("note {e}")))?;
            }
            KeyRef::DrumLength(p) => {
                let n = int_in(value, 1, MAX_STEPS as i64)
                    .ok_or_else(|| bad(format!("length is 1..={MAX_STEPS} steps")))?;
                let pat = &mut self.global.drum_patterns[p];
                pat.length = n as u8;
                for voice in pat.voices.iter_mut() {
                    voice.steps.0.resize(n as usize, 0);
                }
            }
        }
        Ok(())
    }

    /// The zone list for `zones = "lower, upper"`: existing zones keep their
    /// settings, new ones start from the defaults.
    fn zones_from(&self, value: &str) -> Result<Vec<Zone>, String> {
        let names: Vec<String> = value
            .split([',', ' '])
            .filter(|s| !s.trim().is_empty())
            .map(|s| s.trim().to_ascii_lowercase())
            .collect();
        let rule = format!(
            "zones is a list of 1..={MAX_ZONES} different zone names, like \"lower, upper\" (a name starts with a-z, then a-z, 0-9 or _, at most 24 characters, and is no global key)"
        );
        if names.is_empty() || names.len() > MAX_ZONES {
            return Err(rule);
        }
        for (i, n) in names.iter().enumerate() {
            if !valid_zone_name(n) || names[..i].contains(n) {
                return Err(format!("{n:?} cannot be a zone name: {rule}"));
            }
        }
        Ok(names
            .into_iter()
            .map(|name| {
                let settings = self
                    .zones
                    .iter()
                    .find(|z| z.name == name)
                    .map(|z| z.settings.clone())
                    .unwrap_or_default();
                Zone { name, settings }
            })
            .collect())
    }

    /// The value `adjust(k, delta)` moves to, as text for `write`.
    pub(crate) fn stepped(&self, k: KeyRef, delta: i32) -> Result<String, EnchantError> {
        let d = delta as i64;
        let int = |cur: i64, min: i64, max: i64| (cur + d).clamp(min, max);
        let list = |items: &[&str], cur: &str| {
            let i = items.iter().position(|x| *x == cur).unwrap_or(0) as i64;
            items[int(i, 0, items.len() as i64 - 1) as usize].to_string()
        };
        let switch = |cur: bool| {
            match delta.signum() {
                1 => "on",
                -1 => "off",
                _ if cur => "on",
                _ => "off",
            }
            .to_string()
        };
        let or_word = |cur: Option<i64>, word: &str, min: i64, max: i64| {
            // The word sits just below the range: stepping down from the
            // lowest number reaches it.
            match int(cur.unwrap_or(min - 1), min - 1, max) {
                n if n < min => word.to_string(),
                n => n.to_string(),
            }
        };
        Ok(match k {
            KeyRef::Zone(z, i) => {
                let s = &self.zones[z].settings;
                match ZONE_KEYS[i] {
                    "source" => or_word(s.source_number(), "any", 0, 255),
                    "channel" => or_word(s.channel_number(), "any", 1, 16),
                    "low" => int(s.low.0 as i64, 0, s.high.0 as i64).to_string(),
                    "high" => int(s.high.0 as i64, s.low.0 as i64, 127).to_string(),
                    "output" => int(s.output as i64, 0, 255).to_string(),
                    "out_channel" => or_word(s.out_channel_number(), "same", 1, 16),
                    "bank" => or_word(s.bank.0.map(i64::from), "none", 0, 16383),
                    "program" => or_word(s.program.0.map(i64::from), "none", 1, 128),
                    "octave" => int(s.octave as i64, -4, 4).to_string(),
                    "semitone" => int(s.semitone as i64, -11, 11).to_string(),
                    "key" => {
                        Tonic(bard_pipeline::Key(int(s.key.0 .0 as i64, 0, 11) as u8)).to_string()
                    }
                    "scale" => list(&SCALE_NAMES, &s.scale.to_string()),
                    "chord" => list(&CHORD_NAMES, &s.chord.to_string()),
                    "arp" => switch(s.arp.0),
                    "arp_pattern" => list(&ARP_PATTERN_NAMES, &s.arp_pattern.to_string()),
                    "arp_rate" => list(&ARP_RATES, &s.arp_rate.to_string()),
                    "velocity" => {
                        let cur = match s.velocity {
                            Velocity::Hard => "hard",
                            Velocity::Soft => "soft",
                            _ => "linear",
                        };
                        list(&VELOCITY_NAMES, cur)
                    }
                    "drum_keys" => switch(s.drum_keys.0),
                    other => unreachable!("zone key {other} has no step"),
                }
            }
            KeyRef::Global(i) => {
                let g = &self.global;
                match GLOBAL_KEYS[i] {
                    "zones" => {
                        return Err(EnchantError::NotAdjustable {
                            key: "zones".into(),
                            why: "set it to a list of names, like \"lower, upper\"",
                        })
                    }
                    "selected" => {
                        let i = int(self.selected_index() as i64, 0, self.zones.len() as i64 - 1);
                        self.zones[i as usize].name.clone()
                    }
                    "tempo" => format!("{}", (g.tempo + delta as f64).clamp(20.0, 300.0)),
                    "time_signature" => TimeSignature {
                        beats: int(g.time_signature.beats as i64, 1, 16) as u8,
                        unit: g.time_signature.unit,
                    }
                    .to_string(),
                    "metronome" => switch(g.metronome.0),
                    "metronome_output" => int(g.metronome_output as i64, 0, 255).to_string(),
                    "metronome_channel" => int(g.metronome_channel as i64, 1, 16).to_string(),
                    "metronome_accent" => int(g.metronome_accent as i64, 0, 127).to_string(),
                    "metronome_note" => int(g.metronome_note as i64, 0, 127).to_string(),
                    "metronome_accent_velocity" => {
                        int(g.metronome_accent_velocity as i64, 1, 127).to_string()
                    }
                    "metronome_velocity" => int(g.metronome_velocity as i64, 1, 127).to_string(),
                    "drum_mode" => switch(g.drum_mode.0),
                    "drums" => switch(g.drums.0),
                    "drum_pattern" => {
                        int(g.drum_pattern as i64, 1, DRUM_PATTERNS as i64).to_string()
                    }
                    "drum_output" => int(g.drum_output as i64, 0, 255).to_string(),
                    other => unreachable!("global key {other} has no step"),
                }
            }
            KeyRef::DrumSteps(..) => {
                return Err(EnchantError::NotAdjustable {
                    key: self.key_name(k),
                    why: "set it to a step string, or set one step (step)",
                })
            }
            KeyRef::DrumNote(p, v) => {
                int(self.global.drum_patterns[p].voices[v].note as i64, 0, 127).to_string()
            }
            KeyRef::DrumLength(p) => int(
                self.global.drum_patterns[p].length as i64,
                1,
                MAX_STEPS as i64,
            )
            .to_string(),
        })
    }
}

impl ZoneSettings {
    fn source_number(&self) -> Option<i64> {
        match self.source {
            Source::Any => None,
            Source::Input(n) => Some(n as i64),
        }
    }
    fn channel_number(&self) -> Option<i64> {
        match self.channel {
            Channel::Any => None,
            Channel::Only(n) => Some(n as i64),
        }
    }
    fn out_channel_number(&self) -> Option<i64> {
        match self.out_channel {
            OutChannel::Same => None,
            OutChannel::Channel(n) => Some(n as i64),
        }
    }

    /// Checks every value (as `set` would), for data read from the vault.
    pub(crate) fn check(&self) -> Result<(), String> {
        let mut copy = self.clone();
        for (i, name) in ZONE_KEYS.iter().enumerate() {
            let v = text(&read_zone(self, i));
            write_zone(&mut copy, i, &v).map_err(|e| format!("{name} = {v}: {e}"))?;
        }
        if self.params.len() > MAX_PARAM_DEVICES {
            return Err(format!(
                "params: {} devices; a zone keeps at most {MAX_PARAM_DEVICES}",
                self.params.len()
            ));
        }
        for (device, values) in &self.params {
            if !valid_device_name(device) {
                return Err(format!("params.{device}: {}", device_name_rule()));
            }
            for (&cc, &value) in &values.0 {
                check_param(cc as i64, value as i64)
                    .map_err(|e| format!("params.{device}.{cc} = {value}: {e}"))?;
            }
        }
        Ok(())
    }
}

/// A JSON value as the text `set` takes.
pub(crate) fn text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

fn switch(name: &str, value: &str) -> Result<Switch, String> {
    value.parse().map_err(|e| format!("{name} {e}"))
}

fn read_zone(s: &ZoneSettings, i: usize) -> Value {
    let to = |v: &dyn erased::Ser| v.value();
    match ZONE_KEYS[i] {
        "source" => to(&s.source),
        "channel" => to(&s.channel),
        "low" => to(&s.low),
        "high" => to(&s.high),
        "output" => to(&s.output),
        "out_channel" => to(&s.out_channel),
        "bank" => to(&s.bank),
        "program" => to(&s.program),
        "octave" => to(&s.octave),
        "semitone" => to(&s.semitone),
        "key" => to(&s.key),
        "scale" => to(&s.scale),
        "chord" => to(&s.chord),
        "arp" => to(&s.arp),
        "arp_pattern" => to(&s.arp_pattern),
        "arp_rate" => to(&s.arp_rate),
        "velocity" => to(&s.velocity),
        "drum_keys" => to(&s.drum_keys),
        other => unreachable!("zone key {other} has no reader"),
    }
}

/// Writes one zone key; the error is the problem text (`octave is -4..=4`).
fn write_zone(s: &mut ZoneSettings, i: usize, value: &str) -> Result<(), String> {
    let name = ZONE_KEYS[i];
    let int =
        |min: i64, max: i64| int_in(value, min, max).ok_or(format!("{name} is {min}..={max}"));
    fn parse<T: std::str::FromStr<Err = String>>(name: &str, value: &str) -> Result<T, String> {
        value.parse().map_err(|e| format!("{name} {e}"))
    }
    match name {
        "source" => s.source = parse(name, value)?,
        "channel" => s.channel = parse(name, value)?,
        "low" => {
            let n: Note = parse(name, value)?;
            if n > s.high {
                return Err(format!(
                    "low must not be above high ({}); set high first",
                    s.high
                ));
            }
            s.low = n;
        }
        "high" => {
            let n: Note = parse(name, value)?;
            if n < s.low {
                return Err(format!(
                    "high must not be below low ({}); set low first",
                    s.low
                ));
            }
            s.high = n;
        }
        "output" => s.output = int(0, 255)? as u8,
        "out_channel" => s.out_channel = parse(name, value)?,
        "bank" => s.bank = parse(name, value)?,
        "program" => s.program = parse(name, value)?,
        "octave" => s.octave = int(-4, 4)? as i8,
        "semitone" => s.semitone = int(-11, 11)? as i8,
        "key" => s.key = parse(name, value)?,
        "scale" => s.scale = parse(name, value)?,
        "chord" => s.chord = parse(name, value)?,
        "arp" => s.arp = parse(name, value)?,
        "arp_pattern" => s.arp_pattern = parse(name, value)?,
        "arp_rate" => s.arp_rate = parse(name, value)?,
        "velocity" => s.velocity = parse(name, value)?,
        "drum_keys" => s.drum_keys = parse(name, value)?,
        other => unreachable!("zone key {other} has no writer"),
    }
    Ok(())
}

/// Serializing through `&dyn` (serde's `Serialize` is not object safe).
mod erased {
    use serde_json::Value;

    pub(crate) trait Ser {
        fn value(&self) -> Value;
    }

    impl<T: serde::Serialize> Ser for T {
        fn value(&self) -> Value {
            serde_json::to_value(self).expect("enchantment values always serialize")
        }
    }
}
