"""Pool scoring with 2 CPU processes (torchrun, gloo, 1 thread each) vs 1 process (1 thread).

Entropy scoring of 192 synthetic 64x128 frames through DeepLabv3+ MobileNetV3-Small and top-k
selection (`al.strategies.sharded.score_and_select`), timed inside the processes (after the model
is built, from a barrier to a barrier), best of 2. ratio = one-process seconds / two-process
seconds; 2.0 would be perfect scaling on two free cores. Uses 2 cores; on a machine whose cores
are shared with other work the ratio says more about the load than about the code, so the row
reports it and checks only that both give the same picks.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _run(cmd: list[str]) -> dict:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]),
           "OMP_NUM_THREADS": "1"}
    out = subprocess.run(cmd, env=env, capture_output=True, text=True, check=True, timeout=600, cwd=ROOT)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> list[dict]:
    one_cmd = [sys.executable, "-m", "benchmarks.dist_score"]
    two_cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
               "-m", "benchmarks.dist_score"]
    one = min((_run(one_cmd) for _ in range(2)), key=lambda r: r["seconds"])
    two = min((_run(two_cmd) for _ in range(2)), key=lambda r: r["seconds"])
    same = one["picks"] == two["picks"]
    return [{"name": f"scoring 192 frames: 2 processes vs 1 (2 of {os.cpu_count()} cores, 1 thread each); "
                     f"same picks: {same}",
             "ours_s": two["seconds"], "baseline_s": one["seconds"], "ratio": one["seconds"] / two["seconds"],
             "goal": "report (same picks)", "ok": same}]
