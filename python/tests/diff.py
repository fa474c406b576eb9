"""Differential-testing harness: rmx.core versus the reference mlx.core.

Usage in tests::

    from diff import check, A, rand, REF, get_rmx

    check(lambda m, x: m.exp(x), A(rand((3, 4), "float32")),
          np_fn=np.exp)

``check`` materialises every input once per library (``A`` specs become
arrays of that library; everything else is passed through unchanged), calls
``fn(lib, *inputs)`` for lib in (rmx, mlx) and asserts that

* both raise -> the same builtin exception type, or
* neither raises -> the results agree structurally (arrays: shape, dtype by
  name, values with NaN/inf positions; tuples/lists/dicts recursively;
  dtypes by name; Python scalars by type and value).

``np_fn`` (optional) additionally compares the rmx result with a NumPy
reference computed on float64 (complex128) copies of the exact input values.

Environment:
    RMX_TEST_REFERENCE_ONLY=1  -> the "rmx" side is mlx.core itself; this
    validates the harness and the tests before rmx exists.  Tests that can
    only run against rmx (behaviour MLX lacks, compared to NumPy) are skipped
    in that mode through the ``rmx_only`` marker.

Without that variable, failure to import ``rmx.core`` makes every test
FAIL (never skip).
"""

from __future__ import annotations

import math
import os

import numpy as np
import pytest

import mlx.core as REF  # the reference implementation

REFERENCE_ONLY = os.environ.get("RMX_TEST_REFERENCE_ONLY", "") not in ("", "0")

_RMX = None
_RMX_ERR = None
try:
    if REFERENCE_ONLY:
        import mlx.core as _RMX  # noqa: F811
    else:
        import rmx.core as _RMX  # noqa: F811
except Exception as e:  # pragma: no cover - depends on the build state
    _RMX = None
    _RMX_ERR = e


def get_rmx():
    """The library under test; fails the calling test if it cannot be imported."""
    if _RMX is None:
        pytest.fail(
            f"cannot import rmx.core ({type(_RMX_ERR).__name__}: {_RMX_ERR}); "
            "build the extension or set RMX_TEST_REFERENCE_ONLY=1 to validate "
            "the suite against mlx itself",
            pytrace=False,
        )
    return _RMX


rmx_only = pytest.mark.skipif(
    REFERENCE_ONLY,
    reason="rmx-only test: MLX lacks or mis-handles this; rmx is compared against NumPy",
)

# Parity with MLX behaviour that looks like a bug / limitation (see conftest).
mlx_quirk = pytest.mark.mlx_quirk

# --------------------------------------------------------------------------
# dtypes

DTYPES = [
    "bool_", "uint8", "uint16", "uint32", "uint64", "int8", "int16", "int32",
    "int64", "float16", "bfloat16", "float32", "float64", "complex64",
]
BOOL = ["bool_"]
UINTS = ["uint8", "uint16", "uint32", "uint64"]
SINTS = ["int8", "int16", "int32", "int64"]
INTS = UINTS + SINTS
FLOATS = ["float16", "bfloat16", "float32", "float64"]
REALS = BOOL + INTS + FLOATS
NUMERIC = INTS + FLOATS + ["complex64"]

_NP_DTYPE = {
    "bool_": np.bool_, "uint8": np.uint8, "uint16": np.uint16,
    "uint32": np.uint32, "uint64": np.uint64, "int8": np.int8,
    "int16": np.int16, "int32": np.int32, "int64": np.int64,
    "float16": np.float16, "bfloat16": np.float32, "float32": np.float32,
    "float64": np.float64, "complex64": np.complex64,
}


def dname(dt) -> str:
    """'float32' for mlx.core.float32 / rmx.core.float32; 'bool' for bool_."""
    return str(dt).rsplit(".", 1)[-1]


def lib_dtype(m, name):
    return getattr(m, name)


def np_dtype(name):
    return _NP_DTYPE[name]


def kind(name):
    """'b', 'u', 'i', 'f' or 'c' for a dtype name ('bool' or 'bool_' ok)."""
    name = "bool_" if name == "bool" else name
    if name == "bool_":
        return "b"
    if name in UINTS:
        return "u"
    if name in SINTS:
        return "i"
    if name in FLOATS:
        return "f"
    if name == "complex64":
        return "c"
    raise KeyError(name)


