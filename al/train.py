"""Training and evaluation of the task models (and the LLAL loss module) for the AL loop.

Recipe (the paper's, §4 "Training Parameters"): SGD, momentum 0.9, weight decay 4e-4 on every
parameter except normalisation (batch-norm) parameters and biases; poly learning rate per
iteration, `lr * (1 - it / total) ** 0.9`; cross-entropy with the ignore label. AMP (fp16
autocast + GradScaler) and channels_last are used on CUDA only; CPU runs are plain fp32.

Batching. Each epoch shuffles the labelled indices with a `torch.Generator` seeded from
`seed` and splits them into batches of `batch_size` (capped at the set size). A trailing batch
of a single sample is dropped when other batches exist (BatchNorm cannot normalise one
sample after global pooling); shuffling changes which sample that is every epoch. A labelled
set of exactly one sample trains with the normalisation layers in eval mode (running
statistics). Datasets that offer `tensors()` (the embedded ones) are batched straight from
their cached tensors; others go through a `DataLoader` (`num_workers` from the config).

Determinism: `train` calls `torch.manual_seed(seed)` (augmentation, dropout) and shuffles with
its own generator, so the same model, data, config and seed give identical weights on CPU.
Augmentation draws from the global RNG in the main process (`num_workers=0`) or from worker
RNGs seeded from `seed` (`num_workers>0`): deterministic for a given `num_workers`, but the
crops differ between the two settings.

PreciseBN. With `precise_bn` (default), training ends with one no-grad pass over the labelled
set in train mode that recomputes every BatchNorm's running mean/var as a plain average over
the batches, with the final weights (Wu & Johnson, "Rethinking 'Batch' in BatchNorm", 2021;
fvcore's `update_bn_stats`). Short AL trainings otherwise leave the running statistics lagging
the weights, badly so for layers with momentum 0.01 (MobileNetV3), and eval-mode accuracy
drops far below train-mode accuracy.

Losses. The task loss is the cross-entropy averaged over all valid pixels of the batch (the
usual DeepLab loss; for classification the batch mean). `per_sample_loss` is the one
definition of a sample's loss (segmentation: mean over its valid pixels, 0 when it has none),
used as the LLAL target and by the True-Loss strategy.

mIoU. Per class IoU = TP / (TP + FP + FN) from the confusion matrix accumulated over the whole
evaluated set; classes absent from both the ground truth and the predictions (TP + FP + FN = 0)
have no IoU and are left out of the mean (reported as None).
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import logging
import math
import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from hwbench.errors import UserError

logger = logging.getLogger(__name__)

NORM_TYPES = (nn.modules.batchnorm._NormBase, nn.GroupNorm, nn.LayerNorm)


@dataclass(frozen=True)
class TrainConfig:
    """`[train]` table of a run config."""

    epochs: int = 1
    batch_size: int = 8
    lr: float = 0.01
    momentum: float = 0.9
    weight_decay: float = 4e-4
    poly_power: float = 0.9
    amp: bool = True
    channels_last: bool = True
    num_workers: int = 0
    precise_bn: bool = True  # recompute BatchNorm statistics on the labelled set after training

    def __post_init__(self) -> None:
        checks = {"epochs": self.epochs >= 1, "batch_size": self.batch_size >= 1, "lr": self.lr > 0,
                  "momentum": 0 <= self.momentum < 1, "weight_decay": self.weight_decay >= 0,
                  "poly_power": self.poly_power >= 0, "num_workers": self.num_workers >= 0}
        bad = [k for k, ok in checks.items() if not ok]
        if bad:
            k = bad[0]
            raise UserError(f"train: {k} = {getattr(self, k)!r} is out of range; "
                            "need epochs >= 1, batch_size >= 1, lr > 0, 0 <= momentum < 1, "
                            "weight_decay >= 0, poly_power >= 0, num_workers >= 0")


# --- optimisation pieces -------------------------------------------------------------------------

def poly_lr(base_lr: float, iteration: int, total_iters: int, power: float = 0.9) -> float:
    """Poly schedule: `base_lr * (1 - iteration / total_iters) ** power` (iteration 0-based)."""
    return base_lr * (1.0 - iteration / max(total_iters, 1)) ** power


def param_groups(modules: Iterable[nn.Module], weight_decay: float) -> list[dict[str, Any]]:
    """Two SGD groups: `decay` (conv/linear weights) and `no_decay` (norm-layer params, biases)."""
    decay: list[nn.Parameter] = []
    no_decay: list[nn.Parameter] = []
    seen: set[int] = set()
    for root in modules:
        for module in root.modules():
            for pname, p in module.named_parameters(recurse=False):
                if not p.requires_grad or id(p) in seen:
                    continue
                seen.add(id(p))
                exempt = isinstance(module, NORM_TYPES) or pname.endswith("bias")
                (no_decay if exempt else decay).append(p)
    groups = [{"name": "decay", "params": decay, "weight_decay": weight_decay},
              {"name": "no_decay", "params": no_decay, "weight_decay": 0.0}]
    return [g for g in groups if g["params"]]


def make_optimizer(modules: Sequence[nn.Module], cfg: TrainConfig) -> torch.optim.SGD:
    groups = param_groups(modules, cfg.weight_decay)
    if not groups:
        raise UserError("train: the model has no trainable parameters")
    return torch.optim.SGD(groups, lr=cfg.lr, momentum=cfg.momentum)


# --- losses and metrics --------------------------------------------------------------------------

def _match_size(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Upsample segmentation logits to the label size if a model returns a smaller map."""
    if logits.dim() == 4 and logits.shape[-2:] != target.shape[-2:]:
        logits = F.interpolate(logits, size=target.shape[-2:], mode="bilinear", align_corners=False)
    return logits


