//! Evaluation: a topological walk from the requested arrays to computed leaves, then
//! each node run on its stream's backend. A computed node drops its inputs, so the
//! graph behind evaluated arrays is freed (constant memory over a training loop).

use crate::array::{Array, Node};
use crate::error::Result;
use std::collections::HashSet;
use std::sync::Arc;

/// Computes every array in `outputs` (and what they depend on). Shared subgraphs run once.
pub fn eval(outputs: &[Array]) -> Result<()> {
    let tape = build_tape(outputs);
    for arr in tape {
        // A sibling may have computed this node already.
        let Some((node, _)) = arr.node() else {
            continue;
        };
        if node.results.lock().is_some() {
            arr.try_data();
            continue;
        }
        run_node(&node)?;
        arr.try_data();
    }
    Ok(())
}

/// Starts evaluation; today it completes before returning (the stream scheduler makes it asynchronous).
pub fn async_eval(outputs: &[Array]) -> Result<()> {
    eval(outputs)
}

/// Pending arrays in dependency order, one per node.
fn build_tape(outputs: &[Array]) -> Vec<Array> {
    let mut tape = Vec::new();
    let mut seen: HashSet<usize> = HashSet::new();
    // (array, inputs pushed?)
    let mut stack: Vec<(Array, bool)> = Vec::new();
    for out in outputs {
        stack.push((out.clone(), false));
        while let Some((arr, expanded)) = stack.pop() {
            if expanded {
                tape.push(arr);
                continue;
            }
            let Some((node, _)) = arr.node() else {
                continue;
            };
            if node.results.lock().is_some() {
                continue;
            }
            if !seen.insert(Arc::as_ptr(&node) as *const () as usize) {
                continue;
            }
            let inputs = node.inputs.lock().clone();
            stack.push((arr, true));
            for inp in inputs.into_iter().rev() {
                if !inp.is_evaluated() {
                    stack.push((inp, false));
                }
            }
        }
    }
    tape
}

fn run_node(node: &Arc<Node>) -> Result<()> {
    let inputs = node.inputs.lock().clone();
    let mut in_data = Vec::with_capacity(inputs.len());
    for inp in &inputs {
        in_data.push(inp.try_data().ok_or_else(|| {
            crate::runtime_err!(
                "[eval] Input of {} was not computed.",
                node.primitive.name()
            )
        })?);
    }
    let backend = crate::backend::backend_for(node.stream.device)?;
    let results = node.primitive.eval(backend, &in_data, &node.output_specs)?;
    debug_assert_eq!(results.len(), node.output_specs.len());
    drop(in_data);
    *node.results.lock() = Some(results);
    node.inputs.lock().clear();
    Ok(())
}
