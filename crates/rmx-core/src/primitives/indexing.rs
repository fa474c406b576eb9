//! Gather/scatter primitives along one axis. Multi-axis indexing is lowered onto these
//! by the op layer (indices over several axes become one linear index).

use super::autodiff::tangent_or_zeros;
use super::batching::{self, Batched};
use super::one;
use crate::array::{Array, ArrayData};
use crate::backend::{Backend, ScatterMode};
use crate::error::Result;
use crate::ops;
use crate::primitive::{OutputSpec, Primitive};

/// `take(x, indices, axis)`: inputs `[x, indices]`.
#[derive(Clone, Debug, PartialEq)]
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
    fn vmap(&self, x: &[Array], ax: &[Option<usize>], _out: &[OutputSpec]) -> Result<Batched> {
        take_vmap(&x[0], &x[1], ax, self.axis)
    }
    crate::primitive_common!();
}

/// `take_along_axis(x, indices, axis)`: inputs `[x, indices]` (indices broadcast).
#[derive(Clone, Debug, PartialEq)]
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
    fn jvp(&self, p: &[Array], t: &[Array], _a: &[usize], _o: &[Array]) -> Result<Vec<Array>> {
        Ok(vec![ops::take_along_axis(
            &t[0],
            &p[1],
            Some(self.axis as i64),
        )?])
    }
    fn vmap(&self, x: &[Array], ax: &[Option<usize>], _out: &[OutputSpec]) -> Result<Batched> {
        let (xs, _) = batching::all_to_front(x, ax)?;
        batching::at_front(ops::take_along_axis(
            &xs[0],
            &xs[1],
            Some(self.axis as i64 + 1),
        )?)
    }
    crate::primitive_common!();
}

/// Scatter along one axis: inputs `[x, indices, updates]`, indices and updates of equal shape.
#[derive(Clone, Debug, PartialEq)]
pub struct ScatterAxis {
    pub mode: ScatterMode,
    pub axis: usize,
}

impl Primitive for ScatterAxis {
    fn name(&self) -> &'static str {
        "ScatterAxis"
    }
    /// Written over in place when no one else holds `x` (a KV cache written at a
    /// device-held position every decode step).
    fn donatable_inputs(&self) -> &'static [usize] {
        &[0]
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
        out: &[Array],
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
                // max/min: the cotangent reaches whichever of x and the update won (both on ties)
                (0, ScatterMode::Max | ScatterMode::Min) => ops::where_(
                    &ops::equal(&out[0], &p[0])?,
                    &ct[0],
                    &ops::zeros_like(&ct[0])?,
                ),
                (2, ScatterMode::Max | ScatterMode::Min) => {
                    let ax = Some(self.axis as i64);
                    let won = ops::equal(&ops::take_along_axis(&out[0], &p[1], ax)?, &p[2])?;
                    let g = ops::take_along_axis(&ct[0], &p[1], ax)?;
                    ops::where_(&won, &g, &ops::zeros_like(&g)?)
                }
                _ => Err(crate::runtime_err!(
                    "[scatter] VJP not implemented for scatter_prod"
                )),
            })
            .collect()
    }
    fn jvp(&self, p: &[Array], t: &[Array], argnums: &[usize], _o: &[Array]) -> Result<Vec<Array>> {
        // linear in (x, updates) for set and add; MLX has no scatter jvp at all
        if !matches!(self.mode, ScatterMode::Set | ScatterMode::Add) {
            return Err(crate::runtime_err!("[scatter] JVP not yet implemented"));
        }
        let tx = tangent_or_zeros(p, t, argnums, 0)?;
        let tu = tangent_or_zeros(p, t, argnums, 2)?;
        Ok(vec![ops::scatter_along_axis(
            self.mode, &tx, &p[1], &tu, self.axis,
        )?])
    }
    fn vmap(&self, x: &[Array], ax: &[Option<usize>], _out: &[OutputSpec]) -> Result<Batched> {
        let (xs, _) = batching::all_to_front(x, ax)?;
        batching::at_front(ops::scatter_along_axis(
            self.mode,
            &xs[0],
            &xs[1],
            &xs[2],
            self.axis + 1,
        )?)
    }
    crate::primitive_common!();
}

/// Wraps negative indices and checks them against an axis of `size` (int64 out).
#[derive(Clone, Debug, PartialEq)]
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
    fn vmap(&self, x: &[Array], ax: &[Option<usize>], out: &[OutputSpec]) -> Result<Batched> {
        batching::same_axis(self.clone(), &x[0], ax[0], &out[0])
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

/// The vmap rule of `take(x, indices, axis)`.
fn take_vmap(x: &Array, idx: &Array, ax: &[Option<usize>], axis: usize) -> Result<Batched> {
    match (ax[0], ax[1]) {
        // one table, batched indices: the batch dims land where the indices go
        (None, Some(bi)) => Ok((
            vec![ops::take(x, idx, Some(axis as i64))?],
            vec![Some(axis + bi)],
        )),
        (Some(_), None) => {
            let x = batching::to_front(x, ax[0])?;
            batching::at_front(ops::take(&x, idx, Some(axis as i64 + 1))?)
        }
        _ => {
            // Both batched: merge the batch axis with the indexed axis and offset each
            // batch element's (checked, wrapped) indices by its row of the merged axis.
            let x = batching::to_front(x, ax[0])?;
            let idx = batching::to_front(idx, ax[1])?;
            let (b, n) = (x.shape()[0], x.shape()[axis + 1]);
            let x = ops::moveaxis(&x, axis as i64 + 1, 1)?;
            let mut merged: Vec<usize> = vec![b * n];
            merged.extend_from_slice(&x.shape()[2..]);
            let x = ops::reshape_exact(&x, merged.as_slice().into())?;
            let checked = Array::from_op(
                idx.shape().into(),
                crate::dtype::Dtype::Int64,
                std::sync::Arc::new(CheckIndices { size: n, axis }),
                vec![idx.clone()],
            );
            let mut oshape = vec![1usize; idx.ndim()];
            oshape[0] = b;
            let offsets = ops::arange(0.0, (b * n) as f64, n as f64, crate::dtype::Dtype::Int64)?;
            let offsets = ops::reshape_exact(&offsets, oshape.as_slice().into())?;
            let flat = ops::add(&checked, &offsets)?;
            // result: (B, I..., x[:axis]..., x[axis+1:]...) -> (B, x[:axis]..., I..., x[axis+1:]...)
            let r = ops::take(&x, &flat, Some(0))?;
            let ni = idx.ndim() - 1;
            let mut perm: Vec<i64> = vec![0];
            perm.extend((1 + ni..1 + ni + axis).map(|p| p as i64));
            perm.extend((1..1 + ni).map(|p| p as i64));
            perm.extend((1 + ni + axis..r.ndim()).map(|p| p as i64));
            batching::at_front(ops::transpose(&r, Some(&perm))?)
        }
    }
}
