"""rmx-lm versus real MLX (mlx-lm) and llama.cpp (llama-bench) generating with the default model,
SmolLM2-135M-Instruct (4-bit Q4_1 GGUF; MLX runs the same packed weights after `rmx-lm convert`,
llama.cpp reads the GGUF itself), batch 1, same prompt and generation lengths, in one run. Also
reports the memory-bandwidth limit: weight bytes read per generated token / measured copy
bandwidth.

    python3 bench/lm.py [-p 512] [-g 128] [-n 3] [-t THREADS] [--no-llamacpp] [--no-mlx]

llama.cpp is built once from the `llama-cpp-python` sdist and cached (see bench/llamacpp.py);
the first run downloads and compiles it (~14 minutes on the 2-core VM). The engines run one
after the other (llama.cpp, rmx-lm, MLX); each row says how many cores its process kept busy,
so a row measured while another job took a core can be told apart.
"""

from __future__ import annotations

import argparse
import datetime
import importlib.metadata
import os
import platform
import re
import resource
import subprocess
import sys
import tempfile
import time

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "python", "tests"))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
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


def cpu_model() -> str:
    try:
        for ln in open("/proc/cpuinfo"):
            if ln.startswith("model name"):
                return ln.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "?"


def load() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


class Cores:
    """CPU seconds of finished child processes per wall second while in the block: about the
    thread count when an engine had the cores to itself, less when other jobs shared them."""

    def __enter__(self):
        self.t = time.perf_counter()
        r = resource.getrusage(resource.RUSAGE_CHILDREN)
        self.cpu = r.ru_utime + r.ru_stime
        self.load = load()
        return self

    def __exit__(self, *exc):
        r = resource.getrusage(resource.RUSAGE_CHILDREN)
        self.value = (r.ru_utime + r.ru_stime - self.cpu) / (time.perf_counter() - self.t)


def run_rmx(gguf: str, a) -> tuple[float, float, list, list]:
    out = subprocess.run([BIN, "benchmark", "--model", gguf, "-p", str(a.p), "-g", str(a.g),
                          "-n", str(a.n)], capture_output=True, text=True, check=True).stdout
    rows = [ln.split("|") for ln in out.splitlines() if re.match(r"\|[^|]*\| \d+ \|", ln)]
    med = [ln for ln in out.splitlines() if "| median |" in ln][0].split("|")
    return float(med[4]), float(med[6]), [float(r[4]) for r in rows], [float(r[6]) for r in rows]


