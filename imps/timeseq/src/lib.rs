//! # timeseq_player: one TimeSeq script on the engine thread
//!
//! One imp plays one TimeSeq script (the realm makes one per `*.json` in
//! its scripts folder, named `seq.<file stem>`). The engine's sample clock
//! is the script's clock: script sample `n` is engine frame `start + n`,
//! and a voltage change at script sample `n` leaves as MIDI at that frame.
//!
//! Out, per [`mapping::Mapping`] (VCV CV-MIDI style): note voices from a
//! pitch port (1 V/oct, 0 V = C4 = 60) and a gate port (≥ 1 V sounds), with
//! an optional velocity port (0–10 V → 1–127), one voice per channel of the
//! pitch port; a pitch change under a held gate retriggers. CCs from a
//! voltage range (sent when the value changes), pitch bend. In (MIDI-CV
//! style): notes become pitch/gate/velocity input voltages spread over
//! `notes_in.voices` channels, CCs become voltages, MIDI clock pulses an
//! input, MIDI start/continue/stop drive the transport.
//!
//! How the RT part stays sample-exact without stepping every sample: it
//! steps one sample where a mapped output may change and processes the
//! quiet runs the engine promises for those ports
//! ([`timeseq::Engine::quiet_ahead_for`]) with one `process_block` call,
//! cut at every incoming event. No allocation on the engine thread.
//!
//! A new version of the script (or a new build of this library) is a new
//! imp instance that starts from the script's load state (spec §16); the
//! old one hands over the notes it left sounding and the new one ends them
//! at the first frame it plays, before its own first notes. The transport
//! state (running or stopped) carries over.

pub mod mapping;

use imp::{
    BlockContext, CreateContext, EventWriter, Imp, ImpError, RtEvent, RtPart, TRANSIENT_BYTES,
};
use mapping::{Config, Mapping, MAX_GROUPS};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use timeseq::Engine;

/// Commands from the control part (the `seq` transport) to the RT part.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Cmd {
    Start,
    Stop,
    Reset,
}

/// What the RT part reports (read by `poll`).
#[derive(Default)]
struct Shared {
    running: AtomicBool,
    /// Script samples run since the script was loaded.
    samples: AtomicU64,
    /// Engine sample position of script sample 0 (`u64::MAX` before it).
    started_at: AtomicU64,
    notes_on: AtomicU64,
    notes_off: AtomicU64,
    sounding: AtomicU64,
    /// Output events that did not fit the block's buffer.
    dropped: AtomicU64,
    resets: AtomicU64,
}

/// Carried across a swap (new script version, new build).
#[derive(Serialize, Deserialize, Default)]
pub struct Frozen {
    /// Whether the transport was stopped by the user.
    stopped: bool,
}

/// The control part.
pub struct Player {
    name: String,
    config: Config,
    sample_rate: f64,
    /// The loaded script, ready for the next thaw.
    prepared: Option<Engine>,
    stopped: bool,
    shared: Arc<Shared>,
    commands: Option<rtrb::Producer<Cmd>>,
}

#[derive(Clone, Copy, Default)]
struct Voice {
    sounding: bool,
    note: u8,
}

#[derive(Clone, Copy, Default)]
struct InVoice {
    held: bool,
    note: u8,
    /// When it was last used (allocation order).
    stamp: u64,
}

/// A note a predecessor left sounding: (output, status byte, note).
type Handed = (u8, u8, u8);

const MAGIC: &[u8; 4] = b"TSQ1";
const MAX_HANDED: usize = MAX_GROUPS * 16;

/// The RT part.
pub struct PlayerRt {
    engine: Box<Engine>,
    map: Mapping,
    running: bool,
    voices: [[Voice; 16]; MAX_GROUPS],
    cc_last: Vec<i16>,
    bend_last: Vec<i32>,
    in_voices: [InVoice; 16],
    in_stamp: u64,
    clock_high: bool,
    clock_off_at: u64,
    clock_pulse: u64,
    handed: [Handed; MAX_HANDED],
    handed_len: usize,
    samples: u64,
    started: bool,
    /// The output ports whose changes make MIDI (pitch, gate, CC, bend;
    /// a velocity is read when its gate rises): the script is stepped
    /// sample by sample only where one of these can change.
    watch: u8,
    commands: rtrb::Consumer<Cmd>,
    shared: Arc<Shared>,
}

