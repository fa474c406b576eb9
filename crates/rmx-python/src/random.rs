//! `rmx.core.random`, the submodule mirroring `mlx.core.random`.

use crate::array::PyArray;
use crate::convert::arg_array;
use crate::device::on_stream;
use crate::errors::PyResultExt;
use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::prelude::*;
use rmx_core::ops::random as r;
use rmx_core::{Array, Dtype};

type Any<'py> = Bound<'py, PyAny>;

/// A non-negative shape (MLX reports negative sizes from `bits`).
fn shape(obj: Option<&Any<'_>>) -> PyResult<Vec<usize>> {
    let Some(o) = obj else { return Ok(vec![]) };
    let s = crate::args::shape(o)?;
    s.iter()
        .map(|&d| {
            usize::try_from(d)
                .map_err(|_| PyValueError::new_err("[bits] Negative dimensions not allowed."))
        })
        .collect()
}

fn opt_shape(obj: Option<&Any<'_>>) -> PyResult<Option<Vec<usize>>> {
    match obj {
        Some(o) if !o.is_none() => Ok(Some(shape(Some(o))?)),
        _ => Ok(None),
    }
}

fn key_arg(obj: Option<&Any<'_>>) -> PyResult<Option<Array>> {
    match obj {
        Some(o) if !o.is_none() => Ok(Some(
            o.downcast::<PyArray>()
                .map_err(|_| PyTypeError::new_err("key must be an array"))?
                .borrow()
                .inner
                .clone(),
        )),
        _ => Ok(None),
    }
}

fn dtype_or(obj: Option<&Any<'_>>, default: Dtype) -> PyResult<Dtype> {
    Ok(crate::args::dtype(obj)?.unwrap_or(default))
}

/// The common trailing arguments: shape, dtype (or `default`) and key.
fn sdk(
    shape: Option<&Any<'_>>,
    dtype: Option<&Any<'_>>,
    key: Option<&Any<'_>>,
    default: Dtype,
) -> PyResult<(Vec<usize>, Dtype, Option<Array>)> {
    Ok((
        self::shape(shape)?,
        dtype_or(dtype, default)?,
        key_arg(key)?,
    ))
}

fn opt_array(obj: Option<&Any<'_>>) -> PyResult<Option<Array>> {
    match obj {
        Some(o) if !o.is_none() => Ok(Some(arg_array(o)?)),
        _ => Ok(None),
    }
}

/// A seed: a Python int in [0, 2**64) (others are rejected as MLX's binding does).
fn seed_arg(obj: &Any<'_>) -> PyResult<u64> {
    obj.extract::<u64>().map_err(|_| {
        PyTypeError::new_err("incompatible function arguments: seed must be an int in [0, 2**64)")
    })
}

#[pyfunction]
#[pyo3(signature = (seed))]
fn key(seed: &Any<'_>) -> PyResult<PyArray> {
    Ok(r::key(seed_arg(seed)?).py()?.into())
}

#[pyfunction]
#[pyo3(signature = (seed))]
fn seed(seed: &Any<'_>) -> PyResult<()> {
    r::seed(seed_arg(seed)?).py()
}

#[pyfunction]
#[pyo3(signature = (key, num = 2, stream = None))]
fn split(key: &Any<'_>, num: i64, stream: Option<&Any<'_>>) -> PyResult<PyArray> {
    let k = key_arg(Some(key))?.expect("a key");
    let n = usize::try_from(num)
        .map_err(|_| PyValueError::new_err("[bits] Negative dimensions not allowed."))?;
    on_stream(stream, || Ok(r::split(&k, n).py()?.into()))
}

/// rmx extra (MLX's C++ `random::bits`): raw random unsigned integers.
#[pyfunction]
#[pyo3(signature = (shape = None, width = 4, key = None, stream = None))]
fn bits(
    shape: Option<&Any<'_>>,
    width: usize,
    key: Option<&Any<'_>>,
    stream: Option<&Any<'_>>,
) -> PyResult<PyArray> {
    let (s, k) = (self::shape(shape)?, key_arg(key)?);
    on_stream(stream, || Ok(r::bits(&s, width, k.as_ref()).py()?.into()))
}

