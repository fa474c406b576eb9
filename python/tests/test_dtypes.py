"""Dtype objects, categories, issubdtype/isdtype, finfo/iinfo, astype/view, promotion table."""

import numpy as np
import pytest

from diff import A, DTYPES, FLOATS, INTS, REF, check, check_raises, dname, get_rmx, rand

CATEGORIES = ["complexfloating", "floating", "inexact", "signedinteger", "unsignedinteger", "integer",
              "number", "generic"]


def test_dtype_names_exist():
    rx = get_rmx()
    for name in DTYPES + CATEGORIES + ["Dtype", "DtypeCategory", "finfo", "iinfo"]:
        assert hasattr(rx, name), name


@pytest.mark.parametrize("dt", DTYPES)
def test_dtype_object(dt):
    check(lambda m: getattr(m, dt).size)
    check(lambda m: dname(getattr(m, dt)))
    check(lambda m: getattr(m, dt) == getattr(m, dt))
    check(lambda m: getattr(m, dt) != getattr(m, "float32"))
    check(lambda m: getattr(m, dt) == "float32")
    check(lambda m: hash(getattr(m, dt)) == hash(getattr(m, dt)))
    check(lambda m: type(getattr(m, dt)).__name__)
    check(lambda m: m.zeros((1,), getattr(m, dt)).dtype)
    check(lambda m: m.zeros((2,), getattr(m, dt)).dtype == getattr(m, dt))


@pytest.mark.parametrize("dt", DTYPES)
def test_dtype_repr(dt):
    """repr/str of a Dtype is '<module>.<name>' (mlx.core.float32 / rmx.core.float32)."""
    check(lambda m: repr(getattr(m, dt)))
    check(lambda m: str(getattr(m, dt)))


def test_dtype_not_orderable_and_in_containers():
    check(lambda m: m.float32 < m.float64)
    check(lambda m: len({m.float32, m.float32, m.int8}))
    check(lambda m: {m.int8: 1}[m.int8])
    check(lambda m: m.float32 in [m.int8, m.float32])


@pytest.mark.parametrize("cat", CATEGORIES)
def test_categories(cat):
    check(lambda m: getattr(m, cat))
    check(lambda m: repr(getattr(m, cat)).replace("rmx", "mlx"))
    check(lambda m: getattr(m, cat).name)
    check(lambda m: getattr(m, cat) == getattr(m, cat))
    check(lambda m: type(getattr(m, cat)).__name__)


def test_category_enum():
    check(lambda m: [c.name for c in m.DtypeCategory])
    check(lambda m: m.DtypeCategory.floating is m.floating)


@pytest.mark.parametrize("b", DTYPES + CATEGORIES)
@pytest.mark.parametrize("a", DTYPES + CATEGORIES)
def test_issubdtype(a, b):
    check(lambda m: m.issubdtype(getattr(m, a), getattr(m, b)))


KINDS = ["bool", "signed integer", "unsigned integer", "integral", "real floating", "complex floating",
         "numeric"]


@pytest.mark.parametrize("kind", KINDS + [("bool", "integral"), ("real floating", "complex floating")],
                         ids=repr)
@pytest.mark.parametrize("dt", DTYPES)
def test_isdtype(dt, kind):
    check(lambda m: m.isdtype(getattr(m, dt), kind))


def test_isdtype_dtype_kinds_and_errors():
    check(lambda m: m.isdtype(m.int8, m.int8))
    check(lambda m: m.isdtype(m.int8, (m.float32, "integral")))
    check(lambda m: m.isdtype(m.int8, m.float32))
    check_raises(lambda m: m.isdtype(m.int8, "xx"), err=ValueError)


# ----------------------------------------------------------- finfo / iinfo

@pytest.mark.parametrize("dt", FLOATS + ["complex64"])
def test_finfo(dt):
    for attr in ["min", "max", "eps", "smallest_normal", "bits", "dtype"]:
        check(lambda m: getattr(m.finfo(getattr(m, dt)), attr))
    check(lambda m: repr(m.finfo(getattr(m, dt))))
    check(lambda m: str(m.finfo(getattr(m, dt))))
    check(lambda m: type(m.finfo(getattr(m, dt))).__name__)


@pytest.mark.parametrize("dt", ["float32", "float16", "bfloat16", "float64"])
def test_finfo_matches_numpy(dt):
    rx = get_rmx()
    fi = rx.finfo(getattr(rx, dt))
    if dt == "bfloat16":
        assert fi.eps == 2.0 ** -7 and fi.max == float.fromhex("0x1.fep127")
        return
    ni = np.finfo(getattr(np, dt))
    assert fi.eps == float(ni.eps)
    assert fi.max == float(ni.max) and fi.min == float(ni.min)
    assert fi.smallest_normal == float(ni.smallest_normal)
    assert fi.bits == ni.bits


