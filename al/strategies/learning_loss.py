"""Learning Loss for Active Learning (LLAL; Yoo & Kweon, CVPR 2019).

`LossPredictionModule` (in `hwbench.models.loss_head`: a model part that also runs on the device
inside `hwbench export --score llal`; re-exported here, state-dict keys unchanged) is trained jointly with the task model by `al.train.train(..., aux=module)`
and predicts each sample's loss from four intermediate features (`model.feature_taps`). The
`LearningLossStrategy` then labels the images with the HIGHEST predicted loss (the seed paper's Eq. 2;
one public port sorts ascending and so picks the lowest — the tests pin the direction).

Architecture:
- classification (reference): per tap global average pool -> FC(C, 128) -> ReLU; concatenate the
  four 128-d vectors -> Linear(512, 1). Pooling is adaptive, so any input size works.
- segmentation (seed paper: "dense layers replaced by convolutions, global pooling omitted"): per
  tap a 1×1 conv (C -> 128, the per-pixel analogue of the FC) -> BN -> ReLU at the tap's own
  resolution; the concatenation -> 1×1 conv -> 1 channel gives a per-pixel loss map at the
  finest tap resolution, averaged per image at the very end. The 1×1 conv after the concatenation
  is implemented as one 1×1 conv per tap whose outputs are bilinearly upsampled and summed — the
  same linear map (bilinear weights sum to 1), but the 4×128-channel concatenation is never built
  at the finest resolution.

Loss: margin ranking loss on pairs (i, B−1−i): target +1 where the first sample's true loss is
larger, else −1; loss = mean(clamp(ξ − target · (pred_i − pred_j), 0)), ξ = 1. The task loss is
combined as task + λ · module loss with λ = `weight` = 1, and the features fed to the module are
detached AFTER epoch E = round(`stop_grad_fraction` · epochs) (0-based epochs): the reference loops
`for epoch in range(200)` and detaches `if epoch > 120`, so epochs 0..120 (121 of them) train the
backbone through the module and 79 do not (`stop_grad_fraction` 0.6 = 120 / 200).
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np

from al.strategies.base import Evidence, TopKStrategy, check_labelled
from hwbench.errors import UserError
from hwbench.models.loss_head import (  # noqa: F401  (the head is a model part; re-exported)
    TASKS,
    LossPredictionModule,
    margin_ranking_loss,
    stop_gradient,
)


class LearningLossStrategy(TopKStrategy):
    """LLAL selection: highest predicted loss first.

    `subset`: score only a random subset of that many unlabelled images per cycle (the reference
    uses 10,000); None scores all. `candidates()` draws the subset so the loop computes evidence
    for it alone; if evidence covers more unlabelled images than `subset`, `select` draws the
    subset itself from the same generator.
    """

    name: ClassVar[str] = "llal"
    label: ClassVar[str] = "LLAL"
    needs: ClassVar[frozenset[str]] = frozenset({"predicted_loss"})
    key: ClassVar[str] = "predicted_loss"

    def __init__(self, subset: int | None = None) -> None:
        if subset is not None and (isinstance(subset, bool) or not isinstance(subset, (int, np.integer))
                                   or subset < 1):
            raise UserError(f"llal subset must be a positive integer or None, got {subset!r}")
        self.subset = None if subset is None else int(subset)

    def candidates(self, labelled: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        unl = np.flatnonzero(~check_labelled(labelled))
        if self.subset is None or self.subset >= unl.size:
            return unl
        return np.sort(rng.choice(unl, size=self.subset, replace=False))

    def _select(self, evidence: Evidence, budget: int, labelled: np.ndarray,
                rng: np.random.Generator) -> np.ndarray:
        if self.subset is not None and self.subset < budget:
            raise UserError(f"llal subset ({self.subset}) is smaller than the budget ({budget}); "
                            "raise subset or leave it unset to score the whole pool")
        scores = evidence.require(self.key, self.name).astype(np.float64)
        scored = np.flatnonzero(~labelled & ~np.isnan(scores))
        if self.subset is not None and scored.size > self.subset:
            keep = np.zeros(scores.size, dtype=bool)
            keep[rng.choice(scored, size=self.subset, replace=False)] = True
            scores = np.where(keep, scores, np.nan)
        return super()._select(Evidence(predicted_loss=scores), budget, labelled, rng)
