//! Bindings for the smaller `mlx.core` names: window functions, `minmax`, `unique`,
//! `depends`, `to_fp8`/`from_fp8`, `get_array_buffer_size`, `set_wired_limit` and
//! `export_to_dot`. Argument parsing only; the semantics live in `rmx_core`.

use crate::array::PyArray;
use crate::convert::arg_array;
use crate::device::on_stream;
use crate::dtype::PyDtype;
use crate::errors::PyResultExt;
use crate::misc::tree_arrays;
use pyo3::exceptions::{PyRuntimeError, PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList, PyTuple};
use rmx_core::{ops, Array, Dtype};

type Any<'py> = Bound<'py, PyAny>;

macro_rules! py_window {
    ($($name:ident),* $(,)?) => {$(
        #[pyfunction]
        #[pyo3(signature = (M, *, stream = None))]
        #[allow(non_snake_case)]
        pub fn $name(M: i64, stream: Option<&Any<'_>>) -> PyResult<PyArray> {
            on_stream(stream, || Ok(ops::$name(M).py()?.into()))
        }
    )*};
}
py_window!(hanning, hamming, bartlett, blackman);

#[pyfunction]
#[pyo3(signature = (a, /, axis = None, keepdims = false, *, stream = None))]
pub fn minmax(
    a: &Any<'_>,
    axis: Option<&Any<'_>>,
    keepdims: bool,
    stream: Option<&Any<'_>>,
) -> PyResult<(PyArray, PyArray)> {
    let ax = crate::args::axes(axis)?;
    let x = arg_array(a)?;
    on_stream(stream, || {
        let (lo, hi) = ops::minmax(&x, ax.as_deref(), keepdims).py()?;
        Ok((lo.into(), hi.into()))
    })
}

#[pyfunction]
#[pyo3(signature = (a, /, size, return_index = false, return_inverse = false, return_counts = false, fill_value = None, *, stream = None))]
#[allow(clippy::too_many_arguments)]
pub fn unique(
    py: Python<'_>,
    a: &Any<'_>,
    size: i64,
    return_index: bool,
    return_inverse: bool,
    return_counts: bool,
    fill_value: Option<&Any<'_>>,
    stream: Option<&Any<'_>>,
) -> PyResult<PyObject> {
    let x = arg_array(a)?;
    let fill = match fill_value {
        Some(f) if !f.is_none() => Some(arg_array(f)?),
        _ => None,
    };
    let outs = on_stream(stream, || {
        ops::unique(
            &x,
            size,
            return_index,
            return_inverse,
            return_counts,
            fill.as_ref(),
        )
        .py()
    })?;
    if outs.len() == 1 {
        let v: PyArray = outs[0].clone().into();
        return Ok(v.into_pyobject(py)?.into_any().unbind());
    }
    let items: Vec<PyArray> = outs.into_iter().map(PyArray::from).collect();
    Ok(PyTuple::new(py, items)?.into_any().unbind())
}

/// An array or a sequence of arrays (MLX raises RuntimeError for anything else).
fn array_or_seq(obj: &Any<'_>) -> PyResult<(Vec<Array>, bool)> {
    let bad = || PyRuntimeError::new_err("depends(): expected an array or a sequence of arrays");
    if let Ok(a) = obj.downcast::<PyArray>() {
        return Ok((vec![a.borrow().inner.clone()], true));
    }
    if obj.is_instance_of::<PyList>() || obj.is_instance_of::<PyTuple>() {
        let mut v = Vec::new();
        for item in obj.try_iter()? {
            let item = item?;
            let a = item.downcast::<PyArray>().map_err(|_| bad())?;
            v.push(a.borrow().inner.clone());
        }
        return Ok((v, false));
    }
    Err(bad())
}

#[pyfunction]
pub fn depends(py: Python<'_>, inputs: &Any<'_>, dependencies: &Any<'_>) -> PyResult<PyObject> {
    let (ins, single) = array_or_seq(inputs)?;
    let (deps, _) = array_or_seq(dependencies)?;
    let outs = ops::depends(&ins, &deps).py()?;
    if single {
        let v: PyArray = outs[0].clone().into();
        return Ok(v.into_pyobject(py)?.into_any().unbind());
    }
    let items: Vec<PyArray> = outs.into_iter().map(PyArray::from).collect();
    Ok(PyList::new(py, items)?.into_any().unbind())
}

