"""al: pool-based active learning where deployable surrogates pick data for next-generation models.

Public API (lazy): run, select, surrogate_matrix
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # what type checkers see; at run time the names load on first use (below)
    from al.experiments.surrogate import surrogate_matrix as surrogate_matrix
    from al.loop import run as run
    from al.strategies import select as select

_EXPORTS = {"run": "al.loop", "select": "al.strategies", "surrogate_matrix": "al.experiments.surrogate"}


__all__ = list(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'al' has no attribute {name!r}")
