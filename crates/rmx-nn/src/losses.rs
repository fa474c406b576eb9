//! Loss functions as in `mlx.nn.losses`, with MLX's default reductions:
//! `cross_entropy` and `nll_loss` default to `None`, the others to `Mean`.

use rmx_core::ops::{self, weak_scalar};
use rmx_core::{value_err, Array, Result, Scalar};

/// How per-element losses are combined.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Reduction {
    /// Per-element losses, unreduced.
    #[default]
    None,
    Mean,
    Sum,
}

impl Reduction {
    /// MLX's names: `"none"`, `"mean"`, `"sum"`.
    pub fn from_name(name: &str) -> Result<Reduction> {
        match name {
            "none" => Ok(Reduction::None),
            "mean" => Ok(Reduction::Mean),
            "sum" => Ok(Reduction::Sum),
            _ => Err(value_err!(
                "Invalid reduction {name:?}. Must be one of ('none', 'mean', 'sum')."
            )),
        }
    }

    pub fn apply(self, loss: Array) -> Result<Array> {
        match self {
            Reduction::None => Ok(loss),
            Reduction::Mean => ops::mean(&loss, None, false),
            Reduction::Sum => ops::sum(&loss, None, false),
        }
    }
}

fn s(v: f64, like: &Array) -> Result<Array> {
    weak_scalar(Scalar::Float(v), like.dtype())
}

fn apply_weights(loss: Array, weights: Option<&Array>) -> Result<Array> {
    match weights {
        None => Ok(loss),
        Some(w) if w.shape() == loss.shape() => ops::multiply(&loss, w),
        Some(w) => Err(value_err!(
            "Weights with shape {:?} is not the same as output loss with shape {:?}.",
            w.shape(),
            loss.shape()
        )),
    }
}

fn same_shape(what: &str, a: &Array, b: &Array) -> Result<()> {
    if a.shape() != b.shape() {
        return Err(value_err!(
            "{what} shape {:?} does not match targets shape {:?}.",
            a.shape(),
            b.shape()
        ));
    }
    Ok(())
}

fn normalize_axis(axis: i64, ndim: usize) -> Result<usize> {
    let n = ndim as i64;
    if axis < -n || axis >= n {
        return Err(value_err!(
            "Axis {axis} is out of bounds for logits with {ndim} dimensions."
        ));
    }
    Ok(if axis < 0 { axis + n } else { axis } as usize)
}

/// Options of `cross_entropy` (MLX's keyword arguments and defaults).
#[derive(Clone, Copy, Debug)]
pub struct CrossEntropy<'a> {
    pub weights: Option<&'a Array>,
    pub axis: i64,
    pub label_smoothing: f64,
    pub reduction: Reduction,
}

impl Default for CrossEntropy<'_> {
    fn default() -> Self {
        CrossEntropy {
            weights: None,
            axis: -1,
            label_smoothing: 0.0,
            reduction: Reduction::None,
        }
    }
}

/// Cross entropy of `logits` against class indices (one axis fewer than `logits`) or
/// probabilities (same shape), with optional label smoothing.
pub fn cross_entropy(logits: &Array, targets: &Array, opts: &CrossEntropy) -> Result<Array> {
    let ls = opts.label_smoothing;
    if !(0.0..1.0).contains(&ls) {
        return Err(value_err!("Label smoothing must be in [0, 1), got {ls}."));
    }
    let ax = normalize_axis(opts.axis, logits.ndim())?;
    let as_probs = targets.ndim() == logits.ndim();
    let mut dropped = logits.shape().to_vec();
    dropped.remove(ax);
    if (as_probs && targets.shape() != logits.shape())
        || (!as_probs && targets.shape() != dropped.as_slice())
    {
        return Err(value_err!(
            "Targets shape {:?} does not match logits shape {:?}.",
            targets.shape(),
            logits.shape()
        ));
    }
    if !as_probs && !targets.dtype().is_integer() {
        return Err(value_err!(
            "Class-index targets must be integers, got {}.",
            targets.dtype()
        ));
    }
    let axis = ax as i64;
    let max = ops::stop_gradient(&ops::max(logits, Some(&[axis]), true)?)?;
    let logits = ops::subtract(logits, &max)?;
    let score = if as_probs {
        ops::sum(&ops::multiply(&logits, targets)?, Some(&[axis]), false)?
    } else {
        let idx = ops::expand_dims(targets, &[axis])?;
        let picked = ops::take_along_axis(&logits, &idx, Some(axis))?;
        ops::squeeze(&picked, Some(&[axis]))?
    };
    let lse = ops::logsumexp(&logits, Some(&[axis]), false)?;
    let loss = if ls > 0.0 {
        let adjusted = ops::multiply(&s(1.0 - ls, &score)?, &score)?;
        let mean_logits = ops::mean(&logits, Some(&[axis]), false)?;
        let smoothed = ops::multiply(&ops::negative(&mean_logits)?, &s(ls, &mean_logits)?)?;
        ops::add(&ops::subtract(&lse, &adjusted)?, &smoothed)?
    } else {
        ops::subtract(&lse, &score)?
    };
    opts.reduction.apply(apply_weights(loss, opts.weights)?)
}

/// Binary cross entropy of probabilities or (with `with_logits`) logits; MLX's default
/// reduction is `Mean`.
pub fn binary_cross_entropy(
    inputs: &Array,
    targets: &Array,
    weights: Option<&Array>,
    with_logits: bool,
    reduction: Reduction,
) -> Result<Array> {
    same_shape("Inputs", inputs, targets)?;
    let loss = if with_logits {
        let sp = ops::logaddexp(&s(0.0, inputs)?, inputs)?;
        ops::subtract(&sp, &ops::multiply(inputs, targets)?)?
    } else {
        let floor = s(-100.0, inputs)?;
        let log_p = ops::clip(&ops::log(inputs)?, Some(&floor), None)?;
        let one_minus = ops::subtract(&s(1.0, inputs)?, inputs)?;
        let log_q = ops::clip(&ops::log(&one_minus)?, Some(&floor), None)?;
        let t_q = ops::subtract(&s(1.0, targets)?, targets)?;
        let sum = ops::add(
            &ops::multiply(targets, &log_p)?,
            &ops::multiply(&t_q, &log_q)?,
        )?;
        ops::negative(&sum)?
    };
    reduction.apply(apply_weights(loss, weights)?)
}

/// Mean squared error (`Mean` is MLX's default).
pub fn mse_loss(predictions: &Array, targets: &Array, reduction: Reduction) -> Result<Array> {
    same_shape("Predictions", predictions, targets)?;
    reduction.apply(ops::square(&ops::subtract(predictions, targets)?)?)
}

/// Mean absolute error (`Mean` is MLX's default).
pub fn l1_loss(predictions: &Array, targets: &Array, reduction: Reduction) -> Result<Array> {
    same_shape("Predictions", predictions, targets)?;
    reduction.apply(ops::abs(&ops::subtract(predictions, targets)?)?)
}

/// Negative log likelihood of log-probabilities `inputs` at class indices `targets`
/// (`None` is MLX's default reduction).
pub fn nll_loss(inputs: &Array, targets: &Array, axis: i64, reduction: Reduction) -> Result<Array> {
    let ax = normalize_axis(axis, inputs.ndim())? as i64;
    let idx = ops::expand_dims(targets, &[ax])?;
    let picked = ops::squeeze(&ops::take_along_axis(inputs, &idx, Some(ax))?, Some(&[ax]))?;
    reduction.apply(ops::negative(&picked)?)
}
