//! AVX2 + FMA decode kernels (few rows of `x`, `transpose`) for 4- and 8-bit affine codes.
//!
//! The layout follows `qmm_avx512.rs` at half the width: a chunk is 8 words (`8 * P` codes,
//! `P = 32 / bits`) in one register, lane `l` = word `l`, and code `j` of every word is the
//! 8 codes at positions `P * l + j` of the chunk. `x` is rearranged once per call to match
//! (zero-padded to whole chunks); scales become per-lane vectors with one load and one
//! permute per chunk, and the biases meet per-group sums of `x` in a dot product per row.
//!
//! Codes become floats without a shift each: `words & (mask << s)` converted to f32 is
//! exactly `q * 2^s`, and the arranged `x` for that code is pre-multiplied by `2^-s`, so
//! each product `q * x` is the same f32 value as without the scaling (powers of two are
//! exact; only values of `x` below ~2^-110 would lose bits). Shifts stay small: codes in
//! the upper half-word are first moved down by one 16-bit shift per chunk, so `s < 16`.
//! That is an `and`, a conversion and an FMA per 8 codes instead of a broadcast, a
//! variable shift, an `and`, a conversion and an FMA: fewer ops than the kernel issues
//! per byte of weights it streams, which is what the 2-core machines of our benchmarks
//! are bound by.

use super::super::loops::{prefetch_lines, PREFETCH_BYTES};
use super::{Problem, SendPtr, DECODE_MAX_ROWS};
use std::arch::x86_64::*;

/// Shapes these kernels handle (the rest take the generic path).
pub fn supported(p: &Problem) -> bool {
    codes_supported(p.group_size, p.bits)
        && p.k.is_multiple_of(p.group_size)
        && p.m >= 1
        && p.m <= DECODE_MAX_ROWS
}

/// Code widths and group sizes these kernels read (f32, f16 or bf16 scales alike), on a
/// CPU with F16C besides AVX2 + FMA (every AVX2 CPU has it).
pub fn codes_supported(group_size: usize, bits: usize) -> bool {
    (bits == 4 || bits == 8)
        && (chunk_codes(bits).is_multiple_of(group_size)
            || group_size.is_multiple_of(chunk_codes(bits)))
        && group_size >= 8
        && std::arch::is_x86_feature_detected!("f16c")
}

/// Codes per chunk (8 words).
fn chunk_codes(bits: usize) -> usize {
    8 * 32 / bits
}

/// Row length of `arrange_x`'s output: `k` rounded up to whole chunks.
fn padded_k(p: &Problem) -> usize {
    p.k.div_ceil(chunk_codes(p.bits)) * chunk_codes(p.bits)
}

/// The power of two code `j` of a word comes out scaled by (see the module docs).
fn code_shift(bits: usize, j: usize) -> i32 {
    ((bits * j) % 16) as i32
}

/// `x` in the order the kernel reads it, each value scaled by `2^-code_shift`: `m` rows
/// of `padded_k` values, and per row the (unscaled) sum of `x` over each group, which
/// the biases multiply.
pub struct ArrangedX {
    values: Vec<f32>,
    group_sums: Vec<f32>,
}

pub fn arrange_x(p: &Problem) -> ArrangedX {
    let groups = p.k / p.group_size;
    let scale: Vec<f32> = (0..32 / p.bits)
        .map(|j| (-code_shift(p.bits, j) as f32).exp2())
        .collect();
    let values = super::interleave_x(p, 8, padded_k(p), &scale);
    let mut group_sums = vec![0f32; p.m * groups];
    for (src, sums) in
        p.x.chunks_exact(p.k)
            .zip(group_sums.chunks_exact_mut(groups))
    {
        for (sum, g) in sums.iter_mut().zip(src.chunks_exact(p.group_size)) {
            *sum = g.iter().sum();
        }
    }
    ArrangedX { values, group_sums }
}

/// Output columns `r0..r1` of `y` (m x n); `x` is `arrange_x(p)`.
///
/// # Safety
/// The CPU must have AVX2 and FMA; `supported(p)` must hold; `r1 <= p.n`; no other thread
/// may write columns `r0..r1` of `y`.
pub unsafe fn rows(p: &Problem, x: &ArrangedX, r0: usize, r1: usize, y: &SendPtr<f32>) {
    // two rows of x at a time keep the accumulators in the 16 registers
    let mut mi0 = 0;
    while mi0 < p.m {
        let mb = (p.m - mi0).min(2);
        match (mb, p.bits) {
            (1, 4) => rows_m::<1, 4, 4>(p, x, mi0, r0, r1, y),
            (2, 4) => rows_m::<2, 4, 2>(p, x, mi0, r0, r1, y),
            (1, 8) => rows_m::<1, 8, 4>(p, x, mi0, r0, r1, y),
            (2, 8) => rows_m::<2, 8, 2>(p, x, mi0, r0, r1, y),
            _ => unreachable!(),
        }
        mi0 += mb;
    }
}

