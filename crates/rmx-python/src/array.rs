//! The `rmx.core.array` class: properties, operators and methods, each forwarding to
//! `rmx_core::ops` (the same functions the module exposes).

use crate::args;
use crate::convert::{scalar_to_py, to_array, to_list, to_numpy, to_operand};
use crate::dtype::PyDtype;
use crate::errors::PyResultExt;
use crate::indexing;
use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::PyTuple;
use rmx_core::backend::ScatterMode;
use rmx_core::{ops, Array, Dtype, Scalar};

type Any<'py> = Bound<'py, PyAny>;

#[pyclass(name = "array", module = "rmx.core", subclass)]
#[derive(Clone)]
pub struct PyArray {
    pub inner: Array,
}

impl From<Array> for PyArray {
    fn from(inner: Array) -> Self {
        PyArray { inner }
    }
}

/// The other operand of a Python operator: arrays, Python scalars and NumPy arrays only
/// (MLX refuses lists and other objects with a ValueError naming the operation).
fn operator_operand(a: &Array, other: &Any<'_>, name: &str) -> PyResult<Array> {
    let ok = other.downcast::<PyArray>().is_ok()
        || crate::convert::py_scalar(other)?.is_some()
        || other.hasattr("__array_interface__")?;
    if !ok {
        return Err(PyValueError::new_err(format!(
            "Cannot perform {name} on an rmx.core.array and {}",
            other.get_type().name()?
        )));
    }
    to_operand(other, a.dtype())
}

type BinFn = fn(&Array, &Array) -> rmx_core::Result<Array>;

fn binop(a: &Array, other: &Any<'_>, f: BinFn, name: &str) -> PyResult<PyArray> {
    let b = operator_operand(a, other, name)?;
    Ok(f(a, &b).py()?.into())
}

fn rbinop(a: &Array, other: &Any<'_>, f: BinFn, name: &str) -> PyResult<PyArray> {
    let b = operator_operand(a, other, name)?;
    Ok(f(&b, a).py()?.into())
}

/// Bitwise operators refuse floating operands with a ValueError (the functions raise RuntimeError).
fn bitop(a: &Array, other: &Any<'_>, f: BinFn, name: &str, reflected: bool) -> PyResult<PyArray> {
    let b = operator_operand(a, other, name)?;
    if a.dtype().is_inexact() || b.dtype().is_inexact() {
        return Err(PyValueError::new_err(format!(
            "Floating point types not allowed with {name}."
        )));
    }
    let r = if reflected { f(&b, a) } else { f(a, &b) };
    Ok(r.py()?.into())
}

fn shape_args(args_: &Bound<'_, PyTuple>) -> PyResult<Vec<i64>> {
    if args_.len() == 1 {
        return args::shape(&args_.get_item(0)?);
    }
    args_.extract::<Vec<i64>>()
}

#[pymethods]
impl PyArray {
    #[new]
    #[pyo3(signature = (val, dtype = None))]
    fn new(val: &Any<'_>, dtype: Option<&Any<'_>>) -> PyResult<Self> {
        let d = args::dtype(dtype)?;
        Ok(to_array(val, d)?.into())
    }

    #[getter]
    fn shape<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyTuple>> {
        PyTuple::new(py, self.inner.shape())
    }
    #[getter]
    fn dtype(&self) -> PyDtype {
        PyDtype(self.inner.dtype())
    }
    #[getter]
    fn ndim(&self) -> usize {
        self.inner.ndim()
    }
    #[getter]
    fn size(&self) -> usize {
        self.inner.size()
    }
    #[getter]
    fn nbytes(&self) -> usize {
        self.inner.nbytes()
    }
    #[getter]
    fn itemsize(&self) -> usize {
        self.inner.itemsize()
    }
    #[getter(T)]
    fn t(&self) -> PyResult<PyArray> {
        Ok(ops::transpose(&self.inner, None).py()?.into())
    }
    #[getter]
    fn real(&self) -> PyResult<PyArray> {
        Ok(ops::real(&self.inner).py()?.into())
    }
    #[getter]
    fn imag(&self) -> PyResult<PyArray> {
        Ok(ops::imag(&self.inner).py()?.into())
    }
    #[getter]
    fn at(&self) -> ArrayAt {
        ArrayAt {
            array: self.inner.clone(),
        }
    }

