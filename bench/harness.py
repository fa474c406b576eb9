"""Timing and table helpers for bench/run.py.

`measure` runs one callable per library, interleaved per repetition
(rmx, mlx, numpy, rmx, mlx, numpy, ...) so that machine noise hits every
library alike, and keeps the median. A library that raises is recorded with
its error and dropped from the rest of that workload; the others continue.
"""

import gc
import statistics
import time


def short_error(exc):
    text = f"{type(exc).__name__}: {exc}".replace("\n", " ")
    return text if len(text) <= 120 else text[:117] + "..."


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
        for i in range(warmup + repeats):
            for lib in list(live):
                call(lib, timed=i >= warmup)
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
