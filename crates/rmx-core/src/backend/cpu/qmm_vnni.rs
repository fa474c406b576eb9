//! AVX-512 VNNI decode kernels (few rows of `x`, `transpose`) for 4- and 8-bit affine
//! codes: integer dot products (`vpdpbusd`: 4 unsigned bytes times 4 signed bytes into an
//! int32 lane) instead of converting every code to a float.
//!
//! `x` is split per block of 32 values into three signed bytes per value: with
//! `s = max|x| / 127`, `x / s * 65536` rounded to an integer written in base 256 with digits `hi`, `mid`,
//! `lo` in -128..=127, so `x = s * (hi + mid / 256 + lo / 65536)` to within `s / 131072`
//! (`max|x| / 2^24`) plus the rounding of `x / s`: float32's precision relative to the
//! block's largest magnitude. (Two bytes, 16 bits, were tried
//! first: 3e-4 absolute errors on outputs of magnitude 20, outside the float32 tolerance
//! of the differential tests; one byte is llama.cpp's `q8` activations.) Blocks whose
//! largest magnitude is below 2^-100 go to the float kernel of `qmm_avx512.rs` instead
//! (`arrange_x` returns `None`); `x` holding NaN or infinity never reaches the decode
//! kernels (`quantized_matmul` dequantizes first).
//!
//! A chunk is 16 words of `w` in one register, lane `l` = word `l`. Per chunk and row of
//! `x`, each lane sums `q * x` over its codes as integer dot products with the three parts
//! (exact in int32), scales that by `s`, and adds `that * scale + sum(x) * bias` for the
//! group it lies in (scales and biases spread over the lanes by one permute each, from a
//! window of 16 groups loaded once).
//! - 4-bit: lane `l` holds codes `8l..8l+8` of the chunk (byte `b`: codes `8l+2b` low
//!   nibble, `8l+2b+1` high nibble). Two `and`s and a shift split the nibbles into bytes,
//!   and `x`'s bytes are stored de-interleaved (even positions, odd positions) to match:
//!   `A = (((hi·q) << 8 + mid·q) << 8) + lo·q` (|A| < 2^31), six `vpdpbusd` and two
//!   shifts per 128 codes and row of `x`, against eight FMAs (plus sixteen ops to make
//!   the floats) in the float kernel.
//! - 8-bit: the words are the unsigned bytes as they are; `(hi·q) << 8 + mid·q` and
//!   `lo·q` are summed as floats (the three-part integer would overflow): three
//!   `vpdpbusd` per 64 codes.

use super::super::loops::{prefetch_lines, PREFETCH_BYTES};
use super::avx512::{chunk_codes, padded_k};
use super::{Problem, SendPtr};
use std::arch::x86_64::*;

/// Values of `x` sharing one byte scale.
const X_BLOCK: usize = 32;
/// Bytes per value of `x`.
const PARTS: usize = 3;

/// Whether the CPU has the instructions (on top of `SimdLevel::Avx512`);
/// `RMX_QMM_VNNI=0` turns these kernels off, to compare with the float ones.
pub fn available() -> bool {
    use std::sync::atomic::{AtomicU8, Ordering};
    static HAS: AtomicU8 = AtomicU8::new(0); // 0 = not probed yet
    match HAS.load(Ordering::Relaxed) {
        1 => false,
        2 => true,
        _ => {
            let has = is_x86_feature_detected!("avx512vnni")
                && std::env::var("RMX_QMM_VNNI").as_deref() != Ok("0");
            HAS.store(if has { 2 } else { 1 }, Ordering::Relaxed);
            has
        }
    }
}

/// `x` as the kernel reads it (see the module docs), per row of `x`:
/// - `bytes`: per chunk, the `hi`, `mid` and `lo` bytes (`3 * padded_k` per row); for
///   4-bit codes each part is the chunk's even positions then its odd ones;
/// - `lane_scale`: per chunk, each lane's block scale `s` over the unit of the kernel's
///   integer sum (65536 for 4-bit codes, 256 for 8-bit), 16 per chunk;
/// - `lane_sums`: per chunk, the sum of `x` over each lane's codes.
pub struct ArrangedX {
    bytes: Vec<i8>,
    lane_scale: Vec<f32>,
    lane_sums: Vec<f32>,
}