    fn item(&self, py: Python<'_>) -> PyResult<PyObject> {
        let s = py.allow_threads(|| self.inner.item()).py()?;
        scalar_to_py(py, s)
    }
    fn tolist(&self, py: Python<'_>) -> PyResult<PyObject> {
        to_list(py, &self.inner)
    }
    #[pyo3(signature = (dtype = None, copy = None))]
    fn __array__(
        &self,
        py: Python<'_>,
        dtype: Option<&Any<'_>>,
        copy: Option<bool>,
    ) -> PyResult<PyObject> {
        let _ = copy;
        to_numpy(py, &self.inner, dtype)
    }
    /// A DLPack capsule of the (evaluated) array on the CPU, made by NumPy from the array's
    /// host copy, which the capsule keeps alive. bfloat16 has no NumPy type and raises
    /// RuntimeError as MLX does ("Unsupported dtype in DLTensor.").
    #[pyo3(signature = (*, stream = None, max_version = None, dl_device = None, copy = None))]
    fn __dlpack__(
        &self,
        py: Python<'_>,
        stream: Option<&Any<'_>>,
        max_version: Option<&Any<'_>>,
        dl_device: Option<&Any<'_>>,
        copy: Option<bool>,
    ) -> PyResult<PyObject> {
        let _ = stream;
        if self.inner.dtype() == rmx_core::dtype::Dtype::Bfloat16 {
            return Err(pyo3::exceptions::PyRuntimeError::new_err(
                "Unsupported dtype in DLTensor.",
            ));
        }
        let arr = to_numpy(py, &self.inner, None)?;
        let kw = pyo3::types::PyDict::new(py);
        if let Some(v) = max_version {
            kw.set_item("max_version", v)?;
        }
        if let Some(d) = dl_device {
            kw.set_item("dl_device", d)?;
        }
        if let Some(c) = copy {
            kw.set_item("copy", c)?;
        }
        Ok(arr
            .bind(py)
            .call_method("__dlpack__", (), Some(&kw))?
            .unbind())
    }
    /// `(kDLCPU, 0)`: rmx arrays live in host memory.
    fn __dlpack_device__(&self) -> (i32, i32) {
        (1, 0)
    }
    fn __repr__(&self, py: Python<'_>) -> PyResult<String> {
        py.allow_threads(|| rmx_core::format::repr(&self.inner))
            .py()
    }
    fn __str__(&self, py: Python<'_>) -> PyResult<String> {
        self.__repr__(py)
    }
    fn __len__(&self) -> PyResult<usize> {
        if self.inner.ndim() == 0 {
            return Err(PyTypeError::new_err("len() 0-dimensional array."));
        }
        Ok(self.inner.shape()[0])
    }
    fn __iter__(slf: PyRef<'_, Self>) -> PyResult<ArrayIter> {
        if slf.inner.ndim() == 0 {
            return Err(PyTypeError::new_err("iteration over a 0-d array"));
        }
        Ok(ArrayIter {
            array: slf.inner.clone(),
            pos: 0,
        })
    }
    fn __hash__(&self) -> isize {
        self.inner.id() as isize
    }
    fn __bool__(&self, py: Python<'_>) -> PyResult<bool> {
        Ok(self.scalar(py)?.as_bool())
    }
    /// Python's own int()/float()/complex() of the item, so NaN and complex raise as they do there.
    fn __int__(&self, py: Python<'_>) -> PyResult<PyObject> {
        let v = scalar_to_py(py, self.scalar(py)?)?;
        Ok(py.get_type::<pyo3::types::PyInt>().call1((v,))?.unbind())
    }
    fn __float__(&self, py: Python<'_>) -> PyResult<PyObject> {
        let v = scalar_to_py(py, self.scalar(py)?)?;
        Ok(py.get_type::<pyo3::types::PyFloat>().call1((v,))?.unbind())
    }
    fn __complex__(&self, py: Python<'_>) -> PyResult<PyObject> {
        let v = scalar_to_py(py, self.scalar(py)?)?;
        Ok(py
            .get_type::<pyo3::types::PyComplex>()
            .call1((v,))?
            .unbind())
    }
    fn __index__(&self, py: Python<'_>) -> PyResult<i64> {
        if !self.inner.dtype().is_integer() || self.inner.ndim() != 0 {
            return Err(PyTypeError::new_err(
                "Only 0-dimensional integer arrays can be converted to an index.",
            ));
        }
        Ok(self.scalar(py)?.as_i64())
    }
    fn __bytes__(&self, py: Python<'_>) -> PyResult<PyObject> {
        let bytes = py.allow_threads(|| self.inner.to_bytes()).py()?;
        Ok(pyo3::types::PyBytes::new(py, &bytes).into_any().unbind())
    }
    fn __format__(&self, py: Python<'_>, spec: &str) -> PyResult<String> {
        if spec.is_empty() {
            return py
                .allow_threads(|| rmx_core::format::body(&self.inner))
                .py();
        }
        if self.inner.ndim() != 0 {
            return Err(PyTypeError::new_err(
                "unsupported format string passed to rmx.core.array.__format__",
            ));
        }
        let v = scalar_to_py(py, self.scalar(py)?)?;
        v.bind(py).call_method1("__format__", (spec,))?.extract()
    }
    fn __copy__(&self) -> PyResult<PyArray> {
        Ok(ops::copy(&self.inner).py()?.into())
    }
    fn __deepcopy__(&self, _memo: &Any<'_>) -> PyResult<PyArray> {
        self.__copy__()
    }
    fn __getstate__(&self, py: Python<'_>) -> PyResult<(Vec<usize>, String, PyObject)> {
        let bytes = py.allow_threads(|| self.inner.to_bytes()).py()?;
        Ok((
            self.inner.shape().to_vec(),
            self.inner.dtype().name().to_string(),
            pyo3::types::PyBytes::new(py, &bytes).into_any().unbind(),
        ))
    }
    fn __setstate__(&mut self, state: (Vec<usize>, String, Vec<u8>)) -> PyResult<()> {
        let dtype = Dtype::from_name(&state.1)
            .ok_or_else(|| PyValueError::new_err("unknown dtype in pickle"))?;
        let data = rmx_core::ArrayData::from_bytes(&state.2, dtype, &state.0).py()?;
        self.inner = Array::from_data(data);
        Ok(())
    }
    fn __getnewargs__(&self) -> (i32,) {
        (0,)
    }

