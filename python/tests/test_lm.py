"""rmx-lm end to end on the default model (SmolLM2-135M-Instruct, Q4_1 GGUF): the rebuilt
tokenizer against the `tokenizers` package, logits against a float64 NumPy forward pass over
MLX-dequantized weights, greedy decoding token for token, and a real chat answer."""

from __future__ import annotations

import json
import os
import subprocess

import numpy as np
import pytest

import fixtures
from lm_reference import LlamaReference

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BIN = os.environ.get("RMX_LM_BIN", os.path.join(ROOT, "target", "release", "rmx-lm"))


def rmx_lm(*args: str, check: bool = True, env: dict | None = None) -> subprocess.CompletedProcess:
    if not os.path.exists(BIN):
        pytest.fail(f"{BIN} is missing: run `cargo build --release -p rmx-lm` (scripts/setup.sh does)")
    return subprocess.run([BIN, *args], capture_output=True, text=True, check=check, timeout=600,
                          env=None if env is None else {**os.environ, **env})


@pytest.fixture(scope="module")
def model() -> str:
    return fixtures.smollm2_gguf()


@pytest.fixture(scope="module")
def reference(model) -> LlamaReference:
    return LlamaReference(model)


TEXTS = [
    "Hello, world!",
    "The year 2024 had 366 days; 3.14159 is pi.",
    "<|im_start|>user\nWhat is the capital of France?<|im_end|>\n<|im_start|>assistant\n",
    "emoji: 🦀🚀 and accents: café, naïve, 日本語",
    "  leading spaces\n\n\ttabs and\r\nnewlines   ",
    "def f(x):\n    return x ** 2  # comment",
    "<|endoftext|><repo_name>a<file_sep>",
    "",
]


@pytest.fixture(scope="module")
def hf_tokenizer(model, tmp_path_factory):
    tokenizers = pytest.importorskip("tokenizers")  # installed by scripts/setup.sh
    path = tmp_path_factory.mktemp("tok") / "tokenizer.json"
    rmx_lm("tokenize", "--model", model, "--text", "x", "--dump", str(path))
    return tokenizers.Tokenizer.from_file(str(path))


@pytest.mark.parametrize("text", TEXTS)
def test_tokenizer_matches_tokenizers_package(model, hf_tokenizer, text):
    got = json.loads(rmx_lm("tokenize", "--model", model, "--text", text).stdout)
    assert got["ids"] == hf_tokenizer.encode(text).ids
    assert got["decoded"] == text


def test_tokenizer_keeps_special_tokens_whole(model):
    got = json.loads(rmx_lm("tokenize", "--model", model, "--text", "<|im_start|>user<|im_end|>").stdout)
    # ids from the GGUF's own token list: 1 = <|im_start|>, 2 = <|im_end|>
    assert got["ids"][0] == 1 and got["ids"][-1] == 2 and len(got["ids"]) == 3


def test_tokenizer_splits_digits_individually(model):
    import mlx.core as mx

    _, meta = mx.load(model, return_metadata=True)
    vocab = meta["tokenizer.ggml.tokens"]
    got = json.loads(rmx_lm("tokenize", "--model", model, "--text", "12345").stdout)
    assert [vocab[i] for i in got["ids"]] == list("12345")


PROMPT_IDS = [1, 9690, 198, 2683, 359, 253, 5356, 5646, 11173, 3365, 3511, 308, 34519, 28,
              7018, 411, 407, 19712, 8182, 2, 198, 1, 4093, 198, 1780, 314, 260, 3575, 282,
              4649, 47, 2, 198, 1, 520, 9531, 198]


def test_first_position_logits_match_float64_reference(model, reference, tmp_path):
    out = tmp_path / "logits.npy"
    ids = PROMPT_IDS[:12]
    rmx_lm("logits", "--model", model, "--tokens", ",".join(map(str, ids)), "--out", str(out))
    got = np.load(out)[0].astype(np.float64)
    want = reference.logits(ids)
    assert got.shape == want.shape
    rel = np.linalg.norm(got[0] - want[0]) / np.linalg.norm(want[0])
    assert rel < 1e-3, rel
    rel_all = np.linalg.norm(got - want) / np.linalg.norm(want)
    assert rel_all < 1e-3, rel_all


# The three greedy decoding paths, each forced (so the CPU runs the GPU's): "host" builds
# each step's graph and samples on the host; "ahead" runs one step ahead with the argmax
# taken where the model runs; "static" is the fixed-shape step a GPU captures as a CUDA
# graph (static_decode.rs), here run uncaptured.
DECODE_PATHS = {
    "host": {"RMX_LM_STEP_AHEAD": "0", "RMX_LM_STATIC_DECODE": "0"},
    "ahead": {"RMX_LM_STEP_AHEAD": "1", "RMX_LM_STATIC_DECODE": "0"},
    "static": {"RMX_LM_STATIC_DECODE": "1"},
}


