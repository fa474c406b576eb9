//! Accuracy and special-value tests of the fast math kernels against libm.
#![allow(clippy::approx_constant, clippy::type_complexity)]

use super::*;

/// Error of `got` in units of the f32 ulp at the exact value `want` (f64
/// reference). NaN must match NaN; infinities must match exactly (also when
/// the reference overflows f32).
fn ulp_err(got: f32, want: f64) -> f64 {
    if want.is_nan() || got.is_nan() {
        return if want.is_nan() && got.is_nan() {
            0.0
        } else {
            f64::INFINITY
        };
    }
    let w32 = want as f32;
    if w32.is_infinite() || got.is_infinite() {
        return if got == w32 { 0.0 } else { f64::INFINITY };
    }
    let a = want.abs();
    let e = if a < f32::MIN_POSITIVE as f64 {
        -126
    } else {
        ((a.to_bits() >> 52) as i32) - 1023
    };
    let ulp = 2f64.powi(e - 23);
    ((got as f64) - want).abs() / ulp
}

struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        // splitmix64
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
}

const SPECIALS: &[f32] = &[
    0.0,
    -0.0,
    1.0,
    -1.0,
    0.5,
    -0.5,
    2.0,
    -2.0,
    10.0,
    -10.0,
    100.0,
    -100.0,
    200.0,
    -200.0,
    1e-45,
    -1e-45,
    1e-40,
    -1e-40,
    1.1754942e-38,
    1.17549435e-38,
    1e-30,
    -1e-30,
    1e-8,
    -1e-8,
    1e-4,
    -1e-4,
    88.0,
    88.72283,
    88.72284,
    88.7229,
    89.0,
    -87.33655,
    -87.34,
    -103.0,
    -103.97,
    -103.98,
    -104.0,
    -150.0,
    3.4028235e38,
    -3.4028235e38,
    f32::INFINITY,
    f32::NEG_INFINITY,
    f32::NAN,
    -f32::NAN,
    0.99999994,
    1.0000001,
    -0.99999994,
    -0.9999999,
    1.5707964,
    -1.5707964,
    3.1415927,
    -3.1415927,
    4.712389,
    6.2831855,
    1e5,
    -1e5,
    12345.678,
    1e7,
    1.6e7,
    1.9999e8,
    2.1e8,
    1e9,
    1e20,
    -1e30,
    16777216.0,
    6588397.5,
    26353590.0,
    1e38,
    9.0,
    10.0,
    10.1,
    -17.3,
    -17.4,
    -30.0,
    -31.0,
    0.35,
    -0.35,
    0.3465736,
    0.6931472,
    -0.6931472,
    1.4142135,
    0.70710677,
];

type KernelFn = fn(f32) -> f32;

struct Case {
    name: &'static str,
    /// [no-FMA, FMA] kernels.
    k: [KernelFn; 2],
    reference: fn(f64) -> f64,
    max_ulp: f64,
    /// Uniform ranges that get extra samples (besides random bit patterns).
    ranges: &'static [(f64, f64)],
    /// Inputs with |x| >= this are only checked for boundedness (trig).
    exact_below: f32,
    /// Check for |result| <= bound on every non-NaN input.
    bound: f32,
}

fn sigmoid64(x: f64) -> f64 {
    1.0 / (1.0 + (-x).exp())
}

