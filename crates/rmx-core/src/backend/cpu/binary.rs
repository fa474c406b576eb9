//! Elementwise binary kernels. Inputs arrive broadcast to the output shape and cast to
//! one dtype; the op layer has applied MLX's promotion rules and chosen `out_dtype`.

use super::loops::map2;
use super::math::FloatElem;
use crate::array::ArrayData;
use crate::backend::BinaryOp;
use crate::dtype::Dtype;
use crate::error::Result;
use half::{bf16, f16};
use num_complex::Complex32;
use num_traits::{Float, Zero};

pub fn binary(op: BinaryOp, a: &ArrayData, b: &ArrayData, out_dtype: Dtype) -> Result<ArrayData> {
    let out = ArrayData::alloc(out_dtype, &a.shape)?;
    binary_into(op, a, b, &out)?;
    Ok(out)
}

/// Writes `a op b` into `out`, a dense array of the inputs' (broadcast) shape: a fresh
/// one, or a donated input itself when the other input is contiguous or a scalar.
pub fn binary_into(op: BinaryOp, a: &ArrayData, b: &ArrayData, out: &ArrayData) -> Result<()> {
    if op.is_comparison() {
        return compare(op, a, b, out);
    }
    match a.dtype {
        Dtype::Float16 => float_binary::<f16>(op, a, b, out)?,
        Dtype::Bfloat16 => float_binary::<bf16>(op, a, b, out)?,
        Dtype::Float32 => float_binary::<f32>(op, a, b, out)?,
        Dtype::Float64 => float_binary::<f64>(op, a, b, out)?,
        Dtype::Complex64 => complex_binary(op, a, b, out)?,
        Dtype::Bool => bool_binary(op, a, b, out)?,
        Dtype::Uint8 => int_binary::<u8>(op, a, b, out)?,
        Dtype::Uint16 => int_binary::<u16>(op, a, b, out)?,
        Dtype::Uint32 => int_binary::<u32>(op, a, b, out)?,
        Dtype::Uint64 => int_binary::<u64>(op, a, b, out)?,
        Dtype::Int8 => int_binary::<i8>(op, a, b, out)?,
        Dtype::Int16 => int_binary::<i16>(op, a, b, out)?,
        Dtype::Int32 => int_binary::<i32>(op, a, b, out)?,
        Dtype::Int64 => int_binary::<i64>(op, a, b, out)?,
    }
    Ok(())
}

fn unsupported(op: BinaryOp, d: Dtype) -> crate::error::Error {
    crate::type_err!("[{op:?}] Not supported for inputs of type {d}.")
}

fn compare(op: BinaryOp, a: &ArrayData, b: &ArrayData, out: &ArrayData) -> Result<()> {
    use BinaryOp::*;
    macro_rules! cmp {
        ($T:ty, $lt:expr) => {{
            let lt = $lt;
            match op {
                Equal => map2::<$T, bool>(a, b, out, |x, y| x == y),
                NotEqual => map2::<$T, bool>(a, b, out, |x, y| x != y),
                Less => map2::<$T, bool>(a, b, out, move |x, y| lt(&x, &y)),
                LessEqual => map2::<$T, bool>(a, b, out, move |x, y| lt(&x, &y) || x == y),
                Greater => map2::<$T, bool>(a, b, out, move |x, y| lt(&y, &x)),
                GreaterEqual => map2::<$T, bool>(a, b, out, move |x, y| lt(&y, &x) || x == y),
                NanEqual => map2::<$T, bool>(a, b, out, |x, y| x == y || (x != x && y != y)),
                LogicalAnd | LogicalOr => unreachable!(),
                _ => unreachable!(),
            }
        }};
    }
    if matches!(op, LogicalAnd | LogicalOr) {
        if a.dtype != Dtype::Bool {
            return Err(unsupported(op, a.dtype));
        }
        match op {
            LogicalAnd => map2::<bool, bool>(a, b, out, |x, y| x && y),
            _ => map2::<bool, bool>(a, b, out, |x, y| x || y),
        }
        return Ok(());
    }
    crate::dispatch!(a.dtype, T => cmp!(T, |x: &T, y: &T| crate::element::Element::lt(x, y)));
    Ok(())
}

