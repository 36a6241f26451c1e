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

import dataclasses
from collections.abc import Sequence
from typing import TYPE_CHECKING

from hwbench._callable import make_callable
from hwbench.counting.formulas import OPS_MODES
from hwbench.counting.result import CountResult, LayerCount, ops_from_macs
from hwbench.errors import UserError, unknown
from hwbench.inputs import DEFAULT_INPUT, check_input_shape, input_shape_from_hw, parse_hw

if TYPE_CHECKING:  # pragma: no cover
    from torch import nn

    from hwbench.resolve import ModelRef

__all__ = ["COUNTERS", "DEFAULT_INPUT", "OPS_MODES", "PAPER_MODELS", "CountResult", "LayerCount", "check_input_shape",
           "count", "count_ref", "input_shape_from_hw", "model_label", "ops_from_macs", "parse_hw", "unique_labels"]

COUNTERS = ("meta", "fvcore")
# The paper's Table 2 models, in its column order (Res-20, MNV3, Res-18, Res-50, Xc-65).
PAPER_MODELS = ("deeplabv3plus_resnet20", "deeplabv3plus_mobilenetv3_small", "deeplabv3plus_resnet18",
                "deeplabv3plus_resnet50", "deeplabv3plus_xception65")


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
        if ref.kind == "zoo":
            if counter == "onnx":
                raise UserError(f"counter 'onnx' reads ONNX files; {model_or_name!r} is a zoo model")
            shape = check_input_shape(input_shape) if input_shape is not None else ref.input_shape()
            return _count_zoo(model_or_name, shape, num_classes, output_stride, ops, counter, cache)
        return count_ref(ref, input_shape, ops=ops, counter=None if counter == "meta" else counter,
                         num_classes=num_classes)
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


def count_ref(ref: ModelRef, input_shape: Sequence[int] | None = None, *, ops: str = "convlinear",
              counter: str | None = None, num_classes: int | None = None, cache: bool = True) -> CountResult:
    """Count a resolved model argument (`hwbench.resolve.resolve`) at `input_shape` (None: its own input).
    `counter` None: the form's own (meta for PyTorch, the graph for ONNX)."""
    if ops not in OPS_MODES:
        raise unknown("ops mode", ops, OPS_MODES)
    shape = check_input_shape(input_shape) if input_shape is not None else ref.input_shape()
    if ref.kind == "zoo":
        if counter == "onnx":
            raise UserError(f"--counter onnx reads ONNX files; {ref.spec!r} is a zoo model")
        return _count_zoo(ref.name, shape, num_classes, None, ops, counter or "meta", cache)
    if ref.kind == "onnx":
        if counter not in (None, "onnx"):
            raise UserError(f"--counter {counter} counts PyTorch models; {ref.spec} is counted from its graph "
                            "(leave --counter out)")
        ref.no_classes(num_classes)
        from hwbench.counting.onnx_graph import count_onnx

        return count_onnx(ref.path, shape if input_shape is not None else None, ops,  # type: ignore[arg-type]
                          name=ref.name, model=ref.graph())
    if counter == "onnx":
        raise UserError(f"--counter onnx reads ONNX files; {ref.spec} is a PyTorch callable")
    return dataclasses.replace(count(ref.module(num_classes=num_classes), shape, ops=ops, counter=counter or "meta"),
                               model=ref.name)


def _count_zoo(name: str, shape: tuple[int, int, int, int], num_classes: int | None, output_stride: int | None,
               ops: str, counter: str, cache: bool) -> CountResult:
    from hwbench.models import create_model, model_info

    info = model_info(name)  # unknown names fail here, before anything is built
    if counter == "fvcore":
        from hwbench.counting.reference import count_fvcore

        return count_fvcore(create_model(name, num_classes=num_classes, output_stride=output_stride), shape, ops, name)
    from hwbench.counting import cache as disk
    from hwbench.counting.meta import count_meta, zoo_model
    from hwbench.models.registry import MODELS

    # the disk cache is keyed by hwbench's own source: a builder registered from elsewhere is never cached
    cache = cache and MODELS[name].builder.__module__.startswith("hwbench.")

    key = disk.cache_key(name, shape, info.num_classes if num_classes is None else num_classes,
                         info.output_stride if output_stride is None else output_stride, ops) if cache else None
    hit = disk.load(key) if key is not None else None
    if hit is not None:
        return hit
    result = count_meta(zoo_model(name, num_classes, output_stride), shape, ops, name)
    if key is not None:
        disk.store(key, result)
    return result


def unique_labels(names: Sequence[str]) -> list[str]:
    """Display labels (the paper's: Res-18, MNV3+entropy, ...), falling back to the full name where two
    different names share a label. The one labelling of models shown together: CLI tables, report tables,
    figures and CSVs all use it, so one name is labelled alike everywhere it is shown with the same others."""
    from collections import Counter

    labels = []
    for n in names:
        base, plus, rest = n.partition("+")
        labels.append(model_label(base) + plus + rest)
    per_label = Counter(label for label, _ in dict.fromkeys(zip(labels, names, strict=True)))
    return [n if per_label[label] > 1 else label for label, n in zip(labels, names, strict=True)]


def model_label(name: str) -> str:
    """The paper's display label (Res-18, ...) of a zoo model name, else the name itself."""
    try:
        from hwbench.models import model_info

        return model_info(name).label
    except (UserError, ImportError):
        return name


make_callable(__name__)
