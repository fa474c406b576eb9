//! `Linalg`: one primitive for the dense decompositions and solves of `mx.linalg`
//! (`backend::LinalgOp` says which, and what it outputs), evaluated by `Backend::linalg`.
//! Inputs reach it checked, of a supported dtype, with equal batch shapes.
//!
//! Derivatives (MLX 0.32.4 has none of these but det/slogdet's; they are ours):
//! inv, tri_inv, cholesky, eigh/eigvalsh (real), svd (singular values; U/Vh through
//! their first k = min(m, n) columns/rows), solve, solve_triangular, det, slogdet.
//! Factorizations that read one triangle (tri_inv, cholesky, eigh, solve_triangular)
//! differentiate the function they compute: the cotangent lands on that triangle only.
//! Every op vmaps by moving the batch axis to the front (all ops are batched).

use super::batching::{self, Batched};
use crate::array::{Array, ArrayData};
use crate::backend::{Backend, LinalgOp};
use crate::dtype::Dtype;
use crate::element::Scalar;
use crate::error::Result;
use crate::ops;
use crate::ops::linalg_decompositions::slice_axis;
use crate::primitive::{OutputSpec, Primitive};
use crate::shape::Shape;
use std::sync::Arc;

#[derive(Clone, Debug, PartialEq)]
pub struct Linalg {
    pub op: LinalgOp,
}

fn with(batch: &[usize], tail: &[usize]) -> Shape {
    let mut s: Shape = batch.into();
    s.extend_from_slice(tail);
    s
}

impl Linalg {
    /// Output shapes and dtypes for inputs `xs` (see `LinalgOp`).
    pub fn specs(&self, xs: &[Array]) -> Vec<(Shape, Dtype)> {
        let a = &xs[0];
        let nd = a.ndim();
        let (batch, m, n) = (&a.shape()[..nd - 2], a.shape()[nd - 2], a.shape()[nd - 1]);
        let k = m.min(n);
        let d = a.dtype();
        let real = if d == Dtype::Complex64 {
            Dtype::Float32
        } else {
            d
        };
        let c = Dtype::Complex64;
        let u32_ = Dtype::Uint32;
        match self.op {
            LinalgOp::Inv | LinalgOp::TriInv { .. } | LinalgOp::Cholesky { .. } => {
                vec![(with(batch, &[n, n]), d)]
            }
            LinalgOp::Qr => vec![(with(batch, &[m, k]), d), (with(batch, &[k, n]), d)],
            LinalgOp::Svd { compute_uv: false } => vec![(with(batch, &[k]), real)],
            LinalgOp::Svd { compute_uv: true } => vec![
                (with(batch, &[m, m]), d),
                (with(batch, &[k]), real),
                (with(batch, &[n, n]), d),
            ],
            LinalgOp::Eigh { vectors, .. } => {
                let mut v = vec![(with(batch, &[n]), real)];
                if vectors {
                    v.push((with(batch, &[n, n]), d));
                }
                v
            }
            LinalgOp::Eig { vectors } => {
                let mut v = vec![(with(batch, &[n]), c)];
                if vectors {
                    v.push((with(batch, &[n, n]), c));
                }
                v
            }
            LinalgOp::LuFactor => vec![(with(batch, &[m, n]), d), (with(batch, &[k]), u32_)],
            LinalgOp::Lu => vec![
                (with(batch, &[m]), u32_),
                (with(batch, &[m, k]), d),
                (with(batch, &[k, n]), d),
            ],
            LinalgOp::Solve | LinalgOp::SolveTriangular { .. } => {
                let r = xs[1].shape()[xs[1].ndim() - 1];
                vec![(with(batch, &[n, r]), d)]
            }
            LinalgOp::Det { log } => vec![(batch.into(), d); if log { 2 } else { 1 }],
        }
    }

    /// The node's outputs for `xs`.
    pub fn apply(&self, xs: &[Array]) -> Vec<Array> {
        Array::from_multi_op(self.specs(xs), Arc::new(self.clone()), xs.to_vec())
    }

    fn one(op: LinalgOp, xs: &[Array]) -> Array {
        Linalg { op }.apply(xs).swap_remove(0)
    }
}

fn mt(x: &Array) -> Result<Array> {
    ops::swapaxes(x, -1, -2)
}

fn mm(a: &Array, b: &Array) -> Result<Array> {
    ops::matmul(a, b)
}

/// The triangle a one-triangle op reads.
fn tri(x: &Array, upper: bool) -> Result<Array> {
    if upper {
        ops::triu(x, 0)
    } else {
        ops::tril(x, 0)
    }
}

