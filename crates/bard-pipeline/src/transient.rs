//! Fixed-size, versioned, plain-bytes layout of the transient state handed
//! from an old instance to a new one on a hot swap. Little-endian, no serde,
//! no allocation.
//!
//! Layout v1 (offsets in bytes):
//! ```text
//! 0   magic "BARD"
//! 4   u16 version (1)
//! 6   u16 reserved
//! 8   clock: u8 valid, u64 anchor_sample, f64 anchor_beat, f64 bpm, f64 rate
//! ..  u64 dropped_note_ons, u64 next block start (u64::MAX before the first block)
//! ..  output table: u16 len, len × (u8 port, u8 channel, u8 note, u8 count, u8 pending)
//! ..  timed offs:   u16 len, len × (u64 at, u8 port, u8 channel, u8 note)
//! ..  held keys:    u16 len, len × (u8 source, channel, note, zone, route, n_outs, 8 × (port, channel, note))
//! ..  MAX_ZONES arpeggiators: u8 n, u32 seq, u32 pos, u64 next_step, u64 fire_at,
//!       u8 active, u64 rng, n × (i16 pitch, u8 vel, channel, source, key, held, u32 seq)
//! ..  MAX_ZONES movements: u8 running, u8 fresh, u64 next_tick, i16 transpose, clock,
//!       MAX_VOICES × (u32 entry, u32 rep, u32 pos, u8 done)
//! ..  zero padding to TRANSIENT_STATE_BYTES
//! ```

use crate::bard::{ArpNote, Bard, Clock, State, VoiceState};
use crate::ledger::{Held, OutNote, Route, Slot, TimedOff};
use crate::limits::*;
use thiserror::Error;

const MAGIC: [u8; 4] = *b"BARD";
/// Version of the transient layout written by this build.
pub const TRANSIENT_VERSION: u16 = 1;

const CLOCK: usize = 1 + 8 * 4;
const MAX_ENCODED: usize = 8
    + CLOCK
    + 8
    + 8
    + 2
    + MAX_SOUNDING * 5
    + 2
    + MAX_TIMED * 11
    + 2
    + MAX_HELD * (6 + 3 * MAX_CHORD_NOTES)
    + MAX_ZONES * (1 + 4 + 4 + 8 + 8 + 1 + 8 + MAX_ARP_NOTES * 11)
    + MAX_ZONES * (1 + 1 + 8 + 2 + CLOCK + MAX_VOICES * 13);
const _: () = assert!(MAX_ENCODED <= TRANSIENT_STATE_BYTES);

/// Why transient bytes were refused.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum TransientError {
    /// Not bytes written by `save_transient`.
    #[error("not a bard transient state (bad magic)")]
    BadMagic,
    /// Written by a build with another layout.
    #[error("transient state version {found}, this build reads {expected}")]
    Version {
        /// Version in the bytes.
        found: u16,
        /// Version this build reads.
        expected: u16,
    },
    /// A count exceeds this build's fixed capacity.
    #[error("corrupt transient state: {0}")]
    Corrupt(&'static str),
}

struct W<'a> {
    b: &'a mut [u8],
    i: usize,
}

impl W<'_> {
    fn bytes(&mut self, x: &[u8]) {
        self.b[self.i..self.i + x.len()].copy_from_slice(x);
        self.i += x.len();
    }
    fn u8(&mut self, x: u8) {
        self.bytes(&[x]);
    }
    fn u16(&mut self, x: u16) {
        self.bytes(&x.to_le_bytes());
    }
    fn u32(&mut self, x: u32) {
        self.bytes(&x.to_le_bytes());
    }
    fn u64(&mut self, x: u64) {
        self.bytes(&x.to_le_bytes());
    }
    fn f64(&mut self, x: f64) {
        self.u64(x.to_bits());
    }
    fn clock(&mut self, c: &Clock) {
        self.u8(c.valid as u8);
        self.u64(c.anchor_sample);
        self.f64(c.anchor_beat);
        self.f64(c.bpm);
        self.f64(c.rate);
    }
}

struct R<'a> {
    b: &'a [u8],
    i: usize,
}

