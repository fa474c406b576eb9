//! Scalar math the standard library lacks (erfinv) and float helpers used by kernels.

use half::{bf16, f16};
use num_traits::Float;

/// Float element types computed in a wider "compute" type (f16/bf16 in f32).
pub trait FloatElem: crate::element::Element + Copy {
    type C: Float + MathExt + Send + Sync;
    fn up(self) -> Self::C;
    fn down(c: Self::C) -> Self;
}

impl FloatElem for f16 {
    type C = f32;
    #[inline(always)]
    fn up(self) -> f32 {
        self.to_f32()
    }
    #[inline(always)]
    fn down(c: f32) -> Self {
        f16::from_f32(c)
    }
}
impl FloatElem for bf16 {
    type C = f32;
    #[inline(always)]
    fn up(self) -> f32 {
        self.to_f32()
    }
    #[inline(always)]
    fn down(c: f32) -> Self {
        crate::element::bf16_from_f32(c)
    }
}
impl FloatElem for f32 {
    type C = f32;
    #[inline(always)]
    fn up(self) -> f32 {
        self
    }
    #[inline(always)]
    fn down(c: f32) -> Self {
        c
    }
}
impl FloatElem for f64 {
    type C = f64;
    #[inline(always)]
    fn up(self) -> f64 {
        self
    }
    #[inline(always)]
    fn down(c: f64) -> Self {
        c
    }
}

/// Special functions for the compute types.
pub trait MathExt: Sized {
    fn erf_(self) -> Self;
    fn erfinv_(self) -> Self;
    fn asinh_(self) -> Self;
    fn acosh_(self) -> Self;
    fn atanh_(self) -> Self;
}

impl MathExt for f32 {
    #[inline]
    fn erf_(self) -> f32 {
        libm::erff(self)
    }
    #[inline]
    fn erfinv_(self) -> f32 {
        erfinv_f32(self)
    }
    #[inline]
    fn asinh_(self) -> f32 {
        libm::asinhf(self)
    }
    #[inline]
    fn acosh_(self) -> f32 {
        libm::acoshf(self)
    }
    #[inline]
    fn atanh_(self) -> f32 {
        libm::atanhf(self)
    }
}
impl MathExt for f64 {
    #[inline]
    fn erf_(self) -> f64 {
        libm::erf(self)
    }
    #[inline]
    fn erfinv_(self) -> f64 {
        erfinv_f64(self)
    }
    #[inline]
    fn asinh_(self) -> f64 {
        libm::asinh(self)
    }
    #[inline]
    fn acosh_(self) -> f64 {
        libm::acosh(self)
    }
    #[inline]
    fn atanh_(self) -> f64 {
        libm::atanh(self)
    }
}

/// Inverse error function in single precision, MLX's algorithm operation for operation
/// (N. Juffa's erfinvf: fused multiply-adds on log(1 - x^2), at most 2.36 ulp), so that
/// `normal` reproduces MLX's samples bit for bit.
#[allow(clippy::excessive_precision)]
pub fn erfinv_f32(a: f32) -> f32 {
    const TAIL: [f32; 9] = [
        3.03697567e-10,
        2.93243101e-8,
        1.22150334e-6,
        2.84108955e-5,
        3.93552968e-4,
        3.02698812e-3,
        4.83185798e-3,
        -2.64646143e-1,
        8.40016484e-1,
    ];
    const CENTRAL: [f32; 10] = [
        5.43877832e-9,
        1.43285448e-7,
        1.22774793e-6,
        1.12963626e-7,
        -5.61530760e-5,
        -1.47697632e-4,
        2.31468678e-3,
        1.15392581e-2,
        -2.32015476e-1,
        8.86226892e-1,
    ];
    let t = a.mul_add(0.0 - a, 1.0).ln();
    let coeffs: &[f32] = if t.abs() > 6.125 { &TAIL } else { &CENTRAL };
    let p = coeffs[1..].iter().fold(coeffs[0], |p, &c| p.mul_add(t, c));
    a * p
}

/// Inverse error function: Giles' single-precision approximation refined by two
/// Newton steps on erf, accurate to double rounding over (-1, 1).
pub fn erfinv_f64(x: f64) -> f64 {
    if x.is_nan() || !(-1.0..=1.0).contains(&x) {
        return f64::NAN;
    }
    if x == 1.0 {
        return f64::INFINITY;
    }
    if x == -1.0 {
        return f64::NEG_INFINITY;
    }
    let w = -((1.0 - x) * (1.0 + x)).ln();
    let mut p;
    if w < 5.0 {
        let w = w - 2.5;
        p = 2.810_226_36e-08;
        p = 3.432_739_39e-07 + p * w;
        p = -3.523_387_7e-06 + p * w;
        p = -4.391_506_54e-06 + p * w;
        p = 0.000_218_580_87 + p * w;
        p = -0.001_253_725_03 + p * w;
        p = -0.004_177_681_64 + p * w;
        p = 0.246_640_727 + p * w;
        p = 1.501_409_41 + p * w;
    } else {
        let w = w.sqrt() - 3.0;
        p = -0.000_200_214_257;
        p = 0.000_100_950_558 + p * w;
        p = 0.001_349_343_22 + p * w;
        p = -0.003_673_428_44 + p * w;
        p = 0.005_739_507_73 + p * w;
        p = -0.007_622_461_3 + p * w;
        p = 0.009_438_870_47 + p * w;
        p = 1.001_674_06 + p * w;
        p = 2.832_976_82 + p * w;
    }
    let mut y = p * x;
    // Newton refinement: f(y) = erf(y) - x, f'(y) = 2/sqrt(pi) exp(-y^2)
    for _ in 0..2 {
        let err = libm::erf(y) - x;
        y -= err / (std::f64::consts::FRAC_2_SQRT_PI * (-y * y).exp());
    }
    y
}
