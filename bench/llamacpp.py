"""llama.cpp's `llama-bench`, built from the llama.cpp that the `llama-cpp-python` source
package vendors (a benchmark-only dependency: nothing in rmx links it).

The first call downloads the sdist of the pinned version into the cache folder (default
~/.cache/rmx/llama.cpp, or $RMX_LLAMACPP_CACHE), extracts its `vendor/llama.cpp` and builds
only the `llama-bench` target with CMake: Release, CPU only (`GGML_NATIVE=ON`, no CUDA / Metal /
Vulkan / BLAS), static libraries, `-j2` (or $RMX_LLAMACPP_JOBS). Later calls reuse the cached
binary. `cmake` and `ninja` are pip-installed if `cmake` is missing.

    python3 bench/llamacpp.py                 # build (or find) llama-bench, print its path
    python3 bench/llamacpp.py -m model.gguf   # and run it: -p 512 -g 128 -t 2 -r 3
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import re
import shutil
import subprocess
import sys
import sysconfig
import tarfile
import time
import urllib.request

VERSION = "0.3.36"  # llama-cpp-python; it vendors llama.cpp at the commit its CHANGELOG names
CACHE = os.environ.get("RMX_LLAMACPP_CACHE",
                       os.path.join(os.path.expanduser("~"), ".cache", "rmx", "llama.cpp"))
JOBS = os.environ.get("RMX_LLAMACPP_JOBS", "2")

CMAKE_FLAGS = [
    "-DCMAKE_BUILD_TYPE=Release",
    "-DGGML_NATIVE=ON",
    "-DGGML_CUDA=OFF",
    "-DGGML_METAL=OFF",
    "-DGGML_VULKAN=OFF",
    "-DGGML_BLAS=OFF",
    "-DBUILD_SHARED_LIBS=OFF",
    "-DLLAMA_OPENSSL=OFF",
    "-DLLAMA_BUILD_TESTS=OFF",
    "-DLLAMA_BUILD_EXAMPLES=OFF",
    "-DLLAMA_BUILD_SERVER=OFF",
]


def _log(msg: str) -> None:
    print(f"[llama.cpp] {msg}", file=sys.stderr, flush=True)


def _sdist() -> str:
    """Path of the downloaded sdist tarball (downloads it on first use)."""
    os.makedirs(CACHE, exist_ok=True)
    pat = os.path.join(CACHE, f"llama_cpp_python-{VERSION}.tar.gz")
    if os.path.exists(pat):
        return pat
    _log(f"downloading llama-cpp-python=={VERSION} (sdist)")
    # `--no-binary llama-cpp-python`, not `:all:`: the latter also forces the build backend's
    # own dependencies (cmake, ...) to build from source while pip prepares the metadata.
    try:
        subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps",
                        "--no-binary", "llama-cpp-python", f"llama-cpp-python=={VERSION}",
                        "-d", CACHE], check=True, timeout=600,
                       stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    except (subprocess.CalledProcessError, subprocess.TimeoutExpired) as e:
        _log(f"pip download failed ({e.__class__.__name__}); trying PyPI's JSON API")
    if os.path.exists(pat):
        return pat
    with urllib.request.urlopen(f"https://pypi.org/pypi/llama-cpp-python/{VERSION}/json",
                                timeout=60) as r:
        meta = json.load(r)
    url = next(u["url"] for u in meta["urls"] if u["packagetype"] == "sdist")
    tmp = pat + ".part"
    with urllib.request.urlopen(url, timeout=600) as r, open(tmp, "wb") as f:
        shutil.copyfileobj(r, f)
    os.replace(tmp, pat)
    return pat


def source_dir() -> str:
    """The extracted `vendor/llama.cpp` of the pinned sdist."""
    root = os.path.join(CACHE, f"llama_cpp_python-{VERSION}")
    src = os.path.join(root, "vendor", "llama.cpp")
    if os.path.exists(os.path.join(src, "CMakeLists.txt")):
        return src
    tarball = _sdist()
    _log(f"extracting {os.path.basename(tarball)}")
    with tarfile.open(tarball) as tf:
        members = [m for m in tf.getmembers()
                   if "/vendor/llama.cpp/" in m.name or m.name.endswith("/CHANGELOG.md")]
        kw = {"filter": "data"} if hasattr(tarfile, "data_filter") else {}
        tf.extractall(CACHE, members=members, **kw)
    if not os.path.exists(os.path.join(src, "CMakeLists.txt")):
        raise RuntimeError(f"no vendor/llama.cpp in {tarball}")
    return src


def commit() -> str:
    """The llama.cpp commit this llama-cpp-python version vendors (from its CHANGELOG)."""
    path = os.path.join(CACHE, f"llama_cpp_python-{VERSION}", "CHANGELOG.md")
    try:
        text = open(path).read()
    except OSError:
        return "unknown"
    sec = text.split(f"## [{VERSION}]", 1)
    m = re.search(r"llama\.cpp@([0-9a-f]{7,40})", sec[1].split("\n## [", 1)[0]) if len(sec) > 1 else None
    return m.group(1) if m else "unknown"


def _cmake() -> tuple[str, list[str]]:
    cmake = shutil.which("cmake")
    if cmake is None:
        _log("cmake not found: pip install cmake ninja")
        subprocess.run([sys.executable, "-m", "pip", "install", "cmake", "ninja"], check=True,
                       stdout=subprocess.DEVNULL)
        scripts = sysconfig.get_path("scripts")
        cmake = shutil.which("cmake") or shutil.which("cmake", path=scripts)
        if cmake is None:
            raise RuntimeError("cmake still not found after pip install cmake")
    ninja = shutil.which("ninja") or shutil.which("ninja", path=sysconfig.get_path("scripts"))
    gen = ["-G", "Ninja", f"-DCMAKE_MAKE_PROGRAM={ninja}"] if ninja else []
    return cmake, gen


def binary() -> str:
    """Path of the cached `llama-bench`, building it on first use."""
    exe = os.path.join(CACHE, f"llama-bench-{VERSION}")
    if os.path.exists(exe):
        return exe
    src = source_dir()
    build = os.path.join(CACHE, f"build-{VERSION}")
    cmake, gen = _cmake()
    log_path = os.path.join(CACHE, f"build-{VERSION}.log")
    _log(f"building llama-bench ({VERSION}, llama.cpp {commit()}) with -j{JOBS}; "
         f"log: {log_path}")
    t = time.time()
    with open(log_path, "w") as log:
        flags = list(CMAKE_FLAGS)
        if re.search(r"option\(\s*LLAMA_CURL\b", open(os.path.join(src, "CMakeLists.txt")).read()):
            flags.append("-DLLAMA_CURL=OFF")  # older llama.cpp: off, so no libcurl needed
        subprocess.run([cmake, "-S", src, "-B", build, *gen, *flags], check=True,
                       stdout=log, stderr=subprocess.STDOUT)
        subprocess.run([cmake, "--build", build, "--target", "llama-bench", "-j", JOBS],
                       check=True, stdout=log, stderr=subprocess.STDOUT)
    built = glob.glob(os.path.join(build, "bin", "llama-bench")) + \
        glob.glob(os.path.join(build, "**", "llama-bench"), recursive=True)
    built = [b for b in built if os.path.isfile(b) and os.access(b, os.X_OK)]
    if not built:
        raise RuntimeError(f"llama-bench not found under {build}")
    shutil.copy2(built[0], exe + ".part")
    os.replace(exe + ".part", exe)
    with open(exe + ".json", "w") as f:
        json.dump({"llama_cpp_python": VERSION, "llama_cpp_commit": commit(), "flags": flags,
                   "build_seconds": round(time.time() - t, 1), "jobs": JOBS}, f, indent=1)
    _log(f"built in {time.time() - t:.0f} s: {exe}")
    return exe


def build_info() -> dict:
    """Version, vendored commit, CMake flags and build time of the cached binary."""
    try:
        return json.load(open(binary() + ".json"))
    except OSError:
        return {"llama_cpp_python": VERSION, "llama_cpp_commit": commit(), "flags": CMAKE_FLAGS}


def bench(gguf: str, p: int = 512, g: int = 128, threads: int = 2, reps: int = 3) -> dict:
    """Prompt and generation tok/s of `llama-bench` on `gguf` (medians of `reps` runs).

    Prompt: `pp{p}` from an empty context. Generation: `tg{g}` at depth `p` (`-d p`: the KV
    cache holds a `p`-token prompt first, as in `rmx-lm benchmark` and `mlx_lm.benchmark`);
    `tg_d0` is llama-bench's default `tg{g}` from an empty context, for reference."""
    exe = binary()
    common = ["-m", gguf, "-t", str(threads), "-r", str(reps), "-o", "json"]
    cmds = [[exe, "-p", str(p), "-n", "0", *common],                      # pp{p}
            [exe, "-p", "0", "-n", str(g), "-d", f"0,{p}", *common]]      # tg{g}, tg{g} @ d{p}
    return bench_cmds(cmds, p, g)


