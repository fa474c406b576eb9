//! `rmx.core.Dtype` objects (`mx.float32`, ...) and dtype categories (`mx.floating`, ...).

use pyo3::prelude::*;
use rmx_core::{Dtype, DtypeCategory};

#[pyclass(name = "Dtype", module = "rmx.core", frozen, eq, hash)]
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct PyDtype(pub Dtype);

#[pymethods]
impl PyDtype {
    #[getter]
    fn size(&self) -> usize {
        self.0.size()
    }
    fn __repr__(&self) -> String {
        format!("rmx.core.{}", self.0.name())
    }
    fn __str__(&self) -> String {
        self.__repr__()
    }
    fn __reduce__(&self) -> PyResult<()> {
        Err(pyo3::exceptions::PyTypeError::new_err(
            "cannot pickle 'Dtype' object",
        ))
    }
}

#[pyclass(name = "DtypeCategory", module = "rmx.core", frozen, eq, hash)]
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct PyDtypeCategory(pub DtypeCategory);

#[pymethods]
impl PyDtypeCategory {
    fn __repr__(&self) -> String {
        format!("DtypeCategory.{}", self.0.name())
    }
}

pub const CATEGORIES: [DtypeCategory; 8] = [
    DtypeCategory::ComplexFloating,
    DtypeCategory::Floating,
    DtypeCategory::Inexact,
    DtypeCategory::SignedInteger,
    DtypeCategory::UnsignedInteger,
    DtypeCategory::Integer,
    DtypeCategory::Number,
    DtypeCategory::Generic,
];

#[pyfunction]
pub fn _dtype_from_name(name: &str) -> PyResult<PyDtype> {
    Dtype::from_name(name)
        .map(PyDtype)
        .ok_or_else(|| pyo3::exceptions::PyValueError::new_err(format!("Unknown dtype {name}")))
}

/// `isdtype(dtype, kind)` with kind a dtype, a kind string or a tuple of those.
#[pyfunction]
pub fn isdtype(dtype: PyDtype, kind: &Bound<'_, PyAny>) -> PyResult<bool> {
    if let Ok(d) = kind.extract::<PyDtype>() {
        return Ok(d.0 == dtype.0);
    }
    if let Ok(k) = kind.extract::<String>() {
        return rmx_core::dtype::isdtype(dtype.0, &k).map_err(crate::errors::to_py);
    }
    if let Ok(t) = kind.downcast::<pyo3::types::PyTuple>() {
        for k in t.iter() {
            if isdtype(dtype, &k)? {
                return Ok(true);
            }
        }
        return Ok(false);
    }
    Err(pyo3::exceptions::PyTypeError::new_err(
        "isdtype(): kind must be a Dtype, a string or a tuple of those",
    ))
}

/// `result_type(*arrays_or_dtypes)`: the promoted dtype.
#[pyfunction]
#[pyo3(signature = (*args))]
pub fn result_type(args: &Bound<'_, pyo3::types::PyTuple>) -> PyResult<PyDtype> {
    let mut dtypes = Vec::new();
    for a in args.iter() {
        if let Ok(d) = a.extract::<PyDtype>() {
            dtypes.push(d.0);
        } else if let Ok(arr) = a.downcast::<crate::array::PyArray>() {
            dtypes.push(arr.borrow().inner.dtype());
        } else {
            return Err(pyo3::exceptions::PyValueError::new_err(
                "[result_type] Inputs must be arrays or dtypes.",
            ));
        }
    }
    rmx_core::dtype::result_type(&dtypes)
        .map(PyDtype)
        .ok_or_else(|| {
            pyo3::exceptions::PyValueError::new_err(
                "[result_type] At least one array or dtype is required.",
            )
        })
}

