//! CPU kernels of the `linalg` family (`Backend::linalg`): each matrix of the batch is
//! copied into a column-major faer `Mat` and factorized by faer (pure Rust, LAPACK-grade
//! blocked algorithms); batches of several matrices are spread over rayon. Results are
//! written straight into the row-major output buffers, one disjoint slot per matrix.

use crate::array::ArrayData;
use crate::backend::LinalgOp;
use crate::dtype::Dtype;
use crate::element::Element;
use crate::error::{Error, Result};
use faer::linalg::solvers::{DenseSolveCore, Solve};
use faer::traits::{ComplexField, RealField};
use faer::{Mat, MatRef, Side};
use num_complex::{Complex, Complex32};
use rayon::prelude::*;

/// The element types the kernels run in: f32, f64 and complex64.
trait Field: ComplexField<Real = <Self as Field>::R> + Element {
    type R: RealField + Element;
    /// Real part as f64 (used for determinants and checks).
    fn re64(self) -> f64;
    fn from_f64(v: f64) -> Self;
    fn finite(self) -> bool;
    fn is_zero(self) -> bool;
    fn r_to_f32(r: Self::R) -> f32;
}

impl Field for f32 {
    type R = f32;
    fn re64(self) -> f64 {
        self as f64
    }
    fn from_f64(v: f64) -> Self {
        v as f32
    }
    fn finite(self) -> bool {
        self.is_finite()
    }
    fn is_zero(self) -> bool {
        self == 0.0
    }
    fn r_to_f32(r: f32) -> f32 {
        r
    }
}

impl Field for f64 {
    type R = f64;
    fn re64(self) -> f64 {
        self
    }
    fn from_f64(v: f64) -> Self {
        v
    }
    fn finite(self) -> bool {
        self.is_finite()
    }
    fn is_zero(self) -> bool {
        self == 0.0
    }
    fn r_to_f32(r: f64) -> f32 {
        r as f32
    }
}

impl Field for Complex32 {
    type R = f32;
    fn re64(self) -> f64 {
        self.re as f64
    }
    fn from_f64(v: f64) -> Self {
        Complex32::new(v as f32, 0.0)
    }
    fn finite(self) -> bool {
        self.re.is_finite() && self.im.is_finite()
    }
    fn is_zero(self) -> bool {
        self.re == 0.0 && self.im == 0.0
    }
    fn r_to_f32(r: f32) -> f32 {
        r
    }
}

pub fn linalg(op: LinalgOp, inputs: &[ArrayData]) -> Result<Vec<ArrayData>> {
    match inputs[0].dtype {
        Dtype::Float32 => run::<f32>(op, inputs),
        Dtype::Float64 => run::<f64>(op, inputs),
        Dtype::Complex64
            if matches!(
                op,
                LinalgOp::Svd { .. } | LinalgOp::Eigh { .. } | LinalgOp::Eig { .. }
            ) =>
        {
            run::<Complex32>(op, inputs)
        }
        d => Err(crate::value_err!(
            "[linalg] {op:?} does not support arrays of type {d}."
        )),
    }
}

/// The matrices of one input: row-major values, the batch count and the matrix shape.
struct Mats<T> {
    values: Vec<T>,
    batch: Vec<usize>,
    count: usize,
    m: usize,
    n: usize,
}

impl<T: Field> Mats<T> {
    fn new(x: &ArrayData) -> Mats<T> {
        let nd = x.ndim();
        let (m, n) = (x.shape[nd - 2], x.shape[nd - 1]);
        let batch: Vec<usize> = x.shape[..nd - 2].to_vec();
        Mats {
            values: x.to_vec::<T>(),
            count: batch.iter().product(),
            batch,
            m,
            n,
        }
    }

    /// Matrix `b` as an owned column-major faer matrix.
    fn mat(&self, b: usize) -> Mat<T> {
        let (m, n) = (self.m, self.n);
        let v = &self.values[b * m * n..(b + 1) * m * n];
        Mat::from_fn(m, n, |i, j| v[i * n + j])
    }

    fn check_finite(&self, what: &str) -> Result<()> {
        if self.values.iter().all(|v| v.finite()) {
            Ok(())
        } else {
            Err(Error::Runtime(format!(
                "[linalg::{what}] The input contains NaN or infinite values."
            )))
        }
    }

    fn shape(&self, tail: &[usize]) -> Vec<usize> {
        let mut s = self.batch.clone();
        s.extend_from_slice(tail);
        s
    }
}

/// A row-major output with one slot of `per` elements per matrix.
struct Out {
    data: ArrayData,
    per: usize,
}

