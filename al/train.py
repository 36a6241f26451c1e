"""Training and evaluation of the task models (and the LLAL loss module) for the AL loop, in one
process or as one rank of a `torchrun` launch.

Recipe (the paper's, §4 "Training Parameters"): SGD, momentum 0.9, weight decay 4e-4 on every
parameter except normalisation (batch-norm) parameters and biases; poly learning rate per
iteration, `lr * (1 - it / total) ** 0.9`, optionally after a linear warm-up (`warmup_steps`);
`min_steps` counts epochs in steps, so a small labelled set still gets enough updates; cross-entropy with the ignore label (`al.losses`), optionally label-smoothed (`label_smoothing`).
AMP (fp16 autocast + GradScaler) and channels_last are used on CUDA only; on CPU the training steps run
in bf16 autocast with `bf16` (resolved from "auto" by the CPU, `al.precision`), else plain fp32.

Batching (`al.batching`). Each epoch permutes the labelled set with a generator seeded from
(seed, epoch) and splits it into global batches of `batch_size` (capped at the set size); a
trailing batch of one sample is dropped when other batches exist (BatchNorm cannot normalise one
sample after global pooling). A labelled set of exactly one sample trains with the normalisation
layers in eval mode (running statistics). Datasets that offer `tensors()` (the embedded ones) are
batched straight from their cached tensors; others go through a `DataLoader`.

Common random numbers — the contract (`al.crn`). Every random draw of `train` is keyed, never
sequential: epoch e's batch order by (seed, e); sample i's augmentation in epoch e by (seed, e, i);
its dropout mask at layer l, call c by (seed, e, i, l, c) (dropout layers are swapped for
`al.crn.SampleDropout` while training). The keys never include the rank, the world size,
`num_workers`, the other samples of a batch or anything drawn earlier. Consequences:
  * same model init, data, labelled indices, config and seed -> bit-identical weights on CPU (same
    torch thread count, same world size); in particular two experiment cells of one seed that
    train on the same labelled set produce the same model, and cells that differ only in the
    labelled set see the same augmentation and dropout for every sample they share;
  * `num_workers` no longer changes the crops.
The caller picks `seed` (the AL loop derives one per (run seed, cycle)).

Distributed (WORLD_SIZE > 1, after `al.distributed.setup`). The model (+ LLAL module) runs in
DistributedDataParallel (NCCL on CUDA, gloo on CPU). The global batch size is the config's
`batch_size` whatever the world size: each global batch is split into W contiguous parts, rank r
takes part r (per-rank batch = batch_size / W, the first batch_size % W ranks one sample more;
a global batch of fewer than 2W samples is dropped, so every rank has two). Each rank's loss is scaled so that DDP's
gradient average equals the single-process gradient of the global batch (`al.ddp`), hence the
learning rate is the config's `lr`, unscaled, and the schedule has the same number of iterations
as one process. `sync_bn` (default: on for segmentation, off for classification) swaps BatchNorm
for SyncBatchNorm (`al.syncbn`; a CPU implementation for gloo), so normalisation statistics span
the global batch too: training then computes the single-process maths, up to the order of
floating-point sums (all-reduces), which is why metrics agree closely but not bit for bit with
one process. On CPU the same float64-statistics BatchNorm also runs in one process, so 1 and W
processes normalise identically; what remains is the order of the gradient sums (~1e-7), which
tiny-batch training amplifies (as it amplifies a change of torch's thread count). Without `sync_bn` each rank normalises over its own part (plain DDP) and the running
statistics are averaged over ranks at the end. `train` writes no files.

PreciseBN. With `precise_bn` (default), training ends with one no-grad pass over the labelled
set in train mode that recomputes every BatchNorm's running mean/var as a plain average over
the batches, with the final weights (Wu & Johnson, "Rethinking 'Batch' in BatchNorm", 2021;
fvcore's `update_bn_stats`). Short AL trainings otherwise leave the running statistics lagging
the weights, badly so for layers with momentum 0.01 (MobileNetV3), and eval-mode accuracy
drops far below train-mode accuracy. Distributed, its batches are split over the ranks like
training batches.

Weight averaging. With `ema_decay` > 0 an exponential moving average of the parameters is kept
after every step (`al.ema`, with a warm-up of the decay) and becomes the returned weights; PreciseBN
then recomputes the BatchNorm statistics for them (so `ema_decay` needs `precise_bn`).

Evaluation is sharded over the ranks too (contiguous shards; confusion matrices and loss sums
all-reduced), so every rank returns the same metrics.
"""

