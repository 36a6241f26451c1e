"""Vectorised fleet policies against frame-by-frame streaming oracles on small random inputs."""

from __future__ import annotations

import numpy as np
import pytest

from al.fleet.latency import frame_times_us, scored_frames
from al.fleet.policies import runs, threshold_keep, upload_best, window_topk_keep
from al.fleet.streams import Drives, hash_uniform, world_slots
from al.fleet.world import pairwise_distances, unit_rows

# ------------------------------------------------------------------ oracles: one frame at a time


def _admit(i, emb, hour, state, d, recent, cap):
    """The streaming scorer's checks for candidate frame i; updates `state` when kept."""
    if cap is not None and state["hours"].get(hour[i], 0) >= cap:
        return False
    u = emb[i].astype(np.float64) / np.linalg.norm(emb[i].astype(np.float64))
    if d > 0 and any(np.linalg.norm(u - r) <= d for r in state["recent"][-recent:]):
        return False
    state["recent"].append(u)
    state["hours"][hour[i]] = state["hours"].get(hour[i], 0) + 1
    return True


def stream_threshold(scores, emb, hour, thr, *, d=0.0, recent=8, cap=None):
    state = {"recent": [], "hours": {}}
    return [i for i in range(len(scores)) if scores[i] >= thr and _admit(i, emb, hour, state, d, recent, cap)]


def stream_window_topk(scores, emb, hour, window, k, *, d=0.0, recent=8, cap=None):
    """The best k of each window are offered in rank order; a dropped one is not replaced."""
    state, kept = {"recent": [], "hours": {}}, []
    for w in sorted(set(window)):
        members = sorted((i for i in range(len(scores)) if window[i] == w), key=lambda i: (-scores[i], i))
        kept += [i for i in members[:k] if _admit(i, emb, hour, state, d, recent, cap)]
    return sorted(kept)


def stream_upload(scores, kept, budget):
    return sorted(sorted(kept, key=lambda i: (-scores[i], i))[:budget])


# ------------------------------------------------------------------ random streams with duplicates


def _case(rng, rows=6, n_world=25, runs_per_row=40, dim=3):
    """World scores/embeddings and per-row frame streams made of runs of repeated world frames."""
    wscore = rng.random(n_world)
    wemb = rng.random((n_world, dim)).astype(np.float32)
    lengths = rng.integers(1, 4, runs_per_row)                    # frames per run, shared by all rows
    frame_run = np.repeat(np.arange(runs_per_row), lengths)       # (n_frames,)
    run_world = rng.integers(0, n_world, (rows, runs_per_row))    # (R, runs)
    run_world[:, 1::5] = run_world[:, 0::5][:, :run_world[:, 1::5].shape[1]]  # revisits: same frame twice in a row
    n = frame_run.size
    hour = (np.arange(n) * 3) // n                                # three "hours"
    return wscore, wemb, frame_run, run_world, hour


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("d,cap", [(0.0, None), (0.0, 3), (0.35, None), (0.35, 2)])
def test_threshold_matches_stream(seed, d, cap):
    rng = np.random.default_rng(seed)
    wscore, wemb, frame_run, run_world, hour = _case(rng)
    dist = pairwise_distances(unit_rows(wemb))
    thr = float(np.quantile(wscore, 0.6))
    first, count = runs(frame_run, hour)
    widx = run_world[:, frame_run[first]]                          # (R, runs')
    kept = threshold_keep(wscore[widx], thr, world=widx, count=count, period=hour[first], cap=cap, dist=dist,
                          dedup_distance=d, recent=3)
    up = upload_best(wscore[widx], kept, 4)
    for r in range(run_world.shape[0]):
        frames_world = run_world[r, frame_run]
        ref = stream_threshold(wscore[frames_world], wemb[frames_world], hour, thr, d=d, recent=3, cap=cap)
        per_run = np.bincount(np.searchsorted(first, ref, side="right") - 1, minlength=first.size)
        assert kept[r].tolist() == per_run.tolist()
        ref_up = stream_upload(wscore[frames_world], ref, 4)
        assert up[r].tolist() == np.bincount(np.searchsorted(first, ref_up, side="right") - 1,
                                             minlength=first.size).tolist()


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("k,d,cap", [(1, 0.0, None), (2, 0.0, None), (2, 0.0, 3), (1, 0.35, None), (2, 0.35, 2)])
def test_window_topk_matches_stream(seed, k, d, cap):
    rng = np.random.default_rng(100 + seed)
    wscore, wemb, frame_run, run_world, hour = _case(rng)
    dist = pairwise_distances(unit_rows(wemb))
    window = np.arange(frame_run.size) // 7                        # windows of 7 scored frames, last one shorter
    first, count = runs(frame_run, hour, window)
    widx = run_world[:, frame_run[first]]
    kept = window_topk_keep(wscore[widx], k, window=window[first], world=widx, count=count, period=hour[first],
                            cap=cap, dist=dist, dedup_distance=d, recent=3)
    for r in range(run_world.shape[0]):
        frames_world = run_world[r, frame_run]
        ref = stream_window_topk(wscore[frames_world], wemb[frames_world], hour, window, k, d=d, recent=3, cap=cap)
        per_run = np.bincount(np.searchsorted(first, ref, side="right") - 1, minlength=first.size)
        assert kept[r].tolist() == per_run.tolist()