#[pyfunction]
#[pyo3(signature = (x, *, stream = None))]
pub fn to_fp8(x: &Any<'_>, stream: Option<&Any<'_>>) -> PyResult<PyArray> {
    let x = arg_array(x)?;
    on_stream(stream, || Ok(ops::to_fp8(&x).py()?.into()))
}

#[pyfunction]
#[pyo3(signature = (x, dtype = PyDtype(Dtype::Bfloat16), *, stream = None))]
pub fn from_fp8(x: &Any<'_>, dtype: PyDtype, stream: Option<&Any<'_>>) -> PyResult<PyArray> {
    let x = arg_array(x)?;
    on_stream(stream, || Ok(ops::from_fp8(&x, dtype.0).py()?.into()))
}

#[pyfunction]
#[pyo3(signature = (*args))]
pub fn get_array_buffer_size(args: &Bound<'_, PyTuple>) -> PyResult<usize> {
    let mut arrays = Vec::new();
    tree_arrays(args.as_any(), &mut arrays)?;
    rmx_core::allocator::get_array_buffer_size(&arrays).py()
}

#[pyfunction]
pub fn set_wired_limit(limit: &Any<'_>) -> PyResult<usize> {
    // MLX takes a size_t: negative or oversized ints do not match its signature
    let l = limit
        .extract::<u64>()
        .map_err(|_| {
            PyTypeError::new_err(
                "set_wired_limit(): incompatible function arguments. The following argument types are supported:\n    1. set_wired_limit(limit: int) -> int",
            )
        })?;
    Ok(rmx_core::allocator::set_wired_limit(l as usize))
}

/// Every array of a tree; any other leaf is MLX's tree_flatten error.
fn strict_tree(obj: &Any<'_>, out: &mut Vec<Array>) -> PyResult<()> {
    if let Ok(a) = obj.downcast::<PyArray>() {
        out.push(a.borrow().inner.clone());
    } else if obj.is_instance_of::<PyList>() || obj.is_instance_of::<PyTuple>() {
        for x in obj.try_iter()? {
            strict_tree(&x?, out)?;
        }
    } else if let Ok(d) = obj.downcast::<PyDict>() {
        for (_, v) in d.iter() {
            strict_tree(&v, out)?;
        }
    } else {
        return Err(PyValueError::new_err(
            "[tree_flatten] The argument should contain only arrays",
        ));
    }
    Ok(())
}

#[pyfunction]
#[pyo3(signature = (file, *args, **kwargs))]
pub fn export_to_dot(
    file: &Any<'_>,
    args: &Bound<'_, PyTuple>,
    kwargs: Option<&Bound<'_, PyDict>>,
) -> PyResult<()> {
    let mut outputs = Vec::new();
    strict_tree(args.as_any(), &mut outputs)?;
    let mut names = Vec::new();
    if let Some(kw) = kwargs {
        for (k, v) in kw.iter() {
            let a = v
                .downcast::<PyArray>()
                .map_err(|_| PyValueError::new_err("[export_to_dot] Names must map to arrays."))?;
            names.push((k.extract::<String>()?, a.borrow().inner.clone()));
        }
    }
    let dot = rmx_core::graph_dot::export_to_dot(&outputs, &names);
    if let Ok(path) = file.extract::<std::path::PathBuf>() {
        std::fs::write(&path, dot)
            .map_err(|e| PyRuntimeError::new_err(format!("[export_to_dot] {e}")))?;
    } else if file.hasattr("write")? {
        file.call_method1("write", (dot,))?;
    } else {
        return Err(PyTypeError::new_err(
            "export_to_dot(): file must be a path or a writable file object",
        ));
    }
    Ok(())
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    macro_rules! add {
        ($($f:ident),* $(,)?) => {$( m.add_function(wrap_pyfunction!($f, m)?)?; )*};
    }
    add!(
        hanning,
        hamming,
        bartlett,
        blackman,
        minmax,
        unique,
        depends,
        to_fp8,
        from_fp8,
        get_array_buffer_size,
        set_wired_limit,
        export_to_dot
    );
    Ok(())
}
