//! Quantized matrix product `x @ dequantize(w).T` (or `x @ dequantize(w)`), computed in f32.
//!
//! Two strategies:
//! - **decode** (`transpose`, few rows of `x`): one pass over the packed weights, rows of
//!   `w` split across threads. Per group, the packed values are unpacked once into an L1
//!   buffer and each row of `x` adds `scale * dot(q, x_g) + bias * sum(x_g)`, with the
//!   per-group sums of `x` computed up front. The dot runs at AVX-512 / AVX2+FMA width
//!   when the CPU has it (run-time dispatch, as `fast_math`); 4- and 8-bit codes take
//!   the kernels of `qmm_vnni.rs` (AVX-512 VNNI: integer dot products against `x` split
//!   into three bytes per value), `qmm_avx512.rs` (AVX-512) or `qmm_avx2.rs` (AVX2 + FMA).
//! - **tiles** (more rows, or `transpose=false`): a block of `w` (rows, or group-aligned
//!   columns) is dequantized into an f32 scratch tile and multiplied by `gemm`; blocks are
//!   split across threads, so the dequantized matrix never exists whole.

use super::fast_math::{simd_level, SimdLevel};
use super::loops::{ConstPtr, SendPtr};
use super::quantized::{unpack, words_per_group};
use crate::array::ArrayData;
use crate::dtype::Dtype;
use crate::error::Result;
use rayon::prelude::*;

/// Up to this many rows of `x` use the decode strategy.
const DECODE_MAX_ROWS: usize = 16;

/// One product's operands, all f32/u32 and row-contiguous, with their sizes.
struct Problem<'a> {
    x: &'a [f32],
    w: &'a [u32],
    s: &'a [f32],
    b: &'a [f32],
    /// Half-precision scales and biases (f16 or bf16 bits) read as they are, instead of
    /// `s`/`b` (then empty): only the AVX-512 and AVX2 decode kernels take them
    /// (`half_scales_ok`).
    half: Option<(Dtype, &'a [u16], &'a [u16])>,
    m: usize,
    n: usize,
    k: usize,
    group_size: usize,
    bits: usize,
    transpose: bool,
}

/// `x` `[..., M, K]`, `wq` `[..., R, C]` (u32), `scales`/`biases` `[..., R, G]`, all of one
/// batch shape; x/scales/biases of one float dtype, which the output `[..., M, N]` takes.
pub fn quantized_matmul(
    x: &ArrayData,
    wq: &ArrayData,
    scales: &ArrayData,
    biases: &ArrayData,
    group_size: usize,
    bits: usize,
    transpose: bool,
) -> Result<ArrayData> {
    let out_dtype = x.dtype;
    if !matches!(out_dtype, Dtype::Float32 | Dtype::Float16 | Dtype::Bfloat16) {
        return Err(crate::runtime_err!(
            "[quantized_matmul] only floating types are supported"
        ));
    }
    let nd = x.ndim();
    let (m, k) = (x.shape[nd - 2], x.shape[nd - 1]);
    let (r, c) = (wq.shape[nd - 2], wq.shape[nd - 1]);
    let n = if transpose { r } else { c * 32 / bits };
    let mut out_shape = x.shape.clone();
    out_shape[nd - 1] = n;
    let out = ArrayData::alloc(Dtype::Float32, &out_shape)?;
    let batch: usize = out_shape[..nd - 2].iter().product();
    if k == 0 {
        unsafe { std::slice::from_raw_parts_mut(out.ptr_mut::<f32>(), out.numel()).fill(0.0) };
    } else if out.numel() > 0 {
        let x = f32_contiguous(x)?;
        // the decode kernels fold codes and biases into sums of x (q * x, bias * sum(x)),
        // where a zero code against an infinity gives NaN; dequantizing first (the tiles)
        // gives MLX's result, w * inf = ±inf
        let use_decode = transpose
            && m <= DECODE_MAX_ROWS
            && unsafe { std::slice::from_raw_parts(x.ptr::<f32>(), x.numel()) }
                .iter()
                .all(|v| v.is_finite());
        let half = use_decode && half_scales_ok(scales, biases, m, group_size, bits, transpose);
        let (s, b) = if half {
            (scales.clone(), biases.clone())
        } else {
            (f32_contiguous(scales)?, f32_contiguous(biases)?)
        };
        let w = if wq.is_row_contiguous() {
            wq.clone()
        } else {
            super::copy::copy(wq)?
        };
        let g = scales.shape[nd - 1];
        let (xs, ws, ss) = (m * k, r * c, r * g);
        for bi in 0..batch {
            let p = unsafe {
                Problem {
                    x: std::slice::from_raw_parts(x.ptr::<f32>().add(bi * xs), xs),
                    w: std::slice::from_raw_parts(w.ptr::<u32>().add(bi * ws), ws),
                    s: if half {
                        &[]
                    } else {
                        std::slice::from_raw_parts(s.ptr::<f32>().add(bi * ss), ss)
                    },
                    b: if half {
                        &[]
                    } else {
                        std::slice::from_raw_parts(b.ptr::<f32>().add(bi * ss), ss)
                    },
                    half: half.then(|| {
                        (
                            s.dtype,
                            std::slice::from_raw_parts(s.ptr::<u16>().add(bi * ss), ss),
                            std::slice::from_raw_parts(b.ptr::<u16>().add(bi * ss), ss),
                        )
                    }),
                    m,
                    n,
                    k,
                    group_size,
                    bits,
                    transpose,
                }
            };
            let y = SendPtr(unsafe { out.ptr_mut::<f32>().add(bi * m * n) });
            if use_decode {
                decode(&p, &y);
            } else {
                tiles(&p, &y);
            }
        }
    }
    if out_dtype == Dtype::Float32 {
        Ok(out)
    } else {
        super::copy::cast(&out, out_dtype)
    }
}

