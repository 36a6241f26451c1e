"""Scoring maths against hand-computed values: pixel entropy / margin and the aggregations."""

import math

import numpy as np
import pytest
import torch

from al.strategies.scoring import (
    AGGREGATIONS,
    ImageScorer,
    pixel_entropy,
    pixel_margin,
    probs_entropy,
)
from hwbench.errors import UserError


def logits_of(probs):
    """Logits whose softmax is `probs` (along dim 1)."""
    return torch.log(torch.as_tensor(probs, dtype=torch.float64)).float()


def test_entropy_hand_values():
    h = pixel_entropy(logits_of([[0.5, 0.5], [0.9, 0.1]]))
    assert h[0].item() == pytest.approx(math.log(2), abs=1e-6)
    assert h[1].item() == pytest.approx(-(0.9 * math.log(0.9) + 0.1 * math.log(0.1)), abs=1e-6)
    h4 = pixel_entropy(logits_of([[0.25] * 4, [0.7, 0.1, 0.1, 0.1]]))
    assert h4[0].item() == pytest.approx(math.log(4), abs=1e-6)
    expected = -(0.7 * math.log(0.7) + 3 * 0.1 * math.log(0.1))
    assert h4[1].item() == pytest.approx(expected, abs=1e-6)


def test_entropy_ranks_uniform_above_peaked_and_matches_numpy():
    probs = np.array([[0.97, 0.01, 0.01, 0.01], [0.25, 0.25, 0.25, 0.25], [0.6, 0.4, 0.0, 0.0],
                      [0.4, 0.3, 0.2, 0.1]])
    ours = pixel_entropy(torch.log(torch.tensor(probs).clamp_min(1e-30)).float()).numpy()
    # -sum p ln p by hand: 0.97/0.01x3 -> 0.16770, uniform(4) -> ln 4 = 1.38629, 0.6/0.4 -> 0.67301,
    # 0.4/0.3/0.2/0.1 -> 1.27985
    np.testing.assert_allclose(ours, [0.16770, 1.38629, 0.67301, 1.27985], atol=1e-5)
    np.testing.assert_allclose(probs_entropy(probs), ours, atol=1e-6)
    assert list(np.argsort(-ours)) == [1, 3, 2, 0]
    assert probs_entropy(np.array([[1.0, 0.0]]))[0] == 0.0          # 0 log 0 = 0


def test_entropy_stable_for_huge_logits_and_spatial_dim():
    x = torch.tensor([[1000.0, 1000.0], [1e4, -1e4]])                 # (N=2, K=2)
    h = pixel_entropy(x)
    assert torch.isfinite(h).all()
    assert h[0].item() == pytest.approx(math.log(2), abs=1e-6) and h[1].item() == pytest.approx(0.0, abs=1e-6)
    seg = torch.zeros(1, 3, 2, 2)                                     # uniform over 3 classes everywhere
    assert torch.allclose(pixel_entropy(seg), torch.full((1, 2, 2), math.log(3)))


def test_margin_hand_values():
    m = pixel_margin(logits_of([[0.5, 0.3, 0.2], [0.9, 0.05, 0.05], [0.4, 0.4, 0.2]]))
    np.testing.assert_allclose(m.numpy(), [1 - 0.2, 1 - 0.85, 1.0], atol=1e-6)


# A hand-made 2x2 pixel map for two images; image 1 has a constant map.
MAP = torch.tensor([[[0.0, 1.0], [2.0, 5.0]],
                    [[3.0, 3.0], [3.0, 3.0]]])
VALID = torch.tensor([[[True, True], [True, False]],
                      [[False, False], [False, False]]])


@pytest.mark.parametrize("how, expected", [
    ("mean", [2.0, 3.0]),
    ("sum", [8.0, 12.0]),
    ("max", [5.0, 3.0]),
    ("minmax", [(0 + 0.2 + 0.4 + 1.0) / 4, 0.0]),
])
def test_aggregations_hand_values(how, expected):
    np.testing.assert_allclose(AGGREGATIONS[how](MAP, None).numpy(), expected, atol=1e-6)


@pytest.mark.parametrize("how, expected", [
    ("mean", [1.0, 0.0]),         # (0 + 1 + 2) / 3; no valid pixel -> 0
    ("sum", [3.0, 0.0]),
    ("max", [2.0, 0.0]),
    ("minmax", [(0 + 0.5 + 1.0) / 3, 0.0]),
])
def test_aggregations_with_valid_mask(how, expected):
    np.testing.assert_allclose(AGGREGATIONS[how](MAP, VALID).numpy(), expected, atol=1e-6)


def test_image_scorer_segmentation_and_classification():
    # two images 1x2: image 0 uniform over 2 classes everywhere, image 1 certain in one pixel
    probs = torch.tensor([[[[0.5, 0.5]], [[0.5, 0.5]]],
                          [[[0.5, 1.0]], [[0.5, 0.0]]]], dtype=torch.float64)   # (N=2, K=2, H=1, W=2)
    logits = torch.log(probs.clamp_min(1e-300)).float()
    s = ImageScorer()(logits)
    np.testing.assert_allclose(s.numpy(), [math.log(2), math.log(2) / 2], atol=1e-6)
    valid = torch.tensor([[[True, True]], [[True, False]]])
    s = ImageScorer(exclude_ignored=True)(logits, valid)
    np.testing.assert_allclose(s.numpy(), [math.log(2), math.log(2)], atol=1e-6)
    cls = ImageScorer(aggregation="max")(logits_of([[0.5, 0.5], [1.0 - 1e-9, 1e-9]]))
    assert cls.shape == (2,) and cls[0] > cls[1]


def test_image_scorer_rejects_unknown_names():
    with pytest.raises(UserError, match="unknown aggregation 'median'.*mean"):
        ImageScorer(aggregation="median")
    with pytest.raises(UserError, match="unknown pixel score"):
        ImageScorer(pixel="bald")


def test_blocked_pixel_entropy_equals_plain_formula(monkeypatch):
    """The CPU path works in blocks of rows; with tiny blocks (rows not dividing H) it must still equal
    -Σ p log p computed plainly in float64."""
    import numpy as np
    import torch

    import al.strategies.scoring as scoring

    monkeypatch.setattr(scoring, "_BLOCK_ELEMS", 3 * 5 * 2)              # K=3, W=5 -> 2 rows per block
    z = torch.randn(2, 3, 7, 5, generator=torch.Generator().manual_seed(0)) * 4
    p = np.exp(z.double().numpy())
    p /= p.sum(axis=1, keepdims=True)
    expected = -(p * np.log(p)).sum(axis=1)                              # (2, 7, 5)
    np.testing.assert_allclose(scoring.pixel_entropy(z).numpy(), expected, rtol=1e-5, atol=1e-6)
