"""`al pretrain`: train each zoo backbone once on an embedded source and cache the checkpoint.

The paper starts every backbone from ImageNet weights. The embedded experiments cannot
download ImageNet, so this module gives them the closest thing that runs in seconds on a CPU:
each backbone's classifier is trained on class-balanced crops of the `pretrain` drives of
`synthetic_streets` (`al.pretrain.crops`; drives no experiment selects from or evaluates on),
and its state dict is cached in torchvision's format (`al.pretrain.cache`).

    from al.pretrain import pretrained_checkpoint
    meta = pretrained_checkpoint("deeplabv3plus_resnet20")   # trains once, then a cache hit
    hwbench.load_weights(model, meta["path"])                 # meta["sha256"] identifies it

Recipe (`RECIPE`, part of the cache key): crops of 32x32 from 64x128 frames, 3,072 crops of 32
drives, 3 epochs, batch 64, the `al.train` optimiser (SGD 0.9, weight decay 4e-4 without BN,
poly LR from 0.05), one CPU thread, PreciseBN; top-1 measured on 768 crops of 8 other drives.
Backbones: resnet20 (stride-16 layout, as in DeepLab), resnet18/34/50, mobilenetv3_small
(their classifiers, keys as torchvision's) and xception65 (backbone keys; a pooled linear head
trains with it and is dropped).
"""

from __future__ import annotations

import dataclasses
import io
import logging
import os
import platform
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from hwbench.errors import UserError

logger = logging.getLogger(__name__)

SOURCE = "synthetic_streets-pretrain-crops/v1"
BACKBONES = ("resnet20", "mobilenetv3_small", "resnet18", "resnet34", "resnet50", "xception65")
DEFAULT_BACKBONES = ("resnet20", "mobilenetv3_small", "resnet18")  # the demo's


@dataclass(frozen=True)
class Recipe:
    crop: int = 16
    frame_size: tuple[int, int] = (64, 128)
    drive_frames: int = 12
    train_drives: int = 96
    train_crops: int = 8192
    heldout_drives: int = 16
    heldout_crops: int = 1024
    epochs: int = 2
    batch_size: int = 32
    lr: float = 0.05


RECIPE = Recipe()

# CPU budget: MobileNetV3's depthwise convolutions are slow to train on a CPU (63 CPU-s with the
# full recipe on a 2-core AMD EPYC, Res-20: 16), so it sees half the crops (29 CPU-s, held-out top-1
# 40.4 % instead of 45.6 %). The ImageNet-width ResNets keep the full recipe: with 2,048 crops
# Res-18 reached 35 % top-1 and started the demo's segmentation lower (18.4 mIoU) than random
# weights (21.2), with 8,192 crops 50.7 % and 24.7 mIoU, at 199 CPU-s (README, Pretrained starts).
TRAIN_CROPS_BY_BACKBONE = {"mobilenetv3_small": 4096}


def recipe_for(backbone: str, base: Recipe | None = None) -> Recipe:
    """`base` (default `RECIPE`) with the backbone's crop budget applied (never more crops than `base`)."""
    base = base or RECIPE
    cap = TRAIN_CROPS_BY_BACKBONE.get(backbone)
    return base if cap is None or cap >= base.train_crops else dataclasses.replace(base, train_crops=cap)


def backbone_of(model: str) -> str:
    """`deeplabv3plus_resnet20` -> `resnet20`; a backbone or classifier name is its own backbone."""
    name = model.removeprefix("deeplabv3plus_")
    if name not in BACKBONES:
        raise UserError(f"no pre-training for {model!r}; backbones: {', '.join(BACKBONES)} "
                        "(or their deeplabv3plus_ models)")
    return name


def _classifier(backbone: str, num_classes: int):
    """The model trained for `backbone`, and a function giving the state dict to save."""
    import torch
    from torch import nn

    from hwbench.models import create_model

    if backbone == "xception65":
        from hwbench.models.xception import xception65

        class Pooled(nn.Module):
            def __init__(self) -> None:
                super().__init__()
                self.backbone = xception65(output_stride=32)
                self.fc = nn.Linear(self.backbone.num_features, num_classes)

            def forward(self, x: torch.Tensor) -> torch.Tensor:
                feat = self.backbone.forward_features(x)[-1]  # (N, 2048, h, w)
                return self.fc(torch.flatten(nn.functional.adaptive_avg_pool2d(feat, 1), 1))

        model = Pooled()
        return model, lambda: model.backbone.state_dict()
    extra = {"imagenet_strides": True} if backbone == "resnet20" else {}
    model = create_model(backbone, num_classes=num_classes, **extra)
    return model, model.state_dict


