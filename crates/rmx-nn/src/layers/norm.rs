//! `LayerNorm` and `RMSNorm` over the last axis, as MLX's `mx.fast.layer_norm` /
//! `mx.fast.rms_norm` (statistics in float32, result in the input's type).

use super::{f32_scalar, Layer};
use crate::{Module, Param};
use rmx_core::ops;
use rmx_core::{value_err, Array, Dtype, Result};

fn check_eps(name: &str, eps: f32) -> Result<()> {
    if eps.is_nan() || eps <= 0.0 {
        return Err(value_err!("[{name}] 'eps' must be positive but got {eps}."));
    }
    Ok(())
}

fn check_last_axis(name: &str, x: &Array, dims: usize) -> Result<()> {
    match x.shape().last() {
        Some(&d) if d == dims => Ok(()),
        _ => Err(value_err!(
            "[{name}] Expected the last axis of the input to be {dims}, got shape {:?}.",
            x.shape()
        )),
    }
}

#[derive(Debug, Clone, Module)]
pub struct LayerNorm {
    /// `(dims,)`, ones; absent without `affine`.
    pub weight: Option<Param>,
    /// `(dims,)`, zeros; absent without `affine` or `bias`.
    pub bias: Option<Param>,
    #[module(skip)]
    pub dims: usize,
    #[module(skip)]
    pub eps: f32,
}

impl LayerNorm {
    /// MLX's defaults: `LayerNorm::new(dims, 1e-5, true, true)`.
    pub fn new(dims: usize, eps: f32, affine: bool, bias: bool) -> Result<LayerNorm> {
        check_eps("LayerNorm", eps)?;
        let weight = if affine {
            Some(ops::ones(&[dims as i64], Dtype::Float32)?.into())
        } else {
            None
        };
        let bias = if affine && bias {
            Some(ops::zeros(&[dims as i64], Dtype::Float32)?.into())
        } else {
            None
        };
        Ok(LayerNorm {
            weight,
            bias,
            dims,
            eps,
        })
    }
}

impl Layer for LayerNorm {
    fn forward(&self, x: &Array) -> Result<Array> {
        check_last_axis("LayerNorm", x, self.dims)?;
        let xf = ops::astype(x, Dtype::Float32)?;
        let mean = ops::mean(&xf, Some(&[-1]), true)?;
        let centered = ops::subtract(&xf, &mean)?;
        let var = ops::mean(&ops::square(&centered)?, Some(&[-1]), true)?;
        let inv = ops::rsqrt(&ops::add(&var, &f32_scalar(self.eps as f64))?)?;
        let mut y = ops::astype(&ops::multiply(&centered, &inv)?, x.dtype())?;
        if let Some(w) = &self.weight {
            y = ops::multiply(&y, w)?;
        }
        if let Some(b) = &self.bias {
            y = ops::add(&y, b)?;
        }
        Ok(y)
    }
}

#[derive(Debug, Clone, Module)]
pub struct RMSNorm {
    /// `(dims,)`, ones.
    pub weight: Param,
    #[module(skip)]
    pub eps: f32,
}

impl RMSNorm {
    /// MLX's default eps is `1e-5`.
    pub fn new(dims: usize, eps: f32) -> Result<RMSNorm> {
        check_eps("RMSNorm", eps)?;
        Ok(RMSNorm {
            weight: ops::ones(&[dims as i64], Dtype::Float32)?.into(),
            eps,
        })
    }
}

impl Layer for RMSNorm {
    fn forward(&self, x: &Array) -> Result<Array> {
        check_last_axis("RMSNorm", x, self.weight.shape()[0])?;
        let xf = ops::astype(x, Dtype::Float32)?;
        let ms = ops::mean(&ops::square(&xf)?, Some(&[-1]), true)?;
        let inv = ops::rsqrt(&ops::add(&ms, &f32_scalar(self.eps as f64))?)?;
        let y = ops::astype(&ops::multiply(&xf, &inv)?, x.dtype())?;
        ops::multiply(&y, &self.weight)
    }
}
