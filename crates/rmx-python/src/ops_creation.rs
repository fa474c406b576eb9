//! `rmx.core` array creation functions.

use crate::args;
use crate::array::PyArray;
use crate::convert::{py_scalar, to_array};
use crate::device::on_stream;
use crate::errors::PyResultExt;
use pyo3::prelude::*;
use rmx_core::{ops, Dtype, Scalar};

#[pyfunction]
#[pyo3(signature = (shape, dtype = None, *, stream = None))]
pub fn zeros(
    shape: &Bound<'_, PyAny>,
    dtype: Option<&Bound<'_, PyAny>>,
    stream: Option<&Bound<'_, PyAny>>,
) -> PyResult<PyArray> {
    let s = args::shape(shape)?;
    let d = args::dtype(dtype)?.unwrap_or(Dtype::Float32);
    on_stream(stream, || Ok(ops::zeros(&s, d).py()?.into()))
}

#[pyfunction]
#[pyo3(signature = (shape, dtype = None, *, stream = None))]
pub fn ones(
    shape: &Bound<'_, PyAny>,
    dtype: Option<&Bound<'_, PyAny>>,
    stream: Option<&Bound<'_, PyAny>>,
) -> PyResult<PyArray> {
    let s = args::shape(shape)?;
    let d = args::dtype(dtype)?.unwrap_or(Dtype::Float32);
    on_stream(stream, || Ok(ops::ones(&s, d).py()?.into()))
}

#[pyfunction]
#[pyo3(signature = (shape, vals, dtype = None, *, stream = None))]
pub fn full(
    shape: &Bound<'_, PyAny>,
    vals: &Bound<'_, PyAny>,
    dtype: Option<&Bound<'_, PyAny>>,
    stream: Option<&Bound<'_, PyAny>>,
) -> PyResult<PyArray> {
    let s = args::shape(shape)?;
    let d = args::dtype(dtype)?;
    on_stream(stream, || {
        if let Some(v) = py_scalar(vals)? {
            return Ok(ops::full(&s, v, Some(d.unwrap_or(v.default_dtype())))
                .py()?
                .into());
        }
        let v = to_array(vals, None)?;
        Ok(ops::full_array(&s, &v, d).py()?.into())
    })
}

#[pyfunction]
#[pyo3(signature = (a, /, dtype = None, *, stream = None))]
pub fn zeros_like(
    a: &Bound<'_, PyAny>,
    dtype: Option<&Bound<'_, PyAny>>,
    stream: Option<&Bound<'_, PyAny>>,
) -> PyResult<PyArray> {
    let d = args::dtype(dtype)?;
    on_stream(stream, || {
        let x = to_array(a, None)?;
        Ok(ops::full_like(&x, Scalar::Int(0), d).py()?.into())
    })
}

#[pyfunction]
#[pyo3(signature = (a, /, dtype = None, *, stream = None))]
pub fn ones_like(
    a: &Bound<'_, PyAny>,
    dtype: Option<&Bound<'_, PyAny>>,
    stream: Option<&Bound<'_, PyAny>>,
) -> PyResult<PyArray> {
    let d = args::dtype(dtype)?;
    on_stream(stream, || {
        let x = to_array(a, None)?;
        Ok(ops::full_like(&x, Scalar::Int(1), d).py()?.into())
    })
}

#[pyfunction]
#[pyo3(signature = (a, /, fill_value, dtype = None, *, stream = None))]
pub fn full_like(
    a: &Bound<'_, PyAny>,
    fill_value: &Bound<'_, PyAny>,
    dtype: Option<&Bound<'_, PyAny>>,
    stream: Option<&Bound<'_, PyAny>>,
) -> PyResult<PyArray> {
    let d = args::dtype(dtype)?;
    on_stream(stream, || {
        let x = to_array(a, None)?;
        let v = crate::ops_elementwise::scalar_arg(fill_value)?;
        Ok(ops::full_like(&x, v, d).py()?.into())
    })
}

fn num(o: &Bound<'_, PyAny>) -> PyResult<(f64, bool)> {
    match py_scalar(o)? {
        Some(Scalar::Int(i)) => Ok((i as f64, true)),
        Some(Scalar::UInt(u)) => Ok((u as f64, true)),
        Some(Scalar::Bool(b)) => Ok((b as u8 as f64, true)),
        Some(Scalar::Float(f)) => Ok((f, false)),
        _ => Err(pyo3::exceptions::PyTypeError::new_err(
            "arange arguments must be numbers",
        )),
    }
}