def train_backbone(backbone: str, recipe: Recipe = RECIPE, seed: int = 0) -> tuple[bytes, dict[str, Any]]:
    """Train one backbone on the crops; returns the serialised state dict and its metadata."""
    import torch

    from al.pretrain.crops import make_crops
    from al.runtime import deterministic, torch_threads
    from al.train import TrainConfig, evaluate, train

    r = recipe
    t0, cpu0 = time.perf_counter(), time.process_time()
    with torch_threads(1), deterministic("cpu"):
        train_set = make_crops(seed, r.train_crops, crop=r.crop, frame_size=r.frame_size,
                               drives=range(r.train_drives), drive_frames=r.drive_frames)
        held = make_crops(seed + 1, r.heldout_crops, crop=r.crop, frame_size=r.frame_size,
                          drives=range(r.train_drives, r.train_drives + r.heldout_drives), drive_frames=r.drive_frames)
        torch.manual_seed(seed)
        model, state = _classifier(backbone, train_set.num_classes)
        model = model.to(memory_format=torch.channels_last)  # ~2x faster depthwise convs on CPU (oneDNN)
        cfg = TrainConfig(epochs=r.epochs, batch_size=r.batch_size, lr=r.lr)
        summary = train(model, train_set, range(len(train_set)), cfg, seed=seed, show_progress=False)
        metrics = evaluate(model, held, batch_size=256, show_progress=False)
        buf = io.BytesIO()
        torch.save({k: v.detach().contiguous().clone() for k, v in state().items()}, buf)
    meta = {"backbone": backbone, "source": SOURCE, "recipe": dataclasses.asdict(r), "seed": seed,
            "heldout_top1": round(metrics["top1"], 2), "train_loss": summary["loss"],
            "seconds": round(time.perf_counter() - t0, 2), "cpu_seconds": round(time.process_time() - cpu0, 2), "torch": torch.__version__,
            "python": platform.python_version()}
    return buf.getvalue(), meta


def _job(args: tuple[str, Recipe, int]) -> tuple[str, bytes, dict[str, Any]]:
    backbone, recipe, seed = args
    data, meta = train_backbone(backbone, recipe, seed)
    return backbone, data, meta


def pretrain(models: Sequence[str] = DEFAULT_BACKBONES, *, recipe: Recipe | None = None, seed: int = 0,
             cache_dir: str | os.PathLike | None = None, jobs: int | None = None, force: bool = False,
             on_done: Callable[[dict[str, Any]], None] | None = None) -> list[dict[str, Any]]:
    """Ensure a cached checkpoint for each backbone of `models`; returns their metadata (with `path`,
    `sha256`, `cached`: whether it was already there). Missing ones train in up to `jobs`
    processes (default: one per CPU core), each on one thread. Each backbone trains with
    `recipe_for(backbone, recipe)` (`recipe` default: `RECIPE`)."""
    from al.pretrain.cache import cache_root, entry_key, lookup, store

    root = cache_root(cache_dir)
    names = list(dict.fromkeys(backbone_of(m) for m in models))
    recipes = {b: recipe_for(b, recipe) for b in names}
    keys = {b: entry_key(b, SOURCE, dataclasses.asdict(recipes[b]), seed) for b in names}
    done: dict[str, dict[str, Any]] = {}
    todo = []
    for b in names:
        hit = None if force else lookup(root, b, keys[b])
        if hit is not None:
            done[b] = {**hit, "cached": True}
            if on_done:
                on_done(done[b])
        else:
            todo.append(b)

    def finish(b: str, data: bytes, meta: dict[str, Any]) -> None:
        done[b] = {**store(root, b, keys[b], data, {**meta, "key": keys[b]}), "cached": False}
        logger.info("pretrained %s in %.1f s: %s", b, meta["seconds"], done[b]["path"])
        if on_done:
            on_done(done[b])

    if todo and on_done is None:  # called from a run, not from `al pretrain` (which shows a progress bar)
        logger.warning("training the %s backbone(s) once on the pretrain drives (al pretrain), cached in %s",
                       ", ".join(todo), root)
    workers = min(len(todo), jobs or os.cpu_count() or 1)
    if workers <= 1:
        for b in todo:
            finish(*_job((b, recipes[b], seed)))
    else:
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor

        with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn")) as pool:
            for b, data, meta in pool.map(_job, [(b, recipes[b], seed) for b in todo]):
                finish(b, data, meta)
    return [done[b] for b in names]


def pretrained_checkpoint(model: str, *, seed: int = 0, cache_dir: str | os.PathLike | None = None) -> dict[str, Any]:
    """The cached default-recipe checkpoint for `model`'s backbone, trained first if missing."""
    return pretrain([model], recipe=RECIPE, seed=seed, cache_dir=cache_dir, jobs=1)[0]  # RECIPE read at call time


__all__ = ["BACKBONES", "DEFAULT_BACKBONES", "RECIPE", "Recipe", "SOURCE", "TRAIN_CROPS_BY_BACKBONE", "backbone_of",
           "pretrain", "pretrained_checkpoint", "recipe_for", "train_backbone"]
