//! `hadamard_transform`, as MLX 0.32.4: the Walsh-Hadamard transform along the last axis
//! for `n = m * 2^k`, `m` in (1, 12, 20, 28), scaled by `1/sqrt(n)` unless `scale` is
//! given. The matrix is MLX's `H_m ⊗ H_{2^k}` (Sylvester for the power of two, MLX's own
//! 12/20/28 tables, read off MLX with `hadamard_transform(eye(m), scale=1)`).
//!
//! A composite: `log2(2^k)` butterfly stages (add/subtract of the two halves of each
//! block, as ordinary ops) then one small matmul by the `m x m` table, so jvp and vmap
//! come for free; the vjp is MLX's (the same transform of the cotangent: exact for
//! `m` = 1 and 12, whose matrices are symmetric, not the true gradient for 20 and 28). Half types and the dtypes MLX converts (integers,
//! bool, complex: real part) compute in float32; float64 is refused as MLX's kernel does.
//! MLX accepts any n divisible by 12, 20 or 28 (36, 60, ...) and then computes garbage
//! past its buffers; rmx raises MLX's size error for those.

use crate::array::Array;
use crate::dtype::Dtype;
use crate::element::Scalar;
use crate::error::Result;
use crate::primitives::custom::{Fun, VjpFun};
use crate::shape::Shape;
use crate::transforms::CustomFunction;
use std::sync::Arc;

use super::elementwise::{add, astype, multiply, subtract};
use super::linalg::matmul;
use super::shape::{concatenate, reshape_exact, slice, swapaxes};

/// Rows `i` of MLX's `m x m` table: output `j` gets `+x_i` or `-x_i`.
const H12: [&str; 12] = [
    "+-++++++++++",
    "--+-+-+-+-+-",
    "+++-++----++",
    "+---+--+-++-",
    "+++++-++----",
    "+-+---+--+-+",
    "++--+++-++--",
    "+--++---+--+",
    "++----+++-++",
    "+--+-++---+-",
    "++++----+++-",
    "+-+--+-++---",
];
const H20: [&str; 20] = [
    "+-----++++--++--+--+",
    "-+---+-+++---+++-+--",
    "--+--++-+++---+-+-+-",
    "---+-+++-+++-----+-+",
    "----+++++--++--+--+-",
    "+----+----+-++---++-",
    "-+----+----+-++---++",
    "--+----+--+-+-++---+",
    "---+----+-++-+-++---",
    "----+----+-++-+-++--",
    "++--+-+--++----+----",
    "+++--+-+---+----+---",
    "-+++--+-+---+----+--",
    "--+++--+-+---+----+-",
    "+--+++--+-----+----+",
    "+-++-++--+-+++++----",
    "-+-+++++--+-+++-+---",
    "+-+-+-+++-++-++--+--",
    "++-+---++++++-+---+-",
    "-++-++--++++++-----+",
];
const H28: [&str; 28] = [
    "+--------++++--+-++-+-++--++",
    "-+--------+++++-+-++-+-++--+",
    "--+----+---+++-+-+-++++-++--",
    "---+---++---+++-+-+-+-++-++-",
    "----+--+++---+++-+-+---++-++",
    "-----+-++++----++-+-++--++-+",
    "------+-++++--+-++-+-++--++-",
    "++----++------+--++---+-++-+",
    "+++-----+------+--++-+-+-++-",
    "-+++-----+------+--++-+-+-++",
    "--+++-----+---+--+--++-+-+-+",
    "---+++-----+--++--+--++-+-+-",
    "----+++-----+--++--+--++-+-+",
    "+----++------+--++--++-++-+-",
    "+-+--+--++--+++------++----+",
    "-+-+--++-++--+-+-----+++----",
    "+-+-+--++-++----+-----+++---",
    "-+-+-+--++-++----+-----+++--",
    "--+-+-+--++-++----+-----+++-",
    "+--+-+-+--++-+-----+-----+++",
    "-+--+-+++--++-------++----++",
    "+--++--+-+--+---++++-+------",
    "-+--++--+-+--+---++++-+-----",
    "--+--+++-+-+--+---+++--+----",
    "+--+--+-+-+-+-++---++---+---",
    "++--+----+-+-++++---+----+--",
    "-++--+-+--+-+-++++--------+-",
    "--++--+-+--+-+-++++--------+",
];

/// `n = m * 2^k` with `m` in (1, 12, 20, 28), as (m, 2^k).
fn decompose(n: usize) -> Result<(usize, usize)> {
    for m in [1, 28, 20, 12] {
        if n.is_multiple_of(m) && (n / m).is_power_of_two() {
            return Ok((m, n / m));
        }
    }
    Err(crate::value_err!(
        "[hadamard] Only supports n = m*2^k where m in (1, 12, 20, 28)."
    ))
}

