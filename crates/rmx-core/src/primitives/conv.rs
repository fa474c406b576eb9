//! `Convolution`: channels-last convolution of an input `[N, ...spatial, C_in]` with a
//! weight `[C_out, ...kernel, C_in / groups]` (see `backend::ConvParams` for the index
//! rule). Both derivatives are convolutions again: the input's with the output cotangent
//! dilated by the stride and the weight flipped and transposed per group; the weight's
//! with batch and channels swapped, the cotangent acting as the kernel.

use super::batching::{to_front, Batched};
use super::one;
use crate::array::{Array, ArrayData};
use crate::backend::{Backend, ConvParams};
use crate::error::Result;
use crate::ops;
use crate::primitive::{OutputSpec, Primitive};
use crate::shape::Shape;
use std::sync::Arc;

#[derive(Debug, PartialEq, Clone)]
pub struct Convolution(pub ConvParams);

/// `[a, b, c, ...]` as i64 axes for transposes.
fn perm(v: &[usize]) -> Vec<i64> {
    v.iter().map(|&a| a as i64).collect()
}

fn dims(s: &[usize]) -> Vec<i64> {
    s.iter().map(|&a| a as i64).collect()
}

impl Convolution {
    /// A node of this convolution with an explicit output shape.
    pub fn node(&self, x: &Array, w: &Array, out_shape: Shape) -> Array {
        Array::from_op(
            out_shape,
            x.dtype(),
            Arc::new(self.clone()),
            vec![x.clone(), w.clone()],
        )
    }

    fn nsp(&self) -> usize {
        self.0.stride.len()
    }

    /// The cotangent of the input: `ct` (`[N, ...T, C_out]`) dilated by the stride,
    /// correlated with the per-group transposed weight, flipped, read every
    /// `input_dilation` positions from `pad_lo` on.
    fn input_grad(&self, x: &Array, w: &Array, ct: &Array) -> Result<Array> {
        let p = &self.0;
        let nsp = self.nsp();
        let nd = nsp + 2;
        let (cout, cig, g) = (w.shape()[0], w.shape()[nd - 1], p.groups);
        let cog = cout / g;
        // [C_out, K.., C_ig] -> [G, C_og, K.., C_ig] -> [G, C_ig, K.., C_og] -> [C_in, K.., C_og]
        let mut split = vec![g as i64, cog as i64];
        split.extend(dims(&w.shape()[1..]));
        let wg = ops::reshape(w, &split)?;
        let mut order = vec![0, nd];
        order.extend(2..nd);
        order.push(1);
        let wt = ops::transpose(&wg, Some(&perm(&order)))?;
        let mut merged = vec![(g * cig) as i64];
        merged.extend(dims(&w.shape()[1..nd - 1]));
        merged.push(cog as i64);
        let wt = ops::reshape(&wt, &merged)?;
        let mut pad_lo = Vec::with_capacity(nsp);
        let mut pad_hi = Vec::with_capacity(nsp);
        for d in 0..nsp {
            let (l, k, t) = (
                x.shape()[1 + d] as i64,
                w.shape()[1 + d] as i64,
                ct.shape()[1 + d] as i64,
            );
            let (s, kd, id) = (
                p.stride[d] as i64,
                p.kernel_dilation[d] as i64,
                p.input_dilation[d] as i64,
            );
            pad_lo.push((k - 1) * kd - p.pad_lo[d]);
            pad_hi.push((l - 1) * id + p.pad_lo[d] - (t - 1) * s);
        }
        let prim = Convolution(ConvParams {
            stride: p.input_dilation.clone(),
            pad_lo,
            pad_hi,
            kernel_dilation: p.kernel_dilation.clone(),
            input_dilation: p.stride.clone(),
            groups: g,
            flip: !p.flip,
        });
        Ok(prim.node(ct, &wt, x.shape().into()))
    }

    /// The cotangent of the weight: the input with batch and channels swapped
    /// (`[C_ig, ...spatial, G * N]`) convolved with the cotangent as a kernel
    /// (`[C_out, ...T, N]`, groups G), stride and kernel dilation exchanged.
    fn weight_grad(&self, x: &Array, w: &Array, ct: &Array) -> Result<Array> {
        let p = &self.0;
        let nsp = self.nsp();
        let nd = nsp + 2;
        let (n, g, cig) = (x.shape()[0], p.groups, w.shape()[nd - 1]);
        // [N, L.., C_in] -> [N, L.., G, C_ig] -> [C_ig, L.., G, N] -> [C_ig, L.., G * N]
        let mut split = dims(&x.shape()[..nd - 1]);
        split.extend([g as i64, cig as i64]);
        let xs = ops::reshape(x, &split)?;
        let mut order = vec![nd];
        order.extend(1..nd);
        order.push(0);
        let xs = ops::transpose(&xs, Some(&perm(&order)))?;
        let mut merged = vec![cig as i64];
        merged.extend(dims(&x.shape()[1..nd - 1]));
        merged.push((g * n) as i64);
        let xs = ops::reshape(&xs, &merged)?;
        // [N, T.., C_out] -> [C_out, T.., N]
        let mut corder = vec![nd - 1];
        corder.extend(1..nd - 1);
        corder.push(0);
        let cts = ops::transpose(ct, Some(&perm(&corder)))?;
        let mut pad_hi = Vec::with_capacity(nsp);
        for d in 0..nsp {
            let (l, k, t) = (
                x.shape()[1 + d] as i64,
                w.shape()[1 + d] as i64,
                ct.shape()[1 + d] as i64,
            );
            let (s, kd, id) = (
                p.stride[d] as i64,
                p.kernel_dilation[d] as i64,
                p.input_dilation[d] as i64,
            );
            pad_hi.push((k - 1) * kd + (t - 1) * s + 1 - ((l - 1) * id + 1) - p.pad_lo[d]);
        }
        let prim = Convolution(ConvParams {
            stride: p.kernel_dilation.clone(),
            pad_lo: p.pad_lo.clone(),
            pad_hi,
            kernel_dilation: p.stride.clone(),
            input_dilation: p.input_dilation.clone(),
            groups: g,
            flip: false,
        });
        // [C_ig, K.., C_out] -> [C_out, K.., C_ig], taps reversed back for a flipped kernel
        let mut shape: Shape = Shape::with_capacity(nd);
        shape.push(cig);
        shape.extend_from_slice(&w.shape()[1..nd - 1]);
        shape.push(w.shape()[0]);
        let gw = prim.node(&xs, &cts, shape);
        let mut back = vec![nd - 1];
        back.extend(1..nd - 1);
        back.push(0);
        let gw = ops::transpose(&gw, Some(&perm(&back)))?;
        if p.flip {
            let axes: Vec<i64> = (1..nd as i64 - 1).collect();
            return ops::flip(&gw, Some(&axes));
        }
        Ok(gw)
    }
}

