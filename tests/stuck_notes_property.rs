//! A property over random performances: notes, pedals, bard configuration
//! changes, hot swaps of the bard to another build, panics of a layered imp,
//! and removals, through the real engine and real imp libraries on a manual
//! clock. Whatever happens, every (slot, output, channel, note) that got a
//! note-on gets exactly one note-off, no note-off goes out for a note that
//! was not sounding, and the engine thread never allocates outside a panic.

mod common;
use common::*;
use engine::alloc_guard::{self, GuardedAllocator};
use engine::{EngineConfig, EngineCore, EngineHandle, Routing};
use imp::RtEvent;
use proptest::prelude::*;
use realm::{ImpHandle, Library};
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::sync::{Arc, OnceLock};

#[global_allocator]
static ALLOCATOR: GuardedAllocator = GuardedAllocator;

const BARD: usize = 1;
const LAYERS: usize = 2;

/// Two separately loaded builds of the bard (a swap changes code) and chaos.
fn libraries() -> &'static (Vec<Arc<Library>>, Arc<Library>) {
    static LIBS: OnceLock<(Vec<Arc<Library>>, Arc<Library>)> = OnceLock::new();
    LIBS.get_or_init(|| {
        let load = |name: &str| {
            let lib = Library::load(&built_library(name)).unwrap();
            lib.on_after_load(None).unwrap();
            lib
        };
        (vec![load("bard"), load("bard")], load("chaos"))
    })
}

/// Bard configurations the performance switches between: splits, layers on
/// one channel to two outputs, another channel, chords, an arpeggiator,
/// transpose, drums.
fn bard_config(variant: u8) -> Value {
    match variant % 5 {
        0 => json!({ "zones": [
            { "high": 59, "output": 1, "out_channel": 3 },
            { "low": 60, "output": 2, "out_channel": 5 }] }),
        1 => json!({ "zones": [{ "output": 1 }, { "output": 2 }],
                     "transpose": { "octaves": 0, "semitones": 2 } }),
        2 => json!({ "zones": [{ "output": 3, "chord": { "shape": "maj7" } }] }),
        3 => json!({ "zones": [{ "output": 1, "arp": { "mode": "up", "rate": "1/32" } },
                               { "output": 1, "controllers": false }] }),
        _ => json!({ "zones": [{ "output": 2, "drums": {} }] }),
    }
}

#[derive(Clone, Debug)]
enum Op {
    NoteOn {
        channel: u8,
        note: u8,
    },
    NoteOff {
        channel: u8,
        note: u8,
    },
    Pedal {
        channel: u8,
        down: bool,
    },
    Configure(u8),
    /// The bard is hot-swapped to the other build (handoff).
    Respawn,
    /// The layered imp gets the note it panics on.
    PanicLayers,
    /// The bard is removed, and put back fresh later.
    RemoveBard,
    Cycles(u8),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        6 => (0u8..2, 50u8..70).prop_map(|(channel, note)| Op::NoteOn { channel, note }),
        6 => (0u8..2, 50u8..70).prop_map(|(channel, note)| Op::NoteOff { channel, note }),
        2 => (0u8..2, any::<bool>()).prop_map(|(channel, down)| Op::Pedal { channel, down }),
        2 => (0u8..5).prop_map(Op::Configure),
        1 => Just(Op::Respawn),
        1 => Just(Op::PanicLayers),
        1 => Just(Op::RemoveBard),
        4 => (1u8..6).prop_map(Op::Cycles),
    ]
}

/// What every destination saw: sounding count per (slot, output, channel,
/// note), with an orphan note-off reported at once.
#[derive(Default)]
struct Observer {
    sounding: BTreeMap<(usize, u8, u8, u8), i64>,
    note_ons: u64,
    pedals_down: BTreeMap<(usize, u8, u8, u8), bool>,
}

impl Observer {
    fn see(&mut self, core: &EngineCore) -> Result<(), String> {
        for t in core.emitted() {
            let b = t.event.midi_bytes();
            if b.len() != 3 {
                continue;
            }
            let key = (t.slot, t.event.port, b[0] & 0x0F, b[1]);
            if t.event.is_note_on() {
                *self.sounding.entry(key).or_default() += 1;
                self.note_ons += 1;
            } else if t.event.is_note_off() {
                let s = self.sounding.entry(key).or_default();
                if *s == 0 {
                    return Err(format!("orphan note-off {t:?}"));
                }
                *s -= 1;
            } else if b[0] & 0xF0 == 0xB0 && b[1] == 64 {
                self.pedals_down.insert(key, b[2] >= 64);
            }
        }
        Ok(())
    }
}

struct Rig {
    handle: EngineHandle,
    core: EngineCore,
    bard: Option<ImpHandle>,
    build: usize,
    layers: Option<ImpHandle>,
    config: u8,
    observer: Observer,
}

