//! The enchanter's errors: each names the key (or zone, or preset) and says
//! what is allowed, so a performer at the CLI can fix the command.

use thiserror::Error;

/// Why an edit, a read or a vault load was refused. The configuration is
/// unchanged when an edit fails.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum EnchantError {
    /// The key does not exist; `hint` lists the keys there are.
    #[error("unknown key {key:?}: {hint}")]
    UnknownKey {
        /// The key as given.
        key: String,
        /// The keys there are.
        hint: String,
    },
    /// No zone has this name or number.
    #[error("unknown zone {zone:?}: zones are {zones}")]
    UnknownZone {
        /// The zone as given.
        zone: String,
        /// The zones there are, by name (number n is the n-th).
        zones: String,
    },
    /// The value is not allowed for the key: `problem` says what is
    /// (`lower.octave = 7: octave is -4..=4`).
    #[error("{key} = {value}: {problem}")]
    BadValue {
        /// The key, written out in full (`lower.octave`).
        key: String,
        /// The value as given.
        value: String,
        /// What the key takes.
        problem: String,
    },
    /// A preset number outside 1..=24.
    #[error("preset {slot} does not exist: presets are 1..={max}")]
    NoSuchPreset {
        /// The number as given.
        slot: i64,
        /// The highest preset number.
        max: u8,
    },
    /// Recall of a preset slot nothing was saved in.
    #[error("preset {slot} of zone {zone:?} is empty: nothing to recall; save the zone's settings into it first (impresario preset save {slot}, which saves the selected zone)")]
    EmptyPreset {
        /// The zone.
        zone: String,
        /// The slot, 1..=24.
        slot: u8,
    },
    /// The key exists but takes no relative change.
    #[error("{key} cannot be adjusted up or down: {why}")]
    NotAdjustable {
        /// The key.
        key: String,
        /// What to do instead.
        why: &'static str,
    },
    /// Vault data that does not parse or holds values out of range.
    #[error("the enchanter's vault data: {0}")]
    Vault(String),
}