#[pyfunction]
#[pyo3(signature = (low = None, high = None, shape = None, dtype = None, key = None, stream = None))]
fn uniform(
    low: Option<&Any<'_>>,
    high: Option<&Any<'_>>,
    shape: Option<&Any<'_>>,
    dtype: Option<&Any<'_>>,
    key: Option<&Any<'_>>,
    stream: Option<&Any<'_>>,
) -> PyResult<PyArray> {
    let lo = opt_array(low)?.unwrap_or_else(|| Array::scalar(0));
    let hi = opt_array(high)?.unwrap_or_else(|| Array::scalar(1));
    let (s, d, k) = sdk(shape, dtype, key, Dtype::Float32)?;
    on_stream(stream, || {
        Ok(r::uniform(&lo, &hi, &s, d, k.as_ref()).py()?.into())
    })
}

#[pyfunction]
#[pyo3(signature = (shape = None, dtype = None, loc = None, scale = None, key = None, stream = None))]
fn normal(
    shape: Option<&Any<'_>>,
    dtype: Option<&Any<'_>>,
    loc: Option<&Any<'_>>,
    scale: Option<&Any<'_>>,
    key: Option<&Any<'_>>,
    stream: Option<&Any<'_>>,
) -> PyResult<PyArray> {
    let (s, d, k) = sdk(shape, dtype, key, Dtype::Float32)?;
    let (l, sc) = (opt_array(loc)?, opt_array(scale)?);
    on_stream(stream, || {
        Ok(r::normal(&s, d, l.as_ref(), sc.as_ref(), k.as_ref())
            .py()?
            .into())
    })
}

#[pyfunction]
#[pyo3(signature = (low, high, shape = None, dtype = None, key = None, stream = None))]
fn randint(
    low: &Any<'_>,
    high: &Any<'_>,
    shape: Option<&Any<'_>>,
    dtype: Option<&Any<'_>>,
    key: Option<&Any<'_>>,
    stream: Option<&Any<'_>>,
) -> PyResult<PyArray> {
    let (lo, hi) = (arg_array(low)?, arg_array(high)?);
    let (s, d, k) = sdk(shape, dtype, key, Dtype::Int32)?;
    on_stream(stream, || {
        Ok(r::randint(&lo, &hi, &s, d, k.as_ref()).py()?.into())
    })
}

#[pyfunction]
#[pyo3(signature = (p = None, shape = None, key = None, stream = None))]
fn bernoulli(
    p: Option<&Any<'_>>,
    shape: Option<&Any<'_>>,
    key: Option<&Any<'_>>,
    stream: Option<&Any<'_>>,
) -> PyResult<PyArray> {
    let p = opt_array(p)?.unwrap_or_else(|| Array::scalar(0.5f32));
    let (s, k) = (opt_shape(shape)?, key_arg(key)?);
    on_stream(stream, || {
        Ok(r::bernoulli(&p, s.as_deref(), k.as_ref()).py()?.into())
    })
}

#[pyfunction]
#[pyo3(signature = (lower, upper, shape = None, dtype = None, key = None, stream = None))]
fn truncated_normal(
    lower: &Any<'_>,
    upper: &Any<'_>,
    shape: Option<&Any<'_>>,
    dtype: Option<&Any<'_>>,
    key: Option<&Any<'_>>,
    stream: Option<&Any<'_>>,
) -> PyResult<PyArray> {
    let (lo, hi) = (arg_array(lower)?, arg_array(upper)?);
    let (s, d, k) = (
        opt_shape(shape)?,
        dtype_or(dtype, Dtype::Float32)?,
        key_arg(key)?,
    );
    on_stream(stream, || {
        Ok(r::truncated_normal(&lo, &hi, s.as_deref(), d, k.as_ref())
            .py()?
            .into())
    })
}

#[pyfunction]
#[pyo3(signature = (shape = None, dtype = None, key = None, stream = None))]
fn gumbel(
    shape: Option<&Any<'_>>,
    dtype: Option<&Any<'_>>,
    key: Option<&Any<'_>>,
    stream: Option<&Any<'_>>,
) -> PyResult<PyArray> {
    let (s, d, k) = sdk(shape, dtype, key, Dtype::Float32)?;
    on_stream(stream, || Ok(r::gumbel(&s, d, k.as_ref()).py()?.into()))
}

