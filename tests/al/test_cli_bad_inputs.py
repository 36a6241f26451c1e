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
from tests.al.corruption import tiny_run_toml

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


# --------------------------------------------------------------------------- damaged run / experiment directories

GARBAGE = np.random.default_rng(0).bytes(300)


def _snapshot(root: Path) -> dict[str, bytes]:
    """Every file's content (the lock file is bookkeeping: its holder's PID)."""
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*"))
            if p.is_file() and p.name != ".lock"}


def _refused(argv: list[str], root: Path, capsys: pytest.CaptureFixture[str]) -> str:
    before = _snapshot(root)
    capsys.readouterr()
    code = main(argv)
    err = capsys.readouterr().err
    assert code == 2, err
    assert err.startswith("error: ") and err.count("\n") == 1 and "Traceback" not in err, err
    assert _snapshot(root) == before, "something was written"
    return err


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("tiny_run")
    cfg = root / "run.toml"
    cfg.write_text(tiny_run_toml())
    assert main(["run", str(cfg), "--out", str(root / "run"), "--json"]) == 0
    return cfg, root / "run"


def _copy(src: Path, dst: Path) -> Path:
    import shutil

    shutil.copytree(src, dst)
    return dst


def _state_with(d: Path, edit) -> None:
    state = json.loads((d / "state.json").read_text())
    (d / "state.json").write_text(json.dumps(edit(state)))


def _out_of_range(s: dict) -> dict:
    s["cycles"][1]["selected"][0] = 10 ** 6
    return s


def _labelled_twice(s: dict) -> dict:
    s["cycles"][1]["selected"][0] = s["cycles"][0]["selected"][0]
    return s


STATE_CASES = {
    "list": lambda d: (d / "state.json").write_text("[]"),
    "random bytes": lambda d: (d / "state.json").write_bytes(GARBAGE),
    "truncated": lambda d: (d / "state.json").write_text((d / "state.json").read_text()[:100]),
    "no cycles": lambda d: (d / "state.json").write_text('{"version": 1, "pool_size": 40, "done": true}'),
    "index out of range": lambda d: _state_with(d, _out_of_range),
    "index labelled twice": lambda d: _state_with(d, _labelled_twice),
    "steps out of order": lambda d: _state_with(d, lambda s: {**s, "cycles": [{**s["cycles"][0], "steps": ["eval"]}]}),
    "pool size a string": lambda d: _state_with(d, lambda s: {**s, "pool_size": "40"}),
}


@pytest.mark.parametrize("case", list(STATE_CASES))
def test_damaged_state_json_is_one_line(case: str, finished_run, tmp_path: Path, capsys) -> None:
    cfg, src = finished_run
    d = _copy(src, tmp_path / "run")
    STATE_CASES[case](d)
    err = _refused(["run", str(cfg), "--out", str(d), "--resume"], d, capsys)
    assert "state.json" in err and "--force" in err


def _incomplete_needing_cycle0(src: Path, dst: Path) -> Path:
    """A copy stopped after cycle 0: resuming must load checkpoints/cycle_000.pt to select cycle 1."""
    from al.runs.run_dir import RunDir

    d = _copy(src, dst)
    rd = RunDir(d)
    state = rd.read_state()
    state["cycles"], state["done"] = state["cycles"][:1], False
    rd.write_state(state)
    (d / "DONE").unlink()
    return d


class _Evil:
    def __reduce__(self):
        return (print, ("this pickle runs code",))


def _torch_bytes(obj) -> bytes:
    import io

    import torch

    buf = io.BytesIO()
    torch.save(obj, buf)
    return buf.getvalue()


