//! `mlx.core.fft`: fft/ifft/rfft/irfft and their 2-d and n-d forms with MLX's `n`/`s`/
//! `axes`/`norm` semantics (each transformed axis truncated or zero-padded at the end;
//! results complex64, inverse real transforms float32), `fftfreq`, `rfftfreq`,
//! `fftshift` and `ifftshift`.

use crate::array::Array;
use crate::dtype::Dtype;
use crate::element::Scalar;
use crate::error::Result;
use crate::primitives::fft::Fft;
use crate::shape::Shape;

use super::shape::{pad, roll, slice};

/// How a transform is scaled: `Backward` leaves the forward transform unscaled and
/// divides the inverse by n; `Forward` the other way round; `Ortho` uses 1/sqrt(n) both ways.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FftNorm {
    Backward,
    Ortho,
    Forward,
}

impl FftNorm {
    pub fn parse(name: &str, norm: &str) -> Result<FftNorm> {
        match norm {
            "backward" => Ok(FftNorm::Backward),
            "ortho" => Ok(FftNorm::Ortho),
            "forward" => Ok(FftNorm::Forward),
            _ => Err(crate::value_err!(
                "[{name}] Invalid norm. Expected one of {{'backward', 'ortho', 'forward'}}."
            )),
        }
    }

    fn scale(self, n: f64, inverse: bool) -> f64 {
        match (self, inverse) {
            (FftNorm::Ortho, _) => 1.0 / n.sqrt(),
            (FftNorm::Backward, true) | (FftNorm::Forward, false) => 1.0 / n,
            _ => 1.0,
        }
    }
}

/// What kind of transform: complex (`fft`), real-to-complex (`rfft`) or back (`irfft`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FftKind {
    pub inverse: bool,
    pub real: bool,
}

fn shape_str(v: &[i64]) -> String {
    let parts: Vec<String> = v.iter().map(|d| d.to_string()).collect();
    format!("({})", parts.join(","))
}

/// MLX's `fft_impl`: sizes `n` for `axes` (output sizes; for an inverse real transform the
/// last is the real output length, the input keeping `n / 2 + 1`).
fn fft_impl(a: &Array, n: &[i64], axes: &[i64], kind: FftKind, norm: FftNorm) -> Result<Array> {
    let nd = a.ndim();
    if nd < 1 {
        return Err(crate::value_err!(
            "[fftn] Requires array with at least one dimension."
        ));
    }
    if n.len() != axes.len() {
        return Err(crate::value_err!(
            "[fftn] Shape and axes have different sizes."
        ));
    }
    if axes.is_empty() {
        return Ok(a.clone());
    }
    let valid: Vec<i64> = axes
        .iter()
        .map(|&ax| if ax < 0 { ax + nd as i64 } else { ax })
        .collect();
    let mut uniq = valid.clone();
    uniq.sort_unstable();
    uniq.dedup();
    if uniq.len() != valid.len() {
        return Err(crate::value_err!(
            "[fftn] Duplicated axis received {}",
            shape_str(axes)
        ));
    }
    if uniq[0] < 0 || uniq[uniq.len() - 1] >= nd as i64 {
        return Err(crate::index_err!(
            "[fftn] Invalid axis received for array with {nd} dimensions."
        ));
    }
    if n.iter().any(|&v| v <= 0) {
        return Err(crate::value_err!(
            "[fftn] Invalid FFT output size requested {}",
            shape_str(n)
        ));
    }
    let axes: Vec<usize> = valid.iter().map(|&v| v as usize).collect();
    let last = axes[axes.len() - 1];
    let n_last = n[n.len() - 1] as usize;
    let mut in_shape: Shape = a.shape().into();
    for (&ax, &v) in axes.iter().zip(n) {
        in_shape[ax] = v as usize;
    }
    if kind.real && kind.inverse {
        in_shape[last] = n_last / 2 + 1;
    }
    let mut x = a.clone();
    if in_shape.iter().zip(a.shape()).any(|(i, s)| i < s) {
        let stop: Vec<i64> = in_shape
            .iter()
            .zip(a.shape())
            .map(|(&i, &s)| i.min(s) as i64)
            .collect();
        x = slice(&x, &vec![0; nd], &stop, None)?;
    }
    if in_shape.iter().zip(x.shape()).any(|(i, s)| i > s) {
        let widths: Vec<(i64, i64)> = in_shape
            .iter()
            .zip(x.shape())
            .map(|(&i, &s)| (0, i as i64 - s as i64))
            .collect();
        x = pad(&x, &widths, "constant", Scalar::Int(0))?;
    }
    let in_type = if kind.real && !kind.inverse {
        Dtype::Float32
    } else {
        Dtype::Complex64
    };
    let x = super::elementwise::astype(&x, in_type)?;
    let count: f64 = n.iter().map(|&v| v as f64).product();
    Ok(Fft {
        axes,
        inverse: kind.inverse,
        real: kind.real,
        scale: norm.scale(count, kind.inverse),
        n: if kind.real && kind.inverse { n_last } else { 0 },
    }
    .apply(&x))
}

