"""Entropy selection (Holub et al. 2008; the seed paper's Eq. 1): top-k images by aggregated
pixel entropy (nats) of the surrogate's softmax output."""

from __future__ import annotations

from typing import ClassVar

from al.strategies.base import TopKStrategy
from al.strategies.scoring import ImageScorer


class EntropyStrategy(TopKStrategy):
    """Highest image entropy first.

    `aggregation`: "mean" (default, over valid pixels), "sum", "max" or "minmax" (mean of the
    per-image min-max normalised map). `exclude_ignored`: drop ignore-label pixels, which needs
    labels (see `al.strategies.scoring`). Classification uses the entropy of the class distribution.
    """

    name: ClassVar[str] = "entropy"
    label: ClassVar[str] = "Entropy"
    needs: ClassVar[frozenset[str]] = frozenset({"image_score"})
    key: ClassVar[str] = "image_score"
    pixel: ClassVar[str] = "entropy"

    def __init__(self, aggregation: str = "mean", exclude_ignored: bool = False) -> None:
        self.aggregation = aggregation
        self.exclude_ignored = bool(exclude_ignored)
        self.score_fn = ImageScorer(self.pixel, aggregation, self.exclude_ignored)