/// Whether the decode kernel reads these f16/bf16 scales and biases as they are (AVX-512
/// or AVX2 kernels), which spares a cast per call and half the scale bytes per token.
fn half_scales_ok(
    scales: &ArrayData,
    biases: &ArrayData,
    m: usize,
    group_size: usize,
    bits: usize,
    transpose: bool,
) -> bool {
    matches!(scales.dtype, Dtype::Float16 | Dtype::Bfloat16)
        && biases.dtype == scales.dtype
        && scales.is_row_contiguous()
        && biases.is_row_contiguous()
        && transpose
        && m <= DECODE_MAX_ROWS
        && decode_reads_half_scales(group_size, bits)
}

/// Whether a decode-sized `quantized_matmul` (few rows, `transpose`) with these codes reads
/// f16/bf16 scales natively on this CPU: callers (rmx-lm) then keep scales in half
/// precision rather than converting them to f32 at load.
pub fn decode_reads_half_scales(group_size: usize, bits: usize) -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        match simd_level() {
            SimdLevel::Avx512 => avx512::codes_supported(group_size, bits),
            SimdLevel::Avx2Fma => avx2::codes_supported(group_size, bits),
            SimdLevel::Baseline => false,
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        let _ = (group_size, bits);
        false
    }
}

/// `a` as row-contiguous f32: shared as is when it already is (no copy), else cast/copied.
fn f32_contiguous(a: &ArrayData) -> Result<ArrayData> {
    if a.dtype == Dtype::Float32 && a.is_row_contiguous() {
        Ok(a.clone())
    } else {
        super::copy::cast(a, Dtype::Float32)
    }
}

