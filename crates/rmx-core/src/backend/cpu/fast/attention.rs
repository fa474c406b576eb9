//! Scaled dot-product attention, flash style: each task owns one (batch, head, block of
//! `BQ` queries) and walks the keys in blocks of `BK`, keeping a running max, a running
//! softmax denominator and an unnormalized output per query. Scores exist only as one
//! `BQ x BK` tile, so memory stays O(L) however long the sequences. Tiles multiply
//! through `gemm` on packed compute-type copies (f32 for half types); causal tasks stop
//! at their last visible key block. Masked-out (bool) scores take the dtype's lowest
//! finite value, as in MLX's definition, so a fully masked row averages all values.

use super::super::loops::{ConstPtr, SendPtr};
use super::super::math::FloatElem;
use crate::array::ArrayData;
use crate::backend::AttnMask;
use crate::dtype::{finfo, Dtype};
use crate::error::Result;
use gemm::Parallelism;
use half::{bf16, f16};
use num_traits::{Float, NumCast, One, Zero};
use rayon::prelude::*;

/// Queries per task.
const BQ: usize = 64;
/// Keys per tile.
const BK: usize = 256;

pub fn attention(
    q: &ArrayData,
    k: &ArrayData,
    v: &ArrayData,
    mask: AttnMask<'_>,
    sinks: Option<&ArrayData>,
    scale: f32,
) -> Result<ArrayData> {
    let (b, hq, lq, _) = (q.shape[0], q.shape[1], q.shape[2], q.shape[3]);
    let dv = v.shape[3];
    let out = ArrayData::alloc(q.dtype, &[b, hq, lq, dv])?;
    let unmasked = matches!(mask, AttnMask::None | AttnMask::Causal);
    if unmasked && sinks.is_none() && super::attention_decode::applies(q, k, v) {
        super::attention_decode::decode(q, k, v, scale, &out);
        return Ok(out);
    }
    match q.dtype {
        Dtype::Float16 => run::<f16>(q, k, v, mask, sinks, scale, &out, exp_f32),
        Dtype::Bfloat16 => run::<bf16>(q, k, v, mask, sinks, scale, &out, exp_f32),
        Dtype::Float32 => run::<f32>(q, k, v, mask, sinks, scale, &out, exp_f32),
        Dtype::Float64 => run::<f64>(q, k, v, mask, sinks, scale, &out, exp_f64),
        d => {
            return Err(crate::value_err!(
                "[scaled_dot_product_attention] Received unsupported type {d}."
            ))
        }
    }
    Ok(out)
}

/// `row = exp(row)` through the SIMD kernel (`tmp` is scratch).
pub(super) fn exp_f32(row: &mut [f32], tmp: &mut Vec<f32>) {
    tmp.clear();
    tmp.extend_from_slice(row);
    super::super::fast_math::map_f32::<super::super::fast_math::Exp>(tmp, row);
}

fn exp_f64(row: &mut [f64], tmp: &mut Vec<f64>) {
    tmp.clear();
    tmp.extend_from_slice(row);
    super::super::fast_math::map_f64::<super::super::fast_math::Exp>(tmp, row);
}

/// A strided 4-d operand: element pointer and strides.
#[derive(Clone, Copy)]
struct Operand<T> {
    p: ConstPtr<T>,
    s: [isize; 4],
}

impl<T: Copy> Operand<T> {
    fn of(x: &ArrayData) -> Operand<T> {
        let mut s = [0isize; 4];
        s.copy_from_slice(&x.strides[..4]);
        Operand {
            p: ConstPtr(unsafe { x.ptr::<T>() }),
            s,
        }
    }
    #[inline(always)]
    fn at(&self, i0: usize, i1: usize, i2: usize, i3: usize) -> T {
        let o = i0 as isize * self.s[0]
            + i1 as isize * self.s[1]
            + i2 as isize * self.s[2]
            + i3 as isize * self.s[3];
        unsafe { *self.p.get().offset(o) }
    }
    /// Rows `r0..r0+n` of matrix `[i0, i1]` (`width` columns) appended to `dst`, row-major,
    /// converted.
    #[allow(clippy::too_many_arguments)]
    fn pack<C>(
        &self,
        i0: usize,
        i1: usize,
        r0: usize,
        n: usize,
        width: usize,
        dst: &mut Vec<C>,
        up: impl Fn(T) -> C,
    ) {
        for r in r0..r0 + n {
            if self.s[3] == 1 {
                let row = unsafe {
                    std::slice::from_raw_parts(
                        self.p.get().offset(
                            i0 as isize * self.s[0]
                                + i1 as isize * self.s[1]
                                + r as isize * self.s[2],
                        ),
                        width,
                    )
                };
                dst.extend(row.iter().map(|&e| up(e)));
            } else {
                dst.extend((0..width).map(|c| up(self.at(i0, i1, r, c))));
            }
        }
    }
}

