//! `fast.cross_entropy(logits, targets)`: `logsumexp(logits, -1) - logits[..., target]`
//! as float32. MLX fuses it on Metal/CUDA (float32 accumulation) and on the CPU runs
//! this unfused graph, reducing in the logits' dtype and casting the loss to float32;
//! rmx is a CPU library, so it matches the CPU result bit for bit. Targets in
//! `[-V, V)` wrap like any rmx index; others raise IndexError at evaluation (MLX reads
//! out of bounds there). Derivatives and vmap come from the ops (MLX's too).

use crate::array::Array;
use crate::dtype::Dtype;
use crate::error::Result;
use crate::shape::shape_str;

use super::elementwise::{astype, subtract};
use super::indexing::take_along_axis;
use super::reduce::logsumexp;
use super::shape::{expand_dims, squeeze};

pub fn cross_entropy(logits: &Array, targets: &Array) -> Result<Array> {
    if logits.ndim() == 0 {
        return Err(crate::value_err!(
            "[cross_entropy] logits must have at least 1 dimension but got input with 0 dimensions."
        ));
    }
    if !logits.dtype().is_float() {
        return Err(crate::value_err!(
            "[cross_entropy] Received unsupported logits type {}.",
            logits.dtype()
        ));
    }
    if !targets.dtype().is_integer() {
        return Err(crate::value_err!(
            "[cross_entropy] targets must be integer class indices but got {}.",
            targets.dtype()
        ));
    }
    let lead = &logits.shape()[..logits.ndim() - 1];
    if targets.shape() != lead {
        return Err(crate::value_err!(
            "[cross_entropy] targets shape {} does not match logits shape {} with the last axis removed.",
            shape_str(targets.shape()),
            shape_str(logits.shape())
        ));
    }
    let lse = logsumexp(logits, Some(&[-1]), false)?;
    let picked = take_along_axis(logits, &expand_dims(targets, &[-1])?, Some(-1))?;
    let picked = squeeze(&picked, Some(&[-1]))?;
    astype(&subtract(&lse, &picked)?, Dtype::Float32)
}
