//! `rmx.core` quantization: quantize, dequantize, quantized_matmul. As MLX's bindings,
//! array arguments must be arrays (anything else is a TypeError), `transpose` a bool and
//! `group_size`/`bits` ints.

use crate::array::PyArray;
use crate::device::on_stream;
use crate::dtype::PyDtype;
use crate::errors::PyResultExt;
use pyo3::prelude::*;
use rmx_core::ops;

type Any<'py> = Bound<'py, PyAny>;

#[pyfunction]
#[pyo3(signature = (w, /, group_size = None, bits = None, mode = "affine", *, global_scale = None, stream = None))]
pub fn quantize(
    w: PyRef<'_, PyArray>,
    group_size: Option<i64>,
    bits: Option<i64>,
    mode: &str,
    global_scale: Option<PyRef<'_, PyArray>>,
    stream: Option<&Any<'_>>,
) -> PyResult<Vec<PyArray>> {
    // a list, as MLX returns
    let g = global_scale.as_ref().map(|g| &g.inner);
    on_stream(stream, || {
        let out = ops::quantize_scaled(&w.inner, group_size, bits, mode, g).py()?;
        Ok(out.into_iter().map(PyArray::from).collect())
    })
}

#[pyfunction]
#[pyo3(signature = (w, /, scales, biases = None, group_size = None, bits = None, mode = "affine", global_scale = None, dtype = None, *, stream = None))]
#[allow(clippy::too_many_arguments)]
pub fn dequantize(
    w: PyRef<'_, PyArray>,
    scales: PyRef<'_, PyArray>,
    biases: Option<PyRef<'_, PyArray>>,
    group_size: Option<i64>,
    bits: Option<i64>,
    mode: &str,
    global_scale: Option<PyRef<'_, PyArray>>,
    dtype: Option<PyDtype>,
    stream: Option<&Any<'_>>,
) -> PyResult<PyArray> {
    let g = global_scale.as_ref().map(|g| &g.inner);
    on_stream(stream, || {
        let b = biases.as_ref().map(|b| &b.inner);
        Ok(ops::dequantize_scaled(
            &w.inner,
            &scales.inner,
            b,
            group_size,
            bits,
            mode,
            g,
            dtype.map(|d| d.0),
        )
        .py()?
        .into())
    })
}

#[pyfunction]
#[pyo3(signature = (x, w, /, scales, biases = None, transpose = true, group_size = None, bits = None, mode = "affine", *, stream = None))]
#[allow(clippy::too_many_arguments)]
pub fn quantized_matmul(
    x: PyRef<'_, PyArray>,
    w: PyRef<'_, PyArray>,
    scales: PyRef<'_, PyArray>,
    biases: Option<PyRef<'_, PyArray>>,
    transpose: bool,
    group_size: Option<i64>,
    bits: Option<i64>,
    mode: &str,
    stream: Option<&Any<'_>>,
) -> PyResult<PyArray> {
    on_stream(stream, || {
        let b = biases.as_ref().map(|b| &b.inner);
        Ok(ops::quantized_matmul(
            &x.inner,
            &w.inner,
            &scales.inner,
            b,
            transpose,
            group_size,
            bits,
            mode,
        )
        .py()?
        .into())
    })
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(quantize, m)?)?;
    m.add_function(wrap_pyfunction!(dequantize, m)?)?;
    m.add_function(wrap_pyfunction!(quantized_matmul, m)?)?;
    Ok(())
}
