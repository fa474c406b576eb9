//! `rmx.core` shape, indexing and product functions.

use crate::args;
use crate::array::PyArray;
use crate::convert::{py_scalar, to_array};
use crate::device::on_stream;
use crate::errors::PyResultExt;
use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::prelude::*;
use rmx_core::{ops, Array, Scalar};

type Any<'py> = Bound<'py, PyAny>;

fn arr(a: &Any<'_>) -> PyResult<Array> {
    crate::convert::arg_array(a)
}

fn arrays(v: &Any<'_>) -> PyResult<Vec<Array>> {
    v.try_iter()?.map(|x| arr(&x?)).collect()
}

fn wrap(v: Vec<Array>) -> Vec<PyArray> {
    v.into_iter().map(PyArray::from).collect()
}

#[pyfunction]
#[pyo3(signature = (a, /, shape, *, stream = None))]
pub fn reshape(a: &Any<'_>, shape: &Any<'_>, stream: Option<&Any<'_>>) -> PyResult<PyArray> {
    let s = args::shape(shape)?;
    on_stream(stream, || Ok(ops::reshape(&arr(a)?, &s).py()?.into()))
}

#[pyfunction]
#[pyo3(signature = (a, /, start_axis = 0, end_axis = -1, *, stream = None))]
pub fn flatten(
    a: &Any<'_>,
    start_axis: i64,
    end_axis: i64,
    stream: Option<&Any<'_>>,
) -> PyResult<PyArray> {
    on_stream(stream, || {
        Ok(ops::flatten(&arr(a)?, start_axis, end_axis).py()?.into())
    })
}

#[pyfunction]
#[pyo3(signature = (a, /, axis, shape, *, stream = None))]
pub fn unflatten(
    a: &Any<'_>,
    axis: i64,
    shape: &Any<'_>,
    stream: Option<&Any<'_>>,
) -> PyResult<PyArray> {
    let s = args::shape(shape)?;
    on_stream(stream, || {
        Ok(ops::unflatten(&arr(a)?, axis, &s).py()?.into())
    })
}

#[pyfunction]
#[pyo3(signature = (a, /, axis = None, *, stream = None))]
pub fn squeeze(a: &Any<'_>, axis: Option<&Any<'_>>, stream: Option<&Any<'_>>) -> PyResult<PyArray> {
    let ax = args::axes(axis)?;
    on_stream(stream, || {
        Ok(ops::squeeze(&arr(a)?, ax.as_deref()).py()?.into())
    })
}

#[pyfunction]
#[pyo3(signature = (a, /, axis, *, stream = None))]
pub fn expand_dims(a: &Any<'_>, axis: &Any<'_>, stream: Option<&Any<'_>>) -> PyResult<PyArray> {
    let ax = args::axes(Some(axis))?.unwrap_or_default();
    on_stream(stream, || Ok(ops::expand_dims(&arr(a)?, &ax).py()?.into()))
}

#[pyfunction]
#[pyo3(signature = (a, /, axes = None, *, stream = None))]
pub fn transpose(
    a: &Any<'_>,
    axes: Option<&Any<'_>>,
    stream: Option<&Any<'_>>,
) -> PyResult<PyArray> {
    let ax = args::axes(axes)?;
    on_stream(stream, || {
        Ok(ops::transpose(&arr(a)?, ax.as_deref()).py()?.into())
    })
}

#[pyfunction]
#[pyo3(signature = (a, /, axes = None, *, stream = None))]
pub fn permute_dims(
    a: &Any<'_>,
    axes: Option<&Any<'_>>,
    stream: Option<&Any<'_>>,
) -> PyResult<PyArray> {
    transpose(a, axes, stream)
}

#[pyfunction]
#[pyo3(signature = (a, /, axis1, axis2, *, stream = None))]
pub fn swapaxes(
    a: &Any<'_>,
    axis1: i64,
    axis2: i64,
    stream: Option<&Any<'_>>,
) -> PyResult<PyArray> {
    on_stream(stream, || {
        Ok(ops::swapaxes(&arr(a)?, axis1, axis2).py()?.into())
    })
}

