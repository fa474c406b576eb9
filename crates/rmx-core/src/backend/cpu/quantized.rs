//! Affine quantization kernels: `quantize` (float rows to packed `uint32` + per-group
//! scale and bias, bit-identical to MLX 0.32.4) and `dequantize`, plus the bit unpacking
//! shared with the quantized matmul (`qmm.rs`).
//!
//! Layout (MLX's): element `j` of a row occupies bits `[j*bits, (j+1)*bits)` of the row's
//! little-endian bit stream, read as `uint32` words; every group of `group_size` (>= 32)
//! elements starts on a word boundary, so groups pack and unpack independently.

use super::loops::{par_rows, ConstPtr, SendPtr};
use crate::array::ArrayData;
use crate::dtype::Dtype;
use crate::element::Element;
use crate::error::Result;
use half::{bf16, f16};

/// Words holding one group of `group_size` elements of `bits` bits.
pub fn words_per_group(group_size: usize, bits: usize) -> usize {
    group_size * bits / 32
}

/// Unpacks `out.len()` (a multiple of 32) quantized values from `words` as f32.
#[inline(always)]
pub fn unpack(words: &[u32], bits: usize, out: &mut [f32]) {
    match bits {
        4 => unpack_pow2::<4, 8>(words, out),
        8 => unpack_pow2::<8, 4>(words, out),
        2 => unpack_pow2::<2, 16>(words, out),
        1 => unpack_pow2::<1, 32>(words, out),
        _ => unpack_stream(words, bits, out),
    }
}

/// `B` bits, `PER` = 32 / B values per word.
#[inline(always)]
fn unpack_pow2<const B: usize, const PER: usize>(words: &[u32], out: &mut [f32]) {
    let mask = (1u32 << B) - 1;
    for (o, &w) in out.chunks_exact_mut(PER).zip(words) {
        // a fixed-size view: no bounds checks, so the shifts vectorise
        let o: &mut [f32; PER] = o.try_into().unwrap();
        for (j, v) in o.iter_mut().enumerate() {
            // via i32 (values < 256): a signed convert vectorises on every x86 level
            *v = ((w >> (B * j)) & mask) as i32 as f32;
        }
    }
}

/// Any width: 32 elements span exactly `bits` words.
fn unpack_stream(words: &[u32], bits: usize, out: &mut [f32]) {
    let mask = (1u64 << bits) - 1;
    for (o, w) in out.chunks_exact_mut(32).zip(words.chunks_exact(bits)) {
        let (mut acc, mut have, mut next) = (0u64, 0usize, 0usize);
        for v in o.iter_mut() {
            if have < bits {
                acc |= (w[next] as u64) << have;
                next += 1;
                have += 32;
            }
            *v = (acc & mask) as f32;
            acc >>= bits;
            have -= bits;
        }
    }
}

/// Packs quantized values (each < 2^bits) into `out` (`q.len() * bits / 32` words).
fn pack(q: &[u32], bits: usize, out: &mut [u32]) {
    let (mut acc, mut have, mut next) = (0u64, 0usize, 0usize);
    for &v in q {
        acc |= (v as u64) << have;
        have += bits;
        if have >= 32 {
            out[next] = acc as u32;
            next += 1;
            acc >>= 32;
            have -= 32;
        }
    }
}

/// MLX's scale and bias of one group (f32 arithmetic, in MLX's order). With more than one
/// bit the scale is nudged so that the edge farther from zero is exactly representable
/// (`edge / q0`), which keeps 0 exact when it lies inside the range.
fn scale_bias(vals: &[f32], bits: usize) -> (f32, f32) {
    let (mut lo, mut hi) = (f32::INFINITY, f32::NEG_INFINITY);
    for &v in vals {
        lo = lo.min(v);
        hi = hi.max(v);
    }
    let n_bins = ((1u32 << bits) - 1) as f32;
    let eps = 1e-7f32;
    let scale = ((hi - lo) / n_bins).max(eps);
    if bits == 1 {
        return (scale, lo);
    }
    let lo_edge = lo.abs() > hi.abs();
    let scale = if lo_edge { scale } else { -scale };
    let edge = if lo_edge { lo } else { hi };
    let q0 = (edge / scale).round_ties_even();
    if q0 != 0.0 {
        (edge / q0, edge)
    } else {
        (scale, 0.0)
    }
}

