//! `export_function` / `import_function` entry points: traces of flat-list Python
//! functions collected into an `ExportedFunction` and written; files read back as
//! replayable traces. `rmx/core/_export.py` handles argument trees and trace selection.

use crate::array::PyArray;
use crate::dtype::PyDtype;
use crate::errors::{stash, PyResultExt};
use pyo3::exceptions::PyIndexError;
use pyo3::prelude::*;
use rmx_core::transforms::CompiledGraph;
use rmx_core::Array;
use rmx_io::export::{ExportedFunction, Trace};
use std::sync::Mutex;

#[pyclass(name = "_Exporter", module = "rmx.core", frozen)]
pub struct PyExporter {
    inner: Mutex<ExportedFunction>,
}

#[pymethods]
impl PyExporter {
    #[new]
    fn new(shapeless: bool, metadata: String) -> Self {
        PyExporter {
            inner: Mutex::new(ExportedFunction {
                shapeless,
                metadata,
                traces: vec![],
            }),
        }
    }

    /// Traces `f` (list of arrays -> list of arrays) on placeholders and keeps the trace.
    fn add(
        &self,
        py: Python<'_>,
        f: PyObject,
        shapes: Vec<Vec<usize>>,
        dtypes: Vec<PyDtype>,
        meta: String,
    ) -> PyResult<()> {
        let specs: Vec<_> = shapes
            .into_iter()
            .zip(dtypes)
            .map(|(s, d)| (s.as_slice().into(), d.0))
            .collect();
        let graph = CompiledGraph::trace_unfused(
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
        self.inner
            .lock()
            .expect("exporter lock")
            .traces
            .push(Trace {
                inputs: specs,
                graph,
                meta,
            });
        Ok(())
    }

    /// Trace `index` described step by step (JSON) and its constants, for a callback.
    fn describe(&self, index: usize) -> PyResult<(String, Vec<PyArray>)> {
        let (desc, consts) = self
            .inner
            .lock()
            .expect("exporter lock")
            .describe(index)
            .py()?;
        Ok((desc, consts.into_iter().map(PyArray::from).collect()))
    }

    fn write(&self, path: &str) -> PyResult<()> {
        self.inner.lock().expect("exporter lock").write(path).py()
    }
}

/// A trace's caller data and its input (shape, dtype) pairs.
type TraceInfo = (String, Vec<(Vec<usize>, PyDtype)>);

#[pyclass(name = "_Imported", module = "rmx.core", frozen)]
pub struct PyImported {
    inner: ExportedFunction,
}

#[pymethods]
impl PyImported {
    #[getter]
    fn shapeless(&self) -> bool {
        self.inner.shapeless
    }
    #[getter]
    fn metadata(&self) -> String {
        self.inner.metadata.clone()
    }
    /// Per trace: (meta, [(shape, dtype)]).
    #[getter]
    fn traces(&self) -> Vec<TraceInfo> {
        self.inner
            .traces
            .iter()
            .map(|t| {
                let specs = t
                    .inputs
                    .iter()
                    .map(|(s, d)| (s.to_vec(), PyDtype(*d)))
                    .collect();
                (t.meta.clone(), specs)
            })
            .collect()
    }
    /// Number of `Fused` nodes in trace `index` (fusion is redone on import).
    fn num_fused(&self, index: usize) -> usize {
        self.inner
            .traces
            .get(index)
            .map_or(0, |t| t.graph.num_fused())
    }
    fn call(&self, index: usize, inputs: Vec<PyArray>) -> PyResult<Vec<PyArray>> {
        let t = self
            .inner
            .traces
            .get(index)
            .ok_or_else(|| PyIndexError::new_err("[import_function] No such trace."))?;
        let ins: Vec<Array> = inputs.into_iter().map(|a| a.inner).collect();
        Ok(t.call(&ins).py()?.into_iter().map(PyArray::from).collect())
    }
}

#[pyfunction]
fn _import_function(path: &str) -> PyResult<PyImported> {
    Ok(PyImported {
        inner: ExportedFunction::read(path).py()?,
    })
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<PyExporter>()?;
    m.add_class::<PyImported>()?;
    m.add_function(wrap_pyfunction!(_import_function, m)?)?;
    Ok(())
}
