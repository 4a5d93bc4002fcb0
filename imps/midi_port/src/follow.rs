//! Following an external MIDI clock (24 ticks per beat): the tempo from
//! the tick times by a least-squares fit over the last two beats, so a
//! jittery USB clock gives a steady tempo.

/// Ticks the fit spans: two beats.
pub const WINDOW: usize = 48;
/// MIDI clock ticks per beat.
pub const TICKS_PER_BEAT: f64 = 24.0;

/// The tick times seen lately and the tempo they give.
#[derive(Clone, Debug)]
pub struct ClockFollower {
    ticks: [u64; WINDOW],
    len: usize,
    next: usize,
    bpm: Option<f64>,
}

impl Default for ClockFollower {
    fn default() -> Self {
        ClockFollower {
            ticks: [0; WINDOW],
            len: 0,
            next: 0,
            bpm: None,
        }
    }
}

impl ClockFollower {
    /// A tick at absolute sample `at`; returns the tempo estimate (BPM) once
    /// three ticks are in. A gap of more than four tick intervals (the clock
    /// stopped) starts the fit over. Engine thread; no allocation.
    pub fn tick(&mut self, at: u64, sample_rate: f64) -> Option<f64> {
        if self.len > 0 {
            let last = self.ticks[(self.next + WINDOW - 1) % WINDOW];
            let interval = self
                .bpm
                .map_or(sample_rate * 60.0 / 10.0 / TICKS_PER_BEAT, |b| {
                    sample_rate * 60.0 / b / TICKS_PER_BEAT
                });
            if at <= last || (at - last) as f64 > 4.0 * interval {
                self.len = 0;
            }
        }
        self.ticks[self.next] = at;
        self.next = (self.next + 1) % WINDOW;
        self.len = (self.len + 1).min(WINDOW);
        if self.len < 3 {
            return self.bpm;
        }
        // Least squares of time against tick index, relative to the oldest
        // tick (small numbers keep the f64 exact enough).
        let first = (self.next + WINDOW - self.len) % WINDOW;
        let base = self.ticks[first];
        let n = self.len as f64;
        let (mut sx, mut sy, mut sxx, mut sxy) = (0.0, 0.0, 0.0, 0.0);
        for i in 0..self.len {
            let x = i as f64;
            let y = (self.ticks[(first + i) % WINDOW] - base) as f64;
            sx += x;
            sy += y;
            sxx += x * x;
            sxy += x * y;
        }
        let slope = (n * sxy - sx * sy) / (n * sxx - sx * sx);
        if !(slope.is_finite() && slope > 0.0) {
            return self.bpm;
        }
        let bpm = sample_rate * 60.0 / (slope * TICKS_PER_BEAT);
        self.bpm = (10.0..=999.0).contains(&bpm).then_some(bpm);
        self.bpm
    }

    /// The current estimate.
    pub fn bpm(&self) -> Option<f64> {
        self.bpm
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Ticks at `bpm` with a deterministic ±`jitter` samples.
    fn ticks(bpm: f64, jitter: i64, n: usize) -> Vec<u64> {
        let interval = 48_000.0 * 60.0 / bpm / 24.0;
        let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
        (0..n)
            .map(|k| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                let j = (x % (2 * jitter as u64 + 1)) as i64 - jitter;
                ((10_000.0 + k as f64 * interval).round() as i64 + j) as u64
            })
            .collect()
    }

    #[test]
    fn a_jittery_clock_gives_a_steady_tempo_after_two_beats() {
        let mut f = ClockFollower::default();
        let mut last = None;
        for (k, t) in ticks(120.0, 48, 96).into_iter().enumerate() {
            last = f.tick(t, 48_000.0);
            if k >= 48 {
                let bpm = last.unwrap();
                assert!((bpm - 120.0).abs() < 0.1, "tick {k}: {bpm}");
            }
        }
        assert!(last.is_some());
    }

    #[test]
    fn a_stopped_clock_starts_the_fit_over() {
        let mut f = ClockFollower::default();
        for t in ticks(120.0, 0, 48) {
            f.tick(t, 48_000.0);
        }
        // Three ticks at 90 BPM after a long gap: the new tempo at once.
        let gap = 10_000_000u64;
        for k in 0..3u64 {
            f.tick(gap + k * 1333, 48_000.0);
        }
        assert!((f.bpm().unwrap() - 90.0).abs() < 0.2, "{:?}", f.bpm());
    }
}
