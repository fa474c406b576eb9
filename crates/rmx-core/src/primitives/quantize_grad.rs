//! The cotangent of `quantize`'s input, as MLX 0.32.4 computes it: the derivative of its
//! scale and bias formulas (the packed integers contribute nothing), reaching the elements
//! that are their group's max or min (ties share equally, as the max/min rules do).

use crate::array::Array;
use crate::dtype::Dtype;
use crate::error::Result;
use crate::ops;

fn f32s(v: f32) -> Array {
    Array::scalar(v)
}

/// `w`'s cotangent given those of the scales and biases (`[..., G]`).
pub fn quantize_vjp(
    w: &Array,
    ct_s: &Array,
    ct_b: &Array,
    gs: usize,
    bits: usize,
) -> Result<Array> {
    let f = Dtype::Float32;
    let mut grouped: Vec<i64> = w.shape().iter().map(|&d| d as i64).collect();
    let k = grouped.pop().unwrap_or(0);
    grouped.push(k / gs as i64);
    grouped.push(gs as i64);
    let grp = ops::astype(&ops::reshape(w, &grouped)?, f)?;
    let hi = ops::max(&grp, Some(&[-1]), true)?;
    let lo = ops::min(&grp, Some(&[-1]), true)?;
    let cs = ops::expand_dims(&ops::astype(ct_s, f)?, &[-1])?;
    let cb = ops::expand_dims(&ops::astype(ct_b, f)?, &[-1])?;
    let zero = f32s(0.0);
    let n_bins = f32s(((1u32 << bits) - 1) as f32);
    let eps = f32s(1e-7);
    let r = ops::divide(&ops::subtract(&hi, &lo)?, &n_bins)?;
    let live = ops::greater(&r, &eps)?;
    let (d_hi, d_lo) = if bits == 1 {
        // scale = max(hi - lo, eps), bias = lo
        let d = ops::where_(&live, &cs, &zero)?;
        (d.clone(), ops::subtract(&cb, &d)?)
    } else {
        // scale = edge / q0 and bias = edge when q0 != 0, else scale = ±max(r, eps), bias = 0
        let lo_edge = ops::greater(&ops::abs(&lo)?, &ops::abs(&hi)?)?;
        let s0 = ops::maximum(&r, &eps)?;
        let signed = ops::where_(&lo_edge, &s0, &ops::negative(&s0)?)?;
        let edge = ops::where_(&lo_edge, &lo, &hi)?;
        let q0 = ops::round(&ops::divide(&edge, &signed)?, 0)?;
        let nz = ops::not_equal(&q0, &zero)?;
        let safe_q0 = ops::where_(&nz, &q0, &f32s(1.0))?;
        let d_edge = ops::where_(&nz, &ops::add(&ops::divide(&cs, &safe_q0)?, &cb)?, &zero)?;
        let sign = ops::where_(&lo_edge, &f32s(1.0), &f32s(-1.0))?;
        let flat = ops::logical_and(&ops::logical_not(&nz)?, &live)?;
        let d_r = ops::where_(
            &flat,
            &ops::divide(&ops::multiply(&cs, &sign)?, &n_bins)?,
            &zero,
        )?;
        (
            ops::add(&ops::where_(&lo_edge, &zero, &d_edge)?, &d_r)?,
            ops::subtract(&ops::where_(&lo_edge, &d_edge, &zero)?, &d_r)?,
        )
    };
    let share = |ext: &Array, d: &Array| -> Result<Array> {
        let mask = ops::astype(&ops::equal(&grp, ext)?, f)?;
        let count = ops::sum(&mask, Some(&[-1]), true)?;
        ops::multiply(&mask, &ops::divide(d, &count)?)
    };
    let g = ops::add(&share(&hi, &d_hi)?, &share(&lo, &d_lo)?)?;
    let shape: Vec<i64> = w.shape().iter().map(|&d| d as i64).collect();
    ops::astype(&ops::reshape(&g, &shape)?, w.dtype())
}
