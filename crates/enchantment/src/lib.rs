//! # enchantment: the enchanter's live configuration
//!
//! The enchanter imp owns the live configuration of every zone and the
//! global state (tempo, metronome, drum patterns), keeps it in the vault,
//! and applies it by sending control messages to the bard. This crate is
//! that configuration as a pure value ([`Enchantment`]) with validated
//! edits, and what it derives for the bard. No I/O, no threads.
//!
//! ## Keys
//!
//! Everything is edited through *keys* with values written the way a
//! musician types them (the full table, with defaults, is `KEYS.md` beside
//! this crate):
//!
//! * zone keys, `ZONE.KEY`, the zone by name or number from 1
//!   (`lower.octave`, `2.scale`); a bare zone key (`octave`) means the
//!   selected zone: `source channel low high output out_channel bank
//!   program octave semitone key scale chord arp arp_pattern arp_rate
//!   velocity drum_keys`;
//! * global keys: `zones selected tempo time_signature metronome
//!   metronome_output metronome_channel metronome_accent metronome_note
//!   metronome_accent_velocity metronome_velocity drum_mode drums
//!   drum_pattern drum_output`;
//! * drum pattern keys: `drums.P.VOICE` (a step string), `drums.P.VOICE.note`
//!   and `drums.P.length`, P 1..=5, VOICE `kick snare hat open_hat clap` or
//!   1..=5.
//!
//! [`Enchantment::set`] takes text, [`Enchantment::adjust`] a relative step
//! (a knob: clamped at the ends, nothing wraps), [`Enchantment::step`] one
//! drum step (a pad of a step grid). Every refusal is an [`EnchantError`]
//! that names the key and what it takes:
//! `lower.octave = 7: octave is -4..=4`.
//!
//! ## Decisions
//!
//! * `drum_mode` turns *every* zone's played notes into General MIDI drums:
//!   selecting a zone (to edit it) then never changes what sounds. One zone
//!   alone plays drums with its own `drum_keys` key.
//! * The derived bard zones are the zones in order, then, while they play,
//!   the drum pattern (`enchanter_drums`) and the metronome
//!   (`enchanter_metronome`): movement-only zones (`notes = false`) on their
//!   outputs. Both are sixteenth-note grids (4 ticks per beat) that the bard
//!   aligns to the engine's beat, so a bar starts where the engine's bar
//!   does.
//! * A drum pattern's step is a sixteenth note; 16 steps make a 4/4 bar.
//!   A step string shorter than the pattern leaves the rest off; a longer one
//!   is refused (change `drums.P.length` first).
//! * Presets belong to a zone name: a zone removed (by `zones`) and added
//!   again finds its presets. A preset holds every zone key (not the name).
//! * `low` above `high` (or `high` below `low`) is refused, not pushed along:
//!   set the other end first.
//! * A zone's `params` are parameter snapshots of synths, by device name
//!   and controller number (`{"microfreak": {"23": 64}}`): recorded by a
//!   device's imp with [`Enchantment::set_param`] (the enchanter's `param`
//!   message), saved and recalled with the zone's presets, shown by `get`,
//!   and never part of the bard's configuration (recording one sends the
//!   bard nothing). They are not `set` keys: the knobs of the synth are
//!   where they are changed. Any controller number 0..=119 is taken (the
//!   device's imp knows its chart); 120..=127 are channel mode messages.
//! * The vault JSON takes defaults for missing fields (older vaults load)
//!   and ignores unknown ones (a vault from a newer build loads); values are
//!   still checked as `set` checks them.

#![forbid(unsafe_code)]

mod derive;
mod error;
mod keys;
mod model;
pub mod values;

use serde_json::{json, Value};

pub use derive::{DRUM_ZONE, METRONOME_ZONE};
pub use error::EnchantError;
pub use keys::{GLOBAL_KEYS, ZONE_KEYS};
pub use model::{
    CcValues, DrumPattern, DrumVoice, Enchantment, Global, Zone, ZoneSettings, DEFAULT_STEPS,
    DRUM_NOTES, DRUM_PATTERNS, DRUM_VOICES, MAX_PARAM_CC, MAX_PARAM_DEVICES, MAX_ZONES, PRESETS,
    VERSION,
};

