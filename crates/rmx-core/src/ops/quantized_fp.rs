//! The floating-point quantization modes of MLX 0.32.4: `mxfp4` (e2m1 values, e8m0 scale
//! per 32), `mxfp8` (e4m3 values, e8m0 scale per 32) and `nvfp4` (e2m1 values, e4m3 scale
//! per 16, optional float32 `global_scale`).
//!
//! On the CPU MLX builds `quantize` and `dequantize` of these modes from ordinary ops, so
//! rmx composes the same ops in the same order and dtypes (found by comparing outputs bit
//! for bit and reading the kernels MLX's `compile` generates). That makes the packed words
//! and scales identical, ties included (fp4 codes come from an `argmin` over the code
//! table, so a tie goes to the smaller code), and gives the derivatives MLX has: zeros
//! through `argmin` (mxfp4), errors from `to_fp8`/`from_fp8` (mxfp8, nvfp4) and from the
//! gathered codes of `dequantize`.

use crate::array::Array;
use crate::dtype::Dtype;
use crate::element::Scalar;
use crate::error::Result;
use crate::shape::shape_str;

use super::creation::arange;
use super::elementwise::*;
use super::fp8::{from_fp8, to_fp8};
use super::indexing::take;
use super::reduce::{argmin, max, sum};
use super::shape::{concatenate, expand_dims, reshape};

/// A quantization mode, with MLX's default group size and bits.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum QuantMode {
    Affine,
    Mxfp4,
    Mxfp8,
    Nvfp4,
}

impl QuantMode {
    pub fn parse(op: &str, mode: &str) -> Result<Self> {
        Ok(match mode {
            "affine" => Self::Affine,
            "mxfp4" => Self::Mxfp4,
            "mxfp8" => Self::Mxfp8,
            "nvfp4" => Self::Nvfp4,
            _ => {
                return Err(crate::value_err!(
                    "[{op}] Invalid quantization mode '{mode}'."
                ))
            }
        })
    }
    pub fn name(self) -> &'static str {
        match self {
            Self::Affine => "affine",
            Self::Mxfp4 => "mxfp4",
            Self::Mxfp8 => "mxfp8",
            Self::Nvfp4 => "nvfp4",
        }
    }
    /// The group size and bits the mode requires (and defaults to).
    pub fn defaults(self) -> (i64, i64) {
        match self {
            Self::Affine => (64, 4),
            Self::Mxfp4 => (32, 4),
            Self::Mxfp8 => (32, 8),
            Self::Nvfp4 => (16, 4),
        }
    }
    /// Group size and bits with the mode's defaults filled in.
    pub fn params(self, group_size: Option<i64>, bits: Option<i64>) -> (i64, i64) {
        let (g, b) = self.defaults();
        (group_size.unwrap_or(g), bits.unwrap_or(b))
    }
}

/// The fp modes accept only their own group size and bits.
pub fn check_fp(op: &str, mode: QuantMode, group_size: i64, bits: i64) -> Result<()> {
    let (g, b) = mode.defaults();
    let name = mode.name();
    if group_size != g {
        return Err(crate::value_err!(
            "[{op}] {name} quantization requires group size {g} but got {group_size}."
        ));
    }
    if bits != b {
        return Err(crate::value_err!(
            "[{op}] {name} quantization requires bits to be {b} but got {bits}."
        ));
    }
    Ok(())
}

/// MLX's checks of `global_scale` (quantize also wants a scalar).
pub fn check_global_scale(
    op: &str,
    mode: QuantMode,
    g: Option<&Array>,
    scalar: bool,
) -> Result<()> {
    let Some(g) = g else { return Ok(()) };
    if mode != QuantMode::Nvfp4 {
        return Err(crate::value_err!(
            "[{op}] Global scale is only supported for 'nvfp4' quantization mode."
        ));
    }
    if scalar && g.ndim() != 0 {
        return Err(crate::value_err!(
            "[{op}] Global scale must be a scalar but got shape {}.",
            shape_str(g.shape())
        ));
    }
    if g.dtype() != Dtype::Float32 {
        return Err(crate::value_err!(
            "[{op}] Global scale must have dtype float32 but got {}.",
            g.dtype()
        ));
    }
    Ok(())
}

/// The e2m1 code table: code `c` has value `FP4[c]` (bit 3 is the sign).
pub const FP4: [f32; 16] = [
    0.0, 0.5, 1.0, 1.5, 2.0, 3.0, 4.0, 6.0, -0.0, -0.5, -1.0, -1.5, -2.0, -3.0, -4.0, -6.0,
];

fn c(v: f64, dtype: Dtype) -> Result<Array> {
    Array::scalar_of(Scalar::Float(v), dtype)
}

fn ci(v: i64, dtype: Dtype) -> Result<Array> {
    Array::scalar_of(Scalar::Int(v), dtype)
}

fn fp4_table(dtype: Dtype) -> Result<Array> {
    astype(&Array::from_slice(&FP4, &[16])?, dtype)
}