    fn __getitem__(&self, key: &Any<'_>) -> PyResult<PyArray> {
        let idx = indexing::parse(key)?;
        Ok(ops::index(&self.inner, &idx).py()?.into())
    }
    fn __setitem__(&mut self, key: &Any<'_>, value: &Any<'_>) -> PyResult<()> {
        let idx = indexing::parse(key)?;
        let v = to_operand(value, self.inner.dtype())?;
        self.inner = ops::index_update(&self.inner, &idx, &v, ScatterMode::Set).py()?;
        Ok(())
    }

    // arithmetic operators
    fn __add__(&self, o: &Any<'_>) -> PyResult<PyArray> {
        binop(&self.inner, o, ops::add, "addition")
    }
    fn __radd__(&self, o: &Any<'_>) -> PyResult<PyArray> {
        rbinop(&self.inner, o, ops::add, "addition")
    }
    fn __sub__(&self, o: &Any<'_>) -> PyResult<PyArray> {
        binop(&self.inner, o, ops::subtract, "subtraction")
    }
    fn __rsub__(&self, o: &Any<'_>) -> PyResult<PyArray> {
        rbinop(&self.inner, o, ops::subtract, "subtraction")
    }
    fn __mul__(&self, o: &Any<'_>) -> PyResult<PyArray> {
        binop(&self.inner, o, ops::multiply, "multiplication")
    }
    fn __rmul__(&self, o: &Any<'_>) -> PyResult<PyArray> {
        rbinop(&self.inner, o, ops::multiply, "multiplication")
    }
    fn __truediv__(&self, o: &Any<'_>) -> PyResult<PyArray> {
        binop(&self.inner, o, ops::divide, "division")
    }
    fn __rtruediv__(&self, o: &Any<'_>) -> PyResult<PyArray> {
        rbinop(&self.inner, o, ops::divide, "division")
    }
    fn __floordiv__(&self, o: &Any<'_>) -> PyResult<PyArray> {
        binop(&self.inner, o, ops::floor_divide, "floor division")
    }
    fn __rfloordiv__(&self, o: &Any<'_>) -> PyResult<PyArray> {
        rbinop(&self.inner, o, ops::floor_divide, "floor division")
    }
    fn __mod__(&self, o: &Any<'_>) -> PyResult<PyArray> {
        binop(&self.inner, o, ops::remainder, "modulus")
    }
    fn __rmod__(&self, o: &Any<'_>) -> PyResult<PyArray> {
        rbinop(&self.inner, o, ops::remainder, "modulus")
    }
    fn __pow__(&self, o: &Any<'_>, _m: Option<&Any<'_>>) -> PyResult<PyArray> {
        binop(&self.inner, o, ops::power, "power")
    }
    fn __rpow__(&self, o: &Any<'_>, _m: Option<&Any<'_>>) -> PyResult<PyArray> {
        rbinop(&self.inner, o, ops::power, "power")
    }
    fn __matmul__(&self, o: &Any<'_>) -> PyResult<PyArray> {
        binop(&self.inner, o, ops::matmul, "matrix multiplication")
    }
    fn __and__(&self, o: &Any<'_>) -> PyResult<PyArray> {
        bitop(&self.inner, o, ops::bitwise_and, "bitwise and", false)
    }
    fn __or__(&self, o: &Any<'_>) -> PyResult<PyArray> {
        bitop(&self.inner, o, ops::bitwise_or, "bitwise or", false)
    }
    fn __xor__(&self, o: &Any<'_>) -> PyResult<PyArray> {
        bitop(&self.inner, o, ops::bitwise_xor, "bitwise xor", false)
    }
    fn __lshift__(&self, o: &Any<'_>) -> PyResult<PyArray> {
        bitop(&self.inner, o, ops::left_shift, "left shift", false)
    }
    fn __rshift__(&self, o: &Any<'_>) -> PyResult<PyArray> {
        bitop(&self.inner, o, ops::right_shift, "right shift", false)
    }