impl R<'_> {
    fn take<const N: usize>(&mut self) -> [u8; N] {
        let mut a = [0u8; N];
        a.copy_from_slice(&self.b[self.i..self.i + N]);
        self.i += N;
        a
    }
    fn u8(&mut self) -> u8 {
        self.take::<1>()[0]
    }
    fn u16(&mut self) -> u16 {
        u16::from_le_bytes(self.take())
    }
    fn u32(&mut self) -> u32 {
        u32::from_le_bytes(self.take())
    }
    fn u64(&mut self) -> u64 {
        u64::from_le_bytes(self.take())
    }
    fn f64(&mut self) -> f64 {
        f64::from_bits(self.u64())
    }
    fn clock(&mut self) -> Clock {
        let c = Clock {
            valid: self.u8() != 0,
            anchor_sample: self.u64(),
            anchor_beat: self.f64(),
            bpm: self.f64(),
            rate: self.f64(),
        };
        // Nonsense numbers would stall the scheduler: start the clock afresh.
        let sane = c.anchor_beat.is_finite()
            && c.bpm.is_finite()
            && c.bpm >= 1.0
            && c.rate.is_finite()
            && c.rate >= 1.0;
        if sane {
            c
        } else {
            Clock::default()
        }
    }
    fn count(&mut self, max: usize, what: &'static str) -> Result<usize, TransientError> {
        let n = self.u16() as usize;
        if n > max {
            return Err(TransientError::Corrupt(what));
        }
        Ok(n)
    }
    fn out_note(&mut self) -> OutNote {
        OutNote {
            port: self.u8(),
            channel: self.u8() & 0x0f,
            note: self.u8() & 0x7f,
        }
    }
}

pub(crate) fn save(st: &State, buf: &mut [u8; TRANSIENT_STATE_BYTES]) {
    buf.fill(0);
    let mut w = W { b: buf, i: 0 };
    w.bytes(&MAGIC);
    w.u16(TRANSIENT_VERSION);
    w.u16(0);
    w.clock(&st.clock);
    w.u64(st.stats.dropped_note_ons);
    w.u64(st.next_start);
    w.u16(st.out.len as u16);
    for s in &st.out.slots[..st.out.len] {
        w.bytes(&[
            s.n.port,
            s.n.channel,
            s.n.note,
            s.count,
            s.pending_off as u8,
        ]);
    }
    w.u16(st.offs.len as u16);
    for t in &st.offs.items[..st.offs.len] {
        w.u64(t.at);
        w.bytes(&[t.n.port, t.n.channel, t.n.note]);
    }
    w.u16(st.held.len as u16);
    for h in &st.held.items[..st.held.len] {
        w.bytes(&[h.source, h.channel, h.note, h.zone, h.route as u8, h.n_outs]);
        for o in &h.outs {
            w.bytes(&[o.port, o.channel, o.note]);
        }
    }
    for a in &st.arps {
        w.u8(a.n as u8);
        w.u32(a.seq);
        w.u32(a.pos);
        w.u64(a.next_step);
        w.u64(a.fire_at);
        w.u8(a.active as u8);
        w.u64(a.rng);
        for x in &a.notes[..a.n] {
            w.bytes(&x.pitch.to_le_bytes());
            w.bytes(&[x.vel, x.channel, x.source, x.key, x.held as u8]);
            w.u32(x.seq);
        }
    }
    for m in &st.moves {
        w.u8(m.running as u8);
        w.u8(m.fresh as u8);
        w.u64(m.next_tick);
        w.bytes(&m.transpose.to_le_bytes());
        w.clock(&m.clock);
        for v in &m.voices {
            w.u32(v.entry);
            w.u32(v.rep);
            w.u32(v.pos);
            w.u8(v.done as u8);
        }
    }
    debug_assert!(w.i <= MAX_ENCODED);
}

