"""Experiment cost plan: counts by hand on a small schedule, GPU hours by hand from the formula."""

from __future__ import annotations

import pytest

from al.experiments.plan import TRAIN_FACTOR, Schedule, count_plan, estimate, forward_gmacs, hours_text


def test_counts_by_hand() -> None:
    # pool 100, 10 initial + 2 cycles x 10 -> trainings on 10, 20, 30 images
    sch = Schedule(10, 10, 2)
    rows = count_plan(surrogates=["a"], deployments=["a", "b"], seeds=3, schedule=sch, pool_size=100,
                      val_size=7, surrogate_epochs=2, deployment_epochs=5,
                      batch_size={"a": (4, 4), "b": (4, 3)})
    sur, dep_a, dep_b = rows
    assert sur == {"role": "surrogate", "model": "a", "trainings": 3 * 3,
                   "images_trained": 3 * 2 * (10 + 20 + 30),          # no trailing batch of one
                   "images_scored": 3 * ((100 - 10) + (100 - 20)),     # cycles 1, 2 score the unlabelled pool
                   "images_evaluated": 3 * 3 * 7}
    # deployments: 2 columns (surrogate a, random) x 3 seeds, 30 images, 5 epochs
    assert dep_a["trainings"] == 6 and dep_a["images_trained"] == 6 * 5 * 30 and dep_a["images_scored"] == 0
    # batch 3 on 30 images: no trailing one; with batch 29 -> 29 + 1: the single one is dropped
    assert dep_b["images_trained"] == 6 * 5 * 30
    (one,) = count_plan(surrogates=[], deployments=["b"], seeds=1, schedule=sch, pool_size=100, val_size=1,
                        surrogate_epochs=1, deployment_epochs=2, batch_size={"b": (1, 29)})
    assert one["images_trained"] == 2 * 29 and one["trainings"] == 1


def test_gpu_hours_by_hand() -> None:
    counts = [{"role": "deployment", "model": "m", "trainings": 1, "images_trained": 1000,
               "images_scored": 0, "images_evaluated": 500}]
    plan = estimate(counts, gmacs={"m": (10.0, 40.0)}, device="toy", precision="fp16", peak_tops=100.0,
                    utilisation=0.5, seeds=1, schedule=Schedule(1, 1, 0), pool_size=10, val_size=500,
                    train_hw=(8, 8), eval_hw=(16, 16))
    macs = TRAIN_FACTOR * 10e9 * 1000 + 40e9 * 500          # 3e13 + 2e13 = 5e13 MACs
    assert plan.gpu_hours == pytest.approx(2 * macs / (100e12 * 0.5) / 3600)   # 2 s -> 5.6e-4 h
    assert plan.trainings == 1 and plan.images_trained == 1000
    assert any("3 x forward" in a for a in plan.assumptions)
    assert hours_text(0.25) == "0.25 GPU-h" and hours_text(100) == "100 GPU-h (4.2 GPU-days)"
    assert hours_text(0.25, "CPU") == "0.25 CPU-h" and hours_text(100, "CPU") == "100 CPU-h (4.2 CPU-days)"


def test_plan_on_the_host_is_labelled_host_hours(capsys) -> None:
    """The host's CPU peak is measured with all its torch threads, so its hours are hours of the whole
    machine ("host-h"), not of one core; the assumption line says how many threads and when."""
    import torch

    from al.cli import main
    from hwbench.profiles import load_profile

    assert main(["surrogate", "digits", "--plan", "--device", "host", "--precision", "fp32"]) == 0
    captured = capsys.readouterr()
    kind = "GPU" if torch.cuda.is_available() else "host"   # host is costed on its GPU figure when it has one
    others = {"CPU", "GPU", "host"} - {kind}
    assert f"{kind}-h" in captured.out and f"{kind}-h on one host" in captured.err
    assert not any(f"{o}-h" in captured.out + captured.err for o in others) and f"one {kind}" in captured.err
    if kind == "host":
        n = load_profile("host").measured.threads
        assert f"peak measured with {n} torch thread" in captured.err and f"wall time of `--jobs {n}`" in captured.err


@pytest.mark.parametrize("load_1m, warned", [(100.0, True), (0.0, False), (None, False)])
def test_plan_warns_when_the_host_was_measured_busy(tmp_path, monkeypatch, capsys, caplog, load_1m, warned) -> None:
    """A host peak measured while other work held the cores reads low and every host-h estimate high:
    the measurement records the 1-minute load, warns then, and `--plan` says so on every later use."""
    import logging

    import torch

    from al.cli import main
    from hwbench import profiles

    monkeypatch.setenv("HWBENCH_CACHE_DIR", str(tmp_path))
    real = profiles.measure_host
    monkeypatch.setattr(profiles, "measure_host", lambda **kw: real(matmul_n=128, copy_mib=4, reps=1))
    monkeypatch.setattr(profiles, "_load_1m", lambda: load_1m)
    with caplog.at_level(logging.WARNING, logger="hwbench"):
        host = profiles.load_profile("host", refresh=True)
    assert host.measured.load_1m == load_1m and host.measured.busy() is warned
    assert ("1-minute load" in caplog.text) is warned
    again = profiles.load_profile("host")                      # the cached file keeps the load
    assert again.measured.load_1m == load_1m and again.measured.cores == host.measured.cores
    if torch.cuda.is_available():
        return  # a host with a GPU is costed on its GPU figure: no host-h line
    assert main(["surrogate", "digits", "--plan", "--device", "host", "--precision", "fp32"]) == 0
    err = capsys.readouterr().err
    assert ("warning: the host was busy when measured (1-minute load 100.0 on" in err) is warned
    assert "host-h: hours of the whole machine" in err