def run_mlx(gguf: str, a, cores: Cores) -> tuple[float, float, list, list]:
    with tempfile.TemporaryDirectory() as tmp:
        folder = os.path.join(tmp, "mlx")
        subprocess.run([BIN, "convert", "--model", gguf, "--out", folder, "--dtype", "float32"],
                       check=True, capture_output=True)
        with cores:
            r = subprocess.run([sys.executable, "-m", "mlx_lm.benchmark", "--model", folder,
                                "-p", str(a.p), "-g", str(a.g), "-n", str(a.n)],
                               capture_output=True, text=True)
    text = r.stdout + r.stderr
    trials = "\n".join(ln for ln in text.splitlines() if ln.startswith("Trial "))  # not "Averages"
    pp = re.findall(r"prompt_tps=([\d.]+)", trials)
    tg = re.findall(r"generation_tps=([\d.]+)", trials)
    if not pp:
        print("mlx_lm.benchmark output:\n" + text[-2000:])
    mlx_pp = float(np.median([float(x) for x in pp])) if pp else float("nan")
    mlx_tg = float(np.median([float(x) for x in tg])) if tg else float("nan")
    return mlx_pp, mlx_tg, [float(x) for x in pp], [float(x) for x in tg]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("-p", type=int, default=512, help="prompt tokens (default 512)")
    ap.add_argument("-g", type=int, default=128, help="generated tokens (default 128)")
    ap.add_argument("-n", type=int, default=3, help="trials per engine (medians reported)")
    ap.add_argument("-t", type=int, default=os.cpu_count() or 2,
                    help="llama.cpp threads (default: all cores)")
    ap.add_argument("--no-llamacpp", action="store_true", help="skip llama.cpp")
    ap.add_argument("--no-mlx", action="store_true", help="skip MLX (mlx-lm)")
    a = ap.parse_args()
    gguf = fixtures.smollm2_gguf()
    nan = float("nan")

    llama = None
    if not a.no_llamacpp:
        import llamacpp

        llamacpp.binary()  # build (first run only) before anything is timed
        llama = llamacpp

    mlx_ver = importlib.metadata.version("mlx")
    mlx_lm_ver = importlib.metadata.version("mlx-lm")
    print(f"{datetime.datetime.now():%Y-%m-%d %H:%M}, {cpu_model()}, nproc {os.cpu_count()}, "
          f"load average {load()}; model {os.path.basename(gguf)}, batch 1, "
          f"p={a.p}, g={a.g}, {a.n} trials (medians)")

    # llama.cpp first: its spinning OpenMP threads suffer most when another job takes a core.
    ll, c_ll = None, Cores()
    if llama:
        with c_ll:
            ll = llama.bench(gguf, a.p, a.g, a.t, a.n)
    c_rmx = Cores()
    with c_rmx:
        rmx_pp, rmx_tg, rmx_pps, rmx_tgs = run_rmx(gguf, a)
    c_mlx = Cores()
    mlx_pp, mlx_tg, mlx_pps, mlx_tgs = (nan, nan, [], []) if a.no_mlx else run_mlx(gguf, a, c_mlx)
    end_load = load()

    bw = bandwidth_gbs()
    wb = weight_bytes(gguf)
    limit = bw * 1e9 / wb
    print(f"weights read per token: {wb / 1e6:.1f} MB; copy bandwidth {bw:.1f} GB/s; "
          f"bandwidth limit {limit:.0f} tok/s; load average at the end {end_load}")
    print(f"| | prompt tok/s (p={a.p}) | generation tok/s (g={a.g}) | generation / limit | "
          f"cores busy (load avg before) |")
    print("|---|---|---|---|---|")

    def row(name, pp, tg, c):
        print(f"| {name} | {pp:.1f} | {tg:.1f} | {tg / limit:.0%} | {c.value:.2f} ({c.load}) |")

    row("rmx-lm", rmx_pp, rmx_tg, c_rmx)
    if not a.no_mlx:
        row(f"mlx-lm {mlx_lm_ver} (MLX {mlx_ver} CPU)", mlx_pp, mlx_tg, c_mlx)
    if ll:
        info = llama.build_info()
        ll_pp, ll_tg = ll.get("pp", nan), ll.get("tg", nan)
        repack = " --repack 0" if "--repack" in ll["cmds"][0] else ""
        row(f"llama.cpp {info['llama_cpp_commit']} (llama-bench -t {a.t}{repack})", ll_pp, ll_tg, c_ll)
        print(f"| rmx / llama.cpp | {rmx_pp / ll_pp:.2f}x | {rmx_tg / ll_tg:.2f}x | | |")
    if not a.no_mlx:
        print(f"| rmx / MLX | {rmx_pp / mlx_pp:.2f}x | {rmx_tg / mlx_tg:.2f}x | | |")
    if ll:
        print(f"llama.cpp: llama-cpp-python {info['llama_cpp_python']} vendoring llama.cpp "
              f"{info['llama_cpp_commit']}, {' '.join(info['flags'])}; generation is tg{a.g} "
              f"at depth {a.p} (after a {a.p}-token prompt, like rmx-lm and mlx-lm); "
              f"from an empty context it is {ll.get('tg_d0', nan):.1f} tok/s")
    fmt = lambda xs: "[" + ", ".join(f"{x:.1f}" for x in xs) + "]"  # noqa: E731
    print(f"trials (prompt / generation tok/s): rmx-lm {fmt(rmx_pps)} / {fmt(rmx_tgs)}"
          + ("" if a.no_mlx else f"; mlx-lm {fmt(mlx_pps)} / {fmt(mlx_tgs)}")
          + (f"; llama.cpp {fmt(ll.get('pp_samples', []))} / {fmt(ll.get('tg_samples', []))}"
             if ll else ""))
    print("cores busy = CPU seconds / wall seconds of the engine's process: about its thread "
          "count when it had the cores to itself, less when other jobs shared them.")


if __name__ == "__main__":
    main()