/// `can_cast(from_, to)`: promoting the two gives back `to`.
#[pyfunction]
pub fn can_cast(from_: &Bound<'_, PyAny>, to: PyDtype) -> PyResult<bool> {
    let from = if let Ok(d) = from_.extract::<PyDtype>() {
        d.0
    } else if let Ok(a) = from_.downcast::<crate::array::PyArray>() {
        a.borrow().inner.dtype()
    } else {
        return Err(pyo3::exceptions::PyTypeError::new_err(
            "can_cast(): from_ must be an array or a Dtype",
        ));
    };
    Ok(rmx_core::dtype::promote_types(from, to.0) == to.0)
}

/// A category given as our class or as a member of the Python `DtypeCategory` enum.
fn category_of(o: &Bound<'_, PyAny>) -> Option<DtypeCategory> {
    if let Ok(c) = o.extract::<PyDtypeCategory>() {
        return Some(c.0);
    }
    let name: String = o.getattr("name").ok()?.extract().ok()?;
    CATEGORIES.iter().copied().find(|c| c.name() == name)
}

/// `issubdtype(a, b)` over dtypes and categories.
#[pyfunction]
pub fn issubdtype(a: &Bound<'_, PyAny>, b: &Bound<'_, PyAny>) -> PyResult<bool> {
    enum K {
        D(Dtype),
        C(DtypeCategory),
    }
    let get = |o: &Bound<'_, PyAny>| -> PyResult<K> {
        if let Ok(d) = o.extract::<PyDtype>() {
            return Ok(K::D(d.0));
        }
        if let Some(c) = category_of(o) {
            return Ok(K::C(c));
        }
        Err(pyo3::exceptions::PyTypeError::new_err(
            "issubdtype(): arguments must be Dtype or DtypeCategory",
        ))
    };
    Ok(match (get(a)?, get(b)?) {
        (K::D(x), K::D(y)) => x == y,
        (K::D(x), K::C(c)) => x.is_subdtype(c),
        (K::C(_), K::D(_)) => false,
        (K::C(x), K::C(y)) => x.is_subcategory(y),
    })
}

#[pyclass(name = "finfo", module = "rmx.core", frozen)]
pub struct PyFinfo {
    #[pyo3(get)]
    min: f64,
    #[pyo3(get)]
    max: f64,
    #[pyo3(get)]
    eps: f64,
    #[pyo3(get)]
    smallest_normal: f64,
    #[pyo3(get)]
    bits: usize,
    #[pyo3(get)]
    dtype: PyDtype,
}

#[pymethods]
impl PyFinfo {
    #[new]
    fn new(dtype: PyDtype) -> PyResult<Self> {
        let f = rmx_core::dtype::finfo(dtype.0).ok_or_else(|| {
            pyo3::exceptions::PyValueError::new_err(format!(
                "[finfo] dtype {} is not inexact.",
                dtype.0
            ))
        })?;
        Ok(PyFinfo {
            min: f.min,
            max: f.max,
            eps: f.eps,
            smallest_normal: f.smallest_normal,
            bits: f.dtype.size() * 8,
            dtype: PyDtype(f.dtype),
        })
    }
    fn __repr__(&self) -> String {
        format!(
            "finfo(min={}, max={}, dtype={})",
            rmx_core::format::format_g(self.min),
            rmx_core::format::format_g(self.max),
            self.dtype.0
        )
    }
}

#[pyclass(name = "iinfo", module = "rmx.core", frozen)]
pub struct PyIinfo {
    #[pyo3(get)]
    min: i128,
    #[pyo3(get)]
    max: i128,
    #[pyo3(get)]
    dtype: PyDtype,
}

#[pymethods]
impl PyIinfo {
    #[new]
    fn new(dtype: PyDtype) -> PyResult<Self> {
        let f = rmx_core::dtype::iinfo(dtype.0).ok_or_else(|| {
            pyo3::exceptions::PyValueError::new_err(format!(
                "[iinfo] dtype {} is not integral.",
                dtype.0
            ))
        })?;
        Ok(PyIinfo {
            min: f.min,
            max: f.max,
            dtype: PyDtype(f.dtype),
        })
    }
    fn __repr__(&self) -> String {
        format!(
            "iinfo(min={}, max={}, dtype={})",
            self.min, self.max, self.dtype.0
        )
    }
}
