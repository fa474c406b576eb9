//! `Rope`: rotary positional embedding. Inputs are `[x, offset, freqs?]` with `offset`
//! int32 (one element, or one per batch element) and `freqs` float32. The rotation is
//! linear in `x` and orthogonal, so the vjp is the rope by the negated angle (the
//! negated scale) and the jvp the rope of the tangent.

use super::super::batching::{self, Batched};
use super::super::one;
use crate::array::{Array, ArrayData};
use crate::backend::{Backend, RopeSpec};
use crate::dtype::Dtype;
use crate::element::Scalar;
use crate::error::Result;
use crate::ops;
use crate::primitive::{OutputSpec, Primitive};
use std::sync::Arc;

#[derive(Clone, Debug, PartialEq)]
pub struct Rope {
    pub dims: usize,
    pub traditional: bool,
    /// None when explicit frequencies are the third input.
    pub base: Option<f32>,
    pub scale: f32,
}

impl Rope {
    pub fn node(&self, inputs: Vec<Array>) -> Array {
        let x = &inputs[0];
        Array::from_op(x.shape().into(), x.dtype(), Arc::new(self.clone()), inputs)
    }

    /// The same rotation by the opposite angle.
    fn inverse(&self) -> Rope {
        Rope {
            scale: -self.scale,
            ..self.clone()
        }
    }

    /// `x[..., start:stop:step]`.
    fn features(x: &Array, start: usize, stop: usize, step: usize) -> Result<Array> {
        let nd = x.ndim();
        let mut lo = vec![0i64; nd];
        let mut hi: Vec<i64> = x.shape().iter().map(|&s| s as i64).collect();
        let mut st = vec![1i64; nd];
        (lo[nd - 1], hi[nd - 1], st[nd - 1]) = (start as i64, stop as i64, step as i64);
        ops::slice(x, &lo, &hi, Some(&st))
    }

    /// The definition from ordinary ops: angles `(t + offset) * scale * inv_freq` in
    /// float32, the rotation in float32 (float64 for float64 inputs), cast back.
    pub fn composite(&self, p: &[Array]) -> Result<Array> {
        let (x, offset) = (&p[0], &p[1]);
        let nd = x.ndim();
        let (t_len, d) = (x.shape()[nd - 2], x.shape()[nd - 1]);
        let half = self.dims / 2;
        let f32_ = Dtype::Float32;
        let inv_freqs = match self.base {
            None => ops::reciprocal(&ops::astype(&p[2], f32_)?)?,
            Some(base) => {
                let i = ops::arange(0.0, half as f64, 1.0, f32_)?;
                let step =
                    Array::scalar_of(Scalar::Float(-(base as f64).ln() / half as f64), f32_)?;
                ops::exp(&ops::multiply(&i, &step)?)?
            }
        };
        // offset: a scalar, or one per batch element along axis 0
        let mut off_shape = vec![1i64; nd - 1];
        if offset.size() > 1 {
            off_shape[0] = offset.size() as i64;
        }
        let off = ops::reshape(&ops::astype(offset, f32_)?, &off_shape)?;
        let t = ops::reshape(&ops::arange(0.0, t_len as f64, 1.0, f32_)?, &[t_len as i64])?;
        let scale = Array::scalar_of(Scalar::Float(self.scale as f64), f32_)?;
        let pos = ops::multiply(&ops::add(&t, &off)?, &scale)?; // [..., T]
        let theta = ops::multiply(&ops::expand_dims(&pos, &[-1])?, &inv_freqs)?; // [..., T, half]
        let c = super::norm::compute_type(x.dtype());
        let (cos, sin) = (
            ops::astype(&ops::cos(&theta)?, c)?,
            ops::astype(&ops::sin(&theta)?, c)?,
        );
        let xc = ops::astype(x, c)?;
        let (x1, x2) = if self.traditional {
            (
                Self::features(&xc, 0, self.dims, 2)?,
                Self::features(&xc, 1, self.dims, 2)?,
            )
        } else {
            (
                Self::features(&xc, 0, half, 1)?,
                Self::features(&xc, half, self.dims, 1)?,
            )
        };
        let o1 = ops::subtract(&ops::multiply(&x1, &cos)?, &ops::multiply(&x2, &sin)?)?;
        let o2 = ops::add(&ops::multiply(&x1, &sin)?, &ops::multiply(&x2, &cos)?)?;
        let rotated = if self.traditional {
            let pairs = ops::stack(&[o1, o2], -1)?;
            ops::flatten(&pairs, -2, -1)?
        } else {
            ops::concatenate(&[o1, o2], Some(-1))?
        };
        let mut parts = vec![ops::astype(&rotated, x.dtype())?];
        if self.dims < d {
            parts.push(Self::features(x, self.dims, d, 1)?);
        }
        ops::concatenate(&parts, Some(-1))
    }
}

impl Primitive for Rope {
    fn name(&self) -> &'static str {
        "RoPE"
    }
    fn eval(
        &self,
        b: &dyn Backend,
        inputs: &[ArrayData],
        _out: &[OutputSpec],
    ) -> Result<Vec<ArrayData>> {
        let spec = RopeSpec {
            dims: self.dims,
            traditional: self.traditional,
            base: self.base.unwrap_or(1.0),
            scale: self.scale,
        };
        one(b.rope(&inputs[0], &inputs[1], inputs.get(2), spec)?)
    }
    /// `x` rotates back by the negated angle; offsets are integers and the frequencies
    /// get no gradient (as in MLX, which differentiates `x` only).
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
                    let mut inputs = p.to_vec();
                    inputs[0] = ct[0].clone();
                    Ok(self.inverse().node(inputs))
                } else {
                    ops::zeros_like(&p[k])
                }
            })
            .collect()
    }
    fn jvp(&self, p: &[Array], t: &[Array], argnums: &[usize], _o: &[Array]) -> Result<Vec<Array>> {
        if argnums == [0] {
            let mut inputs = p.to_vec();
            inputs[0] = t[0].clone();
            return Ok(vec![self.node(inputs)]);
        }
        super::composite_jvp(&|x| self.composite(x), p, t, argnums)
    }
    /// A batched `x` with one shared offset keeps the primitive (the batch axis becomes
    /// a leading axis); per-batch offsets or batched offsets/frequencies vectorize the
    /// composite.
    fn vmap(&self, x: &[Array], ax: &[Option<usize>], out: &[OutputSpec]) -> Result<Batched> {
        if ax[1..].iter().any(|a| a.is_some()) || x[1].size() > 1 {
            return super::composite_vmap(&|y| self.composite(y), x, ax);
        }
        let mut inputs = x.to_vec();
        inputs[0] = batching::to_front(&x[0], ax[0])?;
        let b = inputs[0].shape()[0];
        batching::rebuild(self.clone(), &out[0], b, inputs)
    }
    crate::primitive_common!();
}
