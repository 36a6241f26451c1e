"""ondevice.py's TensorRT code against each release's Python API (stand-ins: trt_standin.py).

Every release either works (score fp16 / int8, bench, DLA, INT8 calibration, `hwbench measure
--backend tensorrt`) or stops with one line naming the release and what to install. The expected
table (EXPECTED) follows from the API lists: TensorRT 11 removed BuilderFlag.FP16/INT8 and the
calibrators, the rest of ondevice.py's calls exist from 8.0.1 to 10.16 (with the fallbacks it has
for max_workspace_size/bindings before 8.4/8.5). `python tests/hwbench/ondevice/trt_standin.py`
runs these tests and prints the table as markdown (docs/jetson-stack.md).
"""

import json
import os
import sys
from pathlib import Path

import numpy as np
import pytest

from hwbench import ondevice

from .conftest import tiny_scoring_onnx, write_frames
from .trt_standin import COLUMNS, DEPRECATED_USED, RELEASES, TABLE_ENV, TX2, XAVIER, install

REFUSED_11 = "no BuilderFlag"
EXPECTED = {r: {c: "works" for c in COLUMNS} for r in RELEASES}
EXPECTED["11.0"].update({"score fp16": REFUSED_11, "score int8": REFUSED_11, "DLA": REFUSED_11,
                         "calibration": REFUSED_11})


def _main(capsys, argv):
    rc = ondevice.main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return rc, out, err


def _outcome(rc, err):
    if rc == 0:
        return "works"
    assert rc == 2 and err.startswith("error: ") and err.count("\n") == 1, err      # one line, no traceback
    return err.strip()[len("error: "):]


def _score(tmp_path, capsys, onnx, frames, name, *extra):
    spool = tmp_path / name
    rc, out, err = _main(capsys, ["score", "--onnx", onnx, "--frames", frames, "--latency-ms", 0, "--window", 5,
                                  "--spool", spool, "--json"] + list(extra))
    rows = [json.loads(x) for x in (spool / "manifest.jsonl").read_text().splitlines()] if rc == 0 else []
    return rc, err, rows


def run_release(release, tmp_path, capsys, monkeypatch):
    """{column: 'works' or the one-line refusal} for one release on a Xavier-like stand-in."""
    onnx = tiny_scoring_onnx(tmp_path / "tiny.onnx")
    frames = write_frames(tmp_path / "frames", 20)
    monkeypatch.setenv("HWBENCH_CACHE_DIR", str(tmp_path / "cache"))
    rc, err, ref = _score(tmp_path, capsys, onnx, frames, "ort", "--backend", "onnxruntime")
    assert rc == 0, err
    install(monkeypatch, release, XAVIER)
    res = {}
    rc, err, rows = _score(tmp_path, capsys, onnx, frames, "fp16", "--fp16", "--cache-dir", tmp_path / "cache")
    res["score fp16"] = _outcome(rc, err)
    if rc == 0:   # the same frames as ONNX Runtime's fp32 run, scores within fp16 rounding
        assert [r["index"] for r in rows] == [r["index"] for r in ref]
        assert np.allclose([r["score"] for r in rows], [r["score"] for r in ref], rtol=2e-3, atol=2e-3)
        assert all(r["precision"] == "fp16" and r["engine"].startswith("tensorrt " + ondevice.sys.modules["tensorrt"].__version__)
                   for r in rows)
    rc, err, rows = _score(tmp_path, capsys, onnx, frames, "int8", "--int8", "--cache-dir", tmp_path / "cache")
    res["score int8"] = _outcome(rc, err)
    if rc == 0:
        assert len(rows) == len(ref) and all(r["precision"] == "int8" for r in rows)
    bench = ["bench", "--onnx", onnx, "--iters", 5, "--warmup-ms", 0, "--cache-dir", tmp_path / "cache", "--json"]
    rc, out, err = _main(capsys, bench)
    res["bench"] = _outcome(rc, err)
    if rc == 0:
        rec = json.loads(out)
        assert rec["backend"] == "tensorrt" and rec["iters"] == 5 and rec["input"] == [1, 3, 16, 32]
        assert rec["latency_ms"] > 0 and rec["env"]["tensorrt"] == ondevice.sys.modules["tensorrt"].__version__
    rc, out, err = _main(capsys, bench + ["--fp16", "--dla-core", 1])
    res["DLA"] = _outcome(rc, err)
    if rc == 0:
        rec = json.loads(out)
        assert rec["env"]["engine_device"] == "DLA" and "GPU_FALLBACK" in rec["env"]["builder_flags"]
    calib = tmp_path / "calib"
    calib.mkdir()
    for i in range(3):
        np.save(str(calib / "b{}.npy".format(i)), np.random.RandomState(i).randn(1, 3, 16, 32).astype(np.float32))
    cache = tmp_path / "calib.cache"
    rc, out, err = _main(capsys, bench + ["--int8", "--calib-dir", calib, "--calib-cache", cache])
    res["calibration"] = _outcome(rc, err)
    if rc == 0:
        rec = json.loads(out)
        assert rec["env"]["int8_calibration"] == "entropy" and cache.read_bytes().endswith(b"batches=3")
    res["deprecated"] = sorted(DEPRECATED_USED)     # ondevice.py's calls (measure: the same calls)
    res["measure"] = _measure(tmp_path, capsys, onnx)
    return res


