"""Random selection: the lower bound every strategy must beat."""

from __future__ import annotations

from typing import ClassVar

import numpy as np

from al.strategies.base import Evidence, Strategy


class RandomStrategy(Strategy):
    """Uniform without replacement over the unlabelled pool, drawn from the given generator."""

    name: ClassVar[str] = "random"
    label: ClassVar[str] = "Random"
    needs: ClassVar[frozenset[str]] = frozenset()

    def candidates(self, labelled: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        return np.empty(0, dtype=np.int64)          # reads no evidence

    def _select(self, evidence: Evidence, budget: int, labelled: np.ndarray,
                rng: np.random.Generator) -> np.ndarray:
        return rng.choice(np.flatnonzero(~labelled), size=budget, replace=False)
