//! `mx.random.multivariate_normal`: MLX's algorithm, `mean + z @ (U sqrt(S) Vh)` with
//! `z` standard normal samples of the key and the SVD of the float32 covariance. For a
//! symmetric covariance `U sqrt(S) Vh` is its symmetric square root, which does not depend
//! on the SVD's sign conventions, so the same key gives MLX's samples up to rounding.

use crate::array::Array;
use crate::dtype::Dtype;
use crate::error::Result;
use crate::ops;
use crate::ops::linalg_decompositions::svd;
use crate::shape::broadcast_shapes;

pub fn multivariate_normal(
    mean: &Array,
    cov: &Array,
    shape: &[usize],
    dtype: Dtype,
    key: Option<&Array>,
) -> Result<Array> {
    let err = |m: &str| Err(crate::value_err!("[multivariate_normal] {m}"));
    if dtype != Dtype::Float32 {
        return err("dtype must be float32.");
    }
    if mean.ndim() < 1 {
        return err("mean must have at least one dimension.");
    }
    if cov.ndim() < 2 {
        return err("cov must have at least two dimensions.");
    }
    let (mn, cn) = (mean.ndim(), cov.ndim());
    let n = cov.shape()[cn - 1];
    if cov.shape()[cn - 2] != n {
        return err("last two dimensions of cov must be equal.");
    }
    if mean.shape()[mn - 1] != n {
        return err("mean and cov must have compatible shapes.");
    }
    let batch = broadcast_shapes(&cov.shape()[..cn - 2], &mean.shape()[..mn - 1])?;
    let mut out_shape = broadcast_shapes(&batch, shape)?.to_vec();
    out_shape.push(n);
    let z = ops::random::normal(&out_shape, dtype, None, None, key)?;
    let f = svd(&ops::astype(cov, Dtype::Float32)?, true)?;
    let root = ops::matmul(
        &ops::multiply(&f[0], &ops::expand_dims(&ops::sqrt(&f[1])?, &[-2])?)?,
        &f[2],
    )?;
    let root = ops::astype(&root, dtype)?;
    let samples = ops::squeeze(
        &ops::matmul(&ops::expand_dims(&z, &[-2])?, &root)?,
        Some(&[-2]),
    )?;
    ops::add(mean, &samples)
}
