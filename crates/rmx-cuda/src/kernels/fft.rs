//! Discrete Fourier transforms through cuFFT (`cufft.rs`), in complex64 like MLX and the
//! CPU backend. An n-d transform is 1-d transforms axis by axis: each axis is moved last
//! by a copy, transformed as a batch of contiguous lines, and moved back. Real forward
//! transforms take the real last axis first (R2C, as NumPy's rfftn), then the complex
//! axes; real inverse ones take the complex axes first, then C2R on the last axis. The
//! scale is one pass at the end. Without cuFFT, or during a graph capture, the host runs it.

use super::elementwise::{cast, launch_config, row_contiguous, Kernel};
use super::prelude::PRELUDE;
use crate::cufft::{cufft, CuFft, Kind, FORWARD, INVERSE};
use crate::device::{driver_err, Gpu};
use crate::memory::{alloc_output, device_ptr, device_ptr_mut};
use rmx_core::{ArrayData, Dtype, Result};

/// `x` with `axis` moved last, as a fresh row-contiguous copy the caller may overwrite.
fn moved_last(gpu: &'static Gpu, x: &ArrayData, axis: usize) -> Result<Option<ArrayData>> {
    cast(gpu, &x.with_axis_last(axis), x.dtype)
}

/// The inverse of `moved_last`: a row-contiguous copy with the last axis back at `axis`.
fn moved_back(gpu: &'static Gpu, t: &ArrayData, axis: usize) -> Result<Option<ArrayData>> {
    if axis == t.ndim() - 1 {
        return Ok(Some(t.clone()));
    }
    cast(gpu, &t.with_last_axis_at(axis), t.dtype)
}

fn exec(
    gpu: &'static Gpu,
    lib: &CuFft,
    kind: Kind,
    (n, lines): (usize, usize),
    inverse: bool,
    input: u64,
    output: u64,
) -> Result<()> {
    let direction = if inverse { INVERSE } else { FORWARD };
    gpu.bind()?;
    let stream = gpu.stream.cu_stream() as *mut std::ffi::c_void;
    unsafe { lib.exec(kind, (n, lines), direction, (input, output), stream) }
}

/// The complex transform of `x` (complex64) along `axis`, into a fresh array.
fn complex_axis(
    gpu: &'static Gpu,
    lib: &CuFft,
    x: &ArrayData,
    axis: usize,
    inverse: bool,
) -> Result<Option<ArrayData>> {
    let n = x.shape[axis];
    let lines = x.numel() / n;
    if axis + 1 == x.ndim() {
        // lines already contiguous: out of place (C2C leaves its input intact)
        let Some(x) = row_contiguous(gpu, x)? else {
            return Ok(None);
        };
        let (out, optr) = alloc_output(gpu, Dtype::Complex64, &x.shape)?;
        exec(
            gpu,
            lib,
            Kind::C2C,
            (n, lines),
            inverse,
            device_ptr(gpu, &x)?,
            optr,
        )?;
        return Ok(Some(out));
    }
    let Some(t) = moved_last(gpu, x, axis)? else {
        return Ok(None);
    };
    let p = device_ptr_mut(gpu, &t)?;
    exec(gpu, lib, Kind::C2C, (n, lines), inverse, p, p)?;
    moved_back(gpu, &t, axis)
}

/// The real transform of length `n` along `axis`: float32 to its `n / 2 + 1` bins (R2C)
/// or, `inverse`, bins back to `n` float32 values (C2R, which overwrites its input: it
/// reads the fresh moved copy).
fn real_axis(
    gpu: &'static Gpu,
    lib: &CuFft,
    x: &ArrayData,
    axis: usize,
    n: usize,
    inverse: bool,
) -> Result<Option<ArrayData>> {
    let Some(t) = moved_last(gpu, x, axis)? else {
        return Ok(None);
    };
    let lines = t.numel() / t.shape[t.ndim() - 1];
    let (kind, len, dtype) = if inverse {
        (Kind::C2R, n, Dtype::Float32)
    } else {
        (Kind::R2C, n / 2 + 1, Dtype::Complex64)
    };
    let mut shape = t.shape.to_vec();
    *shape.last_mut().expect("an axis") = len;
    let (out, optr) = alloc_output(gpu, dtype, &shape)?;
    let tp = device_ptr_mut(gpu, &t)?;
    exec(gpu, lib, kind, (n, lines), inverse, tp, optr)?;
    moved_back(gpu, &out, axis)
}

