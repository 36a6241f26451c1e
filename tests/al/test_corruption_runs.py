"""Corruption suite (issue 19), part 1: every file of an `al run` directory and of a surrogate experiment
(its own files, a deployment cell, an AL cell), damaged four ways (`tests/al/corruption.py`), then
resumed: each case ends refused in one line naming the file, or repaired to the undamaged result.
Nothing damaged is used silently. Tiny configs; the reference runs are shared within the module."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch

from al.cli import main
from al.experiments.surrogate import run_experiment
from al.loop import run
from tests.al.corruption import DAMAGES, damage, damage_or_skip, drop_timing, judge, record, tiny_run_toml

RUN_FILES = ("state.json", "config.toml", "selections.jsonl", "metrics.jsonl", "DONE",
             "checkpoints/cycle_000.pt", "checkpoints/cycle_001.pt")


def run_outcome(d: Path) -> dict:
    """Everything a run's results are: state (timings aside), JSON lines, DONE, config, every checkpoint."""
    out = {"files": sorted(str(p.relative_to(d)) for p in d.rglob("*") if p.is_file() and p.name != ".lock")}
    for name in ("state.json", "DONE"):
        out[name] = drop_timing(json.loads((d / name).read_text()))
    for name in ("selections.jsonl", "metrics.jsonl"):
        out[name] = drop_timing([json.loads(x) for x in (d / name).read_text().splitlines()])
    out["config.toml"] = (d / "config.toml").read_text()
    for p in sorted((d / "checkpoints").glob("*.pt")):
        ck = torch.load(p, weights_only=True)
        out[p.name] = {k: v.tolist() for k, v in ck["model"].items()}
    return out


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> tuple[Path, Path, Path, dict]:
    root = tmp_path_factory.mktemp("runs")
    cfg = root / "run.toml"
    cfg.write_text(tiny_run_toml(seed=0, keep_checkpoints="all"))
    (root / "other.toml").write_text(tiny_run_toml(seed=1, keep_checkpoints="all"))
    run(str(cfg), root / "ref", progress=False)
    run(str(root / "other.toml"), root / "other", progress=False)
    return cfg, root / "ref", root / "other", run_outcome(root / "ref")


@pytest.mark.parametrize("dmg", DAMAGES)
@pytest.mark.parametrize("kind", RUN_FILES)
def test_damaged_run_file(kind: str, dmg: str, runs, tmp_path: Path, capsys) -> None:
    cfg, ref, other, want = runs
    d = tmp_path / "run"
    shutil.copytree(ref, d)
    damage_or_skip(d / kind, dmg, other / kind, what=kind)
    capsys.readouterr()
    rc = main(["run", str(cfg), "--out", str(d), "--resume"])
    err = capsys.readouterr().err
    same = rc == 0 and run_outcome(d) == want
    outcome = judge(rc, err, d / kind, same)
    record("run directory (al run)", kind, dmg, outcome, err)
    assert outcome != "USED", (kind, dmg, rc, err)


