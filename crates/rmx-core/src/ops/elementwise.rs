//! Elementwise ops: unary math, binary arithmetic with MLX's promotion and weak
//! scalars, comparisons, `where`, `clip`, `astype`, `view` and friends.

use crate::array::Array;
use crate::backend::{BinaryOp, UnaryOp};
use crate::dtype::{promote_types, Dtype};
use crate::element::Scalar;
use crate::error::Result;
use crate::primitives::elementwise::{AsType, Binary, BitCast, Select, Unary};
use crate::shape::{broadcast_many, broadcast_shapes};
use std::sync::Arc;

use super::shape::broadcast_to;

/// Converts to `dtype` (no-op when equal).
pub fn astype(x: &Array, dtype: Dtype) -> Result<Array> {
    if x.dtype() == dtype {
        return Ok(x.clone());
    }
    Ok(Array::from_op(
        x.shape().into(),
        dtype,
        Arc::new(AsType { dtype }),
        vec![x.clone()],
    ))
}

/// Reinterprets the bytes as `dtype`; the last axis scales by the size ratio.
pub fn view(x: &Array, dtype: Dtype) -> Result<Array> {
    if x.dtype() == dtype {
        return Ok(x.clone());
    }
    let (from, to) = (x.itemsize(), dtype.size());
    let mut shape: crate::shape::Shape = x.shape().into();
    if x.ndim() == 0 && from != to {
        return Err(crate::value_err!(
            "[view] Changing the type of a scalar is only allowed for types with the same size."
        ));
    }
    if from != to {
        let last = shape.len() - 1;
        if !(shape[last] * from).is_multiple_of(to) {
            return Err(crate::value_err!(
                "[view] Cannot view array of shape {:?} and type {} as {}: the last axis must be divisible by the size ratio.",
                x.shape(),
                x.dtype(),
                dtype
            ));
        }
        shape[last] = shape[last] * from / to;
    }
    Ok(Array::from_op(
        shape,
        dtype,
        Arc::new(BitCast { dtype }),
        vec![x.clone()],
    ))
}

fn unary_node(op: UnaryOp, x: &Array, out: Dtype) -> Array {
    Array::from_op(
        x.shape().into(),
        out,
        Arc::new(Unary { op }),
        vec![x.clone()],
    )
}

/// Applies a unary op with MLX's dtype rules.
pub fn unary(op: UnaryOp, x: &Array) -> Result<Array> {
    use UnaryOp::*;
    let d = x.dtype();
    let name = unary_name(op);
    match op {
        IsNan | IsInf | IsPosInf | IsNegInf | LogicalNot => Ok(unary_node(op, x, Dtype::Bool)),
        Negative if d == Dtype::Bool => Err(crate::value_err!(
            "[negative] Not supported for bool, use logical_not instead."
        )),
        Abs if d.is_complex() => Ok(unary_node(op, x, Dtype::Float32)),
        Abs | Negative | Sign | Square => Ok(unary_node(op, x, d)),
        Round if d.is_complex() => Ok(unary_node(op, x, d)),
        Expm1 | Sigmoid if d.is_complex() => {
            Err(crate::value_err!("[{name}] Not supported for complex64."))
        }
        Floor | Ceil | Round | Trunc => {
            if d.is_complex() {
                return Err(crate::value_err!("[{name}] Not supported for complex64."));
            }
            if !d.is_float() {
                return Ok(x.clone());
            }
            Ok(unary_node(op, x, d))
        }
        BitwiseInvert => {
            if d.is_inexact() {
                return Err(crate::value_err!(
                    "[bitwise_invert] Bitwise inverse only allowed on integer types."
                ));
            }
            Ok(unary_node(op, x, d))
        }
        Real | Imag => {
            if d.is_complex() {
                Ok(unary_node(op, x, Dtype::Float32))
            } else if op == Real {
                Ok(x.clone())
            } else {
                super::creation::zeros_like(x)
            }
        }
        Conjugate => {
            if d.is_complex() {
                Ok(unary_node(op, x, d))
            } else {
                Ok(x.clone())
            }
        }
        Erf | Erfinv if d.is_complex() => {
            Err(crate::value_err!("[{name}] Not supported for complex64."))
        }
        _ => {
            // float-only math: integers and bools go to float32
            let xf = astype(x, d.to_inexact())?;
            Ok(unary_node(op, &xf, xf.dtype()))
        }
    }
}