fn cases() -> Vec<Case> {
    let inf = f32::INFINITY;
    vec![
        Case {
            name: "exp",
            k: [exp_k::<false>, exp_k::<true>],
            reference: f64::exp,
            max_ulp: 2.0,
            ranges: &[(-104.0, 89.0), (-1.0, 1.0)],
            exact_below: inf,
            bound: inf,
        },
        Case {
            name: "expm1",
            k: [expm1_k::<false>, expm1_k::<true>],
            reference: f64::exp_m1,
            max_ulp: 2.0,
            ranges: &[(-20.0, 89.0), (-1.0, 1.0), (-1e-3, 1e-3)],
            exact_below: inf,
            bound: inf,
        },
        Case {
            name: "log",
            k: [ln_k::<false>, ln_k::<true>],
            reference: f64::ln,
            max_ulp: 2.0,
            ranges: &[(0.0, 4.0), (0.5, 2.0), (0.0, 1e30)],
            exact_below: inf,
            bound: inf,
        },
        Case {
            name: "log1p",
            k: [ln_1p_k::<false>, ln_1p_k::<true>],
            reference: f64::ln_1p,
            max_ulp: 2.0,
            ranges: &[(-1.0, 4.0), (-1e-3, 1e-3), (0.0, 1e30)],
            exact_below: inf,
            bound: inf,
        },
        Case {
            name: "log2",
            k: [log2_k::<false>, log2_k::<true>],
            reference: f64::log2,
            max_ulp: 2.0,
            ranges: &[(0.0, 4.0), (0.5, 2.0), (0.0, 1e30)],
            exact_below: inf,
            bound: inf,
        },
        Case {
            name: "log10",
            k: [log10_k::<false>, log10_k::<true>],
            reference: f64::log10,
            max_ulp: 2.0,
            ranges: &[(0.0, 4.0), (0.5, 2.0), (0.0, 1e30)],
            exact_below: inf,
            bound: inf,
        },
        Case {
            name: "sin",
            k: [sin_k::<false>, sin_k::<true>],
            reference: f64::sin,
            max_ulp: 2.0,
            ranges: &[(-10.0, 10.0), (-1e5, 1e5), (-2e8, 2e8)],
            // the FMA kernel's f32 reduction; the f64 one (no FMA) reaches 2e8
            exact_below: SINCOS_F32_LIMIT,
            bound: 1.0,
        },
        Case {
            name: "cos",
            k: [cos_k::<false>, cos_k::<true>],
            reference: f64::cos,
            max_ulp: 2.0,
            ranges: &[(-10.0, 10.0), (-1e5, 1e5), (-2e8, 2e8)],
            // the FMA kernel's f32 reduction; the f64 one (no FMA) reaches 2e8
            exact_below: SINCOS_F32_LIMIT,
            bound: 1.0,
        },
        Case {
            name: "tan",
            k: [tan_k::<false>, tan_k::<true>],
            reference: f64::tan,
            max_ulp: 2.0,
            ranges: &[(-10.0, 10.0), (-1e5, 1e5), (-2e8, 2e8)],
            exact_below: TRIG_EXACT_LIMIT,
            bound: f32::MAX,
        },
        Case {
            name: "tanh",
            k: [tanh_k::<false>, tanh_k::<true>],
            reference: f64::tanh,
            max_ulp: 4.0,
            ranges: &[(-10.0, 10.0), (-1.0, 1.0), (-1e-3, 1e-3)],
            exact_below: inf,
            bound: 1.0,
        },
        Case {
            name: "sigmoid",
            k: [sigmoid_k::<false>, sigmoid_k::<true>],
            reference: sigmoid64,
            max_ulp: 4.0,
            ranges: &[(-110.0, 20.0), (-5.0, 5.0)],
            exact_below: inf,
            bound: 1.0,
        },
        Case {
            name: "erf",
            k: [erf_k::<false>, erf_k::<true>],
            reference: libm::erf,
            max_ulp: 2.0,
            ranges: &[(-5.0, 5.0), (-1.0, 1.0), (0.8, 1.2)],
            exact_below: inf,
            bound: 1.0,
        },
    ]
}

/// Runs one kernel over specials + `n` random inputs. Returns (max ulp, worst x).
fn run_case(c: &Case, k: KernelFn, n: usize, seed: u64) -> (f64, f32) {
    let mut worst = (0.0f64, 0.0f32);
    let mut check = |x: f32| {
        let got = k(x);
        if c.exact_below.is_finite() && (absf(x) >= c.exact_below || x.is_infinite()) {
            // Huge-argument trig: finite & bounded (NaN only for inf/NaN input).
            if x.is_finite() {
                assert!(
                    got.is_finite() && absf(got) <= c.bound,
                    "{}({x:e}) = {got}",
                    c.name
                );
            } else {
                assert!(got.is_nan(), "{}({x}) = {got}", c.name);
            }
            return;
        }
        let want = (c.reference)(x as f64);
        let e = ulp_err(got, want);
        if !got.is_nan() {
            assert!(
                absf(got) <= c.bound,
                "{}({x:e}) = {got} out of bound",
                c.name
            );
        }
        // Sign of zero must match the reference.
        let w32 = want as f32;
        if got == 0.0 && w32 == 0.0 {
            assert_eq!(
                got.is_sign_negative(),
                w32.is_sign_negative(),
                "{}({x:e}) zero sign",
                c.name
            );
        }
        if e > worst.0 {
            worst = (e, x);
        }
    };
    for &x in SPECIALS {
        check(x);
    }
    let mut rng = Rng(seed);
    for i in 0..n {
        let x = if i % 5 < 2 {
            f32::from_bits(rng.next() as u32)
        } else {
            let (lo, hi) = c.ranges[i % c.ranges.len()];
            (lo + (hi - lo) * rng.unit()) as f32
        };
        check(x);
    }
    worst
}

