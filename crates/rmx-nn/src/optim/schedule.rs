//! Learning-rate schedules (`mlx.optimizers.schedulers`): a `Schedule` is a value per
//! step, usable wherever an optimizer takes a learning rate (`0.1.into()` is constant).

use rmx_core::{value_err, Result};
use std::fmt;
use std::sync::Arc;

#[derive(Clone)]
pub enum Schedule {
    Constant(f64),
    /// `init * decay_rate ** step`.
    Exponential {
        init: f64,
        decay_rate: f64,
    },
    /// `init * decay_rate ** (step / step_size)` (integer division).
    Step {
        init: f64,
        decay_rate: f64,
        step_size: u64,
    },
    /// `end + 0.5 (1 + cos(pi * min(step, decay_steps) / decay_steps)) (init - end)`.
    Cosine {
        init: f64,
        decay_steps: u64,
        end: f64,
    },
    /// `init + min(step, steps) (end - init) / steps`.
    Linear {
        init: f64,
        end: f64,
        steps: u64,
    },
    /// `schedules[i]` from `boundaries[i-1]` on, counting steps from that boundary.
    Join {
        schedules: Vec<Schedule>,
        boundaries: Vec<u64>,
    },
    /// Any function of the step.
    Custom(Arc<dyn Fn(u64) -> f64 + Send + Sync>),
}

impl Schedule {
    pub fn exponential_decay(init: f64, decay_rate: f64) -> Schedule {
        Schedule::Exponential { init, decay_rate }
    }

    pub fn step_decay(init: f64, decay_rate: f64, step_size: u64) -> Result<Schedule> {
        if step_size < 1 {
            return Err(value_err!(
                "step_size must be greater than 0, but got {step_size}."
            ));
        }
        Ok(Schedule::Step {
            init,
            decay_rate,
            step_size,
        })
    }

    pub fn cosine_decay(init: f64, decay_steps: u64, end: f64) -> Result<Schedule> {
        if decay_steps < 1 {
            return Err(value_err!(
                "decay_steps must be greater than 0, but got {decay_steps}."
            ));
        }
        Ok(Schedule::Cosine {
            init,
            decay_steps,
            end,
        })
    }

    pub fn linear_schedule(init: f64, end: f64, steps: u64) -> Result<Schedule> {
        if steps < 1 {
            return Err(value_err!("steps must be greater than 0, but got {steps}."));
        }
        Ok(Schedule::Linear { init, end, steps })
    }

    pub fn join(schedules: Vec<Schedule>, boundaries: Vec<u64>) -> Result<Schedule> {
        if schedules.is_empty() {
            return Err(value_err!("Must provide at least 1 schedule to join."));
        }
        if schedules.len() != boundaries.len() + 1 {
            return Err(value_err!(
                "Received {} boundaries but expected {}.",
                boundaries.len(),
                schedules.len() - 1
            ));
        }
        Ok(Schedule::Join {
            schedules,
            boundaries,
        })
    }

    pub fn custom(f: impl Fn(u64) -> f64 + Send + Sync + 'static) -> Schedule {
        Schedule::Custom(Arc::new(f))
    }

    /// Checks a schedule built directly from its variants (the constructors check too):
    /// the step counts must be positive and `Join` needs one boundary fewer than schedules.
    pub fn validate(&self) -> Result<()> {
        match self {
            Schedule::Step { step_size, .. } if *step_size < 1 => Err(value_err!(
                "step_size must be greater than 0, but got {step_size}."
            )),
            Schedule::Cosine { decay_steps, .. } if *decay_steps < 1 => Err(value_err!(
                "decay_steps must be greater than 0, but got {decay_steps}."
            )),
            Schedule::Linear { steps, .. } if *steps < 1 => {
                Err(value_err!("steps must be greater than 0, but got {steps}."))
            }
            Schedule::Join {
                schedules,
                boundaries,
            } => {
                if schedules.is_empty() || schedules.len() != boundaries.len() + 1 {
                    return Err(value_err!(
                        "Received {} boundaries but expected {}.",
                        boundaries.len(),
                        schedules.len().saturating_sub(1)
                    ));
                }
                schedules.iter().try_for_each(|s| s.validate())
            }
            _ => Ok(()),
        }
    }

    /// The value at `step` (0 for the first update). An invalid schedule (see
    /// `validate`) gives NaN instead of panicking.
    pub fn at(&self, step: u64) -> f64 {
        if self.validate().is_err() {
            return f64::NAN;
        }
        match self {
            Schedule::Constant(v) => *v,
            Schedule::Exponential { init, decay_rate } => init * decay_rate.powf(step as f64),
            Schedule::Step {
                init,
                decay_rate,
                step_size,
            } => init * decay_rate.powf((step / step_size) as f64),
            Schedule::Cosine {
                init,
                decay_steps,
                end,
            } => {
                let s = step.min(*decay_steps) as f64;
                let decay = 0.5 * (1.0 + (std::f64::consts::PI / *decay_steps as f64 * s).cos());
                end + decay * (init - end)
            }
            Schedule::Linear { init, end, steps } => {
                let s = step.min(*steps) as f64;
                s * ((end - init) / *steps as f64) + init
            }
            Schedule::Join {
                schedules,
                boundaries,
            } => {
                // the last boundary already passed picks the schedule
                let mut value = schedules[0].at(step);
                for (b, sch) in boundaries.iter().zip(&schedules[1..]) {
                    if step >= *b {
                        value = sch.at(step - b);
                    }
                }
                value
            }
            Schedule::Custom(f) => f(step),
        }
    }
}

impl From<f64> for Schedule {
    fn from(v: f64) -> Schedule {
        Schedule::Constant(v)
    }
}

impl From<f32> for Schedule {
    fn from(v: f32) -> Schedule {
        Schedule::Constant(v as f64)
    }
}

impl fmt::Debug for Schedule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Schedule::Constant(v) => write!(f, "Constant({v})"),
            Schedule::Exponential { init, decay_rate } => {
                write!(
                    f,
                    "Exponential {{ init: {init}, decay_rate: {decay_rate} }}"
                )
            }
            Schedule::Step {
                init,
                decay_rate,
                step_size,
            } => write!(
                f,
                "Step {{ init: {init}, decay_rate: {decay_rate}, step_size: {step_size} }}"
            ),
            Schedule::Cosine {
                init,
                decay_steps,
                end,
            } => write!(
                f,
                "Cosine {{ init: {init}, decay_steps: {decay_steps}, end: {end} }}"
            ),
            Schedule::Linear { init, end, steps } => {
                write!(f, "Linear {{ init: {init}, end: {end}, steps: {steps} }}")
            }
            Schedule::Join {
                schedules,
                boundaries,
            } => write!(
                f,
                "Join {{ schedules: {schedules:?}, boundaries: {boundaries:?} }}"
            ),
            Schedule::Custom(_) => write!(f, "Custom(..)"),
        }
    }
}
