"""Hostile inputs to the `hwbench` CLI (issue 8): files of random bytes, inf/NaN where a finite number
belongs, mismatched or misplaced profiles, impossible sizes, contradicting flags. Each one: exit 2, exactly
one stderr line `error: ...` naming the problem, no traceback, nothing printed on stdout and nothing
written anywhere in the working directory (inputs prepared by the case are left as they were)."""

from __future__ import annotations

import json
import os
import random
from collections.abc import Callable
from pathlib import Path

import pytest

from hwbench.cli import main

R20 = "deeplabv3plus_resnet20"
DATA = Path(__file__).resolve().parents[1] / "data" / "trtexec"
RANDOM = random.Random(8).randbytes(512)  # not UTF-8, not TOML, not JSON

Setup = Callable[[Path, str], None]  # (working directory, toy profile text)


def _write(rel: str, data: str | bytes) -> Setup:
    def setup(d: Path, _toy: str) -> None:
        p = d / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(data if isinstance(data, bytes) else data.encode())
    return setup


def _toy(rel: str, edit: Callable[[str], str]) -> Setup:
    def setup(d: Path, toy: str) -> None:
        _write(rel, edit(toy))(d, toy)
    return setup


def _trtexec(rel: str, src: str, edit: Callable[[str], str]) -> Setup:
    return _write(rel, edit((DATA / src).read_text()))


def _fifo(rel: str) -> Setup:
    def setup(d: Path, _toy: str) -> None:
        os.mkfifo(d / rel)  # nobody writes to it: a reader that opens it would hang
    return setup


def _dir(rel: str) -> Setup:
    return lambda d, _toy: (d / rel).mkdir(parents=True)


def _loop(rel: str) -> Setup:
    return lambda d, _toy: (d / rel).symlink_to(rel)


_REC = {"model": R20, "device": "host", "backend": "torch", "precision": "fp32", "input": [1, 3, 64, 128],
        "warmup": 1, "iters": 5, "min_ms": 1.0, "median_ms": 2.0, "mean_ms": 2.0, "p90_ms": 3.0, "p99_ms": 3.0,
        "std_ms": 0.1, "cv": 0.05, "latency_ms": 2.0, "source": "measured"}


def _records(**override: object) -> str:
    good = json.dumps(_REC) + "\n"
    bad = json.dumps({**_REC, **override}, allow_nan=True) + "\n"
    return good + bad


_MEDIAN = "median = 12.314 ms"  # the GPU Compute Time median of trt8.5_xavier_nx_fp16.log

