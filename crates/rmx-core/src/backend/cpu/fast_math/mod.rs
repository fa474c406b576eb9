//! Branch-free, auto-vectorizable elementwise math for `f32` (plus `exp`/`ln` for `f64`).
//!
//! # How it works
//!
//! Every kernel is a pure `#[inline(always)]` function of one `f32` with **no
//! data-dependent branches and no library calls**. Special cases (NaN, ±inf, ±0,
//! overflow, underflow, out-of-domain) are handled by computing the regular path
//! for every lane and then *selecting* the special value with `if cond { a } else { b }`
//! on values, which LLVM turns into compares + blends. Integer bit manipulation
//! (`to_bits`/`from_bits`, shifts, adds) is used instead of `f32 -> i32` conversions,
//! `round`, `floor` or `ldexp`, because those either are not available in SSE2 or
//! lower to saturating/library code that blocks vectorization. Rounding to an
//! integer uses the "magic number" trick: `x + 1.5*2^23` leaves `round(x)` in the
//! low mantissa bits (valid for `|x| < 2^22`).
//!
//! A plain loop such as
//! ```ignore
//! for (o, x) in out.iter_mut().zip(inp) { *o = exp_f32(*x) }
//! ```
//! therefore compiles to SIMD code of whatever width the enclosing function is
//! compiled for (SSE2 by default on x86-64, AVX2/AVX-512 under `target_feature`).
//!
//! # FMA
//!
//! Each kernel is generic over `const F: bool` (the `*_k` functions). With
//! `F = true`, `a*b+c` is written as `f32::mul_add`, which becomes `vfmadd` **only
//! inside code compiled with the `fma` target feature**; elsewhere it becomes a call
//! to the C `fmaf` (correct but slow, and it blocks vectorization). The plain
//! `*_f32` entry points use `F = FMA_DEFAULT` (compile-time `fma` feature, or
//! aarch64), so they are always safe to use. Both variants are tested.
//!
//! # Dispatch
//!
//! [`map_f32`]`::<K>(inp, out)` with a marker type ([`Exp`], [`Log`], [`Sin`], …)
//! probes the CPU once (cached in an atomic) and runs an AVX-512, AVX2+FMA or
//! baseline loop. Alternatively write your own loop inside a
//! `#[target_feature(enable = "avx2,fma")] unsafe fn` calling the `*_k::<true>`
//! kernels (guarded by `is_x86_feature_detected!`).
//!
//! # Accuracy
//!
//! Max error in f32 ulps against the glibc f64 function (exp, expm1, ln, ln_1p,
//! log2, log10, sin, cos, tan, tanh), `1/(1+exp(-x))` in f64 (sigmoid) or
//! `libm::erf` (erf), on **all 2^32 inputs** (exp, log, sin, cos) or every 16th bit
//! pattern (the others); identical for the FMA and non-FMA variants unless two
//! numbers are given (no-FMA / FMA):
//!
//! | fn | max ulp | | fn | max ulp |
//! |---|---|---|---|---|
//! | exp | 0.99 / 1.01 | | sin, cos | 0.501 (\|x\| < 2e8) / 1.49 (\|x\| < 1e5) |
//! | | | | tan | 0.501 (\|x\| < 2e8) |
//! | expm1 | 1.55 / 1.43 | | tanh | 2.40 |
//! | log | 0.89 / 0.86 | | sigmoid | 2.40 |
//! | log1p | 0.86 / 0.82 | | erf | 1.30 / 1.25 |
//! | log2 | 1.06 / 0.95 | | exp_f64, ln_f64 | <= 1 f64 ulp from glibc (random 5M) |
//! | log10 | 1.55 / 1.01 | | | |
//!
//! NaN, ±inf, ±0 (sign kept where libm keeps it), overflow to inf, gradual
//! underflow and out-of-domain NaN follow libm; the tests check this.
//!
//! * `sin`/`cos` **with FMA** work in f32 (16 lanes per AVX-512 vector, twice the f64
//!   kernels'): `x - j pi/2` with a 3-part f32 pi/2, the first product exact by FMA, for
//!   `|x| < 1e5` (`SINCOS_F32_LIMIT`); beyond it the slice entry points recompute with
//!   libm (`fix_huge_trig_args`). 10M-element `sin`: 5.2 -> 3.1 ms (f64 -> f32), and
//!   about 15 of 40 vector ops fewer since the reduced argument is one f32 (1.49 ulp,
//!   as MLX's own `sin`, instead of 0.78 with a float-float argument).
//! * `sin`/`cos` without FMA, and `tan`, reduce the argument in **f64** with a 3-part Cody–Waite
//!   constant whose first two parts have 26 bits, so `j*P1` and `j*P2` are exact for
//!   `|x| < 2e8`; there the result is within 1 ulp (practically correctly rounded).
//!   For `|x| >= 2e8` a one-term f64 reduction is used instead: the result is still
//!   finite and in `[-1, 1]` (NaN for ±inf), but its absolute error grows like
//!   `|x| * 2^-53` (measured max abs error 1.6e-7 for |x| <= 1e9, 1.4e-6 for
//!   <= 1e10, 1.6e-4 for <= 1e12; meaningless, but bounded, past ~1e15). glibc
//!   does exact Payne–Hanek reduction there; we accept the difference.
//! * Subnormal inputs/outputs are handled (no FTZ/DAZ assumptions).
//!
//! # Sources of the approximations
//!
//! * `exp`, `expm1`: Cody–Waite reduction `x = n ln2 + r` with the two-part ln2 of
//!   Cephes `expf.c` (C1 = 0.693359375, C2 = -2.12194440e-4) and the degree-7
//!   minimax polynomial of Cephes `expf.c` (S. Moshier). `expm1` reuses the same
//!   polynomial as `expm1(r) = r + r^2 P(r)` and reconstructs
//!   `2^n (expm1(r) + 1) - 1` without cancellation.
//! * `log`, `log1p`, `log2`, `log10`: mantissa reduction to `[sqrt(1/2), sqrt(2))` as
//!   in musl `logf.c` (bit trick), then the degree-8 minimax polynomial of Cephes
//!   `logf.c` for `log(1+f) = f - f^2/2 + f^3 P(f)`. `log1p` adds the exact rounding
//!   error of `1+x` (Fast2Sum) back into `f`.
//! * `sin`, `cos`, `tan`: argument reduction (see above) and the minimax polynomials of
//!   FreeBSD msun `k_sinf.c` / `k_cosf.c` (Bruce D. Evans, errors < 2^-37.5 / 2^-34 on
//!   `[-pi/4, pi/4]`), in f64, or rounded to f32 for the f32 kernels; `tan = sin/cos` (or
//!   `-cos/sin`) in f64.
//! * `tanh(x) = e / (e + 2)` with `e = expm1(2|x|)`, exact algebra, sign restored.
//! * `sigmoid(x) = 1/(1+e)` for `x >= 0`, `e/(1+e)` for `x < 0`, `e = exp(-|x|)`, so
//!   that neither branch overflows and tiny results underflow gradually like libm.
//! * `erf`: two near-minimax polynomials fitted for this module (see `erf_k`):
//!   `x + x Q(x^2)` on `|x| < 0.875` and `1 - exp(-x^2) S(1/x - 0.7)` on `[0.875, 4)`.

