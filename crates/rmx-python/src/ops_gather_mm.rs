//! `rmx.core` gather_mm, gather_qmm, block_masked_mm, segmented_mm and
//! hadamard_transform. As MLX's bindings, array arguments must be arrays (anything else is
//! a TypeError).

use crate::array::PyArray;
use crate::device::on_stream;
use crate::errors::PyResultExt;
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use rmx_core::ops;

type Any<'py> = Bound<'py, PyAny>;
type Opt<'py> = Option<PyRef<'py, PyArray>>;

#[pyfunction]
#[pyo3(signature = (a, b, /, lhs_indices = None, rhs_indices = None, *, sorted_indices = false, stream = None))]
pub fn gather_mm(
    a: PyRef<'_, PyArray>,
    b: PyRef<'_, PyArray>,
    lhs_indices: Opt<'_>,
    rhs_indices: Opt<'_>,
    sorted_indices: bool,
    stream: Option<&Any<'_>>,
) -> PyResult<PyArray> {
    on_stream(stream, || {
        Ok(ops::gather_mm(
            &a.inner,
            &b.inner,
            lhs_indices.as_ref().map(|x| &x.inner),
            rhs_indices.as_ref().map(|x| &x.inner),
            sorted_indices,
        )
        .py()?
        .into())
    })
}

#[pyfunction]
#[pyo3(signature = (x, w, /, scales, biases = None, lhs_indices = None, rhs_indices = None, transpose = true, group_size = None, bits = None, mode = "affine", global_scale = None, *, sorted_indices = false, stream = None))]
#[allow(clippy::too_many_arguments)]
pub fn gather_qmm(
    x: PyRef<'_, PyArray>,
    w: PyRef<'_, PyArray>,
    scales: PyRef<'_, PyArray>,
    biases: Opt<'_>,
    lhs_indices: Opt<'_>,
    rhs_indices: Opt<'_>,
    transpose: bool,
    group_size: Option<i64>,
    bits: Option<i64>,
    mode: &str,
    global_scale: Opt<'_>,
    sorted_indices: bool,
    stream: Option<&Any<'_>>,
) -> PyResult<PyArray> {
    if global_scale.is_some() {
        // MLX: only for nvfp4; rmx's quantized products take no global scale yet
        return Err(PyValueError::new_err(if mode == "nvfp4" {
            "[gather_qmm] A global scale is not supported by rmx yet."
        } else {
            "[gather_qmm] Global scale is only supported for 'nvfp4' quantization mode."
        }));
    }
    on_stream(stream, || {
        Ok(ops::gather_qmm(
            &x.inner,
            &w.inner,
            &scales.inner,
            biases.as_ref().map(|x| &x.inner),
            lhs_indices.as_ref().map(|x| &x.inner),
            rhs_indices.as_ref().map(|x| &x.inner),
            transpose,
            group_size,
            bits,
            mode,
            sorted_indices,
        )
        .py()?
        .into())
    })
}

#[pyfunction]
#[pyo3(signature = (a, b, /, block_size = 64, mask_out = None, mask_lhs = None, mask_rhs = None, *, stream = None))]
pub fn block_masked_mm(
    a: PyRef<'_, PyArray>,
    b: PyRef<'_, PyArray>,
    block_size: i64,
    mask_out: Opt<'_>,
    mask_lhs: Opt<'_>,
    mask_rhs: Opt<'_>,
    stream: Option<&Any<'_>>,
) -> PyResult<PyArray> {
    on_stream(stream, || {
        Ok(ops::block_masked_mm(
            &a.inner,
            &b.inner,
            block_size,
            mask_out.as_ref().map(|x| &x.inner),
            mask_lhs.as_ref().map(|x| &x.inner),
            mask_rhs.as_ref().map(|x| &x.inner),
        )
        .py()?
        .into())
    })
}

#[pyfunction]
#[pyo3(signature = (a, b, /, segments, *, stream = None))]
pub fn segmented_mm(
    a: PyRef<'_, PyArray>,
    b: PyRef<'_, PyArray>,
    segments: PyRef<'_, PyArray>,
    stream: Option<&Any<'_>>,
) -> PyResult<PyArray> {
    on_stream(stream, || {
        Ok(ops::segmented_mm(&a.inner, &b.inner, &segments.inner)
            .py()?
            .into())
    })
}

#[pyfunction]
#[pyo3(signature = (a, scale = None, stream = None))]
pub fn hadamard_transform(
    a: PyRef<'_, PyArray>,
    scale: Option<f64>,
    stream: Option<&Any<'_>>,
) -> PyResult<PyArray> {
    on_stream(stream, || {
        Ok(ops::hadamard_transform(&a.inner, scale).py()?.into())
    })
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(gather_mm, m)?)?;
    m.add_function(wrap_pyfunction!(gather_qmm, m)?)?;
    m.add_function(wrap_pyfunction!(block_masked_mm, m)?)?;
    m.add_function(wrap_pyfunction!(segmented_mm, m)?)?;
    m.add_function(wrap_pyfunction!(hadamard_transform, m)?)?;
    Ok(())
}
