"""Element-wise binary operations: full dtype matrix, broadcasting, weak scalars, operators."""

import numpy as np
import pytest

from diff import A, DTYPES, FLOATS, check, check_meta, check_raises, kind, rand

# op -> (domain of the second operand: None | "pos" | "shift", numpy reference)
BINARY = {
    "add": (None, np.add),
    "subtract": (None, np.subtract),
    "multiply": (None, np.multiply),
    "divide": ("pos", np.divide),
    "floor_divide": ("pos", np.floor_divide),
    "remainder": ("pos", np.remainder),
    "divmod": ("pos", None),
    "power": ("exp", np.power),
    "maximum": (None, np.maximum),
    "minimum": (None, np.minimum),
    "arctan2": (None, np.arctan2),
    "logaddexp": (None, np.logaddexp),
    "equal": (None, np.equal),
    "not_equal": (None, np.not_equal),
    "less": (None, np.less),
    "less_equal": (None, np.less_equal),
    "greater": (None, np.greater),
    "greater_equal": (None, np.greater_equal),
    "logical_and": (None, np.logical_and),
    "logical_or": (None, np.logical_or),
    "logical_xor": (None, np.logical_xor),
    "bitwise_and": (None, None),
    "bitwise_or": (None, None),
    "bitwise_xor": (None, None),
    "left_shift": ("shift", None),
    "right_shift": ("shift", None),
}
ALIASES = {"pow": "power", "atan2": "arctan2", "bitwise_left_shift": "left_shift",
           "bitwise_right_shift": "right_shift"}

# MLX evaluates logaddexp in float32 precision for float64 (see test_unary).
F64_APPROX = {"logaddexp"}

SEED = {n: i for i, n in enumerate(sorted(BINARY))}


def _second(op, dt, shape, seed):
    dom = BINARY[op][0]
    if dom is None:
        return rand(shape, dt, seed=seed)
    if kind(dt) == "b":
        # shifts by True are fine; divisions by True avoid division by zero
        return np.ones(shape, bool)
    if dom == "pos":
        return rand(shape, dt, seed=seed, low=1, high=9) if kind(dt) in "ui" else \
            rand(shape, dt, seed=seed, low=0.5, high=4)
    if dom == "exp":
        return rand(shape, dt, seed=seed, low=0, high=5) if kind(dt) in "ui" else \
            rand(shape, dt, seed=seed, low=-2, high=3)
    if dom == "shift":  # shift amounts stay below the bit width of int8
        return rand(shape, dt, seed=seed, low=0, high=7) if kind(dt) in "ui" else \
            rand(shape, dt, seed=seed, low=0, high=7)
    raise KeyError(dom)


def _tol(op, dt_a, dt_b=None):
    if "complex64" in (dt_a, dt_b):
        return {"rtol": 1e-4, "atol": 1e-5}
    if op in F64_APPROX and "float64" in (dt_a, dt_b):
        return {"rtol": 5e-6, "atol": 1e-6}
    return {}


def _call(op):
    return lambda m, a, b: getattr(m, op)(a, b)


@pytest.mark.parametrize("dt_b", DTYPES)
@pytest.mark.parametrize("dt_a", DTYPES)
@pytest.mark.parametrize("op", sorted(BINARY))
def test_binary_dtype_matrix(op, dt_a, dt_b):
    """Every op x every dtype pair, with broadcasting (2,3) x (3,)."""
    s = SEED[op]
    a = A(rand((2, 3), dt_a, seed=s), dt_a)
    b = A(_second(op, dt_b, (3,), s + 100), dt_b)
    check(_call(op), a, b, **_tol(op, dt_a, dt_b))


@pytest.mark.parametrize("dt", FLOATS)
@pytest.mark.parametrize("op", sorted(o for o in BINARY if BINARY[o][1] is not None))
def test_binary_numpy_reference(op, dt):
    s = SEED[op]
    a = A(rand((4, 5), dt, seed=s), dt)
    b = A(_second(op, dt, (4, 5), s + 1), dt)
    check(_call(op), a, b, np_fn=BINARY[op][1], **_tol(op, dt))


