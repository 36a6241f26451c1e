"""Margin selection: top-k images by aggregated 1 − (p1 − p2), p1 ≥ p2 the two largest softmax
probabilities (higher = the two best classes are closer = less certain)."""

from __future__ import annotations

from typing import ClassVar

from al.strategies.entropy import EntropyStrategy


class MarginStrategy(EntropyStrategy):
    """Highest aggregated margin score first; same options as `EntropyStrategy`."""

    name: ClassVar[str] = "margin"
    label: ClassVar[str] = "Margin"
    pixel: ClassVar[str] = "margin"