def test_forward_gmacs_is_hwbenchs_count() -> None:
    from hwbench.count import count

    g = forward_gmacs("deeplabv3plus_resnet20", (64, 128), 19)
    assert g == count("deeplabv3plus_resnet20", (1, 3, 64, 128), num_classes=19).macs / 1e9 and g > 0


def _cityscapes_layout(root, n_train: int = 100, n_val: int = 20) -> None:
    """The Cityscapes layout with empty files: --plan only checks the layout and counts images."""
    for split, n in (("train", n_train), ("val", n_val)):
        for kind, suffix in (("leftImg8bit", "leftImg8bit"), ("gtFine", "gtFine_labelIds")):
            d = root / kind / split / "aachen"
            d.mkdir(parents=True, exist_ok=True)
            for i in range(n):
                (d / f"aachen_{i:06d}_000019_{suffix}.png").touch()


def test_plan_cli_cityscapes_paper(tmp_path, capsys) -> None:
    import json

    from al.cli import main
    from hwbench.count import count
    from hwbench.profiles import load_profile

    _cityscapes_layout(tmp_path)
    assert main(["surrogate", "cityscapes_paper", "--data-root", str(tmp_path), "--plan", "--json"]) == 0
    plan = json.loads(capsys.readouterr().out)
    # 100 train images: 2 % -> 2 initial + 9 cycles x 2 = 20 labelled; 5 surrogates x 10 trainings +
    # 5 deployment models x 6 columns, over 3 seeds
    assert plan["schedule"] == {"n_initial": 2, "n_cycle": 2, "cycles": 9}
    assert plan["trainings"] == 3 * (5 * 10 + 5 * 6) and plan["pool_size"] == 100 and plan["val_size"] == 20
    assert plan["train_hw"] == [768, 768] and plan["eval_hw"] == [1024, 2048]   # crop; Cityscapes frames
    rows = {(r["role"], r["model"]): r for r in plan["rows"]}
    xc = rows[("deployment", "deeplabv3plus_xception65")]
    # batch 6 on 20 images: 20 % 6 = 2, no trailing single -> 220 epochs x 20 images x 6 columns x 3 seeds
    assert xc["images_trained"] == 220 * 20 * 6 * 3
    g_train = count("deeplabv3plus_xception65", (1, 3, 768, 768), num_classes=19).macs / 1e9
    g_eval = count("deeplabv3plus_xception65", (1, 3, 1024, 2048), num_classes=19).macs / 1e9
    peak = load_profile("a100_sxm").peak_tops("fp16")
    hours = 2 * 1e9 * (3 * g_train * xc["images_trained"] + g_eval * xc["images_evaluated"]) / (peak * 1e12 * 0.4) / 3600
    assert xc["gpu_hours"] == pytest.approx(hours)
    assert plan["gpu_hours"] == pytest.approx(sum(r["gpu_hours"] for r in plan["rows"]))


def test_plan_cli_errors(tmp_path, capsys) -> None:
    from al.cli import main

    assert main(["surrogate", "cityscapes_paper", "--plan"]) == 2
    assert "needs its root directory: pass --data-root DIR" in capsys.readouterr().err
    assert main(["surrogate", "cityscapes_paper", "--data-root", str(tmp_path / "nope"), "--plan"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: cityscapes root") and "does not exist" in err and err.count("\n") == 1
    assert main(["surrogate", "cityscapes_paper", "--data-root", str(tmp_path), "--plan"]) == 2
    assert "leftImg8bit/train is missing" in capsys.readouterr().err
    assert main(["surrogate", "surrogate_smoke"]) == 2
    assert "--out DIR" in capsys.readouterr().err
    _cityscapes_layout(tmp_path, 10, 2)
    assert main(["surrogate", "cityscapes_paper", "--data-root", str(tmp_path), "--plan", "--utilisation", "0"]) == 2
    assert main(["surrogate", "cityscapes_paper", "--data-root", str(tmp_path), "--plan"]) == 0
    captured = capsys.readouterr()
    assert "GPU-h" in captured.err and "assumption: training step = 3 x forward MACs" in captured.err


def test_paper_presets_carry_the_papers_settings() -> None:
    from al.experiments.config import load_experiment_config

    cs = load_experiment_config("cityscapes_paper")
    assert cs.train.deployment.epochs == 220 and cs.train.deployment.batch_size == 4
    assert cs.train.for_model("deeplabv3plus_xception65", "surrogate").batch_size == 6
    assert (cs.train.surrogate.momentum, cs.train.surrogate.weight_decay) == (0.9, 4e-4)
    assert (cs.al.initial_fraction, cs.al.cycle_fraction, cs.al.cycles) == (0.02, 0.02, 9)
    assert cs.seeds == (0, 1, 2) and cs.output_stride == 16 and len(cs.deployment) == 5
    ade = load_experiment_config("ade20k_paper")
    assert ade.train.deployment.epochs == 64 and ade.train.deployment.batch_size == 16
    assert ade.train.batch_size_by_model == {}
    im = load_experiment_config("imagenet_paper")
    assert set(im.deployment) == {"resnet18", "resnet34"} and im.data.name == "folder"


def test_plan_precision_follows_the_profile(capsys) -> None:
    """Without --precision: fp16 (AMP) on a profile with fp16 figures, fp32 on one without (a CPU-only host)."""
    import json

    from al.cli import main
    from hwbench.profiles import load_profile

    assert main(["surrogate", "digits", "--plan", "--json"]) == 0              # a100_sxm has fp16 figures
    assert json.loads(capsys.readouterr().out)["precision"] == "fp16"
    has_fp16 = any(k.startswith("fp16/") for k in load_profile("host").available())
    assert main(["surrogate", "digits", "--plan", "--device", "host", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["precision"] == ("fp16" if has_fp16 else "fp32")
