//! Derivative tables for the elementwise primitives, written with ordinary lazy ops so
//! the derivatives are themselves differentiable. One line per op, as in tinygrad.

use crate::array::Array;
use crate::backend::{BinaryOp, UnaryOp};
use crate::element::Scalar;
use crate::error::Result;
use crate::ops;

fn c(v: f64, like: &Array) -> Result<Array> {
    ops::weak_scalar(Scalar::Float(v), like.dtype())
}

/// d out / d x for `out = op(x)`; None when the derivative is zero everywhere.
pub fn unary_derivative(op: UnaryOp, x: &Array, out: &Array) -> Result<Option<Array>> {
    use UnaryOp::*;
    let d = match op {
        Abs => ops::sign(x)?,
        Negative => ops::negative(&ops::ones_like(x)?)?,
        Sqrt => ops::divide(&c(0.5, x)?, out)?,
        Rsqrt => ops::multiply(&c(-0.5, x)?, &ops::divide(out, x)?)?,
        Square => ops::multiply(&c(2.0, x)?, x)?,
        Reciprocal => ops::negative(&ops::square(out)?)?,
        Exp => out.clone(),
        Expm1 => ops::add(out, &c(1.0, x)?)?,
        Log => ops::reciprocal(x)?,
        Log1p => ops::reciprocal(&ops::add(x, &c(1.0, x)?)?)?,
        Log2 => ops::reciprocal(&ops::multiply(x, &c(std::f64::consts::LN_2, x)?)?)?,
        Log10 => ops::reciprocal(&ops::multiply(x, &c(std::f64::consts::LN_10, x)?)?)?,
        Sin => ops::cos(x)?,
        Cos => ops::negative(&ops::sin(x)?)?,
        Tan => ops::add(&c(1.0, x)?, &ops::square(out)?)?,
        Arcsin => ops::rsqrt(&ops::subtract(&c(1.0, x)?, &ops::square(x)?)?)?,
        Arccos => ops::negative(&ops::rsqrt(&ops::subtract(&c(1.0, x)?, &ops::square(x)?)?)?)?,
        Arctan => ops::reciprocal(&ops::add(&c(1.0, x)?, &ops::square(x)?)?)?,
        Sinh => ops::cosh(x)?,
        Cosh => ops::sinh(x)?,
        Tanh => ops::subtract(&c(1.0, x)?, &ops::square(out)?)?,
        Arcsinh => ops::rsqrt(&ops::add(&ops::square(x)?, &c(1.0, x)?)?)?,
        Arccosh => ops::rsqrt(&ops::subtract(&ops::square(x)?, &c(1.0, x)?)?)?,
        Arctanh => ops::reciprocal(&ops::subtract(&c(1.0, x)?, &ops::square(x)?)?)?,
        Erf => ops::multiply(
            &c(std::f64::consts::FRAC_2_SQRT_PI, x)?,
            &ops::exp(&ops::negative(&ops::square(x)?)?)?,
        )?,
        Erfinv => ops::multiply(
            &c(std::f64::consts::PI.sqrt() / 2.0, x)?,
            &ops::exp(&ops::square(out)?)?,
        )?,
        Sigmoid => ops::multiply(out, &ops::subtract(&c(1.0, x)?, out)?)?,
        Real | Imag | Conjugate => {
            return Err(crate::value_err!(
                "[{}] Derivatives of complex parts are not implemented.",
                ops::unary_name(op)
            ))
        }
        Sign | Floor | Ceil | Round | Trunc | LogicalNot | BitwiseInvert | IsNan | IsInf
        | IsPosInf | IsNegInf => return Ok(None),
    };
    Ok(Some(d))
}

/// The vjp (`tangent` false) or jvp of the complex-part ops, which are linear but not
/// holomorphic: MLX sends a real cotangent back as `ct` (real), `i ct` (imag), and
/// conjugates for conjugate; tangents map through the op itself. None for other ops.
pub fn complex_part_rule(op: UnaryOp, g: &Array, tangent: bool) -> Result<Option<Array>> {
    use UnaryOp::*;
    Ok(Some(match (op, tangent) {
        (Real | Imag | Conjugate, true) => ops::unary(op, g)?,
        (Real, false) => ops::astype(g, crate::Dtype::Complex64)?,
        (Imag, false) => ops::multiply(
            &ops::astype(g, crate::Dtype::Complex64)?,
            &Array::scalar(Scalar::Complex(num_complex::Complex32::new(0.0, 1.0))),
        )?,
        (Conjugate, false) => ops::conjugate(g)?,
        _ => return Ok(None),
    }))
}

/// (d out / d a, d out / d b) for `out = op(a, b)`; None where zero.
pub fn binary_partials(
    op: BinaryOp,
    a: &Array,
    b: &Array,
    out: &Array,
) -> Result<(Option<Array>, Option<Array>)> {
    use BinaryOp::*;
    let one = |x: &Array| ops::ones_like(x);
    Ok(match op {
        Add => (Some(one(a)?), Some(one(b)?)),
        Subtract => (Some(one(a)?), Some(ops::negative(&one(b)?)?)),
        Multiply => (Some(b.clone()), Some(a.clone())),
        Divide => (
            Some(ops::reciprocal(b)?),
            Some(ops::negative(&ops::divide(out, b)?)?),
        ),
        Power => (
            Some(ops::multiply(
                b,
                &ops::power(a, &ops::subtract(b, &c(1.0, b)?)?)?,
            )?),
            Some(ops::multiply(out, &ops::log(a)?)?),
        ),
        Maximum | Minimum => {
            let pick_a = if op == Maximum {
                ops::greater(a, b)?
            } else {
                ops::less(a, b)?
            };
            let ma = ops::astype(&pick_a, a.dtype())?;
            let mb = ops::subtract(&one(a)?, &ma)?;
            (Some(ma), Some(mb))
        }
        Remainder => (
            Some(one(a)?),
            Some(ops::negative(&ops::floor_divide(a, b)?)?),
        ),
        Arctan2 => {
            let den = ops::add(&ops::square(a)?, &ops::square(b)?)?;
            (
                Some(ops::divide(b, &den)?),
                Some(ops::negative(&ops::divide(a, &den)?)?),
            )
        }
        LogAddExp => (
            Some(ops::sigmoid(&ops::subtract(a, b)?)?),
            Some(ops::sigmoid(&ops::subtract(b, a)?)?),
        ),
        _ => (None, None),
    })
}
