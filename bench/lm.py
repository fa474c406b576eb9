"""rmx-lm versus real MLX (mlx-lm) generating with the default model, SmolLM2-135M-Instruct
(4-bit Q4_1 GGUF; MLX runs the same packed weights after `rmx-lm convert`), batch 1, same
prompt and generation lengths, in one run. Also reports the memory-bandwidth limit: weight
bytes read per generated token / measured copy bandwidth.

    python3 bench/lm.py [-p 512] [-g 128] [-n 3]
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
import time

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "python", "tests"))
import fixtures  # noqa: E402

BIN = os.path.join(ROOT, "target", "release", "rmx-lm")


def bandwidth_gbs() -> float:
    a = np.ones(64 << 20, dtype=np.float32)  # 256 MiB
    b = np.empty_like(a)
    best = 0.0
    for _ in range(5):
        t = time.perf_counter()
        np.copyto(b, a)
        dt = time.perf_counter() - t
        best = max(best, 2 * a.nbytes / dt / 1e9)  # read + write
    return best


def weight_bytes(gguf: str) -> int:
    """Bytes a decode step reads: every packed matrix (weights, scales, biases) and norm, the
    tied embedding once as the output head (rows looked up for the input are negligible)."""
    import mlx.core as mx

    arrays = mx.load(gguf)
    return sum(a.nbytes for a in arrays.values())


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("-p", type=int, default=512)
    ap.add_argument("-g", type=int, default=128)
    ap.add_argument("-n", type=int, default=3)
    a = ap.parse_args()
    gguf = fixtures.smollm2_gguf()
    out = subprocess.run([BIN, "benchmark", "--model", gguf, "-p", str(a.p), "-g", str(a.g),
                          "-n", str(a.n)], capture_output=True, text=True, check=True).stdout
    med = [ln for ln in out.splitlines() if "| median |" in ln][0].split("|")
    rmx_pp, rmx_tg = float(med[4]), float(med[6])
    with tempfile.TemporaryDirectory() as tmp:
        folder = os.path.join(tmp, "mlx")
        subprocess.run([BIN, "convert", "--model", gguf, "--out", folder, "--dtype", "float32"],
                       check=True, capture_output=True)
        r = subprocess.run([sys.executable, "-m", "mlx_lm.benchmark", "--model", folder,
                            "-p", str(a.p), "-g", str(a.g), "-n", str(a.n)],
                           capture_output=True, text=True)
    text = r.stdout + r.stderr
    pp = re.findall(r"prompt_tps=([\d.]+)", text)
    tg = re.findall(r"generation_tps=([\d.]+)", text)
    mlx_pp = float(np.median([float(x) for x in pp])) if pp else float("nan")
    mlx_tg = float(np.median([float(x) for x in tg])) if tg else float("nan")
    if not pp:
        print("mlx_lm.benchmark output:\n" + text[-2000:])
    bw = bandwidth_gbs()
    wb = weight_bytes(gguf)
    limit = bw * 1e9 / wb
    print(f"weights read per token: {wb / 1e6:.1f} MB; copy bandwidth {bw:.1f} GB/s; "
          f"bandwidth limit {limit:.0f} tok/s")
    print(f"| | prompt tok/s (p={a.p}) | generation tok/s (g={a.g}) | generation / limit |")
    print("|---|---|---|---|")
    print(f"| rmx-lm | {rmx_pp:.1f} | {rmx_tg:.1f} | {rmx_tg / limit:.0%} |")
    print(f"| mlx-lm (MLX 0.32.4 CPU) | {mlx_pp:.1f} | {mlx_tg:.1f} | {mlx_tg / limit:.0%} |")
    print(f"| rmx / MLX | {rmx_pp / mlx_pp:.2f}x | {rmx_tg / mlx_tg:.2f}x | |")


if __name__ == "__main__":
    main()
