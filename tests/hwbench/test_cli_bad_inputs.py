"""Every documented bad input of the `hwbench` CLI: exit status 2, exactly one line `error: ...` naming
the problem, and nothing written (neither in the working directory nor under --out)."""

from __future__ import annotations

from pathlib import Path

import pytest

from hwbench.cli import main

R20 = "deeplabv3plus_resnet20"

CASES = {
    "unknown model (latency)": (["latency", "resnet51"], "unknown model 'resnet51'; known:"),
    "unknown model (measure)": (["measure", "resnet51", "--input", "32x32"], "unknown model 'resnet51'"),
    "unknown device (latency)": (["latency", "--device", "tx3"], "unknown device 'tx3'; known:"),
    "unknown device (deploy)": (["deploy", "--device", "tx3", "--fps", "10"], "unknown device 'tx3'"),
    "malformed --input (latency)": (["latency", "--input", "1024x"], "HxW"),
    "malformed --input (count)": (["count", "--input", "8x8x8"], "HxW"),
    "malformed --input (measure)": (["measure", R20, "--input", "0x64"], "positive"),
    "malformed --input (export)": (["export", R20, "--input", "axb", "--out", "x.onnx"], "HxW"),
    "malformed --input (deploy)": (["deploy", "--fps", "10", "--input", "big"], "HxW"),
    "fps zero": (["deploy", "--fps", "0"], "fps must be a positive number"),
    "fps negative": (["deploy", "--fps", "-1"], "fps must be a positive number"),
    "budget zero": (["deploy", "--budget-ms", "0"], "budget_ms must be a positive number"),
    "budget negative": (["deploy", "--budget-ms", "-5"], "budget_ms must be a positive number"),
    "share out of range": (["deploy", "--fps", "10", "--share", "0"], "share must be in (0, 1]"),
    "unknown backend": (["measure", R20, "--backend", "tvm"], "unknown backend 'tvm'; known:"),
    "int8 on tx2 (latency)": (["latency", "--device", "tx2", "--mode", "peak", "--precision", "int8"], "int8"),
    "int8 on tx2 (measure)": (["measure", R20, "--backend", "tensorrt", "--backend-device", "cuda", "--precision", "int8",
                               "--device", "tx2", "--input", "64x128"], "'tx2' has no int8"),
    "missing onnx": (["measure", R20, "--backend", "onnxruntime", "--onnx", "none.onnx", "--input", "32x64"],
                     "not found"),
    "missing trtexec file": (["ingest", "trtexec", "nothere.log", "--out", "o"], "not found"),
}


@pytest.fixture()
def in_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HWBENCH_CACHE_DIR", str(tmp_path / "cache"))
    return tmp_path


def _fails(argv: list[str], needle: str, capsys: pytest.CaptureFixture[str]) -> str:
    code = main(argv)
    captured = capsys.readouterr()
    err = captured.err
    assert code == 2, err
    assert err.startswith("error: ") and err.count("\n") == 1, err
    assert needle in err, err
    assert captured.out == ""
    return err


@pytest.mark.parametrize("case", list(CASES))
def test_bad_input_one_line_exit_2_nothing_written(case: str, in_tmp: Path, capsys) -> None:
    argv, needle = CASES[case]
    _fails(argv, needle, capsys)
    assert sorted(p.name for p in in_tmp.iterdir() if p.name != "cache") == []


def test_corrupt_onnx_and_not_trtexec_log(in_tmp: Path, capsys) -> None:
    (in_tmp / "bad.onnx").write_bytes(b"\x08\x07garbage that is not a protobuf model")
    _fails(["measure", R20, "--backend", "onnxruntime", "--onnx", "bad.onnx", "--input", "32x64"],
           "not a valid ONNX model", capsys)
    (in_tmp / "train.log").write_text("epoch 1 loss 0.53\n")
    _fails(["ingest", "trtexec", "train.log", "--out", "o"], "not trtexec output", capsys)
    assert sorted(p.name for p in in_tmp.iterdir() if p.name != "cache") == ["bad.onnx", "train.log"]


@pytest.mark.parametrize("edit, needle", [
    (lambda t: t.replace('power_mode = "5W"', 'power_mode = "5W"\nflavour = "x"'), "unknown key(s) 'flavour'"),
    (lambda t: t.replace("tops = 1.0", "tops = -1.0"), "tops must be a positive"),
])
def test_bad_profile_file(edit, needle: str, in_tmp: Path, monkeypatch, capsys, toy_profile: str) -> None:
    """A profile with an unknown key or a negative peak is refused by every command that reads it."""
    (in_tmp / "profiles").mkdir()
    (in_tmp / "profiles" / "toy.toml").write_text(edit(toy_profile))
    _fails(["latency", R20, "--device", "profiles/toy.toml", "--input", "64x64"], needle, capsys)
    monkeypatch.setenv("HWBENCH_PROFILES", str(in_tmp / "profiles"))
    _fails(["profiles", "toy"], needle, capsys)
    _fails(["deploy", R20, "--device", "toy", "--fps", "10", "--input", "64x64"], needle, capsys)


def test_good_profile_file_is_accepted(in_tmp: Path, monkeypatch, capsys, toy_profile: str) -> None:
    """Control for test_bad_profile_file: the unedited profile works, so the errors above are the edits'."""
    (in_tmp / "profiles").mkdir()
    (in_tmp / "profiles" / "toy.toml").write_text(toy_profile)
    monkeypatch.setenv("HWBENCH_PROFILES", str(in_tmp / "profiles"))
    assert main(["latency", R20, "--device", "toy", "--mode", "peak", "--input", "64x64", "--json"]) == 0
    assert '"device": "toy"' in capsys.readouterr().out


@pytest.mark.parametrize("module, argv", [
    ("onnxruntime", ["measure", R20, "--backend", "onnxruntime", "--input", "32x64", "--iters", "1"]),
    ("tensorrt", ["measure", R20, "--backend", "tensorrt", "--backend-device", "cuda", "--precision", "fp16",
                  "--input", "64x128"]),
    ("fvcore", ["count", R20, "--input", "32x64", "--counter", "fvcore"]),
    ("onnxruntime", ["export", R20, "--input", "32x64", "--out", "x.onnx"]),  # its numerical check needs it
])
def test_missing_optional_backend(module: str, argv: list[str], in_tmp: Path, monkeypatch, capsys) -> None:
    """An optional package that is not installed: one line naming it (with the install hint), exit 2."""
    import sys

    for name in [m for m in sys.modules if m == module or m.startswith(module + ".")]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, module, None)  # `import module` now raises ImportError
    err = _fails(argv, f"{module} is not installed", capsys)
    assert "pip install" in err
    assert sorted(p.name for p in in_tmp.iterdir() if p.name != "cache") == []