use keys::{device_name_rule, text, valid_device_name, valid_zone_name, KeyRef};

/// What an edit changed: the key in full and its value before and after
/// (in the form `get` shows). `old == new` when the value was already so.
#[derive(Clone, Debug, PartialEq)]
pub struct Change {
    /// The key written out in full (`lower.octave`, `tempo`, `drums.1.kick`,
    /// `lower.preset.3`).
    pub key: String,
    /// The value before.
    pub old: Value,
    /// The value after.
    pub new: Value,
}

impl Change {
    /// True when the value is different.
    pub fn changed(&self) -> bool {
        self.old != self.new
    }
}

impl Enchantment {
    /// Sets `key` (see the crate docs) to `value` as typed; on error
    /// nothing changes.
    pub fn set(&mut self, key: &str, value: &str) -> Result<Change, EnchantError> {
        let k = self.resolve(key)?;
        self.set_ref(k, value)
    }

    fn set_ref(&mut self, k: KeyRef, value: &str) -> Result<Change, EnchantError> {
        let old = self.read(k);
        self.write(k, value)?;
        // `zones` can rename the selected zone's index; the name is stable.
        Ok(Change {
            key: self.key_name(k),
            old,
            new: self.read(k),
        })
    }

    /// Moves `key` by `delta` steps (a relative knob): numbers by 1 (tempo
    /// by 1 BPM, `time_signature` by one beat), named values through their
    /// list (scales, chords, rates… in the order of [`values`]), switches on
    /// for `delta > 0` and off for `delta < 0`; `any`/`same`/`none` sit just
    /// below the lowest number. Clamped at both ends; nothing wraps.
    /// `zones` and step strings are not adjustable.
    pub fn adjust(&mut self, key: &str, delta: i32) -> Result<Change, EnchantError> {
        let k = self.resolve(key)?;
        let next = self.stepped(k, delta)?;
        self.set_ref(k, &next)
    }

    /// Sets one drum step: pattern 1..=5, voice 1..=5 (kick, snare, hat,
    /// open_hat, clap), step 1..=length, velocity 0 (off) ..=127.
    pub fn step(
        &mut self,
        pattern: u8,
        voice: u8,
        step: u8,
        velocity: u8,
    ) -> Result<Change, EnchantError> {
        let key = format!("drums.{pattern}.{voice}");
        let k = self.resolve(&key)?;
        let KeyRef::DrumSteps(p, v) = k else {
            unreachable!("drums.P.V resolves to steps")
        };
        let pat = &self.global.drum_patterns[p];
        let bad = |problem: String| EnchantError::BadValue {
            key: self.key_name(k),
            value: format!("step {step} velocity {velocity}"),
            problem,
        };
        if step == 0 || step > pat.length {
            return Err(bad(format!(
                "step is 1..={} (the pattern's length)",
                pat.length
            )));
        }
        if velocity > 127 {
            return Err(bad("velocity is 0 (off)..=127".into()));
        }
        let mut steps = pat.voices[v].steps.clone();
        steps.0[step as usize - 1] = velocity;
        self.set_ref(k, &steps.to_string())
    }

    /// One zone (by name or number; with its name, its settings and the
    /// preset slots that hold something), or everything when `zone` is
    /// `None` (`version`, `global` with the drum patterns, `zones`).
    pub fn get(&self, zone: Option<&str>) -> Result<Value, EnchantError> {
        match zone {
            Some(z) => {
                let i = self.zone_index(z)?;
                Ok(self.zone_json(i))
            }
            None => Ok(json!({
                "version": self.version,
                "global": self.global,
                "zones": (0..self.zones.len()).map(|i| self.zone_json(i)).collect::<Vec<_>>(),
            })),
        }
    }

    /// One key's value, in the form `get` shows.
    pub fn get_key(&self, key: &str) -> Result<Value, EnchantError> {
        Ok(self.read(self.resolve(key)?))
    }

