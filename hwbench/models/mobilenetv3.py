"""MobileNetV3-Small with torchvision's layout and state-dict keys.

`features.0` (3×3 stem) .. `features.11` (inverted residual blocks, `features.N.block.M`),
`features.12` (1×1 conv to 576 channels), `avgpool`, `classifier.0` (576→1024), hardswish,
dropout, `classifier.3` (1024→classes). Howard et al., "Searching for MobileNetV3", ICCV 2019,
Table 2; layout and init of torchvision.models.mobilenetv3 (2,542,856 params with 1000 classes).

Output stride: a strided block that would take the network past `output_stride` keeps stride 1
and it and every later block dilate their depthwise conv (torchvision's `dilated=True`).
"""

from __future__ import annotations

from typing import Any, NamedTuple

import torch
from torch import nn

from hwbench.models.layers import (
    ConvBNAct,
    SqueezeExcite,
    check_output_stride,
    feature_entry,
    make_divisible,
    on_meta,
)
from hwbench.models.registry import register_model

__all__ = ["InvertedResidual", "MobileNetV3", "mobilenetv3_small"]

_BN = {"bn_eps": 1e-3, "bn_momentum": 0.01}


class BlockConfig(NamedTuple):
    in_channels: int
    kernel: int
    expanded: int
    out_channels: int
    use_se: bool
    act: str  # "RE" (ReLU) | "HS" (hardswish)
    stride: int


# Howard et al. 2019, Table 2 (MobileNetV3-Small); same as torchvision's `_mobilenet_v3_conf`.
SMALL_CONFIG: tuple[BlockConfig, ...] = (
    BlockConfig(16, 3, 16, 16, True, "RE", 2),   # features.1 -> stride 4
    BlockConfig(16, 3, 72, 24, False, "RE", 2),  # features.2 -> stride 8
    BlockConfig(24, 3, 88, 24, False, "RE", 1),
    BlockConfig(24, 5, 96, 40, True, "HS", 2),   # features.4 -> stride 16
    BlockConfig(40, 5, 240, 40, True, "HS", 1),
    BlockConfig(40, 5, 240, 40, True, "HS", 1),
    BlockConfig(40, 5, 120, 48, True, "HS", 1),
    BlockConfig(48, 5, 144, 48, True, "HS", 1),
    BlockConfig(48, 5, 288, 96, True, "HS", 2),  # features.9 -> stride 32
    BlockConfig(96, 5, 576, 96, True, "HS", 1),
    BlockConfig(96, 5, 576, 96, True, "HS", 1),
)
_ACTS = {"RE": nn.ReLU, "HS": nn.Hardswish}