/// The size of `axis`; as in MLX, an axis out of range is an IndexError here.
fn dim(a: &Array, axis: i64) -> Result<i64> {
    let nd = a.ndim() as i64;
    let ax = if axis < 0 { axis + nd } else { axis };
    if ax < 0 || ax >= nd {
        return Err(crate::index_err!("SmallVector out of range."));
    }
    Ok(a.shape()[ax as usize] as i64)
}

/// Default size of a transformed axis: its length (an inverse real transform outputs
/// `2 * (len - 1)`).
fn default_n(a: &Array, axis: i64, kind: FftKind, is_last: bool) -> Result<i64> {
    let d = dim(a, axis)?;
    Ok(if kind.real && kind.inverse && is_last {
        (d - 1) * 2
    } else {
        d
    })
}

/// A one-dimensional transform along `axis` with optional size `n`.
pub fn fft1(a: &Array, n: Option<i64>, axis: i64, kind: FftKind, norm: FftNorm) -> Result<Array> {
    let n = match n {
        Some(n) => n,
        None => default_n(a, axis, kind, true)?,
    };
    fft_impl(a, &[n], &[axis], kind, norm)
}

/// An n-dimensional transform over `axes` (all axes when None) with optional sizes `s`
/// (which need `axes`, as in MLX).
pub fn fftn(
    name: &str,
    a: &Array,
    s: Option<&[i64]>,
    axes: Option<&[i64]>,
    kind: FftKind,
    norm: FftNorm,
) -> Result<Array> {
    let all: Vec<i64> = (0..a.ndim() as i64).collect();
    let axes = match (s, axes) {
        (Some(_), None) => {
            return Err(crate::value_err!(
                "[{name}] `axes` should not be `None` if `s` is not `None`."
            ))
        }
        (_, Some(ax)) => ax.to_vec(),
        (None, None) => all,
    };
    let n: Vec<i64> = match s {
        Some(s) => s.to_vec(),
        None => axes
            .iter()
            .enumerate()
            .map(|(i, &ax)| default_n(a, ax, kind, i + 1 == axes.len()))
            .collect::<Result<_>>()?,
    };
    fft_impl(a, &n, &axes, kind, norm)
}

/// Frequencies `[0, 1, ..., -(n/2), ..., -1] / (n d)` of an n-point transform (float32).
pub fn fftfreq(n: i64, d: f64) -> Result<Array> {
    if n <= 0 {
        return Err(crate::value_err!("[fftfreq] `n` must be greater than 0."));
    }
    let val = (1.0 / (n as f64 * d)) as f32;
    let pos = (n - 1) / 2 + 1;
    let v: Vec<f32> = (0..n)
        .map(|i| if i < pos { i } else { i - n })
        .map(|k| k as f32 * val)
        .collect();
    Array::from_slice(&v, &[n as usize])
}

/// The non-negative frequencies `[0, ..., n/2] / (n d)` of an n-point real transform.
pub fn rfftfreq(n: i64, d: f64) -> Result<Array> {
    if n <= 0 {
        return Err(crate::value_err!("[rfftfreq] `n` must be greater than 0."));
    }
    let val = (1.0 / (n as f64 * d)) as f32;
    let v: Vec<f32> = (0..=n / 2).map(|k| k as f32 * val).collect();
    Array::from_slice(&v, &[(n / 2 + 1) as usize])
}

fn shift(a: &Array, axes: Option<&[i64]>, inverse: bool) -> Result<Array> {
    let all: Vec<i64> = (0..a.ndim() as i64).collect();
    let axes = axes.map_or(all, |v| v.to_vec());
    let shifts: Vec<i64> = axes
        .iter()
        .map(|&ax| {
            let n = dim(a, ax)?;
            Ok(if inverse { -(n / 2) } else { n / 2 })
        })
        .collect::<Result<_>>()?;
    if axes.is_empty() {
        return Ok(a.clone());
    }
    roll(a, &shifts, Some(&axes))
}

/// Moves the zero frequency to the centre of `axes` (all when None).
pub fn fftshift(a: &Array, axes: Option<&[i64]>) -> Result<Array> {
    shift(a, axes, false)
}

/// The inverse of `fftshift`.
pub fn ifftshift(a: &Array, axes: Option<&[i64]>) -> Result<Array> {
    shift(a, axes, true)
}
