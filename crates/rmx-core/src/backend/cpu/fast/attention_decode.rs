//! Attention of one query per head (a decode step) in f32, flash-decoding style: the keys
//! of each (batch, kv head) are split into a few ranges so both cores get work even with
//! 3 kv heads; a task streams its range of K and V once for all `rep` query heads that
//! share the kv head (scores, an exp pass, then `acc += p * V[j]`), and the partial
//! (max, sum, unnormalized output) of the ranges are merged after. No packing, no tiles.

use super::super::loops::{prefetch_lines, ConstPtr, SendPtr, PREFETCH_BYTES};
use crate::array::ArrayData;
use rayon::prelude::*;

/// Whether `decode` handles these operands: f32, one query, keys and values with unit
/// stride along the head dimension, no mask beyond causal (with one query, causal hides
/// nothing) and no sinks.
pub fn applies(q: &ArrayData, k: &ArrayData, v: &ArrayData) -> bool {
    q.dtype == crate::dtype::Dtype::Float32
        && q.shape[2] == 1
        && k.shape[2] > 0
        && q.strides[3] == 1
        && k.strides[3] == 1
        && v.strides[3] == 1
}

/// One task's result: per query row, the running max, the softmax sum and `sum p * V`.
struct Partial {
    m: Vec<f32>,
    l: Vec<f32>,
    acc: Vec<f32>,
}

/// Fills `out` (`[b, hq, 1, dv]`, row-contiguous).
pub fn decode(q: &ArrayData, k: &ArrayData, v: &ArrayData, scale: f32, out: &ArrayData) {
    let (b, hq, d) = (q.shape[0], q.shape[1], q.shape[3]);
    let (hkv, lk, dv) = (k.shape[1], k.shape[2], v.shape[3]);
    let rep = hq / hkv;
    let threads = rayon::current_num_threads().max(1);
    // at least two tasks per thread, at least 64 keys per task
    let splits = (2 * threads).div_ceil(b * hkv).clamp(1, lk.div_ceil(64));
    let per = lk.div_ceil(splits);
    let (qp, kp, vp) = unsafe {
        (
            ConstPtr(q.ptr::<f32>()),
            ConstPtr(k.ptr::<f32>()),
            ConstPtr(v.ptr::<f32>()),
        )
    };
    let shape = Shape {
        hkv,
        splits,
        per,
        lk,
        rep,
        d,
        dv,
        scale,
    };
    let (qs, ks, vs) = (&q.strides[..], &k.strides[..], &v.strides[..]);
    let level = super::super::fast_math::simd_level();
    let partials: Vec<Partial> = (0..b * hkv * splits)
        .into_par_iter()
        .map(|task| {
            let ops = (&qp, qs, &kp, ks, &vp, vs);
            // the loops below auto-vectorize at the width the CPU has
            #[cfg(target_arch = "x86_64")]
            match level {
                // SAFETY: the CPU has the features (simd_level).
                super::super::fast_math::SimdLevel::Avx512 => unsafe {
                    return task_avx512(&shape, ops, task);
                },
                super::super::fast_math::SimdLevel::Avx2Fma => unsafe {
                    return task_avx2(&shape, ops, task);
                },
                super::super::fast_math::SimdLevel::Baseline => {}
            }
            let _ = level;
            task_partial(&shape, ops, task)
        })
        .collect();
    let op = SendPtr(unsafe { out.ptr_mut::<f32>() });
    for (g, parts) in partials.chunks(splits).enumerate() {
        let (bi, kh) = (g / hkv, g % hkv);
        for r in 0..rep {
            let mx = parts.iter().fold(f32::NEG_INFINITY, |a, p| a.max(p.m[r]));
            let o = unsafe {
                let base = ((bi * hq + kh * rep + r) * dv) as isize;
                std::slice::from_raw_parts_mut(op.get().offset(base), dv)
            };
            o.fill(0.0);
            let mut total = 0f32;
            for p in parts {
                if p.m[r] == f32::NEG_INFINITY {
                    continue;
                }
                let w = (p.m[r] - mx).exp();
                total += w * p.l[r];
                for (a, &x) in o.iter_mut().zip(&p.acc[r * dv..(r + 1) * dv]) {
                    *a += w * x;
                }
            }
            let inv = 1.0 / total;
            for a in o.iter_mut() {
                *a *= inv;
            }
        }
    }
}

/// The sizes one task needs.
#[derive(Clone, Copy)]
struct Shape {
    hkv: usize,
    splits: usize,
    per: usize,
    lk: usize,
    rep: usize,
    d: usize,
    dv: usize,
    scale: f32,
}

