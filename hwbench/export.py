"""ONNX export with a numerical check against PyTorch.

Exporter: torch's TorchScript-based exporter (`torch.onnx.export(..., dynamo=False)`). On torch 2.13
it writes opset 13 directly (needed by TensorRT 8.2 / JetPack 4.6, the last release for the TX2),
in ~0.1 s for a small net; the torch.export-based ("dynamo") exporter emits opset 18 and its
down-conversion to 13 fails (no Identity adapter 16 -> 13), so it is used only when asked for
(`exporter="dynamo"`, opset >= 18).

Check: the model (eval mode) and the ONNX file run on the same fixed-seed random input;
max abs error and max relative error (= max abs / max |reference|) are reported; fp32 fails when
the max abs error exceeds `atol` (1e-4) or the relative one `rtol` (1e-3). onnxruntime runs with
the CUDA provider (TF32 off) when present, else on CPU.
"""

from __future__ import annotations

import logging
import math
import os
import warnings
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from hwbench.errors import UserError, missing_package, unknown

if TYPE_CHECKING:  # pragma: no cover
    from torch import nn

log = logging.getLogger(__name__)

OPSETS = range(13, 21)  # 13: TensorRT 8.2 (JetPack 4.6); 20: newest the exporter and ORT agree on
EXPORTERS = ("torchscript", "dynamo")
INPUT_NAME, OUTPUT_NAME = "input", "logits"


@dataclass(frozen=True)
class ExportCheck:
    """Result of comparing an ONNX file with the PyTorch model on one random input."""

    path: str
    opset: int
    input: list[int]
    max_abs_err: float
    max_rel_err: float
    atol: float
    rtol: float
    passed: bool
    provider: str
    onnxruntime: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def export_onnx(model: nn.Module, input_shape: tuple[int, ...], path: str | os.PathLike, *,
                opset: int = 13, dynamic: bool = False, exporter: str = "torchscript",
                metadata: dict[str, str] | None = None) -> Path:
    """Export `model` (put in eval mode) for input `input_shape` (N, C, H, W) to `path`.

    `dynamic=True` makes batch, height and width symbolic. Outputs are named by the model's
    `output_names` (a scoring graph: score, embedding), else "logits". `metadata` goes into the
    file's metadata_props. Written atomically.
    """
    import torch

    from hwbench.io import atomic_write_bytes

    if opset not in OPSETS:
        raise UserError(f"--opset {opset} not supported; choose {OPSETS.start}..{OPSETS.stop - 1}")
    if exporter not in EXPORTERS:
        raise unknown("exporter", exporter, EXPORTERS)
    if exporter == "dynamo" and opset < 18:
        raise UserError(f"--exporter dynamo writes opset >= 18, not {opset}; use the default exporter for 13..17")
    if exporter == "dynamo":
        import importlib.util

        if importlib.util.find_spec("onnxscript") is None:  # torch's dynamo exporter needs it
            raise missing_package("onnxscript", "ort")
    path = Path(path)
    if path.suffix != ".onnx":
        raise UserError(f"--out {str(path)!r} must end in .onnx")
    model = model.eval()
    x = torch.randn(*input_shape)  # (N, C, H, W)
    axes = {0: "batch", 2: "height", 3: "width"}
    outputs = list(getattr(model, "output_names", (OUTPUT_NAME,)))
    out_axes = {name: ({0: "batch"} if len(outputs) > 1 else axes) for name in outputs}
    dynamic_axes = {INPUT_NAME: axes, **out_axes} if dynamic else None
    tmp = path.with_name(f".{path.name}.export.tmp")
    path.parent.mkdir(parents=True, exist_ok=True)
    use_dynamo = exporter == "dynamo"
    try:
        with warnings.catch_warnings(), torch.no_grad():
            warnings.simplefilter("ignore")  # legacy-exporter deprecation / tracer warnings
            if use_dynamo:
                torch.onnx.export(model, (x,), str(tmp), opset_version=opset, dynamo=True,
                                  input_names=[INPUT_NAME], output_names=outputs,
                                  dynamic_axes=dynamic_axes, optimize=True, verbose=False)
            else:
                torch.onnx.export(model, (x,), str(tmp), opset_version=opset, dynamo=False,
                                  input_names=[INPUT_NAME], output_names=outputs,
                                  dynamic_axes=dynamic_axes, do_constant_folding=True)
        data = tmp.read_bytes()
    finally:
        tmp.unlink(missing_ok=True)
    if metadata:
        data = _with_metadata(data, metadata)
    atomic_write_bytes(path, data)
    return path


