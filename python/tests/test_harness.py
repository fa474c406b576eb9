"""Self-tests of the differential harness (diff.py): it must detect mismatches."""

import itertools

import numpy as np
import pytest

from diff import A, REF, assert_same, check, exc_kind, get_rmx, rand


def _nth_call(*results):
    """fn(m) returning/raising results[k] on the k-th call (rmx is called first)."""
    it = itertools.count()

    def fn(m):
        r = results[next(it)]
        if isinstance(r, BaseException):
            raise r
        return r(m) if callable(r) else r
    return fn


@pytest.mark.parametrize("got,exp", [
    ("rx.array([1], rx.int32)", "REF.array([1], REF.int64)"),                # dtype
    ("rx.array([1, 2])", "REF.array([1, 3])"),                              # value
    ("rx.array([1.0, 2.0])", "REF.array([1.0, 2.001])"),                    # float value
    ("rx.array([1.0])", "REF.array([float('nan')])"),                        # NaN position
    ("rx.array([float('inf')])", "REF.array([-float('inf')])"),              # inf sign
    ("rx.array([1, 2])", "REF.array([[1, 2]])"),                            # shape
    ("[rx.array(1)]", "(REF.array(1),)"),                                    # list vs tuple
    ("1", "1.0"),                                                           # python types
    ("True", "1"),
    ("rx.float32", "REF.float16"),                                          # dtypes
    ("'a'", "'b'"),
    ("rx.array([1.0], rx.bfloat16)", "REF.array([1.5], REF.bfloat16)"),
    ("rx.array([1+1j])", "REF.array([1-1j])"),
    ("rx.array(1)", "1"),
    ("{'a': rx.array(1)}", "{'b': REF.array(1)}"),
])
def test_assert_same_detects(got, exp):
    rx = get_rmx()
    env = {"rx": rx, "REF": REF}
    with pytest.raises(AssertionError):
        assert_same(eval(got, env), eval(exp, env))


def test_assert_same_accepts_equal():
    rx = get_rmx()
    assert_same(rx.array([1.0, float("nan"), -float("inf")]), REF.array([1.0, float("nan"), -float("inf")]))
    assert_same((rx.array([1], rx.uint8), [rx.float16, 2.5]), (REF.array([1], REF.uint8), [REF.float16, 2.5]))
    assert_same(rx.array([1.0], rx.float32), REF.array([1.0 + 1e-7], REF.float32))


def test_check_detects_exception_type_mismatch():
    with pytest.raises(AssertionError):
        check(_nth_call(TypeError("x"), ValueError("y")))
    with pytest.raises(AssertionError):
        check(_nth_call(lambda m: m.array(1), ValueError("y")))       # only mlx raises
    with pytest.raises(AssertionError):
        check(_nth_call(ValueError("x"), lambda m: m.array(1)))       # only rmx raises
    check(_nth_call(ValueError("x"), ValueError("y")))


def test_check_expect_error_premise():
    with pytest.raises(AssertionError):
        check(lambda m: m.array(1), expect_error=ValueError)


def test_check_numpy_reference_detects():
    with pytest.raises(AssertionError):
        check(lambda m, a: m.exp(a), A(rand((3,), "float32")), np_fn=np.sin)


def test_exc_kind_maps_to_builtin():
    class MyErr(IndexError):
        pass
    assert exc_kind(MyErr()) is IndexError
    assert exc_kind(ValueError()) is ValueError


def test_inputs_are_materialised_per_library():
    seen = []

    def fn(m, a):
        seen.append(type(a).__module__)
        return a
    check(fn, A(rand((2,), "float32")))
    rx = get_rmx()
    assert seen == [rx.array.__module__, REF.array.__module__]
