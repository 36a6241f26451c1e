"""Process-wide torch settings scoped to a block: deterministic kernels, CPU thread count."""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Iterator

import torch


@contextlib.contextmanager
def deterministic(device: str) -> Iterator[None]:
    """Deterministic kernels on CPU (cheap there); restored afterwards."""
    if device != "cpu":
        yield
        return
    prev, prev_warn = torch.are_deterministic_algorithms_enabled(), torch.is_deterministic_algorithms_warn_only_enabled()
    _set_deterministic(True, warn_only=True)
    try:
        yield
    finally:
        _set_deterministic(prev, warn_only=prev_warn)


def _set_deterministic(mode: bool, *, warn_only: bool) -> None:
    """`torch.use_deterministic_algorithms` without its `import torch._inductor.config` (which pulls in
    torch._dynamo: ~3 CPU-s per process; nothing here compiles). Inductor's flag is still set when
    inductor is loaded."""
    setter = getattr(torch._C, "_set_deterministic_algorithms", None)
    if setter is None:  # another torch: the public call
        torch.use_deterministic_algorithms(mode, warn_only=warn_only)
        return
    setter(mode, warn_only=warn_only)
    inductor = sys.modules.get("torch._inductor.config")
    if inductor is not None:
        inductor.deterministic = mode


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


_EAGER_OPTIMIZER_METHODS = ("add_param_group", "zero_grad", "state_dict", "load_state_dict")


def eager_optimizers() -> None:
    """Let `torch.optim.Optimizer`'s methods run without importing torch._dynamo (~1.6 CPU-s per
    process, on the first `add_param_group`). torch wraps them in a lazy `torch._disable_dynamo`
    that imports dynamo on first call only to mark them "never compile"; al never compiles, so
    each wrapper is pointed at its plain function, which is what it calls in eager mode anyway.
    Idempotent; a torch without that wrapper is left alone."""
    for name in _EAGER_OPTIMIZER_METHODS:
        fn = getattr(torch.optim.Optimizer.__dict__.get(name), "__wrapped__", None)
        if fn is not None and getattr(fn, "__dynamo_disable", None) is None:
            fn.__dynamo_disable = fn


class EagerSGD(torch.optim.SGD):
    """`torch.optim.SGD`, whose `step` runs the same update without torch's
    `_use_grad_for_differentiable` wrapper: that wrapper imports torch._dynamo (for a graph break
    that only matters under torch.compile) on every process's first step. Same arithmetic, same
    hooks, same state dict; `differentiable=True` keeps torch's own path."""

    def __init__(self, *args, **kwargs) -> None:
        eager_optimizers()  # add_param_group, zero_grad, state_dict without the dynamo import
        super().__init__(*args, **kwargs)

    def step(self, closure=None):  # type: ignore[override]
        plain = getattr(torch.optim.SGD.step, "__wrapped__", None)
        if plain is None or self.defaults.get("differentiable"):
            return super().step(closure)
        with torch.no_grad():
            return plain(self, closure)