/// Rows of `w` split across threads; see the module docs.
fn decode(p: &Problem, y: &SendPtr<f32>) {
    let gs = p.group_size;
    let groups = p.k / gs;
    let level = simd_level();
    // enough rows per task to amortise scheduling, while giving every thread a few tasks
    let threads = rayon::current_num_threads().max(1);
    let rows_per_task = p.n.div_ceil(threads * 8).clamp(16, 256);
    let tasks = p.n.div_ceil(rows_per_task);
    #[cfg(target_arch = "x86_64")]
    if level == SimdLevel::Avx512 && avx512::supported(p) && vnni::available() {
        // SAFETY: the CPU has AVX-512 F/BW/VL (level).
        if let Some(x) = unsafe { vnni::arrange_x(p) } {
            (0..tasks).into_par_iter().for_each(|t| {
                let (r0, r1) = (t * rows_per_task, ((t + 1) * rows_per_task).min(p.n));
                // SAFETY: the CPU has AVX-512 F/BW/VL (level) and VNNI (available); each
                // task writes only its own output columns r0..r1 of y (m x n).
                unsafe { vnni::rows(p, &x, r0, r1, y) };
            });
            return;
        }
    }
    #[cfg(target_arch = "x86_64")]
    if level == SimdLevel::Avx512 && avx512::supported(p) {
        let x = avx512::arrange_x(p);
        (0..tasks).into_par_iter().for_each(|t| {
            let (r0, r1) = (t * rows_per_task, ((t + 1) * rows_per_task).min(p.n));
            // SAFETY: the CPU has AVX-512 F/BW/VL (level); each task writes only its own
            // output columns r0..r1 of y (m x n).
            unsafe { avx512::rows(p, &x, r0, r1, y) };
        });
        return;
    }
    #[cfg(target_arch = "x86_64")]
    if level != SimdLevel::Baseline && avx2::supported(p) {
        let x = avx2::arrange_x(p);
        (0..tasks).into_par_iter().for_each(|t| {
            let (r0, r1) = (t * rows_per_task, ((t + 1) * rows_per_task).min(p.n));
            // SAFETY: the CPU has AVX2+FMA (level); each task writes only its own output
            // columns r0..r1 of y (m x n).
            unsafe { avx2::rows(p, &x, r0, r1, y) };
        });
        return;
    }
    // per-group sums of x, for the bias term of the generic kernel below
    let xsum: Vec<f32> = p.x.chunks_exact(gs).map(|c| c.iter().sum()).collect();
    (0..tasks).into_par_iter().for_each(|t| {
        let (r0, r1) = (t * rows_per_task, ((t + 1) * rows_per_task).min(p.n));
        let mut acc = [0f32; DECODE_MAX_ROWS];
        let mut q = vec![0f32; gs];
        for row in r0..r1 {
            // SAFETY: each task writes only its own output columns r0..r1.
            unsafe { decode_row(level, p, row, groups, &xsum, &mut q, &mut acc) };
            for (mi, a) in acc[..p.m].iter().enumerate() {
                unsafe { *y.get().add(mi * p.n + row) = *a };
            }
        }
    });
}

/// The rows of `x` in the order the SIMD decode kernels read them: a chunk is `lanes`
/// words of `w`, lane `l` = word `l`, and code `j` of every word meets `x` at position
/// `chunk * lanes * P + j * lanes + l` (`P = 32 / bits` codes per word), multiplied by
/// `code_scale[j]`; each row is zero-padded to `padded_k` values.
#[cfg(target_arch = "x86_64")]
fn interleave_x(p: &Problem, lanes: usize, padded_k: usize, code_scale: &[f32]) -> Vec<f32> {
    let per_word = 32 / p.bits;
    let c = lanes * per_word;
    let mut values = vec![0f32; p.m * padded_k];
    // no divisions per element: this runs on every call, and for a decode-sized
    // product it is a noticeable share of the kernel's time
    for (src, dst) in p.x.chunks_exact(p.k).zip(values.chunks_exact_mut(padded_k)) {
        for (lane, word) in src.chunks(per_word).enumerate() {
            let (chunk, l) = (lane / lanes, lane % lanes);
            let out = &mut dst[chunk * c + l..];
            for ((&v, o), sc) in word
                .iter()
                .zip(out.iter_mut().step_by(lanes))
                .zip(code_scale)
            {
                *o = v * sc;
            }
        }
    }
    values
}

/// The packed codes, scales and biases the SIMD decode kernels read are all there.
#[cfg(target_arch = "x86_64")]
fn check_weights(p: &Problem) {
    let groups = p.k / p.group_size;
    assert!(p.w.len() >= p.n * p.k * p.bits / 32);
    match p.half {
        Some((_, s, b)) => assert!(s.len() >= p.n * groups && b.len() >= p.n * groups),
        None => assert!(p.s.len() >= p.n * groups && p.b.len() >= p.n * groups),
    }
}

