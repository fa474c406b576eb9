//! AVX-512 decode kernels (few rows of `x`, `transpose`) for 4- and 8-bit affine codes.
//!
//! A row of `w` is `k * bits / 32` words; a word holds `P = 32 / bits` consecutive codes,
//! lowest bits first. A chunk is 16 words (`16 * P` codes) in one register, lane `l` =
//! word `l`: code `j` of every word is 16 codes at positions `P * l + j` of the chunk.
//! `x` is rearranged once per call to match (and zero-padded to whole chunks), with the
//! sum of `x` over each lane's `P` positions. Lane `l` lies in group `P * l / group_size`
//! past the chunk's first, so scales and biases become per-lane vectors with one permute
//! per chunk.
//!
//! 4-bit codes become floats without a conversion instruction: code `j` is shifted to
//! the top of the mantissa and or-ed with the bits of 1.0 (one shift and one ternary-logic
//! op), which gives exactly `1 + q / 16`. Each lane accumulates `x * (1 + q / 16)` over
//! its chunk with one FMA per 16 codes and row of `x`; subtracting the lane's sum of `x`
//! and scaling by 16 leaves `dot(x, q)` for that lane, and each row then adds
//! `scale * dot(x, q) + bias * sum(x)` per lane. That is three vector ops per 16 codes
//! instead of five (shift, and, convert, dequantizing FMA, FMA): Zen 4 issues two
//! 512-bit ops per cycle, and the kernel is bound by that count, not by memory (576 x 576:
//! 23.8 -> 19.9 us on one core). The offset adds a few f32 roundings per lane; errors
//! against float64 stay 4-10x below MLX's own. 8-bit codes keep the dequantize-first
//! order (shift, and, convert, FMA): there the offset would be scaled by 256.
//! A table-lookup (`vpermps` on nibbles) version was bound by the 512-bit shuffle port.
//!
//! Rows end on group boundaries; a row's last chunk reads only its own words, scales and
//! biases (masked loads); the padding lanes hold code 0, giving `1.0 * 0` against the zero
//! padding of `x`.

use super::super::loops::{prefetch_lines, PREFETCH_BYTES};
use super::{Problem, SendPtr, DECODE_MAX_ROWS};
use std::arch::x86_64::*;

/// Shapes these kernels handle (the rest take the AVX2 or generic path).
pub fn supported(p: &Problem) -> bool {
    codes_supported(p.group_size, p.bits)
        && p.k.is_multiple_of(p.group_size)
        && p.m >= 1
        && p.m <= DECODE_MAX_ROWS
}

/// Code widths and group sizes these kernels read.
pub fn codes_supported(group_size: usize, bits: usize) -> bool {
    (bits == 4 || bits == 8) && group_size.is_multiple_of(32)
}

/// Codes per chunk (16 words).
pub(super) fn chunk_codes(bits: usize) -> usize {
    16 * 32 / bits
}

/// Row length of `arrange_x`'s output: `k` rounded up to whole chunks.
pub(super) fn padded_k(p: &Problem) -> usize {
    p.k.div_ceil(chunk_codes(p.bits)) * chunk_codes(p.bits)
}

/// `x` in the order the kernel reads it (see the module docs): `m` rows of `padded_k`
/// values, and per row the sum of each lane's `P` values (`padded_k / P` of them).
pub struct ArrangedX {
    values: Vec<f32>,
    lane_sums: Vec<f32>,
}

pub fn arrange_x(p: &Problem) -> ArrangedX {
    let per_word = 32 / p.bits;
    let kp = padded_k(p);
    let lanes_per_row = kp / per_word;
    let values = super::interleave_x(p, 16, kp, &[1.0; 8]);
    let mut lane_sums = vec![0f32; p.m * lanes_per_row];
    for (src, sums) in
        p.x.chunks_exact(p.k)
            .zip(lane_sums.chunks_exact_mut(lanes_per_row))
    {
        for (word, sum) in src.chunks(per_word).zip(sums.iter_mut()) {
            *sum = word.iter().sum();
        }
    }
    ArrangedX { values, lane_sums }
}

/// Output columns `r0..r1` of `y` (m x n); `x` is `arrange_x(p)`.
///
/// # Safety
/// The CPU must have AVX-512 F/BW/VL; `supported(p)` must hold; `r1 <= p.n`; no other
/// thread may write columns `r0..r1` of `y`.
pub unsafe fn rows(p: &Problem, x: &ArrangedX, r0: usize, r1: usize, y: &SendPtr<f32>) {
    super::rows_by_four!(rows_m, p, x, r0, r1, y);
}

