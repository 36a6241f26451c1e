"""ProbCover (Yehuda, Dekel, Hacohen & Weinshall, "Active Learning Through a Covering Lens",
NeurIPS 2022): greedy maximum coverage of δ-balls in embedding space.

Following the authors' code (github.com/avihu111/TypiClust, `deep-al/pycls/al/prob_cover.py`):
on L2-normalised embeddings, a directed graph has an edge x → y iff ‖x − y‖ < δ (every point
covers itself). Images covered by the labelled set are removed; then, `budget` times, the image
whose ball holds the most uncovered images is picked (ties: lowest index) and the images it
covers are removed.

δ: given, or the paper's rule — the largest δ whose balls are pure in at least a fraction α
(0.95) of the pool, purity measured with K-means pseudo-labels (K = `classes`). A ball around x
is pure iff no image of another pseudo-label lies closer than δ, so the rule has a closed form:
the ⌈αN⌉-th largest distance from an image to its nearest image of another pseudo-label.

Where the reference code repeats index 0 once everything is covered, this one fills the rest of
the budget with uniformly random unlabelled images from the strategy's generator (and logs it:
a smaller δ would cover less per ball).
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from al.strategies.base import Evidence, Strategy, check_budget, check_labelled
from al.strategies.embedding_space import as_embeddings, kmeans_labels, pairwise_sq_dists
from hwbench.errors import UserError

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class BallGraph:
    """Edges x → y with ‖x − y‖ < δ in CSR form: row x's targets are indices[indptr[x]:indptr[x + 1]]."""

    indptr: np.ndarray    # (N + 1,) int64
    indices: np.ndarray   # (E,) int64, ascending within a row

    @property
    def size(self) -> int:
        return self.indptr.size - 1

    def out_degree(self) -> np.ndarray:
        return np.diff(self.indptr)

    def sources_by_target(self) -> BallGraph:
        """The reversed graph (y → x for every edge x → y): who covers each image."""
        src = np.repeat(np.arange(self.size), self.out_degree())
        order = np.lexsort((src, self.indices))                          # by target, then source
        counts = np.bincount(self.indices, minlength=self.size)
        return BallGraph(np.concatenate([[0], np.cumsum(counts)]).astype(np.int64), src[order])


def ball_graph(x: np.ndarray, delta: float, chunk_size: int = 1024) -> BallGraph:
    """Edges x → y iff ‖x − y‖ < delta over the rows of x (N, D), chunk_size rows at a time."""
    n = x.shape[0]
    rows, cols = [], []
    for s in range(0, n, chunk_size):
        d = pairwise_sq_dists(x[s:s + chunk_size], x)                    # (c, N)
        r, c = np.nonzero(d < delta * delta)
        rows.append(r + s)
        cols.append(c)
    r, c = np.concatenate(rows), np.concatenate(cols)
    counts = np.bincount(r, minlength=n)
    return BallGraph(np.concatenate([[0], np.cumsum(counts)]).astype(np.int64), c.astype(np.int64))