fn bool_binary(op: BinaryOp, a: &ArrayData, b: &ArrayData, out: &ArrayData) -> Result<()> {
    use BinaryOp::*;
    match op {
        Add | Maximum | BitwiseOr => map2::<bool, bool>(a, b, out, |x, y| x || y),
        Multiply | Minimum | BitwiseAnd => map2::<bool, bool>(a, b, out, |x, y| x && y),
        BitwiseXor | Subtract => map2::<bool, bool>(a, b, out, |x, y| x ^ y),
        // as C++ does on bools: computed in int, converted back to bool
        Remainder => map2::<bool, bool>(a, b, out, |x, y| x && !y),
        FloorDivide | Divide => map2::<bool, bool>(a, b, out, |x, y| x && y),
        Power => map2::<bool, bool>(a, b, out, |x, y| x || !y),
        _ => return Err(unsupported(op, Dtype::Bool)),
    }
    Ok(())
}

/// Integer arithmetic with wrap-around and no traps (x / 0 gives 0 like NumPy).
pub trait IntArith: Copy + PartialOrd + Send + Sync + 'static {
    fn add_w(self, o: Self) -> Self;
    fn sub_w(self, o: Self) -> Self;
    fn mul_w(self, o: Self) -> Self;
    fn floor_div(self, o: Self) -> Self;
    fn rem_py(self, o: Self) -> Self;
    fn pow_i(self, o: Self) -> Self;
    fn and(self, o: Self) -> Self;
    fn or(self, o: Self) -> Self;
    fn xor(self, o: Self) -> Self;
    fn shl(self, o: Self) -> Self;
    fn shr(self, o: Self) -> Self;
}

macro_rules! int_arith {
    ($t:ty, $signed:expr) => {
        impl IntArith for $t {
            #[inline(always)]
            fn add_w(self, o: Self) -> Self {
                self.wrapping_add(o)
            }
            #[inline(always)]
            fn sub_w(self, o: Self) -> Self {
                self.wrapping_sub(o)
            }
            #[inline(always)]
            fn mul_w(self, o: Self) -> Self {
                self.wrapping_mul(o)
            }
            #[inline(always)]
            #[allow(unused_comparisons)]
            fn floor_div(self, o: Self) -> Self {
                if o == 0 {
                    return 0;
                }
                let q = self.wrapping_div(o);
                if $signed && (self % o != 0) && ((self < 0) != (o < 0)) {
                    q.wrapping_sub(1)
                } else {
                    q
                }
            }
            #[inline(always)]
            #[allow(unused_comparisons)]
            fn rem_py(self, o: Self) -> Self {
                if o == 0 {
                    return self;
                }
                let r = self.wrapping_rem(o);
                if $signed && r != 0 && ((r < 0) != (o < 0)) {
                    r.wrapping_add(o)
                } else {
                    r
                }
            }
            #[inline(always)]
            #[allow(unused_comparisons)]
            fn pow_i(self, o: Self) -> Self {
                if o < 0 {
                    return 0;
                }
                let mut base = self;
                let mut e = o;
                let mut acc: $t = 1;
                while e > 0 {
                    if e & 1 == 1 {
                        acc = acc.wrapping_mul(base);
                    }
                    base = base.wrapping_mul(base);
                    e >>= 1;
                }
                acc
            }
            #[inline(always)]
            fn and(self, o: Self) -> Self {
                self & o
            }
            #[inline(always)]
            fn or(self, o: Self) -> Self {
                self | o
            }
            #[inline(always)]
            fn xor(self, o: Self) -> Self {
                self ^ o
            }
            #[inline(always)]
            #[allow(unused_comparisons)]
            fn shl(self, o: Self) -> Self {
                if o < 0 || o as u64 >= (std::mem::size_of::<$t>() * 8) as u64 {
                    0
                } else {
                    self << o
                }
            }
            #[inline(always)]
            #[allow(unused_comparisons)]
            fn shr(self, o: Self) -> Self {
                let bits = (std::mem::size_of::<$t>() * 8) as u64;
                if o < 0 || o as u64 >= bits {
                    if self < 0 {
                        (0 as $t).wrapping_sub(1)
                    } else {
                        0
                    }
                } else {
                    self >> o
                }
            }
        }
    };
}
int_arith!(u8, false);
int_arith!(u16, false);
int_arith!(u32, false);
int_arith!(u64, false);
int_arith!(i8, true);
int_arith!(i16, true);
int_arith!(i32, true);
int_arith!(i64, true);