from __future__ import annotations

import contextlib
import logging
import math
import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

from al import distributed
from al.batching import epoch_batches, index_list, iterate_batches, plan_epoch, rank_part
from al.crn import sample_dropout, stream_seed
from al.ddp import TrainStep, average_buffers, gather_rows, wrap
from al.ema import WeightEMA
from al.losses import confusion_matrix, match_size, miou_from_confusion, per_sample_loss, pixel_ce
from al.optim import make_optimizer, param_groups, poly_lr, scheduled_lr
from al.precision import Bf16, autocast, resolve_bf16
from hwbench.errors import UserError

logger = logging.getLogger(__name__)

__all__ = ["TrainConfig", "train", "evaluate", "recompute_bn_stats", "poly_lr", "scheduled_lr", "param_groups", "make_optimizer",
           "per_sample_loss", "confusion_matrix", "miou_from_confusion", "epoch_batches", "iterate_batches",
           "use_sync_bn"]


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
    warmup_steps: int = 0    # linear learning-rate warm-up over the first N steps, then poly
    min_steps: int = 0       # train at least N steps: epochs rise for small labelled sets (0: `epochs` as given)
    sync_bn: bool | None = None  # distributed: SyncBatchNorm (None: on for segmentation, off otherwise)
    ema_decay: float = 0.0   # > 0: the returned weights are an EMA of the trained ones (al.ema); needs precise_bn
    label_smoothing: float = 0.0  # training loss only: target (1 - e) on the label + e / classes on each class
    fused_sgd: bool = False  # torch's fused SGD kernel: the same update in one pass (Res-18 on CPU: ~2.5x faster step
                             # of the optimizer), equal to the default loop up to float rounding (~1e-7 per step)
    bf16: Bf16 = False       # CPU: training steps in bf16 autocast; "auto": where the CPU has native bf16 (al.precision)

    def __post_init__(self) -> None:
        checks = {"epochs": self.epochs >= 1, "batch_size": self.batch_size >= 1, "lr": self.lr > 0,
                  "momentum": 0 <= self.momentum < 1, "weight_decay": self.weight_decay >= 0,
                  "poly_power": self.poly_power >= 0, "num_workers": self.num_workers >= 0,
                  "warmup_steps": self.warmup_steps >= 0, "min_steps": self.min_steps >= 0,
                  "ema_decay": 0 <= self.ema_decay < 1, "label_smoothing": 0 <= self.label_smoothing < 1}
        bad = [k for k, ok in checks.items() if not ok]
        if bad:
            k = bad[0]
            raise UserError(f"train: {k} = {getattr(self, k)!r} is out of range; "
                            "need epochs >= 1, batch_size >= 1, lr > 0, 0 <= momentum < 1, "
                            "weight_decay >= 0, poly_power >= 0, num_workers >= 0, warmup_steps >= 0, "
                            "min_steps >= 0, 0 <= ema_decay < 1, 0 <= label_smoothing < 1")
        if self.ema_decay and not self.precise_bn:
            raise UserError("train: ema_decay needs precise_bn = true (the averaged weights need their own "
                            "BatchNorm statistics)")

    def epochs_for(self, steps_per_epoch: int) -> int:
        """Epochs to run: `epochs`, raised to reach `min_steps` steps (epochs counted in steps)."""
        return max(self.epochs, math.ceil(self.min_steps / max(steps_per_epoch, 1)))


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