def test_edited_selection_in_state_is_refused_not_trusted(runs, tmp_path: Path, capsys) -> None:
    """The issue's case: cycles[1].selected[0] of a finished run set to an unused index, then --resume.
    Before: exit 0 `repaired`, and the JSON lines rewritten from the bad state."""
    cfg, ref, _, want = runs
    d = tmp_path / "run"
    shutil.copytree(ref, d)
    state = json.loads((d / "state.json").read_text())
    used = {i for c in state["cycles"] for i in c["selected"]}
    state["cycles"][1]["selected"][0] = next(i for i in range(state["pool_size"]) if i not in used)
    (d / "state.json").write_text(json.dumps(state, indent=2))
    capsys.readouterr()
    assert main(["run", str(cfg), "--out", str(d), "--resume"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "state.json does not match its sha256" in err
    assert [json.loads(x)["selected"] for x in (d / "selections.jsonl").read_text().splitlines()] == \
        [c["selected"] for c in json.loads((ref / "state.json").read_text())["cycles"]]  # untouched


def test_damaged_checkpoint_mid_run_is_trained_again(runs, tmp_path: Path, caplog) -> None:
    """cycle_000.pt with one float set to 3.4e38 while the run is unfinished (killed after cycle 1's
    selection): before, cycle 1 trained on from the damaged weights' selection... now cycle 0 is trained
    again and the run ends as the undamaged one."""
    from al.runs.files import seal

    cfg, ref, _, want = runs
    d = tmp_path / "run"
    shutil.copytree(ref, d)
    state = json.loads((d / "state.json").read_text())
    state["done"] = False
    state["cycles"][1]["steps"] = ["select"]
    for key in ("record", "train", "train_s", "ckpt_sha256"):
        state["cycles"][1].pop(key)
    (d / "state.json").write_text(json.dumps(seal(state)))  # as a kill after cycle 1's selection leaves it
    (d / "checkpoints" / "cycle_001.pt").unlink()
    (d / "DONE").unlink()
    assert damage(d / "checkpoints" / "cycle_000.pt", "float")
    assert main(["run", str(cfg), "--out", str(d), "--resume"]) == 0
    assert run_outcome(d) == want
    assert "cycle_000.pt does not match the sha256" in caplog.text


# ------------------------------------------------------------------------------------------ experiments
RES20, MNV3 = "deeplabv3plus_resnet20", "deeplabv3plus_mobilenetv3_small"
SMOKE = Path(__file__).resolve().parents[2] / "al" / "presets" / "surrogate_smoke.toml"
CELL = f"seed_0/train/{RES20}/{MNV3}"
AL = f"seed_0/al/{MNV3}"
EXP_FILES = ("experiment.json", "experiment.toml", "deploy.json", "records.jsonl", "DONE",
             f"{CELL}/record.json", f"{AL}/state.json", f"{AL}/checkpoints/cycle_001.pt")


def _experiment_config(root: Path, seed: int) -> Path:
    text = SMOKE.read_text()
    for old, new in ((f'surrogates = ["{RES20}", "{MNV3}"]', f'surrogates = ["{MNV3}"]'),
                     ("seeds = [0, 1]", f"seeds = [{seed}]"), ('name = "surrogate_smoke"', 'name = "cells_smoke"')):
        assert text.count(old) == 1, old
        text = text.replace(old, new)
    path = root / f"exp{seed}.toml"
    path.write_text(text)
    return path


def exp_outcome(d: Path) -> dict:
    out = {"records.jsonl": [json.loads(x) for x in (d / "records.jsonl").read_text().splitlines()]}
    for p in sorted(d.rglob("record.json")):
        out[str(p.relative_to(d))] = drop_timing(json.loads(p.read_text()))
    for p in sorted(d.rglob("state.json")):
        out[str(p.relative_to(d))] = drop_timing(json.loads(p.read_text()))["cycles"]
    for name in ("experiment.json", "deploy.json"):
        out[name] = drop_timing(json.loads((d / name).read_text()))
    out["experiment.toml"] = (d / "experiment.toml").read_text()
    return out


@pytest.fixture(scope="module")
def experiments(tmp_path_factory) -> tuple[Path, Path, Path, dict]:
    root = tmp_path_factory.mktemp("exps")
    cfg = _experiment_config(root, 0)
    run_experiment(cfg, root / "ref")
    # "another run's copy": the same files of an experiment of another seed, renamed to seed 0's places
    other_cfg = _experiment_config(root, 1)
    run_experiment(other_cfg, root / "other1")
    other = root / "other"
    shutil.copytree(root / "other1", other)
    (other / "seed_1").rename(other / "seed_0")
    return cfg, root / "ref", other, exp_outcome(root / "ref")


@pytest.mark.parametrize("dmg", DAMAGES)
@pytest.mark.parametrize("kind", EXP_FILES)
def test_damaged_experiment_file(kind: str, dmg: str, experiments, tmp_path: Path, capsys) -> None:
    cfg, ref, other, want = experiments
    d = tmp_path / "exp"
    shutil.copytree(ref, d)
    damage_or_skip(d / kind, dmg, other / kind, what=kind)
    capsys.readouterr()
    rc = main(["surrogate", str(cfg), "--out", str(d), "--resume", "--json", "--jobs", "1"])
    out, err = capsys.readouterr()
    same = rc == 0 and exp_outcome(d) == want
    outcome = judge(rc, err, d / kind, same)
    area = "experiment cell" if kind.startswith("seed_") else "experiment (al surrogate)"
    record(area, kind.replace("seed_0/", "seed_<s>/"), dmg, outcome, err)
    assert outcome != "USED", (kind, dmg, rc, err)


def test_edited_cell_record_is_trained_again(experiments, tmp_path: Path, capsys) -> None:
    """The issue's case: a cell's record.json value edited by +10 went straight into the matrix."""
    cfg, ref, _, want = experiments
    d = tmp_path / "exp"
    shutil.copytree(ref, d)
    rec = json.loads((d / CELL / "record.json").read_text())
    rec["value"] += 10
    (d / CELL / "record.json").write_text(json.dumps(rec))
    assert main(["surrogate", str(cfg), "--out", str(d), "--resume", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["records"] == want["records.jsonl"]
    assert exp_outcome(d) == want