impl Out {
    fn new(dtype: Dtype, shape: Vec<usize>, count: usize) -> Result<Out> {
        let data = ArrayData::alloc(dtype, &shape)?;
        let per = data.numel().checked_div(count).unwrap_or(0);
        Ok(Out { data, per })
    }

    /// The slot of matrix `b`.
    ///
    /// # Safety
    /// `E` is the output's element type and each slot is written by one task only.
    #[allow(clippy::mut_from_ref)]
    unsafe fn slot<E: Element>(&self, b: usize) -> &mut [E] {
        debug_assert_eq!(E::DTYPE, self.data.dtype);
        std::slice::from_raw_parts_mut(self.data.ptr_mut::<E>().add(b * self.per), self.per)
    }

    /// Writes `src` (any faer matrix view) row-major into slot `b`.
    fn put<E: Element>(&self, b: usize, src: MatRef<'_, E>) {
        let s = unsafe { self.slot::<E>(b) };
        let n = src.ncols();
        for i in 0..src.nrows() {
            for j in 0..n {
                s[i * n + j] = src[(i, j)];
            }
        }
    }
}

/// Runs `f` for every matrix (in parallel when there are several), returning the first error.
fn each(count: usize, f: impl Fn(usize) -> Result<()> + Sync + Send) -> Result<()> {
    if count <= 1 {
        (0..count).try_for_each(f)
    } else {
        (0..count).into_par_iter().try_for_each(f)
    }
}

fn finish(outs: Vec<Out>) -> Result<Vec<ArrayData>> {
    Ok(outs.into_iter().map(|o| o.data).collect())
}

/// First zero on the diagonal of `a` (1-based, LAPACK's `info`), if any.
fn zero_diagonal<T: Field>(a: MatRef<'_, T>) -> Option<usize> {
    (0..a.nrows().min(a.ncols()))
        .find(|&i| a[(i, i)].is_zero())
        .map(|i| i + 1)
}

/// LAPACK's pivot sequence (row `i` swapped with row `ipiv[i]`) behind the row
/// permutation `perm` (`perm[i]`: the original row placed at `i`).
fn pivots(perm: &[usize], k: usize) -> Vec<u32> {
    let m = perm.len();
    let mut cur: Vec<usize> = (0..m).collect();
    let mut pos: Vec<usize> = (0..m).collect();
    let mut ipiv = Vec::with_capacity(k);
    for (i, &p) in perm.iter().enumerate().take(k) {
        let j = pos[p];
        ipiv.push(j as u32);
        let (a, b) = (cur[i], cur[j]);
        cur.swap(i, j);
        pos[a] = j;
        pos[b] = i;
    }
    ipiv
}

