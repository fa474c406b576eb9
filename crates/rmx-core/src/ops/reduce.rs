//! Reductions: sum, prod, max, min, mean, var, std, logsumexp, all, any, argmax,
//! argmin, count_nonzero, and softmax. `axes` None reduces everything.

use crate::array::Array;
use crate::backend::{ArgReduceOp, ReduceOp};
use crate::dtype::Dtype;
use crate::element::Scalar;
use crate::error::Result;
use crate::primitives::reduce::{ArgReduce, Reduce, Scan, Softmax};
use crate::shape::{normalize_axis, Shape};
use std::sync::Arc;

use super::elementwise::{astype, divide, exp, log, square, subtract, weak_scalar};
use super::shape::{moveaxis, reshape_exact};

fn reduce_axes(x: &Array, axes: Option<&[i64]>) -> Result<Vec<usize>> {
    let nd = x.ndim();
    match axes {
        None => Ok((0..nd).collect()),
        Some(ax) => {
            let mut out = Vec::with_capacity(ax.len());
            for &a in ax {
                let i = normalize_axis("reduce", a, nd).map_err(|_| {
                    crate::index_err!("Invalid axis {a} for array with {nd} dimensions.")
                })?;
                if out.contains(&i) {
                    return Err(crate::value_err!("Duplicate axes detected in reduction."));
                }
                out.push(i);
            }
            out.sort_unstable();
            Ok(out)
        }
    }
}

fn finish(x: &Array, reduced: Array, axes: &[usize], keepdims: bool) -> Result<Array> {
    if keepdims {
        return Ok(reduced);
    }
    let shape: Shape = (0..x.ndim())
        .filter(|d| !axes.contains(d))
        .map(|d| x.shape()[d])
        .collect();
    reshape_exact(&reduced, shape)
}

fn reduce(
    op: ReduceOp,
    x: &Array,
    axes: Option<&[i64]>,
    keepdims: bool,
    out_dtype: Dtype,
) -> Result<Array> {
    let axes = reduce_axes(x, axes)?;
    let name = match op {
        ReduceOp::Max => "max",
        ReduceOp::Min => "min",
        _ => "",
    };
    if !name.is_empty() {
        for &a in &axes {
            if x.shape()[a] == 0 {
                return Err(crate::value_err!(
                    "[{name}] Cannot {name} reduce over axis {a} with size 0."
                ));
            }
        }
    }
    let input_dtype = if matches!(op, ReduceOp::All | ReduceOp::Any) {
        Dtype::Bool
    } else {
        out_dtype
    };
    let xi = astype(x, input_dtype)?;
    if axes.is_empty() {
        return Ok(xi);
    }
    let mut shape: Shape = x.shape().into();
    for &a in &axes {
        shape[a] = 1;
    }
    let r = Array::from_op(
        shape,
        out_dtype,
        Arc::new(Reduce {
            op,
            axes: axes.clone(),
        }),
        vec![xi],
    );
    finish(x, r, &axes, keepdims)
}

/// The dtype MLX sums and multiplies in: small integers widen to 32 bits.
fn sum_dtype(d: Dtype) -> Dtype {
    use Dtype::*;
    match d {
        Bool | Int8 | Int16 => Int32,
        Uint8 | Uint16 => Uint32,
        other => other,
    }
}

pub fn sum(x: &Array, axes: Option<&[i64]>, keepdims: bool) -> Result<Array> {
    reduce(ReduceOp::Sum, x, axes, keepdims, sum_dtype(x.dtype()))
}

pub fn prod(x: &Array, axes: Option<&[i64]>, keepdims: bool) -> Result<Array> {
    reduce(ReduceOp::Prod, x, axes, keepdims, sum_dtype(x.dtype()))
}

pub fn max(x: &Array, axes: Option<&[i64]>, keepdims: bool) -> Result<Array> {
    reduce(ReduceOp::Max, x, axes, keepdims, x.dtype())
}

pub fn min(x: &Array, axes: Option<&[i64]>, keepdims: bool) -> Result<Array> {
    reduce(ReduceOp::Min, x, axes, keepdims, x.dtype())
}

pub fn all(x: &Array, axes: Option<&[i64]>, keepdims: bool) -> Result<Array> {
    reduce(ReduceOp::All, x, axes, keepdims, Dtype::Bool)
}

pub fn any(x: &Array, axes: Option<&[i64]>, keepdims: bool) -> Result<Array> {
    reduce(ReduceOp::Any, x, axes, keepdims, Dtype::Bool)
}

