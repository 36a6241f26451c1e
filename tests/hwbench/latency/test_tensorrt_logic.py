"""TensorRT runner: the pure logic (build settings, network flags, engine cache key) for real;
the TensorRT calls only where tensorrt + pycuda + a GPU exist."""

from __future__ import annotations

import importlib.util
import sys

import pytest

from hwbench.cli import main
from hwbench.errors import UserError
from hwbench.latency.backends import RunSpec, get_runner_class
from hwbench.latency.backends.tensorrt import (
    BuildSettings,
    Int8Calibration,
    TrtRunner,
    build_settings,
    engine_cache_key,
    engine_cache_path,
    network_flags,
    trt_major,
)


def test_build_settings_per_precision():
    assert build_settings("fp32").builder_flags == ()
    assert build_settings("fp16").builder_flags == ("FP16",)
    s = build_settings("int8")
    assert s.builder_flags == ("FP16", "INT8")  # int8 with fp16 fallback (trtexec --int8 --fp16)
    assert s.calibration == Int8Calibration() and s.calibration.mode == "latency-only"
    assert s.device_type == "GPU" and s.workspace_bytes == 1024 << 20


def test_build_settings_dla():
    s = build_settings("fp16", dla_core=1, workspace_mb=256)
    assert s.device_type == "DLA" and s.dla_core == 1 and s.workspace_bytes == 256 << 20
    assert s.builder_flags == ("FP16", "GPU_FALLBACK")
    assert build_settings("int8", dla_core=0, gpu_fallback=False).builder_flags == ("FP16", "INT8")


@pytest.mark.parametrize("kw, match", [
    ({"precision": "fp32", "dla_core": 0}, "DLA runs fp16 or int8"),
    ({"precision": "fp16", "dla_core": -1}, "dla-core"),
    ({"precision": "bf16"}, "unknown precision"),
    ({"precision": "fp16", "workspace_mb": 0}, "workspace"),
    ({"precision": "fp16", "calibration": Int8Calibration(data_dir="x")}, "without --int8"),
    ({"precision": "int8", "calibration": Int8Calibration(data_dir="/no/such/dir")}, "not a directory"),
])
def test_build_settings_errors(kw, match):
    precision = kw.pop("precision")
    with pytest.raises(UserError, match=match):
        build_settings(precision, **kw)


def test_calibration_modes(tmp_path):
    import numpy as np

    cache = tmp_path / "calib.cache"
    assert Int8Calibration(cache_file=str(cache)).mode == "latency-only"  # cache not written yet
    cache.write_bytes(b"TRT-8502-EntropyCalibration2\ninput: 3c010a14\n")
    assert Int8Calibration(cache_file=str(cache)).mode == "cache"
    d = tmp_path / "batches"
    d.mkdir()
    np.save(d / "000.npy", np.zeros((1, 3, 4, 4), np.float32))
    c = Int8Calibration(data_dir=str(d))
    assert c.mode == "entropy" and c.ident().startswith("entropy:1:")


def test_network_flags():
    assert network_flags(8, explicit_batch_bit=0) == 1  # 1 << EXPLICIT_BATCH (= 0 in TensorRT 8.x)
    assert network_flags(7, explicit_batch_bit=0) == 1
    assert network_flags(10, explicit_batch_bit=0) == 0  # explicit batch is the only mode in 10.x
    assert trt_major("8.2.1.8") == 8 and trt_major("10.3.0") == 10


def _key(**over):
    kw = dict(model="deeplabv3plus_resnet18", onnx_sha256="a" * 64, input_shape=(1, 3, 512, 1024),
              settings=build_settings("fp16"), trt_version="8.2.1", device_name="NVIDIA Tegra X2")
    kw.update(over)
    return engine_cache_key(**kw)