fn load(config: &Config, sample_rate: f64) -> Result<Engine, ImpError> {
    Engine::load(&config.script, sample_rate as f32).map_err(|e| {
        let errors: Vec<String> = e.errors().iter().map(|x| x.to_string()).collect();
        ImpError::invalid(format!(
            "{}: {}",
            config.file.as_deref().unwrap_or("script"),
            errors.join("; ")
        ))
    })
}

impl Imp for Player {
    type Config = Config;
    type Frozen = Frozen;
    type Rt = PlayerRt;

    fn create(
        ctx: &CreateContext,
        config: Config,
        frozen: Option<Frozen>,
    ) -> Result<Self, ImpError> {
        config.mapping.validate().map_err(ImpError::invalid)?;
        let prepared = load(&config, ctx.sample_rate())?;
        let stopped = frozen.map_or(!config.mapping.autostart, |f| f.stopped);
        Ok(Player {
            name: ctx.name().to_string(),
            sample_rate: ctx.sample_rate(),
            prepared: Some(prepared),
            stopped,
            config,
            shared: Arc::new(Shared::default()),
            commands: None,
        })
    }

    fn thaw(&mut self) -> Result<Option<PlayerRt>, ImpError> {
        let mut engine = match self.prepared.take() {
            Some(e) => e,
            None => load(&self.config, self.sample_rate)?,
        };
        if !self.stopped {
            engine.start(0);
        }
        let shared = Arc::new(Shared::default());
        shared.started_at.store(u64::MAX, Ordering::Relaxed);
        shared.running.store(!self.stopped, Ordering::Relaxed);
        self.shared = shared.clone();
        let (tx, rx) = rtrb::RingBuffer::new(64);
        self.commands = Some(tx);
        let map = self.config.mapping.clone();
        let clock_pulse =
            ((map.clock_pulse_ms as f64 / 1000.0 * self.sample_rate).round() as u64).max(1);
        Ok(Some(PlayerRt {
            engine: Box::new(engine),
            running: !self.stopped,
            voices: [[Voice::default(); 16]; MAX_GROUPS],
            cc_last: vec![-1; map.cc.len()],
            bend_last: vec![-1; map.bend.len()],
            in_voices: [InVoice::default(); 16],
            in_stamp: 0,
            clock_high: false,
            clock_off_at: 0,
            clock_pulse,
            handed: [(0, 0, 0); MAX_HANDED],
            handed_len: 0,
            samples: 0,
            started: false,
            watch: map
                .notes
                .iter()
                .flat_map(|n| [n.pitch, n.gate])
                .chain(map.cc.iter().map(|c| c.port))
                .chain(map.bend.iter().map(|b| b.port))
                .fold(0u8, |m, p| m | 1 << (p - 1)),
            commands: rx,
            shared,
            map,
        }))
    }

    fn freeze(&mut self) -> Frozen {
        self.commands = None;
        self.stopped = !self.shared.running.load(Ordering::Relaxed);
        Frozen {
            stopped: self.stopped,
        }
    }

    fn poll(&mut self) -> Result<Value, ImpError> {
        let s = &self.shared;
        let started_at = s.started_at.load(Ordering::Relaxed);
        Ok(json!({
            "file": self.config.file,
            "running": s.running.load(Ordering::Relaxed),
            "script_samples": s.samples.load(Ordering::Relaxed),
            "started_at": (started_at != u64::MAX).then_some(started_at),
            "notes_on": s.notes_on.load(Ordering::Relaxed),
            "notes_off": s.notes_off.load(Ordering::Relaxed),
            "sounding": s.sounding.load(Ordering::Relaxed),
            "resets": s.resets.load(Ordering::Relaxed),
            "dropped_events": s.dropped.load(Ordering::Relaxed),
        }))
    }