pub fn unary_name(op: UnaryOp) -> &'static str {
    use UnaryOp::*;
    match op {
        Abs => "abs",
        Negative => "negative",
        Sign => "sign",
        Sqrt => "sqrt",
        Rsqrt => "rsqrt",
        Square => "square",
        Reciprocal => "reciprocal",
        Exp => "exp",
        Expm1 => "expm1",
        Log => "log",
        Log1p => "log1p",
        Log2 => "log2",
        Log10 => "log10",
        Sin => "sin",
        Cos => "cos",
        Tan => "tan",
        Arcsin => "arcsin",
        Arccos => "arccos",
        Arctan => "arctan",
        Sinh => "sinh",
        Cosh => "cosh",
        Tanh => "tanh",
        Arcsinh => "arcsinh",
        Arccosh => "arccosh",
        Arctanh => "arctanh",
        Floor => "floor",
        Ceil => "ceil",
        Round => "round",
        Trunc => "trunc",
        Erf => "erf",
        Erfinv => "erfinv",
        Sigmoid => "sigmoid",
        LogicalNot => "logical_not",
        BitwiseInvert => "bitwise_invert",
        Real => "real",
        Imag => "imag",
        Conjugate => "conjugate",
        IsNan => "isnan",
        IsInf => "isinf",
        IsPosInf => "isposinf",
        IsNegInf => "isneginf",
    }
}

pub fn binary_name(op: BinaryOp) -> &'static str {
    use BinaryOp::*;
    match op {
        Add => "add",
        Subtract => "subtract",
        Multiply => "multiply",
        Divide => "divide",
        Power => "power",
        Maximum => "maximum",
        Minimum => "minimum",
        Remainder => "remainder",
        FloorDivide => "floor_divide",
        Arctan2 => "arctan2",
        LogAddExp => "logaddexp",
        Equal => "equal",
        NotEqual => "not_equal",
        Less => "less",
        LessEqual => "less_equal",
        Greater => "greater",
        GreaterEqual => "greater_equal",
        NanEqual => "array_equal",
        LogicalAnd => "logical_and",
        LogicalOr => "logical_or",
        BitwiseAnd => "bitwise_and",
        BitwiseOr => "bitwise_or",
        BitwiseXor => "bitwise_xor",
        LeftShift => "left_shift",
        RightShift => "right_shift",
    }
}

/// Casts and broadcasts arrays to a common dtype and shape.
pub fn broadcast_cast(arrays: &[&Array], dtype: Dtype) -> Result<Vec<Array>> {
    if arrays
        .iter()
        .all(|a| a.dtype() == dtype && a.shape() == arrays[0].shape())
    {
        // nothing to cast or broadcast (a common case for small graphs)
        return Ok(arrays.iter().map(|&a| a.clone()).collect());
    }
    let shapes: Vec<&[usize]> = arrays.iter().map(|a| a.shape()).collect();
    let shape = broadcast_many(&shapes)?;
    arrays
        .iter()
        .map(|a| broadcast_to(&astype(a, dtype)?, &shape))
        .collect()
}

