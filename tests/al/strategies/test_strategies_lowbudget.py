"""TypiClust and ProbCover: the reference implementation's picks on small inputs, constructed
clusters whose right picks are known, and brute force on small inputs.

`tests/data/lowbudget/lowbudget_reference_picks.json` holds the picks of the authors' code
(github.com/avihu111/TypiClust @ 4097a71c, `typiclust.py` / `prob_cover.py`), produced by
`make_lowbudget_reference_picks.py` beside it (its docstring lists the stand-ins: exact numpy faiss,
given cluster labels, CPU torch, a graph batch size that covers every row).
"""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import numpy as np
import pytest

from al.strategies import Evidence, get_strategy, list_strategies, select
from al.strategies.embedding_space import as_embeddings
from al.strategies.probcover import ball_graph, max_coverage_greedy, purity_delta
from al.strategies.typiclust import typicality, typiclust, typiclust_picks
from hwbench.errors import UserError

FIXTURE = Path(__file__).resolve().parents[2] / "data" / "lowbudget" / "lowbudget_reference_picks.json"
CASES = json.loads(FIXTURE.read_text())["cases"]


def _mask(n: int, idx) -> np.ndarray:
    m = np.zeros(n, dtype=bool)
    m[list(idx)] = True
    return m


@pytest.mark.parametrize("case", [c for c in CASES if c["algorithm"] == "typiclust"], ids=lambda c: c["name"])
def test_typiclust_matches_reference_picks(case):
    x = as_embeddings(np.array(case["features"]), "typiclust", normalize=True)
    lab = _mask(len(x), case["labelled"])
    picks = typiclust_picks(x, np.array(case["clusters"]), lab, case["budget"], k_nn=case["k_nn"],
                            min_cluster_size=case["min_cluster_size"])
    assert picks.tolist() == case["picks"]


@pytest.mark.parametrize("case", [c for c in CASES if c["algorithm"] == "probcover"], ids=lambda c: c["name"])
def test_probcover_matches_reference_picks(case):
    n = len(case["features"])
    lab = _mask(n, case["labelled"])
    strat = get_strategy("probcover", delta=case["delta"])
    picks = select(strat, Evidence(embedding=np.array(case["features"], dtype=np.float32)), case["budget"], lab, 0)
    assert picks.tolist() == case["picks"]


def _blobs(rng, k=5, per=30, dim=4, sd=0.05, sep=20.0, outlier_at=0.6):
    """k tight blobs far apart, each with one planted outlier `outlier_at` from its centre."""
    centres = rng.normal(0, sep, (k, dim))
    xs, ys, outliers = [], [], []
    for c, centre in enumerate(centres):
        pts = centre + rng.normal(0, sd, (per, dim))
        direction = rng.normal(size=dim)
        pts[0] = centre + outlier_at * direction / np.linalg.norm(direction)
        outliers.append(c * per)
        xs.append(pts)
        ys += [c] * per
    return np.concatenate(xs), np.array(ys), np.array(outliers)


def _most_typical(x: np.ndarray, members: np.ndarray, k: int) -> int:
    """Brute force: the member with the smallest mean squared distance to its k nearest other members."""
    best, best_v = -1, np.inf
    for i in members:
        d = sorted(float(((x[i] - x[j]) ** 2).sum()) for j in members if j != i)
        v = np.mean(d[:k])
        if v < best_v:
            best, best_v = int(i), v
    return best


def test_typiclust_one_typical_point_per_cluster_never_an_outlier():
    rng = np.random.default_rng(3)
    x, y, outliers = _blobs(rng)
    picks = typiclust(x, np.zeros(len(x), bool), 5, np.random.default_rng(0), normalize=False)
    assert sorted(y[picks].tolist()) == [0, 1, 2, 3, 4]                   # one per cluster
    assert not set(picks.tolist()) & set(outliers.tolist())
    for p in picks:                                                       # the most typical of its blob
        assert p == _most_typical(x, np.flatnonzero(y == y[p]), 15)


def test_typiclust_skips_clusters_that_hold_labels():
    rng = np.random.default_rng(4)
    x, y, _ = _blobs(rng, k=4)
    lab = _mask(len(x), [np.flatnonzero(y == 2)[5]])                      # one label in blob 2
    picks = typiclust(x, lab, 3, np.random.default_rng(1), normalize=False)
    assert sorted(y[picks].tolist()) == [0, 1, 3]


def test_typicality_brute_force():
    x = np.random.default_rng(5).normal(size=(9, 3))
    for k in (1, 3, 8):
        want = [1 / (np.mean(sorted(((x[i] - x[j]) ** 2).sum() for j in range(9) if j != i)[:k]) + 1e-5)
                for i in range(9)]
        np.testing.assert_allclose(typicality(x, k), want, rtol=1e-10)
    assert typicality(x[:1], 20).tolist() == [0.0]


def test_typiclust_round_robin_and_exhausted_clusters():
    x = np.random.default_rng(6).normal(size=(14, 2))
    clusters = np.array([0] * 7 + [1] * 7)
    picks = typiclust_picks(x, clusters, np.zeros(14, bool), 14, k_nn=20, min_cluster_size=5)
    assert sorted(picks.tolist()) == list(range(14))                      # everything, no crash
    assert clusters[picks[:6]].tolist() == [0, 1] * 3                    # alternating while both last


def test_typiclust_small_clusters_only_after_kept_ones():
    x = np.random.default_rng(7).normal(size=(10, 2))
    clusters = np.array([0] * 7 + [1] * 3)                                # cluster 1: below min size
    picks = typiclust_picks(x, clusters, np.zeros(10, bool), 8, min_cluster_size=5)
    assert clusters[picks].tolist() == [0] * 7 + [1]


