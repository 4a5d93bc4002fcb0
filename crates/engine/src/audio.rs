//! Audio inside the engine.
//!
//! An RT part that declares audio channels (`imp::RtPart::AUDIO_CHANNELS`)
//! writes each block into buffers its slot owns (zeroed before the call,
//! one per channel, one block long); the engine sums every slot into its
//! stereo output bus (a mono part goes to both sides), which the backend
//! hands to the audio device after the cycle. MIDI and audio run on the one
//! sample clock: a note at frame `n` sounds from sample `n` of the block.
//!
//! A part that makes sound is not cut off when it is replaced (a hot swap,
//! a new configuration) or removed: it becomes a **tail**. The engine tells
//! it to release its notes, keeps rendering it, without input, for up to
//! [`TAIL_SECONDS`] (fading it out over the second half) or until it is
//! silent, and only then lets it go. So a voice sounding across a swap ends
//! with its own release, and nothing clicks.
//!
//! Everything here is allocated up front; the engine thread only adds.

use crate::rt::OwnedRtPart;
use imp::{BlockContext, RtEvent};

/// Longest block the engine renders audio for (JACK periods go up to 8192).
pub const MAX_AUDIO_FRAMES: usize = 8192;
/// Channels of the output bus (left, right).
pub const BUS_CHANNELS: usize = 2;
/// Longest release tail of a replaced or removed part, in seconds.
pub const TAIL_SECONDS: f64 = 1.0;
/// Tails that can sound at once; beyond, the oldest is cut.
pub(crate) const MAX_TAILS: usize = 8;
/// Below this peak a tail counts as silent.
const SILENCE: f32 = 1.0e-5;

/// A stereo pair of engine-owned buffers.
pub(crate) struct Stereo {
    samples: Box<[f32]>,
}

impl Stereo {
    pub fn new() -> Stereo {
        Stereo {
            samples: vec![0.0; BUS_CHANNELS * MAX_AUDIO_FRAMES].into_boxed_slice(),
        }
    }

    /// Zeroes the first `frames` samples of each channel.
    pub fn clear(&mut self, frames: usize) {
        let (l, r) = self.samples.split_at_mut(MAX_AUDIO_FRAMES);
        l[..frames].fill(0.0);
        r[..frames].fill(0.0);
    }

    pub fn channels(&self, frames: usize) -> (&[f32], &[f32]) {
        let (l, r) = self.samples.split_at(MAX_AUDIO_FRAMES);
        (&l[..frames], &r[..frames])
    }

    /// Pointers to the two channels, for a `BlockContext`.
    pub fn pointers(&mut self) -> [*mut f32; BUS_CHANNELS] {
        let (l, r) = self.samples.split_at_mut(MAX_AUDIO_FRAMES);
        [l.as_mut_ptr(), r.as_mut_ptr()]
    }

    /// Adds `source` (with `channels` channels: mono goes to both sides)
    /// times `gain` (from `gain.0` to `gain.1` across the block).
    pub fn mix(&mut self, source: &Stereo, channels: u32, frames: usize, gain: (f32, f32)) {
        let (sl, sr) = source.channels(frames);
        let sr = if channels >= 2 { sr } else { sl };
        let (l, r) = self.samples.split_at_mut(MAX_AUDIO_FRAMES);
        let step = if frames > 0 {
            (gain.1 - gain.0) / frames as f32
        } else {
            0.0
        };
        for i in 0..frames {
            let g = gain.0 + step * i as f32;
            l[i] += sl[i] * g;
            r[i] += sr[i] * g;
        }
    }

    /// Peak and RMS of both channels over `frames`.
    pub fn level(&self, frames: usize) -> (f32, f32) {
        let (l, r) = self.channels(frames);
        let mut peak = 0.0f32;
        let mut sum = 0.0f64;
        for s in l.iter().chain(r) {
            peak = peak.max(s.abs());
            sum += (*s as f64) * (*s as f64);
        }
        let n = (2 * frames).max(1) as f64;
        (peak, (sum / n).sqrt() as f32)
    }
}

/// A replaced or removed part playing out its release.
pub(crate) struct Tail {
    pub part: Box<OwnedRtPart>,
    /// Frames rendered so far.
    pub played: u64,
}

