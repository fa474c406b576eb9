//! Conversions between Python objects and arrays: scalars, nested lists, NumPy arrays
//! in; Python scalars, lists and NumPy arrays out.

use crate::array::PyArray;
use crate::errors::PyResultExt;
use num_complex::Complex32;
use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyBool, PyComplex, PyFloat, PyInt, PyList, PyTuple};
use rmx_core::{ops, Array, Dtype, Scalar};

/// A Python scalar as an rmx scalar, or None if `obj` is not one.
pub fn py_scalar(obj: &Bound<'_, PyAny>) -> PyResult<Option<Scalar>> {
    if obj.is_instance_of::<PyBool>() {
        return Ok(Some(Scalar::Bool(obj.extract()?)));
    }
    if obj.is_instance_of::<PyInt>() {
        if let Ok(v) = obj.extract::<i64>() {
            return Ok(Some(Scalar::Int(v)));
        }
        if let Ok(v) = obj.extract::<u64>() {
            return Ok(Some(Scalar::UInt(v)));
        }
        return Err(PyValueError::new_err(
            "Integer is too large to convert to an array.",
        ));
    }
    if obj.is_instance_of::<PyFloat>() {
        return Ok(Some(Scalar::Float(obj.extract()?)));
    }
    if let Ok(c) = obj.downcast::<PyComplex>() {
        return Ok(Some(Scalar::Complex(Complex32::new(
            c.real() as f32,
            c.imag() as f32,
        ))));
    }
    Ok(None)
}

fn numpy_dtype_name(obj: &Bound<'_, PyAny>) -> PyResult<Option<String>> {
    let Ok(dt) = obj.getattr("dtype") else {
        return Ok(None);
    };
    let Ok(name) = dt.getattr("name") else {
        return Ok(None);
    };
    Ok(Some(name.extract()?))
}

/// A NumPy array (or NumPy scalar) as an array, copying its data.
fn from_numpy(obj: &Bound<'_, PyAny>, want: Option<Dtype>) -> PyResult<Option<Array>> {
    if !obj.hasattr("__array_interface__")? {
        return Ok(None);
    }
    let Some(name) = numpy_dtype_name(obj)? else {
        return Ok(None);
    };
    let np = obj.py().import("numpy")?;
    let strides: Vec<isize> = obj
        .getattr("strides")
        .and_then(|s| s.extract())
        .unwrap_or_default();
    if strides.iter().any(|&s| s < 0) {
        // MLX imports through DLPack, which refuses negative strides
        return Err(PyValueError::new_err(
            "Cannot convert DLPack arrays with negative strides to rmx array.",
        ));
    }
    let (dtype, cast_to) = match name.as_str() {
        // MLX turns float64 NumPy data into float32 unless float64 is asked for
        "float64" if want == Some(Dtype::Float64) => (Dtype::Float64, None),
        "float64" => (Dtype::Float32, Some("float32")),
        "complex128" => (Dtype::Complex64, Some("complex64")),
        other => match Dtype::from_name(other) {
            Some(d) => (d, None),
            None => {
                return Err(PyTypeError::new_err(format!(
                    "Cannot convert numpy array of dtype {other} to an array."
                )))
            }
        },
    };
    let kwargs = pyo3::types::PyDict::new(obj.py());
    kwargs.set_item("order", "C")?;
    let mut arr = np.call_method("asarray", (obj,), Some(&kwargs))?;
    if let Some(t) = cast_to {
        arr = arr.call_method1("astype", (t,))?;
    }
    let shape: Vec<usize> = arr.getattr("shape")?.extract()?;
    let bytes: Vec<u8> = arr.call_method0("tobytes")?.extract()?;
    let data = rmx_core::ArrayData::from_bytes(&bytes, dtype, &shape).py()?;
    Ok(Some(Array::from_data(data)))
}

struct Nested {
    shape: Vec<usize>,
    values: Vec<Scalar>,
}

