"""benchmarks/gpu_check.sh: the parts a CPU machine can check — shell syntax, the Python steps
compile and answer, and the whole script skips cleanly without CUDA (it cannot run here)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "benchmarks" / "gpu_check.sh"


def _env() -> dict:
    return {**os.environ, "PYTHONPATH": str(ROOT), "PYTHON": sys.executable}


def test_shell_syntax_and_python_compile() -> None:
    subprocess.run(["bash", "-n", str(SCRIPT)], check=True)
    compile((ROOT / "benchmarks" / "gpu_check.py").read_text(), "gpu_check.py", "exec")
    text = SCRIPT.read_text()
    for step in ("train", "evidence", "kcenter", "compare"):
        assert f"benchmarks.gpu_check {step}" in text
    assert "--cuda-graphs" in text and "--nproc_per_node=\"$NGPU\"" in text


@pytest.mark.skipif(torch.cuda.is_available(), reason="a GPU is present: the script would really run")
def test_skips_cleanly_without_cuda(tmp_path) -> None:
    proc = subprocess.run(["bash", str(SCRIPT), str(tmp_path / "out")], env=_env(), capture_output=True, text=True,
                          timeout=120, check=False)
    assert proc.returncode == 0 and proc.stdout.startswith("skip: no CUDA GPU"), proc.stdout + proc.stderr
    step = subprocess.run([sys.executable, "-m", "benchmarks.gpu_check", "kcenter", str(tmp_path)], env=_env(),
                          capture_output=True, text=True, timeout=120, check=False, cwd=ROOT)
    assert step.returncode == 3 and '"skipped": "no CUDA GPU"' in step.stdout
    bad = subprocess.run([sys.executable, "-m", "benchmarks.gpu_check", "nope", str(tmp_path)], env=_env(),
                         capture_output=True, text=True, timeout=120, check=False, cwd=ROOT)
    assert bad.returncode == 2 and "usage" in bad.stderr


def test_example_scripts_parse() -> None:
    for script in sorted((ROOT / "examples").glob("*.sh")):
        subprocess.run(["bash", "-n", str(script)], check=True)
    text = (ROOT / "examples" / "slurm_cells.sh").read_text()
    assert "--shard \"$I/$N\"" in text and "SLURM_ARRAY_TASK_ID" in text
    assert "--rdzv_backend=c10d" in (ROOT / "examples" / "multinode_torchrun.sh").read_text()
