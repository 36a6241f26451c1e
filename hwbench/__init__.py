"""hwbench: what a model costs and where it can run.

Public API (imported lazily so `import hwbench` stays fast):
    create_model, list_models, load_weights, count, load_profile, list_profiles, latency, deploy
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # what type checkers see; at run time the names load on first use (below)
    from hwbench.count import count as count
    from hwbench.deploy import deploy as deploy
    from hwbench.latency.theoretical import latency as latency
    from hwbench.models import create_model as create_model
    from hwbench.models import list_models as list_models
    from hwbench.models import load_weights as load_weights
    from hwbench.profiles import list_profiles as list_profiles
    from hwbench.profiles import load_profile as load_profile

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


__all__ = ["__version__", *_EXPORTS]


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        obj = getattr(importlib.import_module(_EXPORTS[name]), name)
        return obj
    raise AttributeError(f"module 'hwbench' has no attribute {name!r}")
