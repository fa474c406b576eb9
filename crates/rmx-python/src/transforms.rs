//! Flat-list entry points for the transforms; `rmx/core/_transforms.py` adds the Python
//! tree handling (nested lists/tuples/dicts of arrays) on top, as mlx.utils does.

use crate::array::PyArray;
use crate::errors::{stash, PyResultExt};
use pyo3::prelude::*;
use rmx_core::primitives::custom;
use rmx_core::transforms::{self, CustomFunction};
use rmx_core::Array;
use std::sync::Arc;

fn unwrap(v: Vec<PyArray>) -> Vec<Array> {
    v.into_iter().map(|a| a.inner).collect()
}

fn wrap(v: Vec<Array>) -> Vec<PyArray> {
    v.into_iter().map(PyArray::from).collect()
}

/// Calls the Python function `f` on a list of arrays; it must return a list of arrays.
/// A Python exception inside `f` is carried through the Rust transform and re-raised.
fn call(py: Python<'_>, f: &PyObject, args: &[Array]) -> rmx_core::Result<Vec<Array>> {
    let inputs: Vec<PyArray> = wrap(args.to_vec());
    let run = || -> PyResult<Vec<Array>> {
        let out = f.call1(py, (inputs,))?;
        let out: Vec<PyArray> = out.extract(py)?;
        Ok(unwrap(out))
    };
    run().map_err(stash)
}

#[pyfunction]
pub fn _vjp_flat(
    py: Python<'_>,
    f: PyObject,
    primals: Vec<PyArray>,
    cotangents: Vec<PyArray>,
) -> PyResult<(Vec<PyArray>, Vec<PyArray>)> {
    let r = transforms::vjp(|a| call(py, &f, a), &unwrap(primals), &unwrap(cotangents));
    let (o, g) = r.py()?;
    Ok((wrap(o), wrap(g)))
}

#[pyfunction]
pub fn _jvp_flat(
    py: Python<'_>,
    f: PyObject,
    primals: Vec<PyArray>,
    tangents: Vec<PyArray>,
) -> PyResult<(Vec<PyArray>, Vec<PyArray>)> {
    let r = transforms::jvp(|a| call(py, &f, a), &unwrap(primals), &unwrap(tangents));
    let (o, t) = r.py()?;
    Ok((wrap(o), wrap(t)))
}

#[pyfunction]
pub fn _value_and_grad_flat(
    py: Python<'_>,
    f: PyObject,
    inputs: Vec<PyArray>,
    argnums: Vec<usize>,
) -> PyResult<(Vec<PyArray>, Vec<PyArray>)> {
    let r = transforms::value_and_grad(|a| call(py, &f, a), &unwrap(inputs), &argnums);
    let (o, g) = r.py()?;
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
    let r = transforms::vmap_trace(|a| call(py, &f, a), &unwrap(inputs), &in_axes);
    let (o, axes, size) = r.py()?;
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
    Ok(
        transforms::vmap_finish(&x.inner, batch_axis, out_axis, size)
            .py()?
            .into(),
    )
}

/// Runs `fun` as a custom function: `vjp(primals, cotangents, outputs)`,
/// `jvp(primals, tangents, argnums)` and `vmap(inputs, axes) -> (outputs, axes)` are
/// flat-list Python callables (or None for the default rule).
#[pyfunction]
#[pyo3(signature = (fun, vjp, jvp, vmap, inputs))]
pub fn _custom_call(
    py: Python<'_>,
    fun: PyObject,
    vjp: Option<PyObject>,
    jvp: Option<PyObject>,
    vmap: Option<PyObject>,
    inputs: Vec<PyArray>,
) -> PyResult<Vec<PyArray>> {
    let fun = Arc::new(fun);
    let f: custom::Fun = Arc::new(move |x: &[Array]| Python::with_gil(|py| call(py, &fun, x)));
    let mut cf = CustomFunction::new(f);
    if let Some(v) = vjp {
        cf = cf.with_vjp(Arc::new(move |p: &[Array], c: &[Array], o: &[Array]| {
            Python::with_gil(|py| {
                let r = v.call1(py, (wrap(p.to_vec()), wrap(c.to_vec()), wrap(o.to_vec())));
                let out = r
                    .and_then(|r| r.extract::<Vec<PyArray>>(py))
                    .map_err(stash)?;
                Ok(unwrap(out))
            })
        }));
    }
    if let Some(j) = jvp {
        cf = cf.with_jvp(Arc::new(
            move |p: &[Array], t: &[Array], argnums: &[usize]| {
                Python::with_gil(|py| {
                    let r = j.call1(py, (wrap(p.to_vec()), wrap(t.to_vec()), argnums.to_vec()));
                    let out = r
                        .and_then(|r| r.extract::<Vec<PyArray>>(py))
                        .map_err(stash)?;
                    Ok(unwrap(out))
                })
            },
        ));
    }
    if let Some(v) = vmap {
        cf = cf.with_vmap(Arc::new(move |x: &[Array], axes: &[Option<usize>]| {
            Python::with_gil(|py| {
                let r = v.call1(py, (wrap(x.to_vec()), axes.to_vec()));
                let (out, oaxes) = r
                    .and_then(|r| r.extract::<(Vec<PyArray>, Vec<Option<usize>>)>(py))
                    .map_err(stash)?;
                Ok((unwrap(out), oaxes))
            })
        }));
    }
    let _ = py;
    Ok(wrap(cf.call(&unwrap(inputs)).py()?))
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
    m.add_function(wrap_pyfunction!(_custom_call, m)?)?;
    m.add_function(wrap_pyfunction!(stop_gradient, m)?)?;
    Ok(())
}
