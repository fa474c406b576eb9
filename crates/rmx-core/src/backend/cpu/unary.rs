//! Elementwise unary kernels. The op layer has already chosen the output dtype and
//! cast integer inputs of float-only math to float32.

use super::loops::map1;
use super::math::{FloatElem, MathExt};
use crate::array::ArrayData;
use crate::backend::UnaryOp;
use crate::dtype::Dtype;
use crate::error::Result;
use half::{bf16, f16};
use num_complex::Complex32;
use num_traits::{Float, One, Zero};

/// Contiguous f32 transcendental math through the SIMD kernels of `fast_math`
/// (dispatched at run time to AVX-512 / AVX2+FMA / SSE2).
fn fast_f32(op: UnaryOp, x: &ArrayData, out: &ArrayData) -> bool {
    use super::fast_math as fm;
    /// Runs kernel `K`; where `exact` is given, elements with huge |x| (beyond the
    /// kernels' range reduction) are recomputed with it while the block is in cache.
    fn run<K: fm::Kernel>(x: &ArrayData, out: &ArrayData, exact: Option<fm::TrigFix>) {
        const BLOCK: usize = 4096;
        let n = x.numel();
        let xp = super::loops::ConstPtr(unsafe { x.ptr::<f32>() });
        let op = super::loops::SendPtr(unsafe { out.ptr_mut::<f32>() });
        let in_place = super::loops::aliases(xp.get(), op.get());
        super::loops::par_range(n, |s, e| {
            // `out` written over a donated `x`: each block is first copied to the stack
            let mut held = [0f32; BLOCK];
            let mut b = s;
            while b < e {
                let end = (b + BLOCK).min(e);
                let o = unsafe { std::slice::from_raw_parts_mut(op.get().add(b), end - b) };
                let inp: &[f32] = if in_place {
                    held[..end - b].copy_from_slice(o);
                    &held[..end - b]
                } else {
                    unsafe { std::slice::from_raw_parts(xp.get().add(b), end - b) }
                };
                fm::map_f32::<K>(inp, o);
                if let Some(f) = exact {
                    fm::fix_huge_trig_args(inp, o, f);
                }
                b = end;
            }
        });
    }
    if x.dtype != Dtype::Float32 || out.dtype != Dtype::Float32 || !x.is_row_contiguous() {
        return false;
    }
    use UnaryOp::*;
    match op {
        Exp => run::<fm::Exp>(x, out, None),
        Expm1 => run::<fm::Expm1>(x, out, None),
        Log => run::<fm::Log>(x, out, None),
        Log1p => run::<fm::Log1p>(x, out, None),
        Log2 => run::<fm::Log2>(x, out, None),
        Log10 => run::<fm::Log10>(x, out, None),
        Sin => run::<fm::Sin>(x, out, Some(fm::SIN_FIX)),
        Cos => run::<fm::Cos>(x, out, Some(fm::COS_FIX)),
        Tan => run::<fm::Tan>(x, out, Some(fm::TAN_FIX)),
        Tanh => run::<fm::Tanh>(x, out, None),
        Sigmoid => run::<fm::Sigmoid>(x, out, None),
        Erf => run::<fm::Erf>(x, out, None),
        _ => return false,
    }
    true
}

pub fn unary(op: UnaryOp, x: &ArrayData, out_dtype: Dtype) -> Result<ArrayData> {
    let out = ArrayData::alloc(out_dtype, &x.shape)?;
    unary_into(op, x, &out)?;
    Ok(out)
}