    fn __iadd__(&mut self, o: &Any<'_>) -> PyResult<()> {
        self.inner = binop(&self.inner, o, ops::add, "addition")?.inner;
        Ok(())
    }
    fn __isub__(&mut self, o: &Any<'_>) -> PyResult<()> {
        self.inner = binop(&self.inner, o, ops::subtract, "subtraction")?.inner;
        Ok(())
    }
    fn __imul__(&mut self, o: &Any<'_>) -> PyResult<()> {
        self.inner = binop(&self.inner, o, ops::multiply, "multiplication")?.inner;
        Ok(())
    }
    fn __itruediv__(&mut self, o: &Any<'_>) -> PyResult<()> {
        if !self.inner.dtype().is_inexact() {
            return Err(PyValueError::new_err(
                "In place division cannot cast to non-floating point type.",
            ));
        }
        self.inner = binop(&self.inner, o, ops::divide, "division")?.inner;
        Ok(())
    }
    fn __ifloordiv__(&mut self, o: &Any<'_>) -> PyResult<()> {
        self.inner = binop(&self.inner, o, ops::floor_divide, "floor division")?.inner;
        Ok(())
    }
    fn __imod__(&mut self, o: &Any<'_>) -> PyResult<()> {
        self.inner = binop(&self.inner, o, ops::remainder, "modulus")?.inner;
        Ok(())
    }
    fn __ipow__(&mut self, o: &Any<'_>, _m: Option<&Any<'_>>) -> PyResult<()> {
        self.inner = binop(&self.inner, o, ops::power, "power")?.inner;
        Ok(())
    }
    fn __imatmul__(&mut self, o: &Any<'_>) -> PyResult<()> {
        self.inner = binop(&self.inner, o, ops::matmul, "matrix multiplication")?.inner;
        Ok(())
    }
    fn __iand__(&mut self, o: &Any<'_>) -> PyResult<()> {
        self.inner = bitop(&self.inner, o, ops::bitwise_and, "bitwise and", false)?.inner;
        Ok(())
    }
    fn __ior__(&mut self, o: &Any<'_>) -> PyResult<()> {
        self.inner = bitop(&self.inner, o, ops::bitwise_or, "bitwise or", false)?.inner;
        Ok(())
    }
    fn __ixor__(&mut self, o: &Any<'_>) -> PyResult<()> {
        self.inner = bitop(&self.inner, o, ops::bitwise_xor, "bitwise xor", false)?.inner;
        Ok(())
    }
    fn __ilshift__(&mut self, o: &Any<'_>) -> PyResult<()> {
        self.inner = bitop(&self.inner, o, ops::left_shift, "left shift", false)?.inner;
        Ok(())
    }
    fn __irshift__(&mut self, o: &Any<'_>) -> PyResult<()> {
        self.inner = bitop(&self.inner, o, ops::right_shift, "right shift", false)?.inner;
        Ok(())
    }