/// Every read below stays inside the ranges this checks.
fn check(p: &Problem, x: &ArrangedX, mi0: usize, m: usize, r1: usize) {
    let kp = padded_k(p);
    assert!(r1 <= p.n && mi0 + m <= p.m && x.values.len() >= p.m * kp);
    assert!(x.lane_sums.len() >= p.m * kp * p.bits / 32);
    super::check_weights(p);
}

/// Half-precision scales of `p`: (0 = none, 1 = f16, 2 = bf16, their bits).
pub(super) type Half = (u8, *const u16, *const u16);

pub(super) fn half_scales(p: &Problem) -> Half {
    match p.half {
        Some((crate::dtype::Dtype::Float16, s, b)) => (1, s.as_ptr(), b.as_ptr()),
        Some((_, s, b)) => (2, s.as_ptr(), b.as_ptr()),
        None => (0, std::ptr::null(), std::ptr::null()),
    }
}

/// The half-precision values (`kind` as in `Half`) at `h` selected by `m`, as f32.
#[inline]
#[target_feature(enable = "avx512f,avx512bw,avx512vl")]
pub(super) unsafe fn load_half(kind: u8, h: *const u16, m: __mmask16) -> __m512 {
    let bits = _mm256_maskz_loadu_epi16(m, h as *const i16);
    if kind == 1 {
        _mm512_cvtph_ps(bits)
    } else {
        _mm512_castsi512_ps(_mm512_slli_epi32::<16>(_mm512_cvtepu16_epi32(bits)))
    }
}

/// Scales and biases of the `count` groups from flat group index `at`, spread over the
/// lanes by `lane_group` (lanes past `count` get 0); half-precision ones are converted
/// on the way (exactly).
#[inline]
#[target_feature(enable = "avx512f,avx512bw,avx512vl")]
unsafe fn lane_scales(
    p: &Problem,
    half: Half,
    at: usize,
    count: usize,
    lane_group: __m512i,
) -> (__m512, __m512) {
    let m: __mmask16 = ((1u32 << count) - 1) as u16;
    let (s, b) = if half.0 == 0 {
        (
            _mm512_maskz_loadu_ps(m, p.s.as_ptr().add(at)),
            _mm512_maskz_loadu_ps(m, p.b.as_ptr().add(at)),
        )
    } else {
        (
            load_half(half.0, half.1.add(at), m),
            load_half(half.0, half.2.add(at), m),
        )
    };
    (
        _mm512_permutexvar_ps(lane_group, s),
        _mm512_permutexvar_ps(lane_group, b),
    )
}

/// Code `J` (4 bits) of every word moved to the top of an f32 mantissa (bits 19..22).
#[inline]
#[target_feature(enable = "avx512f,avx512bw,avx512vl")]
unsafe fn code_to_mantissa<const J: usize>(words: __m512i) -> __m512i {
    match J {
        0 => _mm512_slli_epi32::<19>(words),
        1 => _mm512_slli_epi32::<15>(words),
        2 => _mm512_slli_epi32::<11>(words),
        3 => _mm512_slli_epi32::<7>(words),
        4 => _mm512_slli_epi32::<3>(words),
        5 => _mm512_srli_epi32::<1>(words),
        6 => _mm512_srli_epi32::<5>(words),
        _ => _mm512_srli_epi32::<9>(words),
    }
}

/// `1 + q / 16` for 4-bit code `J` of every word, as f32 (see the module docs).
#[inline]
#[target_feature(enable = "avx512f,avx512bw,avx512vl")]
unsafe fn code_plus_one<const J: usize>(words: __m512i) -> __m512 {
    let mask = _mm512_set1_epi32(0x0078_0000);
    let one = _mm512_set1_epi32(0x3F80_0000);
    // (code & mask) | one
    _mm512_castsi512_ps(_mm512_ternarylogic_epi32::<0xEA>(
        code_to_mantissa::<J>(words),
        mask,
        one,
    ))
}

/// The row sums of `acc`/`bias_acc` written to column `row` of rows `mi0..` of `y`.
#[target_feature(enable = "avx512f,avx512bw,avx512vl")]
unsafe fn finish<const M: usize>(
    acc: &[__m512; M],
    bias_acc: &[__m512; M],
    n: usize,
    mi0: usize,
    row: usize,
    y: &SendPtr<f32>,
) {
    for mi in 0..M {
        let v = _mm512_reduce_add_ps(_mm512_add_ps(acc[mi], bias_acc[mi]));
        *y.get().add((mi0 + mi) * n + row) = v;
    }
}

