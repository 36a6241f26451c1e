"""Greedy k-center on a torch device (CUDA): the eager algorithm, for pools whose embeddings sit on
a GPU (N = 10^6, D = 512 is 2 GB of float32: one pass per pick reads it once, ~1 ms on a
current GPU).

Same definition as `al.strategies.coreset.k_center_greedy`: squared L2 distance Σ (x − c)² to the
nearest centre (labelled images, then the picks so far), farthest point first, ties to the lowest
index, a random first centre from `rng` when nothing is labelled. The sums run in the device's own
order, so near-ties (distances equal to the last float32 bits) may resolve differently from the
CPU version; everything else is the same pick for pick (checked by benchmarks/gpu_check.sh).
Memory: the features plus N floats, and `chunk_size` x D for one block of differences.
"""

from __future__ import annotations

import numpy as np
import torch

from al.strategies.base import check_budget, check_labelled
from al.strategies.coreset import first_centre


def _min_update(x: torch.Tensor, centre: torch.Tensor, min_d: torch.Tensor, chunk_size: int) -> None:
    """min_d = min(min_d, Σ (x − centre)²), chunk_size rows at a time (float32)."""
    for s in range(0, x.shape[0], chunk_size):
        d = (x[s:s + chunk_size] - centre).pow_(2).sum(1)
        torch.minimum(min_d[s:s + chunk_size], d, out=min_d[s:s + chunk_size])


@torch.no_grad()
def k_center_greedy_torch(features: torch.Tensor, labelled: np.ndarray, budget: int, *,
                          chunk_size: int = 65536, rng: np.random.Generator | None = None) -> np.ndarray:
    """`budget` new pool indices in pick order; features (N, D) on any torch device."""
    x = features.detach().float()
    n = x.shape[0]
    labelled = check_labelled(labelled, n)
    budget = check_budget(budget, labelled)
    picks = np.empty(budget, dtype=np.int64)
    if budget == 0:
        return picks
    min_d = torch.full((n,), float("inf"), device=x.device)
    lab = torch.tensor(labelled, device=x.device)                 # a copy: the caller's mask stays as it is
    for c in np.flatnonzero(labelled):
        _min_update(x, x[int(c)], min_d, chunk_size)
    k = 0
    if not labelled.any():
        picks[0], k = first_centre(labelled, rng), 1
        lab[int(picks[0])] = True
        _min_update(x, x[int(picks[0])], min_d, chunk_size)
    min_d[lab] = -float("inf")
    idx = torch.arange(n, device=x.device)
    while k < budget:
        best = min_d.max()
        i = int(idx[min_d == best].min())                       # lowest index among the farthest
        picks[k] = i
        k += 1
        min_d[i] = -float("inf")
        _min_update(x, x[i], min_d, chunk_size)
    return picks
