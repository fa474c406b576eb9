//! `rmx.core` convolutions: conv1d/2d/3d, conv_transpose1d/2d/3d, conv_general and
//! convolve. As in MLX's binding, the inputs must be arrays and the integer parameters
//! ints (or tuples of ints of the right length); anything else is a TypeError.

use crate::array::PyArray;
use crate::device::on_stream;
use crate::errors::PyResultExt;
use pyo3::exceptions::PyTypeError;
use pyo3::prelude::*;
use pyo3::types::{PyList, PyTuple};
use rmx_core::{ops, Array};

type Any<'py> = Bound<'py, PyAny>;

fn bad_args(func: &str) -> PyErr {
    PyTypeError::new_err(format!(
        "{func}(): incompatible function arguments. See help({func}) for the supported argument types."
    ))
}

/// An `array` argument (no scalars, lists or NumPy arrays, as MLX's binding).
fn arr(obj: &Any<'_>, func: &str) -> PyResult<Array> {
    obj.extract::<PyRef<PyArray>>()
        .map(|a| a.inner.clone())
        .map_err(|_| bad_args(func))
}

fn int(obj: &Any<'_>, func: &str) -> PyResult<i64> {
    if obj.is_instance_of::<pyo3::types::PyFloat>() {
        return Err(bad_args(func));
    }
    // MLX's parameters are C ints: anything outside int32 does not bind
    obj.extract::<i32>()
        .map(i64::from)
        .map_err(|_| bad_args(func))
}

fn is_seq(obj: &Any<'_>) -> bool {
    obj.is_instance_of::<PyList>() || obj.is_instance_of::<PyTuple>()
}

/// A sequence of ints of any length.
fn ints(obj: &Any<'_>, func: &str) -> PyResult<Vec<i64>> {
    if !is_seq(obj) {
        return Err(bad_args(func));
    }
    obj.try_iter()?.map(|v| int(&v?, func)).collect()
}

/// An int, or a sequence of exactly `N` ints.
fn int_or<const N: usize>(obj: &Any<'_>, func: &str) -> PyResult<[i64; N]> {
    if let Ok(v) = int(obj, func) {
        return Ok([v; N]);
    }
    let v = ints(obj, func)?;
    v.try_into().map_err(|_| bad_args(func))
}

/// An int or a sequence of ints (conv_general's stride and dilations).
fn int_or_list(obj: &Any<'_>, func: &str) -> PyResult<Vec<i64>> {
    if let Ok(v) = int(obj, func) {
        return Ok(vec![v]);
    }
    ints(obj, func)
}

/// conv_general's padding: an int, a sequence of ints (both sides), or a pair of
/// sequences (low, high).
fn padding(obj: &Any<'_>, func: &str) -> PyResult<(Vec<i64>, Vec<i64>)> {
    if let Ok(v) = int_or_list(obj, func) {
        return Ok((v.clone(), v));
    }
    if is_seq(obj) && obj.len()? == 2 {
        let lo = ints(&obj.get_item(0)?, func)?;
        let hi = ints(&obj.get_item(1)?, func)?;
        return Ok((lo, hi));
    }
    Err(bad_args(func))
}

#[pyfunction]
#[pyo3(signature = (input, weight, /, stride = None, padding = None, dilation = None, groups = None, *, stream = None))]
#[allow(clippy::too_many_arguments)]
pub fn conv1d(
    input: &Any<'_>,
    weight: &Any<'_>,
    stride: Option<&Any<'_>>,
    padding: Option<&Any<'_>>,
    dilation: Option<&Any<'_>>,
    groups: Option<&Any<'_>>,
    stream: Option<&Any<'_>>,
) -> PyResult<PyArray> {
    let f = "conv1d";
    let (x, w) = (arr(input, f)?, arr(weight, f)?);
    let get = |o: Option<&Any<'_>>, d: i64| o.map_or(Ok(d), |v| int(v, f));
    let (s, p, d, g) = (
        get(stride, 1)?,
        get(padding, 0)?,
        get(dilation, 1)?,
        get(groups, 1)?,
    );
    on_stream(stream, || Ok(ops::conv1d(&x, &w, s, p, d, g).py()?.into()))
}

macro_rules! py_conv_nd {
    ($name:ident, $n:literal) => {
        #[pyfunction]
        #[pyo3(signature = (input, weight, /, stride = None, padding = None, dilation = None, groups = None, *, stream = None))]
        #[allow(clippy::too_many_arguments)]
        pub fn $name(
            input: &Any<'_>,
            weight: &Any<'_>,
            stride: Option<&Any<'_>>,
            padding: Option<&Any<'_>>,
            dilation: Option<&Any<'_>>,
            groups: Option<&Any<'_>>,
            stream: Option<&Any<'_>>,
        ) -> PyResult<PyArray> {
            let f = stringify!($name);
            let (x, w) = (arr(input, f)?, arr(weight, f)?);
            let get = |o: Option<&Any<'_>>, d: i64| o.map_or(Ok([d; $n]), |v| int_or::<$n>(v, f));
            let (s, p, d) = (get(stride, 1)?, get(padding, 0)?, get(dilation, 1)?);
            let g = groups.map_or(Ok(1), |v| int(v, f))?;
            on_stream(stream, || Ok(ops::$name(&x, &w, s, p, d, g).py()?.into()))
        }
    };
}
py_conv_nd!(conv2d, 2);
py_conv_nd!(conv3d, 3);

