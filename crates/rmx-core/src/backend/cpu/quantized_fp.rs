//! Quantized matmul of the fp modes (`mxfp4`, `mxfp8`, `nvfp4`) on the host, in the order
//! and precision of MLX 0.32.4's CPU kernels (every partial result rounded to x's dtype),
//! so results are bit-identical. Plain scalar loops: correct first, not fast.

use super::fp8::fp8_to_f32;
use crate::array::ArrayData;
use crate::dtype::Dtype;
use crate::error::Result;
use crate::ops::quantized_fp::{QuantMode, FP4};

/// `v` rounded to `dtype` (float32, float16 or bfloat16) and back.
#[inline(always)]
fn round_to(v: f32, dtype: Dtype) -> f32 {
    match dtype {
        Dtype::Float16 => half::f16::from_f32(v).to_f32(),
        Dtype::Bfloat16 => crate::element::bf16_from_f32(v).to_f32(),
        _ => v,
    }
}

/// `x @ W.T` as MLX's CPU kernel computes it, every step rounded to x's dtype: per group,
/// `part += x * code`; then `acc += part * scale`. `x` `[..., M, K]` (any float dtype, the
/// output's), `w`/`scales` with x's batch shape. Returns f32 holding values of x's dtype.
pub fn qmm_t(
    x: &ArrayData,
    w: &ArrayData,
    scales: &ArrayData,
    mode: QuantMode,
) -> Result<ArrayData> {
    let dt = x.dtype;
    let xf = super::copy::cast(x, Dtype::Float32)?;
    let w = super::copy::copy(w)?;
    let s = super::copy::copy(scales)?;
    let (gs, bits) = mode.defaults();
    let (gs, bits) = (gs as usize, bits as usize);
    let nd = x.ndim();
    let (m, k) = (x.shape[nd - 2], x.shape[nd - 1]);
    let (n, c) = (w.shape[nd - 2], w.shape[nd - 1]);
    let batch: usize = x.shape[..nd - 2].iter().product();
    let g = k / gs;
    let mut shape = x.shape.clone();
    shape[nd - 1] = n;
    let out = ArrayData::alloc(Dtype::Float32, &shape)?;
    if batch * m * n == 0 {
        return Ok(out);
    }
    // SAFETY: fresh row-contiguous buffers of the sizes computed above.
    let (xs, bytes, sc, o) = unsafe {
        (
            std::slice::from_raw_parts(xf.ptr::<f32>(), batch * m * k),
            std::slice::from_raw_parts(w.ptr::<u8>(), batch * n * c * 4),
            std::slice::from_raw_parts(s.ptr::<u8>(), batch * n * g),
            std::slice::from_raw_parts_mut(out.ptr_mut::<f32>(), batch * m * n),
        )
    };
    let scale = |v: u8| -> f32 {
        round_to(
            match mode {
                QuantMode::Nvfp4 => fp8_to_f32(v),
                _ => 2f32.powi(v as i32 - 127),
            },
            dt,
        )
    };
    let code = |row: &[u8], j: usize| -> f32 {
        if bits == 8 {
            fp8_to_f32(row[j])
        } else {
            FP4[((row[j / 2] >> (4 * (j % 2))) & 15) as usize]
        }
    };
    for bi in 0..batch {
        for i in 0..m {
            let xr = &xs[(bi * m + i) * k..][..k];
            for r in 0..n {
                let wr = &bytes[(bi * n + r) * c * 4..][..c * 4];
                let sr = &sc[(bi * n + r) * g..][..g];
                let mut acc = 0f32;
                for (gi, &sv) in sr.iter().enumerate() {
                    let mut part = 0f32;
                    for (j, &xv) in xr.iter().enumerate().skip(gi * gs).take(gs) {
                        part = round_to(part + round_to(xv * code(wr, j), dt), dt);
                    }
                    acc = round_to(acc + round_to(part * scale(sv), dt), dt);
                }
                o[(bi * m + i) * n + r] = acc;
            }
        }
    }
    Ok(out)
}

/// `x @ W` as MLX's CPU kernel computes it, every step rounded to x's dtype: over the rows
/// `k` of `W`, `out[n] += (x[k] * scale) * code`. Shapes as `qmm_t` with `W` `[..., K, N]`.
pub fn qmm_n(
    x: &ArrayData,
    w: &ArrayData,
    scales: &ArrayData,
    mode: QuantMode,
) -> Result<ArrayData> {
    let dt = x.dtype;
    let xf = super::copy::cast(x, Dtype::Float32)?;
    let w = super::copy::copy(w)?;
    let s = super::copy::copy(scales)?;
    let (gs, bits) = mode.defaults();
    let (gs, bits) = (gs as usize, bits as usize);
    let nd = x.ndim();
    let (m, k) = (x.shape[nd - 2], x.shape[nd - 1]);
    let c = w.shape[nd - 1];
    let n = c * 32 / bits;
    let batch: usize = x.shape[..nd - 2].iter().product();
    let g = n / gs;
    let mut shape = x.shape.clone();
    shape[nd - 1] = n;
    let out = ArrayData::alloc(Dtype::Float32, &shape)?;
    if batch * m * n == 0 {
        return Ok(out);
    }
    // SAFETY: fresh row-contiguous buffers of the sizes computed above.
    let (xs, bytes, sc, o) = unsafe {
        (
            std::slice::from_raw_parts(xf.ptr::<f32>(), batch * m * k),
            std::slice::from_raw_parts(w.ptr::<u8>(), batch * k * c * 4),
            std::slice::from_raw_parts(s.ptr::<u8>(), batch * k * g),
            std::slice::from_raw_parts_mut(out.ptr_mut::<f32>(), batch * m * n),
        )
    };
    o.fill(0.0);
    for bi in 0..batch {
        for i in 0..m {
            let xr = &xs[(bi * m + i) * k..][..k];
            let orow = &mut o[(bi * m + i) * n..][..n];
            for (kk, &xv) in xr.iter().enumerate() {
                let wr = &bytes[(bi * k + kk) * c * 4..][..c * 4];
                let sr = &sc[(bi * k + kk) * g..][..g];
                for (j, oj) in orow.iter_mut().enumerate() {
                    let sv = sr[j / gs];
                    let scale = round_to(
                        match mode {
                            QuantMode::Nvfp4 => fp8_to_f32(sv),
                            _ => 2f32.powi(sv as i32 - 127),
                        },
                        dt,
                    );
                    let q = if bits == 8 {
                        fp8_to_f32(wr[j])
                    } else {
                        FP4[((wr[j / 2] >> (4 * (j % 2))) & 15) as usize]
                    };
                    *oj = round_to(*oj + round_to(round_to(xv * scale, dt) * q, dt), dt);
                }
            }
        }
    }
    Ok(out)
}
