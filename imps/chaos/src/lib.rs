//! # chaos: an imp that misbehaves on request
//!
//! The realm's failure paths are only trustworthy if they are exercised
//! through a real library. `chaos` passes events through like a cable and,
//! depending on its config, panics in a chosen entry point, pretends its
//! device is absent, allocates on the engine thread, changes its vault
//! data on every poll, or hangs in `freeze`. Nothing in a musician's realm needs it.
//!
//! ```toml
//! [imps.trouble]
//! library = "chaos"
//! config = { panic_in = "thaw" }
//! ```
//!
//! Built with the environment variable `CHAOS_WRONG_ABI` set, the library
//! declares a wrong ABI version, for the test that the host refuses it.
//! Built with `CHAOS_BUILD_PANIC_IN=<entry point>`, that build panics there
//! whatever its config says: a bad new build, for the respawn tests. Built
//! with `CHAOS_BUILD_THAW_ERROR` set, its `thaw` returns an error (no panic).
//!
//! Like a bard with layered zones, it can send each event to several
//! numbered `outputs`, and panic on the engine thread when a chosen note
//! arrives (`panic_on_note`), for the stuck-note tests. The control message
//! `{"transpose": n}` shifts the notes it passes (the RT part sees it at
//! once), so a test can tell that a message reached the running RT part.

use imp::{
    BlockContext, CreateContext, EventWriter, Imp, ImpError, RtEvent, RtPart, TRANSIENT_BYTES,
};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use std::path::PathBuf;
use std::sync::atomic::{AtomicI8, Ordering};
use std::sync::Arc;

/// What to break.
#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Entry point to panic in: `create`, `thaw`, `freeze`, `process`,
    /// `restore_transient`, `get_vault_data`, `set_vault_data`, `poll`,
    /// `control`, `on_after_load`.
    pub panic_in: Option<String>,
    /// The "device" is present only while this file exists.
    pub device_file: Option<PathBuf>,
    /// Allocate inside `process` (the engine's guard must catch it).
    pub alloc_in_process: bool,
    /// Change the vault data on every poll (vault write stress).
    pub churn: bool,
    /// Numbered outputs each event goes to (default: output 0).
    pub outputs: Vec<u8>,
    /// Panic on the engine thread when a note-on of this note arrives.
    pub panic_on_note: Option<u8>,
    /// Sleep this long in `freeze` (a hung imp holding up a stop).
    pub hang_in_freeze_ms: u64,
}

/// The control part.
pub struct Chaos {
    config: Config,
    generation: u64,
    transpose: Arc<AtomicI8>,
}

/// The RT part.
pub struct ChaosRt {
    panic_in_process: bool,
    panic_in_restore: bool,
    alloc_in_process: bool,
    held: u128,
    outputs: [u8; 8],
    output_count: usize,
    panic_on_note: Option<u8>,
    transpose: Arc<AtomicI8>,
}

#[derive(Default, Serialize, Deserialize)]
#[serde(default)]
struct Data {
    generation: u64,
}

/// An entry point this build panics in, whatever the config says.
const BUILD_PANIC_IN: Option<&str> = option_env!("CHAOS_BUILD_PANIC_IN");

impl Chaos {
    fn maybe_panic(&self, point: &str) {
        if self.config.panic_in.as_deref() == Some(point) || BUILD_PANIC_IN == Some(point) {
            panic!("chaos: deliberate panic in {point}");
        }
    }
}

impl Imp for Chaos {
    type Config = Config;
    type Frozen = u64;
    type Rt = ChaosRt;

    fn create(_: &CreateContext, config: Config, frozen: Option<u64>) -> Result<Self, ImpError> {
        let chaos = Chaos {
            config,
            generation: frozen.unwrap_or(0),
            transpose: Arc::new(AtomicI8::new(0)),
        };
        chaos.maybe_panic("create");
        Ok(chaos)
    }

    fn thaw(&mut self) -> Result<Option<ChaosRt>, ImpError> {
        self.maybe_panic("thaw");
        if option_env!("CHAOS_BUILD_THAW_ERROR").is_some() {
            return Err(ImpError::invalid("chaos: deliberate error in thaw"));
        }
        if let Some(path) = &self.config.device_file {
            if !path.exists() {
                return Err(ImpError::not_ready(format!(
                    "device {} is absent",
                    path.display()
                )));
            }
        }
        let mut outputs = [0u8; 8];
        let wanted: &[u8] = if self.config.outputs.is_empty() {
            &[0]
        } else {
            &self.config.outputs
        };
        let output_count = wanted.len().min(outputs.len());
        outputs[..output_count].copy_from_slice(&wanted[..output_count]);
        Ok(Some(ChaosRt {
            panic_in_process: self.config.panic_in.as_deref() == Some("process"),
            panic_in_restore: self.config.panic_in.as_deref() == Some("restore_transient"),
            alloc_in_process: self.config.alloc_in_process,
            held: 0,
            outputs,
            output_count,
            panic_on_note: self.config.panic_on_note,
            transpose: self.transpose.clone(),
        }))
    }