/// Every read below stays inside the ranges this checks.
fn check(p: &Problem, x: &ArrangedX, mi0: usize, m: usize, r1: usize) {
    let groups = p.k / p.group_size;
    let kp = padded_k(p);
    assert!(r1 <= p.n && mi0 + m <= p.m && x.values.len() >= p.m * kp);
    assert!(x.group_sums.len() >= p.m * groups);
    super::check_weights(p);
}

/// A lane mask for `_mm256_maskload_*`: the first `count` lanes set.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn first_lanes(count: usize) -> __m256i {
    let idx = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
    _mm256_cmpgt_epi32(_mm256_set1_epi32(count as i32), idx)
}

/// Code `J` of every word as `q * 2^code_shift(BITS, J)` in f32; `hi` is `words >> 16`.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn code<const BITS: usize, const J: usize>(words: __m256i, hi: __m256i) -> __m256 {
    // written so that no instance shifts by 32 or more, even those never called
    let (src, at) = if (BITS * J) % 32 >= 16 {
        (hi, (BITS * J) % 16)
    } else {
        (words, (BITS * J) % 16)
    };
    let mask = _mm256_set1_epi32((((1u32 << BITS) - 1) << at) as i32);
    _mm256_cvtepi32_ps(_mm256_and_si256(src, mask))
}

/// Scales or biases of a problem: f32 values, or f16 / bf16 bits read as they are.
#[derive(Clone, Copy)]
enum Params {
    F32(*const f32),
    F16(*const u16),
    Bf16(*const u16),
}

impl Params {
    /// Scales and biases of `p`.
    fn of(p: &Problem) -> (Params, Params) {
        match p.half {
            Some((crate::dtype::Dtype::Float16, s, b)) => {
                (Params::F16(s.as_ptr()), Params::F16(b.as_ptr()))
            }
            Some((_, s, b)) => (Params::Bf16(s.as_ptr()), Params::Bf16(b.as_ptr())),
            None => (Params::F32(p.s.as_ptr()), Params::F32(p.b.as_ptr())),
        }
    }

    /// # Safety
    /// `i` stays inside the array (as `pointer::add`).
    unsafe fn add(self, i: usize) -> Params {
        match self {
            Params::F32(p) => Params::F32(p.add(i)),
            Params::F16(p) => Params::F16(p.add(i)),
            Params::Bf16(p) => Params::Bf16(p.add(i)),
        }
    }

    /// The first `N` values (1, 2, 4 or 8) as f32 in the low lanes; the other lanes are
    /// unspecified.
    #[inline]
    #[target_feature(enable = "avx2,fma,f16c")]
    unsafe fn load<const N: usize>(self) -> __m256 {
        let halves = |h: *const u16| match N {
            1 => _mm_cvtsi32_si128(*h as i32),
            2 => _mm_cvtsi32_si128((h as *const i32).read_unaligned()),
            4 => _mm_loadl_epi64(h as *const __m128i),
            _ => _mm_loadu_si128(h as *const __m128i),
        };
        match self {
            Params::F32(p) => match N {
                1 => _mm256_broadcast_ss(&*p),
                2 => _mm256_castps128_ps256(_mm_castpd_ps(_mm_load_sd(p as *const f64))),
                4 => _mm256_castps128_ps256(_mm_loadu_ps(p)),
                _ => _mm256_loadu_ps(p),
            },
            Params::F16(h) => _mm256_cvtph_ps(halves(h)),
            Params::Bf16(h) => bf16_to_f32(halves(h)),
        }
    }

    /// The first `count` (< 8) values as f32, zeros after them; reads nothing past them.
    #[inline]
    #[target_feature(enable = "avx2,fma,f16c")]
    unsafe fn load_first(self, count: usize) -> __m256 {
        match self {
            Params::F32(p) => _mm256_maskload_ps(p, first_lanes(count)),
            Params::F16(h) | Params::Bf16(h) => {
                let mut part = [0u16; 8];
                std::ptr::copy_nonoverlapping(h, part.as_mut_ptr(), count);
                let v = _mm_loadu_si128(part.as_ptr() as *const __m128i);
                match self {
                    Params::F16(_) => _mm256_cvtph_ps(v),
                    _ => bf16_to_f32(v),
                }
            }
        }
    }
}

/// Eight bf16 values (bits) as f32, exactly.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn bf16_to_f32(v: __m128i) -> __m256 {
    _mm256_castsi256_ps(_mm256_slli_epi32::<16>(_mm256_cvtepu16_epi32(v)))
}

/// Where a chunk's scales come from: the chunk's first group and how its lanes map onto
/// groups (a chunk starts on a group boundary or lies inside one group: `supported`).
/// Full chunks read their groups with one plain load (1, 2, 4 or 8 groups); a row's last
/// chunk, if it holds fewer words, reads only the groups it has.
struct ChunkScales {
    first_group: Vec<usize>,
    groups_per_chunk: usize,
    lane_group: __m256i,
}

impl ChunkScales {
    #[target_feature(enable = "avx2,fma,f16c")]
    unsafe fn new(p: &Problem, chunks: usize) -> ChunkScales {
        let (per_word, c, gs) = (32 / p.bits, chunk_codes(p.bits), p.group_size);
        let mut lanes = [0i32; 8];
        for (l, g) in lanes.iter_mut().enumerate() {
            *g = (per_word * l / gs) as i32;
        }
        ChunkScales {
            first_group: (0..chunks).map(|ch| ch * c / gs).collect(),
            groups_per_chunk: c.div_ceil(gs),
            lane_group: _mm256_loadu_si256(lanes.as_ptr() as *const _),
        }
    }

