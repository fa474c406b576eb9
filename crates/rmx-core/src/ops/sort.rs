//! Sorting and searching: sort, argsort, partition, argpartition, topk, median and
//! searchsorted. `axis` None works on the flattened array, as in MLX.

use crate::array::Array;
use crate::dtype::{promote_types, Dtype};
use crate::element::Scalar;
use crate::error::Result;
use crate::primitives::sort::{SearchSorted, Sort};
use crate::shape::{normalize_axis, shape_str, Shape};
use std::sync::Arc;

use super::elementwise::{astype, isnan, where_};
use super::shape::{flatten, reshape_exact, slice, transpose};

/// The array to work on and the normalized axis (None flattens).
fn along(name: &str, x: &Array, axis: Option<i64>) -> Result<(Array, usize)> {
    match axis {
        None => Ok((flatten(x, 0, -1)?, 0)),
        Some(a) => {
            let ax = normalize_axis(name, a, x.ndim()).map_err(|_| {
                crate::index_err!(
                    "[{name}] Axis {a} is out of bounds for array with {} dimensions.",
                    x.ndim()
                )
            })?;
            Ok((x.clone(), ax))
        }
    }
}

fn arrange(name: &str, x: &Array, axis: Option<i64>, kth: Option<i64>, arg: bool) -> Result<Array> {
    let (xr, ax) = along(name, x, axis)?;
    let kth = match kth {
        None => None,
        Some(k) => {
            let n = xr.shape()[ax] as i64;
            let kk = if k < 0 { k + n } else { k };
            if kk < 0 || kk >= n {
                return Err(crate::value_err!(
                    "[{name}] Received invalid kth {k} along axis {} for array with shape: {}",
                    axis.unwrap_or(0),
                    shape_str(xr.shape())
                ));
            }
            Some(kk as usize)
        }
    };
    Ok(Sort { axis: ax, kth, arg }.node(&xr))
}

/// A stably sorted copy along `axis` (NaN last).
pub fn sort(x: &Array, axis: Option<i64>) -> Result<Array> {
    arrange("sort", x, axis, None, false)
}

/// The uint32 indices that sort `x` along `axis` (stable).
pub fn argsort(x: &Array, axis: Option<i64>) -> Result<Array> {
    arrange("argsort", x, axis, None, true)
}

/// A copy with the element of sorted position `kth` in place, smaller ones before it.
pub fn partition(x: &Array, kth: i64, axis: Option<i64>) -> Result<Array> {
    arrange("partition", x, axis, Some(kth), false)
}

/// The uint32 indices of `partition`.
pub fn argpartition(x: &Array, kth: i64, axis: Option<i64>) -> Result<Array> {
    arrange("argpartition", x, axis, Some(kth), true)
}

/// The `k` largest elements along `axis`, in no particular order (the tail of a partition).
pub fn topk(x: &Array, k: i64, axis: Option<i64>) -> Result<Array> {
    let (xr, ax) = along("topk", x, axis)?;
    let n = xr.shape()[ax] as i64;
    if k < 0 || k > n {
        return Err(crate::value_err!(
            "[topk] Received invalid k={k} along axis {} for array with shape: {}",
            axis.unwrap_or(0),
            shape_str(xr.shape())
        ));
    }
    if k == n {
        return Ok(xr);
    }
    // MLX partitions at -k, which for k = 0 is position 0
    let part = Sort {
        axis: ax,
        kth: Some(if k == 0 { 0 } else { (n - k) as usize }),
        arg: false,
    }
    .node(&xr);
    let mut start = vec![0i64; xr.ndim()];
    start[ax] = n - k;
    let stop: Vec<i64> = xr.shape().iter().map(|&d| d as i64).collect();
    slice(&part, &start, &stop, None)
}

/// The median over `axes` (all by default), in the input's inexact type; NaN if any
/// element of a reduced group is NaN.
pub fn median(x: &Array, axes: Option<&[i64]>, keepdims: bool) -> Result<Array> {
    let nd = x.ndim();
    let mut red: Vec<usize> = Vec::new();
    match axes {
        None => red.extend(0..nd),
        Some(ax) => {
            for &a in ax {
                let i = normalize_axis("median", a, nd).map_err(|_| {
                    crate::index_err!(
                        "[median] axis {a} is out of bounds for array with {nd} dimensions."
                    )
                })?;
                if red.contains(&i) {
                    return Err(crate::value_err!("[median] Received duplicate axis."));
                }
                red.push(i);
            }
        }
    }
    red.sort_unstable();
    let kept: Vec<usize> = (0..nd).filter(|d| !red.contains(d)).collect();
    let xf = astype(x, x.dtype().to_inexact())?;
    // reduced axes last, merged into one
    let perm: Vec<i64> = kept.iter().chain(&red).map(|&d| d as i64).collect();
    let mut shape: Shape = kept.iter().map(|&d| x.shape()[d]).collect();
    let n: usize = red.iter().map(|&d| x.shape()[d]).product();
    if n == 0 {
        return Err(crate::value_err!(
            "[median] Cannot take median along empty axis."
        ));
    }
    shape.push(n);
    let lines = reshape_exact(&transpose(&xf, Some(&perm))?, shape.clone())?;
    let sorted = sort(&lines, Some(-1))?;
    let last = lines.ndim() as i64 - 1;
    let pick = |lo: usize, hi: usize| -> Result<Array> {
        let mut start = vec![0i64; lines.ndim()];
        let mut stop: Vec<i64> = shape.iter().map(|&d| d as i64).collect();
        start[last as usize] = lo as i64;
        stop[last as usize] = hi as i64;
        slice(&sorted, &start, &stop, None)
    };
    let mid = if n % 2 == 1 {
        pick(n / 2, n / 2 + 1)?
    } else {
        super::reduce::mean(&pick(n / 2 - 1, n / 2 + 1)?, Some(&[last]), true)?
    };
    // NaN sorts last: a NaN in the group shows in its last element
    let nan = super::elementwise::weak_scalar(Scalar::Float(f64::NAN), mid.dtype())?;
    let med = where_(&isnan(&pick(n - 1, n)?)?, &nan, &mid)?;
    let out: Shape = if keepdims {
        (0..nd)
            .map(|d| if red.contains(&d) { 1 } else { x.shape()[d] })
            .collect()
    } else {
        kept.iter().map(|&d| x.shape()[d]).collect()
    };
    reshape_exact(&med, out)
}

/// Insertion indices (uint32) of `values` into the sorted 1-d `seq`.
pub fn searchsorted(seq: &Array, values: &Array, side: &str) -> Result<Array> {
    let right = match side {
        "left" => false,
        "right" => true,
        _ => {
            return Err(crate::value_err!(
                "[searchsorted] Invalid side '{side}'. Expected 'left' or 'right'."
            ))
        }
    };
    if seq.ndim() != 1 {
        return Err(crate::value_err!(
            "[searchsorted] The sorted sequence must be 1-D but has {} dimensions.",
            seq.ndim()
        ));
    }
    let d: Dtype = promote_types(seq.dtype(), values.dtype());
    Ok(Array::from_op(
        values.shape().into(),
        Dtype::Uint32,
        Arc::new(SearchSorted { right }),
        vec![astype(seq, d)?, astype(values, d)?],
    ))
}
