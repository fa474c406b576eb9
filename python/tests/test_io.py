"""Save/load (npy, npz, safetensors, GGUF) against MLX, NumPy, the safetensors and gguf
packages: files written by each load in the others with identical bits and metadata."""

from __future__ import annotations

import io
import json
import os
import struct
import time

import numpy as np
import pytest

import mlx.core as MX
from diff import get_rmx

gguf = pytest.importorskip("gguf")
st_numpy = pytest.importorskip("safetensors.numpy")

DTYPES = ["bool_", "uint8", "uint16", "uint32", "uint64", "int8", "int16", "int32",
          "int64", "float16", "bfloat16", "float32", "float64", "complex64"]
SHAPES = [(), (0,), (3,), (2, 3), (2, 0, 3), (1, 4), (2, 3, 4)]


@pytest.fixture
def mx():
    return get_rmx()


def make(lib, dtype, shape, seed=0):
    """The same values in either library, built from NumPy bits."""
    rng = np.random.default_rng(seed)
    n = int(np.prod(shape))
    if dtype == "bool_":
        return lib.array(rng.integers(0, 2, n).astype(bool).reshape(shape))
    if dtype == "bfloat16":
        bits = rng.integers(0, 1 << 16, n, dtype=np.uint32).astype(np.uint16)
        return lib.view(lib.array(bits.reshape(shape)), lib.bfloat16)
    if dtype == "complex64":
        return lib.array((rng.standard_normal(n) + 1j * rng.standard_normal(n))
                         .astype(np.complex64).reshape(shape))
    npdt = np.dtype(dtype)
    if npdt.kind in "iu":
        info = np.iinfo(npdt)
        v = rng.integers(info.min, info.max, n, dtype=npdt, endpoint=True)
    else:
        v = rng.integers(0, 1 << (8 * npdt.itemsize), n, dtype=np.uint64).astype(
            {2: np.uint16, 4: np.uint32, 8: np.uint64}[npdt.itemsize]).view(npdt)
    return lib.array(v.reshape(shape))


def bits(a):
    """(shape, dtype name, raw bytes) of an rmx or MLX array."""
    lib = MX if type(a).__module__.startswith("mlx") else get_rmx()
    name = str(a.dtype).split(".")[-1]
    if name == "bfloat16":
        a = lib.view(a, lib.uint16)
    return tuple(a.shape), name, np.ascontiguousarray(np.array(a)).tobytes()


def assert_same(x, y):
    assert bits(x) == bits(y)


def assert_same_dict(d1, d2):
    assert sorted(d1) == sorted(d2)
    for k in d1:
        if isinstance(d1[k], (str, list)):
            assert d1[k] == d2[k], k
        else:
            assert_same(d1[k], d2[k])


# ---------------------------------------------------------------- npy

@pytest.mark.parametrize("dtype", DTYPES)
def test_npy_roundtrip_every_dtype_and_shape(mx, tmp_path, dtype):
    for shape in SHAPES:
        r, m = make(mx, dtype, shape), make(MX, dtype, shape)
        mx.save(str(tmp_path / "r.npy"), r)
        MX.save(str(tmp_path / "m.npy"), m)
        # Byte for byte the file MLX writes (header, padding, fortran_order, data).
        assert (tmp_path / "r.npy").read_bytes() == (tmp_path / "m.npy").read_bytes()
        assert_same(mx.load(str(tmp_path / "m.npy")), m)
        assert_same(MX.load(str(tmp_path / "r.npy")), m)
        if dtype != "bfloat16":
            assert np.array_equal(np.load(tmp_path / "r.npy"), np.array(m), equal_nan=True)


@pytest.mark.parametrize("view", ["T", "slice", "broadcast", "perm", "fullT"])
def test_npy_non_contiguous(mx, tmp_path, view):
    def build(lib):
        x = lib.arange(24).reshape(2, 3, 4)
        return {"T": lambda: x.reshape(6, 4).T, "slice": lambda: x[:, ::2, 1:3],
                "broadcast": lambda: lib.broadcast_to(lib.arange(4), (3, 4)),
                "perm": lambda: x.transpose(2, 0, 1), "fullT": lambda: x.transpose(2, 1, 0)}[view]()
    mx.save(str(tmp_path / "r.npy"), build(mx))
    MX.save(str(tmp_path / "m.npy"), build(MX))
    assert (tmp_path / "r.npy").read_bytes() == (tmp_path / "m.npy").read_bytes()
    assert_same(mx.load(str(tmp_path / "r.npy")), build(MX))


NUMPY_DTYPES = ["?", "u1", "<u2", "<u4", "<u8", "i1", "<i2", "<i4", "<i8", "<f2", "<f4",
                "<f8", "<c8", ">i2", ">u4", ">i8", ">f2", ">f4", ">f8"]


