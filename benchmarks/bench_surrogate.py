"""Surrogate experiments (`make bench`): resuming a finished experiment must reuse every sub-run.

Runs the `surrogate_smoke` preset (2 seeds, 2 surrogates, 1 deployment model, tiny synthetic
scenes) into a temporary directory, then runs it again with `resume=True`: the second run only
re-reads the finished AL runs and cached deployment results and re-renders the report.
ratio = fresh_s / resumed_s (the speedup of resuming). Goal: >= 5x. The records of both runs must
be identical. Host wall clock on this machine's CPU (no asynchronous work), one torch thread.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path


def main() -> list[dict]:
    import torch

    from al.experiments.surrogate import run_experiment

    prev = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        with tempfile.TemporaryDirectory() as tmp:
            out = Path(tmp) / "exp"
            t0 = time.perf_counter()
            first = run_experiment("surrogate_smoke", out)
            fresh_s = time.perf_counter() - t0
            t0 = time.perf_counter()
            again = run_experiment("surrogate_smoke", out, resume=True)
            resumed_s = time.perf_counter() - t0
    finally:
        torch.set_num_threads(prev)
    ratio = fresh_s / resumed_s
    same = first["records"] == again["records"]
    return [{"name": "al surrogate smoke: fresh vs resumed", "ours_s": resumed_s, "baseline_s": fresh_s,
             "ratio": ratio, "goal": ">= 5 (resume speedup), identical records", "ok": ratio >= 5.0 and same}]
