//! What the RT part does, apart from the realm, so unit tests drive it:
//! where each event goes, which knob values are reported to the enchanter
//! (and when), and which values of the enchanter's snapshot the MicroFreak
//! is sent. Allocation-free: every table is a fixed array.
//!
//! **Routing.** From the MicroFreak's port (input [`DEVICE_INPUT`]): a
//! parameter CC of the chart on the MicroFreak's channel is a knob
//! ([`FromDevice::Param`]); notes, pressure, pitch bend and the other CCs
//! (Hold, the mod strip) are played ([`FromDevice::Play`], on output 0);
//! program changes (the MicroFreak's own preset choice) and system
//! messages (clock, SysEx, active sensing) go nowhere. From wires (every
//! other input: the bard): MIDI, SysEx and device feedback go to the
//! MicroFreak on output [`DEVICE_OUTPUT`]. The keyboard part plays what is
//! played; the synth part records the knobs and passes the wires on.
//!
//! **Reports.** A knob's newest value is reported at once when the knob
//! has been quiet for [`REPORT_INTERVAL_MS`], else when that time has
//! passed since its previous report: a sweep sends at most one `param` per
//! knob every 20 ms of engine time, and its final value always (a refused
//! send is tried again next block).
//!
//! **Snapshot.** The enchanter's snapshot (the zone's values) is what the
//! MicroFreak should have. The imp knows what the MicroFreak has: what its
//! knobs last sent and what the imp last sent it (not what the bard sent
//! it; a program change, from either side, makes it forget). When the
//! snapshot changes in a way this MicroFreak's own knobs did not cause (a
//! preset recall, another zone selected), and after a (re)connect, every
//! value of the snapshot the MicroFreak does not have is sent, at the
//! start of the next block. A knob being turned owns its parameter: the
//! enchanter's echoes of its own reports (late, in order) are never sent
//! back, until [`KNOB_HOLD_MS`] after its last report; a recall to a value
//! the knob did not pass through takes the parameter back at once.

use crate::chart;
use imp::{event_kind, RtEvent};

/// The input number the MicroFreak's own port delivers on (wires from
/// the bard arrive on input 0).
pub const DEVICE_INPUT: u8 = 1;
/// The synth part's numbered output bound to the MicroFreak's port: the
/// bard's notes and the snapshot's CCs.
pub const DEVICE_OUTPUT: u8 = 0;
/// The keyboard part's numbered output: what is played on the MicroFreak
/// (wire it to the bard).
pub const PLAYED_OUTPUT: u8 = 0;
/// At most one report per knob in this time (engine time).
pub const REPORT_INTERVAL_MS: f64 = 20.0;
/// How long after its last report a knob keeps its parameter.
pub const KNOB_HOLD_MS: f64 = 1000.0;

/// The enchanter's values for one zone, by controller number (`None`: the
/// zone has none for it). A plain value: it crosses to the engine thread
/// through a ring.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Snapshot {
    /// Value per controller number.
    pub values: [Option<u8>; 128],
}

impl Default for Snapshot {
    fn default() -> Self {
        Snapshot {
            values: [None; 128],
        }
    }
}

/// Where an event from the MicroFreak's port went.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum FromDevice {
    /// Played: for the bard (its `port` set to [`PLAYED_OUTPUT`]).
    Play(RtEvent),
    /// A knob: recorded, reported to the enchanter.
    Param {
        /// Controller number.
        cc: u8,
        /// Value.
        value: u8,
    },
    /// Kept here (program change, system message).
    Dropped,
}

/// The RT logic's state.
pub struct Freak {
    /// The MicroFreak's channel, 0..=15.
    channel: u8,
    /// What the MicroFreak has, as far as the imp knows.
    device: [Option<u8>; 128],
    /// The enchanter's newest snapshot.
    desired: Snapshot,
    /// Parameters to compare with the snapshot at the next sync (bit = cc).
    check: u128,
    /// Knob values not reported yet.
    pending: [Option<u8>; 128],
    /// Engine time of each knob's last report.
    reported_at: [Option<u64>; 128],
    /// Parameters a knob owns (bit = cc).
    owned: u128,
    /// Values each owned knob passed through (bit = value): the echoes.
    passed: [u128; 128],
    interval: u64,
    hold: u64,
}