@pytest.mark.parametrize("dt", ["int8", "uint8", "int32", "int64", "uint64"])
@pytest.mark.parametrize("op", ["add", "subtract", "multiply", "floor_divide", "remainder",
                                "maximum", "minimum", "bitwise_and", "bitwise_or", "bitwise_xor",
                                "left_shift", "right_shift", "equal", "less"])
def test_binary_int_numpy_reference(op, dt):
    """Integer semantics (wrapping, floor division sign, shifts) agree with NumPy."""
    s = SEED[op]
    a = A(rand((4, 5), dt, seed=s, low=-100, high=100), dt)
    b = A(_second(op, dt, (4, 5), s + 1), dt)
    check(_call(op), a, b, np_fn=getattr(np, op))


@pytest.mark.parametrize("dt", FLOATS + ["complex64"])
@pytest.mark.parametrize("op", ["add", "subtract", "multiply", "divide", "floor_divide", "remainder",
                                "power", "maximum", "minimum", "arctan2", "logaddexp", "equal",
                                "less", "greater_equal", "not_equal", "logical_and"])
def test_binary_special_values(op, dt):
    """NaN / inf / signed zero / huge / tiny on both sides."""
    a = A(rand((6, 6), dt, seed=1, special=True), dt)
    b = A(rand((6, 6), dt, seed=2, special=True).T.copy(), dt)
    check(_call(op), a, b, **_tol(op, dt))


SHAPE_PAIRS = [((), ()), ((), (3,)), ((3,), ()), ((4, 1), (3,)), ((2, 1, 4), (3, 1)),
               ((0,), (1,)), ((2, 0), (2, 1)), ((1, 1), (1,)), ((5, 1, 1), (1, 4, 1))]


@pytest.mark.parametrize("sa,sb", SHAPE_PAIRS, ids=repr)
@pytest.mark.parametrize("op", ["add", "multiply", "maximum", "less", "power", "logical_or"])
def test_binary_broadcast(op, sa, sb):
    a = A(rand(sa, "float32", seed=3))
    b = A(rand(sb, "float32", seed=4, low=0.5))
    check(_call(op), a, b, np_fn=getattr(np, op))


@pytest.mark.parametrize("sa,sb", [((3,), (2,)), ((2, 3), (3, 2)), ((0,), (2,)), ((4, 1, 3), (2, 3, 1, 2))],
                         ids=repr)
@pytest.mark.parametrize("op", ["add", "equal", "logical_and", "bitwise_or", "arctan2"])
def test_binary_broadcast_error(op, sa, sb):
    a = A(rand(sa, "int32", seed=3))
    b = A(rand(sb, "int32", seed=4))
    check_raises(_call(op), a, b, err=ValueError)


VIEWS = [lambda x: x.T, lambda x: x[::2, ::-1], lambda x: x[1:, ::3], lambda x: x[:, 2]]


@pytest.mark.parametrize("vi", range(len(VIEWS)))
@pytest.mark.parametrize("op", ["add", "subtract", "divide", "maximum", "greater", "power"])
def test_binary_noncontiguous(op, vi):
    view = VIEWS[vi]
    a = A(rand((6, 6), "float32", seed=5), view=view)
    b = A(rand((6, 6), "float32", seed=6, low=0.5), view=view)
    check(_call(op), a, b, np_fn=getattr(np, op))
    # view op contiguous, and contiguous op view
    shape = view(np.zeros((6, 6))).shape
    c = A(rand(shape, "float32", seed=7, low=0.5))
    check(_call(op), a, c, np_fn=getattr(np, op))
    check(_call(op), c, b, np_fn=getattr(np, op))


