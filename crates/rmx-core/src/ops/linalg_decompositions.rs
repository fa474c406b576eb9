//! `mx.linalg`: MLX's argument checks and messages, then one `Linalg` node (the
//! decompositions and solves, computed by faer on the CPU) or a composite of ordinary
//! ops (norm, cross, pinv, cholesky_inv), as MLX 0.32.4 builds them.

use crate::array::Array;
use crate::backend::LinalgOp;
use crate::dtype::{promote_types, Dtype};
use crate::element::Scalar;
use crate::error::Result;
use crate::ops;
use crate::primitives::decompositions::Linalg;
use crate::shape::{broadcast_shapes, normalize_axis, shape_str};

fn node(op: LinalgOp, xs: &[Array]) -> Vec<Array> {
    Linalg { op }.apply(xs)
}

/// MLX's dtype check: float32/float64 (and complex64 where `complex`).
fn check_dtype(name: &str, a: &Array, complex: bool) -> Result<()> {
    let d = a.dtype();
    let ok = d == Dtype::Float32 || d == Dtype::Float64 || (complex && d == Dtype::Complex64);
    if ok {
        return Ok(());
    }
    let allowed = if complex {
        "float32, float64 or complex64"
    } else {
        "float32 or float64"
    };
    Err(crate::value_err!(
        "[linalg::{name}] Arrays must have type {allowed}. Received array with type {d}."
    ))
}

fn check_ndim(name: &str, a: &Array) -> Result<()> {
    if a.ndim() < 2 {
        let what = if name == "svd" {
            "Input array"
        } else {
            "Arrays"
        };
        return Err(crate::value_err!(
            "[linalg::{name}] {what} must have >= 2 dimensions. Received array with {} dimensions.",
            a.ndim()
        ));
    }
    Ok(())
}

fn is_square(a: &Array) -> bool {
    let nd = a.ndim();
    a.shape()[nd - 1] == a.shape()[nd - 2]
}

/// dtype, ndim and (with `square`) squareness checks with MLX's messages.
fn check(name: &str, a: &Array, complex: bool, square: Option<&str>) -> Result<()> {
    check_dtype(name, a, complex)?;
    check_ndim(name, a)?;
    if let Some(msg) = square {
        if !is_square(a) {
            return Err(crate::value_err!("[linalg::{name}] {msg}"));
        }
    }
    Ok(())
}

const SQUARE: &str = "Only defined for square matrices.";
const INV_SQUARE: &str = "Inverses are only defined for square matrices.";

pub fn inv(a: &Array) -> Result<Array> {
    check("inv", a, false, Some(INV_SQUARE))?;
    Ok(node(LinalgOp::Inv, std::slice::from_ref(a)).swap_remove(0))
}

pub fn tri_inv(a: &Array, upper: bool) -> Result<Array> {
    check("inv", a, false, Some(INV_SQUARE))?;
    Ok(node(LinalgOp::TriInv { upper }, std::slice::from_ref(a)).swap_remove(0))
}

pub fn cholesky(a: &Array, upper: bool) -> Result<Array> {
    check(
        "cholesky",
        a,
        false,
        Some("Cholesky decomposition is only defined for square matrices."),
    )?;
    Ok(node(LinalgOp::Cholesky { upper }, std::slice::from_ref(a)).swap_remove(0))
}

/// The inverse of `A = L L^T` (or `U^T U`) from its Cholesky factor.
pub fn cholesky_inv(l: &Array, upper: bool) -> Result<Array> {
    check(
        "cholesky_inv",
        l,
        false,
        Some("Cholesky inverse is only defined for square matrices."),
    )?;
    let linv = node(LinalgOp::TriInv { upper }, std::slice::from_ref(l)).swap_remove(0);
    let t = ops::swapaxes(&linv, -1, -2)?;
    if upper {
        ops::matmul(&linv, &t)
    } else {
        ops::matmul(&t, &linv)
    }
}

