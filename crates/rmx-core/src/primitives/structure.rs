//! Primitives that assemble new buffers from pieces: `Copy` (contiguous), `Concatenate`,
//! `Pad`, `SliceUpdate`.

use super::batching::{self, Batched};
use super::one;
use crate::array::{Array, ArrayData};
use crate::backend::Backend;
use crate::element::Scalar;
use crate::error::Result;
use crate::ops;
use crate::primitive::{OutputSpec, Primitive};
use crate::shape::Strides;

/// A row-contiguous copy.
#[derive(Clone, Debug, PartialEq)]
pub struct Copy;

impl Primitive for Copy {
    fn name(&self) -> &'static str {
        "Copy"
    }
    fn eval(
        &self,
        b: &dyn Backend,
        inputs: &[ArrayData],
        _out: &[OutputSpec],
    ) -> Result<Vec<ArrayData>> {
        one(b.copy(&inputs[0])?)
    }
    fn vjp(&self, _p: &[Array], ct: &[Array], _a: &[usize], _o: &[Array]) -> Result<Vec<Array>> {
        Ok(vec![ct[0].clone()])
    }
    fn jvp(&self, _p: &[Array], t: &[Array], _a: &[usize], _o: &[Array]) -> Result<Vec<Array>> {
        Ok(vec![t[0].clone()])
    }
    fn vmap(&self, x: &[Array], ax: &[Option<usize>], out: &[OutputSpec]) -> Result<Batched> {
        batching::same_axis(self.clone(), &x[0], ax[0], &out[0])
    }
    crate::primitive_common!();
}

/// A view of `dst` covering `[start, start + shape)` along each axis with `step`.
fn region(dst: &ArrayData, start: &[usize], step: &[isize], shape: &[usize]) -> ArrayData {
    let mut offset = dst.offset as isize;
    let mut strides = Strides::new();
    for i in 0..dst.ndim() {
        offset += start[i] as isize * dst.strides[i];
        strides.push(dst.strides[i] * step[i]);
    }
    dst.view(shape.into(), strides, offset as usize)
}

#[derive(Clone, Debug, PartialEq)]
pub struct Concatenate {
    pub axis: usize,
}

impl Primitive for Concatenate {
    fn name(&self) -> &'static str {
        "Concatenate"
    }
    fn eval(
        &self,
        b: &dyn Backend,
        inputs: &[ArrayData],
        out: &[OutputSpec],
    ) -> Result<Vec<ArrayData>> {
        let o = b.empty(out[0].dtype, &out[0].shape)?;
        let nd = o.ndim();
        let mut start = vec![0usize; nd];
        for x in inputs {
            let dst = region(&o, &start, &vec![1; nd], &x.shape);
            b.copy_into(x, &dst)?;
            start[self.axis] += x.shape[self.axis];
        }
        one(o)
    }
    fn vjp(
        &self,
        p: &[Array],
        ct: &[Array],
        argnums: &[usize],
        _o: &[Array],
    ) -> Result<Vec<Array>> {
        let nd = ct[0].ndim();
        let mut starts = Vec::with_capacity(p.len());
        let mut at = 0usize;
        for x in p {
            starts.push(at);
            at += x.shape()[self.axis];
        }
        argnums
            .iter()
            .map(|&k| {
                let mut start = vec![0usize; nd];
                start[self.axis] = starts[k];
                ops::slice_resolved(&ct[0], &start, p[k].shape(), &vec![1; nd])
            })
            .collect()
    }
    fn jvp(&self, p: &[Array], t: &[Array], argnums: &[usize], _o: &[Array]) -> Result<Vec<Array>> {
        let parts = super::autodiff::full_tangents(p, t, argnums)?;
        Ok(vec![ops::concatenate(&parts, Some(self.axis as i64))?])
    }
    fn vmap(&self, x: &[Array], ax: &[Option<usize>], _out: &[OutputSpec]) -> Result<Batched> {
        let (xs, _) = batching::all_to_front(x, ax)?;
        batching::at_front(ops::concatenate(&xs, Some(self.axis as i64 + 1))?)
    }
    crate::primitive_common!();
}

