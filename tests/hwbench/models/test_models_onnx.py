"""forward(x) exports to ONNX (one small model; ONNX numerics are checked by the export module)."""

from __future__ import annotations

import warnings
from pathlib import Path

import pytest
import torch

from hwbench.models import create_model


def test_deeplab_resnet20_exports(tmp_path: Path) -> None:
    pytest.importorskip("onnx")
    pytest.importorskip("onnxscript")
    import onnx

    model = create_model("deeplabv3plus_resnet20", num_classes=3).eval()
    path = tmp_path / "m.onnx"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(model, (torch.randn(1, 3, 64, 64),), str(path), dynamo=True, opset_version=18)
    graph = onnx.load(str(path)).graph
    onnx.checker.check_model(str(path))
    dims = [d.dim_value for d in graph.output[0].type.tensor_type.shape.dim]
    assert dims == [1, 3, 64, 64]
    assert {"Conv", "Resize", "Concat"} <= {n.op_type for n in graph.node}
