//! `rmx.core.fast`, the submodule mirroring `mlx.core.fast`.

use crate::array::PyArray;
use crate::convert::arg_array;
use crate::device::on_stream;
use crate::errors::PyResultExt;
use pyo3::prelude::*;
use pyo3::types::PyString;
use rmx_core::ops::fast::{self as f, SdpaMask};
use rmx_core::Array;

type Any<'py> = Bound<'py, PyAny>;

fn opt_array(x: Option<&Any<'_>>) -> PyResult<Option<Array>> {
    match x {
        Some(x) if !x.is_none() => Ok(Some(arg_array(x)?)),
        _ => Ok(None),
    }
}

#[pyfunction]
#[pyo3(signature = (x, weight, eps, *, stream = None))]
fn rms_norm(
    x: &Any<'_>,
    weight: Option<&Any<'_>>,
    eps: f32,
    stream: Option<&Any<'_>>,
) -> PyResult<PyArray> {
    let (x, w) = (arg_array(x)?, opt_array(weight)?);
    on_stream(stream, || Ok(f::rms_norm(&x, w.as_ref(), eps).py()?.into()))
}

/// `(x + residual, rms_norm(x + residual, weight, eps))`: an rmx extension (MLX has no
/// such function), the residual add and norm of a pre-norm decoder in one kernel.
#[pyfunction]
#[pyo3(signature = (x, residual, weight, eps, *, stream = None))]
fn add_rms_norm(
    x: &Any<'_>,
    residual: &Any<'_>,
    weight: Option<&Any<'_>>,
    eps: f32,
    stream: Option<&Any<'_>>,
) -> PyResult<(PyArray, PyArray)> {
    let (x, r, w) = (arg_array(x)?, arg_array(residual)?, opt_array(weight)?);
    on_stream(stream, || {
        let (h, y) = f::add_rms_norm(&x, &r, w.as_ref(), eps).py()?;
        Ok((h.into(), y.into()))
    })
}

#[pyfunction]
#[pyo3(signature = (x, weight, bias, eps, *, stream = None))]
fn layer_norm(
    x: &Any<'_>,
    weight: Option<&Any<'_>>,
    bias: Option<&Any<'_>>,
    eps: f32,
    stream: Option<&Any<'_>>,
) -> PyResult<PyArray> {
    let (x, w, b) = (arg_array(x)?, opt_array(weight)?, opt_array(bias)?);
    on_stream(stream, || {
        Ok(f::layer_norm(&x, w.as_ref(), b.as_ref(), eps).py()?.into())
    })
}

#[pyfunction]
#[pyo3(signature = (a, dims, *, traditional, base, scale, offset, freqs = None, stream = None))]
#[allow(clippy::too_many_arguments)]
fn rope(
    a: &Any<'_>,
    dims: i64,
    traditional: bool,
    base: Option<f32>,
    scale: f32,
    offset: &Any<'_>,
    freqs: Option<&Any<'_>>,
    stream: Option<&Any<'_>>,
) -> PyResult<PyArray> {
    let (x, fr) = (arg_array(a)?, opt_array(freqs)?);
    on_stream(stream, || {
        let off = arg_array(offset)?;
        Ok(
            f::rope(&x, dims, traditional, base, scale, &off, fr.as_ref())
                .py()?
                .into(),
        )
    })
}

/// `(q, k_cache, v_cache)` from a fused q|k|v projection `x` `(B, L, num_heads + 2 *
/// num_kv_heads, D)`: an rmx extension (MLX has no such function), a decode step's RoPE of
/// the queries and keys and its two cache writes (at `offset + l`) in one kernel.
#[pyfunction]
#[pyo3(signature = (x, k_cache, v_cache, num_heads, num_kv_heads, dims, *, traditional, base, scale, offset, freqs = None, stream = None))]
#[allow(clippy::too_many_arguments)]
fn rope_kv_update(
    x: &Any<'_>,
    k_cache: &Any<'_>,
    v_cache: &Any<'_>,
    num_heads: usize,
    num_kv_heads: usize,
    dims: i64,
    traditional: bool,
    base: Option<f32>,
    scale: f32,
    offset: &Any<'_>,
    freqs: Option<&Any<'_>>,
    stream: Option<&Any<'_>>,
) -> PyResult<(PyArray, PyArray, PyArray)> {
    let (x, kc, vc) = (arg_array(x)?, arg_array(k_cache)?, arg_array(v_cache)?);
    let fr = opt_array(freqs)?;
    on_stream(stream, || {
        let off = arg_array(offset)?;
        let (q, k, v) = f::rope_kv_update(
            &x,
            &kc,
            &vc,
            num_heads,
            num_kv_heads,
            dims,
            traditional,
            base,
            scale,
            &off,
            fr.as_ref(),
        )
        .py()?;
        Ok((q.into(), k.into(), v.into()))
    })
}

/// The weight of a fused linear op: dense `w`, or packed `w` with `scales` and `biases`.
fn weight_of<'a>(
    op: &str,
    w: &'a Array,
    scales: &'a Option<Array>,
    biases: &'a Option<Array>,
    group_size: usize,
    bits: usize,
) -> PyResult<f::Weight<'a>> {
    match (scales, biases) {
        (Some(scales), Some(biases)) => Ok(f::Weight::Quantized {
            w,
            scales,
            biases,
            group_size,
            bits,
        }),
        (None, None) => Ok(f::Weight::Dense(w)),
        _ => Err(pyo3::exceptions::PyValueError::new_err(format!(
            "[{op}] scales and biases go together."
        ))),
    }
}