    fn __neg__(&self) -> PyResult<PyArray> {
        Ok(ops::negative(&self.inner).py()?.into())
    }
    fn __pos__(&self) -> PyArray {
        self.clone()
    }
    #[getter(mT)]
    fn m_t(&self) -> PyResult<PyArray> {
        Ok(ops::matrix_transpose(&self.inner).py()?.into())
    }
    fn __abs__(&self) -> PyResult<PyArray> {
        Ok(ops::abs(&self.inner).py()?.into())
    }
    fn __invert__(&self) -> PyResult<PyArray> {
        if self.inner.dtype() == Dtype::Bool {
            return Ok(ops::logical_not(&self.inner).py()?.into());
        }
        Ok(ops::bitwise_invert(&self.inner).py()?.into())
    }

    fn __richcmp__(&self, other: &Any<'_>, op: pyo3::basic::CompareOp) -> PyResult<PyObject> {
        use pyo3::basic::CompareOp::*;
        let py = other.py();
        let convertible = other.downcast::<PyArray>().is_ok()
            || crate::convert::py_scalar(other)?.is_some()
            || other.hasattr("__array_interface__")?;
        if !convertible && !other.is_none() {
            let name = match op {
                Eq => return Ok(false.into_pyobject(py)?.to_owned().into_any().unbind()),
                Ne => return Ok(true.into_pyobject(py)?.to_owned().into_any().unbind()),
                Lt => "less than",
                Le => "less than or equal",
                Gt => "greater than",
                Ge => "greater than or equal",
            };
            return Err(PyValueError::new_err(format!(
                "Cannot perform {name} on an rmx.core.array and {}",
                other.get_type().name()?
            )));
        }
        if other.is_none() {
            return Err(PyTypeError::new_err(
                "comparison of an rmx.core.array with None is not supported",
            ));
        }
        let b = to_operand(other, self.inner.dtype())?;
        let r = match op {
            Lt => ops::less(&self.inner, &b),
            Le => ops::less_equal(&self.inner, &b),
            Eq => ops::equal(&self.inner, &b),
            Ne => ops::not_equal(&self.inner, &b),
            Gt => ops::greater(&self.inner, &b),
            Ge => ops::greater_equal(&self.inner, &b),
        }
        .py()?;
        Ok(PyArray::from(r).into_pyobject(py)?.into_any().unbind())
    }

