//! `Attention`: scaled dot-product attention. Inputs are `[q, k, v, mask?, sinks?]` of
//! one floating dtype (a bool mask stays bool). The kernel never forms the score matrix;
//! derivatives and vmap go through the composite definition, MLX's fallback.

use super::super::batching::Batched;
use super::super::one;
use crate::array::{Array, ArrayData};
use crate::backend::{AttnMask, Backend};
use crate::dtype::{finfo, Dtype};
use crate::element::Scalar;
use crate::error::Result;
use crate::ops;
use crate::primitive::{OutputSpec, Primitive};
use crate::shape::{Shape, Strides};
use std::sync::Arc;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MaskKind {
    None,
    Causal,
    /// False scores are masked out.
    Bool,
    /// Added to the scores.
    Additive,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Attention {
    pub scale: f32,
    pub mask: MaskKind,
    pub has_sinks: bool,
}

/// `x` viewed at `shape` (NumPy broadcasting: zero strides, no copy).
fn broadcast_view(x: &ArrayData, shape: &[usize]) -> ArrayData {
    let lead = shape.len() - x.ndim();
    let strides: Strides = (0..shape.len())
        .map(|i| {
            if i < lead || x.shape[i - lead] == 1 {
                0
            } else {
                x.strides[i - lead]
            }
        })
        .collect();
    x.view(Shape::from_slice(shape), strides, x.offset)
}

impl Attention {
    fn has_mask_input(&self) -> bool {
        matches!(self.mask, MaskKind::Bool | MaskKind::Additive)
    }

    pub fn node(&self, inputs: Vec<Array>) -> Array {
        let (q, v) = (&inputs[0], &inputs[2]);
        let mut shape: Shape = q.shape().into();
        shape[3] = v.shape()[3];
        Array::from_op(shape, q.dtype(), Arc::new(self.clone()), inputs)
    }

    /// The definition from ordinary ops (MLX's fallback): scaled queries, grouped heads
    /// as an extra axis, scores, mask (bool: the lowest finite value where false), sinks
    /// as a first score column, a precise softmax, the weighted values.
    pub fn composite(&self, p: &[Array]) -> Result<Array> {
        let (q, k, v) = (&p[0], &p[1], &p[2]);
        let dt = q.dtype();
        let (hq, hkv) = (q.shape()[1] as i64, k.shape()[1] as i64);
        let rep = hq / hkv;
        let mut q = ops::multiply(&Array::scalar_of(Scalar::Float(self.scale as f64), dt)?, q)?;
        let (mut k, mut v) = (k.clone(), v.clone());
        if rep > 1 {
            q = ops::unflatten(&q, 1, &[hkv, rep])?;
            k = ops::expand_dims(&k, &[2])?;
            v = ops::expand_dims(&v, &[2])?;
        }
        let mut scores = ops::matmul(&q, &ops::swapaxes(&k, -1, -2)?)?;
        let mask = match self.mask {
            MaskKind::None => None,
            MaskKind::Causal => {
                let (ql, kl) = (q.shape()[q.ndim() - 2], k.shape()[k.ndim() - 2]);
                let off = kl as f64 - ql as f64;
                let qi = ops::arange(off, off + ql as f64, 1.0, Dtype::Int32)?;
                let ki = ops::arange(0.0, kl as f64, 1.0, Dtype::Int32)?;
                Some(ops::greater_equal(
                    &ops::expand_dims(&qi, &[1])?,
                    &ops::expand_dims(&ki, &[0])?,
                )?)
            }
            MaskKind::Bool | MaskKind::Additive => {
                // a bool mask is a constant of the function
                let mut m = if self.mask == MaskKind::Bool {
                    ops::stop_gradient(&p[3])?
                } else {
                    p[3].clone()
                };
                if rep > 1 && m.ndim() >= 3 {
                    m = if m.shape()[m.ndim() - 3] == 1 {
                        ops::expand_dims(&m, &[-3])?
                    } else {
                        ops::unflatten(&m, -3, &[hkv, rep])?
                    };
                }
                Some(m)
            }
        };
        if let Some(m) = mask {
            scores = if m.dtype() == Dtype::Bool {
                let lowest = finfo(scores.dtype()).map_or(f64::MIN, |f| f.min);
                ops::where_(
                    &m,
                    &scores,
                    &Array::scalar_of(Scalar::Float(lowest), scores.dtype())?,
                )?
            } else {
                ops::add(&scores, &m)?
            };
        }
        if self.has_sinks {
            let mut s = ops::expand_dims(p.last().expect("sinks"), &[0, 2, 3])?;
            if scores.ndim() == 5 {
                s = ops::unflatten(&s, 1, &[hkv, rep])?;
            }
            let mut col: Vec<usize> = scores.shape().to_vec();
            *col.last_mut().expect("scores have axes") = 1;
            scores = ops::concatenate(&[ops::broadcast_to(&s, &col)?, scores], Some(-1))?;
        }
        scores = ops::softmax(&scores, Some(&[-1]), true)?;
        if self.has_sinks {
            let nd = scores.ndim();
            let mut lo = vec![0i64; nd];
            lo[nd - 1] = 1;
            let hi: Vec<i64> = scores.shape().iter().map(|&s| s as i64).collect();
            scores = ops::slice(&scores, &lo, &hi, None)?;
        }
        let mut out = ops::matmul(&scores, &v)?;
        if rep > 1 {
            out = ops::flatten(&out, 1, 2)?;
        }
        Ok(out)
    }
}

impl Primitive for Attention {
    fn name(&self) -> &'static str {
        "ScaledDotProductAttention"
    }
    fn eval(
        &self,
        b: &dyn Backend,
        inputs: &[ArrayData],
        _out: &[OutputSpec],
    ) -> Result<Vec<ArrayData>> {
        let (q, k, v) = (&inputs[0], &inputs[1], &inputs[2]);
        let scores = [q.shape[0], q.shape[1], q.shape[2], k.shape[2]];
        let mask_view = self
            .has_mask_input()
            .then(|| broadcast_view(&inputs[3], &scores));
        let mask = match (self.mask, &mask_view) {
            (MaskKind::Causal, _) => AttnMask::Causal,
            (_, Some(m)) => AttnMask::Array(m),
            _ => AttnMask::None,
        };
        let sinks = self.has_sinks.then(|| inputs.last().expect("sinks"));
        one(b.attention(q, k, v, mask, sinks, self.scale)?)
    }
    /// Through the composite; a bool mask gets zeros.
    fn vjp(
        &self,
        p: &[Array],
        ct: &[Array],
        argnums: &[usize],
        _o: &[Array],
    ) -> Result<Vec<Array>> {
        let grads = super::composite_vjp(&|x| self.composite(x), p, ct, argnums)?;
        argnums
            .iter()
            .zip(grads)
            .map(|(&k, g)| {
                if p[k].dtype() == Dtype::Bool {
                    ops::zeros_like(&p[k])
                } else {
                    Ok(g)
                }
            })
            .collect()
    }
    fn jvp(&self, p: &[Array], t: &[Array], argnums: &[usize], _o: &[Array]) -> Result<Vec<Array>> {
        super::composite_jvp(&|x| self.composite(x), p, t, argnums)
    }
    fn vmap(&self, x: &[Array], ax: &[Option<usize>], _out: &[OutputSpec]) -> Result<Batched> {
        super::composite_vmap(&|y| self.composite(y), x, ax)
    }
    crate::primitive_common!();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn broadcast_view_zeroes_the_strides_of_size_one_and_new_axes() {
        let x = ArrayData::alloc(Dtype::Float32, &[3, 1]).unwrap();
        let v = broadcast_view(&x, &[2, 4, 3, 5]);
        assert_eq!(&v.strides[..], &[0, 0, 1, 0]);
    }
}
