//! `clip_grad_norm`: rescales gradients so their global L2 norm is at most `max_norm`.

use crate::Params;
use rmx_core::ops;
use rmx_core::{value_err, Array, Dtype, Result, Scalar};

/// The clipped gradients and the original global norm (MLX's formula: scale by
/// `min(max_norm / (norm + 1e-6), 1)`).
pub fn clip_grad_norm(grads: &Params, max_norm: f64) -> Result<(Params, Array)> {
    if max_norm.is_nan() || max_norm < 0.0 {
        return Err(value_err!(
            "max_norm should be >=0, {max_norm} was provided instead"
        ));
    }
    let mut names: Vec<&String> = grads.keys().collect();
    names.sort();
    let mut sq = Array::scalar_of(Scalar::Float(0.0), Dtype::Float32)?;
    for name in &names {
        let mut g = grads[*name].clone();
        if g.dtype() == Dtype::Float16 {
            g = ops::astype(&g, Dtype::Float32)?;
        }
        sq = ops::add(&sq, &ops::sum(&ops::square(&g)?, None, false)?)?;
    }
    let norm = ops::sqrt(&sq)?;
    let f = |v: f64| Array::scalar_of(Scalar::Float(v), norm.dtype());
    let normalizer = ops::minimum(
        &ops::divide(&f(max_norm)?, &ops::add(&norm, &f(1e-6)?)?)?,
        &f(1.0)?,
    )?;
    let mut out = Params::new();
    for name in names {
        let g = &grads[name];
        let scaled = ops::multiply(g, &normalizer)?;
        let scaled = if g.dtype().is_float() {
            ops::astype(&scaled, g.dtype())?
        } else {
            scaled
        };
        out.insert(name.clone(), scaled);
    }
    Ok((out, norm))
}
