"""Selection diagnostics: hand-computed values, brute force, the random references by simulation,
and the report section on a real (smoke) surrogate experiment."""

from __future__ import annotations

import itertools
import json

import numpy as np
import pytest

from al.cli import main
from al.report.diagnostics import check_diagnostics, diagnostics_section
from al.selection_diagnostics import (
    class_counts,
    image_class_counts,
    mean_pairwise_cosine,
    min_class_ratio,
    overlap,
    random_class_balance,
    selection_rows,
    total_variation,
    unit_rows,
)
from hwbench.io import read_jsonl


def test_class_balance_by_hand():
    labels = np.eye(3, dtype=np.int64)[[0, 0, 1, 1, 2, 2]]               # 2 images per class
    c = class_counts(labels, [0, 1, 2])
    assert c.tolist() == [2, 1, 0]
    assert total_variation(c, labels.sum(0)) == pytest.approx(0.5 * (abs(2 / 3 - 1 / 3) + 0 + 1 / 3))
    assert min_class_ratio(c, labels.sum(0)) == 0.0
    assert min_class_ratio(class_counts(labels, [0, 2, 4]), labels.sum(0)) == pytest.approx(1.0)


def test_segmentation_counts_pixels_and_skips_ignored():
    ds = [(None, np.array([[0, 1], [1, 255]])), (None, np.array([[2, 2], [2, 2]]))]
    assert image_class_counts(ds, 3, 255).tolist() == [[1, 2, 0], [0, 0, 4]]


def test_mean_pairwise_cosine_brute_force_and_random_expectation():
    rng = np.random.default_rng(0)
    unit = unit_rows(rng.normal(size=(9, 4)))
    idx = [1, 3, 4, 8]
    brute = np.mean([unit[i] @ unit[j] for i, j in itertools.permutations(idx, 2)])
    assert mean_pairwise_cosine(unit, idx) == pytest.approx(brute)
    # over every 3-subset of the 9 rows, the mean of the statistic equals the statistic of all 9
    subsets = [mean_pairwise_cosine(unit, s) for s in itertools.combinations(range(9), 3)]
    assert np.mean(subsets) == pytest.approx(mean_pairwise_cosine(unit, range(9)))


def test_overlap_and_random_class_balance():
    assert overlap([1, 2, 3, 4], [4, 3, 9]) == 0.5
    labels = np.eye(2, dtype=np.int64)[[0] * 50 + [1] * 50]
    tv, ratio = random_class_balance(labels, np.arange(100), 10, np.random.default_rng(1), draws=4000)
    # hypergeometric: E|k/10 - 1/2| for k ~ HG(100, 50, 10) = TV; computed exactly here
    from math import comb
    pk = [comb(50, k) * comb(50, 10 - k) / comb(100, 10) for k in range(11)]
    assert tv == pytest.approx(sum(p * abs(k / 10 - 0.5) for k, p in enumerate(pk)), abs=0.01)
    assert ratio == pytest.approx(sum(p * min(k, 10 - k) / 5 for k, p in enumerate(pk)), abs=0.02)


def test_selection_rows_by_hand():
    labels = np.eye(2, dtype=np.int64)[[0, 0, 0, 1, 1, 1]]
    unit = unit_rows(np.array([[1, 0], [1, 0], [0, 1], [0, 1], [1, 1], [1, 0]], dtype=float))
    cycles = [{"cycle": 0, "selected": [0, 3]}, {"cycle": 1, "selected": [1, 2]}]
    rows = selection_rows(cycles, labels, unit, {"dep": {1: [2, 5]}}, np.random.default_rng(0))
    assert len(rows) == 1 and rows[0]["cycle"] == 1
    r = rows[0]
    assert r["class_tv"] == pytest.approx(0.5) and r["min_class_ratio"] == 0.0   # picks all class 0
    assert r["overlap"] == {"dep": 0.5} and r["overlap_random"] == pytest.approx(2 / 4)
    assert r["redundancy"] == pytest.approx(0.0)                                  # orthogonal pair
    unl = [1, 2, 4, 5]
    brute = np.mean([unit[i] @ unit[j] for i, j in itertools.permutations(unl, 2)])
    assert r["redundancy_random"] == pytest.approx(brute)


@pytest.fixture(scope="module")
def smoke_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("diag") / "smoke"
    assert main(["surrogate", "surrogate_smoke", "--out", str(out), "--jobs", "1"]) == 0
    assert main(["report", str(out), "--diagnostics"]) == 0
    return out


def test_experiment_diagnostics_and_report_section(smoke_dir):
    diag = json.loads((smoke_dir / "selection_diagnostics.json").read_text())
    exp = json.loads((smoke_dir / "experiment.json").read_text())
    res20, mnv3 = exp["surrogates"]
    assert diag["counted"] == "pixels" and len(diag["pool_class_counts"]) == diag["classes"]
    assert {r["surrogate"] for r in diag["rows"]} == {res20, mnv3}
    for seed in exp["seeds"]:                                             # overlap with Res-20's own picks
        sel = {m: {r["cycle"]: r["selected"] for r in read_jsonl(smoke_dir / f"seed_{seed}" / "al" / m /
                                                                   "selections.jsonl")} for m in (res20, mnv3)}
        for r in (r for r in diag["rows"] if r["seed"] == seed and r["surrogate"] == mnv3):
            mine, own = set(sel[mnv3][r["cycle"]]), set(sel[res20][r["cycle"]])
            assert r["overlap"][res20] == pytest.approx(len(mine & own) / len(mine))
            assert -1.0 <= r["redundancy"] <= 1.0 and 0.0 <= r["class_tv"] <= 1.0
    finals = {(f["seed"], f["selection"]) for f in diag["final"]}
    assert finals == {(s, m) for s in exp["seeds"] for m in (res20, mnv3, "random")}
    md = (smoke_dir / "report.md").read_text()
    assert "### Why the picks win or lose" in md and "deployment's own picks" in md
    assert "Why the picks win or lose" in (smoke_dir / "report.html").read_text()


