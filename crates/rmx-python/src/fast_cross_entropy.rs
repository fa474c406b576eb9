//! `rmx.core.fast.cross_entropy` (added to the `fast` submodule by `fast::register`).

use crate::array::PyArray;
use crate::device::on_stream;
use crate::errors::PyResultExt;
use pyo3::exceptions::PyTypeError;
use pyo3::prelude::*;
use rmx_core::Array;

type Any<'py> = Bound<'py, PyAny>;

/// MLX's binding takes arrays only (a list or scalar does not match its signature).
fn array_arg(x: &Any<'_>) -> PyResult<Array> {
    x.downcast::<PyArray>()
        .map(|a| a.borrow().inner.clone())
        .map_err(|_| {
            PyTypeError::new_err(
                "cross_entropy(): incompatible function arguments. The following argument types are supported:\n    1. cross_entropy(logits: array, targets: array, *, stream: StreamOrDevice = None) -> array",
            )
        })
}

#[pyfunction]
#[pyo3(signature = (logits, targets, *, stream = None))]
fn cross_entropy(
    logits: &Any<'_>,
    targets: &Any<'_>,
    stream: Option<&Any<'_>>,
) -> PyResult<PyArray> {
    let (l, t) = (array_arg(logits)?, array_arg(targets)?);
    on_stream(stream, || {
        Ok(rmx_core::ops::fast_cross_entropy::cross_entropy(&l, &t)
            .py()?
            .into())
    })
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(cross_entropy, m)?)
}
