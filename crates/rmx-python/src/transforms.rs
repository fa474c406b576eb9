//! Flat-list entry points for the transforms; `rmx/core/_transforms.py` adds the Python
//! tree handling (nested lists/tuples/dicts of arrays) on top, as mlx.utils does.

use crate::array::PyArray;
use crate::errors::{to_py, PyResultExt};
use pyo3::prelude::*;
use rmx_core::transforms;
use rmx_core::Array;

fn unwrap(v: Vec<PyArray>) -> Vec<Array> {
    v.into_iter().map(|a| a.inner).collect()
}

fn wrap(v: Vec<Array>) -> Vec<PyArray> {
    v.into_iter().map(PyArray::from).collect()
}

/// Calls the Python function `f` on a list of arrays; it must return a list of arrays.
/// A Python exception inside `f` is carried through the Rust transform and re-raised.
fn call(
    py: Python<'_>,
    f: &PyObject,
    args: &[Array],
    err: &mut Option<PyErr>,
) -> rmx_core::Result<Vec<Array>> {
    let inputs: Vec<PyArray> = args.iter().cloned().map(PyArray::from).collect();
    let run = || -> PyResult<Vec<Array>> {
        let out = f.call1(py, (inputs,))?;
        let out: Vec<PyArray> = out.extract(py)?;
        Ok(unwrap(out))
    };
    run().map_err(|e| {
        let msg = e.to_string();
        *err = Some(e);
        rmx_core::Error::Runtime(msg)
    })
}

fn finish<T>(r: rmx_core::Result<T>, err: Option<PyErr>) -> PyResult<T> {
    match (r, err) {
        (_, Some(e)) => Err(e),
        (r, None) => r.map_err(to_py),
    }
}

#[pyfunction]
pub fn _vjp_flat(
    py: Python<'_>,
    f: PyObject,
    primals: Vec<PyArray>,
    cotangents: Vec<PyArray>,
) -> PyResult<(Vec<PyArray>, Vec<PyArray>)> {
    let mut err = None;
    let r = transforms::vjp(
        |a| call(py, &f, a, &mut err),
        &unwrap(primals),
        &unwrap(cotangents),
    );
    let (o, g) = finish(r, err)?;
    Ok((wrap(o), wrap(g)))
}

#[pyfunction]
pub fn _jvp_flat(
    py: Python<'_>,
    f: PyObject,
    primals: Vec<PyArray>,
    tangents: Vec<PyArray>,
) -> PyResult<(Vec<PyArray>, Vec<PyArray>)> {
    let mut err = None;
    let r = transforms::jvp(
        |a| call(py, &f, a, &mut err),
        &unwrap(primals),
        &unwrap(tangents),
    );
    let (o, t) = finish(r, err)?;
    Ok((wrap(o), wrap(t)))
}

#[pyfunction]
pub fn _value_and_grad_flat(
    py: Python<'_>,
    f: PyObject,
    inputs: Vec<PyArray>,
    argnums: Vec<usize>,
) -> PyResult<(Vec<PyArray>, Vec<PyArray>)> {
    let mut err = None;
    let r = transforms::value_and_grad(|a| call(py, &f, a, &mut err), &unwrap(inputs), &argnums);
    let (o, g) = finish(r, err)?;
    Ok((wrap(o), wrap(g)))
}

/// Traces `f` on one batch element of each input: the batched outputs, their batch
/// axes (None: the output does not depend on the batch) and the batch size.
#[pyfunction]
pub fn _vmap_trace(
    py: Python<'_>,
    f: PyObject,
    inputs: Vec<PyArray>,
    in_axes: Vec<Option<i64>>,
) -> PyResult<(Vec<PyArray>, Vec<Option<usize>>, usize)> {
    let mut err = None;
    let r = transforms::vmap_trace(|a| call(py, &f, a, &mut err), &unwrap(inputs), &in_axes);
    let (o, axes, size) = finish(r, err)?;
    Ok((wrap(o), axes, size))
}

#[pyfunction]
#[pyo3(signature = (x, batch_axis, out_axis, size))]
pub fn _vmap_finish(
    x: PyArray,
    batch_axis: Option<usize>,
    out_axis: Option<i64>,
    size: usize,
) -> PyResult<PyArray> {
    Ok(transforms::vmap_finish(&x.inner, batch_axis, out_axis, size)
        .py()?
        .into())
}

#[pyfunction]
#[pyo3(signature = (a, /, *, stream = None))]
pub fn stop_gradient(a: &Bound<'_, PyAny>, stream: Option<&Bound<'_, PyAny>>) -> PyResult<PyArray> {
    crate::device::on_stream(stream, || {
        Ok(rmx_core::ops::stop_gradient(&crate::convert::arg_array(a)?)
            .py()?
            .into())
    })
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(_vjp_flat, m)?)?;
    m.add_function(wrap_pyfunction!(_jvp_flat, m)?)?;
    m.add_function(wrap_pyfunction!(_value_and_grad_flat, m)?)?;
    m.add_function(wrap_pyfunction!(_vmap_trace, m)?)?;
    m.add_function(wrap_pyfunction!(_vmap_finish, m)?)?;
    m.add_function(wrap_pyfunction!(stop_gradient, m)?)?;
    Ok(())
}
