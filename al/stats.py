"""Pure statistics over result records: the surrogate matrix, comparisons with random, entropy
summaries and AL-curve tables. No I/O, no plotting: data in, numbers out.

Tables follow the paper's Table 3 layout: deployment models as rows, surrogates as columns plus
`random`; a cell is the mean ± sample standard deviation (ddof=1) over seeds.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from al.paired import PairedDiff, median_half_width, paired_diff, paired_differences, verdict_counts

RANDOM = "random"  # the column name of the random-selection baseline


@dataclass(frozen=True)
class Cell:
    """One table cell: a metric over seeds. `std` is the sample std (ddof=1); NaN when n < 2."""

    values: tuple[float, ...]
    seeds: tuple[int, ...]

    @property
    def n(self) -> int:
        return len(self.values)

    @property
    def mean(self) -> float:
        return float(np.mean(self.values)) if self.values else math.nan

    @property
    def std(self) -> float:
        return float(np.std(self.values, ddof=1)) if len(self.values) > 1 else math.nan


@dataclass(frozen=True)
class Matrix:
    """Deployment models (rows) × surrogates (columns, `random` last) for one metric."""

    metric: str
    rows: tuple[str, ...]
    columns: tuple[str, ...]
    cells: Mapping[tuple[str, str], Cell]

    def cell(self, row: str, column: str) -> Cell | None:
        return self.cells.get((row, column))

    @property
    def surrogates(self) -> tuple[str, ...]:
        return tuple(c for c in self.columns if c != RANDOM)


def aggregate(records: Iterable[Mapping[str, Any]], *, rows: Sequence[str] | None = None,
              columns: Sequence[str] | None = None, metric: str | None = None) -> Matrix:
    """Group `{deployment, surrogate, seed, metric, value}` records into a `Matrix`.

    Rows/columns keep the given order, else the order of first appearance; `random` is always
    the last column. Records of other metrics are ignored (the first metric seen is used when
    `metric` is None). A (deployment, surrogate, seed) seen twice is a bug -> ValueError.
    """
    recs = [r for r in records]
    if metric is None:
        metric = recs[0]["metric"] if recs else ""
    recs = [r for r in recs if r["metric"] == metric]
    found_rows = list(dict.fromkeys(r["deployment"] for r in recs))
    found_cols = list(dict.fromkeys(r["surrogate"] for r in recs))
    row_order = list(rows) if rows is not None else found_rows
    col_order = [c for c in (columns if columns is not None else found_cols) if c != RANDOM]
    if RANDOM in found_cols or (columns is not None and RANDOM in columns):
        col_order.append(RANDOM)
    grouped: dict[tuple[str, str], dict[int, float]] = {}
    for r in recs:
        key = (r["deployment"], r["surrogate"])
        per_seed = grouped.setdefault(key, {})
        seed = int(r["seed"])
        if seed in per_seed:
            raise ValueError(f"duplicate record for {key} seed {seed}")
        per_seed[seed] = float(r["value"])
    cells = {k: Cell(values=tuple(v[s] for s in sorted(v)), seeds=tuple(sorted(v))) for k, v in grouped.items()}
    return Matrix(metric=metric, rows=tuple(row_order), columns=tuple(col_order), cells=cells)


@dataclass(frozen=True)
class Comparison:
    """One surrogate/deployment pair against random, paired by seed (`al.paired`).

    `delta` is the mean of the per-seed differences surrogate − random (metric units, p.p. for %);
    `verdict` is "beat" / "lose" when the 95 % CI lies above / below 0, "tie" when it holds 0,
    "n/a" with a single paired seed.
    """

    deployment: str
    surrogate: str
    delta: float
    delta_std: float  # sample std (ddof=1) of the per-seed paired differences; NaN if < 2 pairs
    wins: int  # seeds where the surrogate's value > random's value (same seed)
    paired: int  # seeds present in both
    diagonal: bool  # surrogate == deployment (a model picking for itself)
    diff: PairedDiff  # CI, p-value, verdict, seeds needed

    @property
    def beats_random(self) -> bool:
        return self.diff.verdict == "beat"

    @property
    def verdict(self) -> str:
        return self.diff.verdict

    def to_dict(self) -> dict[str, Any]:
        d = self.diff
        return {"deployment": self.deployment, "surrogate": self.surrogate, "diagonal": self.diagonal,
                "seeds": self.paired, "delta": self.delta, "delta_std": None if math.isnan(self.delta_std) else self.delta_std,
                "ci_low": d.ci_low, "ci_high": d.ci_high, "half_width": d.half_width, "ci_method": d.method,
                "p_value": d.p_value, "verdict": d.verdict, "wins": self.wins,
                "seeds_for_1pt": d.seeds_for_1pt}


def compare_to_random(matrix: Matrix) -> list[Comparison]:
    """Every (deployment, surrogate) cell with a random cell in its row, in table order."""
    out = []
    for row in matrix.rows:
        base = matrix.cell(row, RANDOM)
        if base is None or base.n == 0:
            continue
        base_by_seed = dict(zip(base.seeds, base.values, strict=True))
        for col in matrix.surrogates:
            cell = matrix.cell(row, col)
            if cell is None or cell.n == 0:
                continue
            _, diffs = paired_differences(dict(zip(cell.seeds, cell.values, strict=True)), base_by_seed)
            if diffs.size == 0:
                continue
            out.append(Comparison(
                deployment=row, surrogate=col, delta=float(diffs.mean()),
                delta_std=float(np.std(diffs, ddof=1)) if len(diffs) > 1 else math.nan,
                wins=int((diffs > 0).sum()), paired=len(diffs), diagonal=row == col, diff=paired_diff(diffs)))
    return out


@dataclass(frozen=True)
class BeatsRandom:
    """Off-diagonal pairs (paper §5.3) by the verdict of their 95 % CI, and by the mean alone."""

    wins: int  # off-diagonal pairs whose CI lies above 0
    ties: int  # ... whose CI holds 0 (or that have one seed)
    losses: int  # ... whose CI lies below 0
    pairs: int  # off-diagonal pairs with both cells present
    mean_wins: int  # off-diagonal pairs whose mean difference is > 0 (the paper's count, no test)
    diagonal_wins: int  # models picking for themselves whose CI lies above 0
    diagonal_pairs: int
    median_half_width: float | None  # median 95 % CI half-width over the off-diagonal pairs
    seeds_for_1pt: int | None  # median over the pairs of the seeds needed to resolve 1 point


def beats_random(matrix: Matrix) -> BeatsRandom:
    """Count surrogate/deployment pairs (diagonal excluded, paper §5.3) that beat / tie / lose to random."""
    comps = compare_to_random(matrix)
    off = [c for c in comps if not c.diagonal]
    diag = [c for c in comps if c.diagonal]
    counts = verdict_counts(c.diff for c in off)
    need = [c.diff.seeds_for_1pt for c in off if c.diff.seeds_for_1pt is not None]
    return BeatsRandom(wins=counts["beat"], ties=counts["tie"] + counts["n/a"], losses=counts["lose"],
                       pairs=len(off), mean_wins=sum(c.delta > 0 for c in off),
                       diagonal_wins=sum(c.beats_random for c in diag), diagonal_pairs=len(diag),
                       median_half_width=median_half_width(c.diff for c in off),
                       seeds_for_1pt=int(np.ceil(np.median(need))) if need else None)


def best_per_row(matrix: Matrix, *, include_random: bool = False) -> dict[str, str]:
    """Row -> column with the highest mean (surrogates only unless `include_random`).

    Ties go to the earlier column; rows with no data are left out.
    """
    cols = matrix.columns if include_random else matrix.surrogates
    best: dict[str, str] = {}
    for row in matrix.rows:
        scored = [(c, matrix.cell(row, c)) for c in cols]
        scored = [(c, cell.mean) for c, cell in scored if cell is not None and cell.n > 0]
        if scored:
            best[row] = max(scored, key=lambda cm: cm[1])[0]  # max keeps the first of equal means
    return best


def row_scale(matrix: Matrix, row: str) -> dict[str, float]:
    """Surrogate column -> position in [0, 1] of the cell's mean between the row's worst (0) and best (1).

    As in the paper's tables, only the surrogates are colour-coded: random sits in its own column and
    gets no position. A row with one value or all equal -> 0.5.
    """
    means = {c: cell.mean for c in matrix.surrogates
             if (cell := matrix.cell(row, c)) is not None and cell.n > 0}
    if not means:
        return {}
    lo, hi = min(means.values()), max(means.values())
    if hi - lo <= 0:
        return {c: 0.5 for c in means}
    return {c: (m - lo) / (hi - lo) for c, m in means.items()}


def matrix_records(matrix: Matrix) -> list[dict]:
    """Flat table rows (one per cell) for CSV / `--json` summaries."""
    out = []
    for row in matrix.rows:
        for col in matrix.columns:
            cell = matrix.cell(row, col)
            if cell is None:
                continue
            out.append({"deployment": row, "surrogate": col, "metric": matrix.metric, "mean": cell.mean,
                        "std": cell.std, "n": cell.n, "seeds": list(cell.seeds)})
    return out


def entropy_summary(scores: Mapping[str, np.ndarray], *, top_fraction: float = 0.1) -> list[dict]:
    """Per model: n, mean, std (ddof=1), median, min, max and the top-`top_fraction` threshold.

    The threshold is the score of the last image in the top-k, k = ceil(top_fraction * n), so
    exactly the k highest-scoring images satisfy `score >= threshold` when scores are distinct.
    """
    out = []
    for name, s in scores.items():
        s = np.asarray(s, dtype=np.float64)
        if s.size == 0:
            continue
        k = top_k_count(s.size, top_fraction)
        out.append({"model": name, "n": int(s.size), "mean": float(s.mean()),
                    "std": float(s.std(ddof=1)) if s.size > 1 else math.nan, "median": float(np.median(s)),
                    "min": float(s.min()), "max": float(s.max()), "top_k": k,
                    "top_threshold": float(np.sort(s)[::-1][k - 1])})
    return out


def top_k_count(n: int, fraction: float) -> int:
    """How many of `n` images make the top `fraction` (at least 1)."""
    return max(1, min(n, math.ceil(fraction * n - 1e-9)))


def entropy_ratios(means: Mapping[str, float]) -> list[dict]:
    """Every ordered pair (a, b), a != b, with mean(a) / mean(b); largest ratio first."""
    out = [{"numerator": a, "denominator": b, "ratio": ma / mb}
           for a, ma in means.items() for b, mb in means.items() if a != b and mb > 0]
    return sorted(out, key=lambda r: -r["ratio"])


def histogram_counts(scores: np.ndarray, edges: np.ndarray, top_fraction: float) -> tuple[np.ndarray, np.ndarray]:
    """Counts per bin of the images outside and inside the top `top_fraction` (by score, ties by index)."""
    s = np.asarray(scores, dtype=np.float64)
    top = top_mask(s, top_fraction)
    return np.histogram(s[~top], bins=edges)[0], np.histogram(s[top], bins=edges)[0]


def top_mask(scores: np.ndarray, fraction: float) -> np.ndarray:
    """Boolean mask of the k = `top_k_count` highest scores (stable: ties go to the lower index)."""
    s = np.asarray(scores, dtype=np.float64)
    top = np.zeros(s.size, dtype=bool)
    top[np.argsort(-s, kind="stable")[:top_k_count(s.size, fraction)]] = True
    return top


def curve_table(points: Iterable[Mapping[str, Any]]) -> list[dict]:
    """Mean ± std (ddof=1) over seeds per (data, model, strategy, metric, cycle); `data` (dataset and
    pool) keeps curves of different studies apart ("" when a point has none)."""
    groups: dict[tuple, list[Mapping[str, Any]]] = {}
    for p in points:
        groups.setdefault((p.get("data", ""), p["model"], p["strategy"], p["metric"], p["cycle"]), []).append(p)
    out = []
    for (data, model, strategy, metric, cycle), ps in groups.items():
        v = np.array([p["value"] for p in ps], dtype=np.float64)
        out.append({"data": data, "model": model, "strategy": strategy, "metric": metric, "cycle": cycle,
                    "fraction": float(np.mean([p["fraction"] for p in ps])), "mean": float(v.mean()),
                    "std": float(v.std(ddof=1)) if v.size > 1 else math.nan, "n": int(v.size)})
    return sorted(out, key=lambda r: (r["data"], r["model"], r["strategy"], r["metric"], r["cycle"]))