def test_probcover_covers_every_ball():
    rng = np.random.default_rng(8)
    x, y, _ = _blobs(rng, k=6, sd=0.01, outlier_at=0.02)                  # every blob inside a 0.1 ball
    picks, coverage = max_coverage_greedy(ball_graph(x, 0.5), np.zeros(len(x), bool), 6, rng)
    assert sorted(y[picks].tolist()) == list(range(6))
    assert coverage[-1] == 1.0
    np.testing.assert_allclose(coverage, np.arange(1, 7) / 6)


def _covers(x, i, delta):
    return {j for j in range(len(x)) if np.sqrt(((x[i] - x[j]) ** 2).sum()) < delta}


@pytest.mark.parametrize("seed", range(4))
def test_probcover_each_pick_is_the_brute_force_best(seed):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(14, 2)) * 2
    lab = _mask(14, rng.choice(14, 2, replace=False))
    picks, coverage = max_coverage_greedy(ball_graph(x, 0.9), lab, 4, rng)
    covered = set().union(*(_covers(x, i, 0.9) for i in np.flatnonzero(lab)))
    for p, cov in zip(picks, coverage, strict=True):
        gains = [len(_covers(x, i, 0.9) - covered) for i in range(14)]
        if max(gains) == 0:                                               # all covered: random fill
            assert cov == 1.0
            continue
        assert gains[p] == max(gains) and p == gains.index(max(gains))    # most new, lowest index
        covered |= _covers(x, p, 0.9)
        assert cov == pytest.approx(len(covered) / 14)


def test_probcover_full_coverage_fills_with_distinct_unlabelled():
    x = np.random.default_rng(9).normal(size=(20, 2))
    lab = _mask(20, [0, 1])
    picks, coverage = max_coverage_greedy(ball_graph(x, 100.0), lab, 5, np.random.default_rng(0))
    assert len(set(picks.tolist())) == 5 and not lab[picks].any()
    assert coverage.tolist() == [1.0] * 5


def test_probcover_greedy_within_the_bound_of_the_optimum():
    rng = np.random.default_rng(10)
    x = rng.normal(size=(12, 2))
    g = ball_graph(x, 0.8)
    balls = [_covers(x, i, 0.8) for i in range(12)]
    for b in (1, 2, 3):
        picks, cov = max_coverage_greedy(g, np.zeros(12, bool), b, rng)
        best = max(len(set().union(*(balls[i] for i in s))) for s in itertools.combinations(range(12), b))
        assert cov[-1] * 12 >= (1 - (1 - 1 / b) ** b) * best - 1e-9      # greedy's guarantee
        if b == 1:
            assert cov[-1] * 12 == best


def test_purity_delta_brute_force():
    rng = np.random.default_rng(11)
    x = rng.normal(size=(40, 2))
    pseudo = (x[:, 0] > 0).astype(int) + 2 * (x[:, 1] > 0)

    def purity(delta):
        return np.mean([all(pseudo[j] == pseudo[i] for j in _covers(x, i, delta)) for i in range(40)])

    for alpha in (0.5, 0.8, 0.95):
        d = purity_delta(x, pseudo, alpha)
        assert purity(d) >= alpha
        assert purity(d * (1 + 1e-9) + 1e-12) < alpha                     # the largest such delta


def test_registered_and_usable_by_name():
    assert {"typiclust", "probcover"} <= set(list_strategies())
    x, _, _ = _blobs(np.random.default_rng(12), k=3)
    ev = Evidence(embedding=x.astype(np.float32))
    for name in ("typiclust", "probcover"):
        strat = get_strategy(name)
        assert strat.needs == frozenset({"embedding"})
        assert strat.candidates(np.zeros(len(x), bool), np.random.default_rng(0)).size == len(x)
        a = select(name, ev, 4, _mask(len(x), [0, 40]), 5)
        b = select(name, ev, 4, _mask(len(x), [0, 40]), 5)
        assert a.tolist() == b.tolist() and len(set(a.tolist())) == 4       # deterministic given the rng


@pytest.mark.parametrize("name, kwargs", [("probcover", {"delta": -1.0}), ("probcover", {"alpha": 1.5}),
                                          ("probcover", {"classes": 1}), ("typiclust", {"k_nn": 0}),
                                          ("typiclust", {"radius": 1})])
def test_bad_options_are_user_errors(name, kwargs):
    with pytest.raises(UserError):
        get_strategy(name, **kwargs)


def test_non_finite_embeddings_are_user_errors():
    x = np.ones((5, 2))
    x[1, 0] = np.nan
    for name in ("typiclust", "probcover"):
        with pytest.raises(UserError, match="finite"):
            select(name, Evidence(embedding=x), 1, np.zeros(5, bool), 0)


@pytest.mark.parametrize("name", ["typiclust", "probcover"])
def test_al_run_with_the_strategy(name, tmp_path):
    """The loop collects embeddings of the whole pool for them and labels their picks."""
    from al.cli import main
    from hwbench.io import read_jsonl

    out = tmp_path / name
    assert main(["run", "smoke_digits", "--strategy", name, "--out", str(out)]) == 0
    sel = list(read_jsonl(out / "selections.jsonl"))
    assert [r["strategy"] for r in sel] == ["random", name, name]
    picked = [i for r in sel for i in r["selected"]]
    assert len(picked) == len(set(picked)) == 60                          # 20 + 2 x 20, no repeats
