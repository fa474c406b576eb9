//! Adafactor (MLX's formula): second moments factored into row and column averages for
//! parameters of rank >= 2, a relative step size by default, update clipping by RMS.

use super::{core_accessors, ema, s, Optimizer, OptimizerCore, Schedule, StepInfo};
use rmx_core::ops;
use rmx_core::{value_err, Array, Dtype, Result, Scalar};

/// State: `[exp_avg_sq_row, exp_avg_sq_col]` for a parameter of rank >= 2 (shapes
/// `shape[:-1]` and `shape[:-2] + shape[-1:]`), `[exp_avg_sq]` otherwise, followed by
/// `exp_avg` when `beta_1` is set.
#[derive(Clone, Debug)]
pub struct Adafactor {
    core: OptimizerCore,
    /// Whether a learning rate was given (MLX's `learning_rate=None` otherwise); it is
    /// only used with `relative_step(false)`.
    has_learning_rate: bool,
    pub eps: (f64, f64),
    pub clip_threshold: f64,
    pub decay_rate: f64,
    pub beta_1: Option<f64>,
    pub weight_decay: f64,
    pub scale_parameter: bool,
    pub relative_step: bool,
    pub warmup_init: bool,
}

impl Default for Adafactor {
    fn default() -> Self {
        Adafactor::new()
    }
}

impl Adafactor {
    /// MLX's defaults: no learning rate (relative step sizes), eps (1e-30, 1e-3),
    /// clip_threshold 1, decay_rate -0.8, no first moment, no weight decay,
    /// scale_parameter and relative_step on, warmup_init off.
    pub fn new() -> Adafactor {
        Adafactor {
            core: OptimizerCore::new(0.0),
            has_learning_rate: false,
            eps: (1e-30, 1e-3),
            clip_threshold: 1.0,
            decay_rate: -0.8,
            beta_1: None,
            weight_decay: 0.0,
            scale_parameter: true,
            relative_step: true,
            warmup_init: false,
        }
    }

    /// MLX's `Adafactor(learning_rate)`: the rate is used only with `relative_step(false)`
    /// (ignored otherwise, as in MLX).
    pub fn with_learning_rate(learning_rate: impl Into<Schedule>) -> Adafactor {
        let mut opt = Adafactor::new();
        opt.core.learning_rate = learning_rate.into();
        opt.has_learning_rate = true;
        opt
    }

    pub fn eps(mut self, eps1: f64, eps2: f64) -> Adafactor {
        self.eps = (eps1, eps2);
        self
    }

    pub fn clip_threshold(mut self, clip_threshold: f64) -> Adafactor {
        self.clip_threshold = clip_threshold;
        self
    }

    pub fn decay_rate(mut self, decay_rate: f64) -> Adafactor {
        self.decay_rate = decay_rate;
        self
    }

    pub fn beta_1(mut self, beta_1: Option<f64>) -> Adafactor {
        self.beta_1 = beta_1;
        self
    }

    pub fn weight_decay(mut self, weight_decay: f64) -> Adafactor {
        self.weight_decay = weight_decay;
        self
    }

    pub fn scale_parameter(mut self, on: bool) -> Adafactor {
        self.scale_parameter = on;
        self
    }

    pub fn relative_step(mut self, on: bool) -> Adafactor {
        self.relative_step = on;
        self
    }

    pub fn warmup_init(mut self, on: bool) -> Adafactor {
        self.warmup_init = on;
        self
    }

    /// `scale * relative step size` (MLX's `_compute_learning_rate`); `step` is float32.
    fn step_size(&self, step: &Array, parameter_rms: &Array, info: &StepInfo) -> Result<Array> {
        let relative = if self.relative_step {
            let min_step = if self.warmup_init {
                ops::multiply(&s(1e-6, step)?, step)?
            } else {
                s(1e-2, step)?
            };
            ops::minimum(&min_step, &ops::rsqrt(step)?)?
        } else {
            info.lr.clone()
        };
        let relative = ops::astype(&relative, parameter_rms.dtype())?;
        if self.scale_parameter {
            let scale = ops::maximum(&s(self.eps.1, parameter_rms)?, parameter_rms)?;
            ops::multiply(&scale, &relative)
        } else {
            Ok(relative)
        }
    }
}