fn walk_list(obj: &Bound<'_, PyAny>, depth: usize, out: &mut Nested) -> PyResult<()> {
    let is_seq = obj.is_instance_of::<PyList>() || obj.is_instance_of::<PyTuple>();
    if is_seq {
        let n = obj.len()?;
        if out.shape.len() == depth {
            if !out.values.is_empty() {
                return Err(PyValueError::new_err(
                    "Initialization encountered non-uniform length.",
                ));
            }
            out.shape.push(n);
        } else if out.shape.len() < depth || out.shape[depth] != n {
            return Err(PyValueError::new_err(
                "Initialization encountered non-uniform length.",
            ));
        }
        for item in obj.try_iter()? {
            walk_list(&item?, depth + 1, out)?;
        }
        return Ok(());
    }
    if out.shape.len() != depth {
        return Err(PyValueError::new_err(
            "Initialization encountered non-uniform length.",
        ));
    }
    if let Some(s) = py_scalar(obj)? {
        out.values.push(s);
        return Ok(());
    }
    if let Ok(a) = obj.downcast::<PyArray>() {
        let a = a.borrow().inner.clone();
        if a.ndim() == 0 {
            out.values.push(a.item().py()?);
            return Ok(());
        }
        let nested = to_list(obj.py(), &a)?;
        return walk_list(nested.bind(obj.py()), depth, out);
    }
    if let Some(a) = from_numpy(obj, None)? {
        if a.ndim() == 0 {
            out.values.push(a.item().py()?);
            return Ok(());
        }
    }
    Err(PyValueError::new_err(format!(
        "Invalid type {} received in array initialization.",
        obj.get_type().name()?
    )))
}

fn infer_dtype(values: &[Scalar]) -> Dtype {
    let mut d = Dtype::Bool;
    let mut any = false;
    for v in values {
        let vd = match v {
            Scalar::Bool(_) => Dtype::Bool,
            Scalar::Int(i) if *i < i32::MIN as i64 || *i > i32::MAX as i64 => Dtype::Int64,
            Scalar::UInt(u) if *u > i32::MAX as u64 => Dtype::Int64,
            Scalar::Int(_) | Scalar::UInt(_) => Dtype::Int32,
            Scalar::Float(_) => Dtype::Float32,
            Scalar::Complex(_) => Dtype::Complex64,
        };
        d = if any {
            rmx_core::dtype::promote_types(d, vd)
        } else {
            vd
        };
        any = true;
    }
    if !any {
        Dtype::Float32
    } else {
        d
    }
}

/// Converts any array-like Python object to an array (optionally cast to `dtype`).
pub fn to_array(obj: &Bound<'_, PyAny>, dtype: Option<Dtype>) -> PyResult<Array> {
    let a = to_array_inner(obj, dtype)?;
    match dtype {
        Some(d) if a.dtype() != d => ops::astype(&a, d).py(),
        _ => Ok(a),
    }
}

fn to_array_inner(obj: &Bound<'_, PyAny>, dtype: Option<Dtype>) -> PyResult<Array> {
    if let Ok(a) = obj.downcast::<PyArray>() {
        return Ok(a.borrow().inner.clone());
    }
    if let Some(s) = py_scalar(obj)? {
        return Array::scalar_of(s, dtype.unwrap_or(s.default_dtype())).py();
    }
    if obj.is_instance_of::<PyList>() || obj.is_instance_of::<PyTuple>() {
        // lists of arrays stack
        let items: Vec<Bound<'_, PyAny>> = obj.try_iter()?.collect::<PyResult<_>>()?;
        if !items.is_empty() && items.iter().all(|i| i.downcast::<PyArray>().is_ok()) {
            let arrays: Vec<Array> = items
                .iter()
                .map(|i| i.downcast::<PyArray>().unwrap().borrow().inner.clone())
                .collect();
            if arrays.iter().any(|a| a.shape() != arrays[0].shape()) {
                return Err(PyValueError::new_err(
                    "Initialization encountered non-uniform length.",
                ));
            }
            return ops::stack(&arrays, 0).py();
        }
        let mut nested = Nested {
            shape: vec![],
            values: vec![],
        };
        walk_list(obj, 0, &mut nested)?;
        let d = dtype.unwrap_or_else(|| infer_dtype(&nested.values));
        return Array::from_scalars(&nested.values, &nested.shape, d).py();
    }
    if let Some(a) = from_numpy(obj, dtype)? {
        return Ok(a);
    }
    if obj.is_none() {
        return Err(PyTypeError::new_err(
            "array(): incompatible function arguments: None is not array-like",
        ));
    }
    Err(PyValueError::new_err(format!(
        "Invalid type {} received in array initialization.",
        obj.get_type().name()?
    )))
}

/// An op argument: arrays, scalars and NumPy arrays (MLX's ops take no Python lists).
pub fn arg_array(obj: &Bound<'_, PyAny>) -> PyResult<Array> {
    if obj.is_instance_of::<PyList>() || obj.is_instance_of::<PyTuple>() {
        return Err(PyValueError::new_err(format!(
            "Invalid type {} received in array initialization.",
            obj.get_type().name()?
        )));
    }
    to_array(obj, None)
}

