//! The few array functions every model needs: RMS norm, RoPE, attention, and matmul by
//! an affine-quantized weight. TEMPORARY composite forms of `rmx_core::ops::fast` and
//! `quantized_matmul` until those land.

use crate::error::Result;
use rmx_core::{ops, Array, Dtype, Scalar};

pub fn rms_norm(x: &Array, weight: &Array, eps: f32) -> Result<Array> {
    let xf = ops::astype(x, Dtype::Float32)?;
    let ms = ops::mean(&ops::square(&xf)?, Some(&[-1]), true)?;
    let eps = Array::scalar(Scalar::Float(eps as f64));
    let inv = ops::rsqrt(&ops::add(&ms, &ops::astype(&eps, Dtype::Float32)?)?)?;
    let y = ops::multiply(&ops::multiply(&xf, &inv)?, weight)?;
    Ok(ops::astype(&y, x.dtype())?)
}

/// Rotates the first `inv_freq.len() * 2` features of `x` (..., L, D) by position
/// `offset + l`; `adjacent` pairs (2i, 2i+1), otherwise (i, i + dims/2).
pub fn rope(x: &Array, inv_freq: &[f32], adjacent: bool, offset: usize) -> Result<Array> {
    let nd = x.ndim();
    let l = x.shape()[nd - 2];
    let d = x.shape()[nd - 1];
    let half = inv_freq.len();
    let dims = half * 2;
    let mut cos = Vec::with_capacity(l * half);
    let mut sin = Vec::with_capacity(l * half);
    for p in 0..l {
        for f in inv_freq {
            let t = (offset + p) as f32 * f;
            cos.push(t.cos());
            sin.push(t.sin());
        }
    }
    let cos = Array::from_vec(cos, &[l, half])?;
    let sin = Array::from_vec(sin, &[l, half])?;
    let xf = ops::astype(x, Dtype::Float32)?;
    let mut lead: Vec<i64> = x.shape()[..nd - 1].iter().map(|&v| v as i64).collect();
    let mut stop: Vec<i64> = x.shape().iter().map(|&v| v as i64).collect();
    stop[nd - 1] = dims as i64;
    let rot = ops::slice(&xf, &vec![0; nd], &stop, None)?;
    let (x1, x2) = if adjacent {
        lead.extend([half as i64, 2]);
        let r = ops::reshape(&rot, &lead)?;
        let parts = ops::split_sections(&r, 2, -1)?;
        (ops::squeeze(&parts[0], Some(&[-1]))?, ops::squeeze(&parts[1], Some(&[-1]))?)
    } else {
        let parts = ops::split_sections(&rot, 2, -1)?;
        (parts[0].clone(), parts[1].clone())
    };
    let o1 = ops::subtract(&ops::multiply(&x1, &cos)?, &ops::multiply(&x2, &sin)?)?;
    let o2 = ops::add(&ops::multiply(&x1, &sin)?, &ops::multiply(&x2, &cos)?)?;
    let rotated = if adjacent {
        let s = ops::stack(&[o1, o2], -1)?;
        let mut shape: Vec<i64> = x.shape()[..nd - 1].iter().map(|&v| v as i64).collect();
        shape.push(dims as i64);
        ops::reshape(&s, &shape)?
    } else {
        ops::concatenate(&[o1, o2], Some(-1))?
    };
    let out = if dims < d {
        let mut start = vec![0i64; nd];
        start[nd - 1] = dims as i64;
        let stop: Vec<i64> = x.shape().iter().map(|&v| v as i64).collect();
        let rest = ops::slice(&xf, &start, &stop, None)?;
        ops::concatenate(&[rotated, rest], Some(-1))?
    } else {
        rotated
    };
    Ok(ops::astype(&out, x.dtype())?)
}

/// Attention of q (B, Hq, L, D) over k, v (B, Hkv, S, D) with grouped heads; `causal`
/// lets query l (at absolute position S - L + l) see keys up to its own position.
pub fn attention(q: &Array, k: &Array, v: &Array, scale: f32, causal: bool) -> Result<Array> {
    let (b, hq, l, d) = (q.shape()[0], q.shape()[1], q.shape()[2], q.shape()[3]);
    let (hkv, s) = (k.shape()[1], k.shape()[2]);
    let rep = hq / hkv;
    let q5 = ops::reshape(q, &[b as i64, hkv as i64, rep as i64, l as i64, d as i64])?;
    let k5 = ops::expand_dims(k, &[2])?;
    let v5 = ops::expand_dims(v, &[2])?;
    let scores = ops::matmul(&q5, &ops::swapaxes(&k5, -1, -2)?)?;
    let scores = ops::multiply(&ops::astype(&scores, Dtype::Float32)?, &Array::scalar(Scalar::Float(scale as f64)))?;
    let scores = ops::astype(&scores, Dtype::Float32)?;
    let scores = if causal && l > 1 {
        let mut m = vec![0f32; l * s];
        for i in 0..l {
            for j in (s - l + i + 1)..s {
                m[i * s + j] = f32::NEG_INFINITY;
            }
        }
        ops::add(&scores, &Array::from_vec(m, &[l, s])?)?
    } else {
        scores
    };
    let p = ops::astype(&ops::softmax(&scores, Some(&[-1]), true)?, v.dtype())?;
    let o = ops::matmul(&p, &v5)?;
    Ok(ops::reshape(&o, &[b as i64, hq as i64, l as i64, v.shape()[3] as i64])?)
}

/// The float weight (N, K) of an affine-quantized one: w_q (N, K*bits/32) uint32,
/// scales/biases (N, K/group_size).
pub fn dequantize(w: &Array, scales: &Array, biases: &Array, group_size: usize, bits: usize) -> Result<Array> {
    if 32 % bits != 0 {
        return Err(crate::invalid!("dequantize: {bits}-bit weights are not supported yet"));
    }
    let per = 32 / bits;
    let shifts: Vec<u32> = (0..per).map(|i| (i * bits) as u32).collect();
    let shifts = Array::from_vec(shifts, &[per])?;
    let wx = ops::expand_dims(w, &[-1])?;
    let mask = Array::from_vec(vec![((1u64 << bits) - 1) as u32], &[])?;
    let q = ops::bitwise_and(&ops::right_shift(&wx, &shifts)?, &mask)?;
    let mut shape: Vec<i64> = w.shape()[..w.ndim() - 1].iter().map(|&v| v as i64).collect();
    let k = w.shape()[w.ndim() - 1] * per;
    shape.extend([(k / group_size) as i64, group_size as i64]);
    let q = ops::reshape(&ops::astype(&q, Dtype::Float32)?, &shape)?;
    let s = ops::expand_dims(&ops::astype(scales, Dtype::Float32)?, &[-1])?;
    let bb = ops::expand_dims(&ops::astype(biases, Dtype::Float32)?, &[-1])?;
    let out = ops::add(&ops::multiply(&q, &s)?, &bb)?;
    shape.truncate(shape.len() - 2);
    shape.push(k as i64);
    Ok(ops::reshape(&out, &shape)?)
}

/// x @ dequantize(w).T
pub fn quantized_matmul(x: &Array, w: &Array, scales: &Array, biases: &Array, group_size: usize, bits: usize) -> Result<Array> {
    let wf = dequantize(w, scales, biases, group_size, bits)?;
    Ok(ops::matmul(x, &ops::transpose(&wf, None)?)?)
}