    fn control(&mut self, message: Value) -> Result<Value, ImpError> {
        let cmd =
            match message.get("cmd").and_then(Value::as_str) {
                Some("start") => Cmd::Start,
                Some("stop") => Cmd::Stop,
                Some("reset") => Cmd::Reset,
                Some("status") => return self.poll(),
                _ => return Err(ImpError::invalid(
                    "a sequencer takes {\"cmd\": \"start\" | \"stop\" | \"reset\" | \"status\"}",
                )),
            };
        match cmd {
            Cmd::Start => self.stopped = false,
            Cmd::Stop => self.stopped = true,
            Cmd::Reset => {}
        }
        let Some(tx) = self.commands.as_mut() else {
            return Err(ImpError::not_ready(format!(
                "{} is not playing now (frozen)",
                self.name
            )));
        };
        tx.push(cmd)
            .map_err(|_| ImpError::not_ready("too many transport commands at once; try again"))?;
        Ok(json!({ "sequencer": self.name, "cmd": message["cmd"] }))
    }
}

/// The voltage of channel `ch` of a port, VCV's `getPolyVoltage`: a mono
/// port gives its one channel to every voice.
fn poly(engine: &Engine, port: usize, ch: usize) -> f32 {
    if engine.polyphony(port) <= 1 {
        engine.output(port, 0)
    } else {
        engine.output(port, ch)
    }
}

impl PlayerRt {
    fn send(&self, out: &mut EventWriter<'_>, frame: u32, output: u8, bytes: &[u8]) {
        let mut e = RtEvent::midi(frame, bytes);
        e.port = output;
        if !out.push(e) {
            self.shared.dropped.fetch_add(1, Ordering::Relaxed);
        }
    }

    fn note_off(&self, out: &mut EventWriter<'_>, frame: u32, output: u8, ch: u8, note: u8) {
        self.send(out, frame, output, &[0x80 | ch, note, 0]);
        self.shared.notes_off.fetch_add(1, Ordering::Relaxed);
        self.shared.sounding.fetch_sub(1, Ordering::Relaxed);
    }

    /// Ends the notes a predecessor handed over.
    fn end_handed(&mut self, out: &mut EventWriter<'_>) {
        for i in 0..self.handed_len {
            let (output, status, note) = self.handed[i];
            self.send(out, 0, output, &[0x80 | (status & 0x0F), note, 0]);
        }
        self.handed_len = 0;
    }

    /// Ends every sounding voice at `frame`.
    fn silence(&mut self, out: &mut EventWriter<'_>, frame: u32) {
        for g in 0..self.map.notes.len() {
            let (output, ch) = (self.map.notes[g].output, self.map.notes[g].channel - 1);
            for v in 0..16 {
                if self.voices[g][v].sounding {
                    self.voices[g][v].sounding = false;
                    self.note_off(out, frame, output, ch, self.voices[g][v].note);
                }
            }
        }
    }

    /// Turns the script's outputs into MIDI at `frame` (after the sample).
    fn emit(&mut self, out: &mut EventWriter<'_>, frame: u32) {
        let e = &*self.engine;
        for g in 0..self.map.notes.len() {
            let m = &self.map.notes[g];
            let (pitch, gate) = (m.pitch as usize - 1, m.gate as usize - 1);
            let voices = e.polyphony(pitch) as usize;
            let ch = m.channel - 1;
            for v in 0..16 {
                let was = self.voices[g][v];
                if v >= voices && !was.sounding {
                    continue;
                }
                let high = v < voices && poly(e, gate, v) >= 1.0;
                let note = mapping::note_of(e.output(pitch, v));
                if was.sounding && (!high || note != was.note) {
                    self.voices[g][v].sounding = false;
                    self.note_off(out, frame, m.output, ch, was.note);
                }
                if high && !(was.sounding && note == was.note) {
                    let vel = if m.velocity == 0 {
                        m.velocity_default
                    } else {
                        mapping::velocity_of(poly(e, m.velocity as usize - 1, v))
                    };
                    self.voices[g][v] = Voice {
                        sounding: true,
                        note,
                    };
                    self.send(out, frame, m.output, &[0x90 | ch, note, vel]);
                    self.shared.notes_on.fetch_add(1, Ordering::Relaxed);
                    self.shared.sounding.fetch_add(1, Ordering::Relaxed);
                }
            }
        }
        for i in 0..self.map.cc.len() {
            let c = &self.map.cc[i];
            let v = mapping::cc_of(
                e.output(c.port as usize - 1, c.voice as usize - 1),
                c.min,
                c.max,
            );
            if self.cc_last[i] != v as i16 {
                self.cc_last[i] = v as i16;
                self.send(out, frame, c.output, &[0xB0 | (c.channel - 1), c.cc, v]);
            }
        }
        for i in 0..self.map.bend.len() {
            let b = &self.map.bend[i];
            let v = mapping::bend_of(e.output(b.port as usize - 1, b.voice as usize - 1), b.range);
            if self.bend_last[i] != v as i32 {
                self.bend_last[i] = v as i32;
                let bytes = [0xE0 | (b.channel - 1), (v & 0x7F) as u8, (v >> 7) as u8];
                self.send(out, frame, b.output, &bytes);
            }
        }
    }