    // methods mirroring module functions
    #[pyo3(signature = (dtype, stream = None))]
    fn astype(&self, dtype: PyDtype, stream: Option<&Any<'_>>) -> PyResult<PyArray> {
        crate::device::on_stream(stream, || {
            Ok(ops::astype(&self.inner, dtype.0).py()?.into())
        })
    }
    #[pyo3(signature = (dtype, *, stream = None))]
    fn view(&self, dtype: PyDtype, stream: Option<&Any<'_>>) -> PyResult<PyArray> {
        crate::device::on_stream(stream, || Ok(ops::view(&self.inner, dtype.0).py()?.into()))
    }
    #[pyo3(signature = (*shape, stream = None))]
    fn reshape(&self, shape: &Bound<'_, PyTuple>, stream: Option<&Any<'_>>) -> PyResult<PyArray> {
        let s = shape_args(shape)?;
        crate::device::on_stream(stream, || Ok(ops::reshape(&self.inner, &s).py()?.into()))
    }
    #[pyo3(signature = (*axes, stream = None))]
    fn transpose(&self, axes: &Bound<'_, PyTuple>, stream: Option<&Any<'_>>) -> PyResult<PyArray> {
        let ax = if axes.is_empty() {
            None
        } else {
            Some(shape_args(axes)?)
        };
        crate::device::on_stream(stream, || {
            Ok(ops::transpose(&self.inner, ax.as_deref()).py()?.into())
        })
    }
    #[pyo3(signature = (start_axis = 0, end_axis = -1, *, stream = None))]
    fn flatten(
        &self,
        start_axis: i64,
        end_axis: i64,
        stream: Option<&Any<'_>>,
    ) -> PyResult<PyArray> {
        crate::device::on_stream(stream, || {
            Ok(ops::flatten(&self.inner, start_axis, end_axis).py()?.into())
        })
    }
    #[pyo3(signature = (axis = None, *, stream = None))]
    fn squeeze(&self, axis: Option<&Any<'_>>, stream: Option<&Any<'_>>) -> PyResult<PyArray> {
        let ax = args::axes(axis)?;
        crate::device::on_stream(stream, || {
            Ok(ops::squeeze(&self.inner, ax.as_deref()).py()?.into())
        })
    }
    #[pyo3(signature = (axis1, axis2, *, stream = None))]
    fn swapaxes(&self, axis1: i64, axis2: i64, stream: Option<&Any<'_>>) -> PyResult<PyArray> {
        crate::device::on_stream(stream, || {
            Ok(ops::swapaxes(&self.inner, axis1, axis2).py()?.into())
        })
    }
    #[pyo3(signature = (source, destination, *, stream = None))]
    fn moveaxis(
        &self,
        source: i64,
        destination: i64,
        stream: Option<&Any<'_>>,
    ) -> PyResult<PyArray> {
        crate::device::on_stream(stream, || {
            Ok(ops::moveaxis(&self.inner, source, destination).py()?.into())
        })
    }
    #[pyo3(signature = (indices_or_sections, axis = 0, *, stream = None))]
    fn split(
        slf: PyRef<'_, Self>,
        indices_or_sections: &Any<'_>,
        axis: i64,
        stream: Option<&Any<'_>>,
    ) -> PyResult<Vec<PyArray>> {
        let me = slf.clone().into_pyobject(slf.py())?.into_any();
        crate::ops_shape::split(&me, indices_or_sections, axis, stream)
    }
    #[pyo3(signature = (offset = 0, axis1 = 0, axis2 = 1, stream = None))]
    fn diagonal(
        &self,
        offset: i64,
        axis1: i64,
        axis2: i64,
        stream: Option<&Any<'_>>,
    ) -> PyResult<PyArray> {
        crate::device::on_stream(stream, || {
            Ok(ops::diagonal(&self.inner, offset, axis1, axis2)
                .py()?
                .into())
        })
    }
    #[pyo3(signature = (k = 0, *, stream = None))]
    fn diag(&self, k: i64, stream: Option<&Any<'_>>) -> PyResult<PyArray> {
        crate::device::on_stream(stream, || Ok(ops::diag(&self.inner, k).py()?.into()))
    }
    #[pyo3(signature = (decimals = 0, *, stream = None))]
    fn round(&self, decimals: i32, stream: Option<&Any<'_>>) -> PyResult<PyArray> {
        crate::device::on_stream(stream, || {
            Ok(ops::round(&self.inner, decimals).py()?.into())
        })
    }
    #[pyo3(signature = (*, stream = None))]
    fn conj(&self, stream: Option<&Any<'_>>) -> PyResult<PyArray> {
        crate::device::on_stream(stream, || Ok(ops::conjugate(&self.inner).py()?.into()))
    }
    #[pyo3(signature = (axis = None, keepdims = false, ddof = 0, *, stream = None))]
    fn var(
        &self,
        axis: Option<&Any<'_>>,
        keepdims: bool,
        ddof: i64,
        stream: Option<&Any<'_>>,
    ) -> PyResult<PyArray> {
        let ax = args::axes(axis)?;
        crate::device::on_stream(stream, || {
            Ok(ops::var(&self.inner, ax.as_deref(), keepdims, ddof)
                .py()?
                .into())
        })
    }
    #[pyo3(signature = (axis = None, keepdims = false, ddof = 0, *, stream = None))]
    fn std(
        &self,
        axis: Option<&Any<'_>>,
        keepdims: bool,
        ddof: i64,
        stream: Option<&Any<'_>>,
    ) -> PyResult<PyArray> {
        let ax = args::axes(axis)?;
        crate::device::on_stream(stream, || {
            Ok(ops::std(&self.inner, ax.as_deref(), keepdims, ddof)
                .py()?
                .into())
        })
    }
    #[pyo3(signature = (axis = None, keepdims = false, *, stream = None))]
    fn argmax(
        &self,
        axis: Option<i64>,
        keepdims: bool,
        stream: Option<&Any<'_>>,
    ) -> PyResult<PyArray> {
        crate::device::on_stream(stream, || {
            Ok(ops::argmax(&self.inner, axis, keepdims).py()?.into())
        })
    }
    #[pyo3(signature = (axis = None, keepdims = false, *, stream = None))]
    fn argmin(
        &self,
        axis: Option<i64>,
        keepdims: bool,
        stream: Option<&Any<'_>>,
    ) -> PyResult<PyArray> {
        crate::device::on_stream(stream, || {
            Ok(ops::argmin(&self.inner, axis, keepdims).py()?.into())
        })
    }
}