enum MaskOf<T> {
    None,
    Causal,
    Bool(Operand<bool>),
    Add(Operand<T>),
}

#[allow(clippy::too_many_arguments)]
fn run<T: FloatElem + Send + Sync>(
    q: &ArrayData,
    k: &ArrayData,
    v: &ArrayData,
    mask: AttnMask<'_>,
    sinks: Option<&ArrayData>,
    scale: f32,
    out: &ArrayData,
    exp_row: fn(&mut [T::C], &mut Vec<T::C>),
) where
    T::C: NumCast + 'static,
{
    let (b, hq, lq, d) = (q.shape[0], q.shape[1], q.shape[2], q.shape[3]);
    let (hkv, lk, dv) = (k.shape[1], k.shape[2], v.shape[3]);
    let op = SendPtr(unsafe { out.ptr_mut::<T>() });
    if out.numel() == 0 {
        return;
    }
    if lk == 0 {
        // an empty softmax weighs nothing: zeros, as MLX's definition gives
        unsafe { std::slice::from_raw_parts_mut(op.get(), out.numel()) }
            .fill(T::down(T::C::zero()));
        return;
    }
    let cv = |x: f64| -> T::C { NumCast::from(x).expect("finite") };
    let lowest = cv(finfo(q.dtype).map_or(f64::MIN, |f| f.min));
    let mask: MaskOf<T> = match mask {
        AttnMask::None => MaskOf::None,
        AttnMask::Causal => MaskOf::Causal,
        AttnMask::Array(m) if m.dtype == Dtype::Bool => MaskOf::Bool(Operand::of(m)),
        AttnMask::Array(m) => MaskOf::Add(Operand::of(m)),
    };
    let sinks: Option<Vec<T::C>> = sinks.map(super::vector_up::<T>);
    let (qo, ko, vo) = (
        Operand::<T>::of(q),
        Operand::<T>::of(k),
        Operand::<T>::of(v),
    );
    let rep = hq / hkv;
    // lower-right alignment: query i sees keys j <= i + lk - lq (none when that is < 0)
    let q_off = lk as isize - lq as isize;
    let qblocks = lq.div_ceil(BQ);
    let scale_c = cv(scale as f64);
    let up = |e: T| e.up();
    // one task per (batch, kv head, query block): the `rep` query heads that share a kv
    // head are rows of one product, so their keys and values are read and packed once
    (0..b * hkv * qblocks).into_par_iter().for_each_init(
        || {
            (
                Vec::new(),
                Vec::new(),
                Vec::new(),
                Vec::new(),
                Vec::new(),
                Vec::new(),
            )
        },
        |(qt, kt, vt, st, acc, tmp), task| {
            let (bi, kh, qb) = (
                task / (hkv * qblocks),
                (task / qblocks) % hkv,
                task % qblocks,
            );
            let q0 = qb * BQ;
            let nq = BQ.min(lq - q0);
            // row r: query head kh * rep + r / nq, query q0 + r % nq
            let head = |r: usize| kh * rep + r / nq;
            let nr = rep * nq;
            qt.clear();
            for hh in 0..rep {
                qo.pack(bi, kh * rep + hh, q0, nq, d, qt, up);
            }
            acc.clear();
            acc.resize(nr * dv, T::C::zero());
            let mut m = Vec::with_capacity(nr);
            let mut l = Vec::with_capacity(nr);
            for r in 0..nr {
                let (m0, l0) = match &sinks {
                    Some(s) => (s[head(r)], T::C::one()),
                    None => (T::C::neg_infinity(), T::C::zero()),
                };
                m.push(m0);
                l.push(l0);
            }
            // keys visible to this block's last query; a block with a fully masked row
            // (scored `lowest` throughout: a uniform average, as MLX) visits every key
            let k_end = match mask {
                MaskOf::Causal if q0 as isize + q_off >= 0 => {
                    ((q0 + nq) as isize + q_off).clamp(0, lk as isize) as usize
                }
                _ => lk,
            };
            let mut k0 = 0;
            while k0 < k_end {
                let nk = BK.min(k_end - k0);
                kt.clear();
                ko.pack(bi, kh, k0, nk, d, kt, up);
                vt.clear();
                vo.pack(bi, kh, k0, nk, dv, vt, up);
                st.clear();
                st.resize(nr * nk, T::C::zero());
                unsafe {
                    // S = scale * Q K^T
                    gemm::gemm(
                        nr,
                        nk,
                        d,
                        st.as_mut_ptr(),
                        1,
                        nk as isize,
                        false,
                        qt.as_ptr(),
                        1,
                        d as isize,
                        kt.as_ptr(),
                        d as isize,
                        1,
                        T::C::zero(),
                        scale_c,
                        false,
                        false,
                        false,
                        Parallelism::None,
                    );
                }
                for (i, (mi, li)) in m.iter_mut().zip(l.iter_mut()).enumerate() {
                    let row = &mut st[i * nk..(i + 1) * nk];
                    let (h, qi) = (head(i), q0 + i % nq);
                    match &mask {
                        MaskOf::None => {}
                        MaskOf::Causal => {
                            let last = qi as isize + q_off; // last visible key
                            for (j, s) in row.iter_mut().enumerate() {
                                if (k0 + j) as isize > last {
                                    *s = lowest;
                                }
                            }
                        }
                        MaskOf::Bool(mo) => {
                            for (j, s) in row.iter_mut().enumerate() {
                                if !mo.at(bi, h, qi, k0 + j) {
                                    *s = lowest;
                                }
                            }
                        }
                        MaskOf::Add(mo) => {
                            for (j, s) in row.iter_mut().enumerate() {
                                *s = *s + mo.at(bi, h, qi, k0 + j).up();
                            }
                        }
                    }
                    let mx = row.iter().fold(*mi, |a, &s| a.max(s));
                    if mx == T::C::neg_infinity() {
                        // nothing visible yet: the tile weighs zero
                        row.fill(T::C::zero());
                        continue;
                    }
                    let alpha = (*mi - mx).exp();
                    for s in row.iter_mut() {
                        *s = *s - mx;
                    }
                    exp_row(row, tmp);
                    let sum = row.iter().fold(T::C::zero(), |a, &s| a + s);
                    *li = *li * alpha + sum;
                    *mi = mx;
                    if alpha != T::C::one() {
                        for a in &mut acc[i * dv..(i + 1) * dv] {
                            *a = *a * alpha;
                        }
                    }
                }
                unsafe {
                    // O += P V
                    gemm::gemm(
                        nr,
                        dv,
                        nk,
                        acc.as_mut_ptr(),
                        1,
                        dv as isize,
                        true,
                        st.as_ptr(),
                        1,
                        nk as isize,
                        vt.as_ptr(),
                        1,
                        dv as isize,
                        T::C::one(),
                        T::C::one(),
                        false,
                        false,
                        false,
                        Parallelism::None,
                    );
                }
                k0 += nk;
            }
            for (hh, (arows, ls)) in acc.chunks(nq * dv).zip(l.chunks(nq)).enumerate() {
                let base = ((bi * hq + kh * rep + hh) * lq + q0) * dv;
                let os = unsafe { std::slice::from_raw_parts_mut(op.get().add(base), nq * dv) };
                let rows = os.chunks_mut(dv.max(1)).zip(arows.chunks(dv.max(1)));
                for ((orow, arow), &li) in rows.zip(ls.iter()) {
                    let inv = T::C::one() / li;
                    for (o, &a) in orow.iter_mut().zip(arow) {
                        *o = T::down(a * inv);
                    }
                }
            }
        },
    );
}
