"""Reduced precision of training steps: fp16 AMP on CUDA (`[train] amp`), bf16 autocast on CPU (`[train] bf16`).

On a CPU with native bf16 (AVX512-BF16 or AMX tiles), oneDNN's bf16 convolutions make a training step
of the small-image ResNets ~1.7x (ResNet-18) to ~2x (ResNet-20, channels-last) faster than fp32; without
it they are emulated and 3-35x slower, and depthwise-conv nets (MobileNetV3) are slower in bf16 even with
it (`python -m benchmarks bench_train`). So `bf16 = "auto"` means bf16 exactly where the CPU has it, and the
config is resolved to true or false when it is loaded: the resolved value is part of an experiment's
identity, so a run is never resumed in the other precision. Only the forward and backward passes of the
training steps run under autocast; the weights, the optimizer, the loss, PreciseBN, evaluation and pool
scoring stay fp32.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import logging
from collections.abc import Callable
from typing import Any, Literal

import torch

from hwbench.errors import UserError

logger = logging.getLogger(__name__)

__all__ = ["Bf16", "native_bf16", "resolve_bf16", "resolve_train", "autocast", "training_step", "measured_speedup"]

Bf16 = bool | Literal["auto"]


@functools.cache
def native_bf16() -> bool:
    """True where this CPU computes bf16 natively (AVX512-BF16 or AMX tiles)."""
    cpu = torch.cpu
    return bool(getattr(cpu, "_is_avx512_bf16_supported", lambda: False)()
                or getattr(cpu, "_is_amx_tile_supported", lambda: False)())


def resolve_bf16(value: Any, where: str = "train.bf16") -> bool:
    """`true` / `false` as given (`true` on a CPU without native bf16 warns once), `"auto"` -> `native_bf16()`."""
    if value == "auto":
        return native_bf16()
    if not isinstance(value, bool):
        raise UserError(f"{where}: expected true, false or \"auto\", got {value!r}")
    if value and not native_bf16():
        _warn_emulated()
    return value


@functools.cache
def _warn_emulated() -> None:
    logger.warning("bf16 = true on a CPU without native bf16 (AMX / AVX512-BF16): bf16 is emulated there, 3-35x "
                   "slower than fp32; bf16 = \"auto\" would train in fp32")


def resolve_train(cfg: Any, where: str = "train") -> Any:
    """A `TrainConfig` with its `bf16` resolved to a bool."""
    if isinstance(cfg.bf16, bool):
        return cfg
    return dataclasses.replace(cfg, bf16=resolve_bf16(cfg.bf16, f"{where}.bf16"))


def autocast(device: torch.device, *, amp: bool = False, bf16: bool = False) -> contextlib.AbstractContextManager:
    """fp16 autocast on CUDA with `amp`, bf16 autocast on CPU with `bf16`, else nothing."""
    if device.type == "cuda" and amp:
        return torch.autocast("cuda", dtype=torch.float16)
    if device.type == "cpu" and bf16:
        return torch.autocast("cpu", dtype=torch.bfloat16)
    return contextlib.nullcontext()


def training_step(net: torch.nn.Module, x: torch.Tensor, *, bf16: bool) -> Callable[[], None]:
    """One CPU training step of `net` on batch `x` (forward under `autocast`, backward of a stand-in loss): what
    `measured_speedup` and `python -m benchmarks bench_train` time in both precisions."""
    cpu = torch.device("cpu")

    def run() -> None:
        net.zero_grad(set_to_none=True)
        with autocast(cpu, bf16=bf16):
            out = net(x)
        out.float().square().mean().backward()
    return run


def measured_speedup(model: str, options: dict[str, Any], *, batch_size: int, hw: tuple[int, int],
                     num_classes: int, steps: int = 2) -> float:
    """fp32 / bf16 CPU time of a training step of `model` (built with `options`) on random data of one
    batch at `hw`, best of `steps` after a warm-up step each: what `--plan` divides bf16 training by."""
    import time

    from hwbench.models import create_model

    torch.manual_seed(0)
    net = create_model(model, num_classes=num_classes, **options).train()
    x = torch.randn(batch_size, 3, *hw)
    if options.get("channels_last"):
        x = x.contiguous(memory_format=torch.channels_last)
    best = {}
    for bf16 in (False, True):
        step, times = training_step(net, x, bf16=bf16), []
        for _ in range(steps + 1):
            t = time.process_time()
            step()
            times.append(time.process_time() - t)
        best[bf16] = min(times[1:])
    return best[False] / max(best[True], 1e-9)
