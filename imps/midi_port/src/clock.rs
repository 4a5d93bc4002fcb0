//! MIDI clock out: 24 ticks (`F8`) per quarter note from the engine's
//! sample clock, with Start (`FA`), Stop (`FC`), Continue (`FB`) and Song
//! Position (`F2`).
//!
//! Each tick lands on the first frame at or after its exact time, and the
//! exact times come from an anchor (a sample position and the tempo since
//! then), never from adding up rounded intervals: nothing drifts. A tempo
//! change re-anchors at the next tick, so the interval under way keeps the
//! old tempo and every interval after it has the new one.

use imp::{BlockContext, EventWriter, RtEvent};

/// Ticks per quarter note.
pub const PPQN: f64 = 24.0;

/// A transport command for the clock, from the control part.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Transport {
    /// Song position 0, `FA`, ticks from there.
    Start,
    /// `FC`, no more ticks.
    Stop,
    /// Song position where it stopped, `FB`, ticks again.
    Continue,
}

impl Transport {
    /// The byte that carries it through the ring.
    pub fn code(self) -> u8 {
        match self {
            Transport::Start => 0xfa,
            Transport::Stop => 0xfc,
            Transport::Continue => 0xfb,
        }
    }

    /// The command a ring byte carries.
    pub fn from_code(b: u8) -> Option<Transport> {
        match b {
            0xfa => Some(Transport::Start),
            0xfc => Some(Transport::Stop),
            0xfb => Some(Transport::Continue),
            _ => None,
        }
    }
}

/// The clock's state: plain numbers, handed across a hot swap.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Clock {
    /// Ticking.
    pub running: bool,
    /// Exact sample time of tick 0 of the current segment.
    pub anchor: f64,
    /// The next tick's index in the current segment.
    pub next: u64,
    /// The tempo of the current segment.
    pub bpm: f64,
    /// Ticks sent since the last Start (the song position, ×6 = 16ths).
    pub ticks: u64,
    /// A transport command waiting for the next block (0: none).
    pub pending: u8,
}

impl Default for Clock {
    fn default() -> Self {
        Clock {
            running: false,
            anchor: 0.0,
            next: 0,
            bpm: 120.0,
            ticks: 0,
            pending: Transport::Start.code(),
        }
    }
}

fn samples_per_tick(sample_rate: f64, bpm: f64) -> f64 {
    sample_rate * 60.0 / bpm / PPQN
}

impl Clock {
    /// Queues a transport command for the next block.
    pub fn command(&mut self, t: Transport) {
        self.pending = t.code();
    }

    /// Emits this block's transport message and ticks. Engine thread; no
    /// allocation.
    pub fn process(&mut self, ctx: &BlockContext, out: &mut EventWriter<'_>) {
        let start = ctx.sample_position;
        let end = start + ctx.frames as u64;
        if let Some(t) = Transport::from_code(std::mem::take(&mut self.pending)) {
            match t {
                Transport::Start | Transport::Continue => {
                    if t == Transport::Start {
                        self.ticks = 0;
                    }
                    // Song position in MIDI beats (16ths = 6 ticks), then
                    // Start/Continue; the first tick after it is the beat.
                    let beats = (self.ticks / 6).min(0x3fff);
                    out.push(RtEvent::midi(
                        0,
                        &[0xf2, (beats & 0x7f) as u8, (beats >> 7) as u8],
                    ));
                    out.push(RtEvent::midi(0, &[t.code()]));
                    // Resuming mid-beat rounds the position down to the
                    // 16th, as a receiver will.
                    self.ticks = beats * 6;
                    self.running = true;
                    self.anchor = start as f64;
                    self.next = 0;
                    self.bpm = ctx.tempo_bpm;
                }
                Transport::Stop => {
                    if self.running {
                        out.push(RtEvent::midi(0, &[0xfc]));
                    }
                    self.running = false;
                }
            }
        }
        if !self.running || ctx.sample_rate <= 0.0 || ctx.tempo_bpm <= 0.0 {
            return;
        }
        if ctx.tempo_bpm != self.bpm {
            // The tick under way keeps the old tempo; the ones after it
            // follow the new one.
            self.anchor += self.next as f64 * samples_per_tick(ctx.sample_rate, self.bpm);
            self.next = 0;
            self.bpm = ctx.tempo_bpm;
        }
        let spt = samples_per_tick(ctx.sample_rate, self.bpm);
        loop {
            let at = (self.anchor + self.next as f64 * spt).ceil();
            let at = if at < start as f64 { start } else { at as u64 };
            if at >= end {
                break;
            }
            if !out.push(RtEvent::midi((at - start) as u32, &[0xf8])) {
                break;
            }
            self.next += 1;
            self.ticks += 1;
        }
    }

    /// Stop, sent when the port goes (freeze, failure, shutdown).
    pub fn stop_now(&mut self, out: &mut EventWriter<'_>) {
        if self.running {
            out.push(RtEvent::midi(0, &[0xfc]));
            self.running = false;
        }
    }

    /// The state as bytes, for a successor build.
    pub fn save(&self, buf: &mut [u8]) {
        buf[0] = 0xc1; // marks a clock state
        buf[1] = self.running as u8;
        buf[2] = self.pending;
        buf[3..11].copy_from_slice(&self.anchor.to_le_bytes());
        buf[11..19].copy_from_slice(&self.next.to_le_bytes());
        buf[19..27].copy_from_slice(&self.bpm.to_le_bytes());
        buf[27..35].copy_from_slice(&self.ticks.to_le_bytes());
    }

