"""Preparing a run: everything that can fail on bad input happens here, before any directory exists.

`prepare(config)` validates the config against the registries and the data, builds the pool
(training and scoring views) and validation datasets, checks the labelling budget and the model
options, and returns a `Prepared` ready for `al.loop.run` (or for an experiment's backend).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset

from al.config import RunConfig, to_toml, validate
from hwbench.errors import UserError

METRIC_BY_TASK = {"segmentation": "miou", "classification": "top1"}


class PoolView(Dataset):
    """`base` restricted to `indices`, keeping its attributes (task, num_classes, ignore_index, ...)."""

    def __init__(self, base: Dataset, indices: np.ndarray) -> None:
        self.base = base
        self.indices = np.asarray(indices, dtype=np.int64)
        self._tensors: tuple[torch.Tensor, torch.Tensor] | None = None

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, i: int) -> Any:
        return self.base[int(self.indices[i])]

    def __getattr__(self, name: str) -> Any:
        if name in ("base", "indices", "_tensors") or name.startswith("__"):
            raise AttributeError(name)
        if name == "tensors":  # the cached-tensor fast path, restricted to the view
            if not callable(getattr(self.base, "tensors", None)):
                raise AttributeError(name)
            return self._view_tensors
        return getattr(self.base, name)

    def _view_tensors(self) -> tuple[torch.Tensor, torch.Tensor]:
        if self._tensors is None:
            x, y = self.base.tensors()
            sel = torch.from_numpy(self.indices)
            self._tensors = (x[sel], y[sel])
        return self._tensors


@dataclass
class Prepared:
    """A validated config with its datasets and budget, ready to run."""

    config: RunConfig
    pool: Dataset                     # indexed by pool position; the training view (augmentation as configured)
    pool_score: Dataset               # the same images without augmentation, for scoring
    val: Dataset
    val_indices: list[int] | None
    dataset_indices: np.ndarray       # (N,) dataset index of every pool position
    task: str
    metric: str
    n_initial: int
    n_cycle: int
    device: str
    strategy: Any
    toml: str = field(repr=False, default="")
    initial: np.ndarray | None = None  # the given cycle-0 set (pool indices, labelling order), None: random
    weights: Any = None                # al.weights.WeightsRef of the model's starting weights, None: random


    @property
    def pool_size(self) -> int:
        return len(self.dataset_indices)


def evenly_spaced(n: int, total: int) -> np.ndarray:
    """`n` distinct indices spread evenly over range(total) (no randomness)."""
    return (np.arange(n, dtype=np.int64) * total) // n


def prepare(config: RunConfig, initial_labelled: Sequence[int] | None = None) -> Prepared:
    """Validate `config` against the registries and the data; build the datasets; check the budget.

    `initial_labelled` (pool indices) replaces the random cycle-0 set; its size replaces
    `al.initial_fraction` in the budget.
    """
    from al.data import DATASETS, build_dataset
    from al.strategies import get_strategy
    from hwbench.models import create_model, model_info

    cfg = validate(config)
    d = cfg.data
    _check_task(model_info(cfg.model.name).task, DATASETS[d.name].task, cfg)
    pool_base = _build(build_dataset, d.name, d.root, d.split, d.options)
    score_base = pool_base
    if getattr(pool_base, "augment", False):  # score the images as they are, not augmented crops
        score_base = _build(build_dataset, d.name, d.root, d.split, {**d.options, "augment": False})
    # a manifest lists images of the pool's split: the validation split is used whole (or `val_size`)
    val_options = {k: v for k, v in d.options.items() if k != "manifest"}
    if getattr(pool_base, "augment", False):  # evaluate on the images as they are, never on random crops
        val_options["augment"] = False
    val = _build(build_dataset, d.name, d.root, d.val_split, val_options)
    task = pool_base.task
    _check_task(model_info(cfg.model.name).task, task, cfg)
    total = len(pool_base)
    if d.pool_size is not None and d.pool_size > total:
        raise UserError(f"data.pool_size {d.pool_size} exceeds the {total} images of {d.name}/{d.split}")
    n_pool = d.pool_size or total
    dataset_indices = evenly_spaced(n_pool, total)
    pool = pool_base if n_pool == total else PoolView(pool_base, dataset_indices)
    pool_score = score_base if n_pool == total else PoolView(score_base, dataset_indices)
    n_init, n_cycle, n_total = cfg.budget(n_pool)
    initial = None
    if initial_labelled is not None:
        initial = check_initial_labelled(initial_labelled, n_pool)
        n_init, n_total = len(initial), len(initial) + cfg.al.cycles * n_cycle
    if n_total > n_pool:
        what = "given" if initial is not None else "initial"
        raise UserError(f"budget of {n_total} images ({n_init} {what} + {cfg.al.cycles} cycles x {n_cycle}) "
                        f"exceeds the pool of {n_pool}; lower al.cycles or the fractions")
    if d.val_size is not None and d.val_size > len(val):
        raise UserError(f"data.val_size {d.val_size} exceeds the {len(val)} images of {d.name}/{d.val_split}")
    val_indices = None if d.val_size is None else evenly_spaced(d.val_size, len(val)).tolist()

    device = resolve_device(cfg.device)
    try:
        strategy = get_strategy(cfg.al.strategy, **cfg.al.options) if cfg.al.options \
            else get_strategy(cfg.al.strategy)
    except TypeError as e:
        raise UserError(f"al.options: {e}") from None
    with torch.device("meta"):  # checks model options without allocating anything
        create_model(cfg.model.name, num_classes=pool_base.num_classes, output_stride=cfg.model.output_stride,
                     **cfg.model.options)
    from al import weights

    ref = weights.resolve(cfg.model.weights, cfg.model.name, sha256=cfg.model.weights_sha256)
    if ref is not None:  # the resolved config (config.toml) names the checkpoint by its SHA-256
        cfg = dataclasses.replace(cfg, model=dataclasses.replace(cfg.model, weights_sha256=ref.sha256))
    return Prepared(cfg, pool, pool_score, val, val_indices, dataset_indices, task, METRIC_BY_TASK[task],
                    n_init, n_cycle, device, strategy, to_toml(cfg), initial, ref)


def check_initial_labelled(indices: Sequence[int], pool_size: int) -> np.ndarray:
    """`indices` as int64 pool positions; `UserError` unless non-empty, integral, in range and distinct."""
    arr = np.asarray(list(indices))
    if arr.ndim != 1 or arr.size == 0:
        raise UserError("initial_labelled: give at least one pool index (a flat list of integers)")
    if not np.issubdtype(arr.dtype, np.integer):
        raise UserError(f"initial_labelled: pool indices must be integers, got {arr.dtype}")
    arr = arr.astype(np.int64)
    bad = arr[(arr < 0) | (arr >= pool_size)]
    if bad.size:
        raise UserError(f"initial_labelled: index {int(bad[0])} is outside the pool of {pool_size} "
                        f"(valid: 0..{pool_size - 1})")
    uniq, counts = np.unique(arr, return_counts=True)
    if (counts > 1).any():
        raise UserError(f"initial_labelled: index {int(uniq[counts > 1][0])} is listed twice; give distinct indices")
    return arr


def _check_task(model_task: str, data_task: str, cfg: RunConfig) -> None:
    if model_task != data_task:
        raise UserError(f"model {cfg.model.name!r} is a {model_task} model but dataset {cfg.data.name!r} is "
                        f"{data_task}; pick a {data_task} model")


def _build(build_dataset: Any, name: str, root: str | None, split: str, options: dict) -> Dataset:
    try:
        return build_dataset(name, root=root, split=split, **options)
    except TypeError as e:
        raise UserError(f"data.options for {name!r}: {e}") from None


def resolve_device(device: str) -> str:
    """"auto" -> "cuda" when available else "cpu"; "cuda" without a GPU is a `UserError`."""
    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device == "cuda" and not torch.cuda.is_available():
        raise UserError("device 'cuda' requested but no CUDA GPU is available; use device = \"cpu\" or \"auto\"")
    return device
