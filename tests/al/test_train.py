"""al.train: losses, metrics, optimiser set-up, schedule, determinism, tiny sets, the LLAL path."""

from __future__ import annotations

import copy
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from al.data import build_dataset
from al.train import (
    TrainConfig,
    confusion_matrix,
    epoch_batches,
    evaluate,
    make_optimizer,
    miou_from_confusion,
    per_sample_loss,
    poly_lr,
    train,
)
from hwbench.errors import UserError
from hwbench.tomlconf import from_mapping

TAPS = ("low_level", "backbone", "aspp", "pre_classifier")


class TinySeg(nn.Module):
    """Stand-in for a zoo segmentation model (same forward contract). `probe` feeds only the
    "aspp" tap, never the logits, so its gradient can only come from the LLAL module."""

    task = "segmentation"
    feature_taps = TAPS

    def __init__(self, num_classes: int = 8) -> None:
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1, bias=False), nn.BatchNorm2d(8), nn.ReLU())
        self.body = nn.Sequential(nn.Conv2d(8, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU())
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.pool_bn = nn.BatchNorm2d(8)  # like ASPP's image pooling: fails in train mode on one sample
        self.probe = nn.Conv2d(8, 4, 1)
        self.classifier = nn.Conv2d(8, num_classes, 1)
        self.feature_channels = {"low_level": 8, "backbone": 8, "aspp": 4, "pre_classifier": 8}

    def forward(self, x: torch.Tensor, return_features: bool = False):
        low = self.stem(x)
        high = self.body(low)
        pre = high + self.pool_bn(self.pool(high))
        logits = self.classifier(pre)
        if not return_features:
            return logits
        return logits, {"low_level": low, "backbone": high, "aspp": self.probe(high), "pre_classifier": pre}


class StandInAux(nn.Module):
    """The LLAL module's interface (docs/contracts.md): forward(feats) -> (N,), loss(pred, target)."""

    weight = 1.0
    stop_grad_fraction = 0.6

    def __init__(self, channels: dict[str, int]) -> None:
        super().__init__()
        self.fc = nn.ModuleDict({t: nn.Linear(channels[t], 4) for t in TAPS})
        self.out = nn.Linear(4 * len(TAPS), 1)
        self.grad_enabled: list[bool] = []

    def forward(self, feats: dict[str, torch.Tensor]) -> torch.Tensor:
        self.grad_enabled.append(all(feats[t].requires_grad for t in TAPS))
        z = [F.relu(self.fc[t](feats[t].mean((2, 3)))) for t in TAPS]
        return self.out(torch.cat(z, 1)).squeeze(1)

    def loss(self, pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        b = pred.shape[0]
        i, j = torch.arange(b // 2), b - 1 - torch.arange(b // 2)
        sign = torch.sign(target[i] - target[j])
        return torch.clamp(1.0 - sign * (pred[i] - pred[j]), min=0).mean()


class TensorSet(torch.utils.data.Dataset):
    """A hand-made dataset; `fast=True` also offers the `tensors()` fast path."""

    ignore_index = 255

    def __init__(self, x: torch.Tensor, y: torch.Tensor, task: str, num_classes: int, fast: bool = True) -> None:
        self.x, self.y, self.task, self.num_classes = x, y, task, num_classes
        self.ignore_index = 255 if task == "segmentation" else -100
        if fast:
            self.tensors = lambda: (self.x, self.y)

    def __len__(self) -> int:
        return len(self.x)

    def __getitem__(self, i: int):
        return self.x[i], (self.y[i] if self.task == "segmentation" else int(self.y[i]))


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    """Tiny tensors: one intra-op thread avoids OpenMP spin-waiting on a busy 2-core machine."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def streets():
    return build_dataset("synthetic_streets", split="train", n=24, size=[32, 64])


def _model(seed: int = 0) -> TinySeg:
    torch.manual_seed(seed)
    return TinySeg()


# --- metrics and losses -------------------------------------------------------------------------

def test_confusion_and_miou_hand_computed() -> None:
    target = torch.tensor([[0, 0, 1, 1], [2, 2, 255, 1]])
    pred = torch.tensor([[0, 1, 1, 1], [2, 0, 3, 3]])
    cm = confusion_matrix(pred, target, num_classes=5, ignore_index=255)
    expected = np.zeros((5, 5), np.int64)
    for t, p in [(0, 0), (0, 1), (1, 1), (1, 1), (2, 2), (2, 0), (1, 3)]:  # the ignored pixel is skipped
        expected[t, p] += 1
    np.testing.assert_array_equal(cm.numpy(), expected)
    miou, iou = miou_from_confusion(cm)
    # IoU = TP / (TP + FP + FN): class 0: 1/(1+1+1); 1: 2/(2+1+1); 2: 1/(1+0+1); 3: 0/(0+1+0); 4 absent
    assert iou[:4] == pytest.approx([100 / 3, 50.0, 50.0, 0.0]) and iou[4] is None
    assert miou == pytest.approx((100 / 3 + 50 + 50 + 0) / 4)


def test_per_sample_loss_matches_manual() -> None:
    torch.manual_seed(0)
    logits = torch.randn(3, 4, 2, 3)
    target = torch.randint(0, 4, (3, 2, 3))
    target[0, 0, :] = 255
    target[2] = 255  # no valid pixel -> 0
    got = per_sample_loss(logits, target, 255)
    logp = torch.log_softmax(logits, 1)
    for n in range(3):
        vals = [-float(logp[n, target[n, i, j], i, j]) for i in range(2) for j in range(3) if target[n, i, j] != 255]
        assert float(got[n]) == pytest.approx(sum(vals) / len(vals) if vals else 0.0, rel=1e-5)
    cls_logits, cls_target = torch.randn(5, 3), torch.tensor([0, 2, 1, 1, 0])
    manual = -torch.log_softmax(cls_logits, 1)[torch.arange(5), cls_target]
    assert torch.allclose(per_sample_loss(cls_logits, cls_target, -100), manual, atol=1e-6)


# --- optimiser and schedule ---------------------------------------------------------------------

def test_weight_decay_groups_exclude_norm_and_bias() -> None:
    model, aux = TinySeg(), StandInAux(TinySeg().feature_channels)
    opt = make_optimizer([model, aux], TrainConfig(weight_decay=4e-4, momentum=0.9))
    groups = {g["name"]: g for g in opt.param_groups}
    assert groups["decay"]["weight_decay"] == 4e-4 and groups["no_decay"]["weight_decay"] == 0.0
    assert all(g["momentum"] == 0.9 for g in opt.param_groups)
    names = {id(p): n for n, p in [*model.named_parameters(), *(("aux." + k, v) for k, v in aux.named_parameters())]}
    decay = {names[id(p)] for p in groups["decay"]["params"]}
    no_decay = {names[id(p)] for p in groups["no_decay"]["params"]}
    assert decay == {"stem.0.weight", "body.0.weight", "probe.weight", "classifier.weight",
                     "aux.fc.low_level.weight", "aux.fc.backbone.weight", "aux.fc.aspp.weight",
                     "aux.fc.pre_classifier.weight", "aux.out.weight"}
    assert {"stem.1.weight", "stem.1.bias", "body.1.weight", "pool_bn.weight", "pool_bn.bias", "body.0.bias",
            "classifier.bias", "aux.out.bias"} <= no_decay
    assert len(decay) + len(no_decay) == sum(1 for _ in model.parameters()) + sum(1 for _ in aux.parameters())


def test_poly_lr_formula() -> None:
    assert poly_lr(0.01, 0, 100) == 0.01
    assert poly_lr(0.01, 50, 100) == pytest.approx(0.01 * 0.5 ** 0.9) == pytest.approx(0.00535887, rel=1e-5)
    assert poly_lr(0.01, 99, 100) == pytest.approx(0.01 * 0.01 ** 0.9) == pytest.approx(1.58489e-4, rel=1e-4)
    assert poly_lr(0.1, 30, 40, power=1.0) == pytest.approx(0.025)


def test_train_config_strict_and_validated() -> None:
    cfg = from_mapping(TrainConfig, {"epochs": 3, "batch_size": 4, "lr": 1}, "[train]")
    assert (cfg.epochs, cfg.lr, cfg.momentum, cfg.weight_decay, cfg.num_workers) == (3, 1.0, 0.9, 4e-4, 0)
    with pytest.raises(UserError, match="epochs = 0 is out of range"):
        TrainConfig(epochs=0)
    with pytest.raises(UserError, match="unknown key"):
        from_mapping(TrainConfig, {"epoch": 3}, "[train]")


# --- training -----------------------------------------------------------------------------------

def test_training_decreases_loss_and_is_deterministic(streets) -> None:
    cfg = TrainConfig(epochs=6, batch_size=4, lr=0.05)
    idx = np.arange(12)
    base = _model(0)
    before = evaluate(copy.deepcopy(base), streets, idx, batch_size=8)
    m1, m2, m3 = copy.deepcopy(base), copy.deepcopy(base), copy.deepcopy(base)
    r1 = train(m1, streets, idx, cfg, seed=7)
    assert r1["iterations"] == 6 * 3 and r1["batch_size"] == 4 and len(r1["loss_per_epoch"]) == 6
    assert r1["loss_per_epoch"][-1] < 0.7 * r1["loss_per_epoch"][0]
    after = evaluate(m1, streets, idx, batch_size=8)
    assert after["loss"] < before["loss"] and after["pixel_acc"] > before["pixel_acc"]
    assert r1["lr_final"] == pytest.approx(poly_lr(0.05, 17, 18))
    train(m2, streets, idx, cfg, seed=7)
    for (k, a), b in zip(m1.state_dict().items(), m2.state_dict().values(), strict=True):
        assert torch.equal(a, b), k
    train(m3, streets, idx, cfg, seed=8)
    assert not torch.equal(m1.classifier.weight, m3.classifier.weight)
    assert not m1.training  # left in eval mode


def test_dataloader_path_equals_tensor_fast_path(streets) -> None:
    x, y = streets.tensors()
    fast, slow = TensorSet(x, y, "segmentation", 8), TensorSet(x, y, "segmentation", 8, fast=False)
    cfg = TrainConfig(epochs=2, batch_size=3)
    m1, m2 = _model(1), _model(1)
    r1, r2 = train(m1, fast, [1, 4, 5, 9, 11], cfg, seed=3), train(m2, slow, [1, 4, 5, 9, 11], cfg, seed=3)
    assert r1["loss_per_epoch"] == r2["loss_per_epoch"]
    assert torch.equal(m1.classifier.weight, m2.classifier.weight)
    assert evaluate(m1, fast, batch_size=5) == evaluate(m2, slow, batch_size=5)


def test_tiny_labelled_sets(streets) -> None:
    assert [len(b) for b in epoch_batches(9, 4, torch.Generator().manual_seed(0))] == [4, 4]  # trailing 1 dropped
    assert [len(b) for b in epoch_batches(10, 4, torch.Generator().manual_seed(0))] == [4, 4, 2]
    r = train(_model(), streets, [0, 1, 2, 3, 4], TrainConfig(epochs=2, batch_size=4), seed=0)
    assert r["iterations"] == 2  # 5 = 4 + 1: the single leftover sample waits for the next shuffle
    r = train(_model(), streets, [3], TrainConfig(epochs=2, batch_size=8), seed=0)  # BN in eval for N = 1
    assert r["iterations"] == 2 and r["batch_size"] == 1 and math.isfinite(r["loss"])
    r = train(_model(), streets, [3, 5], TrainConfig(epochs=1, batch_size=16), seed=0)
    assert r["iterations"] == 1 and r["batch_size"] == 2
    with pytest.raises(UserError, match="no labelled samples"):
        train(_model(), streets, [], TrainConfig(), seed=0)
    mask = np.zeros(len(streets), bool)
    mask[[2, 6]] = True  # a boolean mask works as indices
    assert train(_model(), streets, mask, TrainConfig(epochs=1, batch_size=4), seed=0)["samples"] == 2


def test_aux_gradient_stops_after_epoch_round_60_percent(streets) -> None:
    """The reference detaches `if epoch > 120` over `range(200)`: here after epoch round(0.6 * 5) = 3."""
    model = _model(2)
    aux = StandInAux(model.feature_channels)
    probe_grads: list[float] = []
    model.probe.weight.register_hook(lambda g: probe_grads.append(float(g.norm())))
    aux_before = copy.deepcopy(aux.out.weight)
    r = train(model, streets, np.arange(8), TrainConfig(epochs=5, batch_size=4), seed=0, aux=aux)
    # 2 iterations per epoch; epochs 0..3 with gradient into the backbone, epoch 4 detached
    assert aux.grad_enabled == [True] * 8 + [False] * 2
    assert len(probe_grads) == 8 and all(g > 0 for g in probe_grads)  # backbone gets aux gradient before, none after
    assert not torch.equal(aux_before, aux.out.weight)  # the module trains jointly, all epochs
    assert len(r["aux_loss_per_epoch"]) == 5 and all(math.isfinite(v) for v in r["aux_loss_per_epoch"])
    aux.stop_grad_fraction = 0.0  # detached after epoch 0: only epoch 0's 2 iterations reach the probe
    aux.grad_enabled.clear()
    train(model, streets, np.arange(8), TrainConfig(epochs=3, batch_size=4), seed=0, aux=aux)
    assert aux.grad_enabled == [True] * 2 + [False] * 4 and len(probe_grads) == 10


def test_precise_bn_recomputes_running_stats(streets) -> None:
    torch.manual_seed(0)
    model = nn.Sequential(nn.BatchNorm2d(3, momentum=0.01), nn.Conv2d(3, 8, 1))
    x, _ = streets.tensors()
    idx = np.arange(8)
    exact = x[:8].mean((0, 2, 3))  # 2 equal batches: the average of batch means is the exact mean
    train(model, streets, idx, TrainConfig(epochs=1, batch_size=4, precise_bn=False), seed=0)
    assert not torch.allclose(model[0].running_mean, exact, atol=1e-3)  # momentum 0.01: still near 0
    train(model, streets, idx, TrainConfig(epochs=1, batch_size=4), seed=0)
    assert torch.allclose(model[0].running_mean, exact, atol=1e-5)
    assert model[0].momentum == 0.01 and not model.training


# --- evaluation ---------------------------------------------------------------------------------

class Oracle(nn.Module):
    """Predicts the class stored in channel 0 of the input (segmentation or classification)."""

    def __init__(self, k: int, dense: bool) -> None:
        super().__init__()
        self.k, self.dense = k, dense
        self.dummy = nn.Parameter(torch.zeros(()))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        cls = x[:, 0].round().long().clamp(0, self.k - 1)
        out = F.one_hot(cls, self.k).float() * 10  # (N, H, W, K)
        out = out.permute(0, 3, 1, 2) if self.dense else out[:, 0, 0]
        return out + 0 * self.dummy


def test_evaluate_segmentation_miou() -> None:
    g = torch.Generator().manual_seed(0)
    y = torch.randint(0, 3, (5, 4, 6), generator=g)
    y[0, 0] = 255
    pred = torch.where(torch.rand(5, 4, 6, generator=g) < 0.7, y.clamp(max=2), torch.randint(0, 4, (5, 4, 6), generator=g))
    x = pred[:, None].float().expand(-1, 3, -1, -1).contiguous()
    ds = TensorSet(x, y, "segmentation", 4)
    res = evaluate(Oracle(4, True), ds, batch_size=2)
    valid = (y != 255).numpy()
    cm = np.zeros((4, 4), np.int64)
    np.add.at(cm, (y.numpy()[valid], pred.numpy()[valid]), 1)
    iou = [cm[k, k] / (cm[k].sum() + cm[:, k].sum() - cm[k, k]) * 100 for k in range(4)]
    assert res["iou"] == pytest.approx(iou)  # class 3 is predicted but never in GT: IoU 0, counted
    assert res["miou"] == pytest.approx(np.mean(iou))
    assert res["pixel_acc"] == pytest.approx(100 * np.trace(cm) / cm.sum()) and res["n"] == 5


def test_evaluate_top1() -> None:
    y = torch.tensor([0, 1, 2, 3, 4, 5, 6])
    shown = torch.tensor([0, 1, 2, 0, 0, 5, 6])  # 5 of 7 right
    x = shown.float()[:, None, None, None].expand(-1, 3, 4, 4).contiguous()
    res = evaluate(Oracle(7, False), TensorSet(x, y, "classification", 7), batch_size=3)
    assert res["top1"] == pytest.approx(500 / 7) and res["n"] == 7


def test_zoo_model_trains_with_llal(streets) -> None:
    from al.strategies import LossPredictionModule
    from hwbench.models import create_model

    torch.manual_seed(0)
    model = create_model("deeplabv3plus_resnet20", num_classes=streets.num_classes, output_stride=16)
    aux = LossPredictionModule(model.task, model.feature_taps, model.feature_channels)
    r = train(model, streets, np.arange(2), TrainConfig(epochs=1, batch_size=2), seed=0, aux=aux)
    assert r["iterations"] == 1 and math.isfinite(r["loss"]) and math.isfinite(r["aux_loss_per_epoch"][0])
    assert "miou" in evaluate(model, streets, np.arange(2), batch_size=2)


def test_warmup_and_steps_counted_schedule() -> None:
    from al.train import TrainConfig, scheduled_lr

    cfg = TrainConfig(lr=0.1, warmup_steps=4, poly_power=1.0, epochs=2, min_steps=50)
    # warm-up (it + 1) / 4 times the linear (power 1) poly decay over 100 steps, by hand
    assert [round(scheduled_lr(cfg, it, 100), 6) for it in (0, 1, 3, 10)] == [0.025, 0.0495, 0.097, 0.09]
    assert scheduled_lr(TrainConfig(lr=0.1), 0, 10) == 0.1               # no warm-up: plain poly
    assert cfg.epochs_for(7) == 8                                        # ceil(50 / 7) steps-worth of epochs
    assert cfg.epochs_for(100) == 2                                      # never fewer than `epochs`
    with pytest.raises(UserError, match="warmup_steps"):
        TrainConfig(warmup_steps=-1)


def test_min_steps_trains_that_many_steps() -> None:
    import torch
    from torch import nn

    from al.train import TrainConfig, train

    class Tiny(torch.utils.data.Dataset):
        task, ignore_index, num_classes = "classification", -100, 2

        def __len__(self) -> int:
            return 10

        def __getitem__(self, i: int):
            return torch.full((3, 4, 4), float(i % 2)), i % 2

    model = nn.Sequential(nn.Flatten(), nn.Linear(48, 2))
    out = train(model, Tiny(), list(range(10)), TrainConfig(epochs=1, batch_size=4, min_steps=7, amp=False),
                show_progress=False)
    # 10 samples in batches of 4 -> 3 steps per epoch (4, 4, 2); 7 steps need 3 epochs = 9 steps
    assert (out["epochs"], out["iterations"]) == (3, 9)
