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


def _all_arrays(tree):
    if isinstance(tree, mx.array):
        return True
    if isinstance(tree, (list, tuple)):
        return all(_all_arrays(t) for t in tree)
    if isinstance(tree, dict):
        return all(_all_arrays(t) for t in tree.values())
    return False


def checkpoint(module: Module, fn: Optional[Callable] = None):
    """Gradient checkpointing of ``fn`` (default: the module's ``__call__``):
    its intermediates are recomputed in the backward pass."""
    if fn is None:
        fn = module

    @wraps(fn)
    def wrapped(*args, **kwargs):
        # rmx's mx.checkpoint only accepts array trees as arguments (MLX also
        # takes e.g. None); non-array positional arguments are closed over.
        is_arr = [_all_arrays(a) for a in args]
        consts = [None if t else a for a, t in zip(args, is_arr)]

        def inner(params, *arrs):
            module.update(params)
            it = iter(arrs)
            full = [next(it) if t else c for t, c in zip(is_arr, consts)]
            return fn(*full, **kwargs)

        arrs = [a for a, t in zip(args, is_arr) if t]
        return mx.checkpoint(inner)(module.trainable_parameters(), *arrs)

    return wrapped


def average_gradients(gradients, group=None, all_reduce_size: int = 32 * 1024**2,
                      communication_stream=None):
    """Averages gradients across a distributed group.  rmx has no distributed
    backend: a single process is a group of size 1, so this is the identity."""
    return gradients
