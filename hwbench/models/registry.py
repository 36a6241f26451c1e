"""The model registry: builders register themselves with `@register_model(...)`;
`create_model(name, ...)` looks them up.

Builders live in the family modules (resnet.py, mobilenetv3.py, deeplabv3plus.py); they are
imported on first use so `from hwbench.models.registry import create_model` always sees them.
"""

from __future__ import annotations

import importlib
import inspect
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from hwbench.errors import UserError, unknown

TASKS = ("segmentation", "classification")
CHANNELS_LAST = "channels_last"  # the options every model takes (create_model), besides its builder's
TINY_CONV_GEMM = "tiny_conv_gemm"
_FAMILY_MODULES = ("hwbench.models.resnet", "hwbench.models.mobilenetv3", "hwbench.models.deeplabv3plus")


@dataclass(frozen=True)
class ModelInfo:
    """What the zoo knows about a model without building it."""

    name: str
    label: str                  # the paper's display label: Res-20, MNV3, Res-18, Res-50, Xc-65, Res-34
    task: str                   # "segmentation" | "classification"
    family: str                 # backbone family: resnet, mobilenetv3, xception
    num_classes: int = 1000     # default number of classes of the builder
    default_input: tuple[int, int, int, int] = (1, 3, 224, 224)  # (N, C, H, W) the model is reported at
    output_stride: int = 32     # default output stride of the builder


@dataclass(frozen=True)
class _Entry:
    builder: Callable[..., nn.Module]
    info: ModelInfo


MODELS: dict[str, _Entry] = {}


def register_model(*, label: str, task: str, family: str, num_classes: int,
                   default_input: tuple[int, int, int, int], output_stride: int
                   ) -> Callable[[Callable[..., nn.Module]], Callable[..., nn.Module]]:
    """Decorator: add a builder to `MODELS` under its function name."""
    if task not in TASKS:
        raise ValueError(f"task must be one of {TASKS}, got {task!r}")

    def deco(fn: Callable[..., nn.Module]) -> Callable[..., nn.Module]:
        name = fn.__name__
        if name in MODELS:
            raise ValueError(f"model {name!r} registered twice")
        MODELS[name] = _Entry(fn, ModelInfo(name, label, task, family, num_classes, default_input,
                                            output_stride))
        return fn

    return deco


def _ensure_loaded() -> None:
    for mod in _FAMILY_MODULES:
        importlib.import_module(mod)


def _entry(name: str) -> _Entry:
    _ensure_loaded()
    if name not in MODELS:
        raise unknown("model", name, MODELS)
    return MODELS[name]


def list_models(task: str | None = None) -> list[str]:
    """Registered model names (optionally only one task), in registration order."""
    _ensure_loaded()
    if task is not None and task not in TASKS:
        raise unknown("task", task, TASKS)
    return [n for n, e in MODELS.items() if task is None or e.info.task == task]


def model_info(name: str) -> ModelInfo:
    """Label, task, family and defaults of a registered model."""
    return _entry(name).info


def create_model(name: str, *, num_classes: int | None = None, output_stride: int | None = None,
                 **kw: Any) -> nn.Module:
    """Build a zoo model.

    `num_classes` / `output_stride` default to the builder's own defaults (19 classes and OS16 for
    DeepLabv3+, 1000 classes (10 for resnet20) and no dilation (OS32) for classifiers).
    Extra keyword arguments go to the builder; unknown ones are a `UserError`. Every model also takes
    `channels_last = True`: its weights in channels-last memory format, which convolutions then follow
    (oneDNN's depthwise convs on CPU: MNV3 at 28 px ~4x faster inference, ~1.6x faster training; the same
    arithmetic up to float rounding; ResNet-18 is slower on CPU), and `tiny_conv_gemm = True`: convs whose
    output map has <= 4 pixels train as one GEMM on CPU (hwbench.models.gemm_conv; Res-18's layer4 at 28 px).
    Build on the meta device with `with torch.device("meta"): create_model(...)`.
    """
    entry = _entry(name)
    params = inspect.signature(entry.builder).parameters
    bad = sorted(set(kw) - set(params) - {CHANNELS_LAST, TINY_CONV_GEMM})
    if bad:
        valid = sorted({*(p for p in params if p not in ("num_classes", "output_stride")), CHANNELS_LAST,
                        TINY_CONV_GEMM})
        raise UserError(f"model {name!r} has no option {', '.join(map(repr, bad))}; "
                        f"options: {', '.join(valid)}")
    channels_last, tiny_gemm = kw.pop(CHANNELS_LAST, False), kw.pop(TINY_CONV_GEMM, False)
    for opt, v in ((CHANNELS_LAST, channels_last), (TINY_CONV_GEMM, tiny_gemm)):
        if not isinstance(v, bool):
            raise UserError(f"model option {opt} must be true or false, got {v!r}")
    if num_classes is not None:
        if isinstance(num_classes, bool) or not isinstance(num_classes, int) or num_classes < 1:
            raise UserError(f"num_classes must be a positive integer, got {num_classes!r}")
        kw["num_classes"] = num_classes
    if output_stride is not None:
        if output_stride not in (8, 16, 32):
            raise UserError(f"output_stride must be 8, 16 or 32, got {output_stride!r}")
        kw["output_stride"] = output_stride
    model = entry.builder(**kw)
    if tiny_gemm:
        from hwbench.models.gemm_conv import use_tiny_conv_gemm

        use_tiny_conv_gemm(model)
    return model.to(memory_format=torch.channels_last) if channels_last else model
