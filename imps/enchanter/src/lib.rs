//! # enchanter: the one owner of the live configuration
//!
//! The enchanter holds the configuration a performer changes while
//! playing (every zone's input, range, output, program, transpose, scale,
//! chord, arpeggiator and velocity curve; 24 presets per zone; drum mode,
//! five drum patterns, the metronome, tempo and time signature; see
//! `crates/enchantment/KEYS.md`), keeps it in the vault, and applies it by
//! sending control messages:
//!
//! - to the bard: `{"cmd": "replace", "config": ...}` with the zones it
//!   derives (drum pattern and metronome are movement zones of the bard,
//!   so they follow the engine's beat), and `{"cmd": "send", ...}` with
//!   bank select and program change for each zone whose program changed,
//!   on that zone's numbered output and channel;
//! - to the realm: `{"cmd": "tempo", "bpm": ...}`.
//!
//! Controllers and the CLI only report gestures to it, as control
//! messages (it answers each with the values it changed):
//!
//! | message | what |
//! |---|---|
//! | `{"cmd": "set", "key": "lower.octave", "value": "-1"}` | one key (`impresario set`) |
//! | `{"cmd": "adjust", "key": "tempo", "delta": 1}` | a relative knob |
//! | `{"cmd": "step", "pattern": 1, "voice": 1, "step": 5, "velocity": 100}` | a drum step |
//! | `{"cmd": "get", "zone": "lower"}` | everything, or one zone (`impresario get`) |
//! | `{"cmd": "preset", "action": "save"\|"recall", "number": 3, "zone": "lower"}` | presets 1–24 (the selected zone when `zone` is absent) |
//! | `{"cmd": "param", "device": "microfreak", "cc": 23, "value": 64, "zone": "lower"}` | records a synth's parameter in the zone's snapshot (the selected zone when `zone` is absent); sends the bard nothing |
//!
//! After every change it publishes its whole state (what `get` shows) to
//! its subscribers, so a controller can show it (LEDs, displays). It
//! subscribes to the bard: a bard whose zones are not the enchanter's (one
//! recreated from realm.toml, or changed by hand with `impresario control
//! bard`) gets them again.
//!
//! ```toml
//! [imps.enchanter]
//! library = "enchanter"
//! config = { bard = "bard", set = { zones = "lower,upper", "lower.high" = "B3", "upper.low" = "C4" } }
//! ```
//!
//! `set` gives the starting values (applied `zones` first, then in key
//! order) when the vault has nothing for it, or when `set` changed in
//! realm.toml since; presets are always kept.

use enchantment::Enchantment;
use imp::{CreateContext, Imp, ImpError, Messenger, NoRt};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use std::collections::BTreeMap;

/// The enchanter's `config` in realm.toml.
#[derive(Clone, Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// The bard imp it configures.
    pub bard: String,
    /// Starting values, as `key = "value"` (the `impresario set` keys).
    pub set: BTreeMap<String, Value>,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            bard: "bard".into(),
            set: BTreeMap::new(),
        }
    }
}

/// What the vault keeps (and a respawn carries).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Saved {
    /// The `set` table of realm.toml the live state started from.
    pub base: BTreeMap<String, Value>,
    /// The live configuration, presets included.
    pub live: Enchantment,
}

/// The control part (the enchanter has no RT part).
pub struct Enchanter {
    config: Config,
    messenger: Messenger,
    live: Enchantment,
    /// What the bard and the realm were last told (`None`: nothing yet).
    applied: Option<Enchantment>,
    /// Created from a predecessor's frozen state, which is newer than
    /// anything in the vault.
    from_frozen: bool,
}

