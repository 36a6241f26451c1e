"""Model option `tiny_conv_gemm`: convs on <= 2x2 output maps train as unfold + GEMM. Oracle: torch's own
`F.conv2d` (outputs and every gradient), on the shapes where the GEMM path applies and where it must not."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from hwbench.errors import UserError
from hwbench.models.gemm_conv import TinyMapGemmConv2d, use_tiny_conv_gemm
from hwbench.models.registry import create_model


def _pair(cin: int, cout: int, k: int, stride: int, pad: int, bias: bool) -> tuple[nn.Conv2d, nn.Conv2d]:
    torch.manual_seed(0)
    ref = nn.Conv2d(cin, cout, k, stride=stride, padding=pad, bias=bias)
    gemm = use_tiny_conv_gemm(nn.Sequential(nn.Conv2d(cin, cout, k, stride=stride, padding=pad, bias=bias)))[0]
    gemm.load_state_dict(ref.state_dict())
    return ref, gemm


@pytest.mark.parametrize("cin,cout,k,stride,pad,hw,bias", [
    (8, 6, 3, 1, 1, 2, False),    # layer4's 3x3 convs at 2x2
    (5, 7, 3, 2, 1, 4, True),     # the stride-2 entry conv: 4x4 -> 2x2
    (4, 6, 1, 2, 0, 4, False),    # the 1x1 downsample: 4x4 -> 2x2
    (3, 4, 3, 1, 1, 1, True),     # 1x1 map
])
def test_gemm_path_matches_conv2d_outputs_and_gradients(cin, cout, k, stride, pad, hw, bias) -> None:
    ref, gemm = _pair(cin, cout, k, stride, pad, bias)
    assert gemm._gemm_applies(torch.zeros(3, cin, hw, hw))
    x = torch.randn(3, cin, hw, hw, requires_grad=True)
    x2 = x.detach().clone().requires_grad_(True)
    y_ref, y = ref(x), gemm(x2)
    torch.testing.assert_close(y, y_ref, rtol=1e-5, atol=1e-5)
    g = torch.randn_like(y_ref)
    y_ref.backward(g)
    y.backward(g)
    torch.testing.assert_close(x2.grad, x.grad, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(gemm.weight.grad, ref.weight.grad, rtol=1e-5, atol=1e-5)
    if bias:
        torch.testing.assert_close(gemm.bias.grad, ref.bias.grad, rtol=1e-5, atol=1e-5)


def test_plain_path_where_the_gemm_does_not_apply() -> None:
    """Larger maps, eval mode, no grad, tracing and grouped convs run torch's conv, bit for bit."""
    ref, gemm = _pair(4, 4, 3, 1, 1, False)
    big = torch.randn(2, 4, 3, 3)  # 9 output pixels > 4
    assert not gemm._gemm_applies(big)
    assert torch.equal(gemm(big), ref(big))
    small = torch.randn(2, 4, 2, 2)
    with torch.no_grad():
        assert not gemm._gemm_applies(small)
    assert not gemm.eval()._gemm_applies(small)
    assert torch.equal(gemm(small), ref.eval()(small))
    traced = torch.jit.trace(gemm.train(), small)
    assert "aten::_convolution" in str(traced.graph) and "unfold" not in str(traced.graph)
    dw = use_tiny_conv_gemm(nn.Sequential(nn.Conv2d(4, 4, 3, padding=1, groups=4)))[0]
    assert isinstance(dw, TinyMapGemmConv2d) and not dw._gemm_applies(small)


def test_model_option_keeps_weights_and_state_dict() -> None:
    torch.manual_seed(0)
    ref = create_model("resnet18", num_classes=10, stem="small")
    torch.manual_seed(0)
    fast = create_model("resnet18", num_classes=10, stem="small", tiny_conv_gemm=True)
    assert isinstance(fast.layer4[0].conv1, TinyMapGemmConv2d) and type(ref.layer4[0].conv1) is nn.Conv2d
    a, b = ref.state_dict(), fast.state_dict()
    assert list(a) == list(b) and all(torch.equal(a[k], b[k]) for k in a)
    x, y = torch.randn(4, 3, 28, 28), torch.tensor([0, 1, 2, 3])
    for m in (ref, fast):
        F.cross_entropy(m.train()(x), y).backward()
    for (name, p), q in zip(ref.named_parameters(), fast.parameters(), strict=True):
        torch.testing.assert_close(q.grad, p.grad, rtol=1e-4, atol=1e-5, msg=name)
    fast.load_state_dict(ref.state_dict())  # the training forward moved BN statistics by float rounding
    with torch.no_grad():
        assert torch.equal(fast.eval()(x), ref.eval()(x))
    for bad in (1, "yes"):
        with pytest.raises(UserError, match="tiny_conv_gemm must be true or false"):
            create_model("resnet18", tiny_conv_gemm=bad)