def use_sync_bn(cfg: TrainConfig, task: str | None) -> bool:
    """`cfg.sync_bn`, by default on for segmentation."""
    return cfg.sync_bn if cfg.sync_bn is not None else task == "segmentation"


def _bn_layers(root: nn.Module) -> list[nn.modules.batchnorm._BatchNorm]:
    return [m for m in root.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm) and m.track_running_stats]


@torch.no_grad()
def recompute_bn_stats(model: nn.Module, dataset: Any, indices: Sequence[int] | np.ndarray, *, batch_size: int,
                       device: torch.device | str = "cpu", aux: nn.Module | None = None, channels_last: bool = False,
                       amp: bool = False, num_workers: int = 0, generator: torch.Generator | None = None,
                       augment_key: tuple[int, int] | None = None, synced: bool = False) -> int:
    """PreciseBN: reset every BatchNorm of `model` (and `aux`) and re-estimate its running
    statistics as the average over batches of `dataset[indices]` with the current weights.

    Batches are consecutive chunks of `batch_size`; a trailing batch of one is skipped. Returns
    the number of batches used (0 when there is no BatchNorm or no batch of two or more).
    Distributed: every chunk of at least 2W samples is split over the ranks; with `synced`
    (SyncBatchNorm swapped in) the statistics are those of the whole chunk, else each rank's are
    averaged over ranks at the end.
    """
    if aux is not None and not _bn_layers(aux):
        aux = None  # nothing to recompute there: skip its forward
    modules = [model] + ([aux] if aux is not None else [])
    bns = [m for root in modules for m in _bn_layers(root)]
    idx = index_list(indices, len(dataset))
    w, r = distributed.world_size(), distributed.rank()
    least = 2 * w
    batches = [rank_part(b, r, w) for b in torch.arange(len(idx)).split(batch_size) if len(b) >= least]
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
                                       generator=generator, augment_key=augment_key):
            if channels_last:
                x = x.contiguous(memory_format=torch.channels_last)
            with autocast(torch.device(device), amp=amp):
                if aux is None:
                    model(x)
                else:
                    aux(model(x, return_features=True)[1])
    finally:
        for m, momentum in zip(bns, momenta, strict=True):
            m.momentum = momentum
        for m, training in modes:
            m.training = training
    if not synced:
        average_buffers(modules)
    return len(batches)


# --- train / evaluate ------------------------------------------------------------------------------

