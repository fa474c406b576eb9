//! `rmx.core` einsum and einsum_path. As MLX's bindings, operands must be arrays: anything
//! else is a RuntimeError (MLX raises `std::bad_cast` for it).

use crate::array::PyArray;
use crate::device::on_stream;
use crate::errors::PyResultExt;
use pyo3::exceptions::PyRuntimeError;
use pyo3::prelude::*;
use pyo3::types::{PyList, PyTuple};
use rmx_core::{ops, Array};

type Any<'py> = Bound<'py, PyAny>;

fn operand_arrays(fname: &str, operands: &Bound<'_, PyTuple>) -> PyResult<Vec<Array>> {
    operands
        .iter()
        .map(|o| match o.downcast::<PyArray>() {
            Ok(a) => Ok(a.borrow().inner.clone()),
            Err(_) => Err(PyRuntimeError::new_err(format!(
                "[{fname}] Operands must be arrays but got {} (MLX: std::bad_cast).",
                o.get_type()
                    .name()
                    .map(|n| n.to_string())
                    .unwrap_or_default()
            ))),
        })
        .collect()
}

#[pyfunction]
#[pyo3(signature = (subscripts, *operands, stream = None))]
pub fn einsum(
    subscripts: &str,
    operands: &Bound<'_, PyTuple>,
    stream: Option<&Any<'_>>,
) -> PyResult<PyArray> {
    let ops_ = operand_arrays("einsum", operands)?;
    on_stream(stream, || Ok(ops::einsum(subscripts, &ops_).py()?.into()))
}

#[pyfunction]
#[pyo3(signature = (subscripts, *operands))]
pub fn einsum_path<'py>(
    py: Python<'py>,
    subscripts: &str,
    operands: &Bound<'py, PyTuple>,
) -> PyResult<Bound<'py, PyTuple>> {
    let ops_ = operand_arrays("einsum_path", operands)?;
    let (path, info) = ops::einsum_path(subscripts, &ops_).py()?;
    let steps: Vec<Bound<'py, PyTuple>> = path
        .iter()
        .map(|p| PyTuple::new(py, p))
        .collect::<PyResult<_>>()?;
    let list = PyList::new(py, steps)?;
    PyTuple::new(py, [list.into_any(), info.into_pyobject(py)?.into_any()])
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(einsum, m)?)?;
    m.add_function(wrap_pyfunction!(einsum_path, m)?)?;
    Ok(())
}
