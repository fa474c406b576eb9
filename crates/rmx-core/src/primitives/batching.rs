//! Helpers shared by the primitives' `vmap` rules. A rule receives each input with
//! its batch axis (`None` = the input is the same for every batch element) and the
//! unbatched output specs, and returns batched outputs with their batch axes.
//! Most rules move the batch axis to the front and shift their own axis parameters by one.

use crate::array::Array;
use crate::error::Result;
use crate::ops;
use crate::primitive::{OutputSpec, Primitive};
use crate::shape::Shape;
use std::sync::Arc;

/// The result of a vmap rule: batched outputs and their batch axes.
pub type Batched = (Vec<Array>, Vec<Option<usize>>);

/// The batch size: the extent of the batch axis of any batched input.
pub fn batch_size(inputs: &[Array], axes: &[Option<usize>]) -> usize {
    inputs
        .iter()
        .zip(axes)
        .find_map(|(x, a)| a.map(|a| x.shape()[a]))
        .unwrap_or(1)
}

/// `x` with its batch axis (if any) moved to the front.
pub fn to_front(x: &Array, axis: Option<usize>) -> Result<Array> {
    match axis {
        Some(0) | None => Ok(x.clone()),
        Some(a) => ops::moveaxis(x, a as i64, 0),
    }
}

/// Every input with batch axis 0 of size `b`: batched inputs are moved, unbatched ones
/// broadcast (a stride-0 view, no copy). Used where a primitive needs equal shapes.
pub fn all_to_front(inputs: &[Array], axes: &[Option<usize>]) -> Result<(Vec<Array>, usize)> {
    let b = batch_size(inputs, axes);
    let xs = inputs
        .iter()
        .zip(axes)
        .map(|(x, &a)| match a {
            Some(_) => to_front(x, a),
            None => ops::broadcast_to(x, &with_batch(b, x.shape())),
        })
        .collect::<Result<_>>()?;
    Ok((xs, b))
}

/// `shape` with a leading batch dimension `b`.
pub fn with_batch(b: usize, shape: &[usize]) -> Shape {
    let mut s = Shape::with_capacity(shape.len() + 1);
    s.push(b);
    s.extend_from_slice(shape);
    s
}

/// Axis parameters shifted past a leading batch axis.
pub fn shifted(axes: &[usize]) -> Vec<usize> {
    axes.iter().map(|a| a + 1).collect()
}

/// `v` with `first` prepended (start/step vectors of slices and pads).
pub fn prepend<T: Copy>(first: T, v: &[T]) -> Vec<T> {
    let mut out = Vec::with_capacity(v.len() + 1);
    out.push(first);
    out.extend_from_slice(v);
    out
}

/// A node of `prim` over batch-first `inputs`, with the unbatched output spec's dtype and
/// the output shape gaining the leading batch dimension `b`.
pub fn rebuild(
    prim: impl Primitive,
    out: &OutputSpec,
    b: usize,
    inputs: Vec<Array>,
) -> Result<Batched> {
    let a = Array::from_op(with_batch(b, &out.shape), out.dtype, Arc::new(prim), inputs);
    Ok((vec![a], vec![Some(0)]))
}

/// The rule of a shape-preserving one-input primitive: apply it to the batched input as is.
pub fn same_axis(
    prim: impl Primitive,
    x: &Array,
    axis: Option<usize>,
    out: &OutputSpec,
) -> Result<Batched> {
    let a = Array::from_op(x.shape().into(), out.dtype, Arc::new(prim), vec![x.clone()]);
    Ok((vec![a], vec![axis]))
}

/// The rule of a one-input primitive whose parameters name axes: move the batch axis to
/// the front and rebuild with the output shape's leading batch dimension.
pub fn front(
    prim: impl Primitive,
    x: &Array,
    axis: Option<usize>,
    out: &OutputSpec,
) -> Result<Batched> {
    let x = to_front(x, axis)?;
    let b = x.shape()[0];
    rebuild(prim, out, b, vec![x])
}

/// A single output with batch axis 0.
pub fn at_front(a: Array) -> Result<Batched> {
    Ok((vec![a], vec![Some(0)]))
}
