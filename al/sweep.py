"""Budget sweeps as numbers (pure functions over records; no I/O, no plotting).

A sweep record is a matrix record with its budget: `{deployment, surrogate, seed, metric, value,
budget}` (`surrogate = "random"` for the nested random sets). Over the seeds of one
(deployment, surrogate) pair:

- Δ(b): the paired difference surrogate − random at budget b (`al.paired`: mean, 95 % t-interval,
  p-value, verdict);
- AULC: the area under each seed's learning curve, trapezoids over the budgets divided by the
  budget range (so it reads as the mean metric over the range, in the metric's unit), and its paired
  Δ against random's;
- crossover: the smallest budget from which every larger budget's CI lies above 0 ("none in the
  range" when the largest budget's does not). Its uncertainty: a bootstrap over seeds (`N_BOOT`
  resamples, fixed seed) of the budget where the mean Δ(b) last crosses 0 from below, linearly
  interpolated between budgets -- the 2.5-97.5 % range of those crossings, and the share of
  resamples in which Δ is still ≤ 0 at the largest budget (no crossing) or > 0 at every budget
  (crossing before the range).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from al.paired import PairedDiff, paired_diff
from al.stats import RANDOM

N_BOOT = 2000


@dataclass(frozen=True)
class Crossover:
    """Where a surrogate starts to beat random for one deployment model."""

    budget: int | None            # smallest budget from which every CI lies above 0; None: none in the range
    low: float | None             # 2.5 % of the bootstrap crossings (None: fewer than half the resamples cross)
    high: float | None            # 97.5 %
    share_never: float            # resamples with mean Δ <= 0 at the largest budget
    share_before: float           # resamples with mean Δ > 0 at every budget

    def text(self) -> str:
        head = "none in the range" if self.budget is None else f"{self.budget}"
        if self.low is None:
            return f"{head} (bootstrap: no crossing in {self.share_never:.0%} of resamples)"
        return (f"{head} (bootstrap crossing {self.low:.0f}-{self.high:.0f}; none in {self.share_never:.0%}, "
                f"before the range in {self.share_before:.0%})")


@dataclass(frozen=True)
class PairSweep:
    deployment: str
    surrogate: str
    budgets: tuple[int, ...]
    diffs: tuple[PairedDiff, ...]          # Δ(b), one per budget
    aulc: PairedDiff                       # Δ of the area under the learning curve
    crossover: Crossover


def budgets_of(records: Iterable[Mapping]) -> list[int]:
    return sorted({int(r["budget"]) for r in records})


def _by_seed(records: Iterable[Mapping], deployment: str, column: str) -> dict[int, dict[int, float]]:
    """{seed: {budget: value}} of one (deployment, column)."""
    out: dict[int, dict[int, float]] = {}
    for r in records:
        if r["deployment"] == deployment and r["surrogate"] == column:
            out.setdefault(int(r["seed"]), {})[int(r["budget"])] = float(r["value"])
    return out


def aulc(curve: Mapping[int, float]) -> float:
    """Trapezoid area of a learning curve {budget: value} divided by its budget range (one budget: its value)."""
    b = sorted(curve)
    if len(b) == 1:
        return float(curve[b[0]])
    v = np.array([curve[x] for x in b])
    x = np.array(b, dtype=np.float64)
    return float(np.sum((v[1:] + v[:-1]) / 2 * np.diff(x)) / (x[-1] - x[0]))


def zero_crossing(budgets: Sequence[int], delta: Sequence[float]) -> float | None:
    """The budget where Δ(b) last crosses from <= 0 to > 0 (linear between budgets); -inf when Δ > 0 at every
    budget, None when Δ <= 0 at the largest."""
    d = np.asarray(delta, dtype=np.float64)
    if d[-1] <= 0:
        return None
    neg = np.flatnonzero(d <= 0)
    if neg.size == 0:
        return -math.inf
    i = int(neg[-1])                                   # last budget at or below 0; i + 1 is above
    x0, x1, y0, y1 = budgets[i], budgets[i + 1], d[i], d[i + 1]
    return float(x0 + (0 - y0) * (x1 - x0) / (y1 - y0))


def crossover(budgets: Sequence[int], diffs: Sequence[PairedDiff], per_seed: np.ndarray, *,
              n_boot: int = N_BOOT, seed: int = 0) -> Crossover:
    """Crossover of one pair; `per_seed` (n_seeds, n_budgets) holds the paired differences."""
    first = None
    for b, d in zip(reversed(budgets), reversed(diffs), strict=True):
        if d.ci_low is None or d.ci_low <= 0:
            break
        first = b
    rng = np.random.default_rng(seed)
    n = per_seed.shape[0]
    cross = [zero_crossing(budgets, per_seed[rng.integers(0, n, n)].mean(axis=0)) for _ in range(n_boot)]
    never = sum(c is None for c in cross) / n_boot
    before = sum(c == -math.inf for c in cross) / n_boot
    finite = np.array([c for c in cross if c is not None and c != -math.inf])
    if finite.size < n_boot / 2:
        return Crossover(first, None, None, never, before)
    lo, hi = np.quantile(finite, [0.025, 0.975])
    return Crossover(first, float(lo), float(hi), never, before)


def sweep_pairs(records: Sequence[Mapping], *, deployments: Sequence[str] | None = None,
                surrogates: Sequence[str] | None = None) -> list[PairSweep]:
    """One `PairSweep` per (deployment, surrogate) with random at every budget (seeds paired)."""
    budgets = budgets_of(records)
    deps = list(deployments) if deployments else list(dict.fromkeys(r["deployment"] for r in records))
    surs = list(surrogates) if surrogates else [c for c in dict.fromkeys(r["surrogate"] for r in records)
                                                 if c != RANDOM]
    out = []
    for dep in deps:
        rand = _by_seed(records, dep, RANDOM)
        for s in surs:
            mine = _by_seed(records, dep, s)
            seeds = sorted(k for k in set(mine) & set(rand)
                           if all(b in mine[k] and b in rand[k] for b in budgets))
            if not seeds:
                continue
            per_seed = np.array([[mine[k][b] - rand[k][b] for b in budgets] for k in seeds])   # (seeds, budgets)
            diffs = tuple(paired_diff(per_seed[:, j]) for j in range(len(budgets)))
            area = paired_diff([aulc(mine[k]) - aulc(rand[k]) for k in seeds])
            out.append(PairSweep(dep, s, tuple(budgets), diffs, area, crossover(budgets, diffs, per_seed)))
    return out


def random_spread(records: Sequence[Mapping]) -> dict[tuple[str, int], tuple[float, int]]:
    """{(deployment, budget): (sd over seeds of the random column, seeds)}; records without a budget count
    as one budget (0)."""
    vals: dict[tuple[str, int], list[float]] = {}
    for r in records:
        if r["surrogate"] == RANDOM:
            vals.setdefault((r["deployment"], int(r.get("budget", 0))), []).append(float(r["value"]))
    return {k: (float(np.std(v, ddof=1)) if len(v) > 1 else math.nan, len(v)) for k, v in vals.items()}


def spread_warnings(records: Sequence[Mapping]) -> list[str]:
    """A line per (deployment, budget) whose random column's seed sd is larger than the largest |Δ| of its
    pairs: the effect the comparison is asked to resolve is inside the deployment model's own noise."""
    spread = random_spread(records)
    out = []
    for (dep, b), (sd, n) in sorted(spread.items()):
        rows = [r for r in records if r["deployment"] == dep and int(r.get("budget", 0)) == b]
        rand = {r["seed"]: r["value"] for r in rows if r["surrogate"] == RANDOM}
        effects = []
        for s in {r["surrogate"] for r in rows} - {RANDOM}:
            d = [r["value"] - rand[r["seed"]] for r in rows if r["surrogate"] == s and r["seed"] in rand]
            if d:
                effects.append(abs(float(np.mean(d))))
        if effects and math.isfinite(sd) and sd > max(effects):
            where = f" at {b} labels" if b else ""
            out.append(f"{dep}{where}: the random column's seed sd ({sd:.2f} p.p. over {n} seeds) is larger than "
                       f"the largest effect asked about (|Δ| = {max(effects):.2f} p.p.); the training recipe's "
                       f"noise, not the data, dominates this comparison")
    return out
