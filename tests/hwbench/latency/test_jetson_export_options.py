"""Issue 18 on the server side: `use_tf32` goes to ONNX Runtime's CUDA provider only where it knows
the option (>= 1.12; the ORT-GPU 1.10/1.11 wheels of JetPack 4.6/5 refuse unknown provider options),
and a sum-aggregated score says when it passes fp16's range."""

import sys
import types

from hwbench.latency.backends.onnxrt import select_providers


def test_select_providers_by_ort_version():
    avail = ["CUDAExecutionProvider", "CPUExecutionProvider"]
    assert select_providers("cuda", avail, "1.10.0") == [("CUDAExecutionProvider", {}), "CPUExecutionProvider"]
    assert select_providers("cuda", avail, "1.11.1")[0] == ("CUDAExecutionProvider", {})
    assert select_providers("cuda", avail, "1.12.0")[0] == ("CUDAExecutionProvider", {"use_tf32": 0})
    assert select_providers("cuda", avail, "1.20.1")[0] == ("CUDAExecutionProvider", {"use_tf32": 0})
    assert select_providers("cpu", avail, "1.10.0") == ["CPUExecutionProvider"]


def test_export_check_providers_by_ort_version(monkeypatch):
    from hwbench.export import ort_providers

    for version, want in (("1.10.0", {}), ("1.17.3", {"use_tf32": 0})):
        fake = types.ModuleType("onnxruntime")
        fake.__version__ = version
        fake.get_available_providers = lambda: ["CUDAExecutionProvider", "CPUExecutionProvider"]
        monkeypatch.setitem(sys.modules, "onnxruntime", fake)
        assert ort_providers() == [("CUDAExecutionProvider", want), "CPUExecutionProvider"]


def test_sum_aggregation_bound_and_fp16():
    """Issue 18: a sum of per-pixel entropy over 128x256 with 19 classes reaches ln(19) * 32768 ~ 9.6e4,
    above fp16's 65504 (ondevice.py keeps reduce layers in fp32 then; the export says so)."""
    import math

    from hwbench.export import FP16_MAX, score_bound

    b = score_bound("entropy", "sum", 19, (128, 256))
    assert b == math.log(19) * 128 * 256 and 9.6e4 < b < 9.7e4 and b > FP16_MAX
    assert score_bound("margin", "sum", 19, (128, 256)) == 32768.0 < FP16_MAX
    assert score_bound("entropy", "mean", 19, (128, 256)) is None
    assert score_bound("llal", "sum", 19, (128, 256)) is None


def test_export_records_the_bound_and_warns_above_fp16(tmp_path, monkeypatch, caplog):
    import logging
    import math

    import onnx

    from hwbench import export

    monkeypatch.setattr(export, "FP16_MAX", 1000.0)      # the 32x64 bound (ln 8 * 2048 ~ 4259) is then "above"
    with caplog.at_level(logging.WARNING, logger="hwbench.export"):
        res = export.export_and_check("deeplabv3plus_resnet20", (32, 64), tmp_path / "s.onnx", score="entropy",
                                      aggregation="sum", num_classes=8)
    assert res.passed
    meta = {p.key: p.value for p in onnx.load(str(tmp_path / "s.onnx")).metadata_props}
    assert float(meta["hwbench.score_max"]) == float(f"{math.log(8) * 32 * 64:.6g}")
    assert "fp32" in meta["hwbench.fp16"] and "ondevice.py" in caplog.text