#[pyfunction]
#[pyo3(signature = (a, /, source, destination, *, stream = None))]
pub fn moveaxis(
    a: &Any<'_>,
    source: i64,
    destination: i64,
    stream: Option<&Any<'_>>,
) -> PyResult<PyArray> {
    on_stream(stream, || {
        Ok(ops::moveaxis(&arr(a)?, source, destination).py()?.into())
    })
}

#[pyfunction]
#[pyo3(signature = (a, /, shape, *, stream = None))]
pub fn broadcast_to(a: &Any<'_>, shape: &Any<'_>, stream: Option<&Any<'_>>) -> PyResult<PyArray> {
    let s = args::shape(shape)?;
    on_stream(stream, || {
        Ok(ops::broadcast_to_i64(&arr(a)?, &s).py()?.into())
    })
}

#[pyfunction]
#[pyo3(signature = (*arrays, stream = None))]
pub fn broadcast_arrays(arrays: Vec<Any<'_>>, stream: Option<&Any<'_>>) -> PyResult<Vec<PyArray>> {
    on_stream(stream, || {
        let a: Vec<Array> = arrays.iter().map(arr).collect::<PyResult<_>>()?;
        let refs: Vec<&Array> = a.iter().collect();
        Ok(wrap(ops::broadcast_arrays(&refs).py()?))
    })
}

#[pyfunction]
#[pyo3(signature = (*shapes))]
pub fn broadcast_shapes<'py>(
    py: Python<'py>,
    shapes: Vec<Vec<usize>>,
) -> PyResult<Bound<'py, pyo3::types::PyTuple>> {
    if shapes.is_empty() {
        return Err(PyValueError::new_err(
            "[broadcast_shapes] No input shapes provided.",
        ));
    }
    let refs: Vec<&[usize]> = shapes.iter().map(|s| s.as_slice()).collect();
    pyo3::types::PyTuple::new(py, rmx_core::shape::broadcast_many(&refs).py()?.to_vec())
}

fn atleast(arys: Vec<Any<'_>>, n: usize, stream: Option<&Any<'_>>) -> PyResult<PyObject> {
    let py = arys.first().map(|a| a.py());
    on_stream(stream, || {
        let out: Vec<PyArray> = arys
            .iter()
            .map(|a| Ok(ops::atleast_nd(&arr(a)?, n).py()?.into()))
            .collect::<PyResult<_>>()?;
        let py = py.ok_or_else(|| PyValueError::new_err("no arrays given"))?;
        if out.len() == 1 {
            Ok(out
                .into_iter()
                .next()
                .unwrap()
                .into_pyobject(py)?
                .into_any()
                .unbind())
        } else {
            Ok(out.into_pyobject(py)?.into_any().unbind())
        }
    })
}

#[pyfunction]
#[pyo3(signature = (*arys, stream = None))]
pub fn atleast_1d(arys: Vec<Any<'_>>, stream: Option<&Any<'_>>) -> PyResult<PyObject> {
    atleast(arys, 1, stream)
}
#[pyfunction]
#[pyo3(signature = (*arys, stream = None))]
pub fn atleast_2d(arys: Vec<Any<'_>>, stream: Option<&Any<'_>>) -> PyResult<PyObject> {
    atleast(arys, 2, stream)
}
#[pyfunction]
#[pyo3(signature = (*arys, stream = None))]
pub fn atleast_3d(arys: Vec<Any<'_>>, stream: Option<&Any<'_>>) -> PyResult<PyObject> {
    atleast(arys, 3, stream)
}

#[pyfunction]
#[pyo3(signature = (arrays, axis = Some(0), *, stream = None))]
pub fn concatenate(
    arrays: &Any<'_>,
    axis: Option<i64>,
    stream: Option<&Any<'_>>,
) -> PyResult<PyArray> {
    on_stream(stream, || {
        Ok(ops::concatenate(&self::arrays(arrays)?, axis).py()?.into())
    })
}