fn int_binary<T: IntArith>(
    op: BinaryOp,
    a: &ArrayData,
    b: &ArrayData,
    out: &ArrayData,
) -> Result<()> {
    use BinaryOp::*;
    match op {
        Add => map2::<T, T>(a, b, out, |x, y| x.add_w(y)),
        Subtract => map2::<T, T>(a, b, out, |x, y| x.sub_w(y)),
        Multiply => map2::<T, T>(a, b, out, |x, y| x.mul_w(y)),
        Divide | FloorDivide => map2::<T, T>(a, b, out, |x, y| x.floor_div(y)),
        Remainder => map2::<T, T>(a, b, out, |x, y| x.rem_py(y)),
        Power => map2::<T, T>(a, b, out, |x, y| x.pow_i(y)),
        Maximum => map2::<T, T>(a, b, out, |x, y| if x > y { x } else { y }),
        Minimum => map2::<T, T>(a, b, out, |x, y| if x < y { x } else { y }),
        BitwiseAnd => map2::<T, T>(a, b, out, |x, y| x.and(y)),
        BitwiseOr => map2::<T, T>(a, b, out, |x, y| x.or(y)),
        BitwiseXor => map2::<T, T>(a, b, out, |x, y| x.xor(y)),
        LeftShift => map2::<T, T>(a, b, out, |x, y| x.shl(y)),
        RightShift => map2::<T, T>(a, b, out, |x, y| x.shr(y)),
        _ => {
            return Err(crate::type_err!(
                "[{op:?}] Not supported for integer inputs."
            ))
        }
    }
    Ok(())
}

/// MLX's `maximum` of floats: NaN on the left wins; NaN only on the right loses.
#[inline(always)]
pub(super) fn float_maximum<C: Float>(x: C, y: C) -> C {
    if x.is_nan() || x > y {
        x
    } else {
        y
    }
}

/// MLX's `minimum` of floats, with `float_maximum`'s NaN rule.
#[inline(always)]
pub(super) fn float_minimum<C: Float>(x: C, y: C) -> C {
    if x.is_nan() || x < y {
        x
    } else {
        y
    }
}

fn float_binary<T: FloatElem + Send + Sync>(
    op: BinaryOp,
    a: &ArrayData,
    b: &ArrayData,
    out: &ArrayData,
) -> Result<()> {
    use BinaryOp::*;
    macro_rules! f {
        ($e:expr) => {
            map2::<T, T>(a, b, out, |x, y| T::down($e(x.up(), y.up())))
        };
    }
    type C<T> = <T as FloatElem>::C;
    match op {
        Add => f!(|x: C<T>, y: C<T>| x + y),
        Subtract => f!(|x: C<T>, y: C<T>| x - y),
        Multiply => f!(|x: C<T>, y: C<T>| x * y),
        Divide => f!(|x: C<T>, y: C<T>| x / y),
        Power => f!(|x: C<T>, y: C<T>| x.powf(y)),
        Maximum => f!(float_maximum::<C<T>>),
        Minimum => f!(float_minimum::<C<T>>),
        // the quotient is rounded to T before the floor, as MLX computes in T
        FloorDivide => f!(|x: C<T>, y: C<T>| T::down(x / y).up().floor()),
        // Python-style: the result has the divisor's sign
        Remainder => f!(|x: C<T>, y: C<T>| {
            let r = x % y;
            if r != C::<T>::zero() && ((r < C::<T>::zero()) != (y < C::<T>::zero())) {
                r + y
            } else {
                r
            }
        }),
        Arctan2 => f!(|x: C<T>, y: C<T>| x.atan2(y)),
        LogAddExp => f!(|x: C<T>, y: C<T>| {
            if x.is_nan() || y.is_nan() {
                return C::<T>::nan();
            }
            let m = if x > y { x } else { y };
            if m == C::<T>::neg_infinity() {
                return m;
            }
            if m == C::<T>::infinity() {
                return m;
            }
            m + ((x - m).exp() + (y - m).exp()).ln()
        }),
        _ => {
            return Err(crate::error::Error::Runtime(format!(
                "[{}] Only allowed on integer or boolean types but got types {} and {}.",
                bitwise_name(op),
                a.dtype,
                b.dtype
            )))
        }
    }
    Ok(())
}