@pytest.mark.parametrize("dt", INTS)
def test_iinfo(dt):
    for attr in ["min", "max", "dtype"]:
        check(lambda m: getattr(m.iinfo(getattr(m, dt)), attr))
    check(lambda m: repr(m.iinfo(getattr(m, dt))))
    rx = get_rmx()
    ii, ni = rx.iinfo(getattr(rx, dt)), np.iinfo(getattr(np, dt))
    assert (ii.min, ii.max) == (int(ni.min), int(ni.max))


@pytest.mark.parametrize("dt", ["bool_", "int32", "uint8"])
def test_finfo_non_inexact_raises(dt):
    check_raises(lambda m: m.finfo(getattr(m, dt)), err=ValueError)


@pytest.mark.parametrize("dt", ["bool_", "float32", "complex64", "bfloat16"])
def test_iinfo_non_integer_raises(dt):
    check_raises(lambda m: m.iinfo(getattr(m, dt)), err=ValueError)


def test_finfo_bad_arguments():
    check_raises(lambda m: m.finfo(m.array([1.0])), err=TypeError)
    check_raises(lambda m: m.finfo(m.floating), err=TypeError)


# ------------------------------------------------------------------ astype

CAST_VALUES = {
    "float": np.array([0.0, -0.0, 1.5, -1.5, 2.5, -2.5, 0.49, 100.7, -100.7, 1e-3], np.float32),
    "special": np.array([np.nan, np.inf, -np.inf, 65504.0, 70000.0, 1e-8, -1e-45], np.float32),
    "int": np.array([0, 1, -1, 127, -128, 255, 256, 32767, -32768, 65535], np.int32),
    "int64": np.array([0, -1, 2**31, -2**31 - 1, 2**40, 2**53 + 1, 2**63 - 1], np.int64),
    "bool": np.array([True, False, True]),
    "complex": np.array([1 + 2j, -3.5 - 0.5j, 0j], np.complex64),
}
# float -> integer conversions of values outside the target range are UB in
# C++ and differ between MLX builds; only in-range values are compared here.
UNSAFE = {("special", k) for k in INTS}


@pytest.mark.parametrize("src", sorted(CAST_VALUES))
@pytest.mark.parametrize("dst", DTYPES)
def test_astype(src, dst):
    data = CAST_VALUES[src]
    if (src, dst) in UNSAFE:
        data = data[np.isfinite(data)] if data.dtype.kind == "f" else data
        data = data[np.abs(data.astype(np.float64)) < 100] if dst in INTS else data
    if src == "float" and dst in ("uint8", "uint16", "uint32", "uint64"):
        data = np.abs(data)
    if src == "float" and dst in INTS:
        data = data[np.abs(data) < 127]
    x = A(data)
    check(lambda m, a: a.astype(getattr(m, dst)), x)
    check(lambda m, a: m.astype(a, getattr(m, dst)), x)
    check(lambda m, a: a.astype(dtype=getattr(m, dst)), x)


@pytest.mark.parametrize("src", DTYPES)
@pytest.mark.parametrize("dst", DTYPES)
def test_astype_all_pairs(src, dst):
    x = A(rand((3, 4), src, seed=3, low=0, high=60), src, view=lambda a: a.T)
    check(lambda m, a: a.astype(getattr(m, dst)), x)


def test_astype_specifics():
    check(lambda m: m.array([1.5, -2.5]).astype(m.bool_))
    check(lambda m: m.array([float("nan")]).astype(m.bool_))
    check(lambda m: m.array([1 + 2j]).astype(m.float32))
    check(lambda m: m.array([-1]).astype(m.uint32))
    check(lambda m: m.array([70000]).astype(m.float16))
    check(lambda m: m.array([1.1]).astype(m.bfloat16))
    check(lambda m: m.array([-2.5, 1.5]).astype(m.uint8))      # MLX: 254 (converts through int)
    check(lambda m: m.array([300.7]).astype(m.uint8))          # MLX: 44
    check(lambda m: m.array([2**24 + 1], m.int32).astype(m.float32))
    check(lambda m: m.array([0.1], m.float64).astype(m.float16))
    check(lambda m: m.array([1e-8, 3e-8, 6e-5], m.float32).astype(m.float16))   # subnormals / rounding
    check(lambda m: m.array([1.00390625, 1.01171875], m.float32).astype(m.bfloat16))  # round-half-even


def test_astype_bad_dtype_argument():
    check_raises(lambda m: m.array([1]).astype("float32"), err=TypeError)
    check_raises(lambda m: m.array([1]).astype(np.float32), err=TypeError)


