//! Softmax over the last axis in one pass per row (max, exp-sum, scale), computed in
//! the compute type (f32 for half types). f32 rows use the SIMD exp kernel.

use super::loops::{par_rows, ConstPtr, SendPtr};
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
    let simd_exp =
        |s: &[f32], o: &mut [f32]| super::fast_math::map_f32::<super::fast_math::Exp>(s, o);
    match x.dtype {
        Dtype::Float16 => rows::<f16>(&x, &out, scalar_exp::<f32>),
        Dtype::Bfloat16 => rows::<bf16>(&x, &out, scalar_exp::<f32>),
        Dtype::Float32 => rows::<f32>(&x, &out, simd_exp),
        Dtype::Float64 => rows::<f64>(&x, &out, scalar_exp::<f64>),
        d => return Err(crate::value_err!("[softmax] Not supported for {d}.")),
    }
    Ok(out)
}

fn scalar_exp<C: Float>(s: &[C], o: &mut [C]) {
    for (o, &v) in o.iter_mut().zip(s) {
        *o = v.exp();
    }
}

fn rows<T: FloatElem + Send + Sync>(
    x: &ArrayData,
    out: &ArrayData,
    exp_row: impl Fn(&[T::C], &mut [T::C]) + Sync,
) {
    let n = x.numel();
    if n == 0 {
        return;
    }
    let len = *x.shape.last().unwrap_or(&1);
    let rows = n / len.max(1);
    let xp = ConstPtr(unsafe { x.ptr::<T>() });
    let op = SendPtr(unsafe { out.ptr_mut::<T>() });
    par_rows(rows, len, |r0, r1| {
        let (mut shifted, mut exps) = (Vec::with_capacity(len), vec![T::C::zero(); len]);
        for r in r0..r1 {
            let xs = unsafe { std::slice::from_raw_parts(xp.get().add(r * len), len) };
            let os = unsafe { std::slice::from_raw_parts_mut(op.get().add(r * len), len) };
            let m = xs.iter().fold(T::C::neg_infinity(), |m, v| m.max(v.up()));
            shifted.clear();
            shifted.extend(xs.iter().map(|v| v.up() - m));
            exp_row(&shifted, &mut exps);
            let sum = exps.iter().fold(T::C::zero(), |a, &b| a + b);
            let inv = T::C::one() / sum;
            for (o, &e) in os.iter_mut().zip(&exps) {
                *o = T::down(e * inv);
            }
        }
    });
}