@pytest.mark.parametrize("dt", NUMPY_DTYPES)
def test_npy_written_by_numpy(mx, dt):
    rng = np.random.default_rng(1)
    a = (rng.standard_normal((3, 4)) * 100).astype(dt)
    for order in ("C", "F"):
        for version in ((1, 0), (2, 0)):
            b = io.BytesIO()
            np.lib.format.write_array(b, np.asarray(a, order=order), version=version)
            got = mx.load(io.BytesIO(b.getvalue()), format="npy")
            want = MX.load(io.BytesIO(b.getvalue()), format="npy")
            assert_same(got, want)
            assert np.array_equal(np.array(got), a.astype(a.dtype.newbyteorder("=")))


def test_npy_big_endian_complex_swaps_parts_like_mlx(mx):
    # MLX reverses all 8 bytes of a big-endian complex64: real and imaginary trade places.
    b = io.BytesIO()
    np.save(b, np.array([1 + 2j, 3 - 4j], ">c8"))
    assert_same(mx.load(io.BytesIO(b.getvalue()), format="npy"),
                MX.load(io.BytesIO(b.getvalue()), format="npy"))


def test_npy_fortran_order_nd_is_a_column_major_view(mx, tmp_path):
    a = np.asfortranarray(np.arange(24, dtype=np.int16).reshape(2, 3, 4))
    np.save(tmp_path / "f.npy", a)
    got = mx.load(str(tmp_path / "f.npy"))
    assert np.array_equal(np.array(got), a)
    mx.save(str(tmp_path / "g.npy"), got)
    MX.save(str(tmp_path / "h.npy"), MX.load(str(tmp_path / "f.npy")))
    assert (tmp_path / "g.npy").read_bytes() == (tmp_path / "h.npy").read_bytes()


@pytest.mark.parametrize("dt", ["<c16", "<M8[s]", "<U3", "S3", "O"])
def test_npy_unsupported_dtypes_raise_like_mlx(mx, dt):
    b = io.BytesIO()
    arr = np.array([[1, 2]], dtype=object) if dt == "O" else np.zeros(2, dt)
    np.save(b, arr, allow_pickle=True)
    for lib in (mx, MX):
        with pytest.raises(ValueError):
            lib.load(io.BytesIO(b.getvalue()), format="npy")


def test_save_suffix_and_paths(mx, tmp_path):
    import pathlib
    x = mx.array([1, 2, 3])
    for name, saved in [("a", "a.npy"), ("b.npy", "b.npy"), ("c.NPY", "c.NPY.npy"),
                        ("d.txt", "d.txt.npy")]:
        mx.save(str(tmp_path / name), x)
        assert (tmp_path / saved).exists()
    mx.save(pathlib.Path(tmp_path / "e"), x)
    assert (tmp_path / "e.npy").exists()
    mx.savez(str(tmp_path / "f"), x)
    mx.savez(str(tmp_path / "g.NPZ"), x)
    mx.save_safetensors(str(tmp_path / "h"), {"x": x})
    mx.save_gguf(str(tmp_path / "i"), {"x": x})
    for f in ["f.npz", "g.NPZ.npz", "h.safetensors", "i.gguf"]:
        assert (tmp_path / f).exists(), f
    assert_same(mx.load(pathlib.Path(tmp_path / "i.gguf"))["x"], MX.array([1, 2, 3]))


def test_load_format_errors_like_mlx(mx, tmp_path):
    mx.save(str(tmp_path / "a.npy"), mx.array([1]))
    cases = [
        lambda l: l.load(str(tmp_path / "a")),
        lambda l: l.load(str(tmp_path / "a.npy"), format="bogus"),
        lambda l: l.load(str(tmp_path / "a.npy"), format=".npy"),
        lambda l: l.load(str(tmp_path / "a.npy"), format="NPY"),
        lambda l: l.load(str(tmp_path / "missing.npy")),
        lambda l: l.load(str(tmp_path / "missing.safetensors")),
        lambda l: l.load(str(tmp_path / "missing.gguf")),
        lambda l: l.load(str(tmp_path / "missing.npz")),
        lambda l: l.load(str(tmp_path / "a.npy"), format="npz"),
        lambda l: l.load(str(tmp_path / "a.npy"), format="safetensors"),
        lambda l: l.load(str(tmp_path / "a.npy"), format="gguf"),
        lambda l: l.load(str(tmp_path / "a.npy"), return_metadata=True),
        lambda l: l.load(3),
        lambda l: l.save(3, l.array([1])),
        lambda l: l.save_gguf(io.BytesIO(), {"x": l.array([1.0])}),
        lambda l: l.load(io.BytesIO(b""), format="gguf"),
        lambda l: l.load(io.BytesIO(b"")),
        lambda l: l.savez(str(tmp_path / "q"), l.zeros(1), arr_0=l.zeros(1)),
        lambda l: l.save_safetensors(io.BytesIO(), {"x": l.zeros(1)}, {"a": 1}),
    ]
    for i, case in enumerate(cases):
        errs = []
        for lib in (mx, MX):
            try:
                case(lib)
                errs.append(None)
            except Exception as e:  # noqa: BLE001 - comparing exception types
                errs.append(type(e))
        assert errs[0] == errs[1], (i, errs)
        assert errs[0] is not None, i


