//! Reverse mode (`vjp`, `grad`, `value_and_grad`) and forward mode (`jvp`).
//! The function is traced on wrapped inputs; the graph between the wrappers and the
//! outputs is walked backwards (or forwards) calling each primitive's own rule.

use super::tape;
use crate::array::{Array, Node};
use crate::error::Result;
use crate::primitives::autodiff::Identity;
use std::collections::{HashMap, HashSet};
use std::sync::Arc;

/// Wraps `x` in an identity node so the traced graph can tell the input apart.
fn wrap(x: &Array) -> Array {
    Array::from_op(
        x.shape().into(),
        x.dtype(),
        Arc::new(Identity),
        vec![x.clone()],
    )
}

fn accumulate(map: &mut HashMap<usize, Array>, id: usize, g: Array) -> Result<()> {
    let v = match map.remove(&id) {
        Some(prev) => crate::ops::add(&prev, &g)?,
        None => g,
    };
    map.insert(id, v);
    Ok(())
}

/// Outputs of `f(primals)` and the vector-Jacobian products of `cotangents` with respect
/// to each primal.
pub fn vjp(
    f: impl FnOnce(&[Array]) -> Result<Vec<Array>>,
    primals: &[Array],
    cotangents: &[Array],
) -> Result<(Vec<Array>, Vec<Array>)> {
    let inputs: Vec<Array> = primals.iter().map(wrap).collect();
    let outputs = f(&inputs)?;
    if outputs.len() != cotangents.len() {
        return Err(crate::value_err!(
            "[vjp] Number of outputs to compute gradients for ({}) does not match number of cotangents ({}).",
            outputs.len(),
            cotangents.len()
        ));
    }
    for (o, c) in outputs.iter().zip(cotangents) {
        if o.shape() != c.shape() {
            return Err(crate::value_err!(
                "[vjp] Output shape {:?} does not match cotangent shape {:?}.",
                o.shape(),
                c.shape()
            ));
        }
    }
    let grads = backward(&inputs, primals, &outputs, cotangents)?;
    Ok((outputs, grads))
}

/// The arrays of `order` grouped by node: for each node, its outputs found on the tape
/// (by output index) and the position of the first one. Multi-output nodes are handled
/// once, at that first position: in forward order all their inputs come before it, and
/// in reverse order every consumer of every sibling has been seen by then.
struct NodeGroups {
    siblings: HashMap<*const Node, Vec<Option<Array>>>,
    first: HashSet<usize>,
}

fn group_by_node(order: &[Array]) -> NodeGroups {
    let mut siblings: HashMap<*const Node, Vec<Option<Array>>> = HashMap::new();
    let mut first = HashSet::new();
    for a in order {
        let Some((node, index)) = a.node() else {
            continue;
        };
        let entry = siblings.entry(Arc::as_ptr(&node)).or_insert_with(|| {
            first.insert(a.id());
            vec![None; node.output_specs.len()]
        });
        entry[index] = Some(a.clone());
    }
    NodeGroups { siblings, first }
}

/// The outputs of `node` as arrays: the tape's handles where present, new ones otherwise.
fn node_outputs(node: &Arc<Node>, on_tape: &[Option<Array>]) -> Vec<Array> {
    on_tape
        .iter()
        .enumerate()
        .map(|(j, a)| match a {
            Some(a) => a.clone(),
            None => Array::from_node(node.clone(), j),
        })
        .collect()
}

/// The backward walk on an already traced graph: cotangents flow from `outputs` to the
/// wrapped `inputs` through each primitive's vjp rule.
fn backward(
    inputs: &[Array],
    primals: &[Array],
    outputs: &[Array],
    cotangents: &[Array],
) -> Result<Vec<Array>> {
    let ids: HashSet<usize> = inputs.iter().map(|a| a.id()).collect();
    let order = tape(outputs, &ids, true);
    let dependent: HashSet<usize> = order.iter().map(|a| a.id()).collect();
    let groups = group_by_node(&order);
    let mut cts: HashMap<usize, Array> = HashMap::new();
    for (o, c) in outputs.iter().zip(cotangents) {
        if dependent.contains(&o.id()) {
            accumulate(&mut cts, o.id(), crate::ops::astype(c, o.dtype())?)?;
        }
    }
    for a in order.iter().rev() {
        if ids.contains(&a.id()) || !groups.first.contains(&a.id()) {
            continue;
        }
        let Some((node, _)) = a.node() else { continue };
        let on_tape = &groups.siblings[&Arc::as_ptr(&node)];
        let found: Vec<Option<Array>> = on_tape
            .iter()
            .map(|s| s.as_ref().and_then(|s| cts.remove(&s.id())))
            .collect();
        if found.iter().all(Option::is_none) {
            continue;
        }
        let ins = a.inputs();
        let argnums: Vec<usize> = (0..ins.len())
            .filter(|&k| dependent.contains(&ins[k].id()))
            .collect();
        if argnums.is_empty() {
            continue;
        }
        let outs = node_outputs(&node, on_tape);
        let ct: Vec<Array> = found
            .into_iter()
            .zip(&outs)
            .map(|(c, o)| match c {
                Some(c) => Ok(c),
                None => crate::ops::zeros_like(o),
            })
            .collect::<Result<_>>()?;
        let grads = node.primitive.vjp(&ins, &ct, &argnums, &outs)?;
        for (&k, g) in argnums.iter().zip(grads) {
            accumulate(&mut cts, ins[k].id(), g)?;
        }
    }
    inputs
        .iter()
        .zip(primals)
        .map(|(w, p)| match cts.remove(&w.id()) {
            Some(g) => Ok(g),
            None => crate::ops::zeros_like(p),
        })
        .collect()
}

