//! `mx.linalg.norm` (also `mx.matrix_norm`): vector and matrix norms built from
//! reductions as MLX 0.32.4 builds them (including its result dtypes: the 2-norm and
//! Frobenius norm are real, the other orders keep a complex input complex).

use crate::array::Array;
use crate::dtype::Dtype;
use crate::element::Scalar;
use crate::error::Result;
use crate::ops;
use crate::ops::linalg_decompositions::svd;
use crate::shape::normalize_axis;

/// The `ord` argument.
#[derive(Clone, Debug, PartialEq)]
pub enum NormOrd {
    /// `None`: the 2-norm (Frobenius for two axes).
    Default,
    Num(f64),
    Str(String),
}

fn at_least_float(d: Dtype) -> Dtype {
    if d.is_inexact() {
        d
    } else {
        Dtype::Float32
    }
}

fn l2(a: &Array, axes: &[i64], keepdims: bool) -> Result<Array> {
    let sq = if a.dtype().is_complex() {
        let m = ops::abs(a)?;
        ops::multiply(&m, &m)?
    } else {
        ops::square(a)?
    };
    ops::sqrt(&ops::sum(&sq, Some(axes), keepdims)?)
}

fn vector_norm(a: &Array, ord: f64, axes: &[i64], keepdims: bool) -> Result<Array> {
    let d = at_least_float(a.dtype());
    let ax = Some(axes);
    if ord == 0.0 {
        let nz = ops::not_equal(a, &Array::scalar(Scalar::Int(0)))?;
        ops::astype(&ops::sum(&nz, ax, keepdims)?, d)
    } else if ord == 1.0 {
        ops::astype(&ops::sum(&ops::abs(a)?, ax, keepdims)?, d)
    } else if ord == 2.0 {
        l2(a, axes, keepdims)
    } else if ord == f64::INFINITY {
        ops::astype(&ops::max(&ops::abs(a)?, ax, keepdims)?, d)
    } else if ord == f64::NEG_INFINITY {
        ops::astype(&ops::min(&ops::abs(a)?, ax, keepdims)?, d)
    } else {
        let p = Array::scalar_of(Scalar::Float(ord), d)?;
        let q = Array::scalar_of(Scalar::Float(1.0 / ord), d)?;
        let s = ops::sum(&ops::power(&ops::abs(a)?, &p)?, ax, keepdims)?;
        ops::power(&s, &q)
    }
}

/// `a` with the (row, col) axes moved last, as the SVD wants them.
fn matrix_last(a: &Array, axes: &[i64]) -> Result<Array> {
    let nd = a.ndim();
    let r = normalize_axis("linalg::norm", axes[0], nd)? as i64;
    let c = normalize_axis("linalg::norm", axes[1], nd)? as i64;
    if r > c {
        ops::moveaxis(&ops::moveaxis(a, r, -1)?, c, -1)
    } else {
        ops::moveaxis(&ops::moveaxis(a, c, -1)?, r, -2)
    }
}

/// Puts back the reduced axes (sorted) as size-1 dimensions.
fn keep(x: Array, a: &Array, axes: &[i64], keepdims: bool) -> Result<Array> {
    if !keepdims {
        return Ok(x);
    }
    let nd = a.ndim();
    let mut ax = vec![
        normalize_axis("linalg::norm", axes[0], nd)? as i64,
        normalize_axis("linalg::norm", axes[1], nd)? as i64,
    ];
    ax.sort_unstable();
    ops::expand_dims(&x, &ax)
}

fn matrix_norm_num(a: &Array, ord: f64, axes: &[i64], keepdims: bool) -> Result<Array> {
    let d = at_least_float(a.dtype());
    // MLX resolves negative axes before its axis arithmetic
    let nd = a.ndim();
    let mut row = normalize_axis("linalg::norm", axes[0], nd)? as i64;
    let mut col = normalize_axis("linalg::norm", axes[1], nd)? as i64;
    let shift = |x: i64, other: i64| x - (!keepdims && x > other && x > 0) as i64;
    let abs = ops::abs(a)?;
    if ord == 1.0 || ord == -1.0 {
        col = shift(col, row);
        let s = ops::sum(&abs, Some(&[row]), keepdims)?;
        let r = if ord == 1.0 {
            ops::max(&s, Some(&[col]), keepdims)?
        } else {
            ops::min(&s, Some(&[col]), keepdims)?
        };
        ops::astype(&r, d)
    } else if ord.is_infinite() {
        row = shift(row, col);
        let s = ops::sum(&abs, Some(&[col]), keepdims)?;
        let r = if ord > 0.0 {
            ops::max(&s, Some(&[row]), keepdims)?
        } else {
            ops::min(&s, Some(&[row]), keepdims)?
        };
        ops::astype(&r, d)
    } else if ord == 2.0 || ord == -2.0 {
        let s = svd(&matrix_last(a, axes)?, false)?.swap_remove(0);
        let r = if ord == 2.0 {
            ops::max(&s, Some(&[-1]), false)?
        } else {
            ops::min(&s, Some(&[-1]), false)?
        };
        ops::astype(&keep(r, a, axes, keepdims)?, d)
    } else {
        Err(crate::value_err!(
            "[linalg::norm] Invalid ord {} for matrix norm.",
            fmt_ord(ord)
        ))
    }
}

/// `ord` as C++ streams a double (`3`, `0.5`, `inf`).
fn fmt_ord(v: f64) -> String {
    if v.is_infinite() {
        return if v > 0.0 { "inf".into() } else { "-inf".into() };
    }
    format!("{v}")
}

fn matrix_norm_str(a: &Array, ord: &str, axes: &[i64], keepdims: bool) -> Result<Array> {
    match ord {
        "f" | "fro" => l2(a, axes, keepdims),
        "nuc" => {
            let s = svd(&matrix_last(a, axes)?, false)?.swap_remove(0);
            keep(ops::sum(&s, Some(&[-1]), false)?, a, axes, keepdims)
        }
        _ => Err(crate::value_err!(
            "[linalg::norm] Invalid ord value '{ord}' for matrix norm."
        )),
    }
}

const TOO_MANY: &str = "[linalg::norm] Received too many axes for norm.";

pub fn norm(a: &Array, ord: &NormOrd, axis: Option<&[i64]>, keepdims: bool) -> Result<Array> {
    let all: Vec<i64> = (0..a.ndim() as i64).collect();
    let axes = axis.unwrap_or(&all);
    match ord {
        NormOrd::Default => {
            if axes.len() > 2 && axis.is_some() {
                return Err(crate::value_err!("{TOO_MANY}"));
            }
            l2(a, axes, keepdims)
        }
        NormOrd::Num(o) => match axes.len() {
            1 => vector_norm(a, *o, axes, keepdims),
            2 => matrix_norm_num(a, *o, axes, keepdims),
            _ => Err(crate::value_err!("{TOO_MANY}")),
        },
        NormOrd::Str(s) => {
            if axes.len() != 2 {
                return Err(crate::value_err!(
                    "[linalg::norm] Norm '{s}' only supported for matrices, but received {} axis/axes.",
                    axes.len()
                ));
            }
            matrix_norm_str(a, s, axes, keepdims)
        }
    }
}