    fn freeze(&mut self) -> u64 {
        self.maybe_panic("freeze");
        if self.config.hang_in_freeze_ms > 0 {
            std::thread::sleep(std::time::Duration::from_millis(
                self.config.hang_in_freeze_ms,
            ));
        }
        self.generation
    }

    fn poll(&mut self) -> Result<Value, ImpError> {
        self.maybe_panic("poll");
        if let Some(path) = &self.config.device_file {
            if !path.exists() {
                return Err(ImpError::not_ready(format!(
                    "device {} went away",
                    path.display()
                )));
            }
        }
        if self.config.churn {
            self.generation += 1;
        }
        Ok(json!({ "generation": self.generation }))
    }

    fn control(&mut self, message: Value) -> Result<Value, ImpError> {
        self.maybe_panic("control");
        if let Some(t) = message.get("transpose").and_then(Value::as_i64) {
            self.transpose
                .store(t.clamp(-24, 24) as i8, Ordering::Relaxed);
        }
        Ok(json!({ "echo": message }))
    }

    fn get_vault_data(&self) -> Option<Value> {
        self.maybe_panic("get_vault_data");
        serde_json::to_value(Data {
            generation: self.generation,
        })
        .ok()
    }

    fn set_vault_data(&mut self, data: Value) -> Result<(), ImpError> {
        self.maybe_panic("set_vault_data");
        let data: Data = serde_json::from_value(data)?;
        self.generation = self.generation.max(data.generation);
        Ok(())
    }

    fn on_after_load(token: Option<Value>) -> Result<(), ImpError> {
        if std::env::var_os("CHAOS_PANIC_ON_AFTER_LOAD").is_some() {
            panic!("chaos: deliberate panic in on_after_load (token {token:?})");
        }
        Ok(())
    }
}

impl RtPart for ChaosRt {
    fn process(&mut self, _: &BlockContext, input: &[RtEvent], out: &mut EventWriter<'_>) {
        if self.panic_in_process && !input.is_empty() {
            panic!("chaos: deliberate panic in process");
        }
        if self.alloc_in_process && !input.is_empty() {
            // Deliberately wrong: the engine's allocation guard must see this.
            let v: Vec<u8> = Vec::with_capacity(64);
            std::hint::black_box(v);
        }
        let transpose = self.transpose.load(Ordering::Relaxed);
        for e in input {
            let mut e = *e;
            if e.len == 3 && e.bytes[1] < 128 {
                if e.is_note_on() && self.panic_on_note == Some(e.bytes[1]) {
                    panic!("chaos: deliberate panic on note {}", e.bytes[1]);
                }
                if e.bytes[0] & 0xE0 == 0x80 {
                    e.bytes[1] = (e.bytes[1] as i16 + transpose as i16).clamp(0, 127) as u8;
                }
                if e.is_note_on() {
                    self.held |= 1 << e.bytes[1];
                } else if e.is_note_off() {
                    self.held &= !(1 << e.bytes[1]);
                }
            }
            for &output in &self.outputs[..self.output_count] {
                e.port = output;
                out.push(e);
            }
        }
    }

    fn save_transient(&self, buf: &mut [u8; TRANSIENT_BYTES]) {
        buf[..16].copy_from_slice(&self.held.to_le_bytes());
    }

    fn restore_transient(&mut self, buf: &[u8; TRANSIENT_BYTES]) -> bool {
        if self.panic_in_restore {
            panic!("chaos: deliberate panic in restore_transient");
        }
        let mut held = [0u8; 16];
        held.copy_from_slice(&buf[..16]);
        self.held = u128::from_le_bytes(held);
        true
    }

    fn all_notes_off(&mut self, out: &mut EventWriter<'_>) {
        for note in 0..128u8 {
            if self.held & (1 << note) != 0 {
                for &output in &self.outputs[..self.output_count] {
                    let mut off = RtEvent::midi(0, &[0x80, note, 0]);
                    off.port = output;
                    out.push(off);
                }
            }
        }
        self.held = 0;
    }
}

imp::export!(
    Chaos,
    abi_version = if option_env!("CHAOS_WRONG_ABI").is_some() {
        imp::ABI_VERSION + 1000
    } else {
        imp::ABI_VERSION
    }
);
