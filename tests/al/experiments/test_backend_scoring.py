"""`Backend.image_scores` (al entropy) scores the plain pool view, never augmented training crops;
`al.score_size` resizes scoring only while evaluation keeps the validation images' full size."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image

from al.config import ALConfig
from al.experiments.backend import backend_for
from al.strategies.scoring import ImageScorer
from hwbench.models import create_model

H, W = 32, 64


def _tree(root: Path) -> None:
    """A tiny Cityscapes layout: 3 train and 2 val images of 32x64."""
    for split, n in (("train", 3), ("val", 2)):
        for i in range(n):
            rng = np.random.default_rng(100 * (split == "val") + i)
            stem = f"aachen_{i:06d}_000019"
            img = root / "leftImg8bit" / split / "aachen" / f"{stem}_leftImg8bit.png"
            lab = root / "gtFine" / split / "aachen" / f"{stem}_gtFine_labelIds.png"
            img.parent.mkdir(parents=True, exist_ok=True)
            lab.parent.mkdir(parents=True, exist_ok=True)
            Image.fromarray(rng.integers(0, 256, (H, W, 3), dtype=np.uint8)).save(img)
            Image.fromarray(rng.choice(np.array([7, 8, 26, 0], np.uint8), (H, W))).save(lab)


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    r = tmp_path_factory.mktemp("cityscapes")
    _tree(r)
    return r


def _backend(root: Path, score_size=None):
    data = {"name": "cityscapes", "root": str(root), "options": {"crop_size": [16, 16]}}
    return backend_for(data, {"epochs": 1, "batch_size": 2}, "cpu", model="deeplabv3plus_resnet20",
                       al=ALConfig(batch_size=2, score_size=score_size, cycles=1, initial_fraction=0.34,
                                                 cycle_fraction=0.34))


def _model():
    torch.manual_seed(0)
    return create_model("deeplabv3plus_resnet20", num_classes=19).eval()


def test_entropy_scores_the_plain_view_not_augmented_crops(root) -> None:
    be = _backend(root)
    assert be.p.pool.augment and tuple(be.p.pool[0][0].shape[-2:]) == (16, 16)   # training view: 16x16 crops
    model = _model()
    scores = be.image_scores(model, np.array([2, 0]))
    with torch.no_grad():
        for s, i in zip(scores, (2, 0), strict=True):
            x, _ = be.p.pool_score[i]
            assert tuple(x.shape[-2:]) == (H, W)                                      # the whole image
            assert s == pytest.approx(float(ImageScorer()(model(x[None]))[0]), rel=1e-5)


def test_score_size_resizes_scoring_and_evaluation_keeps_full_resolution(root) -> None:
    be = _backend(root, score_size=[16, 32])
    model = _model()
    scores = be.image_scores(model, np.array([1]))
    x, _ = be.p.pool_score[1]
    with torch.no_grad():
        small = F.interpolate(x[None], size=(16, 32), mode="bilinear", align_corners=False)
        assert scores[0] == pytest.approx(float(ImageScorer()(model(small))[0]), rel=1e-5)
    assert tuple(be.p.val[0][0].shape[-2:]) == (H, W)          # evaluation data untouched by score_size
    seen = []
    hook = model.register_forward_hook(lambda m, inp, out: seen.append(tuple(inp[0].shape[-2:])))
    be.evaluate(model)
    hook.remove()
    assert seen and set(seen) == {(H, W)}