@pytest.mark.parametrize("alias,name", sorted(ALIASES.items()))
def test_binary_aliases(alias, name):
    a = A(rand((5,), "int32", seed=8, low=1, high=9))
    b = A(rand((5,), "int32", seed=9, low=0, high=4))
    check(lambda m, x, y: (getattr(m, alias)(x, y), getattr(m, name)(x, y)), a, b)


# ------------------------------------------------------------ weak scalar typing

SCALARS = [1, -1, 0, 1.0, 2.5, -0.5, True, 127, 255, 300, -129, 2**31, 2**40, 1j]


@pytest.mark.parametrize("scalar", SCALARS, ids=repr)
@pytest.mark.parametrize("dt", DTYPES)
@pytest.mark.parametrize("op", ["add", "subtract", "multiply", "divide", "maximum", "equal", "less",
                                "floor_divide", "power", "bitwise_or"])
def test_weak_scalar(op, dt, scalar):
    """array (op) python-scalar: the scalar adopts the array's dtype when it fits.

    e.g. int8 + 1 -> int8, int8 + 1.0 -> float32, uint8 + (-1) -> ValueError (overflow).
    """
    if op in ("floor_divide",) and scalar == 0:
        pytest.skip("integer division by zero is undefined behaviour in MLX")
    if op == "power" and isinstance(scalar, int) and not isinstance(scalar, bool) and \
            (scalar < 0 or scalar > 8):
        scalar = 2 if scalar > 0 else scalar
    x = A(rand((2, 3), dt, seed=10, low=1), dt)
    tol = _tol(op, dt)
    check(lambda m, a: getattr(m, op)(a, scalar), x, **tol)
    check(lambda m, a: getattr(m, op)(scalar, a), x, **tol)


@pytest.mark.parametrize("case", [
    ("int8", 300), ("uint8", -1), ("uint8", 256), ("int32", 2**31), ("int32", 2**40),
    ("int16", -40000), ("uint32", -5), ("int8", -129)], ids=repr)
def test_weak_scalar_overflow_raises(case):
    dt, val = case
    check_raises(lambda m: m.array([1], getattr(m, dt)) + val, err=ValueError)
    check_raises(lambda m: val * m.array([1], getattr(m, dt)), err=ValueError)
    check_raises(lambda m: m.where(m.array([True]), m.array([1], getattr(m, dt)), val), err=ValueError)


def test_weak_scalar_misc():
    check(lambda m: m.array([1], m.uint8) - 1)
    check(lambda m: m.array([1], m.uint8) + 255)          # wraps to 0
    check(lambda m: m.array([100], m.int8) * 2)            # wraps
    check(lambda m: m.array([1], m.int64) + 2**40)
    check(lambda m: m.array([1], m.float16) + 1e10)        # inf in float16
    check(lambda m: m.array([1], m.bool_) + True)
    check(lambda m: m.array([1], m.bool_) + 1)             # bool + int -> int32
    check(lambda m: m.array([1], m.int8) + 1j)
    check(lambda m: m.array([1], m.float64) + 1j)          # complex64 (MLX has no complex128)
    check(lambda m: m.array([1], m.int8) + m.array(300))   # 0-d arrays are NOT weak
    check(lambda m: m.array(2, m.int8) + m.array(3))
    check(lambda m: m.array([1.0], m.float32) + np.float64(1))
    check(lambda m: m.array([1], m.int8) + np.int64(1))


def test_mixed_promotion_surprises():
    check(lambda m: m.array([1, 2], m.uint64) + m.array([1, 2], m.int64))   # float32 in MLX
    check(lambda m: m.array([1, 2], m.uint64) + m.array([1, 2], m.int8))
    check(lambda m: m.array([1, 2], m.float16) + m.array([1, 2], m.bfloat16))
    check(lambda m: m.array([1, 2], m.int64) + m.array([1, 2], m.float16))
    check(lambda m: m.array([1, 2], m.uint32) - m.array([1, 2], m.int32))
    check(lambda m: m.left_shift(m.array([True]), m.array([True])))
    check(lambda m: m.right_shift(m.array([-16], m.int8), m.array([2], m.uint8)))