def _checkpoint_cases() -> dict:
    import pickle

    import torch

    return {
        "truncated": lambda good: good[: len(good) // 2],
        "random bytes": lambda good: GARBAGE,
        "malicious pickle": lambda good: pickle.dumps(_Evil()),
        "another model's keys": lambda good: _torch_bytes({"cycle": 0, "model": {"fc.weight": torch.zeros(2, 2)}}),
        "not a checkpoint dict": lambda good: _torch_bytes([torch.zeros(3)]),
        "another cycle": lambda good: good,
    }


@pytest.mark.parametrize("case", list(_checkpoint_cases()))
def test_damaged_checkpoint_is_never_loaded_but_trained_again(case: str, finished_run, tmp_path: Path,
                                                              capsys, caplog) -> None:
    """A checkpoint that is not the file the state recorded (its SHA-256 differs) is never loaded (no pickle
    of it runs, whatever it holds): its cycle is trained again and the run ends as the undamaged one
    (issue 19; before, these were refused in one line)."""
    cfg, src = finished_run
    d = _incomplete_needing_cycle0(src, tmp_path / "run")
    good = (src / "checkpoints" / "cycle_001.pt").read_bytes()  # cycle 1's: a wrong cycle number as it is
    (d / "checkpoints" / "cycle_000.pt").write_bytes(_checkpoint_cases()[case](good))
    capsys.readouterr()
    assert main(["run", str(cfg), "--out", str(d), "--resume"]) == 0
    out, err = capsys.readouterr()
    assert "this pickle runs code" not in out + err and "Traceback" not in err
    assert "cycle_000.pt does not match the sha256 in state.json" in caplog.text
    want, got = (json.loads((r / "state.json").read_text()) for r in (src, d))
    assert [c["selected"] for c in got["cycles"]] == [c["selected"] for c in want["cycles"]]
    assert [c["record"]["value"] for c in got["cycles"]] == [c["record"]["value"] for c in want["cycles"]]


RECORDS = [{"deployment": "resnet18", "surrogate": s, "seed": seed, "metric": "top1", "value": v}
           for s, vals in (("resnet20", (50.0, 52.0)), ("random", (49.0, 51.0))) for seed, v in enumerate(vals)]

REPORT_CASES = {
    "records: garbage last line": ("records.jsonl", lambda t: t + '{"deployment": "resnet18", "surr'),
    "records: random bytes": ("records.jsonl", lambda t: GARBAGE),
    "records: value missing": ("records.jsonl", lambda t: t + '{"deployment": "a", "surrogate": "b", "seed": 0, '
                                                             '"metric": "top1"}\n'),
    "records: NaN value": ("records.jsonl", lambda t: t.replace("50.0", "NaN")),
    "records: not objects": ("records.jsonl", lambda t: "[1, 2]\n"),
    "records: a cell twice": ("records.jsonl", lambda t: t + t.splitlines()[0] + "\n"),
    "experiment.json: random bytes": ("experiment.json", lambda t: GARBAGE),
    "experiment.json: a list": ("experiment.json", lambda t: "[1, 2]"),
    "experiment.json: truncated": ("experiment.json", lambda t: t[:10]),
    "experiment.json: deployment not a list": ("experiment.json", lambda t: '{"deployment": "resnet18"}'),
    "timing.json: parts not a list": ("timing.json", lambda t: '{"total_s": 1.0, "parts": 3}'),
    "entropy.json: empty object": ("entropy.json", lambda t: "{}"),
}


@pytest.mark.parametrize("case", list(REPORT_CASES))
def test_al_report_on_damaged_results_is_one_line(case: str, tmp_path: Path, capsys) -> None:
    d = tmp_path / "exp"
    d.mkdir()
    files = {"records.jsonl": "".join(json.dumps(r) + "\n" for r in RECORDS),
             "experiment.json": json.dumps({"name": "x", "kind": "surrogate", "deployment": ["resnet18"],
                                            "surrogates": ["resnet20"], "seeds": [0, 1]}),
             "timing.json": json.dumps({"total_s": 1.0, "parts": []}), "entropy.json": "{}"}
    name, damage = REPORT_CASES[case]
    for fname, text in files.items():
        if fname != "entropy.json" or name == "entropy.json":
            (d / fname).write_text(text)
    data = damage(files[name])
    (d / name).write_bytes(data if isinstance(data, bytes) else data.encode())
    err = _refused(["report", str(d)], d, capsys)
    assert name in err