/// `(Q, R)` with Q `[..., m, k]` and R `[..., k, n]`, k = min(m, n).
pub fn qr(a: &Array) -> Result<(Array, Array)> {
    check("qr", a, false, None)?;
    let mut o = node(LinalgOp::Qr, std::slice::from_ref(a));
    let r = o.pop().expect("two outputs");
    Ok((o.pop().expect("two outputs"), r))
}

/// `[U, S, Vt]` (U and Vt square) or `[S]`.
pub fn svd(a: &Array, compute_uv: bool) -> Result<Vec<Array>> {
    check("svd", a, true, None)?;
    Ok(node(LinalgOp::Svd { compute_uv }, std::slice::from_ref(a)))
}

/// MLX reads the upper triangle for any `UPLO` but "L".
fn uplo_upper(uplo: &str) -> bool {
    uplo != "L"
}

pub fn eigh(a: &Array, uplo: &str) -> Result<(Array, Array)> {
    check("eigh", a, true, Some(SQUARE))?;
    let mut o = node(
        LinalgOp::Eigh {
            upper: uplo_upper(uplo),
            vectors: true,
        },
        std::slice::from_ref(a),
    );
    let v = o.pop().expect("two outputs");
    Ok((o.pop().expect("two outputs"), v))
}

pub fn eigvalsh(a: &Array, uplo: &str) -> Result<Array> {
    check("eigvalsh", a, true, Some(SQUARE))?;
    Ok(node(
        LinalgOp::Eigh {
            upper: uplo_upper(uplo),
            vectors: false,
        },
        std::slice::from_ref(a),
    )
    .swap_remove(0))
}

pub fn eig(a: &Array) -> Result<(Array, Array)> {
    check("eig", a, true, Some(SQUARE))?;
    let mut o = node(LinalgOp::Eig { vectors: true }, std::slice::from_ref(a));
    let v = o.pop().expect("two outputs");
    Ok((o.pop().expect("two outputs"), v))
}

pub fn eigvals(a: &Array) -> Result<Array> {
    check("eigvals", a, true, Some(SQUARE))?;
    Ok(node(LinalgOp::Eig { vectors: false }, std::slice::from_ref(a)).swap_remove(0))
}

/// `[p, L, U]` with `A = L[p] @ U` (p uint32).
pub fn lu(a: &Array) -> Result<Vec<Array>> {
    check("lu", a, false, None)?;
    Ok(node(LinalgOp::Lu, std::slice::from_ref(a)))
}

/// `(LU, pivots)`: the compact factorization and LAPACK's 0-based row swaps.
pub fn lu_factor(a: &Array) -> Result<(Array, Array)> {
    check("lu_factor", a, false, None)?;
    let mut o = node(LinalgOp::LuFactor, std::slice::from_ref(a));
    let p = o.pop().expect("two outputs");
    Ok((o.pop().expect("two outputs"), p))
}

/// The Moore-Penrose pseudo-inverse through the SVD; singular values at most
/// `max(m, n) * eps * max(S)` count as zero (NumPy's and MLX's cutoff).
pub fn pinv(a: &Array) -> Result<Array> {
    check("pinv", a, false, None)?;
    let nd = a.ndim();
    let (m, n) = (a.shape()[nd - 2], a.shape()[nd - 1]);
    let k = m.min(n) as i64;
    let o = node(LinalgOp::Svd { compute_uv: true }, std::slice::from_ref(a));
    let d = a.dtype();
    let u = slice_axis(&o[0], -1, 0, k)?;
    let vt = slice_axis(&o[2], -2, 0, k)?;
    let s = &o[1];
    if k == 0 {
        return ops::zeros(
            &a.shape()[..nd - 2]
                .iter()
                .map(|&x| x as i64)
                .chain([n as i64, m as i64])
                .collect::<Vec<_>>(),
            d,
        );
    }
    let eps = if d == Dtype::Float64 {
        f64::EPSILON
    } else {
        f32::EPSILON as f64
    };
    let smax = ops::max(s, Some(&[-1]), true)?;
    let cutoff = ops::multiply(
        &smax,
        &Array::scalar_of(Scalar::Float(m.max(n) as f64 * eps), d)?,
    )?;
    let keep = ops::greater(s, &cutoff)?;
    let one = Array::scalar_of(Scalar::Float(1.0), d)?;
    let zero = Array::scalar_of(Scalar::Float(0.0), d)?;
    let sinv = ops::where_(&keep, &ops::divide(&one, s)?, &zero)?;
    // V diag(1/S) U^T
    let v = ops::swapaxes(&vt, -1, -2)?;
    ops::matmul(
        &ops::multiply(&v, &ops::expand_dims(&sinv, &[-2])?)?,
        &ops::swapaxes(&u, -1, -2)?,
    )
}

