"""Surrogate ranking: signals by hand, Spearman against scipy, the check's statistics on constructed
studies, and `al rank` end to end on the smoke experiment (bad input: one line, exit 2)."""

from __future__ import annotations

import itertools
import json

import numpy as np
import pytest
from scipy.stats import spearmanr

from al.cli import main
from al.surrogate_ranking import pair_signals, permutation_p, ranking, separation, spearman, validate


def test_spearman_matches_scipy_with_ties():
    rng = np.random.default_rng(0)
    a, b = rng.integers(0, 5, 30), rng.normal(size=30)
    assert spearman(a, b) == pytest.approx(spearmanr(a, b).statistic)
    assert np.isnan(spearman([1, 1, 1], [1, 2, 3]))


def test_separation_and_pair_signals_by_hand():
    s = np.array([0.0, 1.0, 2.0, 3.0])
    assert separation(s, 1) == pytest.approx((3.0 - 1.0) / s.std())
    scores = {"a": np.array([4.0, 3, 2, 1]), "b": np.array([1.0, 4, 3, 2]), "d": np.array([4.0, 1, 3, 2])}
    rows = pair_signals(scores, ["a", "b"], ["d"], 2)
    by = {r["surrogate"]: r for r in rows}
    assert by["a"]["overlap"] == 0.5 and by["b"]["overlap"] == 0.5          # top-2 {0,1},{1,2} vs {0,2}
    assert by["a"]["rank_corr"] == pytest.approx(spearmanr(scores["a"], scores["d"]).statistic)
    assert by["b"]["separation"] == pytest.approx(separation(scores["b"], 2))


def test_ranking_orders_by_mean_and_skips_the_model_itself():
    rows = [{"seed": s, "deployment": "d", "surrogate": m, "overlap": v}
            for s, vals in enumerate([{"a": 0.1, "b": 0.3, "d": 1.0}, {"a": 0.2, "b": 0.1, "d": 1.0}])
            for m, v in vals.items()]
    assert [r["surrogate"] for r in ranking(rows)["d"]] == ["b", "a"]          # 0.2 vs 0.15


def test_permutation_p_exact_small():
    p, how = permutation_p([1, 2, 3, 4], [10, 20, 30, 40], np.random.default_rng(0))
    assert how == "exact" and p == pytest.approx(2 / 24)                      # identity and reverse
    x, y = [1, 2, 3, 4, 5], [2, 1, 4, 3, 5]
    obs = abs(spearman(x, y))
    want = np.mean([abs(spearman(x, np.array(y)[list(q)])) >= obs - 1e-12 for q in itertools.permutations(range(5))])
    assert permutation_p(x, y, np.random.default_rng(0))[0] == pytest.approx(want)


def _study(signal_of, delta_of, seeds, noise=0.0, rng=None):
    """Constructed probe rows and matrix records for deployment d and surrogates s0..s4."""
    sig, rec = [], []
    for seed in seeds:
        for i in range(5):
            e, f = rng.normal(0, noise, 2) if rng is not None else (0.0, 0.0)   # independent noise
            sig.append({"seed": seed, "deployment": "d", "surrogate": f"s{i}", "overlap": signal_of(i) + e,
                        "rank_corr": -signal_of(i), "separation": 1.0 + i % 2})
            rec.append({"deployment": "d", "surrogate": f"s{i}", "seed": seed, "metric": "top1",
                        "value": 50 + delta_of(i) + f})
        rec.append({"deployment": "d", "surrogate": "random", "seed": seed, "metric": "top1", "value": 50.0})
        sig.append({"seed": seed, "deployment": "d", "surrogate": "d", "overlap": 1.0, "rank_corr": 1.0,
                    "separation": 0.0})
    return sig, rec


def test_validate_perfect_and_reversed_signals():
    out = validate([_study(lambda i: 0.1 * i, lambda i: i, range(4))], resamples=200)
    assert out["n_pairs"] == 5                                                 # the diagonal is left out
    assert [p["delta"] for p in out["pairs"]] == pytest.approx([0, 1, 2, 3, 4])
    assert out["signals"]["overlap"]["rho"] == pytest.approx(1.0)
    assert out["signals"]["overlap"]["ci95"] == pytest.approx([1.0, 1.0])      # no noise: every resample agrees
    assert out["signals"]["rank_corr"]["rho"] == pytest.approx(-1.0)
    assert out["signals"]["overlap"]["p"] == pytest.approx(2 / 120)


