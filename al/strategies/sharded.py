"""Scoring and selection over a pool split across ranks (torchrun), with the picks of one process.

`score_and_select` is the AL loop's scoring step for any world size. With one process it is
`collect` + `strategy.select`. With W ranks:

1. every rank runs the surrogate over its contiguous shard of the strategy's candidates
   (`collect_rows`): forward passes, scores, embeddings and predicted losses for about 1/W of them;
2. per-image scalars (image score, predicted loss, true loss: 8 bytes per image) are all-gathered
   into whole-pool arrays, in rank order = candidate order, and every rank runs the same
   `strategy.select` on them — top-k strategies therefore merge the shards exactly, ties included
   (same array, same `top_k`), and random ones draw from the same generator;
3. embeddings are never gathered: Core-Set runs the greedy k-center distributed
   (`k_center_sharded`): each rank keeps its shard's embeddings and nearest-centre distances, the
   labelled centres stream past in blocks of `chunk_size` rows, and every pick is a global argmax
   (largest distance, then lowest pool index) over the ranks' local lazy-greedy tops, whose owner
   broadcasts the new centre's embedding. The distances are the exact `sq_dists` minima of the
   single-process algorithm, so the picks are the same, bit for bit.

Memory per rank: its shard of embeddings (and of the images in flight), `chunk_size` x D for the
streamed centres, `budget` x D for the picks' embeddings, plus O(N) bytes for the labelled mask
and the gathered scalars. Every rank returns the same picks.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import nn

from al import distributed
from al.strategies.base import Evidence, Strategy, check_budget, check_labelled
from al.strategies.coreset import _IDX_MASK, LazyKCenter, _heap_keys, first_centre, min_dists_to
from al.strategies.evidence import check_request, collect_rows, expand

_ORDER = np.iinfo(np.int64).max


def k_center_sharded(x_local: np.ndarray, rows: np.ndarray, labelled: np.ndarray, budget: int, *,
                     chunk_size: int = 2048, rng: np.random.Generator | None = None) -> np.ndarray:
    """Greedy k-center over a pool whose embeddings are split across ranks; same picks as
    `k_center_greedy(all embeddings, labelled, budget, rng=rng)` on one process.

    x_local: (m, D) float32 embeddings of pool indices `rows` (this rank's shard; the shards of all
    ranks partition the pool); labelled: (N,) bool mask of the whole pool (the same on every rank).
    """
    x_local = np.ascontiguousarray(x_local, dtype=np.float32)
    rows = np.asarray(rows, dtype=np.int64)
    labelled = check_labelled(labelled)
    budget = check_budget(budget, labelled)
    picks = np.empty(budget, dtype=np.int64)
    if budget == 0:
        return picks
    dim = _common_dim(x_local)
    min_d = np.full(rows.size, np.inf, dtype=np.float32)
    owners = distributed.all_gather_objects(int(labelled[rows].sum()))        # labelled rows per rank
    mine = x_local[labelled[rows]]
    for src, count in enumerate(owners):                                     # stream the labelled centres
        for s in range(0, count, chunk_size):
            m = min(chunk_size, count - s)
            block = distributed.broadcast_array(mine[s:s + m] if distributed.rank() == src else None, src,
                                                (m, dim), np.float32)
            if rows.size:
                np.minimum(min_d, min_dists_to(x_local, block, chunk_size), out=min_d)
    greedy = LazyKCenter(x_local, min_d, labelled[rows], budget, chunk_size)
    k = 0
    if not labelled.any():                                                   # no centre yet: seed one
        picks[0], k = first_centre(labelled, rng), 1
        owners = distributed.all_gather_rows(np.array([bool((rows == picks[0]).any())]))
        _add_pick(greedy, rows, int(picks[0]), int(np.argmax(owners)), dim)
        greedy.sync_all()
    while k < budget:
        value, i = greedy.top()
        key = _heap_keys(value, rows[i]).reshape(1) if i >= 0 else np.array([_ORDER])
        keys = distributed.all_gather_rows(key)                              # (W,): smallest = farthest, lowest index
        owner = int(np.argmin(keys))
        picks[k] = int(keys[owner]) & _IDX_MASK
        _add_pick(greedy, rows, int(picks[k]), owner, dim)
        k += 1
    return picks


def _common_dim(x_local: np.ndarray) -> int:
    dims = {d for d in distributed.all_gather_objects(x_local.shape[1] if x_local.shape[0] else None) if d is not None}
    if len(dims) != 1:
        raise RuntimeError(f"ranks hold embeddings of different widths {sorted(dims)} (bug)")
    return dims.pop()


def _add_pick(greedy: LazyKCenter, rows: np.ndarray, index: int, owner: int, dim: int) -> None:
    """Pool index `index` (held by rank `owner`) becomes a centre on every rank; the owner takes it."""
    where = np.flatnonzero(rows == index) if distributed.rank() == owner else None
    vec = distributed.broadcast_array(None if where is None else greedy.x[where[0]], owner, (dim,), np.float32)
    if where is not None:
        greedy.take(int(where[0]))
    greedy.add(vec)


def score_and_select(strategy: Strategy, model: nn.Module | None, dataset: Any, labelled: np.ndarray, budget: int,
                     rng: np.random.Generator, *, device: str | torch.device, batch_size: int,
                     aux: nn.Module | None = None, amp: bool = False, show_progress: bool = True,
                     model_loader: Any = None) -> np.ndarray:
    """The loop's scoring step: evidence of `model` on `strategy.candidates(labelled, rng)`, then
    `budget` picks — on this rank's shard and merged exactly when a process group runs.

    `model_loader()` -> (model, aux) is called only when evidence is needed (nothing is loaded
    for random selection). Every rank returns the same picks.
    """
    labelled = check_labelled(labelled)
    candidates = np.asarray(strategy.candidates(labelled, rng), dtype=np.int64)
    needs = frozenset(strategy.needs)
    n = labelled.size
    if not needs or candidates.size == 0:
        return strategy.select(Evidence(), budget, labelled, rng)
    if model is None:
        model, aux = model_loader()
    check_request(dataset, candidates, needs, batch_size=batch_size, aux=aux)
    lo, hi = distributed.shard_range(candidates.size)
    mine = candidates[lo:hi]
    local = collect_rows(model, dataset, mine, needs, device=device, batch_size=batch_size, aux=aux,
                         score_fn=strategy.score_fn, amp=amp, show_progress=show_progress and distributed.is_main())
    if not distributed.active():
        return strategy.select(expand(local, candidates, needs, n), budget, labelled, rng)
    scalars = {k: distributed.all_gather_rows(local.get(k, np.full(mine.size, np.nan)))
               for k in needs if k != "embedding"}
    if "embedding" not in needs:
        return strategy.select(expand(scalars, candidates, needs, n), budget, labelled, rng)
    from al.strategies.coreset import CoresetStrategy

    if isinstance(strategy, CoresetStrategy) and np.array_equal(candidates, np.arange(n)):
        emb = local.get("embedding", np.empty((mine.size, 0), np.float32))
        return k_center_sharded(emb, mine, labelled, budget, chunk_size=strategy.chunk_size, rng=rng)
    scalars["embedding"] = distributed.all_gather_rows(local["embedding"])  # another strategy: gather them
    return strategy.select(expand(scalars, candidates, needs, n), budget, labelled, rng)