# ---------------------------------------------------------------- file-like objects

def test_file_like_objects(mx):
    x, xm = make(mx, "float32", (2, 3)), make(MX, "float32", (2, 3))
    for fmt, save in [("npy", lambda l, f, a: l.save(f, a)),
                      ("npz", lambda l, f, a: l.savez(f, a, y=a)),
                      ("safetensors", lambda l, f, a: l.save_safetensors(f, {"x": a}, {"k": "v"}))]:
        b1, b2 = io.BytesIO(), io.BytesIO()
        save(mx, b1, x)
        save(MX, b2, xm)
        for src in (b1, b2):
            got = mx.load(io.BytesIO(src.getvalue()), format=fmt)
            want = MX.load(io.BytesIO(src.getvalue()), format=fmt)
            if isinstance(want, dict):
                assert_same_dict(got, want)
            else:
                assert_same(got, want)
    b = io.BytesIO()
    mx.save_safetensors(b, {"x": x}, {"k": "v"})
    _, meta = mx.load(io.BytesIO(b.getvalue()), format="safetensors", return_metadata=True)
    assert meta == {"k": "v"}


def test_real_file_object_infers_format_from_name(mx, tmp_path):
    MX.save(str(tmp_path / "a.npy"), MX.arange(4))
    with open(tmp_path / "a.npy", "rb") as f:
        assert_same(mx.load(f), MX.arange(4))
    with pytest.raises(AttributeError):
        mx.load(io.BytesIO(b""))


# ---------------------------------------------------------------- npz

def test_npz_both_ways(mx, tmp_path):
    import zipfile
    arrs_r = {d: make(mx, d, (2, 3), i) for i, d in enumerate(DTYPES)}
    arrs_m = {d: make(MX, d, (2, 3), i) for i, d in enumerate(DTYPES)}
    for comp, (save_r, save_m) in enumerate([(mx.savez, MX.savez),
                                             (mx.savez_compressed, MX.savez_compressed)]):
        save_r(str(tmp_path / f"r{comp}.npz"), make(mx, "int32", (4,)), **arrs_r)
        save_m(str(tmp_path / f"m{comp}.npz"), make(MX, "int32", (4,)), **arrs_m)
        for f in (f"r{comp}.npz", f"m{comp}.npz"):
            assert_same_dict(mx.load(str(tmp_path / f)), MX.load(str(tmp_path / f)))
        with zipfile.ZipFile(tmp_path / f"r{comp}.npz") as z:
            assert {i.compress_type for i in z.infolist()} == {zipfile.ZIP_DEFLATED if comp else zipfile.ZIP_STORED}
        with np.load(tmp_path / f"r{comp}.npz") as z:
            for k in z.files:
                if k != "bfloat16":
                    want = np.array(arrs_m[k]) if k in arrs_m else np.array(make(MX, "int32", (4,)))
                    assert np.array_equal(z[k], want, equal_nan=True), k
    np.savez(tmp_path / "np.npz", np.arange(3), k=np.ones((2, 2), np.float16))
    np.savez_compressed(tmp_path / "npc.npz", a=np.asfortranarray(np.ones((3, 2))))
    for f in ("np.npz", "npc.npz"):
        assert_same_dict(mx.load(str(tmp_path / f)), MX.load(str(tmp_path / f)))


def test_npz_member_names(mx, tmp_path):
    import zipfile
    b = io.BytesIO()
    np.save(b, np.arange(3))
    with zipfile.ZipFile(tmp_path / "odd.npz", "w") as z:
        for n in ("dir/y.npy", "noext", "x.NPY"):
            z.writestr(n, b.getvalue())
    assert_same_dict(mx.load(str(tmp_path / "odd.npz")), MX.load(str(tmp_path / "odd.npz")))
    with zipfile.ZipFile(tmp_path / "bad.npz", "w") as z:
        z.writestr("x.npy", b"garbage")
    for lib in (mx, MX):
        with pytest.raises(RuntimeError):
            lib.load(str(tmp_path / "bad.npz"))


# ---------------------------------------------------------------- safetensors

