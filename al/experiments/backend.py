"""The model/data backend of an experiment: datasets, training, evaluation and scoring.

Built from a prepared `RunConfig` (`al.prepare`), so it sees exactly the pool, validation split
and strategy an `al run` with the same `[data]`/`[al]` tables would.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

import numpy as np

from al.config import ALConfig, DataConfig, TrainConfig
from al.runtime import deterministic
from hwbench.errors import UserError
from hwbench.io import to_jsonable


class Backend:
    """Datasets, training, evaluation and scoring for one experiment (wraps al.prepare / al.train).

    Built from a prepared `RunConfig` so it sees exactly the pool, validation split and strategy
    an `al run` with the same `[data]`/`[al]` tables would.
    """

    def __init__(self, prepared: Any, output_stride: int | None = None) -> None:
        self.p = prepared
        self.output_stride = output_stride
        self.weights: dict[str, Any] = {}  # model -> al.weights.WeightsRef of its starting weights
        self.model_options: dict[str, dict[str, Any]] = {}  # model -> builder options (experiment model_options)

    @property
    def pool_size(self) -> int:
        return self.p.pool_size

    @property
    def metric(self) -> str:
        return self.p.metric

    @property
    def device(self) -> str:
        return self.p.device

    def new_model(self, name: str, *, init_seed: int) -> Any:
        import torch

        from al.weights import load
        from hwbench.models import create_model

        torch.manual_seed(init_seed)
        model = create_model(name, num_classes=self.p.pool.num_classes, output_stride=self.output_stride,
                             **self.model_options.get(name, {}))
        return load(model, self.weights.get(name))  # the backbone's starting weights (none: stays random)

    def train_model(self, name: str, indices: np.ndarray, *, seed: int, cfg: TrainConfig | None = None,
                    aux: Any = None, init_seed: int | None = None) -> Any:
        """A fresh `name` (from its starting weights: random, or its `weights` checkpoint) trained on pool
        `indices` (a set: sorted first, so two cells with the same images in another order train
        identically — common random numbers)."""
        import torch

        from al.train import train

        model = self.new_model(name, init_seed=seed if init_seed is None else init_seed)
        torch.manual_seed(seed)
        with deterministic(self.device):
            train(model, self.p.pool, sorted(int(i) for i in indices), cfg or self.p.config.train, device=self.device,
                  seed=seed, aux=aux)
        return model.eval()

    def evaluate(self, model: Any) -> dict:
        from al.train import evaluate

        with deterministic(self.device):
            res = evaluate(model, self.p.val, self.p.val_indices, device=self.device,
                           batch_size=self.p.config.al.batch_size)
        return to_jsonable(res)

    def load_model(self, name: str, path: str | os.PathLike) -> Any:
        import torch

        model = self.new_model(name, init_seed=0)
        try:
            model.load_state_dict(torch.load(path, map_location="cpu", weights_only=True))
        except Exception:  # truncated, damaged, foreign or another model's weights: never load it another way
            raise UserError(f"{path} does not hold {name} weights this toolkit wrote; delete it to retrain "
                            "or choose another directory") from None
        return model.to(self.device).eval()

    def image_scores(self, model: Any, indices: np.ndarray, *, strategy: str = "entropy",
                     batch_size: int | None = None) -> np.ndarray:
        """Per-image scores of `strategy` (e.g. entropy) on pool `indices`, in that order.

        Scored on the pool's plain view (`pool_score`: no augmentation, resized to `al.score_size` if
        set), as the AL loop scores it, never on augmented training crops.
        """
        from al.strategies import evidence, get_strategy

        strat = get_strategy(strategy)
        ev = evidence.collect(model, self.p.pool_score, np.asarray(indices, dtype=np.int64),
                              frozenset({"image_score"}), device=self.device,
                              batch_size=batch_size or self.p.config.al.batch_size, show_progress=False,
                              score_size=self.p.config.al.score_size, **_score_fn_kw(strat))
        return _evidence_scores(ev, np.asarray(indices, dtype=np.int64), self.pool_size)


def _score_fn_kw(strategy: Any) -> dict:
    fn = getattr(strategy, "score_fn", None)
    return {"score_fn": fn} if callable(fn) else {}


def _evidence_scores(ev: Any, indices: np.ndarray, pool_size: int) -> np.ndarray:
    """Image scores of `indices` from an `Evidence` (arrays over the whole pool, NaN where not scored)."""
    scores = np.asarray(ev.image_score, dtype=np.float64)
    out = scores[indices] if scores.shape[0] == pool_size else scores
    if np.isnan(out).any():
        raise RuntimeError("evidence has no score for some requested images (bug)")
    return out


def backend_for(data: DataConfig | dict, train: TrainConfig | dict, device: str, *, model: str | None = None,
                al: ALConfig | None = None, output_stride: int | None = None) -> Backend:
    """A `Backend` over the datasets of a `[data]` table (validated the way `al run` validates)."""
    from al.config import ModelConfig, RunConfig
    from al.prepare import prepare
    from hwbench.tomlconf import from_mapping

    if isinstance(data, dict):
        data = from_mapping(DataConfig, data, where="data")
    if isinstance(train, dict):
        train = from_mapping(TrainConfig, train, where="train")
    if model is None:
        from hwbench.models import list_models

        model = list_models("segmentation")[0]
    cfg = RunConfig(data=data, model=ModelConfig(name=model, output_stride=output_stride), train=train,
                    al=al or ALConfig(), device=device)
    return Backend(prepare(cfg), output_stride=output_stride)


def check_task(models: Sequence[str], task: str, what: str) -> None:
    from hwbench.models import model_info

    for m in models:
        info = model_info(m)
        if info.task != task:
            raise UserError(f"{what}: {m!r} is a {info.task} model but the dataset is {task}; pick {task} models")