/// Applies a binary op with MLX's promotion and broadcasting.
pub fn binary(op: BinaryOp, a: &Array, b: &Array) -> Result<Array> {
    use BinaryOp::*;
    let promoted = promote_types(a.dtype(), b.dtype());
    let unsupported_complex = matches!(op, Arctan2 | Remainder);
    if promoted.is_complex() && unsupported_complex {
        return Err(crate::value_err!(
            "[{}] Not supported for complex64.",
            binary_name(op)
        ));
    }
    let (compute, out) = match op {
        Divide | Arctan2 | LogAddExp => (promoted.to_inexact(), promoted.to_inexact()),
        Equal | NotEqual | Less | LessEqual | Greater | GreaterEqual | NanEqual => {
            (promoted, Dtype::Bool)
        }
        LogicalAnd | LogicalOr => (Dtype::Bool, Dtype::Bool),
        BitwiseAnd | BitwiseOr | BitwiseXor | LeftShift | RightShift => {
            if promoted.is_inexact() {
                return Err(crate::runtime_err!(
                    "[{}] Only allowed on integer or boolean types but got types {} and {}.",
                    binary_name(op),
                    a.dtype(),
                    b.dtype()
                ));
            }
            // shifting booleans happens in uint8
            let d = if matches!(op, LeftShift | RightShift) && promoted == Dtype::Bool {
                Dtype::Uint8
            } else {
                promoted
            };
            (d, d)
        }
        _ => (promoted, promoted),
    };
    let shape = broadcast_shapes(a.shape(), b.shape())?;
    let inputs = broadcast_cast(&[a, b], compute)?;
    Ok(Array::from_op(shape, out, binary_primitive(op), inputs))
}

/// The (stateless) primitive of `op`, made once: one allocation less per binary node.
fn binary_primitive(op: BinaryOp) -> Arc<dyn crate::primitive::Primitive> {
    use std::sync::OnceLock;
    type Slot = OnceLock<Arc<dyn crate::primitive::Primitive>>;
    #[allow(clippy::declare_interior_mutable_const)]
    const EMPTY: Slot = OnceLock::new();
    static MADE: [Slot; 64] = [EMPTY; 64];
    match MADE.get(op as usize) {
        Some(slot) => slot.get_or_init(|| Arc::new(Binary { op })).clone(),
        None => Arc::new(Binary { op }),
    }
}

/// A 0-d array for a Python-style scalar next to an array of dtype `other`
/// (MLX's weak typing: `int8_array + 1` stays int8, `int_array + 1.0` is float32).
pub fn weak_scalar(value: Scalar, other: Dtype) -> Result<Array> {
    if let Scalar::UInt(u) = value {
        if u > i64::MAX as u64 {
            return Err(crate::runtime_err!("Integer {u} does not fit in int64."));
        }
    }
    let dtype = match value {
        Scalar::Bool(_) => other,
        Scalar::Int(_) | Scalar::UInt(_) => {
            if other == Dtype::Bool {
                // wraps like a C cast: bool_array + 2**40 is int32
                Dtype::Int32
            } else {
                if other.is_integer() {
                    check_int_fits(value, other)?;
                }
                other
            }
        }
        // MLX makes a float scalar float32 unless the other side is a float type;
        // promotion then takes it to complex64 next to a complex array.
        Scalar::Float(_) => {
            if other.is_float() {
                other
            } else {
                Dtype::Float32
            }
        }
        Scalar::Complex(_) => Dtype::Complex64,
    };
    Array::scalar_of(value, dtype)
}

/// MLX rejects Python ints that do not fit the array's integer type, except for the
/// 64-bit types, where values wrap.
fn check_int_fits(value: Scalar, dtype: Dtype) -> Result<()> {
    if matches!(dtype, Dtype::Int64 | Dtype::Uint64) {
        return Ok(());
    }
    let info = crate::dtype::iinfo(dtype).expect("integer dtype");
    let v: i128 = match value {
        Scalar::Int(i) => i as i128,
        Scalar::UInt(u) => u as i128,
        _ => return Ok(()),
    };
    if v < info.min || v > info.max {
        return Err(crate::value_err!(
            "Converting {v} to {dtype} would result in overflow."
        ));
    }
    Ok(())
}

macro_rules! unary_fns {
    ($($name:ident => $op:ident),* $(,)?) => {$(
        #[doc = concat!("Elementwise `", stringify!($name), "`.")]
        pub fn $name(x: &Array) -> Result<Array> {
            unary(UnaryOp::$op, x)
        }
    )*};
}
unary_fns!(
    abs => Abs, negative => Negative, sign => Sign, sqrt => Sqrt, rsqrt => Rsqrt,
    square => Square, reciprocal => Reciprocal, exp => Exp, expm1 => Expm1, log => Log,
    log1p => Log1p, log2 => Log2, log10 => Log10, sin => Sin, cos => Cos, tan => Tan,
    arcsin => Arcsin, arccos => Arccos, arctan => Arctan, sinh => Sinh, cosh => Cosh,
    tanh => Tanh, arcsinh => Arcsinh, arccosh => Arccosh, arctanh => Arctanh,
    floor => Floor, ceil => Ceil, trunc => Trunc, erf => Erf, erfinv => Erfinv, sigmoid => Sigmoid,
    logical_not => LogicalNot, bitwise_invert => BitwiseInvert, real => Real, imag => Imag,
    conjugate => Conjugate, isnan => IsNan, isinf => IsInf, isposinf => IsPosInf,
    isneginf => IsNegInf,
);