ST_DTYPES = [d for d in DTYPES if d != "float64"]


def test_safetensors_both_ways(mx, tmp_path):
    shapes = [(2, 3), (), (0, 2), (5,)]
    arrs_r = {f"{d}{i}": make(mx, d, s, i) for d in ST_DTYPES for i, s in enumerate(shapes)}
    arrs_m = {f"{d}{i}": make(MX, d, s, i) for d in ST_DTYPES for i, s in enumerate(shapes)}
    arrs_r["t"] = mx.arange(6).reshape(2, 3).T
    arrs_m["t"] = MX.arange(6).reshape(2, 3).T
    meta = {"format": "mlx", "b": "é\n\"q\""}
    mx.save_safetensors(str(tmp_path / "r.safetensors"), arrs_r, meta)
    MX.save_safetensors(str(tmp_path / "m.safetensors"), arrs_m, meta)
    for f in ("r.safetensors", "m.safetensors"):
        got = mx.load(str(tmp_path / f), return_metadata=True)
        want = MX.load(str(tmp_path / f), return_metadata=True)
        assert_same_dict(got[0], want[0])
        assert got[1] == want[1] == meta
    # The header is MLX's JSON (sorted keys); data order may differ (MLX uses a hash map).
    raw = (tmp_path / "r.safetensors").read_bytes()
    hdr = json.loads(raw[8:8 + struct.unpack("<Q", raw[:8])[0]])
    assert list(hdr) == sorted(hdr)
    # The safetensors package reads every non-bfloat16 tensor with the same values.
    from safetensors import safe_open
    with safe_open(str(tmp_path / "r.safetensors"), "np") as f:
        assert f.metadata() == meta
        for k in f.keys():
            if not k.startswith("bfloat16"):
                assert np.array_equal(f.get_tensor(k), np.array(arrs_m[k]), equal_nan=True), k


def test_safetensors_single_tensor_file_equals_mlx(mx, tmp_path):
    for meta in ({}, {"a": "b", "A": "c"}):
        mx.save_safetensors(str(tmp_path / "r"), {"k\"\\\n\x01é": make(mx, "float16", (2, 2))}, meta)
        MX.save_safetensors(str(tmp_path / "m"), {"k\"\\\n\x01é": make(MX, "float16", (2, 2))}, meta)
        assert (tmp_path / "r.safetensors").read_bytes() == (tmp_path / "m.safetensors").read_bytes()


def test_safetensors_written_by_the_package(mx, tmp_path):
    arrs = {d: np.array(make(MX, d, (3, 2), i)) for i, d in enumerate(DTYPES)
            if d not in ("bfloat16", "complex64", "float64")}
    st_numpy.save_file(arrs, str(tmp_path / "p.safetensors"), metadata={"m": "1"})
    got = mx.load(str(tmp_path / "p.safetensors"), return_metadata=True)
    want = MX.load(str(tmp_path / "p.safetensors"), return_metadata=True)
    assert_same_dict(got[0], want[0])
    assert got[1] == want[1]


def test_safetensors_float64_goes_further_than_mlx(mx, tmp_path):
    x = make(mx, "float64", (2, 3))
    mx.save_safetensors(str(tmp_path / "f"), {"x": x})
    assert_same(mx.load(str(tmp_path / "f.safetensors"))["x"], x)
    assert np.array_equal(st_numpy.load_file(str(tmp_path / "f.safetensors"))["x"], np.array(x),
                          equal_nan=True)
    with pytest.raises(RuntimeError):
        MX.save_safetensors(str(tmp_path / "g"), {"x": MX.zeros(1, dtype=MX.float64)})


def st_file(header, data=b""):
    h = header if isinstance(header, bytes) else json.dumps(header).encode()
    return struct.pack("<Q", len(h)) + h + data


def u8(shape, offsets, dtype="U8"):
    return {"dtype": dtype, "shape": shape, "data_offsets": offsets}


ST_BAD = [
    st_file({"x": u8([2], [0, 4])}, b"ab"),
    st_file({"x": u8([3], [0, 2])}, b"abcd"),
    st_file({"x": u8([-2], [0, 2])}, b"ab"),
    st_file({"x": u8([10**12], [0, 10**12])}, b"ab"),
    st_file({"x": {"dtype": "U8", "data_offsets": [0, 2]}}, b"ab"),
    st_file(b'{"x": '),
    st_file(b"[1,2]"),
    struct.pack("<Q", 1 << 40) + b"{}",
    struct.pack("<Q", 100) + b"{}",
    b"abc",
    b"",
    st_file({"x": u8([0], [2, 1])}, b"ab"),
    st_file({"x": u8([2], [0, 2], "F8_E5M2")}, b"ab"),
    st_file({"x": u8([2], [0, 2], "X")}, b"ab"),
    st_file({"__metadata__": {"a": 1}}),
]