CASES: dict[str, tuple[Setup | None, list[str], str]] = {
    # ---- device profiles
    "profile of random bytes (path)": (_write("p/toy.toml", RANDOM), ["latency", "--device", "p/toy.toml"],
                                       "not a text (UTF-8) file"),
    "profile of random bytes (name)": (_write("prof/toy.toml", RANDOM), ["latency", "--device", "toy"],
                                       "not a text (UTF-8) file"),
    "profile truncated": (_toy("prof/toy.toml", lambda t: t[: t.index("[[peak]]") + 12]),
                          ["profiles", "toy"], "not valid TOML"),
    "profile tops = inf": (_toy("prof/toy.toml", lambda t: t.replace("tops = 1.0", "tops = inf")),
                           ["deploy", "--device", "toy", "--fps", "10", "--input", "64x64"], "finite number"),
    "profile tops = nan": (_toy("prof/toy.toml", lambda t: t.replace("tops = 1.0", "tops = nan")),
                           ["latency", "--device", "toy", "--input", "64x64"], "finite number"),
    "profile mem_bw_gbps = inf": (_toy("prof/toy.toml", lambda t: t.replace("mem_bw_gbps = 10.0", "mem_bw_gbps = inf")),
                                  ["profiles", "toy"], "mem_bw_gbps: expected a finite number"),
    "profile memory_gb = -inf": (_toy("prof/toy.toml", lambda t: t.replace("memory_gb = 2.0", "memory_gb = -inf")),
                                 ["profiles", "toy"], "memory_gb: expected a finite number"),
    "profile name is not the file name": (_toy("prof/tx2.toml", lambda t: t.replace('name = "toy"', 'name = "orin_nx"')),
                                          ["deploy", "--device", "tx2", "--fps", "10"], "differs from the file name"),
    "profile that is a directory": (lambda d, t: ((d / "prof" / "toy.toml").mkdir(parents=True),
                                                  _write("prof/good.toml", t.replace('"toy"', '"good"'))(d, t)),
                                    ["latency", "--device", "toy"], "is not a file"),
    "profile path that is a directory": (lambda d, t: (d / "x.toml").mkdir(), ["latency", "--device", "x.toml"],
                                         "is a directory"),
    # (an empty HWBENCH_PROFILES directory leaves the shipped profiles: tests/hwbench/test_profiles_user.py)
    "model callable whose import fails": (_write("bad_model.py", "raise ValueError('boom')\n"),
                                          ["count", "bad_model.py:build"], "importing bad_model.py failed (ValueError: boom)"),
    "model ONNX file of garbage": (_write("x.onnx", b"\x08\xff garbage"), ["count", "x.onnx"], "x.onnx"),
    "unknown device": (None, ["profiles", "tx3"], "unknown device 'tx3'"),
    # ---- budgets and flags
    "fps 1e-310 (budget would be infinite)": (None, ["deploy", "--fps", "1e-310", "--json"], "infinite budget"),
    "fps nan": (None, ["deploy", "--fps", "nan"], "fps must be a positive number"),
    "fps inf": (None, ["deploy", "--fps", "inf"], "fps must be a positive number"),
    "budget inf": (None, ["deploy", "--budget-ms", "inf"], "budget_ms must be a positive number"),
    "share nan": (None, ["deploy", "--fps", "10", "--share", "nan"], "share must be in (0, 1]"),
    "paper mode with --precision (latency)": (None, ["latency", "--mode", "paper", "--precision", "fp32"],
                                              "no effect in --mode paper"),
    "paper mode with --engine (deploy)": (None, ["deploy", "--fps", "10", "--mode", "paper", "--engine", "dla"],
                                          "no effect in --mode paper"),
    "paper mode with --sparse": (None, ["latency", "--mode", "paper", "--sparse"], "no effect in --mode paper"),
    "unknown command": (None, ["frobnicate"], "invalid choice"),
    "bad choice": (None, ["measure", R20, "--backend-device", "tpu"], "invalid choice"),
    "batch zero": (None, ["count", R20, "--batch", "0", "--input", "64x64"], "positive integers"),
    # ---- measure / export
    "measure --input 100000x100000": (None, ["measure", R20, "--input", "100000x100000"], "needs about"),
    "measure without a model or --onnx": (None, ["measure", "--input", "32x64"], "give a zoo model name"),
    "measure --onnx of random bytes": (_write("m.onnx", RANDOM), ["measure", "--onnx", "m.onnx"],
                                       "not a valid ONNX model"),
    "measure --warmup-ms nan": (None, ["measure", R20, "--warmup-ms", "nan", "--input", "32x64"], "--warmup-ms"),
    "measure --device int8 check": (None, ["measure", R20, "--device", "tx2", "--precision", "int8",
                                           "--backend", "tensorrt", "--backend-device", "cuda", "--input", "64x64"],
                                    "'tx2' has no int8"),
    "export --atol nan": (None, ["export", R20, "--atol", "nan", "--out", "x.onnx"], "--atol"),
    # ---- predict (measurement files)
    "predict: NaN latency": (_write("m.jsonl", _records(median_ms=float("nan"))),
                             ["predict", "--measurements", "m.jsonl"], "NaN is not a number"),
    "predict: Infinity latency": (_write("m.jsonl", _records(latency_ms=float("inf"))),
                                  ["predict", "--measurements", "m.jsonl"], "Infinity is not a number"),
    "predict: negative median": (_write("m.jsonl", _records(median_ms=-1.0)),
                                 ["predict", "--measurements", "m.jsonl"], "m.jsonl:2: median_ms is -1.0"),
    "predict: input not a shape": (_write("m.jsonl", _records(input="64x128")),
                                   ["predict", "--measurements", "m.jsonl"], "expected a list of positive integers"),
    "predict: string latency": (_write("m.jsonl", _records(min_ms="fast")),
                                ["predict", "--measurements", "m.jsonl"], "min_ms is 'fast'"),
    "predict: random bytes": (_write("m.jsonl", RANDOM), ["predict", "--measurements", "m.jsonl"],
                              "not a text (UTF-8) file"),
    "predict: a JSON list per line": (_write("m.jsonl", "[1, 2, 3]\n"), ["predict", "--measurements", "m.jsonl"],
                                      "m.jsonl:1: a JSON list"),
    "predict: truncated record": (_write("m.jsonl", json.dumps(_REC)[:60] + "\n"),
                                  ["predict", "--measurements", "m.jsonl"], "m.jsonl:1: not a measurement record"),
    "predict: missing keys": (_write("m.jsonl", '{"model": "x"}\n'), ["predict", "--measurements", "m.jsonl"],
                              "lacks"),
    # (predict --model without --input predicts at the model's own input: tests/hwbench/test_own_model.py)
    # ---- trtexec logs and --exportTimes
    "trtexec: NaN median": (_trtexec("t.log", "trt8.5_xavier_nx_fp16.log", lambda t: t.replace(_MEDIAN, "median = nan ms")),
                            ["ingest", "trtexec", "t.log", "--json"], "median is nan ms"),
    "trtexec: negative median": (_trtexec("t.log", "trt8.5_xavier_nx_fp16.log",
                                          lambda t: t.replace(_MEDIAN, "median = -12.314 ms")),
                                 ["ingest", "trtexec", "t.log", "--out", "o"], "median is -12.314 ms"),
    "trtexec: inf in a 7.x block": (_trtexec("t.log", "trt7.1_tx2_fp32.log",
                                             lambda t: t.replace("median: 201.787 ms", "median: inf ms")),
                                    ["ingest", "trtexec", "t.log"], "median is inf ms"),
    "trtexec: random bytes": (_write("t.log", RANDOM), ["ingest", "trtexec", "t.log"], "not trtexec output"),
    "trtexec: --exportTimes with NaN": (_write("t.json", (DATA / "times_orin_nx.json").read_text().replace(
        '"computeMs" : 5.31', '"computeMs" : NaN', 1)), ["ingest", "trtexec", "t.json"], "not a finite number"),
    "trtexec: JSON of numbers": (_write("t.json", "[1, 2]"), ["ingest", "trtexec", "t.json"], "not trtexec --exportTimes"),
    "trtexec: DLA log on a device without DLA": (None, ["ingest", "trtexec", str(DATA / "trt10.3_orin_nx_int8_dla.log"),
                                                        "--device", "tx2", "--precision", "fp16"],
                                                 "the log (--useDLACore=0) uses one; pass the --device it ran on"),
    "trtexec: --exportTimes with a string": (_write("t.json", (DATA / "times_orin_nx.json").read_text().replace(
        '"latencyMs" : 8.05', '"latencyMs" : "8.05"', 1)), ["ingest", "trtexec", "t.json"], "latencyMs holds"),
    "trtexec: log of only a FAILED line": (_write("t.log", "&&&& FAILED TensorRT.trtexec [TensorRT v8601] # trtexec\n"),
                                          ["ingest", "trtexec", "t.log"], "the trtexec run failed"),
    "ingest --input with a zero": (None, ["ingest", "trtexec", str(DATA / "trt8.2_tx2_fp16.log"), "--input",
                                          "1x3x0x5"], "positive HxW"),
    # ---- report
    # ---- issue 19: a FIFO or a directory where a file is read, named as such (and never read: no hang)
    "measure --onnx a FIFO": (_fifo("m.onnx"), ["measure", "--onnx", "m.onnx"], "is a FIFO (named pipe)"),
    "measure --onnx a directory": (_dir("m.onnx"), ["measure", "--onnx", "m.onnx"], "is a directory"),
    "trtexec log a FIFO": (_fifo("t.log"), ["ingest", "trtexec", "t.log"], "'t.log' is a FIFO (named pipe)"),
    "trtexec log a directory": (_dir("t.log"), ["ingest", "trtexec", "t.log"], "'t.log' is a directory"),
    "predict measurements a FIFO": (_fifo("m.jsonl"), ["predict", "--measurements", "m.jsonl"],
                                    "'m.jsonl' is a FIFO (named pipe)"),
    "predict measurements a directory": (_dir("m.jsonl"), ["predict", "--measurements", "m.jsonl"],
                                         "'m.jsonl' is a directory"),
    "profile a FIFO": (_fifo("toy.toml"), ["latency", "--device", "toy.toml"], "toy.toml is a FIFO"),
    "report --out a symlink loop": (_loop("loop"), ["report", "--out", "loop", "--input", "64x128", "--device", "tx2"],
                                    "--out loop is a symbolic link that leads nowhere"),
    "report --out a file": (_write("r", "x"), ["report", "--out", "r", "--input", "64x128"], "not a directory"),
    "report --out a directory of other files": (_write("r/notes.txt", "mine"), ["report", "--out", "r", "--input",
                                                                               "64x128", "--device", "tx2"],
                                                "not part of a report"),
}


