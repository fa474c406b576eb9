//! Gather/scatter primitives along one axis. Multi-axis indexing is lowered onto these
//! by the op layer (indices over several axes become one linear index).

use super::one;
use crate::array::{Array, ArrayData};
use crate::backend::{Backend, ScatterMode};
use crate::error::Result;
use crate::ops;
use crate::primitive::{OutputSpec, Primitive};

/// `take(x, indices, axis)`: inputs `[x, indices]`.
#[derive(Debug, PartialEq)]
pub struct Take {
    pub axis: usize,
}

impl Primitive for Take {
    fn name(&self) -> &'static str {
        "Take"
    }
    fn eval(
        &self,
        b: &dyn Backend,
        inputs: &[ArrayData],
        _out: &[OutputSpec],
    ) -> Result<Vec<ArrayData>> {
        one(b.take(&inputs[0], &inputs[1], self.axis)?)
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
                    take_vjp(&p[0], &p[1], &ct[0], self.axis)
                } else {
                    Err(crate::value_err!(
                        "[gather_axis] Cannot calculate VJP with respect to indices. Use stop_gradient on indices to stop gradients from being computed."
                    ))
                }
            })
            .collect()
    }
    fn jvp(&self, p: &[Array], t: &[Array], _a: &[usize], _o: &[Array]) -> Result<Vec<Array>> {
        Ok(vec![ops::take(&t[0], &p[1], Some(self.axis as i64))?])
    }
    crate::primitive_common!();
}

/// `take_along_axis(x, indices, axis)`: inputs `[x, indices]` (indices broadcast).
#[derive(Debug, PartialEq)]
pub struct TakeAlongAxis {
    pub axis: usize,
}

impl Primitive for TakeAlongAxis {
    fn name(&self) -> &'static str {
        "TakeAlongAxis"
    }
    fn eval(
        &self,
        b: &dyn Backend,
        inputs: &[ArrayData],
        _out: &[OutputSpec],
    ) -> Result<Vec<ArrayData>> {
        one(b.take_along_axis(&inputs[0], &inputs[1], self.axis)?)
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
                    ops::scatter_along_axis(
                        ScatterMode::Add,
                        &ops::zeros_like(&p[0])?,
                        &p[1],
                        &ct[0],
                        self.axis,
                    )
                } else {
                    Err(crate::value_err!(
                        "[gather_axis] Cannot calculate VJP with respect to indices. Use stop_gradient on indices to stop gradients from being computed."
                    ))
                }
            })
            .collect()
    }
    crate::primitive_common!();
}

/// Scatter along one axis: inputs `[x, indices, updates]`, indices and updates of equal shape.
#[derive(Debug, PartialEq)]
pub struct ScatterAxis {
    pub mode: ScatterMode,
    pub axis: usize,
}

impl Primitive for ScatterAxis {
    fn name(&self) -> &'static str {
        "ScatterAxis"
    }
    fn eval(
        &self,
        b: &dyn Backend,
        inputs: &[ArrayData],
        _out: &[OutputSpec],
    ) -> Result<Vec<ArrayData>> {
        one(b.scatter_along_axis(self.mode, &inputs[0], &inputs[1], &inputs[2], self.axis)?)
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
            .map(|&k| match (k, self.mode) {
                (0, ScatterMode::Add) => Ok(ct[0].clone()),
                (0, ScatterMode::Set) => ops::scatter_along_axis(
                    ScatterMode::Set,
                    &ct[0],
                    &p[1],
                    &ops::zeros_like(&p[2])?,
                    self.axis,
                ),
                (2, ScatterMode::Add) | (2, ScatterMode::Set) => {
                    ops::take_along_axis(&ct[0], &p[1], Some(self.axis as i64))
                }
                (1, _) => ops::zeros_like(&p[1]),
                _ => Err(crate::value_err!(
                    "[scatter] The vjp of prod/max/min scatters is not implemented."
                )),
            })
            .collect()
    }
    crate::primitive_common!();
}

/// Wraps negative indices and checks them against an axis of `size` (int64 out).
#[derive(Debug, PartialEq)]
pub struct CheckIndices {
    pub size: usize,
    pub axis: usize,
}

impl Primitive for CheckIndices {
    fn name(&self) -> &'static str {
        "CheckIndices"
    }
    fn eval(
        &self,
        b: &dyn Backend,
        inputs: &[ArrayData],
        _out: &[OutputSpec],
    ) -> Result<Vec<ArrayData>> {
        one(b.check_indices(&inputs[0], self.size, self.axis)?)
    }
    crate::primitive_common!();
}

/// The gradient of `take`: the cotangent scatter-added back into zeros shaped like `x`.
fn take_vjp(x: &Array, indices: &Array, ct: &Array, axis: usize) -> Result<Array> {
    let n = indices.size();
    let mut flat: Vec<usize> = x.shape()[..axis].to_vec();
    flat.push(n);
    flat.extend_from_slice(&x.shape()[axis + 1..]);
    let g = ops::reshape_exact(ct, flat.as_slice().into())?;
    let mut ishape = vec![1usize; flat.len()];
    ishape[axis] = n;
    let idx = ops::reshape_exact(indices, ishape.as_slice().into())?;
    let idx = ops::broadcast_to(&idx, &flat)?;
    ops::scatter_along_axis(ScatterMode::Add, &ops::zeros_like(x)?, &idx, &g, axis)
}
