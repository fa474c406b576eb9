"""Optimizers and learning-rate schedules, mirroring ``mlx.optimizers``."""

from rmx.optimizers.optimizers import *  # noqa: F401,F403
from rmx.optimizers.optimizers import (  # noqa: F401
    SGD, AdaDelta, Adafactor, Adagrad, Adam, Adamax, AdamW, Lion, MultiOptimizer, Muon,
    Optimizer, RMSprop, clip_grad_norm)
from rmx.optimizers.schedulers import (  # noqa: F401
    cosine_decay, exponential_decay, join_schedules, linear_schedule, step_decay)
from rmx.optimizers import optimizers, schedulers  # noqa: F401