# ------------------------------------------------------------------ operators

OPS = {
    "+": lambda a, b: a + b, "-": lambda a, b: a - b, "*": lambda a, b: a * b,
    "/": lambda a, b: a / b, "//": lambda a, b: a // b, "%": lambda a, b: a % b,
    "**": lambda a, b: a ** b, "==": lambda a, b: a == b, "!=": lambda a, b: a != b,
    "<": lambda a, b: a < b, "<=": lambda a, b: a <= b, ">": lambda a, b: a > b,
    ">=": lambda a, b: a >= b, "&": lambda a, b: a & b, "|": lambda a, b: a | b,
    "^": lambda a, b: a ^ b, "<<": lambda a, b: a << b, ">>": lambda a, b: a >> b,
}


@pytest.mark.parametrize("dt", ["bool_", "uint8", "int8", "int32", "int64", "float16", "bfloat16",
                                "float32", "float64", "complex64"])
@pytest.mark.parametrize("op", sorted(OPS))
def test_operators_array_array(op, dt):
    a = A(rand((3, 4), dt, seed=20, low=1, high=6), dt)
    b = A(rand((4,), dt, seed=21, low=1, high=3), dt)
    check(lambda m, x, y: OPS[op](x, y), a, b, **_tol("", dt))


@pytest.mark.parametrize("scalar", [2, 2.5, True, -3], ids=repr)
@pytest.mark.parametrize("dt", ["uint8", "int16", "int32", "float16", "float32"])
@pytest.mark.parametrize("op", sorted(OPS))
def test_operators_reflected(op, dt, scalar):
    """`2 - x`, `2 ** x`, `2.5 / x` ... (MLX has no __rand__/__ror__/__rxor__/__rlshift__)."""
    x = A(rand((5,), dt, seed=22, low=1, high=4), dt)
    check(lambda m, a: OPS[op](scalar, a), x)
    if op in ("<<", ">>") and scalar == -3:
        return  # shifting by a negative amount is undefined behaviour in MLX (C++)
    check(lambda m, a: OPS[op](a, scalar), x)


def test_operator_with_sequences():
    check(lambda m: m.array([1, 2]) + [1, 2])
    check(lambda m: m.array([1, 2]) + (1, 2))
    check(lambda m: m.array([1, 2]) == [1, 2])
    check(lambda m: m.array([1, 2]) == "a")
    check(lambda m: m.array([1, 2]) != "a")
    check(lambda m: m.array([1, 2]) == None)  # noqa: E711
    check(lambda m: m.array([1, 2]) + np.array([1, 2]))
    check(lambda m: m.array([1.5, 2]) * np.array([2.0, 3.0], np.float64))
    check(lambda m: m.array([1, 2]) + "a")
    check(lambda m: m.add(m.array([1, 2]), [3, 4]))


def test_builtin_divmod_unsupported():
    check(lambda m: divmod(m.array([7, -7]), 3))


@pytest.mark.parametrize("op", ["+=", "-=", "*=", "/=", "//=", "%=", "**=", "&=", "|=", "^=",
                                "<<=", ">>="])
@pytest.mark.parametrize("rhs", ["int", "float", "array_i8", "array_f"])
@pytest.mark.parametrize("dt", ["int32", "int8", "float32", "bool_"])
def test_inplace_operators(dt, rhs, op):
    """`x op= y` updates the array object in place (aliases see the change, even a dtype change)."""
    def f(m):
        x = m.array([[4, 6], [2, 3]], getattr(m, dt))
        alias = x
        y = {"int": 2, "float": 1.5, "array_i8": m.array([1, 2], m.int8),
             "array_f": m.array([2.0, 0.5])}[rhs]
        ns = {"x": x, "y": y}
        exec(f"x {op} y", ns)
        return ns["x"], alias, ns["x"] is alias
    check(f)


def test_inplace_does_not_affect_copies():
    def f(m):
        x = m.arange(4)
        view = x[1:3]
        c = m.array(x)
        x += 10
        return x, view, c
    check(f)