# --------------------------------------------------------------------------
# input generation

def rng(seed=0):
    return np.random.default_rng(seed)


def rand(shape, dtype="float32", *, seed=0, low=None, high=None, special=False):
    """Random NumPy data suited to ``dtype`` (bfloat16 -> float32 data).

    Integers are drawn from a small range that keeps most ops in range;
    ``low``/``high`` override it.  ``special`` mixes NaN/inf/-0/huge/tiny
    values into floating data.
    """
    g = rng(seed)
    shape = tuple(shape) if not isinstance(shape, int) else (shape,)
    k = kind(dtype)
    if k == "b":
        return g.random(shape) < 0.5
    if k in "ui":
        info = np.iinfo(np_dtype(dtype))
        lo = 0 if k == "u" else -20
        hi = 20
        lo = lo if low is None else low
        hi = hi if high is None else high
        lo, hi = max(lo, int(info.min)), min(hi, int(info.max))
        return g.integers(lo, hi, size=shape, endpoint=True).astype(np_dtype(dtype))
    lo = -3.0 if low is None else low
    hi = 3.0 if high is None else high
    if k == "c":
        x = g.uniform(lo, hi, shape) + 1j * g.uniform(lo, hi, shape)
        x = x.astype(np.complex64)
    else:
        x = g.uniform(lo, hi, shape).astype(np_dtype(dtype))
    if special and x.size:
        flat = x.reshape(-1)
        vals = [np.nan, np.inf, -np.inf, -0.0, 0.0]
        if dtype in ("float32", "bfloat16"):
            vals += [3e38, -3e38, 1e-38, 1e-44]
        elif dtype == "float64":
            vals += [1e300, -1e300, 1e-300, 5e-324]
        elif dtype == "float16":
            vals += [65000.0, -65000.0, 6e-5, 6e-8]
        idx = g.choice(flat.size, size=min(flat.size, len(vals)), replace=False)
        for i, v in zip(idx, vals):
            flat[i] = v
    return x


class A:
    """An array input: NumPy data + target dtype name + optional view.

    ``view`` is a callable ``(x) -> x`` applied after creation (to both the
    library arrays and the NumPy copy), e.g. ``lambda x: x.T`` or
    ``lambda x: x[::2, ::-1]`` to get non-contiguous views.
    """

    def __init__(self, data, dtype=None, view=None):
        data = np.asarray(data)
        if dtype is None:
            dtype = {
                "bool": "bool_", "float64": "float64", "complex128": "complex64",
            }.get(data.dtype.name, data.dtype.name)
        self.data = data
        self.dtype = dtype
        self.view = view

    def make(self, m):
        x = m.array(self.data, dtype=lib_dtype(m, self.dtype))
        if self.view is not None:
            x = self.view(x)
        return x

    def __repr__(self):
        v = "" if self.view is None else ",view"
        return f"A({self.dtype}{list(self.data.shape)}{v})"


def _materialize(obj, m):
    if isinstance(obj, A):
        return obj.make(m)
    if isinstance(obj, list):
        return [_materialize(o, m) for o in obj]
    if isinstance(obj, tuple):
        return tuple(_materialize(o, m) for o in obj)
    if isinstance(obj, dict):
        return {k: _materialize(v, m) for k, v in obj.items()}
    return obj


# --------------------------------------------------------------------------
# conversion & comparison

def is_array(x, m=None):
    if m is not None:
        return isinstance(x, m.array)
    return isinstance(x, REF.array) or (_RMX is not None and isinstance(x, _RMX.array))


def to_numpy(x, m=None):
    """NumPy copy of a library array (bfloat16 goes through float32)."""
    if m is None:
        m = REF if isinstance(x, REF.array) else get_rmx()
    if dname(x.dtype) == "bfloat16":
        x = x.astype(m.float32)
    return np.array(x)


def exc_kind(e):
    """The most derived *builtin* exception class of e (e.g. ValueError)."""
    for c in type(e).__mro__:
        if c.__module__ == "builtins":
            return c
    return type(e)


