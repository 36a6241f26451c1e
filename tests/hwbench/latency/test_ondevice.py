"""The stand-alone on-device script: imports, argument parsing, records, missing TensorRT."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from dataclasses import fields
from pathlib import Path

import pytest

from hwbench import ondevice
from hwbench.latency.measure import Measurement

SCRIPT = Path(ondevice.__file__)
# the standard library, numpy, TensorRT + pycuda, and the optional ONNX Runtime / OpenCV / Pillow
ALLOWED_TOP = set(sys.stdlib_module_names) | {"numpy", "tensorrt", "pycuda", "onnxruntime", "cv2", "PIL"}


def test_imports_only_stdlib_numpy_tensorrt_pycuda():
    tree = ast.parse(SCRIPT.read_text())
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            assert node.level == 0, "no relative imports in a file copied alone"
            names.add(node.module.split(".")[0])
    assert "hwbench" not in names and "torch" not in names
    assert names <= ALLOWED_TOP, names - ALLOWED_TOP
    top_level = {a.name.split(".")[0] for n in tree.body if isinstance(n, (ast.Import, ast.ImportFrom))
                 for a in (n.names if isinstance(n, ast.Import) else [ast.alias(n.module)])}
    assert not top_level & (ALLOWED_TOP - set(sys.stdlib_module_names)), "heavy packages must be imported lazily"


def test_runs_alone_without_tensorrt(tmp_path):
    """Copied alone into an empty directory, with tensorrt blocked: one-line error, exit 2."""
    alone = tmp_path / "ondevice.py"
    alone.write_text(SCRIPT.read_text())
    onnx = tmp_path / "m.onnx"
    onnx.write_bytes(b"not really onnx")
    blocker = tmp_path / "tensorrt.py"
    blocker.write_text("raise ImportError('blocked for the test')\n")
    proc = subprocess.run([sys.executable, "-S", str(alone), "bench", "--onnx", str(onnx), "--fp16"],
                          capture_output=True, text=True, cwd=tmp_path, timeout=60)
    assert proc.returncode == 2
    assert proc.stderr.startswith("error: tensorrt is not installed") and proc.stderr.count("\n") == 1


def test_argument_parsing_and_precision():
    a = ondevice.build_parser().parse_args(["bench", "--onnx", "m.onnx", "--int8", "--dla-core", "1",
                                            "--iters", "50", "--out", "r.jsonl", "--shape", "1x3x64x128"])
    assert (a.onnx, a.int8, a.fp16, a.dla_core, a.iters, a.out) == ("m.onnx", True, False, 1, 50, "r.jsonl")
    assert ondevice.precision_from_flags(a.fp16, a.int8) == "int8"
    assert ondevice.precision_from_flags(True, False) == "fp16" and ondevice.precision_from_flags(False, False) == "fp32"
    assert ondevice.parse_shape(a.shape) == (1, 3, 64, 128)
    with pytest.raises(ondevice.BenchError):
        ondevice.parse_shape("64x128")


def test_bad_options_exit_2_before_touching_tensorrt(capsys):
    assert ondevice.main(["bench", "--onnx", "m.onnx", "--dla-core", "0"]) == 2  # DLA needs fp16/int8
    assert "DLA runs fp16 or int8" in capsys.readouterr().err
    assert ondevice.main(["bench", "--onnx", "m.onnx", "--iters", "0"]) == 2


def test_record_has_measurement_keys_and_loads(tmp_path):
    comps = {"latency": [9.0, 9.5, 10.0], "h2d": [1.0, 1.0, 1.1], "d2h": [2.0, 2.1, 2.0], "enqueue": [0.3] * 3}
    rec = ondevice.make_record(compute_ms=[6.0, 6.5, 7.0], components=comps, model="m", device="tx2",
                               precision="fp16", input_shape=(1, 3, 64, 128), warmup=12, warmup_ms=500.0,
                               env={"device_name": "NVIDIA Tegra X2", "tensorrt": "8.2.1"})
    assert set(rec) == {f.name for f in fields(Measurement)}
    assert rec["latency_ms"] == rec["median_ms"] == 6.5 and rec["components"]["latency"]["median_ms"] == 9.5
    out = tmp_path / "r.jsonl"
    ondevice.append_jsonl(out, rec)
    ondevice.append_jsonl(out, {**rec, "model": "m2"})
    loaded = [Measurement.from_dict(json.loads(line)) for line in out.read_text().splitlines()]
    assert [r.model for r in loaded] == ["m", "m2"] and loaded[0].source == "ondevice"
