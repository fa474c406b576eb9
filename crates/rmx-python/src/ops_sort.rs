//! `rmx.core` sorting and searching: sort, argsort, partition, argpartition, topk,
//! median, searchsorted.

use crate::args;
use crate::array::PyArray;
use crate::convert::{arg_array, py_scalar};
use crate::device::on_stream;
use crate::errors::PyResultExt;
use pyo3::exceptions::PyTypeError;
use pyo3::prelude::*;
use rmx_core::{ops, Array};

type Any<'py> = Bound<'py, PyAny>;

macro_rules! py_sort {
    ($($name:ident),* $(,)?) => {$(
        #[pyfunction]
        #[pyo3(signature = (a, /, axis = Some(-1), *, stream = None))]
        pub fn $name(a: &Any<'_>, axis: Option<i64>, stream: Option<&Any<'_>>) -> PyResult<PyArray> {
            on_stream(stream, || Ok(ops::$name(&arg_array(a)?, axis).py()?.into()))
        }
    )*};
}
py_sort!(sort, argsort);

macro_rules! py_select {
    ($($name:ident($k:ident)),* $(,)?) => {$(
        #[pyfunction]
        #[pyo3(signature = (a, /, $k, axis = Some(-1), *, stream = None))]
        pub fn $name(a: &Any<'_>, $k: i64, axis: Option<i64>, stream: Option<&Any<'_>>) -> PyResult<PyArray> {
            on_stream(stream, || Ok(ops::$name(&arg_array(a)?, $k, axis).py()?.into()))
        }
    )*};
}
py_select!(partition(kth), argpartition(kth), topk(k));

#[pyfunction]
#[pyo3(signature = (a, /, axis = None, keepdims = false, *, stream = None))]
pub fn median(
    a: &Any<'_>,
    axis: Option<&Any<'_>>,
    keepdims: bool,
    stream: Option<&Any<'_>>,
) -> PyResult<PyArray> {
    let ax = args::axes(axis)?;
    on_stream(stream, || {
        Ok(ops::median(&arg_array(a)?, ax.as_deref(), keepdims)
            .py()?
            .into())
    })
}

/// Arrays only, as MLX's binding (a Python scalar is a TypeError).
fn array_only(obj: &Any<'_>, what: &str) -> PyResult<Array> {
    if py_scalar(obj)?.is_some() {
        return Err(PyTypeError::new_err(format!(
            "searchsorted(): {what} must be an array"
        )));
    }
    arg_array(obj)
}

#[pyfunction]
#[pyo3(signature = (sorted_sequence, values, /, side = "left", *, stream = None))]
pub fn searchsorted(
    sorted_sequence: &Any<'_>,
    values: &Any<'_>,
    side: &str,
    stream: Option<&Any<'_>>,
) -> PyResult<PyArray> {
    let seq = array_only(sorted_sequence, "sorted_sequence")?;
    let v = array_only(values, "values")?;
    on_stream(stream, || {
        Ok(ops::searchsorted(&seq, &v, side).py()?.into())
    })
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    macro_rules! add {
        ($($f:ident),* $(,)?) => {$( m.add_function(wrap_pyfunction!($f, m)?)?; )*};
    }
    add!(
        sort,
        argsort,
        partition,
        argpartition,
        topk,
        median,
        searchsorted
    );
    Ok(())
}