def _evaluate(m, out):
    arrs = []

    def walk(o):
        if isinstance(o, m.array):
            arrs.append(o)
        elif isinstance(o, (list, tuple)):
            for v in o:
                walk(v)
        elif isinstance(o, dict):
            for v in o.values():
                walk(v)

    walk(out)
    if arrs:
        m.eval(*arrs)


def run(fn, m, args):
    """Call fn(m, *args) and evaluate the result; returns (result, exception)."""
    try:
        out = fn(m, *args)
        _evaluate(m, out)
        return out, None
    except Exception as e:  # noqa: BLE001 - exceptions are compared
        return None, e


DEFAULT_TOL = {
    "float16": (2e-3, 2e-3),
    "bfloat16": (1.6e-2, 1.6e-2),
    "float32": (2e-5, 1e-6),
    "complex64": (2e-5, 1e-6),
    "float64": (1e-12, 1e-14),
}


def tol_for(dtype_name, rtol=None, atol=None):
    r, a = DEFAULT_TOL.get(dtype_name, (0.0, 0.0))
    return (r if rtol is None else rtol), (a if atol is None else atol)


def assert_values(got, exp, dtype_name, rtol=None, atol=None, where="", exact=None):
    """Compare two NumPy arrays of library values."""
    got = np.asarray(got)
    exp = np.asarray(exp)
    assert got.shape == exp.shape, f"{where}: shape {got.shape} != {exp.shape}"
    k = kind(dtype_name)
    if k in "bui" or exact:
        if k in "bui":
            ok = np.array_equal(got, exp)
        else:
            ok = np.array_equal(got, exp, equal_nan=True)
        if not ok:
            bad = np.argwhere(got != exp)[:5]
            raise AssertionError(
                f"{where}: values differ ({dtype_name}) at {bad.tolist()}\n"
                f"got={_short(got)}\nexp={_short(exp)}")
        return
    rtol, atol = tol_for(dtype_name, rtol, atol)
    parts = [(got.real, exp.real), (got.imag, exp.imag)] if k == "c" else [(got, exp)]
    for g, e in parts:
        g = g.astype(np.float64)
        e = e.astype(np.float64)
        gn, en = np.isnan(g), np.isnan(e)
        if not np.array_equal(gn, en):
            raise AssertionError(
                f"{where}: NaN positions differ\ngot={_short(got)}\nexp={_short(exp)}")
        gi, ei = np.isinf(g), np.isinf(e)
        if not np.array_equal(gi, ei) or not np.array_equal(g[gi], e[ei]):
            raise AssertionError(
                f"{where}: inf positions differ\ngot={_short(got)}\nexp={_short(exp)}")
        fin = ~(gn | gi)
        with np.errstate(all="ignore"):
            close = np.abs(g[fin] - e[fin]) <= atol + rtol * np.abs(e[fin])
        if not np.all(close):
            gf, ef = g[fin], e[fin]
            i = np.argmax(np.abs(gf - ef) - rtol * np.abs(ef))
            raise AssertionError(
                f"{where}: values not close ({dtype_name}, rtol={rtol}, atol={atol}); "
                f"worst got={gf[i]!r} exp={ef[i]!r}\ngot={_short(got)}\nexp={_short(exp)}")


def _short(x):
    with np.printoptions(threshold=40, edgeitems=4):
        return repr(x)


def _norm_str(s):
    return s.replace("rmx.core", "mlx.core")