#![allow(clippy::excessive_precision, clippy::unreadable_literal)]

// ---------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------

/// Whether the plain `*_f32` entry points use fused multiply-add (compile-time):
/// x86 with the `fma` target feature, or aarch64 (where FMA is baseline).
pub const FMA_DEFAULT: bool = cfg!(any(target_feature = "fma", target_arch = "aarch64"));

/// `a * b + c`, fused when `F`.
#[inline(always)]
fn mla<const F: bool>(a: f32, b: f32, c: f32) -> f32 {
    if F {
        a.mul_add(b, c)
    } else {
        a * b + c
    }
}

/// `a * b + c` in f64, fused when `F`.
#[inline(always)]
fn mla64<const F: bool>(a: f64, b: f64, c: f64) -> f64 {
    if F {
        a.mul_add(b, c)
    } else {
        a * b + c
    }
}

/// 1.5 * 2^23: adding it rounds any |x| < 2^22 to an integer kept in the low bits.
const MAGIC: f32 = 12582912.0;

/// Round to nearest integer (ties to even); returns it as f32 and as i32.
/// Valid for |x| < 2^22; NaN gives NaN (and garbage in the integer).
#[inline(always)]
fn round_magic(x: f32) -> (f32, i32) {
    let t = x + MAGIC;
    let n = t - MAGIC;
    let ni = (t.to_bits() as i32).wrapping_sub(MAGIC.to_bits() as i32);
    (n, ni)
}

/// 2^n for n in [-126, 127] by building the exponent field.
#[inline(always)]
fn pow2i(n: i32) -> f32 {
    f32::from_bits((n.wrapping_add(127) as u32) << 23)
}

/// `|x|` via the sign bit (one AND, no libm).
#[inline(always)]
fn absf(x: f32) -> f32 {
    f32::from_bits(x.to_bits() & 0x7fff_ffff)
}

/// Magnitude of `mag` with the sign of `sgn`.
#[inline(always)]
fn copysignf(mag: f32, sgn: f32) -> f32 {
    f32::from_bits((mag.to_bits() & 0x7fff_ffff) | (sgn.to_bits() & 0x8000_0000))
}

// ---------------------------------------------------------------------------
// exp / expm1
// ---------------------------------------------------------------------------

const LOG2E: f32 = std::f32::consts::LOG2_E;
/// Cody–Waite split of ln 2 (Cephes expf.c): C1 has 9 significant bits, so
/// `n * C1` is exact for |n| < 2^15.
const LN2_C1: f32 = 0.693359375;
const LN2_C2: f32 = -2.12194440e-4;

/// Cephes expf.c minimax polynomial P, highest degree first: exp(r) ~ 1 + r + r^2 * P(r),
/// |r| <= ln2/2.
const EXP_POLY: [f32; 6] = [
    1.9875691500e-4,
    1.3981999507e-3,
    8.3334519073e-3,
    4.1665795894e-2,
    1.6666665459e-1,
    5.0000001201e-1,
];

#[inline(always)]
fn exp_poly<const F: bool>(r: f32) -> f32 {
    let mut p = EXP_POLY[0];
    for c in &EXP_POLY[1..] {
        p = mla::<F>(p, r, *c);
    }
    p
}

/// Cody–Waite reduction: returns (n as f32, n as i32, r) with x = n*ln2 + r.
#[inline(always)]
fn exp_reduce<const F: bool>(x: f32) -> (f32, i32, f32) {
    let (n, ni) = round_magic(x * LOG2E);
    let r = mla::<F>(n, -LN2_C1, x);
    let r = mla::<F>(n, -LN2_C2, r);
    (n, ni, r)
}

/// e^x. Max error ~1 ulp (see tests). exp(x > 88.73) = inf, exp(x < -103.98) = 0,
/// gradual underflow in between, exp(NaN) = NaN.
#[inline(always)]
pub fn exp_k<const F: bool>(x: f32) -> f32 {
    // Clamp so that n = round(x/ln2) stays in [-150, 128]. Comparisons with NaN are
    // false, so NaN passes through and propagates.
    let xc = if x > 89.0 { 89.0 } else { x };
    let xc = if xc < -104.0 { -104.0 } else { xc };
    let (_, ni, r) = exp_reduce::<F>(xc);
    let r2 = r * r;
    let p = mla::<F>(exp_poly::<F>(r), r2, r) + 1.0;
    // Scale by 2^n in two steps (n1 + n2 = n, each within [-75, 64]) so that both
    // factors are normal numbers; the second multiply does the only rounding and
    // produces inf or a correctly-rounded subnormal as appropriate.
    let n1 = ni >> 1;
    let n2 = ni.wrapping_sub(n1);
    p * pow2i(n1) * pow2i(n2)
}

/// e^x - 1, accurate for small |x|. Max error ~1 ulp.
#[inline(always)]
pub fn expm1_k<const F: bool>(x: f32) -> f32 {
    // expm1(x) = -1 in f32 for x < -17.33; 89 overflows.
    let xc = if x > 89.0 { 89.0 } else { x };
    let xc = if xc < -30.0 { -30.0 } else { xc };
    let (_, ni, r) = exp_reduce::<F>(xc);
    // expm1(r) = r + r^2 P(r): same polynomial, without the "+1" (n = 0 keeps r = x
    // exactly, so tiny x are returned with full relative accuracy).
    let e = mla::<F>(exp_poly::<F>(r), r * r, r);
    // 2^n (e + 1) - 1 = 2^n2 * (2^n1 * e + (2^n1 - 2^-n2)) with n = n1 + n2.
    // The constant 2^n1 - 2^-n2 is exact for |n| <= 23, and beyond that its
    // rounding is negligible relative to the result. No cancellation for n = 0.
    let n1 = ni >> 1;
    let n2 = ni.wrapping_sub(n1);
    let s1 = pow2i(n1);
    let c = s1 - pow2i(n2.wrapping_neg());
    let y = mla::<F>(s1, e, c) * pow2i(n2);
    // Keep the sign of zero: expm1(-0) = -0.
    if x == 0.0 {
        x
    } else {
        y
    }
}

