"""Budget sweeps end to end on a tiny digits experiment: what each deployment cell trains on, nested
random sets, the sweep records, the cells view and the plan's counts."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from al.experiments.config import load_experiment_config
from al.experiments.surrogate import run_experiment
from al.seeds import initial_selection, nested_random_selection
from hwbench.errors import UserError

CONFIG = """
name = "sweep_tiny"
seeds = [0, 1]
device = "cpu"
threads = 1
deployment = ["resnet20"]
surrogates = ["resnet20"]
budgets = [60, 80]

[data]
name = "digits"
pool_size = 200
options = { size = 8 }

[al]
strategy = "entropy"
initial_fraction = 0.2
cycle_fraction = 0.1
cycles = 3
batch_size = 256

[train.surrogate]
epochs = 1
batch_size = 20
lr = 0.1

[train.deployment]
epochs = 1
batch_size = 20
lr = 0.1
min_steps = 4
"""


@pytest.fixture(scope="module")
def swept(tmp_path_factory) -> tuple[Path, Path]:
    d = tmp_path_factory.mktemp("sweep")
    cfg = d / "sweep_tiny.toml"
    cfg.write_text(CONFIG)
    run_experiment(str(cfg), d / "exp")
    return cfg, d / "exp"


def _cell(exp: Path, seed: int, stem: str) -> dict:
    return json.loads((exp / f"seed_{seed}" / "train" / "resnet20" / stem / "record.json").read_text())


def test_cells_train_on_prefixes_and_nested_random_sets(swept) -> None:
    _, exp = swept
    for seed in (0, 1):
        state = json.loads((exp / f"seed_{seed}" / "al" / "resnet20" / "state.json").read_text())
        sel = json.loads((exp / f"seed_{seed}" / "al" / "resnet20" / "selections.jsonl").read_text().splitlines()[0])
        assert sel["cycle"] == 0 and len(sel["selected"]) == 40
        assert state is not None
        sizes = {stem: _cell(exp, seed, stem)["labelled"] for stem in
                 ("resnet20_60", "resnet20_80", "resnet20", "random_nested_60", "random_nested_80", "random_nested_100")}
        assert sizes == {"resnet20_60": 60, "resnet20_80": 80, "resnet20": 100, "random_nested_60": 60,
                         "random_nested_80": 80, "random_nested_100": 100}
        # the random cells hold nested sets around the shared cycle-0 set: check their digests
        from al.seeds import selection_digest

        initial = initial_selection("digits", 200, seed, 40)
        assert np.array_equal(np.sort(initial), np.sort(sel["selected"]))
        for n in (60, 80, 100):
            idx = nested_random_selection(initial, 200, n, seed=seed)
            assert _cell(exp, seed, f"random_nested_{n}")["selection_sha"] == selection_digest(idx)
        a, b = nested_random_selection(initial, 200, 60, seed=seed), nested_random_selection(initial, 200, 100, seed=seed)
        assert set(a) < set(b) and set(initial) <= set(a) and len(set(b)) == 100


def test_sweep_records_and_report(swept) -> None:
    _, exp = swept
    rows = [json.loads(x) for x in (exp / "sweep.jsonl").read_text().splitlines()]
    assert sorted({(r["surrogate"], r["budget"]) for r in rows}) == [
        ("random", 60), ("random", 80), ("random", 100), ("resnet20", 60), ("resnet20", 80), ("resnet20", 100)]
    assert len(rows) == 12
    final = [json.loads(x) for x in (exp / "records.jsonl").read_text().splitlines()]
    assert len(final) == 4 and all("budget" not in r for r in final)       # the matrix: final budget only
    by = {(r["surrogate"], r["seed"]): r["value"] for r in rows if r["budget"] == 100}
    assert by == {(r["surrogate"], r["seed"]): r["value"] for r in final}
    report = (exp / "report.md").read_text()
    assert "## Budget sweep" in report and "sweep_delta.png" in report
    assert (exp / "sweep_delta.png").stat().st_size > 1000 and (exp / "sweep.csv").is_file()


def test_cells_view_lists_budget_cells(swept) -> None:
    from al.experiments import cells
    from al.experiments.context import Experiment, prepare_experiment

    cfg, exp_dir = swept
    exp = Experiment(prepare_experiment(load_experiment_config(str(cfg))), exp_dir)
    plan = cells.plan(exp)
    train = [c for c in plan if c.kind == "train"]
    assert len(train) == 2 * 3 * 2                                         # seeds x budgets x columns
    assert {c.budget for c in train} == {60, 80, 100}
    assert all(cells.is_done(c) for c in plan)
    recs, missing = cells.records(exp, plan)
    assert not missing and len(recs) == 4


def test_budgets_must_end_a_cycle(tmp_path) -> None:
    cfg = tmp_path / "bad.toml"
    cfg.write_text(CONFIG.replace("budgets = [60, 80]", "budgets = [70]"))
    with pytest.raises(UserError, match="budgets: 70 labelled images is not the end of a selection cycle; "
                                        "this schedule has 60, 80, 100"):
        run_experiment(str(cfg), tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_plan_counts_every_budget(swept) -> None:
    from al.experiments.plan import plan_for_config

    cfg, _ = swept
    p = plan_for_config(load_experiment_config(str(cfg)))
    dep = next(r for r in p.rows if r.role == "deployment")
    assert dep.trainings == 2 * 2 * 3                                      # seeds x columns x budgets
    # images per training: epochs raised to reach 4 steps of 20 -> 60: 3 steps/epoch -> 2 epochs = 120;
    # 80: 4 steps -> 1 epoch = 80; 100: 5 steps -> 100 ; x 2 columns x 2 seeds
    assert dep.images_trained == 2 * 2 * (120 + 80 + 100)
    assert p.train_hw == (8, 8) and p.eval_hw == (8, 8)                   # digits at its real size, not 224


def test_random_spread_trains_the_sweeps_random_cells(swept) -> None:
    from al.experiments.spread import random_spread

    cfg, exp = swept
    (row,) = random_spread(load_experiment_config(str(cfg)), 80)
    want = [_cell(exp, s, "random_nested_80")["value"] for s in (0, 1)]
    assert row["values"] == [round(v, 2) for v in want]                    # same sets, seeds and recipe
    assert row["sd"] == pytest.approx(float(np.std(want, ddof=1)))
    assert 0 <= row["disagree_pct"] <= 100 and row["test_sd_pp"] >= 0


def test_test_sampling_sd_by_hand() -> None:
    """Two models on 4 images: a right on 0 and 1, b right on 0 and 2 -> per-image differences 0, +1, -1, 0
    (mean 0, mean square 1/2), disagreement on images 1 and 2 (a says 1 / 0, b says 0 / 2) -> 50 %, sd
    sqrt(0.5 / 4) = 35.36 p.p.; a second pair (b, c) with c = b: 0 % and 0, so the means are 25 % and
    sqrt(0.25 / 4) = 25 p.p. One model: nothing to pair."""
    from al.experiments.spread import test_sampling_sd

    y = np.array([0, 1, 2, 3])
    a, b = np.array([0, 1, 0, 0]), np.array([0, 0, 2, 0])
    assert test_sampling_sd([a, b], y) == pytest.approx((50.0, 100 * np.sqrt(0.5 / 4)))
    assert test_sampling_sd([a, b, b.copy()], y) == pytest.approx((25.0, 25.0))
    assert all(np.isnan(v) for v in test_sampling_sd([a], y))


def test_model_options_reach_every_model(tmp_path) -> None:
    from al.experiments.config import run_config
    from al.experiments.context import prepare_experiment

    path = tmp_path / "opts.toml"
    path.write_text(CONFIG.replace('deployment = ["resnet20"]', 'deployment = ["resnet18"]')
                    .replace("budgets = [60, 80]", 'model_options = { resnet18 = { stem = "cifar" } }'))
    cfg = load_experiment_config(str(path))
    p = prepare_experiment(cfg)
    m = p.backend.new_model("resnet18", init_seed=0)
    assert m.conv1.stride == (1, 1) and not hasattr(m, "maxpool")
    assert run_config(cfg, "resnet18", 0).model.options == {"stem": "cifar"}
    assert p.budgets == ()


@pytest.mark.parametrize(("opts", "message"), [('{ resnet20 = { stem = "tiny" } }', "model 'resnet20' has no option 'stem'"),
                                               ('{ resnet18 = { stem = "tiny" } }', "not a model of this experiment"),
                                               ('{ resnet20 = { imagenet_strides = true } }', None)])
def test_bad_model_options_fail_before_anything_is_written(tmp_path, opts: str, message: str | None) -> None:
    path = tmp_path / "opts.toml"
    path.write_text(CONFIG.replace("budgets = [60, 80]", f"model_options = {opts}"))
    if message is None:   # a valid option builds
        from al.experiments.context import prepare_experiment

        prepare_experiment(load_experiment_config(str(path)))
        return
    with pytest.raises(UserError, match=message):
        run_experiment(str(path), tmp_path / "out")
    assert not (tmp_path / "out").exists()
