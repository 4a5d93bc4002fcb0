//! # monitor: a MIDI monitor imp
//!
//! Logs every event it receives (one line each, with note names), counts
//! them by type, and passes them on unchanged on output 0, so it can sit in
//! any chain. The counts live in the vault, so they survive reloads and
//! restarts; `impresario status` shows them with the last event seen.
//!
//! Across a respawn the old RT part keeps counting until its successor
//! replaces it; the events it counted after the freeze reach the new part
//! through the transient handoff, so no count is lost.
//!
//! ```toml
//! [imps.watch]
//! library = "monitor"
//! config = { label = "keys", log = true }
//! ```

use imp::{
    BlockContext, CreateContext, EventWriter, Imp, ImpError, RtEvent, RtPart, TRANSIENT_BYTES,
};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

/// How many events the RT part can hand to the log between two polls.
const LOG_RING: usize = 4096;

/// Note names used in the log and in `last_event`.
const NOTE_NAMES: [&str; 12] = [
    "C", "C#", "D", "D#", "E", "F", "F#", "G", "G#", "A", "A#", "B",
];

/// The monitor's configuration.
#[derive(Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Shown in front of every log line.
    pub label: String,
    /// Log each event (counting happens either way).
    pub log: bool,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            label: "monitor".into(),
            log: true,
        }
    }
}

/// Event counts, persisted in the vault.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(default)]
pub struct Counts {
    /// Note-ons with velocity > 0.
    pub note_on: u64,
    /// Note-offs (including note-on with velocity 0).
    pub note_off: u64,
    /// Control changes.
    pub control_change: u64,
    /// Everything else.
    pub other: u64,
}

impl Counts {
    fn total(&self) -> u64 {
        self.note_on + self.note_off + self.control_change + self.other
    }
}

/// Counters the RT part bumps and the control part reads.
#[derive(Default)]
struct Live {
    note_on: AtomicU64,
    note_off: AtomicU64,
    control_change: AtomicU64,
    other: AtomicU64,
    dropped_log: AtomicU64,
}

/// State carried across a respawn.
#[derive(Serialize, Deserialize)]
pub struct Frozen {
    counts: Counts,
    last_event: Option<String>,
    /// What the running RT part had counted at the freeze (it goes on
    /// counting until the swap; see [`MonitorRt::restore_transient`]).
    #[serde(default)]
    counted_at_freeze: [u64; 4],
}

/// The control part.
pub struct Monitor {
    name: String,
    config: Config,
    /// Counts before the current RT part started.
    base: Counts,
    live: Arc<Live>,
    log: Option<rtrb::Consumer<RtEvent>>,
    last_event: Option<String>,
    /// Counted by the predecessor's RT part up to the freeze.
    counted_at_freeze: [u64; 4],
}

/// The RT part: counts, queues for the log, passes through.
pub struct MonitorRt {
    live: Arc<Live>,
    log: rtrb::Producer<RtEvent>,
    counted_at_freeze: [u64; 4],
}

impl Live {
    fn counters(&self) -> [&AtomicU64; 4] {
        [
            &self.note_on,
            &self.note_off,
            &self.control_change,
            &self.other,
        ]
    }

    fn snapshot(&self) -> [u64; 4] {
        self.counters().map(|c| c.load(Ordering::Relaxed))
    }
}

fn note_name(note: u8) -> String {
    format!(
        "{}{}",
        NOTE_NAMES[(note % 12) as usize],
        note as i32 / 12 - 1
    )
}

/// A one-line description of an event, e.g. `note-on ch1 C4 vel 100`.
pub fn describe(e: &RtEvent) -> String {
    if e.is_sysex() {
        return format!("sysex {} bytes", e.data_len);
    }
    let b = e.midi_bytes();
    if b.is_empty() {
        return format!("control event kind {} value {}", e.kind, e.value);
    }
    let ch = (b[0] & 0x0F) + 1;
    match (b[0] & 0xF0, b.len()) {
        (0x90, 3) if b[2] > 0 => format!("note-on ch{ch} {} vel {}", note_name(b[1]), b[2]),
        (0x90, 3) | (0x80, 3) => format!("note-off ch{ch} {}", note_name(b[1])),
        (0xB0, 3) => format!("cc ch{ch} #{} = {}", b[1], b[2]),
        (0xE0, 3) => format!(
            "pitch-bend ch{ch} {}",
            ((b[2] as i32) << 7 | b[1] as i32) - 8192
        ),
        _ => format!("midi {:02x?}", b),
    }
}

impl Monitor {
    fn counts(&self) -> Counts {
        Counts {
            note_on: self.base.note_on + self.live.note_on.load(Ordering::Relaxed),
            note_off: self.base.note_off + self.live.note_off.load(Ordering::Relaxed),
            control_change: self.base.control_change
                + self.live.control_change.load(Ordering::Relaxed),
            other: self.base.other + self.live.other.load(Ordering::Relaxed),
        }
    }

    /// Folds the live counters into `base` and starts new ones.
    fn settle(&mut self) {
        self.base = self.counts();
        self.live = Arc::new(Live::default());
    }

