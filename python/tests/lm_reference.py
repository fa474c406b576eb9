"""A float64 NumPy forward pass of a Llama-family GGUF model, over weights dequantized by
real MLX (``mx.load`` + ``mx.dequantize``): the reference rmx-lm's logits are checked
against. Written from the model's definition, independently of rmx-lm's code."""

from __future__ import annotations

import numpy as np


def _dequantize_exact(q, scales, biases, group_size):
    """codes * scale + bias in float64 (MLX's own dequantize rounds to the scales' float16)."""
    k = scales.shape[-1] * group_size
    bits = q.shape[-1] * 32 // k
    per = 32 // bits
    shifts = (np.arange(per, dtype=np.uint32) * bits).astype(np.uint32)
    codes = (q[..., None] >> shifts) & np.uint32((1 << bits) - 1)
    codes = codes.reshape(q.shape[0], k // group_size, group_size).astype(np.float64)
    w = codes * scales[..., None].astype(np.float64) + biases[..., None].astype(np.float64)
    return w.reshape(q.shape[0], k)


class LlamaReference:
    def __init__(self, path: str):
        import mlx.core as mx

        arrays, meta = mx.load(path, return_metadata=True)
        a = meta["general.architecture"]
        num = lambda k: np.array(meta[f"{a}.{k}"]).item()  # noqa: E731
        self.n_layers = int(num("block_count"))
        self.n_heads = int(num("attention.head_count"))
        self.n_kv = int(num("attention.head_count_kv"))
        self.hidden = int(num("embedding_length"))
        self.head_dim = self.hidden // self.n_heads
        self.eps = float(num("attention.layer_norm_rms_epsilon"))
        self.theta = float(num("rope.freq_base"))

        def w(name):
            if name + ".scales" in arrays:
                q, s, b = arrays[name + ".weight"], arrays[name + ".scales"], arrays[name + ".biases"]
                return _dequantize_exact(np.array(q), np.array(s.astype(mx.float32)),
                                         np.array(b.astype(mx.float32)), 32)
            return np.array(arrays[name + ".weight"].astype(mx.float32)).astype(np.float64)

        self.embed = w("token_embd")
        self.out = w("output") if "output.weight" in arrays else self.embed
        self.norm = w("output_norm")
        self.layers = []
        for i in range(self.n_layers):
            p = f"blk.{i}."
            self.layers.append({k: w(p + k) for k in (
                "attn_norm", "attn_q", "attn_k", "attn_v", "attn_output",
                "ffn_norm", "ffn_gate", "ffn_up", "ffn_down")})

    def _rms(self, x, g):
        return x / np.sqrt((x * x).mean(-1, keepdims=True) + self.eps) * g

    def _rope(self, x):
        # x (H, L, D); GGUF Llama weights pair adjacent features (MLX's traditional=True).
        L, D = x.shape[1], x.shape[2]
        inv = self.theta ** (-np.arange(0, D, 2) / D)
        ang = np.arange(L)[:, None] * inv[None, :]
        c, s = np.cos(ang), np.sin(ang)
        x1, x2 = x[..., 0::2], x[..., 1::2]
        out = np.empty_like(x)
        out[..., 0::2] = x1 * c - x2 * s
        out[..., 1::2] = x1 * s + x2 * c
        return out

    def logits(self, ids) -> np.ndarray:
        """Logits (L, vocab) of every position of one sequence."""
        h = self.embed[np.asarray(ids)]
        L, hd = len(ids), self.head_dim
        mask = np.triu(np.full((L, L), -np.inf), 1)
        rep = self.n_heads // self.n_kv
        for lw in self.layers:
            x = self._rms(h, lw["attn_norm"])
            q = (x @ lw["attn_q"].T).reshape(L, self.n_heads, hd).transpose(1, 0, 2)
            k = (x @ lw["attn_k"].T).reshape(L, self.n_kv, hd).transpose(1, 0, 2)
            v = (x @ lw["attn_v"].T).reshape(L, self.n_kv, hd).transpose(1, 0, 2)
            q, k = self._rope(q), self._rope(k)
            k, v = np.repeat(k, rep, 0), np.repeat(v, rep, 0)
            s = q @ k.transpose(0, 2, 1) / np.sqrt(hd) + mask
            p = np.exp(s - s.max(-1, keepdims=True))
            p /= p.sum(-1, keepdims=True)
            o = (p @ v).transpose(1, 0, 2).reshape(L, -1)
            h = h + o @ lw["attn_output"].T
            x = self._rms(h, lw["ffn_norm"])
            g = x @ lw["ffn_gate"].T
            h = h + ((g / (1 + np.exp(-g))) * (x @ lw["ffn_up"].T)) @ lw["ffn_down"].T
        return self._rms(h, self.norm) @ self.out.T

    def greedy(self, ids, n: int) -> list[int]:
        ids = list(ids)
        out = []
        for _ in range(n):
            t = int(np.argmax(self.logits(ids)[-1]))
            out.append(t)
            ids.append(t)
        return out
