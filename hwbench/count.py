"""Operation counting: MACs and parameters, per leaf module, with a backbone/head split.

Units. A MAC is one multiply-accumulate; MACs are what we store. OPs = 2 x MACs (how vendors
count TOPS) is derived in exactly one place, `ops_from_macs`.

Counters.
- `meta` (default): one forward pass on PyTorch's meta device (shapes only, no memory, no
  arithmetic) under a dispatch mode that sees every ATen operator (`hwbench/counting/meta.py`).
  A few milliseconds per zoo model once its architecture is built; results of zoo models are
  cached on disk (`hwbench/counting/cache.py`), so a repeated count is a file read.
- `fvcore`: fvcore's `FlopCountAnalysis` (JIT trace on real CPU tensors, about one real forward
  pass). The reference oracle: its conv/linear counts equal ours exactly. Never cached.

What is counted (`ops=`): `convlinear` (the paper's "GOPs": convolutions and matrix products) or
`all` (adds fvcore's norm, resize and pooling formulas); see `hwbench/counting/formulas.py`.
Everything else with arithmetic is listed in `unsupported`, fvcore-style.

Per-module table: one `LayerCount` per leaf module that ran, plus one row per operator called
directly in a non-leaf `forward` (`hwbench/counting/tracer.py`). The roofline model reads it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from hwbench._callable import make_callable
from hwbench.counting.formulas import OPS_MODES
from hwbench.counting.result import CountResult, LayerCount, ops_from_macs
from hwbench.errors import UserError, unknown

if TYPE_CHECKING:  # pragma: no cover
    from torch import nn

__all__ = ["COUNTERS", "DEFAULT_INPUT", "OPS_MODES", "PAPER_MODELS", "CountResult", "LayerCount", "check_input_shape",
           "count", "input_shape_from_hw", "model_label", "ops_from_macs", "parse_hw"]

COUNTERS = ("meta", "fvcore")
DEFAULT_INPUT = (1, 3, 1024, 2048)  # (N, C, H, W): a full Cityscapes frame, as in the paper
# The paper's Table 2 models, in its column order (Res-20, MNV3, Res-18, Res-50, Xc-65).
PAPER_MODELS = ("deeplabv3plus_resnet20", "deeplabv3plus_mobilenetv3_small", "deeplabv3plus_resnet18",
                "deeplabv3plus_resnet50", "deeplabv3plus_xception65")


# --------------------------------------------------------------------------------- validation
def check_input_shape(input_shape: Sequence[int]) -> tuple[int, int, int, int]:
    """(N, C, H, W) of positive integers, else `UserError`."""
    try:
        shape = tuple(input_shape)
    except TypeError:
        raise UserError(f"input shape must be (N, C, H, W), got {input_shape!r}") from None
    if len(shape) != 4 or not all(isinstance(s, int) and not isinstance(s, bool) and s > 0 for s in shape):
        raise UserError(f"input shape must be 4 positive integers (N, C, H, W), got {list(shape)}")
    return shape  # type: ignore[return-value]


def parse_hw(text: str, what: str = "--input") -> tuple[int, int]:
    """'1024x2048' -> (1024, 2048); anything else is a `UserError` naming `what` (a flag or config key)."""
    parts = str(text).lower().replace("×", "x").split("x")
    try:
        h, w = (int(p) for p in parts)
    except ValueError:
        raise UserError(f"{what} must be HxW (e.g. 1024x2048), got {text!r}") from None
    if h <= 0 or w <= 0:
        raise UserError(f"{what} must be positive HxW (e.g. 1024x2048), got {text!r}")
    return h, w


def input_shape_from_hw(text: str | None, *, batch: int = 1, channels: int = 3) -> tuple[int, int, int, int]:
    """(N, C, H, W) from an `--input HxW` string (None: the paper's 1024x2048) and `--batch N`."""
    h, w = parse_hw(text) if text is not None else DEFAULT_INPUT[2:]
    return check_input_shape((batch, channels, h, w))


# ------------------------------------------------------------------------------------- public
def count(model_or_name: str | nn.Module, input_shape: Sequence[int] | None = None, *,
          num_classes: int | None = None, output_stride: int | None = None, ops: str = "convlinear",
          counter: str = "meta", cache: bool = True) -> CountResult:
    """Count MACs and parameters of a model: a zoo name, an ONNX file, "file.py:callable",
    "package.module:callable" (`hwbench.resolve`), or any `nn.Module`.

    `input_shape` is (N, C, H, W); None: the model's own default input (the zoo's, the ONNX file's
    static shape, or what a module declares with `input_hw` / `input_shape` / `example_input`).
    `num_classes` / `output_stride` are used only when building a
    zoo model by name (None: the model's own defaults, e.g. 19 classes and OS16 for DeepLabv3+).
    `ops`: "convlinear" (the paper's GOPs) or "all" (adds norm, resize, adaptive pooling).
    `counter`: "meta" (default; no arithmetic) or "fvcore" (reference; real CPU forward).
    `cache`: read and write the on-disk cache (zoo models with the meta counter only).
    A given module is not modified (its train/eval flags are restored).
    """
    if ops not in OPS_MODES:
        raise unknown("ops mode", ops, OPS_MODES)
    if counter not in (*COUNTERS, "onnx"):
        raise unknown("counter", counter, COUNTERS)
    if isinstance(model_or_name, str):
        from hwbench.resolve import resolve

        ref = resolve(model_or_name)
        shape = check_input_shape(input_shape) if input_shape is not None else ref.input_shape()
        if ref.kind == "zoo":
            if counter == "onnx":
                raise UserError(f"counter 'onnx' reads ONNX files; {model_or_name!r} is a zoo model")
            return _count_zoo(model_or_name, shape, num_classes, output_stride, ops, counter, cache)
        return ref.count(input_shape, ops=ops, counter=None if counter == "meta" else counter, num_classes=num_classes)
    import torch

    if not isinstance(model_or_name, torch.nn.Module):
        raise UserError(f"expected a model name or an nn.Module, got {type(model_or_name).__name__}")
    if counter == "onnx":
        raise UserError("counter 'onnx' reads ONNX files; count an nn.Module with 'meta' or 'fvcore'")
    if input_shape is None:
        from hwbench.resolve import declared_input

        input_shape = declared_input(model_or_name, type(model_or_name).__name__)
        if input_shape is None:
            raise UserError(f"{type(model_or_name).__name__} declares no input size; pass input_shape=(N, C, H, W) "
                            "or set an `input_hw = (H, W)` attribute on the module")
    shape = check_input_shape(input_shape)
    name = getattr(model_or_name, "name", None) or type(model_or_name).__name__
    if counter == "fvcore":
        from hwbench.counting.reference import count_fvcore

        return count_fvcore(model_or_name, shape, ops, name)
    from hwbench.counting.meta import count_meta

    return count_meta(model_or_name, shape, ops, name)


def _count_zoo(name: str, shape: tuple[int, int, int, int], num_classes: int | None, output_stride: int | None,
               ops: str, counter: str, cache: bool) -> CountResult:
    from hwbench.models import create_model, model_info

    info = model_info(name)  # unknown names fail here, before anything is built
    if counter == "fvcore":
        from hwbench.counting.reference import count_fvcore

        return count_fvcore(create_model(name, num_classes=num_classes, output_stride=output_stride), shape, ops, name)
    from hwbench.counting import cache as disk
    from hwbench.counting.meta import count_meta, zoo_model

    key = disk.cache_key(name, shape, info.num_classes if num_classes is None else num_classes,
                         info.output_stride if output_stride is None else output_stride, ops) if cache else None
    hit = disk.load(key) if key is not None else None
    if hit is not None:
        return hit
    result = count_meta(zoo_model(name, num_classes, output_stride), shape, ops, name)
    if key is not None:
        disk.store(key, result)
    return result


def model_label(name: str) -> str:
    """The paper's display label (Res-18, ...) of a zoo model name, else the name itself."""
    try:
        from hwbench.models import model_info

        return model_info(name).label
    except (UserError, ImportError):
        return name


make_callable(__name__)
