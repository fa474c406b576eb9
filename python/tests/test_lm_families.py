"""rmx-lm against real mlx-lm on tiny random-weight checkpoints that mlx-lm itself builds and
writes, one per supported family, float and 4-bit quantized: same logits for the same ids,
in one pass and fed through the KV cache a few tokens at a time."""

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

GEMMA = dict(hidden_size=96, head_dim=16, rms_norm_eps=1e-6)
COMMON = dict(hidden_size=64, num_hidden_layers=2, intermediate_size=96, num_attention_heads=4,
              num_key_value_heads=2, rms_norm_eps=1e-5, vocab_size=320, max_position_embeddings=512)

FAMILIES = {
    "llama": dict(rope_theta=10000.0, tie_word_embeddings=False),
    "mistral": dict(rope_theta=10000.0, tie_word_embeddings=False),
    "qwen2": dict(rope_theta=1000000.0, tie_word_embeddings=True),
    "qwen3": dict(rope_theta=1000000.0, tie_word_embeddings=True, head_dim=16),
    "phi3": dict(rope_theta=10000.0, tie_word_embeddings=False),
    # Gemma: hidden 96 (sqrt(96) differs from its bfloat16 rounding, which Gemma 3 uses),
    # windows shorter than IDS, caps small enough for tanh to bend the values.
    "gemma2": dict(GEMMA, sliding_window=5, attn_logit_softcapping=0.5,
                   final_logit_softcapping=0.8, query_pre_attn_scalar=24.0),
    "gemma3_text": dict(GEMMA, num_hidden_layers=3, sliding_window=4, sliding_window_pattern=2,
                        rope_local_base_freq=100.0, rope_global_base_freq=5000.0,
                        query_pre_attn_scalar=24.0),
}
# mlx-lm's multimodal Gemma 3 (its text model's config under text_config, weights under
# language_model.), with an untied lm_head; gemma3_text above is written tied.
FAMILIES["gemma3"] = dict(FAMILIES["gemma3_text"])
IDS = [5, 17, 300, 42, 42, 7, 0, 199, 64, 3, 250, 11]


def _gemma2_windowed(model, ids, window):
    """mlx-lm 0.28.4's Gemma 2 attends to every position in every layer; Hugging Face's (and
    rmx-lm's) limits the even layers to the last `window`. mlx-lm's own layers, run with
    mlx-lm's windowed causal mask on those layers."""
    from mlx_lm.models.base import create_causal_mask

    m = model.model
    h = m.embed_tokens(ids) * (m.args.hidden_size ** 0.5)
    n = ids.shape[1]
    for i, layer in enumerate(m.layers):
        h = layer(h, create_causal_mask(n, window_size=window if i % 2 == 0 else None), None)
    out = m.embed_tokens.as_linear(m.norm(h))
    cap = model.final_logit_softcapping
    return mx.tanh(out / cap) * cap


def _write(model_type: str, quantize: bool, path, ids=IDS, windowed=True) -> np.ndarray:
    from mlx_lm.utils import MODEL_REMAPPING  # mlx-lm runs Mistral with its Llama code

    module = importlib.import_module(f"mlx_lm.models.{MODEL_REMAPPING.get(model_type, model_type)}")
    fields = {f for f in module.ModelArgs.__dataclass_fields__}
    cfg = {"model_type": model_type, **COMMON, **FAMILIES[model_type]}
    if model_type == "gemma3":
        text = {**cfg, "model_type": "gemma3_text"}
        del text["vocab_size"]
        cfg = {"model_type": "gemma3", "vocab_size": cfg["vocab_size"], "text_config": text}
    args = module.ModelArgs.from_dict(cfg) if hasattr(module.ModelArgs, "from_dict") else \
        module.ModelArgs(**{k: v for k, v in cfg.items() if k in fields})
    mx.random.seed(hash(model_type) % 1000)
    model = module.Model(args)
    if model_type == "gemma3_text":
        model.sanitize({})  # what mlx-lm does for a checkpoint without lm_head: tie it
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
    x = mx.array([ids])
    if model_type == "gemma2" and windowed:
        logits = _gemma2_windowed(model, x, cfg["sliding_window"])
    else:
        logits = model(x)
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


