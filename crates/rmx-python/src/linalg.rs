//! `rmx.core.linalg`, the submodule mirroring `mlx.core.linalg` (and `mx.matrix_norm`,
//! MLX's top-level alias of `linalg.norm`).

use crate::args;
use crate::array::PyArray;
use crate::convert::arg_array;
use crate::device::on_stream;
use crate::errors::PyResultExt;
use pyo3::exceptions::PyTypeError;
use pyo3::prelude::*;
use pyo3::types::PyTuple;
use rmx_core::ops::linalg_decompositions as la;
use rmx_core::ops::linalg_norm::{norm as norm_op, NormOrd};
use rmx_core::Array;

type Any<'py> = Bound<'py, PyAny>;

fn tuple<'py>(py: Python<'py>, xs: Vec<Array>) -> PyResult<Bound<'py, PyTuple>> {
    let items: Vec<PyArray> = xs.into_iter().map(PyArray::from).collect();
    PyTuple::new(py, items)
}

fn ord_arg(ord: Option<&Any<'_>>) -> PyResult<NormOrd> {
    match ord {
        None => Ok(NormOrd::Default),
        Some(o) if o.is_none() => Ok(NormOrd::Default),
        Some(o) => {
            if let Ok(s) = o.extract::<String>() {
                return Ok(NormOrd::Str(s));
            }
            o.extract::<f64>().map(NormOrd::Num).map_err(|_| {
                PyTypeError::new_err("norm(): ord must be None, an int, a float or a str")
            })
        }
    }
}

#[pyfunction]
#[pyo3(signature = (a, /, ord = None, axis = None, keepdims = false, *, stream = None))]
fn norm(
    a: &Any<'_>,
    ord: Option<&Any<'_>>,
    axis: Option<&Any<'_>>,
    keepdims: bool,
    stream: Option<&Any<'_>>,
) -> PyResult<PyArray> {
    let (x, o, ax) = (arg_array(a)?, ord_arg(ord)?, args::axes(axis)?);
    on_stream(stream, || {
        Ok(norm_op(&x, &o, ax.as_deref(), keepdims).py()?.into())
    })
}

macro_rules! one_arg {
    ($($name:ident => $f:expr),* $(,)?) => {$(
        #[pyfunction]
        #[pyo3(signature = (a, *, stream = None))]
        fn $name(a: &Any<'_>, stream: Option<&Any<'_>>) -> PyResult<PyArray> {
            let x = arg_array(a)?;
            on_stream(stream, || Ok($f(&x).py()?.into()))
        }
    )*};
}
one_arg!(inv => la::inv, pinv => la::pinv, det => la::det, eigvals => la::eigvals);

macro_rules! upper_arg {
    ($($name:ident => $f:expr),* $(,)?) => {$(
        #[pyfunction]
        #[pyo3(signature = (a, upper = false, *, stream = None))]
        fn $name(a: &Any<'_>, upper: bool, stream: Option<&Any<'_>>) -> PyResult<PyArray> {
            let x = arg_array(a)?;
            on_stream(stream, || Ok($f(&x, upper).py()?.into()))
        }
    )*};
}
upper_arg!(tri_inv => la::tri_inv, cholesky => la::cholesky, cholesky_inv => la::cholesky_inv);

macro_rules! tuple_arg {
    ($($name:ident => $f:expr),* $(,)?) => {$(
        #[pyfunction]
        #[pyo3(signature = (a, *, stream = None))]
        fn $name<'py>(py: Python<'py>, a: &Any<'py>, stream: Option<&Any<'_>>) -> PyResult<Bound<'py, PyTuple>> {
            let x = arg_array(a)?;
            let outs: Vec<Array> = on_stream(stream, || ($f)(&x).py())?;
            tuple(py, outs)
        }
    )*};
}
tuple_arg!(
    qr => |x: &Array| la::qr(x).map(|(q, r)| vec![q, r]),
    eig => |x: &Array| la::eig(x).map(|(w, v)| vec![w, v]),
    lu => la::lu,
    lu_factor => |x: &Array| la::lu_factor(x).map(|(l, p)| vec![l, p]),
    slogdet => |x: &Array| la::slogdet(x).map(|(s, l)| vec![s, l]),
);

