//! `load`, `save`, `savez`, `savez_compressed`, `save_safetensors`, `save_gguf`: argument
//! handling (paths, pathlib, file-like objects) around `rmx_io`.

use crate::array::PyArray;
use crate::device::on_stream;
use crate::errors::PyResultExt;
use pyo3::exceptions::{PyRuntimeError, PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict, PyList, PyString, PyTuple};
use rmx_core::Array;
use rmx_io::{Format, Loaded, MetaValue, Metadata};
use std::path::PathBuf;

type Any<'py> = Bound<'py, PyAny>;

/// A path (str or os.PathLike), or None for anything else.
fn as_path(file: &Any<'_>) -> PyResult<Option<PathBuf>> {
    if file.is_instance_of::<PyString>() || file.hasattr("__fspath__")? {
        let os = file.py().import("os")?;
        let p = os.call_method1("fspath", (file,))?;
        if let Ok(s) = p.extract::<String>() {
            return Ok(Some(PathBuf::from(s)));
        }
        return Ok(Some(p.extract::<PathBuf>()?));
    }
    Ok(None)
}

fn meta_to_py<'py>(py: Python<'py>, meta: Metadata) -> PyResult<Bound<'py, PyDict>> {
    let d = PyDict::new(py);
    match meta {
        Metadata::Strings(m) => {
            for (k, v) in m {
                d.set_item(k, v)?;
            }
        }
        Metadata::Gguf(m) => {
            for (k, v) in m {
                match v {
                    MetaValue::Array(a) => d.set_item(k, PyArray::from(a))?,
                    MetaValue::Str(s) => d.set_item(k, s)?,
                    MetaValue::StrList(l) => d.set_item(k, PyList::new(py, l)?)?,
                }
            }
        }
    }
    Ok(d)
}

#[pyfunction]
#[pyo3(signature = (file, /, format=None, return_metadata=false, *, stream=None))]
fn load<'py>(
    py: Python<'py>,
    file: &Any<'py>,
    format: Option<String>,
    return_metadata: bool,
    stream: Option<&Any<'py>>,
) -> PyResult<PyObject> {
    let (loaded, meta) = on_stream(stream, || {
        if let Some(path) = as_path(file)? {
            let fmt = match &format {
                Some(f) => Format::from_name(f).py()?,
                None => Format::from_file_name(&path.to_string_lossy()).py()?,
            };
            return py
                .allow_threads(|| rmx_io::load_with_metadata(&path, Some(fmt), return_metadata))
                .py();
        }
        if !file.hasattr("read")? {
            return Err(PyValueError::new_err(
                "[load] Input must be a file-like object opened in binary mode, or string",
            ));
        }
        let fmt = match &format {
            Some(f) => Format::from_name(f).py()?,
            // As MLX: the extension of the object's `name` (AttributeError without one).
            None => Format::from_file_name(&file.getattr("name")?.str()?.to_string()).py()?,
        };
        if fmt == Format::Gguf {
            return Err(PyValueError::new_err("[load_gguf] Input must be a string"));
        }
        let bytes: Vec<u8> = file.call_method0("read")?.extract().map_err(|_| {
            PyValueError::new_err(
                "[load] Input must be a file-like object opened in binary mode, or string",
            )
        })?;
        // The object may be closed after this call: read every array now.
        let (loaded, meta) = py
            .allow_threads(|| rmx_io::load_bytes(bytes, "python file object", fmt, return_metadata))
            .py()?;
        let all: Vec<Array> = match &loaded {
            Loaded::Array(a) => vec![a.clone()],
            Loaded::Arrays(v) => v.iter().map(|(_, a)| a.clone()).collect(),
        };
        py.allow_threads(|| rmx_core::eval(&all)).py()?;
        Ok((loaded, meta))
    })?;
    let arrays: PyObject = match loaded {
        Loaded::Array(a) => Py::new(py, PyArray::from(a))?.into_any(),
        Loaded::Arrays(v) => {
            let d = PyDict::new(py);
            for (k, a) in v {
                d.set_item(k, PyArray::from(a))?;
            }
            d.into_any().unbind()
        }
    };
    match meta {
        Some(m) if return_metadata => Ok(PyTuple::new(
            py,
            [arrays, meta_to_py(py, m)?.into_any().unbind()],
        )?
        .into_any()
        .unbind()),
        _ => Ok(arrays),
    }
}

