//! Channel messages that are not notes (pedals, control changes, pitch
//! bend, pressure, program change) follow the zones their channel's notes
//! go through.
//!
//! A message from source `s` on channel `c` goes to every zone that takes
//! notes from `s` on `c` (note range and velocity window do not matter),
//! on that zone's output and `out_channel`; two zones with the same
//! destination get it once. A zone with `controllers = false` opts out. A
//! message that no zone takes from its source and channel, and every
//! system message, goes unchanged to `thru_output`.
//!
//! The holding pedals (sustain CC 64, sostenuto CC 66) and the soft pedal
//! (CC 67) are remembered per destination while they are down. When a
//! configuration change moves a zone's destination or removes the zone, the
//! old destination gets its pedal lifted and the new one gets it pressed,
//! at the start of the next block; [`PedalBook::lift_all`] lifts every
//! pedal (all notes off).

use crate::event::{EventSink, NoteEvent};
use crate::prepare::PreparedConfig;

/// Pedals that are remembered while down.
const PEDALS: [u8; 3] = [64, 66, 67];

/// Pedal destinations remembered at once; beyond this a pedal still goes
/// out, but is not lifted on a configuration change.
pub(crate) const MAX_HELD_PEDALS: usize = 64;

/// Most distinct destinations one message can have (one per zone).
const MAX_DESTINATIONS: usize = crate::limits::MAX_ZONES;

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct HeldPedal {
    source: u8,
    in_channel: u8,
    cc: u8,
    value: u8,
    output: u8,
    out_channel: u8,
}

/// Pedals that are down, per destination. Fixed size; no allocation.
#[derive(Clone, Debug)]
pub(crate) struct PedalBook {
    items: [HeldPedal; MAX_HELD_PEDALS],
    len: usize,
    /// The configuration changed: destinations are checked at the next block.
    pub dirty: bool,
}

impl Default for PedalBook {
    fn default() -> Self {
        PedalBook {
            items: [HeldPedal::default(); MAX_HELD_PEDALS],
            len: 0,
            dirty: false,
        }
    }
}

/// The destinations (output, 0-based channel) of a channel message from
/// `source` on `channel`, written into `out`; returns (how many, whether any
/// zone takes notes from there at all).
fn destinations(
    cfg: &PreparedConfig,
    source: u8,
    channel: u8,
    out: &mut [(u8, u8); MAX_DESTINATIONS],
) -> (usize, bool) {
    let mut n = 0;
    let mut taken = false;
    for zone in &cfg.zones {
        // A movement-only zone (`notes = false`) takes nothing played.
        let matches = zone.notes
            && zone.source.is_none_or(|s| s == source)
            && zone.channel.is_none_or(|c| c == channel);
        if !matches {
            continue;
        }
        taken = true;
        if !zone.controllers {
            continue;
        }
        let dest = (zone.output, zone.out_channel.unwrap_or(channel));
        if !out[..n].contains(&dest) && n < out.len() {
            out[n] = dest;
            n += 1;
        }
    }
    (n, taken)
}

fn cc(frame: u32, output: u8, channel: u8, number: u8, value: u8) -> NoteEvent {
    NoteEvent {
        frame,
        port: output,
        bytes: [0xB0 | channel, number, value],
        len: 3,
    }
}

impl PedalBook {
    fn find(&self, p: &HeldPedal) -> Option<usize> {
        self.items[..self.len]
            .iter()
            .position(|h| h.cc == p.cc && h.output == p.output && h.out_channel == p.out_channel)
    }

    fn remove(&mut self, i: usize) {
        self.len -= 1;
        self.items[i] = self.items[self.len];
    }

    fn note(&mut self, p: HeldPedal) {
        match (self.find(&p), p.value >= 64) {
            (Some(i), true) => self.items[i] = p,
            (Some(i), false) => self.remove(i),
            (None, true) if self.len < MAX_HELD_PEDALS => {
                self.items[self.len] = p;
                self.len += 1;
            }
            _ => {}
        }
    }

    /// Routes one non-note message (see the module docs). Engine thread;
    /// allocation-free.
    pub fn route(
        &mut self,
        cfg: &PreparedConfig,
        ev: &NoteEvent,
        frame: u32,
        sink: &mut impl EventSink,
    ) {
        let status = ev.bytes[0];
        let is_channel_message = (0x80..0xF0).contains(&status);
        let mut dests = [(0u8, 0u8); MAX_DESTINATIONS];
        let channel = status & 0x0F;
        let (n, taken) = if is_channel_message {
            destinations(cfg, ev.port, channel, &mut dests)
        } else {
            (0, false)
        };
        if !taken {
            sink.push(NoteEvent {
                frame,
                port: cfg.thru_output,
                ..*ev
            });
            return;
        }
        let pedal = status & 0xF0 == 0xB0 && ev.len == 3 && PEDALS.contains(&ev.bytes[1]);
        for &(output, out_channel) in &dests[..n] {
            let mut bytes = ev.bytes;
            bytes[0] = status & 0xF0 | out_channel;
            if !sink.push(NoteEvent {
                frame,
                port: output,
                bytes,
                ..*ev
            }) {
                continue;
            }
            if pedal {
                self.note(HeldPedal {
                    source: ev.port,
                    in_channel: channel,
                    cc: ev.bytes[1],
                    value: ev.bytes[2],
                    output,
                    out_channel,
                });
            }
        }
    }

    /// After a configuration change: lifts each held pedal on a destination
    /// its input no longer reaches, and presses it on the new ones. Keeps
    /// `dirty` set when the sink had no room. Engine thread; allocation-free.
    pub fn follow_config(&mut self, cfg: &PreparedConfig, frame: u32, sink: &mut impl EventSink) {
        if !self.dirty {
            return;
        }
        let mut dests = [(0u8, 0u8); MAX_DESTINATIONS];
        // Lift where the input no longer goes.
        let mut i = 0;
        while i < self.len {
            let p = self.items[i];
            let (n, _) = destinations(cfg, p.source, p.in_channel, &mut dests);
            if dests[..n].contains(&(p.output, p.out_channel)) {
                i += 1;
                continue;
            }
            if sink.remaining() == 0 {
                return;
            }
            sink.push(cc(frame, p.output, p.out_channel, p.cc, 0));
            self.remove(i);
        }
        // Press where it now goes too.
        let mut i = 0;
        while i < self.len {
            let p = self.items[i];
            let (n, _) = destinations(cfg, p.source, p.in_channel, &mut dests);
            for &(output, out_channel) in &dests[..n] {
                let moved = HeldPedal {
                    output,
                    out_channel,
                    ..p
                };
                if self.find(&moved).is_none() && self.len < MAX_HELD_PEDALS {
                    if sink.remaining() == 0 {
                        return;
                    }
                    sink.push(cc(frame, output, out_channel, p.cc, p.value));
                    self.note(moved);
                }
            }
            i += 1;
        }
        self.dirty = false;
    }

    /// Lifts every held pedal (all notes off). Engine thread; allocation-free.
    pub fn lift_all(&mut self, frame: u32, sink: &mut impl EventSink) {
        while self.len > 0 && sink.remaining() > 0 {
            let p = self.items[self.len - 1];
            sink.push(cc(frame, p.output, p.out_channel, p.cc, 0));
            self.len -= 1;
        }
    }
}
