"""Scoring a pool of differently sized images (ADE20K) with batch size > 1, and `score_size`.

Oracle: the same model run on one image at a time (batch size 1 never needs a collate), and the
images resized by hand with `F.interpolate` for `score_size`.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image

from al.data import build_dataset
from al.strategies import LossPredictionModule, collect
from al.strategies.evidence import collate_groups
from al.strategies.scoring import ImageScorer
from hwbench.errors import UserError
from hwbench.models import create_model

SIZES = [(40, 56), (48, 48), (40, 56), (56, 40), (48, 48)]   # (h, w): three distinct sizes, repeats


def _ade_tree(root: Path) -> None:
    for i, (h, w) in enumerate(SIZES):
        rng = np.random.default_rng(i)
        img = root / "images" / "training" / f"ADE_train_{i:08d}.jpg"
        lab = root / "annotations" / "training" / f"ADE_train_{i:08d}.png"
        img.parent.mkdir(parents=True, exist_ok=True)
        lab.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8)).save(img, quality=95)
        Image.fromarray(rng.integers(0, 151, (h, w)).astype(np.uint8)).save(lab)


@pytest.fixture(scope="module")
def ade(tmp_path_factory):
    root = tmp_path_factory.mktemp("ade")
    _ade_tree(root)
    return build_dataset("ade20k", root=root, split="train", augment=False)


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    return create_model("deeplabv3plus_resnet20", num_classes=150).eval()


def test_ade20k_pool_batches_variable_sizes_exactly_as_one_by_one(ade, model) -> None:
    assert {tuple(ade[i][0].shape[-2:]) for i in range(len(ade))} == set(SIZES)
    aux = LossPredictionModule("segmentation", model.feature_taps, model.feature_channels, hidden=8).eval()
    needs = {"image_score", "embedding", "predicted_loss", "true_loss"}
    pool = np.arange(len(ade))
    batched = collect(model, ade, pool, needs, device="cpu", batch_size=4, aux=aux, show_progress=False)
    single = collect(model, ade, pool, needs, device="cpu", batch_size=1, aux=aux, show_progress=False)
    for kind in ("image_score", "predicted_loss", "true_loss"):
        np.testing.assert_allclose(getattr(batched, kind), getattr(single, kind), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(batched.embedding, single.embedding, rtol=1e-5, atol=1e-6)
    with torch.no_grad():   # and batch size 1 is the plain forward pass of each image
        x, _ = ade[3]
        ref = ImageScorer()(model(x[None]))
    assert float(batched.image_score[3]) == pytest.approx(float(ref[0]), rel=1e-5)


def test_score_size_resizes_every_scored_image(ade, model) -> None:
    ev = collect(model, ade, [0, 1, 3], {"image_score"}, device="cpu", batch_size=3, score_size=[32, 48],
                 show_progress=False)
    with torch.no_grad():
        for i in (0, 1, 3):
            x = F.interpolate(ade[i][0][None], size=(32, 48), mode="bilinear", align_corners=False)
            assert float(ev.image_score[i]) == pytest.approx(float(ImageScorer()(model(x))[0]), rel=1e-5)
    assert np.isnan(ev.image_score[[2, 4]]).all()
    for bad in ([32], [0, 48], (32.5, 48), "32x48"):
        with pytest.raises(UserError, match="score_size"):
            collect(model, ade, [0], {"image_score"}, device="cpu", batch_size=1, score_size=bad)


def test_collate_groups_keeps_positions_and_resizes_labels_nearest() -> None:
    a = (torch.zeros(3, 2, 2), torch.tensor([[0, 1], [2, 3]]))
    b = (torch.ones(3, 4, 2), torch.zeros(4, 2, dtype=torch.long))
    groups = collate_groups([a, b, a])
    assert [g[0].tolist() for g in groups] == [[0, 2], [1]]
    assert groups[0][1].shape == (2, 3, 2, 2) and groups[1][2].shape == (1, 4, 2)
    (pos, x, y), = collate_groups([a, b], size=(4, 4))
    assert pos.tolist() == [0, 1] and x.shape == (2, 3, 4, 4)
    assert y[0].tolist() == [[0, 0, 1, 1], [0, 0, 1, 1], [2, 2, 3, 3], [2, 2, 3, 3]]   # nearest, ids kept