/// Rows `mi0..mi0 + M` of `x` against rows `r0..r1` of `w`.
#[target_feature(enable = "avx512f,avx512bw,avx512vl")]
unsafe fn rows_m<const M: usize, const BITS: usize>(
    p: &Problem,
    x: &ArrangedX,
    mi0: usize,
    r0: usize,
    r1: usize,
    y: &SendPtr<f32>,
) {
    check(p, x, mi0, M, r1);
    let per_word = 32 / BITS;
    let c = chunk_codes(BITS);
    let (k, n, gs) = (p.k, p.n, p.group_size);
    let (groups, words_per_row, kp) = (k / gs, k / per_word, padded_k(p));
    let groups_per_chunk = c.div_ceil(gs);
    let mut lanes = [0i32; 16];
    for (l, g) in lanes.iter_mut().enumerate() {
        *g = (per_word * l / gs) as i32;
    }
    let lane_group = _mm512_loadu_si512(lanes.as_ptr() as *const _);
    let code_scale = _mm512_set1_ps(16.0);
    let half = half_scales(p);
    let xp = x.values.as_ptr().add(mi0 * kp);
    let lanes_per_row = kp / per_word;
    let xsp = x.lane_sums.as_ptr().add(mi0 * lanes_per_row);
    // rows of codes this far ahead are prefetched (scales and biases: no difference measured)
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
        for ch in 0..kp / c {
            let w0 = ch * 16;
            let live = (words_per_row - w0).min(16);
            let words =
                _mm512_maskz_loadu_epi32(((1u32 << live) - 1) as u16, wr.add(w0) as *const i32);
            let g0 = ch * c / gs;
            let count = groups_per_chunk.min(groups - g0);
            let (vs, vb) = lane_scales(p, half, row * groups + g0, count, lane_group);
            if BITS == 8 {
                // 8-bit: dequantize each code (shift, and, convert, FMA), then one FMA per
                // row of x into the row's two accumulators
                macro_rules! code8 {
                    ($j:literal) => {
                        let q = _mm512_and_si512(
                            _mm512_srli_epi32::<{ 8 * $j }>(words),
                            _mm512_set1_epi32(0xFF),
                        );
                        let wv = _mm512_fmadd_ps(_mm512_cvtepi32_ps(q), vs, vb);
                        for mi in 0..M {
                            let xv = _mm512_loadu_ps(xp.add(mi * kp + ch * c + $j * 16));
                            if $j & 1 == 0 {
                                acc[mi] = _mm512_fmadd_ps(wv, xv, acc[mi]);
                            } else {
                                bias_acc[mi] = _mm512_fmadd_ps(wv, xv, bias_acc[mi]);
                            }
                        }
                    };
                }
                code8!(0);
                code8!(1);
                code8!(2);
                code8!(3);
                continue;
            }
            // 4-bit: codes as 1 + q/16, two accumulators per row of x for this chunk
            let vs = _mm512_mul_ps(vs, code_scale);
            let mut part = [[_mm512_setzero_ps(); 2]; M];
            macro_rules! code4 {
                ($j:literal) => {
                    let wv = code_plus_one::<$j>(words);
                    for (mi, pa) in part.iter_mut().enumerate() {
                        let xv = _mm512_loadu_ps(xp.add(mi * kp + ch * c + $j * 16));
                        pa[$j & 1] = _mm512_fmadd_ps(wv, xv, pa[$j & 1]);
                    }
                };
            }
            code4!(0);
            code4!(1);
            code4!(2);
            code4!(3);
            code4!(4);
            code4!(5);
            code4!(6);
            code4!(7);
            for mi in 0..M {
                let xs = _mm512_loadu_ps(xsp.add(mi * lanes_per_row + ch * 16));
                let dot = _mm512_sub_ps(_mm512_add_ps(part[mi][0], part[mi][1]), xs);
                acc[mi] = _mm512_fmadd_ps(vs, dot, acc[mi]);
                bias_acc[mi] = _mm512_fmadd_ps(vb, xs, bias_acc[mi]);
            }
        }
        finish::<M>(&acc, &bias_acc, n, mi0, row, y);
    }
}
