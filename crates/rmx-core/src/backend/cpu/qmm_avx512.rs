//! AVX-512 decode kernels (few rows of `x`, `transpose`) for 4- and 8-bit affine codes.
//!
//! A row of `w` is `k * bits / 32` words; a word holds `P = 32 / bits` consecutive codes,
//! lowest bits first. A chunk is 16 words (`16 * P` codes) in one register, lane `l` =
//! word `l`: code `j` of every word (`(W >> bits * j) & mask`, converted to f32) is 16
//! codes at positions `P * l + j` of the chunk. `x` is rearranged once per call to match
//! (and zero-padded to whole chunks). Lane `l` lies in group `P * l / group_size` past the
//! chunk's first, so scales and biases become per-lane vectors with one permute per
//! chunk. Each vector of 16 codes then costs a shift, an and, a convert and an FMA to
//! dequantize, and one FMA per row of `x`, and no shuffles: a table-lookup version
//! (`vpermps` on nibbles) was bound by the 512-bit shuffle port at ~9 cycles per 32 codes.
//!
//! No per-group reductions and no separate bias term: each row of `w` accumulates
//! `x * dequantized(w)` in two registers, reduced once at the end of the row. Rows end
//! on group boundaries; a row's last chunk reads only its own words, scales and biases
//! (masked loads), the rest of the lanes dequantize to 0 against zero padding of `x`.

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
fn chunk_codes(bits: usize) -> usize {
    16 * 32 / bits
}

/// Row length of `arrange_x`'s output: `k` rounded up to whole chunks.
fn padded_k(p: &Problem) -> usize {
    p.k.div_ceil(chunk_codes(p.bits)) * chunk_codes(p.bits)
}

/// `x` in the order the kernel reads it (see the module docs), `m` rows of `padded_k`.
pub fn arrange_x(p: &Problem) -> Vec<f32> {
    let per_word = 32 / p.bits;
    let c = chunk_codes(p.bits);
    let kp = padded_k(p);
    let mut out = vec![0f32; p.m * kp];
    for (src, dst) in p.x.chunks_exact(p.k).zip(out.chunks_exact_mut(kp)) {
        for (i, &v) in src.iter().enumerate() {
            let (chunk, r) = (i / c, i % c);
            dst[chunk * c + (r % per_word) * 16 + r / per_word] = v;
        }
    }
    out
}

/// Output columns `r0..r1` of `y` (m x n); `x` is `arrange_x(p)`.
///
/// # Safety
/// The CPU must have AVX-512 F/BW/VL; `supported(p)` must hold; `r1 <= p.n`; no other
/// thread may write columns `r0..r1` of `y`.
pub unsafe fn rows(p: &Problem, x: &[f32], r0: usize, r1: usize, y: &SendPtr<f32>) {
    let mut mi0 = 0;
    while mi0 < p.m {
        let mb = (p.m - mi0).min(4);
        match (mb, p.bits) {
            (1, 4) => rows_m::<1, 4>(p, x, mi0, r0, r1, y),
            (2, 4) => rows_m::<2, 4>(p, x, mi0, r0, r1, y),
            (3, 4) => rows_m::<3, 4>(p, x, mi0, r0, r1, y),
            (4, 4) => rows_m::<4, 4>(p, x, mi0, r0, r1, y),
            (1, 8) => rows_m::<1, 8>(p, x, mi0, r0, r1, y),
            (2, 8) => rows_m::<2, 8>(p, x, mi0, r0, r1, y),
            (3, 8) => rows_m::<3, 8>(p, x, mi0, r0, r1, y),
            (4, 8) => rows_m::<4, 8>(p, x, mi0, r0, r1, y),
            _ => unreachable!(),
        }
        mi0 += mb;
    }
}

/// Every read below stays inside the ranges this checks.
fn check(p: &Problem, x: &[f32], mi0: usize, m: usize, r1: usize) {
    let groups = p.k / p.group_size;
    assert!(r1 <= p.n && mi0 + m <= p.m && x.len() >= p.m * padded_k(p));
    assert!(p.w.len() >= p.n * p.k * p.bits / 32);
    match p.half {
        Some((_, s, b)) => assert!(s.len() >= p.n * groups && b.len() >= p.n * groups),
        None => assert!(p.s.len() >= p.n * groups && p.b.len() >= p.n * groups),
    }
}

/// Half-precision scales of `p`: (0 = none, 1 = f16, 2 = bf16, their bits).
type Half = (u8, *const u16, *const u16);

fn half_scales(p: &Problem) -> Half {
    match p.half {
        Some((crate::dtype::Dtype::Float16, s, b)) => (1, s.as_ptr(), b.as_ptr()),
        Some((_, s, b)) => (2, s.as_ptr(), b.as_ptr()),
        None => (0, std::ptr::null(), std::ptr::null()),
    }
}

/// The half-precision values (`kind` as in `Half`) at `h` selected by `m`, as f32.
#[inline]
#[target_feature(enable = "avx512f,avx512bw,avx512vl")]
unsafe fn load_half(kind: u8, h: *const u16, m: __mmask16) -> __m512 {
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

#[target_feature(enable = "avx512f,avx512bw,avx512vl")]
unsafe fn finish<const M: usize>(
    acc: &[[__m512; 2]; M],
    n: usize,
    mi0: usize,
    row: usize,
    y: &SendPtr<f32>,
) {
    for (mi, a) in acc.iter().enumerate() {
        let v = _mm512_reduce_add_ps(_mm512_add_ps(a[0], a[1]));
        *y.get().add((mi0 + mi) * n + row) = v;
    }
}

#[target_feature(enable = "avx512f,avx512bw,avx512vl")]
unsafe fn rows_m<const M: usize, const BITS: usize>(
    p: &Problem,
    x: &[f32],
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
    let mask = _mm512_set1_epi32(((1u32 << BITS) - 1) as i32);
    let half = half_scales(p);
    let xp = x.as_ptr().add(mi0 * kp);
    for row in r0..r1 {
        let wr = p.w.as_ptr().add(row * words_per_row);
        let mut acc = [[_mm512_setzero_ps(); 2]; M];
        for ch in 0..kp / c {
            let w0 = ch * 16;
            let live = (words_per_row - w0).min(16);
            let words =
                _mm512_maskz_loadu_epi32(((1u32 << live) - 1) as u16, wr.add(w0) as *const i32);
            let g0 = ch * c / gs;
            let count = groups_per_chunk.min(groups - g0);
            let (vs, vb) = lane_scales(p, half, row * groups + g0, count, lane_group);
            for j in 0..per_word {
                let shifted = _mm512_srlv_epi32(words, _mm512_set1_epi32((BITS * j) as i32));
                let q = if j + 1 == per_word {
                    shifted
                } else {
                    _mm512_and_si512(shifted, mask)
                };
                let wv = _mm512_fmadd_ps(_mm512_cvtepi32_ps(q), vs, vb);
                for (mi, a) in acc.iter_mut().enumerate() {
                    let xv = _mm512_loadu_ps(xp.add(mi * kp + ch * c + j * 16));
                    a[j & 1] = _mm512_fmadd_ps(wv, xv, a[j & 1]);
                }
            }
        }
        finish::<M>(&acc, n, mi0, row, y);
    }
}
