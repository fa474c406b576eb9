//! `Linear`: `y = x @ weight.T + bias`, MLX's layout and initialisation.

use super::{f32_scalar, Layer};
use crate::{Module, Param};
use rmx_core::ops::{self, random};
use rmx_core::{value_err, Array, Dtype, Result};

#[derive(Debug, Clone, Module)]
pub struct Linear {
    /// `(output_dims, input_dims)`.
    pub weight: Param,
    /// `(output_dims,)`, absent when built without bias.
    pub bias: Option<Param>,
}

impl Linear {
    /// Weight and bias drawn from `U(-k, k)`, `k = 1/sqrt(input_dims)` (global key).
    pub fn new(input_dims: usize, output_dims: usize, bias: bool) -> Result<Linear> {
        if input_dims == 0 || output_dims == 0 {
            return Err(value_err!(
                "[Linear] input_dims and output_dims must be positive, got {input_dims} and {output_dims}."
            ));
        }
        let k = (1.0 / input_dims as f64).sqrt();
        let (lo, hi) = (f32_scalar(-k), f32_scalar(k));
        let weight = random::uniform(&lo, &hi, &[output_dims, input_dims], Dtype::Float32, None)?;
        let bias = if bias {
            Some(random::uniform(&lo, &hi, &[output_dims], Dtype::Float32, None)?.into())
        } else {
            None
        };
        Ok(Linear {
            weight: weight.into(),
            bias,
        })
    }

    pub fn input_dims(&self) -> usize {
        self.weight.shape()[1]
    }

    pub fn output_dims(&self) -> usize {
        self.weight.shape()[0]
    }
}

impl Layer for Linear {
    fn forward(&self, x: &Array) -> Result<Array> {
        let wt = ops::transpose(&self.weight, None)?;
        match &self.bias {
            Some(b) => ops::addmm(b, x, &wt, 1.0, 1.0),
            None => ops::matmul(x, &wt),
        }
    }
}