def test_engine_cache_key_covers_what_changes_an_engine():
    base = _key()
    assert base.startswith("deeplabv3plus_resnet18_1x3x512x1024_fp16_gpu_trt8.2.1_")
    assert base == _key()  # deterministic
    variants = [_key(onnx_sha256="b" * 64), _key(input_shape=(1, 3, 256, 512)), _key(settings=build_settings("int8")),
                _key(settings=build_settings("fp16", dla_core=0)), _key(settings=build_settings("fp16", dla_core=1)),
                _key(trt_version="10.3.0"), _key(device_name="Xavier"), _key(model="other")]
    assert len({base, *variants}) == len(variants) + 1
    assert "_dla1_" in _key(settings=build_settings("fp16", dla_core=1))
    static = _key(input_shape=None)  # static ONNX input: the shape is in the hashed ONNX content
    assert "_static_fp16_" in static and static not in variants and static != base


def test_engine_cache_path_honours_env(tmp_path, monkeypatch):
    monkeypatch.setenv("HWBENCH_CACHE_DIR", str(tmp_path))
    assert engine_cache_path("k") == tmp_path / "engines" / "k.engine"
    assert engine_cache_path("k", tmp_path / "x") == tmp_path / "x" / "engines" / "k.engine"
    monkeypatch.delenv("HWBENCH_CACHE_DIR")
    assert str(engine_cache_path("k")).endswith(".cache/hwbench/engines/k.engine")


def test_runner_class_checks(monkeypatch):
    monkeypatch.setitem(sys.modules, "tensorrt", None)  # as if not installed
    assert get_runner_class("tensorrt") is TrtRunner and not TrtRunner.available()
    with pytest.raises(UserError, match=r"tensorrt is not installed.*hwbench\[trt\]"):
        TrtRunner.check(RunSpec("m", (1, 3, 8, 8), precision="fp16", device="cuda"))
    assert isinstance(build_settings("fp16"), BuildSettings)


def test_cli_tensorrt_not_installed(monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "tensorrt", None)
    assert main(["measure", "deeplabv3plus_resnet20", "--backend", "tensorrt", "--backend-device", "cuda",
                 "--precision", "fp16", "--input", "64x128"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: tensorrt is not installed") and err.count("\n") == 1


def test_cli_int8_on_tx2_refused(capsys):
    assert main(["measure", "deeplabv3plus_resnet20", "--backend", "tensorrt", "--backend-device", "cuda",
                 "--precision", "int8", "--device", "tx2", "--input", "64x128"]) == 2
    assert "'tx2' has no int8" in capsys.readouterr().err


HAVE_TRT = all(importlib.util.find_spec(m) is not None for m in ("tensorrt", "pycuda"))


@pytest.mark.skipif(not HAVE_TRT, reason="needs tensorrt, pycuda and an NVIDIA GPU")
def test_tensorrt_runner_end_to_end(tmp_path):  # pragma: no cover - runs only on a GPU machine
    import torch

    from hwbench.latency.measure import MeasureConfig, measure

    net = torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3, padding=1), torch.nn.ReLU()).eval()
    rec = measure(net, (32, 32), MeasureConfig(backend="tensorrt", device="cuda", precision="fp16", iters=20,
                                               warmup_ms=50), model_name="tiny")
    assert rec.median_ms > 0 and "latency" in rec.components and rec.env["tensorrt"]


def test_workspace_flag_reaches_the_build_settings():
    from hwbench.latency.backends.tensorrt import _build_kw

    spec = RunSpec(model_name="m", input_shape=(1, 3, 8, 8), precision="fp16", device="cuda", workspace_mb=512)
    assert build_settings(spec.precision, **_build_kw(spec)).workspace_bytes == 512 << 20
    default = RunSpec(model_name="m", input_shape=(1, 3, 8, 8), precision="fp16", device="cuda")
    assert build_settings(default.precision, **_build_kw(default)).workspace_bytes == 1024 << 20
    zero = RunSpec(model_name="m", input_shape=(1, 3, 8, 8), precision="fp16", device="cuda", workspace_mb=0)
    with pytest.raises(UserError, match="workspace"):
        build_settings(zero.precision, **_build_kw(zero))
