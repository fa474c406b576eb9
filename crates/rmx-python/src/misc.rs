//! `eval`, `async_eval` over trees of arrays, and the memory API.

use crate::array::PyArray;
use crate::errors::PyResultExt;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList, PyTuple};
use rmx_core::Array;

/// Collects every array in a tree of lists, tuples and dicts.
pub fn tree_arrays(obj: &Bound<'_, PyAny>, out: &mut Vec<Array>) -> PyResult<()> {
    if let Ok(a) = obj.downcast::<PyArray>() {
        out.push(a.borrow().inner.clone());
    } else if let Ok(l) = obj.downcast::<PyList>() {
        for x in l.iter() {
            tree_arrays(&x, out)?;
        }
    } else if let Ok(t) = obj.downcast::<PyTuple>() {
        for x in t.iter() {
            tree_arrays(&x, out)?;
        }
    } else if let Ok(d) = obj.downcast::<PyDict>() {
        for (_, v) in d.iter() {
            tree_arrays(&v, out)?;
        }
    }
    Ok(())
}

#[pyfunction]
#[pyo3(signature = (*args))]
pub fn eval(py: Python<'_>, args: &Bound<'_, PyTuple>) -> PyResult<()> {
    let mut arrays = Vec::new();
    tree_arrays(args.as_any(), &mut arrays)?;
    py.allow_threads(|| rmx_core::eval(&arrays)).py()
}

#[pyfunction]
#[pyo3(signature = (*args))]
pub fn async_eval(py: Python<'_>, args: &Bound<'_, PyTuple>) -> PyResult<()> {
    let mut arrays = Vec::new();
    tree_arrays(args.as_any(), &mut arrays)?;
    py.allow_threads(|| rmx_core::async_eval(&arrays)).py()
}

#[pyfunction]
pub fn get_active_memory() -> usize {
    rmx_core::allocator::get_active_memory()
}
#[pyfunction]
pub fn get_peak_memory() -> usize {
    rmx_core::allocator::get_peak_memory()
}
#[pyfunction]
pub fn reset_peak_memory() {
    rmx_core::allocator::reset_peak_memory()
}
#[pyfunction]
pub fn get_cache_memory() -> usize {
    rmx_core::allocator::get_cache_memory()
}
fn limit_arg(name: &str, limit: i128) -> PyResult<usize> {
    if limit > usize::MAX as i128 {
        return Ok(usize::MAX);
    }
    usize::try_from(limit).map_err(|_| {
        pyo3::exceptions::PyTypeError::new_err(format!("{name}(): the limit must be non-negative"))
    })
}
#[pyfunction]
pub fn set_cache_limit(limit: i128) -> PyResult<usize> {
    Ok(rmx_core::allocator::set_cache_limit(limit_arg(
        "set_cache_limit",
        limit,
    )?))
}
#[pyfunction]
pub fn set_memory_limit(limit: i128) -> PyResult<usize> {
    Ok(rmx_core::allocator::set_memory_limit(limit_arg(
        "set_memory_limit",
        limit,
    )?))
}
#[pyfunction]
pub fn get_memory_limit() -> usize {
    rmx_core::allocator::get_memory_limit()
}
#[pyfunction]
pub fn clear_cache() {
    rmx_core::allocator::clear_cache()
}

#[pyfunction]
#[pyo3(signature = (a, /, dtype, *, stream = None))]
pub fn view(
    a: &Bound<'_, PyAny>,
    dtype: crate::dtype::PyDtype,
    stream: Option<&Bound<'_, PyAny>>,
) -> PyResult<PyArray> {
    crate::device::on_stream(stream, || {
        Ok(rmx_core::ops::view(&crate::convert::arg_array(a)?, dtype.0)
            .py()?
            .into())
    })
}

#[pyfunction]
#[pyo3(signature = (a, /, dtype, *, stream = None))]
pub fn astype(
    a: &Bound<'_, PyAny>,
    dtype: crate::dtype::PyDtype,
    stream: Option<&Bound<'_, PyAny>>,
) -> PyResult<PyArray> {
    crate::device::on_stream(stream, || {
        Ok(
            rmx_core::ops::astype(&crate::convert::arg_array(a)?, dtype.0)
                .py()?
                .into(),
        )
    })
}

/// The print options in force (`mx.get_printoptions().precision`).
#[pyclass(name = "PrintOptions", module = "rmx.core", frozen)]
pub struct PrintOptions {
    #[pyo3(get)]
    precision: i32,
}

#[pyfunction]
#[pyo3(signature = (precision = -1))]
pub fn set_printoptions(precision: i32) {
    rmx_core::format::set_precision(precision)
}

#[pyfunction]
pub fn get_printoptions() -> PrintOptions {
    PrintOptions {
        precision: rmx_core::format::precision(),
    }
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    macro_rules! add {
        ($($f:ident),* $(,)?) => {$( m.add_function(wrap_pyfunction!($f, m)?)?; )*};
    }
    m.add_class::<PrintOptions>()?;
    add!(
        set_printoptions,
        get_printoptions,
        eval,
        async_eval,
        get_active_memory,
        get_peak_memory,
        reset_peak_memory,
        get_cache_memory,
        set_cache_limit,
        set_memory_limit,
        get_memory_limit,
        clear_cache,
        view,
        astype,
    );
    Ok(())
}
