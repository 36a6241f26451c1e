"""Core-Set selection (Sener & Savarese, ICLR 2018) by the greedy k-center algorithm.

Everyone uses the greedy 2-approximation rather than the paper's MIP: keep, for every pool image,
the squared L2 distance to its nearest centre (the labelled images, then the picks so far), pick
the image farthest from all centres, repeat. Features: `model.embedding_tap`, globally average
pooled (the pooled low-level feature for DeepLabv3+ as in the seed paper, the penultimate layer
for classifiers).

Distances are float32 squared L2 computed by one formula, `sq_dists` = Σ (x − c)² (exact
differences, no ‖x‖² − 2x·c + ‖c‖² cancellation), so the picks equal those of the textbook eager
algorithm (a full pass over the pool against each new centre) bit for bit, ties to the lowest
index. Two accelerations keep that guarantee:

- Initial distances to the labelled set: a float32 GEMM (‖p‖² − 2p·c + ‖c‖² on mean-centred
  features) gives every distance within a rigorous rounding bound; only centres inside the bound
  of a point's approximate minimum (usually one) are then evaluated with `sq_dists`.
- Lazy greedy: a point's stored minimum only ever decreases, so a stale value is an upper bound.
  A max-heap pops the largest bound; a stale point is brought up to date against the centres
  added since its last update and pushed back; a fresh point on top is the true argmax. Typical
  pools need a few refreshes per pick instead of a pass over the whole pool. If one pick needs
  more than `max(256, N // 32)` refreshes (dense, low-dimensional data), every point is brought
  up to date with vectorised eager passes, which bounds the worst case near the eager cost.

Memory stays bounded by `chunk_size`: the GEMM works on chunk_size × chunk_size blocks and every
distance pass on chunk_size rows at a time. With nothing labelled the first centre is a uniformly
random unlabelled image drawn from `rng` (the lowest unlabelled index when `rng` is None).
"""

from __future__ import annotations

import heapq
from typing import ClassVar

import numpy as np

from al.strategies.base import Evidence, Strategy, check_budget, check_labelled
from hwbench.errors import UserError

_U32 = 2.0 ** -24          # unit roundoff of float32
_IDX_BITS = 31             # heap keys hold the pool index in the low 31 bits
_IDX_MASK = (1 << _IDX_BITS) - 1


def sq_dists(rows: np.ndarray, centre: np.ndarray) -> np.ndarray:
    """Σ (row − centre)² per row in float32: (m, D), (D,) -> (m,). The one distance formula."""
    d = rows - centre
    d *= d
    return d.sum(axis=1)


def _heap_keys(d: np.ndarray | np.float32, idx: np.ndarray | int) -> np.ndarray:
    """Min-heap keys (int64) ordering by largest distance first, then lowest index.

    A non-negative float32's bit pattern orders like its value, so the key is
    (2³¹ − bits) · 2³¹ + index: plain ints, which the garbage collector never scans.
    """
    bits = np.asarray(d, dtype=np.float32).view(np.int32).astype(np.int64)
    return ((np.int64(1 << 31) - bits) << _IDX_BITS) | np.asarray(idx, dtype=np.int64)


def _as_features(features: object) -> np.ndarray:
    if hasattr(features, "detach"):                                       # torch tensor, any device
        features = features.detach().cpu().numpy()
    x = np.ascontiguousarray(features, dtype=np.float32)
    if x.ndim != 2:
        raise UserError(f"coreset features must be (N, D), got shape {x.shape}")
    if not np.isfinite(x).all():
        raise UserError("coreset needs finite embeddings for every pool image (labelled ones included); "
                        "collect evidence with pool_indices = all images")
    return x


def _check_chunk(chunk_size: int) -> int:
    if isinstance(chunk_size, bool) or not isinstance(chunk_size, (int, np.integer)) or chunk_size < 1:
        raise UserError(f"coreset chunk_size must be a positive integer, got {chunk_size!r}")
    return int(chunk_size)


def _pass(x: np.ndarray, centre: np.ndarray, min_d: np.ndarray, chunk_size: int) -> None:
    """Eager update: min_d = min(min_d, sq_dists(x, centre)), chunk_size rows at a time."""
    for s in range(0, x.shape[0], chunk_size):
        np.minimum(min_d[s:s + chunk_size], sq_dists(x[s:s + chunk_size], centre), out=min_d[s:s + chunk_size])