#[pyfunction]
#[pyo3(signature = (arrays, axis = Some(0), *, stream = None))]
pub fn concat(arrays: &Any<'_>, axis: Option<i64>, stream: Option<&Any<'_>>) -> PyResult<PyArray> {
    concatenate(arrays, axis, stream)
}

#[pyfunction]
#[pyo3(signature = (arrays, axis = 0, *, stream = None))]
pub fn stack(arrays: &Any<'_>, axis: i64, stream: Option<&Any<'_>>) -> PyResult<PyArray> {
    on_stream(stream, || {
        Ok(ops::stack(&self::arrays(arrays)?, axis).py()?.into())
    })
}

#[pyfunction]
#[pyo3(signature = (a, /, indices_or_sections, axis = 0, *, stream = None))]
pub fn split(
    a: &Any<'_>,
    indices_or_sections: &Any<'_>,
    axis: i64,
    stream: Option<&Any<'_>>,
) -> PyResult<Vec<PyArray>> {
    on_stream(stream, || {
        let x = arr(a)?;
        if let Ok(n) = indices_or_sections.extract::<i64>() {
            return Ok(wrap(ops::split_sections(&x, n, axis).py()?));
        }
        let idx: Vec<i64> = indices_or_sections.extract()?;
        Ok(wrap(ops::split_at(&x, &idx, axis).py()?))
    })
}

#[pyfunction]
#[pyo3(signature = (a, /, axis = 0, *, stream = None))]
pub fn unstack<'py>(
    a: &Any<'py>,
    axis: i64,
    stream: Option<&Any<'_>>,
) -> PyResult<Bound<'py, pyo3::types::PyTuple>> {
    let parts = on_stream(stream, || Ok(wrap(ops::unstack(&arr(a)?, axis).py()?)))?;
    pyo3::types::PyTuple::new(a.py(), parts)
}

#[pyfunction]
#[pyo3(signature = (a, /, reps, *, stream = None))]
pub fn tile(a: &Any<'_>, reps: &Any<'_>, stream: Option<&Any<'_>>) -> PyResult<PyArray> {
    let r = args::shape(reps)?;
    on_stream(stream, || Ok(ops::tile(&arr(a)?, &r).py()?.into()))
}

#[pyfunction]
#[pyo3(signature = (array, /, repeats, axis = None, *, stream = None))]
pub fn repeat(
    array: &Any<'_>,
    repeats: i64,
    axis: Option<i64>,
    stream: Option<&Any<'_>>,
) -> PyResult<PyArray> {
    on_stream(stream, || {
        Ok(ops::repeat(&arr(array)?, repeats, axis).py()?.into())
    })
}

fn pad_widths(pw: &Any<'_>, nd: usize) -> PyResult<Vec<(i64, i64)>> {
    if let Ok(v) = pw.extract::<i64>() {
        return Ok(vec![(v, v); nd]);
    }
    if let Ok(v) = pw.extract::<(i64, i64)>() {
        return Ok(vec![v; nd]);
    }
    if let Ok(v) = pw.extract::<Vec<(i64, i64)>>() {
        if v.len() == 1 {
            return Ok(vec![v[0]; nd]);
        }
        return Ok(v);
    }
    if let Ok(v) = pw.extract::<Vec<Vec<i64>>>() {
        let pairs: Vec<(i64, i64)> = v
            .iter()
            .map(|p| match p.as_slice() {
                [a] => Ok((*a, *a)),
                [a, b] => Ok((*a, *b)),
                _ => Err(PyTypeError::new_err("Invalid pad_width")),
            })
            .collect::<PyResult<_>>()?;
        if pairs.len() == 1 {
            return Ok(vec![pairs[0]; nd]);
        }
        return Ok(pairs);
    }
    if let Ok(v) = pw.extract::<Vec<i64>>() {
        match v.as_slice() {
            [a] => return Ok(vec![(*a, *a); nd]),
            [a, b] => return Ok(vec![(*a, *b); nd]),
            _ => {}
        }
    }
    if let Ok(v) = pw.extract::<(i64,)>() {
        return Ok(vec![(v.0, v.0); nd]);
    }
    Err(PyTypeError::new_err("Invalid pad_width"))
}