def _rmx_logits(folder, tmp_path, ids, chunk=None):
    out = tmp_path / "logits.npy"
    extra = ["--chunk", str(chunk)] if chunk else []
    rmx_lm("logits", "--model", str(folder), "--tokens", ",".join(map(str, ids)), "--out", str(out), *extra)
    return np.load(out)[0]


GEMMAS = ["gemma2", "gemma3", "gemma3_text"]
LONG_IDS = [int(i) for i in np.random.default_rng(7).integers(0, 320, 29)]


@pytest.mark.parametrize("chunk", [1, 3, 7])
@pytest.mark.parametrize("family", GEMMAS)
def test_gemma_cache_path_matches_mlx_lm(family, chunk, tmp_path, tokenizer_json):
    """Prompts longer than the window, fed a few tokens at a time: the local layers' bounded
    caches must drop exactly the keys the window excludes."""
    folder = tmp_path / family
    want = _write(family, False, folder, ids=LONG_IDS)
    (folder / "tokenizer.json").write_text(tokenizer_json)
    got = _rmx_logits(folder, tmp_path, LONG_IDS, chunk)
    np.testing.assert_allclose(got, want, rtol=5e-5, atol=5e-5)


@pytest.mark.parametrize("family", GEMMAS)
def test_gemma_window_matters(family, tmp_path, tokenizer_json):
    """The same checkpoint with the window widened past the prompt gives other logits, and
    rmx-lm follows: the tests above would notice a window ignored or misplaced."""
    narrow = _write(family, False, tmp_path / "a", ids=LONG_IDS)
    saved = dict(FAMILIES[family])
    try:
        FAMILIES[family]["sliding_window"] = 64
        wide = _write(family, False, tmp_path / "b", ids=LONG_IDS)
    finally:
        FAMILIES[family] = saved
    assert np.abs(narrow - wide).max() > 1e-3
    (tmp_path / "b" / "tokenizer.json").write_text(tokenizer_json)
    np.testing.assert_allclose(_rmx_logits(tmp_path / "b", tmp_path, LONG_IDS), wide,
                               rtol=5e-5, atol=5e-5)


def test_gemma2_without_window_is_plain_mlx_lm(tmp_path, tokenizer_json):
    """Where the window holds the whole prompt, unmodified mlx-lm Gemma 2 is the reference."""
    ids = IDS[:5]
    want = _write("gemma2", True, tmp_path / "g", ids=ids, windowed=False)
    (tmp_path / "g" / "tokenizer.json").write_text(tokenizer_json)
    np.testing.assert_allclose(_rmx_logits(tmp_path / "g", tmp_path, ids), want, rtol=5e-5, atol=5e-5)


def test_unknown_architecture_lists_the_supported_ones(tmp_path, tokenizer_json):
    folder = tmp_path / "m"
    _write("llama", False, folder)
    cfg = json.loads((folder / "config.json").read_text())
    cfg["model_type"] = "gemma7"
    (folder / "config.json").write_text(json.dumps(cfg))
    (folder / "tokenizer.json").write_text(tokenizer_json)
    r = rmx_lm("logits", "--model", str(folder), "--tokens", "1", "--out", str(tmp_path / "x.npy"), check=False)
    assert r.returncode != 0
    assert "gemma7" in r.stderr and "gemma2" in r.stderr and "gemma3_text" in r.stderr and "llama" in r.stderr


_GGUF_NAMES = {
    "input_layernorm": "attn_norm", "self_attn.q_proj": "attn_q", "self_attn.k_proj": "attn_k",
    "self_attn.v_proj": "attn_v", "self_attn.o_proj": "attn_output",
    "self_attn.q_norm": "attn_q_norm", "self_attn.k_norm": "attn_k_norm",
    "post_attention_layernorm": "post_attention_norm", "pre_feedforward_layernorm": "ffn_norm",
    "post_feedforward_layernorm": "post_ffw_norm", "mlp.gate_proj": "ffn_gate",
    "mlp.up_proj": "ffn_up", "mlp.down_proj": "ffn_down",
}


