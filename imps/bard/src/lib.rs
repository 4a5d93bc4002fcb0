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
//! `switch_patterns`, `replace` (see `bard_pipeline::ControlMessage`), and
//! `{"cmd": "send", "output": 1, "midi": [192, 4]}`: one channel message
//! (bank select, program change, a CC…; no notes) sent on numbered output
//! 1 at the start of the next block. It reaches the RT part through a
//! preallocated ring of plain messages; when that ring is full the control
//! message is refused (try again), never blocked on.
//!
//! ## Hot swap
//!
//! The RT part hands its transient state (held keys, sounding notes,
//! arpeggiator and pattern positions) to its successor through the
//! engine's fixed-size buffer, so a rebuilt bard carries on in phase.

use bard_pipeline::{
    Bard, BardConfig, ControlMessage, EventSink, NoteEvent, OutMidi, PreparedConfig,
};
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

/// `send` messages in flight from the control part to the RT part.
const SEND_RING: usize = 256;

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
    sends: Option<rtrb::Producer<OutMidi>>,
    shared: Arc<Shared>,
    /// Publishes the live configuration to subscribers (controllers).
    messenger: imp::Messenger,
}

/// The RT part.
pub struct BardRt {
    bard: Bard,
    configs: rtrb::Consumer<PreparedConfig>,
    spent: rtrb::Producer<PreparedConfig>,
    sends: rtrb::Consumer<OutMidi>,
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

    /// Checks one `send` message and hands it to the RT part. A frozen bard
    /// has no output to send on: the message is refused, not kept for later
    /// (a program change from long ago is not what the performer expects).
    fn send(&mut self, output: u8, midi: &[u8]) -> Result<Value, ImpError> {
        let m = OutMidi::new(output, midi).map_err(|e| {
            ImpError::invalid(format!("send {midi:?} to output {output}: {}", e.problem))
        })?;
        let Some(tx) = self.sends.as_mut() else {
            return Err(ImpError::new(
                imp::ErrorKind::Other,
                "the bard is frozen (not running): nothing can be sent now",
            ));
        };
        tx.push(m).map_err(|_| {
            ImpError::new(
                imp::ErrorKind::Other,
                "too many send messages waiting for the engine; try again",
            )
        })?;
        Ok(json!({ "sent": true }))
    }

    /// Tells subscribers the live configuration (`{"config": ...}`).
    fn publish(&self) {
        if let Err(e) = self.messenger.publish(&json!({ "config": self.live })) {
            tracing::debug!("configuration not published: {e}");
        }
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

    fn create(ctx: &CreateContext, config: Value, frozen: Option<Saved>) -> Result<Self, ImpError> {
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
            sends: None,
            shared: Arc::new(Shared::default()),
            messenger: ctx.messenger().clone(),
        })
    }

    fn thaw(&mut self) -> Result<Option<BardRt>, ImpError> {
        let prepared = PreparedConfig::new(&self.live).map_err(config_error)?;
        let (to_rt, configs) = rtrb::RingBuffer::new(16);
        let (spent, from_rt) = rtrb::RingBuffer::new(16);
        let (sends_tx, sends) = rtrb::RingBuffer::new(SEND_RING);
        self.to_rt = Some(to_rt);
        self.from_rt = Some(from_rt);
        self.sends = Some(sends_tx);
        self.publish();
        Ok(Some(BardRt {
            bard: Bard::new(prepared),
            configs,
            spent,
            sends,
            input: Vec::with_capacity(MAX_INPUT),
            shared: self.shared.clone(),
        }))
    }

    fn freeze(&mut self) -> Saved {
        self.collect_spent();
        self.to_rt = None;
        self.from_rt = None;
        self.sends = None;
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
        if let ControlMessage::Send { output, midi } = &msg {
            return self.send(*output, midi);
        }
        let next = self.live.apply_control(&msg).map_err(config_error)?;
        let previous = std::mem::replace(&mut self.live, next);
        if let Err(e) = self.push_live() {
            self.live = previous;
            return Err(e);
        }
        if previous != self.live {
            self.publish();
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
        // Only take what the bard can queue, so nothing popped is lost.
        while self.bard.send_room() > 0 {
            let Ok(m) = self.sends.pop() else { break };
            self.bard.send(m);
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

#[cfg(test)]
mod tests {
    use super::*;

    fn thawed() -> (BardImp, BardRt) {
        let ctx = CreateContext::new("bard".into(), 48_000.0);
        let mut imp = BardImp::create(&ctx, json!({}), None).unwrap();
        let rt = imp.thaw().unwrap().unwrap();
        (imp, rt)
    }

    fn block(rt: &mut BardRt, start: u64, input: &[RtEvent]) -> Vec<(u32, u8, Vec<u8>)> {
        let mut buf = [RtEvent::midi(0, &[0xf8]); 16];
        let mut w = EventWriter::new(&mut buf);
        let ctx = BlockContext::new(start, 48_000.0, 120.0, 64);
        rt.process(&ctx, input, &mut w);
        let n = w.len();
        buf[..n]
            .iter()
            .map(|e| (e.frame, e.port, e.midi_bytes().to_vec()))
            .collect()
    }

    #[test]
    fn send_goes_out_on_its_output_at_the_next_block() {
        let (mut imp, mut rt) = thawed();
        let r = imp
            .control(json!({"cmd": "send", "output": 3, "midi": [0xb1, 0, 2]}))
            .unwrap();
        assert_eq!(r, json!({"sent": true}));
        imp.control(json!({"cmd": "send", "output": 3, "midi": [0xc1, 7]}))
            .unwrap();
        let note = RtEvent::midi(0, &[0x90, 60, 100]);
        assert_eq!(
            block(&mut rt, 0, &[note]),
            vec![
                (0, 3, vec![0xb1, 0, 2]),
                (0, 3, vec![0xc1, 7]),
                (0, 0, vec![0x90, 60, 100])
            ]
        );
        assert_eq!(block(&mut rt, 64, &[]), vec![]);
        // The configuration did not change.
        assert_eq!(imp.live, BardConfig::from_value(json!({})).unwrap());
    }

    #[test]
    fn send_refuses_what_is_not_one_channel_message() {
        let (mut imp, mut rt) = thawed();
        let e = imp
            .control(json!({"cmd": "send", "output": 1, "midi": [0x90, 60, 100]}))
            .unwrap_err();
        assert!(e.to_string().contains("note message"), "{e}");
        let e = imp
            .control(json!({"cmd": "send", "output": 1, "midi": [0xc0]}))
            .unwrap_err();
        assert!(e.to_string().contains("takes 1 data byte, got 0"), "{e}");
        assert_eq!(block(&mut rt, 0, &[]), vec![]);
    }

    #[test]
    fn a_frozen_bard_refuses_send_and_a_full_ring_says_try_again() {
        let ctx = CreateContext::new("bard".into(), 48_000.0);
        let mut imp = BardImp::create(&ctx, json!({}), None).unwrap();
        let e = imp
            .control(json!({"cmd": "send", "output": 1, "midi": [0xc0, 1]}))
            .unwrap_err();
        assert!(e.to_string().contains("frozen"), "{e}");
        let _rt = imp.thaw().unwrap().unwrap();
        for _ in 0..SEND_RING {
            imp.control(json!({"cmd": "send", "output": 1, "midi": [0xc0, 1]}))
                .unwrap();
        }
        let e = imp
            .control(json!({"cmd": "send", "output": 1, "midi": [0xc0, 1]}))
            .unwrap_err();
        assert!(e.to_string().contains("try again"), "{e}");
    }
}