/// q, its strides, k, its strides, v, its strides.
type Operands<'a> = (
    &'a ConstPtr<f32>,
    &'a [isize],
    &'a ConstPtr<f32>,
    &'a [isize],
    &'a ConstPtr<f32>,
    &'a [isize],
);

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx2,fma")]
unsafe fn task_avx512(sh: &Shape, ops: Operands, task: usize) -> Partial {
    task_partial(sh, ops, task)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn task_avx2(sh: &Shape, ops: Operands, task: usize) -> Partial {
    task_partial(sh, ops, task)
}

/// One task: a range of keys of one (batch, kv head), for its `rep` query heads.
#[inline(always)]
fn task_partial(sh: &Shape, ops: Operands, task: usize) -> Partial {
    let Shape {
        hkv,
        splits,
        per,
        lk,
        rep,
        d,
        dv,
        scale,
    } = *sh;
    let (qp, qs, kp, ks, vp, vs) = ops;
    let (bi, kh, sp) = (task / (hkv * splits), (task / splits) % hkv, task % splits);
    let (j0, j1) = (sp * per, ((sp + 1) * per).min(lk));
    let n = j1.saturating_sub(j0);
    // the element (i0, i1, j, 0) of an operand
    let address = |p: &ConstPtr<f32>, s: &[isize], i0: usize, i1: usize, j: usize| {
        let o = i0 as isize * s[0] + i1 as isize * s[1] + j as isize * s[2];
        p.get().wrapping_offset(o)
    };
    // SAFETY: every row read below is inside the operands' shapes and strides.
    let row = |p: &ConstPtr<f32>, s: &[isize], i0: usize, i1: usize, j: usize, w: usize| unsafe {
        std::slice::from_raw_parts(address(p, s, i0, i1, j), w)
    };
    let queries: Vec<&[f32]> = (0..rep)
        .map(|r| row(qp, qs, bi, kh * rep + r, 0, d))
        .collect();
    // rows this far ahead are prefetched (K and V rows are usually 256 bytes apart)
    let ahead =
        |s: &[isize], w: usize| PREFETCH_BYTES.div_ceil((s[2].unsigned_abs() * 4).max(w * 4));
    let (k_ahead, v_ahead) = (ahead(ks, d), ahead(vs, dv));
    let mut scores = vec![0f32; rep * n];
    for j in 0..n {
        if j + k_ahead < n {
            prefetch_lines(
                address(kp, ks, bi, kh, j0 + j + k_ahead) as *const u8,
                d * 4,
            );
        }
        let key = row(kp, ks, bi, kh, j0 + j, d);
        for (r, qr) in queries.iter().enumerate() {
            scores[r * n + j] = scale * dot(qr, key);
        }
    }
    let mut m = vec![f32::NEG_INFINITY; rep];
    let mut l = vec![0f32; rep];
    let mut tmp = Vec::with_capacity(n);
    for r in 0..rep {
        let s = &mut scores[r * n..(r + 1) * n];
        m[r] = s.iter().fold(f32::NEG_INFINITY, |a, &x| a.max(x));
        if m[r] == f32::NEG_INFINITY {
            s.fill(0.0);
            continue;
        }
        for x in s.iter_mut() {
            *x -= m[r];
        }
        super::attention::exp_f32(s, &mut tmp);
        l[r] = s.iter().sum();
    }
    let mut acc = vec![0f32; rep * dv];
    for j in 0..n {
        if j + v_ahead < n {
            prefetch_lines(
                address(vp, vs, bi, kh, j0 + j + v_ahead) as *const u8,
                dv * 4,
            );
        }
        let val = row(vp, vs, bi, kh, j0 + j, dv);
        for r in 0..rep {
            let p = scores[r * n + j];
            for (a, &x) in acc[r * dv..(r + 1) * dv].iter_mut().zip(val) {
                *a += p * x;
            }
        }
    }
    Partial { m, l, acc }
}

/// Dot product in 16 lanes (vectorizes; the sum order is fixed).
#[inline(always)]
fn dot(a: &[f32], b: &[f32]) -> f32 {
    let mut acc = [0f32; 16];
    let (ca, cb) = (a.chunks_exact(16), b.chunks_exact(16));
    let tail: f32 = ca
        .remainder()
        .iter()
        .zip(cb.remainder())
        .map(|(x, y)| x * y)
        .sum();
    for (x, y) in ca.zip(cb) {
        for l in 0..16 {
            acc[l] += x[l] * y[l];
        }
    }
    acc.iter().sum::<f32>() + tail
}
