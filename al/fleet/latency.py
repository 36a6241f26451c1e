"""Scoring latency of each surrogate on each device generation, and which frames it scores.

Latency comes from `hwbench` and is always labelled with its source:

- `paper` / `peak` / `roofline`: `hwbench.latency.latency` at the camera frame (`latency.input`);
- `measured`: the median of the matching records of a `hwbench measure` JSON-lines file
  (model, device = the generation's profile, precision, input; optionally backend);
- `predicted`: `hwbench.latency.predict.predict` calibrated on that file.

The scorer gets `share` of the device, so its effective latency is latency / share.

Real time (the on-device scorer's semantics): frame i arrives at i / fps; it is scored when the
engine is free, and then the engine is busy for L ms. With a constant L the scored frames are
0, p, 2p, ... with p = max(1, ceil(L * fps / 1000)) (`scoring_period`, tested against the
frame-by-frame rule in `scored_frames_stream`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from al.fleet.config import FleetConfig, Generation, LatencySpec
from hwbench.errors import UserError

_EPS = 1e-9


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
    period: int                  # scores one frame in every `period` camera frames

    def record(self) -> dict:
        return dict(self.__dict__)


def scoring_period(latency_ms: float, fps: float) -> int:
    """Camera frames per scored frame: the engine is free again `latency_ms` after it started."""
    if not (math.isfinite(latency_ms) and latency_ms >= 0):
        raise UserError(f"scoring latency must be a finite non-negative number of ms, got {latency_ms!r}")
    return max(1, math.ceil(latency_ms * fps / 1000.0 - _EPS))


def scored_frames_stream(n_frames: int, fps: float, latency_ms: float) -> list[int]:
    """Reference, frame by frame: indices of the frames a scorer with constant latency scores."""
    busy_frames = latency_ms * fps / 1000.0   # engine time in frame periods
    free_at, out = 0.0, []
    for i in range(n_frames):
        if i >= free_at - _EPS:
            out.append(i)
            free_at = i + busy_frames
    return out


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
    return ScoringLatency(g.name, g.profile, surrogate, label, ms, g.share, eff, scoring_period(eff, cfg.fps))
