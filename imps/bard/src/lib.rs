//! # bard: the note pipeline imp
//!
//! Wraps [`bard_pipeline`] as an imp. The control part keeps the
//! configuration and turns control messages (from `impresario control`)
//! into prepared configurations; the RT part runs the
//! pipeline on the engine thread and swaps a prepared configuration in
//! between two blocks, without allocating.
//!
//! ## Configuration and the vault
//!
//! The `config` table in `realm.toml` is the bard's *base* configuration
//! (see the `bard-pipeline` docs for its shape; `{}` passes notes through).
//! Control messages change the live configuration, which is kept in the
//! vault together with the base it was derived from. At start the vault's
//! live configuration is used while the base in `realm.toml` is unchanged;
//! after an edit of `realm.toml` the new base wins (and the log says so).
//!
//! ```toml
//! [imps.bard]
//! library = "bard"
//! config = { zones = [{ scale = { key = "D", scale = "dorian" }, chord = { shape = "m7" } }] }
//! ```
//!
//! Control messages: `{"cmd": "set", "path": "/zones/0/scale/key", "value": "E"}`,
//! `{"cmd": "transpose", "octaves": 1, "semitones": 0}`, `mute_voice`,
//! `switch_patterns`, `replace` (see `bard_pipeline::ControlMessage`).
//!
//! ## Hot swap
//!
//! The RT part hands its transient state (held keys, sounding notes,
//! arpeggiator and pattern positions) to its successor through the
//! engine's fixed-size buffer, so a rebuilt bard carries on in phase.

use bard_pipeline::{Bard, BardConfig, ControlMessage, EventSink, NoteEvent, PreparedConfig};
use imp::{
    BlockContext, CreateContext, EventWriter, Imp, ImpError, RtEvent, RtPart, TRANSIENT_BYTES,
};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

const _: () = assert!(bard_pipeline::limits::TRANSIENT_STATE_BYTES <= TRANSIENT_BYTES);

/// Input events the RT part converts per block at most (the engine's limit).
const MAX_INPUT: usize = 1024;

/// What the bard keeps in the vault.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Saved {
    /// The `realm.toml` config the live one was derived from.
    pub base: Value,
    /// The live configuration.
    pub live: BardConfig,
}

/// Counters the RT part shares with the control part.
#[derive(Default)]
struct Shared {
    dropped_note_ons: AtomicU64,
    sounding: AtomicU64,
    config_swaps: AtomicU64,
}

/// The control part.
pub struct BardImp {
    base: Value,
    live: BardConfig,
    to_rt: Option<rtrb::Producer<PreparedConfig>>,
    from_rt: Option<rtrb::Consumer<PreparedConfig>>,
    shared: Arc<Shared>,
}

/// The RT part.
pub struct BardRt {
    bard: Bard,
    configs: rtrb::Consumer<PreparedConfig>,
    spent: rtrb::Producer<PreparedConfig>,
    input: Vec<NoteEvent>,
    shared: Arc<Shared>,
}

fn config_error(e: bard_pipeline::ConfigError) -> ImpError {
    ImpError::invalid(format!("{e}; fix the bard's config"))
}

impl BardImp {
    /// Sends a new live configuration to the RT part (if it runs).
    fn push_live(&mut self) -> Result<(), ImpError> {
        self.collect_spent();
        let prepared = PreparedConfig::new(&self.live).map_err(config_error)?;
        if let Some(tx) = self.to_rt.as_mut() {
            tx.push(prepared).map_err(|_| {
                ImpError::new(
                    imp::ErrorKind::Other,
                    "too many configuration changes at once; try again",
                )
            })?;
        }
        Ok(())
    }

    /// Drops, here on the control thread, configurations the RT part let go of.
    fn collect_spent(&mut self) {
        if let Some(rx) = self.from_rt.as_mut() {
            while let Ok(old) = rx.pop() {
                drop(old);
            }
        }
    }
}

impl Imp for BardImp {
    type Config = Value;
    type Frozen = Saved;
    type Rt = BardRt;

    fn create(_: &CreateContext, config: Value, frozen: Option<Saved>) -> Result<Self, ImpError> {
        let base_config = BardConfig::from_value(config.clone()).map_err(config_error)?;
        // A respawn carries the live config, unless realm.toml changed the base.
        let live = match frozen {
            Some(saved) if saved.base == config => saved.live,
            _ => base_config,
        };
        Ok(BardImp {
            base: config,
            live,
            to_rt: None,
            from_rt: None,
            shared: Arc::new(Shared::default()),
        })
    }

