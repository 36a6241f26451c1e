"""Hostile inputs to the `al` CLI that are not run directories (issue 8): config and manifest files of
random bytes, inf/NaN where a finite number belongs, label images that are colour, 16-bit or of another
size than their image. Each one: exit 2, one stderr line `error: ...`, no traceback, nothing written."""

from __future__ import annotations

import os
import random
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from al.cli import main

RANDOM = random.Random(8).randbytes(512)  # not UTF-8, not TOML
H, W = 16, 32

CONFIG = """seed = 0
threads = 1
device = "cpu"
[data]
name = "cityscapes"
root = "{root}"
split = "train"
val_split = "val"
[data.options]
validate = true
crop_size = [16, 16]
{options}
[model]
name = "deeplabv3plus_resnet20"
[al]
strategy = "entropy"
initial_fraction = 0.25
cycle_fraction = 0.25
cycles = 1
batch_size = 2
[train]
epochs = 1
batch_size = 2
lr = {lr}
"""


def _png(path: Path, arr: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(arr).save(path)


def make_cityscapes(root: Path) -> None:
    """train: 4 frames, val: 2 frames of H x W; labels are 8-bit labelIds (7 = road, 26 = car)."""
    rng = np.random.default_rng(0)
    for split, n in (("train", 4), ("val", 2)):
        for i in range(n):
            stem = f"aachen_{i:06d}_000019"
            _png(root / "leftImg8bit" / split / "aachen" / f"{stem}_leftImg8bit.png",
                 rng.integers(0, 256, (H, W, 3), dtype=np.uint8))
            _png(root / "gtFine" / split / "aachen" / f"{stem}_gtFine_labelIds.png",
                 np.where(rng.random((H, W)) < 0.5, 7, 26).astype(np.uint8))


LABEL = "gtFine/train/aachen/aachen_000001_000019_gtFine_labelIds.png"
Setup = Callable[[Path], None]


def _config(options: str = "", lr: str = "0.01") -> Setup:
    def setup(d: Path) -> None:
        make_cityscapes(d / "data")
        (d / "cfg.toml").write_text(CONFIG.format(root=(d / "data").as_posix(), options=options, lr=lr))
    return setup


def _then(first: Setup, then: Callable[[Path], object]) -> Setup:
    def setup(d: Path) -> None:
        first(d)
        then(d)
    return setup


def _label(arr: np.ndarray | None = None, image: Image.Image | None = None) -> Callable[[Path], object]:
    def write(d: Path) -> None:
        path = d / "data" / LABEL
        if image is not None:
            image.save(path)
        else:
            _png(path, arr)
    return write


RUN = ["run", "cfg.toml", "--out", "out"]
PRESETS = Path(__file__).resolve().parents[2] / "al" / "presets"

SYNTHETIC = """seed = 0
threads = 1
device = "cpu"
[data]
name = "synthetic_streets"
[data.options]
size = [100000, 100000]
[model]
name = "deeplabv3plus_resnet20"
[al]
strategy = "entropy"
initial_fraction = 0.25
cycle_fraction = 0.25
cycles = 1
[train]
epochs = 1
"""


def _fifo(rel: str) -> Setup:
    return lambda d: os.mkfifo(d / rel)  # nobody writes to it: a reader that opens it would hang


def _fleet(edit: Callable[[str], str]) -> Setup:
    return lambda d: (d / "f.toml").write_text(edit((PRESETS / "fleet_demo.toml").read_text()))


def _weights(kind: Callable[[Path], object]) -> Setup:
    """The cityscapes config with [model] weights = "w.pth", `kind` making w.pth (a FIFO, a directory)."""
    def setup(d: Path) -> None:
        _config()(d)
        text = (d / "cfg.toml").read_text().replace('name = "deeplabv3plus_resnet20"',
                                                    'name = "deeplabv3plus_resnet20"\nweights = "w.pth"')
        (d / "cfg.toml").write_text(text)
        kind(d / "w.pth")
    return setup

CASES: dict[str, tuple[Setup, list[str], str]] = {
    "config of random bytes (run)": (lambda d: (d / "cfg.toml").write_bytes(RANDOM), RUN, "not a text (UTF-8) file"),
    "config of random bytes (surrogate)": (lambda d: (d / "cfg.toml").write_bytes(RANDOM),
                                           ["surrogate", "cfg.toml", "--out", "out"], "not a text (UTF-8) file"),
    "config of random bytes (entropy)": (lambda d: (d / "cfg.toml").write_bytes(RANDOM),
                                         ["entropy", "cfg.toml", "--out", "out"], "not a text (UTF-8) file"),
    "config truncated": (_then(_config(), lambda d: (d / "cfg.toml").write_text(
        (d / "cfg.toml").read_text()[:120])), RUN, "not valid TOML"),
    "config that is a directory": (lambda d: (d / "cfg.toml").mkdir(), RUN, "is a directory"),
    "experiment config that is a directory": (lambda d: (d / "cfg.toml").mkdir(),
                                              ["surrogate", "cfg.toml", "--out", "out"], "cfg.toml is a directory"),
    "lr = inf": (_config(lr="inf"), RUN, "train.lr: expected a finite number"),
    "lr = nan": (_config(lr="nan"), RUN, "train.lr: expected a finite number"),
    "lr = -inf": (_config(lr="-inf"), RUN, "train.lr: expected a finite number"),
    "initial_fraction = inf": (_then(_config(), lambda d: (d / "cfg.toml").write_text(
        (d / "cfg.toml").read_text().replace("initial_fraction = 0.25", "initial_fraction = inf"))),
                               RUN, "al.initial_fraction: expected a finite number"),
    "label image RGB": (_then(_config(), _label(np.zeros((H, W, 3), np.uint8))), RUN, "mode 'RGB'"),
    "label image RGBA": (_then(_config(), _label(np.zeros((H, W, 4), np.uint8))), RUN, "mode 'RGBA'"),
    "label image 16-bit": (_then(_config(), _label(image=Image.fromarray(np.full((H, W), 7, np.uint16)))),
                           RUN, "is a 16/32-bit image"),
    "label image of another size": (_then(_config(), _label(np.full((H, W // 2), 7, np.uint8))), RUN,
                                    f"is {W // 2}x{H} but its image is {W}x{H}"),
    "label image of random bytes": (_then(_config(), lambda d: (d / "data" / LABEL).write_bytes(RANDOM)), RUN,
                                    "cannot decode label image"),
    "manifest of random bytes": (_then(_config('manifest = "m.txt"'), lambda d: (d / "data" / "m.txt").write_bytes(
        RANDOM)), RUN, "is not a text (UTF-8) file"),
    "manifest with NUL bytes": (_then(_config('manifest = "m.txt"'), lambda d: (d / "data" / "m.txt").write_text(
        "leftImg8bit/train/aachen/aachen_000000_000019_leftImg8bit.png\0\n")), RUN, "NUL bytes"),
    "manifest listing nothing": (_then(_config('manifest = "m.txt"'), lambda d: (d / "data" / "m.txt").write_text(
        "# nothing\n\n")), RUN, "lists no images"),
    "manifest escaping the root": (_then(_config('manifest = "m.txt"'), lambda d: (d / "data" / "m.txt").write_text(
        "../cfg.toml\n")), RUN, "escapes the dataset root"),
    "manifest entry of another split": (_then(_config('manifest = "m.txt"'), lambda d: (d / "data" / "m.txt")
                                              .write_text("leftImg8bit/val/aachen/aachen_000000_000019_leftImg8bit.png\n")),
                                        RUN, "is not an indexed image of this split"),
    "manifest missing": (_config('manifest = "nothere.txt"'), RUN, "manifest nothere.txt not found"),
    "unknown data option": (_config("flavour = 1"), RUN, "unknown option(s) 'flavour'"),
    # ---- issue 19: a FIFO or a directory named as such (never opened: no hang)
    "config that is a FIFO": (_fifo("cfg.toml"), RUN, "cfg.toml is a FIFO (named pipe)"),
    "weights checkpoint a FIFO": (_weights(os.mkfifo), RUN, "'w.pth' is a FIFO (named pipe)"),
    "weights checkpoint a directory": (_weights(Path.mkdir), RUN, "'w.pth' is a directory"),
    "al report on a FIFO": (_fifo("exp"), ["report", "exp"], "exp is a FIFO (named pipe)"),
    # ---- refused before any work or write
    "surrogate --cell of no such id": (lambda d: None, ["surrogate", "surrogate_smoke", "--out", "exp", "--cell",
                                                        "nope/cell"], "no cell 'nope/cell'"),
    "fleet --merge with no shards": (_fleet(lambda t: t), ["fleet", "f.toml", "--out", "fl", "--merge"],
                                     "holds no complete set of shards"),
    "entropy --out a file": (lambda d: (d / "afile").write_text("mine"), ["entropy", "entropy_demo", "--out",
                                                                          "afile"], "exists and is not a directory"),
    # ---- limits
    "synthetic size 100000 x 100000": (lambda d: (d / "cfg.toml").write_text(SYNTHETIC), RUN,
                                       "size must be [H, W] with both between 16 and 4096"),
    "data drives 0-99999": (lambda d: None, ["data", "drives", "out", "--drives", "0-99999"],
                            "write at most 100,000 per call"),
    "fleet hours_per_day = 25": (_fleet(lambda t: t.replace("hours_per_day = 0.03", "hours_per_day = 25")),
                                 ["fleet", "f.toml", "--out", "fl"], "hours_per_day must be at most 24"),
}


@pytest.fixture()
def in_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HWBENCH_CACHE_DIR", str(tmp_path / "cache"))
    return tmp_path


def _tree(d: Path) -> dict[str, bytes | None]:
    return {str(p.relative_to(d)): (p.read_bytes() if p.is_file() else None) for p in sorted(d.rglob("*"))}


@pytest.mark.parametrize("case", list(CASES))
def test_hostile_input(case: str, in_tmp: Path, capsys) -> None:
    setup, argv, needle = CASES[case]
    setup(in_tmp)
    before = _tree(in_tmp)
    code = main(argv)
    out, err = capsys.readouterr()
    assert code == 2, err
    assert err.startswith("error: ") and err.count("\n") == 1 and "Traceback" not in err, err
    assert needle in err, err
    assert out == ""
    assert _tree(in_tmp) == before, "something was written"


def test_good_config_control(in_tmp: Path) -> None:
    """Control: the unedited data and config pass `prepare` (so the errors above are the edits')."""
    from al.config import load_config
    from al.prepare import prepare

    _config()(in_tmp)
    p = prepare(load_config(in_tmp / "cfg.toml"))
    assert (len(p.pool), len(p.val)) == (4, 2)


def test_manifest_selects_the_pool_only(in_tmp: Path) -> None:
    """A `manifest` in [data.options] restricts the pool's split; the validation split stays whole (before:
    the manifest was applied to it too, so no manifest could ever work)."""
    from al.config import load_config
    from al.prepare import prepare

    _config('manifest = "m.txt"')(in_tmp)
    chosen = [f"leftImg8bit/train/aachen/aachen_{i:06d}_000019_leftImg8bit.png" for i in (3, 1)]
    (in_tmp / "data" / "m.txt").write_text("\n".join(chosen) + "\n")
    p = prepare(load_config(in_tmp / "cfg.toml"))
    assert [p.pool.image_path(i) for i in range(len(p.pool))] == [in_tmp / "data" / c for c in chosen]
    assert len(p.val) == 2 and all("/val/" in p.val.image_path(i).as_posix() for i in range(2))


def test_ctrl_c_while_a_command_loads(monkeypatch, capsys) -> None:
    import hwbench.cli_base as cli_base

    def interrupted(name: str):
        raise KeyboardInterrupt

    monkeypatch.setattr(cli_base.importlib, "import_module", interrupted)
    assert main(["run", "smoke", "--out", "x"]) == 130
    assert capsys.readouterr().err == "interrupted\n"


def test_version(capsys) -> None:
    from importlib.metadata import version

    with pytest.raises(SystemExit) as e:
        main(["--version"])
    assert e.value.code == 0 and capsys.readouterr().out == f"al {version('hwbench')}\n"


@pytest.mark.parametrize("argv", [["data", "stats", "--frames", "24"]])
def test_columns_of_zero_counts_as_unset(argv: list[str]) -> None:
    import subprocess
    import sys

    root = Path(__file__).resolve().parents[2]
    p = subprocess.run([sys.executable, "-m", "al", *argv], capture_output=True, text=True, timeout=300,
                       env={**os.environ, "PYTHONPATH": str(root), "COLUMNS": "0"})
    assert p.returncode == 0 and "synthetic_streets drives" in p.stdout, p
