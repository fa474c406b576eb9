"""``nn.value_and_grad`` and ``nn.checkpoint``: transforms over a model's
trainable parameters."""

from functools import wraps
from typing import Callable, Optional

import rmx.core as mx
from rmx.nn.module import Module


def value_and_grad(model: Module, fn: Callable):
    """Returns ``f(*args) -> (fn(*args), grads)`` where ``grads`` is the
    gradient of ``fn`` w.r.t. ``model.trainable_parameters()``."""
    def inner(params, *args, **kwargs):
        model.update(params)
        return fn(*args, **kwargs)

    vg = mx.value_and_grad(inner)

    @wraps(fn)
    def wrapped(*args, **kwargs):
        return vg(model.trainable_parameters(), *args, **kwargs)

    return wrapped


def checkpoint(module: Module, fn: Optional[Callable] = None):
    """Gradient checkpointing of ``fn`` (default: the module's ``__call__``)
    with respect to the module's trainable parameters and ``fn``'s inputs: its
    intermediates are recomputed in the backward pass."""
    if fn is None:
        fn = module

    def inner(params, *args, **kwargs):
        module.update(params)
        return fn(*args, **kwargs)

    checkpointed = mx.checkpoint(inner)

    @wraps(fn)
    def wrapped(*args, **kwargs):
        return checkpointed(module.trainable_parameters(), *args, **kwargs)

    return wrapped


def average_gradients(gradients, group=None, all_reduce_size: int = 32 * 1024**2,
                      communication_stream=None):
    """Averages gradients across a distributed group.  rmx has no distributed
    backend: a single process is a group of size 1, so this is the identity."""
    return gradients
