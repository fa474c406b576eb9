//! `mlx.core.random`: key-based, splittable random numbers that reproduce MLX's bits for
//! the same key (threefry-2x32 in `RandomBits`, then MLX's transforms op for op), and the
//! implicit global key that `seed` resets and every sampler without a key advances.

use crate::array::Array;
use crate::dtype::Dtype;
use crate::element::Scalar;
use crate::error::Result;
use crate::primitives::random::RandomBits;
use crate::shape::{broadcast_shapes, normalize_axis, shape_str, Shape};
use half::{bf16, f16};
use parking_lot::Mutex;

use super::elementwise::{
    abs, add, astype, divide, erf, erfinv, floor, less, log, log1p, maximum, minimum, multiply,
    negative, sign, subtract, view, weak_scalar,
};
use super::reduce::argmax;
use super::shape::{expand_dims, reshape_exact};

/// The global key; `None` until first used or seeded (then seeded from the clock, as MLX).
static GLOBAL_KEY: Mutex<Option<Array>> = Mutex::new(None);

/// The key for `seed`: its high and low 32-bit halves, as uint32.
pub fn key(seed: u64) -> Result<Array> {
    Array::from_slice(&[(seed >> 32) as u32, seed as u32], &[2])
}

/// Resets the global key.
pub fn seed(seed: u64) -> Result<()> {
    *GLOBAL_KEY.lock() = Some(key(seed)?);
    Ok(())
}

/// The next key of the global sequence: split the global key, keep the first half.
fn next_key() -> Result<Array> {
    let mut global = GLOBAL_KEY.lock();
    let current = match global.take() {
        Some(k) => k,
        None => {
            let ms = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_millis() as u64)
                .unwrap_or(0);
            key(ms)?
        }
    };
    let (keep, out) = split_pair(&current)?;
    *global = Some(keep);
    Ok(out)
}

/// Random unsigned integers of `width` bytes (1, 2 or 4) from `key` (or the global key).
pub fn bits(shape: &[usize], width: usize, key: Option<&Array>) -> Result<Array> {
    if !matches!(width, 1 | 2 | 4) {
        return Err(crate::value_err!(
            "[bits] Bit width must be in {{1, 2, 4}} but got {width}."
        ));
    }
    let key = match key {
        Some(k) => {
            if k.dtype() != Dtype::Uint32 {
                return Err(crate::value_err!(
                    "[bits] Expected key type uint32 but received {}.",
                    k.dtype()
                ));
            }
            if k.shape() != [2] {
                return Err(crate::value_err!(
                    "[bits] Expected key shape (2) but received {}.",
                    shape_str(k.shape())
                ));
            }
            k.clone()
        }
        None => next_key()?,
    };
    Ok(RandomBits::node(&key, shape.into(), width))
}

/// `num` keys derived from `key`, as a `[num, 2]` array.
pub fn split(key: &Array, num: usize) -> Result<Array> {
    bits(&[num, 2], 4, Some(key))
}

/// Two keys derived from `key`.
pub fn split_pair(key: &Array) -> Result<(Array, Array)> {
    let s = split(key, 2)?;
    let first = super::shape::slice(&s, &[0, 0], &[1, 2], None)?;
    let second = super::shape::slice(&s, &[1, 0], &[2, 2], None)?;
    Ok((
        reshape_exact(&first, Shape::from_slice(&[2]))?,
        reshape_exact(&second, Shape::from_slice(&[2]))?,
    ))
}

fn scalar(v: f64, dtype: Dtype) -> Result<Array> {
    Array::scalar_of(Scalar::Float(v), dtype)
}

/// The largest value below 1 that uniform draws reach (MLX clamps to it).
fn below_one(dtype: Dtype) -> Result<Array> {
    match dtype {
        Dtype::Float32 => scalar(f32::from_bits(0x3F7F_FFFF) as f64, dtype),
        Dtype::Float16 => scalar(f16::from_bits(0x3BFF).to_f64(), dtype),
        Dtype::Bfloat16 => scalar(bf16::from_bits(0x3F7F).to_f64(), dtype),
        _ => Err(crate::runtime_err!("[uniform] Unsupported type.")),
    }
}

/// The smallest value above -1 (the lower bound of the draws behind normal and laplace).
fn above_minus_one(dtype: Dtype) -> Result<Array> {
    match dtype {
        Dtype::Float16 => scalar(f16::from_bits(0xBBFF).to_f64(), dtype),
        Dtype::Bfloat16 => scalar(bf16::from_bits(0xBF7F).to_f64(), dtype),
        _ => scalar(f32::from_bits(0xBF7F_FFFF) as f64, dtype),
    }
}

