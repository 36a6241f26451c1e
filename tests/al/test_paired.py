"""Paired statistics against hand computations (Student-t with 2 degrees of freedom has closed forms:
quantile t_q = (2q − 1) · sqrt(2 / (4q(1 − q))), tail P(T > t) = (1 − t / sqrt(t² + 2)) / 2)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from al.paired import (
    bootstrap_interval,
    median_half_width,
    paired_diff,
    paired_differences,
    seeds_needed,
    t_interval,
    verdict,
    verdict_counts,
)
from hwbench.errors import UserError


def t2_quantile(q: float) -> float:
    return (2 * q - 1) * math.sqrt(2 / (4 * q * (1 - q)))


def t2_tail(t: float) -> float:
    return (1 - t / math.sqrt(t * t + 2)) / 2


def test_three_seeds_t_interval_and_p_value_by_hand() -> None:
    d = [1.0, 2.0, 3.0]                                  # mean 2, s = 1, n = 3
    half = t2_quantile(0.975) * 1.0 / math.sqrt(3)       # 4.3027 / 1.7321 = 2.4841
    assert t2_quantile(0.975) == pytest.approx(4.302653, abs=1e-6)   # the printed t-table value
    lo, hi = t_interval(d)
    assert (lo, hi) == pytest.approx((2 - half, 2 + half), abs=1e-9)
    p = paired_diff(d)
    assert p.method == "t" and p.n == 3 and p.delta == 2.0 and p.std == pytest.approx(1.0)
    assert p.p_value == pytest.approx(2 * t2_tail(2 / (1 / math.sqrt(3))), abs=1e-9)   # t = 3.4641 -> p = 0.0742
    assert p.p_value == pytest.approx(0.0741799, abs=1e-6)
    assert p.verdict == "tie" and p.half_width == pytest.approx(half)


def test_verdict_is_the_interval_not_the_mean() -> None:
    beat = paired_diff([1.5, 2.0, 2.5])                  # s = 0.5: 2 ± 1.242 -> [0.758, 3.242]
    assert beat.ci_low == pytest.approx(2 - t2_quantile(0.975) * 0.5 / math.sqrt(3)) and beat.verdict == "beat"
    assert paired_diff([-1.5, -2.0, -2.5]).verdict == "lose"
    assert paired_diff([5.0, -4.0, 1.0]).verdict == "tie"        # mean +0.67, but the CI holds 0
    assert verdict(None, None) == "n/a" and verdict(0.0, 1.0) == "tie"
    one = paired_diff([0.7])
    assert one.verdict == "n/a" and one.ci_low is None and one.p_value is None and one.half_width is None
    counts = verdict_counts([beat, one, paired_diff([5.0, -4.0, 1.0]), paired_diff([-1.5, -2.0, -2.5])])
    assert counts == {"beat": 1, "tie": 1, "lose": 1, "n/a": 1}
    assert median_half_width([beat, one, paired_diff([1.0, 2.0, 3.0])]) == pytest.approx(
        (beat.half_width + t2_quantile(0.975) / math.sqrt(3)) / 2)


def test_zero_spread() -> None:
    p = paired_diff([0.5, 0.5, 0.5])
    assert (p.ci_low, p.ci_high, p.p_value, p.verdict) == (0.5, 0.5, 0.0, "beat")
    assert paired_diff([0.0, 0.0]).p_value == 1.0


def test_seeds_needed_from_t_tables() -> None:
    # s = 2, Δ = 1: t(16) = 2.120 -> 2.120·2/√17 = 1.028 > 1; t(17) = 2.110 -> 2.110·2/√18 = 0.995 <= 1
    assert seeds_needed(2.0, 1.0) == 18
    # s = 0.5: n = 4 gives t(3) = 3.182 -> 0.795 <= 1; n = 3 gives 4.303·0.5/√3 = 1.242 > 1
    assert seeds_needed(0.5, 1.0) == 4
    assert seeds_needed(0.0) == 2
    assert paired_diff([1.0, 2.0, 3.0]).seeds_for_1pt == seeds_needed(1.0)


def test_bootstrap_interval_against_exact_resampling() -> None:
    # two values: resampled means are 0, 0.5, 1 with probabilities 1/4, 1/2, 1/4 -> 2.5 % / 97.5 % = 0 / 1
    assert bootstrap_interval([0.0, 1.0]) == (0.0, 1.0)
    # [0, 0, 3]: P(mean = 0) = 8/27, P(mean = 3) = 1/27 > 2.5 % -> (0, 3)
    assert bootstrap_interval([0.0, 0.0, 3.0]) == (0.0, 3.0)


def test_one_method_at_every_seed_count() -> None:
    # the 10-seed digits row of issue 17: the bootstrap said "lose" beside p = 0.080; now CI, p and verdict agree
    for n in (2, 5, 9, 10, 12, 20):
        d = np.linspace(-1, 3, n)
        p = paired_diff(d)
        assert p.method == "t" and (p.ci_low, p.ci_high) == t_interval(d)
        assert (p.p_value < 0.05) == (p.verdict != "tie")
    # hand-computed: d = 0..9, mean 4.5, s = 3.02765, t(9) = 2.262157 -> half-width 2.16585
    p = paired_diff(np.arange(10.0))
    assert p.half_width == pytest.approx(2.262157 * 3.0276504 / np.sqrt(10), rel=1e-6)


def test_pairs_by_seed_and_rejects_non_finite() -> None:
    seeds, d = paired_differences({0: 60.0, 1: 61.0, 2: 59.0}, {1: 60.5, 0: 58.0, 3: 1.0})
    assert seeds == [0, 1] and d.tolist() == [2.0, 0.5]
    with pytest.raises(UserError, match="NaN"):
        paired_differences({0: float("nan")}, {0: 1.0})
    with pytest.raises(UserError, match="NaN"):
        paired_diff([1.0, float("inf")])
