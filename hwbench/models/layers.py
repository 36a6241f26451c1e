"""Building blocks shared by the zoo: conv + BN + activation, separable convs, squeeze-excite.

`ConvBNAct` is an `nn.Sequential` (indices 0, 1, 2) so its state-dict keys match torchvision's
`Conv2dNormActivation` (`<name>.0.weight`, `<name>.1.running_mean`, ...).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import nn

ActLayer = Callable[..., nn.Module]


def make_divisible(v: float, divisor: int = 8, min_value: int | None = None) -> int:
    """Round `v` to the nearest multiple of `divisor`, never going below 90% of `v`
    (the MobileNet rule, same as torchvision's `_make_divisible`)."""
    min_value = divisor if min_value is None else min_value
    new_v = max(min_value, int(v + divisor / 2) // divisor * divisor)
    if new_v < 0.9 * v:
        new_v += divisor
    return new_v


def same_padding(kernel_size: int, dilation: int = 1) -> int:
    """Padding that keeps `ceil(H / stride)` output rows for odd kernels."""
    return (kernel_size - 1) // 2 * dilation


class ConvBNAct(nn.Sequential):
    """Conv2d (no bias) -> BatchNorm2d -> activation (optional)."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int = 3, stride: int = 1,
                 dilation: int = 1, groups: int = 1, act_layer: ActLayer | None = nn.ReLU,
                 bn_eps: float = 1e-5, bn_momentum: float = 0.1, inplace: bool = True) -> None:
        layers: list[nn.Module] = [
            nn.Conv2d(in_channels, out_channels, kernel_size, stride=stride,
                      padding=same_padding(kernel_size, dilation), dilation=dilation, groups=groups,
                      bias=False),
            nn.BatchNorm2d(out_channels, eps=bn_eps, momentum=bn_momentum),
        ]
        if act_layer is not None:
            layers.append(_make_act(act_layer, inplace))
        super().__init__(*layers)
        self.out_channels = out_channels


class SeparableConv2d(nn.Module):
    """Depthwise k×k conv + BN (+ act) then pointwise 1×1 conv + BN (+ act).

    `act_layer` is applied after both BNs when given (DeepLabv3+ decoder, Xception exit flow);
    with `act_layer=None` the block is linear (Xception's pre-activation units).
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int = 3, stride: int = 1,
                 dilation: int = 1, act_layer: ActLayer | None = nn.ReLU, bn_eps: float = 1e-5,
                 bn_momentum: float = 0.1) -> None:
        super().__init__()
        self.depthwise = ConvBNAct(in_channels, in_channels, kernel_size, stride=stride, dilation=dilation,
                                   groups=in_channels, act_layer=act_layer, bn_eps=bn_eps,
                                   bn_momentum=bn_momentum)
        self.pointwise = ConvBNAct(in_channels, out_channels, 1, act_layer=act_layer, bn_eps=bn_eps,
                                   bn_momentum=bn_momentum)
        self.out_channels = out_channels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.pointwise(self.depthwise(x))


class SqueezeExcite(nn.Module):
    """Squeeze-and-excitation with 1×1 convs (torchvision `SqueezeExcitation` names: fc1, fc2)."""

    def __init__(self, channels: int, squeeze_channels: int, act_layer: ActLayer = nn.ReLU,
                 gate_layer: ActLayer = nn.Hardsigmoid) -> None:
        super().__init__()
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc1 = nn.Conv2d(channels, squeeze_channels, 1)
        self.fc2 = nn.Conv2d(squeeze_channels, channels, 1)
        self.activation = act_layer()
        self.scale_activation = gate_layer()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        s = self.avgpool(x)  # (N, C, 1, 1)
        s = self.scale_activation(self.fc2(self.activation(self.fc1(s))))
        return x * s


def _make_act(act_layer: ActLayer, inplace: bool) -> nn.Module:
    try:
        return act_layer(inplace=inplace)
    except TypeError:  # activations without an inplace flag (e.g. nn.GELU)
        return act_layer()


def on_meta(module: nn.Module) -> bool:
    """True when the module's parameters live on the meta device (shapes only: nothing to initialise)."""
    p = next(module.parameters(), None)
    return p is not None and p.is_meta


def init_weights(module: nn.Module, linear_std: float | None = None) -> None:
    """torchvision-style init: Kaiming-normal (fan_out) convs, BN = identity, linear N(0, std) or default.

    Skipped on the meta device: there are no values to set, and torch's Python decompositions of the
    random initialisers (which also import `torch._dynamo`) would dominate the cost of counting."""
    if on_meta(module):
        return
    for m in module.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, (nn.BatchNorm2d, nn.GroupNorm)):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)
        elif isinstance(m, nn.Linear) and linear_std is not None:
            nn.init.normal_(m.weight, 0.0, linear_std)
            nn.init.zeros_(m.bias)


def feature_entry(module: str, num_chs: int, reduction: int) -> dict[str, Any]:
    """One timm-style `feature_info` entry: module name, channels, stride w.r.t. the input."""
    return {"module": module, "num_chs": num_chs, "reduction": reduction}


def check_output_stride(output_stride: int) -> None:
    """Only 8, 16 and 32 are meaningful for the backbones here."""
    from hwbench.errors import UserError

    if output_stride not in (8, 16, 32):
        raise UserError(f"output_stride must be 8, 16 or 32, got {output_stride!r}")
