//! The FluidSynth imp in the real engine on a manual clock, with a
//! SoundFont the test writes itself: pitch, level, presets by program
//! change and bank select, note onsets at their frame, a hot swap while a
//! note sounds, and no allocation on the engine thread throughout.

mod common;
use common::soundfont;
use common::*;
use engine::alloc_guard::{self, GuardedAllocator};
use engine::{EngineConfig, EngineCore, EngineHandle, Routing};
use imp::RtEvent;
use realm::{ImpHandle, Library};
use serde_json::json;
use std::path::Path;
use std::sync::Arc;

#[global_allocator]
static ALLOCATOR: GuardedAllocator = GuardedAllocator;

const RATE: f64 = 48_000.0;
const BLOCK: u32 = 64;
const SLOT: usize = 5;

struct Rig {
    handle: EngineHandle,
    core: EngineCore,
    imp: Option<ImpHandle>,
    left: Vec<f32>,
    right: Vec<f32>,
    _dir: tempfile::TempDir,
}

fn synth_library() -> Arc<Library> {
    let lib = Library::load(&built_library("fluidsynth")).unwrap();
    lib.on_after_load(None).unwrap();
    lib
}

fn config(font: &Path) -> serde_json::Value {
    json!({ "soundfont": font, "gain": 1.0, "reverb": { "on": false }, "chorus": { "on": false } })
}

impl Rig {
    fn new() -> Rig {
        realm::set_sample_rate(RATE);
        let dir = tempfile::tempdir().unwrap();
        let font = dir.path().join("test.sf2");
        soundfont::write(&font);
        let (mut handle, core) = engine::engine(EngineConfig {
            sample_rate: RATE as u32,
            block_size: BLOCK,
            tempo_bpm: 120.0,
            ..EngineConfig::default()
        });
        let lib = synth_library();
        let mut imp = lib.create("synth", &config(&font), None).unwrap();
        imp.set_slot(SLOT);
        let rt = imp.thaw().unwrap().expect("an RT part");
        handle.install(SLOT, rt, false).unwrap();
        handle
            .set_routing(Routing::new(&[SLOT], &[]).unwrap())
            .unwrap();
        Rig {
            handle,
            core,
            imp: Some(imp),
            left: Vec::new(),
            right: Vec::new(),
            _dir: dir,
        }
    }

    fn font(&self) -> std::path::PathBuf {
        self._dir.path().join("test.sf2")
    }

    /// Runs `blocks` cycles, recording the output bus.
    fn run(&mut self, blocks: usize) {
        for _ in 0..blocks {
            self.core.cycle(BLOCK);
            let (l, r) = self.core.audio_out();
            self.left.extend_from_slice(l);
            self.right.extend_from_slice(r);
            self.handle.collect_garbage();
        }
    }

    /// Sends `bytes` at `frame` of the next block.
    fn play(&mut self, frame: u32, bytes: &[u8]) {
        self.handle
            .inject(SLOT, RtEvent::midi(frame, bytes))
            .unwrap();
    }

    fn samples(&self) -> usize {
        self.left.len()
    }
}

fn seconds(s: f64) -> usize {
    (s * RATE / BLOCK as f64) as usize
}

