//! The activation side of `qqmm`: each group of `x`'s last axis quantized to an fp mode
//! and dequantized again, in MLX 0.32.4's kernel recipe (`fp_quantize_dequantize`):
//! the group's absolute maximum in float32 over 6 (fp4) or 448 (fp8), times
//! `2688 / global_scale` when nvfp4 has one, else rounded up to a power of two for the
//! 32-groups (e8m0); the scale is that rounded to its code (e4m3 or e8m0); elements are
//! `x / scale` (`x * (enc / scale)` with a global scale) rounded to e2m1 (ties to the even code) or e4m3, and come back as
//! `(scale / enc) * value` in x's dtype. This differs from the op-built `quantize` in the
//! ties and in computing the maximum over 6 in float32 rather than x's dtype.

use super::fp8::{f32_to_fp8, fp8_to_f32};
use crate::array::ArrayData;
use crate::dtype::Dtype;
use crate::error::Result;
use crate::ops::quantized_fp::{QuantMode, FP4};
use rayon::prelude::*;

/// e2m1 code of `x` (MLX's thresholds: ties go to the even code; NaN to 6).
fn to_fp4(x: f32) -> u8 {
    if x.is_nan() {
        return 7;
    }
    let sign = if x.is_sign_negative() { 8 } else { 0 };
    let a = x.abs();
    let bits = if a > 5.0 {
        7
    } else if a >= 3.5 {
        6
    } else if a > 2.5 {
        5
    } else if a >= 1.75 {
        4
    } else if a > 1.25 {
        3
    } else if a >= 0.75 {
        2
    } else if a > 0.25 {
        1
    } else {
        0
    };
    bits | sign
}

/// e8m0 code: the power of two nearest `x` in log2 (clamped), 0xFF for inf/NaN.
fn to_e8m0(x: f32) -> u8 {
    if !x.is_finite() {
        return 0xFF;
    }
    if x < 0.0 {
        return 0;
    }
    let n = x.log2().round();
    let n = if n.is_nan() {
        -127.0
    } else {
        n.clamp(-127.0, 127.0)
    };
    (n as i32 + 127) as u8
}

fn from_e8m0(bits: u8) -> f32 {
    if bits == 0 {
        f32::from_bits(0x40_0000)
    } else {
        f32::from_bits((bits as u32) << 23)
    }
}

/// The smallest e8m0 value `>= x` (MLX's `mx_scale_round_up`).
fn mx_round_up(x: f32) -> f32 {
    let mut b = to_e8m0(x);
    if b < 0xFE && from_e8m0(b) < x {
        b += 1;
    }
    from_e8m0(b)
}

/// `x` (float32/float16/bfloat16, any strides) quantized and dequantized per group of
/// its last axis; `global_scale` only for nvfp4. Row-contiguous, in x's dtype.
pub fn quantize_dequantize(
    x: &ArrayData,
    mode: QuantMode,
    global_scale: Option<f32>,
) -> Result<ArrayData> {
    let xf = super::copy::cast(x, Dtype::Float32)?;
    let out = ArrayData::alloc(Dtype::Float32, &x.shape)?;
    let n = x.numel();
    let (gs, bits) = mode.defaults();
    let gs = gs as usize;
    if n > 0 {
        // SAFETY: fresh row-contiguous float32 buffers of n elements.
        let (src, dst) = unsafe {
            (
                std::slice::from_raw_parts(xf.ptr::<f32>(), n),
                std::slice::from_raw_parts_mut(out.ptr_mut::<f32>(), n),
            )
        };
        let enc = global_scale.map_or(1.0f32, |g| 2688.0f32 / g);
        let maxval = if bits == 4 { 6.0f32 } else { 448.0 };
        let mx = mode != QuantMode::Nvfp4;
        let group = |(s, d): (&[f32], &mut [f32])| {
            let amax = s.iter().fold(0f32, |m, v| m.max(v.abs()));
            let mut sd = amax / maxval;
            if global_scale.is_some() {
                sd *= enc;
            } else if mx {
                sd = mx_round_up(sd);
            }
            let scale = if mx {
                from_e8m0(to_e8m0(sd))
            } else {
                fp8_to_f32(f32_to_fp8(sd))
            };
            let se = if scale == 0.0 { 0.0 } else { enc / scale };
            let back = scale / enc;
            for (o, &v) in d.iter_mut().zip(s) {
                // MLX's CPU divides by the scale (a product with its inverse can cross a
                // rounding threshold); with a global scale, the kernels' `x * (enc / s)`
                let w = match (global_scale, scale == 0.0) {
                    (_, true) => 0.0,
                    (None, false) => v / scale,
                    (Some(_), false) => v * se,
                };
                let q = if bits == 4 {
                    FP4[to_fp4(w) as usize]
                } else {
                    fp8_to_f32(f32_to_fp8(w))
                };
                *o = back * q;
            }
        };
        if n >= 1 << 16 {
            src.par_chunks(gs)
                .zip(dst.par_chunks_mut(gs))
                .for_each(group);
        } else {
            src.chunks(gs).zip(dst.chunks_mut(gs)).for_each(group);
        }
    }
    if x.dtype == Dtype::Float32 {
        Ok(out)
    } else {
        super::copy::cast(&out, x.dtype)
    }
}

/// `y * (global_scale_w / 2688)` in float32, rounded to `y`'s dtype.
pub fn scale_by(y: &ArrayData, global_scale_w: f32) -> Result<ArrayData> {
    let f = super::copy::cast(y, Dtype::Float32)?;
    let out = ArrayData::alloc(Dtype::Float32, &y.shape)?;
    let n = y.numel();
    let k = global_scale_w / 2688.0;
    if n > 0 {
        // SAFETY: fresh row-contiguous float32 buffers of n elements.
        let (src, dst) = unsafe {
            (
                std::slice::from_raw_parts(f.ptr::<f32>(), n),
                std::slice::from_raw_parts_mut(out.ptr_mut::<f32>(), n),
            )
        };
        for (o, &v) in dst.iter_mut().zip(src) {
            *o = v * k;
        }
    }
    if y.dtype == Dtype::Float32 {
        Ok(out)
    } else {
        super::copy::cast(&out, y.dtype)
    }
}
