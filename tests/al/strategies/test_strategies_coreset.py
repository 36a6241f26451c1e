"""k-center greedy against an independent brute force (explicit loops, float64, all centres
recomputed every pick), plus the invariants of the Core-Set strategy."""

import itertools

import numpy as np
import pytest
import torch

from al.strategies import Evidence, get_strategy, k_center_greedy
from al.strategies.coreset import initial_min_dists, sq_dists
from hwbench.errors import UserError


def brute_force_k_center(x, labelled, budget, first=None):
    """Textbook greedy: every pick recomputes each point's distance to every centre."""
    x = np.asarray(x, dtype=np.float64)
    n = len(x)
    centres = [i for i in range(n) if labelled[i]]
    picks = []
    if not centres:
        picks.append(first)
        centres.append(first)
    while len(picks) < budget:
        best_i, best_d = None, -1.0
        for i in range(n):
            if labelled[i] or i in picks:
                continue
            d = min(sum((a - b) ** 2 for a, b in zip(x[i], x[c], strict=True)) for c in centres)
            if d > best_d:                    # strict: ties keep the lowest index
                best_i, best_d = i, d
        picks.append(best_i)
        centres.append(best_i)
    return picks


@pytest.mark.parametrize("seed, n, dim, frac, chunk", list(itertools.product(
    [0, 1, 2], [37], [2, 7], [0.0, 0.2], [5, 64])))
def test_matches_brute_force(seed, n, dim, frac, chunk):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, dim)).astype(np.float32)
    labelled = rng.random(n) < frac
    budget = 12
    ours = k_center_greedy(x, labelled, budget, chunk_size=chunk)
    first = int(np.flatnonzero(~labelled)[0])          # rng=None seeds with the lowest unlabelled index
    assert ours.tolist() == brute_force_k_center(x, labelled, budget, first=first)


def test_matches_brute_force_with_clusters_far_from_origin():
    rng = np.random.default_rng(5)
    x = (rng.standard_normal((4, 6))[rng.integers(0, 4, 60)] * 3 + 100
         + rng.standard_normal((60, 6)) * 0.01).astype(np.float32)
    labelled = np.zeros(60, bool)
    labelled[[3, 17, 40]] = True
    ours = k_center_greedy(x, labelled, 15, chunk_size=7)
    assert ours.tolist() == brute_force_k_center(x, labelled, 15)


def test_ties_go_to_lowest_index_and_duplicates_are_fine():
    # 1-D: index 0 labelled at 0; 1, 2 and 3 all lie at squared distance 4 (a three-way tie -> 1);
    # then 2 (16 from 1, 4 from 0) beats 3 (duplicate of 1: 0) and 4 (1); then 4 (1) before 3 (0).
    x = np.array([[0.0], [2.0], [-2.0], [2.0], [1.0]], dtype=np.float32)
    labelled = np.array([True, False, False, False, False])
    assert k_center_greedy(x, labelled, 4, chunk_size=2).tolist() == [1, 2, 4, 3]
    assert brute_force_k_center(x, labelled, 4) == [1, 2, 4, 3]


def test_dense_low_dim_pool_triggers_eager_catch_up(monkeypatch):
    # 2-D grid: many equal distances and many stale bounds per pick -> the eager fallback runs
    from al.strategies import coreset

    passes = []
    real_pass = coreset._pass
    monkeypatch.setattr(coreset, "_pass", lambda *a: (passes.append(1), real_pass(*a)))
    g = np.stack(np.meshgrid(np.arange(30), np.arange(30)), -1).reshape(-1, 2).astype(np.float32)
    labelled = np.zeros(len(g), bool)
    labelled[0] = True
    ours = k_center_greedy(g, labelled, 40, chunk_size=128)
    assert passes, "the eager catch-up was not exercised"
    assert ours.tolist() == eager(g, labelled, 40)


def eager(x, labelled, budget):
    """Eager greedy with numpy full passes (same float32 formula), ties to the lowest index."""
    md = np.full(len(x), np.inf, np.float32)
    for c in np.flatnonzero(labelled):
        md = np.minimum(md, ((x - x[c]) ** 2).sum(axis=1))
    md[labelled] = -np.inf
    picks = []
    for _ in range(budget):
        j = int(np.argmax(md))
        picks.append(j)
        md = np.minimum(md, ((x - x[j]) ** 2).sum(axis=1))
        md[j] = -np.inf
    return picks


@pytest.mark.parametrize("seed", [0, 1])
def test_bit_identical_to_eager_on_larger_pool(seed):
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((8, 32)).astype(np.float32) * 3
    x = (centres[rng.integers(0, 8, 600)] + rng.standard_normal((600, 32))).astype(np.float32)
    labelled = rng.random(600) < 0.1
    assert k_center_greedy(x, labelled, 80, chunk_size=50).tolist() == eager(x, labelled, 80)


def test_initial_min_dists_equals_exact_formula():
    rng = np.random.default_rng(3)
    x = (rng.standard_normal((200, 16)) + 40).astype(np.float32)
    idx = np.array([4, 50, 51, 120])
    ref = np.min(np.stack([sq_dists(x, x[c]) for c in idx]), axis=0)
    np.testing.assert_array_equal(initial_min_dists(x, idx, chunk_size=33), ref)


def test_random_first_centre_uses_rng_and_torch_input():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((30, 4)).astype(np.float32)
    labelled = np.zeros(30, bool)
    a = k_center_greedy(torch.from_numpy(x), labelled, 5, rng=np.random.default_rng(7))
    b = k_center_greedy(x, labelled, 5, rng=np.random.default_rng(7))
    assert a.tolist() == b.tolist()
    first = int(np.random.default_rng(7).choice(np.arange(30)))
    assert a[0] == first and a.tolist() == brute_force_k_center(x, labelled, 5, first=first)


def test_strategy_never_returns_labelled_and_needs_all_embeddings():
    rng = np.random.default_rng(1)
    x = rng.standard_normal((50, 3)).astype(np.float32)
    labelled = rng.random(50) < 0.5
    strat = get_strategy("coreset", chunk_size=8)
    assert strat.needs == frozenset({"embedding"})
    assert strat.candidates(labelled, rng).tolist() == list(range(50))
    picks = strat.select(Evidence(embedding=x), int((~labelled).sum()), labelled, rng)
    assert not labelled[picks].any() and len(set(picks.tolist())) == len(picks) == (~labelled).sum()
    x_nan = x.copy()
    x_nan[np.flatnonzero(labelled)[0]] = np.nan
    with pytest.raises(UserError, match="finite embeddings"):
        strat.select(Evidence(embedding=x_nan), 3, labelled, rng)
    with pytest.raises(UserError, match="budget"):
        strat.select(Evidence(embedding=x), int((~labelled).sum()) + 1, labelled, rng)
    with pytest.raises(UserError, match="chunk_size"):
        get_strategy("coreset", chunk_size=0)
