//! `rmx.core` qqmm and gather_qqmm (both operands quantized). As MLX's bindings, array
//! arguments must be arrays (anything else is a TypeError).

use crate::array::PyArray;
use crate::device::on_stream;
use crate::errors::PyResultExt;
use pyo3::prelude::*;
use rmx_core::ops;

type Any<'py> = Bound<'py, PyAny>;
type Opt<'py> = Option<PyRef<'py, PyArray>>;

fn inner<'a>(a: &'a Opt<'_>) -> Option<&'a rmx_core::Array> {
    a.as_ref().map(|x| &x.inner)
}

#[pyfunction]
#[pyo3(signature = (x, w, scales = None, group_size = None, bits = None, mode = "nvfp4", global_scale_x = None, global_scale_w = None, *, stream = None))]
#[allow(clippy::too_many_arguments)]
pub fn qqmm(
    x: PyRef<'_, PyArray>,
    w: PyRef<'_, PyArray>,
    scales: Opt<'_>,
    group_size: Option<i64>,
    bits: Option<i64>,
    mode: &str,
    global_scale_x: Opt<'_>,
    global_scale_w: Opt<'_>,
    stream: Option<&Any<'_>>,
) -> PyResult<PyArray> {
    on_stream(stream, || {
        Ok(ops::qqmm(
            &x.inner,
            &w.inner,
            inner(&scales),
            group_size,
            bits,
            mode,
            inner(&global_scale_x),
            inner(&global_scale_w),
        )
        .py()?
        .into())
    })
}

#[pyfunction]
#[pyo3(signature = (x, w, /, scales = None, lhs_indices = None, rhs_indices = None, group_size = None, bits = None, mode = "nvfp4", global_scale_x = None, global_scale_w = None, *, sorted_indices = false, stream = None))]
#[allow(clippy::too_many_arguments)]
pub fn gather_qqmm(
    x: PyRef<'_, PyArray>,
    w: PyRef<'_, PyArray>,
    scales: Opt<'_>,
    lhs_indices: Opt<'_>,
    rhs_indices: Opt<'_>,
    group_size: Option<i64>,
    bits: Option<i64>,
    mode: &str,
    global_scale_x: Opt<'_>,
    global_scale_w: Opt<'_>,
    sorted_indices: bool,
    stream: Option<&Any<'_>>,
) -> PyResult<PyArray> {
    on_stream(stream, || {
        Ok(ops::gather_qqmm(
            &x.inner,
            &w.inner,
            inner(&scales),
            inner(&lhs_indices),
            inner(&rhs_indices),
            group_size,
            bits,
            mode,
            inner(&global_scale_x),
            inner(&global_scale_w),
            sorted_indices,
        )
        .py()?
        .into())
    })
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(qqmm, m)?)?;
    m.add_function(wrap_pyfunction!(gather_qqmm, m)?)?;
    Ok(())
}