#[pyfunction]
#[pyo3(signature = (start, stop = None, step = None, dtype = None, *, stream = None))]
pub fn arange(
    start: &Bound<'_, PyAny>,
    stop: Option<&Bound<'_, PyAny>>,
    step: Option<&Bound<'_, PyAny>>,
    dtype: Option<&Bound<'_, PyAny>>,
    stream: Option<&Bound<'_, PyAny>>,
) -> PyResult<PyArray> {
    let (a, ai) = num(start)?;
    let (start, stop, mut all_int) = match stop.filter(|s| !s.is_none()) {
        None => (0.0, a, ai),
        Some(s) => {
            let (b, bi) = num(s)?;
            (a, b, ai && bi)
        }
    };
    let step = match step.filter(|s| !s.is_none()) {
        None => 1.0,
        Some(s) => {
            let (v, vi) = num(s)?;
            all_int &= vi;
            v
        }
    };
    let d = args::dtype(dtype)?.unwrap_or(if all_int {
        Dtype::Int32
    } else {
        Dtype::Float32
    });
    on_stream(stream, || {
        Ok(ops::arange(start, stop, step, d).py()?.into())
    })
}

#[pyfunction]
#[pyo3(signature = (start, stop, num = 50, dtype = None, *, stream = None))]
pub fn linspace(
    start: f64,
    stop: f64,
    num: i64,
    dtype: Option<&Bound<'_, PyAny>>,
    stream: Option<&Bound<'_, PyAny>>,
) -> PyResult<PyArray> {
    let d = args::dtype(dtype)?.unwrap_or(Dtype::Float32);
    on_stream(stream, || {
        Ok(ops::linspace(start, stop, num, d).py()?.into())
    })
}

#[pyfunction]
#[pyo3(signature = (n, m = None, k = 0, dtype = None, *, stream = None))]
pub fn eye(
    n: i64,
    m: Option<i64>,
    k: i64,
    dtype: Option<&Bound<'_, PyAny>>,
    stream: Option<&Bound<'_, PyAny>>,
) -> PyResult<PyArray> {
    let d = args::dtype(dtype)?.unwrap_or(Dtype::Float32);
    on_stream(stream, || Ok(ops::eye(n, m, k, d).py()?.into()))
}

#[pyfunction]
#[pyo3(signature = (n, dtype = None, *, stream = None))]
pub fn identity(
    n: i64,
    dtype: Option<&Bound<'_, PyAny>>,
    stream: Option<&Bound<'_, PyAny>>,
) -> PyResult<PyArray> {
    let d = args::dtype(dtype)?.unwrap_or(Dtype::Float32);
    on_stream(stream, || Ok(ops::identity(n, d).py()?.into()))
}

#[pyfunction]
#[pyo3(signature = (n, m = None, k = 0, dtype = None, *, stream = None))]
pub fn tri(
    n: i64,
    m: Option<i64>,
    k: i64,
    dtype: Option<&Bound<'_, PyAny>>,
    stream: Option<&Bound<'_, PyAny>>,
) -> PyResult<PyArray> {
    let d = args::dtype(dtype)?.unwrap_or(Dtype::Float32);
    on_stream(stream, || Ok(ops::tri(n, m, k, d).py()?.into()))
}

#[pyfunction]
#[pyo3(signature = (x, k = 0, *, stream = None))]
pub fn tril(x: &Bound<'_, PyAny>, k: i64, stream: Option<&Bound<'_, PyAny>>) -> PyResult<PyArray> {
    on_stream(stream, || {
        Ok(ops::tril(&to_array(x, None)?, k).py()?.into())
    })
}

#[pyfunction]
#[pyo3(signature = (x, k = 0, *, stream = None))]
pub fn triu(x: &Bound<'_, PyAny>, k: i64, stream: Option<&Bound<'_, PyAny>>) -> PyResult<PyArray> {
    on_stream(stream, || {
        Ok(ops::triu(&to_array(x, None)?, k).py()?.into())
    })
}

#[pyfunction]
#[pyo3(signature = (*arrays, sparse = false, indexing = "xy", stream = None))]
pub fn meshgrid(
    arrays: Vec<Bound<'_, PyAny>>,
    sparse: bool,
    indexing: &str,
    stream: Option<&Bound<'_, PyAny>>,
) -> PyResult<Vec<PyArray>> {
    on_stream(stream, || {
        let a: Vec<rmx_core::Array> = arrays
            .iter()
            .map(|x| to_array(x, None))
            .collect::<PyResult<_>>()?;
        Ok(ops::meshgrid(&a, sparse, indexing)
            .py()?
            .into_iter()
            .map(PyArray::from)
            .collect())
    })
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    macro_rules! add {
        ($($f:ident),* $(,)?) => {$( m.add_function(wrap_pyfunction!($f, m)?)?; )*};
    }
    add!(
        zeros, ones, full, zeros_like, ones_like, full_like, arange, linspace, eye, identity, tri,
        tril, triu, meshgrid
    );
    Ok(())
}
