//! RMS and layer normalization over the last axis, one pass per row (the row stays in
//! cache between its statistics and its output). Statistics accumulate in the compute
//! type over 8 lanes (vectorised); as MLX's definition does, the normalized value is
//! rounded to the dtype before the weight multiplies it and again before the bias adds.

use super::super::loops::{par_rows, ConstPtr, SendPtr};
use super::super::math::FloatElem;
use super::{dense_rows, vector_up, RowIndex};
use crate::array::ArrayData;
use crate::backend::NormKind;
use crate::dtype::Dtype;
use crate::error::Result;
use half::{bf16, f16};
use num_traits::{Float, NumCast, One, Zero};

pub fn norm(
    kind: NormKind,
    x: &ArrayData,
    weight: Option<&ArrayData>,
    bias: Option<&ArrayData>,
    eps: f32,
) -> Result<ArrayData> {
    let x = dense_rows(x)?;
    let out = ArrayData::alloc(x.dtype, &x.shape)?;
    match x.dtype {
        Dtype::Float16 => rows::<f16>(kind, &x, weight, bias, eps, &out),
        Dtype::Bfloat16 => rows::<bf16>(kind, &x, weight, bias, eps, &out),
        Dtype::Float32 => rows::<f32>(kind, &x, weight, bias, eps, &out),
        Dtype::Float64 => rows::<f64>(kind, &x, weight, bias, eps, &out),
        d => return Err(crate::value_err!("[norm] Received unsupported type {d}.")),
    }
    Ok(out)
}

/// Sum of `f(v)` over a row, in 8 independent lanes so the loop vectorises.
#[inline(always)]
fn lane_sum<T: FloatElem>(xs: &[T], f: impl Fn(T::C) -> T::C) -> T::C {
    let mut acc = [T::C::zero(); 8];
    let chunks = xs.chunks_exact(8);
    let tail = chunks.remainder();
    for c in chunks {
        for (a, &v) in acc.iter_mut().zip(c) {
            *a = *a + f(v.up());
        }
    }
    let mut s = tail.iter().fold(T::C::zero(), |a, &v| a + f(v.up()));
    for a in acc {
        s = s + a;
    }
    s
}

fn rows<T: FloatElem + Send + Sync>(
    kind: NormKind,
    x: &ArrayData,
    weight: Option<&ArrayData>,
    bias: Option<&ArrayData>,
    eps: f32,
    out: &ArrayData,
) where
    T::C: NumCast,
{
    let n = x.numel();
    if n == 0 {
        return;
    }
    let len = x.shape[x.ndim() - 1];
    let rows_n = n / len;
    let w = weight.map(vector_up::<T>);
    let b = bias.map(vector_up::<T>);
    let eps: T::C = NumCast::from(eps).unwrap_or_else(T::C::zero);
    let inv_len: T::C = T::C::one() / NumCast::from(len).unwrap_or_else(T::C::one);
    let index = RowIndex::new(x);
    let xp = ConstPtr(unsafe { x.ptr::<T>() });
    let op = SendPtr(unsafe { out.ptr_mut::<T>() });
    // the dtype's rounding of a compute value
    let round = |c: T::C| T::down(c).up();
    par_rows(rows_n, len, |r0, r1| {
        for r in r0..r1 {
            let xs = unsafe { std::slice::from_raw_parts(xp.get().offset(index.offset(r)), len) };
            let os = unsafe { std::slice::from_raw_parts_mut(op.get().add(r * len), len) };
            let (mu, rstd) = match kind {
                NormKind::Rms => {
                    let ms = lane_sum(xs, |v| v * v) * inv_len;
                    (T::C::zero(), (ms + eps).sqrt().recip())
                }
                NormKind::Layer => {
                    let mu = lane_sum(xs, |v| v) * inv_len;
                    let var = lane_sum(xs, |v| (v - mu) * (v - mu)) * inv_len;
                    (mu, (var + eps).sqrt().recip())
                }
            };
            match (&w, &b) {
                (None, None) => {
                    for (o, &v) in os.iter_mut().zip(xs) {
                        *o = T::down((v.up() - mu) * rstd);
                    }
                }
                (Some(w), None) => {
                    for ((o, &v), &wv) in os.iter_mut().zip(xs).zip(w) {
                        *o = T::down(round((v.up() - mu) * rstd) * wv);
                    }
                }
                (None, Some(b)) => {
                    for ((o, &v), &bv) in os.iter_mut().zip(xs).zip(b) {
                        *o = T::down(round((v.up() - mu) * rstd) + bv);
                    }
                }
                (Some(w), Some(b)) => {
                    for (((o, &v), &wv), &bv) in os.iter_mut().zip(xs).zip(w).zip(b) {
                        *o = T::down(round(round((v.up() - mu) * rstd) * wv) + bv);
                    }
                }
            }
        }
    });
}