def initial_min_dists(x: np.ndarray, centre_idx: np.ndarray, chunk_size: int = 2048) -> np.ndarray:
    """min over centres x[centre_idx] of `sq_dists` for every row of x -> (N,) float32 (`min_dists_to`)."""
    return min_dists_to(x, x[centre_idx], chunk_size)


def min_dists_to(x: np.ndarray, centres: np.ndarray, chunk_size: int = 2048) -> np.ndarray:
    """min over the rows c of `centres` of `sq_dists(c, ...)` for every row of x -> (N,) float32.

    Bit-identical to eager passes against every centre, but the bulk is a GEMM: a candidate
    centre c of point p must satisfy A_pc <= ((A_min + δ)(1 + γ)) / (1 − γ) + δ, where A is the
    float32 expansion, δ = 2(D + 8)·u·(‖p‖² + max‖c‖²) bounds its error and γ = (D + 4)·u bounds
    the relative error of `sq_dists` (u = 2⁻²⁴); every other centre is provably farther. Any
    centring vector keeps the bound valid: the pool mean of x is used.
    """
    n, dim = x.shape
    mu = x.mean(axis=0, dtype=np.float64).astype(np.float32)
    centres = np.ascontiguousarray(centres, dtype=np.float32)
    cen = centres - mu                                                    # (L, D) centred
    cn = np.einsum("ij,ij->i", cen, cen)                                  # (L,)
    cen_m2 = cen * np.float32(-2.0)                                       # exact: a power of two
    gamma = (dim + 4) * _U32
    out = np.empty(n, dtype=np.float32)
    for s in range(0, n, chunk_size):
        p = x[s:s + chunk_size] - mu                                      # (n, D)
        pn = np.einsum("ij,ij->i", p, p)                                  # (n,)
        blocks = []
        a_min = np.full(p.shape[0], np.inf, dtype=np.float64)
        for t in range(0, cen.shape[0], chunk_size):
            a = p @ cen_m2[t:t + chunk_size].T                            # (n, l): −2 p·c
            a += pn[:, None]
            a += cn[None, t:t + chunk_size]                               # ‖p‖² − 2p·c + ‖c‖²
            a_min = np.minimum(a_min, a.min(axis=1))
            blocks.append(a)
        delta = 2.0 * (dim + 8) * _U32 * (pn.astype(np.float64) + float(cn.max()))
        thr = (np.maximum(a_min, 0.0) + delta) * (1.0 + gamma) / (1.0 - gamma) + delta    # (n,) float64
        thr32 = thr.astype(np.float32)
        thr32 = np.where(thr32 < thr, np.nextafter(thr32, np.float32(np.inf)), thr32)  # round up: still safe
        best = np.full(p.shape[0], np.inf, dtype=np.float32)
        for b, t in zip(blocks, range(0, cen.shape[0], chunk_size), strict=True):
            rr, cc = np.nonzero(b <= thr32[:, None])
            if rr.size:
                d = x[s + rr] - centres[t + cc]
                d *= d
                np.minimum.at(best, rr, d.sum(axis=1))
        out[s:s + chunk_size] = best
    return out