macro_rules! binary_fns {
    ($($name:ident => $op:ident),* $(,)?) => {$(
        #[doc = concat!("Elementwise `", stringify!($name), "` with broadcasting.")]
        pub fn $name(a: &Array, b: &Array) -> Result<Array> {
            binary(BinaryOp::$op, a, b)
        }
    )*};
}
binary_fns!(
    add => Add, subtract => Subtract, multiply => Multiply, divide => Divide,
    power => Power, maximum => Maximum, minimum => Minimum, remainder => Remainder,
    floor_divide => FloorDivide, arctan2 => Arctan2, logaddexp => LogAddExp,
    equal => Equal, not_equal => NotEqual, less => Less, less_equal => LessEqual,
    greater => Greater, greater_equal => GreaterEqual, logical_and => LogicalAnd,
    logical_or => LogicalOr, bitwise_and => BitwiseAnd, bitwise_or => BitwiseOr,
    bitwise_xor => BitwiseXor, left_shift => LeftShift, right_shift => RightShift,
);

/// `(a // b, a % b)`.
pub fn divmod(a: &Array, b: &Array) -> Result<(Array, Array)> {
    Ok((floor_divide(a, b)?, remainder(a, b)?))
}

/// Rounds to `decimals` places (half to even).
pub fn round(x: &Array, decimals: i32) -> Result<Array> {
    if decimals == 0 || (decimals > 0 && !x.dtype().is_inexact()) {
        return unary(UnaryOp::Round, x);
    }
    if !x.dtype().is_inexact() {
        // negative decimals on integers: round in float32, back to the integer type
        let xf = astype(x, Dtype::Float32)?;
        return astype(&round(&xf, decimals)?, x.dtype());
    }
    let scale = weak_scalar(Scalar::Float(10f64.powi(decimals)), x.dtype())?;
    let scaled = multiply(x, &scale)?;
    divide(&unary(UnaryOp::Round, &scaled)?, &scale)
}

pub fn isfinite(x: &Array) -> Result<Array> {
    if !x.dtype().is_inexact() {
        return super::creation::full_like(x, Scalar::Bool(true), Some(Dtype::Bool));
    }
    logical_not(&logical_or(&isinf(x)?, &isnan(x)?)?)
}

pub fn degrees(x: &Array) -> Result<Array> {
    let xf = astype(x, x.dtype().to_inexact())?;
    multiply(
        &xf,
        &weak_scalar(Scalar::Float(180.0 / std::f64::consts::PI), xf.dtype())?,
    )
}

pub fn radians(x: &Array) -> Result<Array> {
    let xf = astype(x, x.dtype().to_inexact())?;
    multiply(
        &xf,
        &weak_scalar(Scalar::Float(std::f64::consts::PI / 180.0), xf.dtype())?,
    )
}

/// `where(cond, a, b)`: picks from `a` where `cond` is true, else from `b`.
pub fn where_(cond: &Array, a: &Array, b: &Array) -> Result<Array> {
    let dtype = promote_types(a.dtype(), b.dtype());
    let shapes = [cond.shape(), a.shape(), b.shape()];
    let shape = broadcast_many(&shapes)?;
    let c = broadcast_to(&astype(cond, Dtype::Bool)?, &shape)?;
    let ab = broadcast_cast(&[a, b], dtype)?;
    let (a2, b2) = (broadcast_to(&ab[0], &shape)?, broadcast_to(&ab[1], &shape)?);
    Ok(Array::from_op(
        shape,
        dtype,
        Arc::new(Select),
        vec![c, a2, b2],
    ))
}