def train(model: nn.Module, dataset: Any, indices: Sequence[int] | np.ndarray, cfg: TrainConfig, *,
          device: torch.device | str = "cpu", seed: int = 0, aux: nn.Module | None = None,
          show_progress: bool = True) -> dict[str, Any]:
    """Train `model` (and, jointly, the LLAL module `aux`) on `dataset[indices]`.

    With `aux`: the model runs with `return_features=True`; the loss is task loss +
    `aux.weight * aux.loss(aux(feats), per_sample_loss.detach())`, and `aux` sees detached
    features in the epochs where `stop_gradient(epoch, epochs, aux.stop_grad_fraction)` (the LLAL
    stop-gradient: after epoch 120 of 200, as the reference). Under torchrun every rank calls it with the same arguments (see the module docstring).
    Leaves `model` (and `aux`) in eval mode on `device`. Returns a summary dict: `epochs`,
    `iterations`, `batch_size` (global), `samples`, `loss` (last epoch's mean task loss),
    `loss_per_epoch`, `aux_loss_per_epoch` (with aux), `lr_final`, `world_size`, `sync_bn`,
    `seconds`, `samples_per_s`.
    """
    idx = index_list(indices, len(dataset))
    n = len(idx)
    if n == 0:
        raise UserError("train: no labelled samples to train on; label some first (initial_fraction > 0)")
    w, r = distributed.world_size(), distributed.rank()
    if w > 1 and min(n, cfg.batch_size) < 2 * w:
        raise UserError(f"train: global batches of {min(n, cfg.batch_size)} cannot give each of {w} processes "
                        f"two samples; use --nproc_per_node <= {min(n, cfg.batch_size) // 2} or a larger "
                        "[train] batch_size")
    device = torch.device(device)
    cuda = device.type == "cuda"
    use_amp, channels_last, bf16 = cfg.amp and cuda, cfg.channels_last and cuda, resolve_bf16(cfg.bf16) and not cuda
    sync = use_sync_bn(cfg, getattr(dataset, "task", None)) and (w > 1 or not cuda)  # CPU: in one process too
    torch.manual_seed(seed if r == 0 else stream_seed(seed, "rank", r))  # anything outside al.crn's keys
    loader_generator = torch.Generator().manual_seed(seed + 1)  # DataLoader worker seeds

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
    per_epoch = len(plan_epoch(n, batch_size, seed, 0, w))
    epochs = cfg.epochs_for(per_epoch)
    total = epochs * per_epoch
    aux_weight = float(getattr(aux, "weight", 1.0))

    from al.strategies.learning_loss import stop_gradient
    from al.syncbn import sync_batchnorm
    from hwbench.console import progress

    history: list[float] = []
    aux_history: list[float] = []
    it, lr = 0, cfg.lr
    start = time.perf_counter()
    with contextlib.ExitStack() as stack:
        bar = stack.enter_context(progress(disable=None if show_progress and distributed.is_main() else True))
        if sync:
            stack.enter_context(sync_batchnorm(modules, device))
        keys = stack.enter_context(sample_dropout(modules, seed))
        net = wrap(TrainStep(model, aux), device)
        ema = WeightEMA(modules, cfg.ema_decay) if cfg.ema_decay else None
        t_epochs = bar.add_task("train epochs", total=epochs)
        t_batches = bar.add_task("batches", total=per_epoch)
        for epoch in range(epochs):
            detach = aux is not None and stop_gradient(epoch, epochs, aux.stop_grad_fraction)
            batches = plan_epoch(n, batch_size, seed, epoch, w)
            parts = [rank_part(b, r, w) for b in batches]
            loss_sum = torch.zeros((), device=device)
            aux_sum = torch.zeros((), device=device)
            bar.reset(t_batches, total=len(batches))
            for b, (x, y, ids) in zip(batches, iterate_batches(dataset, idx, parts, device=device,
                                                                num_workers=cfg.num_workers, generator=loader_generator,
                                                                augment_key=(seed, epoch)), strict=True):
                lr = scheduled_lr(cfg, it, total)
                for group in optimizer.param_groups:
                    group["lr"] = lr
                if channels_last:
                    x = x.contiguous(memory_format=torch.channels_last)
                keys.set(epoch, ids)
                sizes = distributed.split_sizes(len(b), w)
                count = distributed.all_reduce_sum((y != ignore).sum()).clamp(min=1)  # valid elements, global batch
                with _norm_eval(modules, active=len(b) == 1), autocast(device, amp=use_amp, bf16=bf16):
                    logits, pred = net(x, detach)
                    ce, _ = pixel_ce(logits, y, ignore, cfg.label_smoothing)
                    task_part = ce.sum() / count                         # this rank's share of the batch loss
                    loss = task_part * w                                 # DDP averages over the w ranks
                    if aux is not None:
                        sample_loss = per_sample_loss(logits, y, ignore).detach()
                        aux_loss = aux.loss(gather_rows(pred, sizes), gather_rows(sample_loss, sizes))
                        loss = loss + aux_weight * aux_loss
                        aux_sum += aux_loss.detach()
                optimizer.zero_grad(set_to_none=True)
                scaler.scale(loss).backward()
                scaler.step(optimizer)
                scaler.update()
                if ema is not None:
                    ema.update()
                loss_sum += task_part.detach()
                it += 1
                bar.advance(t_batches)
            epoch_loss = float(distributed.all_reduce_sum(loss_sum)) / len(batches)
            if not math.isfinite(epoch_loss):
                raise UserError(f"train: loss became {epoch_loss} in epoch {epoch + 1}; lower [train] lr "
                                f"(now {cfg.lr})")
            history.append(epoch_loss)
            if aux is not None:
                aux_history.append(float(aux_sum) / len(batches))
            logger.info("epoch %d/%d loss %.4f lr %.3g", epoch + 1, epochs, epoch_loss, lr)
            bar.advance(t_epochs)
        if ema is not None:
            ema.copy_to()  # the averaged weights; PreciseBN below gives them their own BatchNorm statistics
        if cfg.precise_bn:
            recompute_bn_stats(model, dataset, idx, batch_size=batch_size, device=device, aux=aux,
                               channels_last=channels_last, amp=use_amp, num_workers=cfg.num_workers,
                               generator=loader_generator, augment_key=(seed, epochs), synced=sync)
        elif w > 1 and not sync:
            average_buffers(modules)
    seconds = time.perf_counter() - start
    for m in modules:
        m.eval()
    out: dict[str, Any] = {"epochs": epochs, "iterations": it, "batch_size": batch_size, "samples": n,
                           "loss": history[-1], "loss_per_epoch": history, "lr_final": lr, "world_size": w,
                           "sync_bn": sync, "bf16": bf16, "seconds": seconds,
                           "samples_per_s": it * batch_size / max(seconds, 1e-9)}
    if aux is not None:
        out["aux_loss_per_epoch"] = aux_history
    return out


