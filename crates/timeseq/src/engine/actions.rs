//! Actions and sequences: running an action, variables, sequence moves and reads, the `rand` generator.

use super::*;

impl Engine {
    #[inline]
    pub(super) fn set_var(&mut self, i: u32, v: f32) {
        self.vars[i as usize] = if v == 0.0 { 0.0 } else { v };
    }

    /// `run_action` with the common unconditional `set-value` inlined.
    #[inline(always)]
    pub(super) fn run_action_inline(&mut self, a: u32) {
        let node = self.p.actions[a as usize];
        if let (None, AKind::SetValue { port, ch, val }) = (node.cond, node.kind) {
            let v = self.eval(val) as f32;
            self.outputs[port as usize & 7][ch as usize & 15] = v;
        } else {
            self.run_action(a);
        }
    }

    pub(super) fn run_action(&mut self, a: u32) {
        let node = self.p.actions[a as usize];
        if let Some(c) = node.cond {
            if !self.eval_if(c) {
                return;
            }
        }
        match node.kind {
            AKind::SetValue { port, ch, val } => {
                let v = self.eval(val) as f32;
                self.outputs[port as usize][ch as usize] = v;
            }
            AKind::SetVar { var, val } => {
                let v = self.eval(val) as f32;
                self.set_var(var, v);
            }
            AKind::SetPoly { port, n } => self.channels[port as usize] = n,
            AKind::SetLabel { port, label } => {
                self.labels[port as usize] = label;
                self.label_events[port as usize] = label;
                self.events_dirty = true;
            }
            AKind::Assert { name, expect, stop } => {
                let start = self.assert_vals.len();
                self.events_dirty = true;
                let ok = self.eval_if_full(expect);
                if ok {
                    self.assert_vals.truncate(start);
                } else {
                    if self.failures.len() < self.failures.capacity() {
                        self.failures.push(AssertFailure {
                            name,
                            expect,
                            vals_start: start as u32,
                            vals_end: self.assert_vals.len() as u32,
                            stop,
                        });
                    } else {
                        self.dropped_events += 1;
                    }
                    if stop {
                        self.stop_requested = true;
                    }
                }
            }
            AKind::Trigger(t) => self.fire(t),
            AKind::MoveDir { pos, dir, wrap } => self.seq_move(pos, dir, wrap),
            AKind::MovePos { pos, p } => {
                let pp = &mut self.p.posprocs[pos as usize];
                pp.has = false;
                let size = self.p.seqs[pp.seq as usize].items.len() as i64;
                pp.pos = if p >= size || p < 0 {
                    (size - 1).max(0)
                } else {
                    p
                };
            }
            AKind::Clear(seq) => self.p.seqs[seq as usize].items.clear(),
            AKind::Add {
                seq,
                val,
                pos,
                constant,
            } => {
                let item = if constant {
                    SeqItem::Const(self.eval(val) as f32)
                } else {
                    SeqItem::Val(val)
                };
                let sd = &mut self.p.seqs[seq as usize];
                if sd.items.len() >= sd.cap {
                    sd.dropped += 1;
                } else if pos > -1 && (pos as usize) < sd.items.len() {
                    sd.items.insert(pos as usize, item);
                } else {
                    sd.items.push(item);
                }
            }
            AKind::Remove { seq, pos } => {
                let sd = &mut self.p.seqs[seq as usize];
                if pos > -1 {
                    if (pos as usize) < sd.items.len() {
                        sd.items.remove(pos as usize);
                    }
                } else {
                    sd.items.pop();
                }
            }
            AKind::Glide { .. } | AKind::Gate { .. } => {}
        }
    }

    pub(super) fn seq_move(&mut self, pos: u32, dir: Dir, wrap: bool) {
        let seq = self.p.posprocs[pos as usize].seq;
        let size = self.p.seqs[seq as usize].items.len() as i64;
        let r = if dir == Dir::Random && size > 0 {
            self.rand_f32(0.0, size as f32)
        } else {
            0.0
        };
        let pp = &mut self.p.posprocs[pos as usize];
        pp.has = false;
        if size > 0 {
            match dir {
                Dir::Forward => pp.pos += 1,
                Dir::Backward => pp.pos -= 1,
                Dir::Random => pp.pos = ((r.floor()) as i64).min(size - 1),
                Dir::None => {}
            }
            if pp.pos < 0 {
                pp.pos = if wrap { size - 1 } else { 0 };
            } else if pp.pos > size - 1 {
                pp.pos = if wrap { 0 } else { size - 1 };
            }
        } else {
            pp.pos = 0;
        }
    }

    pub(super) fn seq_current(&mut self, pos: u32) -> f64 {
        let pp = self.p.posprocs[pos as usize];
        let sd = &self.p.seqs[pp.seq as usize];
        if sd.retrieve_once && pp.has {
            return pp.stored;
        }
        let size = sd.items.len() as i64;
        let v = if size == 0 {
            0.0
        } else {
            let item = if pp.pos >= size - 1 {
                sd.items[(size - 1) as usize]
            } else {
                sd.items[pp.pos as usize]
            };
            match item {
                SeqItem::Const(c) => c as f64,
                SeqItem::Val(v) => {
                    // A value added to a sequence may read that same sequence: the reference
                    // recurses until the stack overflows. We stop at a fixed depth with 0 V.
                    if self.seq_depth >= MAX_SEQ_DEPTH {
                        self.seq_depth_overflows += 1;
                        return 0.0;
                    }
                    self.seq_depth += 1;
                    let r = self.eval(v);
                    self.seq_depth -= 1;
                    r
                }
            }
        };
        let pm = &mut self.p.posprocs[pos as usize];
        pm.stored = v;
        pm.has = true;
        v
    }

    #[inline]
    pub(super) fn next_u64(&mut self) -> u64 {
        next_u64(&mut self.rng)
    }

    #[inline]
    pub(super) fn rand_f32(&mut self, lo: f32, hi: f32) -> f32 {
        rand_f32(&mut self.rng, lo, hi)
    }
}
