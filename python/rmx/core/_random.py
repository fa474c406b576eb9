"""``rmx.core.random``, as ``mlx.core.random``: the samplers are rmx's (Rust), and the
implicit key sequence lives here, in Python, behind ``state`` so that ``compile`` can
capture it: ``mx.compile(f, inputs=[mx.random.state], outputs=[mx.random.state])`` makes
random ops inside ``f`` advance the key on every call, as in MLX.

As in MLX 0.32.4, ``state`` is a ``_RandomState`` object (indexable, one element: the
current key; no item assignment), the key is per thread (a new thread starts from a key
seeded by the clock), ``seed`` resets the calling thread's key, and a sampler without a
``key`` splits the current key in two, keeps the first half and samples with the second.
"""

import threading as _threading
import time as _time

from rmx import _rmx

_r = _rmx.random
key = _r.key
split = _r.split
_local = _threading.local()


def _keys():
    """This thread's one-element list holding the current key."""
    keys = getattr(_local, "keys", None)
    if keys is None:
        keys = _local.keys = [_r.key(_time.time_ns() & (2**64 - 1))]
    return keys


class _RandomState:
    """The implicit key as a one-element sequence (what ``compile`` captures)."""

    __slots__ = ()

    def __len__(self):
        return 1

    def __getitem__(self, i):
        if not isinstance(i, int) or isinstance(i, bool):
            raise TypeError(f"__getitem__(): index must be an int, got {type(i).__name__}")
        if i not in (0, -1):
            raise IndexError("random state index out of range")
        return _keys()[0]

    def __iter__(self):
        return iter(list(_keys()))

    def _set(self, k):
        _keys()[0] = k


state = _RandomState()


def seed(seed):
    """Seeds the calling thread's implicit key."""
    _keys()[0] = _r.key(seed)


def _next_key():
    keys = _keys()
    pair = _r.split(keys[0])
    keys[0] = pair[0]
    return pair[1]


def _k(k):
    return _next_key() if k is None else k


def bits(shape=None, width=4, key=None, stream=None):
    return _r.bits(shape, width, _k(key), stream)


def uniform(low=None, high=None, shape=None, dtype=None, key=None, stream=None):
    return _r.uniform(low, high, shape, dtype, _k(key), stream)


def normal(shape=None, dtype=None, loc=None, scale=None, key=None, stream=None):
    return _r.normal(shape, dtype, loc, scale, _k(key), stream)


def randint(low, high, shape=None, dtype=None, key=None, stream=None):
    return _r.randint(low, high, shape, dtype, _k(key), stream)


def bernoulli(p=None, shape=None, key=None, stream=None):
    return _r.bernoulli(p, shape, _k(key), stream)


def truncated_normal(lower, upper, shape=None, dtype=None, key=None, stream=None):
    return _r.truncated_normal(lower, upper, shape, dtype, _k(key), stream)


def gumbel(shape=None, dtype=None, key=None, stream=None):
    return _r.gumbel(shape, dtype, _k(key), stream)


def laplace(shape=None, dtype=None, loc=0.0, scale=1.0, key=None, stream=None):
    return _r.laplace(shape, dtype, loc, scale, _k(key), stream)


def categorical(logits, axis=-1, shape=None, num_samples=None, key=None, stream=None):
    return _r.categorical(logits, axis, shape, num_samples, _k(key), stream)


def permutation(x, axis=0, key=None, stream=None):
    return _r.permutation(x, axis, _k(key), stream)


for _f in (bits, uniform, normal, randint, bernoulli, truncated_normal, gumbel, laplace,
           categorical, permutation, seed):
    _f.__doc__ = getattr(_r, _f.__name__).__doc__ or _f.__doc__
del _f


def multivariate_normal(mean, cov, shape=None, dtype=None, key=None, stream=None):
    return _r.multivariate_normal(mean, cov, shape, dtype, _k(key), stream)


multivariate_normal.__doc__ = _r.multivariate_normal.__doc__
