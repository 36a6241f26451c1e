"""Budget-sweep statistics (al.sweep) against hand-computed values."""

from __future__ import annotations

import math

import numpy as np
import pytest

from al.paired import paired_diff
from al.sweep import aulc, crossover, spread_warnings, sweep_pairs, zero_crossing


def _records(values: dict[tuple[str, int], list[float]], dep: str = "res18") -> list[dict]:
    out = []
    for (col, b), vals in values.items():
        for seed, v in enumerate(vals):
            out.append({"deployment": dep, "surrogate": col, "seed": seed, "metric": "top1", "value": v, "budget": b})
    return out


def test_aulc_is_trapezoid_over_range() -> None:
    # (100, 50), (200, 60), (400, 80): areas 5,500 + 14,000 = 19,500 over a range of 300 -> 65
    assert aulc({100: 50.0, 200: 60.0, 400: 80.0}) == pytest.approx(65.0)
    assert aulc({100: 42.0}) == 42.0


def test_zero_crossing_interpolates_the_last_upward_crossing() -> None:
    assert zero_crossing([100, 200, 300], [-2.0, 1.0, 3.0]) == pytest.approx(100 + 2 / 3 * 100)
    assert zero_crossing([100, 200, 300], [1.0, -1.0, 1.0]) == pytest.approx(250.0)   # the last one counts
    assert zero_crossing([100, 200], [-1.0, -0.5]) is None
    assert zero_crossing([100, 200], [0.5, 1.0]) == -math.inf


def test_sweep_pairs_deltas_aulc_and_crossover() -> None:
    # random flat at 60; the surrogate loses 4 at 100, ties at 200, wins 3 at 300 (seed noise +-0.5)
    noise = [0.5, -0.5, 0.3, -0.3, 0.0]
    rec = _records({("random", 100): [60.0] * 5, ("random", 200): [60.0] * 5, ("random", 300): [60.0] * 5,
                    ("res20", 100): [56 + e for e in noise], ("res20", 200): [60 + e for e in noise],
                    ("res20", 300): [63 + e for e in noise]})
    (p,) = sweep_pairs(rec)
    assert p.budgets == (100, 200, 300)
    assert [round(d.delta, 6) for d in p.diffs] == [-4.0, 0.0, 3.0]
    assert [d.verdict for d in p.diffs] == ["lose", "tie", "beat"]
    ref = paired_diff([(63 + e) - 60.0 for e in noise])
    assert (p.diffs[2].ci_low, p.diffs[2].ci_high) == pytest.approx((ref.ci_low, ref.ci_high))
    # AULC per seed: ((56 + 60) / 2 + (60 + 63) / 2) * 100 / 200 + e = 59.75 + e vs 60 -> Δ = -0.25
    assert p.aulc.delta == pytest.approx(-0.25)
    assert p.crossover.budget == 300
    # a resample's mean noise m lies in [-0.5, 0.5]: Δ = (-4, 0, 3) + m crosses 0 at 100 + (4 - m) / 4 · 100
    # (m > 0) or 200 - m / 3 · 100 (m <= 0), so every crossing lies in [187.5, 216.7]
    assert 187.5 - 1e-9 <= p.crossover.low <= p.crossover.high <= 216.7
    assert "300" in p.crossover.text()


def test_crossover_none_in_range_and_ci_must_hold_to_the_end() -> None:
    d = np.array([[1.0, 2.0, -1.0], [1.5, 2.5, -0.5], [0.5, 1.5, -1.5]])      # beats, then loses at the top
    diffs = [paired_diff(d[:, j]) for j in range(3)]
    c = crossover([10, 20, 30], diffs, d)
    assert c.budget is None and c.share_never == 1.0 and c.low is None
    assert c.text().startswith("none in the range")


def test_spread_warning_when_noise_exceeds_effect() -> None:
    rec = _records({("random", 800): [60.0, 70.0, 65.0], ("res20", 800): [61.0, 70.0, 66.0]})
    (w,) = spread_warnings(rec)
    assert "res18 at 800 labels" in w and "(5.00 p.p. over 3 seeds)" in w and "|Δ| = 0.67" in w
    quiet = _records({("random", 800): [60.0, 60.2, 59.8], ("res20", 800): [63.0, 63.0, 63.0]})
    assert spread_warnings(quiet) == []
    matrix = [{k: v for k, v in r.items() if k != "budget"} for r in rec]         # plain matrix records
    assert spread_warnings(matrix)[0].startswith("res18: the random column")
