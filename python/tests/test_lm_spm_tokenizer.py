"""rmx-lm's rebuild of a GGUF SentencePiece vocabulary (`tokenizer.ggml.model == "llama"`, as in
Llama 2 / TinyLlama / Mistral GGUFs) against the `sentencepiece` library itself.

A small SentencePiece BPE model (byte fallback, split digits, identity normalization: Llama's
settings) is trained here with `sentencepiece` on fixed text, written into a tiny random-weight
Llama GGUF the way llama.cpp's converter writes one (pieces, scores, token types), and then:
- ids of plain text equal [BOS] + sentencepiece's ids;
- around control and user-defined tokens, text pieces are encoded as llama.cpp does (each piece
  on its own, with its own space prefix, through sentencepiece) and the tokens kept whole;
- decoding gives sentencepiece's text back, and so does generated text streamed token by token
  (SentencePiece decoders drop a leading space per call: the streamer puts it back).
"""

from __future__ import annotations

import codecs
import json

import numpy as np
import pytest

from test_lm import rmx_lm

spm = pytest.importorskip("sentencepiece")
gguf = pytest.importorskip("gguf")
tokenizers = pytest.importorskip("tokenizers")

CONTROL = ["[INST]", "[/INST]"]
USER = ["<tool>"]


def _corpus() -> list[str]:
    import argparse
    import collections
    import contextlib
    import io
    import textwrap

    with contextlib.redirect_stdout(io.StringIO()):
        import this

    zen = codecs.decode(this.s, "rot13")
    return "\n".join([zen, json.__doc__, textwrap.__doc__, argparse.__doc__, collections.__doc__]).splitlines()


@pytest.fixture(scope="module")
def sp():
    import io

    proto = io.BytesIO()
    spm.SentencePieceTrainer.train(
        sentence_iterator=iter(_corpus()), model_writer=proto, model_type="bpe", vocab_size=700,
        byte_fallback=True, normalization_rule_name="identity", add_dummy_prefix=True,
        remove_extra_whitespaces=False, split_digits=True, user_defined_symbols=USER,
        control_symbols=CONTROL, hard_vocab_limit=False, allow_whitespace_only_pieces=True, minloglevel=2)
    return spm.SentencePieceProcessor(model_proto=proto.getvalue())


def _token_type(sp, i: int) -> int:
    """llama.cpp's converter: 1 normal, 2 unknown, 3 control, 4 user-defined, 5 unused, 6 byte."""
    if sp.is_unknown(i):
        return 2
    if sp.is_control(i):
        return 3
    if sp.is_unused(i):
        return 5
    if sp.is_byte(i):
        return 6
    if sp.id_to_piece(i) in USER:
        return 4
    return 1


@pytest.fixture(scope="module")
def model(sp, tmp_path_factory) -> str:
    """A tiny Llama GGUF (random float32 weights) carrying the trained vocabulary."""
    return _write_gguf(sp, str(tmp_path_factory.mktemp("spm") / "tiny-spm.gguf"))


def _write_gguf(sp, path: str, spaces: bool = False) -> str:
    """`spaces`: pieces of `▁` only stored with real spaces, as some Gemma files have them."""
    n = sp.get_piece_size()
    pieces = [sp.id_to_piece(i) for i in range(n)]
    if spaces:
        pieces = [" " * len(p) if len(p) > 1 and set(p) == {"\u2581"} else p for p in pieces]
        assert "  " in pieces
    hidden, ff, heads = 32, 64, 4
    w = gguf.GGUFWriter(path, "llama")
    w.add_context_length(256)
    w.add_embedding_length(hidden)
    w.add_block_count(1)
    w.add_feed_forward_length(ff)
    w.add_head_count(heads)
    w.add_head_count_kv(heads)
    w.add_layer_norm_rms_eps(1e-5)
    w.add_rope_freq_base(10000.0)
    w.add_vocab_size(n)
    w.add_tokenizer_model("llama")
    w.add_token_list([p.encode() for p in pieces])
    w.add_token_scores([sp.get_score(i) for i in range(n)])
    w.add_token_types([_token_type(sp, i) for i in range(n)])
    w.add_bos_token_id(sp.bos_id())
    w.add_eos_token_id(sp.eos_id())
    w.add_unk_token_id(sp.unk_id())
    w.add_add_bos_token(True)
    rng = np.random.default_rng(0)
    t = lambda *s: (rng.standard_normal(s) * 0.3).astype(np.float32)  # noqa: E731
    # Tied output: zero rows give byte and control tokens logit 0, below the best of the
    # hundreds of random normal ones, so greedy generation writes whole pieces (how invalid
    # UTF-8 from stray byte tokens decodes differs between sentencepiece and HF's ByteFallback).
    embed = t(n, hidden) * 3
    embed[[i for i in range(n) if _token_type(sp, i) != 1]] = 0.0
    w.add_tensor("token_embd.weight", embed)
    w.add_tensor("output_norm.weight", np.ones(hidden, np.float32))
    w.add_tensor("blk.0.attn_norm.weight", np.ones(hidden, np.float32))
    w.add_tensor("blk.0.ffn_norm.weight", np.ones(hidden, np.float32))
    for name, shape in [("attn_q", (hidden, hidden)), ("attn_k", (hidden, hidden)), ("attn_v", (hidden, hidden)),
                        ("attn_output", (hidden, hidden)), ("ffn_gate", (ff, hidden)), ("ffn_up", (ff, hidden)),
                        ("ffn_down", (hidden, ff))]:
        w.add_tensor(f"blk.0.{name}.weight", t(*shape))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    return path