/// `silu(x W_g^T) * (x W_u^T)` for `w = [W_g; W_u]` (gate rows first), dense or with
/// `scales`/`biases` in MLX's affine format: an rmx extension (MLX has no such function),
/// a gated feed-forward block's first half in one kernel for one row.
#[pyfunction]
#[pyo3(signature = (x, w, scales = None, biases = None, *, group_size = 64, bits = 4, stream = None))]
fn swiglu_linear(
    x: &Any<'_>,
    w: &Any<'_>,
    scales: Option<&Any<'_>>,
    biases: Option<&Any<'_>>,
    group_size: usize,
    bits: usize,
    stream: Option<&Any<'_>>,
) -> PyResult<PyArray> {
    let (x, w) = (arg_array(x)?, arg_array(w)?);
    let (s, b) = (opt_array(scales)?, opt_array(biases)?);
    on_stream(stream, || {
        let weight = weight_of("swiglu_linear", &w, &s, &b, group_size, bits)?;
        Ok(f::swiglu_linear(&x, weight).py()?.into())
    })
}

/// `rms_norm(h, norm_weight, eps) @ w.T` (or, with `swiglu=True`, `swiglu_linear` of the
/// normalized `h`), where `h = x + residual` when a residual is given and `x` otherwise:
/// an rmx extension (MLX has no such function), a pre-norm block's entry in one kernel
/// for one row. Returns the product, or `(h, product)` with a residual.
#[pyfunction]
#[pyo3(signature = (x, norm_weight, eps, w, scales = None, biases = None, *, residual = None, swiglu = false, group_size = 64, bits = 4, stream = None))]
#[allow(clippy::too_many_arguments)]
fn rms_norm_linear(
    py: Python<'_>,
    x: &Any<'_>,
    norm_weight: &Any<'_>,
    eps: f32,
    w: &Any<'_>,
    scales: Option<&Any<'_>>,
    biases: Option<&Any<'_>>,
    residual: Option<&Any<'_>>,
    swiglu: bool,
    group_size: usize,
    bits: usize,
    stream: Option<&Any<'_>>,
) -> PyResult<PyObject> {
    let (x, nw, w) = (arg_array(x)?, arg_array(norm_weight)?, arg_array(w)?);
    let (s, b, r) = (opt_array(scales)?, opt_array(biases)?, opt_array(residual)?);
    let (h, y) = on_stream(stream, || {
        let weight = weight_of("rms_norm_linear", &w, &s, &b, group_size, bits)?;
        f::rms_norm_linear(&x, r.as_ref(), &nw, eps, weight, swiglu).py()
    })?;
    let y = PyArray::from(y).into_pyobject(py)?.into_any().unbind();
    if r.is_none() {
        return Ok(y);
    }
    let h = PyArray::from(h).into_pyobject(py)?.into_any().unbind();
    Ok(pyo3::types::PyTuple::new(py, [h, y])?.into_any().unbind())
}

#[pyfunction]
#[pyo3(signature = (q, k, v, *, scale, mask = None, sinks = None, force_fused = false, stream = None))]
#[allow(clippy::too_many_arguments)]
fn scaled_dot_product_attention(
    q: &Any<'_>,
    k: &Any<'_>,
    v: &Any<'_>,
    scale: f32,
    mask: Option<&Any<'_>>,
    sinks: Option<&Any<'_>>,
    force_fused: bool,
    stream: Option<&Any<'_>>,
) -> PyResult<PyArray> {
    // every configuration runs the fused kernel, so `force_fused` changes nothing
    let _ = force_fused;
    let (q, k, v, s) = (
        arg_array(q)?,
        arg_array(k)?,
        arg_array(v)?,
        opt_array(sinks)?,
    );
    let mask_arr = match mask {
        Some(m) if !m.is_none() && !m.is_instance_of::<PyString>() => Some(arg_array(m)?),
        _ => None,
    };
    let mask = match (mask, &mask_arr) {
        (_, Some(m)) => SdpaMask::Array(m),
        (Some(m), None) if m.is_instance_of::<PyString>() => {
            SdpaMask::parse(m.extract::<&str>()?).py()?
        }
        _ => SdpaMask::None,
    };
    on_stream(stream, || {
        Ok(
            f::scaled_dot_product_attention(&q, &k, &v, scale, mask, s.as_ref())
                .py()?
                .into(),
        )
    })
}

pub fn register(parent: &Bound<'_, PyModule>) -> PyResult<()> {
    let m = PyModule::new(parent.py(), "fast")?;
    m.add_function(wrap_pyfunction!(rms_norm, &m)?)?;
    m.add_function(wrap_pyfunction!(add_rms_norm, &m)?)?;
    m.add_function(wrap_pyfunction!(layer_norm, &m)?)?;
    m.add_function(wrap_pyfunction!(rope, &m)?)?;
    m.add_function(wrap_pyfunction!(rope_kv_update, &m)?)?;
    m.add_function(wrap_pyfunction!(swiglu_linear, &m)?)?;
    m.add_function(wrap_pyfunction!(rms_norm_linear, &m)?)?;
    m.add_function(wrap_pyfunction!(scaled_dot_product_attention, &m)?)?;
    crate::fast_cross_entropy::register(&m)?;
    crate::fast_gated_delta::register(&m)?;
    parent.add_submodule(&m)
}
