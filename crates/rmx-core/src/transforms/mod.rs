//! Function transformations. Each takes a function of arrays and returns derived values;
//! the derivatives are built from ordinary lazy ops, so they can be transformed again.

pub mod autodiff;
pub mod custom;
pub mod vmap;

pub use autodiff::{grad, jvp, value_and_grad, vjp};
pub use custom::{checkpoint, CustomFunction};
pub use vmap::{vmap, vmap_finish, vmap_trace};

use crate::array::Array;
use std::collections::{HashMap, HashSet};

/// Arrays between `inputs` and `outputs` that depend on an input, in dependency order.
/// With `stop_at_blocked`, `stop_gradient` outputs count as constants (the derivative
/// transforms); vmap passes `false` since values still flow through them.
pub(crate) fn tape(
    outputs: &[Array],
    inputs: &HashSet<usize>,
    stop_at_blocked: bool,
) -> Vec<Array> {
    let mut order = Vec::new();
    let mut seen = HashSet::new();
    let mut depends: HashMap<usize, bool> = HashMap::new();
    let mut stack: Vec<(Array, bool)> = outputs.iter().map(|o| (o.clone(), false)).collect();
    while let Some((a, expanded)) = stack.pop() {
        if expanded {
            // stop_gradient outputs are constants for the transforms
            let blocked = stop_at_blocked && a.primitive().is_some_and(|p| p.blocks_gradient());
            let dep = inputs.contains(&a.id())
                || (!blocked
                    && a.inputs()
                        .iter()
                        .any(|i| *depends.get(&i.id()).unwrap_or(&false)));
            depends.insert(a.id(), dep);
            if dep {
                order.push(a);
            }
            continue;
        }
        if !seen.insert(a.id()) {
            continue;
        }
        stack.push((a.clone(), true));
        if inputs.contains(&a.id()) {
            continue;
        }
        for i in a.inputs().into_iter().rev() {
            if !seen.contains(&i.id()) {
                stack.push((i, false));
            }
        }
    }
    order
}