// ---------------------------------------------------------------------------
// log family
// ---------------------------------------------------------------------------

const SQRT_HALF_BITS: u32 = 0x3f35_04f3; // bits of sqrt(1/2)

/// Split a positive finite `u` as u = 2^k * m, m in [sqrt(1/2), sqrt(2)) (musl
/// logf.c bit trick: bias the bits so that the exponent field rolls over at
/// sqrt(2) instead of 2). Returns (k, m). Garbage for u <= 0, inf, NaN.
#[inline(always)]
fn log_split(bits: u32) -> (i32, f32) {
    let ix = bits.wrapping_add(0x3f80_0000 - SQRT_HALF_BITS);
    let k = ((ix >> 23) as i32).wrapping_sub(127);
    let m = f32::from_bits((ix & 0x007f_ffff).wrapping_add(SQRT_HALF_BITS));
    (k, m)
}

/// Cephes logf.c minimax: log(1+f) = f - f^2/2 + f^3 P(f) for f in
/// [sqrt(1/2)-1, sqrt(2)-1]. Returns the tail `-f^2/2 + f^3 P(f)` (without `f`).
#[inline(always)]
fn log1p_tail<const F: bool>(f: f32) -> f32 {
    let z = f * f;
    let p = 7.0376836292e-2;
    let p = mla::<F>(p, f, -1.1514610310e-1);
    let p = mla::<F>(p, f, 1.1676998740e-1);
    let p = mla::<F>(p, f, -1.2420140846e-1);
    let p = mla::<F>(p, f, 1.4249322787e-1);
    let p = mla::<F>(p, f, -1.6668057665e-1);
    let p = mla::<F>(p, f, 2.0000714765e-1);
    let p = mla::<F>(p, f, -2.4999993993e-1);
    let p = mla::<F>(p, f, 3.3333331174e-1);
    mla::<F>(f * z, p, -0.5 * z)
}

/// Reduction shared by log/log2/log10: x = 2^k (1+f). Handles subnormal x.
#[inline(always)]
fn log_reduce(x: f32) -> (f32, f32) {
    // Subnormals: scale by 2^23 first (selected, no branch).
    let sub = x < f32::MIN_POSITIVE;
    let xs = if sub { x * 8388608.0 } else { x };
    let (k, m) = log_split(xs.to_bits());
    let k = if sub { k.wrapping_sub(23) } else { k };
    (k as f32, m - 1.0)
}

/// Apply log's special cases: +inf -> +inf, ±0 -> -inf, x<0 or NaN -> NaN.
#[inline(always)]
fn log_special(x: f32, y: f32) -> f32 {
    // Three compare+blend pairs. (Written as `x == 0`/`x >= 0` tests on the final
    // value, LLVM turned them into a long integer classification sequence.)
    let y = if x == f32::INFINITY { x } else { y };
    let s = if x == 0.0 {
        f32::NEG_INFINITY
    } else {
        f32::NAN
    };
    if x > 0.0 {
        y
    } else {
        s
    }
}

/// Natural logarithm. Max error ~1 ulp.
#[inline(always)]
pub fn ln_k<const F: bool>(x: f32) -> f32 {
    let (k, f) = log_reduce(x);
    let t = log1p_tail::<F>(f);
    // ln x = k*C1 + (f + (t + k*C2)): small terms first (Cephes ordering).
    let y = mla::<F>(k, LN2_C2, t) + f;
    let y = mla::<F>(k, LN2_C1, y);
    log_special(x, y)
}

const LOG2E_HI: f32 = 1.44269502162933349609375; // f32(log2 e)
const LOG2E_LO: f32 = 1.9259629911266175e-8; // log2 e - LOG2E_HI

/// 12-bit heads (and f32 tails) of log2(e) and log10(e): a 12-bit head times a
/// 12-bit head of f is exact in f32.
const LOG2E_H12: f32 = 1.4423828125;
const LOG2E_T12: f32 = 0.00031222839606925845;
const LOG10E_H12: f32 = 0.4342041015625;
const LOG10E_T12: f32 = 9.038033749675378e-5;

/// f * (ch + ct) + extra as an unevaluated sum (hi, lo) without FMA:
/// hi = head(f) * ch is exact (12 x 12 bits), everything else goes into lo.
#[inline(always)]
fn mul_split(f: f32, ch: f32, ct: f32, extra: f32) -> (f32, f32) {
    let fh = f32::from_bits(f.to_bits() & 0xffff_f000);
    let fl = f - fh;
    (fh * ch, (fl * ch + f * ct) + extra)
}

/// Base-2 logarithm. log2(2^k) is exact.
#[inline(always)]
pub fn log2_k<const F: bool>(x: f32) -> f32 {
    let (k, f) = log_reduce(x);
    let t = log1p_tail::<F>(f);
    // log2(1+f) = (f + t) * log2(e), with log2(e) split in two to keep f*log2e
    // accurate to ~2^-48 relative.
    let y = if F {
        let lo = mla::<F>(f, LOG2E_LO, t * LOG2E_HI);
        mla::<F>(f, LOG2E_HI, lo) + k
    } else {
        // Without FMA, f*log2(e) would be rounded once too often (~1.9 ulp).
        // Split f and log2(e) into 12-bit heads so the head product is exact.
        let (hi, lo) = mul_split(f, LOG2E_H12, LOG2E_T12, t * LOG2E_HI);
        (k + hi) + lo
    };
    log_special(x, y)
}

const LOG10E_HI: f32 = 0.434294492006301879882812; // f32(log10 e)
const LOG10E_LO: f32 = -1.0103050052231683e-8; // log10 e - LOG10E_HI
const LOG10_2_HI: f32 = 0.30078125; // 7 bits: k * HI exact for |k| < 2^17
const LOG10_2_LO: f32 = 2.48745663981195213739e-4;

/// Base-10 logarithm.
#[inline(always)]
pub fn log10_k<const F: bool>(x: f32) -> f32 {
    let (k, f) = log_reduce(x);
    let t = log1p_tail::<F>(f);
    let y = if F {
        let lo = mla::<F>(f, LOG10E_LO, t * LOG10E_HI);
        let lo = mla::<F>(k, LOG10_2_LO, lo);
        let y = mla::<F>(f, LOG10E_HI, lo);
        mla::<F>(k, LOG10_2_HI, y)
    } else {
        let (hi, lo) = mul_split(f, LOG10E_H12, LOG10E_T12, t * LOG10E_HI);
        (k * LOG10_2_HI + hi) + mla::<F>(k, LOG10_2_LO, lo)
    };
    log_special(x, y)
}

