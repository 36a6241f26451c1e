"""Fleet configuration: frozen dataclasses read strictly from TOML (unknown keys are errors).

    name = "fleet_demo"
    seed = 0
    days = 1
    fps = 30.0                  # camera rate (frames per second)
    hours_per_day = 1.0         # driving per device per day
    frame_kb = 250.0            # one uploaded frame (JPEG at the camera's resolution), 1 kB = 1000 bytes
    upload_mb_per_day = 5.0     # link budget per device per day -> floor(5000 / 250) = 20 frames
    [latency]   source (paper | peak | roofline | measured | predicted), input, precision, measurements, ...
    [world]     the scored world: dataset, frames, drives, initial labelled set, surrogate training
    [[generation]]  name, profile (profiles/*.toml), count, surrogates, share
    [[policy]]  name (threshold | window-topk), quantile / window_s + k, dedup_distance, budget_frames
    [evaluation]  deployment model, label budget, seeds, training

`load_fleet_config("fleet_demo")` reads `al/presets/fleet_demo.toml` (the `fleet_` prefix may be
left out); any other argument is a path.
"""

from __future__ import annotations

import dataclasses
import math
import os
from dataclasses import dataclass, field
from typing import Any

from al.precision import resolve_train
from al.train import TrainConfig
from hwbench.errors import UserError

PRESET_PREFIX = "fleet_"
LATENCY_SOURCES = ("paper", "peak", "roofline", "measured", "predicted")
POLICIES = ("threshold", "window-topk")


@dataclass(frozen=True)
class LatencySpec:
    """Where each surrogate's scoring latency on each device comes from (always labelled in outputs)."""

    source: str = "paper"            # paper | peak | roofline (hwbench.latency) | measured | predicted
    input: str = "1024x2048"         # HxW of the camera frame the engine scores
    num_classes: int = 19            # classes of the on-device model (Cityscapes: 19), not of the world data
    precision: str = "fp16"          # peak / roofline / measured / predicted: the engine's precision
    engine: str = "gpu"              # peak / roofline
    measurements: str | None = None  # measured / predicted: a JSON-lines file of `hwbench measure` records
    backend: str | None = None       # measured / predicted: only records of this backend (e.g. tensorrt)

    def input_hw(self) -> tuple[int, int]:
        from hwbench.count import parse_hw

        return parse_hw(self.input, "latency.input")


@dataclass(frozen=True)
class WorldSpec:
    """The world the fleet drives through, scored once by every surrogate."""

    dataset: str = "synthetic_streets"
    frames: int = 600                # world frames (the pool), consecutive frames form drives
    val_frames: int = 60             # validation frames (deployment mIoU)
    size: tuple[int, ...] = (32, 64)  # H, W of the world frames (the scoring resolution here)
    drive_frames: int = 12           # frames per drive (a dataset option of synthetic_streets' drives)
    world_fps: float = 10.0          # world frames per second of driving (the drives' frame rate; camera
                                     # frames in between repeat the last world frame)
    initial_labelled: int = 30       # random world frames the surrogates are trained on (and every set starts from)
    options: dict[str, Any] = field(default_factory=dict)  # extra dataset options
    train: TrainConfig = field(default_factory=TrainConfig)
    batch_size: int = 50             # scoring batch size


@dataclass(frozen=True)
class Generation:
    """Devices of one hardware generation; each listed surrogate is one fleet variant."""

    name: str
    profile: str
    count: int
    surrogates: tuple[str, ...]
    share: float = 1.0               # share of the device the scorer may use: latency / share


@dataclass(frozen=True)
class PolicySpec:
    """An on-device selection policy (semantics of `hwbench/ondevice.py score`)."""

    name: str                        # threshold | window-topk
    quantile: float = 0.9            # threshold = this quantile of the surrogate's scores on the world
    window_s: float = 10.0           # window-topk: window length in seconds of camera frames
    k: int = 1                       # window-topk: frames offered per window (best k by score)
    dedup_distance: float = 0.0      # > 0: drop frames whose L2-normalised embedding is within this distance
    dedup_memory: int = 32           # ... of one of the last `dedup_memory` kept frames
    budget_frames: int | None = None  # on-device cap on kept frames per budget period (None: no cap)
    budget_period_s: float = 3600.0  # the period (aligned to the day's first frame), like `--per 1h`

    @property
    def label(self) -> str:
        base = f"threshold q{self.quantile:g}" if self.name == "threshold" else f"top{self.k}/{self.window_s:g}s"
        return base + (f" +dedup {self.dedup_distance:g}" if self.dedup_distance > 0 else "")