/// Limits values to `[a_min, a_max]` (either may be absent).
pub fn clip(x: &Array, a_min: Option<&Array>, a_max: Option<&Array>) -> Result<Array> {
    if a_min.is_none() && a_max.is_none() {
        return Err(crate::value_err!(
            "At most one of a_min and a_max may be None"
        ));
    }
    let mut out = x.clone();
    if let Some(lo) = a_min {
        out = maximum(&out, lo)?;
    }
    if let Some(hi) = a_max {
        out = minimum(&out, hi)?;
    }
    Ok(out)
}

/// Replaces NaN with `nan` and infinities with `posinf`/`neginf` (defaults: 0 and the dtype's max/min).
pub fn nan_to_num(x: &Array, nan: f64, posinf: Option<f64>, neginf: Option<f64>) -> Result<Array> {
    let d = x.dtype();
    if !d.is_inexact() {
        return Ok(x.clone());
    }
    // MLX only fails when it needs finfo for a default bound
    if matches!(d, Dtype::Float64 | Dtype::Complex64) && (posinf.is_none() || neginf.is_none()) {
        return Err(crate::value_err!(
            "[nan_to_num] Does not yet support given type: {d}."
        ));
    }
    let fi = crate::dtype::finfo(d).expect("float dtype");
    let s = |v: f64| weak_scalar(Scalar::Float(v), d);
    let out = where_(&isnan(x)?, &s(nan)?, x)?;
    let out = where_(&isposinf(x)?, &s(posinf.unwrap_or(fi.max))?, &out)?;
    where_(&isneginf(x)?, &s(neginf.unwrap_or(fi.min))?, &out)
}

/// `|a - b| <= atol + rtol * |b|`, with NaNs equal when `equal_nan`.
pub fn isclose(a: &Array, b: &Array, rtol: f64, atol: f64, equal_nan: bool) -> Result<Array> {
    let d = promote_types(a.dtype(), b.dtype()).to_inexact();
    let (a, b) = (astype(a, d)?, astype(b, d)?);
    let diff = abs(&subtract(&a, &b)?)?;
    let tol = add(
        &weak_scalar(Scalar::Float(atol), d)?,
        &multiply(&weak_scalar(Scalar::Float(rtol), d)?, &abs(&b)?)?,
    )?;
    // finite differences within tolerance, or equal values (equal infinities)
    let close = logical_and(&less_equal(&diff, &tol)?, &isfinite(&diff)?)?;
    let mut out = logical_or(&close, &equal(&a, &b)?)?;
    if equal_nan {
        out = logical_or(&out, &logical_and(&isnan(&a)?, &isnan(&b)?)?)?;
    }
    Ok(out)
}

pub fn allclose(a: &Array, b: &Array, rtol: f64, atol: f64, equal_nan: bool) -> Result<Array> {
    super::reduce::all(&isclose(a, b, rtol, atol, equal_nan)?, None, false)
}

/// True when shapes are equal and every element is equal (NaN == NaN if `equal_nan`).
pub fn array_equal(a: &Array, b: &Array, equal_nan: bool) -> Result<Array> {
    if a.shape() != b.shape() {
        return Array::scalar_of(Scalar::Bool(false), Dtype::Bool);
    }
    let op = if equal_nan {
        BinaryOp::NanEqual
    } else {
        BinaryOp::Equal
    };
    super::reduce::all(&binary(op, a, b)?, None, false)
}

/// Elementwise exclusive or of truth values.
pub fn logical_xor(a: &Array, b: &Array) -> Result<Array> {
    not_equal(&astype(a, Dtype::Bool)?, &astype(b, Dtype::Bool)?)
}

/// `+x`: the array itself.
pub fn positive(x: &Array) -> Result<Array> {
    Ok(x.clone())
}

/// The same values, treated as a constant by the transforms.
pub fn stop_gradient(x: &Array) -> Result<Array> {
    Ok(Array::from_op(
        x.shape().into(),
        x.dtype(),
        Arc::new(crate::primitives::autodiff::StopGradient),
        vec![x.clone()],
    ))
}