def _to_gguf(folder, path, family):
    """The checkpoint as llama.cpp's converter writes a Gemma GGUF: its tensor names, norms
    with the 1 added, a SentencePiece-style vocabulary without space prefix."""
    gguf = pytest.importorskip("gguf")
    cfg = json.loads((folder / "config.json").read_text())
    arch = "gemma2" if family == "gemma2" else "gemma3"
    w = gguf.GGUFWriter(str(path), arch)
    w.add_context_length(512)
    w.add_embedding_length(cfg["hidden_size"])
    w.add_block_count(cfg["num_hidden_layers"])
    w.add_feed_forward_length(cfg["intermediate_size"])
    w.add_head_count(cfg["num_attention_heads"])
    w.add_head_count_kv(cfg["num_key_value_heads"])
    w.add_key_length(cfg["head_dim"])
    w.add_value_length(cfg["head_dim"])
    w.add_layer_norm_rms_eps(cfg["rms_norm_eps"])
    w.add_sliding_window(cfg["sliding_window"])
    if arch == "gemma2":
        w.add_float32("gemma2.attn_logit_softcapping", cfg["attn_logit_softcapping"])
        w.add_float32("gemma2.final_logit_softcapping", cfg["final_logit_softcapping"])
    else:
        w.add_rope_freq_base(cfg["rope_global_base_freq"])
        w.add_uint32("gemma3.attention.sliding_window_pattern", cfg["sliding_window_pattern"])
    n = cfg["vocab_size"]
    w.add_tokenizer_model("llama")
    w.add_token_list(["<pad>", "<eos>", "<bos>", "<unk>"] + [f"\u2581t{i}" for i in range(4, n)])
    w.add_token_scores([0.0] * 4 + [-float(i) for i in range(4, n)])
    w.add_token_types([3, 3, 3, 2] + [1] * (n - 4))
    w.add_bos_token_id(2)
    w.add_eos_token_id(1)
    w.add_add_space_prefix(False)
    for k, v in mx.load(str(folder / "model.safetensors")).items():
        v = np.array(v.astype(mx.float32))
        k = k.removesuffix(".weight")
        if k.endswith("norm"):
            v = v + 1.0
        if k.startswith("model.layers."):
            i, part = k[len("model.layers."):].split(".", 1)
            name = f"blk.{i}.{_GGUF_NAMES[part]}"
        else:
            name = {"model.embed_tokens": "token_embd", "model.norm": "output_norm", "lm_head": "output"}[k]
        w.add_tensor(name + ".weight", v)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()


@pytest.mark.parametrize("family", ["gemma2", "gemma3_text"])
def test_gemma_gguf_matches_mlx_lm(family, tmp_path):
    """Gemma from a GGUF file (llama.cpp's layout): queries scaled by 1/sqrt(head_dim), as
    llama.cpp does for all but the 27B models, and Gemma 3's local RoPE base fixed at 10000."""
    saved = dict(FAMILIES[family])
    try:
        FAMILIES[family].update(query_pre_attn_scalar=16.0)
        if family != "gemma2":
            FAMILIES[family].update(rope_local_base_freq=10000.0)
        want = _write(family, False, tmp_path / "hf", ids=LONG_IDS)
    finally:
        FAMILIES[family] = saved
    _to_gguf(tmp_path / "hf", tmp_path / "m.gguf", family)
    got = _rmx_logits(tmp_path / "m.gguf", tmp_path, LONG_IDS, chunk=5)
    np.testing.assert_allclose(got, want, rtol=5e-5, atol=5e-5)


@pytest.mark.parametrize("quantize", [False, True], ids=["float", "q4"])
@pytest.mark.parametrize("family", ["llama", "mistral", "qwen2", "qwen3", "phi3"])
def test_fixed_shape_decode_matches_the_host_path(family, quantize, tmp_path, tokenizer_json):
    """The GPU's fixed-shape decode step (static_decode.rs), run uncaptured on the CPU, picks
    the same greedy tokens as the host path for every family that uses it (Qwen3's q/k
    norms, Phi-3's fused checkpoints, tied heads). The prompt is digits: one token each,
    all inside the tiny vocabulary."""
    from test_lm import DECODE_PATHS

    folder = tmp_path / family
    _write(family, quantize, folder)
    (folder / "tokenizer.json").write_text(tokenizer_json)

    def ids(path):
        r = rmx_lm("generate", "--model", str(folder), "--prompt", "31415926535897",
                   "--ignore-chat-template", "--max-tokens", "24", "--temp", "0", "--print-ids",
                   env=DECODE_PATHS[path])
        return json.loads(r.stdout.strip().splitlines()[-1])["ids"]

    want = ids("host")
    assert len(want) >= 8, want  # enough steps to compare (an end-of-sequence id stops it)
    assert ids("static") == want