/// The in-place scaling pass.
pub fn scale_kernel() -> Kernel {
    let name = "fft_scale".to_string();
    let src = scale_source(&name);
    Kernel { name, src }
}

fn scale_source(name: &str) -> String {
    format!(
        r#"{PRELUDE}
extern "C" __global__ void {name}(float* p, float s, i64 n) {{
  for (i64 i = (i64)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += (i64)gridDim.x * blockDim.x) p[i] *= s;
}}
"#
    )
}

/// Multiplies the float32 or complex64 values of the fresh array `x` by `s` in place.
fn scale_in_place(gpu: &'static Gpu, x: &ArrayData, s: f32) -> Result<()> {
    let n = (x.numel() * x.dtype.size() / 4) as i64;
    if n == 0 {
        return Ok(());
    }
    let k = scale_kernel();
    let f = gpu.kernel(&k.name, || k.src)?;
    let p = device_ptr_mut(gpu, x)?;
    let mut b = gpu.launch(&f);
    b.arg(&p).arg(&s).arg(&n);
    unsafe { b.launch(launch_config(n as usize)) }.map_err(|e| driver_err("launching fft_scale", e))
}

/// The `Backend::fft` contract on the GPU; `None` when the host must run it.
pub fn fft(
    gpu: &'static Gpu,
    x: &ArrayData,
    axes: &[usize],
    inverse: bool,
    real: bool,
    out_shape: &[usize],
    scale: f32,
) -> Result<Option<ArrayData>> {
    let (Some(lib), Some(&last)) = (cufft(), axes.last()) else {
        return Ok(None);
    };
    let out_numel: usize = out_shape.iter().product();
    let sizes_fit = x
        .shape
        .iter()
        .chain(out_shape)
        .all(|&d| d <= i32::MAX as usize);
    if crate::graph::is_capturing() || x.numel() == 0 || out_numel == 0 || !sizes_fit {
        return Ok(None);
    }
    let complex_axes = if real { &axes[..axes.len() - 1] } else { axes };
    // the real axis: n reals <-> n / 2 + 1 bins (n >= 2; the input already sized by the op)
    let n = if inverse {
        out_shape[last]
    } else {
        x.shape[last]
    };
    let supported = match (real, inverse) {
        (true, false) => x.dtype == Dtype::Float32 && out_shape[last] == n / 2 + 1,
        (true, true) => x.dtype == Dtype::Complex64 && x.shape[last] == n / 2 + 1,
        (false, _) => x.dtype == Dtype::Complex64,
    };
    if !supported || (real && n < 2) {
        return Ok(None);
    }
    let mut cur = x.clone();
    if real && !inverse {
        // the real last axis first (as NumPy's rfftn), then the complex ones
        let Some(bins) = real_axis(gpu, lib, x, last, n, false)? else {
            return Ok(None);
        };
        cur = bins;
    }
    for &ax in complex_axes {
        if cur.shape[ax] <= 1 {
            continue; // a 1-point transform is the identity
        }
        let Some(next) = complex_axis(gpu, lib, &cur, ax, inverse)? else {
            return Ok(None);
        };
        cur = next;
    }
    if real && inverse {
        let Some(reals) = real_axis(gpu, lib, &cur, last, n, true)? else {
            return Ok(None);
        };
        cur = reals;
    }
    if std::sync::Arc::ptr_eq(&cur.buffer, &x.buffer) {
        // no axis transformed anything: the result must still be a new array
        let Some(copy) = cast(gpu, &cur, cur.dtype)? else {
            return Ok(None);
        };
        cur = copy;
    }
    if scale != 1.0 {
        scale_in_place(gpu, &cur, scale)?;
    }
    Ok(Some(cur))
}
