"""`use_tf32` goes to ONNX Runtime's CUDA provider only where it knows the option (>= 1.12): the
ORT-GPU 1.10/1.11 wheels of JetPack 4.6/5 refuse unknown provider options (issue 18)."""

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
