//! Evaluation: values, calcs and ifs.

use super::*;

impl Engine {
    #[inline(always)]
    pub(crate) fn eval(&mut self, id: u32) -> f64 {
        let n = &self.p.values[id as usize];
        if n.calc_start == n.calc_end && !n.quantize {
            // Plain sources without calcs: the common case.
            match n.src {
                VSrc::Const(x) => return x as f64,
                VSrc::Var(i) => return self.vars[i as usize] as f64,
                VSrc::Input(p, c) => return self.inputs[p as usize][c as usize] as f64,
                VSrc::Output(p, c) => return self.outputs[p as usize][c as usize] as f64,
                VSrc::RandConst(lo, hi) => return self.rand_f32(lo, hi) as f64,
                _ => {}
            }
        }
        self.eval_full(id)
    }

    #[inline(never)]
    pub(super) fn eval_full(&mut self, id: u32) -> f64 {
        let n = self.p.values[id as usize];
        let mut v = match n.src {
            VSrc::Const(x) => x as f64,
            VSrc::Var(i) => self.vars[i as usize] as f64,
            VSrc::Input(p, c) => self.inputs[p as usize][c as usize] as f64,
            VSrc::Output(p, c) => self.outputs[p as usize][c as usize] as f64,
            VSrc::Rand(l, h) => {
                let lo = self.eval(l) as f32;
                let hi = self.eval(h) as f32;
                self.rand_f32(lo, hi) as f64
            }
            VSrc::RandConst(lo, hi) => self.rand_f32(lo, hi) as f64,
            VSrc::Seq {
                pos,
                before,
                after,
                wrap,
            } => {
                if before != Dir::None {
                    self.seq_move(pos, before, wrap);
                }
                let v = self.seq_current(pos);
                if after != Dir::None {
                    self.seq_move(pos, after, wrap);
                }
                v
            }
        };
        for c in n.calc_start..n.calc_end {
            v = self.calc(c, v);
        }
        if n.quantize {
            v = quantize_semitone(v);
        }
        v
    }

    pub(super) fn calc(&mut self, c: u32, v: f64) -> f64 {
        match self.p.calcs[c as usize] {
            CNode::Bin(op, val) => {
                let cv = self.eval(val);
                match op {
                    BinOp::Add => v + cv,
                    BinOp::Sub => v - cv,
                    BinOp::Mult => v * cv,
                    BinOp::Div => {
                        if cv != 0.0 {
                            v / cv
                        } else {
                            0.0
                        }
                    }
                    BinOp::Max => {
                        if v > cv {
                            v
                        } else {
                            cv
                        }
                    }
                    BinOp::Min => {
                        if v < cv {
                            v
                        } else {
                            cv
                        }
                    }
                    BinOp::Remain => {
                        if cv != 0.0 {
                            v % cv
                        } else {
                            0.0
                        }
                    }
                }
            }
            CNode::Trunc => v.trunc(),
            CNode::Frac => {
                if v.is_infinite() {
                    0.0f64.copysign(v)
                } else {
                    (v - v.trunc()).copysign(v)
                }
            }
            CNode::Round(k) => match k {
                RoundKind::Up => v.ceil(),
                RoundKind::Down => v.floor(),
                RoundKind::Near => v.round(),
            },
            CNode::Sign(pos) => {
                if (pos && v < 0.0) || (!pos && v > 0.0) {
                    -v
                } else {
                    v
                }
            }
            CNode::Vtof => 2f64.powf(v) * (261.6256f32 as f64),
            CNode::Quant(s, e) => {
                let x = v as f32;
                let mut integral = x.trunc();
                let mut fract = if x.is_infinite() {
                    0.0f32.copysign(x)
                } else {
                    (x - integral).copysign(x)
                };
                if fract < 0.0 {
                    fract += 1.0;
                    integral -= 1.0;
                }
                for i in s..e {
                    let q = self.p.qtab[i as usize];
                    if fract < q[0] {
                        return (integral + q[1]) as f64;
                    }
                }
                v
            }
        }
    }

    pub(super) fn eval_if(&mut self, id: u32) -> bool {
        match self.p.ifs[id as usize] {
            INode::Cmp { op, a, b, tol } => {
                let x = self.eval(a);
                let y = self.eval(b);
                cmp(op, x, y, tol)
            }
            INode::Logic { and, start, end } => {
                for i in start..end {
                    let c = self.p.if_children[i as usize];
                    let r = self.eval_if(c);
                    if and && !r {
                        return false;
                    }
                    if !and && r {
                        return true;
                    }
                }
                and
            }
        }
    }

    /// Assert evaluation: no short-circuit, leaf values recorded (deviation b).
    pub(super) fn eval_if_full(&mut self, id: u32) -> bool {
        match self.p.ifs[id as usize] {
            INode::Cmp { op, a, b, tol } => {
                let x = self.eval(a);
                let y = self.eval(b);
                if self.assert_vals.len() + 2 <= self.assert_vals.capacity() {
                    self.assert_vals.push(x);
                    self.assert_vals.push(y);
                }
                cmp(op, x, y, tol)
            }
            INode::Logic { and, start, end } => {
                let mut result = and;
                for i in start..end {
                    let c = self.p.if_children[i as usize];
                    let r = self.eval_if_full(c);
                    if and && !r {
                        result = false;
                    }
                    if !and && r {
                        result = true;
                    }
                }
                result
            }
        }
    }
}
