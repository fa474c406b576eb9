//! `vmap`: vectorize a function over a batch axis of its inputs.
//! The function is traced once on placeholders shaped like one batch element; the graph
//! from the placeholders to the outputs is then replayed in dependency order, each
//! primitive's own `vmap` rule turning its batched inputs into batched outputs.
//! Nodes that do not depend on a vmapped input are reused as they are.

use super::tape;
use crate::array::{Array, Node};
use crate::error::Result;
use crate::ops;
use crate::primitives::autodiff::Placeholder;
use std::collections::{HashMap, HashSet};
use std::sync::Arc;

fn shape_paren(shape: &[usize]) -> String {
    let dims: Vec<String> = shape.iter().map(|d| d.to_string()).collect();
    format!("({})", dims.join(","))
}

/// Traces `f` on one batch element of each input and vectorizes the result.
/// `in_axes[i]` is the batch axis of `inputs[i]` (`None`: shared by all elements).
/// Returns the batched outputs, each output's batch axis (`None` if it does not depend
/// on a batched input) and the batch size.
pub fn vmap_trace(
    f: impl FnOnce(&[Array]) -> Result<Vec<Array>>,
    inputs: &[Array],
    in_axes: &[Option<i64>],
) -> Result<(Vec<Array>, Vec<Option<usize>>, usize)> {
    if inputs.len() != in_axes.len() {
        return Err(crate::value_err!(
            "[vmap] The number of in axes ({}) must match the number of inputs ({}).",
            in_axes.len(),
            inputs.len()
        ));
    }
    let mut axes: Vec<Option<usize>> = Vec::with_capacity(inputs.len());
    let mut size: Option<usize> = None;
    for (x, &a) in inputs.iter().zip(in_axes) {
        let Some(a) = a else {
            axes.push(None);
            continue;
        };
        let nd = x.ndim() as i64;
        if a < -nd || a >= nd {
            return Err(crate::index_err!(
                "[vmap] Invalid vectorization axis {a} for array with shape {}",
                shape_paren(x.shape())
            ));
        }
        let a = if a < 0 { a + nd } else { a } as usize;
        let n = x.shape()[a];
        if let Some(s) = size {
            if s != n {
                return Err(crate::value_err!(
                    "[vmap] Inconsistent axis sizes: {s} and {n}."
                ));
            }
        }
        size = Some(n);
        axes.push(Some(a));
    }
    let Some(size) = size else {
        return Err(crate::value_err!(
            "At least one of in_axes must be non-None."
        ));
    };

    // Placeholders stand for the batched inputs; unbatched inputs are passed as they are.
    let traced: Vec<Array> = inputs
        .iter()
        .zip(&axes)
        .map(|(x, a)| match a {
            Some(a) => {
                let mut shape = x.shape().to_vec();
                shape.remove(*a);
                Array::from_op(shape.into(), x.dtype(), Arc::new(Placeholder), vec![])
            }
            None => x.clone(),
        })
        .collect();
    let outputs = f(&traced)?;

    let mut batched: HashMap<usize, (Array, Option<usize>)> = HashMap::new();
    let mut ids = HashSet::new();
    for ((t, x), a) in traced.iter().zip(inputs).zip(&axes) {
        if a.is_some() {
            ids.insert(t.id());
            batched.insert(t.id(), (x.clone(), *a));
        }
    }
    // Multi-output nodes are vmapped once; their siblings are looked up by output index.
    let mut done: HashMap<*const Node, (Vec<Array>, Vec<Option<usize>>)> = HashMap::new();
    for a in tape(&outputs, &ids, false) {
        if ids.contains(&a.id()) {
            continue;
        }
        let Some((node, index)) = a.node() else {
            continue;
        };
        let key = Arc::as_ptr(&node);
        if let std::collections::hash_map::Entry::Vacant(slot) = done.entry(key) {
            let ins = a.inputs();
            let (xs, xa): (Vec<Array>, Vec<Option<usize>>) = ins
                .iter()
                .map(|i| match batched.get(&i.id()) {
                    Some((b, ax)) => (b.clone(), *ax),
                    None => (i.clone(), None),
                })
                .unzip();
            let result = node.primitive.vmap(&xs, &xa, &node.output_specs)?;
            slot.insert(result);
        }
        let (outs, oaxes) = &done[&key];
        batched.insert(a.id(), (outs[index].clone(), oaxes[index]));
    }
    let (outs, oaxes) = outputs
        .iter()
        .map(|o| match batched.get(&o.id()) {
            Some((b, ax)) => (b.clone(), *ax),
            None => (o.clone(), None),
        })
        .unzip();
    Ok((outs, oaxes, size))
}

/// Places the batch axis of a vmapped output at `out_axis`: an output that does not
/// depend on the batch is broadcast to it; `out_axis == None` returns an unbatched
/// output as it is (a batched one is an error).
pub fn vmap_finish(
    x: &Array,
    batch_axis: Option<usize>,
    out_axis: Option<i64>,
    size: usize,
) -> Result<Array> {
    let Some(d) = out_axis else {
        return match batch_axis {
            None => Ok(x.clone()),
            Some(_) => Err(crate::value_err!(
                "[vmap] An output that depends on the vmapped inputs cannot have an out axis of None."
            )),
        };
    };
    // the out axis indexes the batched output: valid in [-(nd+1), nd] for unbatched rank nd
    let nd = (x.ndim() - usize::from(batch_axis.is_some())) as i64;
    if d < -(nd + 1) || d > nd {
        let shape: Vec<usize> = match batch_axis {
            Some(a) => x
                .shape()
                .iter()
                .enumerate()
                .filter(|(i, _)| *i != a)
                .map(|(_, &s)| s)
                .collect(),
            None => x.shape().to_vec(),
        };
        return Err(crate::index_err!(
            "[vmap] Invalid output vectorization axis {d} for array with shape {}",
            shape_paren(&shape)
        ));
    }
    let d = if d < 0 { d + nd + 1 } else { d };
    match batch_axis {
        Some(a) => ops::moveaxis(x, a as i64, d),
        None => {
            let e = ops::expand_dims(x, &[d])?;
            let mut shape = e.shape().to_vec();
            shape[d as usize] = size;
            ops::broadcast_to(&e, &shape)
        }
    }
}

/// `f` vectorized over `in_axes` of `inputs`, its outputs batched along `out_axes`
/// (one per output, or a single axis for all).
pub fn vmap(
    f: impl FnOnce(&[Array]) -> Result<Vec<Array>>,
    inputs: &[Array],
    in_axes: &[Option<i64>],
    out_axes: &[Option<i64>],
) -> Result<Vec<Array>> {
    let (outs, axes, size) = vmap_trace(f, inputs, in_axes)?;
    if out_axes.len() != 1 && out_axes.len() != outs.len() {
        return Err(crate::value_err!(
            "[vmap] The number of out axes ({}) must match the number of outputs ({}).",
            out_axes.len(),
            outs.len()
        ));
    }
    outs.iter()
        .zip(&axes)
        .enumerate()
        .map(|(i, (o, a))| vmap_finish(o, *a, out_axes[i.min(out_axes.len() - 1)], size))
        .collect()
}
