//! Lion (MLX's formula): the step is the sign of an interpolated momentum, with
//! decoupled weight decay.

use super::{
    core_accessors, ema, lr_as, s, zeros_state, Optimizer, OptimizerCore, Schedule, StepInfo,
};
use rmx_core::ops;
use rmx_core::{value_err, Array, Result};

/// `c = b1 m + (1 - b1) g`, `m = b2 m + (1 - b2) g`, `w = (1 - lr wd) w - lr sign(c)`.
/// State: `[m]`.
#[derive(Clone, Debug)]
pub struct Lion {
    core: OptimizerCore,
    pub betas: (f64, f64),
    pub weight_decay: f64,
}

impl Lion {
    /// MLX's defaults: betas (0.9, 0.99), no weight decay.
    pub fn new(learning_rate: impl Into<Schedule>) -> Lion {
        Lion {
            core: OptimizerCore::new(learning_rate),
            betas: (0.9, 0.99),
            weight_decay: 0.0,
        }
    }

    pub fn betas(mut self, b1: f64, b2: f64) -> Lion {
        self.betas = (b1, b2);
        self
    }

    pub fn weight_decay(mut self, weight_decay: f64) -> Lion {
        self.weight_decay = weight_decay;
        self
    }
}

impl Optimizer for Lion {
    core_accessors!(core);

    fn validate(&self) -> Result<()> {
        for (i, b) in [self.betas.0, self.betas.1].into_iter().enumerate() {
            if !(0.0..1.0).contains(&b) {
                return Err(value_err!(
                    "Lion beta{} should be in [0, 1), {b} was provided instead",
                    i + 1
                ));
            }
        }
        Ok(())
    }

    fn init_single(&self, param: &Array) -> Result<Vec<Array>> {
        zeros_state(param, 1)
    }

    fn apply_single(
        &self,
        grad: &Array,
        param: &Array,
        state: &mut [Array],
        info: &StepInfo,
    ) -> Result<Array> {
        let lr = lr_as(info, grad)?;
        let (b1, b2) = self.betas;
        let m = &state[0];
        let c = ema(b1, m, grad)?;
        let m = ema(b2, m, grad)?;
        state[0] = m;
        let mut param = param.clone();
        if self.weight_decay > 0.0 {
            let keep = ops::subtract(
                &s(1.0, &lr)?,
                &ops::multiply(&lr, &s(self.weight_decay, &lr)?)?,
            )?;
            param = ops::multiply(&keep, &param)?;
        }
        ops::subtract(&param, &ops::multiply(&lr, &ops::sign(&c)?)?)
    }
}