fn bit(cc: u8) -> u128 {
    1u128 << (cc & 0x7F)
}

impl Freak {
    /// A MicroFreak on `channel` (1..=16) at `sample_rate`, just
    /// connected: nothing known of it, so the whole `snapshot` is sent at
    /// the first [`Freak::sync`].
    pub fn new(channel: u8, sample_rate: f64, snapshot: Snapshot) -> Freak {
        let ms = |t: f64| (t * sample_rate / 1000.0).round().max(1.0) as u64;
        Freak {
            channel: channel.clamp(1, 16) - 1,
            device: [None; 128],
            desired: snapshot,
            check: u128::MAX,
            pending: [None; 128],
            reported_at: [None; 128],
            owned: 0,
            passed: [0; 128],
            interval: ms(REPORT_INTERVAL_MS),
            hold: ms(KNOB_HOLD_MS),
        }
    }

    /// One event from the MicroFreak's port.
    pub fn from_device(&mut self, e: &RtEvent) -> FromDevice {
        if e.kind != event_kind::MIDI || e.len == 0 || !(0x80..0xF0).contains(&e.bytes[0]) {
            return FromDevice::Dropped;
        }
        let status = e.bytes[0] & 0xF0;
        let ours = e.bytes[0] & 0x0F == self.channel;
        if status == 0xC0 {
            if ours {
                // Another program: its values are not the ones we knew.
                self.device = [None; 128];
            }
            return FromDevice::Dropped;
        }
        if ours && status == 0xB0 && e.len == 3 && chart::is_param(e.bytes[1]) {
            let (cc, value) = (e.bytes[1], e.bytes[2] & 0x7F);
            let i = cc as usize;
            if self.owned & bit(cc) == 0 {
                self.passed[i] = 0;
            }
            self.owned |= bit(cc);
            self.passed[i] |= bit(value);
            self.device[i] = Some(value);
            self.pending[i] = Some(value);
            return FromDevice::Param { cc, value };
        }
        let mut out = *e;
        out.port = PLAYED_OUTPUT;
        FromDevice::Play(out)
    }

    /// One event from a wire (the bard): what goes to the MicroFreak, if
    /// anything (engine control events stay here).
    pub fn from_wire(&mut self, e: &RtEvent) -> Option<RtEvent> {
        match e.kind {
            event_kind::MIDI | event_kind::SYSEX | event_kind::FEEDBACK => {}
            _ => return None,
        }
        if e.kind == event_kind::MIDI && e.len >= 2 && e.bytes[0] == 0xC0 | self.channel {
            self.device = [None; 128];
        }
        let mut out = *e;
        out.port = DEVICE_OUTPUT;
        Some(out)
    }

    /// Takes the enchanter's newest snapshot.
    pub fn update(&mut self, new: &Snapshot) {
        let mut foreign = false;
        for cc in 0..128u8 {
            let i = cc as usize;
            let (old, now) = (self.desired.values[i], new.values[i]);
            if old == now {
                continue;
            }
            let owned = self.owned & bit(cc) != 0;
            if owned && now.is_some_and(|v| self.passed[i] & bit(v) != 0) {
                // The enchanter's echo of this knob's own report.
                continue;
            }
            // A recall (or another zone) takes the parameter back.
            self.owned &= !bit(cc);
            foreign = true;
        }
        self.desired = *new;
        if foreign {
            self.check = u128::MAX;
        }
    }

    /// Reports knob values due at engine time `now` with `send(cc,
    /// value)`, which returns false when the message could not go (it is
    /// tried again at the next call).
    pub fn report(&mut self, now: u64, mut send: impl FnMut(u8, u8) -> bool) {
        for cc in 0..128u8 {
            let i = cc as usize;
            let Some(value) = self.pending[i] else {
                continue;
            };
            if self.reported_at[i].is_some_and(|t| now < t + self.interval) {
                continue;
            }
            if !send(cc, value) {
                return;
            }
            self.pending[i] = None;
            self.reported_at[i] = Some(now);
        }
    }