/// Quantizes the last axis of `w` (float32/16/bf16, last dim a multiple of `group_size`):
/// returns the packed uint32 words and the scales and biases in `w`'s dtype.
pub fn quantize(w: &ArrayData, group_size: usize, bits: usize) -> Result<Vec<ArrayData>> {
    match w.dtype {
        Dtype::Float32 => quantize_typed::<f32>(w, group_size, bits),
        Dtype::Float16 => quantize_typed::<f16>(w, group_size, bits),
        Dtype::Bfloat16 => quantize_typed::<bf16>(w, group_size, bits),
        _ => Err(crate::runtime_err!(
            "[fast::Quantize::eval_cpu] Only supports floating point inputs"
        )),
    }
}

fn quantize_typed<T: Element + Into<f32> + FromF32>(
    w: &ArrayData,
    group_size: usize,
    bits: usize,
) -> Result<Vec<ArrayData>> {
    let w = if w.is_row_contiguous() {
        w.clone()
    } else {
        super::copy::copy(w)?
    };
    let nd = w.ndim();
    let k = w.shape[nd - 1];
    let mut qshape = w.shape.clone();
    qshape[nd - 1] = k * bits / 32;
    let mut sshape = w.shape.clone();
    sshape[nd - 1] = k / group_size;
    let wq = ArrayData::alloc(Dtype::Uint32, &qshape)?;
    let scales = ArrayData::alloc(T::DTYPE, &sshape)?;
    let biases = ArrayData::alloc(T::DTYPE, &sshape)?;
    let groups = w.numel() / group_size.max(1);
    if groups == 0 {
        return Ok(vec![wq, scales, biases]);
    }
    let wpg = words_per_group(group_size, bits);
    let src = ConstPtr(unsafe { w.ptr::<T>() });
    let (qp, sp, bp) = unsafe {
        (
            SendPtr(wq.ptr_mut::<u32>()),
            SendPtr(scales.ptr_mut::<T>()),
            SendPtr(biases.ptr_mut::<T>()),
        )
    };
    let n_bins = ((1u32 << bits) - 1) as f32;
    par_rows(groups, group_size, |g0, g1| {
        let mut vals = vec![0f32; group_size];
        let mut q = vec![0u32; group_size];
        for g in g0..g1 {
            // SAFETY: group g owns elements [g*gs, (g+1)*gs), words [g*wpg, (g+1)*wpg).
            let input =
                unsafe { std::slice::from_raw_parts(src.get().add(g * group_size), group_size) };
            for (v, &x) in vals.iter_mut().zip(input) {
                *v = x.into();
            }
            let (scale, bias) = scale_bias(&vals, bits);
            for (qi, &v) in q.iter_mut().zip(&vals) {
                // `as` saturates (NaN becomes 0)
                *qi = ((v - bias) / scale).round_ties_even().clamp(0.0, n_bins) as u32;
            }
            let out = unsafe { std::slice::from_raw_parts_mut(qp.get().add(g * wpg), wpg) };
            pack(&q, bits, out);
            unsafe {
                *sp.get().add(g) = T::from_f32(scale);
                *bp.get().add(g) = T::from_f32(bias);
            }
        }
    });
    Ok(vec![wq, scales, biases])
}

/// Conversion from f32 with round-to-nearest-even (the dtypes quantization produces).
pub trait FromF32: Copy {
    fn from_f32(v: f32) -> Self;
}
impl FromF32 for f32 {
    fn from_f32(v: f32) -> Self {
        v
    }
}
impl FromF32 for f16 {
    fn from_f32(v: f32) -> Self {
        f16::from_f32(v)
    }
}
impl FromF32 for bf16 {
    fn from_f32(v: f32) -> Self {
        crate::element::bf16_from_f32(v)
    }
}

/// `v` rounded to `dtype` (a float type no wider than f32) and back.
#[inline(always)]
fn round_to(v: f32, dtype: Dtype) -> f32 {
    match dtype {
        Dtype::Float16 => f16::from_f32(v).to_f32(),
        Dtype::Bfloat16 => crate::element::bf16_from_f32(v).to_f32(),
        _ => v,
    }
}