macro_rules! reduce_methods {
    ($($name:ident),*) => {
        #[pymethods]
        impl PyArray {$(
            #[pyo3(signature = (axis = None, keepdims = false, *, stream = None))]
            fn $name(&self, axis: Option<&Any<'_>>, keepdims: bool, stream: Option<&Any<'_>>) -> PyResult<PyArray> {
                let ax = args::axes(axis)?;
                crate::device::on_stream(stream, || Ok(ops::$name(&self.inner, ax.as_deref(), keepdims).py()?.into()))
            }
        )*}
    };
}
reduce_methods!(sum, prod, max, min, mean, all, any, logsumexp);

macro_rules! unary_methods {
    ($($name:ident),*) => {
        #[pymethods]
        impl PyArray {$(
            #[pyo3(signature = (*, stream = None))]
            fn $name(&self, stream: Option<&Any<'_>>) -> PyResult<PyArray> {
                crate::device::on_stream(stream, || Ok(ops::$name(&self.inner).py()?.into()))
            }
        )*}
    };
}
unary_methods!(abs, square, sqrt, rsqrt, reciprocal, exp, log, log2, log10, log1p, sin, cos);

impl PyArray {
    fn scalar(&self, py: Python<'_>) -> PyResult<Scalar> {
        if self.inner.size() != 1 {
            return Err(PyValueError::new_err(
                "[convert] Only length-1 arrays can be converted to Python scalars.",
            ));
        }
        py.allow_threads(|| self.inner.item()).py()
    }
}

#[pyclass(name = "ArrayIterator", module = "rmx.core")]
pub struct ArrayIter {
    array: Array,
    pos: usize,
}