# -------------------------------------------------------------------- view

@pytest.mark.parametrize("src", DTYPES)
@pytest.mark.parametrize("dst", DTYPES)
def test_view_all_pairs(src, dst):
    """Bit-casts; shapes change when itemsizes differ (last axis must divide)."""
    x = A(rand((2, 8), src, seed=4, low=0, high=50), src)
    check(lambda m, a: a.view(getattr(m, dst)), x, exact=True)
    check(lambda m, a: m.view(a, getattr(m, dst)), x, exact=True)
    check(lambda m, a: a.view(getattr(m, dst)).view(m.uint8), x)   # bit-exact


def test_view_specifics():
    check(lambda m: m.array([1.0]).view(m.int32))
    check(lambda m: m.array([1.0, 2.0, 3.0]).view(m.int64))           # ValueError
    check(lambda m: m.array(1.0).view(m.int8))                          # ValueError (0-d)
    check(lambda m: m.array(1.0).view(m.int32))
    check(lambda m: m.array([[1.0, 2.0], [3, 4]]).T.view(m.int32))
    check(lambda m: m.array([[1.0, 2.0], [3, 4]]).T.view(m.int16))
    check(lambda m: m.array([1 + 1j]).view(m.float32))
    check(lambda m: m.array([True, False]).view(m.uint8))
    check(lambda m: m.array([1.0, -0.0, float("inf")], m.float32).view(m.uint32))


# -------------------------------------------------------------- promotion

@pytest.mark.parametrize("b", DTYPES)
@pytest.mark.parametrize("a", DTYPES)
def test_promotion_table(a, b):
    """The full 14x14 table via (zeros(1, a) + zeros(1, b)).dtype and result_type."""
    check(lambda m: (m.zeros(1, getattr(m, a)) + m.zeros(1, getattr(m, b))).dtype)
    check(lambda m: m.result_type(getattr(m, a), getattr(m, b)))
    check(lambda m: m.result_type(m.zeros(1, getattr(m, a)), getattr(m, b)))
    check(lambda m: m.can_cast(getattr(m, a), getattr(m, b)))


def test_promotion_table_is_symmetric():
    rx = get_rmx()
    for a in DTYPES:
        for b in DTYPES:
            ra = rx.result_type(getattr(rx, a), getattr(rx, b))
            rb = rx.result_type(getattr(rx, b), getattr(rx, a))
            assert dname(ra) == dname(rb), (a, b)


def test_result_type_variadic_and_errors():
    check(lambda m: m.result_type(m.int8, m.uint8, m.float16))
    check(lambda m: m.result_type(m.array([1], m.int8)))
    check(lambda m: m.can_cast(m.array([1]), m.float32))
    check_raises(lambda m: m.result_type(), err=ValueError)
    check_raises(lambda m: m.result_type(1, 2.0), err=ValueError)
    check_raises(lambda m: m.result_type(m.array([1], m.int8), 1), err=ValueError)


def test_reference_promotion_sanity():
    """A few entries pinned against MLX itself (guards the harness, not rmx)."""
    def rt(a, b):
        return dname((REF.zeros(1, getattr(REF, a)) + REF.zeros(1, getattr(REF, b))).dtype)
    assert rt("uint64", "int64") == "float32"
    assert rt("int64", "float16") == "float16"
    assert rt("float16", "bfloat16") == "float32"
    assert rt("uint32", "int32") == "int64"
    assert rt("float64", "complex64") == "complex64"


def test_bfloat16_nans_are_positive_as_mlx():
    """MLX turns every NaN into bfloat16's positive quiet NaN 0x7fc0 (0/0 on x86 is a
    negative NaN in float32); the bits show through `view` and `to_fp8`."""
    z = A(np.zeros(4, np.float32))
    nan = A(np.array([np.nan, -np.nan, 1.0, np.inf], np.float32))
    check(lambda m, a: (a.astype(m.bfloat16) / a.astype(m.bfloat16)).view(m.uint16), z, exact=True)
    check(lambda m, a: a.astype(m.bfloat16).view(m.uint16), nan, exact=True)
    check(lambda m, a: m.to_fp8(a.astype(m.bfloat16)), nan, exact=True)
    check(lambda m, a: m.exp(a.astype(m.bfloat16) * m.array(np.inf, m.bfloat16) - np.inf).view(m.uint16), z,
          exact=True)
    w = A(np.array([0.0, np.inf, 1.0, -2.0] + [0.5] * 28, np.float32).reshape(1, 32))
    check(lambda m, a: m.quantize(a.astype(m.bfloat16), mode="mxfp8"), w, exact=True)
