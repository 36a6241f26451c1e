"""Core-Set selection (Sener & Savarese, ICLR 2018) by the greedy k-center algorithm.

Everyone uses the greedy 2-approximation rather than the paper's MIP: keep, for every pool image,
the squared L2 distance to its nearest centre (labelled images and the picks so far); repeatedly
pick the image farthest from all centres, then update the running minimum against the new centre
only — one O(N·D) pass per pick. Features: `model.embedding_tap`, globally average pooled (the
pooled low-level feature for DeepLabv3+ as in the seed paper, the penultimate layer for
classifiers).

Numerics (float32, squared L2):
- initial pass (distances to the labelled set): blocked `‖x‖² − 2x·c + ‖c‖²` on mean-centred
  features in float64, so the GEMM is fast and the cancellation error stays far below float32
  resolution; clamped at 0;
- per-pick update: exact `Σ (x − c)²` in float32, chunked (`chunk_size` rows at a time) so the
  temporary stays in cache and memory stays bounded;
- ties go to the lowest index; chosen and labelled images are never picked again.
With nothing labelled the first centre is a uniformly random unlabelled image drawn from `rng`
(index 0 when `rng` is None).
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np
import torch

from al.strategies.base import Evidence, Strategy, check_budget, check_labelled
from hwbench.errors import UserError


def _as_tensor(features: np.ndarray | torch.Tensor) -> torch.Tensor:
    x = features if isinstance(features, torch.Tensor) else torch.from_numpy(np.asarray(features))
    if x.dim() != 2:
        raise UserError(f"coreset features must be (N, D), got shape {tuple(x.shape)}")
    x = x.detach().to(torch.float32)
    if not bool(torch.isfinite(x).all()):
        raise UserError("coreset needs finite embeddings for every pool image (labelled ones included); "
                        "collect evidence with pool_indices = all images")
    return x.contiguous()


def _initial_min_dist(x: torch.Tensor, centres: torch.Tensor, chunk_size: int) -> torch.Tensor:
    """min over `centres` (L, D) of squared distances from every row of x (N, D) -> (N,) float32."""
    mu = x.mean(0, dtype=torch.float64)                                   # (D,)
    c = centres.to(torch.float64) - mu                                    # (L, D)
    cn = (c * c).sum(1)                                                   # (L,)
    out = torch.empty(x.shape[0], dtype=torch.float32, device=x.device)
    for s in range(0, x.shape[0], chunk_size):
        p = x[s:s + chunk_size].to(torch.float64) - mu                    # (n, D)
        pn = (p * p).sum(1, keepdim=True)                                 # (n, 1)
        best = torch.full((p.shape[0],), float("inf"), dtype=torch.float64, device=x.device)
        for t in range(0, c.shape[0], chunk_size):
            d = torch.addmm(cn[t:t + chunk_size].unsqueeze(0), p, c[t:t + chunk_size].T, alpha=-2.0)
            d.add_(pn)                                                    # (n, l) squared distances
            best = torch.minimum(best, d.amin(1))
        out[s:s + chunk_size] = best.clamp_(min=0.0)
    return out


def k_center_greedy(features: np.ndarray | torch.Tensor, labelled: np.ndarray, budget: int, *, chunk_size: int = 1024,
                    rng: np.random.Generator | None = None) -> np.ndarray:
    """Greedy k-center: `budget` new pool indices in pick order (never labelled ones).

    features: (N, D) numpy array or torch tensor (computed on its device, e.g. CUDA);
    labelled: (N,) bool mask of the existing centres.
    """
    x = _as_tensor(features)                                              # (N, D) float32
    n = x.shape[0]
    labelled = check_labelled(labelled, n)
    budget = check_budget(budget, labelled)
    if isinstance(chunk_size, bool) or not isinstance(chunk_size, (int, np.integer)) or chunk_size < 1:
        raise UserError(f"coreset chunk_size must be a positive integer, got {chunk_size!r}")
    picks = np.empty(budget, dtype=np.int64)
    if budget == 0:
        return picks
    lab = torch.from_numpy(labelled).to(x.device)
    if labelled.any():
        min_d = _initial_min_dist(x, x[lab], chunk_size)                  # (N,)
        min_d[lab] = float("-inf")                                        # never pick a centre again
        nxt = int(torch.argmax(min_d))
    else:                                                                 # no centre yet: seed one
        unl = np.flatnonzero(~labelled)
        nxt = int(unl[0] if rng is None else rng.choice(unl))
        min_d = torch.full((n,), float("inf"), dtype=torch.float32, device=x.device)
    buf = torch.empty(min(chunk_size, n), x.shape[1], dtype=torch.float32, device=x.device)
    tmp = torch.empty(min(chunk_size, n), dtype=torch.float32, device=x.device)
    for k in range(budget):
        picks[k] = nxt
        if k == budget - 1:
            break
        min_d[nxt] = float("-inf")
        centre = x[nxt]                                                   # (D,)
        for s in range(0, n, chunk_size):                                 # update against the new centre only
            e = min(s + chunk_size, n)
            b, t = buf[:e - s], tmp[:e - s]
            torch.sub(x[s:e], centre, out=b)
            b.mul_(b)
            torch.sum(b, dim=1, out=t)                                    # (n,) exact squared distances
            torch.minimum(min_d[s:e], t, out=min_d[s:e])
        nxt = int(torch.argmax(min_d))                                    # first maximum = lowest index
    return picks


class CoresetStrategy(Strategy):
    """Core-Set by greedy k-center on pooled embeddings, starting from the labelled set.

    Needs embeddings of the whole pool (labelled images are the initial centres), so
    `candidates()` returns every index.
    """

    name: ClassVar[str] = "coreset"
    label: ClassVar[str] = "Core-Set"
    needs: ClassVar[frozenset[str]] = frozenset({"embedding"})

    def __init__(self, chunk_size: int = 1024) -> None:
        if isinstance(chunk_size, bool) or not isinstance(chunk_size, (int, np.integer)) or chunk_size < 1:
            raise UserError(f"coreset chunk_size must be a positive integer, got {chunk_size!r}")
        self.chunk_size = int(chunk_size)

    def candidates(self, labelled: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        return np.arange(check_labelled(labelled).size)

    def _select(self, evidence: Evidence, budget: int, labelled: np.ndarray,
                rng: np.random.Generator) -> np.ndarray:
        emb = evidence.require("embedding", self.name)
        return k_center_greedy(emb, labelled, budget, chunk_size=self.chunk_size, rng=rng)
