"""collect(): one forward per batch, only the evidence asked for, index-aligned over the pool."""

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import Dataset

from al.strategies import LossPredictionModule, collect, collect_for, get_strategy
from al.strategies.scoring import ImageScorer
from hwbench.errors import UserError

K, H, W, N = 3, 4, 6, 11


class StubSeg(nn.Module):
    """Segmentation-shaped stub that records how it was called."""

    task = "segmentation"
    feature_taps = ("low_level", "backbone", "aspp", "pre_classifier")
    embedding_tap = "low_level"
    feature_channels = {"low_level": 2, "backbone": 4, "aspp": 4, "pre_classifier": 3}

    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.head = nn.Conv2d(3, K, 1)
        self.calls = []

    def forward(self, x, return_features=False):
        self.calls.append((return_features, torch.is_grad_enabled(), self.training))
        logits = self.head(x) * 3                                           # (N, K, H, W)
        if not return_features:
            return logits
        feats = {"low_level": x[:, :2] * 2, "backbone": x.mean(1, keepdim=True).repeat(1, 4, 1, 1)[..., ::2, ::2],
                 "aspp": x[:, :1].repeat(1, 4, 1, 1)[..., ::2, ::2], "pre_classifier": x}
        return logits, feats


class StubPool(Dataset):
    task, num_classes, ignore_index = "segmentation", K, 255

    def __init__(self):
        g = torch.Generator().manual_seed(1)
        self.x = torch.randn(N, 3, H, W, generator=g)
        self.y = torch.randint(0, K, (N, H, W), generator=g)
        self.y[:, 0, :2] = 255                                               # some ignored pixels

    def __len__(self):
        return N

    def __getitem__(self, i):
        return self.x[i], self.y[i]


POOL = np.array([0, 2, 3, 5, 7, 8, 10])


def entropy_reference(logits):
    """Independent: probabilities -> -sum p log p, mean over the H*W pixels, per image."""
    p = torch.softmax(logits.double(), 1)
    return (-(p * p.log()).sum(1)).mean((1, 2))


def test_image_score_only_needs_no_features_and_no_grad():
    model, ds = StubSeg().train(), StubPool()
    ev = collect(model, ds, POOL, {"image_score"}, device="cpu", batch_size=3, show_progress=False)
    assert ev.embedding is None and ev.predicted_loss is None and ev.true_loss is None
    assert len(model.calls) == math.ceil(len(POOL) / 3)                      # one forward per batch
    assert all(rf is False and grad is False and training is False for rf, grad, training in model.calls)
    assert model.training                                                    # mode restored
    with torch.no_grad():
        ref = entropy_reference(model.head(ds.x[POOL]) * 3).numpy()
    np.testing.assert_allclose(ev.image_score[POOL], ref, rtol=1e-5)
    others = np.setdiff1d(np.arange(N), POOL)
    assert np.isnan(ev.image_score[others]).all() and ev.size == N


def test_embedding_requests_features_and_pools_the_embedding_tap():
    model, ds = StubSeg(), StubPool()
    ev = collect(model, ds, POOL, {"embedding"}, device="cpu", batch_size=4, show_progress=False)
    assert all(rf is True for rf, _, _ in model.calls)
    assert ev.image_score is None and ev.embedding.dtype == np.float32 and ev.embedding.shape == (N, 2)
    np.testing.assert_allclose(ev.embedding[POOL], (ds.x[POOL, :2] * 2).mean((2, 3)).numpy(), rtol=1e-6)
    assert np.isnan(ev.embedding[1]).all()


def test_predicted_loss_comes_from_aux_on_the_same_features():
    model, ds = StubSeg(), StubPool()
    aux = LossPredictionModule("segmentation", model.feature_taps, model.feature_channels, hidden=4)
    ev = collect(model, ds, POOL, {"predicted_loss", "image_score"}, device="cpu", batch_size=5, aux=aux,
                 show_progress=False)
    assert len(model.calls) == 2 and all(rf for rf, _, _ in model.calls)   # both from one forward
    assert aux.training                                                     # restored
    with torch.no_grad():
        _, feats = model.eval()(ds.x[POOL], return_features=True)
        ref = aux.eval()(feats).numpy()
    np.testing.assert_allclose(ev.predicted_loss[POOL], ref, rtol=1e-5, atol=1e-6)
    with pytest.raises(UserError, match="aux=LossPredictionModule"):
        collect(model, ds, POOL, {"predicted_loss"}, device="cpu", batch_size=2, show_progress=False)