fn array_arg(obj: &Any<'_>, what: &str) -> PyResult<Array> {
    obj.downcast::<PyArray>()
        .map(|a| a.borrow().inner.clone())
        .map_err(|_| {
            PyTypeError::new_err(format!(
                "{what}: expected an array, got {}",
                obj.get_type()
                    .name()
                    .map(|n| n.to_string())
                    .unwrap_or_default()
            ))
        })
}

fn dict_arrays(arrays: &Bound<'_, PyDict>, what: &str) -> PyResult<Vec<(String, Array)>> {
    arrays
        .iter()
        .map(|(k, v)| {
            let k: String = k.extract().map_err(|_| {
                PyTypeError::new_err(format!("{what}: array names must be strings"))
            })?;
            Ok((k, array_arg(&v, what)?))
        })
        .collect()
}

/// Runs a format writer into a path (suffix appended as MLX does) or a file-like object.
/// Every array is evaluated first: lazy inputs may still read from the file being replaced.
fn write_out(
    py: Python<'_>,
    file: &Any<'_>,
    suffix: &str,
    not_file: &str,
    arrays: &[Array],
    write: impl FnOnce(&mut dyn rmx_io::Sink) -> rmx_core::Result<()> + Send,
) -> PyResult<()> {
    py.allow_threads(|| rmx_core::eval(arrays)).py()?;
    if let Some(path) = as_path(file)? {
        let path = rmx_io::with_suffix(path, suffix);
        return py.allow_threads(|| rmx_io::write_file(&path, write)).py();
    }
    if !file.hasattr("write")? {
        return Err(PyValueError::new_err(not_file.to_string()));
    }
    let data = py.allow_threads(|| rmx_io::to_vec(write)).py()?;
    file.call_method1("write", (PyBytes::new(py, &data),))?;
    Ok(())
}

fn values(arrays: &[(String, Array)]) -> Vec<Array> {
    arrays.iter().map(|(_, a)| a.clone()).collect()
}

#[pyfunction]
#[pyo3(signature = (file, arr, /))]
fn save(py: Python<'_>, file: &Any<'_>, arr: &Any<'_>) -> PyResult<()> {
    let a = array_arg(arr, "save()")?;
    write_out(
        py,
        file,
        ".npy",
        "[save] Input must be a file-like object, or string",
        std::slice::from_ref(&a),
        |w| rmx_io::npy::write(w, &a),
    )
}

fn savez_impl(
    py: Python<'_>,
    file: &Any<'_>,
    args: &Bound<'_, PyTuple>,
    kwargs: Option<&Bound<'_, PyDict>>,
    compressed: bool,
) -> PyResult<()> {
    let mut arrays: Vec<(String, Array)> = Vec::new();
    for (i, a) in args.iter().enumerate() {
        arrays.push((format!("arr_{i}"), array_arg(&a, "savez()")?));
    }
    if let Some(kw) = kwargs {
        for (k, v) in kw.iter() {
            let k: String = k.extract()?;
            if arrays.iter().any(|(n, _)| *n == k) {
                return Err(PyValueError::new_err(format!(
                    "[savez] Cannot use un-named variables and keyword {k}"
                )));
            }
            arrays.push((k, array_arg(&v, "savez()")?));
        }
    }
    if as_path(file)?.is_none() && !file.hasattr("write")? {
        // MLX hands the object to zipfile, which fails on the missing write().
        file.getattr("write")?;
    }
    write_out(py, file, ".npz", "", &values(&arrays), |w| {
        rmx_io::npz::write(w, &arrays, compressed)
    })
}