fn scalar(v: f64, d: Dtype) -> Result<Array> {
    Array::scalar_of(Scalar::Float(v), d)
}

/// `[..., n]` to diagonal matrices `[..., n, n]`.
fn diag_embed(v: &Array) -> Result<Array> {
    let n = v.shape()[v.ndim() - 1] as i64;
    let eye = ops::eye(n, None, 0, v.dtype())?;
    ops::multiply(&ops::expand_dims(v, &[-1])?, &eye)
}

fn diag_of(x: &Array) -> Result<Array> {
    ops::diagonal(x, 0, -2, -1)
}

/// `x[..., None, None]`.
fn bcast2(x: &Array) -> Result<Array> {
    ops::expand_dims(x, &[-1, -2])
}

/// The gradient of a function of a symmetric matrix that reads one triangle, given the
/// symmetric gradient `g` of the full symmetric matrix: the read triangle gets `g + g^T`
/// off the diagonal and `g` on it.
fn onto_triangle(g: &Array, upper: bool) -> Result<Array> {
    let full = ops::add(g, &mt(g)?)?;
    let half_diag = diag_embed(&diag_of(g)?)?;
    tri(&ops::subtract(&full, &half_diag)?, upper)
}

/// The symmetric matrix a one-triangle op sees for the tangent `t`.
fn from_triangle(t: &Array, upper: bool) -> Result<Array> {
    let tt = tri(t, upper)?;
    let strict = if upper {
        ops::triu(t, 1)?
    } else {
        ops::tril(t, -1)?
    };
    ops::add(&tt, &mt(&strict)?)
}

/// `1 / (w_j - w_i)` off the diagonal, 0 on it (`w` ascending eigenvalues).
fn gap_inverse(w: &Array) -> Result<Array> {
    let d = ops::subtract(&ops::expand_dims(w, &[-2])?, &ops::expand_dims(w, &[-1])?)?;
    let n = w.shape()[w.ndim() - 1] as i64;
    let eye = ops::eye(n, None, 0, Dtype::Bool)?;
    let safe = ops::where_(&eye, &scalar(1.0, w.dtype())?, &d)?;
    ops::where_(
        &eye,
        &scalar(0.0, w.dtype())?,
        &ops::divide(&scalar(1.0, w.dtype())?, &safe)?,
    )
}

/// Tangents of `[U, S, Vh]` (full U and Vh) given the thin factors, dA and
/// dP = U_k^T dA V_k. The first k columns follow the usual formulas
/// (F_ij = 1 / (s_j^2 - s_i^2)); the columns beyond k, which are not unique, move with
/// `-U_k (dU_k^T U_perp)` (they stay orthogonal to the moved U_k, no rotation among them).
#[allow(clippy::too_many_arguments)]
fn svd_vector_tangents(
    a: &Array,
    u_full: &Array,
    vh_full: &Array,
    u: &Array,
    s: &Array,
    vh: &Array,
    da: &Array,
    dp: &Array,
    ds: Array,
) -> Result<Vec<Array>> {
    let (m, n) = (
        a.shape()[a.ndim() - 2] as i64,
        a.shape()[a.ndim() - 1] as i64,
    );
    let k = s.shape()[s.ndim() - 1] as i64;
    let s2 = ops::multiply(s, s)?;
    let f = gap_inverse(&s2)?;
    let s_row = ops::expand_dims(s, &[-2])?;
    let s_col = ops::expand_dims(s, &[-1])?;
    let v = mt(vh)?;
    // dP S + S dP^T and S dP + dP^T S
    let ju = ops::add(
        &ops::multiply(dp, &s_row)?,
        &ops::multiply(&s_col, &mt(dp)?)?,
    )?;
    let jv = ops::add(
        &ops::multiply(&s_col, dp)?,
        &ops::multiply(&mt(dp)?, &s_row)?,
    )?;
    let mut du = mm(u, &ops::multiply(&f, &ju)?)?;
    let mut dv = mm(&v, &ops::multiply(&f, &jv)?)?;
    if m > k {
        let t = ops::divide(&mm(da, &v)?, &s_row)?;
        du = ops::add(&du, &ops::subtract(&t, &mm(u, &mm(&mt(u)?, &t)?)?)?)?;
        let perp = slice_axis(u_full, -1, k, m)?;
        let dperp = ops::negative(&mm(u, &mm(&mt(&du)?, &perp)?)?)?;
        du = ops::concatenate(&[du, dperp], Some(-1))?;
    }
    if n > k {
        let t = ops::divide(&mm(&mt(da)?, u)?, &s_row)?;
        dv = ops::add(&dv, &ops::subtract(&t, &mm(&v, &mm(&mt(&v)?, &t)?)?)?)?;
        let perp = mt(&slice_axis(vh_full, -2, k, n)?)?;
        let dperp = ops::negative(&mm(&v, &mm(&mt(&dv)?, &perp)?)?)?;
        dv = ops::concatenate(&[dv, dperp], Some(-1))?;
    }
    Ok(vec![du, ds, mt(&dv)?])
}