#[pymethods]
impl ArrayIter {
    fn __iter__(slf: PyRef<'_, Self>) -> PyRef<'_, Self> {
        slf
    }
    fn __next__(&mut self) -> PyResult<Option<PyArray>> {
        if self.pos >= self.array.shape()[0] {
            return Ok(None);
        }
        let r = ops::index(&self.array, &[ops::Index::Int(self.pos as i64)]).py()?;
        self.pos += 1;
        Ok(Some(r.into()))
    }
}

/// `a.at[idx]`: functional updates with repeated indices accumulated.
#[pyclass(name = "ArrayAt", module = "rmx.core")]
pub struct ArrayAt {
    array: Array,
}

#[pymethods]
impl ArrayAt {
    fn __getitem__(&self, key: &Any<'_>) -> PyResult<ArrayAtIndex> {
        Ok(ArrayAtIndex {
            array: self.array.clone(),
            indices: indexing::parse(key)?,
        })
    }
}

#[pyclass(name = "ArrayAtIndex", module = "rmx.core")]
pub struct ArrayAtIndex {
    array: Array,
    indices: Vec<ops::Index>,
}

impl ArrayAtIndex {
    fn apply(
        &self,
        value: &Any<'_>,
        mode: ScatterMode,
        f: Option<fn(&Array) -> rmx_core::Result<Array>>,
    ) -> PyResult<PyArray> {
        let mut v = to_operand(value, self.array.dtype())?;
        if let Some(f) = f {
            v = f(&v).py()?;
        }
        Ok(ops::index_update(&self.array, &self.indices, &v, mode)
            .py()?
            .into())
    }
}

#[pymethods]
impl ArrayAtIndex {
    fn add(&self, value: &Any<'_>) -> PyResult<PyArray> {
        self.apply(value, ScatterMode::Add, None)
    }
    fn subtract(&self, value: &Any<'_>) -> PyResult<PyArray> {
        self.apply(value, ScatterMode::Add, Some(ops::negative))
    }
    fn multiply(&self, value: &Any<'_>) -> PyResult<PyArray> {
        self.apply(value, ScatterMode::Prod, None)
    }
    fn divide(&self, value: &Any<'_>) -> PyResult<PyArray> {
        self.apply(value, ScatterMode::Prod, Some(ops::reciprocal))
    }
    fn maximum(&self, value: &Any<'_>) -> PyResult<PyArray> {
        self.apply(value, ScatterMode::Max, None)
    }
    fn minimum(&self, value: &Any<'_>) -> PyResult<PyArray> {
        self.apply(value, ScatterMode::Min, None)
    }
}

macro_rules! scan_methods {
    ($($name:ident),*) => {
        #[pymethods]
        impl PyArray {$(
            #[pyo3(signature = (axis = None, *, reverse = false, inclusive = true, stream = None))]
            fn $name(&self, axis: Option<i64>, reverse: bool, inclusive: bool, stream: Option<&Any<'_>>) -> PyResult<PyArray> {
                crate::device::on_stream(stream, || Ok(ops::$name(&self.inner, axis, reverse, inclusive).py()?.into()))
            }
        )*}
    };
}
scan_methods!(cumsum, cumprod, cummax, cummin, logcumsumexp);

/// What a Py_buffer export keeps alive until it is released.
struct BufferExport {
    _data: rmx_core::ArrayData,
    shape: Vec<pyo3::ffi::Py_ssize_t>,
    strides: Vec<pyo3::ffi::Py_ssize_t>,
    format: std::ffi::CString,
}

fn buffer_format(d: Dtype) -> PyResult<&'static str> {
    Ok(match d {
        Dtype::Bool => "?",
        Dtype::Uint8 => "B",
        Dtype::Uint16 => "H",
        Dtype::Uint32 => "I",
        Dtype::Uint64 => "Q",
        Dtype::Int8 => "b",
        Dtype::Int16 => "h",
        Dtype::Int32 => "i",
        Dtype::Int64 => "q",
        Dtype::Float16 => "e",
        Dtype::Float32 => "f",
        Dtype::Float64 => "d",
        Dtype::Complex64 => "Zf",
        Dtype::Bfloat16 => {
            return Err(PyValueError::new_err(
                "'bfloat16' is not a valid PEP 3118 buffer format string",
            ))
        }
    })
}

#[pymethods]
impl PyArray {
    /// The buffer protocol: a strided, writable view of the evaluated data (zero copy,
    /// so `np.asarray(a)` and `memoryview(a)` share memory with the array, as in MLX).
    unsafe fn __getbuffer__(
        slf: Bound<'_, Self>,
        view: *mut pyo3::ffi::Py_buffer,
        flags: std::os::raw::c_int,
    ) -> PyResult<()> {
        let _ = flags;
        let arr = slf.borrow().inner.clone();
        let data = slf.py().allow_threads(|| arr.data()).py()?;
        let item = data.dtype.size() as isize;
        let format = std::ffi::CString::new(buffer_format(data.dtype)?).unwrap();
        let export = Box::new(BufferExport {
            shape: data.shape.iter().map(|&d| d as isize).collect(),
            strides: data.strides.iter().map(|&s| s * item).collect(),
            format,
            _data: data.clone(),
        });
        let v = &mut *view;
        v.buf = data.buffer.as_mut_ptr().add(data.offset * item as usize) as *mut std::ffi::c_void;
        v.obj = slf.clone().into_any().into_ptr();
        v.len = (data.numel() * item as usize) as isize;
        v.readonly = 0;
        v.itemsize = item;
        v.ndim = data.ndim() as std::os::raw::c_int;
        v.format = export.format.as_ptr() as *mut std::os::raw::c_char;
        v.shape = export.shape.as_ptr() as *mut isize;
        v.strides = export.strides.as_ptr() as *mut isize;
        v.suboffsets = std::ptr::null_mut();
        v.internal = Box::into_raw(export) as *mut std::ffi::c_void;
        Ok(())
    }

    unsafe fn __releasebuffer__(&self, view: *mut pyo3::ffi::Py_buffer) {
        let v = &mut *view;
        if !v.internal.is_null() {
            drop(Box::from_raw(v.internal as *mut BufferExport));
            v.internal = std::ptr::null_mut();
        }
    }
}
