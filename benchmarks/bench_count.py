"""Benchmark: the meta-device counter vs fvcore on the paper's five DeepLabv3+ models.

Counts every model at 1x3x1024x2048 with both counters in the same run, asserts that the
conv + linear MACs are identical, and reports per-model and total time ratios (fvcore / meta).
Goal: meta is at least 30x faster. ratio = fvcore_s / meta_s; meta time is the best of 3 runs
(it is cheap), fvcore's a single run (one real CPU forward pass at full resolution, ~10-40 s).
Run: `.venv/bin/python -m benchmarks count` (or `python -m benchmarks.bench_count`).
"""

from __future__ import annotations

import time

GOAL = 30.0
INPUT = (1, 3, 1024, 2048)


def _timed(fn, repeats: int = 1):
    best, out = float("inf"), None
    for _ in range(repeats):
        t0 = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t0)
    return out, best


def main() -> list[dict]:
    from hwbench.count import PAPER_MODELS, count

    count(PAPER_MODELS[0], (1, 3, 64, 64))  # one-time imports and registry loading, not timed
    rows = []
    for name in PAPER_MODELS:
        meta, meta_s = _timed(lambda n=name: count(n, INPUT), repeats=3)
        ref, ref_s = _timed(lambda n=name: count(n, INPUT, counter="fvcore"))
        assert meta.macs == ref.macs, f"{name}: meta {meta.macs} != fvcore {ref.macs} conv+linear MACs"
        # per-model rows are informational; the goal applies to the whole set (the last row)
        rows.append({"name": f"count {name} (meta vs fvcore)", "gmacs": meta.gmacs, "ours_s": meta_s,
                     "baseline_s": ref_s, "ratio": ref_s / meta_s, "goal": None, "ok": None, "macs_equal": True})
    meta_total = sum(r["ours_s"] for r in rows)
    ref_total = sum(r["baseline_s"] for r in rows)
    rows.append({"name": "count all 5 DeepLabv3+ at 1024x2048 (meta vs fvcore)",
                 "gmacs": sum(r["gmacs"] for r in rows), "ours_s": meta_total, "baseline_s": ref_total,
                 "ratio": ref_total / meta_total, "goal": f">= {GOAL:g} (speedup)",
                 "ok": ref_total / meta_total >= GOAL, "macs_equal": True})
    return rows


if __name__ == "__main__":
    for row in main():
        print(row)  # noqa: T201 - benchmark script output
