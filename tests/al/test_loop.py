"""The active-learning loop on the smoke presets with the real datasets, models, trainer and strategies."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest
import torch

from al.config import RunConfig, load_config
from al.data import build_dataset
from al.loop import load_result, run
from al.prepare import PoolView, evenly_spaced
from al.seeds import initial_selection
from hwbench.errors import UserError
from hwbench.models import create_model
from hwbench.tomlconf import from_mapping, read_toml


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    """One intra-op thread: much faster on a shared 2-core machine, and the same in every run."""
    prev = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(prev)


def _cfg(preset: str = "smoke", *, train: dict | None = None, data: dict | None = None, **al) -> RunConfig:
    cfg = load_config(preset)
    return dataclasses.replace(cfg, al=dataclasses.replace(cfg.al, **al),
                               train=dataclasses.replace(cfg.train, **(train or {})),
                               data=dataclasses.replace(cfg.data, **(data or {})))


@pytest.fixture(scope="module")
def smoke_runs(tmp_path_factory: pytest.TempPathFactory):
    """The smoke preset twice with the same seed (one keeping every checkpoint)."""
    base = tmp_path_factory.mktemp("loop")
    a = run(_cfg(keep_checkpoints="all"), base / "a", progress=False)
    b = run(load_config("smoke"), base / "b", progress=False)
    return a, b


def _values(metrics: list[dict]) -> list:
    return [(m["cycle"], m["labelled"], m["value"], m["metrics"]) for m in metrics]


def test_same_seed_same_selections_and_metrics(smoke_runs) -> None:
    a, b = smoke_runs
    assert len(a.selections) == 3 and all(len(s) == 10 for s in a.selections)
    assert all(np.array_equal(x, y) for x, y in zip(a.selections, b.selections, strict=True))
    assert _values(a.metrics) == _values(b.metrics)
    # selections are disjoint, and the labelled set is their concatenation
    assert len(np.unique(a.labelled)) == 30 and np.array_equal(a.labelled, np.concatenate(a.selections))
    assert [m["labelled"] for m in a.metrics] == [10, 20, 30]
    assert [m["fraction"] for m in a.metrics] == [0.1, 0.2, 0.3]
    assert all(m["metric"] == "miou" and 0.0 <= m["value"] <= 100.0 for m in a.metrics)


def test_run_directory_layout(smoke_runs) -> None:
    a, b = smoke_runs
    for r in (a, b):
        d = r.out_dir
        assert (d / "DONE").is_file() and json.loads((d / "DONE").read_text())["cycles"] == 3
        cfg = from_mapping(RunConfig, read_toml(d / "config.toml"))
        assert cfg == r.config
        state = json.loads((d / "state.json").read_text())
        assert state["done"] and state["pool_size"] == 100 and state["n_initial"] == 10
        assert [c["steps"] for c in state["cycles"]] == [["select", "train", "eval"]] * 3
        sel = [json.loads(x) for x in (d / "selections.jsonl").read_text().splitlines()]
        met = [json.loads(x) for x in (d / "metrics.jsonl").read_text().splitlines()]
        assert [s["selected"] for s in sel] == [s.tolist() for s in r.selections]
        assert [s["strategy"] for s in sel] == ["random", "entropy", "entropy"]
        assert met == r.metrics
    assert sorted(p.name for p in (a.out_dir / "checkpoints").iterdir()) == [
        "cycle_000.pt", "cycle_001.pt", "cycle_002.pt"]
    assert [p.name for p in (b.out_dir / "checkpoints").iterdir()] == ["cycle_002.pt"]  # keep_checkpoints = last
    again = load_result(b.out_dir)
    assert again.done and _values(again.metrics) == _values(b.metrics)


def _model(ckpt: Path) -> torch.nn.Module:
    model = create_model("deeplabv3plus_resnet20", num_classes=8)
    model.load_state_dict(torch.load(ckpt, map_location="cpu", weights_only=True)["model"])
    return model.eval()


def test_entropy_selection_matches_hand_computed_entropy(smoke_runs) -> None:
    """Cycle 1 picks the 10 unlabelled pool images of highest mean pixel entropy under the cycle-0 model."""
    a, _ = smoke_runs
    pool = build_dataset("synthetic_streets", split="train", n=100, size=[32, 64])
    x, _y = pool.tensors()  # (100, 3, 32, 64)
    with torch.no_grad():
        p = torch.softmax(_model(a.out_dir / "checkpoints" / "cycle_000.pt")(x).double(), dim=1)  # (N, K, H, W)
    entropy = -(p * p.clamp_min(1e-300).log()).sum(1).mean((1, 2)).numpy()  # (N,) nats
    unlabelled = np.setdiff1d(np.arange(100), a.selections[0])
    oracle = unlabelled[np.argsort(-entropy[unlabelled], kind="stable")[:10]]
    assert set(a.selections[1].tolist()) == set(oracle.tolist())
    assert np.all(np.diff(entropy[a.selections[1]]) <= 1e-6)  # best first


def test_metric_matches_independent_miou(smoke_runs) -> None:
    a, _ = smoke_runs
    val = build_dataset("synthetic_streets", split="val", n=100, size=[32, 64])
    idx = evenly_spaced(40, 100)
    x, y = val.tensors()
    with torch.no_grad():
        pred = _model(a.out_dir / "checkpoints" / "cycle_002.pt")(x[idx]).argmax(1).numpy().ravel()
    gt = y[idx].numpy().ravel()
    cm = np.bincount(gt * 8 + pred, minlength=64).reshape(8, 8)
    tp, union = np.diag(cm), cm.sum(0) + cm.sum(1) - np.diag(cm)
    miou = float(np.mean(tp[union > 0] / union[union > 0]) * 100)
    assert a.metrics[-1]["value"] == pytest.approx(miou, abs=1e-9)


def test_cycle0_set_shared_across_strategies_and_models(smoke_runs, tmp_path: Path) -> None:
    """Cycle 0 depends on (dataset, pool size, seed) only: same for another strategy and surrogate."""
    a, _ = smoke_runs
    cfg = dataclasses.replace(_cfg(strategy="random", cycles=1, train={"epochs": 1}),
                              model=dataclasses.replace(load_config("smoke").model,
                                                        name="deeplabv3plus_mobilenetv3_small"))
    r = run(cfg, tmp_path / "random", progress=False)
    expected = initial_selection("synthetic_streets", 100, 0, 10)
    assert np.array_equal(a.selections[0], expected) and np.array_equal(r.selections[0], expected)
    assert len(np.intersect1d(r.selections[1], expected)) == 0 and len(r.selections[1]) == 10
    assert not np.array_equal(initial_selection("synthetic_streets", 100, 1, 10), expected)  # seed matters
    assert np.array_equal(initial_selection("synthetic_streets", 100, 0, 20)[:10], expected)  # prefix


@pytest.mark.parametrize(("strategy", "retrain"), [("llal", "continue"), ("coreset", "scratch")])
def test_feature_strategies(tmp_path: Path, strategy: str, retrain: str) -> None:
    """LLAL (loss module trained jointly, kept in the checkpoint) and Core-Set (embeddings incl. labelled)."""
    cfg = _cfg(strategy=strategy, cycles=1, retrain=retrain, keep_checkpoints="all", train={"epochs": 1})
    r = run(cfg, tmp_path / strategy, progress=False)
    assert [len(s) for s in r.selections] == [10, 10] and len(np.unique(r.labelled)) == 20
    ckpt = torch.load(r.out_dir / "checkpoints" / "cycle_000.pt", weights_only=True)
    assert (ckpt["aux"] is not None) == (strategy == "llal")
    assert r.metrics[0]["train"]["samples"] == 10 and r.metrics[1]["train"]["samples"] == 20


def test_classification_with_pool_subset(tmp_path: Path) -> None:
    """Digits, top-1, a 200-image pool spread evenly over the 1437 training digits."""
    cfg = _cfg("smoke_digits", cycles=1)
    r = run(cfg, tmp_path / "digits", progress=False)
    base = build_dataset("digits", split="train", size=16)
    assert np.array_equal(r.dataset_indices, evenly_spaced(200, len(base)))
    assert [m["metric"] for m in r.metrics] == ["top1", "top1"] and r.labelled.max() < 200
    view = PoolView(base, r.dataset_indices)
    i = int(r.selections[1][0])
    assert torch.equal(view.tensors()[0][i], base[int(r.dataset_indices[i])][0])
    assert view.num_classes == 10 and view.task == "classification"


def test_existing_directories(smoke_runs, tmp_path: Path) -> None:
    a, _ = smoke_runs
    cfg = _cfg(keep_checkpoints="all")
    with pytest.raises(UserError, match="already complete; pass --resume"):
        run(cfg, a.out_dir, progress=False)
    done = run(cfg, a.out_dir, resume=True, progress=False)
    assert done.status == "already complete" and _values(done.metrics) == _values(a.metrics)
    with pytest.raises(UserError, match="config differs"):
        run(_cfg(keep_checkpoints="all", cycles=1), a.out_dir, resume=True, progress=False)
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "notes.txt").write_text("mine")
    with pytest.raises(UserError, match="not a run directory"):
        run(cfg, tmp_path / "other", progress=False)
    assert (tmp_path / "other" / "notes.txt").read_text() == "mine"


def test_initial_labelled_set(tmp_path: Path) -> None:
    """A run started from a given set labels exactly it first (in order), then selects as a run whose
    random cycle-0 set happens to be that set does; the set is saved and checked on resume."""
    cfg = _cfg(cycles=1, keep_checkpoints="all", train={"epochs": 1})
    rand = run(cfg, tmp_path / "random", progress=False)
    given = run(cfg, tmp_path / "given", progress=False, initial_labelled=rand.selections[0].tolist())
    assert all(np.array_equal(x, y) for x, y in zip(rand.selections, given.selections, strict=True))
    assert _values(given.metrics) == _values(rand.metrics)
    state = json.loads((given.out_dir / "state.json").read_text())
    assert state["initial_labelled"] == rand.selections[0].tolist() and state["n_initial"] == 10
    assert [c["strategy"] for c in state["cycles"]] == ["given", "entropy"]

    # an inherited set that is no random draw: 15 images, labelled in the given order, then the 10
    # unlabelled images of highest mean pixel entropy under the model trained on them
    inherited = [97, 3, 50, 12, 88, 41, 7, 66, 25, 74, 19, 58, 33, 81, 0]
    r = run(cfg, tmp_path / "inherited", progress=False, initial_labelled=np.asarray(inherited))
    assert r.selections[0].tolist() == inherited and r.labelled[:15].tolist() == inherited
    assert [m["labelled"] for m in r.metrics] == [15, 25] and r.metrics[0]["train"]["samples"] == 15
    x, _y = build_dataset("synthetic_streets", split="train", n=100, size=[32, 64]).tensors()  # (100, 3, 32, 64)
    with torch.no_grad():
        p = torch.softmax(_model(r.out_dir / "checkpoints" / "cycle_000.pt")(x).double(), dim=1)  # (N, K, H, W)
    entropy = -(p * p.clamp_min(1e-300).log()).sum(1).mean((1, 2)).numpy()  # (N,) nats
    unlabelled = np.setdiff1d(np.arange(100), inherited)
    assert set(r.selections[1].tolist()) == set(unlabelled[np.argsort(-entropy[unlabelled], kind="stable")[:10]])

    # resume: same set -> the finished run; another set (or none) -> error
    again = run(cfg, r.out_dir, resume=True, progress=False, initial_labelled=inherited)
    assert again.status == "already complete" and _values(again.metrics) == _values(r.metrics)
    for other in (inherited[:-1], None):
        with pytest.raises(UserError, match="initial labelled set differs"):
            run(cfg, r.out_dir, resume=True, progress=False, initial_labelled=other)


@pytest.mark.parametrize(("given", "match"), [
    ([], "at least one pool index"),
    ([1, 2, 100], "index 100 is outside the pool of 100"),
    ([-1, 2], "index -1 is outside"),
    ([4, 5, 4], "index 4 is listed twice"),
    ([0.5, 1.0], "must be integers"),
    (list(range(95)), r"budget of 105 images \(95 given \+ 1 cycles x 10\) exceeds the pool of 100"),
])
def test_initial_labelled_bad_input(tmp_path: Path, given: list, match: str) -> None:
    with pytest.raises(UserError, match=match):
        run(_cfg(cycles=1), tmp_path / "run", progress=False, initial_labelled=given)
    assert not (tmp_path / "run").exists()
