"""Xception-65, the aligned Xception of DeepLabv3+ (Chen et al., "Encoder-Decoder with Atrous
Separable Convolution for Semantic Image Segmentation", ECCV 2018, Fig. 4; layout of
tensorflow/models research/deeplab/core/xception.py `xception_65`).

Entry flow: 3×3 conv 32 (stride 2), 3×3 conv 64, then three Xception units of depths
128, 256, 728 (stride 2 each, 1×1-conv shortcut). Middle flow: 16 units of 728 (identity
shortcut). Exit flow: a unit 728, 1024, 1024 (stride 2, conv shortcut) and a unit
1536, 1536, 2048 with ReLU inside the separable convs and no shortcut.

A unit is three separable 3×3 convs, the stride on the last. Output stride follows TF's
`stack_blocks_dense`: once the network is at `output_stride`, a strided unit runs with stride 1
at the current rate and every later unit at twice the rate.

Low-level tap for DeepLab: entry unit 2, output of its second separable conv (256 ch, stride 4),
TF's `entry_flow/block2/unit_1/xception_module/separable_conv2_pointwise`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

from hwbench.models.layers import ConvBNAct, SeparableConv2d, check_output_stride, feature_entry, init_weights

__all__ = ["XceptionUnit", "Xception65", "xception65"]


class XceptionUnit(nn.Module):
    """Three separable 3×3 convs (stride on the last) plus a shortcut: "conv", "sum" or "none".

    `act_inside=False`: ReLU before each separable conv (pre-activation, linear convs);
    `act_inside=True`: ReLU after the depthwise and the pointwise BN (exit flow's last unit).
    `forward` returns `(out, tap)` where `tap` is the second separable conv's output.
    """

    def __init__(self, in_channels: int, depths: Sequence[int], *, stride: int = 1, dilation: int = 1,
                 skip: str = "conv", act_inside: bool = False) -> None:
        super().__init__()
        if skip not in ("conv", "sum", "none"):
            raise ValueError(f"skip must be conv, sum or none, got {skip!r}")
        self.act_inside = act_inside
        # non-inplace: the shortcut and the tap read tensors the ReLUs would otherwise overwrite
        self.relu = nn.ReLU(inplace=False)
        convs = []
        c = in_channels
        for i, d in enumerate(depths):
            convs.append(SeparableConv2d(c, d, 3, stride=stride if i == len(depths) - 1 else 1,
                                         dilation=dilation, act_layer=nn.ReLU if act_inside else None))
            c = d
        self.convs = nn.ModuleList(convs)
        self.skip = skip
        if skip == "conv":
            self.shortcut = ConvBNAct(in_channels, depths[-1], 1, stride=stride, act_layer=None)
        self.out_channels = depths[-1]

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        out = x
        tap = x
        for i, conv in enumerate(self.convs):
            if not self.act_inside:
                out = self.relu(out)
            out = conv(out)
            if i == 1:
                tap = out
        if self.skip == "conv":
            out = out + self.shortcut(x)
        elif self.skip == "sum":
            out = out + x
        return out, tap


class Xception65(nn.Module):
    """Aligned Xception-65 feature backbone (no classifier).

    `feature_info`: stem (64, /2), entry unit 1 (128, /4), entry unit 2's second separable conv
    (256, /4: the DeepLab low-level tap), entry unit 2 (256, /8), entry unit 3 (728, /16),
    exit flow (2048, /32), strides after dilation.
    """

    classifier_prefixes: tuple[str, ...] = ()
    head_modules: tuple[str, ...] = ()

    def __init__(self, *, output_stride: int = 16, middle_units: int = 16) -> None:
        super().__init__()
        check_output_stride(output_stride)
        self.stem = nn.Sequential(ConvBNAct(3, 32, 3, stride=2), ConvBNAct(32, 64, 3))
        self.feature_info: list[dict[str, Any]] = [feature_entry("stem", 64, 2)]
        # (flow, in, depths, stride, skip, act_inside)
        plan: list[tuple[str, int, tuple[int, int, int], int, str, bool]] = [
            ("entry_flow", 64, (128, 128, 128), 2, "conv", False),
            ("entry_flow", 128, (256, 256, 256), 2, "conv", False),
            ("entry_flow", 256, (728, 728, 728), 2, "conv", False),
            *[("middle_flow", 728, (728, 728, 728), 1, "sum", False)] * middle_units,
            ("exit_flow", 728, (728, 1024, 1024), 2, "conv", False),
            ("exit_flow", 1024, (1536, 1536, 2048), 1, "none", True),
        ]
        flows: dict[str, list[XceptionUnit]] = {"entry_flow": [], "middle_flow": [], "exit_flow": []}
        stride, dilation = 2, 1
        # unit index -> what it contributes to forward_features: its tap and/or its output
        self._collect: dict[int, tuple[str, ...]] = {}
        for k, (flow, cin, depths, s, skip, act_inside) in enumerate(plan):
            unit_dilation = dilation
            if stride == output_stride:  # TF stack_blocks_dense
                dilation *= s
                s = 1
            flows[flow].append(XceptionUnit(cin, depths, stride=s, dilation=unit_dilation, skip=skip,
                                            act_inside=act_inside))
            name = f"{flow}.{len(flows[flow]) - 1}"
            if k == 1:  # entry unit 2: its second separable conv is the stride-4 low-level feature
                self._collect[k] = ("tap",)
                self.feature_info.append(feature_entry(f"{name}.convs.1", depths[1], stride))
            stride *= s
            if k in (0, 1, 2) or k == len(plan) - 1:
                self._collect[k] = (*self._collect.get(k, ()), "out")
                self.feature_info.append(feature_entry(name, depths[-1], stride))
        self.entry_flow = nn.Sequential(*flows["entry_flow"])
        self.middle_flow = nn.Sequential(*flows["middle_flow"])
        self.exit_flow = nn.Sequential(*flows["exit_flow"])
        self._units = [*self.entry_flow, *self.middle_flow, *self.exit_flow]
        self.num_features = 2048
        self.output_stride = stride
        init_weights(self)

    def forward_features(self, x: torch.Tensor) -> list[torch.Tensor]:
        """Outputs of the modules in `feature_info`, in order."""
        x = self.stem(x)  # (N, 64, H/2, W/2)
        feats = [x]
        for k, unit in enumerate(self._units):
            x, tap = unit(x)
            for kind in self._collect.get(k, ()):
                feats.append(tap if kind == "tap" else x)
        return feats


def xception65(*, output_stride: int = 16) -> Xception65:
    """Aligned Xception-65 backbone (DeepLabv3+)."""
    return Xception65(output_stride=output_stride)