/// Outputs of `f(primals)` and their Jacobian-vector products with `tangents`.
pub fn jvp(
    f: impl FnOnce(&[Array]) -> Result<Vec<Array>>,
    primals: &[Array],
    tangents: &[Array],
) -> Result<(Vec<Array>, Vec<Array>)> {
    if primals.len() != tangents.len() {
        return Err(crate::value_err!(
            "[jvp] Number of inputs does not match number of tangents."
        ));
    }
    for (p, t) in primals.iter().zip(tangents) {
        if p.shape() != t.shape() {
            return Err(crate::value_err!(
                "[jvp] Inputs shape {:?} does not match tangent shape {:?}.",
                p.shape(),
                t.shape()
            ));
        }
    }
    let inputs: Vec<Array> = primals.iter().map(wrap).collect();
    let outputs = f(&inputs)?;
    let ids: HashSet<usize> = inputs.iter().map(|a| a.id()).collect();
    let order = tape(&outputs, &ids, true);
    let groups = group_by_node(&order);
    let mut tans: HashMap<usize, Array> = HashMap::new();
    for (w, t) in inputs.iter().zip(tangents) {
        tans.insert(w.id(), t.clone());
    }
    for a in &order {
        if ids.contains(&a.id()) || !groups.first.contains(&a.id()) {
            continue;
        }
        let Some((node, _)) = a.node() else { continue };
        let ins = a.inputs();
        let argnums: Vec<usize> = (0..ins.len())
            .filter(|&k| tans.contains_key(&ins[k].id()))
            .collect();
        if argnums.is_empty() {
            continue;
        }
        let ts: Vec<Array> = argnums
            .iter()
            .map(|&k| tans[&ins[k].id()].clone())
            .collect();
        let on_tape = &groups.siblings[&Arc::as_ptr(&node)];
        let outs = node_outputs(&node, on_tape);
        let out = node.primitive.jvp(&ins, &ts, &argnums, &outs)?;
        for (o, t) in on_tape.iter().zip(out) {
            if let Some(o) = o {
                tans.insert(o.id(), t);
            }
        }
    }
    let out_tans = outputs
        .iter()
        .map(|o| match tans.get(&o.id()) {
            Some(t) => Ok(t.clone()),
            None => crate::ops::zeros_like(o),
        })
        .collect::<Result<Vec<_>>>()?;
    Ok((outputs, out_tans))
}

/// All of `f`'s outputs, and the gradient of the first one (a scalar) with respect to the
/// inputs at `argnums`. The other outputs ride along (MLX's `(loss, aux)` pattern).
pub fn value_and_grad(
    f: impl FnOnce(&[Array]) -> Result<Vec<Array>>,
    inputs: &[Array],
    argnums: &[usize],
) -> Result<(Vec<Array>, Vec<Array>)> {
    for &k in argnums {
        if k >= inputs.len() {
            return Err(crate::value_err!(
                "[grad] Invalid argument number {k} for function with {} inputs.",
                inputs.len()
            ));
        }
    }
    let primals: Vec<Array> = argnums.iter().map(|&k| inputs[k].clone()).collect();
    let wrapped: Vec<Array> = primals.iter().map(wrap).collect();
    let mut args = inputs.to_vec();
    for (&k, w) in argnums.iter().zip(&wrapped) {
        args[k] = w.clone();
    }
    let outputs = f(&args)?;
    let first = outputs
        .first()
        .ok_or_else(|| crate::value_err!("[grad] The function must return at least one array."))?;
    if first.size() != 1 {
        return Err(crate::value_err!(
            "[grad] The function being differentiated must return a scalar, got shape {}.",
            crate::shape::shape_str(first.shape())
        ));
    }
    let seed = crate::ops::ones_like(first)?;
    let grads = backward(&wrapped, &primals, std::slice::from_ref(first), &[seed])?;
    Ok((outputs, grads))
}

/// The gradient of `f`'s scalar output with respect to the inputs at `argnums`.
pub fn grad(
    f: impl FnOnce(&[Array]) -> Result<Vec<Array>>,
    inputs: &[Array],
    argnums: &[usize],
) -> Result<Vec<Array>> {
    value_and_grad(f, inputs, argnums).map(|(_, g)| g)
}
