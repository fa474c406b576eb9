//! Muon (MLX's formula): momentum SGD whose update, for parameters of rank >= 2, is
//! orthogonalized by five Newton–Schulz iterations before it is applied.

use super::{
    core_accessors, ema, lr_as, s, zeros_state, Optimizer, OptimizerCore, Schedule, StepInfo,
};
use rmx_core::ops;
use rmx_core::ops::linalg_norm::{norm, NormOrd};
use rmx_core::{Array, Result};

/// `g += wd w`, `v = mu v + (1 - mu) g`, `u = (1 - mu) g + mu v` (Nesterov) or `v`;
/// rank >= 2: `u = NS5(u reshaped to (rows, -1))` and the rate scaled by
/// `sqrt(max(1, rows / cols))`; `w -= lr u`. State: `[v]`.
#[derive(Clone, Debug)]
pub struct Muon {
    core: OptimizerCore,
    pub momentum: f64,
    pub weight_decay: f64,
    pub nesterov: bool,
    pub ns_steps: usize,
}

impl Muon {
    /// MLX's defaults: momentum 0.95, weight decay 0.01, Nesterov on, 5 Newton–Schulz steps.
    pub fn new(learning_rate: impl Into<Schedule>) -> Muon {
        Muon {
            core: OptimizerCore::new(learning_rate),
            momentum: 0.95,
            weight_decay: 0.01,
            nesterov: true,
            ns_steps: 5,
        }
    }

    pub fn momentum(mut self, momentum: f64) -> Muon {
        self.momentum = momentum;
        self
    }

    pub fn weight_decay(mut self, weight_decay: f64) -> Muon {
        self.weight_decay = weight_decay;
        self
    }

    pub fn nesterov(mut self, nesterov: bool) -> Muon {
        self.nesterov = nesterov;
        self
    }

    pub fn ns_steps(mut self, ns_steps: usize) -> Muon {
        self.ns_steps = ns_steps;
        self
    }
}

/// MLX's `_zeropower_via_newtonschulz5`: the quintic iteration
/// `A = X Xᵀ`, `B = b A + c A²`, `X = a X + B X` with `(a, b, c) = (3.4445, -4.7750,
/// 2.0315)`, from `X / (‖X‖_F + 1e-7)`, on the wide orientation of the 2-d `x`.
fn newton_schulz5(x: &Array, steps: usize) -> Result<Array> {
    let (a, b, c) = (3.4445, -4.7750, 2.0315);
    let transpose = x.shape()[0] > x.shape()[1];
    let mut x = if transpose {
        ops::transpose(x, None)?
    } else {
        x.clone()
    };
    let norm = norm(&x, &NormOrd::Default, None, true)?;
    x = ops::divide(&x, &ops::add(&norm, &s(1e-7, &norm)?)?)?;
    for _ in 0..steps {
        let xt = ops::transpose(&x, None)?;
        let am = ops::matmul(&x, &xt)?;
        let bm = ops::addmm(&ops::multiply(&s(b, &am)?, &am)?, &am, &am, c, 1.0)?;
        x = ops::addmm(&ops::multiply(&s(a, &x)?, &x)?, &bm, &x, 1.0, 1.0)?;
    }
    if transpose {
        x = ops::transpose(&x, None)?;
    }
    Ok(x)
}

impl Optimizer for Muon {
    core_accessors!(core);

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
        let mu = self.momentum;
        let mut g = grad.clone();
        if self.weight_decay != 0.0 {
            g = ops::add(&g, &ops::multiply(&s(self.weight_decay, param)?, param)?)?;
        }
        let v = ema(mu, &state[0], &g)?;
        state[0] = v.clone();
        let mut update = if self.nesterov {
            ops::add(
                &ops::multiply(&g, &s(1.0 - mu, &g)?)?,
                &ops::multiply(&v, &s(mu, &v)?)?,
            )?
        } else {
            v
        };
        let mut lr = lr_as(info, &g)?;
        if update.ndim() >= 2 {
            let shape: Vec<i64> = update.shape().iter().map(|&d| d as i64).collect();
            let flat = ops::reshape(&update, &[shape[0], -1])?;
            update = ops::reshape(&newton_schulz5(&flat, self.ns_steps)?, &shape)?;
            // MLX scales by the last two axes of the unflattened update (for a conv
            // weight `(out, *kernel, in)` these are the last kernel axis and `in`), not
            // by the matrix that was orthogonalized
            let r = shape.len();
            let ratio = shape[r - 2] as f64 / shape[r - 1] as f64;
            lr = ops::multiply(&lr, &s(ratio.max(1.0).sqrt(), &lr)?)?;
        }
        ops::subtract(param, &ops::multiply(&lr, &update)?)
    }
}