fn run<T: Field>(op: LinalgOp, inputs: &[ArrayData]) -> Result<Vec<ArrayData>> {
    let a = Mats::<T>::new(&inputs[0]);
    let (m, n, count) = (a.m, a.n, a.count);
    let k = m.min(n);
    let dt = T::DTYPE;
    let rdt = <T::R as Element>::DTYPE;
    let par = faer::get_global_parallelism();
    match op {
        LinalgOp::Inv => {
            let out = Out::new(dt, a.shape(&[n, n]), count)?;
            each(count, |b| {
                let lu = a.mat(b).partial_piv_lu();
                if let Some(i) = zero_diagonal(lu.U()) {
                    return Err(Error::Runtime(format!(
                        "[linalg::inv] LU factorization failed with error code {i}: the matrix is singular."
                    )));
                }
                out.put(b, lu.inverse().as_ref());
                Ok(())
            })?;
            finish(vec![out])
        }
        LinalgOp::TriInv { upper } => {
            let out = Out::new(dt, a.shape(&[n, n]), count)?;
            each(count, |b| {
                let src = a.mat(b);
                if let Some(i) = zero_diagonal(src.as_ref()) {
                    return Err(Error::Runtime(format!(
                        "[linalg::tri_inv] Triangular inversion failed with error code {i}: the matrix is singular."
                    )));
                }
                let mut dst = Mat::<T>::zeros(n, n);
                use faer::linalg::triangular_inverse as ti;
                if upper {
                    ti::invert_upper_triangular(dst.as_mut(), src.as_ref(), par);
                } else {
                    ti::invert_lower_triangular(dst.as_mut(), src.as_ref(), par);
                }
                out.put(b, dst.as_ref());
                Ok(())
            })?;
            finish(vec![out])
        }
        LinalgOp::Cholesky { upper } => {
            let out = Out::new(dt, a.shape(&[n, n]), count)?;
            each(count, |b| {
                let side = if upper { Side::Upper } else { Side::Lower };
                let llt = a.mat(b).llt(side).map_err(|_| {
                    Error::Runtime(
                        "[linalg::cholesky] Cholesky decomposition failed: the matrix is not positive definite."
                            .into(),
                    )
                })?;
                if upper {
                    out.put(b, llt.L().transpose());
                } else {
                    out.put(b, llt.L());
                }
                Ok(())
            })?;
            finish(vec![out])
        }
        LinalgOp::Qr => {
            let q = Out::new(dt, a.shape(&[m, k]), count)?;
            let r = Out::new(dt, a.shape(&[k, n]), count)?;
            each(count, |b| {
                if k == 0 {
                    return Ok(());
                }
                let qr = a.mat(b).qr();
                q.put(b, qr.compute_thin_Q().as_ref());
                let rs = unsafe { r.slot::<T>(b) };
                let rr = qr.thin_R();
                for i in 0..k {
                    for j in 0..n {
                        rs[i * n + j] = if j >= i { rr[(i, j)] } else { T::from_f64(0.0) };
                    }
                }
                Ok(())
            })?;
            finish(vec![q, r])
        }
        LinalgOp::Svd { compute_uv } => {
            a.check_finite("svd")?;
            let s = Out::new(rdt, a.shape(&[k]), count)?;
            if !compute_uv {
                each(count, |b| {
                    if k == 0 {
                        return Ok(());
                    }
                    let sv = a.mat(b).singular_values().map_err(|_| svd_err())?;
                    unsafe { s.slot::<T::R>(b) }.copy_from_slice(&sv);
                    Ok(())
                })?;
                return finish(vec![s]);
            }
            let u = Out::new(dt, a.shape(&[m, m]), count)?;
            let vh = Out::new(dt, a.shape(&[n, n]), count)?;
            each(count, |b| {
                let svd = if k == 0 {
                    None
                } else {
                    Some(a.mat(b).svd().map_err(|_| svd_err())?)
                };
                match svd {
                    Some(svd) => {
                        u.put(b, svd.U());
                        vh.put(b, svd.V().adjoint().to_owned().as_ref());
                        let d = svd.S().column_vector();
                        let ss = unsafe { s.slot::<T::R>(b) };
                        for (i, v) in ss.iter_mut().enumerate() {
                            *v = faer::traits::math_utils::real(&d[i]);
                        }
                    }
                    // an empty side: the other factor is the identity
                    None => {
                        u.put(b, Mat::<T>::identity(m, m).as_ref());
                        vh.put(b, Mat::<T>::identity(n, n).as_ref());
                    }
                }
                Ok(())
            })?;
            finish(vec![u, s, vh])
        }
        LinalgOp::Eigh { upper, vectors } => {
            a.check_finite("eigh")?;
            let side = if upper { Side::Upper } else { Side::Lower };
            let w = Out::new(rdt, a.shape(&[n]), count)?;
            let v = if vectors {
                Some(Out::new(dt, a.shape(&[n, n]), count)?)
            } else {
                None
            };
            each(count, |b| {
                if n == 0 {
                    return Ok(());
                }
                let mat = a.mat(b);
                let ws = unsafe { w.slot::<T::R>(b) };
                match &v {
                    None => {
                        let vals = mat
                            .self_adjoint_eigenvalues(side)
                            .map_err(|_| eig_err("eigh"))?;
                        ws.copy_from_slice(&vals);
                    }
                    Some(v) => {
                        let e = mat.self_adjoint_eigen(side).map_err(|_| eig_err("eigh"))?;
                        let d = e.S().column_vector();
                        for (i, x) in ws.iter_mut().enumerate() {
                            *x = faer::traits::math_utils::real(&d[i]);
                        }
                        v.put(b, e.U());
                    }
                }
                Ok(())
            })?;
            let mut outs = vec![w];
            outs.extend(v);
            finish(outs)
        }
        LinalgOp::Eig { vectors } => {
            a.check_finite("eig")?;
            let c = Dtype::Complex64;
            let w = Out::new(c, a.shape(&[n]), count)?;
            let v = if vectors {
                Some(Out::new(c, a.shape(&[n, n]), count)?)
            } else {
                None
            };
            let to32 = |z: &Complex<T::R>| Complex32::new(T::r_to_f32(z.re), T::r_to_f32(z.im));
            each(count, |b| {
                if n == 0 {
                    return Ok(());
                }
                let mat = a.mat(b);
                let ws = unsafe { w.slot::<Complex32>(b) };
                match &v {
                    None => {
                        let vals = mat.eigenvalues().map_err(|_| eig_err("eig"))?;
                        for (x, z) in ws.iter_mut().zip(&vals) {
                            *x = to32(z);
                        }
                    }
                    Some(v) => {
                        let e = mat.eigen().map_err(|_| eig_err("eig"))?;
                        let d = e.S().column_vector();
                        for (i, x) in ws.iter_mut().enumerate() {
                            *x = to32(&d[i]);
                        }
                        let vs = unsafe { v.slot::<Complex32>(b) };
                        let u = e.U();
                        for j in 0..n {
                            // LAPACK's convention: unit 2-norm, largest component real
                            let col: Vec<Complex<f64>> = (0..n)
                                .map(|i| {
                                    let z = to32(&u[(i, j)]);
                                    Complex::new(z.re as f64, z.im as f64)
                                })
                                .collect();
                            let norm = col.iter().map(|z| z.norm_sqr()).sum::<f64>().sqrt();
                            let big = col.iter().fold(Complex::new(0.0, 0.0), |a, z| {
                                if z.norm() > a.norm() {
                                    *z
                                } else {
                                    a
                                }
                            });
                            let phase = if big.im != 0.0 {
                                big.conj() / big.norm()
                            } else {
                                Complex::new(1.0, 0.0)
                            };
                            let scale = if norm > 0.0 { phase / norm } else { phase };
                            for i in 0..n {
                                let z = col[i] * scale;
                                vs[i * n + j] = Complex32::new(z.re as f32, z.im as f32);
                            }
                        }
                    }
                }
                Ok(())
            })?;
            let mut outs = vec![w];
            outs.extend(v);
            finish(outs)
        }
        LinalgOp::LuFactor | LinalgOp::Lu => {
            let lu_form = op == LinalgOp::Lu;
            let outs = if lu_form {
                vec![
                    Out::new(Dtype::Uint32, a.shape(&[m]), count)?,
                    Out::new(dt, a.shape(&[m, k]), count)?,
                    Out::new(dt, a.shape(&[k, n]), count)?,
                ]
            } else {
                vec![
                    Out::new(dt, a.shape(&[m, n]), count)?,
                    Out::new(Dtype::Uint32, a.shape(&[k]), count)?,
                ]
            };
            each(count, |b| {
                let (c, ipiv) = lu_compact(&a, b);
                let zero = T::from_f64(0.0);
                if !lu_form {
                    unsafe { outs[0].slot::<T>(b) }.copy_from_slice(&c);
                    let p = unsafe { outs[1].slot::<u32>(b) };
                    for (x, &i) in p.iter_mut().zip(&ipiv) {
                        *x = i as u32;
                    }
                    return Ok(());
                }
                // p[r] = the row of L (and of P A) that original row r became
                let mut perm: Vec<usize> = (0..m).collect();
                for (i, &j) in ipiv.iter().enumerate() {
                    perm.swap(i, j);
                }
                let p = unsafe { outs[0].slot::<u32>(b) };
                for (i, &r) in perm.iter().enumerate() {
                    p[r] = i as u32;
                }
                let l = unsafe { outs[1].slot::<T>(b) };
                for i in 0..m {
                    for j in 0..k {
                        l[i * k + j] = match i.cmp(&j) {
                            std::cmp::Ordering::Greater => c[i * n + j],
                            std::cmp::Ordering::Equal => T::from_f64(1.0),
                            std::cmp::Ordering::Less => zero,
                        };
                    }
                }
                let u = unsafe { outs[2].slot::<T>(b) };
                for i in 0..k {
                    for j in 0..n {
                        u[i * n + j] = if j >= i { c[i * n + j] } else { zero };
                    }
                }
                Ok(())
            })?;
            finish(outs)
        }
        LinalgOp::Solve | LinalgOp::SolveTriangular { .. } => {
            let rhs = Mats::<T>::new(&inputs[1]);
            let r = rhs.n;
            let out = Out::new(dt, a.shape(&[n, r]), count)?;
            each(count, |b| {
                if n == 0 || r == 0 {
                    return Ok(());
                }
                let mat = a.mat(b);
                let mut x = rhs.mat(b);
                match op {
                    LinalgOp::SolveTriangular { upper } => {
                        if let Some(i) = zero_diagonal(mat.as_ref()) {
                            return Err(singular("solve_triangular", i));
                        }
                        use faer::linalg::triangular_solve as ts;
                        if upper {
                            ts::solve_upper_triangular_in_place(mat.as_ref(), x.as_mut(), par);
                        } else {
                            ts::solve_lower_triangular_in_place(mat.as_ref(), x.as_mut(), par);
                        }
                    }
                    _ => {
                        let lu = mat.partial_piv_lu();
                        if let Some(i) = zero_diagonal(lu.U()) {
                            return Err(singular("solve", i));
                        }
                        lu.solve_in_place(x.as_mut());
                    }
                }
                out.put(b, x.as_ref());
                Ok(())
            })?;
            finish(vec![out])
        }
        LinalgOp::Det { log } => {
            let outs = if log {
                vec![
                    Out::new(dt, a.shape(&[]), count)?,
                    Out::new(dt, a.shape(&[]), count)?,
                ]
            } else {
                vec![Out::new(dt, a.shape(&[]), count)?]
            };
            each(count, |b| {
                let (c, ipiv) = lu_compact(&a, b);
                let swaps = ipiv.iter().enumerate().filter(|(i, &p)| *i != p).count();
                let (mut sign, mut logabs) = (if swaps % 2 == 1 { -1.0 } else { 1.0 }, 0.0f64);
                let mut det = sign;
                for i in 0..n {
                    let d = c[i * n + i].re64();
                    det *= d;
                    sign *= if d == 0.0 || d.is_nan() {
                        d
                    } else {
                        d.signum()
                    };
                    logabs += d.abs().ln();
                }
                unsafe {
                    if log {
                        outs[0].slot::<T>(b)[0] = T::from_f64(sign);
                        outs[1].slot::<T>(b)[0] = T::from_f64(logabs);
                    } else {
                        outs[0].slot::<T>(b)[0] = T::from_f64(det);
                    }
                }
                Ok(())
            })?;
            finish(outs)
        }
    }
}