/// A Python scalar, or a NumPy scalar (`np.int64(1)`), which MLX types weakly as operands.
fn weak_operand(obj: &Bound<'_, PyAny>) -> PyResult<Option<Scalar>> {
    if let Some(s) = py_scalar(obj)? {
        return Ok(Some(s));
    }
    if obj.hasattr("__array_interface__")? && !obj.hasattr("__array_finalize__")? {
        let np_generic = obj.py().import("numpy")?.getattr("generic")?;
        if obj.is_instance(&np_generic)? {
            return py_scalar(&obj.call_method0("item")?);
        }
    }
    Ok(None)
}

/// The second operand of a binary op: Python scalars are weakly typed against `other`.
pub fn to_operand(obj: &Bound<'_, PyAny>, other: Dtype) -> PyResult<Array> {
    if let Some(s) = weak_operand(obj)? {
        return ops::weak_scalar(s, other).py();
    }
    // MLX converts a NumPy array operand to the other operand's dtype
    if obj.downcast::<PyArray>().is_err() && obj.hasattr("__array_interface__")? {
        return to_array(obj, Some(other));
    }
    to_array(obj, None)
}

/// Resolves both operands of a binary function, applying weak typing of Python scalars.
pub fn operands(a: &Bound<'_, PyAny>, b: &Bound<'_, PyAny>) -> PyResult<(Array, Array)> {
    let (sa, sb) = (weak_operand(a)?, weak_operand(b)?);
    match (sa, sb) {
        (Some(_), Some(_)) => Ok((to_array(a, None)?, to_array(b, None)?)),
        (Some(s), None) => {
            let bb = arg_array(b)?;
            Ok((ops::weak_scalar(s, bb.dtype()).py()?, bb))
        }
        (None, Some(s)) => {
            let aa = arg_array(a)?;
            let sd = ops::weak_scalar(s, aa.dtype()).py()?;
            Ok((aa, sd))
        }
        (None, None) => {
            let a_np = a.downcast::<PyArray>().is_err() && a.hasattr("__array_interface__")?;
            if a_np && b.downcast::<PyArray>().is_ok() {
                let bb = to_array(b, None)?;
                return Ok((to_operand(a, bb.dtype())?, bb));
            }
            let aa = arg_array(a)?;
            if b.is_instance_of::<PyList>() || b.is_instance_of::<PyTuple>() {
                arg_array(b)?;
            }
            Ok((aa.clone(), to_operand(b, aa.dtype())?))
        }
    }
}

pub fn scalar_to_py(py: Python<'_>, s: Scalar) -> PyResult<PyObject> {
    Ok(match s {
        Scalar::Bool(b) => b.into_pyobject(py)?.to_owned().into_any().unbind(),
        Scalar::Int(i) => i.into_pyobject(py)?.into_any().unbind(),
        Scalar::UInt(u) => u.into_pyobject(py)?.into_any().unbind(),
        Scalar::Float(f) => f.into_pyobject(py)?.into_any().unbind(),
        Scalar::Complex(c) => PyComplex::from_doubles(py, c.re as f64, c.im as f64)
            .into_any()
            .unbind(),
    })
}

/// Nested Python lists (or a scalar for 0-d).
pub fn to_list(py: Python<'_>, a: &Array) -> PyResult<PyObject> {
    let values = a.to_scalars().py()?;
    let shape = a.shape().to_vec();
    fn build(py: Python<'_>, v: &[Scalar], shape: &[usize]) -> PyResult<PyObject> {
        if shape.is_empty() {
            return scalar_to_py(py, v[0]);
        }
        let inner: usize = shape[1..].iter().product();
        let mut items = Vec::with_capacity(shape[0]);
        for i in 0..shape[0] {
            items.push(build(py, &v[i * inner..(i + 1) * inner], &shape[1..])?);
        }
        Ok(PyList::new(py, items)?.into_any().unbind())
    }
    build(py, &values, &shape)
}

/// A NumPy copy of the array.
pub fn to_numpy(py: Python<'_>, a: &Array, dtype: Option<&Bound<'_, PyAny>>) -> PyResult<PyObject> {
    let np = py.import("numpy")?;
    if a.dtype() == Dtype::Bfloat16 {
        return Err(PyValueError::new_err(
            "'bfloat16' is not a valid PEP 3118 buffer format string",
        ));
    }
    let bytes = a.to_bytes().py()?;
    let pybytes = pyo3::types::PyBytes::new(py, &bytes);
    let shape = PyTuple::new(py, a.shape())?;
    let arr = np
        .call_method1("frombuffer", (pybytes, a.dtype().name()))?
        .call_method1("reshape", (shape,))?
        .call_method0("copy")?;
    match dtype {
        Some(d) if !d.is_none() => Ok(arr.call_method1("astype", (d,))?.unbind()),
        _ => Ok(arr.unbind()),
    }
}