def assert_same(got, exp, rtol=None, atol=None, where="result", exact=None):
    """Structural comparison of an rmx result with an mlx result."""
    rx = get_rmx()
    if isinstance(exp, REF.array):
        assert isinstance(got, rx.array), f"{where}: expected an array, got {type(got)!r}"
        assert tuple(got.shape) == tuple(exp.shape), \
            f"{where}: shape {tuple(got.shape)} != {tuple(exp.shape)}"
        gd, ed = dname(got.dtype), dname(exp.dtype)
        assert gd == ed, f"{where}: dtype {gd} != {ed}"
        g, e = to_numpy(got, rx), to_numpy(exp, REF)
        assert g.dtype == e.dtype, f"{where}: numpy dtype {g.dtype} != {e.dtype}"
        assert_values(g, e, ed, rtol, atol, where, exact)
        return
    if isinstance(exp, REF.Dtype):
        assert isinstance(got, rx.Dtype), f"{where}: expected Dtype, got {type(got)!r}"
        assert dname(got) == dname(exp), f"{where}: {got} != {exp}"
        return
    if isinstance(exp, REF.DtypeCategory):
        assert type(got).__name__ == "DtypeCategory", f"{where}: {type(got)!r}"
        assert got.name == exp.name, f"{where}: {got} != {exp}"
        return
    if isinstance(exp, (list, tuple)):
        assert type(got) is type(exp), f"{where}: {type(got).__name__} != {type(exp).__name__}"
        assert len(got) == len(exp), f"{where}: len {len(got)} != {len(exp)}"
        for i, (g, e) in enumerate(zip(got, exp)):
            assert_same(g, e, rtol, atol, f"{where}[{i}]", exact)
        return
    if isinstance(exp, dict):
        assert isinstance(got, dict), f"{where}: {type(got)!r}"
        assert list(got.keys()) == list(exp.keys()), f"{where}: keys differ"
        for k in exp:
            assert_same(got[k], exp[k], rtol, atol, f"{where}[{k!r}]", exact)
        return
    if isinstance(exp, (bool, int, float, complex, str, bytes, type(None))):
        assert type(got) is type(exp), \
            f"{where}: type {type(got).__name__} != {type(exp).__name__} ({got!r} vs {exp!r})"
        if isinstance(exp, float):
            if math.isnan(exp):
                assert math.isnan(got), f"{where}: {got!r} != nan"
            else:
                r = 0.0 if rtol is None else rtol
                a = 0.0 if atol is None else atol
                assert got == exp or abs(got - exp) <= a + r * abs(exp), \
                    f"{where}: {got!r} != {exp!r}"
        elif isinstance(exp, str):
            assert _norm_str(got) == _norm_str(exp), f"{where}: {got!r} != {exp!r}"
        else:
            assert got == exp, f"{where}: {got!r} != {exp!r}"
        return
    raise AssertionError(f"{where}: don't know how to compare {type(exp)!r}")


def check(fn, *inputs, rtol=None, atol=None, np_fn=None, np_rtol=None,
          np_atol=None, exact=None, expect_error=None):
    """Differential check of ``fn(lib, *inputs)``; returns the rmx result.

    expect_error: if given (an exception class), MLX itself must raise that
    builtin type -- guards the test's intent against silent changes.
    """
    rx = get_rmx()
    xr = _materialize(inputs, rx)
    xm = _materialize(inputs, REF)
    got, gerr = run(fn, rx, xr)
    exp, eerr = run(fn, REF, xm)
    if expect_error is not None:
        assert eerr is not None and issubclass(exc_kind(eerr), expect_error), \
            f"test premise: MLX should raise {expect_error.__name__}, got {eerr!r} / {exp!r}"
    if eerr is not None or gerr is not None:
        if eerr is None:
            raise AssertionError(f"rmx raised {type(gerr).__name__}: {gerr}; "
                                 f"mlx returned {_brief(exp)}") from gerr
        if gerr is None:
            raise AssertionError(
                f"mlx raised {type(eerr).__name__}: {eerr}; rmx returned {_brief(got)}")
        gk, ek = exc_kind(gerr), exc_kind(eerr)
        assert gk is ek, (f"exception type differs: rmx {gk.__name__}({gerr}) vs "
                          f"mlx {ek.__name__}({eerr})")
        return None
    assert_same(got, exp, rtol, atol, exact=exact)
    if np_fn is not None:
        nin = [_np_input(i) for i in inputs]
        with np.errstate(all="ignore"):
            ref = np_fn(*nin)
        _compare_np(got, ref, np_rtol, np_atol, rtol, atol)
    return got


def check_raises(fn, *inputs, err=None):
    """Both libraries must raise the same builtin exception type (err if given)."""
    return check(fn, *inputs, expect_error=err or Exception)


