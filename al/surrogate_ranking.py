"""Rank surrogates before running the matrix, from cheap signals, and check the ranking against a
matrix that was run (`al rank`).

The probe, per seed: every model (surrogates and deployment models) trains once on the
experiment's shared cycle-0 random set (its small labelled probe) and scores the rest of the pool
with the experiment's strategy (e.g. image entropy). That costs the first training of each AL run
and none of the deployment trainings. Signals per (surrogate S, deployment model D):

- `overlap`: share of S's top-k that is also in D's top-k (k = the cycle budget): does S pick
  what the deployment model would pick for itself?
- `rank_corr`: Spearman correlation of S's and D's scores over the unlabelled pool;
- `separation`: S's own (mean score of its top-k − mean of the rest) / sd of all its scores — how
  far its picks stand out of its score distribution (the paper's Fig. 4 argument: wider entropy
  distributions separate important from unimportant images). The same for every D.

Ranking: per deployment model, surrogates by mean `overlap` over the probe's seeds.
Validation: over every off-diagonal pair (S ≠ D) of a finished matrix, the Spearman correlation
between a signal and the matrix's Δ (surrogate − random of the same seed, mean over seeds), with
a bootstrap over seeds (probe and matrix resampled together) and a permutation p-value.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence

import numpy as np

SIGNALS = ("overlap", "rank_corr", "separation")
BOOTSTRAP = 2000
PERMUTATIONS = 20000


def top_k(scores: np.ndarray, k: int) -> np.ndarray:
    """Indices (into scores) of the k highest scores, ties to the lowest index."""
    return np.argsort(-np.asarray(scores, dtype=np.float64), kind="stable")[:k]


def spearman(a: Sequence[float], b: Sequence[float]) -> float:
    """Spearman rank correlation (average ranks for ties); NaN when either side is constant."""
    from scipy.stats import rankdata

    ra, rb = rankdata(a), rankdata(b)
    if np.ptp(ra) == 0 or np.ptp(rb) == 0:
        return float("nan")
    return float(np.corrcoef(ra, rb)[0, 1])


def separation(scores: np.ndarray, k: int) -> float:
    """(mean of the top-k scores − mean of the rest) / sd of all scores (ddof=0); 0 when constant."""
    s = np.asarray(scores, dtype=np.float64)
    sd = s.std()
    if sd == 0 or k <= 0 or k >= s.size:
        return 0.0
    top = np.zeros(s.size, dtype=bool)
    top[top_k(s, k)] = True
    return float((s[top].mean() - s[~top].mean()) / sd)


def pair_signals(scores: dict[str, np.ndarray], surrogates: Sequence[str], deployment: Sequence[str],
                 k: int) -> list[dict]:
    """Signals of every (surrogate, deployment) pair from one seed's probe scores (same images, same order)."""
    tops = {m: set(top_k(s, k).tolist()) for m, s in scores.items()}
    out = []
    for d in deployment:
        for s in surrogates:
            out.append({"surrogate": s, "deployment": d, "overlap": len(tops[s] & tops[d]) / k,
                        "rank_corr": spearman(scores[s], scores[d]), "separation": separation(scores[s], k)})
    return out


def ranking(signals: list[dict], signal: str = "overlap") -> dict[str, list[dict]]:
    """Per deployment model: surrogates by mean `signal` over seeds, best first (the model itself excluded)."""
    out: dict[str, list[dict]] = {}
    for d in dict.fromkeys(r["deployment"] for r in signals):
        means = {}
        for s in dict.fromkeys(r["surrogate"] for r in signals if r["deployment"] == d and r["surrogate"] != d):
            means[s] = float(np.mean([r[signal] for r in signals if (r["deployment"], r["surrogate"]) == (d, s)]))
        out[d] = [{"surrogate": s, signal: v} for s, v in sorted(means.items(), key=lambda kv: -kv[1])]
    return out


def deltas_by_seed(records: list[dict]) -> dict[tuple[str, str], dict[int, float]]:
    """(deployment, surrogate) -> seed -> value(surrogate) − value(random of the same seed)."""
    rand = {(r["deployment"], r["seed"]): r["value"] for r in records if r["surrogate"] == "random"}
    out: dict[tuple[str, str], dict[int, float]] = {}
    for r in records:
        if r["surrogate"] != "random" and (r["deployment"], r["seed"]) in rand:
            out.setdefault((r["deployment"], r["surrogate"]), {})[int(r["seed"])] = (
                r["value"] - rand[(r["deployment"], r["seed"])])
    return out