/// Writes `op(x)` into `out`, a dense array of `x`'s shape: a fresh one, or `x` itself
/// when it was donated (each element is read before it is overwritten).
pub fn unary_into(op: UnaryOp, x: &ArrayData, out: &ArrayData) -> Result<()> {
    if fast_f32(op, x, out) {
        return Ok(());
    }
    let unsupported =
        || crate::type_err!("[{:?}] Not supported for inputs of type {}.", op, x.dtype);
    use UnaryOp::*;
    match (op, x.dtype) {
        // predicates
        (IsNan, d) | (IsInf, d) | (IsPosInf, d) | (IsNegInf, d) if !d.is_inexact() => {
            map1::<u8, bool>(&as_bytes(x), out, |_| false);
        }
        (LogicalNot, d) => crate::dispatch!(d, T => {
            let zero = <T as crate::element::Element>::zero();
            map1::<T, bool>(x, out, move |v| v == zero)
        }),
        (_, Dtype::Float16) => float_unary::<f16>(op, x, out)?,
        (_, Dtype::Bfloat16) => float_unary::<bf16>(op, x, out)?,
        (_, Dtype::Float32) => float_unary::<f32>(op, x, out)?,
        (_, Dtype::Float64) => float_unary::<f64>(op, x, out)?,
        (_, Dtype::Complex64) => complex_unary(op, x, out)?,
        (_, Dtype::Bool) => match op {
            Abs | Floor | Ceil | Round | Trunc | Square | Sign => map1::<bool, bool>(x, out, |v| v),
            BitwiseInvert => map1::<bool, bool>(x, out, |v| !v),
            _ => return Err(unsupported()),
        },
        (_, d) => {
            macro_rules! int_ops {
                ($T:ty) => {
                    match op {
                        Abs => map1::<$T, $T>(x, out, |v| v.abs_of()),
                        Negative => map1::<$T, $T>(x, out, |v| v.wrapping_neg()),
                        Sign => map1::<$T, $T>(x, out, |v| v.sign_of()),
                        Square => map1::<$T, $T>(x, out, |v| v.wrapping_mul(v)),
                        Floor | Ceil | Round | Trunc | Real | Conjugate => {
                            map1::<$T, $T>(x, out, |v| v)
                        }
                        Imag => map1::<$T, $T>(x, out, |_| 0),
                        BitwiseInvert => map1::<$T, $T>(x, out, |v| !v),
                        _ => return Err(unsupported()),
                    }
                };
            }
            match d {
                Dtype::Uint8 => int_ops!(u8),
                Dtype::Uint16 => int_ops!(u16),
                Dtype::Uint32 => int_ops!(u32),
                Dtype::Uint64 => int_ops!(u64),
                Dtype::Int8 => int_ops!(i8),
                Dtype::Int16 => int_ops!(i16),
                Dtype::Int32 => int_ops!(i32),
                Dtype::Int64 => int_ops!(i64),
                _ => return Err(unsupported()),
            }
        }
    }
    Ok(())
}

/// Views any array as bytes of the same shape (for predicates that ignore the value).
fn as_bytes(x: &ArrayData) -> ArrayData {
    let size = x.dtype.size() as isize;
    ArrayData {
        buffer: x.buffer.clone(),
        dtype: Dtype::Uint8,
        shape: x.shape.clone(),
        strides: x.strides.iter().map(|s| s * size).collect(),
        offset: x.offset * size as usize,
    }
}

/// Sign and absolute value that are identities where unsigned.
trait IntSign: Copy {
    fn sign_of(self) -> Self;
    fn abs_of(self) -> Self;
}
macro_rules! int_sign_signed {
    ($($t:ty),*) => {$(
        impl IntSign for $t {
            #[inline(always)]
            fn sign_of(self) -> Self { self.signum() }
            #[inline(always)]
            fn abs_of(self) -> Self { self.wrapping_abs() }
        }
    )*};
}
macro_rules! int_sign_unsigned {
    ($($t:ty),*) => {$(
        impl IntSign for $t {
            #[inline(always)]
            fn sign_of(self) -> Self { (self > 0) as $t }
            #[inline(always)]
            fn abs_of(self) -> Self { self }
        }
    )*};
}
int_sign_signed!(i8, i16, i32, i64);
int_sign_unsigned!(u8, u16, u32, u64);

fn float_unary<T: FloatElem>(op: UnaryOp, x: &ArrayData, out: &ArrayData) -> Result<()> {
    use UnaryOp::*;
    let one = T::C::one();
    let zero = T::C::zero();
    macro_rules! f {
        ($e:expr) => {
            map1::<T, T>(x, out, |v| T::down($e(v.up())))
        };
    }
    macro_rules! pred {
        ($e:expr) => {
            map1::<T, bool>(x, out, |v| $e(v.up()))
        };
    }
    match op {
        Abs => f!(|v: T::C| v.abs()),
        Negative => f!(|v: T::C| -v),
        // 0 for zero and NaN, as MLX
        Sign => f!(|v: T::C| if v > zero {
            one
        } else if v < zero {
            -one
        } else {
            zero
        }),
        Sqrt => f!(|v: T::C| v.sqrt()),
        Rsqrt => f!(|v: T::C| one / v.sqrt()),
        Square => f!(|v: T::C| v * v),
        Reciprocal => f!(|v: T::C| one / v),
        Exp => f!(|v: T::C| v.exp()),
        Expm1 => f!(|v: T::C| v.exp_m1()),
        Log => f!(|v: T::C| v.ln()),
        Log1p => f!(|v: T::C| v.ln_1p()),
        Log2 => f!(|v: T::C| v.log2()),
        Log10 => f!(|v: T::C| v.log10()),
        Sin => f!(|v: T::C| v.sin()),
        Cos => f!(|v: T::C| v.cos()),
        Tan => f!(|v: T::C| v.tan()),
        Arcsin => f!(|v: T::C| v.asin()),
        Arccos => f!(|v: T::C| v.acos()),
        Arctan => f!(|v: T::C| v.atan()),
        Sinh => f!(|v: T::C| v.sinh()),
        Cosh => f!(|v: T::C| v.cosh()),
        Tanh => f!(|v: T::C| v.tanh()),
        // libm's forms stay finite for huge inputs (x*x would overflow)
        Arcsinh => f!(|v: T::C| v.asinh_()),
        Arccosh => f!(|v: T::C| v.acosh_()),
        Arctanh => f!(|v: T::C| v.atanh_()),
        Floor => f!(|v: T::C| v.floor()),
        Ceil => f!(|v: T::C| v.ceil()),
        Trunc => f!(|v: T::C| v.trunc()),
        // round half to even, as NumPy and MLX do
        Round => f!(|v: T::C| {
            let r = v.round();
            if (v - v.trunc()).abs() == <T::C as num_traits::NumCast>::from(0.5).unwrap() {
                (v / (one + one)).round() * (one + one)
            } else {
                r
            }
        }),
        Erf => f!(|v: T::C| v.erf_()),
        Erfinv => f!(|v: T::C| v.erfinv_()),
        Sigmoid => f!(|v: T::C| one / (one + (-v).exp())),
        Real | Conjugate => f!(|v: T::C| v),
        Imag => f!(|_v: T::C| zero),
        IsNan => pred!(|v: T::C| v.is_nan()),
        IsInf => pred!(|v: T::C| v.is_infinite()),
        IsPosInf => pred!(|v: T::C| v.is_infinite() && v > zero),
        IsNegInf => pred!(|v: T::C| v.is_infinite() && v < zero),
        LogicalNot | BitwiseInvert => {
            return Err(crate::type_err!(
                "[{op:?}] Not supported for inputs of type {}.",
                x.dtype
            ))
        }
    }
    Ok(())
}