fn count(x: &Array, axes: &[usize]) -> usize {
    axes.iter().map(|&a| x.shape()[a]).product()
}

pub fn mean(x: &Array, axes: Option<&[i64]>, keepdims: bool) -> Result<Array> {
    let ax = reduce_axes(x, axes)?;
    let d = x.dtype().to_inexact();
    let s = sum(&astype(x, d)?, axes, keepdims)?;
    let n = count(x, &ax);
    divide(&s, &weak_scalar(Scalar::Float(n as f64), d)?)
}

pub fn var(x: &Array, axes: Option<&[i64]>, keepdims: bool, ddof: i64) -> Result<Array> {
    let ax = reduce_axes(x, axes)?;
    let d = x.dtype().to_inexact();
    let xf = astype(x, d)?;
    let mu = mean(&xf, axes, true)?;
    let dev = subtract(&xf, &mu)?;
    let sq = if d.is_complex() {
        let a = super::elementwise::abs(&dev)?;
        square(&a)?
    } else {
        square(&dev)?
    };
    let s = sum(&sq, axes, keepdims)?;
    let n = count(x, &ax) as i64 - ddof;
    let nf = if n > 0 { n as f64 } else { 0.0 };
    divide(&s, &weak_scalar(Scalar::Float(nf), s.dtype())?)
}

pub fn std(x: &Array, axes: Option<&[i64]>, keepdims: bool, ddof: i64) -> Result<Array> {
    super::elementwise::sqrt(&var(x, axes, keepdims, ddof)?)
}

/// `log(sum(exp(x)))` computed stably. As in MLX, the max is taken and subtracted in
/// the input dtype; `exp` moves integers to float32.
pub fn logsumexp(x: &Array, axes: Option<&[i64]>, keepdims: bool) -> Result<Array> {
    if x.size() == 0 {
        return Err(crate::value_err!("[logsumexp] Received empty array."));
    }
    let ax = reduce_axes(x, axes)?;
    let m = max(x, axes, true)?;
    // infinite maxima would turn x - m into NaN: use 0 there
    let zero = super::creation::zeros_like(&m)?;
    let m = super::elementwise::where_(&super::elementwise::isinf(&m)?, &zero, &m)?;
    let s = sum(&exp(&subtract(x, &m)?)?, axes, true)?;
    let r = super::elementwise::add(&log(&s)?, &m)?;
    finish(x, r, &ax, keepdims)
}

fn arg_reduce(op: ArgReduceOp, x: &Array, axis: Option<i64>, keepdims: bool) -> Result<Array> {
    let name = if op == ArgReduceOp::ArgMax {
        "argmax"
    } else {
        "argmin"
    };
    let (xr, ax, keep_shape): (Array, usize, Shape) = match axis {
        None => {
            let flat = super::shape::flatten(x, 0, -1)?;
            let ks: Shape = Shape::from_elem(1, x.ndim());
            (flat, 0, ks)
        }
        Some(a) => {
            let ax = normalize_axis(name, a, x.ndim()).map_err(|_| {
                crate::index_err!("Invalid axis {a} for array with {} dimensions.", x.ndim())
            })?;
            let mut ks: Shape = x.shape().into();
            ks[ax] = 1;
            (x.clone(), ax, ks)
        }
    };
    if xr.shape()[ax] == 0 {
        return Err(crate::value_err!(
            "[{name}] Cannot {name} reduce over axis {ax} with size 0."
        ));
    }
    let mut shape: Shape = xr.shape().into();
    shape[ax] = 1;
    let r = Array::from_op(
        shape,
        Dtype::Uint32,
        Arc::new(ArgReduce { op, axis: ax }),
        vec![xr.clone()],
    );
    if keepdims {
        return reshape_exact(&r, keep_shape);
    }
    let out: Shape = match axis {
        None => Shape::new(),
        Some(_) => (0..x.ndim())
            .filter(|&d| d != ax)
            .map(|d| x.shape()[d])
            .collect(),
    };
    reshape_exact(&r, out)
}

pub fn argmax(x: &Array, axis: Option<i64>, keepdims: bool) -> Result<Array> {
    arg_reduce(ArgReduceOp::ArgMax, x, axis, keepdims)
}

pub fn argmin(x: &Array, axis: Option<i64>, keepdims: bool) -> Result<Array> {
    arg_reduce(ArgReduceOp::ArgMin, x, axis, keepdims)
}

