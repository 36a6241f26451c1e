"""DeepLabv3+ (Chen et al., ECCV 2018) on any backbone that declares `feature_info`.

Head (the one that reproduces the paper's Table 2, DESIGN §6):
  ASPP: 1×1 branch, three 3×3 branches at rates 6/12/18 (× 16 / output_stride), image pooling
        (global average -> 1×1 conv -> bilinear upsample), 1×1 projection 5·256 -> 256, dropout.
  Decoder: 1×1 projection of the stride-4 low-level feature to 48 channels, upsample the ASPP
        output to stride 4, concatenate (304 ch), two depthwise-separable 3×3 convs
        (304 -> 256, 256 -> 256).
  Classifier: 1×1 conv to `num_classes`, bilinear upsampling to the input size.
Options: `separable_aspp=True` (separable 3×3 ASPP branches, as in the paper's Xception model),
`separable_decoder=False` (plain 3×3 decoder convs, as in torchvision-style ports).

Wiring without per-backbone branches: the low-level feature is the deepest `feature_info`
entry at stride 4, the high-level feature is the last entry.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from hwbench.errors import UserError
from hwbench.models.layers import ConvBNAct, SeparableConv2d, check_output_stride, init_weights
from hwbench.models.mobilenetv3 import MobileNetV3
from hwbench.models.registry import register_model
from hwbench.models.resnet import resnet_backbone
from hwbench.models.xception import Xception65

__all__ = ["ASPP", "Decoder", "DeepLabV3Plus", "DeepLabHead"]

HEAD_CHANNELS = 256
LOW_LEVEL_CHANNELS = 48
BASE_RATES = (6, 12, 18)  # at output stride 16


class ASPPPooling(nn.Module):
    """Image-level branch: global average pool -> 1×1 conv + BN + ReLU -> upsample.

    Training with a batch of one image normalises with the running statistics (plain BatchNorm
    would raise on a 1×1 map), so counting in train mode and batch-1 training both work.
    """

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.conv = ConvBNAct(in_channels, out_channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        conv, bn, act = self.conv
        y = conv(self.pool(x))  # (N, C, 1, 1)
        if self.training and y.shape[0] == 1:
            # one value per channel: batch statistics do not exist (BatchNorm raises), so a
            # batch of one normalises with the running statistics and leaves them unchanged
            y = F.batch_norm(y, bn.running_mean, bn.running_var, bn.weight, bn.bias, False, 0.0, bn.eps)
        else:
            y = bn(y)
        return F.interpolate(act(y), size=x.shape[-2:], mode="bilinear", align_corners=False)


class ASPP(nn.Module):
    """Atrous spatial pyramid pooling: 1×1, three dilated 3×3, image pooling, 1×1 projection."""

    def __init__(self, in_channels: int, rates: Sequence[int], out_channels: int = HEAD_CHANNELS,
                 separable: bool = False, dropout: float = 0.1) -> None:
        super().__init__()
        branches: list[nn.Module] = [ConvBNAct(in_channels, out_channels, 1)]
        for r in rates:
            if separable:
                branches.append(SeparableConv2d(in_channels, out_channels, 3, dilation=r))
            else:
                branches.append(ConvBNAct(in_channels, out_channels, 3, dilation=r))
        branches.append(ASPPPooling(in_channels, out_channels))
        self.branches = nn.ModuleList(branches)
        self.project = nn.Sequential(ConvBNAct(len(branches) * out_channels, out_channels, 1),
                                     nn.Dropout(dropout))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = torch.cat([b(x) for b in self.branches], dim=1)  # (N, 5·C, h, w)
        return self.project(y)  # (N, C, h, w)


class Decoder(nn.Module):
    """Low-level projection to 48 ch, upsample the ASPP output, concat, two 3×3 convs."""

    def __init__(self, low_level_channels: int, aspp_channels: int = HEAD_CHANNELS,
                 out_channels: int = HEAD_CHANNELS, low_level_proj: int = LOW_LEVEL_CHANNELS,
                 separable: bool = True) -> None:
        super().__init__()
        self.project_low = ConvBNAct(low_level_channels, low_level_proj, 1)
        conv: Callable[..., nn.Module] = SeparableConv2d if separable else ConvBNAct
        self.fuse = nn.Sequential(conv(aspp_channels + low_level_proj, out_channels, 3),
                                  conv(out_channels, out_channels, 3))

    def forward(self, aspp: torch.Tensor, low: torch.Tensor) -> torch.Tensor:
        low = self.project_low(low)  # (N, 48, H/4, W/4)
        up = F.interpolate(aspp, size=low.shape[-2:], mode="bilinear", align_corners=False)
        return self.fuse(torch.cat([up, low], dim=1))  # (N, 256, H/4, W/4)


class DeepLabHead(nn.Module):
    """ASPP + decoder + 1×1 classifier: everything that is not backbone."""

    def __init__(self, low_level_channels: int, high_level_channels: int, num_classes: int,
                 rates: Sequence[int], separable_aspp: bool = False, separable_decoder: bool = True,
                 aspp_dropout: float = 0.1) -> None:
        super().__init__()
        self.aspp = ASPP(high_level_channels, rates, separable=separable_aspp, dropout=aspp_dropout)
        self.decoder = Decoder(low_level_channels, separable=separable_decoder)
        self.classifier = nn.Conv2d(HEAD_CHANNELS, num_classes, 1)

    def forward(self, high: torch.Tensor, low: torch.Tensor
                ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(high-level, low-level) -> (logits at stride 4, ASPP output, decoder output)."""
        aspp = self.aspp(high)  # (N, 256, H/os, W/os)
        dec = self.decoder(aspp, low)  # (N, 256, H/4, W/4)
        return self.classifier(dec), aspp, dec  # (N, K, H/4, W/4)


