"""Imported before NumPy by every benchmark that times NumPy beside rmx or MLX.

OpenBLAS's worker threads busy-wait after each call (2^28 cycles by default, ~0.1 s)
before they sleep. When the benchmarks interleaved the libraries on every repetition, the
library timed right after a NumPy matmul shared the 2 cores with two spinning threads:
rmx's f32 matmul read 100-120 GFLOP/s that way against 185-210 alone. A short timeout
makes OpenBLAS's threads sleep at once; NumPy's own timings do not change (measured
alone at 512-2048: 199-207 GFLOP/s without it, 198-203 with it). An explicit OPENBLAS_THREAD_TIMEOUT wins.
"""

import os

os.environ.setdefault("OPENBLAS_THREAD_TIMEOUT", "4")