    fn thaw(&mut self) -> Result<Option<BardRt>, ImpError> {
        let prepared = PreparedConfig::new(&self.live).map_err(config_error)?;
        let (to_rt, configs) = rtrb::RingBuffer::new(16);
        let (spent, from_rt) = rtrb::RingBuffer::new(16);
        self.to_rt = Some(to_rt);
        self.from_rt = Some(from_rt);
        Ok(Some(BardRt {
            bard: Bard::new(prepared),
            configs,
            spent,
            input: Vec::with_capacity(MAX_INPUT),
            shared: self.shared.clone(),
        }))
    }

    fn freeze(&mut self) -> Saved {
        self.collect_spent();
        self.to_rt = None;
        self.from_rt = None;
        Saved {
            base: self.base.clone(),
            live: self.live.clone(),
        }
    }

    fn poll(&mut self) -> Result<Value, ImpError> {
        self.collect_spent();
        Ok(json!({
            "zones": self.live.zones.len(),
            "sounding": self.shared.sounding.load(Ordering::Relaxed),
            "dropped_note_ons": self.shared.dropped_note_ons.load(Ordering::Relaxed),
            "config_swaps": self.shared.config_swaps.load(Ordering::Relaxed),
        }))
    }

    fn control(&mut self, message: Value) -> Result<Value, ImpError> {
        let bytes = serde_json::to_vec(&message)?;
        let msg = ControlMessage::from_json(&bytes).map_err(config_error)?;
        let next = self.live.apply_control(&msg).map_err(config_error)?;
        let previous = std::mem::replace(&mut self.live, next);
        if let Err(e) = self.push_live() {
            self.live = previous;
            return Err(e);
        }
        Ok(json!({ "applied": true }))
    }

    fn get_vault_data(&self) -> Option<Value> {
        serde_json::to_value(Saved {
            base: self.base.clone(),
            live: self.live.clone(),
        })
        .ok()
    }

    fn set_vault_data(&mut self, data: Value) -> Result<(), ImpError> {
        let saved: Saved = serde_json::from_value(data)?;
        if saved.base == self.base {
            saved.live.validate().map_err(config_error)?;
            self.live = saved.live;
        } else {
            tracing::info!(
                "the bard's config in realm.toml changed: starting from it, not from the vault"
            );
        }
        Ok(())
    }
}

/// Adapts the engine's output buffer to the pipeline's sink.
struct Sink<'a, 'b>(&'a mut EventWriter<'b>);

impl EventSink for Sink<'_, '_> {
    fn remaining(&self) -> usize {
        self.0.remaining()
    }

    fn push(&mut self, e: NoteEvent) -> bool {
        let mut out = RtEvent::midi(e.frame, e.as_bytes());
        out.port = e.port;
        self.0.push(out)
    }
}

impl BardRt {
    fn publish(&self) {
        let stats = self.bard.stats();
        self.shared
            .dropped_note_ons
            .store(stats.dropped_note_ons, Ordering::Relaxed);
        self.shared
            .sounding
            .store(self.bard.sounding() as u64, Ordering::Relaxed);
    }
}

impl RtPart for BardRt {
    fn process(&mut self, ctx: &BlockContext, input: &[RtEvent], out: &mut EventWriter<'_>) {
        if let Ok(prepared) = self.configs.pop() {
            let old = self.bard.apply_config(prepared);
            // The ring has the same capacity as the one that brought it.
            if let Err(rtrb::PushError::Full(old)) = self.spent.push(old) {
                std::mem::forget(old);
            }
            self.shared.config_swaps.fetch_add(1, Ordering::Relaxed);
        }
        self.input.clear();
        for e in input.iter().take(MAX_INPUT) {
            if let Some(n) = NoteEvent::from_bytes(e.frame, e.port, e.midi_bytes()) {
                self.input.push(n);
            }
        }
        self.bard.process(&self.input, ctx, &mut Sink(out));
        self.publish();
    }

    fn save_transient(&self, buf: &mut [u8; TRANSIENT_BYTES]) {
        let head: &mut [u8; bard_pipeline::limits::TRANSIENT_STATE_BYTES] = (&mut buf
            [..bard_pipeline::limits::TRANSIENT_STATE_BYTES])
            .try_into()
            .expect("size checked at compile time");
        self.bard.save_transient(head);
    }

    fn restore_transient(&mut self, buf: &[u8; TRANSIENT_BYTES]) -> bool {
        let head: &[u8; bard_pipeline::limits::TRANSIENT_STATE_BYTES] = (&buf
            [..bard_pipeline::limits::TRANSIENT_STATE_BYTES])
            .try_into()
            .expect("size checked at compile time");
        // A layout from an incompatible build is refused and nothing
        // changes; the engine then ends the old notes itself.
        self.bard.restore_transient(head).is_ok()
    }

    fn all_notes_off(&mut self, out: &mut EventWriter<'_>) {
        self.bard.all_notes_off(&mut Sink(out));
        self.publish();
    }
}

imp::export!(BardImp);
