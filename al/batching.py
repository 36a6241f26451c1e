"""Batches for training and evaluation: the epoch plan (which samples form each global batch, and
which part of it each rank takes) and the iterator that loads them onto a device.

Plan of epoch e over n labelled samples, global batch size B, world size W:
  1. the permutation `randperm(n)` under `al.crn.order_generator(seed, e)` is split into chunks of B;
  2. a trailing chunk of one sample is dropped when other chunks exist (BatchNorm cannot normalise
     one sample after global pooling);
  3. with W > 1, a chunk of fewer than 2W samples is dropped too (every rank needs two samples:
     BatchNorm, synchronised or not, and the zoo's batch-of-one special cases stay out of play);
  4. rank r takes the r-th of W contiguous parts of each chunk (`al.distributed.split_sizes`: the
     first B % W ranks get one sample more).
The plan is the same on every rank, so concatenating the ranks' parts in rank order gives back the
single-process batch.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np
import torch

from al import distributed
from al.crn import SeededSamples, order_generator


def index_list(indices: Sequence[int] | np.ndarray | torch.Tensor | None, n_total: int) -> np.ndarray:
    """Indices (or a bool mask) as a flat int64 array checked against `n_total`; None -> all."""
    if indices is None:
        return np.arange(n_total, dtype=np.int64)
    idx = np.asarray(indices.cpu() if isinstance(indices, torch.Tensor) else indices)
    if idx.dtype == bool:
        idx = np.flatnonzero(idx)
    idx = idx.astype(np.int64).ravel()
    if idx.size and (idx.min() < 0 or idx.max() >= n_total):
        raise ValueError(f"indices out of range for a dataset of {n_total} samples")
    return idx


def epoch_batches(n: int, batch_size: int, generator: torch.Generator, world: int = 1) -> list[torch.Tensor]:
    """Shuffled global batches of positions 0..n-1 (steps 1-3 of the module docstring)."""
    batches = list(torch.randperm(n, generator=generator).split(batch_size))
    if len(batches) > 1 and len(batches[-1]) == 1:
        batches.pop()
    return [b for b in batches if world == 1 or len(b) >= 2 * world]


def plan_epoch(n: int, batch_size: int, seed: int, epoch: int, world: int = 1) -> list[torch.Tensor]:
    """Epoch `epoch`'s global batches: a function of (n, batch_size, seed, epoch, world) only."""
    return epoch_batches(n, batch_size, order_generator(seed, epoch), world)


def rank_part(batch: torch.Tensor, r: int, world: int) -> torch.Tensor:
    """Rank r's contiguous part of a global batch."""
    start, stop = distributed.shard_range(len(batch), r, world)
    return batch[start:stop]


def _collate(dataset: Any):
    if getattr(dataset, "task", None) == "segmentation":
        from al.data.transforms import collate_segmentation

        return functools.partial(collate_segmentation, ignore_index=dataset.ignore_index)
    return None  # torch's default collate


def iterate_batches(dataset: Any, indices: Sequence[int] | np.ndarray | None, batches: Sequence[torch.Tensor] | None = None,
                    *, batch_size: int = 16, device: torch.device | str = "cpu", num_workers: int = 0,
                    generator: torch.Generator | None = None,
                    augment_key: tuple[int, int] | None = None) -> Iterator[tuple[torch.Tensor, torch.Tensor, np.ndarray]]:
    """Yield `(images, targets, dataset_indices)` on `device`.

    `batches` are lists of positions into `indices` (default: consecutive chunks of
    `batch_size`, in order). Uses `dataset.tensors()` when present, else a DataLoader.
    `augment_key=(seed, epoch)` loads sample i with the RNG seeded from (seed, epoch, i)
    (`al.crn.SeededSamples`): augmentation that depends on nothing else.
    """
    idx = index_list(indices, len(dataset))
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

    source = dataset if augment_key is None else SeededSamples(dataset, *augment_key)
    loader = DataLoader(Subset(source, idx.tolist()), batch_sampler=[b.tolist() for b in batches],
                        num_workers=num_workers, collate_fn=_collate(dataset), generator=generator,
                        pin_memory=device.type == "cuda")
    for b, (x, y) in zip(batches, loader, strict=True):
        yield (x.to(device, non_blocking=True), torch.as_tensor(y).to(device, non_blocking=True),
               idx[b.numpy()])
