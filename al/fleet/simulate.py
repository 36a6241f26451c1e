"""The fleet simulation: every device of every generation drives, scores, keeps and uploads.

A variant is (generation, surrogate, policy). For a block of devices and one day:

1. world frame of every world slot the devices pass (`streams.world_slots`), once per block and
   day for all variants of the generation: (D, slots);
2. per surrogate: the camera frames its latency lets it score (`latency.scored_frames`), grouped
   into runs of identical frames (`policies.runs`), their world frames and scores (D, runs);
3. per policy: kept mask (`policies`), then the day's upload: the best `upload_frames_per_day`
   kept frames by score;
4. per device-day: frames seen, scored, skipped, kept, uploaded, bytes, and the recall of the
   offline top-k: k = frames uploaded, top-k = the k best-scored distinct world frames the
   device passed that day (every frame scored, same surrogate); recall = distinct uploaded
   frames among them / k (uploading the same scene twice costs recall);
5. per variant: how many device-days uploaded each world frame, how many passed it (these add
   up across shards).

Devices are numbered across generations; `--shard i/n` simulates the devices whose number is i
modulo n. Every device's stream depends on its number only, so merged shards equal one run.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

import numpy as np

from al.fleet.config import FleetConfig, PolicySpec
from al.fleet.latency import ScoringLatency, frame_times_us, scored_frames
from al.fleet.policies import runs, threshold_keep, upload_best, window_topk_keep
from al.fleet.streams import camera_slots, world_slots
from al.fleet.world import ScoredWorld
from hwbench.errors import UserError

FIELDS = ("seen", "scored", "skipped", "kept", "uploaded", "bytes", "distinct", "recall")
MAX_BLOCK_ELEMS = 1 << 23   # world slots held per block of devices (int64): ~64 MiB


@dataclass
class VariantResult:
    """Per device-day arrays (aligned) and per world frame counts of one variant."""

    key: str
    device: np.ndarray                       # (M,) device number
    day: np.ndarray                          # (M,)
    fields: dict[str, np.ndarray]            # FIELDS -> (M,)
    uploaded_by: np.ndarray                  # (n_world,) device-days that uploaded the frame
    passed_by: np.ndarray                    # (n_world,) device-days that passed the frame
    seconds: float = 0.0


@dataclass
class FleetResult:
    variants: dict[str, VariantResult] = field(default_factory=dict)
    devices: int = 0


def variant_key(g: int, surrogate: str, p: int) -> str:
    return f"g{g}|{surrogate}|p{p}"


def parse_shard(text: str | None) -> tuple[int, int]:
    """'i/n' -> (i, n) with 0 <= i < n; None -> (0, 1)."""
    if text is None:
        return 0, 1
    try:
        i, n = (int(x) for x in text.split("/"))
    except ValueError:
        raise UserError(f"--shard {text!r}: expected i/n, e.g. 0/4") from None
    if n < 1 or not 0 <= i < n:
        raise UserError(f"--shard {text!r}: need 0 <= i < n")
    return i, n


def generation_devices(cfg: FleetConfig, shard: tuple[int, int] = (0, 1)) -> list[np.ndarray]:
    """Device numbers of each generation that belong to `shard`."""
    i, n = shard
    out, offset = [], 0
    for g in cfg.generation:
        ids = np.arange(offset, offset + g.count, dtype=np.int64)
        out.append(ids[ids % n == i])
        offset += g.count
    return out


def threshold_for(world: ScoredWorld, surrogate: str, quantile: float) -> float:
    """The q-quantile of the surrogate's scores on the world (what the server ships to the devices),
    computed as `hwbench/ondevice.py`'s `threshold_from_scores` does (np.percentile at 100 q)."""
    return float(np.percentile(world.scores[surrogate], 100.0 * quantile))


def keep_frames(policy: PolicySpec, scores: np.ndarray, *, world_idx: np.ndarray, count: np.ndarray,
                hour: np.ndarray, window: np.ndarray, threshold: float, dist: np.ndarray | None) -> np.ndarray:
    """Frames kept per run (R, n) by `policy` (see `al.fleet.policies`)."""
    kw = {"world": world_idx, "count": count, "period": hour, "cap": policy.budget_frames, "dist": dist,
          "dedup_distance": policy.dedup_distance, "recent": policy.dedup_memory}
    if policy.name == "threshold":
        return threshold_keep(scores, threshold, **kw)
    return window_topk_keep(scores, policy.k, window=window, **kw)


def window_frames(policy: PolicySpec, fps: float) -> int:
    """Camera frames in a window of `window_s` seconds (windows count arrivals, scored or not)."""
    return max(1, int(round(policy.window_s * fps)))


def _offline_topk(seen: np.ndarray, order: np.ndarray, k: np.ndarray) -> np.ndarray:
    """(D, n_world) mask of the k[d] best-scored world frames each device passed; `order` = world frames by
    descending score, ties lower index first."""
    s = seen[:, order]
    top_sorted = s & (np.cumsum(s, axis=1) <= k[:, None])
    top = np.empty_like(top_sorted)
    top[:, order] = top_sorted
    return top