#[pyfunction]
#[pyo3(signature = (a, pad_width, mode = "constant", constant_values = None, *, stream = None))]
pub fn pad(
    a: &Any<'_>,
    pad_width: &Any<'_>,
    mode: &str,
    constant_values: Option<&Any<'_>>,
    stream: Option<&Any<'_>>,
) -> PyResult<PyArray> {
    on_stream(stream, || {
        let x = arr(a)?;
        let w = pad_widths(pad_width, x.ndim())?;
        let v = match constant_values {
            None => Scalar::Int(0),
            Some(o) => match py_scalar(o)? {
                Some(s) => {
                    ops::weak_scalar(s, x.dtype()).py()?;
                    s
                }
                None => to_array(o, None)?.item().py()?,
            },
        };
        Ok(ops::pad(&x, &w, mode, v).py()?.into())
    })
}

#[pyfunction]
#[pyo3(signature = (a, shift, axis = None, *, stream = None))]
pub fn roll(
    a: &Any<'_>,
    shift: &Any<'_>,
    axis: Option<&Any<'_>>,
    stream: Option<&Any<'_>>,
) -> PyResult<PyArray> {
    let s = args::shape(shift)?;
    let ax = args::axes(axis)?;
    on_stream(stream, || {
        Ok(ops::roll(&arr(a)?, &s, ax.as_deref()).py()?.into())
    })
}

#[pyfunction]
#[pyo3(signature = (a, offset = 0, axis1 = 0, axis2 = 1, stream = None))]
pub fn diagonal(
    a: &Any<'_>,
    offset: i64,
    axis1: i64,
    axis2: i64,
    stream: Option<&Any<'_>>,
) -> PyResult<PyArray> {
    on_stream(stream, || {
        Ok(ops::diagonal(&arr(a)?, offset, axis1, axis2).py()?.into())
    })
}

#[pyfunction]
#[pyo3(signature = (a, /, k = 0, *, stream = None))]
pub fn diag(a: &Any<'_>, k: i64, stream: Option<&Any<'_>>) -> PyResult<PyArray> {
    on_stream(stream, || Ok(ops::diag(&arr(a)?, k).py()?.into()))
}

#[pyfunction]
#[pyo3(signature = (a, /, shape = None, strides = None, offset = 0, *, stream = None))]
pub fn as_strided(
    a: &Any<'_>,
    shape: Option<Vec<i64>>,
    strides: Option<Vec<i64>>,
    offset: i64,
    stream: Option<&Any<'_>>,
) -> PyResult<PyArray> {
    on_stream(stream, || {
        let x = arr(a)?;
        let shape = shape.unwrap_or_else(|| x.shape().iter().map(|&d| d as i64).collect());
        let strides = strides.unwrap_or_else(|| {
            let s = rmx_core::shape::row_strides(
                &shape.iter().map(|&d| d.max(0) as usize).collect::<Vec<_>>(),
            );
            s.iter().map(|&v| v as i64).collect()
        });
        Ok(ops::as_strided(&x, &shape, &strides, offset).py()?.into())
    })
}

#[pyfunction]
#[pyo3(signature = (a, /, axis = None, *, stream = None))]
pub fn flip(a: &Any<'_>, axis: Option<&Any<'_>>, stream: Option<&Any<'_>>) -> PyResult<PyArray> {
    let ax = args::axes(axis)?;
    on_stream(stream, || {
        Ok(ops::flip(&arr(a)?, ax.as_deref()).py()?.into())
    })
}

