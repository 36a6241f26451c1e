"""hwbench/ondevice.py is copied alone to a Jetson: Python 3.6 (JetPack 4.6), no hwbench/al/torch."""

import ast
from pathlib import Path

import pytest

from hwbench import ondevice

SCRIPT = Path(ondevice.__file__)


def test_minimum_python_is_3_6():
    vermin = pytest.importorskip("vermin", reason="vermin runs on the main interpreter (the static check)")
    src = SCRIPT.read_text()
    mins = vermin.detect(src, path=str(SCRIPT), config=vermin.Config())
    assert mins[1] is not None and tuple(mins[1]) <= (3, 6), mins
    ast.parse(src, feature_version=(3, 6))          # grammar of 3.6 (no walrus, no positional-only ...)


def test_vermin_flags_a_3_7_feature():
    """The checker itself works: a dataclass import needs 3.7."""
    vermin = pytest.importorskip("vermin", reason="vermin runs on the main interpreter (the static check)")
    mins = vermin.detect("import dataclasses\n", config=vermin.Config())
    assert tuple(mins[1]) == (3, 7)


def test_imports_nothing_from_hwbench_al_or_torch():
    tree = ast.parse(SCRIPT.read_text())
    mods = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            mods |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            assert node.level == 0, "no relative imports in a file copied alone"
            mods.add(node.module)
    tops = {m.split(".")[0] for m in mods}
    assert not tops & {"hwbench", "al", "torch", "torchvision"}, tops
    # one CUDA binding (pycuda); the other one is never imported
    assert "cuda" not in tops and not any(m.startswith("cuda.") for m in mods)
