"""ResNet-18/34/50 stems for small images: layout, resolution after the stem, MACs by hand."""

from __future__ import annotations

import pytest
import torch

from hwbench.count import count
from hwbench.models import create_model


@pytest.mark.parametrize(("stem", "layer1_px", "kernel", "stride"), [("imagenet", 7, 7, 2), ("small", 14, 3, 2),
                                                                     ("cifar", 28, 3, 1)])
def test_stem_sets_resolution_of_layer1(stem: str, layer1_px: int, kernel: int, stride: int) -> None:
    m = create_model("resnet18", num_classes=10, stem=stem).eval()
    assert m.conv1.kernel_size == (kernel, kernel) and m.conv1.stride == (stride, stride)
    assert hasattr(m, "maxpool") == (stem == "imagenet")
    with torch.no_grad():
        feats = m.forward_features(torch.zeros(1, 3, 28, 28))
    assert feats[1].shape[-1] == layer1_px                                       # layer1 output, 28 px input
    assert m(torch.zeros(2, 3, 28, 28)).shape == (2, 10)


def test_stem_macs_by_hand() -> None:
    # after the stem, "small" at 28 px runs the ImageNet net's grids at 56 px (14, 7, 4, 2) and "cifar" at 28 px
    # those at 112 px (28, 14, 7, 4): the totals differ only by the stem convs, counted by hand
    def macs(stem: str, px: int) -> int:
        return count(create_model("resnet18", num_classes=10, stem=stem), input_shape=(1, 3, px, px)).macs

    imagenet_stem = {56: 3 * 64 * 49 * 28 * 28, 112: 3 * 64 * 49 * 56 * 56}
    assert macs("small", 28) - 3 * 64 * 9 * 14 * 14 == macs("imagenet", 56) - imagenet_stem[56]
    assert macs("cifar", 28) - 3 * 64 * 9 * 28 * 28 == macs("imagenet", 112) - imagenet_stem[112]


def test_unknown_stem_lists_the_known_ones() -> None:
    with pytest.raises(ValueError, match="unknown stem 'tiny'; known: imagenet, small, cifar"):
        create_model("resnet18", num_classes=10, stem="tiny")
