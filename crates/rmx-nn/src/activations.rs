//! Activation functions as in `mlx.nn` (same formulas, Python scalars as weak scalars).
//! Each `fn(&Array) -> Result<Array>` can be used as a layer via `Activation::new`.

use rmx_core::ops::{self, weak_scalar};
use rmx_core::{Array, Result, Scalar};

/// A Python-float-like scalar next to `x` (takes `x`'s float type).
fn s(v: f64, x: &Array) -> Result<Array> {
    weak_scalar(Scalar::Float(v), x.dtype())
}

/// `max(x, 0)`.
pub fn relu(x: &Array) -> Result<Array> {
    ops::maximum(x, &weak_scalar(Scalar::Int(0), x.dtype())?)
}

/// `min(max(x, 0), 6)`.
pub fn relu6(x: &Array) -> Result<Array> {
    ops::minimum(&relu(x)?, &s(6.0, x)?)
}

/// `max(slope * x, x)`.
pub fn leaky_relu(x: &Array, negative_slope: f64) -> Result<Array> {
    ops::maximum(&ops::multiply(&s(negative_slope, x)?, x)?, x)
}

/// `x * (1 + erf(x / sqrt(2))) / 2`.
pub fn gelu(x: &Array) -> Result<Array> {
    let e = ops::erf(&ops::divide(x, &s(std::f64::consts::SQRT_2, x)?)?)?;
    let y = ops::multiply(x, &ops::add(&s(1.0, x)?, &e)?)?;
    ops::divide(&y, &s(2.0, x)?)
}

/// `0.5 * x * (1 + tanh(sqrt(2/pi) * (x + 0.044715 * x**3)))`.
pub fn gelu_approx(x: &Array) -> Result<Array> {
    let c = (2.0 / std::f64::consts::PI).sqrt();
    let cube = ops::power(x, &weak_scalar(Scalar::Int(3), x.dtype())?)?;
    let inner = ops::add(x, &ops::multiply(&s(0.044715, x)?, &cube)?)?;
    let t = ops::tanh(&ops::multiply(&s(c, x)?, &inner)?)?;
    let half_x = ops::multiply(&s(0.5, x)?, x)?;
    ops::multiply(&half_x, &ops::add(&s(1.0, x)?, &t)?)
}

/// `x * sigmoid(1.702 * x)`.
pub fn gelu_fast_approx(x: &Array) -> Result<Array> {
    ops::multiply(x, &ops::sigmoid(&ops::multiply(&s(1.702, x)?, x)?)?)
}

/// `x * sigmoid(x)`.
pub fn silu(x: &Array) -> Result<Array> {
    ops::multiply(x, &ops::sigmoid(x)?)
}

pub fn sigmoid(x: &Array) -> Result<Array> {
    ops::sigmoid(x)
}

pub fn tanh(x: &Array) -> Result<Array> {
    ops::tanh(x)
}

/// `log(1 + exp(x))`, as `logaddexp(x, 0)`.
pub fn softplus(x: &Array) -> Result<Array> {
    ops::logaddexp(x, &weak_scalar(Scalar::Int(0), x.dtype())?)
}

/// `x / (1 + |x|)`.
pub fn softsign(x: &Array) -> Result<Array> {
    ops::divide(x, &ops::add(&s(1.0, x)?, &ops::abs(x)?)?)
}

/// `-softplus(-x)`.
pub fn log_sigmoid(x: &Array) -> Result<Array> {
    ops::negative(&softplus(&ops::negative(x)?)?)
}

/// `x` where positive, `alpha * (exp(x) - 1)` elsewhere.
pub fn elu(x: &Array, alpha: f64) -> Result<Array> {
    let neg = ops::multiply(&s(alpha, x)?, &ops::subtract(&ops::exp(x)?, &s(1.0, x)?)?)?;
    let pos = ops::greater(x, &weak_scalar(Scalar::Int(0), x.dtype())?)?;
    ops::where_(&pos, x, &neg)
}

/// `1.0507 * elu(x, 1.67326)`.
pub fn selu(x: &Array) -> Result<Array> {
    ops::multiply(&elu(x, 1.67326)?, &s(1.0507, x)?)
}

/// `x * tanh(softplus(x))`.
pub fn mish(x: &Array) -> Result<Array> {
    ops::multiply(x, &ops::tanh(&softplus(x)?)?)
}

/// `x * min(max(x + 3, 0), 6) / 6`.
pub fn hardswish(x: &Array) -> Result<Array> {
    let m = ops::maximum(&ops::add(x, &s(3.0, x)?)?, &s(0.0, x)?)?;
    let y = ops::multiply(x, &ops::minimum(&m, &s(6.0, x)?)?)?;
    ops::divide(&y, &s(6.0, x)?)
}

/// `x - logsumexp(x, axis)`.
pub fn log_softmax(x: &Array, axis: i64) -> Result<Array> {
    ops::subtract(x, &ops::logsumexp(x, Some(&[axis]), true)?)
}

/// `exp(x) / sum(exp(x))` along `axis`.
pub fn softmax(x: &Array, axis: i64) -> Result<Array> {
    ops::softmax(x, Some(&[axis]), false)
}
