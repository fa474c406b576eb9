"""rmx vs MLX vs NumPy benchmark (see bench/README.md).

    PYTHONPATH=python python3 bench/run.py [--quick] [--filter SUBSTR]
                                           [--repeats N] [--json PATH]

NumPy/OpenBLAS note: the project issue asks for NumPy to be measured with
OPENBLAS_CORETYPE (and OPENBLAS_L2_SIZE) unset, i.e.

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python3 bench/run.py

This script only prints their values; it never changes them (OpenBLAS reads
them when it is loaded, so changing them here would be too late anyway).
"""

import argparse
import datetime
import json
import os
import platform
import subprocess
import sys

import blas_quiet  # noqa: F401 - before NumPy: OpenBLAS threads must not spin
import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import fmt_ratio, fmt_time, measure, print_table  # noqa: E402
from workloads import build  # noqa: E402

LIBS = ("rmx", "mlx", "numpy")


def import_libs():
    mods = {"numpy": np}
    for lib, name in (("rmx", "rmx.core"), ("mlx", "mlx.core")):
        try:
            mods[lib] = __import__(name, fromlist=["core"])
        except Exception as exc:
            print(f"!! cannot import {name}: {exc}")
    return mods


def machine_info(mods):
    def sh(cmd):
        try:
            return subprocess.run(cmd, capture_output=True, text=True, timeout=10).stdout.strip()
        except Exception:
            return "?"

    cpu = "?"
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next((ln.split(":", 1)[1].strip() for ln in f if ln.startswith("model name")), "?")
    except OSError:
        pass
    info = {
        "date": datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
        "host": platform.node(),
        "cpu": cpu,
        "nproc": sh(["nproc"]),
        "cpu_count": os.cpu_count(),
        "loadavg": open("/proc/loadavg").read().split()[:3] if os.path.exists("/proc/loadavg") else "?",
        "python": platform.python_version(),
        "numpy": np.__version__,
        "mlx": getattr(mods.get("mlx"), "__version__", "not importable"),
        "rmx": rmx_version(mods.get("rmx"), sh),
        "blas": blas_info(),
    }
    for var in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE", "OPENBLAS_NUM_THREADS",
                "OMP_NUM_THREADS", "RAYON_NUM_THREADS"):
        info[var] = os.environ.get(var, "<unset>")
    return info


def rmx_version(rmx, sh):
    if rmx is None:
        return "not importable"
    ver = getattr(rmx, "__version__", None)
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    commit = sh(["git", "-C", root, "describe", "--always", "--dirty"])
    so = [f for f in os.listdir(os.path.dirname(os.path.dirname(rmx.__file__)))
          if f.startswith("_rmx")] if hasattr(rmx, "__file__") else []
    return f"{ver or 'no __version__'}, git {commit}, ext {','.join(so) or '?'}"


def blas_info():
    try:
        from threadpoolctl import threadpool_info
        return "; ".join(f"{d.get('internal_api')} {d.get('version')} arch={d.get('architecture')} "
                         f"threads={d.get('num_threads')}"
                         for d in threadpool_info() if d.get("user_api") == "blas") or "?"
    except ImportError:
        try:
            blas = np.show_config(mode="dicts")["Build Dependencies"]["blas"]
            return f"{blas.get('name')} {blas.get('version')} (threadpoolctl not installed)"
        except Exception as exc:
            return f"? ({exc})"


def make_fns(w, mods):
    """One zero-argument callable per library; setup errors become Exceptions."""
    rng = np.random.default_rng(0)
    inputs = w.inputs(rng)
    fns = {}
    for lib in ("rmx", "mlx"):
        mx = mods.get(lib)
        if w.mx_fn is None:
            continue
        if mx is None:
            fns[lib] = ImportError(f"{lib} not importable")
            continue
        try:
            xs = [mx.array(a).astype(getattr(mx, w.dtype)) for a in inputs]
            if xs:
                mx.eval(*xs)

            def run(mx=mx, xs=xs):
                out = w.mx_fn(mx, *xs)
                mx.eval(out)
                return out
            fns[lib] = run
        except Exception as exc:
            fns[lib] = exc
    if w.np_fn is not None:
        fns["numpy"] = lambda: w.np_fn(*inputs)
    return fns


