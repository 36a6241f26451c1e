"""Upload policies of the on-device scorer: pure functions of the score stream (no model)."""

import numpy as np
import pytest

from hwbench import ondevice as od


def _brute(cfg, t, s):
    """Independent oracle: offers in decision order, then a per-period counter."""
    n = len(s)
    if cfg.name == "threshold":
        offers = [i for i in range(n) if np.isfinite(s[i]) and s[i] >= cfg.threshold]
    else:
        offers = []
        for w0 in range(0, n, cfg.window):
            win = [i for i in range(w0, min(n, w0 + cfg.window)) if np.isfinite(s[i])]
            offers += sorted(win, key=lambda i: (-s[i], i))[: cfg.k]
    used, kept = {}, []
    for i in offers:
        p = 0 if cfg.period_s is None else t[i] // int(cfg.period_s * 1e6)
        if cfg.budget_frames is None or used.get(p, 0) < cfg.budget_frames:
            used[p] = used.get(p, 0) + 1
            kept.append(i)
    return kept


def test_threshold_by_hand():
    cfg = od.policy_config("threshold", threshold=0.5, budget_frames=2)
    s = [0.1, 0.7, np.nan, 0.5, 0.9, 0.8]
    # 0.7 (1), 0.5 (3, ties keep: >=), then the budget of 2 is spent: 0.9 and 0.8 are dropped
    assert od.select_stream(cfg, np.arange(6), s).tolist() == [1, 3]


def test_window_topk_by_hand():
    cfg = od.policy_config("window-topk", k=2, window=3)
    s = [0.2, 0.9, 0.5, 0.1, np.nan, 0.3, 0.7]
    # windows [0,1,2] -> 1 then 2; [3,4,5] -> 5 then 3 (4 not scored); [6] -> 6 at the end of stream
    assert od.select_stream(cfg, np.arange(7), s).tolist() == [1, 2, 5, 3, 6]


def test_window_ties_rank_by_index():
    cfg = od.policy_config("window-topk", k=1, window=4)
    assert od.select_stream(cfg, np.arange(4), [0.5, 0.7, 0.7, 0.1]).tolist() == [1]


def test_budget_per_period_charges_each_frames_own_period():
    cfg = od.policy_config("threshold", threshold=0.0, budget_frames=1, period_s=1.0)
    t = np.array([0, 400_000, 999_999, 1_000_000, 1_500_000, 2_200_000])
    assert od.select_stream(cfg, t, np.ones(6)).tolist() == [0, 3, 5]


@pytest.mark.parametrize("seed", range(25))
def test_streaming_equals_vectorised_equals_brute_force(seed):
    rng = np.random.default_rng(seed)
    n = int(rng.integers(1, 300))
    s = rng.random(n)
    s[rng.random(n) < 0.3] = np.nan                               # skipped frames
    s[rng.random(n) < 0.1] = 0.5                                  # ties
    t = np.cumsum(rng.integers(0, 40_000, n))
    budget = None if seed % 5 == 0 else int(rng.integers(0, 8))
    period = None if seed % 3 == 0 else float(rng.choice([0.1, 0.5, 2.0]))
    if budget is None:
        period = None
    if seed % 2:
        cfg = od.policy_config("threshold", threshold=float(rng.random()), budget_frames=budget, period_s=period)
    else:
        w = int(rng.integers(1, 40))
        cfg = od.policy_config("window-topk", k=int(rng.integers(1, w + 1)), window=w, budget_frames=budget,
                               period_s=period)
    ref = _brute(cfg, t, s)
    assert od.select_stream(cfg, t, s).tolist() == ref
    assert od.select_stream_fast(cfg, t, s).tolist() == ref


def test_near_duplicate_filter():
    cfg = od.policy_config("threshold", threshold=0.0, dedup_dist=0.1, dedup_memory=2)
    e = np.array([[1, 0], [2, 0.01], [0, 1], [0, 3], [1, 1], [1, 0]], dtype=float)
    # 1 is a scaled copy of 0 (unit distance ~0.005): dropped; 3 duplicates 2; 5 equals 0, but the
    # memory (2) then holds only 2 and 4, so 5 is kept again
    assert od.select_stream(cfg, np.arange(6), np.ones(6), embeddings=e).tolist() == [0, 2, 4, 5]
    cfg0 = od.policy_config("threshold", threshold=0.0, dedup_dist=0.0)
    assert od.select_stream(cfg0, np.arange(3), np.ones(3), embeddings=[[1, 0], [1, 0], [1, 1e-3]]).tolist() == [0, 2]