def test_single_frames_give_exact_masks():
    """count = 1: the result is the streaming scorer's kept mask itself."""
    rng = np.random.default_rng(7)
    scores = rng.random((4, 50))
    world = np.arange(50)[None, :].repeat(4, 0)
    emb = rng.random((50, 2))
    hour = np.zeros(50, np.int64)
    kept = threshold_keep(scores, 0.5, world=world, count=np.ones(50, np.int64), period=hour,
                          dist=pairwise_distances(unit_rows(emb)), dedup_distance=0.2, recent=4)
    for r in range(4):
        ref = stream_threshold(scores[r], emb, hour, 0.5, d=0.2, recent=4)
        assert np.flatnonzero(kept[r]).tolist() == ref


def test_threshold_known_values():
    """By hand: threshold 0.5, cap 2 per hour, one hour."""
    scores = np.array([[0.9, 0.1, 0.6, 0.7, 0.8]])
    kept = threshold_keep(scores, 0.5, world=np.arange(5)[None], count=np.ones(5, np.int64),
                          period=np.zeros(5, np.int64), cap=2)
    assert kept.tolist() == [[1, 0, 1, 0, 0]]
    up = upload_best(scores, kept, 1)
    assert up.tolist() == [[1, 0, 0, 0, 0]]


def _scored_by_rule(n, fps, ms):
    """The on-device real-time rule, frame by frame, in integer microseconds."""
    t = np.round(np.arange(n) * 1e6 / fps).astype(np.int64)
    lat, free_at, out = int(round(ms * 1e3)), None, []
    for i in range(n):
        if free_at is None or t[i] >= free_at:
            out.append(i)
            free_at = int(t[i]) + lat
    return out


def test_scored_frames_match_frame_rule():
    for fps in (10.0, 15.0, 29.97, 30.0, 60.0):
        for ms in (0.0, 1.5, 24.7, 33.3333333, 33.334, 47.0, 66.6667, 100.0, 311.0, 1000.0):
            assert scored_frames(700, fps, ms).tolist() == _scored_by_rule(700, fps, ms), (fps, ms)
    assert scored_frames(10, 30.0, 50.0).tolist() == [0, 2, 4, 6, 8]
    assert frame_times_us(3, 30.0).tolist() == [0, 33333, 66667]


def _slots_by_hand(drives, device, day, n, seed):
    draws = n // int(drives.lengths.min()) + 2
    u = hash_uniform(seed, np.array([device]), day, draws)[0]
    entry_u = hash_uniform(seed, np.array([device]), day, 1, stream=1)[0, 0]
    out = []
    for j in range(draws):
        dr = min(int(u[j] * drives.starts.size), drives.starts.size - 1)
        frames = list(range(drives.starts[dr], drives.starts[dr] + drives.lengths[dr]))
        if j == 0:
            frames = frames[min(int(entry_u * len(frames)), len(frames) - 1):]
        out += frames
        if len(out) >= n:
            return out[:n]
    return out[:n]


