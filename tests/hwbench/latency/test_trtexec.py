"""trtexec log / --exportTimes parsing against values written in the fixtures (tests/data/trtexec)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from hwbench.cli import main
from hwbench.errors import UserError
from hwbench.latency.trtexec import ingest, parse_log, trt_version_from_tag

DATA = Path(__file__).resolve().parents[2] / "data" / "trtexec"


def test_tensorrt_8_5_one_line_format_with_three_percentiles():
    (rec,) = ingest(DATA / "trt8.5_xavier_nx_fp16.log")
    assert (rec.model, rec.precision, rec.input) == ("deeplabv3plus_mobilenetv3_small", "fp16", [1, 3, 512, 1024])
    assert rec.device == "xavier" and rec.env["device_name"] == "Xavier" and rec.env["tensorrt"] == "8.5.2"
    assert (rec.min_ms, rec.median_ms, rec.mean_ms, rec.max_ms) == (12.0369, 12.314, 12.3397, 15.541)
    assert (rec.p90_ms, rec.p99_ms) == (12.4656, 12.5907)
    assert rec.components["gpu_compute"]["p95_ms"] == 12.4973
    assert rec.latency_ms == rec.median_ms  # headline = GPU compute median
    assert (rec.iters, rec.warmup, rec.warmup_ms) == (241, 29, 500.0)
    assert rec.components["latency"]["median_ms"] == 17.2489
    assert rec.components["h2d"]["median_ms"] == 1.52376 and rec.components["d2h"]["median_ms"] == 3.41245
    assert rec.env["throughput_qps"] == 57.6622 and rec.env["total_gpu_compute_s"] == 2.97388
    assert rec.std_ms is None and rec.source == "trtexec-log"


def test_tensorrt_8_2_single_percentile_and_end_to_end_line():
    (rec,) = ingest(DATA / "trt8.2_tx2_fp16.log", device="tx2")
    assert rec.device == "tx2" and rec.env["tensorrt"] == "8.2.1" and rec.precision == "fp16"
    assert rec.model == "deeplabv3plus_resnet18_256x512" and rec.input == [1, 3, 256, 512]
    assert (rec.median_ms, rec.p99_ms, rec.p90_ms) == (83.9889, 102.998, None)  # before 8.5.1: only 99 %
    assert rec.components["e2e_host"]["median_ms"] == 85.1745
    assert rec.iters == 37 and rec.warmup == 3


def test_tensorrt_7_multi_line_blocks():
    (rec,) = ingest(DATA / "trt7.1_tx2_fp32.log")
    assert rec.env["trtexec_format"].startswith("multi-line")
    assert (rec.min_ms, rec.max_ms, rec.mean_ms, rec.median_ms, rec.p99_ms) == (200.548, 203.902, 201.988, 201.787,
                                                                               203.902)
    assert rec.components["latency"]["median_ms"] == 204.156
    assert rec.components["e2e_host"]["median_ms"] == 204.177
    assert rec.components["enqueue"]["median_ms"] == 9.71353
    assert rec.env["throughput_qps"] == 4.87888 and rec.env["total_gpu_compute_s"] == 2.82784
    assert rec.precision == "fp32" and rec.input == [1, 3, 512, 1024] and rec.model == "deeplabv3plus_resnet50"
    assert rec.iters == 14


def test_tensorrt_10_int8_dla_log():
    (rec,) = ingest(DATA / "trt10.3_orin_nx_int8_dla.log", device="orin_nx", model="dlv3p_r20")
    assert (rec.model, rec.device, rec.precision) == ("dlv3p_r20", "orin_nx", "int8")
    assert rec.env["dla_core"] == 0 and rec.env["tensorrt"] == "10.3.0"
    assert (rec.median_ms, rec.p90_ms, rec.p99_ms) == (5.61672, 5.68026, 5.72275)
    assert rec.input == [1, 3, 512, 1024] and rec.iters == 523


def test_export_times_json_stats_computed_here():
    (rec,) = ingest(DATA / "times_orin_nx.json", precision="int8", input_shape=[1, 3, 512, 1024])
    # computeMs in the file: 5.31 5.62 5.05 5.48 5.90 5.17 5.74 5.26 5.55 5.39
    assert rec.iters == 10 and rec.source == "trtexec-times"
    assert (rec.min_ms, rec.max_ms) == (5.05, 5.90)
    assert rec.median_ms == pytest.approx(5.435) and rec.p90_ms == 5.74 and rec.p99_ms == 5.90
    assert rec.components["latency"]["median_ms"] == pytest.approx(0.81 + 5.435 + 1.93)
    assert rec.components["enqueue"]["median_ms"] == pytest.approx(0.29)
    assert rec.precision == "int8" and rec.warnings == []


def test_scientific_notation_and_prefix_variants():
    text = "\n".join([
        "[INFO] [05/27/2023-12:05:31] [I] === Performance summary ===",
        "[INFO] [05/27/2023-12:05:31] [I] Throughput: 120.699 qps",
        "GPU Compute Time: min = 7.54407 ms, max = 10.1723 ms, mean = 8.23978 ms, median = 8.19409 ms, "
        "percentile(90%) = 8.5354 ms, percentile(95%) = 8.59131 ms, percentile(99%) = 9.90002 ms",
        "[05/27/2023-12:05:31] [I] D2H Latency: min = 6.83594e-05 ms, max = 1.2e-04 ms, mean = 9e-05 ms, "
        "median = 8.5e-05 ms, percentile(99.5%) = 1.1e-04 ms",
    ])
    (run,) = parse_log(text)
    assert run.metrics["gpu_compute"]["p90_ms"] == 8.5354 and run.throughput_qps == 120.699
    assert run.metrics["d2h"]["min_ms"] == pytest.approx(6.83594e-05)
    assert run.metrics["d2h"]["p99_5_ms"] == pytest.approx(1.1e-04)


def test_version_tags():
    assert trt_version_from_tag("8201") == "8.2.1"
    assert trt_version_from_tag("8502") == "8.5.2"
    assert trt_version_from_tag("100900") == "10.9.0"


def test_not_trtexec_output_is_a_user_error(tmp_path, capsys):
    other = tmp_path / "train.log"
    other.write_text("epoch 1 loss 0.53\nepoch 2 loss 0.41\n")
    with pytest.raises(UserError, match="not trtexec output"):
        ingest(other)
    assert main(["ingest", "trtexec", str(other)]) == 2
    assert "not trtexec output" in capsys.readouterr().err
    failed = tmp_path / "failed.log"
    failed.write_text("&&&& RUNNING TensorRT.trtexec [TensorRT v8502] # trtexec --onnx=x.onnx\n"
                      "[03/14/2024-10:21:07] [E] [TRT] ModelImporter.cpp:726: ERROR: x.onnx:0 In node -1\n"
                      "&&&& FAILED TensorRT.trtexec [TensorRT v8502] # trtexec --onnx=x.onnx\n")
    with pytest.raises(UserError, match="FAILED"):
        ingest(failed)
    bad_json = tmp_path / "times.json"
    bad_json.write_text(json.dumps([{"foo": 1}]))
    assert main(["ingest", "trtexec", str(bad_json)]) == 2
    assert main(["ingest", "trtexec", str(tmp_path / "missing.log")]) == 2
    assert main(["ingest", "nsys", str(other)]) == 2


def test_int8_log_on_a_device_without_int8_is_refused(capsys):
    assert main(["ingest", "trtexec", str(DATA / "trt8.2_tx2_fp16.log"), "--device", "tx2",
                 "--precision", "int8"]) == 2
    assert "int8" in capsys.readouterr().err
    assert main(["ingest", "trtexec", str(DATA / "trt10.3_orin_nx_int8_dla.log"), "--device", "tx2"]) == 2


def test_cli_json_and_out(tmp_path, capsys):
    assert main(["ingest", "trtexec", str(DATA / "trt8.5_xavier_nx_fp16.log"), "--device", "xavier_nx",
                 "--json", "--out", str(tmp_path)]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert rows[0]["median_ms"] == 12.314 and rows[0]["device"] == "xavier_nx"
    lines = (tmp_path / "measurements.jsonl").read_text().splitlines()
    assert len(lines) == 1 and json.loads(lines[0])["model"] == "deeplabv3plus_mobilenetv3_small"