pub(crate) fn restore(
    st: &mut State,
    buf: &[u8; TRANSIENT_STATE_BYTES],
) -> Result<(), TransientError> {
    let mut r = R { b: buf, i: 0 };
    if r.take::<4>() != MAGIC {
        return Err(TransientError::BadMagic);
    }
    let version = r.u16();
    if version != TRANSIENT_VERSION {
        return Err(TransientError::Version {
            found: version,
            expected: TRANSIENT_VERSION,
        });
    }
    r.u16();
    st.clock = r.clock();
    st.stats.dropped_note_ons = r.u64();
    st.next_start = r.u64();
    st.out.len = r.count(MAX_SOUNDING, "too many sounding notes")?;
    for s in st.out.slots[..st.out.len].iter_mut() {
        let n = r.out_note();
        *s = Slot {
            n,
            count: r.u8(),
            pending_off: r.u8() != 0,
        };
    }
    st.offs.len = r.count(MAX_TIMED, "too many timed note-offs")?;
    for t in st.offs.items[..st.offs.len].iter_mut() {
        let at = r.u64();
        *t = TimedOff {
            at,
            n: r.out_note(),
        };
    }
    st.held.len = r.count(MAX_HELD, "too many held keys")?;
    for h in st.held.items[..st.held.len].iter_mut() {
        let [source, channel, note, zone, route, n_outs] = r.take::<6>();
        if n_outs as usize > MAX_CHORD_NOTES || zone as usize >= MAX_ZONES {
            return Err(TransientError::Corrupt("bad held key"));
        }
        let route = match route {
            0 => Route::Direct,
            1 => Route::Arp,
            2 => Route::Movement,
            _ => return Err(TransientError::Corrupt("bad route")),
        };
        let mut outs = [OutNote::default(); MAX_CHORD_NOTES];
        for o in outs.iter_mut() {
            *o = r.out_note();
        }
        *h = Held {
            source,
            channel,
            note,
            zone,
            route,
            n_outs,
            outs,
        };
    }
    for a in st.arps.iter_mut() {
        let n = r.u8() as usize;
        if n > MAX_ARP_NOTES {
            return Err(TransientError::Corrupt("too many arpeggiator notes"));
        }
        a.n = n;
        a.seq = r.u32();
        a.pos = r.u32();
        a.next_step = r.u64();
        a.fire_at = r.u64();
        a.active = r.u8() != 0;
        a.rng = r.u64() | 1;
        a.resync = false;
        for x in a.notes[..n].iter_mut() {
            let pitch = i16::from_le_bytes(r.take());
            let [vel, channel, source, key, held] = r.take::<5>();
            *x = ArpNote {
                pitch,
                vel,
                channel,
                source,
                key,
                held: held != 0,
                seq: r.u32(),
            };
        }
    }
    for m in st.moves.iter_mut() {
        m.running = r.u8() != 0;
        m.fresh = r.u8() != 0;
        m.next_tick = r.u64();
        m.transpose = i16::from_le_bytes(r.take());
        m.clock = r.clock();
        m.resync = false;
        for v in m.voices.iter_mut() {
            *v = VoiceState {
                entry: r.u32(),
                rep: r.u32(),
                pos: r.u32(),
                done: r.u8() != 0,
            };
        }
    }
    Ok(())
}

/// The hot-swap handoff of a [`Bard`], in this layout.
impl Bard {
    /// Writes the transient state (held keys, sounding-note ledger, pending
    /// generated notes, arpeggiator and step-pattern positions, tempo anchor)
    /// into a fixed-size versioned byte layout.
    ///
    /// Thread: the engine thread (between two cycles). Never allocates.
    pub fn save_transient(&self, buf: &mut [u8; TRANSIENT_STATE_BYTES]) {
        save(&self.st, buf);
    }

    /// Restores what [`save_transient`](Self::save_transient) wrote, possibly
    /// from another build; on error nothing changes.
    ///
    /// Thread: the engine thread (between two cycles). Never allocates.
    pub fn restore_transient(
        &mut self,
        buf: &[u8; TRANSIENT_STATE_BYTES],
    ) -> Result<(), crate::TransientError> {
        let mut st = self.st.clone();
        restore(&mut st, buf)?;
        self.st = st;
        self.st.reconcile(&self.cfg, Some(&self.cfg));
        Ok(())
    }
}