def test_inplace_in_loop_identity():
    def f(m):
        x = m.zeros((3,))
        keep = x
        for i in range(5):
            x += i
        return x, keep, x is keep
    check(f)


# ------------------------------------------------------- where / clip / nan_to_num

@pytest.mark.parametrize("dt", DTYPES)
def test_where_dtypes(dt):
    c = A(rand((3, 4), "bool_", seed=30))
    x = A(rand((3, 4), dt, seed=31), dt)
    y = A(rand((4,), dt, seed=32), dt)
    check(lambda m, c_, a, b: m.where(c_, a, b), c, x, y, np_fn=np.where)
    check(lambda m, c_, a, b: m.where(c_, a, 1), c, x, y)
    check(lambda m, c_, a, b: m.where(c_, 2.5, b), c, x, y)


def test_where_misc():
    check(lambda m: m.where(m.array([True, False]), 1, 2.0))
    check(lambda m: m.where(True, 1, 2))
    check(lambda m: m.where(m.array([1.5, 0]), 1, 2))            # non-bool condition
    check(lambda m: m.where(m.array([[1], [0]]), m.arange(3), m.arange(3, 6, dtype=m.int8)))
    check(lambda m: m.where(m.array([1, 0]), m.array([1, 2], m.int8), 3))
    check(lambda m: m.where(m.array([1, 0, 1]), m.array([1, 2]), 3))


@pytest.mark.parametrize("lo,hi", [(2, 6), (None, 6), (2, None), (2.5, 6), (6, 2), (-1.0, 0.5)],
                         ids=repr)
@pytest.mark.parametrize("dt", ["int8", "uint8", "int32", "float16", "bfloat16", "float32", "float64"])
def test_clip(dt, lo, hi):
    x = A(rand((3, 5), dt, seed=33, low=0, high=9), dt)
    check(lambda m, a: m.clip(a, lo, hi), x,
          np_fn=(lambda a: np.clip(a, lo, hi)) if dt in FLOATS else None)


def test_clip_misc():
    check(lambda m: m.clip(m.array([1, 5, 9]), m.array([2, 3, 4]), 6))
    check(lambda m: m.clip(m.array([1.0, 5, 9]), m.array([[0.0], [4.0]]), m.array(6.0)))
    check(lambda m: m.clip(m.array([float("nan"), 1.0]), 0, 0.5))
    check_raises(lambda m: m.clip(m.array([1, 5, 9]), None, None), err=ValueError)


@pytest.mark.parametrize("dt", ["float16", "bfloat16", "float32", "float64", "int32", "uint8", "bool_",
                                "complex64"])
@pytest.mark.parametrize("kw", [{}, {"nan": 1.0, "posinf": 2.0, "neginf": -2.0}, {"nan": 7},
                                {"posinf": 1e30}], ids=repr)
def test_nan_to_num(dt, kw):
    x = A(rand((4, 5), dt, seed=34, special=True), dt)
    check(lambda m, a: m.nan_to_num(a, **kw), x)


@pytest.mark.parametrize("kw", [{}, {"rtol": 0.1}, {"atol": 0.5}, {"equal_nan": True},
                                {"rtol": 0.0, "atol": 0.0}], ids=repr)
@pytest.mark.parametrize("dt", ["float32", "float16", "float64", "int32", "bfloat16"])
def test_isclose_allclose(dt, kw):
    a_np = rand((4, 5), dt, seed=35, special=dt in FLOATS)
    noise = rand((4, 5), "float32", seed=36, low=-0.2, high=0.2)
    b_np = (a_np + noise.astype(a_np.dtype)) if dt in FLOATS else a_np + (noise > 0.1)
    b_np.reshape(-1)[:3] = a_np.reshape(-1)[:3]
    a, b = A(a_np, dt), A(b_np.astype(a_np.dtype), dt)
    check(lambda m, x, y: m.isclose(x, y, **kw), a, b)
    check(lambda m, x, y: m.allclose(x, y, **kw), a, b)
    check(lambda m, x, y: m.allclose(x, x, **kw), a, b)
    check(lambda m, x, y: m.isclose(x, y[:1], **kw), a, b)  # broadcasting


