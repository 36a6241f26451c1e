"""Common random numbers: every cell of one seed shares the deployment model's initial weights, batch
order and augmentation draws, so two cells with the same images give bit-identical weights."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from al.experiments.config import load_experiment_config
from al.experiments.context import Experiment, prepare_experiment
from al.experiments.matrix import train_cell
from al.stats import RANDOM

RES20, MNV3 = "deeplabv3plus_resnet20", "deeplabv3plus_mobilenetv3_small"


@pytest.fixture(scope="module")
def exp(tmp_path_factory):
    cfg = dataclasses.replace(load_experiment_config("surrogate_smoke"), save_deployment_checkpoints=True)
    e = Experiment(prepare_experiment(cfg), tmp_path_factory.mktemp("crn") / "exp")
    e.open(resume=False)
    return e


def _weights(exp, seed, deployment, stem):
    return torch.load(exp.seed_dir(seed) / "train" / deployment / stem / "model.pt", weights_only=True)


def test_same_images_in_two_cells_of_one_seed_give_bit_identical_weights(exp) -> None:
    idx = np.array([3, 1, 7, 5, 0, 9, 2, 8])
    a = train_cell(exp, RES20, MNV3, 0, idx)                 # the surrogate's column ...
    b = train_cell(exp, RES20, RANDOM, 0, idx[::-1].copy())  # ... and random's, same images in another order
    wa, wb = _weights(exp, 0, RES20, MNV3), _weights(exp, 0, RES20, f"{RANDOM}_8")
    assert wa.keys() == wb.keys() and all(torch.equal(wa[k], wb[k]) for k in wa)
    assert a["value"] == b["value"] and a["metrics"] == b["metrics"]
    # one image different: the data, and only the data, changes the weights
    c = train_cell(exp, RES20, RES20, 0, np.array([3, 1, 7, 5, 0, 9, 2, 11]))
    wc = _weights(exp, 0, RES20, RES20)
    assert not all(torch.equal(wa[k], wc[k]) for k in wa)
    assert c["labelled"] == 8


def test_seeds_differ(exp) -> None:
    idx = np.array([3, 1, 7, 5, 0, 9, 2, 8])
    train_cell(exp, RES20, MNV3, 1, idx)
    w0, w1 = _weights(exp, 0, RES20, MNV3), _weights(exp, 1, RES20, MNV3)
    assert not all(torch.equal(w0[k], w1[k]) for k in w0)
