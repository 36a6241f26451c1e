"""True-Loss reference (the seed paper's Eq. 4): top-k images by the surrogate's real per-image loss.

Needs the labels of the pool, so it is an upper-bound style reference, not a deployable strategy.
The loss is `al.train.per_sample_loss` (classification: cross-entropy per sample; segmentation:
mean pixel cross-entropy over valid pixels). We take the top-k as the paper under study does;
the Core-Set paper's "oracle" instead samples in proportion to the true loss. Users of the LLAL
reference report that ground-truth-loss sampling can do worse than the learned loss.
"""

from __future__ import annotations

from typing import ClassVar

from al.strategies.base import TopKStrategy


class TrueLossStrategy(TopKStrategy):
    """Highest true loss first."""

    name: ClassVar[str] = "true_loss"
    label: ClassVar[str] = "True-Loss"
    needs: ClassVar[frozenset[str]] = frozenset({"true_loss"})
    key: ClassVar[str] = "true_loss"