#[pyfunction]
#[pyo3(signature = (a, /, *, stream = None))]
pub fn matrix_transpose(a: &Any<'_>, stream: Option<&Any<'_>>) -> PyResult<PyArray> {
    on_stream(stream, || Ok(ops::matrix_transpose(&arr(a)?).py()?.into()))
}

#[pyfunction]
#[pyo3(signature = (a, /, allow_col_major = false, *, stream = None))]
pub fn contiguous(
    a: &Any<'_>,
    allow_col_major: bool,
    stream: Option<&Any<'_>>,
) -> PyResult<PyArray> {
    let _ = allow_col_major; // the copy is row-major either way
    on_stream(stream, || Ok(ops::contiguous(&arr(a)?).py()?.into()))
}

#[pyfunction]
#[pyo3(signature = (a, /, indices, axis = None, *, stream = None))]
pub fn take(
    a: &Any<'_>,
    indices: &Any<'_>,
    axis: Option<i64>,
    stream: Option<&Any<'_>>,
) -> PyResult<PyArray> {
    on_stream(stream, || {
        let x = arr(a)?;
        if let Ok(i) = indices.extract::<i64>() {
            if indices.downcast::<PyArray>().is_err() {
                let idx = Array::scalar_of(Scalar::Int(i), rmx_core::Dtype::Int32).py()?;
                return Ok(ops::take(&x, &idx, axis).py()?.into());
            }
        }
        Ok(ops::take(&x, &arr(indices)?, axis).py()?.into())
    })
}

#[pyfunction]
#[pyo3(signature = (a, /, indices, axis = None, *, stream = None))]
pub fn take_along_axis(
    a: &Any<'_>,
    indices: &Any<'_>,
    axis: Option<i64>,
    stream: Option<&Any<'_>>,
) -> PyResult<PyArray> {
    on_stream(stream, || {
        Ok(ops::take_along_axis(&arr(a)?, &arr(indices)?, axis)
            .py()?
            .into())
    })
}

#[pyfunction]
#[pyo3(signature = (a, /, indices, values, axis = None, *, stream = None))]
pub fn put_along_axis(
    a: &Any<'_>,
    indices: &Any<'_>,
    values: &Any<'_>,
    axis: Option<i64>,
    stream: Option<&Any<'_>>,
) -> PyResult<PyArray> {
    on_stream(stream, || {
        let x = arr(a)?;
        let v = crate::convert::to_operand(values, x.dtype())?;
        Ok(ops::put_along_axis(&x, &arr(indices)?, &v, axis)
            .py()?
            .into())
    })
}

/// MLX's `slice(a, start_indices, axes, slice_size)`; the start indices are read now.
#[pyfunction]
#[pyo3(signature = (a, /, start_indices, axes, slice_size, *, stream = None))]
pub fn slice(
    a: &Any<'_>,
    start_indices: &Any<'_>,
    axes: Vec<i64>,
    slice_size: Vec<i64>,
    stream: Option<&Any<'_>>,
) -> PyResult<PyArray> {
    on_stream(stream, || {
        let x = arr(a)?;
        if slice_size.len() != x.ndim() {
            return Err(PyValueError::new_err(format!(
                "[slice] Invalid slice size for array with {} dimensions.",
                x.ndim()
            )));
        }
        let sizes: Vec<i64> = axes
            .iter()
            .map(|&ax| Ok(slice_size[rmx_core::shape::normalize_axis("slice", ax, x.ndim()).py()?]))
            .collect::<PyResult<_>>()?;
        let (mut start, mut stop) = slice_bounds(&x, start_indices, &axes, &sizes)?;
        for d in 0..x.ndim() {
            if !axes
                .iter()
                .any(|&ax| rmx_core::shape::normalize_axis("slice", ax, x.ndim()).ok() == Some(d))
            {
                start[d] = 0;
                stop[d] = slice_size[d];
            }
        }
        Ok(ops::slice(&x, &start, &stop, None).py()?.into())
    })
}

