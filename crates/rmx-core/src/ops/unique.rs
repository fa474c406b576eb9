//! `unique(a, size, ...)`, MLX 0.32.4's fixed-size unique: sorted unique values of the
//! flattened array, padded with `fill_value` (default: the smallest unique value) or
//! truncated to `size`, and optionally the first-occurrence index (uint32), the inverse
//! (uint32, shaped like `a`, clamped to `size - 1`) and the counts (int32).
//!
//! Built from ordinary ops (no value-dependent shapes, so `a` is not evaluated): a stable
//! argsort, run starts where neighbours differ (NaN != NaN, so every NaN is its own
//! value, and -0.0 == 0.0, as in MLX), group ids by a cumulative sum, and the start of
//! each run found by sorting the run-start positions to the front (instead of MLX's
//! scatter). Every step has vjp, jvp and vmap rules, so unique has them too: gradients
//! reach the first occurrence of each value (and `fill_value` for the padding), as in
//! MLX; jvp works where MLX raises (its scatter has none).

use crate::array::Array;
use crate::dtype::Dtype;
use crate::element::Scalar;
use crate::error::Result;
use crate::shape::shape_str;

use super::creation::{arange, full, zeros};
use super::elementwise::{
    astype, less, minimum, not_equal, stop_gradient, subtract, weak_scalar, where_,
};
use super::indexing::take_along_axis;
use super::reduce::cumsum;
use super::shape::{broadcast_to, concatenate, flatten, reshape_exact, slice};
use super::sort::{argsort, sort};

fn int(v: i64, d: Dtype) -> Result<Array> {
    Array::scalar_of(Scalar::Int(v), d)
}

fn slice1(x: &Array, start: i64, stop: i64) -> Result<Array> {
    slice(x, &[start], &[stop], None)
}

/// MLX's unique: `[values, index?, inverse?, counts?]` in that order.
pub fn unique(
    a: &Array,
    size: i64,
    return_index: bool,
    return_inverse: bool,
    return_counts: bool,
    fill_value: Option<&Array>,
) -> Result<Vec<Array>> {
    if size < 0 {
        return Err(crate::value_err!("[unique] Received negative size {size}."));
    }
    let fill = match fill_value {
        Some(f) if f.size() != 1 => {
            return Err(crate::value_err!(
                "[unique] Fill value must have one element, but got shape {}.",
                shape_str(f.shape())
            ))
        }
        Some(f) => Some(astype(
            &reshape_exact(f, crate::shape::Shape::new())?,
            a.dtype(),
        )?),
        None => None,
    };
    let n = a.size();
    let sz = size as usize;
    let k = size;
    let mut out = Vec::with_capacity(4);
    if n == 0 {
        let values = match &fill {
            Some(f) => broadcast_to(f, &[sz])?,
            None if sz == 0 => zeros(&[0], a.dtype())?,
            None => {
                return Err(crate::value_err!(
                    "[unique] A fill value is required for an empty input with a non-zero size."
                ))
            }
        };
        out.push(values);
        if return_index {
            out.push(zeros(&[k], Dtype::Uint32)?);
        }
        if return_inverse {
            let sh: Vec<i64> = a.shape().iter().map(|&d| d as i64).collect();
            out.push(zeros(&sh, Dtype::Uint32)?);
        }
        if return_counts {
            out.push(zeros(&[k], Dtype::Int32)?);
        }
        return Ok(out);
    }

    // int32 positions unless n + n could overflow them
    let pd = if n > (i32::MAX as usize) / 2 {
        Dtype::Int64
    } else {
        Dtype::Int32
    };
    let nn = n as i64;
    let flat = flatten(a, 0, -1)?;
    let order = stop_gradient(&argsort(&flat, Some(0))?)?;
    let sorted = stop_gradient(&take_along_axis(&flat, &order, Some(0))?)?;
    let differs = not_equal(&slice1(&sorted, 1, nn)?, &slice1(&sorted, 0, nn - 1)?)?;
    let first = full(&[1], Scalar::Bool(true), Some(Dtype::Bool))?;
    let is_start = concatenate(&[first, differs], Some(0))?;
    // group id of each sorted position
    let gid = subtract(
        &cumsum(&astype(&is_start, pd)?, Some(0), false, true)?,
        &int(1, pd)?,
    )?;
    // run starts in increasing order, then n for every missing group
    let p = arange(0.0, n as f64, 1.0, pd)?;
    let nn_arr = int(nn, pd)?;
    let keys = sort(
        &where_(&is_start, &p, &super::elementwise::add(&p, &nn_arr)?)?,
        Some(0),
    )?;
    let starts = minimum(&keys, &nn_arr)?;
    let tail_len = (sz.max(n) + 1 - n) as i64;
    let bounds = concatenate(
        &[starts, full(&[tail_len], Scalar::Int(nn), Some(pd))?],
        Some(0),
    )?;
    let start = slice1(&bounds, 0, k)?;
    let end = slice1(&bounds, 1, k + 1)?;
    let valid = less(&start, &nn_arr)?;
    let pos = where_(&valid, &start, &int(0, pd)?)?;
    let index = take_along_axis(&order, &pos, Some(0))?;
    let mut values = take_along_axis(&flat, &index, Some(0))?;
    if let Some(f) = &fill {
        values = where_(&valid, &values, f)?;
    }
    out.push(values);
    if return_index {
        out.push(index);
    }
    if return_inverse {
        let inv_perm = argsort(&order, Some(0))?;
        let g = take_along_axis(&gid, &inv_perm, Some(0))?;
        let g = minimum(&g, &weak_scalar(Scalar::Int((k - 1).max(0)), pd)?)?;
        let sh = a.shape().into();
        out.push(reshape_exact(&astype(&g, Dtype::Uint32)?, sh)?);
    }
    if return_counts {
        let c = where_(&valid, &subtract(&end, &start)?, &int(0, pd)?)?;
        out.push(astype(&c, Dtype::Int32)?);
    }
    Ok(out)
}