@pytest.mark.parametrize("i", range(len(ST_BAD)))
def test_safetensors_bad_files_raise_like_mlx(mx, i):
    for lib in (mx, MX):
        with pytest.raises(RuntimeError):
            r = lib.load(io.BytesIO(ST_BAD[i]), format="safetensors")
            lib.eval(r)


def test_safetensors_mlx_leniencies(mx):
    # Accepted by MLX: gaps, extra fields, integral float dims, F8_E4M3 as raw uint8,
    # duplicate keys (the last wins), 0-d tensors.
    for raw in [st_file({"x": u8([2], [2, 4])}, b"abcd"),
                st_file({"x": {**u8([1], [0, 1]), "foo": 1}}, b"ab"),
                st_file({"x": u8([2.0], [0, 2])}, b"ab"),
                st_file({"x": u8([2], [0, 2], "F8_E4M3")}, b"ab"),
                st_file(b'{"x": {"dtype": "U8", "shape": [1], "data_offsets": [0, 1]}, '
                        b'"x": {"dtype": "U8", "shape": [1], "data_offsets": [1, 2]}}', b"ab"),
                st_file({"x": u8([], [0, 1])}, b"ab"),
                st_file(b"  {}  ")]:
        assert_same_dict(mx.load(io.BytesIO(raw), format="safetensors"),
                         MX.load(io.BytesIO(raw), format="safetensors"))


def test_safetensors_overlapping_tensors_are_rejected(mx):
    # MLX loads both; rmx refuses overlapping byte ranges as a corrupt file (as the
    # safetensors package does).
    raw = st_file({"x": u8([2], [0, 2]), "y": u8([2], [1, 3])}, b"abc")
    with pytest.raises(RuntimeError, match="overlap"):
        mx.load(io.BytesIO(raw), format="safetensors")


# ---------------------------------------------------------------- GGUF

GG_DTYPES = ["float32", "float16", "int8", "int16", "int32"]


def test_gguf_save_both_ways(mx, tmp_path):
    arrs_r = {f"{d}{i}": make(mx, d, s, i) for d in GG_DTYPES
              for i, s in enumerate([(2, 3), (), (0, 3), (1, 1, 1, 1, 2), (32,)])}
    arrs_m = {f"{d}{i}": make(MX, d, s, i) for d in GG_DTYPES
              for i, s in enumerate([(2, 3), (), (0, 3), (1, 1, 1, 1, 2), (32,)])}
    arrs_r["t"], arrs_m["t"] = mx.arange(6).reshape(2, 3).T, MX.arange(6).reshape(2, 3).T

    def meta(lib):
        return {"s": "str é", "ls": ["a", "", "b"], "empty": [], "a0": lib.array(3),
                "a1": lib.array([1.5, 2]), "au8": lib.array([1, 2], dtype=lib.uint8),
                "ab": lib.array(True), "ai64": lib.array(-(2**40), dtype=lib.int64),
                "au64": lib.array([2**40], dtype=lib.uint64), "ai16": lib.array(-7, dtype=lib.int16)}
    mx.save_gguf(str(tmp_path / "r.gguf"), arrs_r, meta(mx))
    MX.save_gguf(str(tmp_path / "m.gguf"), arrs_m, meta(MX))
    for f in ("r.gguf", "m.gguf"):
        got = mx.load(str(tmp_path / f), return_metadata=True)
        want = MX.load(str(tmp_path / f), return_metadata=True)
        assert_same_dict(got[0], want[0])
        assert_same_dict(got[1], want[1])
    r = gguf.GGUFReader(str(tmp_path / "r.gguf"))
    for t in r.tensors:
        if t.name in ("t",) or t.name.endswith("1"):
            continue
        want = np.array(arrs_m[t.name]).ravel()
        assert np.array_equal(np.asarray(t.data).ravel(), want, equal_nan=True), t.name
    assert r.fields["s"].contents() == "str é"
    assert r.fields["ls"].contents() == ["a", "", "b"]


def test_gguf_save_errors_like_mlx(mx, tmp_path):
    bad = [lambda l: l.save_gguf(str(tmp_path / "x"), {"x": l.zeros(2, dtype=getattr(l, d))})
           for d in ("bool_", "uint8", "uint32", "int64", "bfloat16", "float64", "complex64")]
    bad += [lambda l, v=v: l.save_gguf(str(tmp_path / "x"), {}, {"k": v(l)}) for v in (
        lambda l: l.array(1.0, dtype=l.float16), lambda l: l.array(1, dtype=l.float64),
        lambda l: l.zeros((2, 2)), lambda l: l.zeros((0,)), lambda l: None)]
    for i, case in enumerate(bad):
        errs = []
        for lib in (mx, MX):
            with pytest.raises(Exception) as e:
                case(lib)
            errs.append(e.type)
        assert errs[0] == errs[1], (i, errs)