/// Constant or edge padding: inputs `[x]`, `low[i]` elements before each axis.
#[derive(Clone, Debug, PartialEq)]
pub struct Pad {
    pub low: Vec<usize>,
    pub value: Scalar,
    pub edge: bool,
}

impl Primitive for Pad {
    fn name(&self) -> &'static str {
        "Pad"
    }
    fn eval(
        &self,
        b: &dyn Backend,
        inputs: &[ArrayData],
        out: &[OutputSpec],
    ) -> Result<Vec<ArrayData>> {
        let x = &inputs[0];
        let o = b.fill(self.value, out[0].dtype, &out[0].shape)?;
        let nd = o.ndim();
        if x.numel() > 0 {
            let dst = region(&o, &self.low, &vec![1; nd], &x.shape);
            b.copy_into(x, &dst)?;
        }
        if self.edge && x.numel() > 0 {
            // Fill each axis' low/high bands from the nearest edge slice, axis by axis,
            // so corners pick up values already replicated along earlier axes.
            for ax in 0..nd {
                let full = &out[0].shape;
                let (lo, n) = (self.low[ax], x.shape[ax]);
                let hi = full[ax] - lo - n;
                let mut shape: Vec<usize> = full.to_vec();
                shape[ax] = 1;
                let mut src_start = vec![0usize; nd];
                src_start[ax] = lo;
                let src_lo = region(&o, &src_start, &vec![1; nd], &shape);
                src_start[ax] = lo + n - 1;
                let src_hi = region(&o, &src_start, &vec![1; nd], &shape);
                let mut band = shape.clone();
                for (count, src, at) in [(lo, &src_lo, 0usize), (hi, &src_hi, lo + n)] {
                    if count == 0 {
                        continue;
                    }
                    band[ax] = count;
                    let mut bs = src.strides.clone();
                    bs[ax] = 0;
                    let src_b = src.view(band.clone().into(), bs, src.offset);
                    let mut dst_start = vec![0usize; nd];
                    dst_start[ax] = at;
                    let dst = region(&o, &dst_start, &vec![1; nd], &band);
                    let tmp = b.copy(&src_b)?;
                    b.copy_into(&tmp, &dst)?;
                }
            }
        }
        one(o)
    }
    fn vjp(&self, p: &[Array], ct: &[Array], _a: &[usize], _o: &[Array]) -> Result<Vec<Array>> {
        if self.edge {
            return Ok(vec![edge_pad_vjp(&ct[0], &self.low, p[0].shape())?]);
        }
        let nd = p[0].ndim();
        Ok(vec![ops::slice_resolved(
            &ct[0],
            &self.low,
            p[0].shape(),
            &vec![1; nd],
        )?])
    }
    fn jvp(&self, _p: &[Array], t: &[Array], _a: &[usize], out: &[Array]) -> Result<Vec<Array>> {
        // padding is affine: the tangent is padded the same way, with zeros (or edges)
        let p = Pad {
            value: Scalar::Int(0),
            ..self.clone()
        };
        Ok(vec![Array::from_op(
            out[0].shape().into(),
            t[0].dtype(),
            std::sync::Arc::new(p),
            vec![t[0].clone()],
        )])
    }
    fn vmap(&self, x: &[Array], ax: &[Option<usize>], out: &[OutputSpec]) -> Result<Batched> {
        let p = Pad {
            low: batching::prepend(0, &self.low),
            ..self.clone()
        };
        batching::front(p, &x[0], ax[0], &out[0])
    }
    crate::primitive_common!();
}

/// `x` itself when the scheduler donated it (the only reference, dense, covering its whole
/// buffer), else a fresh row-contiguous copy: the output an in-place update writes into.
pub(crate) fn donated_or_copy(b: &dyn Backend, x: &ArrayData) -> Result<ArrayData> {
    if x.is_donated_whole() {
        Ok(x.clone())
    } else {
        b.copy(x)
    }
}

