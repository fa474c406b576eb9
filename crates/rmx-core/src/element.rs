//! The Rust types behind each dtype, conversions between them, and the
//! `dispatch!` macro that turns a runtime `Dtype` into a generic type parameter.

use crate::dtype::Dtype;
use half::{bf16, f16};
use num_complex::Complex32;

/// A dynamically typed scalar: fill values, `item()` results and cast intermediates.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Scalar {
    Bool(bool),
    Int(i64),
    UInt(u64),
    Float(f64),
    Complex(Complex32),
}

impl Scalar {
    pub fn as_f64(self) -> f64 {
        match self {
            Scalar::Bool(b) => b as u8 as f64,
            Scalar::Int(i) => i as f64,
            Scalar::UInt(u) => u as f64,
            Scalar::Float(f) => f,
            Scalar::Complex(c) => c.re as f64,
        }
    }
    pub fn as_i64(self) -> i64 {
        match self {
            Scalar::Bool(b) => b as i64,
            Scalar::Int(i) => i,
            Scalar::UInt(u) => u as i64,
            Scalar::Float(f) => f as i64,
            Scalar::Complex(c) => c.re as i64,
        }
    }
    pub fn as_u64(self) -> u64 {
        match self {
            Scalar::Bool(b) => b as u64,
            Scalar::Int(i) => i as u64,
            Scalar::UInt(u) => u,
            // Go through i64 so negative floats wrap like C casts do.
            Scalar::Float(f) => {
                if f < 0.0 {
                    f as i64 as u64
                } else {
                    f as u64
                }
            }
            Scalar::Complex(c) => c.re as u64,
        }
    }
    pub fn as_bool(self) -> bool {
        match self {
            Scalar::Bool(b) => b,
            Scalar::Int(i) => i != 0,
            Scalar::UInt(u) => u != 0,
            Scalar::Float(f) => f != 0.0,
            Scalar::Complex(c) => c.re != 0.0 || c.im != 0.0,
        }
    }
    pub fn as_complex(self) -> Complex32 {
        match self {
            Scalar::Complex(c) => c,
            other => Complex32::new(other.as_f64() as f32, 0.0),
        }
    }
    /// The dtype MLX gives an array made from this scalar alone.
    pub fn default_dtype(self) -> Dtype {
        match self {
            Scalar::Bool(_) => Dtype::Bool,
            Scalar::Int(i) if i < i32::MIN as i64 || i > i32::MAX as i64 => Dtype::Int64,
            Scalar::Int(_) => Dtype::Int32,
            Scalar::UInt(u) if u > i32::MAX as u64 => Dtype::Int64,
            Scalar::UInt(_) => Dtype::Int32,
            Scalar::Float(_) => Dtype::Float32,
            Scalar::Complex(_) => Dtype::Complex64,
        }
    }
}

/// A Rust type that stores the elements of one dtype.
pub trait Element: Copy + Send + Sync + 'static + PartialEq + std::fmt::Debug {
    const DTYPE: Dtype;
    fn to_scalar(self) -> Scalar;
    fn from_scalar(s: Scalar) -> Self;
    fn zero() -> Self;
    fn one() -> Self;
    /// Ordering used by comparisons and sorts (lexicographic for complex).
    fn lt(&self, other: &Self) -> bool;
}

/// Float to integer conversion as x86 C++ code does it (MLX's CPU casts): truncation
/// through a 32- or 64-bit signed conversion whose out-of-range result is the minimum
/// value, then wrap-around to the narrower type.
#[inline(always)]
fn f64_to_i32_x86(f: f64) -> i32 {
    let t = f.trunc();
    if t >= i32::MIN as f64 && t <= i32::MAX as f64 {
        t as i32
    } else {
        i32::MIN
    }
}
#[inline(always)]
fn f64_to_i64_x86(f: f64) -> i64 {
    let t = f.trunc();
    if (-9.223_372_036_854_776e18..9.223_372_036_854_776e18).contains(&t) {
        t as i64
    } else {
        i64::MIN
    }
}
#[inline(always)]
fn f64_to_u64_x86(f: f64) -> u64 {
    if (9.223_372_036_854_776e18..1.844_674_407_370_955_2e19).contains(&f) {
        f as u64
    } else {
        f64_to_i64_x86(f) as u64
    }
}

macro_rules! int_element {
    ($t:ty, $d:ident, $variant:ident, $conv:ident, $wide:ty, $from_float:expr) => {
        impl Element for $t {
            const DTYPE: Dtype = Dtype::$d;
            #[inline(always)]
            fn to_scalar(self) -> Scalar {
                Scalar::$variant(self as $wide)
            }
            #[inline(always)]
            fn from_scalar(s: Scalar) -> Self {
                match s {
                    Scalar::Float(f) => $from_float(f) as $t,
                    Scalar::Complex(c) => $from_float(c.re as f64) as $t,
                    other => other.$conv() as $t,
                }
            }
            fn zero() -> Self {
                0
            }
            fn one() -> Self {
                1
            }
            #[inline(always)]
            fn lt(&self, o: &Self) -> bool {
                self < o
            }
        }
    };
}
int_element!(u8, Uint8, UInt, as_u64, u64, f64_to_i32_x86);
int_element!(u16, Uint16, UInt, as_u64, u64, f64_to_i32_x86);
int_element!(u32, Uint32, UInt, as_u64, u64, f64_to_i64_x86);
int_element!(u64, Uint64, UInt, as_u64, u64, f64_to_u64_x86);
int_element!(i8, Int8, Int, as_i64, i64, f64_to_i32_x86);
int_element!(i16, Int16, Int, as_i64, i64, f64_to_i32_x86);
int_element!(i32, Int32, Int, as_i64, i64, f64_to_i32_x86);
int_element!(i64, Int64, Int, as_i64, i64, f64_to_i64_x86);