def write_gguf(path, build):
    w = gguf.GGUFWriter(str(path), "llama")
    build(w)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()


def test_gguf_metadata_types_from_the_gguf_package(mx, tmp_path):
    V = gguf.GGUFValueType
    scalars = {"u8": (7, V.UINT8), "i8": (-7, V.INT8), "u16": (7, V.UINT16), "i16": (-7, V.INT16),
               "u32": (7, V.UINT32), "i32": (-7, V.INT32), "f32": (1.5, V.FLOAT32),
               "u64": (2**40, V.UINT64), "i64": (-(2**40), V.INT64), "b": (True, V.BOOL),
               "s": ("héllo", V.STRING)}

    def build(w):
        for k, (v, t) in scalars.items():
            w.add_key_value(k, v, t)
        for k, t in [("a_u8", V.UINT8), ("a_i8", V.INT8), ("a_u16", V.UINT16), ("a_i16", V.INT16),
                     ("a_u32", V.UINT32), ("a_i32", V.INT32), ("a_f32", V.FLOAT32),
                     ("a_u64", V.UINT64), ("a_i64", V.INT64)]:
            w.add_key_value(k, [1, 2, 3], V.ARRAY, sub_type=t)
        w.add_key_value("a_b", [True, False], V.ARRAY, sub_type=V.BOOL)
        w.add_key_value("a_s", ["a", "bb", ""], V.ARRAY, sub_type=V.STRING)
        w.add_custom_alignment(64)
        w.add_tensor("x", np.arange(6, dtype=np.float32).reshape(2, 3))
        w.add_tensor("y", np.arange(5, dtype=np.int16))
    write_gguf(tmp_path / "t.gguf", build)
    got = mx.load(str(tmp_path / "t.gguf"), return_metadata=True)
    want = MX.load(str(tmp_path / "t.gguf"), return_metadata=True)
    assert_same_dict(got[0], want[0])
    assert_same_dict(got[1], want[1])


def test_gguf_float64_metadata_goes_further_than_mlx(mx, tmp_path):
    # MLX 0.32.4 crashes (segfault) on float64 metadata; rmx returns float64 arrays.
    V = gguf.GGUFValueType
    write_gguf(tmp_path / "f.gguf", lambda w: (w.add_key_value("f", 0.1, V.FLOAT64),
               w.add_key_value("af", [0.5, 2.0], V.ARRAY, sub_type=V.FLOAT64)))
    _, meta = mx.load(str(tmp_path / "f.gguf"), return_metadata=True)
    assert meta["f"].dtype == mx.float64 and meta["f"].item() == 0.1
    assert meta["af"].tolist() == [0.5, 2.0]


Q = gguf.GGMLQuantizationType


def quant_blocks(t, n, seed):
    """Random blocks whose float16 scale fields hold modest finite values."""
    bs, ts = gguf.GGML_QUANT_SIZES[t]
    rng = np.random.default_rng(seed)
    d = rng.integers(0, 256, size=(n, ts), dtype=np.uint8)
    half = lambda k: rng.uniform(-2, 2, size=(n, k)).astype(np.float16).view(np.uint8)  # noqa: E731
    if t in (Q.Q4_0, Q.Q8_0, Q.Q5_0, Q.Q4_1, Q.Q5_1, Q.Q8_1):
        k = 2 if t in (Q.Q4_1, Q.Q5_1, Q.Q8_1) else 1
        d[:, :2 * k] = half(k)
    elif t in (Q.Q2_K, Q.Q3_K, Q.Q6_K):
        d[:, ts - (4 if t == Q.Q2_K else 2):] = half(2 if t == Q.Q2_K else 1)
    elif t in (Q.Q4_K, Q.Q5_K):
        d[:, :4] = half(2)
    elif t == Q.Q8_K:
        d[:, :4] = rng.uniform(-2, 2, size=(n, 1)).astype(np.float32).view(np.uint8)
    return d


def gguf_quant_file(path, t, seed=0, raw=False):
    bs, ts = gguf.GGML_QUANT_SIZES[t]
    blocks = (np.random.default_rng(seed).integers(0, 256, (6, ts), dtype=np.uint8) if raw
              else quant_blocks(t, 6, seed))
    write_gguf(path, lambda w: w.add_tensor("blk.0.q.weight", blocks.reshape(3, 2 * ts), raw_dtype=t))
    return blocks


