"""Scoring latency of each surrogate on each device generation, and which frames it scores.

Latency comes from `hwbench` and is always labelled with its source:

- `paper` / `peak` / `roofline`: `hwbench.latency.latency` at the camera frame (`latency.input`);
- `measured`: the median of the matching records of a `hwbench measure` JSON-lines file
  (model, device = the generation's profile, precision, input; optionally backend);
- `predicted`: `hwbench.latency.predict.predict` calibrated on that file.

The scorer gets `share` of the device, so its effective latency is latency / share.

Real time (the on-device scorer's semantics, `hwbench/ondevice.py`: integer microseconds):
frame i arrives at t_i = round(i * 1e6 / fps) µs; it is scored when t_i >= free_at, and then
free_at = t_i + L with L = round(latency_ms * 1000) µs. `scored_frames` gives the scored frame
indices of a day: once per (device model, surrogate), shared by every device (all cameras start
at 0). When the step to the next scored frame is the same from every frame (the usual case) the
result is a plain range; otherwise it jumps from scored frame to scored frame.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from al.fleet.config import FleetConfig, Generation, LatencySpec
from hwbench.errors import UserError


@dataclass(frozen=True)
class ScoringLatency:
    """One surrogate on one generation. Times in ms."""

    generation: str
    profile: str
    surrogate: str
    source: str                  # e.g. "paper", "roofline fp16 gpu", "measured tensorrt fp16"
    latency_ms: float            # the engine's latency for one frame
    share: float
    effective_ms: float          # latency_ms / share
    period: float                # camera frames per scored frame (mean over a minute of frames)

    def record(self) -> dict:
        return dict(self.__dict__)


def frame_times_us(n: int, fps: float) -> np.ndarray:
    """Arrival times of camera frames 0..n-1 in integer microseconds: round(i * 1e6 / fps)."""
    return np.round(np.arange(n, dtype=np.float64) * 1e6 / fps).astype(np.int64)


def scored_frames(n: int, fps: float, latency_ms: float) -> np.ndarray:
    """Indices of the frames (of n) a scorer with constant latency scores (see module docstring)."""
    if n <= 0:
        return np.zeros(0, dtype=np.int64)
    t = frame_times_us(n, fps)
    lat = int(round(latency_ms * 1e3))
    nxt = np.maximum(np.searchsorted(t, t + lat, side="left"), np.arange(n) + 1)   # next free arrival after i
    step = nxt - np.arange(n)
    inside = nxt < n
    if not inside.any():
        return np.zeros(1, dtype=np.int64)
    if np.all(step[inside] == step[inside][0]):
        return np.arange(0, n, int(step[inside][0]), dtype=np.int64)
    out, i = [], 0
    while i < n:
        out.append(i)
        i = int(nxt[i])
    return np.asarray(out, dtype=np.int64)


def engine_latency_ms(spec: LatencySpec, profile: str, surrogate: str) -> tuple[float, str]:
    """(latency in ms, source label) of `surrogate` on `profile` at the camera frame."""
    h, w = spec.input_hw()
    shape = (1, 3, h, w)
    if spec.source in ("paper", "peak", "roofline"):
        from hwbench.latency.theoretical import latency

        est = latency(surrogate, profile, mode=spec.source, precision=spec.precision, engine=spec.engine,
                      input_shape=shape, num_classes=spec.num_classes)
        label = "paper" if spec.source == "paper" else f"{spec.source} {est.precision} {est.engine}"
        return est.latency_ms, label
    from hwbench.latency.measure import read_measurements

    records = read_measurements(spec.measurements)
    if spec.source == "measured":
        hits = [r for r in records if r.model == surrogate and r.device == profile and r.precision == spec.precision
                and list(r.input[-2:]) == [h, w] and (spec.backend is None or r.backend == spec.backend)]
        if not hits:
            raise UserError(f"{spec.measurements}: no measurement of {surrogate} on {profile} at {h}x{w} "
                            f"{spec.precision}{' ' + spec.backend if spec.backend else ''}; measure it "
                            "(hwbench measure / ondevice.py bench) or use latency.source = \"predicted\"")
        ms = float(np.median([r.latency_ms for r in hits]))
        return ms, f"measured {hits[0].backend} {spec.precision} (median of {len(hits)})"
    from hwbench.latency.predict import predict

    rows = predict(records, surrogate, shape, device=profile, backend=spec.backend, precision=spec.precision)
    return float(rows[0]["predicted_ms"]), f"predicted {rows[0]['backend']} {rows[0]['precision']}"


def fleet_latencies(cfg: FleetConfig) -> list[ScoringLatency]:
    """One `ScoringLatency` per (generation, surrogate), generation-major."""
    out = []
    for g in cfg.generation:
        for s in g.surrogates:
            out.append(generation_latency(cfg, g, s))
    return out


def generation_latency(cfg: FleetConfig, g: Generation, surrogate: str) -> ScoringLatency:
    ms, label = engine_latency_ms(cfg.latency, g.profile, surrogate)
    eff = ms / g.share
    n = max(2, int(round(60 * cfg.fps)))
    return ScoringLatency(g.name, g.profile, surrogate, label, ms, g.share, eff, n / scored_frames(n, cfg.fps, eff).size)