impl Element for bool {
    const DTYPE: Dtype = Dtype::Bool;
    #[inline(always)]
    fn to_scalar(self) -> Scalar {
        Scalar::Bool(self)
    }
    #[inline(always)]
    fn from_scalar(s: Scalar) -> Self {
        s.as_bool()
    }
    fn zero() -> Self {
        false
    }
    fn one() -> Self {
        true
    }
    #[inline(always)]
    fn lt(&self, o: &Self) -> bool {
        !*self & *o
    }
}

macro_rules! float_element {
    ($t:ty, $d:ident, $to:expr, $from:expr) => {
        impl Element for $t {
            const DTYPE: Dtype = Dtype::$d;
            #[inline(always)]
            fn to_scalar(self) -> Scalar {
                Scalar::Float($to(self))
            }
            #[inline(always)]
            fn from_scalar(s: Scalar) -> Self {
                $from(s.as_f64())
            }
            fn zero() -> Self {
                $from(0.0)
            }
            fn one() -> Self {
                $from(1.0)
            }
            #[inline(always)]
            fn lt(&self, o: &Self) -> bool {
                self < o
            }
        }
    };
}
float_element!(f16, Float16, |x: f16| x.to_f64(), f16::from_f64);
// Through f32, as MLX converts: `half`'s `bf16::from_f64` drops the low 32 mantissa bits
// before rounding, so an f32 just above a bfloat16 midpoint rounded down (11040.001 -> 11008).
float_element!(bf16, Bfloat16, |x: bf16| x.to_f64(), |x: f64| {
    bf16_from_f32(x as f32)
});

/// MLX's float32 -> bfloat16 conversion: round to nearest even, and every NaN becomes the
/// positive quiet NaN `0x7fc0` (`half` keeps the sign, so x86's negative default NaN from
/// `0/0` stayed negative: MLX's `to_fp8` of it then gave 126 where rmx gave 254).
#[inline(always)]
pub fn bf16_from_f32(x: f32) -> bf16 {
    if x.is_nan() {
        bf16::from_bits(0x7fc0)
    } else {
        bf16::from_f32(x)
    }
}
float_element!(f32, Float32, |x: f32| x as f64, |x: f64| x as f32);
float_element!(f64, Float64, |x: f64| x, |x: f64| x);

impl Element for Complex32 {
    const DTYPE: Dtype = Dtype::Complex64;
    #[inline(always)]
    fn to_scalar(self) -> Scalar {
        Scalar::Complex(self)
    }
    #[inline(always)]
    fn from_scalar(s: Scalar) -> Self {
        s.as_complex()
    }
    fn zero() -> Self {
        Complex32::new(0.0, 0.0)
    }
    fn one() -> Self {
        Complex32::new(1.0, 0.0)
    }
    #[inline(always)]
    fn lt(&self, o: &Self) -> bool {
        self.re < o.re || (self.re == o.re && self.im < o.im)
    }
}

/// Converts between element types with C-cast semantics (what MLX's `astype` does).
#[inline(always)]
pub fn cast<A: Element, B: Element>(a: A) -> B {
    B::from_scalar(a.to_scalar())
}

/// `dispatch!(dtype, T => body)` runs `body` with `T` the Rust type of `dtype`.
#[macro_export]
macro_rules! dispatch {
    ($dtype:expr, $T:ident => $body:expr) => {{
        use $crate::dtype::Dtype as __D;
        match $dtype {
            __D::Bool => {
                type $T = bool;
                $body
            }
            __D::Uint8 => {
                type $T = u8;
                $body
            }
            __D::Uint16 => {
                type $T = u16;
                $body
            }
            __D::Uint32 => {
                type $T = u32;
                $body
            }
            __D::Uint64 => {
                type $T = u64;
                $body
            }
            __D::Int8 => {
                type $T = i8;
                $body
            }
            __D::Int16 => {
                type $T = i16;
                $body
            }
            __D::Int32 => {
                type $T = i32;
                $body
            }
            __D::Int64 => {
                type $T = i64;
                $body
            }
            __D::Float16 => {
                type $T = half::f16;
                $body
            }
            __D::Bfloat16 => {
                type $T = half::bf16;
                $body
            }
            __D::Float32 => {
                type $T = f32;
                $body
            }
            __D::Float64 => {
                type $T = f64;
                $body
            }
            __D::Complex64 => {
                type $T = num_complex::Complex32;
                $body
            }
        }
    }};
}
