"""Latency: theoretical (`paper`, `peak`, `roofline`; this package's `theoretical.py`), measured
(`measure.py`, `backends/`) and predicted (`predict.py`).

    latency(model_or_count, device, *, mode="paper", precision="fp16", engine="gpu", input_shape=None)
        -> LatencyEstimate

Names are resolved lazily so importing `hwbench.latency.measure` does not pull in the others.
"""

from __future__ import annotations

import importlib
import sys
import types
from typing import Any

_EXPORTS = {
    "latency": "hwbench.latency.theoretical",
    "LatencyEstimate": "hwbench.latency.theoretical",
    "MODES": "hwbench.latency.theoretical",
    "roofline": "hwbench.latency.roofline",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'hwbench.latency' has no attribute {name!r}")


class _CallableModule(types.ModuleType):
    """`hwbench.latency` is both this package and the public function (DESIGN §4): importing the
    subpackage rebinds the package attribute to it, so the package forwards calls."""

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return __getattr__("latency")(*args, **kwargs)


sys.modules[__name__].__class__ = _CallableModule
