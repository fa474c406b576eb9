//! Optimizers as in `mlx.optimizers`: a shared driver (`Optimizer::apply_gradients`)
//! keeps the step count, evaluates the learning-rate schedule and each parameter's
//! state by name; each optimizer supplies MLX's per-parameter formula (`init_single`,
//! `apply_single`, `validate`) and reaches its `OptimizerCore` through `core_accessors!`.

mod adafactor;
mod adam;
mod clip;
mod lion;
mod muon;
mod rmsprop;
mod schedule;
mod sgd;

pub use adafactor::Adafactor;
pub use adam::{Adam, AdamW, Adamax};
pub use clip::clip_grad_norm;
pub use lion::Lion;
pub use muon::Muon;
pub use rmsprop::{AdaDelta, Adagrad, RMSprop};
pub use schedule::Schedule;
pub use sgd::Sgd;

use crate::{Module, Params};
use rmx_core::ops::{self, weak_scalar};
use rmx_core::{value_err, Array, Result, Scalar};
use std::collections::HashMap;

/// What every optimizer carries: its learning rate (constant or scheduled), the number
/// of updates applied so far, and per-parameter state arrays (such as Adam's m and v).
#[derive(Clone, Debug)]
pub struct OptimizerCore {
    pub learning_rate: Schedule,
    step: u64,
    state: HashMap<String, Vec<Array>>,
}

impl OptimizerCore {
    pub fn new(learning_rate: impl Into<Schedule>) -> OptimizerCore {
        OptimizerCore {
            learning_rate: learning_rate.into(),
            step: 0,
            state: HashMap::new(),
        }
    }
}

/// One step's context handed to `apply_single`.
pub struct StepInfo<'a> {
    /// The learning rate of this step (float32 scalar), MLX's `self.learning_rate`.
    pub lr: &'a Array,
    /// The step count after this update (1 for the first), MLX's `self.step`.
    pub step: u64,
}

pub trait Optimizer {
    fn core(&self) -> &OptimizerCore;
    fn core_mut(&mut self) -> &mut OptimizerCore;

    /// Checks the hyperparameters (called before each update).
    fn validate(&self) -> Result<()> {
        Ok(())
    }

    /// The fresh state of one parameter.
    fn init_single(&self, param: &Array) -> Result<Vec<Array>>;

    /// The updated value of one parameter, updating its `state` in place.
    fn apply_single(
        &self,
        grad: &Array,
        param: &Array,
        state: &mut [Array],
        info: &StepInfo,
    ) -> Result<Array>;

    /// Updates applied so far.
    fn step(&self) -> u64 {
        self.core().step
    }

    /// The learning rate the next update will use.
    fn learning_rate(&self) -> f64 {
        self.core().learning_rate.at(self.core().step)
    }

    /// The state arrays of parameter `name`, once it has been updated.
    fn state(&self, name: &str) -> Option<&[Array]> {
        self.core().state.get(name).map(|v| v.as_slice())
    }

    /// Every state array (to evaluate together with the parameters after a step).
    fn state_arrays(&self) -> Vec<Array> {
        self.core().state.values().flatten().cloned().collect()
    }

    /// New values for the parameters named in `grads` (MLX's `apply_gradients`).
    /// Unknown names and shape mismatches are errors; nothing changes then.
    fn apply_gradients(&mut self, grads: &Params, params: &Params) -> Result<Params> {
        self.validate()?;
        self.core().learning_rate.validate()?;
        let mut names: Vec<&String> = grads.keys().collect();
        names.sort();
        for name in &names {
            let p = params.get(*name).ok_or_else(|| {
                value_err!("[Optimizer] Gradient for \"{name}\", which is not a parameter.")
            })?;
            if p.shape() != grads[*name].shape() {
                return Err(value_err!(
                    "[Optimizer] Gradient shape {:?} does not match parameter \"{name}\" of shape {:?}.",
                    grads[*name].shape(),
                    p.shape()
                ));
            }
        }
        let core = self.core();
        let lr = Array::scalar_of(
            Scalar::Float(core.learning_rate.at(core.step)),
            rmx_core::Dtype::Float32,
        )?;
        let info = StepInfo {
            lr: &lr,
            step: core.step + 1,
        };
        let mut new_state = Vec::with_capacity(names.len());
        let mut out = Params::new();
        for name in names {
            let (g, p) = (&grads[name], &params[name]);
            let mut st = match self.core().state.get(name) {
                Some(s) => s.clone(),
                None => self.init_single(p)?,
            };
            out.insert(name.clone(), self.apply_single(g, p, &mut st, &info)?);
            new_state.push((name.clone(), st));
        }
        let core = self.core_mut();
        core.step += 1;
        core.state.extend(new_state);
        Ok(out)
    }

    /// Applies `grads` to `model` (MLX's `optimizer.update(model, grads)`).
    fn update<M: Module + ?Sized>(&mut self, model: &mut M, grads: &Params) -> Result<()>
    where
        Self: Sized,
    {
        let params = model.parameter_map();
        let new = self.apply_gradients(grads, &params)?;
        model.update_partial(&new)
    }
}

/// The `core`/`core_mut` methods of an `Optimizer` impl whose `OptimizerCore` sits at
/// the given field path (`core_accessors!(core);`, `core_accessors!(adam.core);`).
macro_rules! core_accessors {
    ($($field:ident).+) => {
        fn core(&self) -> &$crate::optim::OptimizerCore {
            &self.$($field).+
        }

        fn core_mut(&mut self) -> &mut $crate::optim::OptimizerCore {
            &mut self.$($field).+
        }
    };
}
pub(crate) use core_accessors;

/// `n` zero arrays shaped like `param`: the state of most optimizers.
pub(crate) fn zeros_state(param: &Array, n: usize) -> Result<Vec<Array>> {
    (0..n).map(|_| ops::zeros_like(param)).collect()
}

/// `beta * avg + (1 - beta) * new`, with `beta` and `1 - beta` as Python floats (weak
/// scalars) and `1 - beta` rounded from f64, as MLX's moving averages compute it.
pub(crate) fn ema(beta: f64, avg: &Array, new: &Array) -> Result<Array> {
    ops::add(
        &ops::multiply(&s(beta, avg)?, avg)?,
        &ops::multiply(&s(1.0 - beta, new)?, new)?,
    )
}

/// A Python-float-like scalar next to `like` (takes its float type).
pub(crate) fn s(v: f64, like: &Array) -> Result<Array> {
    weak_scalar(Scalar::Float(v), like.dtype())
}

/// The learning rate in the gradient's type, as MLX's `lr.astype(gradient.dtype)`.
pub(crate) fn lr_as(info: &StepInfo, grad: &Array) -> Result<Array> {
    ops::astype(info.lr, grad.dtype())
}
