//! A FluidSynth synthesizer (the fluidlite C library), owned.
//!
//! The raw `fluidlite-sys` bindings are used rather than the `fluidlite`
//! crate's wrappers: those turn every failed call (a note on a channel
//! without a preset, a program change to a missing preset) into an error
//! that carries a freshly allocated `String`, and the engine thread must
//! never allocate. Here every call on the engine thread returns a plain
//! status; the control thread builds and loads a synth, the engine thread
//! plays it, and the control thread drops it.

use fluidlite_sys as ffi;
use std::ffi::CString;
use std::os::raw::c_int;
use std::path::Path;

/// Frames FluidSynth renders at a time: a note starts at such a boundary.
pub const FLUID_BLOCK: usize = 64;

/// Why a synth could not be made.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SynthError(pub String);

impl std::fmt::Display for SynthError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// Reverb parameters (FluidSynth's ranges).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Reverb {
    /// 0.0 ..= 1.2
    pub room_size: f64,
    /// 0.0 ..= 1.0
    pub damping: f64,
    /// 0.0 ..= 100.0
    pub width: f64,
    /// 0.0 ..= 1.0
    pub level: f64,
}

/// Chorus parameters (FluidSynth's ranges).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Chorus {
    /// Voices, 0 ..= 99.
    pub voices: i32,
    /// 0.0 ..= 10.0
    pub level: f64,
    /// Hz, 0.29 ..= 5.0
    pub speed: f64,
    /// ms, 0.0 ..= 21.0
    pub depth: f64,
}

/// How to build a synth.
#[derive(Clone, Debug, PartialEq)]
pub struct Setup {
    /// Sample rate in Hz.
    pub sample_rate: f64,
    /// Most voices sounding at once.
    pub voices: u16,
    /// Master gain (FluidSynth's default is 0.2).
    pub gain: f32,
    /// `None`: reverb off.
    pub reverb: Option<Reverb>,
    /// `None`: chorus off.
    pub chorus: Option<Chorus>,
}

/// A synth with its SoundFont loaded. Built and dropped off the engine
/// thread; played on it.
pub struct Synth {
    raw: *mut ffi::fluid_synth_t,
    settings: *mut ffi::fluid_settings_t,
    font: u32,
}

// SAFETY: a synth is used by one thread at a time (built on the control
// thread, moved to the engine thread, moved back to be dropped); fluidlite
// keeps no thread-affine state.
unsafe impl Send for Synth {}

extern "C" fn quiet(
    _level: c_int,
    _message: *mut std::os::raw::c_char,
    _data: *mut std::ffi::c_void,
) {
}

/// FluidSynth prints warnings itself (to stderr, from whatever thread calls
/// it, the engine's included); impresario reports through return codes.
fn silence_fluid_log() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        for level in 0..=4 {
            // SAFETY: a valid C callback that ignores its arguments.
            unsafe { ffi::fluid_set_log_function(level, Some(quiet), std::ptr::null_mut()) };
        }
    });
}

fn set_num(settings: *mut ffi::fluid_settings_t, name: &str, value: f64) {
    let name = CString::new(name).expect("no NUL in setting names");
    // SAFETY: valid settings and a NUL-terminated name.
    unsafe { ffi::fluid_settings_setnum(settings, name.as_ptr(), value) };
}

fn set_int(settings: *mut ffi::fluid_settings_t, name: &str, value: i32) {
    let name = CString::new(name).expect("no NUL in setting names");
    // SAFETY: valid settings and a NUL-terminated name.
    unsafe { ffi::fluid_settings_setint(settings, name.as_ptr(), value) };
}

fn set_str(settings: *mut ffi::fluid_settings_t, name: &str, value: &str) {
    let name = CString::new(name).expect("no NUL in setting names");
    let value = CString::new(value).expect("no NUL in setting values");
    // SAFETY: valid settings and NUL-terminated strings.
    unsafe { ffi::fluid_settings_setstr(settings, name.as_ptr(), value.as_ptr()) };
}

