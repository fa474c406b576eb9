//! `Dropout`: zeroes entries with probability `p` in training mode and scales the rest
//! by `1/(1-p)`; the identity in evaluation mode.

use super::{f32_scalar, Layer};
use crate::Module;
use rmx_core::ops::{self, random};
use rmx_core::{value_err, Array, Result};

#[derive(Debug, Clone)]
pub struct Dropout {
    keep: f32,
    /// Training mode (the default for a new layer, as in MLX).
    pub training: bool,
}

impl Dropout {
    pub fn new(p: f32) -> Result<Dropout> {
        if !(0.0..1.0).contains(&p) {
            return Err(value_err!("The dropout probability {p} is not in [0, 1)"));
        }
        Ok(Dropout {
            keep: 1.0 - p,
            training: true,
        })
    }

    pub fn p(&self) -> f32 {
        1.0 - self.keep
    }
}

impl Module for Dropout {
    fn visit_params(&self, _: &str, _: &mut dyn FnMut(&str, &crate::Param)) {}

    fn visit_params_mut(
        &mut self,
        _: &str,
        _: &mut dyn FnMut(&str, &mut crate::Param) -> Result<()>,
    ) -> Result<()> {
        Ok(())
    }

    fn set_training(&mut self, training: bool) {
        self.training = training;
    }
}

impl Layer for Dropout {
    fn forward(&self, x: &Array) -> Result<Array> {
        if self.keep == 1.0 || !self.training {
            return Ok(x.clone());
        }
        let keep = f32_scalar(self.keep as f64);
        let mask = random::bernoulli(&keep, Some(x.shape()), None)?;
        let y = ops::multiply(&mask, x)?;
        ops::multiply(&y, &f32_scalar(1.0 / self.keep as f64))
    }
}
