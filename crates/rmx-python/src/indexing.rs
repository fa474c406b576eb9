//! Parses Python index expressions (`a[1, ::2, None, ..., idx]`) into core `Index` lists.

use crate::array::PyArray;
use crate::convert::to_array;
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::{PyEllipsis, PyList, PySlice, PyTuple};
use rmx_core::ops::Index;

fn one(obj: &Bound<'_, PyAny>) -> PyResult<Index> {
    if obj.is_none() {
        return Ok(Index::NewAxis);
    }
    if obj.is_instance_of::<PyEllipsis>() {
        return Ok(Index::Ellipsis);
    }
    if let Ok(s) = obj.downcast::<PySlice>() {
        let get = |name: &str| -> PyResult<Option<i64>> {
            let v = s.getattr(name)?;
            if v.is_none() {
                Ok(None)
            } else {
                Ok(Some(v.extract::<i64>()?))
            }
        };
        let step = get("step")?;
        if step == Some(0) {
            return Err(PyValueError::new_err("slice step cannot be zero"));
        }
        return Ok(Index::Slice {
            start: get("start")?,
            stop: get("stop")?,
            step,
        });
    }
    if obj.is_instance_of::<pyo3::types::PyBool>() {
        return Err(PyValueError::new_err(
            "Cannot index mlx array using the given type.",
        ));
    }
    if let Ok(i) = obj.extract::<i64>() {
        if obj.downcast::<PyArray>().is_err() {
            return Ok(Index::Int(i));
        }
    }
    if obj.downcast::<PyArray>().is_ok()
        || obj.is_instance_of::<PyList>()
        || obj.hasattr("__array_interface__")?
    {
        let a = to_array(obj, None)?;
        if !(a.dtype().is_integer() || a.dtype().is_bool()) {
            return Err(PyValueError::new_err(
                "[gather] Got indices with invalid dtype. Indices must be integral.",
            ));
        }
        return Ok(Index::Array(a));
    }
    Err(PyValueError::new_err(
        "Cannot index mlx array using the given type.",
    ))
}

pub fn parse(obj: &Bound<'_, PyAny>) -> PyResult<Vec<Index>> {
    if let Ok(t) = obj.downcast::<PyTuple>() {
        return t.iter().map(|o| one(&o)).collect();
    }
    Ok(vec![one(obj)?])
}