/// log(1 + x), accurate for small |x|. Max error ~1 ulp.
#[inline(always)]
pub fn ln_1p_k<const F: bool>(x: f32) -> f32 {
    let u = 1.0 + x;
    // Exact rounding error of u = fl(1 + x) (Fast2Sum: larger operand first).
    let d = if x > 1.0 {
        1.0 - (u - x)
    } else {
        x - (u - 1.0)
    };
    // u >= 2^-24 on the valid domain, so never subnormal.
    let (k, m) = log_split(u.to_bits());
    // 1 + x = u + d = 2^k (m + d 2^-k): fold the error into f (m - 1 is exact).
    // Clamp the scale exponent so 2^-k stays normal (d 2^-k is negligible there).
    let kk = if k > 126 { 126 } else { k };
    let f = mla::<F>(d, pow2i(kk.wrapping_neg()), m - 1.0);
    let kf = k as f32;
    let t = log1p_tail::<F>(f);
    let y = mla::<F>(kf, LN2_C2, t) + f;
    let y = mla::<F>(kf, LN2_C1, y);
    let y = if x == f32::INFINITY { x } else { y };
    let y = if x == 0.0 { x } else { y }; // log1p(±0) = ±0
    let s = if x == -1.0 {
        f32::NEG_INFINITY
    } else {
        f32::NAN
    };
    if x > -1.0 {
        y
    } else {
        s
    }
}

// ---------------------------------------------------------------------------
// sin / cos / tan (f64 internally)
// ---------------------------------------------------------------------------

const FRAC_2_PI_64: f64 = std::f64::consts::FRAC_2_PI;
const FRAC_PI_2_64: f64 = std::f64::consts::FRAC_PI_2;
/// 1.5 * 2^52: f64 magic rounding constant.
const MAGIC64: f64 = 6755399441055744.0;
/// pi/2 = P1 + P2 + P3 (+ 1.5e-33). P1 and P2 have <= 26 significant bits, so
/// j*P1 and j*P2 are exact for |j| < 2^27; P3 is a full double.
const PIO2_P1: f64 = 1.5707963407039642; // 0x1.921fb58p+0
const PIO2_P2: f64 = -1.3909067675399456e-08; // -0x1.dde974p-27
const PIO2_P3: f64 = 6.123233995736766e-17; // 0x1.1a62633145c07p-54
/// Below this |x| the 3-part reduction is exact (|j| < 2^27).
const TRIG_EXACT_LIMIT: f32 = 2.0e8;

/// Recomputes with `exact` the elements of `out` whose input has |x| >= `limit`, beyond
/// the range reduction of the kernel that wrote them (`SINCOS_F32_LIMIT` for sin/cos,
/// `TRIG_EXACT_LIMIT` for tan). A vectorizable scan finds whether there is any first:
/// the per-element branch alone had cost a third of a 10M-element `sin`.
pub fn fix_huge_trig_args(inp: &[f32], out: &mut [f32], fix: TrigFix) {
    let limit = fix.limit;
    if !inp.iter().fold(false, |any, &v| any | (absf(v) >= limit)) {
        return;
    }
    for (o, &v) in out.iter_mut().zip(inp) {
        if absf(v) >= limit {
            *o = (fix.exact)(v);
        }
    }
}

/// How the slice entry points complete a trig kernel: inputs with |x| >= `limit` are
/// recomputed with `exact` (libm, with its exact argument reduction).
#[derive(Clone, Copy)]
pub struct TrigFix {
    pub exact: fn(f32) -> f32,
    pub limit: f32,
}
pub const SIN_FIX: TrigFix = TrigFix {
    exact: f32::sin,
    limit: SINCOS_F32_LIMIT,
};
pub const COS_FIX: TrigFix = TrigFix {
    exact: f32::cos,
    limit: SINCOS_F32_LIMIT,
};
pub const TAN_FIX: TrigFix = TrigFix {
    exact: f32::tan,
    limit: TRIG_EXACT_LIMIT,
};

/// Reduce x to r in [-pi/4, pi/4] (f64) and the quadrant q (low bits of j).
#[inline(always)]
fn trig_reduce<const F: bool>(x: f32) -> (f64, u64) {
    let xd = x as f64;
    let v = xd * FRAC_2_PI_64;
    let t = v + MAGIC64;
    let j = t - MAGIC64;
    let q = t.to_bits();
    // Cody–Waite, 3 parts: first subtraction exact (Sterbenz), second nearly so.
    let r = mla64::<F>(j, -PIO2_P1, xd);
    let r = mla64::<F>(j, -PIO2_P2, r);
    let r = mla64::<F>(j, -PIO2_P3, r);
    // Huge |x|: j*P1 is no longer exact. Fall back to a bounded one-term reduction
    // (error ~ |x| 2^-53 absolute), so results stay finite and within [-1, 1].
    // For ±inf both give NaN, as required.
    // Past 2^51 the magic rounding fails, but v is then an integer: use r = 0
    // (multiplying keeps the NaN of x = ±inf).
    // The quadrant is then meaningless too: use q = 0 so tan stays finite.
    let rfb = (v - j) * FRAC_PI_2_64;
    let sane = v.abs() < 2251799813685248.0;
    let rfb = if sane { rfb } else { rfb * 0.0 };
    let q = if sane { q } else { 0 };
    let r = if absf(x) < TRIG_EXACT_LIMIT { r } else { rfb };
    (r, q)
}

/// FreeBSD k_sinf.c coefficients: sin(r)/r - 1 ~ z (S1 + z (S2 + z (S3 + z S4))),
/// z = r^2, |r| <= pi/4, error < 2^-37.5. Written as r * (1 + ...) so that the sign
/// of zero is preserved.
#[inline(always)]
fn sin_poly<const F: bool>(r: f64, z: f64) -> f64 {
    let p = mla64::<F>(z, 2.7183114939898219064e-6, -1.98393348360966317347e-4);
    let p = mla64::<F>(z, p, 8.3333293858894631756e-3);
    let p = mla64::<F>(z, p, -1.66666666416265235595e-1);
    r * mla64::<F>(z, p, 1.0)
}

/// FreeBSD k_cosf.c coefficients: cos(r) ~ 1 + z (C0 + z (C1 + z (C2 + z C3))),
/// |r| <= pi/4, error < 2^-34.
#[inline(always)]
fn cos_poly<const F: bool>(z: f64) -> f64 {
    let p = mla64::<F>(z, 2.43904487962774090654e-5, -1.38867637746099294692e-3);
    let p = mla64::<F>(z, p, 4.16666233237390631894e-2);
    let p = mla64::<F>(z, p, -4.99999997251031003120e-1);
    mla64::<F>(z, p, 1.0)
}