pub fn bitwise_name(op: BinaryOp) -> &'static str {
    match op {
        BinaryOp::BitwiseAnd => "bitwise_and",
        BinaryOp::BitwiseOr => "bitwise_or",
        BinaryOp::BitwiseXor => "bitwise_xor",
        BinaryOp::LeftShift => "left_shift",
        BinaryOp::RightShift => "right_shift",
        _ => "binary",
    }
}

fn complex_binary(op: BinaryOp, a: &ArrayData, b: &ArrayData, out: &ArrayData) -> Result<()> {
    use BinaryOp::*;
    macro_rules! c {
        ($e:expr) => {
            map2::<Complex32, Complex32>(a, b, out, $e)
        };
    }
    let lt = |x: &Complex32, y: &Complex32| x.re < y.re || (x.re == y.re && x.im < y.im);
    let nan = |x: &Complex32| x.re.is_nan() || x.im.is_nan();
    match op {
        Add => c!(|x, y| x + y),
        Subtract => c!(|x, y| x - y),
        Multiply => c!(|x, y| x * y),
        // complex floor division divides (MLX applies no floor to complex values)
        Divide | FloorDivide => c!(complex_div),
        Power => c!(|x: Complex32, y: Complex32| {
            if x == Complex32::new(0.0, 0.0) && y == Complex32::new(0.0, 0.0) {
                Complex32::new(1.0, 0.0)
            } else {
                x.powc(y)
            }
        }),
        LogAddExp => c!(|x: Complex32, y: Complex32| {
            let (m, o) = if x.re >= y.re { (x, y) } else { (y, x) };
            if m.re.is_infinite() && m.re < 0.0 {
                return m;
            }
            m + (Complex32::new(1.0, 0.0) + (o - m).exp()).ln()
        }),
        Maximum => c!(move |x, y| if nan(&x) || (!nan(&y) && lt(&y, &x)) {
            x
        } else {
            y
        }),
        Minimum => c!(move |x, y| if nan(&x) || (!nan(&y) && lt(&x, &y)) {
            x
        } else {
            y
        }),
        _ => return Err(unsupported(op, Dtype::Complex64)),
    }
    Ok(())
}

/// Complex division with C99 Annex G semantics (what C++'s std::complex gives):
/// finite / 0 is infinite, and scaling avoids overflow.
pub fn complex_div(x: Complex32, y: Complex32) -> Complex32 {
    let (a, b, mut c, mut d) = (x.re as f64, x.im as f64, y.re as f64, y.im as f64);
    let logbw = c.abs().max(d.abs()).log2().floor();
    let mut ilogbw = 0i32;
    if logbw.is_finite() {
        ilogbw = logbw as i32;
        c = libm::scalbn(c, -ilogbw);
        d = libm::scalbn(d, -ilogbw);
    }
    let denom = c * c + d * d;
    let mut re = libm::scalbn((a * c + b * d) / denom, -ilogbw);
    let mut im = libm::scalbn((b * c - a * d) / denom, -ilogbw);
    if re.is_nan() && im.is_nan() {
        if denom == 0.0 && (!a.is_nan() || !b.is_nan()) {
            re = f64::INFINITY.copysign(c) * a;
            im = f64::INFINITY.copysign(c) * b;
        } else if (a.is_infinite() || b.is_infinite()) && c.is_finite() && d.is_finite() {
            let a2 = (if a.is_infinite() { 1.0f64 } else { 0.0 }).copysign(a);
            let b2 = (if b.is_infinite() { 1.0f64 } else { 0.0 }).copysign(b);
            re = f64::INFINITY * (a2 * c + b2 * d);
            im = f64::INFINITY * (b2 * c - a2 * d);
        } else if logbw == f64::INFINITY && a.is_finite() && b.is_finite() {
            let c2 = (if c.is_infinite() { 1.0f64 } else { 0.0 }).copysign(c);
            let d2 = (if d.is_infinite() { 1.0f64 } else { 0.0 }).copysign(d);
            re = 0.0 * (a * c2 + b * d2);
            im = 0.0 * (b * c2 - a * d2);
        }
    }
    Complex32::new(re as f32, im as f32)
}