fn slice_bounds(
    x: &Array,
    start_indices: &Any<'_>,
    axes: &[i64],
    sizes: &[i64],
) -> PyResult<(Vec<i64>, Vec<i64>)> {
    let s = to_array(start_indices, None)?;
    let starts: Vec<i64> = s
        .to_scalars()
        .py()?
        .into_iter()
        .map(|v| v.as_i64())
        .collect();
    if starts.len() != axes.len() || sizes.len() != axes.len() {
        return Err(PyValueError::new_err(
            "[slice] start_indices, axes and slice_size must have the same length.",
        ));
    }
    let mut start = vec![0i64; x.ndim()];
    let mut stop: Vec<i64> = x.shape().iter().map(|&d| d as i64).collect();
    for ((&ax, &st), &sz) in axes.iter().zip(&starts).zip(sizes) {
        let a = rmx_core::shape::normalize_axis("slice", ax, x.ndim()).py()?;
        let n = x.shape()[a] as i64;
        let st = if st < 0 { st + n } else { st };
        if st < 0 || st + sz > n || sz < 0 {
            return Err(pyo3::exceptions::PyIndexError::new_err(format!(
                "[slice] Slice of size {sz} at {st} is out of bounds for axis {ax} with size {n}."
            )));
        }
        start[a] = st;
        stop[a] = st + sz;
    }
    Ok((start, stop))
}

#[pyfunction]
#[pyo3(signature = (a, /, update, start_indices, axes, *, stream = None))]
pub fn slice_update(
    a: &Any<'_>,
    update: &Any<'_>,
    start_indices: &Any<'_>,
    axes: Vec<i64>,
    stream: Option<&Any<'_>>,
) -> PyResult<PyArray> {
    on_stream(stream, || {
        let x = arr(a)?;
        let u = arr(update)?;
        let sizes: Vec<i64> = axes
            .iter()
            .map(|&ax| {
                let off = u.ndim() as i64 - x.ndim() as i64;
                let a = rmx_core::shape::normalize_axis("slice_update", ax, x.ndim()).py()? as i64
                    + off;
                Ok(if a >= 0 {
                    u.shape()[a as usize] as i64
                } else {
                    1
                })
            })
            .collect::<PyResult<_>>()?;
        let (start, stop) = slice_bounds(&x, start_indices, &axes, &sizes)?;
        Ok(ops::slice_update(&x, &u, &start, &stop, None).py()?.into())
    })
}

#[pyfunction]
#[pyo3(signature = (a, b, /, *, stream = None))]
pub fn matmul(a: &Any<'_>, b: &Any<'_>, stream: Option<&Any<'_>>) -> PyResult<PyArray> {
    on_stream(stream, || Ok(ops::matmul(&arr(a)?, &arr(b)?).py()?.into()))
}

#[pyfunction]
#[pyo3(signature = (c, a, b, /, alpha = 1.0, beta = 1.0, *, stream = None))]
pub fn addmm(
    c: &Any<'_>,
    a: &Any<'_>,
    b: &Any<'_>,
    alpha: f64,
    beta: f64,
    stream: Option<&Any<'_>>,
) -> PyResult<PyArray> {
    on_stream(stream, || {
        Ok(ops::addmm(&arr(c)?, &arr(a)?, &arr(b)?, alpha, beta)
            .py()?
            .into())
    })
}

#[pyfunction]
#[pyo3(signature = (a, b, /, *, stream = None))]
pub fn inner(a: &Any<'_>, b: &Any<'_>, stream: Option<&Any<'_>>) -> PyResult<PyArray> {
    on_stream(stream, || Ok(ops::inner(&arr(a)?, &arr(b)?).py()?.into()))
}

#[pyfunction]
#[pyo3(signature = (a, b, /, *, stream = None))]
pub fn outer(a: &Any<'_>, b: &Any<'_>, stream: Option<&Any<'_>>) -> PyResult<PyArray> {
    on_stream(stream, || Ok(ops::outer(&arr(a)?, &arr(b)?).py()?.into()))
}

