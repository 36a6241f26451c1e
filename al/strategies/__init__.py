"""Selection strategies: pure functions of the evidence a surrogate produced (DESIGN §3).

    strategy = get_strategy("entropy")                       # or "llal", "coreset", "typiclust", ...
    evidence = collect_for(strategy, model, dataset, labelled, rng, device="cpu", batch_size=8)
    picks = select(strategy, evidence, budget, labelled, rng)  # pool indices, best first

`STRATEGIES` maps names to classes; every class declares `needs` (the evidence kinds it reads).
"""

from __future__ import annotations

import inspect
from typing import Any

import numpy as np

from al.strategies.base import EVIDENCE_KINDS, Evidence, Strategy, top_k
from al.strategies.coreset import CoresetStrategy, k_center_greedy
from al.strategies.entropy import EntropyStrategy
from al.strategies.evidence import collect, collect_for
from al.strategies.learning_loss import LearningLossStrategy, LossPredictionModule, margin_ranking_loss
from al.strategies.margin import MarginStrategy
from al.strategies.probcover import ProbCoverStrategy
from al.strategies.random import RandomStrategy
from al.strategies.true_loss import TrueLossStrategy
from al.strategies.typiclust import TypiClustStrategy
from hwbench.errors import UserError, unknown

STRATEGIES: dict[str, type[Strategy]] = {
    cls.name: cls
    for cls in (EntropyStrategy, LearningLossStrategy, CoresetStrategy, TrueLossStrategy, RandomStrategy,
                MarginStrategy, TypiClustStrategy, ProbCoverStrategy)
}

__all__ = ["EVIDENCE_KINDS", "STRATEGIES", "Evidence", "LossPredictionModule", "Strategy", "collect",
           "collect_for", "get_strategy", "k_center_greedy", "list_strategies", "margin_ranking_loss",
           "select", "top_k"]


def list_strategies() -> list[str]:
    """Registered strategy names."""
    return list(STRATEGIES)


def get_strategy(name: str, **kwargs: Any) -> Strategy:
    """Build a strategy by name with its options, e.g. `get_strategy("entropy", aggregation="max")`."""
    key = str(name).strip().lower().replace("-", "_")
    if key not in STRATEGIES:
        raise unknown("strategy", name, STRATEGIES)
    cls = STRATEGIES[key]
    sig = inspect.signature(cls.__init__)
    accepted = [p for p in sig.parameters if p != "self"]
    bad = [k for k in kwargs if k not in accepted]
    if bad:
        raise UserError(f"strategy {key!r} has no option {bad[0]!r}; "
                        f"accepted: {', '.join(accepted) or '(none)'}")
    return cls(**kwargs)


def select(strategy: str | Strategy, evidence: Evidence, budget: int, labelled: np.ndarray,
           rng: np.random.Generator | int | None = None) -> np.ndarray:
    """One call: pool indices to label next (best first, `budget` of them, never labelled ones).

    `strategy` is a name or a built strategy; `rng` a Generator (or a seed for a new one).
    """
    strat = get_strategy(strategy) if isinstance(strategy, str) else strategy
    if not isinstance(rng, np.random.Generator):
        rng = np.random.default_rng(rng)
    return strat.select(evidence, budget, labelled, rng)
