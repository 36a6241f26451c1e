"""`al run` on bad data: a wrong dataset layout fails before anything is written; a corrupt image met
mid-run fails with one line naming the file and leaves a run directory that is visibly incomplete
(no DONE, state.done false) and resumes to completion once the file is replaced."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from al.cli import main

CONFIG = """seed = 0
threads = 1
device = "cpu"
[data]
name = "folder"
root = "{root}"
[data.options]
image_size = 16
[model]
name = "resnet20"
[al]
strategy = "entropy"
initial_fraction = 0.25
cycle_fraction = 0.25
cycles = 1
batch_size = 4
[train]
epochs = 1
batch_size = 4
"""


def _image(path: Path, seed: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.random.default_rng(seed).integers(0, 256, (20, 20, 3), dtype=np.uint8)).save(path)


def make_folder(root: Path) -> None:
    """train/{ant,cat}: 6 images each; val/{ant,cat}: 2 each (12-image pool, 4 validation images)."""
    for split, n in (("train", 6), ("val", 2)):
        for c, cls in enumerate(("ant", "cat")):
            for i in range(n):
                _image(root / split / cls / f"im{i}.png", 100 * c + 10 * (split == "val") + i)


def _fail(args: list[str], capsys: pytest.CaptureFixture[str]) -> str:
    code = main(["run", *args])
    err = capsys.readouterr().err
    assert code == 2, err
    assert err.startswith("error: ") and err.count("\n") == 1, err
    return err


def _config(tmp_path: Path, root: Path) -> Path:
    cfg = tmp_path / "cfg.toml"
    cfg.write_text(CONFIG.format(root=root.as_posix()))
    return cfg


def test_wrong_layout_fails_before_writing(tmp_path: Path, capsys) -> None:
    root = tmp_path / "data"
    make_folder(root)
    for p in (root / "val").rglob("*.png"):
        p.unlink()
    for d in sorted((root / "val").iterdir()):
        d.rmdir()
    (root / "val").rmdir()  # the val split is missing
    out = tmp_path / "run"
    err = _fail([str(_config(tmp_path, root)), "--out", str(out)], capsys)
    assert "val is missing" in err
    assert not out.exists()


def test_missing_root_fails_before_writing(tmp_path: Path, capsys) -> None:
    out = tmp_path / "run"
    err = _fail([str(_config(tmp_path, tmp_path / "nowhere")), "--out", str(out)], capsys)
    assert "nowhere" in err and not out.exists()


def test_corrupt_image_mid_run_then_resume(tmp_path: Path, capsys) -> None:
    root = tmp_path / "data"
    make_folder(root)
    bad = root / "train" / "cat" / "im3.png"
    bad.write_bytes(b"\x89PNG\r\n\x1a\n truncated")
    cfg, out = _config(tmp_path, root), tmp_path / "run"
    err = _fail([str(cfg), "--out", str(out)], capsys)
    assert "cannot decode image" in err and "im3.png" in err
    # the image is decoded only when training needs it, so the run had started: its directory says
    # it is not finished (no DONE, state.done false), and a plain re-run refuses to overwrite it
    assert not (out / "DONE").exists()
    assert json.loads((out / "state.json").read_text())["done"] is False
    assert "--resume" in _fail([str(cfg), "--out", str(out)], capsys)
    # after the file is replaced, --resume finishes the run
    _image(bad, 103)
    assert main(["run", str(cfg), "--out", str(out), "--resume"]) == 0
    assert (out / "DONE").is_file() and json.loads((out / "state.json").read_text())["done"] is True
    selections = [json.loads(line)["selected"] for line in (out / "selections.jsonl").read_text().splitlines()]
    assert [len(s) for s in selections] == [3, 3] and len(set(selections[0]) | set(selections[1])) == 6