fn samples() -> usize {
    std::env::var("FAST_MATH_SAMPLES")
        .ok()
        .and_then(|s| s.parse().ok())
        // 10M in release; debug builds are ~20x slower, so sample less there.
        .unwrap_or(if cfg!(debug_assertions) {
            500_000
        } else {
            10_000_000
        })
}

#[test]
fn accuracy_random_and_specials() {
    let n = samples();
    let mut failures = vec![];
    for c in cases() {
        for (fi, k) in c.k.iter().enumerate() {
            let (e, x) = run_case(&c, *k, n, 0x5eed ^ fi as u64);
            println!("{:8} fma={} max_ulp={:.3} at x={:e}", c.name, fi == 1, e, x);
            if e > c.max_ulp {
                failures.push(format!("{} fma={}: {e} ulp at {x:e}", c.name, fi == 1));
            }
        }
    }
    assert!(failures.is_empty(), "{failures:#?}");
}

#[test]
fn special_values() {
    let nan = f32::NAN;
    let inf = f32::INFINITY;
    let same = |a: f32, b: f32| (a.is_nan() && b.is_nan()) || a.to_bits() == b.to_bits();
    let table: &[(&str, KernelFn, f32, f32)] = &[
        ("exp", exp_f32, 100.0, inf),
        ("exp", exp_f32, -200.0, 0.0),
        ("exp", exp_f32, nan, nan),
        ("exp", exp_f32, inf, inf),
        ("exp", exp_f32, -inf, 0.0),
        ("exp", exp_f32, 0.0, 1.0),
        ("exp", exp_f32, -0.0, 1.0),
        ("expm1", expm1_f32, -0.0, -0.0),
        ("expm1", expm1_f32, inf, inf),
        ("expm1", expm1_f32, -inf, -1.0),
        ("expm1", expm1_f32, 1e-30, 1e-30),
        ("expm1", expm1_f32, nan, nan),
        ("log", ln_f32, 0.0, -inf),
        ("log", ln_f32, -0.0, -inf),
        ("log", ln_f32, -1.0, nan),
        ("log", ln_f32, 1.0, 0.0),
        ("log", ln_f32, inf, inf),
        ("log", ln_f32, -inf, nan),
        ("log", ln_f32, nan, nan),
        ("log2", log2_f32, 8.0, 3.0),
        ("log2", log2_f32, 1e-45, -149.0),
        ("log10", log10_f32, 1000.0, 3.0),
        ("log10", log10_f32, 0.0, -inf),
        ("log1p", ln_1p_f32, -1.0, -inf),
        ("log1p", ln_1p_f32, -2.0, nan),
        ("log1p", ln_1p_f32, -0.0, -0.0),
        ("log1p", ln_1p_f32, inf, inf),
        ("log1p", ln_1p_f32, 1e-30, 1e-30),
        ("sin", sin_f32, -0.0, -0.0),
        ("sin", sin_f32, inf, nan),
        ("sin", sin_f32, -inf, nan),
        ("sin", sin_f32, nan, nan),
        ("sin", sin_f32, 1e-40, 1e-40),
        ("cos", cos_f32, 0.0, 1.0),
        ("cos", cos_f32, inf, nan),
        ("tan", tan_f32, -0.0, -0.0),
        ("tan", tan_f32, inf, nan),
        ("tanh", tanh_f32, -0.0, -0.0),
        ("tanh", tanh_f32, inf, 1.0),
        ("tanh", tanh_f32, -inf, -1.0),
        ("tanh", tanh_f32, 20.0, 1.0),
        ("tanh", tanh_f32, nan, nan),
        ("tanh", tanh_f32, 1e-30, 1e-30),
        ("sigmoid", sigmoid_f32, inf, 1.0),
        ("sigmoid", sigmoid_f32, -inf, 0.0),
        ("sigmoid", sigmoid_f32, 0.0, 0.5),
        ("sigmoid", sigmoid_f32, nan, nan),
        ("sigmoid", sigmoid_f32, -200.0, 0.0),
        ("erf", erf_f32, -0.0, -0.0),
        ("erf", erf_f32, inf, 1.0),
        ("erf", erf_f32, -inf, -1.0),
        ("erf", erf_f32, nan, nan),
    ];
    for &(name, f, x, want) in table {
        let got = f(x);
        assert!(same(got, want), "{name}({x:e}) = {got:e}, want {want:e}");
    }
    // Huge trig arguments: finite and bounded.
    for &x in &[1e9f32, -3e12, 1e20, 3.4028235e38, -3.4028235e38] {
        for f in [sin_f32, cos_f32] {
            let y = f(x);
            assert!(y.is_finite() && (-1.0..=1.0).contains(&y), "{x:e} -> {y}");
        }
        assert!(tan_f32(x).is_finite());
    }
}