class LazyKCenter:
    """Lazy greedy k-center state over the rows of `x` (the whole pool, or one rank's shard).

    `min_d` holds each point's squared distance to the nearest centre it has been compared with
    (-inf for taken points); centres added with `add` are compared lazily. `top()` is the true
    farthest free point (ties: lowest row), `take(i)` removes it. Picks are those of the eager
    algorithm bit for bit, whatever rows `x` holds, since every value is an exact `sq_dists` minimum.
    """

    def __init__(self, x: np.ndarray, min_d: np.ndarray, taken: np.ndarray, budget: int, chunk_size: int) -> None:
        self.x, self.min_d, self.taken, self.chunk = x, min_d, taken.copy(), chunk_size
        self.min_d[self.taken] = -np.inf
        self.centres = np.empty((budget, x.shape[1]), dtype=np.float32)  # centres added so far
        self.k = 0
        self.last = np.zeros(x.shape[0], dtype=np.int64)                 # centres included in min_d[i]
        self.synced = 0                                                  # every point includes centres[:synced]
        self.limit = max(256, x.shape[0] // 32)
        self.heap = self._build_heap()

    def _build_heap(self) -> list[int]:
        free = np.flatnonzero(~self.taken)
        heap = _heap_keys(self.min_d[free], free).tolist()
        heapq.heapify(heap)
        return heap

    def add(self, centre: np.ndarray) -> None:
        self.centres[self.k] = centre
        self.k += 1

    def sync_all(self) -> None:
        """Bring every point up to date with vectorised eager passes."""
        for c in self.centres[self.synced:self.k]:
            _pass(self.x, c, self.min_d, self.chunk)
        self.last[:] = self.k
        self.synced = self.k
        self.heap = self._build_heap()

    def top(self) -> tuple[np.float32, int]:
        """(distance, row) of the farthest free point; (-inf, -1) when none is left."""
        refreshes = 0
        while self.heap:
            i = self.heap[0] & _IDX_MASK
            if self.last[i] == self.k:                                   # fresh: the true farthest point
                return self.min_d[i], int(i)
            if refreshes >= self.limit:                                  # too many stale tops: eager catch-up
                self.sync_all()
                refreshes = 0
                continue
            new = self.centres[self.last[i]:self.k]
            v = self.min_d[i]
            for s in range(0, new.shape[0], self.chunk):
                v = min(v, sq_dists(new[s:s + self.chunk], self.x[i]).min())   # float32 throughout
            self.min_d[i], self.last[i] = v, self.k
            heapq.heapreplace(self.heap, int(_heap_keys(np.float32(v), i)))
            refreshes += 1
        return np.float32(-np.inf), -1

    def take(self, i: int) -> None:
        """Remove row i: `top()`'s answer, or any free row (the random first centre; rebuilds the heap)."""
        self.taken[i] = True
        self.min_d[i] = -np.inf
        if self.heap and self.heap[0] & _IDX_MASK == i:
            heapq.heappop(self.heap)
        else:
            self.heap = self._build_heap()


def k_center_greedy(features: object, labelled: np.ndarray, budget: int, *, chunk_size: int = 2048,
                    rng: np.random.Generator | None = None) -> np.ndarray:
    """Greedy k-center from the labelled set: `budget` new pool indices in pick order.

    features: (N, D) array (or torch tensor; computed on the CPU in float32);
    labelled: (N,) bool mask of the existing centres. Never returns labelled indices.
    """
    x = _as_features(features)                                            # (N, D) float32
    n = x.shape[0]
    if n > _IDX_MASK:
        raise UserError(f"coreset supports pools of at most {_IDX_MASK} images, got {n}")
    labelled = check_labelled(labelled, n)
    budget = check_budget(budget, labelled)
    chunk_size = _check_chunk(chunk_size)
    picks = np.empty(budget, dtype=np.int64)
    if budget == 0:
        return picks
    first = None
    if labelled.any():
        min_d = initial_min_dists(x, np.flatnonzero(labelled), chunk_size)
    else:                                                                 # no centre yet: seed one
        first = first_centre(labelled, rng)
        min_d = np.full(n, np.inf, dtype=np.float32)
    greedy = LazyKCenter(x, min_d, labelled, budget, chunk_size)
    k = 0
    if first is not None:
        greedy.take(first)
        greedy.add(x[first])
        greedy.sync_all()
        picks[0], k = first, 1
    while k < budget:
        _, i = greedy.top()
        greedy.take(i)
        greedy.add(x[i])
        picks[k] = i
        k += 1
    return picks


def first_centre(labelled: np.ndarray, rng: np.random.Generator | None) -> int:
    """With nothing labelled: a uniformly random unlabelled index from `rng` (the lowest when None)."""
    unl = np.flatnonzero(~labelled)
    return int(unl[0] if rng is None else rng.choice(unl))


class CoresetStrategy(Strategy):
    """Core-Set by greedy k-center on pooled embeddings, starting from the labelled set.

    Needs embeddings of the whole pool (labelled images are the initial centres), so
    `candidates()` returns every index.
    """

    name: ClassVar[str] = "coreset"
    label: ClassVar[str] = "Core-Set"
    needs: ClassVar[frozenset[str]] = frozenset({"embedding"})

    def __init__(self, chunk_size: int = 2048) -> None:
        self.chunk_size = _check_chunk(chunk_size)

    def candidates(self, labelled: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        return np.arange(check_labelled(labelled).size)

    def _select(self, evidence: Evidence, budget: int, labelled: np.ndarray,
                rng: np.random.Generator) -> np.ndarray:
        emb = evidence.require("embedding", self.name)
        return k_center_greedy(emb, labelled, budget, chunk_size=self.chunk_size, rng=rng)
