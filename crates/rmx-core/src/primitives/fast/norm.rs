//! `Norm`: rms_norm and layer_norm over the last axis. Inputs are `[x, weight?, bias?]`
//! of one floating dtype. The vjp is the analytic backward; jvp and a vmap over the
//! weight or bias go through the composite definition.

use super::super::batching::{self, Batched};
use super::super::one;
use crate::array::{Array, ArrayData};
use crate::backend::{Backend, NormKind};
use crate::dtype::Dtype;
use crate::element::Scalar;
use crate::error::Result;
use crate::ops;
use crate::primitive::{OutputSpec, Primitive};
use std::sync::Arc;

#[derive(Clone, Debug, PartialEq)]
pub struct Norm {
    pub kind: NormKind,
    pub eps: f32,
    pub has_weight: bool,
    pub has_bias: bool,
}

/// The type statistics are computed in: float32, or float64 for float64 inputs.
pub(crate) fn compute_type(d: Dtype) -> Dtype {
    if d == Dtype::Float64 {
        d
    } else {
        Dtype::Float32
    }
}

impl Norm {
    pub fn node(&self, inputs: Vec<Array>) -> Array {
        let x = &inputs[0];
        Array::from_op(x.shape().into(), x.dtype(), Arc::new(self.clone()), inputs)
    }

    /// `(x, weight, bias)` from the input list.
    fn split<'a>(&self, p: &'a [Array]) -> (&'a Array, Option<&'a Array>, Option<&'a Array>) {
        let w = self.has_weight.then(|| &p[1]);
        let b = self.has_bias.then(|| &p[1 + self.has_weight as usize]);
        (&p[0], w, b)
    }

    /// Normalized `x` in the compute type with its `rstd`: `(x - mu) * rstd`.
    fn normalized(&self, xc: &Array) -> Result<(Array, Array)> {
        let last: &[i64] = &[-1];
        let eps = Array::scalar_of(Scalar::Float(self.eps as f64), xc.dtype())?;
        let centered = match self.kind {
            NormKind::Rms => xc.clone(),
            NormKind::Layer => ops::subtract(xc, &ops::mean(xc, Some(last), true)?)?,
        };
        let ms = ops::mean(&ops::square(&centered)?, Some(last), true)?;
        let rstd = ops::rsqrt(&ops::add(&ms, &eps)?)?;
        Ok((ops::multiply(&centered, &rstd)?, rstd))
    }

    /// The definition from ordinary ops (MLX's fallback): statistics in float32, the
    /// normalized value cast back, then the weight and bias applied in the dtype.
    pub fn composite(&self, p: &[Array]) -> Result<Array> {
        let (x, w, b) = self.split(p);
        let xc = ops::astype(x, compute_type(x.dtype()))?;
        let mut y = ops::astype(&self.normalized(&xc)?.0, x.dtype())?;
        if let Some(w) = w {
            y = ops::multiply(&y, w)?;
        }
        if let Some(b) = b {
            y = ops::add(&y, b)?;
        }
        Ok(y)
    }
}

/// Sum over every axis but the last (the per-feature gradient of a weight or bias).
fn sum_rows(g: &Array) -> Result<Array> {
    if g.ndim() <= 1 {
        return Ok(g.clone());
    }
    let axes: Vec<i64> = (0..g.ndim() as i64 - 1).collect();
    ops::sum(g, Some(&axes), false)
}