def _measure(tmp_path, capsys, onnx):
    """`hwbench measure --backend tensorrt` (needs the package's Python >= 3.10: not on a Jetson's)."""
    if sys.version_info < (3, 10):
        return "n/a (hwbench needs Python >= 3.10)"
    from hwbench.cli import main as hwbench_main

    rc = hwbench_main(["measure", "--backend", "tensorrt", "--onnx", str(onnx), "--backend-device", "cuda",
                       "--iters", "5", "--warmup-ms", "0", "--json"])
    out, err = capsys.readouterr()
    if rc == 0:
        rec = json.loads(out)
        rec = rec[0] if isinstance(rec, list) else rec
        assert rec["backend"] == "tensorrt" and rec["iters"] == 5
        return "works"
    assert err.startswith("error: ") and err.count("\n") == 1, err
    return err.strip()[len("error: "):]


@pytest.mark.parametrize("release", sorted(RELEASES, key=lambda r: [int(x) for x in r.split(".")]))
def test_release(release, tmp_path, capsys, monkeypatch):
    got = run_release(release, tmp_path, capsys, monkeypatch)
    if os.environ.get(TABLE_ENV):  # collect the table (see __main__)
        Path(os.environ[TABLE_ENV], release + ".json").write_text(json.dumps(got))
    for col, want in EXPECTED[release].items():
        if col == "measure" and sys.version_info < (3, 10):
            continue
        if want == "works":
            assert got[col] == "works", (col, got[col])
        else:
            assert want in got[col] and ondevice.sys.modules["tensorrt"].__version__ in got[col] \
                and "pip install 'tensorrt>=8.5,<11'" in got[col], (col, got[col])


def test_names_outside_the_release_are_refused(monkeypatch):
    """The stand-ins refuse what a release does not bind, like the real module."""
    trt = install(monkeypatch, "11.0")
    with pytest.raises(AttributeError):
        trt.BuilderFlag.FP16  # noqa: B018
    with pytest.raises(AttributeError):
        trt.IInt8EntropyCalibrator2  # noqa: B018
    with pytest.raises(AttributeError):
        trt.Builder(trt.Logger(trt.Logger.WARNING)).platform_has_fast_fp16  # noqa: B018
    trt = install(monkeypatch, "8.2.1")
    cfg = trt.Builder(trt.Logger(trt.Logger.WARNING)).create_builder_config()
    with pytest.raises(AttributeError):
        cfg.set_memory_pool_limit  # noqa: B018          (from 8.4)
    cfg.max_workspace_size = 1 << 20                    # gone in 10:
    trt = install(monkeypatch, "10.3")
    cfg = trt.Builder(trt.Logger(trt.Logger.WARNING)).create_builder_config()
    with pytest.raises(AttributeError):
        cfg.max_workspace_size = 1 << 20
    with pytest.raises(AttributeError):
        trt.Builder(trt.Logger(trt.Logger.WARNING)).build_engine  # noqa: B018


