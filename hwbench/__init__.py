"""hwbench: what a model costs and where it can run.

Public API (imported lazily so `import hwbench` stays fast):
    create_model, list_models, load_weights, count, load_profile, list_profiles, latency, deploy
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

_EXPORTS = {
    "create_model": "hwbench.models",
    "list_models": "hwbench.models",
    "load_weights": "hwbench.models",
    "count": "hwbench.count",
    "load_profile": "hwbench.profiles",
    "list_profiles": "hwbench.profiles",
    "latency": "hwbench.latency",
    "deploy": "hwbench.deploy",
}


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        obj = getattr(importlib.import_module(_EXPORTS[name]), name)
        return obj
    raise AttributeError(f"module 'hwbench' has no attribute {name!r}")
