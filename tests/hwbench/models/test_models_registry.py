"""Registry: names, labels, tasks, and the one-line errors for bad input."""

from __future__ import annotations

import pytest
import torch

from hwbench.errors import UserError
from hwbench.models import create_model, list_models, model_info

SEGMENTATION = ["deeplabv3plus_resnet20", "deeplabv3plus_mobilenetv3_small", "deeplabv3plus_resnet18",
                "deeplabv3plus_resnet50", "deeplabv3plus_xception65"]
CLASSIFICATION = ["resnet18", "resnet34", "resnet50", "resnet20", "mobilenetv3_small"]
LABELS = {"deeplabv3plus_resnet20": "Res-20", "deeplabv3plus_mobilenetv3_small": "MNV3",
          "deeplabv3plus_resnet18": "Res-18", "deeplabv3plus_resnet50": "Res-50",
          "deeplabv3plus_xception65": "Xc-65", "resnet18": "Res-18", "resnet34": "Res-34",
          "resnet50": "Res-50", "resnet20": "Res-20", "mobilenetv3_small": "MNV3"}


def test_names_and_tasks() -> None:
    assert sorted(list_models()) == sorted(SEGMENTATION + CLASSIFICATION)
    assert sorted(list_models("segmentation")) == sorted(SEGMENTATION)
    assert sorted(list_models("classification")) == sorted(CLASSIFICATION)
    for name, label in LABELS.items():
        info = model_info(name)
        assert (info.name, info.label) == (name, label)
        assert info.task == ("segmentation" if name.startswith("deeplab") else "classification")


def test_unknown_model_lists_valid_names() -> None:
    with pytest.raises(UserError, match=r"unknown model 'resnet51'; known: .*deeplabv3plus_resnet18.*resnet50"):
        create_model("resnet51")
    with pytest.raises(UserError, match="unknown model"):
        model_info("nope")
    with pytest.raises(UserError, match="unknown task"):
        list_models("detection")


@pytest.mark.parametrize("os_", [4, 12, 64, "16"])
def test_invalid_output_stride(os_) -> None:
    with pytest.raises(UserError, match="output_stride must be 8, 16 or 32"):
        create_model("deeplabv3plus_resnet18", output_stride=os_)


def test_resnet20_deeplab_has_no_os32() -> None:
    with pytest.raises(UserError, match="stride 16 at most"), torch.device("meta"):
        create_model("deeplabv3plus_resnet20", output_stride=32)


def test_bad_num_classes_and_options() -> None:
    for bad in (0, -3, 2.5, True):
        with pytest.raises(UserError, match="num_classes must be a positive integer"):
            create_model("resnet20", num_classes=bad)
    with pytest.raises(UserError, match="has no option 'depth'; options: .*separable_aspp"):
        create_model("deeplabv3plus_resnet18", depth=3)


@pytest.mark.parametrize("name", ["mobilenetv3_small", "resnet20"])
def test_channels_last_option(name) -> None:
    """`channels_last = True` (every model): 4-D weights in channels-last memory format, kept through a
    checkpoint load, outputs equal to the NCHW model's with the same weights up to float rounding."""
    torch.manual_seed(0)
    ref = create_model(name, num_classes=10).eval()
    cl = create_model(name, num_classes=10, channels_last=True).eval()
    cl.load_state_dict(ref.state_dict())
    convs = [p for p in cl.parameters() if p.dim() == 4]
    assert convs and all(p.is_contiguous(memory_format=torch.channels_last) for p in convs)
    assert not all(p.is_contiguous(memory_format=torch.channels_last) for p in ref.parameters() if p.dim() == 4)
    x = torch.randn(4, 3, 28, 28)
    with torch.no_grad():
        torch.testing.assert_close(cl(x), ref(x), rtol=1e-4, atol=1e-5)
    for bad in (1, "yes", None):
        with pytest.raises(UserError, match="channels_last must be true or false"):
            create_model(name, channels_last=bad)
    with pytest.raises(UserError, match="options: channels_last"):
        create_model(name, depth=3)


def test_defaults_and_contract_attributes() -> None:
    with torch.device("meta"):
        seg = create_model("deeplabv3plus_resnet18")
        cls = create_model("resnet18")
    assert seg.head.classifier.out_channels == 19 and seg.output_stride == 16
    assert cls.fc.out_features == 1000 and cls.output_stride == 32
    assert seg.task == "segmentation" and cls.task == "classification"
    assert seg.feature_taps == ("low_level", "backbone", "aspp", "pre_classifier")
    assert cls.feature_taps == ("stage1", "stage2", "stage3", "stage4")
    assert seg.embedding_tap == "low_level" and cls.embedding_tap == "penultimate"
    assert seg.head_modules == ("head",) and cls.head_modules == ("fc",)
    with torch.device("meta"):
        assert create_model("mobilenetv3_small").head_modules == ("classifier",)
    for m in (seg, cls):
        children = dict(m.named_children())
        assert all(h in children for h in m.head_modules)
