"""ResNets with torchvision's module names and state-dict keys.

`conv1, bn1, relu, maxpool, layer1..layer4, avgpool, fc`; blocks `conv1/bn1/conv2/bn2[/conv3/bn3]`
and `downsample.0/.1` — so a local torchvision checkpoint loads as is (He et al., "Deep Residual
Learning for Image Recognition", CVPR 2016; layout of torchvision.models.resnet, v1.5 with the
stride on the 3×3 conv of the bottleneck).

Output stride: a stage whose stride would take the network past `output_stride` keeps stride 1
and dilates its 3×3 convs instead (torchvision's `replace_stride_with_dilation`, which here also
works for BasicBlock). The first block of a dilated stage keeps the previous dilation.

ResNet-20 is the CIFAR net (3 stages of 3 BasicBlocks, widths 16/32/64, 3×3 stem, 1×1-conv
shortcuts). Its classifier keeps the CIFAR strides (1, 1, 2, 2: stride 4 in all); the DeepLab
backbone strides the stem and every stage (2, 2, 2, 2) so it reaches stride 16.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

from hwbench.models.layers import check_output_stride, feature_entry, init_weights, on_meta
from hwbench.models.registry import register_model

__all__ = ["BasicBlock", "Bottleneck", "ResNet", "resnet18", "resnet34", "resnet50", "resnet20",
           "resnet_backbone"]


def conv3x3(in_planes: int, out_planes: int, stride: int = 1, dilation: int = 1) -> nn.Conv2d:
    return nn.Conv2d(in_planes, out_planes, 3, stride=stride, padding=dilation, dilation=dilation, bias=False)


def conv1x1(in_planes: int, out_planes: int, stride: int = 1) -> nn.Conv2d:
    return nn.Conv2d(in_planes, out_planes, 1, stride=stride, bias=False)


class BasicBlock(nn.Module):
    expansion = 1

    def __init__(self, inplanes: int, planes: int, stride: int = 1, downsample: nn.Module | None = None,
                 dilation: int = 1, first_dilation: int | None = None) -> None:
        super().__init__()
        first_dilation = first_dilation or dilation
        self.conv1 = conv3x3(inplanes, planes, stride, first_dilation)
        self.bn1 = nn.BatchNorm2d(planes)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = conv3x3(planes, planes, 1, dilation)
        self.bn2 = nn.BatchNorm2d(planes)
        self.downsample = downsample

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu(out + identity)


class Bottleneck(nn.Module):
    expansion = 4

    def __init__(self, inplanes: int, planes: int, stride: int = 1, downsample: nn.Module | None = None,
                 dilation: int = 1, first_dilation: int | None = None) -> None:
        super().__init__()
        first_dilation = first_dilation or dilation
        width = planes
        self.conv1 = conv1x1(inplanes, width)
        self.bn1 = nn.BatchNorm2d(width)
        self.conv2 = conv3x3(width, width, stride, first_dilation)
        self.bn2 = nn.BatchNorm2d(width)
        self.conv3 = conv1x1(width, planes * self.expansion)
        self.bn3 = nn.BatchNorm2d(planes * self.expansion)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = downsample

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        return self.relu(out + identity)


class ResNet(nn.Module):
    """ResNet classifier (`num_classes` int) or feature backbone (`num_classes=None`: no fc).

    `feature_info` lists the stem output and every stage (channels, stride after dilation);
    `forward_features(x)` returns exactly those tensors.
    """

    task = "classification"
    feature_taps = ("stage1", "stage2", "stage3", "stage4")
    embedding_tap = "penultimate"
    classifier_prefixes = ("fc.",)  # keys a backbone ignores when loading a classifier checkpoint

    def __init__(self, block: type[BasicBlock] | type[Bottleneck], layers: Sequence[int], *,
                 widths: Sequence[int] = (64, 128, 256, 512), stage_strides: Sequence[int] = (1, 2, 2, 2),
                 stem_kernel: int = 7, stem_stride: int = 2, stem_pool: bool = True,
                 num_classes: int | None = 1000, output_stride: int = 32,
                 zero_init_residual: bool = False) -> None:
        super().__init__()
        check_output_stride(output_stride)
        if not len(layers) == len(widths) == len(stage_strides):
            raise ValueError("layers, widths and stage_strides must have the same length")
        stem_width = widths[0]
        self.conv1 = nn.Conv2d(3, stem_width, stem_kernel, stride=stem_stride, padding=(stem_kernel - 1) // 2,
                               bias=False)
        self.bn1 = nn.BatchNorm2d(stem_width)
        self.relu = nn.ReLU(inplace=True)
        self.feature_info: list[dict[str, Any]] = [feature_entry("relu", stem_width, stem_stride)]
        stride = stem_stride
        if stem_pool:
            self.maxpool = nn.MaxPool2d(kernel_size=3, stride=2, padding=1)
            stride *= 2
        self.inplanes = stem_width
        dilation = 1
        self._stage_names: list[str] = []
        for i, (n, w, s) in enumerate(zip(layers, widths, stage_strides, strict=True)):
            first_dilation = dilation
            if stride * s > output_stride:
                dilation *= s
                s = 1
            stride *= s
            name = f"layer{i + 1}"
            self.add_module(name, self._make_layer(block, w, n, s, dilation, first_dilation))
            self._stage_names.append(name)
            self.feature_info.append(feature_entry(name, w * block.expansion, stride))
        self.num_features = widths[-1] * block.expansion
        self.output_stride = stride
        if num_classes is not None:
            self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
            self.fc = nn.Linear(self.num_features, num_classes)
            self.head_modules: tuple[str, ...] = ("fc",)
        else:
            self.head_modules = ()
        # classification taps: the last four entries (stem + 3 stages for ResNet-20)
        self._tap_index = tuple(range(len(self.feature_info)))[-4:]
        self.feature_channels = {t: self.feature_info[i]["num_chs"]
                                 for t, i in zip(self.feature_taps, self._tap_index, strict=True)}
        self.feature_channels["penultimate"] = self.num_features
        init_weights(self)
        if zero_init_residual and not on_meta(self):
            for m in self.modules():
                last_bn = m.bn3 if isinstance(m, Bottleneck) else m.bn2 if isinstance(m, BasicBlock) else None
                if last_bn is not None:
                    nn.init.zeros_(last_bn.weight)

    def _make_layer(self, block: type[BasicBlock] | type[Bottleneck], planes: int, blocks: int, stride: int,
                    dilation: int, first_dilation: int) -> nn.Sequential:
        downsample = None
        if stride != 1 or self.inplanes != planes * block.expansion:
            downsample = nn.Sequential(conv1x1(self.inplanes, planes * block.expansion, stride),
                                       nn.BatchNorm2d(planes * block.expansion))
        layers = [block(self.inplanes, planes, stride, downsample, dilation, first_dilation)]
        self.inplanes = planes * block.expansion
        layers += [block(self.inplanes, planes, dilation=dilation) for _ in range(1, blocks)]
        return nn.Sequential(*layers)

    def forward_features(self, x: torch.Tensor) -> list[torch.Tensor]:
        """Stem output and every stage output, in `feature_info` order."""
        x = self.relu(self.bn1(self.conv1(x)))  # (N, C0, H/s, W/s)
        feats = [x]
        if hasattr(self, "maxpool"):
            x = self.maxpool(x)
        for name in self._stage_names:
            x = getattr(self, name)(x)
            feats.append(x)
        return feats

    def forward(self, x: torch.Tensor, return_features: bool = False
                ) -> torch.Tensor | tuple[torch.Tensor, dict[str, torch.Tensor]]:
        if not hasattr(self, "fc"):
            raise RuntimeError("this ResNet is a backbone (num_classes=None); use forward_features")
        feats = self.forward_features(x)
        pooled = torch.flatten(self.avgpool(feats[-1]), 1)  # (N, D)
        logits = self.fc(pooled)  # (N, K)
        if not return_features:
            return logits
        named = {t: feats[i] for t, i in zip(self.feature_taps, self._tap_index, strict=True)}
        named["penultimate"] = pooled
        return logits, named


_RESNET_SPECS: dict[str, tuple[type[BasicBlock] | type[Bottleneck], tuple[int, ...]]] = {
    "resnet18": (BasicBlock, (2, 2, 2, 2)),
    "resnet34": (BasicBlock, (3, 4, 6, 3)),
    "resnet50": (Bottleneck, (3, 4, 6, 3)),
}


def _resnet20(num_classes: int | None, output_stride: int, imagenet_strides: bool) -> ResNet:
    strides = (2, 2, 2, 2) if imagenet_strides else (1, 1, 2, 2)
    return ResNet(BasicBlock, (3, 3, 3), widths=(16, 32, 64), stage_strides=strides[1:], stem_kernel=3,
                  stem_stride=strides[0], stem_pool=False, num_classes=num_classes, output_stride=output_stride)


# stem layouts of resnet18/34/50: (kernel, stride, max-pool) -> the stem's total stride 4 / 2 / 1
STEMS = {"imagenet": (7, 2, True), "small": (3, 2, False), "cifar": (3, 1, False)}


def _stem(stem: str) -> dict[str, Any]:
    """Keyword arguments of `ResNet` for a named stem; an unknown name lists the known ones."""
    if stem not in STEMS:
        raise ValueError(f"unknown stem {stem!r}; known: {', '.join(STEMS)}")
    k, s, pool = STEMS[stem]
    return {"stem_kernel": k, "stem_stride": s, "stem_pool": pool}


def resnet_backbone(name: str, *, output_stride: int = 16) -> ResNet:
    """Feature backbone (no fc) for DeepLab: resnet18/34/50, or resnet20 with stride-16 layout."""
    if name == "resnet20":
        return _resnet20(None, output_stride, imagenet_strides=True)
    block, layers = _RESNET_SPECS[name]
    return ResNet(block, layers, num_classes=None, output_stride=output_stride)


@register_model(label="Res-18", task="classification", family="resnet", num_classes=1000,
                default_input=(1, 3, 224, 224), output_stride=32)
def resnet18(*, num_classes: int = 1000, output_stride: int = 32, zero_init_residual: bool = False,
             stem: str = "imagenet") -> ResNet:
    """ResNet-18 (11,689,512 params with 1000 classes). `stem`: "imagenet" (7×7/2 + max-pool, stride 4),
    "small" (3×3/2, no pool: 28-32 px inputs keep 14-16 px in layer1) or "cifar" (3×3/1, no pool)."""
    return ResNet(BasicBlock, (2, 2, 2, 2), num_classes=num_classes, output_stride=output_stride,
                  zero_init_residual=zero_init_residual, **_stem(stem))


@register_model(label="Res-34", task="classification", family="resnet", num_classes=1000,
                default_input=(1, 3, 224, 224), output_stride=32)
def resnet34(*, num_classes: int = 1000, output_stride: int = 32, zero_init_residual: bool = False,
             stem: str = "imagenet") -> ResNet:
    """ResNet-34 (21,797,672 params with 1000 classes). `stem`: "imagenet" (7×7/2 + max-pool, stride 4),
    "small" (3×3/2, no pool: 28-32 px inputs keep 14-16 px in layer1) or "cifar" (3×3/1, no pool)."""
    return ResNet(BasicBlock, (3, 4, 6, 3), num_classes=num_classes, output_stride=output_stride,
                  zero_init_residual=zero_init_residual, **_stem(stem))


@register_model(label="Res-50", task="classification", family="resnet", num_classes=1000,
                default_input=(1, 3, 224, 224), output_stride=32)
def resnet50(*, num_classes: int = 1000, output_stride: int = 32, zero_init_residual: bool = False,
             stem: str = "imagenet") -> ResNet:
    """ResNet-50 v1.5 (25,557,032 params with 1000 classes). `stem`: "imagenet" (7×7/2 + max-pool, stride 4),
    "small" (3×3/2, no pool: 28-32 px inputs keep 14-16 px in layer1) or "cifar" (3×3/1, no pool)."""
    return ResNet(Bottleneck, (3, 4, 6, 3), num_classes=num_classes, output_stride=output_stride,
                  zero_init_residual=zero_init_residual, **_stem(stem))


@register_model(label="Res-20", task="classification", family="resnet", num_classes=10,
                default_input=(1, 3, 32, 32), output_stride=32)
def resnet20(*, num_classes: int = 10, output_stride: int = 32, imagenet_strides: bool = False) -> ResNet:
    """CIFAR ResNet-20 (16/32/64 widths, 3×3 BasicBlocks). `imagenet_strides=True` gives the
    stride-16 layout of the DeepLab backbone (stem and every stage stride 2), so its checkpoints
    load into `deeplabv3plus_resnet20`.

    Its four classification taps are the stem and the three stages.
    """
    return _resnet20(num_classes, output_stride, imagenet_strides)