def _pixel_ce(logits: torch.Tensor, target: torch.Tensor, ignore_index: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-element CE (0 where ignored) and the valid mask; shapes (N,) or (N, H, W)."""
    logits = _match_size(logits, target).float()
    ce = F.cross_entropy(logits, target, ignore_index=ignore_index, reduction="none")
    return ce, target != ignore_index


def per_sample_loss(logits: torch.Tensor, target: torch.Tensor, ignore_index: int) -> torch.Tensor:
    """(N,) loss per sample: classification CE; segmentation mean CE over the image's valid pixels
    (an image without a valid pixel scores 0)."""
    ce, valid = _pixel_ce(logits, target, ignore_index)
    if ce.dim() == 1:
        return ce * valid
    return ce.flatten(1).sum(1) / valid.flatten(1).sum(1).clamp(min=1)


def _losses(logits: torch.Tensor, target: torch.Tensor, ignore_index: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(batch loss = mean over all valid elements, per-sample losses (N,)) from one CE pass."""
    ce, valid = _pixel_ce(logits, target, ignore_index)
    batch = ce.sum() / valid.sum().clamp(min=1)
    if ce.dim() == 1:
        return batch, ce
    return batch, ce.flatten(1).sum(1) / valid.flatten(1).sum(1).clamp(min=1)


def confusion_matrix(pred: torch.Tensor, target: torch.Tensor, num_classes: int,
                     ignore_index: int = 255) -> torch.Tensor:
    """(K, K) int64 counts, rows = ground truth, columns = prediction; ignored pixels skipped."""
    valid = (target != ignore_index) & (target >= 0) & (target < num_classes)
    flat = target[valid].long() * num_classes + pred[valid].long()
    return torch.bincount(flat, minlength=num_classes * num_classes).view(num_classes, num_classes)


def miou_from_confusion(cm: torch.Tensor | np.ndarray) -> tuple[float, list[float | None]]:
    """(mIoU %, IoU % per class); a class with TP + FP + FN = 0 gets None and is not averaged."""
    cm = torch.as_tensor(cm, dtype=torch.float64).cpu()
    tp = cm.diag()
    union = cm.sum(0) + cm.sum(1) - tp  # TP + FP + FN
    present = union > 0
    iou = torch.where(present, tp / union.clamp(min=1), torch.full_like(tp, float("nan"))) * 100
    miou = float(iou[present].mean()) if bool(present.any()) else float("nan")
    return miou, [float(v) if not math.isnan(v) else None for v in iou.tolist()]


# --- batching --------------------------------------------------------------------------------------

def _index_list(indices: Sequence[int] | np.ndarray | torch.Tensor | None, n_total: int) -> np.ndarray:
    if indices is None:
        return np.arange(n_total, dtype=np.int64)
    idx = np.asarray(indices.cpu() if isinstance(indices, torch.Tensor) else indices)
    if idx.dtype == bool:
        idx = np.flatnonzero(idx)
    idx = idx.astype(np.int64).ravel()
    if idx.size and (idx.min() < 0 or idx.max() >= n_total):
        raise ValueError(f"indices out of range for a dataset of {n_total} samples")
    return idx


def epoch_batches(n: int, batch_size: int, generator: torch.Generator) -> list[torch.Tensor]:
    """Shuffled batches of positions 0..n-1; a trailing batch of one is dropped if others exist."""
    batches = list(torch.randperm(n, generator=generator).split(batch_size))
    if len(batches) > 1 and len(batches[-1]) == 1:
        batches.pop()
    return batches


def _collate(dataset: Any):
    if getattr(dataset, "task", None) == "segmentation":
        from al.data.transforms import collate_segmentation

        return functools.partial(collate_segmentation, ignore_index=dataset.ignore_index)
    return None  # torch's default collate


def iterate_batches(dataset: Any, indices: Sequence[int] | np.ndarray | None, batches: Sequence[torch.Tensor] | None = None,
                    *, batch_size: int = 16, device: torch.device | str = "cpu", num_workers: int = 0,
                    generator: torch.Generator | None = None) -> Iterator[tuple[torch.Tensor, torch.Tensor, np.ndarray]]:
    """Yield `(images, targets, dataset_indices)` on `device`.

    `batches` are lists of positions into `indices` (default: consecutive chunks of
    `batch_size`, in order). Uses `dataset.tensors()` when present, else a DataLoader.
    """
    idx = _index_list(indices, len(dataset))
    if batches is None:
        batches = list(torch.arange(len(idx)).split(batch_size))
    device = torch.device(device)
    tensors = getattr(dataset, "tensors", None)
    if callable(tensors):
        images, targets = tensors()
        sel = torch.from_numpy(idx)
        if images.device != device:  # move only the subset, once
            images, targets = images[sel].to(device), targets[sel].to(device)
            sel = torch.arange(len(idx))
        sel = sel.to(device)
        for b in batches:
            rows = sel[b.to(device)]
            yield images.index_select(0, rows), targets.index_select(0, rows), idx[b.numpy()]
        return
    from torch.utils.data import DataLoader, Subset

    loader = DataLoader(Subset(dataset, idx.tolist()), batch_sampler=[b.tolist() for b in batches],
                        num_workers=num_workers, collate_fn=_collate(dataset), generator=generator,
                        pin_memory=device.type == "cuda")
    for b, (x, y) in zip(batches, loader, strict=True):
        yield (x.to(device, non_blocking=True), torch.as_tensor(y).to(device, non_blocking=True),
               idx[b.numpy()])


@contextlib.contextmanager
def _norm_eval(modules: Iterable[nn.Module], active: bool) -> Iterator[None]:
    """Temporarily put batch-norm layers in eval mode (a batch of one sample)."""
    norms = [m for root in modules for m in root.modules()
             if isinstance(m, nn.modules.batchnorm._BatchNorm) and m.training] if active else []
    for m in norms:
        m.eval()
    try:
        yield
    finally:
        for m in norms:
            m.train()


def _autocast(enabled: bool):
    return torch.autocast("cuda", dtype=torch.float16) if enabled else contextlib.nullcontext()


@torch.no_grad()
def recompute_bn_stats(model: nn.Module, dataset: Any, indices: Sequence[int] | np.ndarray, *, batch_size: int,
                       device: torch.device | str = "cpu", aux: nn.Module | None = None, channels_last: bool = False,
                       amp: bool = False, num_workers: int = 0, generator: torch.Generator | None = None) -> int:
    """PreciseBN: reset every BatchNorm of `model` (and `aux`) and re-estimate its running
    statistics as the average over batches of `dataset[indices]` with the current weights.

    Batches are consecutive chunks of `batch_size`; a trailing batch of one is skipped. Returns
    the number of batches used (0 when there is no BatchNorm or no batch of two or more).
    """
    def bn_layers(root: nn.Module) -> list[nn.Module]:
        return [m for m in root.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm) and m.track_running_stats]

    if aux is not None and not bn_layers(aux):
        aux = None  # nothing to recompute there: skip its forward
    modules = [model] + ([aux] if aux is not None else [])
    bns = [m for root in modules for m in bn_layers(root)]
    idx = _index_list(indices, len(dataset))
    batches = [b for b in torch.arange(len(idx)).split(batch_size) if len(b) > 1]
    if not bns or not batches:
        return 0
    momenta = [m.momentum for m in bns]
    modes = [(m, m.training) for root in modules for m in root.modules()]
    for root in modules:
        root.eval()  # dropout etc. off ...
    for m in bns:
        m.reset_running_stats()
        m.momentum = None  # cumulative average over the batches
        m.train()  # ... but BatchNorm normalises with batch statistics and updates its running ones
    try:
        for x, _, _ in iterate_batches(dataset, idx, batches, device=device, num_workers=num_workers,
                                       generator=generator):
            if channels_last:
                x = x.contiguous(memory_format=torch.channels_last)
            with _autocast(amp):
                if aux is None:
                    model(x)
                else:
                    aux(model(x, return_features=True)[1])
    finally:
        for m, momentum in zip(bns, momenta, strict=True):
            m.momentum = momentum
        for m, training in modes:
            m.training = training
    return len(batches)