@pytest.fixture()
def in_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    monkeypatch.setenv("HWBENCH_CACHE_DIR", str(tmp_path / "cache"))
    return work


def _tree(d: Path) -> dict[str, bytes | None]:
    return {str(p.relative_to(d)): (p.read_bytes() if p.is_file() else None) for p in sorted(d.rglob("*"))}


@pytest.mark.parametrize("case", list(CASES))
def test_hostile_input(case: str, in_tmp: Path, monkeypatch, capsys, toy_profile: str) -> None:
    setup, argv, needle = CASES[case]
    if setup is not None:
        setup(in_tmp, toy_profile)
    if (in_tmp / "prof").is_dir():
        monkeypatch.setenv("HWBENCH_PROFILES", str(in_tmp / "prof"))
    before = _tree(in_tmp)
    code = main(argv)
    out, err = capsys.readouterr()
    assert code == 2, err
    assert err.startswith("error: ") and err.count("\n") == 1 and "Traceback" not in err, err
    assert needle in err, err
    assert out == ""
    assert _tree(in_tmp) == before, "something was written"


def test_at_least_fifty_cases() -> None:
    assert len(CASES) >= 50


# ---------------------------------------------------------------------- no traceback, ever
def test_ctrl_c_while_a_command_loads(monkeypatch, capsys) -> None:
    """SIGINT during start-up (a command module importing torch): `interrupted`, exit 130, no traceback."""
    import hwbench.cli_base as cli_base

    def interrupted(name: str):
        raise KeyboardInterrupt

    monkeypatch.setattr(cli_base.importlib, "import_module", interrupted)
    assert main(["count", R20]) == 130
    assert capsys.readouterr().err == "interrupted\n"


