//! Primitives that exist for the transforms: `Identity` marks a traced input,
//! `StopGradient` passes values and blocks derivatives.

use super::batching::{self, Batched};
use super::one;
use crate::array::{Array, ArrayData};
use crate::backend::Backend;
use crate::error::Result;
use crate::primitive::{OutputSpec, Primitive};

#[derive(Clone, Debug, PartialEq)]
pub struct Identity;

impl Primitive for Identity {
    fn name(&self) -> &'static str {
        "Identity"
    }
    fn eval(
        &self,
        _b: &dyn Backend,
        inputs: &[ArrayData],
        _out: &[OutputSpec],
    ) -> Result<Vec<ArrayData>> {
        one(inputs[0].clone())
    }
    fn vjp(&self, _p: &[Array], ct: &[Array], _a: &[usize], _o: &[Array]) -> Result<Vec<Array>> {
        Ok(vec![ct[0].clone()])
    }
    fn jvp(&self, _p: &[Array], t: &[Array], _a: &[usize], _out: &[Array]) -> Result<Vec<Array>> {
        Ok(vec![t[0].clone()])
    }
    fn vmap(&self, x: &[Array], ax: &[Option<usize>], _out: &[OutputSpec]) -> Result<Batched> {
        Ok((vec![x[0].clone()], vec![ax[0]]))
    }
    crate::primitive_common!();
}

#[derive(Clone, Debug, PartialEq)]
pub struct StopGradient;

impl Primitive for StopGradient {
    fn name(&self) -> &'static str {
        "StopGradient"
    }
    fn blocks_gradient(&self) -> bool {
        true
    }
    fn eval(
        &self,
        _b: &dyn Backend,
        inputs: &[ArrayData],
        _out: &[OutputSpec],
    ) -> Result<Vec<ArrayData>> {
        one(inputs[0].clone())
    }
    fn vjp(&self, p: &[Array], _ct: &[Array], _a: &[usize], _o: &[Array]) -> Result<Vec<Array>> {
        Ok(vec![crate::ops::zeros_like(&p[0])?])
    }
    fn jvp(&self, p: &[Array], _t: &[Array], _a: &[usize], _out: &[Array]) -> Result<Vec<Array>> {
        Ok(vec![crate::ops::zeros_like(&p[0])?])
    }
    fn vmap(&self, x: &[Array], ax: &[Option<usize>], out: &[OutputSpec]) -> Result<Batched> {
        batching::same_axis(self.clone(), &x[0], ax[0], &out[0])
    }
    crate::primitive_common!();
}

/// Reduces `g` (broadcast from `shape`) back to `shape` by summing the broadcast axes.
pub fn sum_to_shape(g: &Array, shape: &[usize]) -> Result<Array> {
    if g.shape() == shape {
        return Ok(g.clone());
    }
    let lead = g.ndim() - shape.len();
    let mut axes: Vec<i64> = (0..lead as i64).collect();
    for (i, &d) in shape.iter().enumerate() {
        if d == 1 && g.shape()[lead + i] != 1 {
            axes.push((lead + i) as i64);
        }
    }
    let s = crate::ops::sum(g, Some(&axes), true)?;
    crate::ops::reshape_exact(&s, shape.into())
}

/// Stands for one batch element of a vmapped input while `vmap` traces the function.
/// It has no value: evaluating it inside the trace is an error, as in MLX.
#[derive(Clone, Debug, PartialEq)]
pub struct Placeholder;

impl Primitive for Placeholder {
    fn name(&self) -> &'static str {
        "Placeholder"
    }
    fn eval(
        &self,
        _b: &dyn Backend,
        _inputs: &[ArrayData],
        _out: &[OutputSpec],
    ) -> Result<Vec<ArrayData>> {
        Err(crate::value_err!(
            "[eval] Attempting to eval an array during function transformations like compile or vmap is not allowed."
        ))
    }
    fn as_any(&self) -> &dyn std::any::Any {
        self
    }
}

/// The tangent given for input `k` (tangents are listed for `argnums` only), or zeros
/// shaped like that input.
pub fn tangent_or_zeros(p: &[Array], t: &[Array], argnums: &[usize], k: usize) -> Result<Array> {
    match argnums.iter().position(|&a| a == k) {
        Some(i) => Ok(t[i].clone()),
        None => crate::ops::zeros_like(&p[k]),
    }
}

/// Tangents for every input: the given ones at `argnums`, zeros elsewhere.
pub fn full_tangents(p: &[Array], t: &[Array], argnums: &[usize]) -> Result<Vec<Array>> {
    (0..p.len())
        .map(|k| tangent_or_zeros(p, t, argnums, k))
        .collect()
}
