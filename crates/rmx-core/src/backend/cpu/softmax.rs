//! Softmax over the last axis in one pass per row (max, exp-sum, scale).

use super::loops::{par_range, ConstPtr, SendPtr};
use super::math::FloatElem;
use crate::array::ArrayData;
use crate::dtype::Dtype;
use crate::error::Result;
use half::{bf16, f16};
use num_traits::{Float, One, Zero};

pub fn softmax(x: &ArrayData) -> Result<ArrayData> {
    let x = if x.is_row_contiguous() {
        x.clone()
    } else {
        super::copy::copy(x)?
    };
    let out = ArrayData::alloc(x.dtype, &x.shape)?;
    match x.dtype {
        Dtype::Float16 => rows::<f16>(&x, &out),
        Dtype::Bfloat16 => rows::<bf16>(&x, &out),
        Dtype::Float32 => rows_f32(&x, &out),
        Dtype::Float64 => rows::<f64>(&x, &out),
        d => return Err(crate::value_err!("[softmax] Not supported for {d}.")),
    }
    Ok(out)
}

fn rows<T: FloatElem + Send + Sync>(x: &ArrayData, out: &ArrayData) {
    let n = x.numel();
    if n == 0 {
        return;
    }
    let len = *x.shape.last().unwrap_or(&1);
    let rows = n / len.max(1);
    let xp = ConstPtr(unsafe { x.ptr::<T>() });
    let op = SendPtr(unsafe { out.ptr_mut::<T>() });
    par_range(rows * len, |s, e| {
        for r in s.div_ceil(len)..e.div_ceil(len) {
            if r * len < s || r >= rows {
                continue;
            }
            let xs = unsafe { std::slice::from_raw_parts(xp.get().add(r * len), len) };
            let os = unsafe { std::slice::from_raw_parts_mut(op.get().add(r * len), len) };
            let m = xs.iter().fold(T::C::neg_infinity(), |m, v| m.max(v.up()));
            let mut sum = T::C::zero();
            let mut tmp: Vec<T::C> = Vec::with_capacity(len);
            for v in xs {
                let e = (v.up() - m).exp();
                sum = sum + e;
                tmp.push(e);
            }
            let inv = T::C::one() / sum;
            for (o, e) in os.iter_mut().zip(tmp) {
                *o = T::down(e * inv);
            }
        }
    });
}

/// f32 rows with the SIMD exp kernel.
fn rows_f32(x: &ArrayData, out: &ArrayData) {
    let n = x.numel();
    if n == 0 {
        return;
    }
    let len = *x.shape.last().unwrap_or(&1);
    let rows = n / len.max(1);
    let xp = ConstPtr(unsafe { x.ptr::<f32>() });
    let op = SendPtr(unsafe { out.ptr_mut::<f32>() });
    par_range(rows * len, |s, e| {
        for r in s.div_ceil(len)..e.div_ceil(len) {
            if r * len < s || r >= rows {
                continue;
            }
            let xs = unsafe { std::slice::from_raw_parts(xp.get().add(r * len), len) };
            let os = unsafe { std::slice::from_raw_parts_mut(op.get().add(r * len), len) };
            let m = xs.iter().fold(f32::NEG_INFINITY, |m, &v| m.max(v));
            for (o, &v) in os.iter_mut().zip(xs) {
                *o = v - m;
            }
            let shifted = os.to_vec();
            super::fast_math::map_f32::<super::fast_math::Exp>(&shifted, os);
            let sum: f32 = os.iter().sum();
            let inv = 1.0 / sum;
            os.iter_mut().for_each(|o| *o *= inv);
        }
    });
}
