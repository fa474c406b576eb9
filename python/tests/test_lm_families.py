"""rmx-lm against real mlx-lm on tiny random-weight checkpoints that mlx-lm itself builds and
writes, one per supported family, float and 4-bit quantized: same logits for the same ids."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest

from test_lm import rmx_lm

mx = pytest.importorskip("mlx.core")
mlx_lm_models = pytest.importorskip("mlx_lm.models")  # installed by scripts/setup.sh
import importlib  # noqa: E402

import mlx.nn as mnn  # noqa: E402
from mlx.utils import tree_flatten  # noqa: E402

COMMON = dict(hidden_size=64, num_hidden_layers=2, intermediate_size=96, num_attention_heads=4,
              num_key_value_heads=2, rms_norm_eps=1e-5, vocab_size=320, max_position_embeddings=512)

FAMILIES = {
    "llama": dict(rope_theta=10000.0, tie_word_embeddings=False),
    "mistral": dict(rope_theta=10000.0, tie_word_embeddings=False),
    "qwen2": dict(rope_theta=1000000.0, tie_word_embeddings=True),
    "qwen3": dict(rope_theta=1000000.0, tie_word_embeddings=True, head_dim=16),
    "phi3": dict(rope_theta=10000.0, tie_word_embeddings=False),
}
IDS = [5, 17, 300, 42, 42, 7, 0, 199, 64, 3, 250, 11]


def _write(model_type: str, quantize: bool, path) -> np.ndarray:
    from mlx_lm.utils import MODEL_REMAPPING  # mlx-lm runs Mistral with its Llama code

    module = importlib.import_module(f"mlx_lm.models.{MODEL_REMAPPING.get(model_type, model_type)}")
    fields = {f for f in module.ModelArgs.__dataclass_fields__}
    cfg = {"model_type": model_type, **COMMON, **FAMILIES[model_type]}
    args = module.ModelArgs.from_dict(cfg) if hasattr(module.ModelArgs, "from_dict") else \
        module.ModelArgs(**{k: v for k, v in cfg.items() if k in fields})
    mx.random.seed(hash(model_type) % 1000)
    model = module.Model(args)
    # Random weights at a scale that keeps activations O(1) through the tiny model.
    params = tree_flatten(model.parameters())
    model.load_weights([(k, mx.random.normal(v.shape) * (0.02 if v.ndim > 1 else 1.0) + (1.0 if v.ndim == 1 else 0.0))
                        for k, v in params])
    if quantize:
        mnn.quantize(model, group_size=32, bits=4)
        cfg["quantization"] = {"group_size": 32, "bits": 4}
    mx.eval(model.parameters())
    os.makedirs(path, exist_ok=True)
    weights = dict(tree_flatten(model.parameters()))
    mx.save_safetensors(str(path / "model.safetensors"), weights)
    with open(path / "config.json", "w") as f:
        json.dump(cfg, f)
    logits = model(mx.array([IDS]))
    return np.array(logits.astype(mx.float32))[0]


@pytest.fixture(scope="module")
def tokenizer_json(tmp_path_factory):
    """Any tokenizer will do for logits: SmolLM2's, rebuilt by rmx-lm."""
    import fixtures

    path = tmp_path_factory.mktemp("tok") / "tokenizer.json"
    rmx_lm("tokenize", "--model", fixtures.smollm2_gguf(), "--text", "x", "--dump", str(path))
    return path.read_text()


@pytest.mark.parametrize("quantize", [False, True], ids=["float", "q4"])
@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_logits_match_mlx_lm(family, quantize, tmp_path, tokenizer_json):
    folder = tmp_path / family
    want = _write(family, quantize, folder)
    (folder / "tokenizer.json").write_text(tokenizer_json)
    out = tmp_path / "logits.npy"
    rmx_lm("logits", "--model", str(folder), "--tokens", ",".join(map(str, IDS)), "--out", str(out))
    got = np.load(out)[0]
    assert got.shape == want.shape
    np.testing.assert_allclose(got, want, rtol=2e-4, atol=2e-4)
