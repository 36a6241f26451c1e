"""Pins fixes from running the README's `al` examples and bad inputs by hand: a negative seed and an
unwritable --out are one-line errors (exit 2) that leave no directory behind."""

from __future__ import annotations

from pathlib import Path

from al.cli import main
from al.presets import __file__ as presets_init

PRESETS = Path(presets_init).parent


def _one_line_error(capsys, argv: list[str]) -> str:
    rc = main(argv)
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2, err
    assert len(err) == 1 and err[0].startswith("error: "), err
    return err[0]


def test_negative_seed_run(tmp_path: Path, capsys) -> None:
    msg = _one_line_error(capsys, ["run", "smoke", "--out", str(tmp_path / "run"), "--seed", "-1"])
    assert "seed must be a non-negative integer, got -1" in msg
    assert not (tmp_path / "run").exists()


def test_negative_seed_entropy(tmp_path: Path, capsys) -> None:
    text = (PRESETS / "entropy_demo.toml").read_text()
    assert "\nseed = 0\n" in text
    cfg = tmp_path / "ent.toml"
    cfg.write_text(text.replace("\nseed = 0\n", "\nseed = -1\n"))
    assert "seed must be >= 0" in _one_line_error(capsys, ["entropy", str(cfg), "--out", str(tmp_path / "e")])
    assert not (tmp_path / "e").exists()


def test_run_out_under_a_file(tmp_path: Path, capsys) -> None:
    blocker = tmp_path / "afile"
    blocker.write_text("x\n")
    assert "not a directory" in _one_line_error(capsys, ["run", "smoke", "--out", str(blocker / "sub")])
    assert blocker.read_text() == "x\n"


def test_report_out_is_a_file(tmp_path: Path, capsys) -> None:
    assert main(["run", "smoke", "--out", str(tmp_path / "runs" / "entropy")]) == 0  # a finished tiny run
    capsys.readouterr()
    blocker = tmp_path / "afile"
    blocker.write_text("x\n")
    msg = _one_line_error(capsys, ["report", str(tmp_path / "runs"), "--out", str(blocker)])
    assert "exists and is not a directory" in msg
    assert blocker.read_text() == "x\n"