# --- train / evaluate ------------------------------------------------------------------------------

def train(model: nn.Module, dataset: Any, indices: Sequence[int] | np.ndarray, cfg: TrainConfig, *,
          device: torch.device | str = "cpu", seed: int = 0, aux: nn.Module | None = None,
          show_progress: bool = True) -> dict[str, Any]:
    """Train `model` (and, jointly, the LLAL module `aux`) on `dataset[indices]`.

    With `aux`: the model runs with `return_features=True`; the loss is task loss +
    `aux.weight * aux.loss(aux(feats), per_sample_loss.detach())`, and `aux` sees detached
    features in the epochs where `stop_gradient(epoch, epochs, aux.stop_grad_fraction)` (the LLAL
    stop-gradient: after epoch 120 of 200, as the reference).
    Leaves `model` (and `aux`) in eval mode on `device`. Returns a summary dict: `epochs`,
    `iterations`, `batch_size`, `samples`, `loss` (last epoch's mean task loss),
    `loss_per_epoch`, `aux_loss_per_epoch` (with aux), `lr_final`, `seconds`, `samples_per_s`.
    """
    idx = _index_list(indices, len(dataset))
    n = len(idx)
    if n == 0:
        raise UserError("train: no labelled samples to train on; label some first (initial_fraction > 0)")
    device = torch.device(device)
    cuda = device.type == "cuda"
    use_amp, channels_last = cfg.amp and cuda, cfg.channels_last and cuda
    torch.manual_seed(seed)
    generator = torch.Generator().manual_seed(seed)  # shuffling
    loader_generator = torch.Generator().manual_seed(seed + 1)  # DataLoader worker seeds (path-independent shuffles)

    modules = [model] + ([aux] if aux is not None else [])
    for m in modules:
        m.to(device)
        if channels_last:
            m.to(memory_format=torch.channels_last)
        m.train()
    optimizer = make_optimizer(modules, cfg)
    scaler = torch.amp.GradScaler("cuda", enabled=use_amp)
    ignore = int(dataset.ignore_index)
    batch_size = min(cfg.batch_size, n)
    per_epoch = len(epoch_batches(n, batch_size, torch.Generator().manual_seed(0)))
    total = cfg.epochs * per_epoch
    aux_weight = float(getattr(aux, "weight", 1.0))

    from al.strategies.learning_loss import stop_gradient
    from hwbench.console import progress

    history: list[float] = []
    aux_history: list[float] = []
    it, lr = 0, cfg.lr
    start = time.perf_counter()
    with progress(disable=None if show_progress else True) as bar:
        t_epochs = bar.add_task("train epochs", total=cfg.epochs)
        t_batches = bar.add_task("batches", total=per_epoch)
        for epoch in range(cfg.epochs):
            detach = aux is not None and stop_gradient(epoch, cfg.epochs, aux.stop_grad_fraction)
            batches = epoch_batches(n, batch_size, generator)
            loss_sum = torch.zeros((), device=device)
            aux_sum = torch.zeros((), device=device)
            bar.reset(t_batches, total=len(batches))
            for x, y, _ in iterate_batches(dataset, idx, batches, device=device, num_workers=cfg.num_workers,
                                           generator=loader_generator):
                lr = poly_lr(cfg.lr, it, total, cfg.poly_power)
                for group in optimizer.param_groups:
                    group["lr"] = lr
                if channels_last:
                    x = x.contiguous(memory_format=torch.channels_last)
                with _norm_eval(modules, active=x.shape[0] == 1), _autocast(use_amp):
                    if aux is None:
                        logits, feats = model(x), None
                    else:
                        logits, feats = model(x, return_features=True)
                    task_loss, sample_loss = _losses(logits, y, ignore)
                    loss = task_loss
                    if aux is not None:
                        aux_in = {k: v.detach() for k, v in feats.items()} if detach else feats
                        aux_loss = aux.loss(aux(aux_in).float(), sample_loss.detach())
                        loss = loss + aux_weight * aux_loss
                        aux_sum += aux_loss.detach()
                optimizer.zero_grad(set_to_none=True)
                scaler.scale(loss).backward()
                scaler.step(optimizer)
                scaler.update()
                loss_sum += task_loss.detach()
                it += 1
                bar.advance(t_batches)
            epoch_loss = float(loss_sum) / len(batches)
            if not math.isfinite(epoch_loss):
                raise UserError(f"train: loss became {epoch_loss} in epoch {epoch + 1}; lower [train] lr "
                                f"(now {cfg.lr})")
            history.append(epoch_loss)
            if aux is not None:
                aux_history.append(float(aux_sum) / len(batches))
            logger.info("epoch %d/%d loss %.4f lr %.3g", epoch + 1, cfg.epochs, epoch_loss, lr)
            bar.advance(t_epochs)
        if cfg.precise_bn:
            recompute_bn_stats(model, dataset, idx, batch_size=batch_size, device=device, aux=aux,
                               channels_last=channels_last, amp=use_amp, num_workers=cfg.num_workers,
                               generator=loader_generator)
    seconds = time.perf_counter() - start
    for m in modules:
        m.eval()
    out: dict[str, Any] = {"epochs": cfg.epochs, "iterations": it, "batch_size": batch_size, "samples": n,
                           "loss": history[-1], "loss_per_epoch": history, "lr_final": lr,
                           "seconds": seconds, "samples_per_s": it * batch_size / max(seconds, 1e-9)}
    if aux is not None:
        out["aux_loss_per_epoch"] = aux_history
    return out