#[test]
fn notes_sound_at_their_pitch_and_presets_switch_by_program_and_bank() {
    let guard = alloc_guard::thread_violations();
    let mut rig = Rig::new();
    rig.run(2);
    let measure = |rig: &mut Rig, messages: &[&[u8]]| {
        for m in messages {
            rig.play(0, m);
        }
        rig.play(0, &[0x90, 69, 127]);
        let start = rig.samples();
        rig.run(seconds(0.4));
        // Skip the attack, measure 0.3 s.
        let steady = &rig.left[start + 4800..];
        let f = soundfont::frequency(steady, RATE);
        let level = soundfont::rms(steady);
        rig.play(0, &[0x80, 69, 0]);
        rig.run(seconds(0.3));
        let after = &rig.left[rig.samples() - 2400..];
        assert!(soundfont::rms(after) < 1e-4, "the note ended");
        (f, level)
    };
    let (f, level) = measure(&mut rig, &[]);
    assert!(
        (f / 440.0 - 1.0).abs() < 0.01,
        "program 0 plays 440 Hz, got {f}"
    );
    assert!(level > 0.02 && level < 1.0, "level {level}");
    let (f, _) = measure(&mut rig, &[&[0xC0, 1]]);
    assert!(
        (f / 880.0 - 1.0).abs() < 0.01,
        "program 1 plays 880 Hz, got {f}"
    );
    let (f, _) = measure(&mut rig, &[&[0xB0, 0, 0], &[0xB0, 32, 1], &[0xC0, 0]]);
    assert!(
        (f / 220.0 - 1.0).abs() < 0.01,
        "bank 1 program 0 plays 220 Hz, got {f}"
    );
    // Both channels of the bus carry it.
    assert_eq!(rig.left.len(), rig.right.len());
    let status = rig.imp.as_mut().unwrap().poll().unwrap();
    assert_eq!(status["programs"]["1"], json!({ "bank": 1, "program": 0 }));
    assert_eq!(
        alloc_guard::thread_violations(),
        guard,
        "no allocation on the engine thread: rendering and program changes"
    );
}

#[test]
fn a_note_starts_at_its_frame_within_half_a_fluidsynth_block() {
    let mut rig = Rig::new();
    rig.run(4);
    for frame in [0u32, 10, 31, 33, 40, 63] {
        let block_start = rig.samples();
        rig.play(frame, &[0x90, 69, 127]);
        rig.run(6);
        let onset = rig.left[block_start..]
            .iter()
            .position(|s| s.abs() > 1e-6)
            .expect("the note sounds") as i64;
        assert!(
            (onset - frame as i64).abs() <= 32,
            "a note at frame {frame} started at {onset}"
        );
        rig.play(0, &[0x80, 69, 0]);
        rig.run(seconds(0.3));
    }
}

#[test]
fn a_synth_reload_under_a_held_note_leaves_no_stuck_voice_and_allocates_nothing() {
    let guard = alloc_guard::thread_violations();
    let mut rig = Rig::new();
    rig.run(2);
    rig.play(0, &[0xC0, 1]);
    rig.play(0, &[0xB0, 7, 100]);
    rig.play(0, &[0x90, 69, 127]);
    rig.run(seconds(0.2));
    // A new build of the synth (a second copy of the library) takes over
    // while the key is still down.
    let old = rig.imp.take().unwrap();
    let lib = synth_library();
    let mut new = lib.create("synth", &config(&rig.font()), None).unwrap();
    new.set_slot(SLOT);
    let rt = new.thaw().unwrap().unwrap();
    rig.handle.install(SLOT, rt, true).unwrap();
    let swap_at = rig.samples();
    rig.run(seconds(0.05));
    // The old voice releases (0.1 s) instead of being cut: just after the
    // swap the output still carries it, without a jump.
    let around: Vec<f32> = rig.left[swap_at - 64..swap_at + 64].to_vec();
    let max_step = around
        .windows(2)
        .map(|w| (w[1] - w[0]).abs())
        .fold(0.0f32, f32::max);
    let sine_step = 2.0 * std::f32::consts::PI * 880.0 / RATE as f32; // per unit amplitude
    assert!(
        max_step < 2.0 * sine_step,
        "no click at the swap: step {max_step}"
    );
    rig.run(seconds(1.2));
    let later = &rig.left[rig.samples() - 4800..];
    assert!(
        soundfont::rms(later) < 1e-5,
        "no voice left sounding after the swap"
    );
    // The key is released: nothing sticks; a new note plays on the new
    // build with the program carried over (880 Hz) and the same volume.
    rig.play(0, &[0x80, 69, 0]);
    rig.run(4);
    rig.play(0, &[0x90, 69, 127]);
    let start = rig.samples();
    rig.run(seconds(0.3));
    let f = soundfont::frequency(&rig.left[start + 4800..], RATE);
    assert!(
        (f / 880.0 - 1.0).abs() < 0.01,
        "the program carried over: {f}"
    );
    drop(old);
    rig.handle.collect_garbage();
    assert_eq!(
        alloc_guard::thread_violations(),
        guard,
        "no allocation on the engine thread through the swap"
    );
}