/// `rows_m::<M, BITS>` over the rows of `x` in blocks of up to four (the AVX-512 kernels'
/// `rows`): 4- or 8-bit codes, `M` rows of `x` per pass over `w`.
#[cfg(target_arch = "x86_64")]
macro_rules! rows_by_four {
    ($rows_m:ident, $p:expr, $x:expr, $r0:expr, $r1:expr, $y:expr) => {{
        let mut mi0 = 0;
        while mi0 < $p.m {
            let mb = ($p.m - mi0).min(4);
            match (mb, $p.bits) {
                (1, 4) => $rows_m::<1, 4>($p, $x, mi0, $r0, $r1, $y),
                (2, 4) => $rows_m::<2, 4>($p, $x, mi0, $r0, $r1, $y),
                (3, 4) => $rows_m::<3, 4>($p, $x, mi0, $r0, $r1, $y),
                (4, 4) => $rows_m::<4, 4>($p, $x, mi0, $r0, $r1, $y),
                (1, 8) => $rows_m::<1, 8>($p, $x, mi0, $r0, $r1, $y),
                (2, 8) => $rows_m::<2, 8>($p, $x, mi0, $r0, $r1, $y),
                (3, 8) => $rows_m::<3, 8>($p, $x, mi0, $r0, $r1, $y),
                (4, 8) => $rows_m::<4, 8>($p, $x, mi0, $r0, $r1, $y),
                _ => unreachable!(),
            }
            mi0 += mb;
        }
    }};
}
#[cfg(target_arch = "x86_64")]
use rows_by_four;

#[cfg(target_arch = "x86_64")]
#[path = "qmm_avx512.rs"]
mod avx512;

#[cfg(target_arch = "x86_64")]
#[path = "qmm_avx2.rs"]
mod avx2;

#[cfg(target_arch = "x86_64")]
#[path = "qmm_vnni.rs"]
mod vnni;