    fn zone_json(&self, i: usize) -> Value {
        let mut v = serde_json::to_value(&self.zones[i]).expect("zones serialize");
        v["presets"] = json!(self.preset_slots(&self.zones[i].name));
        v
    }

    /// The preset slots of `zone` (a name) that hold something.
    pub fn preset_slots(&self, zone: &str) -> Vec<u8> {
        self.presets
            .get(zone)
            .map(|m| m.keys().copied().collect())
            .unwrap_or_default()
    }

    fn slot(n: i64) -> Result<u8, EnchantError> {
        if (1..=PRESETS as i64).contains(&n) {
            Ok(n as u8)
        } else {
            Err(EnchantError::NoSuchPreset {
                slot: n,
                max: PRESETS,
            })
        }
    }

    /// Saves the zone's settings (every zone key) into its preset `n`
    /// (1..=24), replacing what was there.
    pub fn save_preset(&mut self, zone: &str, n: i64) -> Result<Change, EnchantError> {
        let n = Self::slot(n)?;
        let z = self.zone_index(zone)?;
        let name = self.zones[z].name.clone();
        let settings = self.zones[z].settings.clone();
        let old = self
            .presets
            .get(&name)
            .and_then(|m| m.get(&n))
            .map_or(Value::Null, |s| {
                serde_json::to_value(s).expect("serializes")
            });
        let new = serde_json::to_value(&settings).expect("serializes");
        self.presets
            .entry(name.clone())
            .or_default()
            .insert(n, settings);
        Ok(Change {
            key: format!("{name}.preset.{n}"),
            old,
            new,
        })
    }

    /// Replaces the zone's settings with its preset `n` (1..=24); an empty
    /// slot is an error that says so.
    pub fn recall_preset(&mut self, zone: &str, n: i64) -> Result<Change, EnchantError> {
        let n = Self::slot(n)?;
        let z = self.zone_index(zone)?;
        let name = self.zones[z].name.clone();
        let Some(settings) = self.presets.get(&name).and_then(|m| m.get(&n)).cloned() else {
            return Err(EnchantError::EmptyPreset {
                zone: name,
                slot: n,
            });
        };
        let old = serde_json::to_value(&self.zones[z].settings).expect("serializes");
        self.zones[z].settings = settings;
        Ok(Change {
            key: format!("{name}.preset.{n}"),
            old,
            new: serde_json::to_value(&self.zones[z].settings).expect("serializes"),
        })
    }

    /// Records a device's parameter in the zone's snapshot (the zone by
    /// name or number): controller `cc` 0..=119 of `device` (a name like
    /// `microfreak`: a-z first, then a-z, 0-9, _) now has `value` 0..=127.
    /// Any controller number in the range is taken: the device's imp knows
    /// which of them are parameters. A zone keeps at most
    /// [`MAX_PARAM_DEVICES`] devices. The bard's configuration does not
    /// change; the key of the change is `ZONE.params.DEVICE.CC`.
    pub fn set_param(
        &mut self,
        zone: &str,
        device: &str,
        cc: i64,
        value: i64,
    ) -> Result<Change, EnchantError> {
        let z = self.zone_index(zone)?;
        let device = device.trim().to_ascii_lowercase();
        let name = &self.zones[z].name;
        let bad = |key: String, problem: String| EnchantError::BadValue {
            key,
            value: value.to_string(),
            problem,
        };
        if !valid_device_name(&device) {
            return Err(bad(
                format!("{name}.params.{device}"),
                device_name_rule().into(),
            ));
        }
        let key = format!("{name}.params.{device}.{cc}");
        keys::check_param(cc, value).map_err(|e| bad(key.clone(), e))?;
        let params = &mut self.zones[z].settings.params;
        if !params.contains_key(&device) && params.len() >= MAX_PARAM_DEVICES {
            return Err(bad(
                key,
                format!("a zone keeps the parameters of at most {MAX_PARAM_DEVICES} devices"),
            ));
        }
        let old = params
            .get(&device)
            .and_then(|v| v.0.get(&(cc as u8)))
            .map_or(Value::Null, |v| json!(v));
        params
            .entry(device)
            .or_default()
            .0
            .insert(cc as u8, value as u8);
        Ok(Change {
            key,
            old,
            new: json!(value),
        })
    }