def test_true_loss_is_mean_pixel_ce_over_valid_pixels():
    model, ds = StubSeg(), StubPool()
    ev = collect(model, ds, POOL, {"true_loss"}, device="cpu", batch_size=3, show_progress=False)
    assert not any(rf for rf, _, _ in model.calls)
    with torch.no_grad():
        logits = model.head(ds.x[POOL]) * 3
    ce = F.cross_entropy(logits, ds.y[POOL], ignore_index=255, reduction="none")   # (n, H, W), 0 at ignored
    valid = (ds.y[POOL] != 255).flatten(1).sum(1)
    np.testing.assert_allclose(ev.true_loss[POOL], (ce.flatten(1).sum(1) / valid).numpy(), rtol=1e-5)


def test_exclude_ignored_uses_the_label_mask():
    model, ds = StubSeg(), StubPool()
    ev = collect(model, ds, POOL, {"image_score"}, device="cpu", batch_size=3, show_progress=False,
                 score_fn=ImageScorer(exclude_ignored=True))
    with torch.no_grad():
        p = torch.softmax((model.head(ds.x[POOL]) * 3).double(), 1)
    h = -(p * p.log()).sum(1)
    v = ds.y[POOL] != 255
    np.testing.assert_allclose(ev.image_score[POOL], ((h * v).flatten(1).sum(1) / v.flatten(1).sum(1)).numpy(),
                               rtol=1e-5)


def test_nothing_needed_means_no_forward_and_collect_for_uses_candidates():
    model, ds = StubSeg(), StubPool()
    ev = collect(model, ds, POOL, set(), device="cpu", batch_size=3, show_progress=False)
    assert ev.size is None and model.calls == []
    labelled = np.zeros(N, bool)
    labelled[[1, 4]] = True
    ev = collect_for(get_strategy("coreset"), model, ds, labelled, np.random.default_rng(0), device="cpu",
                     batch_size=4, show_progress=False)
    assert np.isfinite(ev.embedding).all()                                  # coreset needs the whole pool
    ev = collect_for(get_strategy("entropy", aggregation="max"), model, ds, labelled, np.random.default_rng(0),
                     device="cpu", batch_size=4, show_progress=False)
    assert np.isnan(ev.image_score[[1, 4]]).all() and np.isfinite(np.delete(ev.image_score, [1, 4])).all()


def test_classification_embedding_is_the_penultimate_vector():
    class StubCls(nn.Module):
        task, embedding_tap = "classification", "penultimate"

        def forward(self, x, return_features=False):
            logits = x.mean((2, 3))                                          # (N, 3)
            return (logits, {"penultimate": x.amax((2, 3))}) if return_features else logits

    ds = StubPool()
    ev = collect(StubCls(), ds, POOL, {"embedding", "image_score"}, device="cpu", batch_size=4,
                 show_progress=False)
    np.testing.assert_allclose(ev.embedding[POOL], ds.x[POOL].amax((2, 3)).numpy())
    p = torch.softmax(ds.x[POOL].mean((2, 3)).double(), 1)
    np.testing.assert_allclose(ev.image_score[POOL], (-(p * p.log()).sum(1)).numpy(), rtol=1e-5)


def test_bad_arguments():
    model, ds = StubSeg(), StubPool()
    with pytest.raises(UserError, match="unknown evidence"):
        collect(model, ds, POOL, {"gradients"}, device="cpu", batch_size=2)
    with pytest.raises(UserError, match=r"pool indices must lie in \[0, 11\)"):
        collect(model, ds, [0, 11], {"image_score"}, device="cpu", batch_size=2)
    with pytest.raises(UserError, match="batch_size"):
        collect(model, ds, POOL, {"image_score"}, device="cpu", batch_size=0)