impl Primitive for Norm {
    fn name(&self) -> &'static str {
        match self.kind {
            NormKind::Rms => "RMSNorm",
            NormKind::Layer => "LayerNorm",
        }
    }
    fn eval(
        &self,
        b: &dyn Backend,
        inputs: &[ArrayData],
        _out: &[OutputSpec],
    ) -> Result<Vec<ArrayData>> {
        let w = self.has_weight.then(|| &inputs[1]);
        let bias = self.has_bias.then(|| &inputs[1 + self.has_weight as usize]);
        one(b.norm(self.kind, &inputs[0], w, bias, self.eps)?)
    }
    /// With `n` the normalized input and `gn = g * w`:
    /// rms: `dx = rstd * (gn - n * mean(gn * n))`;
    /// layer: `dx = rstd * (gn - mean(gn) - n * mean(gn * n))`;
    /// `dw = sum(g * n)`, `db = sum(g)` over the leading axes.
    fn vjp(
        &self,
        p: &[Array],
        ct: &[Array],
        argnums: &[usize],
        _o: &[Array],
    ) -> Result<Vec<Array>> {
        let (x, w, b) = self.split(p);
        let c = compute_type(x.dtype());
        let last: &[i64] = &[-1];
        let xc = ops::astype(x, c)?;
        let g = ops::astype(&ct[0], c)?;
        let (n, rstd) = self.normalized(&xc)?;
        let gn = match w {
            Some(w) => ops::multiply(&g, &ops::astype(w, c)?)?,
            None => g.clone(),
        };
        let proj = ops::multiply(&n, &ops::mean(&ops::multiply(&gn, &n)?, Some(last), true)?)?;
        let mut inner = ops::subtract(&gn, &proj)?;
        if self.kind == NormKind::Layer {
            inner = ops::subtract(&inner, &ops::mean(&gn, Some(last), true)?)?;
        }
        argnums
            .iter()
            .map(|&k| match k {
                0 => ops::astype(&ops::multiply(&rstd, &inner)?, x.dtype()),
                1 if self.has_weight => {
                    let wt = w.expect("has a weight").dtype();
                    ops::astype(&sum_rows(&ops::multiply(&g, &n)?)?, wt)
                }
                _ => ops::astype(&sum_rows(&g)?, b.expect("has a bias").dtype()),
            })
            .collect()
    }
    fn jvp(&self, p: &[Array], t: &[Array], argnums: &[usize], _o: &[Array]) -> Result<Vec<Array>> {
        super::composite_jvp(&|x| self.composite(x), p, t, argnums)
    }
    /// A batched `x` alone keeps the primitive (the batch axis moves to the front, a new
    /// leading row axis); a batched weight or bias vectorizes the composite.
    fn vmap(&self, x: &[Array], ax: &[Option<usize>], out: &[OutputSpec]) -> Result<Batched> {
        if ax[1..].iter().any(|a| a.is_some()) {
            return super::composite_vmap(&|y| self.composite(y), x, ax);
        }
        let mut inputs = x.to_vec();
        inputs[0] = batching::to_front(&x[0], ax[0])?;
        let b = inputs[0].shape()[0];
        batching::rebuild(self.clone(), &out[0], b, inputs)
    }
    crate::primitive_common!();
}

/// `AddRMSNorm` (an rmx extension; MLX has none): inputs `[x, residual, weight?]` of one
/// floating dtype, `x` and `residual` of one shape; outputs `[h, y]` with `h = x + residual`
/// (rounded to the dtype, as `add`) and `y = rms_norm(h) * weight`. A pre-norm decoder adds
/// each block's output to the residual stream and normalizes the sum for the next block:
/// one kernel instead of two. Derivatives and vmap go through that definition.
#[derive(Clone, Debug, PartialEq)]
pub struct AddRmsNorm {
    pub eps: f32,
    pub has_weight: bool,
}

impl AddRmsNorm {
    /// The definition from ordinary ops: an add, then the `Norm` primitive.
    fn composite(&self, p: &[Array]) -> Result<Vec<Array>> {
        let h = ops::add(&p[0], &p[1])?;
        let mut inputs = vec![h.clone()];
        inputs.extend(p.get(2).cloned());
        let norm = Norm {
            kind: NormKind::Rms,
            eps: self.eps,
            has_weight: self.has_weight,
            has_bias: false,
        };
        Ok(vec![h, norm.node(inputs)])
    }
}

impl Primitive for AddRmsNorm {
    fn name(&self) -> &'static str {
        "AddRMSNorm"
    }
    fn eval(
        &self,
        b: &dyn Backend,
        inputs: &[ArrayData],
        _out: &[OutputSpec],
    ) -> Result<Vec<ArrayData>> {
        let (h, y) = b.add_rms_norm(&inputs[0], &inputs[1], inputs.get(2), self.eps)?;
        Ok(vec![h, y])
    }
    super::rules_from_definition!(composite);
    crate::primitive_common!();
}
