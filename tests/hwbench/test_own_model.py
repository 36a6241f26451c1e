"""Every command on each of the four model forms: an ONNX file built with `onnx.helper` (MACs computed by
hand), a `file.py:callable` in a temporary directory, a `package.module:callable`, and a zoo name. Each
exits 0 and reports the same MACs everywhere; what cannot apply to a form says so in one line."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

onnx = pytest.importorskip("onnx")
from onnx import TensorProto, helper, numpy_helper  # noqa: E402

from hwbench.cli import main  # noqa: E402

# The same small CNN as an ONNX graph and as a PyTorch module, at input 1x3x10x12:
#   conv 3->8 3x3 s2 p1 (-> 5x6), relu, grouped conv 8->8 g4 3x3 dilation 2 p2, transposed conv 8->2 2x2 s2
#   (-> 10x12), global average pool, linear 2->10.
TINY_MACS = 8 * 3 * 9 * 30 + 8 * 2 * 9 * 30 + 8 * 2 * 4 * 30 + 2 * 10   # 6480 + 4320 + 1920 + 20
TINY_PARAMS = (8 * 27 + 8) + 8 * 2 * 9 + (8 * 2 * 4 + 2) + (2 * 10 + 10)
# resnet20 (CIFAR) at its own input 1x3x32x32: stem, 3 stages of 6 3x3 convs (stages 2, 3 open with a stride-2
# conv and a 1x1 shortcut), linear 64 -> 10
RESNET20_MACS = (9 * 3 * 16 * 1024 + 6 * 9 * 16 * 16 * 1024
                 + (9 * 16 * 32 + 5 * 9 * 32 * 32 + 16 * 32) * 256 + (9 * 32 * 64 + 5 * 9 * 64 * 64 + 32 * 64) * 64
                 + 64 * 10)

TINY_PY = '''
from torch import nn


def build():
    m = nn.Sequential(nn.Conv2d(3, 8, 3, stride=2, padding=1), nn.ReLU(),
                      nn.Conv2d(8, 8, 3, padding=2, dilation=2, groups=4, bias=False),
                      nn.ConvTranspose2d(8, 2, 2, stride=2), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(2, 10))
    m.input_hw = (10, 12)
    return m
'''


def _tiny_onnx(path: Path) -> Path:
    rng = np.random.default_rng(0)

    def w(name, *shape):
        return numpy_helper.from_array(rng.standard_normal(shape).astype(np.float32), name)

    nodes = [
        helper.make_node("Conv", ["x", "w1", "b1"], ["c1"], kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["c1"], ["r1"]),
        helper.make_node("Conv", ["r1", "w2"], ["c2"], kernel_shape=[3, 3], group=4, dilations=[2, 2], pads=[2, 2, 2, 2]),
        helper.make_node("ConvTranspose", ["c2", "w3", "b3"], ["d"], kernel_shape=[2, 2], strides=[2, 2]),
        helper.make_node("GlobalAveragePool", ["d"], ["p"]),
        helper.make_node("Flatten", ["p"], ["f"]),
        helper.make_node("Gemm", ["f", "w4", "b4"], ["y"], transB=1),
    ]
    g = helper.make_graph(nodes, "tiny", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 10, 12])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 10])],
                          initializer=[w("w1", 8, 3, 3, 3), w("b1", 8), w("w2", 8, 2, 3, 3), w("w3", 8, 2, 2, 2),
                                       w("b3", 2), w("w4", 10, 2), w("b4", 10)])
    onnx.save_model(helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)]), str(path))
    return path


@pytest.fixture()
def forms(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, tuple[str, int]]:
    """form -> (MODEL argument, MACs at its own input); the current directory is `tmp_path`."""
    monkeypatch.chdir(tmp_path)
    _tiny_onnx(tmp_path / "tiny.onnx")
    (tmp_path / "models").mkdir()
    (tmp_path / "models" / "tiny_file.py").write_text(TINY_PY)
    (tmp_path / "mypkg").mkdir()
    (tmp_path / "mypkg" / "__init__.py").write_text("")
    (tmp_path / "mypkg" / "nets.py").write_text(TINY_PY)
    return {"onnx": ("tiny.onnx", TINY_MACS), "file": ("models/tiny_file.py:build", TINY_MACS),
            "package": ("mypkg.nets:build", TINY_MACS), "zoo": ("resnet20", RESNET20_MACS)}


def _json(capsys, argv: list[str]) -> list[dict]:
    code = main(argv)
    out, err = capsys.readouterr()
    assert code == 0, (argv, err)
    return json.loads(out)


FORMS = ("onnx", "file", "package", "zoo")


@pytest.mark.parametrize("form", FORMS)
def test_every_command_on_every_form(form: str, forms, tmp_path: Path, capsys) -> None:
    model, macs = forms[form]
    (c,) = _json(capsys, ["count", model, "--json"])
    assert c["macs"] == macs and c["counter"] == ("onnx" if form == "onnx" else "meta")
    if form != "zoo":
        assert c["params"] == TINY_PARAMS and c["input"] == [1, 3, 10, 12]  # the model's own input
    else:
        assert c["input"] == [1, 3, 32, 32]
    lat = _json(capsys, ["latency", model, "--device", "tx2", "orin_nx", "--json"])
    assert [r["macs"] for r in lat] == [macs, macs] and all(r["latency_ms"] > 0 for r in lat)
    (paper,) = _json(capsys, ["latency", model, "--device", "tx2", "--mode", "paper", "--json"])
    assert paper["latency_ms"] == pytest.approx(macs / (1.3 * 1e9))  # GMACs / paper TOPS, in ms
    (dep,) = _json(capsys, ["deploy", model, "--device", "tx2", "--fps", "30", "--json"])
    assert dep["macs"] == macs and dep["deployable"] is True
    (meas,) = _json(capsys, ["measure", model, "--iters", "3", "--warmup-ms", "1", "--out", str(tmp_path / "m"),
                             "--json"])
    assert meas["backend"] == ("onnxruntime" if form == "onnx" else "torch") and meas["median_ms"] > 0
    assert meas["input"] == ([1, 3, 32, 32] if form == "zoo" else [1, 3, 10, 12])
    assert main(["report", "--models", model, "--out", str(tmp_path / "r"), "--device", "tx2"]) == 0
    counts = (tmp_path / "r" / "counts.csv").read_text().splitlines()
    assert len(counts) == 2 and str(macs / 1e9)[:6] in counts[1]
    capsys.readouterr()
    if form == "onnx":  # export of an ONNX file: one line saying why
        assert main(["export", model, "--onnx-out", str(tmp_path / "x.onnx")]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and "already an ONNX file" in err[0] and not (tmp_path / "x.onnx").exists()
    else:
        pytest.importorskip("onnxruntime")
        (ex,) = _json(capsys, ["export", model, "--onnx-out", str(tmp_path / "x.onnx"), "--json"])
        assert ex["passed"] is True and ex["input"][2:] == ([32, 32] if form == "zoo" else [10, 12])
        (again,) = _json(capsys, ["count", str(tmp_path / "x.onnx"), "--json"])
        assert again["macs"] == macs  # the export, counted from its graph, has the same MACs


def test_predict_takes_every_form(forms, tmp_path: Path, capsys) -> None:
    out = tmp_path / "m"
    for model in ("resnet20", "mobilenetv3_small", "models/tiny_file.py:build"):
        assert main(["measure", model, "--iters", "3", "--warmup-ms", "1", "--input", "32x32", "--out", str(out)]) == 0
    capsys.readouterr()
    for form in FORMS:
        size = [] if form == "onnx" else ["--input", "32x32"]  # the ONNX file is fixed at 10x12
        rows = _json(capsys, ["predict", "--measurements", str(out / "measurements.jsonl"), "--model", forms[form][0],
                              *size, "--json"])
        assert rows and all(r["predicted_ms"] > 0 for r in rows), form
        assert {r["train_points"] for r in rows} == {3}  # the callable's records resolve again: three models


@pytest.mark.parametrize(("argv", "needle"), [
    (["count", "nosuch"], "unknown model 'nosuch'; known: "),
    (["count", "nosuch.onnx"], "ONNX file 'nosuch.onnx' not found"),
    (["count", "models/missing.py:build"], "Python file 'models/missing.py' not found"),
    (["count", "models/tiny_file.py:nothing"], "has no attribute 'nothing'"),
    (["count", "no_such_pkg.mod:build"], "no module named 'no_such_pkg'"),
    (["count", "tiny.onnx", "--input", "20x20"], "fixed at 1x3x10x12, not 1x3x20x20"),
    (["count", "tiny.onnx", "--counter", "fvcore"], "--counter fvcore counts PyTorch models"),
    (["count", "tiny.onnx", "--num-classes", "3"], "--num-classes applies to zoo models only"),
    (["latency", "tiny.onnx", "--score", "entropy"], "--score wraps a zoo model"),
])
def test_bad_forms_one_line(argv, needle, forms, capsys) -> None:
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and needle in err[0], err
    if "unknown model" in needle:
        assert "FILE.onnx, path/to/file.py:callable or package.module:callable" in err[0]


def test_callable_without_declared_input(tmp_path: Path, monkeypatch, capsys) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "net.py").write_text("from torch import nn\nclass Net(nn.Sequential):\n"
                                     "    def __init__(self):\n        super().__init__(nn.Conv2d(3, 4, 1))\n")
    assert main(["count", "net.py:Net"]) == 2
    assert "no input size declared; pass --input HxW" in capsys.readouterr().err
    (c,) = _json(capsys, ["count", "net.py:Net", "--input", "5x7", "--json"])
    assert c["macs"] == 3 * 4 * 35 and c["model"] == "Net"


def test_dynamic_onnx_needs_input(tmp_path: Path, monkeypatch, capsys) -> None:
    monkeypatch.chdir(tmp_path)
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 3, "H", "W"])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, None)
    w = numpy_helper.from_array(np.ones((4, 3, 1, 1), np.float32), "w")
    g = helper.make_graph([helper.make_node("Conv", ["x", "w"], ["y"])], "d", [x], [y], initializer=[w])
    onnx.save_model(helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)]), "dyn.onnx")
    assert main(["count", "dyn.onnx"]) == 2
    assert "dynamic dimensions; pass --input HxW" in capsys.readouterr().err
    (c,) = _json(capsys, ["count", "dyn.onnx", "--input", "6x8", "--batch", "2", "--json"])
    assert c["macs"] == 2 * 12 * 48 and c["input"] == [2, 3, 6, 8]


def test_defaults_are_the_models_own_and_labels_unique(capsys, monkeypatch) -> None:
    monkeypatch.setenv("COLUMNS", "250")
    rows = _json(capsys, ["count", "resnet18", "deeplabv3plus_resnet18", "--json"])
    assert [r["input"] for r in rows] == [[1, 3, 224, 224], [1, 3, 1024, 2048]]  # as `hwbench models` lists them
    assert main(["latency", "resnet18", "deeplabv3plus_resnet18", "--device", "tx2"]) == 0
    out = capsys.readouterr().out
    assert "Res-18" not in out and "deeplabv3plus_resnet18" in out and "1x3x224x224" in out  # both share Res-18
    assert main(["latency", "resnet50", "deeplabv3plus_resnet18", "--device", "tx2"]) == 0
    out = capsys.readouterr().out
    assert "Res-50" in out and "Res-18" in out


def test_python_api_defaults() -> None:
    import hwbench

    est = hwbench.latency("resnet18", "tx2")
    assert est.mode == "roofline" and est.input == (1, 3, 224, 224)
    assert hwbench.count("resnet18").input == [1, 3, 224, 224]


def test_register_model_then_every_api_takes_its_name() -> None:
    """docs/own-model.md: a builder added with `register_model` is a zoo name for count/latency/deploy."""
    from torch import nn

    import hwbench
    from hwbench.models.registry import MODELS, register_model

    @register_model(label="Mine", task="segmentation", family="custom", num_classes=19, default_input=(1, 3, 10, 12),
                    output_stride=16)
    def my_tiny_segmenter(*, num_classes: int = 19, output_stride: int = 16) -> nn.Module:
        return nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.Conv2d(8, num_classes, 1))

    try:
        macs = 10 * 12 * (3 * 8 * 9 + 8 * 19)
        assert hwbench.count("my_tiny_segmenter").macs == macs
        assert hwbench.count("my_tiny_segmenter", num_classes=5).macs == 10 * 12 * (3 * 8 * 9 + 8 * 5)
        assert hwbench.latency("my_tiny_segmenter", "tx2").macs == macs
        (v,) = hwbench.deploy(["my_tiny_segmenter"], ["tx2"], fps=30)
        assert v.macs == macs and v.input == (1, 3, 10, 12)
    finally:
        MODELS.pop("my_tiny_segmenter", None)