/// `[w_q, scales]` of a checked float `w` (last dim a multiple of the group size).
pub fn fp_quantize(w: &Array, mode: QuantMode, global_scale: Option<&Array>) -> Result<Vec<Array>> {
    let (gs, bits) = mode.defaults();
    let t = w.dtype();
    let f32_ = Dtype::Float32;
    let out_shape = |a: &Array| -> Result<Array> {
        let mut s: Vec<i64> = w.shape().iter().map(|&d| d as i64).collect();
        *s.last_mut().unwrap() = -1;
        reshape(a, &s)
    };
    let wg = reshape(w, &[-1, gs])?;
    let maxval = if bits == 4 { 6.0 } else { 448.0 };
    let amax = divide(&max(&abs(&wg)?, Some(&[-1]), true)?, &c(maxval, t)?)?;
    let (wf, scales) = match mode {
        QuantMode::Nvfp4 => match global_scale {
            None => {
                let s = to_fp8(&amax)?;
                (divide(&wg, &from_fp8(&s, t)?)?, s)
            }
            Some(g) => {
                let enc = divide(&c(2688.0, f32_)?, g)?;
                let s = to_fp8(&multiply(&astype(&amax, f32_)?, &enc)?)?;
                let wf = astype(&divide(&wg, &from_fp8(&s, t)?)?, f32_)?;
                (multiply(&wf, &enc)?, s)
            }
        },
        _ => {
            // the smallest power of two >= amax: round(log2) bumped up when short
            let i32_ = Dtype::Int32;
            let n = astype(&round(&log2(&amax)?, 0)?, i32_)?;
            let p = power(&c(2.0, f32_)?, &astype(&n, f32_)?)?;
            let bump = less(&p, &astype(&amax, f32_)?)?;
            let e = where_(&bump, &add(&n, &ci(1, i32_)?)?, &n)?;
            let zero = c(0.0, t)?;
            let e = where_(&equal(&amax, &zero)?, &zero, &astype(&e, t)?)?;
            let wf = divide(&wg, &power(&c(2.0, t)?, &e)?)?;
            let s = astype(&add(&e, &ci(127, t)?)?, Dtype::Uint8)?;
            (wf, s)
        }
    };
    let wq = if bits == 4 {
        // MLX packs codes 32 at a time across rows, so fewer than that fail in its reshape
        let codes = w.size();
        if !codes.is_multiple_of(32) {
            return Err(crate::value_err!(
                "[reshape] Cannot reshape array of size {codes} into shape ({},4,8).",
                codes / 32
            ));
        }
        // bfloat16 codes are chosen in float32 (as MLX's CPU path does)
        let wf = if wf.dtype() == Dtype::Bfloat16 {
            astype(&wf, f32_)?
        } else {
            wf
        };
        let table = astype(&fp4_table(t)?, wf.dtype())?;
        let dist = abs(&subtract(&expand_dims(&wf, &[-1])?, &table)?)?;
        let q = reshape(&argmin(&dist, Some(-1), false)?, &[-1, 4, 8])?;
        let u32_ = Dtype::Uint32;
        let shifts = power(&ci(2, u32_)?, &arange(0.0, 32.0, 4.0, u32_)?)?;
        sum(&multiply(&q, &shifts)?, Some(&[-1]), false)?
    } else {
        view(&to_fp8(&wf)?, Dtype::Uint32)?
    };
    Ok(vec![out_shape(&wq)?, out_shape(&scales)?])
}

/// The float matrix of checked `w` (uint32) and `scales` (uint8): computed in `dtype`, or in
/// float32 with a global scale (the result is then float32 whatever `dtype` is, as MLX).
pub fn fp_dequantize(
    w: &Array,
    scales: &Array,
    mode: QuantMode,
    global_scale: Option<&Array>,
    dtype: Dtype,
) -> Result<Array> {
    let (gs, bits) = mode.defaults();
    let mut vshape: Vec<i64> = w.shape().iter().map(|&d| d as i64).collect();
    *vshape.last_mut().unwrap() = -1;
    let vals = if bits == 4 {
        let b = view(w, Dtype::Int8)?;
        let table = fp4_table(dtype)?;
        let lo = take(&table, &bitwise_and(&b, &ci(15, Dtype::Int8)?)?, None)?;
        let hi = take(&table, &right_shift(&b, &ci(4, Dtype::Int8)?)?, None)?;
        let both = concatenate(
            &[expand_dims(&lo, &[-1])?, expand_dims(&hi, &[-1])?],
            Some(-1),
        )?;
        reshape(&both, &vshape)?
    } else {
        from_fp8(&view(w, Dtype::Uint8)?, dtype)?
    };
    let mut gshape = vshape[..vshape.len() - 1].to_vec();
    gshape.extend([-1, gs]);
    let vals = reshape(&vals, &gshape)?;
    let out = match mode {
        QuantMode::Nvfp4 => {
            let s = from_fp8(scales, dtype)?;
            match global_scale {
                None => multiply(&vals, &expand_dims(&s, &[-1])?)?,
                Some(g) => {
                    let f32_ = Dtype::Float32;
                    let dec = divide(g, &astype(&c(2688.0, dtype)?, f32_)?)?;
                    let s = multiply(&astype(&s, f32_)?, &dec)?;
                    multiply(&astype(&vals, f32_)?, &expand_dims(&s, &[-1])?)?
                }
            }
        }
        _ => {
            let e = subtract(&astype(scales, dtype)?, &ci(127, dtype)?)?;
            let s = power(&c(2.0, dtype)?, &e)?;
            multiply(&vals, &expand_dims(&s, &[-1])?)?
        }
    };
    reshape(&out, &vshape)
}
