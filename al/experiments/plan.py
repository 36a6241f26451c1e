"""The cost of a surrogate × deployment experiment before it runs (`al surrogate CONFIG --plan`).

Counted exactly from the config and the dataset's size (no training):

- trainings: per seed, every surrogate trains once per cycle k = 0..C on the n_k = n_0 + k · n_c images
  labelled so far (`al.loop`), and every deployment model trains once per column (each surrogate's
  final selection, plus random) on n_C images;
- images seen in training: Σ epochs · n over those trainings (a trailing batch of one is ignored);
- forward-only images: each surrogate scores the unlabelled pool in cycles 1..C, and every trained
  model is evaluated once on the validation split.

GPU hours are an estimate, and the assumptions are printed with it:

- a training step costs `TRAIN_FACTOR` = 3 forward passes (forward, gradient with respect to the
  activations, gradient with respect to the weights: each about the forward's MACs);
- forward MACs per image come from `hwbench.count` at the training crop / evaluation size;
- time = 2 · MACs / (device peak TOPS at `precision` · `utilisation`); the peak is the device
  profile's dense figure (`hwbench.latency`, mode "peak"), `utilisation` its sustained share
  (default 0.4). Data loading, checkpoints and start-up are not counted.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from al.data.sizes import eval_size, train_size

TRAIN_FACTOR = 3.0
DEFAULT_UTILISATION = 0.4


@dataclass(frozen=True)
class Schedule:
    """Budget in images: initial set, per cycle, cycles after the initial set."""

    n_initial: int
    n_cycle: int
    cycles: int

    def labelled(self, k: int) -> int:
        return self.n_initial + k * self.n_cycle

    @property
    def final(self) -> int:
        return self.labelled(self.cycles)


@dataclass(frozen=True)
class PlanRow:
    """One model in one role, summed over seeds."""

    role: str                   # "surrogate" (AL cycles) | "deployment" (one training per column)
    model: str
    trainings: int
    images_trained: int         # Σ epochs · labelled images
    images_scored: int          # pool images scored (surrogates only)
    images_evaluated: int       # validation images evaluated
    gmacs_train_image: float    # forward GMACs per training image (at the training crop)
    gmacs_eval_image: float     # forward GMACs per evaluated / scored image
    gpu_hours: float            # at `utilisation` of the device's peak


@dataclass(frozen=True)
class Plan:
    seeds: int
    schedule: Schedule
    pool_size: int
    val_size: int
    train_hw: tuple[int, int]
    eval_hw: tuple[int, int]
    device: str
    precision: str
    peak_tops: float
    utilisation: float
    rows: tuple[PlanRow, ...]
    assumptions: tuple[str, ...] = field(default=())
    hardware: str = "GPU"       # what the hours are hours of: "GPU", "CPU", or "host" (the measured host, all its threads)

    @property
    def trainings(self) -> int:
        return sum(r.trainings for r in self.rows)

    @property
    def images_trained(self) -> int:
        return sum(r.images_trained for r in self.rows)

    @property
    def gpu_hours(self) -> float:
        return sum(r.gpu_hours for r in self.rows)

    def to_dict(self) -> dict[str, Any]:
        from dataclasses import asdict

        return {**asdict(self), "trainings": self.trainings, "images_trained": self.images_trained,
                "gpu_hours": self.gpu_hours}


def _images_trained(n: int, epochs: int, batch_size: int, min_steps: int = 0) -> int:
    """Images one training sees: epochs · n, less a trailing batch of one (dropped by `al.train`); epochs rise
    to reach `min_steps` steps (`TrainConfig.epochs_for`)."""
    b = min(batch_size, n)
    drop = 1 if n % b == 1 and n > b else 0
    steps = math.ceil((n - drop) / b)
    epochs = max(epochs, math.ceil(min_steps / max(steps, 1)))
    return epochs * (n - drop)


def count_plan(*, surrogates: Sequence[str], deployments: Sequence[str], seeds: int, schedule: Schedule,
               pool_size: int, val_size: int, surrogate_epochs: int, deployment_epochs: int,
               batch_size: Mapping[str, tuple[int, int]], budgets: Sequence[int] = (),
               min_steps: tuple[int, int] = (0, 0)) -> list[dict[str, Any]]:
    """Counts per (role, model) summed over seeds: trainings and images (no cost model).

    `batch_size[model] = (as surrogate, as deployment)`; `budgets`: a sweep's labelled-set sizes (every
    deployment model trains once per column at each; default: the final budget only); `min_steps`:
    (surrogate, deployment) `TrainConfig.min_steps`.
    """
    rows = []
    c = schedule.cycles
    for m in surrogates:
        bs = batch_size[m][0]
        trained = sum(_images_trained(schedule.labelled(k), surrogate_epochs, bs, min_steps[0]) for k in range(c + 1))
        scored = sum(pool_size - schedule.labelled(k - 1) for k in range(1, c + 1))
        rows.append({"role": "surrogate", "model": m, "trainings": seeds * (c + 1),
                     "images_trained": seeds * trained, "images_scored": seeds * scored,
                     "images_evaluated": seeds * (c + 1) * val_size})
    columns = len(surrogates) + 1
    sizes = list(budgets) or [schedule.final]
    for m in deployments:
        bs = batch_size[m][1]
        per_column = sum(_images_trained(n, deployment_epochs, bs, min_steps[1]) for n in sizes)
        rows.append({"role": "deployment", "model": m, "trainings": seeds * columns * len(sizes),
                     "images_trained": seeds * columns * per_column,
                     "images_scored": 0, "images_evaluated": seeds * columns * len(sizes) * val_size})
    return rows


def estimate(counts: Sequence[Mapping[str, Any]], *, gmacs: Mapping[str, tuple[float, float]], device: str,
             precision: str, peak_tops: float, utilisation: float, seeds: int, schedule: Schedule,
             pool_size: int, val_size: int, train_hw: tuple[int, int], eval_hw: tuple[int, int],
             hardware: str = "GPU", train_speedup: Mapping[tuple[str, str], float] | None = None) -> Plan:
    """Attach device hours to `count_plan` rows (`gpu_hours`; of a CPU when `hardware` = "CPU").
    `gmacs[model] = (per training image, per eval image)`; `train_speedup[(role, model)]` divides that
    row's training cost (bf16 training steps on a CPU, measured)."""
    ops_per_s = peak_tops * 1e12 * utilisation
    rows = []
    for r in counts:
        g_train, g_eval = gmacs[r["model"]]
        speedup = (train_speedup or {}).get((r["role"], r["model"]), 1.0)
        macs = (TRAIN_FACTOR * g_train * r["images_trained"] / speedup
                + g_eval * (r["images_scored"] + r["images_evaluated"])) * 1e9
        rows.append(PlanRow(r["role"], r["model"], r["trainings"], r["images_trained"], r["images_scored"],
                            r["images_evaluated"], g_train, g_eval, 2 * macs / ops_per_s / 3600))
    assumptions = (
        f"training step = {TRAIN_FACTOR:g} x forward MACs (forward + two backward products)",
        f"2 ops per MAC at {utilisation:.0%} of the {device} dense {precision} peak ({peak_tops:g} TOPS)",
        f"forward MACs counted by hwbench at the training crop {train_hw[0]}x{train_hw[1]} and the "
        f"evaluation/scoring size {eval_hw[0]}x{eval_hw[1]}",
        f"not counted: data loading, checkpoints, PreciseBN pass, start-up; one {hardware}",
    )
    return Plan(seeds, schedule, pool_size, val_size, train_hw, eval_hw, device, precision, peak_tops,
                utilisation, tuple(rows), assumptions, hardware)