def test_tx2_refuses_int8_and_dla_in_one_line(tmp_path, capsys, monkeypatch):
    onnx = tiny_scoring_onnx(tmp_path / "tiny.onnx")
    install(monkeypatch, "8.2.1", TX2)
    bench = ["bench", "--onnx", onnx, "--iters", 3, "--warmup-ms", 0, "--cache-dir", tmp_path / "c"]
    rc, _, err = _main(capsys, bench + ["--int8"])
    assert rc == 2 and "no fast int8" in err and err.count("\n") == 1
    rc, _, err = _main(capsys, bench + ["--fp16", "--dla-core", 0])
    assert rc == 2 and "0 DLA core" in err and err.count("\n") == 1
    assert _main(capsys, bench + ["--fp16"])[0] == 0


def sum_scoring_onnx(path, h=128, w=256):
    """score = ReduceSum of the input's first channel (a sum over 128x256 pixels of values ~3: ~1e5)."""
    import onnx
    from onnx import TensorProto, helper

    x = helper.make_tensor_value_info("input", TensorProto.FLOAT, [1, 3, h, w])
    s = helper.make_tensor_value_info("score", TensorProto.FLOAT, [1])
    e = helper.make_tensor_value_info("embedding", TensorProto.FLOAT, [1, 3])
    g = helper.make_graph([helper.make_node("Abs", ["input"], ["a"]),
                           helper.make_node("ReduceSum", ["a", "axes"], ["score"], keepdims=0),
                           helper.make_node("ReduceMean", ["input"], ["embedding"], axes=[2, 3], keepdims=0)],
                          "sum", [x], [s, e],
                          initializer=[helper.make_tensor("axes", TensorProto.INT64, [3], [1, 2, 3])])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)])
    m.ir_version = 7
    onnx.save(m, str(path))
    return path


@pytest.mark.parametrize("release", ["8.0.1", "8.2.1", "8.5.2", "10.3"])
def test_fp16_sum_aggregation_is_reduced_in_fp32(release, tmp_path, capsys, monkeypatch):
    """A sum over 128x256 pixels (~1e5 > fp16's 65504) under --fp16: the reduce layers are pinned to
    fp32, so the scores are finite and equal ONNX Runtime's (unpinned they would be inf: invalid)."""
    onnx = sum_scoring_onnx(tmp_path / "sum.onnx")
    frames = tmp_path / "frames"
    frames.mkdir()
    for i in range(4):
        np.save(str(frames / "f{}.npy".format(i)), np.full((128, 256, 3), 200 + 10 * i, dtype=np.uint8))
    rc, err, ref = _score(tmp_path, capsys, onnx, frames, "ort", "--backend", "onnxruntime", "--window", 1)
    assert rc == 0, err
    assert min(r["score"] for r in ref) > 65504
    install(monkeypatch, release, XAVIER)
    rc, err, rows = _score(tmp_path, capsys, onnx, frames, "fp16", "--fp16", "--window", 1,
                           "--cache-dir", tmp_path / "c1")
    assert rc == 0, err
    assert [r["index"] for r in rows] == [0, 1, 2, 3]
    assert np.allclose([r["score"] for r in rows], [r["score"] for r in ref], rtol=1e-5)
    # the oracle of the stand-in itself: with the pinning disabled, fp16 overflows to inf (invalid)
    monkeypatch.setattr(ondevice, "_keep_reductions_fp32", lambda trt, network, config: 0)
    rc, err, rows = _score(tmp_path, capsys, onnx, frames, "unpinned", "--fp16", "--window", 1,
                           "--cache-dir", tmp_path / "c2")
    assert rc == 0 and rows == []
