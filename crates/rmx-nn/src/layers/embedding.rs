//! `Embedding`: a lookup table of `dims`-vectors, MLX's initialisation.

use super::{f32_scalar, Layer};
use crate::{Module, Param};
use rmx_core::ops::{self, random};
use rmx_core::{type_err, value_err, Array, Dtype, Result};

#[derive(Debug, Clone, Module)]
pub struct Embedding {
    /// `(num_embeddings, dims)`.
    pub weight: Param,
}

impl Embedding {
    /// Weights drawn from `N(0, 1/dims)` (global key).
    pub fn new(num_embeddings: usize, dims: usize) -> Result<Embedding> {
        if num_embeddings == 0 || dims == 0 {
            return Err(value_err!(
                "[Embedding] num_embeddings and dims must be positive, got {num_embeddings} and {dims}."
            ));
        }
        let scale = f32_scalar((1.0 / dims as f64).sqrt());
        let w = random::normal(
            &[num_embeddings, dims],
            Dtype::Float32,
            None,
            Some(&scale),
            None,
        )?;
        Ok(Embedding { weight: w.into() })
    }

    /// `x @ weight.T`: the table used as an output projection (tied embeddings).
    pub fn as_linear(&self, x: &Array) -> Result<Array> {
        ops::matmul(x, &ops::transpose(&self.weight, None)?)
    }
}

impl Layer for Embedding {
    /// Rows of the table at the integer indices `x` (any shape; a trailing axis of
    /// `dims` is added).
    fn forward(&self, x: &Array) -> Result<Array> {
        if !x.dtype().is_integer() {
            return Err(type_err!(
                "[Embedding] Indices must be integers, got {}.",
                x.dtype()
            ));
        }
        ops::take(&self.weight, x, Some(0))
    }
}