def test_duplicate_costs_no_budget_in_a_window():
    cfg = od.policy_config("window-topk", k=2, window=3, dedup_dist=0.01, budget_frames=2)
    e = [[1, 0], [1, 0], [0, 1]]
    # ranked 0 (0.9), 1 (0.8, a duplicate of 0: dropped, not replaced by 2)
    assert od.select_stream(cfg, np.arange(3), [0.9, 0.8, 0.1], embeddings=e).tolist() == [0]


def test_byte_budget_lets_a_smaller_frame_through():
    cfg = od.policy_config("threshold", threshold=0.0, budget_mb=1e-6 * 100)   # 100 bytes
    assert od.select_stream(cfg, np.arange(4), np.ones(4), nbytes=[60, 50, 40, 1]).tolist() == [0, 2]


def test_state_round_trip_between_windows_gives_the_same_selection():
    rng = np.random.default_rng(3)
    s, t = rng.random(200), np.arange(200) * 33_333
    e = rng.standard_normal((200, 4))
    cfg = od.policy_config("window-topk", k=3, window=10, dedup_dist=0.5, budget_frames=7, period_s=1.0)
    ref = od.select_stream(cfg, t, s, embeddings=e).tolist()
    got, pol = [], od.StreamPolicy(cfg)
    for i in range(200):
        got += [c.index for c in pol.step(i, t[i], s[i], e[i])]
        if i % 10 == 0 and not pol.window_open():      # a new window just opened: persist and restore
            import json

            st = json.loads(json.dumps(pol.state()))
            pol = od.StreamPolicy(cfg)
            pol.load_state(st)
    got += [c.index for c in pol.flush()]
    assert got == ref


def test_realtime_clock_by_hand():
    t = od.frame_times_us(6, 30.0)
    assert t.tolist() == [0, 33333, 66667, 100000, 133333, 166667]
    assert od.scored_mask(t, 50_000).tolist() == [True, False, True, False, True, False]
    assert od.scored_mask(t, 33_333).tolist() == [True] * 6   # arrives exactly when free: scored
    assert od.scored_mask(t, 100_000).tolist() == [True, False, False, True, False, False]
    assert od.scored_mask(t, [70_000, 0, 10, 5, 0, 0]).tolist() == [True, False, False, True, True, True]


@pytest.mark.parametrize("seed", range(10))
def test_fixed_latency_jump_equals_loop(seed):
    rng = np.random.default_rng(seed)
    t = np.cumsum(rng.integers(0, 50_000, 500))
    lat = int(rng.integers(0, 200_000))
    assert od.scored_mask_fixed(t, lat).tolist() == od.scored_mask(t, lat).tolist()


def test_threshold_from_scores_and_durations():
    assert od.threshold_from_scores(np.arange(101.0), 0.9) == pytest.approx(90.0)
    assert od.threshold_from_scores([1.0, np.nan, 3.0], 0.5) == pytest.approx(2.0)
    assert [od.parse_duration(x) for x in ("1h", "15m", "90s", "2", "1d")] == [3600, 900, 90, 2, 86400]
    for bad in ("", "h", "-1h", "0", "1y"):
        with pytest.raises(od.BenchError):
            od.parse_duration(bad)


@pytest.mark.parametrize("kw, match", [
    ({"name": "best"}, "unknown policy"),
    ({"name": "threshold"}, "--threshold"),
    ({"name": "threshold", "threshold": float("nan")}, "--threshold"),
    ({"name": "window-topk", "k": 5, "window": 3}, "--k"),
    ({"name": "window-topk", "dedup_dist": -1.0}, "--dedup-dist"),
    ({"name": "window-topk", "budget_frames": -1}, "--budget-frames"),
    ({"name": "window-topk", "budget_mb": float("inf")}, "--budget-mb"),
    ({"name": "window-topk", "period_s": 3600.0}, "--per needs"),
])
def test_bad_policy_options(kw, match):
    name = kw.pop("name")
    with pytest.raises(od.BenchError, match=match):
        od.policy_config(name, **kw)