/// `None` when a block is too small to scale (module docs).
///
/// # Safety
/// The CPU must have AVX-512 F/BW/VL (so the loops below vectorize and round in one
/// instruction: scalar `roundf` calls made this 6 % of a decode step).
#[target_feature(enable = "avx512f,avx512bw,avx512vl")]
pub unsafe fn arrange_x(p: &Problem) -> Option<ArrangedX> {
    let c = chunk_codes(p.bits);
    let kp = padded_k(p);
    let chunks = kp / c;
    let per_lane = 32 / p.bits;
    let mut bytes = vec![0i8; p.m * PARTS * kp];
    let mut lane_scale = vec![0f32; p.m * chunks * 16];
    let mut lane_sums = vec![0f32; p.m * chunks * 16];
    let mut parts = [vec![0i8; kp], vec![0i8; kp], vec![0i8; kp]];
    // what the kernel's integer sum counts in units of `s`
    let unit = if p.bits == 4 { 65536.0 } else { 256.0 };
    let mut block_scale = vec![0f32; kp / X_BLOCK];
    for mi in 0..p.m {
        let src = &p.x[mi * p.k..(mi + 1) * p.k];
        for part in parts.iter_mut() {
            part.fill(0);
        }
        for (blk, xs) in src.chunks(X_BLOCK).enumerate() {
            let amax = xs.iter().fold(0f32, |a, &v| a.max(v.abs()));
            if !amax.is_finite() {
                return None; // not reached: non-finite x takes the tiles
            }
            if amax == 0.0 {
                block_scale[blk] = 0.0;
                continue;
            }
            if amax < f32::from_bits(0x0D80_0000) {
                return None; // below 2^-100
            }
            let inv = 127.0 / amax;
            block_scale[blk] = amax / 127.0 / unit;
            let at = blk * X_BLOCK;
            for (i, &v) in xs.iter().enumerate() {
                // t = x / s in units of 2^-16, as base-256 digits in -128..=127
                // (wrapping byte casts); |t| <= 127, so the top digit fits too
                let units = ((v * inv) * 65536.0).round_ties_even() as i32;
                let l = units as i8;
                let upper = (units - l as i32) >> 8;
                let md = upper as i8;
                let h = ((upper - md as i32) >> 8) as i8;
                parts[0][at + i] = h;
                parts[1][at + i] = md;
                parts[2][at + i] = l;
            }
        }
        for (blk, s) in block_scale.iter_mut().enumerate() {
            if blk * X_BLOCK >= p.k {
                *s = 0.0;
            }
        }
        let row_bytes = &mut bytes[mi * PARTS * kp..(mi + 1) * PARTS * kp];
        for ch in 0..chunks {
            let c0 = ch * c;
            let out = &mut row_bytes[PARTS * c0..PARTS * (c0 + c)];
            for (o, part) in out.chunks_exact_mut(c).zip(&parts) {
                if p.bits == 4 {
                    let half = c / 2;
                    for j in 0..half {
                        o[j] = part[c0 + 2 * j];
                        o[half + j] = part[c0 + 2 * j + 1];
                    }
                } else {
                    o.copy_from_slice(&part[c0..c0 + c]);
                }
            }
            let at = (mi * chunks + ch) * 16;
            for l in 0..16 {
                let first = c0 + per_lane * l;
                lane_scale[at + l] = block_scale[first / X_BLOCK];
                let end = (first + per_lane).min(p.k);
                lane_sums[at + l] = if first < end {
                    src[first..end].iter().sum()
                } else {
                    0.0
                };
            }
        }
    }
    Some(ArrangedX {
        bytes,
        lane_scale,
        lane_sums,
    })
}

/// Output columns `r0..r1` of `y` (m x n); `x` is `arrange_x(p)`.
///
/// # Safety
/// The CPU must have AVX-512 F/BW/VL and VNNI; `qmm_avx512::supported(p)` must hold;
/// `r1 <= p.n`; no other thread may write columns `r0..r1` of `y`.
pub unsafe fn rows(p: &Problem, x: &ArrangedX, r0: usize, r1: usize, y: &SendPtr<f32>) {
    super::rows_by_four!(rows_m, p, x, r0, r1, y);
}

/// Every read below stays inside the ranges this checks.
fn check(p: &Problem, x: &ArrangedX, mi0: usize, m: usize, r1: usize) {
    let kp = padded_k(p);
    let chunks = kp / chunk_codes(p.bits);
    assert!(r1 <= p.n && mi0 + m <= p.m && x.bytes.len() >= p.m * PARTS * kp);
    assert!(x.lane_scale.len() >= p.m * chunks * 16 && x.lane_sums.len() >= p.m * chunks * 16);
    super::check_weights(p);
}

/// The `count` (at most 16) scales or biases from flat group index `at` as f32 (lanes past
/// `count` get 0): f32 from `full`, else the half-precision bits at `half` (`kind` as in
/// `qmm_avx512::Half`).
#[inline]
#[target_feature(enable = "avx512f,avx512bw,avx512vl")]
unsafe fn load_groups(
    kind: u8,
    full: *const f32,
    half: *const u16,
    at: usize,
    count: usize,
) -> __m512 {
    let m: __mmask16 = ((1u32 << count) - 1) as u16;
    if kind == 0 {
        _mm512_maskz_loadu_ps(m, full.add(at))
    } else {
        super::avx512::load_half(kind, half.add(at), m)
    }
}

