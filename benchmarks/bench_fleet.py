"""Benchmark: a 10,000-device fleet day (`al.fleet.simulate`) vs a per-frame Python loop.

Fleet: `fleet_demo`'s two generations and two surrogates scaled to 10,000 devices in the brief's
proportions (1,000 TX2 : 200 Xavier NX -> 8,333 + 1,667), one day of 1 h driving at 30 fps
(108,000 camera frames per device), a world of 800 frames at 1 world frame per second, both
demo policies (threshold q0.9 + near-duplicate filter, top-1 per 20 s window), paper latencies
at 1024x2048 with share 0.1. The world's scores and embeddings are random (the simulation's
cost does not depend on where they came from; training the surrogates is not part of it).

Baseline: the straightforward simulation, one device and one camera frame at a time in Python
(engine free? -> score -> policy -> at the end of the day upload the best kept frames), timed on
a few devices of each generation and extrapolated linearly to the fleet. Its kept and uploaded
counts must equal the vectorised ones for those devices. Goal: the fleet day in under 60 s and
ratio = baseline_s / ours_s >= 20. `ours_cpu_s`: the process's CPU time (the machine may be shared).
"""

from __future__ import annotations

import dataclasses
import time

import numpy as np

DEVICES = {"2017 TX2": 8333, "2020 Xavier NX": 1667}
LOOP_DEVICES = 2          # per generation, for the baseline
GOAL_S, GOAL_RATIO = 60.0, 20.0


def _config():
    from al.fleet.config import load_fleet_config

    cfg, _ = load_fleet_config("fleet_demo")
    gens = tuple(dataclasses.replace(g, count=DEVICES[g.name]) for g in cfg.generation)
    return dataclasses.replace(cfg, generation=gens, hours_per_day=1.0,
                               world=dataclasses.replace(cfg.world, world_fps=1.0))


def _world(cfg):
    from al.fleet.world import ScoredWorld

    rng = np.random.default_rng(0)
    n = cfg.world.frames
    return ScoredWorld({s: rng.random(n) for s in cfg.surrogates},
                       {s: rng.random((n, 16)).astype(np.float32) for s in cfg.surrogates},
                       np.arange(n) // cfg.world.drive_frames, np.arange(cfg.world.initial_labelled),
                       {"frames": n, "metric": "miou"})


def loop_device(cfg, world, policy, surrogate, latency_ms, world_of_slot, dist, threshold) -> tuple[int, int]:
    """One device-day, frame by frame, as the on-device scorer runs: (kept, uploaded)."""
    scores = world.scores[surrogate]
    ratio = cfg.world.world_fps / cfg.fps
    window = max(1, int(round(policy.window_s * cfg.fps)))
    lat_us, period_us = int(round(latency_ms * 1e3)), int(round(policy.budget_period_s * 1e6))
    cap, recent, kept, pending, free_at, win_id = policy.budget_frames, [], [], [], None, 0
    used: dict[int, int] = {}

    def admit(t: int, w: int) -> None:
        if policy.dedup_distance > 0 and any(dist[w, r] <= policy.dedup_distance for r in recent[-policy.dedup_memory:]):
            return
        p = t // period_us
        if cap is not None and used.get(p, 0) >= cap:
            return
        recent.append(w)
        used[p] = used.get(p, 0) + 1
        kept.append(w)

    for i in range(cfg.frames_per_day):
        t = int(round(i * 1e6 / cfg.fps))
        if policy.name == "window-topk" and i // window != win_id:
            for _, _, tj, wj in sorted(pending)[:policy.k]:
                admit(tj, wj)
            pending, win_id = [], i // window
        if free_at is not None and t < free_at:
            continue
        free_at = t + lat_us
        w = int(world_of_slot[int(np.floor(i * ratio + 1e-9))])
        if policy.name == "threshold":
            if scores[w] >= threshold:
                admit(t, w)
        else:
            pending.append((-scores[w], i, t, w))
    for _, _, tj, wj in sorted(pending)[:policy.k]:
        admit(tj, wj)
    return len(kept), min(len(kept), cfg.upload_frames_per_day)


def main() -> list[dict]:
    from al.fleet.latency import fleet_latencies
    from al.fleet.simulate import generation_devices, simulate, threshold_for, variant_key
    from al.fleet.streams import camera_slots, world_slots

    cfg = _config()
    world = _world(cfg)
    lats = fleet_latencies(cfg)
    t0, c0 = time.perf_counter(), time.process_time()
    res = simulate(cfg, world, lats)
    ours_s, ours_cpu_s = time.perf_counter() - t0, time.process_time() - c0

    n_slots = int(camera_slots(np.array([cfg.frames_per_day - 1]), cfg.fps, cfg.world.world_fps)[0]) + 1
    dists = {s: world.distances(s) for s in cfg.surrogates}
    lat = {(x.generation, x.surrogate): x for x in lats}
    base_s, same = 0.0, True
    for gi, (g, ids) in enumerate(zip(cfg.generation, generation_devices(cfg), strict=True)):
        sample = ids[:LOOP_DEVICES]
        slots = world_slots(world.drives, sample, 0, np.arange(n_slots), seed=cfg.seed)
        t0 = time.perf_counter()
        counts = []
        for row in range(sample.size):
            for s in g.surrogates:
                for p in cfg.policy:
                    counts.append(loop_device(cfg, world, p, s, lat[(g.name, s)].effective_ms, slots[row], dists[s],
                                              threshold_for(world, s, p.quantile)))
        base_s += (time.perf_counter() - t0) / sample.size * g.count
        k = 0
        for row in range(sample.size):
            for s in g.surrogates:
                for pi in range(len(cfg.policy)):
                    v = res.variants[variant_key(gi, s, pi)]
                    at = np.flatnonzero((v.device == sample[row]) & (v.day == 0))[0]
                    same &= counts[k] == (int(v.fields["kept"][at]), int(v.fields["uploaded"][at]))
                    k += 1
    ratio = base_s / ours_s
    return [{"name": f"fleet day: {sum(DEVICES.values()):,} devices x {cfg.frames_per_day:,} frames, "
                     "2 surrogates x 2 policies (per-frame loop extrapolated)",
             "ours_s": ours_s, "baseline_s": base_s, "ratio": ratio,
             "goal": f"< {GOAL_S:g} s, >= {GOAL_RATIO:g}x", "ok": bool(same and ours_s < GOAL_S and ratio >= GOAL_RATIO),
             "same_counts": bool(same), "ours_cpu_s": ours_cpu_s}]


if __name__ == "__main__":
    for r in main():
        print(r)