impl Synth {
    /// Builds a synth and loads `soundfont` into it. Control thread; takes
    /// as long as reading the SoundFont.
    pub fn load(soundfont: &Path, setup: &Setup) -> Result<Synth, SynthError> {
        silence_fluid_log();
        let path = CString::new(soundfont.as_os_str().as_encoded_bytes()).map_err(|_| {
            SynthError(format!(
                "{} has a NUL byte in its name",
                soundfont.display()
            ))
        })?;
        // SAFETY: plain constructor; checked for null below.
        let settings = unsafe { ffi::new_fluid_settings() };
        if settings.is_null() {
            return Err(SynthError(
                "FluidSynth could not allocate its settings".into(),
            ));
        }
        set_num(settings, "synth.sample-rate", setup.sample_rate);
        set_int(settings, "synth.polyphony", setup.voices.max(1) as i32);
        set_num(settings, "synth.gain", setup.gain as f64);
        set_str(
            settings,
            "synth.reverb.active",
            if setup.reverb.is_some() { "yes" } else { "no" },
        );
        set_str(
            settings,
            "synth.chorus.active",
            if setup.chorus.is_some() { "yes" } else { "no" },
        );
        // SAFETY: valid settings; the synth takes them (deleted after it).
        let raw = unsafe { ffi::new_fluid_synth(settings) };
        if raw.is_null() {
            // SAFETY: created above, not yet owned by anything.
            unsafe { ffi::delete_fluid_settings(settings) };
            return Err(SynthError("FluidSynth could not create a synth".into()));
        }
        let mut synth = Synth {
            raw,
            settings,
            font: 0,
        };
        // SAFETY: valid synth and path.
        let id = unsafe { ffi::fluid_synth_sfload(raw, path.as_ptr(), 1) };
        if id < 0 {
            return Err(SynthError(format!(
                "{} is not a SoundFont FluidSynth can read (SF2, or a missing or unreadable file)",
                soundfont.display()
            )));
        }
        synth.font = id as u32;
        // SAFETY: valid synth.
        unsafe {
            ffi::fluid_synth_set_gain(raw, setup.gain);
            ffi::fluid_synth_set_polyphony(raw, setup.voices.max(1) as c_int);
            ffi::fluid_synth_set_reverb_on(raw, setup.reverb.is_some() as c_int);
            if let Some(r) = setup.reverb {
                ffi::fluid_synth_set_reverb(raw, r.room_size, r.damping, r.width, r.level);
            }
            ffi::fluid_synth_set_chorus_on(raw, setup.chorus.is_some() as c_int);
            if let Some(c) = setup.chorus {
                // Mode 0: sine modulation.
                ffi::fluid_synth_set_chorus(raw, c.voices, c.level, c.speed, c.depth, 0);
            }
        }
        Ok(synth)
    }

    /// Selects bank and program on `channel` (0-based). False when the
    /// SoundFont has no such preset. Control thread (at thaw).
    pub fn select(&mut self, channel: u8, bank: u16, program: u8) -> bool {
        // SAFETY: valid synth.
        unsafe {
            ffi::fluid_synth_program_select(
                self.raw,
                channel as c_int,
                self.font,
                bank as _,
                program as _,
            ) == ffi::FLUID_OK
        }
    }

    /// The (bank, program) selected on `channel`. Any thread; no allocation.
    pub fn program(&self, channel: u8) -> Option<(u16, u8)> {
        let (mut font, mut bank, mut program) = (0, 0, 0);
        // SAFETY: valid synth and out pointers.
        let ok = unsafe {
            ffi::fluid_synth_get_program(
                self.raw,
                channel as c_int,
                &mut font,
                &mut bank,
                &mut program,
            )
        } == ffi::FLUID_OK;
        ok.then_some((bank as u16, program as u8))
    }