/// The dispatched (vectorized) loops must agree bit-for-bit with the scalar
/// kernel of the same FMA flavour (sin and cos after the slice entry points' recompute of
/// huge arguments, which the unchecked trig maps rely on).
#[test]
fn vectorized_matches_scalar() {
    let mut rng = Rng(42);
    let mut inp: Vec<f32> = (0..100_003)
        .map(|_| f32::from_bits(rng.next() as u32))
        .collect();
    inp.extend_from_slice(SPECIALS);
    for i in 0..50_000 {
        inp.push((rng.unit() * 40.0 - 20.0) as f32 * if i % 2 == 0 { 1.0 } else { 1e-3 });
    }
    let mut out = vec![0.0f32; inp.len()];
    let level = simd_level();
    let fma = level != SimdLevel::Baseline || FMA_DEFAULT;
    macro_rules! chk {
        ($($t:ident => $k:ident $(, $fix:expr)?);*) => {$(
            map_f32::<$t>(&inp, &mut out);
            #[allow(unused_mut)] // mutated only by the kernels with a fix
            let mut want: Vec<f32> = inp
                .iter()
                .map(|x| if fma { $k::<true>(*x) } else { $k::<false>(*x) })
                .collect();
            $(
                fix_huge_trig_args(&inp, &mut out, $fix);
                fix_huge_trig_args(&inp, &mut want, $fix);
            )?
            for ((x, y), s) in inp.iter().zip(&out).zip(&want) {
                assert!(s.to_bits() == y.to_bits() || (s.is_nan() && y.is_nan()),
                    "{} {:?}: x={x:e} scalar={s:e} simd={y:e}", stringify!($k), level);
            }
        )*};
    }
    chk!(Exp => exp_k; Expm1 => expm1_k; Log => ln_k; Log1p => ln_1p_k; Log2 => log2_k;
         Log10 => log10_k; Sin => sin_k, SIN_FIX; Cos => cos_k, COS_FIX; Tan => tan_k;
         Tanh => tanh_k; Sigmoid => sigmoid_k; Erf => erf_k);
}

/// Error in f64 ulps vs glibc's f64 result (itself < 1 ulp from exact).
fn ulp_err64(got: f64, want: f64) -> f64 {
    if want.is_nan() || got.is_nan() {
        return if want.is_nan() && got.is_nan() {
            0.0
        } else {
            f64::INFINITY
        };
    }
    if want.is_infinite() || got.is_infinite() {
        return if got == want { 0.0 } else { f64::INFINITY };
    }
    let a = want.abs();
    let e = if a < f64::MIN_POSITIVE {
        -1022
    } else {
        ((a.to_bits() >> 52) as i32) - 1023
    };
    let ue = e - 52; // ulp = 2^ue, possibly subnormal
    let ulp = if ue >= -1022 {
        f64::from_bits(((ue + 1023) as u64) << 52)
    } else {
        f64::from_bits(1u64 << (ue + 1074))
    };
    (got - want).abs() / ulp
}