def test_world_slots_by_hand_and_shard_invariant():
    drives = Drives.from_ids(np.repeat(np.arange(6), [3, 5, 2, 7, 4, 4]))
    assert drives.starts.tolist() == [0, 3, 8, 10, 17, 21] and drives.n_frames == 25
    ids = np.arange(10, 20)
    got = world_slots(drives, ids, 2, np.arange(60), seed=3)
    for row, dev in enumerate(ids):
        assert got[row].tolist() == _slots_by_hand(drives, dev, 2, 60, 3)
    part = world_slots(drives, ids[3::4], 2, np.arange(60), seed=3)
    assert np.array_equal(part, got[3::4])
    sub = world_slots(drives, ids, 2, np.array([0, 7, 59]), seed=3)
    assert np.array_equal(sub, got[:, [0, 7, 59]])


# ------------------------------------------------------------------ the on-device scorer's own functions


def _ondevice():
    import hwbench.ondevice as od

    return od


def _device_case(seed, *, fps=30.0, world_fps=10.0, n=900, ms=47.0):
    """A camera stream: world frames of random drives shown at camera rate, scored at a latency."""
    from al.fleet.streams import camera_slots

    rng = np.random.default_rng(seed)
    n_world = 40
    wscore, wemb = rng.random(n_world), rng.normal(size=(n_world, 4))
    drives = Drives.blocks(n_world, 5)
    slots = camera_slots(np.arange(n), fps, world_fps)
    world_of_slot = world_slots(drives, np.array([seed]), 0, np.arange(slots[-1] + 1), seed=1)[0]
    frame_world = world_of_slot[slots]                                # (n,) world frame of every camera frame
    scored = scored_frames(n, fps, ms)
    t_us = frame_times_us(n, fps)
    return wscore, wemb, frame_world, scored, t_us


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("name,k,d,cap", [("threshold", 1, None, None), ("threshold", 1, 0.4, 3),
                                          ("window-topk", 1, None, None), ("window-topk", 2, 0.4, None),
                                          ("window-topk", 3, None, 4), ("window-topk", 6, 0.4, 5)])
def test_same_selection_as_ondevice_select_stream(seed, name, k, d, cap):
    od = _ondevice()
    window_frames, period_s = 45, 7.0
    wscore, wemb, frame_world, scored, t_us = _device_case(seed)
    thr = od.threshold_from_scores(wscore, 0.7)
    cfg = od.policy_config(name, threshold=thr, k=k, window=window_frames, dedup_dist=d, dedup_memory=3,
                           budget_frames=cap, period_s=period_s if cap else None)
    scores = np.full(t_us.size, np.nan)
    scores[scored] = wscore[frame_world[scored]]
    ref = sorted(od.select_stream(cfg, t_us, scores, wemb[frame_world]).tolist())

    period = t_us[scored] // int(period_s * 1e6)
    window = scored // window_frames
    first, count = runs(frame_world[scored], period, window if name == "window-topk" else np.zeros_like(window))
    widx = frame_world[scored][first][None, :]
    kw = {"world": widx, "count": count, "period": period[first], "cap": cap, "recent": 3,
          "dist": pairwise_distances(unit_rows(wemb)), "dedup_distance": d or 0.0}
    if name == "threshold":
        assert thr == float(np.percentile(wscore, 70.0))
        kept = threshold_keep(wscore[widx], thr, **kw)[0]
    else:
        kept = window_topk_keep(wscore[widx], k, window=window[first], **kw)[0]
    ours = sorted(int(scored[first[j] + c]) for j in np.flatnonzero(kept) for c in range(kept[j]))
    assert ours == ref


def test_scored_frames_as_ondevice():
    od = _ondevice()
    for fps, ms in ((30.0, 47.0), (29.97, 33.4), (10.0, 311.0), (30.0, 33.3333)):
        t = od.frame_times_us(600, fps)
        assert np.flatnonzero(od.scored_mask_fixed(t, int(round(ms * 1e3)))).tolist() == \
            scored_frames(600, fps, ms).tolist()