/// A copy of `x` with a strided region replaced by `update`: inputs `[x, update]`.
#[derive(Clone, Debug, PartialEq)]
pub struct SliceUpdate {
    pub start: Vec<usize>,
    pub step: Vec<isize>,
}

impl Primitive for SliceUpdate {
    fn name(&self) -> &'static str {
        "SliceUpdate"
    }
    fn donatable_inputs(&self) -> &'static [usize] {
        &[0]
    }
    fn eval(
        &self,
        b: &dyn Backend,
        inputs: &[ArrayData],
        _out: &[OutputSpec],
    ) -> Result<Vec<ArrayData>> {
        let o = donated_or_copy(b, &inputs[0])?;
        let upd = &inputs[1];
        if upd.numel() > 0 {
            let dst = region(&o, &self.start, &self.step, &upd.shape);
            b.copy_into(upd, &dst)?;
        }
        one(o)
    }
    fn vjp(
        &self,
        p: &[Array],
        ct: &[Array],
        argnums: &[usize],
        _o: &[Array],
    ) -> Result<Vec<Array>> {
        argnums
            .iter()
            .map(|&k| {
                if k == 0 {
                    let zeros = ops::zeros_like(&p[1])?;
                    ops::slice_update_at(&ct[0], &zeros, &self.start, &self.step)
                } else {
                    ops::slice_resolved(&ct[0], &self.start, p[1].shape(), &self.step)
                }
            })
            .collect()
    }
    fn jvp(&self, p: &[Array], t: &[Array], argnums: &[usize], _o: &[Array]) -> Result<Vec<Array>> {
        let tx = super::autodiff::tangent_or_zeros(p, t, argnums, 0)?;
        let tu = super::autodiff::tangent_or_zeros(p, t, argnums, 1)?;
        Ok(vec![ops::slice_update_at(
            &tx,
            &tu,
            &self.start,
            &self.step,
        )?])
    }
    fn vmap(&self, x: &[Array], ax: &[Option<usize>], out: &[OutputSpec]) -> Result<Batched> {
        let (xs, b) = batching::all_to_front(x, ax)?;
        let p = SliceUpdate {
            start: batching::prepend(0, &self.start),
            step: batching::prepend(1, &self.step),
        };
        batching::rebuild(p, &out[0], b, xs)
    }
    crate::primitive_common!();
}

/// The vjp of edge padding: each padded band's cotangent is summed back onto the edge
/// slice it replicated, axis by axis (edge padding along different axes commutes).
fn edge_pad_vjp(ct: &Array, low: &[usize], shape: &[usize]) -> Result<Array> {
    let mut g = ct.clone();
    for (ax, (&lo, &n)) in low.iter().zip(shape).enumerate() {
        let a = ax as i64;
        let total = g.shape()[ax];
        let band = |from: usize, to: usize| -> Result<Array> {
            let mut start = vec![0usize; g.ndim()];
            start[ax] = from;
            let mut ext = g.shape().to_vec();
            ext[ax] = to - from;
            ops::slice_resolved(&g, &start, &ext, &vec![1; g.ndim()])
        };
        let mid = band(lo, lo + n)?;
        if n == 0 || (lo == 0 && lo + n == total) {
            g = mid;
            continue;
        }
        let low_sum = ops::sum(&band(0, lo)?, Some(&[a]), true)?;
        let high_sum = ops::sum(&band(lo + n, total)?, Some(&[a]), true)?;
        // add the band sums onto the first and last slices of the kept region
        let mut first = vec![0i64; n];
        first[0] = 1;
        let mut last = vec![0i64; n];
        last[n - 1] = 1;
        let mut bshape = vec![1usize; g.ndim()];
        bshape[ax] = n;
        let mask = |v: Vec<i64>| -> Result<Array> {
            ops::astype(&Array::from_vec(v, &bshape)?, g.dtype())
        };
        let add_low = ops::multiply(&low_sum, &mask(first)?)?;
        let add_high = ops::multiply(&high_sum, &mask(last)?)?;
        g = ops::add(&ops::add(&mid, &add_low)?, &add_high)?;
    }
    Ok(g)
}