@dataclass(frozen=True)
class EvaluationSpec:
    """Deployment model trained on each collected set vs server-side pool AL and random upload."""

    deployment: str = "deeplabv3plus_resnet18"
    label_budget: int = 30           # frames the server labels from what the fleet uploaded
    seeds: tuple[int, ...] = (0, 1)
    policy: int = 0                  # index of the [[policy]] whose uploads are trained on
    train: TrainConfig = field(default_factory=TrainConfig)
    enabled: bool = True


@dataclass(frozen=True)
class FleetConfig:
    generation: tuple[Generation, ...]
    policy: tuple[PolicySpec, ...]
    name: str = ""
    seed: int = 0
    days: int = 1
    fps: float = 30.0
    hours_per_day: float = 1.0
    frame_kb: float = 250.0
    upload_mb_per_day: float = 5.0
    device: str = "cpu"
    threads: int = 1
    latency: LatencySpec = field(default_factory=LatencySpec)
    world: WorldSpec = field(default_factory=WorldSpec)
    evaluation: EvaluationSpec = field(default_factory=EvaluationSpec)

    @property
    def frames_per_day(self) -> int:
        """Camera frames per device per day."""
        return int(round(self.hours_per_day * 3600 * self.fps))

    @property
    def upload_frames_per_day(self) -> int:
        """Frames the link budget uploads per device per day."""
        return int(math.floor(self.upload_mb_per_day * 1000.0 / self.frame_kb + 1e-9))

    @property
    def surrogates(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(s for g in self.generation for s in g.surrogates))

    @property
    def devices(self) -> int:
        return sum(g.count for g in self.generation)


def load_fleet_config(path_or_preset: str | os.PathLike) -> tuple[FleetConfig, str]:
    """(config, its TOML text) from a file or preset; `UserError` on anything malformed."""
    from al.config import resolve_preset
    from hwbench.tomlconf import from_mapping, read_toml

    path = resolve_preset(os.fspath(path_or_preset), prefix=PRESET_PREFIX)
    raw = read_toml(path)
    raw.setdefault("name", path.stem)
    cfg = from_mapping(FleetConfig, raw, where=str(path))
    text = path.read_text(encoding="utf-8")
    w, e = cfg.world, cfg.evaluation
    resolved = dataclasses.replace(cfg, world=dataclasses.replace(w, train=resolve_train(w.train, "world.train")),
                                   evaluation=dataclasses.replace(e, train=resolve_train(e.train, "evaluation.train")))
    if resolved != cfg:  # bf16 = "auto" was resolved by this CPU: the identity (this text's hash) records it
        text += (f"\n# bf16 = \"auto\" resolved on this CPU: world.train {str(resolved.world.train.bf16).lower()}, "
                 f"evaluation.train {str(resolved.evaluation.train.bf16).lower()}\n")
    return validate(resolved), text


def _positive(where: str, v: float) -> None:
    if not (math.isfinite(v) and v > 0):
        raise UserError(f"{where} must be a positive finite number, got {v!r}")


