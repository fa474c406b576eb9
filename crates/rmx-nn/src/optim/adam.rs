//! Adam and AdamW (MLX's formulas: no bias correction unless asked for; AdamW decays
//! the parameter by `1 - lr * weight_decay` before the Adam step).

use super::{
    core_accessors, ema, lr_as, s, zeros_state, Optimizer, OptimizerCore, Schedule, StepInfo,
};
use rmx_core::ops;
use rmx_core::{value_err, Array, Result};

#[derive(Clone, Debug)]
pub struct Adam {
    core: OptimizerCore,
    pub betas: (f64, f64),
    pub eps: f64,
    pub bias_correction: bool,
}

impl Adam {
    /// MLX's defaults: betas (0.9, 0.999), eps 1e-8, no bias correction.
    pub fn new(learning_rate: impl Into<Schedule>) -> Adam {
        Adam {
            core: OptimizerCore::new(learning_rate),
            betas: (0.9, 0.999),
            eps: 1e-8,
            bias_correction: false,
        }
    }

    pub fn betas(mut self, b1: f64, b2: f64) -> Adam {
        self.betas = (b1, b2);
        self
    }

    pub fn eps(mut self, eps: f64) -> Adam {
        self.eps = eps;
        self
    }

    pub fn bias_correction(mut self, on: bool) -> Adam {
        self.bias_correction = on;
        self
    }
}

fn check(betas: (f64, f64), eps: f64) -> Result<()> {
    for (i, b) in [betas.0, betas.1].into_iter().enumerate() {
        if !(0.0..1.0).contains(&b) {
            return Err(value_err!(
                "Adam beta{} should be in [0, 1), {b} was provided instead",
                i + 1
            ));
        }
    }
    if eps.is_nan() || eps < 0.0 {
        return Err(value_err!(
            "Adam epsilon should be >=0, {eps} was provided instead"
        ));
    }
    Ok(())
}

/// The Adam step shared by Adam and AdamW: state is `[m, v]`.
fn adam_step(
    opt: &Adam,
    grad: &Array,
    param: &Array,
    state: &mut [Array],
    info: &StepInfo,
) -> Result<Array> {
    let lr = lr_as(info, grad)?;
    let (b1, b2) = opt.betas;
    let m = ema(b1, &state[0], grad)?;
    let v = ema(b2, &state[1], &ops::square(grad)?)?;
    state[0] = m.clone();
    state[1] = v.clone();
    if opt.bias_correction {
        // b**step in float32, as MLX's `b1**step` on its step array
        let t = info.step as f32;
        let c1 = ops::astype(
            &ops::divide(&lr, &s(1.0 - (b1 as f32).powf(t) as f64, &lr)?)?,
            grad.dtype(),
        )?;
        let c2 = ops::astype(
            &ops::rsqrt(&s(1.0 - (b2 as f32).powf(t) as f64, &lr)?)?,
            grad.dtype(),
        )?;
        let num = ops::multiply(&c1, &m)?;
        let den = ops::add(&ops::multiply(&ops::sqrt(&v)?, &c2)?, &s(opt.eps, &v)?)?;
        ops::subtract(param, &ops::divide(&num, &den)?)
    } else {
        let den = ops::add(&ops::sqrt(&v)?, &s(opt.eps, &v)?)?;
        ops::subtract(param, &ops::divide(&ops::multiply(&lr, &m)?, &den)?)
    }
}

impl Optimizer for Adam {
    core_accessors!(core);

    fn validate(&self) -> Result<()> {
        check(self.betas, self.eps)
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
        adam_step(self, grad, param, state, info)
    }
}

/// Adam with decoupled weight decay (MLX's default `weight_decay` is 0.01).
#[derive(Clone, Debug)]
pub struct AdamW {
    pub adam: Adam,
    pub weight_decay: f64,
}

impl AdamW {
    pub fn new(learning_rate: impl Into<Schedule>) -> AdamW {
        AdamW {
            adam: Adam::new(learning_rate),
            weight_decay: 0.01,
        }
    }

    pub fn betas(mut self, b1: f64, b2: f64) -> AdamW {
        self.adam.betas = (b1, b2);
        self
    }

    pub fn eps(mut self, eps: f64) -> AdamW {
        self.adam.eps = eps;
        self
    }

    pub fn bias_correction(mut self, on: bool) -> AdamW {
        self.adam.bias_correction = on;
        self
    }

    pub fn weight_decay(mut self, weight_decay: f64) -> AdamW {
        self.weight_decay = weight_decay;
        self
    }
}

impl Optimizer for AdamW {
    core_accessors!(adam.core);

    fn validate(&self) -> Result<()> {
        check(self.adam.betas, self.adam.eps)
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
        let decay = ops::subtract(
            &s(1.0, &lr)?,
            &ops::multiply(&lr, &s(self.weight_decay, &lr)?)?,
        )?;
        let decayed = ops::multiply(param, &decay)?;
        adam_step(&self.adam, grad, &decayed, state, info)
    }
}

/// Adam with the infinity norm: `m = b1 m + (1 - b1) g`, `v = max(b2 v, |g|)`,
/// `w -= lr m / (v + eps)`. State: `[m, v]`. MLX's defaults: betas (0.9, 0.999), eps 1e-8
/// (checked as Adam's, with Adam's messages, since MLX's Adamax reuses Adam's constructor).
#[derive(Clone, Debug)]
pub struct Adamax {
    core: OptimizerCore,
    pub betas: (f64, f64),
    pub eps: f64,
}

impl Adamax {
    pub fn new(learning_rate: impl Into<Schedule>) -> Adamax {
        Adamax {
            core: OptimizerCore::new(learning_rate),
            betas: (0.9, 0.999),
            eps: 1e-8,
        }
    }

    pub fn betas(mut self, b1: f64, b2: f64) -> Adamax {
        self.betas = (b1, b2);
        self
    }

    pub fn eps(mut self, eps: f64) -> Adamax {
        self.eps = eps;
        self
    }
}

impl Optimizer for Adamax {
    core_accessors!(core);

    fn validate(&self) -> Result<()> {
        check(self.betas, self.eps)
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
        let (b1, b2) = self.betas;
        let m = ema(b1, &state[0], grad)?;
        let v = ops::maximum(
            &ops::multiply(&s(b2, &state[1])?, &state[1])?,
            &ops::abs(grad)?,
        )?;
        state[0] = m.clone();
        state[1] = v.clone();
        let den = ops::add(&v, &s(self.eps, &v)?)?;
        ops::subtract(param, &ops::divide(&ops::multiply(&lr, &m)?, &den)?)
    }
}
