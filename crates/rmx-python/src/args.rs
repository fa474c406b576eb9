//! Parsing of common Python arguments: axes, shapes, dtypes, scalars.

use crate::dtype::PyDtype;
use pyo3::exceptions::PyTypeError;
use pyo3::prelude::*;
use rmx_core::Dtype;

/// `axis` given as None, an int or a sequence of ints.
pub fn axes(obj: Option<&Bound<'_, PyAny>>) -> PyResult<Option<Vec<i64>>> {
    match obj {
        None => Ok(None),
        Some(o) if o.is_none() => Ok(None),
        Some(o) => {
            if let Ok(i) = o.extract::<i64>() {
                return Ok(Some(vec![i]));
            }
            Ok(Some(o.extract::<Vec<i64>>().map_err(|_| {
                PyTypeError::new_err("axis must be None, an int or a sequence of ints")
            })?))
        }
    }
}

/// A shape given as an int or a sequence of ints.
pub fn shape(obj: &Bound<'_, PyAny>) -> PyResult<Vec<i64>> {
    if let Ok(i) = obj.extract::<i64>() {
        return Ok(vec![i]);
    }
    obj.extract::<Vec<i64>>()
        .map_err(|_| PyTypeError::new_err("shape must be an int or a sequence of ints"))
}

pub fn dtype(obj: Option<&Bound<'_, PyAny>>) -> PyResult<Option<Dtype>> {
    match obj {
        None => Ok(None),
        Some(o) if o.is_none() => Ok(None),
        Some(o) => Ok(Some(
            o.extract::<PyDtype>()
                .map_err(|_| PyTypeError::new_err("dtype must be an rmx.core.Dtype"))?
                .0,
        )),
    }
}