fn text_of(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

fn invalid(e: impl std::fmt::Display) -> ImpError {
    ImpError::invalid(e.to_string())
}

/// The live state `set` describes, from the default.
fn from_base(base: &BTreeMap<String, Value>) -> Result<Enchantment, ImpError> {
    let mut live = Enchantment::default();
    if let Some(zones) = base.get("zones") {
        live.set("zones", &text_of(zones))
            .map_err(|e| invalid(format!("config.set: {e}")))?;
    }
    for (k, v) in base.iter().filter(|(k, _)| *k != "zones") {
        live.set(k, &text_of(v))
            .map_err(|e| invalid(format!("config.set: {e}")))?;
    }
    Ok(live)
}

impl Enchanter {
    /// Tells the bard and the realm what changed since they were last
    /// told, and publishes the state.
    fn apply(&mut self) -> Result<(), ImpError> {
        let previous = self.applied.as_ref();
        let mut letters: Vec<(String, Value)> = Vec::new();
        if previous.is_none_or(|p| p.bard_config() != self.live.bard_config()) {
            letters.push((self.config.bard.clone(), self.live.bard_control()));
        }
        for m in self.live.program_controls(previous) {
            letters.push((self.config.bard.clone(), m));
        }
        if previous.is_none_or(|p| p.tempo() != self.live.tempo()) {
            letters.push((
                "realm".into(),
                json!({ "cmd": "tempo", "bpm": self.live.tempo() }),
            ));
        }
        for (to, message) in &letters {
            self.messenger
                .send(to, message)
                .map_err(|e| ImpError::new(imp::ErrorKind::Other, format!("{e}; try again")))?;
        }
        self.applied = Some(self.live.clone());
        if let Ok(state) = self.live.get(None) {
            if let Err(e) = self.messenger.publish(&state) {
                tracing::debug!("state not published: {e}");
            }
        }
        Ok(())
    }

    /// Runs an edit; on success applies it, on error keeps the old state.
    fn edit(
        &mut self,
        f: impl FnOnce(&mut Enchantment) -> Result<enchantment::Change, enchantment::EnchantError>,
    ) -> Result<Value, ImpError> {
        let change = f(&mut self.live).map_err(invalid)?;
        if self.applied.is_some() {
            self.apply()?;
        }
        Ok(json!({ change.key: change.new }))
    }
}

fn field<'a>(message: &'a Value, name: &str, example: &str) -> Result<&'a Value, ImpError> {
    message
        .get(name)
        .filter(|v| !v.is_null())
        .ok_or_else(|| invalid(format!("`{name}` is missing: {example}")))
}

fn number(message: &Value, name: &str, example: &str) -> Result<i64, ImpError> {
    let v = field(message, name, example)?;
    v.as_i64()
        .or_else(|| v.as_str().and_then(|s| s.trim().parse().ok()))
        .ok_or_else(|| invalid(format!("`{name}` is not a whole number: {example}")))
}

impl Imp for Enchanter {
    type Config = Config;
    type Frozen = Saved;
    type Rt = NoRt;

    fn create(
        ctx: &CreateContext,
        config: Config,
        frozen: Option<Saved>,
    ) -> Result<Self, ImpError> {
        let from_frozen = frozen.is_some();
        let live = match frozen {
            Some(saved) => saved.live,
            None => from_base(&config.set)?,
        };
        Ok(Enchanter {
            config,
            messenger: ctx.messenger().clone(),
            live,
            applied: None,
            from_frozen,
        })
    }

    fn thaw(&mut self) -> Result<Option<NoRt>, ImpError> {
        // Everything, once: the bard may have started from its own config.
        self.applied = None;
        self.apply()?;
        // The bard publishes its configuration whenever it (re)starts or
        // changes: one that is not ours (a bard recreated from realm.toml)
        // gets ours again.
        self.messenger
            .subscribe(&self.config.bard)
            .map_err(|e| invalid(e.to_string()))?;
        Ok(None)
    }

    fn freeze(&mut self) -> Saved {
        self.applied = None;
        Saved {
            base: self.config.set.clone(),
            live: self.live.clone(),
        }
    }

    fn poll(&mut self) -> Result<Value, ImpError> {
        Ok(json!({
            "selected": self.live.selected(),
            "zones": self.live.zones.iter().map(|z| z.name.clone()).collect::<Vec<_>>(),
            "tempo": self.live.tempo(),
        }))
    }

