"""Timing statistics: nearest-rank percentiles (as trtexec) against brute force and hand values."""

from __future__ import annotations

import math
import random

import pytest

from hwbench import ondevice
from hwbench.errors import UserError
from hwbench.latency.measure import HIGH_CV, Measurement, median, percentile, summarize


def brute_percentile(samples: list[float], p: float) -> float:
    """Smallest value with at least p % of the samples <= it (definition of nearest rank)."""
    s = sorted(samples)
    n = len(s)
    for v in s:
        if sum(x <= v for x in s) * 100 >= p * n - 1e-9:
            return v
    return s[-1]


def trtexec_percentile(samples: list[float], p: float) -> float:
    """trtexec's findPercentile: index n - 1 - floor((1 - p/100) * n) of the sorted samples."""
    s = sorted(samples)
    n = len(s)
    exclude = math.floor(round((1 - p / 100) * n, 9))
    return s[max(n - 1 - exclude, 0)]


def test_hand_made_sample():
    xs = [5.31, 5.62, 5.05, 5.48, 5.90, 5.17, 5.74, 5.26, 5.55, 5.39]
    st = summarize(xs)
    assert st["min_ms"] == 5.05 and st["max_ms"] == 5.90
    assert st["median_ms"] == pytest.approx((5.39 + 5.48) / 2)  # even count: mean of the two middle values
    assert st["p90_ms"] == 5.74  # rank ceil(0.9 * 10) = 9
    assert st["p99_ms"] == 5.90  # rank ceil(0.99 * 10) = 10
    assert st["mean_ms"] == pytest.approx(5.447)
    assert st["std_ms"] == pytest.approx(math.sqrt(sum((x - 5.447) ** 2 for x in xs) / 10))  # population std
    assert st["cv"] == pytest.approx(st["std_ms"] / st["mean_ms"])


def test_odd_median_and_single_sample():
    assert median([1.0, 2.0, 3.0]) == 2.0  # median() takes sorted samples
    assert summarize([3.0, 1.0, 2.0])["median_ms"] == 2.0  # summarize() sorts them itself
    st = summarize([7.0])
    assert st["min_ms"] == st["median_ms"] == st["p90_ms"] == st["p99_ms"] == 7.0 and st["std_ms"] == 0.0


@pytest.mark.parametrize("n", [1, 2, 3, 7, 10, 11, 99, 100, 101, 250])
@pytest.mark.parametrize("p", [50, 90, 95, 99, 99.9, 100])
def test_percentile_matches_brute_force_and_trtexec(n, p):
    rng = random.Random(n * 1000 + int(p * 10))
    xs = [rng.uniform(1, 10) for _ in range(n)]
    s = sorted(xs)
    assert percentile(s, p) == brute_percentile(xs, p) == trtexec_percentile(xs, p)
    assert ondevice.percentile(s, p) == percentile(s, p)


def test_ondevice_summary_equals_measure_summary():
    rng = random.Random(1)
    xs = [rng.lognormvariate(1, 0.2) for _ in range(137)]
    assert ondevice.summarize(xs) == summarize(xs)


def test_bad_inputs():
    with pytest.raises(ValueError):
        summarize([])
    with pytest.raises(ValueError):
        percentile([1.0], 101)


def test_measurement_record_round_trip_and_cv_warning(caplog):
    rec = Measurement.from_samples([10.0, 10.0, 10.0, 30.0], model="m", device="host", backend="torch",
                                   precision="fp32", input=(1, 3, 8, 8), warmup=3,
                                   components={"h2d": [1.0, 2.0]})
    assert rec.cv > HIGH_CV and rec.warnings and "high CV" in caplog.text
    assert rec.latency_ms == rec.median_ms == 10.0
    assert rec.components["h2d"]["median_ms"] == 1.5
    d = rec.to_dict()
    for key in ("model", "device", "backend", "precision", "input", "warmup", "iters", "min_ms", "median_ms",
                "mean_ms", "p90_ms", "p99_ms", "std_ms", "cv", "latency_ms", "source", "env"):
        assert key in d  # docs/contracts.md record keys
    assert Measurement.from_dict({**d, "unknown_extra": 1}) == rec
    with pytest.raises(UserError):
        Measurement.from_dict({"model": "m"})
    quiet = Measurement.from_samples([10.0, 10.1], model="m", device="host", backend="torch", precision="fp32",
                                     input=(1, 3, 8, 8), warmup=1)
    assert quiet.warnings == []
