"""Backend runners on a tiny model: torch on CPU, onnxruntime on CPU, and the CLI's error paths."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from hwbench.cli import main
from hwbench.errors import UserError
from hwbench.latency.backends import RunSpec, check_onnx_file, get_runner_class, list_backends
from hwbench.latency.measure import MeasureConfig, measure, parse_hw, time_runner


def tiny() -> torch.nn.Module:
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3, padding=1), torch.nn.BatchNorm2d(8), torch.nn.ReLU(),
                               torch.nn.Conv2d(8, 4, 1)).eval()


def test_registry():
    assert list_backends() == ["torch", "onnxruntime", "tensorrt"]
    with pytest.raises(UserError, match="unknown backend 'tvm'; known: onnxruntime, tensorrt, torch"):
        get_runner_class("tvm")


def test_torch_cpu_runner_times_and_matches_eager():
    net = tiny()
    cls = get_runner_class("torch")
    spec = RunSpec("tiny", (1, 3, 16, 24), threads=1, channels_last=True).with_module(net)
    cls.check(spec)
    before = torch.get_num_threads()
    with cls(spec) as r:
        r.prepare()
        assert torch.get_num_threads() == 1
        samples, warm = time_runner(r, warmup_ms=5, iters=4)
        x = np.random.default_rng(1).standard_normal((1, 3, 16, 24)).astype(np.float32)
        (out,) = r.infer(x)
    assert torch.get_num_threads() == before  # restored on close
    assert len(samples) == 4 and all(s > 0 for s in samples) and warm >= 1
    with torch.no_grad():
        ref = net(torch.from_numpy(x)).numpy()
    np.testing.assert_allclose(out, ref, atol=1e-5)


def test_onnxruntime_runner_matches_torch():
    net = tiny()
    cls = get_runner_class("onnxruntime")
    spec = RunSpec("tiny", (1, 3, 16, 24), threads=1).with_module(net)
    cls.check(spec)
    x = np.random.default_rng(2).standard_normal((1, 3, 16, 24)).astype(np.float32)
    with cls(spec) as r:
        r.prepare()
        assert r.run_once() > 0
        (out,) = r.infer(x)
        tmp = r._tmp.name
    import os

    assert not os.path.exists(tmp)  # exported file removed on close
    with torch.no_grad():
        np.testing.assert_allclose(out, net(torch.from_numpy(x)).numpy(), atol=1e-5)


def test_measure_record_on_cpu():
    rec = measure(tiny(), (16, 16), MeasureConfig(iters=5, warmup_ms=5, threads=1), model_name="tiny")
    assert rec.backend == "torch" and rec.device == "host" and rec.input == [1, 3, 16, 16] and rec.iters == 5
    assert rec.min_ms <= rec.median_ms <= rec.p90_ms <= rec.p99_ms <= rec.max_ms
    assert rec.env["torch_threads"] == 1 and rec.env["device_name"] and rec.env["torch"] == torch.__version__
    assert rec.source == "measured" and rec.warmup >= 1 and rec.warmup_ms == 5


@pytest.mark.parametrize("precision, device, backend, match", [
    ("fp16", "cpu", "torch", "does not support fp16"),
    ("int8", "cpu", "torch", "int8 needs a TensorRT engine"),
    ("int8", "cpu", "onnxruntime", "int8 needs a TensorRT engine"),
    ("fp16", "cpu", "tensorrt", None),  # cpu: not supported by tensorrt (or tensorrt missing)
])
def test_unsupported_precision_is_a_user_error(precision, device, backend, match):
    cfg = MeasureConfig(backend=backend, precision=precision, device=device)
    with pytest.raises(UserError, match=match):
        measure(tiny(), (8, 8), cfg)


def test_option_checks():
    with pytest.raises(UserError, match="--cuda-graphs does not apply"):
        measure(tiny(), (8, 8), MeasureConfig(backend="onnxruntime", cuda_graphs=True))
    with pytest.raises(UserError, match="--onnx does not apply to --backend torch"):
        measure(tiny(), (8, 8), MeasureConfig(onnx_path="x.onnx"))
    with pytest.raises(UserError, match="--input must be HxW"):
        parse_hw("wide")
    assert parse_hw("512x1024") == (512, 1024)
    with pytest.raises(UserError):  # one --input parser for every command: HxW only, like `hwbench count`
        parse_hw("64")


def test_missing_and_corrupt_onnx(tmp_path, capsys):
    with pytest.raises(UserError, match="not found"):
        check_onnx_file(tmp_path / "none.onnx")
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"\x08\x07garbage that is not a protobuf model")
    with pytest.raises(UserError, match="not a valid ONNX model"):
        check_onnx_file(bad)
    for path in (tmp_path / "none.onnx", bad):
        assert main(["measure", "deeplabv3plus_resnet20", "--backend", "onnxruntime", "--onnx", str(path),
                     "--input", "32x64", "--iters", "1"]) == 2
        err = capsys.readouterr().err
        assert err.startswith("error: ") and err.count("\n") == 1


def test_onnx_shape_mismatch(tmp_path):
    from hwbench.export import export_onnx

    path = export_onnx(tiny(), (1, 3, 16, 16), tmp_path / "t.onnx")
    with pytest.raises(UserError, match="expects input 1x3x16x16, not 1x3x32x32"):
        measure("unused", (32, 32), MeasureConfig(backend="onnxruntime", onnx_path=str(path)), model_name="t")
    rec = measure("unused", (16, 16), MeasureConfig(backend="onnxruntime", onnx_path=str(path), iters=2,
                                                     warmup_ms=0), model_name="t")
    assert rec.env["providers"] == ["CPUExecutionProvider"] and rec.env["onnxruntime"]


def test_cli_measure_zoo_model_json_and_out(tmp_path, capsys):
    assert main(["measure", "deeplabv3plus_resnet20", "--input", "32x64", "--iters", "3", "--warmup-ms", "10",
                 "--threads", "1", "--json", "--out", str(tmp_path)]) == 0
    (row,) = json.loads(capsys.readouterr().out)
    assert row["model"] == "deeplabv3plus_resnet20" and row["input"] == [1, 3, 32, 64] and row["iters"] == 3
    assert json.loads((tmp_path / "measurements.jsonl").read_text())["median_ms"] == row["median_ms"]
    assert main(["measure", "deeplabv3plus_resnet20", "--precision", "int8", "--input", "32x64"]) == 2
    assert main(["measure", "deeplabv3plus_resnet20", "--backend", "tvm"]) == 2