    /// The per-lane scales of chunk `ch` of the row whose scales start at `sp`; `full`:
    /// the chunk holds 8 words (every chunk but perhaps a row's last).
    #[inline]
    #[target_feature(enable = "avx2,fma,f16c")]
    unsafe fn get(&self, sp: Params, ch: usize, full: bool, groups: usize) -> __m256 {
        let g0 = *self.first_group.get_unchecked(ch);
        let at = sp.add(g0);
        let loaded = match (full, self.groups_per_chunk) {
            // an f32 scale loads broadcast already; the others go through the permute
            (true, 1) if matches!(at, Params::F32(_)) => return at.load::<1>(),
            (true, 1) => at.load::<1>(),
            (true, 2) => at.load::<2>(),
            (true, 4) => at.load::<4>(),
            (true, 8) => at.load::<8>(),
            _ => at.load_first(self.groups_per_chunk.min(groups - g0)),
        };
        _mm256_permutevar8x32_ps(loaded, self.lane_group)
    }
}

/// `sum_g b[g] * xs[g]` over `groups` values.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn bias_dot(b: Params, xs: *const f32, groups: usize) -> __m256 {
    let mut acc = _mm256_setzero_ps();
    let mut g = 0;
    while g + 8 <= groups {
        acc = _mm256_fmadd_ps(b.add(g).load::<8>(), _mm256_loadu_ps(xs.add(g)), acc);
        g += 8;
    }
    if g < groups {
        let m = first_lanes(groups - g);
        let (vb, vx) = (
            b.add(g).load_first(groups - g),
            _mm256_maskload_ps(xs.add(g), m),
        );
        acc = _mm256_fmadd_ps(vb, vx, acc);
    }
    acc
}

/// Rows `mi0..mi0 + M` of `x` against rows `r0..r1` of `w`, with `CHAINS` independent
/// FMA chains per row of `x` inside a chunk (FMA latency, not throughput, binds one row).
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn rows_m<const M: usize, const BITS: usize, const CHAINS: usize>(
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
    let xp = x.values.as_ptr().add(mi0 * kp);
    let xsp = x.group_sums.as_ptr().add(mi0 * groups);
    let chunks = kp / c;
    let scales = ChunkScales::new(p, chunks);
    let (sv, bv) = Params::of(p);
    // a row's last chunk may hold fewer words (and groups) than a full one
    let tail_words = words_per_row - (chunks - 1) * 8;
    let tail_mask = first_lanes(tail_words);
    let ahead = PREFETCH_BYTES.div_ceil(words_per_row * 4);
    for row in r0..r1 {
        let wr = p.w.as_ptr().add(row * words_per_row);
        if row + ahead < n {
            prefetch_lines(
                wr.wrapping_add(ahead * words_per_row) as *const u8,
                words_per_row * 4,
            );
        }
        let sp = sv.add(row * groups);
        let mut acc = [_mm256_setzero_ps(); M];
        for ch in 0..chunks {
            let wp = wr.add(ch * 8) as *const i32;
            let full = ch + 1 < chunks || tail_words == 8;
            let words = if full {
                _mm256_loadu_si256(wp as *const __m256i)
            } else {
                _mm256_maskload_epi32(wp, tail_mask)
            };
            let hi = _mm256_srli_epi32::<16>(words);
            let vs = scales.get(sp, ch, full, groups);
            let mut part = [[_mm256_setzero_ps(); CHAINS]; M];
            macro_rules! step {
                ($j:literal) => {
                    if $j < per_word {
                        let wv = code::<BITS, $j>(words, hi);
                        for (mi, pa) in part.iter_mut().enumerate() {
                            let xv = _mm256_loadu_ps(xp.add(mi * kp + ch * c + $j * 8));
                            pa[$j % CHAINS] = _mm256_fmadd_ps(wv, xv, pa[$j % CHAINS]);
                        }
                    }
                };
            }
            step!(0);
            step!(1);
            step!(2);
            step!(3);
            step!(4);
            step!(5);
            step!(6);
            step!(7);
            for (a, pa) in acc.iter_mut().zip(&part) {
                let mut dot = pa[0];
                for pc in &pa[1..] {
                    dot = _mm256_add_ps(dot, *pc);
                }
                *a = _mm256_fmadd_ps(vs, dot, *a);
            }
        }
        let bp = bv.add(row * groups);
        for (mi, a) in acc.iter().enumerate() {
            let v = _mm256_add_ps(*a, bias_dot(bp, xsp.add(mi * groups), groups));
            let h = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
            let h = _mm_add_ps(h, _mm_movehl_ps(h, h));
            let h = _mm_add_ss(h, _mm_shuffle_ps(h, h, 1));
            *y.get().add((mi0 + mi) * n + row) = _mm_cvtss_f32(h);
        }
    }
}
