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


def test_forward_gmacs_is_hwbenchs_count() -> None:
    from hwbench.count import count

    g = forward_gmacs("deeplabv3plus_resnet20", (64, 128), 19)
    assert g == count("deeplabv3plus_resnet20", (1, 3, 64, 128), num_classes=19).macs / 1e9 and g > 0
