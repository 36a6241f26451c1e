"""al.stats: surrogate tables (mean ± sample std, beats-random, best per row) and entropy
statistics, against hand-computed values."""

from __future__ import annotations

import math

import numpy as np
import pytest

from al.stats import (
    RANDOM,
    aggregate,
    beats_random,
    best_per_row,
    compare_to_random,
    entropy_ratios,
    entropy_summary,
    matrix_records,
    row_scale,
    top_k_count,
)

# rows (deployment) a, b; columns (surrogate) a, c, random; seeds 0, 1, 2. ("a", "a") is the diagonal.
VALUES = {
    ("a", "a"): [60, 62, 64],      # mean 62, sample std 2
    ("a", "c"): [50, 51, 55],      # mean 52, sample std sqrt(7)
    ("a", RANDOM): [55, 55, 58],   # mean 56, sample std sqrt(3)
    ("b", "a"): [70, 70, 70],      # mean 70, std 0
    ("b", "c"): [71, 73, 75],      # mean 73, std 2; paired diffs vs random -1, +1, +3
    ("b", RANDOM): [72, 72, 72],   # mean 72
}


def records(values=VALUES, metric="miou"):
    return [{"deployment": d, "surrogate": s, "seed": seed, "metric": metric, "value": v}
            for (d, s), vs in values.items() for seed, v in enumerate(vs)]


def test_aggregate_mean_and_sample_std():
    m = aggregate(records())
    assert m.rows == ("a", "b")
    assert m.columns == ("a", "c", RANDOM)  # random always last
    assert m.cell("a", "a").mean == pytest.approx(62) and m.cell("a", "a").std == pytest.approx(2)
    assert m.cell("a", "c").mean == pytest.approx(52) and m.cell("a", "c").std == pytest.approx(math.sqrt(7))
    assert m.cell("a", RANDOM).std == pytest.approx(math.sqrt(3))  # ddof=1, not sqrt(2) (ddof=0)
    assert m.cell("b", "a").std == 0.0
    assert m.cell("b", "c").n == 3 and m.cell("b", "c").seeds == (0, 1, 2)


def test_aggregate_orders_rows_and_columns_as_given_and_filters_metric():
    recs = records() + records(metric="top1")
    m = aggregate(recs, rows=["b", "a"], columns=["c", "a"], metric="top1")
    assert m.rows == ("b", "a") and m.columns == ("c", "a", RANDOM)
    assert m.metric == "top1" and m.cell("b", "c").n == 3


def test_one_seed_has_no_std_and_duplicates_are_bugs():
    m = aggregate([{"deployment": "a", "surrogate": "c", "seed": 0, "metric": "miou", "value": 5.0}])
    assert m.cell("a", "c").mean == 5.0 and math.isnan(m.cell("a", "c").std)
    dup = records() + [records()[0]]
    with pytest.raises(ValueError, match="duplicate"):
        aggregate(dup)


def test_beats_random_is_the_confidence_interval_and_excludes_the_diagonal():
    br = beats_random(aggregate(records()))
    # off-diagonal paired diffs: (a, c) -5, -4, -3 -> -4 ± 4.303/sqrt(3) = [-6.48, -1.52]: lose;
    # (b, a) -2, -2, -2 (no spread): lose; (b, c) -1, 1, 3 -> 1 ± 4.97: tie (its mean alone would win)
    assert (br.wins, br.ties, br.losses, br.pairs, br.mean_wins) == (0, 1, 2, 3, 1)
    # diagonal (a, a): 5, 7, 6 -> 6 ± 2.48: beat
    assert (br.diagonal_wins, br.diagonal_pairs) == (1, 1)
    t = 4.302652729749464  # t_{0.975, 2}
    assert br.median_half_width == pytest.approx(t / math.sqrt(3))   # half-widths 2.48, 0, 4.97


def test_tie_with_random_does_not_count_as_a_win():
    vals = {("a", "c"): [1.0, 3.0], ("a", RANDOM): [2.0, 2.0]}
    assert beats_random(aggregate(records(vals))).wins == 0


def test_paired_comparison_against_random():
    comps = {(c.deployment, c.surrogate): c for c in compare_to_random(aggregate(records()))}
    bc = comps[("b", "c")]
    assert bc.delta == pytest.approx(1.0)
    assert bc.delta_std == pytest.approx(2.0)  # diffs -1, 1, 3
    assert (bc.wins, bc.paired) == (2, 3)
    assert bc.diff.ci_low == pytest.approx(1 - 4.302652729749464 * 2 / math.sqrt(3)) and bc.verdict == "tie"
    assert comps[("a", "a")].diagonal and not bc.diagonal
    d = bc.to_dict()
    assert d["verdict"] == "tie" and d["ci_method"] == "t" and d["seeds"] == 3 and 0 < d["p_value"] < 1


def test_best_per_row_and_row_scale():
    m = aggregate(records())
    assert best_per_row(m) == {"a": "a", "b": "c"}
    vals = dict(VALUES)
    vals[("b", RANDOM)] = [80, 80, 80]
    m2 = aggregate(records(vals))
    assert best_per_row(m2)["b"] == "c"  # surrogates only by default
    assert best_per_row(m2, include_random=True)["b"] == RANDOM
    scale = row_scale(m, "a")  # surrogate means 62, 52 -> (x - 52) / 10; random is not colour-coded
    assert scale == pytest.approx({"a": 1.0, "c": 0.0})


def test_matrix_records_flatten_every_cell():
    rows = matrix_records(aggregate(records()))
    assert len(rows) == 6
    r = next(r for r in rows if (r["deployment"], r["surrogate"]) == ("a", "c"))
    assert r["mean"] == pytest.approx(52) and r["n"] == 3 and r["seeds"] == [0, 1, 2]


def test_entropy_summary_ratios_and_top_k():
    s = {"x": np.arange(1, 11, dtype=float), "y": np.arange(1, 11, dtype=float) / 2}
    summ = {r["model"]: r for r in entropy_summary(s, top_fraction=0.1)}
    assert summ["x"]["mean"] == pytest.approx(5.5) and summ["y"]["mean"] == pytest.approx(2.75)
    assert summ["x"]["std"] == pytest.approx(np.std(np.arange(1, 11), ddof=1))
    assert summ["x"]["top_k"] == 1 and summ["x"]["top_threshold"] == 10.0
    ratios = entropy_ratios({k: v["mean"] for k, v in summ.items()})
    assert ratios[0] == {"numerator": "x", "denominator": "y", "ratio": pytest.approx(2.0)}
    assert ratios[1]["ratio"] == pytest.approx(0.5)
    assert [top_k_count(n, 0.1) for n in (5, 10, 11, 20)] == [1, 1, 2, 2]
