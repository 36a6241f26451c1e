"""`al.ema` and `[train] ema_decay`: hand-computed averages, and a training run whose returned weights
are the EMA of the iterates that shorter runs of the same training produce; `[train] label_smoothing` by hand."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from al.ema import WeightEMA, ema_decay_at
from al.train import TrainConfig, train
from hwbench.errors import UserError


def test_decay_warm_up_by_hand() -> None:
    assert ema_decay_at(0.99, 1) == pytest.approx(2 / 11)
    assert ema_decay_at(0.99, 2) == pytest.approx(3 / 12)
    assert ema_decay_at(0.3, 3) == pytest.approx(0.3)          # 4/13 = 0.308 > 0.3
    assert ema_decay_at(0.9, 1000) == pytest.approx(0.9)


def test_updates_hand_computed() -> None:
    p = nn.Parameter(torch.tensor([0.0, 10.0]))
    frozen = nn.Parameter(torch.tensor([5.0]), requires_grad=False)
    m = nn.Module()
    m.p, m.frozen = p, frozen
    ema = WeightEMA([m, m], decay=0.3)                          # the same module twice: one copy of p
    assert len(ema.params) == 1
    with torch.no_grad():
        p.copy_(torch.tensor([1.1, 0.0]))
    ema.update()   # d = 2/11: 2/11 * [0, 10] + 9/11 * [1.1, 0]
    assert ema.shadow[0].tolist() == pytest.approx([0.9, 20 / 11])
    with torch.no_grad():
        p.copy_(torch.tensor([2.0, 0.0]))
    ema.update()   # d = 3/12 = 0.25: 0.25 * 0.9 + 0.75 * 2
    assert ema.shadow[0][0].item() == pytest.approx(1.725)
    with torch.no_grad():
        p.copy_(torch.tensor([0.0, 0.0]))
    ema.update()   # d = min(0.3, 4/13) = 0.3: 0.3 * 1.725
    assert ema.shadow[0][0].item() == pytest.approx(0.5175)
    assert p.tolist() == [0.0, 0.0]                              # the model keeps its weights until copy_to
    ema.copy_to()
    assert p[0].item() == pytest.approx(0.5175) and frozen.item() == 5.0


class Blobs(torch.utils.data.Dataset):
    task, ignore_index, num_classes = "classification", -100, 2

    def __init__(self) -> None:
        g = torch.Generator().manual_seed(0)
        self.x = torch.randn(8, 3, 2, 2, generator=g)
        self.y = (self.x.mean((1, 2, 3)) > 0).long()

    def __len__(self) -> int:
        return 8

    def __getitem__(self, i: int):
        return self.x[i], int(self.y[i])


def _net() -> nn.Module:
    torch.manual_seed(3)
    return nn.Sequential(nn.Flatten(), nn.Linear(12, 2))


def test_trained_weights_are_the_ema_of_the_iterates() -> None:
    """Full batch and a constant lr (poly_power 0): run t's first steps are run T's, so the iterates
    w_0..w_T come from T + 1 plain runs; the EMA run must return their average by the formula."""
    data, idx = Blobs(), list(range(8))
    base = dict(batch_size=8, lr=0.5, poly_power=0.0, amp=False, weight_decay=0.0)
    iterates = [torch.cat([p.detach().flatten() for p in _net().parameters()])]
    for t in range(1, 6):
        m = _net()
        train(m, data, idx, TrainConfig(epochs=t, **base), seed=7, show_progress=False)
        iterates.append(torch.cat([p.detach().flatten() for p in m.parameters()]))
    avg = iterates[0].clone()
    for t in range(1, 6):
        d = min(0.5, (1 + t) / (10 + t))
        avg = d * avg + (1 - d) * iterates[t]
    m = _net()
    out = train(m, data, idx, TrainConfig(epochs=5, ema_decay=0.5, **base), seed=7, show_progress=False)
    got = torch.cat([p.detach().flatten() for p in m.parameters()])
    assert out["iterations"] == 5
    assert torch.allclose(got, avg, atol=1e-6)
    assert not torch.allclose(got, iterates[-1], atol=1e-3)     # and it is not simply the last iterate


def test_ema_config_checked() -> None:
    with pytest.raises(UserError, match="ema_decay"):
        TrainConfig(ema_decay=1.0)
    with pytest.raises(UserError, match="precise_bn"):
        TrainConfig(ema_decay=0.9, precise_bn=False)


def test_label_smoothing_hand_computed() -> None:
    """Two classes, logits (0, ln 3): p = (1/4, 3/4); e = 0.2 makes the target of label 1 (0.1, 0.9)."""
    import math

    from al.losses import pixel_ce

    logits = torch.tensor([[0.0, math.log(3.0)], [0.0, math.log(3.0)]])
    ce, valid = pixel_ce(logits, torch.tensor([1, -100]), -100, label_smoothing=0.2)
    assert ce[0].item() == pytest.approx(-(0.1 * math.log(0.25) + 0.9 * math.log(0.75)))
    assert ce[1].item() == 0.0 and valid.tolist() == [True, False]
    assert pixel_ce(logits, torch.tensor([1, 0]), -100)[0][0].item() == pytest.approx(-math.log(0.75))
    with pytest.raises(UserError, match="label_smoothing"):
        TrainConfig(label_smoothing=1.0)


def test_fused_sgd_is_the_same_update_by_hand() -> None:
    """`[train] fused_sgd = true`: torch's fused kernel, two steps against SGD with momentum and weight decay
    by hand (v = g + wd * w on the first step, v = m * v + g + wd * w after; w -= lr * v)."""
    from al.optim import make_optimizer

    lin = torch.nn.Linear(3, 2, bias=False)
    w0 = lin.weight.detach().clone()
    opt = make_optimizer([lin], TrainConfig(lr=0.1, momentum=0.9, weight_decay=0.01, fused_sgd=True))
    assert opt.defaults["fused"] is True
    grads = [torch.full((2, 3), 0.5), torch.tensor([[1.0, -1.0, 2.0], [0.0, 3.0, -2.0]])]
    w, v = w0.clone(), None
    for g in grads:
        lin.weight.grad = g.clone()
        opt.step()
        d = g + 0.01 * w
        v = d if v is None else 0.9 * v + d
        w = w - 0.1 * v
    torch.testing.assert_close(lin.weight.detach(), w, rtol=1e-6, atol=1e-7)
    assert make_optimizer([lin], TrainConfig()).defaults.get("fused") in (None, False)
