"""ONNX export (opset 13 by default) checked numerically against PyTorch with onnxruntime."""

from __future__ import annotations

import json

import onnx
import pytest
import torch

from hwbench.cli import main
from hwbench.count import PAPER_MODELS
from hwbench.errors import UserError
from hwbench.export import check_onnx, export_and_check, export_onnx


class Shift(torch.nn.Module):
    """Exports fine but ONNX gets a different constant than eager: the check must catch it."""

    def forward(self, x):
        return x + 1.0


def small() -> torch.nn.Module:
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3, stride=2, padding=1), torch.nn.BatchNorm2d(8),
                               torch.nn.Hardswish(), torch.nn.Conv2d(8, 5, 1),
                               torch.nn.Upsample(scale_factor=2, mode="bilinear", align_corners=False))


def test_export_opset13_static_and_dynamic(tmp_path):
    net = small()
    p = export_onnx(net, (1, 3, 32, 48), tmp_path / "s.onnx")
    m = onnx.load(str(p))
    assert next(o.version for o in m.opset_import if o.domain in ("", "ai.onnx")) == 13
    assert [d.dim_value for d in m.graph.input[0].type.tensor_type.shape.dim] == [1, 3, 32, 48]
    res = check_onnx(net, p, (1, 3, 32, 48))
    assert res.passed and res.max_abs_err < 1e-5 and res.opset == 13 and res.provider == "CPUExecutionProvider"
    # independent of check_onnx: run the file with onnxruntime here and compare with eager PyTorch
    import numpy as np
    import onnxruntime as ort

    x = np.random.default_rng(5).standard_normal((1, 3, 32, 48)).astype(np.float32)
    sess = ort.InferenceSession(str(p), providers=["CPUExecutionProvider"])
    (got,) = sess.run(None, {sess.get_inputs()[0].name: x})
    with torch.no_grad():
        ref = net.eval()(torch.from_numpy(x)).numpy()
    assert got.shape == ref.shape == (1, 5, 32, 48) and np.abs(got - ref).max() < 1e-5
    d = export_onnx(net, (1, 3, 32, 48), tmp_path / "d.onnx", dynamic=True, opset=17)
    assert check_onnx(net, d, (2, 3, 16, 64)).passed  # other batch and size through the same file


def test_check_detects_a_wrong_graph(tmp_path):
    p = export_onnx(Shift(), (1, 3, 4, 4), tmp_path / "shift.onnx")
    res = check_onnx(torch.nn.Identity(), p, (1, 3, 4, 4))  # compare against a model that does not shift
    assert not res.passed and res.max_abs_err == pytest.approx(1.0, abs=1e-6)


def test_bad_arguments(tmp_path):
    with pytest.raises(UserError, match="opset 12"):
        export_onnx(small(), (1, 3, 8, 8), tmp_path / "a.onnx", opset=12)
    with pytest.raises(UserError, match=r"\.onnx"):
        export_onnx(small(), (1, 3, 8, 8), tmp_path / "a.txt")
    with pytest.raises(UserError, match="exporter"):
        export_onnx(small(), (1, 3, 8, 8), tmp_path / "a.onnx", exporter="tf2onnx")


@pytest.mark.parametrize("model", PAPER_MODELS)
def test_zoo_models_export_and_match(model, tmp_path):
    res = export_and_check(model, (64, 128), tmp_path / f"{model}.onnx")
    assert res.passed, (res.max_abs_err, res.max_rel_err)
    assert res.max_abs_err <= 1e-4 and res.max_rel_err < 1e-4 and (tmp_path / f"{model}.onnx").is_file()


def test_cli_export(tmp_path, capsys):
    out = tmp_path / "r20.onnx"
    assert main(["export", "deeplabv3plus_resnet20", "--input", "32x64", "--out", str(out), "--json"]) == 0
    (row,) = json.loads(capsys.readouterr().out)
    assert row["passed"] and row["opset"] == 13 and row["input"] == [1, 3, 32, 64] and out.is_file()
    assert main(["export", "deeplabv3plus_resnet20", "--opset", "9", "--out", str(tmp_path / "x.onnx")]) == 2
    assert main(["export", "resnet51", "--out", str(tmp_path / "x.onnx")]) == 2
    assert not (tmp_path / "x.onnx").exists()  # a failed export leaves no file behind