def max_coverage_greedy(graph: BallGraph, labelled: np.ndarray, budget: int,
                        rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Greedy max coverage from the labelled set: (picks in order, coverage after each pick).

    Coverage is the fraction of the pool inside a ball of a labelled or picked image. Once
    nothing is left to cover, the remaining picks are uniformly random unlabelled images.
    """
    n = graph.size
    labelled = check_labelled(labelled, n)
    budget = check_budget(budget, labelled)
    covered = np.zeros(n, dtype=bool)
    for x in np.flatnonzero(labelled):
        covered[graph.indices[graph.indptr[x]:graph.indptr[x + 1]]] = True
    rev = graph.sources_by_target()
    src = np.repeat(np.arange(n), graph.out_degree())
    degree = np.bincount(src[~covered[graph.indices]], minlength=n)      # uncovered images in each ball
    taken = labelled.copy()
    picks, coverage = [], []
    while len(picks) < budget:
        cur = int(np.argmax(degree))                                     # first maximum: lowest index
        if degree[cur] == 0:
            rest = rng.permutation(np.flatnonzero(~taken))[:budget - len(picks)]
            log.info("probcover: the pool is fully covered after %d picks; %d random picks fill the budget "
                     "(a smaller delta covers less per ball)", len(picks), rest.size)
            picks.extend(int(i) for i in rest)
            coverage.extend([1.0] * rest.size)
            break
        new = graph.indices[graph.indptr[cur]:graph.indptr[cur + 1]]
        new = new[~covered[new]]
        covered[new] = True
        for y in new:                                                    # their edges no longer count
            degree[rev.indices[rev.indptr[y]:rev.indptr[y + 1]]] -= 1
        taken[cur] = True
        picks.append(cur)
        coverage.append(covered.mean())
    return np.asarray(picks, dtype=np.int64), np.asarray(coverage, dtype=np.float64)


def nearest_other_label_dist(x: np.ndarray, pseudo: np.ndarray, chunk_size: int = 1024) -> np.ndarray:
    """For each row, the L2 distance to the nearest row with another pseudo-label (inf if none)."""
    out = np.empty(x.shape[0])
    for s in range(0, x.shape[0], chunk_size):
        d = pairwise_sq_dists(x[s:s + chunk_size], x)                    # (c, N)
        d[pseudo[s:s + chunk_size, None] == pseudo[None, :]] = np.inf
        out[s:s + chunk_size] = np.sqrt(d.min(axis=1))
    return out


def purity_delta(x: np.ndarray, pseudo: np.ndarray, alpha: float = 0.95) -> float:
    """The largest δ with purity(δ) >= alpha, where purity(δ) is the fraction of images whose
    open δ-ball holds no image of another pseudo-label: the ⌈αN⌉-th largest nearest-other distance."""
    d = np.sort(nearest_other_label_dist(x, pseudo))                     # ascending
    m = math.ceil(alpha * d.size - 1e-12)
    return float(d[d.size - m]) if m >= 1 else float(d[-1])


def probcover(features: object, labelled: np.ndarray, budget: int, rng: np.random.Generator, *,
              delta: float | None = None, alpha: float = 0.95, classes: int = 10,
              normalize: bool = True) -> np.ndarray:
    """ProbCover from embeddings of the whole pool: pool indices in pick order."""
    x = as_embeddings(features, "probcover", normalize=normalize)        # (N, D)
    labelled = check_labelled(labelled, x.shape[0])
    budget = check_budget(budget, labelled)
    if budget == 0:
        return np.empty(0, dtype=np.int64)
    if delta is None:
        delta = purity_delta(x, kmeans_labels(x, classes, rng), alpha)
        log.info("probcover: delta = %.4f (purity >= %.2f with %d pseudo-classes)", delta, alpha, classes)
    picks, _ = max_coverage_greedy(ball_graph(x, delta), labelled, budget, rng)
    return picks


class ProbCoverStrategy(Strategy):
    """ProbCover on the surrogate's pooled embeddings (whole pool: labelled images cover their balls).

    `delta`: ball radius on the normalised embeddings, or None for the purity rule with `alpha`
    and `classes` K-means pseudo-classes (set it to the task's number of classes).
    """

    name: ClassVar[str] = "probcover"
    label: ClassVar[str] = "ProbCover"
    needs: ClassVar[frozenset[str]] = frozenset({"embedding"})

    def __init__(self, delta: float | None = None, alpha: float = 0.95, classes: int = 10,
                 normalize: bool = True) -> None:
        if delta is not None and (isinstance(delta, bool) or not isinstance(delta, (int, float))
                                  or not delta > 0 or not math.isfinite(delta)):
            raise UserError(f"probcover delta must be a positive number (or left out for the purity rule), "
                            f"got {delta!r}")
        if isinstance(alpha, bool) or not isinstance(alpha, (int, float)) or not 0 < alpha <= 1:
            raise UserError(f"probcover alpha must be in (0, 1], got {alpha!r}")
        if isinstance(classes, bool) or not isinstance(classes, int) or classes < 2:
            raise UserError(f"probcover classes must be an integer >= 2 (the task's classes), got {classes!r}")
        self.delta = None if delta is None else float(delta)
        self.alpha = float(alpha)
        self.classes = classes
        self.normalize = bool(normalize)

    def candidates(self, labelled: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        return np.arange(check_labelled(labelled).size)

    def _select(self, evidence: Evidence, budget: int, labelled: np.ndarray,
                rng: np.random.Generator) -> np.ndarray:
        emb = evidence.require("embedding", self.name)
        return probcover(emb, labelled, budget, rng, delta=self.delta, alpha=self.alpha, classes=self.classes,
                         normalize=self.normalize)