    /// Selects bank and program on `channel` on the engine thread (the
    /// same as [`Synth::select`]; no allocation).
    pub fn set_program(&mut self, channel: u8, bank: u16, program: u8) {
        self.select(channel, bank, program);
    }

    /// The value of controller `cc` on `channel` (0 when unknown). Engine
    /// thread; no allocation.
    pub fn cc(&self, channel: u8, cc: u8) -> u8 {
        let mut v: c_int = 0;
        // SAFETY: valid synth and out pointer.
        unsafe { ffi::fluid_synth_get_cc(self.raw, channel as c_int, cc as c_int, &mut v) };
        v.clamp(0, 127) as u8
    }

    /// The pitch bend of `channel`, 0 ..= 16383 (8192 = centre). Engine
    /// thread; no allocation.
    pub fn pitch_bend(&self, channel: u8) -> u16 {
        let mut v: c_int = 8192;
        // SAFETY: valid synth and out pointer.
        unsafe { ffi::fluid_synth_get_pitch_bend(self.raw, channel as c_int, &mut v) };
        v.clamp(0, 16383) as u16
    }

    /// Plays one MIDI channel message (running status resolved, 1 to 3
    /// bytes). Anything else is ignored. Engine thread; no allocation.
    pub fn midi(&mut self, bytes: &[u8]) {
        let Some(&status) = bytes.first() else {
            return;
        };
        let ch = (status & 0x0F) as c_int;
        let d1 = bytes.get(1).copied().unwrap_or(0) as c_int;
        let d2 = bytes.get(2).copied().unwrap_or(0) as c_int;
        // SAFETY: valid synth; FluidSynth checks ranges itself.
        unsafe {
            match status & 0xF0 {
                0x90 if d2 > 0 => {
                    ffi::fluid_synth_noteon(self.raw, ch, d1, d2);
                }
                0x80 | 0x90 => {
                    ffi::fluid_synth_noteoff(self.raw, ch, d1);
                }
                0xA0 => {
                    ffi::fluid_synth_key_pressure(self.raw, ch, d1, d2);
                }
                0xB0 => {
                    ffi::fluid_synth_cc(self.raw, ch, d1, d2);
                }
                0xC0 => {
                    ffi::fluid_synth_program_change(self.raw, ch, d1);
                }
                0xD0 => {
                    ffi::fluid_synth_channel_pressure(self.raw, ch, d1);
                }
                0xE0 => {
                    ffi::fluid_synth_pitch_bend(self.raw, ch, d2 << 7 | d1);
                }
                _ => {}
            }
        }
    }

    /// Releases every note on every channel (sustain lifted, all notes
    /// off): voices go into their release, nothing is cut. Engine thread;
    /// no allocation.
    pub fn release_all(&mut self) {
        for ch in 0..16 {
            // SAFETY: valid synth.
            unsafe {
                ffi::fluid_synth_cc(self.raw, ch, 64, 0);
                ffi::fluid_synth_cc(self.raw, ch, 66, 0);
                ffi::fluid_synth_cc(self.raw, ch, 123, 0);
            }
        }
    }

    /// Renders `left.len()` frames into `left` and `right` (overwriting).
    /// Engine thread; no allocation.
    pub fn render(&mut self, left: &mut [f32], right: &mut [f32]) {
        let n = left.len().min(right.len());
        if n == 0 {
            return;
        }
        // SAFETY: both buffers hold at least `n` floats; stride 1.
        unsafe {
            ffi::fluid_synth_write_float(
                self.raw,
                n as c_int,
                left.as_mut_ptr().cast(),
                0,
                1,
                right.as_mut_ptr().cast(),
                0,
                1,
            );
        }
    }
}

impl Drop for Synth {
    fn drop(&mut self) {
        // SAFETY: created in `load`, dropped once; the settings outlive the synth.
        unsafe {
            ffi::delete_fluid_synth(self.raw);
            ffi::delete_fluid_settings(self.settings);
        }
    }
}