def forward_gmacs(model: str, hw: tuple[int, int], num_classes: int, options: Mapping[str, Any] | None = None) -> float:
    """Forward conv + linear GMACs of one image of size `hw` (hwbench's counter, meta device), built with the
    experiment's builder `options` for that model (e.g. a small-image stem)."""
    from hwbench.count import count

    if not options:
        return count(model, input_shape=(1, 3, *hw), num_classes=num_classes).macs / 1e9
    import torch

    from hwbench.models import create_model

    with torch.device("meta"):
        net = create_model(model, num_classes=num_classes, **options)
    return count(net, input_shape=(1, 3, *hw)).macs / 1e9


def hours_text(h: float, hardware: str = "GPU") -> str:
    """Device hours for a person: `0.42 GPU-h`, `1,234 GPU-h (51.4 GPU-days)`, `0.42 CPU-h`."""
    if h >= 48:
        return f"{h:,.0f} {hardware}-h ({h / 24:,.1f} {hardware}-days)"
    return f"{h:.2f} {hardware}-h" if h < 10 else f"{h:.1f} {hardware}-h"



# ------------------------------------------------------------------ from a config and a dataset root

def plan_for_config(cfg: Any, *, device: str = "a100_sxm", precision: str | None = None,
                    utilisation: float = DEFAULT_UTILISATION) -> Plan:
    """The plan of experiment config `cfg` on its dataset: the layout is checked (a `UserError` names
    what is missing), images are counted, none is decoded except a few headers for the eval size."""
    from al.config import ModelConfig, RunConfig
    from al.data import DATASETS, build_dataset
    from al.experiments.deployable import resolve_surrogates
    from hwbench.errors import UserError
    from hwbench.profiles import load_profile

    if not 0 < utilisation <= 1:
        raise UserError(f"--utilisation must be in (0, 1], got {utilisation}")
    d = cfg.data
    if DATASETS.get(d.name) is not None and DATASETS[d.name].needs_root and not d.root:
        raise UserError(f"dataset {d.name!r} needs its root directory: pass --data-root DIR")
    pool = build_dataset(d.name, root=d.root, split=d.split, **d.options)
    val = build_dataset(d.name, root=d.root, split=d.val_split, **d.options)
    pool_size = min(d.pool_size or len(pool), len(pool))
    val_size = min(d.val_size or len(val), len(val))
    probe = RunConfig(data=d, model=ModelConfig(name=cfg.deployment[0]), train=cfg.train.deployment, al=cfg.al)
    n0, nc, _ = probe.budget(pool_size)
    schedule = Schedule(n0, nc, cfg.al.cycles)
    surrogates = cfg.surrogates.models or resolve_surrogates(cfg.surrogates, pool.task).surrogates
    models = list(dict.fromkeys((*surrogates, *cfg.deployment)))
    bs = {m: (cfg.train.for_model(m, "surrogate").batch_size, cfg.train.for_model(m, "deployment").batch_size)
          for m in models}
    from al.experiments.context import sweep_budgets

    counts = count_plan(surrogates=surrogates, deployments=cfg.deployment, seeds=len(cfg.seeds), schedule=schedule,
                        pool_size=pool_size, val_size=val_size, surrogate_epochs=cfg.train.surrogate.epochs,
                        deployment_epochs=cfg.train.deployment.epochs, batch_size=bs,
                        budgets=sweep_budgets(cfg, n0, nc),
                        min_steps=(cfg.train.surrogate.min_steps, cfg.train.deployment.min_steps))
    train_hw, eval_hw = train_size(pool), eval_size(val, fallback=train_size(pool))
    gmacs = {m: (forward_gmacs(m, train_hw, pool.num_classes, cfg.model_options.get(m)),
                 forward_gmacs(m, eval_hw, pool.num_classes, cfg.model_options.get(m))) for m in models}
    prof = load_profile(device)
    if precision is None:  # AMP where the device has fp16 figures, else what it has (a CPU-only host: fp32)
        precision = "fp16" if any(k.startswith("fp16/") for k in prof.available()) else "fp32"
    engine = "gpu" if f"{precision}/gpu" in prof.available() or f"{precision}/cpu" not in prof.available() else "cpu"
    tops = prof.peak_tops(precision, engine)  # a CPU-only profile (host) is costed on its CPU figure
    hardware = engine.upper()
    if engine == "cpu" and prof.measured is not None:  # host: its peak was measured with all its torch threads
        hardware = "host"
    speedups = _bf16_speedups(cfg, surrogates, pool.num_classes, train_hw) if hardware == "host" else {}
    plan = estimate(counts, gmacs=gmacs, device=prof.name, precision=precision, peak_tops=tops,
                    utilisation=utilisation, seeds=len(cfg.seeds), schedule=schedule, pool_size=pool_size,
                    val_size=val_size, train_hw=train_hw, eval_hw=eval_hw, hardware=hardware, train_speedup=speedups)
    if hardware == "host":
        m = prof.measured
        n = m.threads
        lines = [f"host-h: hours of the whole machine, its fp32 peak measured with {n} torch thread{'s' * (n != 1)} "
                 f"on {m.date[:10]} (`hwbench profiles host --refresh` after a change of load); "
                 f"about the wall time of `--jobs {n}`"]
        lines += [f"bf16 training steps ({role}): {model}'s fp32 cost / {x:.2f}, its bf16 speed-up measured here "
                  "(one batch, one thread)" for (role, model), x in speedups.items()]
        if m.busy():
            lines.append(f"warning: the host was busy when measured ({m.load_text()}), so its peak reads low and "
                         "these hours high: `hwbench profiles host --refresh` on an idle machine")
        plan = dataclasses.replace(plan, assumptions=(*plan.assumptions, *lines))
    return plan


def _bf16_speedups(cfg: Any, surrogates: Sequence[str], num_classes: int,
                   train_hw: tuple[int, int]) -> dict[tuple[str, str], float]:
    """(role, model) -> measured bf16 speed-up of its training step, for each role whose `bf16` is on."""
    from al.precision import measured_speedup
    from al.runtime import torch_threads

    out = {}
    with torch_threads(1):
        for role, models in (("surrogate", surrogates), ("deployment", cfg.deployment)):
            for m in models:
                t = cfg.train.for_model(m, role)
                if t.bf16 is True:
                    out[(role, m)] = measured_speedup(m, dict(cfg.model_options.get(m, {})), batch_size=t.batch_size,
                                                      hw=train_hw, num_classes=num_classes)
    return out