def test_isclose_misc():
    check(lambda m: m.isclose(m.array([float("inf")]), m.array([-float("inf")])))
    check(lambda m: m.isclose(m.array([float("inf")]), m.array([float("inf")])))
    check(lambda m: m.isclose(m.array([1.0]), 1))
    check(lambda m: m.allclose(m.array([1.0]), m.array([1.0, 1.0])))


@pytest.mark.parametrize("case", [
    ("[1,2]", "[1.,2.]", False), ("[1,2]", "[1,2,3]", False), ("[nan]", "[nan]", True),
    ("[nan]", "[nan]", False), ("[1,2]", "[[1,2]]", False),
    ("[True, False]", "[1, 0]", False), ("[1.5, nan]", "[1.5, nan]", True), ("[0.0]", "[-0.0]", False)],
    ids=repr)
def test_array_equal(case):
    sa, sb, en = case
    env = {"nan": float("nan")}
    va, vb = eval(sa, env), eval(sb, env)
    check(lambda m: m.array_equal(m.array(va), m.array(vb), equal_nan=en))
    check(lambda m: m.array_equal(m.array(va), m.array(vb)))


def test_array_equal_scalars_and_dtypes():
    check(lambda m: m.array_equal(1, 1))
    check(lambda m: m.array_equal(m.array([1, 2], m.int8), m.array([1, 2], m.float16)))
    check(lambda m: m.array_equal(m.arange(6).reshape(2, 3).T, m.arange(6).reshape(2, 3).T))
    # empty operands reduce over a zero-length axis: MLX evaluation is unreliable there
    check_meta(lambda m: m.array_equal(m.array([]), m.array([])))
    check_meta(lambda m: m.allclose(m.zeros((0, 2)), m.zeros((0, 2))))


# ---------------------------------------------------------- specific semantics