    fn transport(&mut self, cmd: Cmd, out: &mut EventWriter<'_>, frame: u32) {
        match cmd {
            Cmd::Start => {
                self.engine.start(0);
                self.running = true;
            }
            Cmd::Stop => {
                self.engine.pause();
                self.running = false;
                self.silence(out, frame);
            }
            Cmd::Reset => {
                self.engine.reset();
                self.samples = 0;
                self.shared.resets.fetch_add(1, Ordering::Relaxed);
            }
        }
        self.shared.running.store(self.running, Ordering::Relaxed);
    }

    /// Applies one incoming event at `frame` (absolute `now`).
    fn input(&mut self, e: &RtEvent, now: u64, out: &mut EventWriter<'_>, frame: u32) {
        let b = e.midi_bytes();
        let Some(&status) = b.first() else { return };
        match status {
            0xF8 if self.map.clock_in != 0 => {
                self.engine
                    .set_input(self.map.clock_in as usize - 1, 0, 10.0);
                self.clock_high = true;
                self.clock_off_at = now + self.clock_pulse;
            }
            0xFA if self.map.midi_transport => {
                self.transport(Cmd::Reset, out, frame);
                self.transport(Cmd::Start, out, frame);
            }
            0xFB if self.map.midi_transport => self.transport(Cmd::Start, out, frame),
            0xFC if self.map.midi_transport => self.transport(Cmd::Stop, out, frame),
            _ if b.len() == 3 && status < 0xF0 => {
                let ch = status & 0x0F;
                match status & 0xF0 {
                    0x90 if b[2] > 0 => self.note_in(ch, b[1], b[2]),
                    0x80 | 0x90 => self.note_in_off(ch, b[1]),
                    0xB0 => {
                        for c in &self.map.cc_in {
                            if c.cc == b[1] && (c.channel == 0 || c.channel - 1 == ch) {
                                let v = c.min + (c.max - c.min) * b[2] as f32 / 127.0;
                                self.engine
                                    .set_input(c.port as usize - 1, c.voice as usize - 1, v);
                            }
                        }
                    }
                    _ => {}
                }
            }
            _ => {}
        }
    }

    fn note_in(&mut self, ch: u8, note: u8, vel: u8) {
        let n = &self.map.notes_in;
        let voices = n.voices as usize;
        if voices == 0 || (n.channel != 0 && n.channel - 1 != ch) {
            return;
        }
        // The voice already holding this note, else the free voice used
        // longest ago, else the held voice used longest ago (stolen).
        let pool = &self.in_voices[..voices];
        let pick = pool
            .iter()
            .position(|v| v.held && v.note == note)
            .or_else(|| {
                (0..voices)
                    .filter(|&i| !pool[i].held)
                    .min_by_key(|&i| pool[i].stamp)
            })
            .unwrap_or_else(|| (0..voices).min_by_key(|&i| pool[i].stamp).unwrap_or(0));
        self.in_stamp += 1;
        self.in_voices[pick] = InVoice {
            held: true,
            note,
            stamp: self.in_stamp,
        };
        let (p, g, v) = (n.pitch, n.gate, n.velocity);
        if p != 0 {
            self.engine
                .set_input(p as usize - 1, pick, mapping::pitch_of(note));
        }
        if g != 0 {
            self.engine.set_input(g as usize - 1, pick, 10.0);
        }
        if v != 0 {
            self.engine
                .set_input(v as usize - 1, pick, vel as f32 / 127.0 * 10.0);
        }
    }

    fn note_in_off(&mut self, ch: u8, note: u8) {
        let n = &self.map.notes_in;
        let voices = n.voices as usize;
        if voices == 0 || (n.channel != 0 && n.channel - 1 != ch) {
            return;
        }
        if let Some(i) = self.in_voices[..voices]
            .iter()
            .position(|v| v.held && v.note == note)
        {
            self.in_voices[i].held = false;
            if n.gate != 0 {
                self.engine.set_input(n.gate as usize - 1, i, 0.0);
            }
        }
    }

