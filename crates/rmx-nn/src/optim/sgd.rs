//! SGD with momentum, dampening, Nesterov momentum and weight decay (MLX's formulas).

use super::{core_accessors, lr_as, s, zeros_state, Optimizer, OptimizerCore, Schedule, StepInfo};
use rmx_core::ops;
use rmx_core::{value_err, Array, Result};

#[derive(Clone, Debug)]
pub struct Sgd {
    core: OptimizerCore,
    pub momentum: f64,
    pub weight_decay: f64,
    pub dampening: f64,
    pub nesterov: bool,
}

impl Sgd {
    /// Plain SGD; set the other hyperparameters with the builder methods.
    pub fn new(learning_rate: impl Into<Schedule>) -> Sgd {
        Sgd {
            core: OptimizerCore::new(learning_rate),
            momentum: 0.0,
            weight_decay: 0.0,
            dampening: 0.0,
            nesterov: false,
        }
    }

    pub fn momentum(mut self, momentum: f64) -> Sgd {
        self.momentum = momentum;
        self
    }

    pub fn weight_decay(mut self, weight_decay: f64) -> Sgd {
        self.weight_decay = weight_decay;
        self
    }

    pub fn dampening(mut self, dampening: f64) -> Sgd {
        self.dampening = dampening;
        self
    }

    pub fn nesterov(mut self, nesterov: bool) -> Sgd {
        self.nesterov = nesterov;
        self
    }
}

impl Optimizer for Sgd {
    core_accessors!(core);

    fn validate(&self) -> Result<()> {
        if self.nesterov && (self.momentum <= 0.0 || self.dampening != 0.0) {
            return Err(value_err!(
                "Nesterov momentum requires a momentum and zero dampening."
            ));
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
        let mut g = grad.clone();
        if self.weight_decay != 0.0 {
            g = ops::add(&g, &ops::multiply(&s(self.weight_decay, param)?, param)?)?;
        }
        let lr = lr_as(info, &g)?;
        if self.momentum <= 0.0 {
            return ops::subtract(param, &ops::multiply(&lr, &g)?);
        }
        let mut v = ops::multiply(&s(self.momentum, &state[0])?, &state[0])?;
        if self.dampening > 0.0 {
            v = ops::add(&v, &ops::multiply(&s(1.0 - self.dampening, &g)?, &g)?)?;
        } else {
            v = ops::add(&v, &g)?;
        }
        let update = if self.nesterov {
            ops::add(&g, &ops::multiply(&s(self.momentum, &v)?, &v)?)?
        } else {
            v.clone()
        };
        state[0] = v;
        ops::subtract(param, &ops::multiply(&lr, &update)?)
    }
}