/// Matrix `b`'s compact LU factorization (L strictly below the diagonal, U on and above,
/// row-major `[m, n]`) and LAPACK's 0-based pivots. faer factorizes; when it meets an
/// exactly zero pivot column (a singular matrix), faer divides by it and fills the rest
/// with NaN, so that case is redone with LAPACK's `getf2` rule (skip a zero pivot).
fn lu_compact<T: Field>(a: &Mats<T>, b: usize) -> (Vec<T>, Vec<usize>) {
    let (m, n) = (a.m, a.n);
    let k = m.min(n);
    if k == 0 {
        return (vec![], vec![]);
    }
    let lu = a.mat(b).partial_piv_lu();
    let (l, u) = (lu.L(), lu.U());
    if (0..k).all(|i| !u[(i, i)].is_zero()) {
        let mut c = vec![T::from_f64(0.0); m * n];
        for i in 0..m {
            for j in 0..n {
                c[i * n + j] = if j >= i { u[(i, j)] } else { l[(i, j)] };
            }
        }
        let (fwd, _) = lu.P().arrays();
        let ipiv = pivots(fwd, k).into_iter().map(|p| p as usize).collect();
        return (c, ipiv);
    }
    let mut c: Vec<f64> = a.values[b * m * n..(b + 1) * m * n]
        .iter()
        .map(|v| v.re64())
        .collect();
    let ipiv = getf2(&mut c, m, n);
    (c.into_iter().map(T::from_f64).collect(), ipiv)
}

