"""Training-time convolutions on tiny feature maps as one im2col GEMM (model option `tiny_conv_gemm`).

On CPU, oneDNN's convolution backward at output maps of 2x2 pixels (ResNet-18's layer4 at 28 px input
with the small stem) costs ~4x its forward, where a GEMM costs 2x: as `unfold` + `matmul`, a
512->512 3x3 conv at 2x2 trains ~1.6x faster and a Res-18 (small stem) training step at batch 32, 28 px
~1.2x faster (`python -m benchmarks bench_train`). Same weights and state dict, same arithmetic up to
float rounding.

Only the training path changes (grad enabled, module in train mode, not tracing or exporting): evaluation,
op counting and ONNX export see the plain `nn.Conv2d`.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

TINY_MAP_PX = 4  # output maps of at most this many pixels (2x2) take the GEMM path


class TinyMapGemmConv2d(nn.Conv2d):
    """`nn.Conv2d` that trains as im2col + GEMM when its output map has <= TINY_MAP_PX pixels."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self._gemm_applies(x):
            return super().forward(x)
        oh, ow = self._out_hw(x)
        cols = F.unfold(x, self.kernel_size, padding=self.padding, stride=self.stride)  # (N, C*kh*kw, oh*ow)
        y = self.weight.reshape(self.out_channels, -1) @ cols                           # (N, K, oh*ow)
        if self.bias is not None:
            y = y + self.bias.view(1, -1, 1)
        return y.view(x.shape[0], self.out_channels, oh, ow)

    def _gemm_applies(self, x: torch.Tensor) -> bool:
        if not (self.training and torch.is_grad_enabled() and x.dim() == 4 and x.device.type == "cpu"):
            return False
        if torch.jit.is_tracing() or torch.jit.is_scripting() or torch.onnx.is_in_onnx_export():
            return False
        if self.groups != 1 or self.dilation != (1, 1) or self.padding_mode != "zeros" or isinstance(self.padding, str):
            return False
        oh, ow = self._out_hw(x)
        return oh * ow <= TINY_MAP_PX

    def _out_hw(self, x: torch.Tensor) -> tuple[int, int]:
        """Output map (height, width) of this conv for input `x` (N, C, H, W), dilation 1."""
        (kh, kw), (sh, sw), (ph, pw) = self.kernel_size, self.stride, self.padding
        return (x.shape[2] + 2 * ph - kh) // sh + 1, (x.shape[3] + 2 * pw - kw) // sw + 1


def use_tiny_conv_gemm(model: nn.Module) -> nn.Module:
    """Give every plain `nn.Conv2d` of `model` the tiny-map GEMM training path, in place; returns `model`."""
    for m in model.modules():
        if type(m) is nn.Conv2d:
            m.__class__ = TinyMapGemmConv2d
    return model
