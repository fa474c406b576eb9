"""Loss functions, as ``mlx.nn.losses``."""

import math
from typing import Literal, get_args

import rmx.core as mx

Reduction = Literal["none", "mean", "sum"]


def _reduce(loss, reduction: Reduction = "none"):
    if reduction not in get_args(Reduction):
        raise ValueError(f"Invalid reduction. Must be one of {get_args(Reduction)}.")
    if reduction == "mean":
        return mx.mean(loss)
    if reduction == "sum":
        return mx.sum(loss)
    return loss


def _apply_weights(loss, weights):
    if weights is None:
        return loss
    if tuple(weights.shape) != tuple(loss.shape):
        raise ValueError(f"Weights with shape {weights.shape} is not the same as "
                         f"output loss with shape {loss.shape}.")
    return loss * weights


def _same_shape(a, b, what="Predictions", other="targets"):
    if tuple(a.shape) != tuple(b.shape):
        raise ValueError(f"{what} shape {a.shape} does not match {other} shape {b.shape}.")


def cross_entropy(logits, targets, weights=None, axis: int = -1,
                  label_smoothing: float = 0.0, reduction: Reduction = "none"):
    """Cross entropy of ``logits`` against class indices (``targets`` without
    ``axis``) or class probabilities (``targets`` shaped like ``logits``)."""
    if label_smoothing < 0 or label_smoothing >= 1:
        raise ValueError(f"Label smoothing must be in [0, 1), got {label_smoothing}.")
    as_probs = targets.ndim == logits.ndim
    dropped = list(logits.shape)
    dropped.pop(axis)
    if (as_probs and tuple(targets.shape) != tuple(logits.shape)) or (
            not as_probs and tuple(targets.shape) != tuple(dropped)):
        raise ValueError(
            f"Targets shape {targets.shape} does not match logits shape {logits.shape}.")
    logits = logits - mx.stop_gradient(mx.max(logits, axis=axis, keepdims=True))
    if as_probs:
        score = mx.sum(logits * targets, axis=axis)
    else:
        score = mx.take_along_axis(logits, mx.expand_dims(targets, axis), axis).squeeze(axis)
    lse = mx.logsumexp(logits, axis=axis)
    if label_smoothing > 0:
        loss = (lse - (1 - label_smoothing) * score
                + (-logits.mean(axis=axis) * label_smoothing))
    else:
        loss = lse - score
    return _reduce(_apply_weights(loss, weights), reduction)


def binary_cross_entropy(inputs, targets, weights=None, with_logits: bool = True,
                         reduction: Reduction = "mean"):
    """Binary cross entropy from logits (default) or probabilities (log clipped at -100)."""
    _same_shape(inputs, targets, "Inputs")
    if with_logits:
        loss = mx.logaddexp(0.0, inputs) - inputs * targets
    else:
        lp = mx.clip(mx.log(inputs), a_min=-100, a_max=None)
        lq = mx.clip(mx.log(1 - inputs), a_min=-100, a_max=None)
        loss = -(targets * lp + (1 - targets) * lq)
    return _reduce(_apply_weights(loss, weights), reduction)


def l1_loss(predictions, targets, reduction: Reduction = "mean"):
    _same_shape(predictions, targets)
    return _reduce(mx.abs(predictions - targets), reduction)


def mse_loss(predictions, targets, reduction: Reduction = "mean"):
    _same_shape(predictions, targets)
    return _reduce(mx.square(predictions - targets), reduction)


def nll_loss(inputs, targets, axis: int = -1, reduction: Reduction = "none"):
    """Negative log likelihood of log-probabilities ``inputs`` at class indices ``targets``."""
    loss = -mx.take_along_axis(inputs, mx.expand_dims(targets, axis), axis).squeeze(axis)
    return _reduce(loss, reduction)


def gaussian_nll_loss(inputs, targets, vars, full: bool = False, eps: float = 1e-6,
                      reduction: Reduction = "mean"):
    _same_shape(inputs, targets, "Inputs")
    _same_shape(inputs, vars, "Inputs", "vars")
    vars = mx.maximum(vars, eps)
    loss = 0.5 * (mx.log(vars) + mx.square(targets - inputs) / vars)
    if full:
        loss = loss + 0.5 * math.log(2 * math.pi)
    return _reduce(loss, reduction)


def kl_div_loss(inputs, targets, axis: int = -1, reduction: Reduction = "none"):
    """KL divergence ``sum(exp(t) * (t - x))`` of log-probabilities."""
    return _reduce(mx.sum(mx.exp(targets) * (targets - inputs), axis), reduction)


def smooth_l1_loss(predictions, targets, beta: float = 1.0, reduction: Reduction = "mean"):
    _same_shape(predictions, targets)
    d = mx.abs(predictions - targets)
    loss = mx.where(d < beta, 0.5 * mx.square(d) / beta, mx.abs(d) - 0.5 * beta)
    return _reduce(loss, reduction)


def triplet_loss(anchors, positives, negatives, axis: int = -1, p: int = 2,
                 margin: float = 1.0, eps: float = 1e-6, reduction: Reduction = "none"):
    def dist(b):
        return mx.power(mx.power(mx.abs(anchors - b), p).sum(axis) + eps, 1.0 / p)

    loss = mx.maximum(dist(positives) - dist(negatives) + margin, 0)
    return _reduce(loss, reduction)


def hinge_loss(inputs, targets, reduction: Reduction = "none"):
    return _reduce(mx.maximum(1 - inputs * targets, 0), reduction)


def huber_loss(inputs, targets, delta: float = 1.0, reduction: Reduction = "none"):
    a = mx.abs(inputs - targets)
    quad = mx.minimum(a, delta)
    return _reduce(0.5 * quad**2 + delta * (a - quad), reduction)


def log_cosh_loss(inputs, targets, reduction: Reduction = "none"):
    e = inputs - targets
    return _reduce(mx.logaddexp(e, -e) - math.log(2), reduction)


def _vector_norm(x, axis):
    linalg = getattr(mx, "linalg", None)
    if linalg is not None and hasattr(linalg, "norm"):
        return linalg.norm(x, axis=axis)
    return mx.sqrt(mx.sum(x * x, axis=axis))


def cosine_similarity_loss(x1, x2, axis: int = 1, eps: float = 1e-8,
                           reduction: Reduction = "none"):
    n1 = _vector_norm(x1, axis)
    n2 = _vector_norm(x2, axis)
    loss = mx.sum(x1 * x2, axis=axis) / mx.maximum(n1 * n2, eps)
    return _reduce(loss, reduction)


def margin_ranking_loss(inputs1, inputs2, targets, margin: float = 0.0,
                        reduction: Reduction = "none"):
    if not (tuple(inputs1.shape) == tuple(inputs2.shape) == tuple(targets.shape)):
        raise ValueError(
            f"The shapes of the arguments do not match. The provided shapes are "
            f"inputs1.shape={inputs1.shape}, inputs2.shape={inputs2.shape}, and "
            f"targets.shape={targets.shape}.")
    loss = mx.maximum(0, -targets * (inputs1 - inputs2) + margin)
    return _reduce(loss, reduction)