fn real_only(name: &str, d: Dtype) -> Result<()> {
    if d == Dtype::Complex64 {
        return Err(crate::value_err!(
            "[linalg::{name}] Derivatives of complex inputs are not supported."
        ));
    }
    Ok(())
}

/// `phi(X)`: the lower triangle with a halved diagonal (Cholesky's derivative).
fn phi(x: &Array) -> Result<Array> {
    let half = ops::multiply(&diag_embed(&diag_of(x)?)?, &scalar(0.5, x.dtype())?)?;
    ops::subtract(&ops::tril(x, 0)?, &half)
}

impl Linalg {
    /// The eigenvalues and vectors of `a` (recomputed when this node has no vectors).
    fn eigh_pair(&self, a: &Array, out: &[Array]) -> (Array, Array) {
        match self.op {
            LinalgOp::Eigh { vectors: true, .. } => (out[0].clone(), out[1].clone()),
            LinalgOp::Eigh { upper, .. } => {
                let mut o = Linalg {
                    op: LinalgOp::Eigh {
                        upper,
                        vectors: true,
                    },
                }
                .apply(std::slice::from_ref(a));
                let v = o.pop().expect("two outputs");
                (o.pop().expect("two outputs"), v)
            }
            _ => unreachable!("eigh only"),
        }
    }

    /// `U[..., :, :k]`, `S`, `Vh[..., :k, :]` of `a` (recomputed without `compute_uv`).
    fn thin_svd(&self, a: &Array, out: &[Array]) -> Result<(Array, Array, Array)> {
        let full = match self.op {
            LinalgOp::Svd { compute_uv: true } => out.to_vec(),
            _ => Linalg {
                op: LinalgOp::Svd { compute_uv: true },
            }
            .apply(std::slice::from_ref(a)),
        };
        let s = full[1].clone();
        let k = s.shape()[s.ndim() - 1] as i64;
        Ok((
            slice_axis(&full[0], -1, 0, k)?,
            s,
            slice_axis(&full[2], -2, 0, k)?,
        ))
    }
}

