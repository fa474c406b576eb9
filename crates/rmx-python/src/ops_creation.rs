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
        // MLX: a scalar takes `dtype` as a weak scalar would (a float stays float32 for an
        // integer dtype); an array value keeps its own dtype.
        if let Some(v) = py_scalar(vals)? {
            let dt = match d {
                Some(d) => ops::weak_scalar(v, d).py()?.dtype(),
                None => v.default_dtype(),
            };
            return Ok(ops::full(&s, v, Some(dt)).py()?.into());
        }
        let v = to_array(vals, None)?;
        Ok(ops::full_array(&s, &v, None).py()?.into())
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
        let x = crate::convert::arg_array(a)?;
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
        let x = crate::convert::arg_array(a)?;
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
        let x = crate::convert::arg_array(a)?;
        let v = crate::ops_elementwise::scalar_arg(fill_value)?;
        // the fill value is weakly typed against the array (overflow is an error)
        ops::weak_scalar(v, d.unwrap_or(x.dtype())).py()?;
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
#[pyo3(signature = (start = None, stop = None, step = None, dtype = None, *, stream = None))]
pub fn arange(
    start: Option<&Bound<'_, PyAny>>,
    stop: Option<&Bound<'_, PyAny>>,
    step: Option<&Bound<'_, PyAny>>,
    dtype: Option<&Bound<'_, PyAny>>,
    stream: Option<&Bound<'_, PyAny>>,
) -> PyResult<PyArray> {
    let present = |o: Option<&Bound<'_, PyAny>>| -> PyResult<Option<(f64, bool)>> {
        match o.filter(|v| !v.is_none()) {
            None => Ok(None),
            Some(v) => Ok(Some(num(v)?)),
        }
    };
    // arange(stop), arange(start, stop), arange(stop=...): one number alone is the stop
    let (start, stop) = match (present(start)?, present(stop)?) {
        (Some(a), Some(b)) => (a, b),
        (Some(b), None) | (None, Some(b)) => ((0.0, true), b),
        (None, None) => {
            return Err(pyo3::exceptions::PyTypeError::new_err(
                "arange() missing required argument 'stop'",
            ))
        }
    };
    let step = present(step)?.unwrap_or((1.0, true));
    let all_int = start.1 && stop.1 && step.1;
    let fits_i32 = [start.0, stop.0, step.0]
        .iter()
        .all(|v| *v >= i32::MIN as f64 && *v <= i32::MAX as f64);
    let d = args::dtype(dtype)?.unwrap_or(match (all_int, fits_i32) {
        (true, true) => Dtype::Int32,
        (true, false) => Dtype::Int64,
        _ => Dtype::Float32,
    });
    on_stream(stream, || {
        Ok(ops::arange(start.0, stop.0, step.0, d).py()?.into())
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
        Ok(ops::tril(&crate::convert::arg_array(x)?, k).py()?.into())
    })
}

#[pyfunction]
#[pyo3(signature = (x, k = 0, *, stream = None))]
pub fn triu(x: &Bound<'_, PyAny>, k: i64, stream: Option<&Bound<'_, PyAny>>) -> PyResult<PyArray> {
    on_stream(stream, || {
        Ok(ops::triu(&crate::convert::arg_array(x)?, k).py()?.into())
    })
}

#[pyfunction]
#[pyo3(signature = (*arrays, sparse = false, indexing = "xy", stream = None))]
pub fn meshgrid<'py>(
    py: Python<'py>,
    arrays: Vec<Bound<'py, PyAny>>,
    sparse: bool,
    indexing: &str,
    stream: Option<&Bound<'py, PyAny>>,
) -> PyResult<Bound<'py, pyo3::types::PyTuple>> {
    let out: Vec<PyArray> = on_stream(stream, || {
        let a: Vec<rmx_core::Array> = arrays
            .iter()
            .map(|x| crate::convert::arg_array(x))
            .collect::<PyResult<_>>()?;
        Ok(ops::meshgrid(&a, sparse, indexing)
            .py()?
            .into_iter()
            .map(PyArray::from)
            .collect())
    })?;
    pyo3::types::PyTuple::new(py, out)
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    macro_rules! add {
        ($($f:ident),* $(,)?) => {$( m.add_function(wrap_pyfunction!($f, m)?)?; )*};
    }
    add!(
        empty, empty_like, asarray, zeros, ones, full, zeros_like, ones_like, full_like, arange,
        linspace, eye, identity, tri, tril, triu, meshgrid
    );
    Ok(())
}

#[pyfunction]
#[pyo3(signature = (shape, dtype = None, *, stream = None))]
pub fn empty(
    shape: &Bound<'_, PyAny>,
    dtype: Option<&Bound<'_, PyAny>>,
    stream: Option<&Bound<'_, PyAny>>,
) -> PyResult<PyArray> {
    zeros(shape, dtype, stream)
}

#[pyfunction]
#[pyo3(signature = (a, /, dtype = None, *, stream = None))]
pub fn empty_like(
    a: &Bound<'_, PyAny>,
    dtype: Option<&Bound<'_, PyAny>>,
    stream: Option<&Bound<'_, PyAny>>,
) -> PyResult<PyArray> {
    zeros_like(a, dtype, stream)
}

#[pyfunction]
#[pyo3(signature = (a, dtype = None))]
pub fn asarray(a: &Bound<'_, PyAny>, dtype: Option<&Bound<'_, PyAny>>) -> PyResult<PyArray> {
    let d = args::dtype(dtype)?;
    Ok(to_array(a, d)?.into())
}