def test_damaged_diagnostics_are_skipped_not_fatal(smoke_dir, tmp_path):
    import shutil

    copy = tmp_path / "copy"
    shutil.copytree(smoke_dir, copy)
    (copy / "selection_diagnostics.json").write_text('{"rows": [1, 2], "final": []}')
    assert main(["report", str(copy)]) == 0
    assert "Why the picks" not in (copy / "report.md").read_text()


def test_section_checks_and_order():
    row = {"surrogate": "b", "cycle": 1, "class_tv": 0.5, "class_tv_random": 0.1, "min_class_ratio": 0.0,
           "min_class_ratio_random": 0.4, "overlap": {"a": 0.2}, "overlap_random": 0.1}
    diag = check_diagnostics({"rows": [row, {**row, "surrogate": "a", "overlap": {"b": 0.3}}], "final": []})
    intro, tables = diagnostics_section(diag, ["a", "b"])
    assert [r[0] for r in tables[0][1]] == ["a", "b"] and tables[1][0][1:] == ["a", "b"]
    assert tables[1][1] == [["a", "–", "0.30 (0.10)"], ["b", "0.20 (0.10)", "–"]]
    with pytest.raises(ValueError):
        check_diagnostics({"rows": [{**row, "class_tv": "x"}], "final": []})
    assert diagnostics_section(None, ["a"]) is None


def test_damaged_selections_are_one_line(smoke_dir, tmp_path, capsys):
    import shutil

    copy = tmp_path / "copy"
    shutil.copytree(smoke_dir, copy)
    next(copy.glob("seed_0/al/*/selections.jsonl")).write_bytes(b"\x00\xff not json")
    assert main(["report", str(copy), "--diagnostics"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error:") and "selection diagnostics" in err[0]


def test_picking_checkpoints_by_hand():
    from al.selection_diagnostics import picking_checkpoints

    assert picking_checkpoints([1, 2, 3], [0, 1, 2, 3]) == ({1: 0, 2: 1, 3: 2}, [])
    assert picking_checkpoints([1, 2, 3], [3]) == ({1: 3, 2: 3, 3: 3}, [1, 2, 3])   # keep_checkpoints = "last"
    assert picking_checkpoints([1, 2, 3], [0, 3]) == ({1: 0, 2: 3, 3: 3}, [2, 3])
    assert picking_checkpoints([1, 2], []) == ({}, [])


DIGITS_ALL_CKPTS = """name = "diag_ckpt"
seeds = [0]
device = "cpu"
threads = 1
deployment = ["resnet20"]
surrogates = ["resnet20"]

[data]
name = "digits"
pool_size = 120
val_size = 40
options = { size = 8 }

[al]
strategy = "entropy"
initial_fraction = 0.1
cycle_fraction = 0.1
cycles = 2
batch_size = 64
keep_checkpoints = "all"

[train.surrogate]
epochs = 2
batch_size = 16

[train.deployment]
epochs = 1
batch_size = 16
"""


def _redundancy_by_hand(run_dir, k, picks):
    """Mean pairwise cosine of the picks' penultimate features under checkpoint `k`, by a plain forward pass."""
    import torch

    from al.config import load_config
    from al.prepare import prepare
    from hwbench.models import create_model

    p = prepare(load_config(run_dir / "config.toml"))
    net = create_model("resnet20", num_classes=p.pool.num_classes)
    net.load_state_dict(torch.load(run_dir / "checkpoints" / f"cycle_{k:03d}.pt", weights_only=False)["model"])
    x = torch.stack([p.pool_score[int(i)][0] for i in picks])
    with torch.no_grad():
        e = net.eval()(x, return_features=True)[1]["penultimate"].double()
    e = e / e.norm(dim=1, keepdim=True)
    n = len(picks)
    return float(((e @ e.T).sum() - n) / (n * (n - 1)))


def test_redundancy_uses_the_checkpoint_that_made_the_picks(tmp_path):
    from al.selection_diagnostics import compute

    cfg = tmp_path / "exp.toml"
    cfg.write_text(DIGITS_ALL_CKPTS)
    out = tmp_path / "exp"
    assert main(["surrogate", str(cfg), "--out", str(out), "--jobs", "1"]) == 0
    run = out / "seed_0" / "al" / "resnet20"
    picks = {r["cycle"]: r["selected"] for r in read_jsonl(run / "selections.jsonl")}
    diag = compute(out)
    assert diag["notes"] == [] and [r["cycle"] for r in diag["rows"]] == [1, 2]
    for r in diag["rows"]:
        assert r["embedding_cycle"] == r["cycle"] - 1
        assert r["redundancy"] == pytest.approx(_redundancy_by_hand(run, r["cycle"] - 1, picks[r["cycle"]]), abs=1e-5)
    final_1 = _redundancy_by_hand(run, 2, picks[1])
    assert abs(final_1 - diag["rows"][0]["redundancy"]) > 1e-4  # the old figure (final model) differs
    # a run that kept only its last checkpoint: the final model stands in, and a note says so
    for k in (0, 1):
        (run / "checkpoints" / f"cycle_{k:03d}.pt").unlink()
    diag = compute(out)
    assert [r["embedding_cycle"] for r in diag["rows"]] == [2, 2]
    assert len(diag["notes"]) == 1 and "cycle(s) 1, 2" in diag["notes"][0]
    assert diag["rows"][0]["redundancy"] == pytest.approx(final_1, abs=1e-5)
