"""The torch (GPU-ready) eager k-center makes the picks of the CPU lazy greedy (run here on CPU)."""

from __future__ import annotations

import numpy as np
import torch

from al.strategies.coreset import k_center_greedy
from al.strategies.kcenter_torch import k_center_greedy_torch


def test_same_picks_as_numpy_with_and_without_labelled() -> None:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(400, 6)).astype(np.float32)
    lab = np.zeros(400, bool)
    lab[rng.choice(400, 7, replace=False)] = True
    assert np.array_equal(k_center_greedy_torch(torch.from_numpy(x), lab, 30, chunk_size=64),
                          k_center_greedy(x, lab, 30))
    none = np.zeros(400, bool)
    assert np.array_equal(k_center_greedy_torch(torch.from_numpy(x), none, 12, rng=np.random.default_rng(3)),
                          k_center_greedy(x, none, 12, rng=np.random.default_rng(3)))
    assert not none.any()                                           # the caller's mask is left alone


def test_ties_go_to_the_lowest_index() -> None:
    x = np.repeat(np.eye(3, dtype=np.float32), 2, axis=0)           # rows 0=1, 2=3, 4=5
    lab = np.zeros(6, bool)
    lab[0] = True
    picks = k_center_greedy_torch(torch.from_numpy(x), lab, 3)
    assert picks.tolist() == [2, 4, 1] == k_center_greedy(x, lab, 3).tolist()