def to_numpy(lib, out, mods):
    if lib == "numpy":
        return np.asarray(out, dtype=np.float32)
    return np.array(out.astype(mods[lib].float32))


def check(w, outputs, mods):
    """Compare rmx's output with MLX's (or NumPy's): max|diff| / max|ref|."""
    if "rmx" not in outputs:
        return "-"
    ref_lib = "mlx" if "mlx" in outputs else "numpy" if "numpy" in outputs else None
    if ref_lib is None:
        return "-"
    try:
        got, ref = to_numpy("rmx", outputs["rmx"], mods), to_numpy(ref_lib, outputs[ref_lib], mods)
        if got.shape != ref.shape:
            return f"SHAPE {got.shape} vs {ref.shape}"
        err = float(np.max(np.abs(got - ref)) / max(float(np.max(np.abs(ref))), 1e-30)) if ref.size else 0.0
        return "ok" if err <= w.tol else f"MISMATCH {err:.1e} vs {ref_lib}"
    except Exception as exc:
        return f"check failed: {type(exc).__name__}: {exc}"[:60]


def rate(w, seconds):
    if seconds is None or w.work is None:
        return None
    kind, amount = w.work
    if kind == "ops":
        return seconds / amount * 1e6  # us per op
    return amount / seconds / 1e9  # GB/s or GFLOP/s


def fmt_rate(w, value):
    if value is None:
        return "-"
    unit = {"bytes": "GB/s", "flops": "GFLOP/s", "ops": "us/op"}[w.work[0]]
    return f"{value:.3g} {unit}" if w.work[0] == "ops" else f"{value:.1f} {unit}"