#[pyfunction]
#[pyo3(signature = (file, *args, **kwargs))]
fn savez(
    py: Python<'_>,
    file: &Any<'_>,
    args: &Bound<'_, PyTuple>,
    kwargs: Option<&Bound<'_, PyDict>>,
) -> PyResult<()> {
    savez_impl(py, file, args, kwargs, false)
}

#[pyfunction]
#[pyo3(signature = (file, *args, **kwargs))]
fn savez_compressed(
    py: Python<'_>,
    file: &Any<'_>,
    args: &Bound<'_, PyTuple>,
    kwargs: Option<&Bound<'_, PyDict>>,
) -> PyResult<()> {
    savez_impl(py, file, args, kwargs, true)
}

#[pyfunction]
#[pyo3(signature = (file, arrays, metadata=None))]
fn save_safetensors(
    py: Python<'_>,
    file: &Any<'_>,
    arrays: &Bound<'_, PyDict>,
    metadata: Option<&Any<'_>>,
) -> PyResult<()> {
    let arrays = dict_arrays(arrays, "save_safetensors()")?;
    let mut meta = Vec::new();
    if let Some(m) = metadata.filter(|m| !m.is_none()) {
        let bad = || {
            PyValueError::new_err(
                "[save_safetensors] Metadata must be a dictionary with string keys and values",
            )
        };
        let m = m.downcast::<PyDict>().map_err(|_| bad())?;
        for (k, v) in m.iter() {
            meta.push((
                k.extract::<String>().map_err(|_| bad())?,
                v.extract::<String>().map_err(|_| bad())?,
            ));
        }
    }
    write_out(
        py,
        file,
        ".safetensors",
        "[save_safetensors] Input must be a file-like object, or string",
        &values(&arrays),
        |w| rmx_io::safetensors::write(w, &arrays, &meta),
    )
}

#[pyfunction]
#[pyo3(signature = (file, arrays, metadata=None))]
fn save_gguf(
    py: Python<'_>,
    file: &Any<'_>,
    arrays: &Bound<'_, PyDict>,
    metadata: Option<&Bound<'_, PyDict>>,
) -> PyResult<()> {
    if as_path(file)?.is_none() {
        return Err(PyValueError::new_err("[save_gguf] Input must be a string"));
    }
    let arrays = dict_arrays(arrays, "save_gguf()")?;
    let mut meta = Vec::new();
    for (k, v) in metadata
        .map(|m| m.iter().collect::<Vec<_>>())
        .unwrap_or_default()
    {
        let k: String = k
            .extract()
            .map_err(|_| PyTypeError::new_err("save_gguf(): metadata keys must be strings"))?;
        let value = if let Ok(a) = v.downcast::<PyArray>() {
            MetaValue::Array(a.borrow().inner.clone())
        } else if let Ok(s) = v.extract::<String>() {
            MetaValue::Str(s)
        } else if let Some(l) = v.downcast::<PyList>().ok().and_then(|l| {
            l.iter()
                .map(|x| x.extract::<String>())
                .collect::<PyResult<Vec<_>>>()
                .ok()
        }) {
            MetaValue::StrList(l)
        } else {
            return Err(PyRuntimeError::new_err(
                "[save_gguf] Received unexpected type in metadata",
            ));
        };
        meta.push((k, value));
    }
    write_out(py, file, ".gguf", "", &values(&arrays), |w| {
        rmx_io::gguf::write(w, &arrays, &meta)
    })
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(load, m)?)?;
    m.add_function(wrap_pyfunction!(save, m)?)?;
    m.add_function(wrap_pyfunction!(savez, m)?)?;
    m.add_function(wrap_pyfunction!(savez_compressed, m)?)?;
    m.add_function(wrap_pyfunction!(save_safetensors, m)?)?;
    m.add_function(wrap_pyfunction!(save_gguf, m)?)?;
    Ok(())
}
