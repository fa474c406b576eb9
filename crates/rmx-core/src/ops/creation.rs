//! Array creation: `zeros`, `ones`, `full`, `*_like`, `arange`, `linspace`, `eye`,
//! `identity`, `tri`, `tril`, `triu`, `meshgrid`.

use crate::array::Array;
use crate::dtype::Dtype;
use crate::element::Scalar;
use crate::error::Result;
use crate::primitives::creation::{Arange, Full};
use crate::shape::Shape;
use std::sync::Arc;

use super::elementwise::{astype, greater_equal, less_equal, subtract, where_};
use super::shape::{broadcast_to, reshape};

fn check_shape(op: &str, shape: &[i64]) -> Result<Shape> {
    if shape.iter().any(|&d| d < 0) {
        return Err(crate::value_err!("[{op}] Negative dimensions not allowed."));
    }
    Ok(shape.iter().map(|&d| d as usize).collect())
}

/// An array of `shape` filled with `value` (dtype defaults to the value's own).
pub fn full(shape: &[i64], value: Scalar, dtype: Option<Dtype>) -> Result<Array> {
    let shape = check_shape("full", shape)?;
    let dtype = dtype.unwrap_or(value.default_dtype());
    Ok(Array::from_op(
        shape,
        dtype,
        Arc::new(Full { value }),
        vec![],
    ))
}

/// `full` with an array value, broadcast to `shape`.
pub fn full_array(shape: &[i64], value: &Array, dtype: Option<Dtype>) -> Result<Array> {
    let shape = check_shape("full", shape)?;
    let v = astype(value, dtype.unwrap_or(value.dtype()))?;
    super::shape::contiguous(&broadcast_to(&v, &shape)?)
}

pub fn zeros(shape: &[i64], dtype: Dtype) -> Result<Array> {
    full(shape, Scalar::Int(0), Some(dtype))
}

pub fn ones(shape: &[i64], dtype: Dtype) -> Result<Array> {
    full(shape, Scalar::Int(1), Some(dtype))
}

fn shape_i64(x: &Array) -> Vec<i64> {
    x.shape().iter().map(|&d| d as i64).collect()
}

pub fn zeros_like(x: &Array) -> Result<Array> {
    zeros(&shape_i64(x), x.dtype())
}

pub fn ones_like(x: &Array) -> Result<Array> {
    ones(&shape_i64(x), x.dtype())
}

pub fn full_like(x: &Array, value: Scalar, dtype: Option<Dtype>) -> Result<Array> {
    full(&shape_i64(x), value, Some(dtype.unwrap_or(x.dtype())))
}

/// Values from `start` to `stop` (exclusive) by `step`. The dtype defaults to int32
/// when all of start/stop/step are integers, else float32.
pub fn arange(start: f64, stop: f64, step: f64, dtype: Dtype) -> Result<Array> {
    if step == 0.0 {
        return Err(crate::value_err!("[arange] step must be nonzero."));
    }
    if start.is_nan() || stop.is_nan() || step.is_nan() {
        return Err(crate::value_err!("[arange] Cannot compute length."));
    }
    let n = ((stop - start) / step).ceil();
    if n.is_infinite() {
        return Err(crate::value_err!("[arange] Cannot compute length."));
    }
    let n = n.max(0.0) as usize;
    if dtype == Dtype::Bool {
        return Err(crate::value_err!("[arange] Cannot use bool dtype."));
    }
    Ok(Array::from_op(
        Shape::from_slice(&[n]),
        dtype,
        Arc::new(Arange { start, step }),
        vec![],
    ))
}

/// `num` evenly spaced values over `[start, stop]`.
pub fn linspace(start: f64, stop: f64, num: i64, dtype: Dtype) -> Result<Array> {
    if num < 0 {
        return Err(crate::value_err!(
            "[linspace] number of samples, {num}, must be non-negative."
        ));
    }
    if num == 1 {
        return astype(
            &full(&[1], Scalar::Float(start), Some(Dtype::Float32))?,
            dtype,
        );
    }
    let step = if num > 1 {
        (stop - start) / (num - 1) as f64
    } else {
        0.0
    };
    // computed in float32 like MLX: start + i * step
    let idx = arange(0.0, num as f64, 1.0, Dtype::Float32)?;
    let t = super::elementwise::multiply(
        &idx,
        &Array::scalar_of(Scalar::Float(step), Dtype::Float32)?,
    )?;
    let v = super::elementwise::add(&t, &Array::scalar_of(Scalar::Float(start), Dtype::Float32)?)?;
    astype(&v, dtype)
}