    /// Sends the MicroFreak, with `push(bytes)` (false: no room, tried
    /// again at the next call), the snapshot's values it does not have,
    /// where a check is due and no knob owns the parameter; ends the
    /// ownership of knobs quiet since [`KNOB_HOLD_MS`] at `now`.
    pub fn sync(&mut self, now: u64, mut push: impl FnMut([u8; 3]) -> bool) {
        for cc in 0..128u8 {
            let i = cc as usize;
            let quiet = self.pending[i].is_none()
                && self.reported_at[i].is_none_or(|t| now >= t + self.hold);
            if self.owned & bit(cc) != 0 && quiet {
                self.owned &= !bit(cc);
                self.check |= bit(cc);
            }
        }
        if self.check == 0 {
            return;
        }
        for cc in 0..128u8 {
            let i = cc as usize;
            if self.check & bit(cc) == 0 {
                continue;
            }
            if self.owned & bit(cc) != 0 {
                // Checked again when the knob lets go.
                self.check &= !bit(cc);
                continue;
            }
            match self.desired.values[i] {
                Some(v) if self.device[i] != Some(v) => {
                    if !push([0xB0 | self.channel, cc, v]) {
                        return;
                    }
                    self.device[i] = Some(v);
                }
                _ => {}
            }
            self.check &= !bit(cc);
        }
    }

    /// Knob values waiting to be reported.
    pub fn waiting(&self) -> usize {
        self.pending.iter().filter(|p| p.is_some()).count()
    }

    /// Writes what a successor (a new build, during a respawn) needs to go
    /// on where this one is: what the MicroFreak has, the knobs' reports
    /// and who owns what. Returns false when `buf` is too small.
    pub fn save(&self, buf: &mut [u8]) -> bool {
        if buf.len() < TRANSIENT_LEN {
            return false;
        }
        buf[..4].copy_from_slice(&TRANSIENT_MAGIC);
        buf[4] = self.channel;
        for i in 0..128 {
            buf[8 + i] = self.device[i].unwrap_or(NONE);
            buf[136 + i] = self.pending[i].unwrap_or(NONE);
            let at = self.reported_at[i].map_or(u64::MAX, |t| t);
            buf[264 + 8 * i..272 + 8 * i].copy_from_slice(&at.to_le_bytes());
            buf[1288 + 16 * i..1304 + 16 * i].copy_from_slice(&self.passed[i].to_le_bytes());
        }
        buf[3336..3352].copy_from_slice(&self.owned.to_le_bytes());
        true
    }

    /// Takes over what a predecessor [`save`](Self::save)d; false (and
    /// nothing taken) when the bytes are not this layout or were saved for
    /// another channel. The snapshot is still checked at the next sync:
    /// what changed meanwhile is sent, nothing else.
    pub fn restore(&mut self, buf: &[u8]) -> bool {
        if buf.len() < TRANSIENT_LEN || buf[..4] != TRANSIENT_MAGIC || buf[4] != self.channel {
            return false;
        }
        let byte = |b: u8| (b != NONE).then_some(b & 0x7F);
        for i in 0..128 {
            self.device[i] = byte(buf[8 + i]);
            self.pending[i] = byte(buf[136 + i]);
            let mut at = [0u8; 8];
            at.copy_from_slice(&buf[264 + 8 * i..272 + 8 * i]);
            let at = u64::from_le_bytes(at);
            self.reported_at[i] = (at != u64::MAX).then_some(at);
            let mut passed = [0u8; 16];
            passed.copy_from_slice(&buf[1288 + 16 * i..1304 + 16 * i]);
            self.passed[i] = u128::from_le_bytes(passed);
        }
        let mut owned = [0u8; 16];
        owned.copy_from_slice(&buf[3336..3352]);
        self.owned = u128::from_le_bytes(owned);
        true
    }
}

/// Marks the transient layout of [`Freak::save`].
const TRANSIENT_MAGIC: [u8; 4] = *b"MFk\x01";
/// Bytes [`Freak::save`] writes.
pub const TRANSIENT_LEN: usize = 3352;
/// "No value" in the transient bytes.
const NONE: u8 = 0xFF;

#[cfg(test)]
mod tests {
    use super::*;

    const RATE: f64 = 48_000.0;
    const MS: u64 = 48;

    fn cc(c: u8, v: u8) -> RtEvent {
        let mut e = RtEvent::midi(0, &[0xB0, c, v]);
        e.port = DEVICE_INPUT;
        e
    }

