//! RMSprop, Adagrad and AdaDelta: per-coordinate step sizes from running sums of squared
//! gradients (MLX's formulas and defaults).

use super::{
    core_accessors, ema, lr_as, s, zeros_state, Optimizer, OptimizerCore, Schedule, StepInfo,
};
use rmx_core::ops;
use rmx_core::{value_err, Array, Result};

/// `v = alpha v + (1 - alpha) g^2`, `w -= lr g / (sqrt(v) + eps)`. State: `[v]`.
#[derive(Clone, Debug)]
pub struct RMSprop {
    core: OptimizerCore,
    pub alpha: f64,
    pub eps: f64,
}

impl RMSprop {
    /// MLX's defaults: alpha 0.99, eps 1e-8.
    pub fn new(learning_rate: impl Into<Schedule>) -> RMSprop {
        RMSprop {
            core: OptimizerCore::new(learning_rate),
            alpha: 0.99,
            eps: 1e-8,
        }
    }

    pub fn alpha(mut self, alpha: f64) -> RMSprop {
        self.alpha = alpha;
        self
    }

    pub fn eps(mut self, eps: f64) -> RMSprop {
        self.eps = eps;
        self
    }
}

fn positive_eps(name: &str, eps: f64) -> Result<()> {
    if eps.is_nan() || eps <= 0.0 {
        return Err(value_err!(
            "{name} epsilon should be >0, {eps} was provided instead"
        ));
    }
    Ok(())
}

/// `param - lr * g / (sqrt(v) + eps)`, the step RMSprop and Adagrad share.
fn scaled_step(param: &Array, grad: &Array, v: &Array, eps: f64, info: &StepInfo) -> Result<Array> {
    let lr = lr_as(info, grad)?;
    let den = ops::add(&ops::sqrt(v)?, &s(eps, v)?)?;
    ops::subtract(param, &ops::divide(&ops::multiply(&lr, grad)?, &den)?)
}

impl Optimizer for RMSprop {
    core_accessors!(core);

    fn validate(&self) -> Result<()> {
        if self.alpha.is_nan() || self.alpha < 0.0 {
            return Err(value_err!(
                "RMSprop alpha should be >=0, {} was provided instead",
                self.alpha
            ));
        }
        positive_eps("RMSprop", self.eps)
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
        let v = ema(self.alpha, &state[0], &ops::square(grad)?)?;
        state[0] = v.clone();
        scaled_step(param, grad, &v, self.eps, info)
    }
}

/// `v += g^2`, `w -= lr g / (sqrt(v) + eps)`. State: `[v]`.
#[derive(Clone, Debug)]
pub struct Adagrad {
    core: OptimizerCore,
    pub eps: f64,
}

impl Adagrad {
    /// MLX's default eps is 1e-8.
    pub fn new(learning_rate: impl Into<Schedule>) -> Adagrad {
        Adagrad {
            core: OptimizerCore::new(learning_rate),
            eps: 1e-8,
        }
    }

    pub fn eps(mut self, eps: f64) -> Adagrad {
        self.eps = eps;
        self
    }
}

impl Optimizer for Adagrad {
    core_accessors!(core);

    fn validate(&self) -> Result<()> {
        positive_eps("Adagrad", self.eps)
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
        let v = ops::add(&state[0], &ops::square(grad)?)?;
        state[0] = v.clone();
        scaled_step(param, grad, &v, self.eps, info)
    }
}

/// `v = rho v + (1 - rho) g^2`, `d = sqrt(u + eps) / sqrt(v + eps) g`,
/// `u = rho u + (1 - rho) d^2`, `w -= lr d`. State: `[v, u]`.
#[derive(Clone, Debug)]
pub struct AdaDelta {
    core: OptimizerCore,
    pub rho: f64,
    pub eps: f64,
}

impl AdaDelta {
    /// MLX's defaults: rho 0.9, eps 1e-6.
    pub fn new(learning_rate: impl Into<Schedule>) -> AdaDelta {
        AdaDelta {
            core: OptimizerCore::new(learning_rate),
            rho: 0.9,
            eps: 1e-6,
        }
    }

    pub fn rho(mut self, rho: f64) -> AdaDelta {
        self.rho = rho;
        self
    }

    pub fn eps(mut self, eps: f64) -> AdaDelta {
        self.eps = eps;
        self
    }
}

impl Optimizer for AdaDelta {
    core_accessors!(core);

    fn validate(&self) -> Result<()> {
        if self.rho.is_nan() || self.rho < 0.0 {
            return Err(value_err!(
                "AdaDelta rho should be >=0, {} was provided instead",
                self.rho
            ));
        }
        positive_eps("AdaDelta", self.eps)
    }

    fn init_single(&self, param: &Array) -> Result<Vec<Array>> {
        zeros_state(param, 2)
    }

    fn apply_single(
        &self,
        grad: &Array,
        param: &Array,
        state: &mut [Array],
        info: &StepInfo,
    ) -> Result<Array> {
        let lr = lr_as(info, grad)?;
        let (rho, eps) = (self.rho, self.eps);
        let (v, u) = (&state[0], &state[1]);
        let v = ema(rho, v, &ops::square(grad)?)?;
        let d = ops::multiply(
            &ops::divide(
                &ops::sqrt(&ops::add(u, &s(eps, u)?)?)?,
                &ops::sqrt(&ops::add(&v, &s(eps, &v)?)?)?,
            )?,
            grad,
        )?;
        let u = ema(rho, u, &ops::square(&d)?)?;
        state[0] = v;
        state[1] = u;
        ops::subtract(param, &ops::multiply(&lr, &d)?)
    }
}
