"""What every selection strategy shares: the evidence it may read, the `Strategy` interface,
input checks, and top-k picking.

A strategy never sees a model (DESIGN §3). It reads `Evidence` (arrays over the whole pool,
index-aligned with the dataset), a budget, the labelled mask and an `np.random.Generator`, and
returns pool indices, best first, never labelled ones, exactly `budget` of them.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any, ClassVar

import numpy as np

from hwbench.errors import UserError

#: The kinds of evidence a strategy can ask for (`Strategy.needs`); `Evidence` has one field each.
EVIDENCE_KINDS = frozenset({"image_score", "embedding", "predicted_loss", "true_loss"})


@dataclass(frozen=True)
class Evidence:
    """Per-image evidence over the FULL pool, index-aligned with the dataset.

    Fields are `None` when not collected; inside an array, entries that were not computed
    (images outside the scored subset) are NaN.

    - `image_score` (N,): aggregated pixel score, e.g. mean pixel entropy in nats.
    - `embedding` (N, D) float32: pooled feature of `model.embedding_tap` (Core-Set).
    - `predicted_loss` (N,): the LLAL module's predicted loss.
    - `true_loss` (N,): the real per-image loss (needs labels; a reference only).
    """

    image_score: np.ndarray | None = None
    embedding: np.ndarray | None = None
    predicted_loss: np.ndarray | None = None
    true_loss: np.ndarray | None = None

    def __post_init__(self) -> None:
        sizes = {f.name: len(v) for f in fields(self) if (v := getattr(self, f.name)) is not None}
        if len(set(sizes.values())) > 1:
            raise UserError(f"evidence arrays differ in length ({sizes}); collect them over the same pool")

    @property
    def size(self) -> int | None:
        """Pool size N, or None when no evidence was collected (e.g. for random selection)."""
        for f in fields(self):
            v = getattr(self, f.name)
            if v is not None:
                return len(v)
        return None

    def require(self, kind: str, strategy: str) -> np.ndarray:
        """The array of one evidence kind; UserError naming the fix when it was not collected."""
        value = getattr(self, kind)
        if value is None:
            raise UserError(f"strategy {strategy!r} needs evidence {kind!r}, which was not collected; "
                            f"collect it with needs=get_strategy({strategy!r}).needs")
        return np.asarray(value)


class Strategy:
    """Base class: subclasses set `name`, `label`, `needs` and implement `_select`.

    `select` checks the inputs, calls `_select`, and checks the answer (exactly `budget`
    distinct unlabelled indices).
    """

    name: ClassVar[str] = ""
    label: ClassVar[str] = ""          # display label as in the paper (Entropy, LLAL, Core-Set, ...)
    needs: ClassVar[frozenset[str]] = frozenset()
    #: per-image scorer used by `evidence.collect` when `needs` contains "image_score".
    score_fn: Any = None

    def candidates(self, labelled: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """Pool indices whose evidence this strategy reads (default: every unlabelled image).

        The loop passes them to `evidence.collect` so that nothing else is computed.
        """
        return np.flatnonzero(~check_labelled(labelled))

    def select(self, evidence: Evidence, budget: int, labelled: np.ndarray,
               rng: np.random.Generator) -> np.ndarray:
        """Pool indices to label next, best first: `budget` distinct indices, none labelled."""
        labelled = check_labelled(labelled, evidence.size)
        budget = check_budget(budget, labelled)
        if budget == 0:
            return np.empty(0, dtype=np.int64)
        picks = np.asarray(self._select(evidence, budget, labelled, rng), dtype=np.int64)
        if picks.shape != (budget,) or labelled[picks].any() or np.unique(picks).size != budget:
            raise RuntimeError(f"strategy {self.name!r} returned an invalid selection (bug)")
        return picks

    def _select(self, evidence: Evidence, budget: int, labelled: np.ndarray,
                rng: np.random.Generator) -> np.ndarray:
        raise NotImplementedError

    def __repr__(self) -> str:
        params = ", ".join(f"{k}={v!r}" for k, v in vars(self).items() if not k.startswith("_") and k != "score_fn")
        return f"{type(self).__name__}({params})"


class TopKStrategy(Strategy):
    """Picks the unlabelled images with the highest value of one evidence kind (`key`)."""

    key: ClassVar[str] = ""

    def _select(self, evidence: Evidence, budget: int, labelled: np.ndarray,
                rng: np.random.Generator) -> np.ndarray:
        return top_k(evidence.require(self.key, self.name), budget, labelled)


def check_labelled(labelled: np.ndarray, size: int | None = None) -> np.ndarray:
    """The labelled mask as a 1-D bool array of the pool's length."""
    labelled = np.asarray(labelled)
    if labelled.ndim != 1 or labelled.dtype != np.bool_:
        raise UserError(f"labelled must be a 1-D boolean mask over the pool, got dtype {labelled.dtype} "
                        f"shape {labelled.shape}; build it with np.zeros(pool_size, bool)")
    if size is not None and labelled.size != size:
        raise UserError(f"labelled mask has {labelled.size} entries but the evidence covers {size} images; "
                        "both must span the whole pool")
    return labelled


def check_budget(budget: int, labelled: np.ndarray) -> int:
    """`budget` as an int in [0, number of unlabelled images]."""
    if isinstance(budget, bool) or not isinstance(budget, (int, np.integer)):
        raise UserError(f"budget must be an integer, got {budget!r}")
    unlabelled = int(labelled.size - labelled.sum())
    if budget < 0:
        raise UserError(f"budget must be >= 0, got {budget}")
    if budget > unlabelled:
        raise UserError(f"budget {budget} exceeds the {unlabelled} unlabelled images of the pool; "
                        "lower the budget or enlarge the pool")
    return int(budget)


def top_k(scores: np.ndarray, budget: int, labelled: np.ndarray) -> np.ndarray:
    """Indices of the `budget` highest scores among unlabelled, scored (non-NaN) entries.

    Highest first; ties go to the lowest index. Runs in O(N) plus a sort of the top entries.
    """
    scores = np.asarray(scores, dtype=np.float64)
    if scores.ndim != 1 or scores.size != labelled.size:
        raise UserError(f"scores must be a 1-D array over the pool ({labelled.size}), got shape {scores.shape}")
    cand = np.flatnonzero(~labelled & ~np.isnan(scores))   # NaN = not computed
    if cand.size < budget:
        raise UserError(f"only {cand.size} unlabelled images have evidence but the budget is {budget}; "
                        "collect evidence for more of the pool")
    s = scores[cand]
    if budget < cand.size:                                   # keep everything tied with the k-th value
        kth = np.partition(s, s.size - budget)[s.size - budget]
        keep = np.flatnonzero(s >= kth)
        cand, s = cand[keep], s[keep]
    order = np.argsort(-s, kind="stable")[:budget]           # stable: ties keep ascending index order
    return cand[order]