    fn control(&mut self, message: Value) -> Result<Value, ImpError> {
        let cmd = message.get("cmd").and_then(Value::as_str).unwrap_or("");
        match cmd {
            "set" => {
                let ex = r#"{"cmd": "set", "key": "lower.octave", "value": "-1"}"#;
                let key = text_of(field(&message, "key", ex)?);
                let value = text_of(field(&message, "value", ex)?);
                self.edit(|live| live.set(&key, &value))
            }
            "adjust" => {
                let ex = r#"{"cmd": "adjust", "key": "tempo", "delta": 1}"#;
                let key = text_of(field(&message, "key", ex)?);
                let delta = number(&message, "delta", ex)?;
                let delta = delta.clamp(i32::MIN as i64, i32::MAX as i64) as i32;
                self.edit(|live| live.adjust(&key, delta))
            }
            "step" => {
                let ex = r#"{"cmd": "step", "pattern": 1, "voice": 1, "step": 5, "velocity": 100}"#;
                let byte = |name: &str| -> Result<u8, ImpError> {
                    let n = number(&message, name, ex)?;
                    u8::try_from(n).map_err(|_| invalid(format!("`{name}` = {n} is out of range: {ex}")))
                };
                let (p, v, s, vel) = (byte("pattern")?, byte("voice")?, byte("step")?, byte("velocity")?);
                self.edit(|live| live.step(p, v, s, vel))
            }
            "get" => {
                let zone = message.get("zone").and_then(Value::as_str);
                self.live.get(zone).map_err(invalid)
            }
            "preset" => {
                let ex = r#"{"cmd": "preset", "action": "save", "number": 3, "zone": "lower"}"#;
                let action = text_of(field(&message, "action", ex)?);
                let n = number(&message, "number", ex)?;
                let zone = match message.get("zone").and_then(Value::as_str) {
                    Some(z) => z.to_string(),
                    None => self.live.selected().to_string(),
                };
                match action.as_str() {
                    "save" => self.edit(|live| live.save_preset(&zone, n)),
                    "recall" => self.edit(|live| live.recall_preset(&zone, n)),
                    other => Err(invalid(format!(
                        "preset action `{other}`: it is `save` or `recall`"
                    ))),
                }
            }
            "param" => {
                let ex = r#"{"cmd": "param", "device": "microfreak", "cc": 23, "value": 64}"#;
                let device = text_of(field(&message, "device", ex)?);
                let cc = number(&message, "cc", ex)?;
                let value = number(&message, "value", ex)?;
                let zone = match message.get("zone").and_then(Value::as_str) {
                    Some(z) => z.to_string(),
                    None => self.live.selected().to_string(),
                };
                self.edit(|live| live.set_param(&zone, &device, cc, value))
            }
            "notify" => {
                if message["from"] == self.config.bard.as_str() && self.applied.is_some() {
                    let ours = serde_json::to_value(self.live.bard_config())?;
                    if message["state"]["config"] != ours {
                        tracing::info!("the bard's zones are not the enchanter's: sending them again");
                        self.messenger
                            .send(&self.config.bard, &self.live.bard_control())
                            .map_err(|e| invalid(e.to_string()))?;
                    }
                }
                Ok(json!({ "ok": true }))
            }
            other => Err(invalid(format!(
                "the enchanter takes `set`, `adjust`, `step`, `get`, `preset` and `param` (the `cmd` field), not {other:?}"
            ))),
        }
    }

    fn get_vault_data(&self) -> Option<Value> {
        serde_json::to_value(Saved {
            base: self.config.set.clone(),
            live: self.live.clone(),
        })
        .ok()
    }

    fn set_vault_data(&mut self, data: Value) -> Result<(), ImpError> {
        let saved: Saved = serde_json::from_value(data)?;
        saved.live.validate().map_err(invalid)?;
        if self.from_frozen {
            // The predecessor's state is the newest.
        } else if saved.base == self.config.set {
            self.live = saved.live;
        } else {
            tracing::info!(
                "the enchanter's `set` in realm.toml changed: starting from it (presets kept)"
            );
            self.live.presets = saved.live.presets;
        }
        Ok(())
    }
}

imp::export!(Enchanter);