/// Pick sin/cos by quadrant and apply the sign: value for quadrant `q`
/// of sin (cos is the same with q+1).
#[inline(always)]
fn trig_select(s: f64, c: f64, q: u64) -> f32 {
    let y = if q & 1 == 0 { s } else { c };
    let y = f64::from_bits(y.to_bits() ^ ((q & 2) << 62));
    y as f32
}

/// sin(x). With FMA: all-f32 (`sincos_f32`), max error 1.49 ulp for |x| < 1e5.
/// Without: f64 internally, max error ~0.5 ulp for |x| < 2e8 (see module docs beyond).
#[inline(always)]
pub fn sin_k<const F: bool>(x: f32) -> f32 {
    sin_impl::<F, true>(x)
}

/// `sin_k`, with `CHECKED = false` leaving lanes with |x| >= `SINCOS_F32_LIMIT` (FMA) or
/// ±inf garbage for the caller to recompute (`fix_huge_trig_args`): five vector ops fewer.
#[inline(always)]
fn sin_impl<const F: bool, const CHECKED: bool>(x: f32) -> f32 {
    let y = if F {
        sincos_f32::<CHECKED>(x, 0)
    } else {
        let (r, q) = trig_reduce::<F>(x);
        let z = r * r;
        trig_select(sin_poly::<F>(r, z), cos_poly::<F>(z), q)
    };
    // sin(-0) = -0 (the reduction's `0 * -P2` term turns -0 into +0).
    if x == 0.0 {
        x
    } else {
        y
    }
}

/// cos(x). With FMA: all-f32, max error 1.49 ulp for |x| < 1e5; without: ~0.5 ulp for
/// |x| < 2e8.
#[inline(always)]
pub fn cos_k<const F: bool>(x: f32) -> f32 {
    cos_impl::<F, true>(x)
}

/// `cos_k`, unchecked as `sin_impl`.
#[inline(always)]
fn cos_impl<const F: bool, const CHECKED: bool>(x: f32) -> f32 {
    if F {
        return sincos_f32::<CHECKED>(x, 1);
    }
    let (r, q) = trig_reduce::<F>(x);
    let z = r * r;
    trig_select(sin_poly::<F>(r, z), cos_poly::<F>(z), q.wrapping_add(1))
}

// --- sin / cos in f32 (FMA only) -------------------------------------------------------
// Twice the lanes of the f64 kernels: 16 per AVX-512 vector. One f32 reduced argument
// and both polynomials with a single rounding at their last FMA: all 2^32 inputs below
// 1e5, max 1.49 ulp (MLX's and NumPy's AVX-512 `sin` measure 1.48 and 1.41 ulp).

/// pi/2 = SC_P1 + SC_P2 + SC_P3 (+ 1.1e-23), each the f32 nearest to what is left.
const SC_P1: f32 = 1.5707963705062866; // 0x3fc90fdb
const SC_P2: f32 = -4.371138828673793e-8; // 0xb33bbd2e
const SC_P3: f32 = -1.7151245100058819e-15; // 0xa6f72ced
/// FreeBSD k_sinf.c coefficients S1..S4 (see `sin_poly`) rounded to f32.
const SINF: [f32; 4] = [
    -1.66666666416265235595e-1_f64 as f32,
    8.3333293858894631756e-3_f64 as f32,
    -1.98393348360966317347e-4_f64 as f32,
    2.7183114939898219064e-6_f64 as f32,
];
/// FreeBSD k_cosf.c coefficients C0..C3 (see `cos_poly`) rounded to f32.
const COSF: [f32; 4] = [
    -4.99999997251031003120e-1_f64 as f32,
    4.16666233237390631894e-2_f64 as f32,
    -1.38867637746099294692e-3_f64 as f32,
    2.43904487962774090654e-5_f64 as f32,
];
/// Below this |x| the f32 reduction is accurate (|j| < 2^16; `x - j*SC_P1` with one
/// rounding is exact since the result is a multiple of 2^-24 below 2). The slice entry
/// points recompute larger arguments with libm (`fix_huge_trig_args`).
pub const SINCOS_F32_LIMIT: f32 = 1.0e5;

/// sin(x + `shift` * pi/2) for `shift` 0 (sin) or 1 (cos); `CHECKED` as in `sin_impl`.
///
/// The reduced argument `r = x - j pi/2` is one f32 (the float-float `rh + rl` of an
/// earlier version cost 15 more vector ops for 0.78 ulp): its last two FMAs round, which
/// with the final rounding of each polynomial bounds the error at 1.49 ulp.
#[inline(always)]
fn sincos_f32<const CHECKED: bool>(x: f32, shift: u32) -> f32 {
    let t = x.mul_add(std::f32::consts::FRAC_2_PI, MAGIC);
    let q = t.to_bits().wrapping_add(shift);
    let j = t - MAGIC;
    let r = (-j).mul_add(SC_P1, x);
    let r = (-j).mul_add(SC_P2, r);
    let r = (-j).mul_add(SC_P3, r);
    // Beyond the limit (or for inf/NaN) use r = 0 (x * 0: NaN for inf/NaN): bounded, and the
    // callers recompute those lanes. Unchecked, those lanes are left as they come.
    let keep = !CHECKED || absf(x) < SINCOS_F32_LIMIT;
    let r = if keep { r } else { x * 0.0 };
    let z = r * r;
    // sin r ~ r + r z ps(z); cos r ~ 1 + z pc(z), each rounded once by its last FMA.
    let ps = z.mul_add(SINF[3], SINF[2]);
    let ps = z.mul_add(ps, SINF[1]);
    let ps = z.mul_add(ps, SINF[0]);
    let s = (r * z).mul_add(ps, r);
    let pc = z.mul_add(COSF[3], COSF[2]);
    let pc = z.mul_add(pc, COSF[1]);
    let pc = z.mul_add(pc, COSF[0]);
    let c = z.mul_add(pc, 1.0);
    let y = if q & 1 == 0 { s } else { c };
    f32::from_bits(y.to_bits() ^ ((q & 2) << 30))
}

