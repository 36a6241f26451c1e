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

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

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


def _images_trained(n: int, epochs: int, batch_size: int) -> int:
    """Images one training sees: epochs · n, less a trailing batch of one (dropped by `al.train`)."""
    b = min(batch_size, n)
    drop = 1 if n % b == 1 and n > b else 0
    return epochs * (n - drop)


def count_plan(*, surrogates: Sequence[str], deployments: Sequence[str], seeds: int, schedule: Schedule,
               pool_size: int, val_size: int, surrogate_epochs: int, deployment_epochs: int,
               batch_size: Mapping[str, tuple[int, int]]) -> list[dict[str, Any]]:
    """Counts per (role, model) summed over seeds: trainings and images (no cost model).

    `batch_size[model] = (as surrogate, as deployment)`.
    """
    rows = []
    c = schedule.cycles
    for m in surrogates:
        bs = batch_size[m][0]
        trained = sum(_images_trained(schedule.labelled(k), surrogate_epochs, bs) for k in range(c + 1))
        scored = sum(pool_size - schedule.labelled(k - 1) for k in range(1, c + 1))
        rows.append({"role": "surrogate", "model": m, "trainings": seeds * (c + 1),
                     "images_trained": seeds * trained, "images_scored": seeds * scored,
                     "images_evaluated": seeds * (c + 1) * val_size})
    columns = len(surrogates) + 1
    for m in deployments:
        bs = batch_size[m][1]
        rows.append({"role": "deployment", "model": m, "trainings": seeds * columns,
                     "images_trained": seeds * columns * _images_trained(schedule.final, deployment_epochs, bs),
                     "images_scored": 0, "images_evaluated": seeds * columns * val_size})
    return rows


def estimate(counts: Sequence[Mapping[str, Any]], *, gmacs: Mapping[str, tuple[float, float]], device: str,
             precision: str, peak_tops: float, utilisation: float, seeds: int, schedule: Schedule,
             pool_size: int, val_size: int, train_hw: tuple[int, int], eval_hw: tuple[int, int]) -> Plan:
    """Attach GPU hours to `count_plan` rows. `gmacs[model] = (per training image, per eval image)`."""
    ops_per_s = peak_tops * 1e12 * utilisation
    rows = []
    for r in counts:
        g_train, g_eval = gmacs[r["model"]]
        macs = (TRAIN_FACTOR * g_train * r["images_trained"]
                + g_eval * (r["images_scored"] + r["images_evaluated"])) * 1e9
        rows.append(PlanRow(r["role"], r["model"], r["trainings"], r["images_trained"], r["images_scored"],
                            r["images_evaluated"], g_train, g_eval, 2 * macs / ops_per_s / 3600))
    assumptions = (
        f"training step = {TRAIN_FACTOR:g} x forward MACs (forward + two backward products)",
        f"2 ops per MAC at {utilisation:.0%} of the {device} dense {precision} peak ({peak_tops:g} TOPS)",
        f"forward MACs counted by hwbench at the training crop {train_hw[0]}x{train_hw[1]} and the "
        f"evaluation/scoring size {eval_hw[0]}x{eval_hw[1]}",
        "not counted: data loading, checkpoints, PreciseBN pass, start-up; one GPU",
    )
    return Plan(seeds, schedule, pool_size, val_size, train_hw, eval_hw, device, precision, peak_tops,
                utilisation, tuple(rows), assumptions)


def forward_gmacs(model: str, hw: tuple[int, int], num_classes: int) -> float:
    """Forward conv + linear GMACs of one image of size `hw` (hwbench's counter, meta device)."""
    from hwbench.count import count

    return count(model, input_shape=(1, 3, *hw), num_classes=num_classes).macs / 1e9


def hours_text(h: float) -> str:
    """GPU hours for a person: `0.42 GPU-h`, `1,234 GPU-h (51.4 GPU-days)`."""
    if h >= 48:
        return f"{h:,.0f} GPU-h ({h / 24:,.1f} GPU-days)"
    return f"{h:.2f} GPU-h" if h < 10 else f"{h:.1f} GPU-h"

