"""`rmx-lm convert` against real mlx-lm: the default GGUF converted to MLX's format loads in
mlx-lm and gives the logits rmx-lm gives (on the GGUF and on the converted folder); float
conversion and re-quantization match MLX's own `mx.quantize` bit for bit."""

from __future__ import annotations

import json

import numpy as np
import pytest

import fixtures
from test_lm import rmx_lm

mx = pytest.importorskip("mlx.core")
IDS = [1, 4093, 198, 1780, 314, 260, 3575, 282, 4649, 47, 2, 198, 1, 520, 9531, 198]


def _logits(model: str, tmp_path, name: str) -> np.ndarray:
    out = tmp_path / f"{name}.npy"
    rmx_lm("logits", "--model", model, "--tokens", ",".join(map(str, IDS)), "--out", str(out))
    return np.load(out)[0]


@pytest.fixture(scope="module")
def converted(tmp_path_factory):
    out = tmp_path_factory.mktemp("mlx") / "smollm2-mlx"
    rmx_lm("convert", "--model", fixtures.smollm2_gguf(), "--out", str(out), "--dtype", "float32")
    return out


def test_converted_folder_loads_in_mlx_lm_with_the_same_logits(converted, tmp_path):
    mlx_lm = pytest.importorskip("mlx_lm")
    cfg = json.loads((converted / "config.json").read_text())
    assert cfg["quantization"]["bits"] == 4 and cfg["quantization"]["group_size"] == 32
    assert cfg["quantization"]["model.embed_tokens"] == {"group_size": 32, "bits": 8}
    model, _ = mlx_lm.load(str(converted))
    want = np.array(model(mx.array([IDS])).astype(mx.float32))[0]
    got_gguf = _logits(fixtures.smollm2_gguf(), tmp_path, "gguf")
    got_folder = _logits(str(converted), tmp_path, "folder")
    np.testing.assert_allclose(got_folder, got_gguf, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(got_gguf, want, rtol=2e-3, atol=2e-3)
    assert (got_gguf.argmax(-1) == want.argmax(-1)).mean() > 0.9


def test_dequantize_then_quantize_matches_mx_quantize(converted, tmp_path):
    floats = tmp_path / "f32"
    rmx_lm("convert", "--model", str(converted), "--out", str(floats), "--dequantize", "--dtype", "float32")
    fw = mx.load(str(floats / "model.safetensors"))
    assert "model.layers.0.mlp.up_proj.scales" not in fw
    q = tmp_path / "q4g64"
    rmx_lm("convert", "--model", str(floats), "--out", str(q), "-q", "--q-bits", "4",
           "--q-group-size", "64", "--dtype", "float32")
    qw = mx.load(str(q / "model.safetensors"))
    for name in ("model.layers.0.mlp.up_proj", "model.layers.3.self_attn.k_proj", "model.embed_tokens"):
        wq, s, b = mx.quantize(fw[name + ".weight"], group_size=64, bits=4)
        assert np.array_equal(np.array(qw[name + ".weight"]), np.array(wq)), name
        assert np.array_equal(np.array(qw[name + ".scales"]), np.array(s)), name
        assert np.array_equal(np.array(qw[name + ".biases"]), np.array(b)), name
    cfg = json.loads((q / "config.json").read_text())
    assert cfg["quantization"] == {"group_size": 64, "bits": 4}
    # rmx-lm and mlx-lm agree on the re-quantized model too.
    mlx_lm = pytest.importorskip("mlx_lm")
    model, _ = mlx_lm.load(str(q))
    want = np.array(model(mx.array([IDS])).astype(mx.float32))[0]
    np.testing.assert_allclose(_logits(str(q), tmp_path, "q4g64"), want, rtol=2e-3, atol=2e-3)


def test_convert_rejects_contradictory_options(tmp_path):
    r = rmx_lm("convert", "--model", fixtures.smollm2_gguf(), "--out", str(tmp_path / "x"), "-q",
               "--dequantize", check=False)
    assert r.returncode != 0 and "choose one" in r.stderr