@pytest.mark.parametrize("path", list(DECODE_PATHS))
def test_greedy_decoding_matches_reference_token_for_token(model, reference, path):
    import mlx.core as mx

    _, meta = mx.load(model, return_metadata=True)
    vocab = meta["tokenizer.ggml.tokens"]
    prompt = "<|im_start|>user\nWhat is the capital of France?<|im_end|>\n<|im_start|>assistant\n"
    ids = json.loads(rmx_lm("tokenize", "--model", model, "--text", prompt).stdout)["ids"]
    want = reference.greedy(ids, 32)
    eos = 2
    if eos in want:
        want = want[: want.index(eos)]
    r = rmx_lm("generate", "--model", model, "--prompt", prompt, "--ignore-chat-template",
               "--max-tokens", "32", "--temp", "0", "--print-ids",
               env=DECODE_PATHS[path])
    got = json.loads(r.stdout.strip().splitlines()[-1])["ids"]
    assert got == want, ([vocab[i] for i in got], [vocab[i] for i in want])


@pytest.mark.parametrize("path", list(DECODE_PATHS))
def test_chat_answer_names_paris(model, path):
    r = rmx_lm("generate", "--model", model, "--prompt", "What is the capital of France?",
               "--max-tokens", "24", env=DECODE_PATHS[path])
    assert "Paris" in r.stdout
    assert "Generation:" in r.stdout and "tokens-per-sec" in r.stdout


def test_chat_turns_agree_on_every_decode_path(model):
    """The second turn reuses the KV cache: after a greedy step ahead, the cache holds one
    more token than the conversation lists, and the turn must rewind past it; after
    fixed-shape steps, the cache's storage was written in place at device-held positions
    and the next turn's prefill must continue from the host's count."""
    turns = "What is the capital of France?\nAnd of Italy?\n/exit\n"

    def chat(path):
        r = subprocess.run([BIN, "chat", "--model", model, "--max-tokens", "16"], input=turns,
                           capture_output=True, text=True, check=True, timeout=600,
                           env={**os.environ, **DECODE_PATHS[path]})
        return r.stdout

    host = chat("host")
    assert host.count(">> ") == 3, host
    for path in ("ahead", "static"):
        assert chat(path) == host, path


def test_static_decoding_across_attention_windows_matches_the_host_path(model):
    """The fixed-shape step attends over a window that grows by 256 tokens: a prompt of
    ~240 tokens and 60 new ones cross a window boundary mid-generation."""
    prompt = "Tell me a long story about a dragon and a knight who travel across the sea. " * 14

    def ids(path):
        r = rmx_lm("generate", "--model", model, "--prompt", prompt, "--ignore-chat-template",
                   "--max-tokens", "60", "--temp", "0", "--print-ids", env=DECODE_PATHS[path])
        return json.loads(r.stdout.strip().splitlines()[-1])["ids"]

    n_prompt = len(json.loads(rmx_lm("tokenize", "--model", model, "--text", prompt).stdout)["ids"])
    want = ids("host")
    assert n_prompt < 256 < n_prompt + len(want), (n_prompt, len(want))
    assert ids("static") == want


@pytest.mark.parametrize("args,needle", [
    (["--temp", "-1"], "temperature"),
    (["--top-p", "0"], "top_p"),
    (["--min-p", "2"], "min_p"),
    (["--repetition-penalty", "0"], "repetition_penalty"),
])
def test_invalid_sampling_values_are_clear_errors(model, args, needle):
    r = rmx_lm("generate", "--model", model, "--prompt", "hi", *args, check=False)
    assert r.returncode != 0 and needle in r.stderr and "panicked" not in r.stderr


def test_missing_and_malformed_model_files_are_clear_errors(tmp_path):
    r = rmx_lm("generate", "--model", str(tmp_path / "nope.gguf"), check=False)
    assert r.returncode != 0 and "does not exist" in r.stderr
    bad = tmp_path / "bad.gguf"
    bad.write_bytes(b"GGUF" + b"\x00" * 10)
    r = rmx_lm("generate", "--model", str(bad), check=False)
    assert r.returncode != 0 and "error" in r.stderr and "panicked" not in r.stderr
    folder = tmp_path / "folder"
    folder.mkdir()
    (folder / "config.json").write_text('{"model_type": "gpt_bigcode"}')
    r = rmx_lm("generate", "--model", str(folder), check=False)
    assert r.returncode != 0 and "unsupported architecture 'gpt_bigcode'" in r.stderr
    assert "llama" in r.stderr and "qwen3" in r.stderr


def test_kv_cache_options(model):
    r = rmx_lm("generate", "--model", model, "--prompt", "What is the capital of France?",
               "--max-tokens", "24", "--kv-bits", "8")
    assert "Paris" in r.stdout
    # A rotating cache smaller than the prompt still generates (and bounds memory).
    r = rmx_lm("generate", "--model", model, "--prompt", "What is the capital of France?",
               "--max-tokens", "40", "--max-kv-size", "24", "--print-ids")
    assert len(json.loads(r.stdout.strip().splitlines()[-1])["ids"]) > 0
    for bad, needle in ((["--kv-bits", "7"], "--kv-bits"), (["--max-kv-size", "2"], "--max-kv-size")):
        r = rmx_lm("generate", "--model", model, "--prompt", "hi", *bad, check=False)
        assert r.returncode != 0 and needle in r.stderr and "panicked" not in r.stderr


def test_prompt_longer_than_the_context_is_a_clear_error(model):
    r = rmx_lm("generate", "--model", model, "--prompt", "word " * 9000,
               "--ignore-chat-template", "--max-tokens", "1", check=False)
    assert r.returncode != 0 and "context" in r.stderr and "panicked" not in r.stderr
