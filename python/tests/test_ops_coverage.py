"""docs/OPS.md must list every public MLX name with rmx's current presence; regenerate
it with `PYTHONPATH=python python3 scripts/ops_coverage.py` when this fails."""

import importlib.util
import os

from diff import get_rmx

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..")


def _script():
    path = os.path.join(ROOT, "scripts", "ops_coverage.py")
    spec = importlib.util.spec_from_file_location("ops_coverage", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_ops_md_presence_is_current():
    get_rmx()
    cov = _script()
    with open(os.path.join(ROOT, "docs", "OPS.md")) as f:
        committed = cov.parse_presence(f.read())
    current = cov.presence()
    assert committed.keys() == current.keys()
    for sub in current:
        stale = sorted(set(committed[sub]) ^ set(current[sub]))
        assert not stale, (
            f"docs/OPS.md is stale for mlx.core{'.' + sub if sub else ''}: {stale}; "
            "regenerate with `PYTHONPATH=python python3 scripts/ops_coverage.py`")


def test_render_round_trips():
    cov = _script()
    table = cov.rows(with_probes=False)
    parsed = cov.parse_presence(cov.render(table))
    assert parsed == cov.presence()