/// The engine's audio state: one buffer pair per slot, the bus, the tails.
pub(crate) struct Audio {
    pub slots: Box<[Stereo]>,
    pub bus: Stereo,
    tail_buf: Stereo,
    pub tails: [Option<Tail>; MAX_TAILS],
    pub frames: usize,
}

impl Audio {
    pub fn new(slots: usize) -> Audio {
        Audio {
            slots: (0..slots).map(|_| Stereo::new()).collect(),
            bus: Stereo::new(),
            tail_buf: Stereo::new(),
            tails: Default::default(),
            frames: 0,
        }
    }

    /// A context for `slot`'s part: its buffers, zeroed. `pointers` must
    /// outlive the call that uses the context.
    pub fn context_for(
        &mut self,
        slot: usize,
        channels: u32,
        base: &BlockContext,
        pointers: &mut [*mut f32; BUS_CHANNELS],
    ) -> BlockContext {
        let mut ctx = *base;
        if channels == 0 || base.frames as usize > MAX_AUDIO_FRAMES {
            return ctx;
        }
        let buffers = &mut self.slots[slot];
        buffers.clear(base.frames as usize);
        *pointers = buffers.pointers();
        ctx.audio = pointers.as_ptr();
        ctx.audio_channels = channels;
        ctx
    }

    /// Makes `part` a tail (it has already been told to end its notes).
    /// Returns a part that has to go now (no room, or no audio).
    pub fn add_tail(&mut self, part: Box<OwnedRtPart>) -> Option<Box<OwnedRtPart>> {
        if part.audio_channels() == 0 {
            return Some(part);
        }
        let tail = Tail { part, played: 0 };
        if let Some(free) = self.tails.iter_mut().find(|t| t.is_none()) {
            *free = Some(tail);
            return None;
        }
        // Full: the oldest goes, cut.
        let oldest = self
            .tails
            .iter_mut()
            .max_by_key(|t| t.as_ref().map_or(0, |t| t.played))
            .expect("MAX_TAILS > 0");
        oldest.replace(tail).map(|t| t.part)
    }

    /// Adds what `slot`'s part wrote this block to the bus.
    pub fn mix_slot(&mut self, slot: usize, channels: u32, frames: usize) {
        if channels > 0 && frames <= MAX_AUDIO_FRAMES {
            self.bus
                .mix(&self.slots[slot], channels, frames, (1.0, 1.0));
        }
    }

    /// Renders every tail into the bus; the parts whose tail ended come
    /// back in `done`. `scratch` receives (and discards) their events.
    pub fn render_tails(
        &mut self,
        base: &BlockContext,
        scratch: &mut [RtEvent],
        done: &mut [Option<Box<OwnedRtPart>>; MAX_TAILS],
    ) {
        let frames = base.frames as usize;
        if frames > MAX_AUDIO_FRAMES {
            return;
        }
        let limit = (TAIL_SECONDS * base.sample_rate) as u64;
        let fade_from = limit / 2;
        for (entry, done) in self.tails.iter_mut().zip(done.iter_mut()) {
            let Some(tail) = entry.as_mut() else {
                continue;
            };
            let channels = tail.part.audio_channels();
            self.tail_buf.clear(frames);
            let mut pointers = self.tail_buf.pointers();
            let mut ctx = *base;
            ctx.audio = pointers.as_mut_ptr() as *const *mut f32;
            ctx.audio_channels = channels;
            let (call, _) = tail.part.process(&ctx, &[], scratch);
            let gain_at = |played: u64| {
                if played <= fade_from {
                    1.0
                } else {
                    1.0 - (played - fade_from) as f32 / (limit - fade_from).max(1) as f32
                }
            };
            let g0 = gain_at(tail.played).max(0.0);
            tail.played += frames as u64;
            let g1 = gain_at(tail.played).max(0.0);
            let silent = self.tail_buf.level(frames).0 < SILENCE;
            if call == crate::RtCall::Ok {
                self.bus.mix(&self.tail_buf, channels, frames, (g0, g1));
            }
            if call != crate::RtCall::Ok || silent || tail.played >= limit {
                *done = entry.take().map(|t| t.part);
            }
        }
    }
}