/// # Safety
/// Calls a `target_feature` function only when `level` says the CPU has it.
unsafe fn decode_row(
    level: SimdLevel,
    p: &Problem,
    row: usize,
    groups: usize,
    xsum: &[f32],
    q: &mut [f32],
    acc: &mut [f32; DECODE_MAX_ROWS],
) {
    #[cfg(target_arch = "x86_64")]
    match level {
        SimdLevel::Avx512 => return decode_row_avx512(p, row, groups, xsum, q, acc),
        SimdLevel::Avx2Fma => return decode_row_avx2(p, row, groups, xsum, q, acc),
        SimdLevel::Baseline => {}
    }
    let _ = level;
    decode_row_impl::<false>(p, row, groups, xsum, q, acc)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512vl,avx512bw,avx512dq,avx2,fma")]
unsafe fn decode_row_avx512(
    p: &Problem,
    row: usize,
    groups: usize,
    xsum: &[f32],
    q: &mut [f32],
    acc: &mut [f32; DECODE_MAX_ROWS],
) {
    decode_row_impl::<true>(p, row, groups, xsum, q, acc)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn decode_row_avx2(
    p: &Problem,
    row: usize,
    groups: usize,
    xsum: &[f32],
    q: &mut [f32],
    acc: &mut [f32; DECODE_MAX_ROWS],
) {
    decode_row_impl::<true>(p, row, groups, xsum, q, acc)
}

#[inline(always)]
fn decode_row_impl<const FMA: bool>(
    p: &Problem,
    row: usize,
    groups: usize,
    xsum: &[f32],
    q: &mut [f32],
    acc: &mut [f32; DECODE_MAX_ROWS],
) {
    let gs = p.group_size;
    let wpg = words_per_group(gs, p.bits);
    let wrow = &p.w[row * groups * wpg..(row + 1) * groups * wpg];
    let (srow, brow) = (
        &p.s[row * groups..(row + 1) * groups],
        &p.b[row * groups..(row + 1) * groups],
    );
    acc[..p.m].fill(0.0);
    for g in 0..groups {
        unpack(&wrow[g * wpg..(g + 1) * wpg], p.bits, q);
        let (sc, bi) = (srow[g], brow[g]);
        for (mi, a) in acc[..p.m].iter_mut().enumerate() {
            let xg = &p.x[mi * p.k + g * gs..mi * p.k + (g + 1) * gs];
            *a += sc * dot::<FMA>(q, xg) + bi * xsum[mi * groups + g];
        }
    }
}

/// Dot product of two equal slices whose length is a multiple of 16.
#[inline(always)]
fn dot<const FMA: bool>(a: &[f32], b: &[f32]) -> f32 {
    let mut acc = [0f32; 16];
    for (ca, cb) in a.chunks_exact(16).zip(b.chunks_exact(16)) {
        // fixed-size views: no bounds checks, so the lanes vectorise
        let (ca, cb): (&[f32; 16], &[f32; 16]) = (ca.try_into().unwrap(), cb.try_into().unwrap());
        for l in 0..16 {
            acc[l] = if FMA {
                ca[l].mul_add(cb[l], acc[l])
            } else {
                acc[l] + ca[l] * cb[l]
            };
        }
    }
    let mut w = 8;
    while w > 0 {
        for l in 0..w {
            acc[l] += acc[l + w];
        }
        w /= 2;
    }
    acc[0]
}

/// Dequantizes whole groups: `out[i] = q[i] * scale[g] + bias[g]`.
fn dequantize_segment(
    words: &[u32],
    s: &[f32],
    b: &[f32],
    gs: usize,
    bits: usize,
    out: &mut [f32],
) {
    let wpg = words_per_group(gs, bits);
    for (g, o) in out.chunks_exact_mut(gs).enumerate() {
        unpack(&words[g * wpg..(g + 1) * wpg], bits, o);
        let (sc, bi) = (s[g], b[g]);
        for v in o.iter_mut() {
            *v = *v * sc + bi;
        }
    }
}

/// Blocks of `w` dequantized into f32 tiles and multiplied with `gemm`, one block per task.
fn tiles(p: &Problem, y: &SendPtr<f32>) {
    let (m, n, k, gs, bits) = (p.m, p.n, p.k, p.group_size, p.bits);
    let threads = rayon::current_num_threads().max(1);
    // block width: group-aligned columns (transpose=false) or rows; at most 256, and
    // small enough to give every thread a few blocks
    let align = if p.transpose { 8 } else { gs };
    let nb = (n.div_ceil(threads * 4).div_ceil(align) * align).clamp(align, 256.max(align));
    let blocks = n.div_ceil(nb);
    let (xp, yp) = (ConstPtr(p.x.as_ptr()), y);
    let wpg = words_per_group(gs, bits);
    let (kg, ng) = (k / gs, n / gs);
    (0..blocks).into_par_iter().for_each(|blk| {
        let (n0, n1) = (blk * nb, ((blk + 1) * nb).min(n));
        let w = n1 - n0;
        let mut tile = vec![0f32; w * k];
        if p.transpose {
            // rows n0..n1 of w, each dequantized to k values: tile[j * k + kk]
            for (j, row) in tile.chunks_exact_mut(k).enumerate() {
                let r = n0 + j;
                dequantize_segment(
                    &p.w[r * kg * wpg..(r + 1) * kg * wpg],
                    &p.s[r * kg..(r + 1) * kg],
                    &p.b[r * kg..(r + 1) * kg],
                    gs,
                    bits,
                    row,
                );
            }
        } else {
            // columns n0..n1 of every row kk of w: tile[kk * w + j]
            let (g0, g1) = (n0 / gs, n1 / gs);
            for (kk, row) in tile.chunks_exact_mut(w).enumerate() {
                dequantize_segment(
                    &p.w[kk * ng * wpg + g0 * wpg..kk * ng * wpg + g1 * wpg],
                    &p.s[kk * ng + g0..kk * ng + g1],
                    &p.b[kk * ng + g0..kk * ng + g1],
                    gs,
                    bits,
                    row,
                );
            }
        }
        let (rhs_cs, rhs_rs) = if p.transpose {
            (k as isize, 1)
        } else {
            (1, w as isize)
        };
        // SAFETY: the block writes only output columns n0..n1; strides describe the
        // row-contiguous x (m x k), the tile and y (m x n).
        unsafe {
            gemm::gemm(
                m,
                w,
                k,
                yp.get().add(n0),
                1,
                n as isize,
                false,
                xp.get(),
                1,
                k as isize,
                tile.as_ptr(),
                rhs_cs,
                rhs_rs,
                0.0f32,
                1.0f32,
                false,
                false,
                false,
                gemm::Parallelism::None,
            );
        }
    });
}