def permutation_p(x: Sequence[float], y: Sequence[float], rng: np.random.Generator) -> tuple[float, str]:
    """Two-sided p-value of Spearman's ρ under exchangeability: exact over all orders for n <= 8,
    else Monte Carlo with PERMUTATIONS draws (the observed order counted once)."""
    from scipy.stats import rankdata

    obs = abs(spearman(x, y))
    if not math.isfinite(obs):
        return float("nan"), "undefined (one side is constant)"
    rx, ry = rankdata(x), rankdata(y)
    n = rx.size
    if n <= 8:
        orders = np.array(list(itertools.permutations(range(n))))            # (n!, n)
        how = "exact"
    else:
        orders = rng.permuted(np.tile(np.arange(n), (PERMUTATIONS, 1)), axis=1)
        how = f"Monte Carlo ({PERMUTATIONS} permutations)"
    cx, cy = rx - rx.mean(), ry[orders] - ry.mean()                           # (n,), (P, n)
    rho = (cy @ cx) / np.sqrt((cx @ cx) * (cy * cy).sum(axis=1))              # (P,)
    hits = int(np.count_nonzero(np.abs(rho) >= obs - 1e-12))
    return (hits / len(orders), how) if how == "exact" else ((hits + 1) / (PERMUTATIONS + 1), how)


def _study(sig_rows: list[dict], records: list[dict]) -> dict:
    """One study's off-diagonal pairs with per-seed signals and Δs."""
    deltas = deltas_by_seed(records)
    sig: dict[tuple[str, str], dict[int, dict]] = {}
    for r in sig_rows:
        p = (r["deployment"], r["surrogate"])
        if p[0] != p[1] and p in deltas:
            sig.setdefault(p, {})[int(r["seed"])] = r
    pairs = sorted(sig)
    matrix_seeds = sorted(set.intersection(*(set(deltas[p]) for p in pairs))) if pairs else []
    probe_seeds = sorted(set.intersection(*(set(sig[p]) for p in pairs))) if pairs else []
    return {"pairs": pairs, "sig": sig, "deltas": deltas, "probe_seeds": probe_seeds, "matrix_seeds": matrix_seeds}


def _num(v: object) -> float:
    """A stored value as float (JSON null, written for NaN, back to NaN)."""
    return float("nan") if v is None else float(v)


def _means(st: dict, signal: str, probe_seeds: Sequence[int], matrix_seeds: Sequence[int]):
    x = [float(np.mean([_num(st["sig"][p][s][signal]) for s in probe_seeds])) for p in st["pairs"]]
    y = [float(np.mean([st["deltas"][p][s] for s in matrix_seeds])) for p in st["pairs"]]
    return x, y


def _resample(st: dict, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Seeds drawn with replacement: the matrix's, and the probe's the same draw where it has them."""
    ms = rng.choice(st["matrix_seeds"], size=len(st["matrix_seeds"]))
    ps = ms[np.isin(ms, st["probe_seeds"])]
    if ps.size == 0:                                                     # probe and matrix share no seed
        ps = rng.choice(st["probe_seeds"], size=len(st["probe_seeds"]))
    return ps, ms


def validate(studies: list[tuple[list[dict], list[dict]]], *, seed: int = 0, resamples: int = BOOTSTRAP) -> dict:
    """Spearman ρ between each signal and the matrix Δ over every off-diagonal pair of `studies`.

    studies: [(probe signal rows with a "seed" key, matrix records)], one per experiment; pairs of
    different studies are distinct pairs. Bootstrap: seeds resampled with replacement within each
    study, the probe's and the matrix's together where they share seeds; percentile 95 % interval.
    """
    rng = np.random.default_rng(seed)
    sts = [_study(sig, rec) for sig, rec in studies]
    out: dict = {"pairs": [], "signals": {}}
    for k, st in enumerate(sts):
        xs = {g: _means(st, g, st["probe_seeds"], st["matrix_seeds"])[0] for g in SIGNALS}
        _, y = _means(st, SIGNALS[0], st["probe_seeds"], st["matrix_seeds"])
        for i, p in enumerate(st["pairs"]):
            out["pairs"].append({"study": k, "deployment": p[0], "surrogate": p[1], "delta": y[i],
                                 **{g: xs[g][i] for g in SIGNALS}})
    out["n_pairs"] = n = len(out["pairs"])
    out["seeds"] = [{"probe": st["probe_seeds"], "matrix": st["matrix_seeds"]} for st in sts]
    if n < 3:
        return out
    draws = [[_resample(st, rng) for st in sts] for _ in range(resamples)]
    for g in SIGNALS:
        x = [p[g] for p in out["pairs"]]
        y = [p["delta"] for p in out["pairs"]]
        boot = []
        for draw in draws:
            bx, by = [], []
            for st, (ps, ms) in zip(sts, draw, strict=True):
                a, b = _means(st, g, ps, ms)
                bx += a
                by += b
            v = spearman(bx, by)
            if math.isfinite(v):
                boot.append(v)
        pval, how = permutation_p(x, y, rng)
        lo, hi = np.percentile(boot, [2.5, 97.5]).tolist() if boot else [float("nan")] * 2
        out["signals"][g] = {"rho": spearman(x, y), "ci95": [lo, hi], "p": pval, "p_method": how,
                             "bootstrap_resamples": len(boot)}
    return out
