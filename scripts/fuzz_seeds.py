"""Writes the small seed files of the fuzz targets into fuzz/seeds/<target>/ (committed).

Each seed is a valid file of its format, a few hundred bytes to a few KB, written by NumPy,
MLX, the `safetensors` package or the `gguf` package, so the fuzzer starts from the
structures real writers produce. Run: python3 scripts/fuzz_seeds.py
"""

import io
import json
import os
import shutil
import struct
import tempfile
import zipfile

import gguf
import mlx.core as mx
import numpy as np
from safetensors.numpy import save as st_save

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "fuzz", "seeds")
rng = np.random.default_rng(0)


def out(target, name, data):
    d = os.path.join(ROOT, target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


def npy_bytes(a):
    b = io.BytesIO()
    np.save(b, a)
    return b.getvalue()


def mlx_bytes(fn, suffix, *args, **kw):
    with tempfile.TemporaryDirectory() as d:
        p = os.path.join(d, "x" + suffix)
        fn(p, *args, **kw)
        with open(p, "rb") as f:
            return f.read()


def npy_seeds():
    out("npy", "f32_2x3", npy_bytes(rng.standard_normal((2, 3)).astype(np.float32)))
    out("npy", "i64_scalar", npy_bytes(np.array(7, dtype=np.int64)))
    out("npy", "bool_4", npy_bytes(np.array([True, False, True, True])))
    out("npy", "u8_empty", npy_bytes(np.zeros((0, 3), dtype=np.uint8)))
    out("npy", "f16_big_endian", npy_bytes(np.arange(6, dtype=">f2").reshape(2, 3)))
    out("npy", "c64_big_endian", npy_bytes(np.arange(4, dtype=">c8")))
    out("npy", "f64_fortran", npy_bytes(np.asfortranarray(np.arange(12.0).reshape(3, 4))))
    out("npy", "i16_3d", npy_bytes(np.arange(24, dtype=np.int16).reshape(2, 3, 4)))
    out("npy", "mlx_bf16", mlx_bytes(mx.save, ".npy", mx.arange(8, dtype=mx.bfloat16)))
    out("npy", "mlx_u32_t", mlx_bytes(mx.save, ".npy", mx.arange(6, dtype=mx.uint32).reshape(2, 3).T))


def npz_seeds():
    a = {"w": rng.standard_normal((3, 4)).astype(np.float32), "b": np.arange(4, dtype=np.int32)}
    for name, fn in [("stored", np.savez), ("deflated", np.savez_compressed)]:
        b = io.BytesIO()
        fn(b, **a)
        out("npz", name, b.getvalue())
    out("npz", "mlx_stored", mlx_bytes(mx.savez, ".npz", x=mx.arange(5), y=mx.ones((2, 2), dtype=mx.float16)))
    out("npz", "mlx_compressed", mlx_bytes(mx.savez_compressed, ".npz", z=mx.zeros((3,), dtype=mx.bool_)))
    b = io.BytesIO()
    with zipfile.ZipFile(b, "w") as z:
        z.writestr("noext", npy_bytes(np.arange(3, dtype=np.uint16)))
        z.writestr("big.npy", npy_bytes(np.arange(3, dtype=">i4")))
    out("npz", "odd_names", b.getvalue())


def st_seeds():
    out("safetensors", "plain", st_save({
        "a": rng.standard_normal((2, 3)).astype(np.float32),
        "b": np.arange(5, dtype=np.int64),
        "c": np.zeros((0,), dtype=np.uint8),
    }, metadata={"format": "np", "k": "v"}))
    out("safetensors", "dtypes", st_save({
        f"t_{d}": np.arange(3).astype(d) for d in
        ["bool", "u1", "u2", "u4", "u8", "i1", "i2", "i4", "f2", "f4", "f8"]
    }))
    out("safetensors", "mlx", mlx_bytes(
        mx.save_safetensors, ".safetensors",
        {"x": mx.arange(4, dtype=mx.bfloat16), "y": mx.array([1 + 2j], dtype=mx.complex64)},
        metadata={"m": "1"},
    ))
    # Hand-written: a gap between tensors and "__metadata__": null, which MLX accepts.
    header = json.dumps({
        "__metadata__": None,
        "g": {"dtype": "F8_E4M3", "shape": [2, 2], "data_offsets": [4, 8]},
        "h": {"dtype": "I16", "shape": [2], "data_offsets": [8, 12]},
    }).encode()
    out("safetensors", "gap", struct.pack("<Q", len(header)) + header + bytes(range(12)))


def gguf_seeds():
    def write(name, fill):
        with tempfile.TemporaryDirectory() as d:
            p = os.path.join(d, "x.gguf")
            w = gguf.GGUFWriter(p, "llama")
            fill(w)
            w.write_header_to_file()
            w.write_kv_data_to_file()
            w.write_tensors_to_file()
            w.close()
            with open(p, "rb") as f:
                out("gguf", name, f.read())

    def meta(w):
        w.add_uint32("u32", 7)
        w.add_int8("i8", -3)
        w.add_float32("f32", 1.5)
        w.add_float64("f64", 2.5)
        w.add_bool("flag", True)
        w.add_string("s", "hello")
        w.add_array("strs", ["a", "bc"])
        w.add_array("ints", [1, 2, 3])
        w.add_uint64("u64", 1 << 40)
        w.add_tensor("f32.weight", rng.standard_normal((2, 32)).astype(np.float32))
        w.add_tensor("f16", np.arange(8, dtype=np.float16))
        w.add_tensor("i32", np.arange(4, dtype=np.int32))

    write("meta_plain", meta)

    Q = gguf.GGMLQuantizationType
    groups = {
        "q_affine": [Q.Q4_0, Q.Q4_1, Q.Q8_0],
        "q_legacy": [Q.Q5_0, Q.Q5_1, Q.BF16],
        "q_k": [Q.Q2_K, Q.Q3_K, Q.Q4_K],
        "q_k2": [Q.Q5_K, Q.Q6_K, Q.Q8_K],
    }
    for name, types in groups.items():
        def fill(w, types=types):
            w.add_uint32("general.alignment", 32)
            for t in types:
                block, size = gguf.GGML_QUANT_SIZES[t]
                raw = rng.integers(0, 256, size=(1, size), dtype=np.uint8)
                if t == Q.BF16:
                    raw = np.zeros((1, 2 * 32), dtype=np.uint8)
                w.add_tensor(f"{t.name.lower()}.weight", raw, raw_dtype=t)
        write(name, fill)


if __name__ == "__main__":
    shutil.rmtree(ROOT, ignore_errors=True)
    npy_seeds()
    npz_seeds()
    st_seeds()
    gguf_seeds()
    for t in sorted(os.listdir(ROOT)):
        files = os.listdir(os.path.join(ROOT, t))
        size = sum(os.path.getsize(os.path.join(ROOT, t, f)) for f in files)
        print(f"{t}: {len(files)} seeds, {size} bytes")