def _rmx(model, text):
    return json.loads(rmx_lm("tokenize", "--model", model, "--text", text).stdout)


PLAIN = [
    "Hello world",
    "Beautiful is better than ugly.",
    "  two leading spaces, and   three inside",
    " one leading space",
    "trailing spaces   ",
    "digits 2024 and 3.14159, 1234567890",
    "emoji 🦀🚀 and accents café naïve 日本語",  # not in the vocabulary: byte fallback
    "tabs\tand\nnewlines\r\n",
    "\u2581 an explicit metaspace",
    "x",
    "",
]


@pytest.mark.parametrize("text", PLAIN)
def test_plain_text_ids_match_sentencepiece(model, sp, text):
    got = _rmx(model, text)
    assert got["ids"] == [sp.bos_id()] + sp.encode(text)


def test_pieces_of_real_spaces_match_as_spaces(sp, tmp_path):
    path = _write_gguf(sp, str(tmp_path / "spaces.gguf"), spaces=True)
    for text in ["  two leading spaces, and   three inside", "a    b"]:
        got = _rmx(path, text)
        assert got["ids"] == [sp.bos_id()] + sp.encode(text)
        used = [sp.id_to_piece(i) for i in got["ids"]]
        assert any(len(p) > 1 and set(p) == {"\u2581"} for p in used), used  # a respelled one


@pytest.mark.parametrize("text", PLAIN)
def test_decoding_matches_sentencepiece(model, sp, tmp_path, text):
    ids = sp.encode(text)
    dump = tmp_path / "tokenizer.json"
    rmx_lm("tokenize", "--model", model, "--text", text, "--dump", str(dump))
    tok = tokenizers.Tokenizer.from_file(str(dump))
    assert tok.decode(ids) == sp.decode(ids)
    # rmx-lm's own decode (BOS included, printed as its text): the same after "<s>".
    got = _rmx(model, text)["decoded"]
    assert got == "<s>" + (" " if text else "") + sp.decode(ids)


def _llama_cpp_reference(sp, text: str) -> list[int]:
    """llama.cpp's rule for SentencePiece vocabularies: special tokens (control and
    user-defined) are cut out of the text whole; every text piece is tokenized on its own,
    with its own space prefix (sentencepiece's dummy prefix)."""
    import re

    specials = CONTROL + USER + ["<s>", "</s>"]
    # BOS first, unless the text starts with it (mlx-lm's rule: no double BOS).
    ids = [] if text.startswith("<s>") else [sp.bos_id()]
    for part in re.split("(" + "|".join(map(re.escape, specials)) + ")", text):
        if part in specials:
            ids.append(sp.piece_to_id(part))
        elif part:
            ids += sp.encode(part)
    return ids


@pytest.mark.parametrize("text", [
    "[INST] What is 2+2? [/INST]",
    "<s>[INST]hi[/INST] ok</s>",
    "call <tool> now",
    "<tool>x<tool>",
    "[INST]  spaced  [/INST]",
])
def test_special_tokens_stay_whole(model, sp, text):
    got = _rmx(model, text)["ids"]
    assert got == _llama_cpp_reference(sp, text)
    for s in CONTROL + USER:
        if s in text:
            assert sp.piece_to_id(s) in got


def test_streamed_text_equals_sentencepiece_decoding(model, sp):
    """Generation streams pieces one or a few tokens at a time: the spaces SentencePiece
    writes as a token's leading `▁` must survive (its decoder strips one per call), and byte
    tokens come out as sentencepiece decodes them."""
    r = rmx_lm("generate", "--model", model, "--prompt", "Beautiful is better", "--ignore-chat-template",
               "--max-tokens", "40", "--temp", "0", "--repetition-penalty", "1.5", "--print-ids")
    ids = json.loads(r.stdout.strip().splitlines()[-1])["ids"]
    streamed = r.stdout.split("\n==========")[0]
    pieces = [sp.id_to_piece(i) for i in ids]
    assert sum(p.startswith("\u2581") for p in pieces[1:]) >= 3, pieces  # the test can fail
    assert not any(sp.is_control(i) or sp.is_byte(i) for i in ids), pieces
    assert streamed == sp.decode(ids), pieces