    /// The selected zone's name.
    pub fn selected(&self) -> &str {
        &self.zones[self.selected_index()].name
    }

    /// Pretty JSON for the vault (stable key order).
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).expect("an Enchantment always serializes")
    }

    /// Reads vault JSON and checks it ([`validate`](Self::validate)).
    pub fn from_json(json: &str) -> Result<Enchantment, EnchantError> {
        let e: Enchantment =
            serde_json::from_str(json).map_err(|e| EnchantError::Vault(e.to_string()))?;
        e.validate()?;
        Ok(e)
    }

    /// Like [`from_json`](Self::from_json) from a parsed value.
    pub fn from_value(value: Value) -> Result<Enchantment, EnchantError> {
        let e: Enchantment =
            serde_json::from_value(value).map_err(|e| EnchantError::Vault(e.to_string()))?;
        e.validate()?;
        Ok(e)
    }

    /// Checks everything as `set` would: zone names and count, the selected
    /// zone, every value and preset, the five drum patterns of five voices.
    pub fn validate(&self) -> Result<(), EnchantError> {
        let vault = |m: String| Err(EnchantError::Vault(m));
        if self.version > VERSION {
            return vault(format!(
                "version {} is newer than this build's {VERSION}",
                self.version
            ));
        }
        if self.zones.is_empty() || self.zones.len() > MAX_ZONES {
            return vault(format!(
                "{} zones; there are 1..={MAX_ZONES}",
                self.zones.len()
            ));
        }
        for (i, z) in self.zones.iter().enumerate() {
            if !valid_zone_name(&z.name) || self.zones[..i].iter().any(|x| x.name == z.name) {
                return vault(format!(
                    "zone name {:?} is not a valid, unique name",
                    z.name
                ));
            }
            z.settings
                .check()
                .or_else(|e| vault(format!("zone {}: {e}", z.name)))?;
        }
        if !self.zones.iter().any(|z| z.name == self.global.selected) {
            return vault(format!(
                "selected zone {:?} is not one of {}",
                self.global.selected,
                self.zone_list()
            ));
        }
        for (name, slots) in &self.presets {
            for (n, s) in slots {
                if !(1..=PRESETS).contains(n) {
                    return vault(format!("preset {n} of {name}: presets are 1..={PRESETS}"));
                }
                s.check()
                    .or_else(|e| vault(format!("preset {n} of {name}: {e}")))?;
            }
        }
        let g = &self.global;
        if g.drum_patterns.len() != DRUM_PATTERNS {
            return vault(format!(
                "{} drum patterns; there are {DRUM_PATTERNS}",
                g.drum_patterns.len()
            ));
        }
        for (p, pat) in g.drum_patterns.iter().enumerate() {
            let names: Vec<&str> = pat.voices.iter().map(|v| v.voice.as_str()).collect();
            if names != DRUM_VOICES {
                return vault(format!(
                    "drum pattern {}: the voices are {} in this order",
                    p + 1,
                    DRUM_VOICES.join(", ")
                ));
            }
            if pat
                .voices
                .iter()
                .any(|v| v.steps.0.len() != pat.length as usize)
            {
                return vault(format!(
                    "drum pattern {}: every voice has {} steps (its length)",
                    p + 1,
                    pat.length
                ));
            }
        }
        // Every global and drum key, through `set`'s own checks.
        let mut copy = self.clone();
        let mut keys: Vec<KeyRef> = (1..GLOBAL_KEYS.len()).map(KeyRef::Global).collect();
        for p in 0..DRUM_PATTERNS {
            keys.push(KeyRef::DrumLength(p));
            for v in 0..DRUM_VOICES.len() {
                keys.push(KeyRef::DrumSteps(p, v));
                keys.push(KeyRef::DrumNote(p, v));
            }
        }
        for k in keys {
            let v = text(&self.read(k));
            copy.write(k, &v)
                .map_err(|e| EnchantError::Vault(e.to_string()))?;
        }
        Ok(())
    }
}