    /// Runs one script sample at `frame`, then sends what changed.
    fn step(&mut self, out: &mut EventWriter<'_>, frame: u32) {
        self.engine.process(1);
        if self.running {
            self.samples += 1;
            self.emit(out, frame);
        }
    }
}

impl RtPart for PlayerRt {
    fn process(&mut self, ctx: &BlockContext, input: &[RtEvent], out: &mut EventWriter<'_>) {
        if self.handed_len > 0 {
            self.end_handed(out);
        }
        while let Ok(cmd) = self.commands.pop() {
            self.transport(cmd, out, 0);
        }
        let frames = ctx.frames;
        let base = ctx.sample_position;
        let mut next = 0usize;
        let mut f = 0u32;
        while f < frames {
            let now = base + f as u64;
            while next < input.len() && input[next].frame <= f {
                let e = input[next];
                self.input(&e, now, out, f);
                next += 1;
            }
            if self.clock_high && now >= self.clock_off_at {
                self.clock_high = false;
                self.engine
                    .set_input(self.map.clock_in as usize - 1, 0, 0.0);
            }
            if !self.started && self.running {
                self.started = true;
                self.shared.started_at.store(now, Ordering::Relaxed);
            }
            // Paused with nothing pending (stopped): nothing runs until
            // an event. Otherwise every sample is processed, stepped or in
            // a block.
            let idle = self.engine.status() == timeseq::Status::Paused
                && self.engine.quiet_ahead() == u64::MAX;
            if !idle {
                self.step(out, f);
            }
            f += 1;
            // The samples up to the next event (or clock pulse end) in
            // which the script promises no change: one call.
            let mut boundary = input.get(next).map_or(frames, |e| e.frame.clamp(f, frames));
            if self.clock_high && self.clock_off_at < base + boundary as u64 {
                boundary = (self.clock_off_at - base).max(f as u64) as u32;
            }
            if boundary > f {
                // Only changes of the watched ports need their frame;
                // with nothing watched the samples up to the next event
                // go in one call (inputs are constant there, which keeps
                // block processing exact).
                if idle {
                    f = boundary;
                } else {
                    let quiet = if self.watch == 0 {
                        (boundary - f) as u64
                    } else {
                        self.engine.quiet_ahead_for(self.watch)
                    };
                    let k = quiet.min((boundary - f) as u64) as u32;
                    if k > 0 {
                        self.engine.process_block(k);
                        if self.running {
                            self.samples += k as u64;
                        }
                        f += k;
                    }
                }
            }
        }
        self.shared.samples.store(self.samples, Ordering::Relaxed);
    }

    fn save_transient(&self, buf: &mut [u8; TRANSIENT_BYTES]) {
        buf[..4].copy_from_slice(MAGIC);
        let mut n = 0usize;
        let mut put = |h: Handed| {
            let at = 6 + n * 3;
            if n < MAX_HANDED {
                buf[at] = h.0;
                buf[at + 1] = h.1;
                buf[at + 2] = h.2;
                n += 1;
            }
        };
        for i in 0..self.handed_len {
            put(self.handed[i]);
        }
        for g in 0..self.map.notes.len() {
            let m = &self.map.notes[g];
            for v in &self.voices[g] {
                if v.sounding {
                    put((m.output, 0x90 | (m.channel - 1), v.note));
                }
            }
        }
        buf[4..6].copy_from_slice(&(n as u16).to_le_bytes());
    }

    fn restore_transient(&mut self, buf: &[u8; TRANSIENT_BYTES]) -> bool {
        if &buf[..4] != MAGIC {
            return false;
        }
        let n = (u16::from_le_bytes([buf[4], buf[5]]) as usize).min(MAX_HANDED);
        for i in 0..n {
            let at = 6 + i * 3;
            self.handed[i] = (buf[at], buf[at + 1], buf[at + 2]);
        }
        self.handed_len = n;
        true
    }

    fn all_notes_off(&mut self, out: &mut EventWriter<'_>) {
        self.end_handed(out);
        self.silence(out, 0);
    }
}

imp::export!(Player);