impl Primitive for Linalg {
    fn name(&self) -> &'static str {
        match self.op {
            LinalgOp::Inv | LinalgOp::TriInv { .. } => "Inverse",
            LinalgOp::Cholesky { .. } => "Cholesky",
            LinalgOp::Qr => "QRF",
            LinalgOp::Svd { .. } => "SVD",
            LinalgOp::Eigh { .. } => "Eigh",
            LinalgOp::Eig { .. } => "Eig",
            LinalgOp::LuFactor | LinalgOp::Lu => "LUF",
            LinalgOp::Solve => "Solve",
            LinalgOp::SolveTriangular { .. } => "SolveTriangular",
            LinalgOp::Det { .. } => "Determinant",
        }
    }
    fn eval(
        &self,
        b: &dyn Backend,
        inputs: &[ArrayData],
        _o: &[OutputSpec],
    ) -> Result<Vec<ArrayData>> {
        b.linalg(self.op, inputs)
    }
    fn vjp(
        &self,
        p: &[Array],
        ct: &[Array],
        argnums: &[usize],
        out: &[Array],
    ) -> Result<Vec<Array>> {
        let a = &p[0];
        real_only(self.name(), a.dtype())?;
        let g = &ct[0];
        match self.op {
            LinalgOp::Inv | LinalgOp::TriInv { .. } => {
                let it = mt(&out[0])?;
                let r = ops::negative(&mm(&mm(&it, g)?, &it)?)?;
                Ok(vec![match self.op {
                    LinalgOp::TriInv { upper } => tri(&r, upper)?,
                    _ => r,
                }])
            }
            LinalgOp::Cholesky { upper } => {
                // L lower with A = L L^T; the upper factor is L^T
                let (l, lbar) = if upper {
                    (mt(&out[0])?, mt(g)?)
                } else {
                    (out[0].clone(), g.clone())
                };
                let linv = Linalg::one(LinalgOp::TriInv { upper: false }, std::slice::from_ref(&l));
                let p_ = phi(&mm(&mt(&l)?, &lbar)?)?;
                let s = mm(&mm(&mt(&linv)?, &p_)?, &linv)?;
                let sym = ops::multiply(&ops::add(&s, &mt(&s)?)?, &scalar(0.5, s.dtype())?)?;
                Ok(vec![onto_triangle(&sym, upper)?])
            }
            LinalgOp::Eigh { upper, vectors } => {
                let (w, v) = self.eigh_pair(a, out);
                let mut inner = diag_embed(g)?;
                if vectors {
                    let m = mm(&mt(&v)?, &ct[1])?;
                    let skew =
                        ops::multiply(&ops::subtract(&m, &mt(&m)?)?, &scalar(0.5, m.dtype())?)?;
                    inner = ops::add(&inner, &ops::multiply(&skew, &gap_inverse(&w)?)?)?;
                }
                let sym = mm(&mm(&v, &inner)?, &mt(&v)?)?;
                Ok(vec![onto_triangle(&sym, upper)?])
            }
            LinalgOp::Svd { compute_uv } => {
                let (u, s, vh) = self.thin_svd(a, out)?;
                let gs = if compute_uv { &ct[1] } else { &ct[0] };
                if !compute_uv {
                    return Ok(vec![mm(
                        &ops::multiply(&u, &ops::expand_dims(gs, &[-2])?)?,
                        &vh,
                    )?]);
                }
                let k = s.shape()[s.ndim() - 1] as i64;
                let gu = slice_axis(&ct[0], -1, 0, k)?;
                let gvh = slice_axis(&ct[2], -2, 0, k)?;
                let (m, n) = (
                    a.shape()[a.ndim() - 2] as i64,
                    a.shape()[a.ndim() - 1] as i64,
                );
                let s_row = ops::expand_dims(&s, &[-2])?; // S_j
                let s_col = ops::expand_dims(&s, &[-1])?; // S_i
                let uhgu = mm(&mt(&u)?, &gu)?;
                let vhgv = mm(&vh, &mt(&gvh)?)?;
                let skew = |x: &Array| -> Result<Array> { ops::subtract(x, &mt(x)?) };
                let s2 = ops::multiply(&s, &s)?;
                let e = ops::subtract(
                    &ops::expand_dims(&s2, &[-2])?,
                    &ops::expand_dims(&s2, &[-1])?,
                )?;
                let eye = ops::eye(k, None, 0, Dtype::Bool)?;
                let e = ops::where_(&eye, &scalar(1.0, e.dtype())?, &e)?;
                let num = ops::add(
                    &ops::multiply(&skew(&uhgu)?, &s_row)?,
                    &ops::multiply(&s_col, &skew(&vhgv)?)?,
                )?;
                let ret = ops::add(
                    &ops::where_(&eye, &scalar(0.0, e.dtype())?, &ops::divide(&num, &e)?)?,
                    &diag_embed(gs)?,
                )?;
                let mut ga = mm(&mm(&u, &ret)?, &vh)?;
                if m > k {
                    let gus = ops::divide(&gu, &s_row)?;
                    let perp = ops::subtract(&gus, &mm(&u, &mm(&mt(&u)?, &gus)?)?)?;
                    ga = ops::add(&ga, &mm(&perp, &vh)?)?;
                }
                if n > k {
                    let gvs = ops::divide(&gvh, &s_col)?;
                    let perp = ops::subtract(&gvs, &mm(&mm(&gvs, &mt(&vh)?)?, &vh)?)?;
                    ga = ops::add(&ga, &mm(&u, &perp)?)?;
                }
                Ok(vec![ga])
            }
            LinalgOp::Solve | LinalgOp::SolveTriangular { .. } => {
                let x = &out[0];
                let (bbar, upper) = match self.op {
                    LinalgOp::SolveTriangular { upper } => (
                        Linalg::one(
                            LinalgOp::SolveTriangular { upper: !upper },
                            &[mt(a)?, g.clone()],
                        ),
                        Some(upper),
                    ),
                    _ => (Linalg::one(LinalgOp::Solve, &[mt(a)?, g.clone()]), None),
                };
                argnums
                    .iter()
                    .map(|&i| {
                        if i == 1 {
                            return Ok(bbar.clone());
                        }
                        let abar = ops::negative(&mm(&bbar, &mt(x)?)?)?;
                        match upper {
                            Some(u) => tri(&abar, u),
                            None => Ok(abar),
                        }
                    })
                    .collect()
            }
            LinalgOp::Det { log } => {
                let inv_t = mt(&Linalg::one(LinalgOp::Inv, std::slice::from_ref(a)))?;
                let scale = if log {
                    ct[1].clone()
                } else {
                    ops::multiply(g, &out[0])?
                };
                Ok(vec![ops::multiply(&bcast2(&scale)?, &inv_t)?])
            }
            _ => Err(crate::value_err!(
                "[{}] The vjp is not implemented for this primitive.",
                self.name()
            )),
        }
    }
    fn jvp(
        &self,
        p: &[Array],
        t: &[Array],
        argnums: &[usize],
        out: &[Array],
    ) -> Result<Vec<Array>> {
        let a = &p[0];
        real_only(self.name(), a.dtype())?;
        // the tangent of A (zeros when only B has one)
        let ta = argnums.iter().position(|&i| i == 0).map(|j| t[j].clone());
        let tb = argnums.iter().position(|&i| i == 1).map(|j| t[j].clone());
        match self.op {
            LinalgOp::Inv | LinalgOp::TriInv { .. } => {
                let ta = ta.expect("one input");
                let ta = match self.op {
                    LinalgOp::TriInv { upper } => tri(&ta, upper)?,
                    _ => ta,
                };
                Ok(vec![ops::negative(&mm(&mm(&out[0], &ta)?, &out[0])?)?])
            }
            LinalgOp::Cholesky { upper } => {
                let l = if upper { mt(&out[0])? } else { out[0].clone() };
                let da = from_triangle(&ta.expect("one input"), upper)?;
                let linv = Linalg::one(LinalgOp::TriInv { upper: false }, std::slice::from_ref(&l));
                let dl = mm(&l, &phi(&mm(&mm(&linv, &da)?, &mt(&linv)?)?)?)?;
                Ok(vec![if upper { mt(&dl)? } else { dl }])
            }
            LinalgOp::Eigh { upper, vectors } => {
                let (w, v) = self.eigh_pair(a, out);
                let da = from_triangle(&ta.expect("one input"), upper)?;
                let d = mm(&mm(&mt(&v)?, &da)?, &v)?;
                let mut r = vec![diag_of(&d)?];
                if vectors {
                    r.push(mm(&v, &ops::multiply(&d, &gap_inverse(&w)?)?)?);
                }
                Ok(r)
            }
            LinalgOp::Svd { compute_uv } => {
                let (u, s, vh) = self.thin_svd(a, out)?;
                let da = ta.expect("one input");
                let dp = mm(&mm(&mt(&u)?, &da)?, &mt(&vh)?)?;
                let ds = diag_of(&dp)?;
                if !compute_uv {
                    return Ok(vec![ds]);
                }
                svd_vector_tangents(a, &out[0], &out[2], &u, &s, &vh, &da, &dp, ds)
            }
            LinalgOp::Solve | LinalgOp::SolveTriangular { .. } => {
                let x = &out[0];
                let mut rhs = match tb {
                    Some(tb) => tb,
                    None => ops::zeros_like(x)?,
                };
                if let Some(ta) = ta {
                    let ta = match self.op {
                        LinalgOp::SolveTriangular { upper } => tri(&ta, upper)?,
                        _ => ta,
                    };
                    rhs = ops::subtract(&rhs, &mm(&ta, x)?)?;
                }
                Ok(vec![Linalg::one(self.op, &[a.clone(), rhs])])
            }
            LinalgOp::Det { log } => {
                let ainv = Linalg::one(LinalgOp::Inv, std::slice::from_ref(a));
                let tr = ops::sum(
                    &diag_of(&mm(&ainv, &ta.expect("one input"))?)?,
                    Some(&[-1]),
                    false,
                )?;
                Ok(if log {
                    vec![ops::zeros_like(&out[0])?, tr]
                } else {
                    vec![ops::multiply(&out[0], &tr)?]
                })
            }
            _ => Err(crate::value_err!(
                "[{}] The jvp is not implemented for this primitive.",
                self.name()
            )),
        }
    }
    fn vmap(&self, x: &[Array], ax: &[Option<usize>], _o: &[OutputSpec]) -> Result<Batched> {
        let (xs, _) = batching::all_to_front(x, ax)?;
        let outs = self.apply(&xs);
        let n = outs.len();
        Ok((outs, vec![Some(0); n]))
    }
    crate::primitive_common!();
}