/// Ones on the `k`-th diagonal of an `n x m` matrix.
pub fn eye(n: i64, m: Option<i64>, k: i64, dtype: Dtype) -> Result<Array> {
    let m = m.unwrap_or(n);
    if n < 0 || m < 0 {
        return Err(crate::value_err!(
            "[eye] N and M must be positive integers."
        ));
    }
    let rows = reshape(&arange(0.0, n as f64, 1.0, Dtype::Int64)?, &[n, 1])?;
    let cols = arange(0.0, m as f64, 1.0, Dtype::Int64)?;
    let diff = subtract(&cols, &rows)?;
    let mask = super::elementwise::equal(&diff, &Array::scalar_of(Scalar::Int(k), Dtype::Int64)?)?;
    astype(&mask, dtype)
}

pub fn identity(n: i64, dtype: Dtype) -> Result<Array> {
    eye(n, None, 0, dtype)
}

/// Ones at and below the `k`-th diagonal of an `n x m` matrix.
pub fn tri(n: i64, m: Option<i64>, k: i64, dtype: Dtype) -> Result<Array> {
    let m = m.unwrap_or(n);
    if n < 0 || m < 0 {
        return Err(crate::value_err!("[tri] N and M must be non-negative."));
    }
    let rows = reshape(&arange(0.0, n as f64, 1.0, Dtype::Int64)?, &[n, 1])?;
    let cols = arange(0.0, m as f64, 1.0, Dtype::Int64)?;
    let diff = subtract(&cols, &rows)?;
    let mask = less_equal(&diff, &Array::scalar_of(Scalar::Int(k), Dtype::Int64)?)?;
    astype(&mask, dtype)
}

fn tri_mask(x: &Array, k: i64, lower: bool) -> Result<Array> {
    if x.ndim() < 2 {
        let name = if lower { "tril" } else { "triu" };
        return Err(crate::value_err!("[{name}] array must be at least 2-D"));
    }
    let (n, m) = (
        x.shape()[x.ndim() - 2] as i64,
        x.shape()[x.ndim() - 1] as i64,
    );
    let rows = reshape(&arange(0.0, n as f64, 1.0, Dtype::Int64)?, &[n, 1])?;
    let cols = arange(0.0, m as f64, 1.0, Dtype::Int64)?;
    let diff = subtract(&cols, &rows)?;
    let kk = Array::scalar_of(Scalar::Int(k), Dtype::Int64)?;
    if lower {
        super::elementwise::less_equal(&diff, &kk)
    } else {
        greater_equal(&diff, &kk)
    }
}

pub fn tril(x: &Array, k: i64) -> Result<Array> {
    let mask = tri_mask(x, k, true)?;
    where_(&mask, x, &zeros_like(x)?)
}

pub fn triu(x: &Array, k: i64) -> Result<Array> {
    let mask = tri_mask(x, k, false)?;
    where_(&mask, x, &zeros_like(x)?)
}

/// Coordinate grids from 1-d arrays (`indexing` "xy" or "ij"); `sparse` keeps size-1 axes.
pub fn meshgrid(arrays: &[Array], sparse: bool, indexing: &str) -> Result<Vec<Array>> {
    if indexing != "xy" && indexing != "ij" {
        return Err(crate::value_err!(
            "[meshgrid] Invalid indexing value. Valid values are 'xy' and 'ij'."
        ));
    }
    let n = arrays.len();
    let flat: Vec<Array> = arrays
        .iter()
        .map(|a| super::shape::flatten(a, 0, -1))
        .collect::<Result<_>>()?;
    let mut outs = Vec::with_capacity(n);
    for (i, a) in flat.iter().enumerate() {
        let mut shape = vec![1i64; n];
        shape[i] = -1;
        // "xy" indexing swaps the roles of the first two axes
        if indexing == "xy" && n >= 2 && i < 2 {
            shape.swap(0, 1);
        }
        outs.push(reshape(a, &shape)?);
    }
    if sparse {
        return Ok(outs);
    }
    let refs: Vec<&Array> = outs.iter().collect();
    super::shape::broadcast_arrays(&refs)
}