/// `x[..., start:stop]` along `axis`.
pub(crate) fn slice_axis(x: &Array, axis: i64, start: i64, stop: i64) -> Result<Array> {
    let nd = x.ndim();
    let ax = normalize_axis("slice", axis, nd)?;
    let mut lo = vec![0i64; nd];
    let mut hi: Vec<i64> = x.shape().iter().map(|&s| s as i64).collect();
    lo[ax] = start;
    hi[ax] = stop;
    ops::slice(x, &lo, &hi, None)
}

/// det and slogdet: complex rejected, anything else computed in float32 (float64 kept)
/// and returned in the input's float type (float32 for integers and bool).
fn det_input(name: &str, a: &Array) -> Result<(Array, Dtype)> {
    if a.dtype().is_complex() {
        return Err(crate::value_err!(
            "[linalg::{name}] Complex inputs are not supported."
        ));
    }
    check_ndim(name, a)?;
    if !is_square(a) {
        return Err(crate::value_err!("[linalg::{name}] {SQUARE}"));
    }
    let out = if a.dtype().is_float() {
        a.dtype()
    } else {
        Dtype::Float32
    };
    let work = if a.dtype() == Dtype::Float64 {
        Dtype::Float64
    } else {
        Dtype::Float32
    };
    Ok((ops::astype(a, work)?, out))
}

pub fn det(a: &Array) -> Result<Array> {
    let (x, out) = det_input("det", a)?;
    // the product of U's diagonal; MLX computes sign * exp(log|det|), and its float64 exp
    // is float32-accurate, so MLX's float64 determinants carry float32 rounding
    let d = node(LinalgOp::Det { log: false }, &[x]).swap_remove(0);
    ops::astype(&d, out)
}

/// `(sign, log|det|)`.
pub fn slogdet(a: &Array) -> Result<(Array, Array)> {
    let (x, out) = det_input("slogdet", a)?;
    let o = node(LinalgOp::Det { log: true }, &[x]);
    Ok((ops::astype(&o[0], out)?, ops::astype(&o[1], out)?))
}

/// Shared checks of solve/solve_triangular; returns A and B (a matrix, `vector` when B
/// was 1-d) cast to the common float type and broadcast to one batch shape.
fn solve_inputs(name: &str, a: &Array, b: &Array) -> Result<(Array, Array, bool)> {
    let d = promote_types(a.dtype(), b.dtype());
    if d != Dtype::Float32 && d != Dtype::Float64 {
        return Err(crate::value_err!(
            "[linalg::{name}] Input arrays must promote to float32 or float64.  Received arrays with type {} and {}.",
            a.dtype(),
            b.dtype()
        ));
    }
    if a.ndim() < 2 {
        return Err(crate::value_err!(
            "[linalg::{name}] First input must have >= 2 dimensions. Received array with {} dimensions.",
            a.ndim()
        ));
    }
    if b.ndim() < 1 {
        return Err(crate::value_err!(
            "[linalg::{name}] Second input must have >= 1 dimensions. Received array with {} dimensions.",
            b.ndim()
        ));
    }
    if !is_square(a) {
        return Err(crate::value_err!(
            "[linalg::{name}] First input must be a square matrix. Received array with shape {}.",
            shape_str(a.shape())
        ));
    }
    let n = a.shape()[a.ndim() - 1];
    let vector = b.ndim() == 1;
    let rows = if vector {
        b.shape()[0]
    } else {
        b.shape()[b.ndim() - 2]
    };
    if rows != n {
        return Err(crate::value_err!(
            "[linalg::{name}] Last dimension of first input with shape {} must match second to last dimension of second input with shape {}.",
            shape_str(a.shape()),
            shape_str(b.shape())
        ));
    }
    let bm = if vector {
        ops::expand_dims(b, &[-1])?
    } else {
        b.clone()
    };
    let (na, nb) = (a.ndim(), bm.ndim());
    let batch = broadcast_shapes(&a.shape()[..na - 2], &bm.shape()[..nb - 2])?;
    let mut sa = batch.to_vec();
    sa.extend_from_slice(&a.shape()[na - 2..]);
    let mut sb = batch.to_vec();
    sb.extend_from_slice(&bm.shape()[nb - 2..]);
    let a = ops::broadcast_to(&ops::astype(a, d)?, &sa)?;
    let bm = ops::broadcast_to(&ops::astype(&bm, d)?, &sb)?;
    Ok((a, bm, vector))
}

