"""trtexec log / --exportTimes parsing against values written in the fixtures (tests/data/trtexec)."""

from __future__ import annotations

import json
import re
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


# ------------------------------------------------------------- logs as users paste them (issue 8)
def test_tensorrt_7_0_lower_case_host_latency_block_and_implicit_batch():
    (rec,) = ingest(DATA / "trt7.0_t4_batch16_lowercase.log")
    assert rec.components["latency"] == {"min_ms": 24.0736, "max_ms": 26.9412, "mean_ms": 24.5219,
                                         "median_ms": 24.4783, "p99_ms": 26.1077}
    assert rec.components["e2e_host"]["p99_ms"] == 47.5519  # "(end to end ... at 99%)"
    assert rec.env["throughput_qps"] == 43.4568 and rec.env["total_host_walltime_s"] == 3.01452
    assert rec.precision == "fp16" and rec.model == "resnet18_b16_fp16"
    # 16 images per query: the batch is recorded and the per-image time is the query time / 16
    assert rec.batch == 16 and rec.median_ms == 21.8528
    assert rec.env["per_image_median_ms"] == pytest.approx(21.8528 / 16)
    assert rec.env["images_per_s"] == pytest.approx(43.4568 * 16)


def test_tensorrt_7_percentile_with_end_to_end_form_is_kept():
    (rec,) = ingest(DATA / "trt7.1_tx2_fp32.log")
    assert rec.components["latency"]["p99_ms"] == 206.285
    assert rec.components["e2e_host"]["p99_ms"] == 206.306


def test_pasted_tail_takes_command_version_and_precision_from_the_passed_line():
    (rec,) = ingest(DATA / "trt8.6_tail_paste_fp16.log")
    assert rec.precision == "fp16" and rec.env["tensorrt"] == "8.6.1" and rec.warnings == []
    assert rec.model == "deeplabv3plus_resnet18" and rec.input == [1, 3, 512, 1024] and rec.batch == 1
    assert rec.env["cuda_graph"] is True and rec.env["command"].startswith("/usr/src/tensorrt/bin/trtexec")
    assert rec.iters == round(41.8273 * 3.06020)


def test_paste_without_gpu_compute_line_is_read_and_says_what_is_missing():
    (rec,) = ingest(DATA / "trt8.4_no_gpu_compute_paste.log", precision="fp32")
    assert rec.median_ms == 58.9321 and rec.p99_ms == 61.2074  # headline: the host Latency line
    assert rec.env["headline"].startswith("Latency") and rec.env["throughput_qps"] == 16.9327
    assert any("no GPU Compute Time" in w for w in rec.warnings)
    assert "gpu_compute" not in rec.components


_NUMBER = re.compile(r"(?<![\w.])[-+]?(?:\d+\.\d*|\.\d+|\d+)(?:[eE][-+]?\d+)?(?![\w.%])")
_SUMMARY_LINE = re.compile(r"(?:^|\] )(?:(?:GPU Compute Time|Latency|End-to-End Host Latency|Enqueue Time|H2D Latency|"
                           r"D2H Latency): min =|Throughput:|Total Host Walltime:|Total GPU Compute Time:|"
                           r"(?:min|max|mean|median): |percentile: |throughput: |walltime: |total compute time: )")


def _numbers(obj) -> set[float]:
    if isinstance(obj, dict):
        return set().union(*(_numbers(v) for v in obj.values())) if obj else set()
    if isinstance(obj, (list, tuple)):
        return set().union(*(_numbers(v) for v in obj)) if obj else set()
    return {float(obj)} if isinstance(obj, (int, float)) and not isinstance(obj, bool) else set()


@pytest.mark.parametrize("name", sorted(p.name for p in DATA.glob("*.log")))
def test_every_number_of_a_summary_lands_in_a_named_field(name: str):
    """Oracle: the text itself. Every number on a summary line (percentile labels such as `(99%)` and
    `at 99%` excepted) must be found among the record's stats, throughput and wall/compute totals."""
    text = (DATA / name).read_text()
    (rec,) = ingest(DATA / name, precision="fp32" if "no_gpu" in name else None)
    fields = _numbers(rec.components) | _numbers({k: rec.env.get(k) for k in (
        "throughput_qps", "total_host_walltime_s", "total_gpu_compute_s")})
    seen = 0
    for line in text.splitlines():
        if not _SUMMARY_LINE.search(line) or "Average on" in line:
            continue
        body = re.sub(r"percentile\([\d.]+%\)|at [\d.]+%", "", line.split("] ")[-1])
        for token in _NUMBER.findall(body):
            seen += 1
            assert float(token) in fields, f"{name}: {token} from {line.strip()!r} is in no field"
    assert seen >= 10


@pytest.mark.parametrize("bad", ["nan", "-3.5", "inf"])
def test_non_finite_or_negative_times_are_refused(tmp_path, bad: str):
    text = (DATA / "trt8.5_xavier_nx_fp16.log").read_text()
    edited = re.sub(r"(GPU Compute Time: min = \S+ ms, max = \S+ ms, mean = \S+ ms, median = )\S+( ms)",
                    rf"\g<1>{bad}\g<2>", text)
    assert edited != text
    (tmp_path / "x.log").write_text(edited)
    with pytest.raises(UserError, match=r"GPU Compute Time median is .* finite, non-negative"):
        ingest(tmp_path / "x.log")
