"""LLAL: ranking loss against hand computation, module shapes/gradients, selection direction."""

import numpy as np
import pytest
import torch

from al.strategies import Evidence, LossPredictionModule, get_strategy, margin_ranking_loss
from hwbench.errors import UserError


def test_margin_ranking_loss_hand_computed():
    pred = torch.tensor([0.5, 2.0, 1.0, 3.0])
    true = torch.tensor([1.0, 4.0, 2.0, 3.0])
    # pairs (0, 3): true 1 < 3 -> sign -1, pred diff 0.5 - 3 = -2.5 -> max(0, 1 - 2.5) = 0
    # pairs (1, 2): true 4 > 2 -> sign +1, pred diff 2 - 1 = 1   -> max(0, 1 - 1) = 0
    assert margin_ranking_loss(pred, true).item() == pytest.approx(0.0)
    pred = torch.tensor([3.0, 0.0, 0.5, 1.0])
    # (0, 3): sign -1, diff 2.0 -> 1 + 2 = 3;  (1, 2): sign +1, diff -0.5 -> 1 + 0.5 = 1.5; mean 2.25
    assert margin_ranking_loss(pred, true).item() == pytest.approx(2.25)
    # ties in the true loss count as -1 (reference: 2*sign(clamp(diff, 0)) - 1)
    assert margin_ranking_loss(torch.tensor([0.0, 0.0]), torch.tensor([1.0, 1.0])).item() == pytest.approx(1.0)


def test_margin_ranking_loss_odd_and_tiny_batches():
    pred = torch.tensor([0.0, 5.0, 1.0], requires_grad=True)
    true = torch.tensor([2.0, 9.0, 1.0])
    # B=3: only the pair (0, 2); sign +1, diff -1 -> 2; the middle sample is unused
    loss = margin_ranking_loss(pred, true)
    assert loss.item() == pytest.approx(2.0)
    loss.backward()
    assert pred.grad.tolist() == [-1.0, 0.0, 1.0]
    one = torch.tensor([1.0], requires_grad=True)
    z = margin_ranking_loss(one, torch.tensor([3.0]))
    assert z.item() == 0.0 and z.requires_grad


def test_classification_module_architecture_and_grad():
    chans = {"stage1": 8, "stage2": 16, "stage3": 32, "stage4": 64}
    m = LossPredictionModule("classification", tuple(chans), chans)
    assert m.weight == 1.0 and m.stop_grad_fraction == 0.6 and m.margin == 1.0
    assert [b.out_features for b in m.branches] == [128] * 4 and m.out.in_features == 512
    feats = {t: torch.randn(6, c, 40 // (i + 1), 40 // (i + 1), requires_grad=True)
             for i, (t, c) in enumerate(chans.items())}
    pred = m(feats)
    assert pred.shape == (6,)
    m.loss(pred, torch.rand(6)).backward()
    assert all(f.grad is not None for f in feats.values())
    # GAP -> FC -> ReLU per tap, concat, Linear: check against an explicit computation
    h = [torch.relu(fc(feats[t].mean((2, 3)))) for fc, t in zip(m.branches, chans, strict=True)]
    torch.testing.assert_close(pred, m.out(torch.cat(h, 1)).squeeze(1))


def test_segmentation_module_is_convolutional_with_final_mean():
    chans = {"low_level": 16, "backbone": 40, "aspp": 24, "pre_classifier": 24}
    m = LossPredictionModule("segmentation", tuple(chans), chans, hidden=8).eval()
    feats = {"low_level": torch.randn(2, 16, 16, 32), "backbone": torch.randn(2, 40, 4, 8),
             "aspp": torch.randn(2, 24, 4, 8), "pre_classifier": torch.randn(2, 24, 16, 32)}
    pred = m(feats)
    assert pred.shape == (2,)
    assert not any(isinstance(x, torch.nn.Linear) for x in m.modules())
    # per-image predictions are independent of the rest of the batch (eval mode)
    single = m({k: v[1:] for k, v in feats.items()})
    torch.testing.assert_close(pred[1:], single)
    # equals concat -> 1x1 conv over the upsampled branch outputs (the documented equivalence)
    ups = [torch.nn.functional.interpolate(b(feats[t]), size=(16, 32), mode="bilinear", align_corners=False)
           for b, t in zip(m.branches, chans, strict=True)]
    w = torch.cat([o.weight for o in m.out], 1)                          # (1, 4*hidden, 1, 1)
    ref = torch.nn.functional.conv2d(torch.cat(ups, 1), w, m.out[0].bias).flatten(1).mean(1)
    torch.testing.assert_close(pred, ref, rtol=1e-5, atol=1e-5)


def test_module_bad_input():
    with pytest.raises(UserError, match="unknown task"):
        LossPredictionModule("detection", ("a",), {"a": 1})
    with pytest.raises(UserError, match="lacks taps"):
        LossPredictionModule("classification", ("a", "b"), {"a": 1})


def test_llal_picks_highest_predicted_loss_first():
    pred = np.array([0.1, 5.0, -2.0, 3.0, 9.0, 4.0])
    labelled = np.array([False, False, False, False, True, False])    # 9.0 is labelled
    picks = get_strategy("llal").select(Evidence(predicted_loss=pred), 3, labelled, np.random.default_rng(0))
    assert picks.tolist() == [1, 5, 3]                                 # 5.0, 4.0, 3.0 -- descending


def test_llal_subset_candidates_and_select():
    rng = np.random.default_rng(0)
    labelled = np.zeros(100, bool)
    labelled[:10] = True
    strat = get_strategy("llal", subset=20)
    cand = strat.candidates(labelled, rng)
    assert cand.size == 20 and not labelled[cand].any() and np.all(np.diff(cand) > 0)
    pred = np.full(100, np.nan)
    pred[cand] = np.arange(20.0)
    picks = strat.select(Evidence(predicted_loss=pred), 5, labelled, rng)
    assert picks.tolist() == cand[::-1][:5].tolist()
    # evidence over the whole pool: select draws the subset itself, so picks come from 20 images
    full = np.arange(100.0)
    picks = strat.select(Evidence(predicted_loss=full), 20, labelled, np.random.default_rng(1))
    assert np.all(np.diff(full[picks]) < 0) and len(set(picks.tolist())) == 20
    assert not np.array_equal(picks, np.arange(99, 79, -1))            # not simply the global top 20
    with pytest.raises(UserError, match="subset"):
        get_strategy("llal", subset=0)
    with pytest.raises(UserError, match=r"subset \(20\) is smaller than the budget \(21\)"):
        strat.select(Evidence(predicted_loss=full), 21, labelled, rng)


def test_stop_gradient_matches_the_reference_epoch_count() -> None:
    """Reference: `for epoch in range(200): ... if epoch > 120: detach` -> 121 epochs with gradient."""
    from al.strategies.learning_loss import stop_gradient

    reference = [epoch > 120 for epoch in range(200)]
    assert [stop_gradient(e, 200, 0.6) for e in range(200)] == reference
    assert sum(not d for d in reference) == 121
    m = LossPredictionModule("classification", ("a",), {"a": 4})
    assert not m.detaches(120, 200) and m.detaches(121, 200)
    assert not any(stop_gradient(e, 10, 1.0) for e in range(10))   # fraction 1: never detached