/// tan(x) = sin/cos in f64 (quadrant odd: -cos/sin). Max error ~0.5 ulp for
/// |x| < 2e8; finite for all finite x.
#[inline(always)]
pub fn tan_k<const F: bool>(x: f32) -> f32 {
    let (r, q) = trig_reduce::<F>(x);
    let z = r * r;
    let s = sin_poly::<F>(r, z);
    let c = cos_poly::<F>(z);
    let odd = q & 1 != 0;
    let num = if odd { -c } else { s };
    let den = if odd { s } else { c };
    // Only the |x| >= 2e8 fallback can produce r == 0 in an odd quadrant (a pole):
    // clamp to ±f32::MAX so the result stays finite for finite x.
    let t = num / den;
    let max = f32::MAX as f64;
    let t = if t > max { max } else { t };
    let t = if t < -max { -max } else { t };
    let y = t as f32;
    if x == 0.0 {
        x
    } else {
        y
    }
}

// ---------------------------------------------------------------------------
// tanh, sigmoid
// ---------------------------------------------------------------------------

/// tanh(x) = sign(x) * e/(e+2), e = expm1(2|x|). |x| is clamped at 10 where
/// tanh rounds to 1 (avoids inf/inf).
#[inline(always)]
pub fn tanh_k<const F: bool>(x: f32) -> f32 {
    let ax = absf(x);
    let ax = if ax > 10.0 { 10.0 } else { ax };
    let e = expm1_k::<F>(ax + ax);
    copysignf(e / (e + 2.0), x)
}

/// Logistic sigmoid 1/(1+exp(-x)), evaluated without overflow; tiny results
/// underflow gradually.
#[inline(always)]
pub fn sigmoid_k<const F: bool>(x: f32) -> f32 {
    let e = exp_k::<F>(-absf(x));
    let num = if x >= 0.0 { 1.0 } else { e };
    num / (1.0 + e)
}

// ---------------------------------------------------------------------------
// erf
// ---------------------------------------------------------------------------

/// Below this |x|, erf uses the odd polynomial; above, the erfc form.
const ERF_SPLIT: f32 = 0.875;

/// erf(x).
///
/// Coefficients were fitted for this module (near-minimax relative error via
/// Chebyshev-node least squares + Lawson reweighting, in f64 against mpmath):
/// * `|x| < 0.875`: `erf(x) = x + x Q(x^2)`, deg-6 `Q = erf(x)/x - 1`, fit error
///   2.0e-10 relative. Keeping the leading `x` outside `Q` avoids rounding
///   `2/sqrt(pi)` to f32.
/// * `0.875 <= |x| < 4`: `erf(x) = 1 - exp(-x^2) S(1/x - 0.7)`, deg-9 `S` for the
///   smooth factor `erfc(x) exp(x^2)` (fit error 4.4e-8 relative; in the variable
///   1/x it is nearly polynomial, in x it is not). The shift centres t in
///   [0.25, 1.14] and keeps the coefficients < 0.4. `erf(x) = 1` in f32 for
///   `|x| >= 3.92`, so |x| is clamped at 4.
#[inline(always)]
pub fn erf_k<const F: bool>(x: f32) -> f32 {
    let ax = absf(x);
    // Small: x + x Q(x^2).
    let z = x * x;
    let q = mla::<F>(z, 8.675531717017293e-05, -0.0008211138774640858);
    let q = mla::<F>(z, q, 0.005206750705838203);
    let q = mla::<F>(z, q, -0.026861585676670074);
    let q = mla::<F>(z, q, 0.11283732950687408);
    let q = mla::<F>(z, q, -0.37612634897232056);
    let q = mla::<F>(z, q, 0.12837916612625122);
    let small = mla::<F>(x, q, x);
    // Large: 1 - exp(-x^2) S(t).
    let a = if ax > 4.0 { 4.0 } else { ax };
    let t = 1.0 / a - 0.7;
    let s = mla::<F>(t, 0.014942290261387825, 0.002079198369756341);
    let s = mla::<F>(t, s, -0.024857783690094948);
    let s = mla::<F>(t, s, 0.032143861055374146);
    let s = mla::<F>(t, s, -0.0299970805644989);
    let s = mla::<F>(t, s, 0.008892343379557133);
    let s = mla::<F>(t, s, 0.04843958467245102);
    let s = mla::<F>(t, s, -0.16193638741970062);
    let s = mla::<F>(t, s, 0.3571959435939789);
    let s = mla::<F>(t, s, 0.3336736559867859);
    let large = copysignf(1.0 - exp_k::<F>(-(a * a)) * s, x);
    if ax < ERF_SPLIT {
        small
    } else {
        large
    }
}

// ---------------------------------------------------------------------------
// f64: exp and log (the cheap ones)
// ---------------------------------------------------------------------------

/// FreeBSD e_exp.c / e_log.c split of ln 2: LN2_HI has 32 significant bits, so
/// `n * LN2_HI` is exact for |n| < 2^21.
const LN2_HI_64: f64 = 6.93147180369123816490e-01;
const LN2_LO_64: f64 = 1.90821492927058770002e-10;
const LOG2E_64: f64 = std::f64::consts::LOG2_E;

/// 2^n for n in [-1022, 1023] by building the exponent field.
#[inline(always)]
fn pow2i64(n: i64) -> f64 {
    f64::from_bits((n.wrapping_add(1023) as u64) << 52)
}

/// e^x for f64. Max error ~1 ulp (vs glibc, see tests).
///
/// Cody–Waite reduction `x = n ln2 + r`, |r| <= ln2/2, then the Taylor series of
/// e^r up to r^13 (truncation error r^14/14! < 4.2e-18, below 2^-57 relative, so
/// no fitted coefficients are needed), scaled by 2^n in two steps like [`exp_k`].
#[inline(always)]
pub fn exp_f64_k<const F: bool>(x: f64) -> f64 {
    let xc = if x > 710.0 { 710.0 } else { x };
    let xc = if xc < -746.0 { -746.0 } else { xc };
    let t = xc * LOG2E_64 + MAGIC64;
    let n = t - MAGIC64;
    let ni = (t.to_bits() as i64).wrapping_sub(MAGIC64.to_bits() as i64);
    let r = mla64::<F>(n, -LN2_HI_64, xc);
    let r = mla64::<F>(n, -LN2_LO_64, r);
    // 1/k! for k = 13 down to 2.
    let p = mla64::<F>(r, 1.0 / 6227020800.0, 1.0 / 479001600.0);
    let p = mla64::<F>(r, p, 1.0 / 39916800.0);
    let p = mla64::<F>(r, p, 1.0 / 3628800.0);
    let p = mla64::<F>(r, p, 1.0 / 362880.0);
    let p = mla64::<F>(r, p, 1.0 / 40320.0);
    let p = mla64::<F>(r, p, 1.0 / 5040.0);
    let p = mla64::<F>(r, p, 1.0 / 720.0);
    let p = mla64::<F>(r, p, 1.0 / 120.0);
    let p = mla64::<F>(r, p, 1.0 / 24.0);
    let p = mla64::<F>(r, p, 1.0 / 6.0);
    let p = mla64::<F>(r, p, 0.5);
    let y = mla64::<F>(r * r, p, r) + 1.0;
    // floor(n/2) with a logical shift (AVX2 has no 64-bit arithmetic shift):
    // n in [-1077, 1025], so n + 2048 is non-negative.
    let n1 = ((ni.wrapping_add(2048) as u64) >> 1) as i64 - 1024;
    let n2 = ni.wrapping_sub(n1);
    y * pow2i64(n1) * pow2i64(n2)
}

