"""Paired statistics of a surrogate cell against its random cell, seed by seed (pure functions).

Every cell of one seed shares its random numbers (the deployment model's initial weights, batch
order, augmentation draws), so the per-seed difference d_s = surrogate_s − random_s isolates the
effect of the data. Over n seeds, with mean d̄ and sample standard deviation s (ddof = 1):

- 95 % CI, t-interval: d̄ ± t_{0.975, n−1} · s / √n (n ≥ 2), at every seed count;
- p-value: two-sided paired t-test of mean 0, 2 · P(T_{n−1} > |d̄| / (s / √n)) -- the same method,
  so p < 0.05 exactly when the CI excludes 0 and the verdict never contradicts p;
- verdict: "beat" when the CI lies above 0, "lose" when below, else "tie"; "n/a" with one seed;
- seeds needed to resolve Δ: the smallest n ≥ 2 with t_{0.975, n−1} · s / √n ≤ Δ, i.e. the number
  of seeds at which an observed difference of Δ would have a 95 % CI that excludes 0 (at the
  measured spread s; no allowance for power — an 80 %-power design needs about twice as many).

Why not the percentile bootstrap (used from 10 seeds on until issue 17): with 10-20 seeds it
under-covers -- simulated at true Δ = 0 its "95 %" interval holds Δ in about 91 % of runs at
n = 10-12 and 94 % at n = 20, so it calls a false beat/lose about twice as often as it should.
`al.coverage` simulates both (`python -m al.coverage`); `bootstrap_interval` stays for that.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from hwbench.errors import UserError

CONFIDENCE = 0.95
N_BOOT = 10_000
VERDICTS = ("beat", "tie", "lose", "n/a")


def t_quantile(q: float, df: int) -> float:
    """Student-t quantile (scipy.stats.t.ppf)."""
    from scipy.stats import t

    return float(t.ppf(q, df))


def _t_sf(x: float, df: int) -> float:
    from scipy.stats import t

    return float(t.sf(x, df))


@dataclass(frozen=True)
class PairedDiff:
    """Mean paired difference with its CI; None where undefined (one seed)."""

    n: int                      # seeds with both cells
    delta: float                # mean difference d̄ (metric points, e.g. mIoU %)
    std: float | None           # sample std of the differences (ddof = 1)
    ci_low: float | None
    ci_high: float | None
    p_value: float | None       # two-sided paired t-test
    method: str                 # "t" | "none" (one seed)
    verdict: str                # beat | tie | lose | n/a
    seeds_for_1pt: int | None   # seeds needed to resolve Δ = 1 point at this spread

    @property
    def half_width(self) -> float | None:
        return None if self.ci_low is None else (self.ci_high - self.ci_low) / 2

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "half_width": self.half_width}


def paired_differences(treated: Mapping[int, float], control: Mapping[int, float]) -> tuple[list[int], np.ndarray]:
    """Seeds present in both and `treated[s] − control[s]` for each, in seed order."""
    seeds = sorted(set(treated) & set(control))
    d = np.array([float(treated[s]) - float(control[s]) for s in seeds], dtype=np.float64)
    if not np.isfinite(d).all():
        raise UserError("paired differences: a metric value is NaN or infinite; rerun the failed cell")
    return seeds, d


def verdict(ci_low: float | None, ci_high: float | None) -> str:
    """beat (CI above 0), lose (CI below 0), tie (CI holds 0), n/a (no CI)."""
    if ci_low is None or ci_high is None:
        return "n/a"
    if ci_low > 0:
        return "beat"
    if ci_high < 0:
        return "lose"
    return "tie"


def t_interval(d: Sequence[float], confidence: float = CONFIDENCE) -> tuple[float, float]:
    """d̄ ± t_{(1+c)/2, n−1} · s / √n (needs n ≥ 2)."""
    d = np.asarray(d, dtype=np.float64)
    n = d.size
    if n < 2:
        raise ValueError("a t-interval needs at least two differences")
    half = t_quantile((1 + confidence) / 2, n - 1) * d.std(ddof=1) / math.sqrt(n)
    return float(d.mean() - half), float(d.mean() + half)


def bootstrap_interval(d: Sequence[float], confidence: float = CONFIDENCE, n_boot: int = N_BOOT,
                       seed: int = 0) -> tuple[float, float]:
    """Percentile bootstrap CI of the mean: resample the differences with replacement `n_boot` times."""
    d = np.asarray(d, dtype=np.float64)
    rng = np.random.default_rng(seed)
    means = d[rng.integers(0, d.size, size=(n_boot, d.size))].mean(axis=1)   # (n_boot,)
    alpha = (1 - confidence) / 2
    lo, hi = np.quantile(means, [alpha, 1 - alpha])
    return float(lo), float(hi)


def t_test_p(d: Sequence[float]) -> float:
    """Two-sided paired t-test p-value of mean 0; a zero spread gives 0 (mean ≠ 0) or 1 (mean = 0)."""
    d = np.asarray(d, dtype=np.float64)
    n = d.size
    s = d.std(ddof=1)
    if s == 0:
        return 1.0 if d.mean() == 0 else 0.0
    return min(1.0, 2.0 * _t_sf(abs(d.mean()) / (s / math.sqrt(n)), n - 1))


def seeds_needed(std: float, delta: float = 1.0, confidence: float = CONFIDENCE, max_seeds: int = 10_000) -> int | None:
    """Smallest n ≥ 2 with t_{(1+c)/2, n−1} · std / √n ≤ delta; None when over `max_seeds`."""
    if std <= 0:
        return 2
    q = (1 + confidence) / 2
    # z-approximation gives a lower bound: t > z, so start there and walk up
    n = max(2, math.ceil((1.959963984540054 * std / delta) ** 2) if confidence == CONFIDENCE else 2)
    while n <= max_seeds:
        if t_quantile(q, n - 1) * std / math.sqrt(n) <= delta:
            return n
        n += 1
    return None


def paired_diff(d: Sequence[float], *, confidence: float = CONFIDENCE, resolve: float = 1.0) -> PairedDiff:
    """Summary of per-seed differences `d` (see module docstring)."""
    d = np.asarray(list(d), dtype=np.float64)
    if d.size == 0:
        raise ValueError("no paired differences")
    if not np.isfinite(d).all():
        raise UserError("paired differences: a value is NaN or infinite")
    mean = float(d.mean())
    if d.size == 1:
        return PairedDiff(1, mean, None, None, None, None, "none", "n/a", None)
    std = float(d.std(ddof=1))
    lo, hi, method = *t_interval(d, confidence), "t"
    return PairedDiff(int(d.size), mean, std, lo, hi, t_test_p(d), method, verdict(lo, hi),
                      seeds_needed(std, resolve, confidence))


def verdict_counts(diffs: Iterable[PairedDiff]) -> dict[str, int]:
    """{"beat": ., "tie": ., "lose": ., "n/a": .} over the pairs."""
    out = dict.fromkeys(VERDICTS, 0)
    for p in diffs:
        out[p.verdict] += 1
    return out


def median_half_width(diffs: Iterable[PairedDiff]) -> float | None:
    """Median CI half-width over the pairs that have a CI (None when none has)."""
    hw = [p.half_width for p in diffs if p.half_width is not None]
    return float(np.median(hw)) if hw else None
