"""Pins fixes from running every README example and bad inputs by hand: paths that cannot be
written, corrupt record files, degenerate predictor input, markup in table text, file modes,
checkpoint errors and the report at a non-paper input."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
import torch

from hwbench.cli import main
from hwbench.console import emit
from hwbench.errors import UserError
from hwbench.io import atomic_write_text
from hwbench.models import create_model, load_weights

DATA = Path(__file__).resolve().parents[1] / "data" / "trtexec"
LOG = "trt8.5_xavier_nx_fp16.log"


@pytest.fixture()
def in_tmp(tmp_path: Path, monkeypatch) -> Path:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HWBENCH_CACHE_DIR", str(tmp_path / "cache"))
    shutil.copy(DATA / LOG, tmp_path / LOG)
    (tmp_path / "afile").write_text("x\n")
    return tmp_path


def _one_line_error(capsys, argv: list[str]) -> str:
    rc = main(argv)
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2, err
    assert len(err) == 1 and err[0].startswith("error: "), err
    return err[0]


@pytest.mark.parametrize("argv, needle", [
    (["ingest", "trtexec", LOG, "--out", "afile"], "afile: exists and is not a directory"),
    (["ingest", "trtexec", LOG, "--out", "afile/sub"], "afile/sub: not a directory"),
    (["measure", "resnet20", "--input", "32x32", "--iters", "1", "--out", "afile"], "exists and is not a directory"),
])
def test_unwritable_out_is_one_line_error(argv, needle, in_tmp: Path, capsys) -> None:
    assert needle in _one_line_error(capsys, argv)
    assert (in_tmp / "afile").read_text() == "x\n"


def test_corrupt_existing_records_file_is_one_line_error(in_tmp: Path, capsys) -> None:
    (in_tmp / "runs").mkdir()
    (in_tmp / "runs" / "measurements.jsonl").write_text("{not json\n")
    msg = _one_line_error(capsys, ["ingest", "trtexec", LOG, "--out", "runs"])
    assert "measurements.jsonl" in msg and "not a JSON-lines file" in msg
    assert (in_tmp / "runs" / "measurements.jsonl").read_text() == "{not json\n"  # left as it was


def test_ingest_rejects_zero_dimension(in_tmp: Path, capsys) -> None:
    assert "positive HxW" in _one_line_error(capsys, ["ingest", "trtexec", LOG, "--input", "1x3x0x5"])


def test_export_rejects_non_positive_atol(in_tmp: Path, capsys) -> None:
    assert "--atol must be a positive number" in _one_line_error(
        capsys, ["export", "resnet20", "--input", "32x32", "--atol", "-1", "--out", "x.onnx"])
    assert not (in_tmp / "x.onnx").exists()


def test_predict_needs_something_to_fit_on(in_tmp: Path, capsys) -> None:
    assert main(["ingest", "trtexec", LOG, "--out", "one", "--json"]) == 0
    capsys.readouterr()
    msg = _one_line_error(capsys, ["predict", "--measurements", "one/measurements.jsonl"])
    assert "nothing to fit on" in msg
    (in_tmp / "empty.jsonl").write_text("")
    assert "holds no records" in _one_line_error(capsys, ["predict", "--measurements", "empty.jsonl"])


def test_emit_prints_brackets_literally(capsys) -> None:
    emit([{"device": "[cpu]", "n": 1}], as_json=False, title="latency on AMD EPYC [host]")
    out = capsys.readouterr().out
    assert "[host]" in out and "[cpu]" in out


def test_profile_sources_year_has_no_thousands_separator(capsys) -> None:
    assert main(["profiles", "tx2", "--sources"]) == 0
    out = capsys.readouterr().out
    assert "2017" in out and "2,017" not in out


def test_atomic_write_gets_the_umask_mode(tmp_path: Path) -> None:
    old = os.umask(0o022)
    try:
        path = atomic_write_text(tmp_path / "r.md", "x")
    finally:
        os.umask(old)
    assert path.stat().st_mode & 0o777 == 0o644  # not mkstemp's 0600


def test_load_weights_names_the_real_problem(tmp_path: Path) -> None:
    model = create_model("resnet18")
    garbage = tmp_path / "garbage.pth"
    garbage.write_text("not a checkpoint")
    with pytest.raises(UserError) as e:
        load_weights(model, garbage)
    msg = str(e.value)
    assert len(msg.splitlines()) == 1
    assert "Unsupported operand" in msg and "weights_only` set to `False`" not in msg
    with pytest.raises(UserError, match="is a directory"):
        load_weights(model, tmp_path)
    torch.save(model.state_dict(), tmp_path / "ok.pth")
    assert load_weights(create_model("resnet18"), tmp_path / "ok.pth") is not None


def test_report_compares_with_published_only_at_paper_input(tmp_path: Path) -> None:
    import pandas as pd

    from hwbench.report import report

    report(tmp_path, models=["deeplabv3plus_resnet18", "deeplabv3plus_resnet20"], devices=["tx2"],
           input_shape=(1, 3, 64, 128), budgets=[(10.0, 1.0)])
    md = (tmp_path / "report.md").read_text()
    assert "are for 1x3x1024x2048, so at 1x3x64x128 only ours are shown" in md
    assert "181.8" not in md and "60.3" not in md
    t2 = pd.read_csv(tmp_path / "table2.csv")
    assert t2["paper_latency_ms"].isna().all() and t2["paper_gops"].isna().all()