/// Natural log for f64. Max error ~1 ulp (vs glibc).
///
/// musl-style reduction to m in [sqrt(1/2), sqrt(2)), f = m - 1, then FreeBSD
/// e_log.c (Sun Microsystems): s = f/(2+f), log(1+f) = f - hfsq + s (hfsq + R(s^2))
/// with the minimax coefficients Lg1..Lg7 (|error| < 2^-58.45). The exponent is
/// converted to f64 with the 2^52 magic instead of an i64 -> f64 conversion
/// (which AVX2 lacks).
#[inline(always)]
pub fn ln_f64_k<const F: bool>(x: f64) -> f64 {
    const SQRT_HALF_BITS64: u64 = 0x3fe6_a09e_667f_3bcd;
    let sub = x < f64::MIN_POSITIVE;
    let xs = if sub { x * 18014398509481984.0 } else { x }; // 2^54
    let ix = xs
        .to_bits()
        .wrapping_add(0x3ff0_0000_0000_0000 - SQRT_HALF_BITS64);
    let e = f64::from_bits(0x4330_0000_0000_0000 | (ix >> 52)) - 4503599627370496.0;
    let k = e - if sub { 1023.0 + 54.0 } else { 1023.0 };
    let m = f64::from_bits((ix & 0x000f_ffff_ffff_ffff).wrapping_add(SQRT_HALF_BITS64));
    let f = m - 1.0;
    let s = f / (2.0 + f);
    let z = s * s;
    let w = z * z;
    let t1 = w * mla64::<F>(
        w,
        mla64::<F>(w, 1.531383769920937332e-01, 2.222219843214978396e-01),
        3.999999999940941908e-01,
    );
    let t2 = z * mla64::<F>(
        w,
        mla64::<F>(
            w,
            mla64::<F>(w, 1.479819860511658591e-01, 1.818357216161805012e-01),
            2.857142874366239149e-01,
        ),
        6.666666666666735130e-01,
    );
    let r = t2 + t1;
    let hfsq = 0.5 * f * f;
    let y = mla64::<F>(
        k,
        LN2_HI_64,
        -((hfsq - mla64::<F>(s, hfsq + r, k * LN2_LO_64)) - f),
    );
    let y = if x == f64::INFINITY { x } else { y };
    let sp = if x == 0.0 {
        f64::NEG_INFINITY
    } else {
        f64::NAN
    };
    if x > 0.0 {
        y
    } else {
        sp
    }
}

// ---------------------------------------------------------------------------
// Plain entry points (FMA iff the crate is compiled with the `fma` feature)
// ---------------------------------------------------------------------------

macro_rules! plain {
    ($($name:ident => $k:ident),* $(,)?) => {$(
        #[doc = concat!("`", stringify!($k), "` with FMA chosen at compile time; safe in any context.")]
        #[inline(always)]
        pub fn $name(x: f32) -> f32 { $k::<FMA_DEFAULT>(x) }
    )*};
}
plain! {
    exp_f32 => exp_k, expm1_f32 => expm1_k, ln_f32 => ln_k, ln_1p_f32 => ln_1p_k,
    log2_f32 => log2_k, log10_f32 => log10_k, sin_f32 => sin_k, cos_f32 => cos_k,
    tan_f32 => tan_k, tanh_f32 => tanh_k, sigmoid_f32 => sigmoid_k, erf_f32 => erf_k,
}

/// `exp_f64_k` with FMA chosen at compile time.
#[inline(always)]
pub fn exp_f64(x: f64) -> f64 {
    exp_f64_k::<FMA_DEFAULT>(x)
}

/// `ln_f64_k` with FMA chosen at compile time.
#[inline(always)]
pub fn ln_f64(x: f64) -> f64 {
    ln_f64_k::<FMA_DEFAULT>(x)
}

// ---------------------------------------------------------------------------
// Run-time dispatched slice maps
// ---------------------------------------------------------------------------

/// A unary f32 kernel usable with [`map_f32`].
pub trait Kernel {
    fn eval<const F: bool>(x: f32) -> f32;

    /// `out[i] = eval(inp[i])` in AVX-512 code. Kernels with a hand-written loop (exp)
    /// override it, bit-identical to `eval::<true>`.
    ///
    /// # Safety
    /// The CPU must support AVX-512F/VL/DQ/BW and FMA.
    #[cfg(target_arch = "x86_64")]
    #[inline(always)]
    unsafe fn map_avx512(inp: &[f32], out: &mut [f32])
    where
        Self: Sized,
    {
        map_loop::<Self, true>(inp, out)
    }
}

macro_rules! kernels {
    ($($t:ident => $k:ident),* $(,)?) => {$(
        #[doc = concat!("Marker for `", stringify!($k), "`.")]
        pub struct $t;
        impl Kernel for $t {
            #[inline(always)]
            fn eval<const F: bool>(x: f32) -> f32 { $k::<F>(x) }
        }
    )*};
}
kernels! {
    Expm1 => expm1_k, Log => ln_k, Log1p => ln_1p_k, Log2 => log2_k,
    Log10 => log10_k, Tan => tan_k, Tanh => tanh_k, Sigmoid => sigmoid_k, Erf => erf_k,
}

/// Marker for `exp_k`; its AVX-512 loop scales by `vscalefps` (`exp_avx512.rs`).
pub struct Exp;
impl Kernel for Exp {
    #[inline(always)]
    fn eval<const F: bool>(x: f32) -> f32 {
        exp_k::<F>(x)
    }

    #[cfg(target_arch = "x86_64")]
    #[inline(always)]
    unsafe fn map_avx512(inp: &[f32], out: &mut [f32]) {
        unsafe { exp_avx512::map(inp, out) }
    }
}

