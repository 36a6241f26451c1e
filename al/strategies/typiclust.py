"""TypiClust (Hacohen, Dekel & Weinshall, "Active Learning on a Budget", ICML 2022).

For low budgets: label typical images of the data's dense regions, one per cluster, rather than
uncertain ones. Following the authors' code (github.com/avihu111/TypiClust,
`deep-al/pycls/al/typiclust.py`):

1. Cluster the L2-normalised embeddings of the whole pool into min(|labelled| + budget, 500)
   K-means clusters.
2. Keep the clusters with more than `min_cluster_size` (5) images; order them by how many
   labelled images they hold (fewest first), then by size (largest first), then by cluster id.
3. Pick, from each cluster in that order (round robin when the budget exceeds their number), the
   most typical unlabelled image not yet picked. Typicality is computed among those images of the
   cluster: 1 / (mean squared L2 distance to the K nearest others + 1e-5), K = min(k_nn, n // 2).
   (The code's faiss `IndexFlatL2` returns squared distances; the paper writes plain ones.)

Where the reference code crashes, this one goes on (stated, tested): a cluster with no image
left is skipped; when every kept cluster is exhausted, the small clusters follow in the same order.
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np

from al.strategies.base import Evidence, Strategy, check_budget, check_labelled
from al.strategies.embedding_space import as_embeddings, kmeans_labels, pairwise_sq_dists
from hwbench.errors import UserError

TYPICALITY_EPS = 1e-5  # the reference's guard against a zero mean distance


def typicality(x: np.ndarray, k_nn: int) -> np.ndarray:
    """1 / (mean squared distance to the `k_nn` nearest other rows + 1e-5): (n, D) -> (n,).

    With k_nn = 0 (a single row, or k_nn asked as 0) every row gets typicality 0.
    """
    n = x.shape[0]
    k = min(int(k_nn), n - 1)
    if k <= 0:
        return np.zeros(n)
    d = pairwise_sq_dists(x, x)                                          # (n, n)
    np.fill_diagonal(d, np.inf)                                          # not its own neighbour
    nearest = np.partition(d, k - 1, axis=1)[:, :k]                     # (n, k), any order
    return 1.0 / (nearest.mean(axis=1) + TYPICALITY_EPS)


def cluster_order(clusters: np.ndarray, labelled: np.ndarray,
                  min_cluster_size: int) -> tuple[np.ndarray, np.ndarray]:
    """(kept, small) cluster ids, each in picking order: fewest labelled images first, then the
    largest, then the lowest id. Kept clusters have more than `min_cluster_size` images."""
    ids, sizes = np.unique(clusters, return_counts=True)
    held = np.bincount(clusters[labelled], minlength=int(clusters.max()) + 1)[ids]   # labelled per cluster
    order = np.lexsort((ids, -sizes, held))                             # last key sorts first
    kept = sizes[order] > min_cluster_size
    return ids[order][kept], ids[order][~kept]


def typiclust_picks(x: np.ndarray, clusters: np.ndarray, labelled: np.ndarray, budget: int, *,
                    k_nn: int = 20, min_cluster_size: int = 5) -> np.ndarray:
    """TypiClust's picks given cluster labels: `budget` pool indices in pick order.

    x: (N, D) embeddings (used as given); clusters: (N,) non-negative int labels; labelled: (N,)
    bool mask. Round robin over the kept clusters, skipping exhausted ones; the small clusters
    only once every kept one is exhausted.
    """
    clusters = np.asarray(clusters)
    if clusters.shape != (x.shape[0],) or not np.issubdtype(clusters.dtype, np.integer) or (clusters < 0).any():
        raise UserError(f"typiclust: cluster labels must be (N,) = ({x.shape[0]},) non-negative integers, "
                        f"got {clusters.dtype} {clusters.shape}")
    labelled = check_labelled(labelled, x.shape[0])
    budget = check_budget(budget, labelled)
    free = ~labelled                                                     # neither labelled nor picked
    picks: list[int] = []
    for group in cluster_order(clusters, labelled, min_cluster_size):
        members = [np.flatnonzero(clusters == c) for c in group]
        pos = 0
        while len(picks) < budget and any(free[m].any() for m in members):
            idx = members[pos % len(members)]
            pos += 1
            idx = idx[free[idx]]                                         # the cluster's remaining images
            if idx.size == 0:
                continue
            t = typicality(x[idx], min(k_nn, idx.size // 2))
            best = int(idx[int(np.argmax(t))])                           # first maximum: lowest index
            picks.append(best)
            free[best] = False
    return np.asarray(picks, dtype=np.int64)


def typiclust(features: object, labelled: np.ndarray, budget: int, rng: np.random.Generator, *,
              k_nn: int = 20, min_cluster_size: int = 5, max_clusters: int = 500,
              normalize: bool = True) -> np.ndarray:
    """TypiClust from embeddings: cluster into min(|labelled| + budget, max_clusters), then pick.

    features: (N, D) embeddings of the whole pool; labelled: (N,) bool mask. Pool indices in pick order.
    """
    x = as_embeddings(features, "typiclust", normalize=normalize)        # (N, D)
    labelled = check_labelled(labelled, x.shape[0])
    budget = check_budget(budget, labelled)
    if budget == 0:
        return np.empty(0, dtype=np.int64)
    clusters = kmeans_labels(x, min(int(labelled.sum()) + budget, max_clusters), rng)
    return typiclust_picks(x, clusters, labelled, budget, k_nn=k_nn, min_cluster_size=min_cluster_size)


def _positive_int(value: object, what: str, minimum: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise UserError(f"{what} must be an integer >= {minimum}, got {value!r}")
    return int(value)


class TypiClustStrategy(Strategy):
    """TypiClust on the surrogate's pooled embeddings (whole pool: labelled images count per cluster)."""

    name: ClassVar[str] = "typiclust"
    label: ClassVar[str] = "TypiClust"
    needs: ClassVar[frozenset[str]] = frozenset({"embedding"})

    def __init__(self, k_nn: int = 20, min_cluster_size: int = 5, max_clusters: int = 500,
                 normalize: bool = True) -> None:
        self.k_nn = _positive_int(k_nn, "typiclust k_nn")
        self.min_cluster_size = _positive_int(min_cluster_size, "typiclust min_cluster_size", 0)
        self.max_clusters = _positive_int(max_clusters, "typiclust max_clusters")
        self.normalize = bool(normalize)

    def candidates(self, labelled: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        return np.arange(check_labelled(labelled).size)

    def _select(self, evidence: Evidence, budget: int, labelled: np.ndarray,
                rng: np.random.Generator) -> np.ndarray:
        emb = evidence.require("embedding", self.name)
        return typiclust(emb, labelled, budget, rng, k_nn=self.k_nn, min_cluster_size=self.min_cluster_size,
                         max_clusters=self.max_clusters, normalize=self.normalize)
