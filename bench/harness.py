"""Timing and table helpers for bench/run.py.

`measure` times one callable per library: each library in turn runs its
warm-up calls (at least `warmup`, and for at least WARM_SECONDS) and then its
timed repetitions back to back, and the median is kept. A library that raises
is recorded with its error and dropped from the rest of that workload; the
others continue.

Why blocks rather than interleaving (rmx, mlx, numpy, rmx, ...): on this VM a
core that idled for a few tenths of a second runs slowly for the next ~50 ms.
MLX's CPU backend and NumPy run on the calling thread, whose core stays busy;
rmx's kernels also use the second core, which idled while the other libraries
ran. Measured 2026-11-30: `exp(sin(x)*2+1)*x` on 10M f32 took 9.5 ms in a
loop and 10-19 ms (mostly 15-17) for each of the three calls following a
0.28 s pause (sleep, a spinning main thread or an MLX call alike). What is timed here is
the steady state of a loop, for every library alike.
"""

import gc
import statistics
import time


def short_error(exc):
    text = f"{type(exc).__name__}: {exc}".replace("\n", " ")
    return text if len(text) <= 120 else text[:117] + "..."


# each library warms up for at least this long (seconds) before its timed calls
WARM_SECONDS = 0.2


def measure(fns, warmup, repeats):
    """fns: {lib: callable or Exception}. Each callable does the whole job
    (for lazy libraries: build the graph and eval it) and returns its output.

    Returns ({lib: {"median": s, "times": [...]} or {"error": str}},
             {lib: output of the first call}) -- outputs are for the
    correctness check.
    """
    results, outputs, live = {}, {}, {}
    for lib, fn in fns.items():
        if isinstance(fn, BaseException):
            results[lib] = {"error": short_error(fn)}
        else:
            live[lib] = fn
            results[lib] = {"times": []}

    def call(lib, timed):
        try:
            t0 = time.perf_counter()
            out = live[lib]()
            dt = time.perf_counter() - t0
        except Exception as exc:  # keep going with the other libraries
            results[lib] = {"error": short_error(exc)}
            del live[lib]
            return
        if lib not in outputs:
            outputs[lib] = out
        if timed:
            results[lib]["times"].append(dt)

    gc.collect()
    gc.disable()
    try:
        for lib in list(live):
            start, n = time.perf_counter(), 0
            while lib in live and (n < warmup or time.perf_counter() - start < WARM_SECONDS):
                call(lib, timed=False)
                n += 1
            for _ in range(repeats):
                if lib in live:
                    call(lib, timed=True)
    finally:
        gc.enable()
    for lib in live:
        results[lib]["median"] = statistics.median(results[lib]["times"])
    return results, outputs


def fmt_time(s):
    if s is None:
        return "-"
    if s < 1e-3:
        return f"{s * 1e6:.1f} us"
    if s < 1.0:
        return f"{s * 1e3:.2f} ms"
    return f"{s:.2f} s"


def fmt_ratio(num, den):
    if num is None or den is None or den == 0:
        return "-"
    return f"{num / den:.2f}x"


def print_table(headers, rows):
    """Plain aligned text table; first column left-aligned, others right."""
    widths = [max(len(str(r[i])) for r in [headers] + rows) for i in range(len(headers))]

    def line(cells):
        out = [str(cells[0]).ljust(widths[0])]
        out += [str(c).rjust(w) for c, w in zip(cells[1:], widths[1:])]
        return "  ".join(out).rstrip()

    print(line(headers))
    print("  ".join("-" * w for w in widths))
    for r in rows:
        print(line(r))