def test_validate_noise_gives_a_wide_interval_and_pools_studies():
    rng = np.random.default_rng(1)
    a = _study(lambda i: 0.0, lambda i: 0.0, range(6), noise=1.0, rng=rng)    # nothing to predict
    out = validate([a], resamples=300)
    lo, hi = out["signals"]["overlap"]["ci95"]
    assert lo < 0 < hi
    pooled = validate([a, _study(lambda i: 0.1 * i, lambda i: i, range(3))], resamples=50)
    assert pooled["n_pairs"] == 10 and {p["study"] for p in pooled["pairs"]} == {0, 1}


@pytest.fixture(scope="module")
def smoke_exp(tmp_path_factory):
    out = tmp_path_factory.mktemp("rank") / "smoke"
    assert main(["surrogate", "surrogate_smoke", "--out", str(out), "--jobs", "1"]) == 0
    return out


def test_rank_end_to_end_and_pooled(smoke_exp, tmp_path, capsys):
    out = tmp_path / "rank"
    assert main(["rank", "surrogate_smoke", "--out", str(out), "--against", str(smoke_exp)]) == 0
    res = json.loads((out / "ranking.json").read_text())
    exp = json.loads((smoke_exp / "experiment.json").read_text())
    assert res["seeds"] == exp["seeds"] and res["k"] == exp["n_cycle"]
    dep = exp["deployment"][0]
    assert [r["surrogate"] for r in res["ranking"][dep]] == [s for s in exp["surrogates"] if s != dep]
    assert all(0.0 <= r["overlap"] <= 1.0 for r in res["signals"])
    assert all(r["overlap"] == 1.0 for r in res["signals"] if r["surrogate"] == r["deployment"])
    assert res["check"]["n_pairs"] == 1                                       # one off-diagonal pair: no rho
    capsys.readouterr()
    assert (out / "ranking_check.png").stat().st_size > 0
    assert main(["rank", "--pooled", str(out), str(out), "--json", "--out", str(tmp_path / "pooled")]) == 0
    pooled = json.loads(capsys.readouterr().out)[0]
    assert pooled["n_pairs"] == 2
    assert json.loads((tmp_path / "pooled" / "pooled_check.json").read_text())["n_pairs"] == 2


@pytest.mark.parametrize("argv, needle", [
    (["rank", "surrogate_smoke"], "--out"),
    (["rank", "--pooled", "/nonexistent/x"], "no checked ranking"),
    (["rank", "--pooled", "{tmp}/bad"], "damaged"),
    (["rank", "surrogate_smoke", "--out", "{tmp}/o", "--against", "/nonexistent"], "records.jsonl"),
    (["rank", "surrogate_smoke", "--out", "{tmp}/o", "--pooled", "{tmp}"], "--pooled takes only"),
])
def test_bad_input_is_one_line(argv, needle, tmp_path, capsys):
    argv = [a.replace("{tmp}", str(tmp_path)) for a in argv]
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "ranking.json").write_bytes(b"\x00\xff{not json")
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error:") and needle in err[0]
    assert not (tmp_path / "o").exists()


def test_rank_needs_a_scoring_strategy(tmp_path, capsys):
    from pathlib import Path

    smoke = Path(__file__).parents[2] / "al" / "presets" / "surrogate_smoke.toml"
    cfg = tmp_path / "coreset.toml"
    cfg.write_text(smoke.read_text().replace('strategy = "entropy"', 'strategy = "coreset"'))
    assert main(["rank", str(cfg), "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "scoring strategy" in err[0]
    assert not (tmp_path / "o").exists()


def test_validate_reads_nulls_back_as_undefined():
    sig, rec = _study(lambda i: 0.1 * i, lambda i: i, range(3))
    for r in sig:
        r["rank_corr"] = None                                                 # NaN written as JSON null
    out = validate([(sig, rec)], resamples=20)
    assert np.isnan(out["signals"]["rank_corr"]["rho"]) and out["signals"]["overlap"]["rho"] == pytest.approx(1.0)
