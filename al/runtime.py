"""Process-wide torch settings scoped to a block: deterministic kernels, CPU thread count."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import torch


@contextlib.contextmanager
def deterministic(device: str) -> Iterator[None]:
    """Deterministic kernels on CPU (cheap there); restored afterwards."""
    if device != "cpu":
        yield
        return
    prev, prev_warn = torch.are_deterministic_algorithms_enabled(), torch.is_deterministic_algorithms_warn_only_enabled()
    torch.use_deterministic_algorithms(True, warn_only=True)
    try:
        yield
    finally:
        torch.use_deterministic_algorithms(prev, warn_only=prev_warn)


@contextlib.contextmanager
def torch_threads(n: int | None) -> Iterator[None]:
    """torch's intra-op CPU threads set to `n`, restored afterwards (None or 0: leave the setting alone;
    small models on shared cores: 1 is fastest)."""
    if not n or n <= 0:
        yield
        return
    prev = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(prev)