impl Primitive for Convolution {
    fn name(&self) -> &'static str {
        "Convolution"
    }
    fn eval(
        &self,
        b: &dyn Backend,
        inputs: &[ArrayData],
        out: &[OutputSpec],
    ) -> Result<Vec<ArrayData>> {
        one(b.conv(&inputs[0], &inputs[1], &self.0, &out[0].shape)?)
    }
    fn vjp(
        &self,
        p: &[Array],
        ct: &[Array],
        argnums: &[usize],
        _o: &[Array],
    ) -> Result<Vec<Array>> {
        let (x, w, c) = (&p[0], &p[1], &ct[0]);
        argnums
            .iter()
            .map(|&a| {
                if c.size() == 0 || x.size() == 0 || w.size() == 0 {
                    return ops::zeros_like(&p[a]);
                }
                if a == 0 {
                    self.input_grad(x, w, c)
                } else {
                    self.weight_grad(x, w, c)
                }
            })
            .collect()
    }
    /// Linear in each argument: the tangents pass through the same convolution.
    fn jvp(
        &self,
        p: &[Array],
        t: &[Array],
        argnums: &[usize],
        out: &[Array],
    ) -> Result<Vec<Array>> {
        let shape: Shape = out[0].shape().into();
        let mut acc: Option<Array> = None;
        for (i, &a) in argnums.iter().enumerate() {
            let term = if a == 0 {
                self.node(&t[i], &p[1], shape.clone())
            } else {
                self.node(&p[0], &t[i], shape.clone())
            };
            acc = Some(match acc {
                None => term,
                Some(s) => ops::add(&s, &term)?,
            });
        }
        match acc {
            Some(a) => Ok(vec![a]),
            None => Ok(vec![ops::zeros_like(&out[0])?]),
        }
    }
    /// A batched input folds the batch into N; a batched weight folds it into the groups
    /// (the input's channels repeated per batch element, or interleaved when it is batched too).
    fn vmap(
        &self,
        inputs: &[Array],
        axes: &[Option<usize>],
        out: &[OutputSpec],
    ) -> Result<Batched> {
        let (x, w) = (&inputs[0], &inputs[1]);
        let nd = self.nsp() + 2;
        let os = &out[0].shape;
        match (axes[0], axes[1]) {
            (None, None) => Ok((vec![self.node(x, w, os.clone())], vec![None])),
            (Some(ax), None) => {
                let xb = to_front(x, Some(ax))?;
                let b = xb.shape()[0];
                let mut folded = vec![(b * xb.shape()[1]) as i64];
                folded.extend(dims(&xb.shape()[2..]));
                let xf = ops::reshape(&xb, &folded)?;
                let mut fo: Shape = os.clone();
                fo[0] *= b;
                let y = self.node(&xf, w, fo);
                let mut unfolded = vec![b as i64, os[0] as i64];
                unfolded.extend(dims(&os[1..]));
                Ok((vec![ops::reshape(&y, &unfolded)?], vec![Some(0)]))
            }
            (xa, Some(wa)) => {
                let wb = to_front(w, Some(wa))?;
                let b = wb.shape()[0];
                let cin = match xa {
                    Some(a) => x.shape()[if a < nd { nd } else { nd - 1 }],
                    None => x.shape()[nd - 1],
                };
                // input channels laid out [B, C_in]
                let xc = match xa {
                    None => {
                        let xe = ops::expand_dims(x, &[nd as i64 - 1])?;
                        let mut full = x.shape()[..nd - 1].to_vec();
                        full.extend([b, cin]);
                        ops::broadcast_to(&xe, &full)?
                    }
                    Some(a) => ops::moveaxis(x, a as i64, nd as i64 - 1)?,
                };
                let mut merged = dims(&xc.shape()[..nd - 1]);
                merged.push((b * cin) as i64);
                let xf = ops::reshape(&xc, &merged)?;
                let mut wm = vec![(b * wb.shape()[1]) as i64];
                wm.extend(dims(&wb.shape()[2..]));
                let wf = ops::reshape(&wb, &wm)?;
                let prim = Convolution(ConvParams {
                    groups: self.0.groups * b,
                    ..self.0.clone()
                });
                let cout = os[nd - 1];
                let mut fo: Shape = os.clone();
                fo[nd - 1] = b * cout;
                let y = prim.node(&xf, &wf, fo);
                let mut split = dims(&os[..nd - 1]);
                split.extend([b as i64, cout as i64]);
                Ok((vec![ops::reshape(&y, &split)?], vec![Some(nd - 1)]))
            }
        }
    }
    crate::primitive_common!();
}