/// Uniform samples in `[low, high)`: 32 bits per element scaled to [0, 1) in float32.
pub fn uniform(
    low: &Array,
    high: &Array,
    shape: &[usize],
    dtype: Dtype,
    key: Option<&Array>,
) -> Result<Array> {
    if !dtype.is_float() {
        return Err(crate::value_err!(
            "[uniform] Can only generate uniform numbers with real floating point type."
        ));
    }
    let lo = astype(low, dtype)?;
    let hi = astype(high, dtype)?;
    let range = subtract(&hi, &lo)?;
    let out_shape = broadcast_shapes(shape, range.shape())?;
    if out_shape.as_slice() != shape {
        return Err(crate::value_err!(
            "[uniform] Cannot generate random values of shape {} from broadcasted shape {}.",
            shape_str(shape),
            shape_str(&out_shape)
        ));
    }
    let upper = below_one(dtype)?;
    let b = bits(shape, 4, key)?;
    let unit = divide(&b, &scalar(u32::MAX as f64, Dtype::Float32)?)?;
    let unit = astype(&minimum(&unit, &upper)?, dtype)?;
    add(&multiply(&range, &unit)?, &lo)
}

/// Uniform samples in `[0, 1)`.
pub fn uniform01(shape: &[usize], dtype: Dtype, key: Option<&Array>) -> Result<Array> {
    uniform(
        &scalar(0.0, dtype)?,
        &scalar(1.0, dtype)?,
        shape,
        dtype,
        key,
    )
}

/// Normal samples `loc + scale * sqrt(2) * erfinv(u)` with u uniform in (-1, 1). Complex
/// samples have real and imaginary parts of variance 1/2.
pub fn normal(
    shape: &[usize],
    dtype: Dtype,
    loc: Option<&Array>,
    scale: Option<&Array>,
    key: Option<&Array>,
) -> Result<Array> {
    if !dtype.is_inexact() {
        return Err(crate::value_err!(
            "[normal] Only floating point and complex64 types are supported."
        ));
    }
    // every type draws and inverts in float32, as MLX does; complex takes pairs
    let mut draw_shape: Shape = shape.into();
    if dtype == Dtype::Complex64 {
        draw_shape.push(2);
    }
    let (lo, hi) = (
        above_minus_one(Dtype::Float32)?,
        scalar(1.0, Dtype::Float32)?,
    );
    let e = erfinv(&uniform(&lo, &hi, &draw_shape, Dtype::Float32, key)?)?;
    let mut samples = if dtype == Dtype::Complex64 {
        let c = reshape_exact(&view(&e, Dtype::Complex64)?, shape.into())?;
        match scale {
            Some(s) => multiply(&astype(s, dtype)?, &c)?,
            None => c,
        }
    } else {
        let mut applied = scalar(std::f64::consts::SQRT_2, dtype)?;
        if let Some(s) = scale {
            applied = multiply(&applied, &astype(s, dtype)?)?;
        }
        multiply(&applied, &astype(&e, dtype)?)?
    };
    if let Some(l) = loc {
        samples = add(&astype(l, dtype)?, &samples)?;
    }
    Ok(samples)
}

/// Integers in `[low, high)`: a float32 uniform, floored, then clamped to `[low, high - 1]`
/// in the output type (so bounds outside it wrap first, as in MLX).
pub fn randint(
    low: &Array,
    high: &Array,
    shape: &[usize],
    dtype: Dtype,
    key: Option<&Array>,
) -> Result<Array> {
    if dtype.is_inexact() {
        return Err(crate::value_err!(
            "[randint] randint only accepts integer dtypes and bool."
        ));
    }
    let u = uniform(low, high, shape, Dtype::Float32, key)?;
    let last = subtract(high, &weak_scalar(Scalar::Int(1), high.dtype())?)?;
    let clamped = minimum(&astype(&floor(&u)?, dtype)?, &astype(&last, dtype)?)?;
    maximum(&clamped, &astype(low, dtype)?)
}

/// `uniform < p`, of `shape` (default: p's shape).
pub fn bernoulli(p: &Array, shape: Option<&[usize]>, key: Option<&Array>) -> Result<Array> {
    if !p.dtype().is_float() {
        return Err(crate::value_err!(
            "[bernoulli] bernoulli probability `p` must be a float type."
        ));
    }
    let shape = shape.unwrap_or(p.shape()).to_vec();
    let res = less(&uniform01(&shape, Dtype::Float32, key)?, p)?;
    if res.shape() != shape.as_slice() {
        return Err(crate::value_err!(
            "[bernoulli] Shape of p {} cannot be broadcast to {}.",
            shape_str(p.shape()),
            shape_str(&shape)
        ));
    }
    Ok(res)
}