fn complex_unary(op: UnaryOp, x: &ArrayData, out: &ArrayData) -> Result<()> {
    use UnaryOp::*;
    macro_rules! c {
        ($e:expr) => {
            map1::<Complex32, Complex32>(x, out, $e)
        };
    }
    match op {
        Abs => map1::<Complex32, f32>(x, out, |v| v.norm()),
        Real => map1::<Complex32, f32>(x, out, |v| v.re),
        Imag => map1::<Complex32, f32>(x, out, |v| v.im),
        IsNan => map1::<Complex32, bool>(x, out, |v| v.re.is_nan() || v.im.is_nan()),
        IsInf => map1::<Complex32, bool>(x, out, |v| v.re.is_infinite() || v.im.is_infinite()),
        IsPosInf => map1::<Complex32, bool>(x, out, |v| v.re == f32::INFINITY),
        IsNegInf => map1::<Complex32, bool>(x, out, |v| v.re == f32::NEG_INFINITY),
        Negative => c!(|v| -v),
        Conjugate => c!(|v| v.conj()),
        Square => c!(|v| v * v),
        Sqrt => c!(|v| v.sqrt()),
        Rsqrt => c!(|v| Complex32::new(1.0, 0.0) / v.sqrt()),
        Reciprocal => c!(|v| Complex32::new(1.0, 0.0) / v),
        Exp => c!(|v| v.exp()),
        Expm1 => c!(|v| v.exp() - Complex32::new(1.0, 0.0)),
        Log => c!(|v| v.ln()),
        Log1p => c!(|v| (v + Complex32::new(1.0, 0.0)).ln()),
        Log2 => c!(|v| v.ln() / std::f32::consts::LN_2),
        Log10 => c!(|v| v.ln() / std::f32::consts::LN_10),
        Sin => c!(|v| v.sin()),
        Cos => c!(|v| v.cos()),
        Tan => c!(|v| v.tan()),
        Arcsin => c!(|v| v.asin()),
        Arccos => c!(|v| v.acos()),
        Arctan => c!(|v| v.atan()),
        Sinh => c!(|v| v.sinh()),
        Cosh => c!(|v| v.cosh()),
        Tanh => c!(|v| v.tanh()),
        Arcsinh => c!(|v| v.asinh()),
        Arccosh => c!(|v| v.acosh()),
        Arctanh => c!(|v| v.atanh()),
        Round => c!(|v: Complex32| Complex32::new(round_half_even(v.re), round_half_even(v.im))),
        Sign => c!(|v| {
            let n = v.norm();
            if n == 0.0 {
                Complex32::new(0.0, 0.0)
            } else {
                v / n
            }
        }),
        Sigmoid => c!(|v| Complex32::new(1.0, 0.0) / (Complex32::new(1.0, 0.0) + (-v).exp())),
        _ => {
            return Err(crate::value_err!(
                "[{op:?}] Not supported for complex64 inputs."
            ))
        }
    }
    Ok(())
}

fn round_half_even(v: f32) -> f32 {
    let r = v.round();
    if (v - v.trunc()).abs() == 0.5 {
        (v / 2.0).round() * 2.0
    } else {
        r
    }
}