def _with_metadata(data: bytes, metadata: dict[str, str]) -> bytes:
    import onnx

    m = onnx.load_from_string(data)
    for k, v in sorted(metadata.items()):
        m.metadata_props.add(key=k, value=str(v))
    return m.SerializeToString()


def ort_providers() -> list[Any]:
    """CUDA (TF32 off, so fp32 matches PyTorch) when onnxruntime has it, else CPU."""
    import onnxruntime as ort

    from hwbench.ondevice import ort_cuda_options

    avail = ort.get_available_providers()
    if "CUDAExecutionProvider" in avail:  # use_tf32 only where this onnxruntime knows it (>= 1.12)
        opts = {k: v for k, v in ort_cuda_options(ort.__version__).items() if k != "device_id"}
        return [("CUDAExecutionProvider", opts), "CPUExecutionProvider"]
    return ["CPUExecutionProvider"]


def check_onnx(model: nn.Module, path: str | os.PathLike, input_shape: tuple[int, ...], *,
               seed: int = 0, atol: float = 1e-4, rtol: float = 1e-3) -> ExportCheck:
    """Run the PyTorch model and the ONNX file on one fixed-seed random input and compare.

    Passes when max abs error <= `atol` and max relative error (max abs / max |reference|) <= `rtol`
    (the second guards models whose outputs are tiny, where any abs tolerance is vacuous).
    """
    import torch

    try:
        import onnxruntime as ort
    except ImportError:
        raise missing_package("onnxruntime", "ort") from None
    from hwbench.onnxfile import check_onnx_file

    path = check_onnx_file(path)
    x = np.random.default_rng(seed).standard_normal(input_shape).astype(np.float32)  # (N, C, H, W)
    model = model.eval()
    with torch.no_grad():
        ref = model(torch.from_numpy(x))
    many = hasattr(model, "output_names")              # a scoring graph: compare every output
    refs = [r.float().numpy() for r in (ref if many else [ref[0] if isinstance(ref, (tuple, list)) else ref])]
    so = ort.SessionOptions()
    so.log_severity_level = 3
    sess = ort.InferenceSession(str(path), sess_options=so, providers=ort_providers())
    gots = sess.run(None, {sess.get_inputs()[0].name: x})[: len(refs)]
    abs_err = rel_err = 0.0
    passed = True
    for got, ref_np in zip(gots, refs, strict=True):
        if got.shape != ref_np.shape:
            raise UserError(f"{path}: ONNX output shape {list(got.shape)} != PyTorch {list(ref_np.shape)}")
        a = float(np.max(np.abs(got.astype(np.float64) - ref_np))) if ref_np.size else 0.0
        scale = float(np.max(np.abs(ref_np))) if ref_np.size else 0.0
        r = a / scale if scale > 0 else a
        # scores can be large (aggregation "sum"): for a scoring graph the abs tolerance scales with them
        passed &= a <= atol * (max(1.0, scale) if many else 1.0) and r <= rtol
        abs_err, rel_err = max(abs_err, a), max(rel_err, r)
    return ExportCheck(path=str(path), opset=_opset(path), input=list(input_shape), max_abs_err=abs_err,
                       max_rel_err=rel_err, atol=atol, rtol=rtol, passed=passed,
                       provider=sess.get_providers()[0], onnxruntime=ort.__version__)


