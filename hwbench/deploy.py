"""Deployability: does a model meet a latency budget on a device, and does it fit in memory?

For each device x model:

- latency_ms: theoretical latency under `mode` (`hwbench.latency`: paper | peak | roofline).
- budget_ms: 1000 / fps, or given directly.
- share in (0, 1]: the fraction of the device the model may use (e.g. a data-selection scorer
  running beside the main perception stack). We scale the *latency*, not the budget:
  effective_latency_ms = latency_ms / share (a model given 30% of the device takes 1/0.3 as
  long). Memory is shared the same way: memory_budget_gb = memory_gb * share.
- memory_used_gb: (weights + peak live activations) x bytes per element of the precision, where
  weights are parameters + floating buffers and the activation peak is the most activation
  elements alive at once during one eager forward pass (`CountResult.peak_activation_elems`).
- deployable: effective_latency_ms <= budget_ms and memory_used_gb <= memory_budget_gb.
- headroom = budget_ms / effective_latency_ms - 1: 0 means exactly on budget, 1.0 means it could
  run twice as often, -0.5 means it is twice too slow.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

from hwbench._callable import make_callable
from hwbench.count import PAPER_MODELS, CountResult, check_input_shape, count
from hwbench.errors import UserError
from hwbench.latency.theoretical import latency
from hwbench.profiles import BYTES_PER_ELEMENT, DeviceProfile, load_profile

if TYPE_CHECKING:  # pragma: no cover
    from torch import nn


@dataclass(frozen=True)
class DeployVerdict:
    """Whether `model` is deployable on `device` under the budget. Times in ms, memory in GB."""

    model: str
    device: str
    mode: str
    precision: str
    engine: str
    latency_ms: float
    share: float
    effective_latency_ms: float     # latency_ms / share
    budget_ms: float
    fps: float | None               # the frame rate the budget came from (None: budget_ms given)
    meets_budget: bool
    memory_used_gb: float
    memory_budget_gb: float         # memory_gb * share
    fits_memory: bool
    deployable: bool
    headroom: float                 # budget_ms / effective_latency_ms - 1
    macs: int = 0                   # MACs of the count the latency came from
    input: tuple[int, ...] = ()     # (N, C, H, W) it was counted at

    def record(self) -> dict[str, Any]:
        rec = asdict(self)
        rec["input"] = list(self.input)
        return rec


def resolve_budget(*, fps: float | None = None, budget_ms: float | None = None, share: float = 1.0) -> float:
    """budget_ms from exactly one of fps / budget_ms; checks share in (0, 1]."""
    if (fps is None) == (budget_ms is None):
        raise UserError("give exactly one of fps or budget_ms (e.g. --fps 10 or --budget-ms 100)")
    for label, v in (("fps", fps), ("budget_ms", budget_ms)):
        if v is not None and not (isinstance(v, (int, float)) and math.isfinite(v) and v > 0):
            raise UserError(f"{label} must be a positive number, got {v!r}")
    if not (isinstance(share, (int, float)) and math.isfinite(share) and 0 < share <= 1):
        raise UserError(f"share must be in (0, 1] (the fraction of the device the model may use), got {share!r}")
    budget = 1000.0 / fps if fps is not None else float(budget_ms)
    if not math.isfinite(budget):
        raise UserError(f"fps {fps!r} gives an infinite budget (1000 / fps ms); use a frame rate above 1e-300 "
                        "or --budget-ms")
    return budget


@functools.lru_cache(maxsize=64)
def _count_cached(name: str, shape: tuple[int, ...] | None, num_classes: int | None) -> CountResult:
    return count(name, shape, num_classes=num_classes)


def _as_count(model: str | nn.Module | CountResult, shape: tuple[int, ...] | None,
              num_classes: int | None) -> CountResult:
    if isinstance(model, CountResult):
        return model
    if isinstance(model, str):
        from hwbench.models.registry import MODELS

        if model in MODELS:  # files and callables can change between calls: only zoo counts are kept
            return _count_cached(model, shape, num_classes)
    return count(model, shape, num_classes=num_classes)


def memory_used_gb(c: CountResult, precision: str) -> float:
    """(weights + peak live activations) x bytes per element, in GB (1e9 bytes)."""
    return (c.weight_elems + c.peak_activation_elems) * BYTES_PER_ELEMENT[precision] / 1e9


def verdict(c: CountResult, dev: DeviceProfile, *, mode: str, budget_ms: float, share: float,
            precision: str, engine: str, fps: float | None = None) -> DeployVerdict:
    """One verdict from a count and a profile (no validation of budget/share; see `deploy`)."""
    est = latency(c, dev, mode=mode, precision=precision, engine=engine)
    eff = est.latency_ms / share
    mem = memory_used_gb(c, est.precision)
    mem_budget = dev.memory_gb * share
    meets = eff <= budget_ms
    fits = mem <= mem_budget
    return DeployVerdict(c.model, dev.name, mode, est.precision, est.engine, est.latency_ms, share, eff, budget_ms,
                         fps, meets, mem, mem_budget, fits, meets and fits, budget_ms / eff - 1.0, c.macs, tuple(c.input))


def deploy(models: Sequence[str | nn.Module | CountResult] | None = None,
           devices: Sequence[str | DeviceProfile] | None = None, *, mode: str = "roofline",
           fps: float | None = None, budget_ms: float | None = None, share: float = 1.0,
           precision: str = "fp16", engine: str = "gpu", input_shape: Sequence[int] | None = None,
           num_classes: int | None = None) -> list[DeployVerdict]:
    """Verdicts for every device x model (device-major order).

    Models: zoo names, ONNX files, "file.py:callable" / "package.module:callable", modules or counts.
    Defaults: the paper's five DeepLabv3+ models, the paper's three devices, each model's own input.
    Exactly one of `fps` / `budget_ms`; `share` in (0, 1] (see the module docstring).
    """
    from hwbench.profiles import PAPER_DEVICES

    budget = resolve_budget(fps=fps, budget_ms=budget_ms, share=share)
    shape = check_input_shape(input_shape) if input_shape is not None else None
    counts = [_as_count(m, shape, num_classes) for m in (models or PAPER_MODELS)]
    profiles = [d if isinstance(d, DeviceProfile) else load_profile(d) for d in (devices or PAPER_DEVICES)]
    return [verdict(c, dev, mode=mode, budget_ms=budget, share=share, precision=precision, engine=engine, fps=fps)
            for dev in profiles for c in counts]


def deployable_models(device: str | DeviceProfile, *, fps: float | None = None, budget_ms: float | None = None,
                      share: float = 1.0, mode: str = "roofline", precision: str = "fp16", engine: str = "gpu",
                      models: Sequence[str] | None = None, input_shape: Sequence[int] | None = None,
                      num_classes: int | None = None) -> list[str]:
    """Names of the models deployable on `device`, e.g. "on tx2 at 10 fps with share 0.3":

        deployable_models("tx2", fps=10, share=0.3)

    `models` defaults to the paper's five DeepLabv3+ models; order is kept.
    """
    verdicts = deploy(models or PAPER_MODELS, [device], mode=mode, fps=fps, budget_ms=budget_ms, share=share,
                      precision=precision, engine=engine, input_shape=input_shape, num_classes=num_classes)
    return [v.model for v in verdicts if v.deployable]


make_callable(__name__)
