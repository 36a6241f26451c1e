"""load_weights against a torchvision-format ResNet-18 state dict written out by hand."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from hwbench.errors import UserError
from hwbench.models import create_model, load_weights


def _bn(prefix: str, c: int) -> dict[str, tuple[int, ...]]:
    return {f"{prefix}.weight": (c,), f"{prefix}.bias": (c,), f"{prefix}.running_mean": (c,),
            f"{prefix}.running_var": (c,), f"{prefix}.num_batches_tracked": ()}


def torchvision_resnet18_shapes(num_classes: int = 1000) -> dict[str, tuple[int, ...]]:
    """Key -> shape of torchvision's resnet18 state dict, from the architecture description
    (7×7 stem, 4 stages of 2 BasicBlocks, widths 64..512, 1×1 downsample on stages 2-4)."""
    shapes: dict[str, tuple[int, ...]] = {"conv1.weight": (64, 3, 7, 7), **_bn("bn1", 64)}
    cin = 64
    for stage, width in enumerate((64, 128, 256, 512), start=1):
        for block in range(2):
            p = f"layer{stage}.{block}"
            shapes[f"{p}.conv1.weight"] = (width, cin if block == 0 else width, 3, 3)
            shapes.update(_bn(f"{p}.bn1", width))
            shapes[f"{p}.conv2.weight"] = (width, width, 3, 3)
            shapes.update(_bn(f"{p}.bn2", width))
            if block == 0 and stage > 1:
                shapes[f"{p}.downsample.0.weight"] = (width, cin, 1, 1)
                shapes.update(_bn(f"{p}.downsample.1", width))
        cin = width
    shapes["fc.weight"] = (num_classes, 512)
    shapes["fc.bias"] = (num_classes,)
    return shapes


def _random_state(shapes: dict[str, tuple[int, ...]]) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    return {k: (torch.tensor(7) if k.endswith("num_batches_tracked") else torch.randn(s, generator=g))
            for k, s in shapes.items()}


@pytest.fixture()
def r18_ckpt(tmp_path: Path) -> tuple[Path, dict[str, torch.Tensor]]:
    state = _random_state(torchvision_resnet18_shapes())
    path = tmp_path / "resnet18.pth"
    torch.save(state, path)
    return path, state


def test_oracle_is_resnet18() -> None:
    shapes = torchvision_resnet18_shapes()
    n = sum(torch.Size(s).numel() for k, s in shapes.items() if "running" not in k and "num_batches" not in k)
    assert n == 11_689_512 and len(shapes) == 122  # torchvision resnet18: 122 state-dict entries


def test_resnet18_loads_strictly(r18_ckpt) -> None:
    path, state = r18_ckpt
    model = create_model("resnet18")
    assert {k: tuple(v.shape) for k, v in model.state_dict().items()} == torchvision_resnet18_shapes()
    assert load_weights(model, path) is model
    for k, v in model.state_dict().items():
        torch.testing.assert_close(v, state[k])


@pytest.mark.parametrize("wrap", ["state_dict", "model", "module"])
def test_wrapped_checkpoints(tmp_path: Path, r18_ckpt, wrap: str) -> None:
    _, state = r18_ckpt
    obj = ({f"module.{k}": v for k, v in state.items()} if wrap == "module"
           else {wrap: state, "epoch": 3})
    torch.save(obj, tmp_path / "w.pth")
    model = load_weights(create_model("resnet18"), tmp_path / "w.pth")
    torch.testing.assert_close(model.fc.weight, state["fc.weight"])


def test_deeplab_backbone_from_classifier(r18_ckpt) -> None:
    path, state = r18_ckpt
    model = create_model("deeplabv3plus_resnet18", output_stride=8)
    head_before = {k: v.clone() for k, v in model.head.state_dict().items()}
    load_weights(model, path)
    for k, v in model.backbone.state_dict().items():
        torch.testing.assert_close(v, state[k])
    for k, v in model.head.state_dict().items():
        torch.testing.assert_close(v, head_before[k])


def test_full_deeplab_round_trip(tmp_path: Path) -> None:
    src = create_model("deeplabv3plus_mobilenetv3_small", num_classes=4)
    torch.save(src.state_dict(), tmp_path / "dl.pth")
    dst = load_weights(create_model("deeplabv3plus_mobilenetv3_small", num_classes=4), tmp_path / "dl.pth")
    for (k, a), (_, b) in zip(src.state_dict().items(), dst.state_dict().items(), strict=True):
        torch.testing.assert_close(a, b, msg=k)


def test_mobilenetv3_torchvision_keys() -> None:
    """Spot checks of torchvision mobilenet_v3_small keys and shapes (SE squeeze = make_divisible(C/4, 8))."""
    with torch.device("meta"):
        sd = create_model("mobilenetv3_small").state_dict()
    expected = {
        "features.0.0.weight": (16, 3, 3, 3),
        "features.0.1.running_var": (16,),
        "features.1.block.0.0.weight": (16, 1, 3, 3),      # no expansion in the first block
        "features.1.block.1.fc1.weight": (8, 16, 1, 1),
        "features.1.block.2.0.weight": (16, 16, 1, 1),
        "features.2.block.0.0.weight": (72, 16, 1, 1),
        "features.4.block.1.0.weight": (96, 1, 5, 5),
        "features.4.block.2.fc1.weight": (24, 96, 1, 1),
        "features.4.block.2.fc2.bias": (96,),
        "features.9.block.2.fc1.weight": (72, 288, 1, 1),
        "features.11.block.3.1.weight": (96,),
        "features.12.0.weight": (576, 96, 1, 1),
        "classifier.0.weight": (1024, 576),
        "classifier.3.weight": (1000, 1024),
    }
    for k, s in expected.items():
        assert tuple(sd[k].shape) == s, k
    assert "features.13.0.weight" not in sd and "classifier.1.weight" not in sd


def test_mismatch_lists_keys(tmp_path: Path, r18_ckpt) -> None:
    _, state = r18_ckpt
    broken = dict(state)
    del broken["layer2.0.downsample.0.weight"]
    broken["layer9.0.conv1.weight"] = torch.zeros(1)
    torch.save(broken, tmp_path / "bad.pth")
    with pytest.raises(UserError) as e:
        load_weights(create_model("resnet18"), tmp_path / "bad.pth")
    msg = str(e.value)
    assert "missing keys: layer2.0.downsample.0.weight" in msg
    assert "unexpected keys: layer9.0.conv1.weight" in msg
    assert "\n" not in msg


def test_mismatch_into_deeplab_names_backbone_keys_and_truncates(r18_ckpt) -> None:
    path, _ = r18_ckpt
    with pytest.raises(UserError) as e:
        load_weights(create_model("deeplabv3plus_resnet50"), path)
    msg = str(e.value)
    assert "missing keys: backbone." in msg and "more)" in msg and "shape mismatch" in msg


def test_wrong_num_classes_is_shape_error(r18_ckpt) -> None:
    path, _ = r18_ckpt
    with pytest.raises(UserError, match=r"shape mismatch .*fc.weight \(1000, 512\) vs \(10, 512\)"):
        load_weights(create_model("resnet18", num_classes=10), path)


def test_missing_and_garbage_files(tmp_path: Path) -> None:
    model = create_model("resnet20")
    with pytest.raises(UserError, match="not found"):
        load_weights(model, tmp_path / "nope.pth")
    (tmp_path / "junk.pth").write_bytes(b"not a checkpoint")
    with pytest.raises(UserError, match="not a PyTorch checkpoint"):
        load_weights(model, tmp_path / "junk.pth")
    torch.save([1, 2, 3], tmp_path / "list.pth")
    with pytest.raises(UserError, match="holds no state dict"):
        load_weights(model, tmp_path / "list.pth")


def test_resnet20_checkpoint_into_deeplab(tmp_path: Path) -> None:
    """The stride-16 ResNet-20 classifier feeds the DeepLab backbone; the CIFAR one lacks layer1's shortcut."""
    src = create_model("resnet20", num_classes=1000, imagenet_strides=True)
    torch.save(src.state_dict(), tmp_path / "r20.pth")
    dl = load_weights(create_model("deeplabv3plus_resnet20"), tmp_path / "r20.pth")
    torch.testing.assert_close(dl.backbone.layer1[0].downsample[0].weight, src.layer1[0].downsample[0].weight)
    torch.save(create_model("resnet20").state_dict(), tmp_path / "cifar.pth")
    with pytest.raises(UserError, match="missing keys: backbone.layer1.0.downsample.0.weight"):
        load_weights(create_model("deeplabv3plus_resnet20"), tmp_path / "cifar.pth")


def test_classifier_takes_a_checkpoint_of_another_class_count_with_new_head(tmp_path) -> None:
    torch.manual_seed(0)
    src = create_model("resnet18", num_classes=8)
    path = tmp_path / "r18_8.pth"
    torch.save(src.state_dict(), path)
    dst = create_model("resnet18", num_classes=10)
    fc_before = dst.fc.weight.clone()
    with pytest.raises(UserError, match=r"shape mismatch .*fc\.weight \(8, 512\) vs \(10, 512\)"):
        load_weights(dst, path)
    load_weights(dst, path, new_head=True)
    assert torch.equal(dst.fc.weight, fc_before)  # the head keeps its own initial values
    assert torch.equal(dst.layer4[1].conv2.weight, src.layer4[1].conv2.weight)
    same = create_model("resnet18", num_classes=8)
    load_weights(same, path, new_head=True)  # same class count: the head is loaded too
    assert torch.equal(same.fc.weight, src.fc.weight)
