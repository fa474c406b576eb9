//! `compile` entry points: trace a flat-list Python function into a `CompiledGraph` and
//! replay it; `rmx/core/_compile.py` keeps the cache and the Python tree handling.

use crate::array::PyArray;
use crate::dtype::PyDtype;
use crate::errors::{stash, PyResultExt};
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use rmx_core::transforms::{compile_mode, set_compile_mode, CompileMode, CompiledGraph};
use rmx_core::Array;
use std::sync::Arc;

#[pyclass(name = "_CompiledGraph", module = "rmx.core", frozen)]
pub struct PyCompiledGraph {
    graph: Arc<CompiledGraph>,
}

#[pymethods]
impl PyCompiledGraph {
    fn __call__(&self, py: Python<'_>, inputs: Vec<PyArray>) -> PyResult<Vec<PyArray>> {
        let _ = py;
        let ins: Vec<Array> = inputs.into_iter().map(|a| a.inner).collect();
        Ok(self
            .graph
            .call(&ins)
            .py()?
            .into_iter()
            .map(PyArray::from)
            .collect())
    }
    #[getter]
    fn num_steps(&self) -> usize {
        self.graph.num_steps()
    }
    #[getter]
    fn num_fused(&self) -> usize {
        self.graph.num_fused()
    }
}

/// Traces `f` (a function of a list of arrays returning a list of arrays) on
/// placeholders with the given shapes and dtypes.
#[pyfunction]
pub fn _compile_trace(
    py: Python<'_>,
    f: PyObject,
    shapes: Vec<Vec<usize>>,
    dtypes: Vec<PyDtype>,
) -> PyResult<PyCompiledGraph> {
    let specs: Vec<_> = shapes
        .into_iter()
        .zip(dtypes)
        .map(|(s, d)| (s.as_slice().into(), d.0))
        .collect();
    let graph = CompiledGraph::trace(
        |xs| {
            let inputs: Vec<PyArray> = xs.iter().cloned().map(PyArray::from).collect();
            let run = || -> PyResult<Vec<Array>> {
                let out: Vec<PyArray> = f.call1(py, (inputs,))?.extract(py)?;
                Ok(out.into_iter().map(|a| a.inner).collect())
            };
            run().map_err(stash)
        },
        &specs,
    )
    .py()?;
    Ok(PyCompiledGraph {
        graph: Arc::new(graph),
    })
}

const MODES: [(&str, CompileMode); 4] = [
    ("disabled", CompileMode::Disabled),
    ("no_simplify", CompileMode::NoSimplify),
    ("no_fuse", CompileMode::NoFuse),
    ("enabled", CompileMode::Enabled),
];

/// `set_compile_mode("disabled" | "no_simplify" | "no_fuse" | "enabled")`.
#[pyfunction]
pub fn set_compile_mode_str(mode: &str) -> PyResult<()> {
    let m = MODES.iter().find(|(n, _)| *n == mode).ok_or_else(|| {
        PyValueError::new_err(format!("[compile] Unknown compile mode '{mode}'."))
    })?;
    set_compile_mode(m.1);
    Ok(())
}

#[pyfunction]
pub fn compile_mode_str() -> &'static str {
    let m = compile_mode();
    MODES
        .iter()
        .find(|(_, v)| *v == m)
        .map(|(n, _)| *n)
        .unwrap_or("enabled")
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<PyCompiledGraph>()?;
    m.add_function(wrap_pyfunction!(_compile_trace, m)?)?;
    m.add_function(wrap_pyfunction!(set_compile_mode_str, m)?)?;
    m.add_function(wrap_pyfunction!(compile_mode_str, m)?)?;
    Ok(())
}
