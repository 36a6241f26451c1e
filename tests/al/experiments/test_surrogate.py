"""al.experiments (config, deployable, matrix, chains): config, baselines, chain order (stub), deployability, and `al surrogate` end to end
on the `surrogate_smoke` preset (seconds), including resume and bad input."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from al.cli import main
from al.experiments.chains import run_chain
from al.experiments.config import DeploySource, SurrogateSpec, load_experiment_config
from al.experiments.deployable import resolve_surrogates
from al.seeds import random_selection
from al.stats import RANDOM
from hwbench.errors import UserError
from hwbench.io import read_jsonl

SMOKE = Path(__file__).parents[3] / "al" / "presets" / "surrogate_smoke.toml"
RES20, MNV3, RES18 = "deeplabv3plus_resnet20", "deeplabv3plus_mobilenetv3_small", "deeplabv3plus_resnet18"


@pytest.fixture(scope="module", autouse=True)
def _one_thread():
    """One intra-op thread: on a shared 2-core machine, OpenMP spinning makes 2 threads ~5x slower."""
    import torch

    prev = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(prev)


# --------------------------------------------------------------------------- config and baselines


def test_config_shorthand_seeds_override_and_strictness(tmp_path):
    cfg = load_experiment_config("surrogate_smoke")
    assert cfg.surrogates.models == (RES20, MNV3) and cfg.seeds == (0, 1)
    assert load_experiment_config("smoke", seeds=3).seeds == (0, 1, 2)  # prefix optional
    bad = tmp_path / "bad.toml"
    bad.write_text(SMOKE.read_text().replace('name = "surrogate_smoke"', 'name = "x"\nbogus = 1'))
    with pytest.raises(UserError, match="unknown key.*'bogus'"):
        load_experiment_config(bad)
    both = tmp_path / "both.toml"
    both.write_text(SMOKE.read_text().replace(
        "surrogates = [", 'surrogates = { from_deploy = { device = "tx2", fps = 10 }, models = [') + "")
    text = both.read_text().replace(f'"{MNV3}"]\n\n[data]', f'"{MNV3}"] }}\n\n[data]')
    both.write_text(text)
    with pytest.raises(UserError, match="exactly one"):
        load_experiment_config(both)
    with pytest.raises(UserError, match="no such config file or preset"):
        load_experiment_config("no_such_preset")


def test_random_selection_contains_the_initial_set():
    initial = np.array([7, 3, 11])
    a = random_selection(initial, 50, 10, seed=0)
    assert a.size == 10 and np.unique(a).size == 10 and set(initial) <= set(a.tolist())
    np.testing.assert_array_equal(a[:3], initial)  # shared cycle-0 set first
    np.testing.assert_array_equal(a, random_selection(initial, 50, 10, seed=0))  # deterministic
    assert not np.array_equal(a, random_selection(initial, 50, 10, seed=1))
    with pytest.raises(ValueError):
        random_selection(initial, 50, 2, seed=0)


# --------------------------------------------------------------------------- chain order (stub)


class StubChain:
    """Records the calls; the 'metric' of a model is the number of images it trained on."""

    cycles = 2
    metric = "miou"

    def __init__(self):
        self.calls = []
        self.next_index = 100

    def first_generation(self, model, cycles):
        self.calls.append(("al", model, cycles))
        return np.arange(6), np.arange(2)  # 2 initial + 2 cycles x 2

    def train_inherited(self, gen, model, labelled):
        self.calls.append(("train", gen, model, len(labelled)))
        return float(len(labelled)), f"handle-{model}"

    def train_random(self, gen, model, n, initial):
        self.calls.append(("random", gen, model, n))
        return -1.0

    def continue_cycles(self, gen, model, handle, labelled, cycles):
        assert handle == f"handle-{model}"  # the model trained on the inherited set selects next
        self.calls.append(("cycles", gen, model, cycles))
        new = np.arange(self.next_index, self.next_index + 2 * cycles)
        self.next_index += 100
        return np.concatenate([labelled, new])


def test_chain_order_on_a_stub():
    ops = StubChain()
    recs = run_chain(ops, ["m0", "m1", "m2", "m3"], seed=5)
    assert ops.calls == [
        ("al", "m0", 2),
        ("train", 1, "m1", 6), ("random", 1, "m1", 6), ("cycles", 1, "m1", 2),
        ("train", 2, "m2", 10), ("random", 2, "m2", 10), ("cycles", 2, "m2", 2),
        ("train", 3, "m3", 14), ("random", 3, "m3", 14),  # the last generation selects nothing
    ]
    picked = [r for r in recs if r["surrogate"] != RANDOM]
    assert [(r["generation"], r["deployment"], r["surrogate"], r["labelled"]) for r in picked] == [
        (1, "m1", "m0", 6), (2, "m2", "m1", 10), (3, "m3", "m2", 14)]
    assert all(r["seed"] == 5 and r["metric"] == "miou" for r in recs)
    assert [r["value"] for r in recs if r["surrogate"] == RANDOM] == [-1.0] * 3


# --------------------------------------------------------------------------- deployability


def test_surrogates_from_deploy_follow_the_paper_latencies():
    # paper mode on TX2 (1.3 TOPS): Res-20 24.7 ms, MNV3 47.0 ms, Res-18 138.9 ms at 1024x2048
    r = resolve_surrogates(SurrogateSpec(from_deploy=DeploySource(device="tx2", fps=10, share=0.5)), "segmentation")
    assert r.surrogates == (RES20, MNV3)
    by_model = {v["model"]: v for v in r.verdicts}
    assert by_model[RES20]["latency_ms"] == pytest.approx(32.06e9 / 1.3e12 * 1e3, rel=0.01)
    assert by_model[RES18]["deployable"] is False and by_model[RES20]["budget_ms"] == pytest.approx(100.0)
    only = resolve_surrogates(SurrogateSpec(from_deploy=DeploySource(device="tx2", fps=10, share=0.3)),
                              "segmentation")
    assert only.surrogates == (RES20,)  # MNV3: 47 / 0.3 = 157 ms > 100 ms
    with pytest.raises(UserError, match="no segmentation model is deployable"):
        resolve_surrogates(SurrogateSpec(from_deploy=DeploySource(device="tx2", fps=1000)), "segmentation")


# --------------------------------------------------------------------------- end to end


@pytest.fixture(scope="module")
def smoke_dir(tmp_path_factory):
    # serial, in this process: each `--jobs` worker process pays ~3 CPU-s of start-up;
    # parallel runs are checked against serial ones in test_cells.py; the resumes below run the cells' runner
    out = tmp_path_factory.mktemp("exp") / "smoke"
    assert main(["surrogate", "surrogate_smoke", "--out", str(out), "--jobs", "1"]) == 0
    return out


def test_end_to_end_report_and_layout(smoke_dir):
    assert (smoke_dir / "DONE").is_file()
    md = (smoke_dir / "report.md").read_text()
    assert "| deployment \\ surrogate | Res-20 | MNV3 | random |" in md
    assert "| Res-20 | " in md and "◆" in md  # Res-20 picking for itself is the diagonal
    assert "pairs vs random (95 % CI of the paired difference" in md and "| Δ (p.p.) | 95 % CI |" in md and "ddof=1" in md and "```toml" in md
    assert "al_curves.png" in md and (smoke_dir / "al_curves.png").is_file()
    html = (smoke_dir / "report.html").read_text()
    assert 'class="matrix"' in html and "background:#" in html
    recs = list(read_jsonl(smoke_dir / "records.jsonl"))
    assert len(recs) == 2 * 1 * 3  # seeds x deployment models x (surrogates + random)
    for seed in (0, 1):
        sel = {m: list(read_jsonl(smoke_dir / f"seed_{seed}" / "al" / m / "selections.jsonl")) for m in (RES20, MNV3)}
        assert sel[RES20][0]["selected"] == sel[MNV3][0]["selected"]  # same cycle-0 set
        cells = {p.parent.name: json.loads(p.read_text())
                 for p in (smoke_dir / f"seed_{seed}" / "train" / RES20).glob("*/record.json")}
        assert set(cells) == {RES20, MNV3, f"{RANDOM}_8"}
        assert {c["labelled"] for c in cells.values()} == {8}  # 4 initial + 1 cycle x 4


def test_json_records_and_resume_reuses_everything(smoke_dir, capsys):
    before = list(read_jsonl(smoke_dir / "records.jsonl"))
    capsys.readouterr()
    # the cells' runner resumes the serial run's directory: nothing left to run, no worker started
    assert main(["surrogate", "surrogate_smoke", "--out", str(smoke_dir), "--json", "--resume", "--jobs", "2"]) == 0
    out = json.loads(capsys.readouterr().out)
    recs = out["records"]
    assert recs == before
    pairs = {(p["deployment"], p["surrogate"]): p for p in out["pairs"]}
    assert set(pairs) == {(RES20, RES20), (RES20, MNV3)} and pairs[(RES20, RES20)]["diagonal"]
    p = pairs[(RES20, MNV3)]
    by = {(r["surrogate"], r["seed"]): r["value"] for r in recs}
    diffs = [by[(MNV3, s)] - by[(RANDOM, s)] for s in (0, 1)]
    assert p["delta"] == pytest.approx(sum(diffs) / 2) and p["seeds"] == 2 and p["ci_method"] == "t"
    half = 12.706204736174698 * abs(diffs[0] - diffs[1]) / 2 ** 0.5 / 2 ** 0.5   # t_{0.975,1} * s / sqrt(2)
    assert p["half_width"] == pytest.approx(half)
    assert p["verdict"] in ("beat", "tie", "lose")
    assert out["summary"]["pairs"] == 1 and sum(out["summary"][k] for k in ("beat", "tie", "lose")) == 1
    assert all(set(r) == {"deployment", "surrogate", "seed", "metric", "value"} for r in recs)
    assert {r["surrogate"] for r in recs} == {RES20, MNV3, RANDOM} and {r["metric"] for r in recs} == {"miou"}
    timing = json.loads((smoke_dir / "timing.json").read_text())
    assert all(p["reused"] for p in timing["parts"])
    assert (smoke_dir / "DONE").is_file()


def test_resume_after_an_interruption_gives_the_same_records(smoke_dir, tmp_path):
    import shutil

    copy = tmp_path / "copy"
    shutil.copytree(smoke_dir, copy)
    for name in ("DONE", "report.md", "records.jsonl"):  # as if killed before the end ...
        (copy / name).unlink()
    (copy / "seed_1" / "train" / RES20 / MNV3 / "record.json").unlink()  # ... in the middle of a cell
    assert main(["surrogate", "surrogate_smoke", "--out", str(copy)]) == 2  # needs --resume
    # the cells' runner resumes a serial run's directory: one worker process for the one missing cell
    assert main(["surrogate", "surrogate_smoke", "--out", str(copy), "--resume", "--jobs", "2"]) == 0
    assert list(read_jsonl(copy / "records.jsonl")) == list(read_jsonl(smoke_dir / "records.jsonl"))
    timing = json.loads((copy / "timing.json").read_text())
    assert sum(not p["reused"] for p in timing["parts"]) == 1  # only the missing cell retrained


def test_resume_with_more_seeds_reuses_the_finished_ones(smoke_dir, tmp_path):
    """An experiment's identity leaves its seeds out: `--resume --num-seeds N` grows a finished directory
    (docs/al-real-data.md: the Fashion-MNIST preset from 12 to 31 seeds) and retrains only the new seeds."""
    import shutil

    copy = tmp_path / "grown"
    shutil.copytree(smoke_dir, copy)
    assert main(["surrogate", "surrogate_smoke", "--out", str(copy), "--resume", "--num-seeds", "3"]) == 0
    before, after = list(read_jsonl(smoke_dir / "records.jsonl")), list(read_jsonl(copy / "records.jsonl"))
    assert {r["seed"] for r in before} == {0, 1} and {r["seed"] for r in after} == {0, 1, 2}
    assert [r for r in after if r["seed"] < 2] == before                # finished seeds: the same values
    timing = json.loads((copy / "timing.json").read_text())
    assert {p["seed"] for p in timing["parts"] if not p["reused"]} == {2}
    assert all(p["reused"] for p in timing["parts"] if p["seed"] < 2)
    assert (copy / "DONE").is_file()


def test_chain_end_to_end(smoke_dir, capsys):
    capsys.readouterr()
    # one seed of the two-seed matrix (a resume may change the seeds): every seed runs the same chain
    assert main(["surrogate", "surrogate_smoke", "--out", str(smoke_dir), "--chain", "--json", "--resume",
                 "--num-seeds", "1"]) == 0
    recs = json.loads(capsys.readouterr().out)["records"]
    picked = sorted((r["seed"], r["generation"], r["deployment"], r["surrogate"], r["labelled"])
                    for r in recs if r["surrogate"] != RANDOM)
    # Res-20 picks 8 (its AL run, shared with the matrix), MNV3 trains on them and adds one cycle of 4 for Res-18
    assert picked == [(0, 1, MNV3, RES20, 8), (0, 2, RES18, MNV3, 12)]
    assert len([r for r in recs if r["surrogate"] == RANDOM]) == 1 * 2  # seeds x generations
    md = (smoke_dir / "report.md").read_text()
    assert "## Generation chain" in md and "| deployment \\ surrogate |" in md  # matrix kept


BAD_INPUTS = {
    "unknown model": (f'deployment = ["{RES20}"]', 'deployment = ["deeplabv3plus_resnet51"]', "unknown model"),
    "unknown strategy": ('strategy = "entropy"', 'strategy = "entropyy"', "unknown strategy"),
    "unknown dataset": ('name = "synthetic_streets"', 'name = "streets"', "unknown dataset"),
    "unknown key": ("[train.deployment]\n", "[train.deployment]\nepoch = 2\n", "unknown key"),
    "budget > pool": ("cycles = 1 ", "cycles = 9 ", "exceeds"),
}


@pytest.mark.parametrize("case", list(BAD_INPUTS))
def test_bad_input_exits_2_with_one_line_and_no_directory(case, tmp_path, capsys):
    old, new, message = BAD_INPUTS[case]
    text = SMOKE.read_text()
    assert old in text
    cfg = tmp_path / "bad.toml"
    cfg.write_text(text.replace(old, new, 1))
    out = tmp_path / "exp"
    capsys.readouterr()
    assert main(["surrogate", str(cfg), "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error:") and message in err[0]
    assert not out.exists()


def test_out_dir_that_is_not_an_experiment_is_refused(tmp_path, capsys):
    (tmp_path / "stuff.txt").write_text("x")
    assert main(["surrogate", "surrogate_smoke", "--out", str(tmp_path)]) == 2
    assert "holds no experiment" in capsys.readouterr().err
    assert not (tmp_path / "DONE").exists()