def test_ctrl_c_while_running(monkeypatch, capsys) -> None:
    import hwbench.deploy

    def interrupted(*a, **k):
        raise KeyboardInterrupt

    monkeypatch.setattr(hwbench.deploy, "deploy", interrupted)
    assert main(["deploy", "--fps", "10"]) == 130
    assert capsys.readouterr() == ("", "interrupted\n")


def test_a_bug_of_ours_is_one_line_exit_1(monkeypatch, capsys) -> None:
    import hwbench.deploy

    def broken(*a, **k):
        return {}["missing"]

    monkeypatch.setattr(hwbench.deploy, "deploy", broken)
    assert main(["deploy", "--fps", "10"]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "internal error (KeyError" in err and "this is a bug" in err
    assert main(["-v", "deploy", "--fps", "10"]) == 1
    assert "Traceback" in capsys.readouterr().err  # asked for with -v


def test_out_of_memory_is_one_line(monkeypatch, capsys) -> None:
    import hwbench.deploy

    def oom(*a, **k):
        raise MemoryError

    monkeypatch.setattr(hwbench.deploy, "deploy", oom)
    assert main(["deploy", "--fps", "10"]) == 2
    assert capsys.readouterr().err == ("error: out of memory; use a smaller input size, batch size or model (in the "
                                       "command's flags or its config file)\n")


def test_disk_full_says_so(monkeypatch, capsys) -> None:
    import errno

    import hwbench.deploy

    def full(*a, **k):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), "out/deploy.json")

    monkeypatch.setattr(hwbench.deploy, "deploy", full)
    assert main(["deploy", "--fps", "10"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "no space left on the device" in err and "check the path" not in err, err


def _python(code: str, env: dict | None = None, **kw):
    import subprocess
    import sys

    root = Path(__file__).resolve().parents[2]
    return subprocess.run([sys.executable, "-c", code], env={**os.environ, "PYTHONPATH": str(root), **(env or {})},
                          capture_output=True, text=True, timeout=120, **kw)


@pytest.mark.parametrize("columns", ["0", "-1", "x"])
def test_columns_of_zero_or_less_count_as_unset(columns: str) -> None:
    p = _python("import sys; from hwbench.cli import main; sys.exit(main(['models']))", {"COLUMNS": columns})
    assert p.returncode == 0 and "resnet18" in p.stdout and "deeplabv3plus_xception65" in p.stdout, p


def test_ctrl_c_right_after_the_command_ends_is_quiet() -> None:
    """SIGINT after `main()` returned (the exit handlers, torch's among them, run then): ignored, no traceback."""
    code = ("import os, signal, sys\nsys.argv = ['hwbench', 'models', '--json']\nfrom hwbench.cli import main\n"
            "import torch\nrc = main()\nos.kill(os.getpid(), signal.SIGINT)\nsys.exit(rc)\n")
    p = _python(code)
    assert p.returncode == 0 and "Traceback" not in p.stderr and "KeyboardInterrupt" not in p.stderr, p.stderr


def test_a_value_that_fits_is_never_cut(monkeypatch) -> None:
    """At 40 columns a 37-character id (an experiment cell's) prints whole in the narrow layout."""
    import io

    from rich.console import Console

    from hwbench import console

    buf = io.StringIO()
    monkeypatch.setattr(console, "stdout", Console(file=buf, width=40, force_terminal=False, color_system=None))
    cell = "train/s0/deeplabv3plus_resnet20/mnv3x"
    assert len(cell) == 37
    console.emit([{"cell": cell, "deps": "al/s0/deeplabv3plus_mobilenetv3_small", "status": "waiting"}],
                 as_json=False, columns=["cell", "deps", "status"])
    assert cell in buf.getvalue() and max(len(x) for x in buf.getvalue().splitlines()) <= 40, buf.getvalue()


def test_version(capsys) -> None:
    from importlib.metadata import version

    with pytest.raises(SystemExit) as e:
        main(["--version"])
    assert e.value.code == 0 and capsys.readouterr().out == f"hwbench {version('hwbench')}\n"


# ------------------------------------------------------------------------- valid JSON only
def _strict(text: str):
    def refuse(name: str):
        raise AssertionError(f"{name} in JSON output")
    return json.loads(text, parse_constant=refuse)


def test_json_output_never_has_nan_or_infinity(tmp_path, capsys) -> None:
    """`summarize` of zero times gives cv = inf; a trtexec run without percentiles has no p90: the JSON
    says null, never NaN/Infinity."""
    from hwbench.io import dumps_json, write_jsonl
    from hwbench.latency.measure import summarize

    stats = summarize([0.0, 0.0])
    assert stats["cv"] == float("inf")
    assert _strict(dumps_json(stats))["cv"] is None
    write_jsonl(tmp_path / "x.jsonl", [{"a": float("nan"), "b": [1.0, float("-inf")]}])
    assert _strict((tmp_path / "x.jsonl").read_text()) == {"a": None, "b": [1.0, None]}
    assert main(["ingest", "trtexec", str(DATA / "trt8.2_tx2_fp16.log"), "--json"]) == 0
    (rec,) = _strict(capsys.readouterr().out)
    assert rec["p90_ms"] is None and rec["p99_ms"] == 102.998


def test_deprecated_measure_spellings_still_work(monkeypatch, capsys) -> None:
    """`measure --device cuda` / `--device-profile tx2` map to --backend-device / --device with one line."""
    import hwbench.commands.measure as cmd

    args = cmd.argparse.Namespace(device="cuda", backend_device=None, device_profile="tx2")
    assert cmd._devices(args) == ("cuda", "tx2")
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 2 and all(e.startswith("warning: ") and "deprecated" in e for e in err)
    assert cmd._devices(cmd.argparse.Namespace(device="orin_nx", backend_device=None, device_profile=None)) == (
        "cpu", "orin_nx")
    assert capsys.readouterr().err == ""


def test_measure_onnx_takes_the_file_shape_and_name(tmp_path, capsys) -> None:
    from hwbench.export import export_onnx
    from hwbench.models import create_model

    path = export_onnx(create_model(R20).eval(), (1, 3, 32, 64), tmp_path / "tiny.onnx")
    assert main(["measure", "--onnx", str(path), "--iters", "2", "--warmup-ms", "0", "--json"]) == 0
    (rec,) = json.loads(capsys.readouterr().out)
    assert (rec["model"], rec["backend"], rec["input"]) == ("tiny", "onnxruntime", [1, 3, 32, 64])
    os.remove(path)