def validate(cfg: FleetConfig) -> FleetConfig:
    """Checks that need no data and no model; names are checked against the registries."""
    from hwbench.models import model_info
    from hwbench.profiles import load_profile

    for key in ("fps", "hours_per_day", "frame_kb", "upload_mb_per_day"):
        _positive(key, getattr(cfg, key))
    if cfg.hours_per_day > 24:
        raise UserError(f"hours_per_day must be at most 24, got {cfg.hours_per_day:g}")
    if cfg.days < 1 or cfg.seed < 0 or cfg.threads < 0:
        raise UserError("days must be >= 1, seed >= 0 and threads >= 0")
    if cfg.frames_per_day < 1:
        raise UserError("hours_per_day x fps gives less than one camera frame per day")
    if cfg.upload_frames_per_day < 1:
        raise UserError(f"upload_mb_per_day {cfg.upload_mb_per_day:g} MB holds no {cfg.frame_kb:g} kB frame; "
                        "raise it or lower frame_kb")
    if not cfg.generation:
        raise UserError("give at least one [[generation]] (name, profile, count, surrogates)")
    names = [g.name for g in cfg.generation]
    if len(set(names)) != len(names):
        raise UserError("[[generation]] names must be distinct")
    for g in cfg.generation:
        if g.count < 1:
            raise UserError(f"generation {g.name!r}: count must be >= 1, got {g.count}")
        if not g.surrogates or len(set(g.surrogates)) != len(g.surrogates):
            raise UserError(f"generation {g.name!r}: list one or more distinct surrogates")
        if not (math.isfinite(g.share) and 0 < g.share <= 1):
            raise UserError(f"generation {g.name!r}: share must be in (0, 1], got {g.share!r}")
        try:
            load_profile(g.profile)
        except UserError as e:
            raise UserError(f"generation {g.name!r}: profile {g.profile!r}: {e}") from None
        for s in g.surrogates:
            info = model_info(s)
            if info.task != "segmentation":
                raise UserError(f"generation {g.name!r}: {s!r} is a {info.task} model; the world is segmentation")
    lat = cfg.latency
    if lat.source not in LATENCY_SOURCES:
        raise UserError(f"latency.source {lat.source!r} is not one of {', '.join(LATENCY_SOURCES)}")
    lat.input_hw()
    if lat.source in ("measured", "predicted") and not lat.measurements:
        raise UserError(f"latency.source = {lat.source!r} needs latency.measurements = \"FILE.jsonl\" "
                        "(records of `hwbench measure --out`)")
    if not cfg.policy:
        raise UserError("give at least one [[policy]] (threshold or window-topk)")
    for p in cfg.policy:
        _validate_policy(p)
    w = cfg.world
    _positive("world.world_fps", w.world_fps)
    if w.world_fps > cfg.fps:
        raise UserError(f"world.world_fps {w.world_fps:g} exceeds the camera fps {cfg.fps:g}")
    if len(w.size) != 2 or min(w.size) < 16:
        raise UserError(f"world.size must be [H, W] with both >= 16, got {list(w.size)}")
    if w.frames < 2 or w.val_frames < 1 or w.drive_frames < 1 or w.batch_size < 1:
        raise UserError("world.frames >= 2, world.val_frames >= 1, world.drive_frames >= 1, world.batch_size >= 1")
    if not 1 <= w.initial_labelled < w.frames:
        raise UserError(f"world.initial_labelled must be in [1, {w.frames}), got {w.initial_labelled}")
    e = cfg.evaluation
    if e.enabled:
        model_info(e.deployment)
        if e.label_budget < 1 or e.label_budget > w.frames - w.initial_labelled:
            raise UserError(f"evaluation.label_budget must be in [1, {w.frames - w.initial_labelled}] "
                            f"(world frames not labelled yet), got {e.label_budget}")
        if not e.seeds or len(set(e.seeds)) != len(e.seeds) or min(e.seeds) < 0:
            raise UserError(f"evaluation.seeds: give distinct non-negative integers, got {list(e.seeds)}")
        if not 0 <= e.policy < len(cfg.policy):
            raise UserError(f"evaluation.policy must index a [[policy]] (0..{len(cfg.policy) - 1}), got {e.policy}")
    if cfg.device not in ("cpu", "cuda", "auto"):
        raise UserError(f"device: {cfg.device!r} is not one of auto, cpu, cuda")
    return cfg


def _validate_policy(p: PolicySpec) -> None:
    if p.name not in POLICIES:
        raise UserError(f"policy {p.name!r} is not one of {', '.join(POLICIES)}")
    if not 0 <= p.quantile <= 1:
        raise UserError(f"policy.quantile must be in [0, 1], got {p.quantile!r}")
    _positive("policy.window_s", p.window_s)
    if p.k < 1 or p.dedup_memory < 1:
        raise UserError("policy.k and policy.dedup_memory must be >= 1")
    _positive("policy.budget_period_s", p.budget_period_s)
    if not (math.isfinite(p.dedup_distance) and p.dedup_distance >= 0):
        raise UserError(f"policy.dedup_distance must be >= 0, got {p.dedup_distance!r}")
    if p.budget_frames is not None and p.budget_frames < 1:
        raise UserError("policy.budget_frames must be >= 1 (or left out: no cap)")


def with_counts(cfg: FleetConfig, scale: float) -> FleetConfig:
    """The same fleet with every generation's device count scaled (at least one device each)."""
    gens = tuple(dataclasses.replace(g, count=max(1, int(round(g.count * scale)))) for g in cfg.generation)
    return dataclasses.replace(cfg, generation=gens)