def bars(rows):
    """The issue's targets, evaluated on this run's medians."""
    med = {r["key"]: {lib: r["results"].get(lib, {}).get("median") for lib in LIBS} for r in rows}
    rates = {r["key"]: {lib: r["results"].get(lib, {}).get("rate") for lib in LIBS} for r in rows}
    out = []

    def bar(text, ok, detail):
        out.append({"bar": text, "pass": ok, "detail": detail})

    for r in rows:
        m = med[r["key"]]
        if r["key"] != "copy" and m["mlx"] is not None:
            ok = m["rmx"] is not None and m["rmx"] < m["mlx"]
            bar(f"faster than MLX: {r['name']}", ok,
                f"MLX/rmx = {fmt_ratio(m['mlx'], m['rmx'])}")
    for k in med:
        if k.startswith("matmul_f32"):
            m = med[k]
            ok = None not in (m["rmx"], m["numpy"]) and m["numpy"] / m["rmx"] >= 0.85
            bar(f"{k} >= 85% of NumPy+OpenBLAS", ok, f"NumPy/rmx = {fmt_ratio(m['numpy'], m['rmx'])}")
    if "add" in rates and "copy" in rates:
        a, c = rates["add"]["rmx"], rates["copy"]["numpy"]
        ok = None not in (a, c) and a >= 0.8 * c
        bar("add >= 80% of copy bandwidth", ok,
            f"{a:.1f} / {c:.1f} GB/s = {100 * a / c:.0f}%" if None not in (a, c) else "n/a")
    if "chain" in med:
        m = med["chain"]
        ok = None not in (m["rmx"], m["numpy"]) and m["numpy"] / m["rmx"] >= 2
        bar("exp(sin(x)*2+1)*x >= 2x faster than NumPy", ok,
            f"NumPy/rmx = {fmt_ratio(m['numpy'], m['rmx'])}")
    if "chain" in med and "chain_compiled" in med:
        plain, fused = med["chain"]["rmx"], med["chain_compiled"]["rmx"]
        ok = None not in (plain, fused) and plain / fused >= 2
        bar("issue 5: compiled chain >= 2x the uncompiled one", ok,
            f"uncompiled/compiled = {fmt_ratio(plain, fused)}")
        fused_rate, copy_rate = rates["chain_compiled"]["rmx"], rates["copy"]["numpy"]
        if None not in (fused_rate, copy_rate):
            # The floor: one read and one write of the input at the machine's copy bandwidth.
            bar("issue 5: compiled chain within 1.3x of the 1-read+1-write floor",
                copy_rate / fused_rate <= 1.3,
                f"{copy_rate / fused_rate:.2f}x the floor ({fused_rate:.1f} vs {copy_rate:.1f} GB/s)")
    if "overhead" in rates:
        v = rates["overhead"]["rmx"]
        bar("per-op overhead < 1 us", v is not None and v < 1.0,
            f"{v:.3g} us/op" if v is not None else "n/a")
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="smaller sizes, fewer repeats (smoke test)")
    ap.add_argument("--filter", default="", help="only workloads whose key or name contains SUBSTR")
    ap.add_argument("--repeats", type=int, default=None, help="timed repetitions (default 10, quick 3)")
    ap.add_argument("--warmup", type=int, default=None, help="untimed runs first (default 2, quick 1)")
    ap.add_argument("--json", default=None, help="write results to this path")
    args = ap.parse_args()
    repeats = args.repeats or (3 if args.quick else 10)
    warmup = args.warmup if args.warmup is not None else (1 if args.quick else 2)

    mods = import_libs()
    info = machine_info(mods)
    print("== machine ==")
    for k, v in info.items():
        print(f"  {k:22} {v}")
    if info["OPENBLAS_CORETYPE"] != "<unset>":
        print("  note: OPENBLAS_CORETYPE is set; the issue asks NumPy to be measured with it unset:\n"
              "        env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python3 bench/run.py")
    print(f"== {'quick' if args.quick else 'full'} run: warmup {warmup}, median of {repeats}, "
          f"each library warmed up, then timed back to back ==", flush=True)

    # The copy-bandwidth row is always measured: the add bar is relative to it.
    selected = [w for w in build(args.quick)
                if w.key == "copy" or args.filter in w.key or args.filter in w.name]
    rows = []
    for w in selected:
        print(f"  running {w.name} ...", flush=True)
        fns = make_fns(w, mods)
        results, outputs = measure(fns, warmup, repeats)
        for res in results.values():
            res["rate"] = rate(w, res.get("median"))
        rows.append({"key": w.key, "name": w.name, "note": w.note, "work": w.work,
                     "dtype": w.dtype, "results": results, "check": check(w, outputs, mods)})
        del fns, outputs
        for lib in ("rmx", "mlx"):
            clear = getattr(mods.get(lib), "clear_cache", None)
            if clear:
                clear()

    headers = ["workload", "rmx", "MLX", "NumPy", "MLX/rmx", "NumPy/rmx",
               "rmx rate", "MLX rate", "NumPy rate", "check"]
    table, errors = [], []
    for r, w in zip(rows, selected):
        res = r["results"]
        med = {lib: res.get(lib, {}).get("median") for lib in LIBS}
        cells = [r["name"]]
        for lib in LIBS:
            if "error" in res.get(lib, {}):
                cells.append("ERROR")
                errors.append(f"{r['name']} [{lib}]: {res[lib]['error']}")
            else:
                cells.append(fmt_time(med[lib]))
        cells += [fmt_ratio(med["mlx"], med["rmx"]), fmt_ratio(med["numpy"], med["rmx"])]
        cells += [fmt_rate(w, res.get(lib, {}).get("rate")) for lib in LIBS]
        cells.append(r["check"])
        table.append(cells)
    print()
    print_table(headers, table)
    print("\nratios > 1 mean rmx is faster. Notes:")
    for w in selected:
        if w.note:
            print(f"  {w.name}: {w.note}")
    if errors:
        print("\nerrors:")
        for e in errors:
            print(f"  {e}")

    results_bars = bars(rows)
    print("\n== bars from the issue ==")
    for b in results_bars:
        print(f"  [{'PASS' if b['pass'] else 'FAIL'}] {b['bar']}: {b['detail']}")

    if args.json:
        with open(args.json, "w") as f:
            json.dump({"machine": info, "quick": args.quick, "warmup": warmup, "repeats": repeats,
                       "rows": rows, "bars": results_bars}, f, indent=1, default=str)
        print(f"\nwrote {args.json}")


if __name__ == "__main__":
    main()
