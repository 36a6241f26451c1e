"""Output and feature shapes / channels for every model at OS 8/16/32 (meta device), and real
CPU forwards on the small models (features come from the same pass as the logits)."""

from __future__ import annotations

import pytest
import torch

from hwbench.errors import UserError
from hwbench.models import create_model, list_models

N, H, W = 2, 64, 128

# (low-level, high-level) channels, independent of the code: DESIGN §6 and the papers
SEG_CHANNELS = {
    "deeplabv3plus_resnet20": (16, 64),
    "deeplabv3plus_mobilenetv3_small": (16, 576),
    "deeplabv3plus_resnet18": (64, 512),
    "deeplabv3plus_resnet50": (256, 2048),
    "deeplabv3plus_xception65": (256, 2048),
}
# stage channels and strides (at OS32) and penultimate width
CLS_STAGES = {
    "resnet18": ((64, 128, 256, 512), (4, 8, 16, 32), 512),
    "resnet34": ((64, 128, 256, 512), (4, 8, 16, 32), 512),
    "resnet50": ((256, 512, 1024, 2048), (4, 8, 16, 32), 2048),
    "resnet20": ((16, 16, 32, 64), (1, 1, 2, 4), 64),  # CIFAR: stem + 3 stages
    "mobilenetv3_small": ((16, 24, 48, 576), (4, 8, 16, 32), 1024),
}


def _meta_forward(name: str, os_: int, num_classes: int):
    with torch.device("meta"):
        model = create_model(name, num_classes=num_classes, output_stride=os_).eval()
    with torch.no_grad():
        return model, *model(torch.empty(N, 3, H, W, device="meta"), return_features=True)


@pytest.mark.parametrize("os_", [8, 16, 32])
@pytest.mark.parametrize("name", sorted(SEG_CHANNELS))
def test_segmentation_shapes(name: str, os_: int) -> None:
    if name == "deeplabv3plus_resnet20" and os_ == 32:  # ResNet-20 reaches stride 16 at most
        with pytest.raises(UserError, match="stride 16 at most"):
            _meta_forward(name, os_, 7)
        return
    c_low, c_high = SEG_CHANNELS[name]
    model, logits, feats = _meta_forward(name, os_, 7)
    assert logits.shape == (N, 7, H, W)
    assert tuple(feats) == model.feature_taps
    assert feats["low_level"].shape == (N, c_low, H // 4, W // 4)
    assert feats["backbone"].shape == (N, c_high, H // os_, W // os_)
    assert feats["aspp"].shape == (N, 256, H // os_, W // os_)
    assert feats["pre_classifier"].shape == (N, 256, H // 4, W // 4)
    assert model.feature_channels == {"low_level": c_low, "backbone": c_high, "aspp": 256,
                                      "pre_classifier": 256}


@pytest.mark.parametrize("os_", [8, 16, 32])
@pytest.mark.parametrize("name", sorted(CLS_STAGES))
def test_classification_shapes(name: str, os_: int) -> None:
    channels, strides, penultimate = CLS_STAGES[name]
    model, logits, feats = _meta_forward(name, os_, 5)
    assert logits.shape == (N, 5)
    assert set(feats) == {*model.feature_taps, "penultimate"}
    for tap, c, s in zip(model.feature_taps, channels, strides, strict=True):
        s = min(s, os_)
        assert feats[tap].shape == (N, c, H // s, W // s), tap
        assert model.feature_channels[tap] == c
    assert feats["penultimate"].shape == (N, penultimate)
    assert model.feature_channels["penultimate"] == penultimate


@pytest.mark.parametrize("name", ["deeplabv3plus_resnet20", "deeplabv3plus_mobilenetv3_small",
                                  "resnet20", "mobilenetv3_small"])
def test_cpu_forward_features_same_pass(name: str) -> None:
    model = create_model(name, num_classes=3).eval()
    x = torch.randn(N, 3, H, W)
    with torch.no_grad():
        logits = model(x)
        logits2, feats = model(x, return_features=True)
    assert torch.isfinite(logits).all()
    torch.testing.assert_close(logits, logits2)
    if model.task == "segmentation":  # the logits are the classifier applied to pre_classifier
        head = model.head.classifier(feats["pre_classifier"])
        up = torch.nn.functional.interpolate(head, size=(H, W), mode="bilinear", align_corners=False)
        torch.testing.assert_close(up, logits)
    else:
        last = model.fc if hasattr(model, "fc") else model.classifier[3]
        torch.testing.assert_close(last(feats["penultimate"]), logits)


def test_batch_of_one_trains() -> None:
    """Image pooling's BN sees one value per channel with N=1; training must still work."""
    model = create_model("deeplabv3plus_resnet20", num_classes=3).train()
    before = model.head.aspp.branches[-1].conv[1].running_mean.clone()
    loss = model(torch.randn(1, 3, 32, 32)).mean()
    loss.backward()
    assert model.head.aspp.branches[-1].conv[0].weight.grad is not None
    torch.testing.assert_close(model.head.aspp.branches[-1].conv[1].running_mean, before)


def test_dilation_keeps_weights() -> None:
    """Output stride changes strides/dilations only, never the parameters."""
    for name in SEG_CHANNELS:
        strides = (8, 16) if name == "deeplabv3plus_resnet20" else (8, 16, 32)  # ResNet-20: OS16 at most
        shapes = []
        for os_ in strides:
            with torch.device("meta"):
                m = create_model(name, output_stride=os_)
            shapes.append({k: tuple(v.shape) for k, v in m.state_dict().items()})
        assert len(shapes) == len(strides) and all(s == shapes[0] for s in shapes), name


def test_invalid_model_names_all_registered() -> None:
    assert set(SEG_CHANNELS) | set(CLS_STAGES) == set(list_models())


def test_resnet50_os8_dilations_match_torchvision() -> None:
    """replace_stride_with_dilation=[False, True, True]: the first block of a dilated stage keeps
    the previous dilation, later blocks use the new one."""
    with torch.device("meta"):
        m = create_model("deeplabv3plus_resnet50", output_stride=8).backbone
    assert m.layer3[0].conv2.stride == (1, 1) and m.layer3[0].conv2.dilation == (1, 1)
    assert m.layer3[1].conv2.dilation == (2, 2)
    assert m.layer4[0].conv2.dilation == (2, 2) and m.layer4[1].conv2.dilation == (4, 4)
    assert m.layer3[0].downsample[0].stride == (1, 1)


def test_mobilenetv3_os16_dilates_last_stage() -> None:
    """torchvision's dilated=True: blocks 9-11 dilation 2, block 9 without stride."""
    with torch.device("meta"):
        f = create_model("deeplabv3plus_mobilenetv3_small").backbone.features
    for i in (9, 10, 11):
        dw = f[i].block[1][0]
        assert dw.dilation == (2, 2) and dw.stride == (1, 1) and dw.padding == (4, 4)
    assert f[4].block[1][0].stride == (2, 2) and f[4].block[1][0].dilation == (1, 1)
