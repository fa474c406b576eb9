"""``rmx.core.distributed``: MLX 0.32.4's API on a machine with no communication backend.

rmx has no MPI, ring, NCCL or JACCL backend, so ``is_available`` is False for every
backend (MLX also reports False for the ones it was built without; MLX's ring backend is
always built in, so there ``is_available()`` and ``is_available("ring")`` are True).
``init()`` returns the singleton group (rank 0, size 1), ``init(strict=True)`` raises
MLX's RuntimeError, and the collectives are identities on a group of one, as in MLX:
``all_sum``/``all_max``/``all_min``/``all_gather``/``sum_scatter`` return their input,
``send``/``recv``/``recv_like`` raise MLX's ValueError. Identities keep grad and vmap
working, as MLX's do.
"""

_BACKENDS = ("any", "mpi", "ring", "nccl", "jaccl")


def _check_backend(backend):
    if backend not in _BACKENDS:
        raise ValueError(
            "[distributed] The only valid values for backend are 'any', 'mpi', 'nccl', "
            f"'jaccl' and 'ring' but '{backend}' was provided."
        )


class Group:
    """A group of independent rmx processes that can communicate (here: just this one)."""

    def __init__(self, *args, **kwargs):
        raise TypeError("rmx.core.distributed.Group: no constructor defined!")

    @classmethod
    def _singleton(cls):
        g = object.__new__(cls)
        return g

    def rank(self):
        """Get the rank of this process."""
        return 0

    def size(self):
        """Get the size of the group."""
        return 1

    def split(self, color, key=-1):
        """Split the group into subgroups by ``color`` (impossible for a group of one)."""
        raise RuntimeError("Cannot split the distributed group further.")


_GLOBAL = None


def _global_group():
    global _GLOBAL
    if _GLOBAL is None:
        _GLOBAL = Group._singleton()
    return _GLOBAL


def is_available(backend="any"):
    """Whether a communication backend is available (none is, in rmx)."""
    return False


_STRICT_ERRORS = {
    "any": "[distributed] Couldn't initialize any backend",
    "mpi": "Cannot initialize MPI",
    "ring": (
        "[ring] You need to provide via environment variables both a rank (MLX_RANK) and "
        "a hostfile (MLX_HOSTFILE) but provided MLX_RANK=\"{rank}\" and MLX_HOSTFILE=\"{host}\""
    ),
    "nccl": "Cannot initialize nccl distributed backend.",
    "jaccl": "Cannot initialize jaccl distributed backend.",
}


def init(strict=False, backend="any", *, all_gather_factory=None):
    """Initialize the communication backend; without one, the singleton group (or a
    RuntimeError when ``strict``)."""
    _check_backend(backend)
    if strict:
        import os

        msg = _STRICT_ERRORS[backend]
        if backend == "ring":
            msg = msg.format(
                rank=os.environ.get("MLX_RANK", ""), host=os.environ.get("MLX_HOSTFILE", "")
            )
        raise RuntimeError(msg)
    return _global_group()


def _array(x):
    from rmx._rmx import array

    if isinstance(x, array):
        return x
    if isinstance(x, (bool, int, float, complex)):
        return array(x)
    raise ValueError(f"Invalid type {type(x).__name__} received in array initialization.")


def _group(group):
    if group is not None and not isinstance(group, Group):
        raise TypeError("group must be an rmx.core.distributed.Group or None")
    return group if group is not None else _global_group()


def _identity(x, group, stream):
    # on a group of one MLX returns the input itself, on any stream
    x = _array(x)
    _group(group)
    return x


def all_sum(x, *, group=None, stream=None):
    """All reduce sum: the sum of ``x`` over the group (``x`` itself on one process)."""
    return _identity(x, group, stream)


def all_max(x, *, group=None, stream=None):
    """All reduce max over the group (``x`` itself on one process)."""
    return _identity(x, group, stream)


def all_min(x, *, group=None, stream=None):
    """All reduce min over the group (``x`` itself on one process)."""
    return _identity(x, group, stream)


def all_gather(x, *, group=None, stream=None):
    """Concatenate ``x`` from every process along the first axis (``x`` on one process)."""
    return _identity(x, group, stream)


def sum_scatter(x, *, group=None, stream=None):
    """Sum over the group and shard along the first axis (``x`` on one process)."""
    return _identity(x, group, stream)


def send(x, dst, *, group=None, stream=None):
    """Send ``x`` to rank ``dst`` (impossible in a group of one)."""
    _array(x)
    _group(group)
    raise ValueError("Cannot send to a singleton group")


def recv(shape, dtype, src, *, group=None, stream=None):
    """Receive an array of ``shape`` and ``dtype`` from rank ``src`` (impossible alone)."""
    _group(group)
    raise ValueError("Cannot recv from a singleton group")


def recv_like(x, src, *, group=None, stream=None):
    """Receive an array shaped like ``x`` from rank ``src`` (impossible alone)."""
    _array(x)
    _group(group)
    raise ValueError("Cannot recv from a singleton group")