def bench_cmds(cmds: list, p: int, g: int) -> dict:
    """Runs the llama-bench commands `cmds` and parses their rows (see `bench`).

    A run killed by a signal is retried with `--repack 0`: on a Sapphire Rapids VM this
    llama.cpp's AMX path (part of its weight repacking, on by default) crashes in
    `ggml_backend_amx_mul_mat`; with repacking off it runs its plain AVX-512 kernels. The
    result's `cmds` show which commands were used."""
    rows = []
    for cmd in cmds:
        r = subprocess.run(cmd, capture_output=True, text=True)
        if r.returncode < 0 and "--repack" not in cmd:
            print(f"[llama.cpp] llama-bench died (signal {-r.returncode}); "
                  "retrying every command with --repack 0", file=sys.stderr)
            return bench_cmds([c + ["--repack", "0"] for c in cmds], p, g)
        if r.returncode != 0:
            raise RuntimeError(f"llama-bench failed ({r.returncode}):\n{r.stderr[-2000:]}")
        rows += json.loads(r.stdout)
    return parse(rows, cmds, p, g)


def parse(rows: list, cmds: list, p: int, g: int) -> dict:
    """Medians of llama-bench's JSON rows: `pp`, `tg` (at depth p) and `tg_d0`."""

    def med(xs):
        xs = sorted(xs)
        n = len(xs)
        return xs[n // 2] if n % 2 else 0.5 * (xs[n // 2 - 1] + xs[n // 2])

    out = {"cmds": cmds}
    for row in rows:
        key = None
        if row["n_prompt"] == p and row["n_gen"] == 0 and row["n_depth"] == 0:
            key = "pp"
        elif row["n_prompt"] == 0 and row["n_gen"] == g and row["n_depth"] == p:
            key = "tg"
        elif row["n_prompt"] == 0 and row["n_gen"] == g and row["n_depth"] == 0:
            key = "tg_d0"
        if key:
            out[key] = med(row["samples_ts"])
            out[key + "_samples"] = row["samples_ts"]
        out.setdefault("build_commit", row.get("build_commit"))
        out.setdefault("cpu_info", row.get("cpu_info"))
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("-m", "--model", help="a GGUF file to benchmark")
    ap.add_argument("-p", type=int, default=512)
    ap.add_argument("-g", type=int, default=128)
    ap.add_argument("-t", type=int, default=os.cpu_count() or 2)
    ap.add_argument("-r", type=int, default=3)
    a = ap.parse_args()
    print(binary())
    print(json.dumps(build_info()))
    if a.model:
        print(json.dumps(bench(a.model, a.p, a.g, a.t, a.r), indent=1))


if __name__ == "__main__":
    main()