def _brief(x):
    try:
        return repr(x)[:300]
    except Exception:  # noqa: BLE001
        return object.__repr__(x)


def _np_input(i):
    """Float64/complex128 NumPy copy of the *exact* values mlx holds."""
    if isinstance(i, A):
        x = to_numpy(i.make(REF), REF)
        if x.dtype.kind == "f":
            x = x.astype(np.float64)
        elif x.dtype.kind == "c":
            x = x.astype(np.complex128)
        return x
    if isinstance(i, (list, tuple)):
        return type(i)(_np_input(v) for v in i)
    return i


def _compare_np(got, ref, np_rtol, np_atol, rtol, atol):
    rx = get_rmx()
    if isinstance(got, (list, tuple)):
        assert len(got) == len(ref)
        for g, r in zip(got, ref):
            _compare_np(g, r, np_rtol, np_atol, rtol, atol)
        return
    g = to_numpy(got, rx)
    ref = np.asarray(ref)
    assert g.shape == ref.shape, f"numpy reference: shape {g.shape} != {ref.shape}"
    name = dname(got.dtype)
    r, a = tol_for(name, rtol, atol)
    r = r if np_rtol is None else np_rtol
    a = a if np_atol is None else np_atol
    if kind(name) in "bui":
        assert np.array_equal(g, ref.astype(g.dtype)), \
            f"numpy reference differs\ngot={_short(g)}\nref={_short(ref)}"
    else:
        assert_values(g, ref, name if name in DEFAULT_TOL else "float64", r, a,
                      "numpy reference")


def check_meta(fn, *inputs):
    """Compare only shapes/dtypes (and exception types) WITHOUT evaluating.

    For cases where evaluating MLX itself is unreliable (e.g. MLX reductions
    over zero-length axes read uninitialised memory and can spin for seconds).
    Returns the (unevaluated) rmx result.
    """
    rx = get_rmx()
    xr = _materialize(inputs, rx)
    xm = _materialize(inputs, REF)
    res = []
    for m, xs in ((rx, xr), (REF, xm)):
        try:
            res.append((fn(m, *xs), None))
        except Exception as e:  # noqa: BLE001
            res.append((None, e))
    (got, gerr), (exp, eerr) = res
    if gerr is not None or eerr is not None:
        assert gerr is not None and eerr is not None, f"rmx: {gerr!r} / mlx: {eerr!r}"
        assert exc_kind(gerr) is exc_kind(eerr), f"rmx: {gerr!r} / mlx: {eerr!r}"
        return None

    def walk(g, e, where):
        if isinstance(e, REF.array):
            assert isinstance(g, rx.array), where
            assert tuple(g.shape) == tuple(e.shape), f"{where}: {g.shape} != {e.shape}"
            assert dname(g.dtype) == dname(e.dtype), f"{where}: {g.dtype} != {e.dtype}"
        elif isinstance(e, (list, tuple)):
            assert type(g) is type(e) and len(g) == len(e), where
            for i, (gg, ee) in enumerate(zip(g, e)):
                walk(gg, ee, f"{where}[{i}]")
        else:
            assert_same(g, e, where=where)
    walk(got, exp, "result")
    return got


def check_np(fn_rmx, np_fn, *inputs, rtol=None, atol=None, dtype=None):
    """rmx-only comparison with NumPy (for behaviour MLX lacks)."""
    rx = get_rmx()
    xr = _materialize(inputs, rx)
    xn = [i.view(i.data.copy()) if isinstance(i, A) and i.view else
          (i.data.copy() if isinstance(i, A) else i) for i in inputs]
    got = fn_rmx(rx, *xr)
    ref = np.asarray(np_fn(*xn))
    g = to_numpy(got, rx)
    assert g.shape == ref.shape, f"shape {g.shape} != numpy {ref.shape}"
    if dtype is not None:
        assert dname(got.dtype) == dtype
    assert_values(g, ref, dname(got.dtype), rtol, atol, "numpy")
    return got


def both():
    """(rmx, mlx) pair for tests that need to drive both libraries by hand."""
    return get_rmx(), REF