@torch.no_grad()
def evaluate(model: nn.Module, dataset: Any, indices: Sequence[int] | np.ndarray | None = None, *,
             device: torch.device | str = "cpu", batch_size: int = 16, amp: bool = True,
             num_workers: int = 0, show_progress: bool = True) -> dict[str, Any]:
    """Evaluate on `dataset[indices]` (all by default), model in eval mode; distributed, each rank
    evaluates its contiguous shard and the sums are all-reduced (same result on every rank).

    Segmentation: `miou` (%), `pixel_acc` (%), `iou` (per class %, None when absent from
    ground truth and predictions), `loss` (mean CE over valid pixels), `n`.
    Classification: `top1` (%), `loss`, `n`.
    """
    idx = index_list(indices, len(dataset))
    if len(idx) == 0:
        raise UserError("evaluate: no samples to evaluate")
    lo, hi = distributed.shard_range(len(idx))
    mine = idx[lo:hi]
    device = torch.device(device)
    use_amp = amp and device.type == "cuda"
    model.to(device).eval()
    k, ignore = int(dataset.num_classes), int(dataset.ignore_index)
    segmentation = dataset.task == "segmentation"
    cm = torch.zeros(k, k, dtype=torch.int64, device=device)
    sums = torch.zeros(3, dtype=torch.float64, device=device)  # correct, CE sum, valid elements

    from hwbench.console import progress

    with progress(disable=None if show_progress and distributed.is_main() else True) as bar:
        task = bar.add_task("evaluate", total=math.ceil(len(mine) / batch_size))
        for x, y, _ in iterate_batches(dataset, mine, batch_size=batch_size, device=device, num_workers=num_workers):
            with autocast(device, amp=use_amp):
                logits = model(x)
            logits = match_size(logits, y).float()
            ce, valid = pixel_ce(logits, y, ignore)
            sums[1] += ce.sum().double()
            sums[2] += valid.sum()
            pred = logits.argmax(1)
            if segmentation:
                cm += confusion_matrix(pred, y, k, ignore)
            else:
                sums[0] += (pred == y).sum()
            bar.advance(task)
    if distributed.active():
        cm, sums = distributed.all_reduce_sum(cm), distributed.all_reduce_sum(sums)
    loss = float(sums[1]) / max(int(sums[2]), 1)
    if not segmentation:
        return {"top1": 100.0 * int(sums[0]) / len(idx), "loss": loss, "n": len(idx)}
    miou, iou = miou_from_confusion(cm)
    total = int(cm.sum())
    return {"miou": miou, "pixel_acc": 100.0 * int(cm.diag().sum()) / max(total, 1), "iou": iou,
            "loss": loss, "n": len(idx)}