/// Marker for `sin_k`, unchecked: the slice maps leave lanes with huge or infinite
/// arguments to `fix_huge_trig_args` (with `SIN_FIX`), which every caller runs.
pub struct Sin;
impl Kernel for Sin {
    #[inline(always)]
    fn eval<const F: bool>(x: f32) -> f32 {
        sin_impl::<F, false>(x)
    }
}

/// Marker for `cos_k`, unchecked as [`Sin`] (callers run `fix_huge_trig_args` with
/// `COS_FIX`).
pub struct Cos;
impl Kernel for Cos {
    #[inline(always)]
    fn eval<const F: bool>(x: f32) -> f32 {
        cos_impl::<F, false>(x)
    }
}

#[cfg(target_arch = "x86_64")]
#[path = "exp_avx512.rs"]
mod exp_avx512;

/// Instruction-set level chosen by [`simd_level`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SimdLevel {
    /// Whatever the crate was compiled for (SSE2 on default x86-64).
    Baseline,
    /// AVX2 + FMA (Haswell+, Zen1+).
    Avx2Fma,
    /// AVX-512F/VL/DQ/BW + FMA (Skylake-X+, Zen4+).
    Avx512,
}

/// Best level supported by the running CPU, probed once and cached (one relaxed
/// atomic load per call afterwards).
#[inline]
pub fn simd_level() -> SimdLevel {
    use std::sync::atomic::{AtomicU8, Ordering};
    static LEVEL: AtomicU8 = AtomicU8::new(0); // 0 = not probed yet
    match LEVEL.load(Ordering::Relaxed) {
        1 => SimdLevel::Baseline,
        2 => SimdLevel::Avx2Fma,
        3 => SimdLevel::Avx512,
        _ => {
            let l = probe_simd_level();
            let code = match l {
                SimdLevel::Baseline => 1,
                SimdLevel::Avx2Fma => 2,
                SimdLevel::Avx512 => 3,
            };
            LEVEL.store(code, Ordering::Relaxed);
            l
        }
    }
}

#[cold]
fn probe_simd_level() -> SimdLevel {
    #[cfg(target_arch = "x86_64")]
    {
        if is_x86_feature_detected!("avx512f")
            && is_x86_feature_detected!("avx512vl")
            && is_x86_feature_detected!("avx512dq")
            && is_x86_feature_detected!("avx512bw")
            && is_x86_feature_detected!("fma")
        {
            return SimdLevel::Avx512;
        }
        if is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma") {
            return SimdLevel::Avx2Fma;
        }
    }
    SimdLevel::Baseline
}

#[inline(always)]
fn map_loop<K: Kernel, const F: bool>(inp: &[f32], out: &mut [f32]) {
    // A plain loop: LLVM vectorizes it at the width of the enclosing function.
    // (Unrolling into fixed-size blocks was measured and did not help: the
    // kernels are throughput-bound, not latency-bound.)
    for (o, x) in out.iter_mut().zip(inp) {
        *o = K::eval::<F>(*x);
    }
}

/// Baseline loop (compile-time features only).
pub fn map_f32_baseline<K: Kernel>(inp: &[f32], out: &mut [f32]) {
    map_loop::<K, FMA_DEFAULT>(inp, out)
}

/// AVX2+FMA loop.
///
/// # Safety
/// The CPU must support AVX2 and FMA.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
pub unsafe fn map_f32_avx2<K: Kernel>(inp: &[f32], out: &mut [f32]) {
    map_loop::<K, true>(inp, out)
}

/// AVX-512 loop (512-bit vectors).
///
/// # Safety
/// The CPU must support AVX-512F/VL/DQ/BW and FMA.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512vl,avx512dq,avx512bw,avx2,fma")]
pub unsafe fn map_f32_avx512<K: Kernel>(inp: &[f32], out: &mut [f32]) {
    unsafe { K::map_avx512(inp, out) }
}

/// `out[i] = K(inp[i])` for `i < min(len)` at the given level.
///
/// # Safety
/// The CPU must support `level` (use [`simd_level`]).
pub unsafe fn map_f32_at<K: Kernel>(level: SimdLevel, inp: &[f32], out: &mut [f32]) {
    match level {
        #[cfg(target_arch = "x86_64")]
        SimdLevel::Avx512 => unsafe { map_f32_avx512::<K>(inp, out) },
        #[cfg(target_arch = "x86_64")]
        SimdLevel::Avx2Fma => unsafe { map_f32_avx2::<K>(inp, out) },
        _ => map_f32_baseline::<K>(inp, out),
    }
}

/// `out[i] = K(inp[i])`, dispatching on the running CPU.
#[inline]
pub fn map_f32<K: Kernel>(inp: &[f32], out: &mut [f32]) {
    // SAFETY: the level comes from the CPUID probe.
    unsafe { map_f32_at::<K>(simd_level(), inp, out) }
}

/// A unary f64 kernel usable with [`map_f64`] (implemented by [`Exp`], [`Log`]).
pub trait KernelF64 {
    fn eval<const F: bool>(x: f64) -> f64;
}
impl KernelF64 for Exp {
    #[inline(always)]
    fn eval<const F: bool>(x: f64) -> f64 {
        exp_f64_k::<F>(x)
    }
}
impl KernelF64 for Log {
    #[inline(always)]
    fn eval<const F: bool>(x: f64) -> f64 {
        ln_f64_k::<F>(x)
    }
}

#[inline(always)]
fn map_loop64<K: KernelF64, const F: bool>(inp: &[f64], out: &mut [f64]) {
    for (o, x) in out.iter_mut().zip(inp) {
        *o = K::eval::<F>(*x);
    }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn map_f64_avx2<K: KernelF64>(inp: &[f64], out: &mut [f64]) {
    map_loop64::<K, true>(inp, out)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512vl,avx512dq,avx512bw,avx2,fma")]
unsafe fn map_f64_avx512<K: KernelF64>(inp: &[f64], out: &mut [f64]) {
    map_loop64::<K, true>(inp, out)
}

/// `out[i] = K(inp[i])` for f64, dispatching on the running CPU.
pub fn map_f64<K: KernelF64>(inp: &[f64], out: &mut [f64]) {
    match simd_level() {
        // SAFETY: the level comes from the CPUID probe.
        #[cfg(target_arch = "x86_64")]
        SimdLevel::Avx512 => unsafe { map_f64_avx512::<K>(inp, out) },
        #[cfg(target_arch = "x86_64")]
        SimdLevel::Avx2Fma => unsafe { map_f64_avx2::<K>(inp, out) },
        _ => map_loop64::<K, FMA_DEFAULT>(inp, out),
    }
}

// ---------------------------------------------------------------------------
// Tests
// ---------------------------------------------------------------------------

#[cfg(test)]
mod tests;