class InvertedResidual(nn.Module):
    """Expand 1×1 -> depthwise k×k (-> SE) -> project 1×1, residual when shapes allow."""

    def __init__(self, cfg: BlockConfig, stride: int, dilation: int) -> None:
        super().__init__()
        act = _ACTS[cfg.act]
        self.use_res_connect = cfg.stride == 1 and cfg.in_channels == cfg.out_channels
        layers: list[nn.Module] = []
        if cfg.expanded != cfg.in_channels:
            layers.append(ConvBNAct(cfg.in_channels, cfg.expanded, 1, act_layer=act, **_BN))
        layers.append(ConvBNAct(cfg.expanded, cfg.expanded, cfg.kernel, stride=stride, dilation=dilation,
                                groups=cfg.expanded, act_layer=act, **_BN))
        if cfg.use_se:
            layers.append(SqueezeExcite(cfg.expanded, make_divisible(cfg.expanded // 4, 8)))
        layers.append(ConvBNAct(cfg.expanded, cfg.out_channels, 1, act_layer=None, **_BN))
        self.block = nn.Sequential(*layers)
        self.out_channels = cfg.out_channels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.block(x)
        return out + x if self.use_res_connect else out


class MobileNetV3(nn.Module):
    """MobileNetV3 classifier (`num_classes` int) or feature backbone (`num_classes=None`)."""

    task = "classification"
    feature_taps = ("stage1", "stage2", "stage3", "stage4")
    embedding_tap = "penultimate"
    classifier_prefixes = ("classifier.",)

    def __init__(self, config: tuple[BlockConfig, ...] = SMALL_CONFIG, *, last_channels: int = 1024,
                 num_classes: int | None = 1000, output_stride: int = 32, dropout: float = 0.2) -> None:
        super().__init__()
        check_output_stride(output_stride)
        stem = config[0].in_channels
        layers: list[nn.Module] = [ConvBNAct(3, stem, 3, stride=2, act_layer=nn.Hardswish, **_BN)]
        stride, dilation = 2, 1
        # feature_info: the last module at each stride, then the final 1×1 conv
        self.feature_info: list[dict[str, Any]] = []
        for i, cfg in enumerate(config):
            s = cfg.stride
            if s > 1:  # the module before a strided block ends a stage
                self.feature_info.append(feature_entry(f"features.{i}", layers[-1].out_channels, stride))
                if stride * s > output_stride:
                    dilation *= s
                    s = 1
                stride *= s
            layers.append(InvertedResidual(cfg, s, dilation))
        last_in = config[-1].out_channels
        layers.append(ConvBNAct(last_in, 6 * last_in, 1, act_layer=nn.Hardswish, **_BN))
        self.feature_info.append(feature_entry(f"features.{len(layers) - 1}", 6 * last_in, stride))
        self.features = nn.Sequential(*layers)
        self.num_features = 6 * last_in
        self.output_stride = stride
        self._feature_index = tuple(int(f["module"].split(".")[1]) for f in self.feature_info)
        self._tap_index = tuple(range(len(self.feature_info)))[-4:]
        self.feature_channels = {t: self.feature_info[i]["num_chs"]
                                 for t, i in zip(self.feature_taps, self._tap_index, strict=True)}
        if num_classes is not None:
            self.avgpool = nn.AdaptiveAvgPool2d(1)
            self.classifier = nn.Sequential(
                nn.Linear(self.num_features, last_channels),
                nn.Hardswish(inplace=True),
                nn.Dropout(p=dropout, inplace=True),
                nn.Linear(last_channels, num_classes),
            )
            self.head_modules: tuple[str, ...] = ("classifier",)
            self.feature_channels["penultimate"] = last_channels
        else:
            self.head_modules = ()
        self._init_weights()

    def _init_weights(self) -> None:
        if on_meta(self):  # shapes only: nothing to initialise (see layers.init_weights)
            return
        for m in self.modules():  # torchvision's MobileNetV3 init
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out")
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
            elif isinstance(m, nn.Linear):
                nn.init.normal_(m.weight, 0, 0.01)
                nn.init.zeros_(m.bias)

    def forward_features(self, x: torch.Tensor) -> list[torch.Tensor]:
        """Outputs of the modules in `feature_info`, in order."""
        feats = []
        for i, layer in enumerate(self.features):
            x = layer(x)
            if i in self._feature_index:
                feats.append(x)
        return feats

    def forward(self, x: torch.Tensor, return_features: bool = False
                ) -> torch.Tensor | tuple[torch.Tensor, dict[str, torch.Tensor]]:
        if not hasattr(self, "classifier"):
            raise RuntimeError("this MobileNetV3 is a backbone (num_classes=None); use forward_features")
        feats = self.forward_features(x)
        pooled = torch.flatten(self.avgpool(feats[-1]), 1)  # (N, 576)
        hidden = self.classifier[1](self.classifier[0](pooled))  # (N, 1024)
        logits = self.classifier[3](self.classifier[2](hidden))  # (N, K)
        if not return_features:
            return logits
        named = {t: feats[i] for t, i in zip(self.feature_taps, self._tap_index, strict=True)}
        named["penultimate"] = hidden
        return logits, named


@register_model(label="MNV3", task="classification", family="mobilenetv3", num_classes=1000,
                default_input=(1, 3, 224, 224), output_stride=32)
def mobilenetv3_small(*, num_classes: int = 1000, output_stride: int = 32, dropout: float = 0.2) -> MobileNetV3:
    """MobileNetV3-Small (2,542,856 params with 1000 classes)."""
    return MobileNetV3(SMALL_CONFIG, num_classes=num_classes, output_stride=output_stride, dropout=dropout)