def simulate(cfg: FleetConfig, world: ScoredWorld, latencies: Iterable[ScoringLatency], *,
             shard: tuple[int, int] = (0, 1), progress: Callable[[str], None] | None = None) -> FleetResult:
    """Simulate the shard's devices for `cfg.days` days (see module docstring)."""
    lat = {(x.generation, x.surrogate): x for x in latencies}
    drives = world.drives
    n_world = world.n
    frames = cfg.frames_per_day
    n_slots = int(camera_slots(np.array([frames - 1]), cfg.fps, cfg.world.world_fps)[0]) + 1
    budget = cfg.upload_frames_per_day
    frame_bytes = cfg.frame_kb * 1000.0
    thresholds = {(s, p.quantile): threshold_for(world, s, p.quantile) for s in world.scores for p in cfg.policy}
    dists: dict[str, np.ndarray] = {}
    by_score = {s: np.lexsort((np.arange(n_world), -world.scores[s])) for s in world.scores}
    result = FleetResult()
    acc: dict[str, dict] = {}
    block = max(1, min(2048, MAX_BLOCK_ELEMS // n_slots))
    for gi, (g, ids) in enumerate(zip(cfg.generation, generation_devices(cfg, shard), strict=True)):
        result.devices += ids.size
        plans = []
        for s in g.surrogates:
            t = scored_frames(frames, cfg.fps, lat[(g.name, s)].effective_ms)         # scored camera frames
            t_us = frame_times_us(frames, cfg.fps)[t]
            periods = [t_us // int(round(p.budget_period_s * 1e6)) for p in cfg.policy]
            plans.append((s, t, camera_slots(t, cfg.fps, cfg.world.world_fps), periods))
            if any(p.dedup_distance > 0 for p in cfg.policy) and s not in dists:
                dists[s] = world.distances(s)
        for day in range(cfg.days):
            for b0 in range(0, ids.size, block):
                dev = ids[b0:b0 + block]
                if progress is not None:
                    progress(f"{g.name}: day {day + 1}, devices {b0 + 1}-{b0 + dev.size} of {ids.size}")
                slots_world = world_slots(drives, dev, day, np.arange(n_slots), seed=cfg.seed)   # (D, slots)
                seen = np.zeros((dev.size, n_world), dtype=bool)
                seen[np.arange(dev.size)[:, None], slots_world] = True
                for s, t_scored, scored_slots, periods in plans:
                    for pi, p in enumerate(cfg.policy):
                        t0 = time.perf_counter()
                        hour = periods[pi]
                        win = t_scored // window_frames(p, cfg.fps) if p.name == "window-topk" \
                            else np.zeros(scored_slots.size, np.int64)
                        first, count = runs(scored_slots, hour, win)                   # runs of identical frames
                        widx = slots_world[:, scored_slots[first]]                     # (D, runs)
                        sc = world.scores[s][widx]
                        kept = keep_frames(p, sc, world_idx=widx, count=count, hour=hour[first], window=win[first],
                                           threshold=thresholds[(s, p.quantile)], dist=dists.get(s))
                        up = upload_best(sc, kept, budget)
                        n_up = up.sum(axis=1)
                        umask = np.zeros((dev.size, n_world), dtype=bool)
                        r, c = np.nonzero(up)
                        umask[r, widx[r, c]] = True
                        top = _offline_topk(seen, by_score[s], n_up)
                        with np.errstate(invalid="ignore", divide="ignore"):
                            recall = np.where(n_up > 0, (umask & top).sum(axis=1) / np.maximum(n_up, 1), np.nan)
                        n_scored = scored_slots.size
                        vals = {"seen": np.full(dev.size, frames), "scored": np.full(dev.size, n_scored),
                                "skipped": np.full(dev.size, frames - n_scored), "kept": kept.sum(axis=1),
                                "uploaded": n_up, "bytes": n_up * frame_bytes, "distinct": umask.sum(axis=1),
                                "recall": recall}
                        a = acc.setdefault(variant_key(gi, s, pi), {"device": [], "day": [], "uploaded_by": np.zeros(n_world, np.int64),
                                                                    "passed_by": np.zeros(n_world, np.int64),
                                                                    "seconds": 0.0, **{f: [] for f in FIELDS}})
                        a["device"].append(dev)
                        a["day"].append(np.full(dev.size, day))
                        for f in FIELDS:
                            a[f].append(np.asarray(vals[f], dtype=np.float64))
                        a["uploaded_by"] += umask.sum(axis=0)
                        a["passed_by"] += seen.sum(axis=0)
                        a["seconds"] += time.perf_counter() - t0
    for key, a in acc.items():
        dev, day = np.concatenate(a["device"]), np.concatenate(a["day"])
        order = np.lexsort((day, dev))
        result.variants[key] = VariantResult(key, dev[order], day[order],
                                             {f: np.concatenate(a[f])[order] for f in FIELDS},
                                             a["uploaded_by"], a["passed_by"], a["seconds"])
    return result


def merge(parts: Iterable[FleetResult]) -> FleetResult:
    """One result from shards' results (device-days re-sorted, per-frame counts added)."""
    parts = list(parts)
    out = FleetResult(devices=sum(p.devices for p in parts))
    keys = list(dict.fromkeys(k for p in parts for k in p.variants))
    for k in keys:
        vs = [p.variants[k] for p in parts if k in p.variants]
        dev, day = np.concatenate([v.device for v in vs]), np.concatenate([v.day for v in vs])
        order = np.lexsort((day, dev))
        out.variants[k] = VariantResult(k, dev[order], day[order],
                                        {f: np.concatenate([v.fields[f] for v in vs])[order] for f in FIELDS},
                                        sum(v.uploaded_by for v in vs), sum(v.passed_by for v in vs),
                                        sum(v.seconds for v in vs))
    return out


def ci95(x: np.ndarray) -> tuple[float, float, float, int]:
    """(mean, sample std, half-width of the normal 95 % interval of the mean, n) over finite values."""
    v = np.asarray(x, dtype=np.float64)
    v = v[np.isfinite(v)]
    if v.size == 0:
        return math.nan, math.nan, math.nan, 0
    std = float(v.std(ddof=1)) if v.size > 1 else math.nan
    return float(v.mean()), std, 1.96 * std / math.sqrt(v.size) if v.size > 1 else math.nan, int(v.size)