/// `q * scale + bias` per element, as MLX computes it: the product rounded to the scales'
/// dtype, the sum to `dtype` (the scales' and biases' promoted type; float64 computes in
/// float64). `wq`, `scales` and `biases` have equal batch shapes.
pub fn dequantize(
    wq: &ArrayData,
    scales: &ArrayData,
    biases: &ArrayData,
    group_size: usize,
    bits: usize,
    dtype: Dtype,
) -> Result<ArrayData> {
    let nd = wq.ndim();
    let kp = wq.shape[nd - 1];
    let k = kp * 32 / bits;
    let mut shape = wq.shape.clone();
    shape[nd - 1] = k;
    let wq = if wq.is_row_contiguous() {
        wq.clone()
    } else {
        super::copy::copy(wq)?
    };
    let wide = dtype == Dtype::Float64;
    let cdt = if wide { Dtype::Float64 } else { Dtype::Float32 };
    let s = super::copy::cast(scales, cdt)?;
    let b = super::copy::cast(biases, cdt)?;
    let (s_dt, out_dt) = (scales.dtype, dtype);
    let out = ArrayData::alloc(dtype, &shape)?;
    let groups = out.numel() / group_size;
    if groups == 0 {
        return Ok(out);
    }
    let wpg = words_per_group(group_size, bits);
    let wp = ConstPtr(unsafe { wq.ptr::<u32>() });
    par_rows(groups, group_size, |g0, g1| {
        let mut q = vec![0f32; group_size];
        for g in g0..g1 {
            let words = unsafe { std::slice::from_raw_parts(wp.get().add(g * wpg), wpg) };
            unpack(words, bits, &mut q);
            let o = g * group_size;
            unsafe {
                if wide {
                    let (sv, bv) = (*s.ptr::<f64>().add(g), *b.ptr::<f64>().add(g));
                    let dst = out.ptr_mut::<f64>().add(o);
                    for (i, &qi) in q.iter().enumerate() {
                        *dst.add(i) = qi as f64 * sv + bv;
                    }
                    continue;
                }
                let (sv, bv) = (*s.ptr::<f32>().add(g), *b.ptr::<f32>().add(g));
                let val = |qi: f32| round_to(round_to(qi * sv, s_dt) + bv, out_dt);
                match out_dt {
                    Dtype::Float16 => {
                        store(out.ptr_mut::<f16>().add(o), &q, |x| f16::from_f32(val(x)))
                    }
                    Dtype::Bfloat16 => store(out.ptr_mut::<bf16>().add(o), &q, |x| {
                        crate::element::bf16_from_f32(val(x))
                    }),
                    _ => store(out.ptr_mut::<f32>().add(o), &q, val),
                }
            }
        }
    });
    Ok(out)
}

#[inline(always)]
unsafe fn store<T>(dst: *mut T, q: &[f32], f: impl Fn(f32) -> T) {
    for (i, &x) in q.iter().enumerate() {
        *dst.add(i) = f(x);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pack_unpack_round_trip_every_width() {
        for bits in [1usize, 2, 3, 4, 5, 6, 8] {
            let q: Vec<u32> = (0..64u32).map(|i| (i * 7 + 3) % (1 << bits)).collect();
            let mut words = vec![0u32; 64 * bits / 32];
            pack(&q, bits, &mut words);
            let mut back = vec![0f32; 64];
            unpack(&words, bits, &mut back);
            let want: Vec<f32> = q.iter().map(|&v| v as f32).collect();
            assert_eq!(back, want, "bits {bits}");
        }
    }

    #[test]
    fn four_bit_layout_is_low_nibble_first() {
        let q: Vec<u32> = (0..32).map(|i| i % 16).collect();
        let mut words = vec![0u32; 4];
        pack(&q, 4, &mut words);
        assert_eq!(words[0], 0x7654_3210);
        assert_eq!(words[1], 0xfedc_ba98);
    }

    #[test]
    fn constant_zero_group_gets_mlx_eps_scale() {
        let zeros = [0f32; 32];
        assert_eq!(scale_bias(&zeros, 4), (-1e-7, 0.0));
    }
}