/// Normal samples restricted to `(lower, upper)` by inverting the CDF, then clipped.
pub fn truncated_normal(
    lower: &Array,
    upper: &Array,
    shape: Option<&[usize]>,
    dtype: Dtype,
    key: Option<&Array>,
) -> Result<Array> {
    if !dtype.is_float() {
        return Err(crate::value_err!(
            "[trunc_normal] trunc_normal only accepts floating point dtypes."
        ));
    }
    let shape: Shape = match shape {
        Some(s) => s.into(),
        None => broadcast_shapes(lower.shape(), upper.shape())?,
    };
    let sqrt2 = scalar(std::f64::consts::SQRT_2, dtype)?;
    let lo = astype(lower, dtype)?;
    let hi = astype(upper, dtype)?;
    let a = erf(&divide(&lo, &sqrt2)?)?;
    let b = erf(&divide(&hi, &sqrt2)?)?;
    let u = uniform(&a, &b, &shape, dtype, key)?;
    let out = multiply(&sqrt2, &erfinv(&u)?)?;
    maximum(&minimum(&hi, &out)?, &lo)
}

/// Standard Gumbel samples `-log(-log(u))`.
pub fn gumbel(shape: &[usize], dtype: Dtype, key: Option<&Array>) -> Result<Array> {
    let u = uniform01(shape, dtype, key)?;
    negative(&log(&negative(&log(&u)?)?)?)
}

/// Laplace samples by the inverse CDF: `loc - scale * sign(u) * log(1 - |u|)`.
pub fn laplace(
    shape: &[usize],
    dtype: Dtype,
    loc: f64,
    scale: f64,
    key: Option<&Array>,
) -> Result<Array> {
    if !dtype.is_float() {
        return Err(crate::value_err!(
            "[laplace] Only real floating point types are supported."
        ));
    }
    // drawn in float32; `-1` of the output type promotes the rest (float64 computes in it)
    let u = uniform(
        &above_minus_one(Dtype::Float32)?,
        &scalar(1.0, Dtype::Float32)?,
        shape,
        Dtype::Float32,
        key,
    )?;
    let neg_abs = multiply(&scalar(-1.0, dtype)?, &abs(&u)?)?;
    let mut samples = astype(&multiply(&sign(&u)?, &log1p(&neg_abs)?)?, dtype)?;
    // MLX rounds loc and scale to float32 first
    let (loc, scale) = (loc as f32 as f64, scale as f32 as f64);
    if scale != 1.0 {
        samples = multiply(&scalar(scale, dtype)?, &samples)?;
    }
    if loc != 0.0 {
        samples = add(&scalar(loc, dtype)?, &samples)?;
    }
    Ok(samples)
}

/// How many categorical samples to draw.
#[derive(Clone, Debug)]
pub enum Draws<'a> {
    /// Logits' shape without `axis` (the default).
    One,
    /// The output shape, which the reduced logits' shape broadcasts to.
    Shape(&'a [usize]),
    /// `num` samples along a new last axis.
    Num(usize),
}

/// Samples from the categorical distributions of `logits` along `axis` (Gumbel-max).
pub fn categorical(
    logits: &Array,
    axis: i64,
    draws: Draws<'_>,
    key: Option<&Array>,
) -> Result<Array> {
    let nd = logits.ndim();
    let ax = normalize_axis("categorical", axis, nd).map_err(|_| {
        crate::index_err!("[categorical] Invalid axis {axis} for logits with {nd} dimensions.")
    })?;
    match draws {
        Draws::Num(n) => {
            let l = expand_dims(logits, &[-1])?;
            let mut shape: Shape = l.shape().into();
            *shape.last_mut().expect("expand_dims adds an axis") = n;
            let g = gumbel(&shape, Dtype::Float32, key)?;
            argmax(&add(&g, &l)?, Some(ax as i64), false)
        }
        Draws::One | Draws::Shape(_) => {
            let mut reduced: Shape = logits.shape().into();
            reduced.remove(ax);
            let shape: Shape = match draws {
                Draws::Shape(s) => s.into(),
                _ => reduced.clone(),
            };
            if broadcast_shapes(&shape, &reduced)? != shape {
                return Err(crate::value_err!(
                    "[categorical] Requested shape does not broadcast with the reduced logits shape."
                ));
            }
            let mut gshape = shape.clone();
            let offset = ax + shape.len() + 1 - nd;
            gshape.insert(offset, logits.shape()[ax]);
            let g = gumbel(&gshape, Dtype::Float32, key)?;
            argmax(&add(&g, logits)?, Some(offset as i64), false)
        }
    }
}

/// A random permutation of `0..n` (argsort of random bits).
pub fn permutation_n(n: usize, key: Option<&Array>) -> Result<Array> {
    super::sort::argsort(&bits(&[n], 4, key)?, Some(-1))
}

/// `x` with its entries along `axis` randomly permuted.
pub fn permutation(x: &Array, axis: i64, key: Option<&Array>) -> Result<Array> {
    let n = x
        .dim(axis)
        .map_err(|_| crate::index_err!("SmallVector out of range."))?;
    super::indexing::take(x, &permutation_n(n, key)?, Some(axis))
}