    fn snapshot(values: &[(u8, u8)]) -> Snapshot {
        let mut s = Snapshot::default();
        for &(c, v) in values {
            s.values[c as usize] = Some(v);
        }
        s
    }

    fn reports(f: &mut Freak, now: u64) -> Vec<(u8, u8)> {
        let mut v = Vec::new();
        f.report(now, |c, x| {
            v.push((c, x));
            true
        });
        v
    }

    fn synced(f: &mut Freak, now: u64) -> Vec<[u8; 3]> {
        let mut v = Vec::new();
        f.sync(now, |b| {
            v.push(b);
            true
        });
        v
    }

    #[test]
    fn notes_go_to_the_bard_and_knobs_are_recorded() {
        let mut f = Freak::new(1, RATE, Snapshot::default());
        let mut on = RtEvent::midi(3, &[0x90, 60, 100]);
        on.port = DEVICE_INPUT;
        let FromDevice::Play(out) = f.from_device(&on) else {
            panic!()
        };
        assert_eq!(
            (out.port, out.bytes, out.frame),
            (PLAYED_OUTPUT, [0x90, 60, 100], 3)
        );
        assert_eq!(
            f.from_device(&cc(23, 64)),
            FromDevice::Param { cc: 23, value: 64 }
        );
        // Hold and the mod strip play; a knob on another channel too.
        assert!(matches!(f.from_device(&cc(64, 127)), FromDevice::Play(_)));
        assert!(matches!(f.from_device(&cc(1, 5)), FromDevice::Play(_)));
        let mut other = cc(23, 1);
        other.bytes[0] = 0xB1;
        assert!(matches!(f.from_device(&other), FromDevice::Play(_)));
        // Program change, clock: not for the bard.
        assert_eq!(
            f.from_device(&RtEvent::midi(0, &[0xC0, 3])),
            FromDevice::Dropped
        );
        assert_eq!(
            f.from_device(&RtEvent::midi(0, &[0xF8])),
            FromDevice::Dropped
        );
    }

    #[test]
    fn the_bards_events_go_to_the_device_only() {
        let mut f = Freak::new(1, RATE, Snapshot::default());
        let on = RtEvent::midi(7, &[0x90, 60, 100]);
        let out = f.from_wire(&on).unwrap();
        assert_eq!(
            (out.port, out.bytes, out.frame),
            (DEVICE_OUTPUT, [0x90, 60, 100], 7)
        );
        let tempo = RtEvent {
            kind: event_kind::TEMPO,
            value: 90.0,
            ..RtEvent::default()
        };
        assert_eq!(f.from_wire(&tempo), None);
    }

    #[test]
    fn a_sweep_is_reported_every_20_ms_and_its_last_value_always() {
        let mut f = Freak::new(1, RATE, Snapshot::default());
        f.from_device(&cc(23, 10));
        assert_eq!(reports(&mut f, 0), vec![(23, 10)], "the first at once");
        let mut got = Vec::new();
        // One value per millisecond for 50 ms, reported as blocks pass.
        for t in 1..=50u64 {
            f.from_device(&cc(23, 10 + t as u8));
            got.extend(reports(&mut f, t * MS));
        }
        assert_eq!(got, vec![(23, 30), (23, 50)], "at 20 and 40 ms");
        f.from_device(&cc(23, 99));
        assert!(reports(&mut f, 55 * MS).is_empty(), "too soon");
        assert_eq!(reports(&mut f, 60 * MS), vec![(23, 99)], "the final one");
        assert!(reports(&mut f, 200 * MS).is_empty());
        // A refused send is tried again.
        f.from_device(&cc(83, 5));
        f.report(300 * MS, |_, _| false);
        assert_eq!(f.waiting(), 1);
        assert_eq!(reports(&mut f, 301 * MS), vec![(83, 5)]);
    }

    #[test]
    fn a_new_connection_gets_the_whole_snapshot_then_only_changes() {
        let s = snapshot(&[(23, 64), (83, 10)]);
        let mut f = Freak::new(2, RATE, s);
        assert_eq!(synced(&mut f, 0), vec![[0xB1, 23, 64], [0xB1, 83, 10]]);
        assert!(synced(&mut f, MS).is_empty());
        // A recall: only what differs goes.
        f.update(&snapshot(&[(23, 64), (83, 20), (5, 0)]));
        assert_eq!(synced(&mut f, 2 * MS), vec![[0xB1, 5, 0], [0xB1, 83, 20]]);
        // No room: tried again.
        f.update(&snapshot(&[(23, 1)]));
        f.sync(3 * MS, |_| false);
        assert_eq!(synced(&mut f, 4 * MS), vec![[0xB1, 23, 1]]);
    }