#[pyfunction]
#[pyo3(signature = (a, compute_uv = true, *, stream = None))]
fn svd<'py>(
    py: Python<'py>,
    a: &Any<'py>,
    compute_uv: bool,
    stream: Option<&Any<'_>>,
) -> PyResult<PyObject> {
    let x = arg_array(a)?;
    let mut outs = on_stream(stream, || la::svd(&x, compute_uv).py())?;
    if compute_uv {
        Ok(tuple(py, outs)?.into_any().unbind())
    } else {
        Ok(Py::new(py, PyArray::from(outs.swap_remove(0)))?.into_any())
    }
}

#[pyfunction]
#[pyo3(signature = (a, UPLO = "L", *, stream = None))]
#[allow(non_snake_case)]
fn eigh<'py>(
    py: Python<'py>,
    a: &Any<'py>,
    UPLO: &str,
    stream: Option<&Any<'_>>,
) -> PyResult<Bound<'py, PyTuple>> {
    let x = arg_array(a)?;
    let (w, v) = on_stream(stream, || la::eigh(&x, UPLO).py())?;
    tuple(py, vec![w, v])
}

#[pyfunction]
#[pyo3(signature = (a, UPLO = "L", *, stream = None))]
#[allow(non_snake_case)]
fn eigvalsh(a: &Any<'_>, UPLO: &str, stream: Option<&Any<'_>>) -> PyResult<PyArray> {
    let x = arg_array(a)?;
    on_stream(stream, || Ok(la::eigvalsh(&x, UPLO).py()?.into()))
}

#[pyfunction]
#[pyo3(signature = (a, b, *, stream = None))]
fn solve(a: &Any<'_>, b: &Any<'_>, stream: Option<&Any<'_>>) -> PyResult<PyArray> {
    let (x, y) = (arg_array(a)?, arg_array(b)?);
    on_stream(stream, || Ok(la::solve(&x, &y).py()?.into()))
}

#[pyfunction]
#[pyo3(signature = (a, b, *, upper = false, stream = None))]
fn solve_triangular(
    a: &Any<'_>,
    b: &Any<'_>,
    upper: bool,
    stream: Option<&Any<'_>>,
) -> PyResult<PyArray> {
    let (x, y) = (arg_array(a)?, arg_array(b)?);
    on_stream(stream, || {
        Ok(la::solve_triangular(&x, &y, upper).py()?.into())
    })
}

#[pyfunction]
#[pyo3(signature = (a, b, axis = -1, *, stream = None))]
fn cross(a: &Any<'_>, b: &Any<'_>, axis: i64, stream: Option<&Any<'_>>) -> PyResult<PyArray> {
    let (x, y) = (arg_array(a)?, arg_array(b)?);
    on_stream(stream, || Ok(la::cross(&x, &y, axis).py()?.into()))
}

pub fn register(parent: &Bound<'_, PyModule>) -> PyResult<()> {
    let m = PyModule::new(parent.py(), "linalg")?;
    macro_rules! add {
        ($($f:ident),* $(,)?) => {$( m.add_function(wrap_pyfunction!($f, &m)?)?; )*};
    }
    add!(
        norm,
        inv,
        tri_inv,
        cholesky,
        cholesky_inv,
        qr,
        svd,
        eigh,
        eigvalsh,
        eig,
        eigvals,
        lu,
        lu_factor,
        pinv,
        det,
        slogdet,
        solve,
        solve_triangular,
        cross
    );
    parent.add("matrix_norm", m.getattr("norm")?)?;
    parent.add_submodule(&m)
}