#[test]
fn accuracy_f64() {
    let n = samples() / 2;
    type K64 = fn(f64) -> f64;
    let cases: [(&str, [K64; 2], K64, &[(f64, f64)]); 2] = [
        (
            "exp_f64",
            [exp_f64_k::<false>, exp_f64_k::<true>],
            f64::exp,
            &[(-746.0, 710.0), (-1.0, 1.0)],
        ),
        (
            "log_f64",
            [ln_f64_k::<false>, ln_f64_k::<true>],
            f64::ln,
            &[(0.0, 4.0), (0.5, 2.0), (0.0, 1e300)],
        ),
    ];
    let specials = [
        0.0,
        -0.0,
        1.0,
        -1.0,
        709.78,
        709.79,
        -745.13,
        -745.2,
        -708.4,
        5e-324,
        2.2250738585072014e-308,
        f64::MAX,
        f64::INFINITY,
        f64::NEG_INFINITY,
        f64::NAN,
    ];
    for (name, ks, reference, ranges) in cases {
        for (fi, k) in ks.iter().enumerate() {
            let mut worst = (0.0f64, 0.0f64);
            let mut rng = Rng(7 + fi as u64);
            let mut check = |x: f64| {
                let e = ulp_err64(k(x), reference(x));
                if e > worst.0 {
                    worst = (e, x);
                }
            };
            specials.iter().for_each(|&x| check(x));
            for i in 0..n {
                let x = if i % 5 < 2 {
                    f64::from_bits(rng.next())
                } else {
                    let (lo, hi) = ranges[i % ranges.len()];
                    lo + (hi - lo) * rng.unit()
                };
                check(x);
            }
            println!(
                "{name:8} fma={} max_ulp(f64)={:.3} at x={:e}",
                fi == 1,
                worst.0,
                worst.1
            );
            assert!(worst.0 <= 2.0, "{name} fma={}: {worst:?}", fi == 1);
        }
    }
    assert_eq!(exp_f64(-0.0), 1.0);
    assert_eq!(exp_f64(800.0), f64::INFINITY);
    assert_eq!(exp_f64(-800.0), 0.0);
    assert!(exp_f64(f64::NAN).is_nan());
    assert_eq!(ln_f64(0.0), f64::NEG_INFINITY);
    assert!(ln_f64(-1.0).is_nan());
    assert_eq!(ln_f64(1.0), 0.0);
    assert_eq!(ln_f64(f64::INFINITY), f64::INFINITY);
    // dispatched loop == scalar kernel
    let inp: Vec<f64> = (0..10_007).map(|i| (i as f64 - 5000.0) * 0.173).collect();
    let mut out = vec![0.0; inp.len()];
    let fma = simd_level() != SimdLevel::Baseline || FMA_DEFAULT;
    map_f64::<Exp>(&inp, &mut out);
    for (x, y) in inp.iter().zip(&out) {
        let s = if fma {
            exp_f64_k::<true>(*x)
        } else {
            exp_f64_k::<false>(*x)
        };
        assert_eq!(s.to_bits(), y.to_bits());
    }
}

/// Every f32 bit pattern (4.3e9 inputs) for every kernel, FMA and not.
/// `cargo test --release -- --ignored exhaustive --nocapture`; restrict with
/// FAST_MATH_ONLY=exp,sin, FAST_MATH_STRIDE=k (every k-th pattern) and
/// FAST_MATH_THREADS=n.
#[test]
#[ignore]
fn exhaustive() {
    let only = std::env::var("FAST_MATH_ONLY").unwrap_or_default();
    let stride: u64 = std::env::var("FAST_MATH_STRIDE")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1);
    let threads: u64 = std::env::var("FAST_MATH_THREADS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            std::thread::available_parallelism()
                .map(|n| n.get() as u64)
                .unwrap_or(1)
        });
    for c in cases() {
        if !only.is_empty() && !only.split(',').any(|o| o == c.name) {
            continue;
        }
        for fi in 0..2 {
            let k = c.k[fi];
            let c = &c;
            let res: Vec<(f64, f32)> = std::thread::scope(|s| {
                let hs: Vec<_> = (0..threads)
                    .map(|t| {
                        s.spawn(move || {
                            let mut w = (0.0f64, 0.0f32);
                            let mut b = t * stride;
                            while b < 1u64 << 32 {
                                let x = f32::from_bits(b as u32);
                                b += threads * stride;
                                let got = k(x);
                                if absf(x) >= c.exact_below || x.is_nan() || x.is_infinite() {
                                    assert!(
                                        !x.is_finite() || (got.is_finite() && absf(got) <= c.bound)
                                    );
                                    continue;
                                }
                                let e = ulp_err(got, (c.reference)(x as f64));
                                if e > w.0 {
                                    w = (e, x);
                                }
                            }
                            w
                        })
                    })
                    .collect();
                hs.into_iter().map(|h| h.join().unwrap()).collect()
            });
            let w = res
                .into_iter()
                .fold((0.0, 0.0), |a, b| if b.0 > a.0 { b } else { a });
            println!(
                "EXHAUSTIVE {:8} fma={} max_ulp={:.3} at x={:e} ({:#010x})",
                c.name,
                fi == 1,
                w.0,
                w.1,
                w.1.to_bits()
            );
        }
    }
}