    fn drain_log(&mut self) {
        let Some(log) = self.log.as_mut() else { return };
        while let Ok(e) = log.pop() {
            let text = describe(&e);
            if self.config.log {
                tracing::info!("{}: {}", self.config.label, text);
            }
            self.last_event = Some(text);
        }
    }
}

impl Imp for Monitor {
    type Config = Config;
    type Frozen = Frozen;
    type Rt = MonitorRt;

    fn create(
        ctx: &CreateContext,
        config: Config,
        frozen: Option<Frozen>,
    ) -> Result<Self, ImpError> {
        let (base, last_event, counted_at_freeze) = frozen
            .map(|f| (f.counts, f.last_event, f.counted_at_freeze))
            .unwrap_or_default();
        Ok(Monitor {
            name: ctx.name().to_string(),
            config,
            base,
            live: Arc::new(Live::default()),
            log: None,
            last_event,
            counted_at_freeze,
        })
    }

    fn thaw(&mut self) -> Result<Option<MonitorRt>, ImpError> {
        self.settle();
        let (producer, consumer) = rtrb::RingBuffer::new(LOG_RING);
        self.log = Some(consumer);
        tracing::debug!("monitor {} thawed", self.name);
        Ok(Some(MonitorRt {
            live: self.live.clone(),
            log: producer,
            counted_at_freeze: std::mem::take(&mut self.counted_at_freeze),
        }))
    }

    fn freeze(&mut self) -> Frozen {
        self.drain_log();
        let counted_at_freeze = self.live.snapshot();
        self.settle();
        self.log = None;
        // Thawing this same instance again (a rolled-back respawn) hands
        // over the same way as a new build.
        self.counted_at_freeze = counted_at_freeze;
        Frozen {
            counts: self.base.clone(),
            last_event: self.last_event.clone(),
            counted_at_freeze,
        }
    }

    fn poll(&mut self) -> Result<Value, ImpError> {
        self.drain_log();
        let counts = self.counts();
        Ok(json!({
            "label": self.config.label,
            "total": counts.total(),
            "counts": counts,
            "last_event": self.last_event,
            "dropped_log_lines": self.live.dropped_log.load(Ordering::Relaxed),
        }))
    }

    fn control(&mut self, message: Value) -> Result<Value, ImpError> {
        match message.get("cmd").and_then(Value::as_str) {
            Some("reset") => {
                self.base = Counts::default();
                self.settle();
                self.base = Counts::default();
                Ok(json!({ "reset": true }))
            }
            _ => Err(ImpError::invalid(
                "unknown command; the monitor takes {\"cmd\": \"reset\"}",
            )),
        }
    }

    fn get_vault_data(&self) -> Option<Value> {
        serde_json::to_value(self.counts()).ok()
    }

    fn set_vault_data(&mut self, data: Value) -> Result<(), ImpError> {
        // A respawn brings the counts in the frozen state too; the vault only
        // fills in on a fresh start, so take the larger set.
        let saved: Counts = serde_json::from_value(data)?;
        if saved.total() > self.counts().total() {
            self.base = saved;
            self.live = Arc::new(Live::default());
        }
        Ok(())
    }
}

impl RtPart for MonitorRt {
    /// Hands over what this part counted, so that a successor can add what
    /// came after the freeze.
    fn save_transient(&self, buf: &mut [u8; TRANSIENT_BYTES]) {
        for (i, v) in self.live.snapshot().iter().enumerate() {
            buf[i * 8..i * 8 + 8].copy_from_slice(&v.to_le_bytes());
        }
    }

    fn restore_transient(&mut self, buf: &[u8; TRANSIENT_BYTES]) -> bool {
        for (i, counter) in self.live.counters().into_iter().enumerate() {
            let mut v = [0u8; 8];
            v.copy_from_slice(&buf[i * 8..i * 8 + 8]);
            let after_freeze = u64::from_le_bytes(v).saturating_sub(self.counted_at_freeze[i]);
            counter.fetch_add(after_freeze, Ordering::Relaxed);
        }
        true
    }

    fn process(&mut self, _ctx: &BlockContext, input: &[RtEvent], out: &mut EventWriter<'_>) {
        for e in input {
            let counter = if e.is_note_on() {
                &self.live.note_on
            } else if e.is_note_off() {
                &self.live.note_off
            } else if e.len == 3 && e.bytes[0] & 0xF0 == 0xB0 {
                &self.live.control_change
            } else {
                &self.live.other
            };
            counter.fetch_add(1, Ordering::Relaxed);
            if self.log.push(*e).is_err() {
                self.live.dropped_log.fetch_add(1, Ordering::Relaxed);
            }
            let mut through = *e;
            through.port = 0;
            out.push(through);
        }
    }
}

imp::export!(Monitor);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn describes_notes_with_names() {
        assert_eq!(
            describe(&RtEvent::midi(0, &[0x90, 60, 100])),
            "note-on ch1 C4 vel 100"
        );
        assert_eq!(
            describe(&RtEvent::midi(0, &[0x91, 61, 0])),
            "note-off ch2 C#4"
        );
        assert_eq!(
            describe(&RtEvent::midi(0, &[0xB0, 7, 99])),
            "cc ch1 #7 = 99"
        );
        assert_eq!(
            describe(&RtEvent::midi(0, &[0xE0, 0, 64])),
            "pitch-bend ch1 0"
        );
    }
}