#[pyfunction]
#[pyo3(signature = (a, b, /, axes = None, *, stream = None))]
pub fn tensordot(
    a: &Any<'_>,
    b: &Any<'_>,
    axes: Option<&Any<'_>>,
    stream: Option<&Any<'_>>,
) -> PyResult<PyArray> {
    on_stream(stream, || {
        let (x, y) = (arr(a)?, arr(b)?);
        match axes {
            None => Ok(ops::tensordot(&x, &y, 2).py()?.into()),
            Some(o) => {
                if let Ok(n) = o.extract::<i64>() {
                    return Ok(ops::tensordot(&x, &y, n).py()?.into());
                }
                let pair: Vec<Any<'_>> = o.try_iter()?.collect::<PyResult<_>>()?;
                if pair.len() != 2 {
                    return Err(PyValueError::new_err(
                        "[tensordot] axes must be an int or a pair of axis lists.",
                    ));
                }
                let (aa, bb) = (pair[0].clone(), pair[1].clone());
                let aa = args::axes(Some(&aa))?.unwrap_or_default();
                let bb = args::axes(Some(&bb))?.unwrap_or_default();
                Ok(ops::tensordot_axes(&x, &y, &aa, &bb).py()?.into())
            }
        }
    })
}

#[pyfunction]
#[pyo3(signature = (a, b, /, axis = -1, *, stream = None))]
pub fn vecdot(a: &Any<'_>, b: &Any<'_>, axis: i64, stream: Option<&Any<'_>>) -> PyResult<PyArray> {
    on_stream(stream, || {
        Ok(ops::vecdot(&arr(a)?, &arr(b)?, axis).py()?.into())
    })
}

#[pyfunction]
#[pyo3(signature = (a, b, /, *, stream = None))]
pub fn kron(a: &Any<'_>, b: &Any<'_>, stream: Option<&Any<'_>>) -> PyResult<PyArray> {
    on_stream(stream, || Ok(ops::kron(&arr(a)?, &arr(b)?).py()?.into()))
}

#[pyfunction]
#[pyo3(signature = (a, /, n = 1, axis = -1, *, stream = None))]
pub fn diff(a: &Any<'_>, n: i64, axis: i64, stream: Option<&Any<'_>>) -> PyResult<PyArray> {
    on_stream(stream, || Ok(ops::diff(&arr(a)?, n, axis).py()?.into()))
}

#[pyfunction]
#[pyo3(signature = (a, /, offset = 0, axis1 = 0, axis2 = 1, dtype = None, *, stream = None))]
pub fn trace(
    a: &Any<'_>,
    offset: i64,
    axis1: i64,
    axis2: i64,
    dtype: Option<&Any<'_>>,
    stream: Option<&Any<'_>>,
) -> PyResult<PyArray> {
    let d = args::dtype(dtype)?;
    on_stream(stream, || {
        Ok(ops::trace(&arr(a)?, offset, axis1, axis2, d).py()?.into())
    })
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    macro_rules! add {
        ($($f:ident),* $(,)?) => {$( m.add_function(wrap_pyfunction!($f, m)?)?; )*};
    }
    add!(
        reshape,
        flatten,
        unflatten,
        squeeze,
        expand_dims,
        transpose,
        permute_dims,
        swapaxes,
        moveaxis,
        broadcast_to,
        broadcast_arrays,
        broadcast_shapes,
        atleast_1d,
        atleast_2d,
        atleast_3d,
        concatenate,
        concat,
        stack,
        split,
        unstack,
        tile,
        repeat,
        pad,
        roll,
        diagonal,
        diag,
        as_strided,
        contiguous,
        flip,
        diff,
        trace,
        matrix_transpose,
        take,
        take_along_axis,
        put_along_axis,
        slice,
        slice_update,
        matmul,
        addmm,
        inner,
        outer,
        tensordot,
        vecdot,
        kron,
    );
    Ok(())
}