/// LAPACK's unblocked LU with partial pivoting on a row-major `[m, n]` real matrix (the
/// fallback above; singular inputs only, so speed does not matter).
fn getf2(a: &mut [f64], m: usize, n: usize) -> Vec<usize> {
    let k = m.min(n);
    let mut ipiv = vec![0; k];
    for j in 0..k {
        let mut p = j;
        for i in j + 1..m {
            if a[i * n + j].abs() > a[p * n + j].abs() {
                p = i;
            }
        }
        ipiv[j] = p;
        let piv = a[p * n + j];
        if piv != 0.0 {
            if p != j {
                for c in 0..n {
                    a.swap(j * n + c, p * n + c);
                }
            }
            for i in j + 1..m {
                a[i * n + j] /= piv;
            }
            for i in j + 1..m {
                let f = a[i * n + j];
                for c in j + 1..n {
                    a[i * n + c] -= f * a[j * n + c];
                }
            }
        }
    }
    ipiv
}

fn svd_err() -> Error {
    Error::Runtime("[linalg::svd] SVD failed to converge.".into())
}

fn eig_err(name: &str) -> Error {
    Error::Runtime(format!(
        "[linalg::{name}] Eigenvalue decomposition failed to converge."
    ))
}

fn singular(name: &str, i: usize) -> Error {
    Error::Runtime(format!(
        "[linalg::{name}] The matrix is singular (zero pivot at position {i})."
    ))
}