/// `I_m ⊗ H_p` along the last axis (`n = m p`, `p` a power of two), by butterflies: blocks
/// of `2h` become `[lo + hi, lo - hi]` for h = 1, 2, 4, ... < p.
fn butterflies(x: &Array, p: usize) -> Result<Array> {
    let lead: Shape = x.shape()[..x.ndim() - 1].into();
    let n = x.shape()[x.ndim() - 1];
    let mut y = x.clone();
    let mut h = 1;
    while h < p {
        let mut s3 = lead.clone();
        s3.extend_from_slice(&[n / (2 * h), 2 * h]);
        let blocks = reshape_exact(&y, s3)?;
        let nd = blocks.ndim();
        let mut start = vec![0i64; nd];
        let mut stop: Vec<i64> = blocks.shape().iter().map(|&d| d as i64).collect();
        stop[nd - 1] = h as i64;
        let lo = slice(&blocks, &start, &stop, None)?;
        start[nd - 1] = h as i64;
        stop[nd - 1] = 2 * h as i64;
        let hi = slice(&blocks, &start, &stop, None)?;
        let both = concatenate(&[add(&lo, &hi)?, subtract(&lo, &hi)?], Some(-1))?;
        let mut s = lead.clone();
        s.push(n);
        y = reshape_exact(&both, s)?;
        h *= 2;
    }
    Ok(y)
}

/// The `m x m` table as an array of `dtype`.
fn table(m: usize, dtype: Dtype) -> Result<Array> {
    let rows: &[&str] = match m {
        12 => &H12,
        20 => &H20,
        _ => &H28,
    };
    let vals: Vec<f32> = rows
        .iter()
        .flat_map(|r| r.bytes().map(|c| if c == b'+' { 1.0 } else { -1.0 }))
        .collect();
    astype(&Array::from_vec(vals, &[m, m])?, dtype)
}

/// The transform of a checked input: float32 compute, `out_dt` result.
fn transform(a: &Array, m: usize, p: usize, scale: f64, out_dt: Dtype) -> Result<Array> {
    let n = m * p;
    let x0 = if a.ndim() == 0 {
        reshape_exact(a, Shape::from_slice(&[1]))?
    } else {
        a.clone()
    };
    let x = astype(&x0, Dtype::Float32)?;
    let lead: Shape = x.shape()[..x.ndim() - 1].into();
    let mut y = butterflies(&x, p)?;
    if m > 1 {
        // [..., m, p]: out row j = sum_i table[i][j] * row i, i.e. table^T @ rows
        let mut s = lead.clone();
        s.extend_from_slice(&[m, p]);
        let rows = reshape_exact(&y, s)?;
        let t = swapaxes(&table(m, Dtype::Float32)?, 0, 1)?;
        let mut s = lead.clone();
        s.push(n);
        y = reshape_exact(&matmul(&t, &rows)?, s)?;
    }
    y = multiply(&y, &Array::scalar_of(Scalar::Float(scale), Dtype::Float32)?)?;
    let y = reshape_exact(&y, a.shape().into())?;
    astype(&y, out_dt)
}

pub fn hadamard_transform(a: &Array, scale: Option<f64>) -> Result<Array> {
    if a.size() == 0 {
        return Err(crate::value_err!(
            "[hadamard_transform] Does not support empty arrays."
        ));
    }
    let out_dt = match a.dtype() {
        Dtype::Float16 | Dtype::Bfloat16 | Dtype::Float32 => a.dtype(),
        Dtype::Float64 => {
            return Err(crate::value_err!("[hadamard] Unsupported type."));
        }
        _ => Dtype::Float32,
    };
    let n = if a.ndim() == 0 {
        1
    } else {
        a.shape()[a.ndim() - 1]
    };
    let (m, p) = decompose(n)?;
    let scale = scale.unwrap_or(1.0 / (n as f64).sqrt());
    if m == 1 || m == 12 {
        // symmetric matrices: the composite's own vjp is MLX's
        return transform(a, m, p, scale, out_dt);
    }
    // MLX's vjp applies the same transform to the cotangent, which is the transpose only
    // for symmetric matrices: for the 20/28 tables it is not the true gradient. Matched
    // (a custom vjp) and reported; jvp and vmap are the composite's (correct, as MLX's).
    let fun: Fun = Arc::new(move |x: &[Array]| Ok(vec![transform(&x[0], m, p, scale, out_dt)?]));
    let vjp: VjpFun = Arc::new(move |primals: &[Array], ct: &[Array], _o: &[Array]| {
        let g = transform(&ct[0], m, p, scale, ct[0].dtype())?;
        let pd = primals[0].dtype();
        Ok(vec![if pd.is_float() { astype(&g, pd)? } else { g }])
    });
    let out = CustomFunction::new(fun)
        .with_vjp(vjp)
        .call(std::slice::from_ref(a))?;
    Ok(out.into_iter().next().expect("one output"))
}