def _opset(path: Path) -> int:
    import onnx

    m = onnx.load(str(path), load_external_data=False)
    return next((o.version for o in m.opset_import if o.domain in ("", "ai.onnx")), -1)


FP16_MAX = 65504.0  # largest finite float16


def score_bound(score: str, aggregation: str, num_classes: int | None, input_hw: tuple[int, int]) -> float | None:
    """The largest per-image score a segmentation scoring graph can output: per-pixel entropy (ln K
    nats) or margin (1) summed over H x W pixels for `--aggregation sum`; None where it is <= 1 per pixel
    averaged (mean, max, minmax), for LLAL, or when the number of classes is unknown."""
    if score == "llal" or aggregation != "sum" or not num_classes:
        return None
    per_pixel = math.log(num_classes) if score == "entropy" else 1.0
    return per_pixel * int(input_hw[0]) * int(input_hw[1])


def export_and_check(model: str | nn.Module, input_hw: tuple[int, int], out: str | os.PathLike, *,
                     batch: int = 1, opset: int = 13, dynamic: bool = False, num_classes: int | None = None,
                     atol: float = 1e-4, exporter: str = "torchscript", score: str | None = None,
                     aggregation: str = "mean", weights: str | None = None) -> ExportCheck:
    """`hwbench export`: build the model, export it, check it; the file is removed if the check fails.

    `score` (entropy | margin | llal) exports `hwbench.score_graph.ScoringGraph` instead: outputs
    score (N,) and embedding (N, D); `weights` loads a checkpoint (with an LLAL head for llal)."""
    metadata = None
    if score is not None:
        from hwbench.score_graph import scoring_model

        module = scoring_model(model, score, aggregation, num_classes=num_classes, weights=weights)
        metadata = {"hwbench.model": getattr(module.model, "name", module.name), "hwbench.score": score,
                    "hwbench.aggregation": "n/a" if score == "llal" else aggregation,
                    "hwbench.embedding_tap": str(module.model.embedding_tap),
                    "hwbench.input": f"{batch}x3x{int(input_hw[0])}x{int(input_hw[1])}",
                    "hwbench.normalisation": "RGB / 255, ImageNet mean (0.485, 0.456, 0.406) std (0.229, 0.224, 0.225)"}
        head = getattr(getattr(module.model, "head", None), "classifier", None)
        bound = score_bound(score, aggregation, getattr(head, "out_channels", None), input_hw)
        if bound is not None:
            metadata["hwbench.score_max"] = f"{bound:.6g}"
            if bound > FP16_MAX:  # an fp16 reduction overflows to inf: keep reductions in fp32 under --fp16
                metadata["hwbench.fp16"] = "reduce layers must run in fp32 (ondevice.py --fp16 does)"
                log.warning("--aggregation sum: scores reach %.3g > fp16's %.0f; under --fp16 run the engine with "
                            "ondevice.py (it keeps reduce layers in fp32) or trtexec --fp16 "
                            "--precisionConstraints=obey --layerPrecisions=<reduce layers>:fp32", bound, FP16_MAX)
    elif isinstance(model, str):
        import torch

        from hwbench.models import create_model

        torch.manual_seed(0)  # reproducible weights, hence a reproducible file (and TensorRT cache key)
        module = create_model(model, **({} if num_classes is None else {"num_classes": num_classes}))
        if weights is not None:
            from hwbench.models.weights import load_weights

            load_weights(module, weights)
    else:
        module = model
    shape = (batch, 3, int(input_hw[0]), int(input_hw[1]))
    path = export_onnx(module, shape, out, opset=opset, dynamic=dynamic, exporter=exporter, metadata=metadata)
    try:
        result = check_onnx(module, path, shape, atol=atol)
    except BaseException:
        Path(path).unlink(missing_ok=True)
        raise
    if not result.passed:
        log.error("ONNX output differs from PyTorch: max abs %.3g > %.3g; removed %s",
                  result.max_abs_err, atol, path)
        Path(path).unlink(missing_ok=True)
    return result