#[pyfunction]
#[pyo3(signature = (input, weight, /, stride = None, padding = None, dilation = None, output_padding = None, groups = None, *, stream = None))]
#[allow(clippy::too_many_arguments)]
pub fn conv_transpose1d(
    input: &Any<'_>,
    weight: &Any<'_>,
    stride: Option<&Any<'_>>,
    padding: Option<&Any<'_>>,
    dilation: Option<&Any<'_>>,
    output_padding: Option<&Any<'_>>,
    groups: Option<&Any<'_>>,
    stream: Option<&Any<'_>>,
) -> PyResult<PyArray> {
    let f = "conv_transpose1d";
    let (x, w) = (arr(input, f)?, arr(weight, f)?);
    let get = |o: Option<&Any<'_>>, d: i64| o.map_or(Ok(d), |v| int(v, f));
    let (s, p, d) = (get(stride, 1)?, get(padding, 0)?, get(dilation, 1)?);
    let (op, g) = (get(output_padding, 0)?, get(groups, 1)?);
    on_stream(stream, || {
        Ok(ops::conv_transpose1d(&x, &w, s, p, d, op, g).py()?.into())
    })
}

macro_rules! py_conv_transpose_nd {
    ($name:ident, $n:literal) => {
        #[pyfunction]
        #[pyo3(signature = (input, weight, /, stride = None, padding = None, dilation = None, output_padding = None, groups = None, *, stream = None))]
        #[allow(clippy::too_many_arguments)]
        pub fn $name(
            input: &Any<'_>,
            weight: &Any<'_>,
            stride: Option<&Any<'_>>,
            padding: Option<&Any<'_>>,
            dilation: Option<&Any<'_>>,
            output_padding: Option<&Any<'_>>,
            groups: Option<&Any<'_>>,
            stream: Option<&Any<'_>>,
        ) -> PyResult<PyArray> {
            let f = stringify!($name);
            let (x, w) = (arr(input, f)?, arr(weight, f)?);
            let get = |o: Option<&Any<'_>>, d: i64| o.map_or(Ok([d; $n]), |v| int_or::<$n>(v, f));
            let (s, p, d) = (get(stride, 1)?, get(padding, 0)?, get(dilation, 1)?);
            let op = get(output_padding, 0)?;
            let g = groups.map_or(Ok(1), |v| int(v, f))?;
            on_stream(stream, || Ok(ops::$name(&x, &w, s, p, d, op, g).py()?.into()))
        }
    };
}
py_conv_transpose_nd!(conv_transpose2d, 2);
py_conv_transpose_nd!(conv_transpose3d, 3);

#[pyfunction]
#[pyo3(signature = (input, weight, /, stride = None, padding = None, kernel_dilation = None, input_dilation = None, groups = None, flip = false, *, stream = None))]
#[allow(clippy::too_many_arguments)]
pub fn conv_general(
    input: &Any<'_>,
    weight: &Any<'_>,
    stride: Option<&Any<'_>>,
    padding: Option<&Any<'_>>,
    kernel_dilation: Option<&Any<'_>>,
    input_dilation: Option<&Any<'_>>,
    groups: Option<&Any<'_>>,
    flip: bool,
    stream: Option<&Any<'_>>,
) -> PyResult<PyArray> {
    let f = "conv_general";
    let (x, w) = (arr(input, f)?, arr(weight, f)?);
    let list = |o: Option<&Any<'_>>, d: i64| o.map_or(Ok(vec![d]), |v| int_or_list(v, f));
    let (s, kd, id) = (
        list(stride, 1)?,
        list(kernel_dilation, 1)?,
        list(input_dilation, 1)?,
    );
    let (lo, hi) = padding.map_or(Ok((vec![0], vec![0])), |v| self::padding(v, f))?;
    let g = groups.map_or(Ok(1), |v| int(v, f))?;
    on_stream(stream, || {
        Ok(ops::conv_general(&x, &w, &s, &lo, &hi, &kd, &id, g, flip)
            .py()?
            .into())
    })
}

#[pyfunction]
#[pyo3(signature = (a, v, /, mode = "full", *, stream = None))]
pub fn convolve(
    a: &Any<'_>,
    v: &Any<'_>,
    mode: &str,
    stream: Option<&Any<'_>>,
) -> PyResult<PyArray> {
    let (a, v) = (arr(a, "convolve")?, arr(v, "convolve")?);
    on_stream(stream, || Ok(ops::convolve(&a, &v, mode).py()?.into()))
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    macro_rules! add {
        ($($f:ident),* $(,)?) => {$( m.add_function(wrap_pyfunction!($f, m)?)?; )*};
    }
    add!(
        conv1d,
        conv2d,
        conv3d,
        conv_transpose1d,
        conv_transpose2d,
        conv_transpose3d,
        conv_general,
        convolve
    );
    Ok(())
}