    #[test]
    fn a_turned_knob_is_not_sent_its_own_echoes() {
        let mut f = Freak::new(1, RATE, snapshot(&[(23, 0)]));
        synced(&mut f, 0);
        // The knob sweeps 40, 50, 40; the enchanter's echoes come late, in
        // order, while the knob still owns the parameter.
        for (t, v) in [(1, 40), (30, 50), (60, 40)] {
            f.from_device(&cc(23, v));
            reports(&mut f, t * MS);
        }
        for v in [40, 50, 40] {
            f.update(&snapshot(&[(23, v)]));
            assert!(synced(&mut f, 70 * MS).is_empty(), "echo {v} not sent");
        }
        // Quiet for a second: the snapshot and the knob agree; nothing.
        assert!(synced(&mut f, 1100 * MS).is_empty());
        // A recall to a value the knob never passed: sent at once.
        f.from_device(&cc(23, 41));
        reports(&mut f, 1200 * MS);
        f.update(&snapshot(&[(23, 7)]));
        assert_eq!(synced(&mut f, 1201 * MS), vec![[0xB0, 23, 7]]);
    }

    #[test]
    fn a_refused_report_snaps_back_after_the_hold() {
        let mut f = Freak::new(1, RATE, snapshot(&[(23, 5)]));
        synced(&mut f, 0);
        f.from_device(&cc(23, 90));
        reports(&mut f, MS);
        // The enchanter never confirms 90: after the hold the zone's value
        // is the truth again.
        assert!(synced(&mut f, 500 * MS).is_empty());
        assert_eq!(synced(&mut f, 1001 * MS + MS), vec![[0xB0, 23, 5]]);
    }

    #[test]
    fn a_successor_goes_on_where_its_predecessor_was() {
        let s = snapshot(&[(23, 5), (83, 6)]);
        let mut old = Freak::new(1, RATE, s);
        synced(&mut old, 0);
        old.from_device(&cc(9, 40));
        reports(&mut old, MS);
        old.from_device(&cc(9, 41));
        let mut buf = [0u8; TRANSIENT_LEN];
        assert!(old.save(&mut buf));
        let mut new = Freak::new(1, RATE, s);
        assert!(new.restore(&buf));
        assert!(synced(&mut new, 2 * MS).is_empty(), "nothing sent again");
        assert_eq!(
            reports(&mut new, 30 * MS),
            vec![(9, 41)],
            "the pending value"
        );
        // The echo of the predecessor's report is still an echo.
        new.update(&snapshot(&[(23, 5), (83, 6), (9, 40)]));
        assert!(synced(&mut new, 31 * MS).is_empty());
        // Another layout or channel: refused, the successor starts afresh.
        assert!(!Freak::new(2, RATE, s).restore(&buf));
        buf[0] = 0;
        assert!(!Freak::new(1, RATE, s).restore(&buf));
        assert!(!old.save(&mut [0u8; 16]));
    }

    #[test]
    fn own_knob_changes_do_not_push_the_rest_of_the_snapshot() {
        let mut f = Freak::new(1, RATE, snapshot(&[(23, 5), (83, 6)]));
        synced(&mut f, 0);
        // A program chosen on the MicroFreak: its values are unknown now,
        // but turning one knob must not push the others back.
        f.from_device(&RtEvent::midi(0, &[0xC0, 9]));
        f.from_device(&cc(23, 70));
        reports(&mut f, MS);
        f.update(&snapshot(&[(23, 70), (83, 6)]));
        assert!(synced(&mut f, 2 * MS).is_empty());
        assert!(synced(&mut f, 2000 * MS).is_empty());
        // A recall then sends the whole snapshot it does not know the
        // device to have.
        f.update(&snapshot(&[(23, 5), (83, 6)]));
        assert_eq!(
            synced(&mut f, 2001 * MS),
            vec![[0xB0, 23, 5], [0xB0, 83, 6]]
        );
    }
}