@pytest.mark.parametrize("t", ["Q4_0", "Q4_1", "Q8_0", "Q2_K", "Q4_K", "Q6_K"])
@pytest.mark.parametrize("raw", [False, True])
def test_gguf_quantized_like_mlx(mx, tmp_path, t, raw):
    # Q4_0/Q4_1/Q8_0: packed uint32 + scales + biases; the k-quants MLX decodes: float16.
    # raw=True uses fully random bytes (inf/NaN scales included).
    gguf_quant_file(tmp_path / "q.gguf", Q[t], raw=raw)
    got, want = mx.load(str(tmp_path / "q.gguf")), MX.load(str(tmp_path / "q.gguf"))
    assert_same_dict(got, want)


def test_gguf_bfloat16_becomes_float16_like_mlx(mx, tmp_path):
    allbits = np.arange(1 << 16, dtype=np.uint32).astype(np.uint16)
    write_gguf(tmp_path / "bf.gguf",
               lambda w: w.add_tensor("x", allbits.view(np.uint8).reshape(4, -1), raw_dtype=Q.BF16))
    assert_same_dict(mx.load(str(tmp_path / "bf.gguf")), MX.load(str(tmp_path / "bf.gguf")))


@pytest.mark.parametrize("t", ["Q5_0", "Q5_1", "Q3_K", "Q5_K", "Q8_K"])
def test_gguf_types_mlx_refuses_load_dequantized(mx, tmp_path, t):
    # MLX raises "gguf_tensor_to_f16 failed"; rmx dequantizes to float16 like MLX's other
    # k-quants. Reference: the gguf package's NumPy dequantization, rounded to float16.
    blocks = gguf_quant_file(tmp_path / "q.gguf", Q[t])
    with pytest.raises(RuntimeError):
        MX.load(str(tmp_path / "q.gguf"))
    got = mx.load(str(tmp_path / "q.gguf"))["blk.0.q.weight"]
    if t == "Q8_K":  # no NumPy reference in the gguf package: y = d * q
        d = blocks[:, :4].copy().view(np.float32)
        want = (d * blocks[:, 4:260].view(np.int8).astype(np.float32)).reshape(3, -1)
    else:
        want = gguf.quants.dequantize(blocks.reshape(3, -1), Q[t]).astype(np.float32)
    assert got.dtype == mx.float16 and got.shape == want.shape
    assert np.array_equal(np.array(got), want.astype(np.float16))


def test_gguf_q4_k_uses_mlx_scales(mx, tmp_path):
    # MLX decodes the high-nibble half of each Q4_K 64-weight chunk with the low half's
    # scale and min; llama.cpp's reference uses the next ones. rmx matches MLX: the low
    # halves agree with the reference, the high halves follow MLX.
    blocks = gguf_quant_file(tmp_path / "q.gguf", Q.Q4_K)
    got = np.array(mx.load(str(tmp_path / "q.gguf"))["blk.0.q.weight"]).reshape(-1, 4, 2, 32)
    ref = gguf.quants.dequantize(blocks.reshape(3, -1), Q.Q4_K).astype(np.float16).reshape(-1, 4, 2, 32)
    assert np.array_equal(got[:, :, 0], ref[:, :, 0])
    assert not np.array_equal(got[:, :, 1], ref[:, :, 1])
    assert_same(mx.load(str(tmp_path / "q.gguf"))["blk.0.q.weight"],
                MX.load(str(tmp_path / "q.gguf"))["blk.0.q.weight"])


def test_gguf_int64_float64_tensors(mx, tmp_path):
    write_gguf(tmp_path / "w.gguf", lambda w: (w.add_tensor("i", np.arange(-3, 3, dtype=np.int64)),
                                               w.add_tensor("f", np.linspace(0, 1, 6))))
    got = mx.load(str(tmp_path / "w.gguf"))
    assert got["i"].dtype == mx.int64 and got["i"].tolist() == list(range(-3, 3))
    assert got["f"].dtype == mx.float64 and np.array_equal(np.array(got["f"]), np.linspace(0, 1, 6))


def gguf_bytes(tensors=(), kv=b"", n_kv=0, version=3):
    out = b"GGUF" + struct.pack("<IQQ", version, len(tensors), n_kv) + kv
    for name, dims, ty, off in tensors:
        out += struct.pack("<Q", len(name)) + name + struct.pack("<I", len(dims))
        out += b"".join(struct.pack("<Q", d) for d in dims) + struct.pack("<IQ", ty, off)
    return out + b"\0" * (-len(out) % 32)