def test_division_semantics():
    check(lambda m: m.array([7, -7], m.int32) // m.array([2, 2]))
    check(lambda m: m.array([7, -7], m.int32) % m.array([2, -2]))
    check(lambda m: m.array([7.5, -7.5]) % m.array([2, -2]))
    check(lambda m: m.array([7.0, -7.0, 0.0]) // 0)
    check(lambda m: m.array([7.0, -7.0, 0.0]) % 0)
    check(lambda m: m.array([7.0, -7.0, 0.0]) / 0)
    check(lambda m: m.array([1, 2], m.int8) / m.array([1, 2], m.int8))
    check(lambda m: m.array([1, 2], m.int64) / m.array([1, 2], m.int64))
    check(lambda m: m.divmod(m.array([7, -7]), 3))
    check(lambda m: m.divmod(m.array([7.5, -7.5]), m.array([2.0, -2.0])))
    check(lambda m: m.remainder(m.array([-0.0, 5.0]), m.array([3.0, -0.0])))
    check(lambda m: m.remainder(m.array([float("inf"), 5.0]), m.array([3.0, float("inf")])))
    check(lambda m: m.floor_divide(m.array([float("inf"), 5.0]), m.array([3.0, float("inf")])))
    check(lambda m: m.floor_divide(m.array([1.0 + 1j]), 2))
    check(lambda m: m.remainder(m.array([1.0 + 1j]), 2))


def test_power_semantics():
    check(lambda m: m.array([1, 2], m.int32) ** m.array([-1, 2]))    # MLX: 1 ** -1 == 0 (!)
    check(lambda m: m.power(m.array([0, 2, -2], m.int32), 0))
    check(lambda m: m.power(m.array([-2], m.int32), 3))
    check(lambda m: m.power(m.array([2], m.uint8), 9))
    check(lambda m: m.power(m.array([0.0]), -1))
    check(lambda m: m.power(m.array([-2.0]), 0.5))
    check(lambda m: m.power(m.array([-8.0]), 1 / 3))
    check(lambda m: m.power(m.array([2.0]), m.array([1 + 1j])), rtol=1e-5)
    check(lambda m: 2 ** m.array([1, 2], m.int8))
    check(lambda m: 2.0 ** m.array([1, 2], m.int8))
    check(lambda m: m.array([1, 2], m.int8) ** -1)


def test_nan_propagation_minmax():
    nan = float("nan")
    check(lambda m: m.maximum(m.array([nan, 1]), m.array([1, nan])))
    check(lambda m: m.minimum(m.array([nan, 1]), m.array([1, nan])))
    check(lambda m: m.maximum(m.array([-0.0]), m.array([0.0])))
    check(lambda m: m.logaddexp(m.array([-float("inf")]), m.array([-float("inf")])))
    check(lambda m: m.logaddexp(m.array([float("inf")]), m.array([float("inf")])))


def test_shift_semantics():
    check(lambda m: m.array([1, 2], m.int8) << 7)
    check(lambda m: m.array([-8, 2], m.int8) >> 1)
    check(lambda m: m.left_shift(m.array([1], m.int64), 63))
    check(lambda m: m.right_shift(m.array([-1], m.int32), 31))
    check(lambda m: m.right_shift(m.array([2**31 + 5], m.uint32), 3))


@pytest.mark.parametrize("op", ["bitwise_and", "bitwise_or", "bitwise_xor", "left_shift", "right_shift"])
def test_bitwise_on_floats_raises(op):
    # NB: the *functions* raise RuntimeError, the *operators* raise ValueError in MLX.
    check_raises(lambda m: getattr(m, op)(m.array([1.0, 2.0]), m.array([1.0, 2.0])), err=RuntimeError)
    check_raises(lambda m: getattr(m, op)(m.array([1, 2]), m.array([1.0, 2.0])), err=RuntimeError)
    check_raises(lambda m: getattr(m, op)(m.array([1.0]), 1), err=RuntimeError)
    sym = {"bitwise_and": "&", "bitwise_or": "|", "bitwise_xor": "^", "left_shift": "<<",
           "right_shift": ">>"}[op]
    check_raises(lambda m: eval(f"a {sym} b", {"a": m.array([1.0]), "b": m.array([2.0])}), err=ValueError)
    check_raises(lambda m: eval(f"a {sym} 1", {"a": m.array([1.0])}), err=ValueError)
    check_raises(lambda m: eval(f"a {sym} b", {"a": m.array([1]), "b": m.array([2.0])}), err=ValueError)


def test_bitwise_invert_on_floats_raises():
    check_raises(lambda m: m.bitwise_invert(m.array([1.0])), err=ValueError)
    check_raises(lambda m: ~m.array([1.0]), err=ValueError)


def test_complex_unsupported_binary():
    check_raises(lambda m: m.arctan2(m.array([1 + 1j]), m.array([2])), err=ValueError)
    check_raises(lambda m: m.remainder(m.array([1 + 1j]), 2), err=ValueError)
    check(lambda m: m.maximum(m.array([1 + 1j, 3 + 0j]), m.array([1 + 2j, 2 + 5j])))
    check(lambda m: m.less(m.array([1 + 1j, 3 + 0j]), m.array([1 + 2j, 2 + 5j])))


def test_binary_table_covers_mlx():
    """Guard: every MLX element-wise f(a: scalar | array, b: scalar | array) is covered here."""
    import re

    from diff import REF

    pat = re.compile(r"^\w+\(a: scalar \| array, b: scalar \| array")
    found = {n for n in dir(REF)
             if pat.match(((getattr(getattr(REF, n), "__doc__", "") or "").split("\n") or [""])[0])}
    uncovered = found - set(BINARY) - set(ALIASES) - {"array_equal"}
    assert not uncovered, sorted(uncovered)
