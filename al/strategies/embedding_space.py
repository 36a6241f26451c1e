"""Shared maths of the embedding-space strategies (TypiClust, ProbCover): input checks, L2
normalisation, pairwise squared distances and K-means cluster labels.

Both reference implementations (github.com/avihu111/TypiClust) read L2-normalised self-supervised
features and cluster them with scikit-learn (`KMeans` up to 50 clusters, `MiniBatchKMeans` with
batches of 5,000 beyond); the same choices are made here, seeded from the strategy's generator.
"""

from __future__ import annotations

import numpy as np

from hwbench.errors import UserError

#: Above this many clusters the reference switches from KMeans to MiniBatchKMeans.
FULL_KMEANS_MAX_CLUSTERS = 50


def as_embeddings(features: object, strategy: str, *, normalize: bool) -> np.ndarray:
    """(N, D) float64 embeddings, finite, optionally scaled to unit L2 norm (zero rows stay zero)."""
    if hasattr(features, "detach"):                                      # torch tensor, any device
        features = features.detach().cpu().numpy()
    x = np.array(features, dtype=np.float64)
    if x.ndim != 2 or x.shape[0] == 0:
        raise UserError(f"{strategy} needs embeddings of shape (N, D) with N >= 1, got shape {x.shape}")
    if not np.isfinite(x).all():
        raise UserError(f"{strategy} needs finite embeddings for every pool image (labelled ones included); "
                        "collect evidence with pool_indices = all images")
    if normalize:
        norm = np.linalg.norm(x, axis=1, keepdims=True)                  # (N, 1)
        x = x / np.where(norm > 0, norm, 1.0)
    return x


def pairwise_sq_dists(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Squared L2 distances (n, D), (m, D) -> (n, m), float64, clipped at 0."""
    d = (a * a).sum(axis=1)[:, None] + (b * b).sum(axis=1)[None, :] - 2.0 * (a @ b.T)
    np.maximum(d, 0.0, out=d)
    return d


def kmeans_labels(x: np.ndarray, clusters: int, rng: np.random.Generator) -> np.ndarray:
    """K-means cluster label per row of x (N, D) -> (N,) int64, as the reference clusters.

    `clusters` is capped at the number of distinct rows; the seed comes from `rng`.
    """
    from sklearn.cluster import KMeans, MiniBatchKMeans  # lazy: scikit-learn is slow to import

    distinct = np.unique(x, axis=0).shape[0]
    k = max(1, min(int(clusters), distinct))
    seed = int(rng.integers(2 ** 31 - 1))
    if k == 1:
        return np.zeros(x.shape[0], dtype=np.int64)
    if k <= FULL_KMEANS_MAX_CLUSTERS:
        km = KMeans(n_clusters=k, random_state=seed, n_init=10)           # the reference's defaults
    else:
        km = MiniBatchKMeans(n_clusters=k, batch_size=5000, random_state=seed, n_init=3)
    return km.fit_predict(x).astype(np.int64)