@torch.no_grad()
def evaluate(model: nn.Module, dataset: Any, indices: Sequence[int] | np.ndarray | None = None, *,
             device: torch.device | str = "cpu", batch_size: int = 16, amp: bool = True,
             num_workers: int = 0, show_progress: bool = True) -> dict[str, Any]:
    """Evaluate on `dataset[indices]` (all by default), model in eval mode.

    Segmentation: `miou` (%), `pixel_acc` (%), `iou` (per class %, None when absent from
    ground truth and predictions), `loss` (mean CE over valid pixels), `n`.
    Classification: `top1` (%), `loss`, `n`.
    """
    idx = _index_list(indices, len(dataset))
    if len(idx) == 0:
        raise UserError("evaluate: no samples to evaluate")
    device = torch.device(device)
    use_amp = amp and device.type == "cuda"
    model.to(device).eval()
    k, ignore = int(dataset.num_classes), int(dataset.ignore_index)
    segmentation = dataset.task == "segmentation"
    cm = torch.zeros(k, k, dtype=torch.int64, device=device)
    correct = torch.zeros((), dtype=torch.int64, device=device)
    ce_sum = torch.zeros((), dtype=torch.float64, device=device)
    valid_sum = torch.zeros((), dtype=torch.int64, device=device)

    from hwbench.console import progress

    with progress(disable=None if show_progress else True) as bar:
        task = bar.add_task("evaluate", total=math.ceil(len(idx) / batch_size))
        for x, y, _ in iterate_batches(dataset, idx, batch_size=batch_size, device=device, num_workers=num_workers):
            with _autocast(use_amp):
                logits = model(x)
            logits = _match_size(logits, y).float()
            ce, valid = _pixel_ce(logits, y, ignore)
            ce_sum += ce.sum().double()
            valid_sum += valid.sum()
            pred = logits.argmax(1)
            if segmentation:
                cm += confusion_matrix(pred, y, k, ignore)
            else:
                correct += (pred == y).sum()
            bar.advance(task)
    loss = float(ce_sum) / max(int(valid_sum), 1)
    if not segmentation:
        return {"top1": 100.0 * int(correct) / len(idx), "loss": loss, "n": len(idx)}
    miou, iou = miou_from_confusion(cm)
    total = int(cm.sum())
    return {"miou": miou, "pixel_acc": 100.0 * int(cm.diag().sum()) / max(total, 1), "iou": iou,
            "loss": loss, "n": len(idx)}


def config_dict(cfg: TrainConfig) -> dict[str, Any]:
    """The config as a plain dict (for run directories and reports)."""
    return dataclasses.asdict(cfg)