GG_BAD = [
    b"",
    b"GGU",
    b"XXXX" + b"\0" * 40,
    gguf_bytes(version=1),
    b"GGUF" + struct.pack("<IQQ", 3, 2**40, 2**40),
    gguf_bytes([(b"x", [4], 0, 0)]),                       # data past the end
    gguf_bytes([(b"x", [2**31], 0, 0)]) + b"\0" * 64,      # dimension beyond int32
    gguf_bytes([(b"x", [2**30, 2**30], 0, 0)]),            # 4 EiB tensor
    gguf_bytes([(b"x", [4], 0, 2**62)]) + b"\0" * 16,      # offset far past the end
    gguf_bytes([(b"x", [4], 0, 4)]) + b"\0" * 64,          # misaligned offset
    gguf_bytes([(b"x", [8], 0, 0), (b"y", [8], 0, 0)]) + b"\0" * 64,  # overlap
    gguf_bytes([(b"x", [4], 77, 0)]) + b"\0" * 64,         # unknown type
    gguf_bytes([(b"x", [33], 2, 0)]) + b"\0" * 64,         # not whole Q4_0 blocks
    gguf_bytes(kv=struct.pack("<Q", 1) + b"k" + struct.pack("<I", 99), n_kv=1),
    gguf_bytes(kv=struct.pack("<Q", 2**50) + b"k", n_kv=1),
    gguf_bytes(kv=struct.pack("<Q", 1) + b"k" + struct.pack("<IIQ", 9, 8, 2**60), n_kv=1),
    gguf_bytes([(b"x", [4], 0, 0), (b"x", [4], 0, 32)]) + b"\0" * 64,  # duplicate name
]


@pytest.mark.parametrize("t", ["Q8_1", "IQ4_NL", "IQ2_XXS", "TQ1_0", "MXFP4"])
def test_gguf_undecoded_types_raise(mx, tmp_path, t):
    # MLX raises for some of these and silently drops the others; rmx always raises.
    gguf_quant_file(tmp_path / "q.gguf", Q[t], raw=True)
    with pytest.raises(RuntimeError, match="not supported"):
        mx.load(str(tmp_path / "q.gguf"))


@pytest.mark.parametrize("i", range(len(GG_BAD)))
def test_gguf_bad_files_raise(mx, tmp_path, i):
    # MLX's GGUF reader crashes or reads out of bounds on many of these; rmx raises.
    (tmp_path / "b.gguf").write_bytes(GG_BAD[i])
    with pytest.raises((RuntimeError, ValueError)):
        mx.eval(mx.load(str(tmp_path / "b.gguf")))


def test_gguf_non_utf8_key_raises(mx, tmp_path):
    (tmp_path / "b.gguf").write_bytes(gguf_bytes(kv=struct.pack("<Q", 1) + b"\xff" + struct.pack("<IB", 0, 1), n_kv=1))
    with pytest.raises(ValueError):
        mx.load(str(tmp_path / "b.gguf"))


# ---------------------------------------------------------------- laziness and overwrite

def test_load_is_lazy_and_saving_over_the_source_is_safe(mx, tmp_path):
    arrs = {f"w{i}": mx.full((256, 1024), float(i)) for i in range(8)}  # 8 MiB
    mx.save_safetensors(str(tmp_path / "w.safetensors"), arrs)
    del arrs
    # Let earlier graphs finish being freed (stream workers drop finished nodes
    # asynchronously), so the deltas below count only this test's buffers.
    import gc
    gc.collect()
    mx.synchronize()
    before = mx.get_active_memory()
    w = mx.load(str(tmp_path / "w.safetensors"))
    assert mx.get_active_memory() - before < 1 << 16
    mx.eval(w["w3"])
    grown = mx.get_active_memory() - before
    assert (1 << 20) <= grown < (2 << 20)
    # Overwrite the file while the other tensors are still unread: they keep the old data.
    mx.save_safetensors(str(tmp_path / "w.safetensors"), {"w3": w["w3"] + 1})
    assert mx.all(w["w5"] == 5).item()
    assert mx.all(mx.load(str(tmp_path / "w.safetensors"))["w3"] == 4).item()


# ---------------------------------------------------------------- the SmolLM2 fixture

def test_smollm2_gguf_matches_mlx_bit_for_bit(mx):
    from fixtures import smollm2_gguf
    path = smollm2_gguf()
    t0 = time.perf_counter()
    got, gmeta = mx.load(path, return_metadata=True)
    t_rmx = time.perf_counter() - t0
    t0 = time.perf_counter()
    want, wmeta = MX.load(path, return_metadata=True)
    t_mlx = time.perf_counter() - t0
    print(f"\nSmolLM2 GGUF load: rmx {t_rmx * 1e3:.1f} ms (lazy), MLX {t_mlx * 1e3:.1f} ms")
    assert len(got) == len(want) == 694
    assert_same_dict(got, want)
    assert len(gmeta) == len(wmeta) == 33
    assert_same_dict(gmeta, wmeta)
    assert gmeta["tokenizer.ggml.tokens"][:3] == ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