fn rms(x: &Array) -> Result<Array> {
    ops::sqrt(&ops::mean(&ops::square(x)?, None, false)?)
}

/// `beta * avg + (1 - beta) * new` for a `beta` array (its `1 - beta` in its type).
fn ema_by(beta: &Array, avg: &Array, new: &Array) -> Result<Array> {
    let one_minus = ops::subtract(&s(1.0, beta)?, beta)?;
    ops::add(&ops::multiply(beta, avg)?, &ops::multiply(&one_minus, new)?)
}

impl Optimizer for Adafactor {
    core_accessors!(core);

    fn validate(&self) -> Result<()> {
        if !self.relative_step && !self.has_learning_rate {
            return Err(value_err!(
                "[Adafactor] relative_step is off, so a learning_rate is needed."
            ));
        }
        Ok(())
    }

    fn init_single(&self, param: &Array) -> Result<Vec<Array>> {
        let shape: Vec<i64> = param.shape().iter().map(|&d| d as i64).collect();
        let mut state = if shape.len() >= 2 {
            let r = shape.len();
            let mut col = shape[..r - 2].to_vec();
            col.push(shape[r - 1]);
            vec![
                ops::zeros(&shape[..r - 1], param.dtype())?,
                ops::zeros(&col, param.dtype())?,
            ]
        } else {
            vec![ops::zeros_like(param)?]
        };
        if self.beta_1.is_some() {
            state.push(ops::zeros_like(param)?);
        }
        Ok(state)
    }

    fn apply_single(
        &self,
        grad: &Array,
        param: &Array,
        state: &mut [Array],
        info: &StepInfo,
    ) -> Result<Array> {
        let factored = grad.ndim() >= 2;
        // MLX's step is a uint64 array; mixed with Python floats it computes in float32
        let step = Array::scalar_of(Scalar::Float(info.step as f64), Dtype::Float32)?;
        let parameter_rms = rms(param)?;
        let lr = self.step_size(&step, &parameter_rms, info)?;
        let decay = ops::power(&step, &s(self.decay_rate, &step)?)?;
        let beta_2 = ops::subtract(
            &s(1.0, &parameter_rms)?,
            &ops::astype(&decay, parameter_rms.dtype())?,
        )?;
        let sq = ops::add(&ops::square(grad)?, &s(self.eps.0, grad)?)?;

        let mut update = if factored {
            let row = ema_by(&beta_2, &state[0], &ops::mean(&sq, Some(&[-1]), false)?)?;
            let col = ema_by(&beta_2, &state[1], &ops::mean(&sq, Some(&[-2]), false)?)?;
            state[0] = row.clone();
            state[1] = col.clone();
            let r = ops::rsqrt(&ops::divide(&row, &ops::mean(&row, Some(&[-1]), true)?)?)?;
            let c = ops::rsqrt(&col)?;
            let approx =
                ops::multiply(&ops::expand_dims(&r, &[-1])?, &ops::expand_dims(&c, &[-2])?)?;
            ops::multiply(&approx, grad)?
        } else {
            let v = ema_by(&beta_2, &state[0], &sq)?;
            state[0] = v.clone();
            ops::multiply(&ops::rsqrt(&v)?, grad)?
        };
        let clip = ops::maximum(
            &s(1.0, &update)?,
            &ops::divide(&rms(&update)?, &s(self.clip_threshold, &update)?)?,
        )?;
        update = ops::multiply(&lr, &ops::divide(&update, &clip)?)?;

        if let Some(b1) = self.beta_1 {
            let i = state.len() - 1;
            let avg = ema(b1, &state[i], &update)?;
            state[i] = avg.clone();
            update = avg;
        }
        let mut param = param.clone();
        if self.weight_decay != 0.0 {
            let factor = ops::multiply(&s(-self.weight_decay, &lr)?, &lr)?;
            param = ops::add(&param, &ops::multiply(&param, &factor)?)?;
        }
        ops::subtract(&param, &update)
    }
}