#[pyfunction]
#[pyo3(signature = (shape = None, dtype = None, loc = 0.0, scale = 1.0, key = None, stream = None))]
fn laplace(
    shape: Option<&Any<'_>>,
    dtype: Option<&Any<'_>>,
    loc: f64,
    scale: f64,
    key: Option<&Any<'_>>,
    stream: Option<&Any<'_>>,
) -> PyResult<PyArray> {
    let (s, d, k) = sdk(shape, dtype, key, Dtype::Float32)?;
    on_stream(stream, || {
        Ok(r::laplace(&s, d, loc, scale, k.as_ref()).py()?.into())
    })
}

#[pyfunction]
#[pyo3(signature = (logits, axis = -1, shape = None, num_samples = None, key = None, stream = None))]
fn categorical(
    logits: &Any<'_>,
    axis: i64,
    shape: Option<&Any<'_>>,
    num_samples: Option<i64>,
    key: Option<&Any<'_>>,
    stream: Option<&Any<'_>>,
) -> PyResult<PyArray> {
    let l = arg_array(logits)?;
    let s = opt_shape(shape)?;
    if s.is_some() && num_samples.is_some() {
        return Err(PyValueError::new_err(
            "[categorical] At most one of shape or num_samples can be specified.",
        ));
    }
    let n = num_samples
        .map(|n| {
            usize::try_from(n)
                .map_err(|_| PyValueError::new_err("[bits] Negative dimensions not allowed."))
        })
        .transpose()?;
    let draws = match (&s, n) {
        (Some(s), _) => r::Draws::Shape(s),
        (None, Some(n)) => r::Draws::Num(n),
        _ => r::Draws::One,
    };
    let k = key_arg(key)?;
    on_stream(stream, || {
        Ok(r::categorical(&l, axis, draws, k.as_ref()).py()?.into())
    })
}

#[pyfunction]
#[pyo3(signature = (x, axis = 0, key = None, stream = None))]
fn permutation(
    x: &Any<'_>,
    axis: i64,
    key: Option<&Any<'_>>,
    stream: Option<&Any<'_>>,
) -> PyResult<PyArray> {
    let k = key_arg(key)?;
    if x.downcast::<PyArray>().is_err() {
        if let Ok(n) = x.extract::<i64>() {
            let n = usize::try_from(n)
                .map_err(|_| PyValueError::new_err("[bits] Negative dimensions not allowed."))?;
            return on_stream(stream, || Ok(r::permutation_n(n, k.as_ref()).py()?.into()));
        }
    }
    let a = arg_array(x)?;
    on_stream(stream, || {
        Ok(r::permutation(&a, axis, k.as_ref()).py()?.into())
    })
}

pub fn register(parent: &Bound<'_, PyModule>) -> PyResult<()> {
    let m = PyModule::new(parent.py(), "random")?;
    macro_rules! add {
        ($($f:ident),* $(,)?) => {$( m.add_function(wrap_pyfunction!($f, &m)?)?; )*};
    }
    add!(
        key,
        seed,
        split,
        bits,
        uniform,
        normal,
        randint,
        bernoulli,
        truncated_normal,
        gumbel,
        laplace,
        categorical,
        permutation
    );
    register_more(&m)?;
    parent.add_submodule(&m)
}

#[pyfunction]
#[pyo3(signature = (mean, cov, shape = None, dtype = None, key = None, stream = None))]
fn multivariate_normal(
    mean: &Any<'_>,
    cov: &Any<'_>,
    shape: Option<&Any<'_>>,
    dtype: Option<&Any<'_>>,
    key: Option<&Any<'_>>,
    stream: Option<&Any<'_>>,
) -> PyResult<PyArray> {
    let (s, d, k) = sdk(shape, dtype, key, Dtype::Float32)?;
    let (m, c) = (arg_array(mean)?, arg_array(cov)?);
    on_stream(stream, || {
        Ok(
            rmx_core::ops::multivariate_normal::multivariate_normal(&m, &c, &s, d, k.as_ref())
                .py()?
                .into(),
        )
    })
}

/// Adds the samplers defined after `register`'s list (kept apart for easy merges).
fn register_more(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(multivariate_normal, m)?)
}
