"""al: pool-based active learning where deployable surrogates pick data for next-generation models.

Public API (lazy): run, select, surrogate_matrix
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {"run": "al.loop", "select": "al.strategies", "surrogate_matrix": "al.experiments.surrogate"}


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'al' has no attribute {name!r}")
