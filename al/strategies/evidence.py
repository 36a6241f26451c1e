"""Evidence collection: one forward pass of the surrogate over part of the pool, keeping only
what the strategy needs (`Strategy.needs`).

Per batch, under `torch.no_grad()`:
- `image_score`: `score_fn(logits, valid)` reduces the pixel map to one number per image on the
  fly — the pool's pixel probabilities are never stored;
- `embedding`: `feats[model.embedding_tap]` globally average pooled -> (N, D) float32;
- `predicted_loss`: `aux(feats)` (the LLAL `LossPredictionModule`);
- `true_loss`: `al.train.per_sample_loss(logits, target, ignore_index)` (needs labels).
Features are requested (`return_features=True`) only for `embedding` and `predicted_loss`.

Images of different sizes (ADE20K) batch without padding: a loaded batch is split into groups of
equal size and each group is one forward pass, so every score equals the batch-size-1 score
(padding would change entropy, pooled features and predicted losses). `score_size=(H, W)` resizes
every scored image (bilinear; labels nearest) before the forward pass, so whole batches stack;
it affects scoring only — evaluation (`al.train.evaluate`) keeps the validation set's resolution.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable, Iterable, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader, Dataset, Subset

from al.strategies.base import EVIDENCE_KINDS, Evidence, Strategy
from al.strategies.scoring import ImageScorer
from hwbench.console import track
from hwbench.errors import UserError

log = logging.getLogger(__name__)

ScoreFn = Callable[[torch.Tensor, "torch.Tensor | None"], torch.Tensor]
FEATURE_KINDS = frozenset({"embedding", "predicted_loss"})
LOGIT_KINDS = frozenset({"image_score", "true_loss"})


def _pool(f: torch.Tensor) -> torch.Tensor:
    """Global average pool: (N, C, h, w) -> (N, C); (N, C) unchanged."""
    return f.flatten(2).mean(2) if f.dim() > 2 else f


def collect(model: nn.Module, dataset: Dataset, pool_indices: Sequence[int] | np.ndarray,
            needs: Iterable[str], *, device: str | torch.device, batch_size: int,
            aux: nn.Module | None = None, score_fn: ScoreFn | None = None, num_workers: int = 0,
            amp: bool = False, show_progress: bool = True,
            score_size: Sequence[int] | None = None) -> Evidence:
    """Evidence for `pool_indices` of `dataset` (arrays span all `len(dataset)` images; NaN elsewhere).

    `score_fn` defaults to mean pixel entropy (`ImageScorer()`); a scorer with
    `exclude_ignored=True` receives the labels' valid mask (target != dataset.ignore_index).
    `amp` runs the forward pass under CUDA autocast (scores are computed in float32 regardless).
    Models and `aux` are put in eval mode and restored afterwards. `score_size` (H, W) resizes the
    scored images (see module docstring); None scores them at their own size.
    """
    needs = frozenset(needs)
    idx = check_request(dataset, pool_indices, needs, batch_size=batch_size, aux=aux)
    rows = collect_rows(model, dataset, idx, needs, device=device, batch_size=batch_size, aux=aux,
                        score_fn=score_fn, num_workers=num_workers, amp=amp, show_progress=show_progress,
                        score_size=score_size)
    return expand(rows, idx, needs, len(dataset))


def check_request(dataset: Dataset, pool_indices: Sequence[int] | np.ndarray, needs: frozenset[str], *,
                  batch_size: int, aux: nn.Module | None) -> np.ndarray:
    """The input checks of `collect`; returns the indices as a flat int64 array."""
    if not needs <= EVIDENCE_KINDS:
        raise UserError(f"unknown evidence {sorted(needs - EVIDENCE_KINDS)}; known: {', '.join(sorted(EVIDENCE_KINDS))}")
    if "predicted_loss" in needs and aux is None:
        raise UserError("evidence 'predicted_loss' needs the LLAL module: pass aux=LossPredictionModule(...)")
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise UserError(f"batch_size must be a positive integer, got {batch_size!r}")
    n = len(dataset)
    idx = np.asarray(pool_indices, dtype=np.int64).reshape(-1)
    if idx.size and (idx.min() < 0 or idx.max() >= n):
        raise UserError(f"pool indices must lie in [0, {n}); got range [{idx.min()}, {idx.max()}]")
    return idx


def expand(rows: dict[str, np.ndarray], idx: np.ndarray, needs: frozenset[str], n: int) -> Evidence:
    """Compact evidence (row j = image idx[j]) as `Evidence` over all n images, NaN elsewhere."""
    store: dict[str, np.ndarray] = {}
    dim = None
    for k, v in rows.items():
        if k == "embedding":
            dim = v.shape[1]
            full = np.full((n, dim), np.nan, dtype=np.float32)
        else:
            full = np.full(n, np.nan, dtype=np.float64)
        full[idx] = v
        store[k] = full
    return _evidence(needs, n, dim=dim, store=store)


def collect_rows(model: nn.Module, dataset: Dataset, idx: np.ndarray, needs: frozenset[str], *,
                 device: str | torch.device, batch_size: int, aux: nn.Module | None = None,
                 score_fn: ScoreFn | None = None, num_workers: int = 0, amp: bool = False,
                 show_progress: bool = True, score_size: Sequence[int] | None = None) -> dict[str, np.ndarray]:
    """The forward passes of `collect` over `dataset[idx]`: kind -> array with one row per entry of
    idx ((m,) float64 scalars, (m, D) float32 embedding); memory proportional to len(idx)."""
    size = check_score_size(score_size)
    if not needs or idx.size == 0:
        return {}
    score_fn = score_fn if score_fn is not None else ImageScorer()
    use_feats = bool(needs & FEATURE_KINDS)
    use_valid = "image_score" in needs and bool(getattr(score_fn, "exclude_ignored", False))
    ignore_index = getattr(dataset, "ignore_index", None)
    if ("true_loss" in needs or use_valid) and ignore_index is None:
        raise UserError("dataset has no ignore_index; it is needed for true loss / ignore masks")
    per_sample_loss = _per_sample_loss() if "true_loss" in needs else None
    device = torch.device(device)
    m = idx.size
    scalars = {k: np.full(m, np.nan, dtype=np.float64) for k in needs if k != "embedding"}
    emb: dict[str, np.ndarray] = {}     # "embedding" -> (m, D), allocated at the first batch
    loader = DataLoader(Subset(dataset, idx.tolist()), batch_size=batch_size, shuffle=False,
                        num_workers=num_workers, pin_memory=device.type == "cuda",
                        collate_fn=functools.partial(collate_groups, size=size))
    modules = [mod for mod in (model, aux) if mod is not None]
    was_training = [mod.training for mod in modules]
    for mod in modules:
        mod.eval()
    pos = 0
    batches = track(loader, "collecting evidence", total=len(loader)) if show_progress else loader
    try:
        with torch.no_grad(), torch.autocast(device.type, enabled=amp and device.type == "cuda"):
            for groups in batches:
                for pos_in_batch, images, targets in groups:
                    _forward_group(model, aux, images, targets, pos + pos_in_batch, needs, device, score_fn,
                                   use_feats, use_valid, ignore_index, per_sample_loss, scalars, emb, m)
                pos += sum(len(g[0]) for g in groups)
    finally:
        for mod, t in zip(modules, was_training, strict=True):
            mod.train(t)
    log.debug("collected %s for %d images", sorted(needs), m)
    return {**scalars, **emb}


def _forward_group(model: nn.Module, aux: nn.Module | None, images: torch.Tensor, targets: torch.Tensor,
                   rows: np.ndarray, needs: frozenset[str], device: torch.device, score_fn: ScoreFn,
                   use_feats: bool, use_valid: bool, ignore_index: int | None, per_sample_loss: Callable | None,
                   scalars: dict[str, np.ndarray], emb: dict[str, np.ndarray], n: int) -> None:
    """One forward pass over a group of equal-size images; writes the evidence rows in place."""
    x = images.to(device, non_blocking=True)                                   # (B, 3, H, W)
    if use_feats:
        logits, feats = model(x, return_features=True)
    else:
        logits, feats = model(x), None
    if needs & LOGIT_KINDS:
        logits = logits.float()                                                # (B, K[, H, W])
        if "true_loss" in needs or use_valid:
            targets = targets.to(device, non_blocking=True)
    if "image_score" in needs:
        valid = (targets != ignore_index) if use_valid and logits.dim() == 4 else None
        scalars["image_score"][rows] = score_fn(logits, valid).float().cpu().numpy()
    if "true_loss" in needs:
        scalars["true_loss"][rows] = per_sample_loss(logits, targets, ignore_index).float().cpu().numpy()
    if "predicted_loss" in needs:
        scalars["predicted_loss"][rows] = aux(feats).float().reshape(-1).cpu().numpy()
    if "embedding" in needs:
        e = _pool(feats[model.embedding_tap]).float().cpu().numpy()           # (B, D)
        if "embedding" not in emb:
            emb["embedding"] = np.full((n, e.shape[1]), np.nan, np.float32)
        emb["embedding"][rows] = e


def check_score_size(size: Sequence[int] | None) -> tuple[int, int] | None:
    """`score_size` as (H, W) or None; anything but two positive integers is a `UserError`."""
    if size is None:
        return None
    vals = list(size) if isinstance(size, (list, tuple)) else [size]
    if len(vals) != 2 or any(isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 1 for v in vals):
        raise UserError(f"score_size must be [height, width] in pixels (two positive integers), got {size!r}")
    return int(vals[0]), int(vals[1])


def collate_groups(batch: Sequence[tuple[torch.Tensor, object]], size: tuple[int, int] | None = None
                   ) -> list[tuple[np.ndarray, torch.Tensor, torch.Tensor]]:
    """Samples -> `[(positions in the batch, images (B, 3, H, W), targets), ...]`, one group per image size.

    With `size`, images are resized bilinearly and segmentation labels by nearest neighbour first,
    so the whole batch is one group. Groups keep the batch order of their first sample.
    """
    groups: dict[tuple[int, ...], list[int]] = {}
    items = []
    for i, (x, y) in enumerate(batch):
        y = torch.as_tensor(y)
        if size is not None and tuple(x.shape[-2:]) != size:
            x = F.interpolate(x[None].float(), size=size, mode="bilinear", align_corners=False)[0]
            if y.dim() == 2:
                y = F.interpolate(y[None, None].float(), size=size, mode="nearest")[0, 0].long()
        items.append((x, y))
        groups.setdefault(tuple(x.shape), []).append(i)
    return [(np.asarray(pos, dtype=np.int64), torch.stack([items[i][0] for i in pos]),
             torch.stack([items[i][1] for i in pos])) for pos in groups.values()]


def collect_for(strategy: Strategy, model: nn.Module, dataset: Dataset, labelled: np.ndarray,
                rng: np.random.Generator, *, device: str | torch.device, batch_size: int,
                aux: nn.Module | None = None, **kw: object) -> Evidence:
    """`collect` exactly what `strategy` needs, on `strategy.candidates(labelled, rng)`."""
    return collect(model, dataset, strategy.candidates(labelled, rng), strategy.needs, device=device,
                   batch_size=batch_size, aux=aux, score_fn=strategy.score_fn, **kw)


def _evidence(needs: frozenset[str], n: int, dim: int | None, store: dict) -> Evidence:
    out = {}
    for k in needs:
        v = store.get(k)
        if v is None:                       # requested but nothing scored: all NaN
            v = np.full((n, dim or 0), np.nan, np.float32) if k == "embedding" else np.full(n, np.nan)
        out[k] = v
    return Evidence(**out)


def _per_sample_loss() -> Callable[[torch.Tensor, torch.Tensor, int], torch.Tensor]:
    try:
        from al.train import per_sample_loss
    except ImportError as e:  # pragma: no cover - al.train is part of the package
        raise RuntimeError("al.train.per_sample_loss is missing; it defines the per-sample loss") from e
    return per_sample_loss