/// Rows `mi0..mi0 + M` of `x` against rows `r0..r1` of `w`.
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512vnni")]
unsafe fn rows_m<const M: usize, const BITS: usize>(
    p: &Problem,
    x: &ArrangedX,
    mi0: usize,
    r0: usize,
    r1: usize,
    y: &SendPtr<f32>,
) {
    check(p, x, mi0, M, r1);
    let per_lane = 32 / BITS;
    let c = chunk_codes(BITS);
    let (k, n, gs) = (p.k, p.n, p.group_size);
    let (groups, words_per_row, kp) = (k / gs, k / per_lane, padded_k(p));
    let chunks = kp / c;
    let groups_per_chunk = c.div_ceil(gs);
    let mut lanes = [0i32; 16];
    for (l, g) in lanes.iter_mut().enumerate() {
        *g = (per_lane * l / gs) as i32;
    }
    let lane_group = _mm512_loadu_si512(lanes.as_ptr() as *const _);
    let (kind, hs, hb) = super::avx512::half_scales(p);
    let xb = x.bytes.as_ptr().add(mi0 * PARTS * kp);
    let xscale = x.lane_scale.as_ptr().add(mi0 * chunks * 16);
    let xsum = x.lane_sums.as_ptr().add(mi0 * chunks * 16);
    let nibbles = _mm512_set1_epi8(0x0F);
    // rows of codes this far ahead are prefetched
    let ahead = PREFETCH_BYTES.div_ceil(words_per_row * 4);
    for row in r0..r1 {
        let wr = p.w.as_ptr().add(row * words_per_row);
        if row + ahead < n {
            prefetch_lines(
                wr.wrapping_add(ahead * words_per_row) as *const u8,
                words_per_row * 4,
            );
        }
        let mut acc = [_mm512_setzero_ps(); M];
        let mut bias_acc = [_mm512_setzero_ps(); M];
        // scales and biases of groups window..window + 16
        let mut window = 0;
        let mut loaded = false;
        let (mut sv, mut bv) = (_mm512_setzero_ps(), _mm512_setzero_ps());
        for ch in 0..chunks {
            let w0 = ch * 16;
            let live = (words_per_row - w0).min(16);
            let words =
                _mm512_maskz_loadu_epi32(((1u32 << live) - 1) as u16, wr.add(w0) as *const i32);
            let g0 = ch * c / gs;
            if !loaded || g0 + groups_per_chunk > window + 16 {
                window = g0;
                loaded = true;
                let (at, count) = (row * groups + g0, (groups - g0).min(16));
                sv = load_groups(kind, p.s.as_ptr(), hs, at, count);
                bv = load_groups(kind, p.b.as_ptr(), hb, at, count);
            }
            let idx = _mm512_add_epi32(lane_group, _mm512_set1_epi32((g0 - window) as i32));
            let (vs, vb) = (
                _mm512_permutexvar_ps(idx, sv),
                _mm512_permutexvar_ps(idx, bv),
            );
            let (lo_n, hi_n) = if BITS == 4 {
                (
                    _mm512_and_si512(words, nibbles),
                    _mm512_and_si512(_mm512_srli_epi32::<4>(words), nibbles),
                )
            } else {
                (words, words)
            };
            for mi in 0..M {
                let xr = xb.add(mi * PARTS * kp + PARTS * ch * c) as *const __m512i;
                let part = |i: usize| _mm512_loadu_si512(xr.add(i));
                let zero = _mm512_setzero_si512();
                let a = if BITS == 4 {
                    // parts hi, mid, lo; each even positions then odd ones (64 bytes each)
                    let a = _mm512_dpbusd_epi32(zero, lo_n, part(0));
                    let a = _mm512_dpbusd_epi32(a, hi_n, part(1));
                    let a = _mm512_slli_epi32::<8>(a);
                    let a = _mm512_dpbusd_epi32(a, lo_n, part(2));
                    let a = _mm512_dpbusd_epi32(a, hi_n, part(3));
                    let a = _mm512_slli_epi32::<8>(a);
                    let a = _mm512_dpbusd_epi32(a, lo_n, part(4));
                    _mm512_cvtepi32_ps(_mm512_dpbusd_epi32(a, hi_n, part(5)))
                } else {
                    // parts hi, mid, lo (64 bytes each)
                    let a = _mm512_dpbusd_epi32(zero, words, part(0));
                    let a = _mm512_slli_epi32::<8>(a);
                    let a = _mm512_dpbusd_epi32(a, words, part(1));
                    let l = _mm512_dpbusd_epi32(zero, words, part(2));
                    _mm512_fmadd_ps(
                        _mm512_cvtepi32_ps(l),
                        _mm512_set1_ps(1.0 / 256.0),
                        _mm512_cvtepi32_ps(a),
                    )
                };
                let at = (mi * chunks + ch) * 16;
                // (sum * s / unit) first, so a tiny scale meets a value of x's magnitude
                let dot = _mm512_mul_ps(a, _mm512_loadu_ps(xscale.add(at)));
                acc[mi] = _mm512_fmadd_ps(dot, vs, acc[mi]);
                bias_acc[mi] = _mm512_fmadd_ps(vb, _mm512_loadu_ps(xsum.add(at)), bias_acc[mi]);
            }
        }
        for mi in 0..M {
            let v = _mm512_reduce_add_ps(_mm512_add_ps(acc[mi], bias_acc[mi]));
            *y.get().add((mi0 + mi) * n + row) = v;
        }
    }
}
