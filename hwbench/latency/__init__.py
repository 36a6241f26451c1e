"""Latency: theoretical (`paper`, `peak`, `roofline`; this package's `theoretical.py`), measured
(`measure.py`, `backends/`) and predicted (`predict.py`).

    latency(model_or_count, device, *, mode="roofline", precision="fp16", engine="gpu", input_shape=None)
        -> LatencyEstimate

Names are resolved lazily so importing `hwbench.latency.measure` does not pull in the others.
"""

from __future__ import annotations

import importlib
from typing import Any

from hwbench._callable import make_callable

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


make_callable(__name__)