    /// The state a predecessor saved, if the bytes hold one.
    pub fn restore(buf: &[u8]) -> Option<Clock> {
        if buf.len() < 35 || buf[0] != 0xc1 {
            return None;
        }
        let f = |r: std::ops::Range<usize>| <[u8; 8]>::try_from(&buf[r]).ok();
        Some(Clock {
            running: buf[1] != 0,
            pending: buf[2],
            anchor: f64::from_le_bytes(f(3..11)?),
            next: u64::from_le_bytes(f(11..19)?),
            bpm: f64::from_le_bytes(f(19..27)?),
            ticks: u64::from_le_bytes(f(27..35)?),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Runs `blocks` blocks of `frames` from `pos`, with the tempo of each
    /// block from `tempo`; returns (absolute sample, bytes) of everything.
    fn run(
        clock: &mut Clock,
        pos: &mut u64,
        blocks: usize,
        frames: u32,
        tempo: impl Fn(usize) -> f64,
    ) -> Vec<(u64, Vec<u8>)> {
        let mut got = Vec::new();
        for b in 0..blocks {
            let ctx = BlockContext::new(*pos, 48_000.0, tempo(b), frames);
            let mut buf = [RtEvent::default(); 64];
            let mut out = EventWriter::new(&mut buf);
            clock.process(&ctx, &mut out);
            let n = out.len();
            for e in &buf[..n] {
                got.push((*pos + e.frame as u64, e.midi_bytes().to_vec()));
            }
            *pos += frames as u64;
        }
        got
    }

    fn ticks(events: &[(u64, Vec<u8>)]) -> Vec<u64> {
        events
            .iter()
            .filter(|(_, b)| b == &[0xf8])
            .map(|(t, _)| *t)
            .collect()
    }

    #[test]
    fn start_then_ticks_at_their_exact_frames_without_drift() {
        let mut c = Clock::default();
        let mut pos = 1000;
        // 125 BPM at 48 kHz: 960 samples per tick, exactly.
        let ev = run(&mut c, &mut pos, 1000, 64, |_| 125.0);
        assert_eq!(ev[0], (1000, vec![0xf2, 0, 0]));
        assert_eq!(ev[1], (1000, vec![0xfa]));
        let t = ticks(&ev);
        assert!(t.len() > 60);
        for (k, at) in t.iter().enumerate() {
            assert_eq!(*at, 1000 + 960 * k as u64);
        }
        // 133 BPM gives 902.255... samples per tick; each tick is the
        // first frame at or after its exact time.
        let mut c = Clock::default();
        let mut pos = 0;
        let t = ticks(&run(&mut c, &mut pos, 20_000, 37, |_| 133.0));
        let spt = 48_000.0 * 60.0 / 133.0 / 24.0;
        assert!(t.len() > 800);
        for (k, at) in t.iter().enumerate() {
            assert_eq!(*at, (k as f64 * spt).ceil() as u64, "tick {k}");
        }
    }

    #[test]
    fn a_tempo_change_takes_effect_on_the_next_tick() {
        let mut c = Clock::default();
        let mut pos = 0;
        // 120 BPM (1000 samples per tick) for 100 blocks of 64 (6400
        // samples), then 150 BPM (800).
        let t = ticks(&run(&mut c, &mut pos, 300, 64, |b| {
            if b < 100 {
                120.0
            } else {
                150.0
            }
        }));
        let gaps: Vec<u64> = t.windows(2).map(|w| w[1] - w[0]).collect();
        // Ticks at 0..=6000 by 1000; the one at 7000 was under way at the
        // change (6400) and keeps its time; 800 after it.
        assert!(gaps[..6].iter().all(|g| *g == 1000), "{gaps:?}");
        assert_eq!(t[7], 7000);
        assert!(gaps[7..].iter().all(|g| *g == 800), "{gaps:?}");
    }

    #[test]
    fn stop_and_continue_resume_from_the_song_position() {
        let mut c = Clock::default();
        let mut pos = 0;
        let first = ticks(&run(&mut c, &mut pos, 100, 100, |_| 120.0));
        assert_eq!(first.len(), 10); // 10000 samples at 1000 per tick
        c.command(Transport::Stop);
        let stopped = run(&mut c, &mut pos, 50, 100, |_| 120.0);
        assert_eq!(stopped, vec![(10_000, vec![0xfc])]);
        c.command(Transport::Continue);
        let resumed = run(&mut c, &mut pos, 10, 100, |_| 120.0);
        // 10 ticks = one 16th (6) + 4: position 1, then Continue, then a
        // tick at once and every 1000 samples.
        assert_eq!(resumed[0], (15_000, vec![0xf2, 1, 0]));
        assert_eq!(resumed[1], (15_000, vec![0xfb]));
        assert_eq!(ticks(&resumed), vec![15_000]);
    }

    #[test]
    fn state_survives_a_hot_swap() {
        let mut c = Clock::default();
        let mut pos = 0;
        run(&mut c, &mut pos, 77, 64, |_| 133.0);
        let mut buf = [0u8; 64];
        c.save(&mut buf);
        assert_eq!(Clock::restore(&buf), Some(c));
        assert_eq!(Clock::restore(&[0u8; 64]), None);
    }
}