fn solve_with(name: &str, op: LinalgOp, a: &Array, b: &Array) -> Result<Array> {
    let (a, bm, vector) = solve_inputs(name, a, b)?;
    let x = node(op, &[a, bm]).swap_remove(0);
    if vector {
        ops::squeeze(&x, Some(&[-1]))
    } else {
        Ok(x)
    }
}

/// `X` with `A X = B`; B may be a vector (then X is one). Batch shapes broadcast
/// (MLX 0.32.4 fails on broadcast batches inside its LU gather; NumPy's rule here).
pub fn solve(a: &Array, b: &Array) -> Result<Array> {
    solve_with("solve", LinalgOp::Solve, a, b)
}

pub fn solve_triangular(a: &Array, b: &Array, upper: bool) -> Result<Array> {
    solve_with(
        "solve_triangular",
        LinalgOp::SolveTriangular { upper },
        a,
        b,
    )
}

/// The cross product along `axis` (size 2 or 3; size 2 means a zero third component).
pub fn cross(a: &Array, b: &Array, axis: i64) -> Result<Array> {
    let nd = a.ndim() as i64;
    if axis < -nd || axis >= nd {
        return Err(crate::index_err!(
            "[linalg::cross] Axis {axis} is out of bounds for array with {nd} dimensions."
        ));
    }
    let ax = if axis < 0 { axis + nd } else { axis } as usize;
    let size_ok = |x: &Array| -> bool {
        let i = x.ndim() as i64 - (nd - ax as i64);
        i >= 0 && matches!(x.shape()[i as usize], 2 | 3)
    };
    if !size_ok(a) || !size_ok(b) {
        return Err(crate::value_err!(
            "[linalg::cross] The specified axis must have size 2 or 3."
        ));
    }
    // axis counted from the end, so inputs of other ranks broadcast
    let from_end = ax as i64 - nd;
    let pad3 = |x: &Array| -> Result<Array> {
        let i = (x.ndim() as i64 + from_end) as usize;
        if x.shape()[i] == 3 {
            return Ok(x.clone());
        }
        let mut w = vec![(0i64, 0i64); x.ndim()];
        w[i].1 = 1;
        ops::pad(x, &w, "constant", Scalar::Int(0))
    };
    let xs = ops::broadcast_arrays(&[&pad3(a)?, &pad3(b)?])?;
    let (a, b) = (&xs[0], &xs[1]);
    let part = |x: &Array, i: i64| slice_axis(x, from_end, i, i + 1);
    let (a0, a1, a2) = (part(a, 0)?, part(a, 1)?, part(a, 2)?);
    let (b0, b1, b2) = (part(b, 0)?, part(b, 1)?, part(b, 2)?);
    let term = |p: &Array, q: &Array, r: &Array, s: &Array| -> Result<Array> {
        ops::subtract(&ops::multiply(p, q)?, &ops::multiply(r, s)?)
    };
    ops::concatenate(
        &[
            term(&a1, &b2, &a2, &b1)?,
            term(&a2, &b0, &a0, &b2)?,
            term(&a0, &b1, &a1, &b0)?,
        ],
        Some(from_end),
    )
}