impl Rig {
    fn new() -> Rig {
        let (handle, core) = engine::engine(EngineConfig::default());
        let mut rig = Rig {
            handle,
            core,
            bard: None,
            build: 0,
            layers: None,
            config: 0,
            observer: Observer::default(),
        };
        rig.handle
            .set_routing(Routing::new(&[BARD, LAYERS], &[]).unwrap())
            .unwrap();
        rig.start_bard();
        rig.start_layers();
        rig
    }

    /// A fresh bard instance in its slot (no state handed over).
    fn start_bard(&mut self) {
        let lib = &libraries().0[self.build];
        let mut imp = lib.create("bard", &bard_config(self.config), None).unwrap();
        imp.set_slot(BARD);
        let rt = imp.thaw().unwrap().expect("an RT part");
        self.handle.install(BARD, rt, false).unwrap();
        self.bard = Some(imp);
    }

    fn start_layers(&mut self) {
        let lib = &libraries().1;
        let config = json!({ "outputs": [1, 2], "panic_on_note": 127 });
        let mut imp = lib.create("layers", &config, None).unwrap();
        imp.set_slot(LAYERS);
        let rt = imp.thaw().unwrap().expect("an RT part");
        self.handle.install(LAYERS, rt, false).unwrap();
        self.layers = Some(imp);
    }

    fn cycle(&mut self) -> Result<(), String> {
        self.core.cycle(64);
        self.handle.collect_garbage();
        self.observer.see(&self.core)
    }

    fn play(&mut self, bytes: &[u8]) {
        let _ = self.handle.inject(BARD, RtEvent::midi(7, bytes));
        let _ = self.handle.inject(LAYERS, RtEvent::midi(9, bytes));
    }

    fn apply(&mut self, op: &Op) -> Result<(), String> {
        match *op {
            Op::NoteOn { channel, note } => self.play(&[0x90 | channel, note, 90]),
            Op::NoteOff { channel, note } => self.play(&[0x80 | channel, note, 0]),
            Op::Pedal { channel, down } => {
                self.play(&[0xB0 | channel, 64, if down { 127 } else { 0 }])
            }
            Op::Configure(variant) => {
                self.config = variant;
                if let Some(bard) = self.bard.as_mut() {
                    let message = json!({ "cmd": "replace", "config": bard_config(variant) });
                    bard.control(&message).map_err(|e| e.to_string())?;
                }
            }
            Op::Respawn => {
                if let Some(mut old) = self.bard.take() {
                    let frozen = old.freeze().map_err(|e| e.to_string())?;
                    self.build = 1 - self.build;
                    let lib = &libraries().0[self.build];
                    let mut imp = lib
                        .create("bard", &bard_config(self.config), Some(&frozen))
                        .unwrap();
                    imp.set_slot(BARD);
                    let rt = imp.thaw().unwrap().expect("an RT part");
                    self.handle.install(BARD, rt, true).unwrap();
                    self.cycle()?;
                    drop(old);
                    self.bard = Some(imp);
                }
            }
            Op::PanicLayers => {
                let _ = self
                    .handle
                    .inject(LAYERS, RtEvent::midi(3, &[0x90, 127, 100]));
                self.cycle()?;
                // The failed part is replaced by a fresh instance.
                self.handle.collect_garbage();
                self.layers = None;
                self.start_layers();
            }
            Op::RemoveBard => {
                if self.bard.is_some() {
                    self.handle.remove(BARD).unwrap();
                    self.cycle()?;
                    self.bard = None;
                } else {
                    self.start_bard();
                }
            }
            Op::Cycles(n) => {
                for _ in 0..n {
                    self.cycle()?;
                }
            }
        }
        self.cycle()
    }

    /// Shutdown: the engine ends what is left.
    fn finish(mut self) -> Result<Observer, String> {
        for _ in 0..4 {
            self.cycle()?;
        }
        self.core.all_notes_off();
        self.observer.see(&self.core)?;
        self.handle.collect_garbage();
        Ok(self.observer)
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn every_note_on_gets_exactly_one_note_off(ops in proptest::collection::vec(op(), 1..80)) {
        let before = alloc_guard::thread_violations();
        let mut rig = Rig::new();
        for op in &ops {
            rig.apply(op).map_err(TestCaseError::fail)?;
        }
        let observer = rig.finish().map_err(TestCaseError::fail)?;
        for (key, n) in &observer.sounding {
            prop_assert_eq!(*n, 0, "(slot, output, channel, note) {:?} left sounding", key);
        }
        for (key, down) in &observer.pedals_down {
            prop_assert!(!down, "pedal left down at {:?}", key);
        }
        prop_assert_eq!(
            alloc_guard::thread_violations(),
            before,
            "allocations on the engine thread outside a panic"
        );
    }
}