/// Number of non-zero elements along `axes`, as uint32 like MLX's sum of a mask would be int32.
pub fn count_nonzero(x: &Array, axes: Option<&[i64]>, keepdims: bool) -> Result<Array> {
    let nz = super::elementwise::not_equal(x, &weak_scalar(Scalar::Int(0), x.dtype())?)?;
    sum(&nz, axes, keepdims)
}

/// `exp(x) / sum(exp(x))` along `axes` (the last axis is fused in one kernel).
pub fn softmax(x: &Array, axes: Option<&[i64]>, precise: bool) -> Result<Array> {
    let _ = precise;
    let d = x.dtype().to_inexact();
    let xf = astype(x, d)?;
    let ax = reduce_axes(x, axes)?;
    if xf.size() == 0 {
        return Ok(xf);
    }
    if ax.is_empty() {
        // a 0-d input: exp(x - x) / exp(x - x)
        let e = exp(&subtract(&xf, &xf)?)?;
        return divide(&e, &e);
    }
    if d.is_complex() {
        let m = max(&xf, axes, true)?;
        let e = exp(&subtract(&xf, &m)?)?;
        return divide(&e, &sum(&e, axes, true)?);
    }
    if ax.len() == 1 {
        let nd = x.ndim();
        let moved = if ax[0] == nd - 1 {
            xf.clone()
        } else {
            moveaxis(&xf, ax[0] as i64, -1)?
        };
        let s = Array::from_op(moved.shape().into(), d, Arc::new(Softmax), vec![moved]);
        return if ax[0] == nd - 1 {
            Ok(s)
        } else {
            moveaxis(&s, -1, ax[0] as i64)
        };
    }
    let m = max(&xf, axes, true)?;
    let e = exp(&subtract(&xf, &m)?)?;
    divide(&e, &sum(&e, axes, true)?)
}

fn scan(
    op: crate::backend::ScanOp,
    name: &str,
    x: &Array,
    axis: Option<i64>,
    reverse: bool,
    inclusive: bool,
    dtype: Dtype,
) -> Result<Array> {
    let (xr, ax) = match axis {
        None => (super::shape::flatten(x, 0, -1)?, 0usize),
        Some(a) => {
            let ax = normalize_axis(name, a, x.ndim()).map_err(|_| {
                crate::index_err!(
                    "[{name}] Axis {a} is out of bounds for array with {} dimensions.",
                    x.ndim()
                )
            })?;
            (x.clone(), ax)
        }
    };
    if xr.ndim() == 0 {
        return astype(&xr, dtype);
    }
    let xi = astype(&xr, dtype)?;
    Ok(Array::from_op(
        xi.shape().into(),
        dtype,
        Arc::new(Scan {
            op,
            axis: ax,
            reverse,
            inclusive,
        }),
        vec![xi],
    ))
}

pub fn cumsum(x: &Array, axis: Option<i64>, reverse: bool, inclusive: bool) -> Result<Array> {
    let d = if x.dtype() == Dtype::Bool {
        Dtype::Int32
    } else {
        x.dtype()
    };
    scan(
        crate::backend::ScanOp::Reduce(ReduceOp::Sum),
        "cumsum",
        x,
        axis,
        reverse,
        inclusive,
        d,
    )
}

pub fn cumprod(x: &Array, axis: Option<i64>, reverse: bool, inclusive: bool) -> Result<Array> {
    scan(
        crate::backend::ScanOp::Reduce(ReduceOp::Prod),
        "cumprod",
        x,
        axis,
        reverse,
        inclusive,
        x.dtype(),
    )
}

pub fn cummax(x: &Array, axis: Option<i64>, reverse: bool, inclusive: bool) -> Result<Array> {
    scan(
        crate::backend::ScanOp::Reduce(ReduceOp::Max),
        "cummax",
        x,
        axis,
        reverse,
        inclusive,
        x.dtype(),
    )
}

pub fn cummin(x: &Array, axis: Option<i64>, reverse: bool, inclusive: bool) -> Result<Array> {
    scan(
        crate::backend::ScanOp::Reduce(ReduceOp::Min),
        "cummin",
        x,
        axis,
        reverse,
        inclusive,
        x.dtype(),
    )
}

pub fn logcumsumexp(x: &Array, axis: Option<i64>, reverse: bool, inclusive: bool) -> Result<Array> {
    scan(
        crate::backend::ScanOp::LogAddExp,
        "logcumsumexp",
        x,
        axis,
        reverse,
        inclusive,
        x.dtype().to_inexact(),
    )
}