class DeepLabV3Plus(nn.Module):
    """DeepLabv3+ on a `feature_info` backbone; `forward(x, return_features)` per docs/contracts.md."""

    task = "segmentation"
    feature_taps = ("low_level", "backbone", "aspp", "pre_classifier")
    embedding_tap = "low_level"
    head_modules = ("head",)

    def __init__(self, backbone: nn.Module, *, num_classes: int, output_stride: int = 16,
                 separable_aspp: bool = False, separable_decoder: bool = True, aspp_dropout: float = 0.1,
                 name: str = "deeplabv3plus") -> None:
        super().__init__()
        check_output_stride(output_stride)
        info: list[dict[str, Any]] = backbone.feature_info
        if info[-1]["reduction"] != output_stride:
            raise UserError(f"{name}: the backbone reaches stride {info[-1]['reduction']} at most, "
                            f"so output_stride {output_stride} is not available; use 8 or 16")
        low = [i for i, f in enumerate(info) if f["reduction"] == 4]
        if not low:
            raise ValueError("backbone has no stride-4 feature for the decoder")
        self.backbone = backbone
        self._low_index = low[-1]
        self.output_stride = output_stride
        rates = tuple(r * 16 // output_stride for r in BASE_RATES)
        c_low, c_high = info[self._low_index]["num_chs"], info[-1]["num_chs"]
        self.head = DeepLabHead(c_low, c_high, num_classes, rates, separable_aspp=separable_aspp,
                                separable_decoder=separable_decoder, aspp_dropout=aspp_dropout)
        init_weights(self.head)
        self.feature_channels = {"low_level": c_low, "backbone": c_high, "aspp": HEAD_CHANNELS,
                                 "pre_classifier": HEAD_CHANNELS}

    def forward(self, x: torch.Tensor, return_features: bool = False
                ) -> torch.Tensor | tuple[torch.Tensor, dict[str, torch.Tensor]]:
        feats = self.backbone.forward_features(x)
        low, high = feats[self._low_index], feats[-1]  # (N, C_low, H/4, W/4), (N, C_high, H/os, W/os)
        logits, aspp, dec = self.head(high, low)  # (N, K, H/4, W/4)
        logits = F.interpolate(logits, size=x.shape[-2:], mode="bilinear", align_corners=False)
        if not return_features:
            return logits  # (N, K, H, W)
        return logits, {"low_level": low, "backbone": high, "aspp": aspp, "pre_classifier": dec}


def _deeplab(name: str, backbone: nn.Module, num_classes: int, output_stride: int,
             **kw: Any) -> DeepLabV3Plus:
    return DeepLabV3Plus(backbone, num_classes=num_classes, output_stride=output_stride, name=name, **kw)


_SEG = {"task": "segmentation", "num_classes": 19, "default_input": (1, 3, 1024, 2048), "output_stride": 16}


@register_model(label="Res-20", family="resnet", **_SEG)
def deeplabv3plus_resnet20(*, num_classes: int = 19, output_stride: int = 16, separable_aspp: bool = False,
                           separable_decoder: bool = True, aspp_dropout: float = 0.1) -> DeepLabV3Plus:
    """DeepLabv3+ on ResNet-20 (CIFAR widths 16/32/64, every stage strided: stride 16; OS 8 or 16)."""
    check_output_stride(output_stride)
    return _deeplab("deeplabv3plus_resnet20", resnet_backbone("resnet20", output_stride=output_stride),
                    num_classes, output_stride, separable_aspp=separable_aspp,
                    separable_decoder=separable_decoder, aspp_dropout=aspp_dropout)


@register_model(label="MNV3", family="mobilenetv3", **_SEG)
def deeplabv3plus_mobilenetv3_small(*, num_classes: int = 19, output_stride: int = 16,
                                    separable_aspp: bool = False, separable_decoder: bool = True,
                                    aspp_dropout: float = 0.1) -> DeepLabV3Plus:
    """DeepLabv3+ on MobileNetV3-Small (low-level: features.1, 16 ch; high-level: features.12, 576 ch)."""
    check_output_stride(output_stride)
    return _deeplab("deeplabv3plus_mobilenetv3_small", MobileNetV3(num_classes=None, output_stride=output_stride),
                    num_classes, output_stride, separable_aspp=separable_aspp,
                    separable_decoder=separable_decoder, aspp_dropout=aspp_dropout)


@register_model(label="Res-18", family="resnet", **_SEG)
def deeplabv3plus_resnet18(*, num_classes: int = 19, output_stride: int = 16, separable_aspp: bool = False,
                           separable_decoder: bool = True, aspp_dropout: float = 0.1) -> DeepLabV3Plus:
    """DeepLabv3+ on ResNet-18 (low-level: layer1, 64 ch; high-level: layer4, 512 ch)."""
    check_output_stride(output_stride)
    return _deeplab("deeplabv3plus_resnet18", resnet_backbone("resnet18", output_stride=output_stride),
                    num_classes, output_stride, separable_aspp=separable_aspp,
                    separable_decoder=separable_decoder, aspp_dropout=aspp_dropout)


@register_model(label="Res-50", family="resnet", **_SEG)
def deeplabv3plus_resnet50(*, num_classes: int = 19, output_stride: int = 16, separable_aspp: bool = False,
                           separable_decoder: bool = True, aspp_dropout: float = 0.1) -> DeepLabV3Plus:
    """DeepLabv3+ on ResNet-50 (low-level: layer1, 256 ch; high-level: layer4, 2048 ch)."""
    check_output_stride(output_stride)
    return _deeplab("deeplabv3plus_resnet50", resnet_backbone("resnet50", output_stride=output_stride),
                    num_classes, output_stride, separable_aspp=separable_aspp,
                    separable_decoder=separable_decoder, aspp_dropout=aspp_dropout)


@register_model(label="Xc-65", family="xception", **_SEG)
def deeplabv3plus_xception65(*, num_classes: int = 19, output_stride: int = 16, separable_aspp: bool = False,
                             separable_decoder: bool = True, aspp_dropout: float = 0.1) -> DeepLabV3Plus:
    """DeepLabv3+ on aligned Xception-65 (low-level: entry unit 2, 256 ch; high-level: 2048 ch)."""
    check_output_stride(output_stride)
    return _deeplab("deeplabv3plus_xception65", Xception65(output_stride=output_stride),
                    num_classes, output_stride, separable_aspp=separable_aspp,
                    separable_decoder=separable_decoder, aspp_dropout=aspp_dropout)
