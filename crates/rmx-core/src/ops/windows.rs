//! Window functions (`hanning`, `hamming`, `bartlett`, `blackman`), float32 like MLX's.
//! Each is written with MLX's own formula (found by comparing bit patterns), so the
//! values agree with MLX up to the last ulp of `sin`/`cos`: hanning is
//! `sin(n*pi/(M-1))^2`, hamming `0.54 - 0.46 cos(n*2pi/(M-1))`, bartlett
//! `1 - |n*2/(M-1) - 1|`, blackman `0.34 - 0.5 c + 0.16 c^2` with `c = cos(n*2pi/(M-1))`
//! (the same polynomial as `0.42 - 0.5 cos + 0.08 cos 2x`, exactly 0 at the ends).

use crate::array::Array;
use crate::dtype::Dtype;
use crate::element::Scalar;
use crate::error::Result;

use super::creation::{arange, ones, zeros};
use super::elementwise::{abs, add, cos, multiply, sin, square, subtract};

fn f(v: f64) -> Array {
    Array::scalar_of(Scalar::Float(v), Dtype::Float32).expect("f32 scalar")
}

/// `n * step` for n in 0..M, or None when the window is trivial (M <= 1).
fn ramp(m: i64, step: f64) -> Result<Option<Array>> {
    if m <= 1 {
        return Ok(None);
    }
    let n = arange(0.0, m as f64, 1.0, Dtype::Float32)?;
    Ok(Some(multiply(&n, &f(step))?))
}

/// The empty window for M < 1 (MLX returns shape (0,) for any non-positive M) and
/// `[1.0]` for M == 1.
fn trivial(m: i64) -> Result<Array> {
    if m < 1 {
        zeros(&[0], Dtype::Float32)
    } else {
        ones(&[1], Dtype::Float32)
    }
}

pub fn hanning(m: i64) -> Result<Array> {
    match ramp(m, std::f64::consts::PI / (m - 1) as f64)? {
        None => trivial(m),
        Some(a) => square(&sin(&a)?),
    }
}

pub fn hamming(m: i64) -> Result<Array> {
    match ramp(m, 2.0 * std::f64::consts::PI / (m - 1) as f64)? {
        None => trivial(m),
        Some(a) => subtract(&f(0.54), &multiply(&f(0.46), &cos(&a)?)?),
    }
}

pub fn bartlett(m: i64) -> Result<Array> {
    match ramp(m, 2.0 / (m - 1) as f64)? {
        None => trivial(m),
        Some(a) => subtract(&f(1.0), &abs(&subtract(&a, &f(1.0))?)?),
    }
}

pub fn blackman(m: i64) -> Result<Array> {
    match ramp(m, 2.0 * std::f64::consts::PI / (m - 1) as f64)? {
        None => trivial(m),
        Some(a) => {
            let c = cos(&a)?;
            let lin = subtract(&f(0.34), &multiply(&f(0.5), &c)?)?;
            add(&lin, &multiply(&f(0.16), &square(&c)?)?)
        }
    }
}
