"""The reference counter: fvcore's `FlopCountAnalysis` (a JIT trace on real CPU tensors, about one
real forward pass; its "flops" are MACs). Its conv/linear counts equal the meta counter's exactly."""

from __future__ import annotations

from typing import TYPE_CHECKING

from hwbench.counting.formulas import FVCORE_EXTRA
from hwbench.counting.meta import count_meta
from hwbench.counting.result import CountResult, LayerCount
from hwbench.errors import UserError, missing_package

if TYPE_CHECKING:  # pragma: no cover
    from torch import nn


def count_fvcore(model: nn.Module, shape: tuple[int, int, int, int], ops: str, name: str) -> CountResult:
    """fvcore's count of `model` at input `shape` (N, C, H, W).

    For `convlinear` its handles are restricted to conv/linear/matmul and the `all`-mode operators
    are ignored, so the totals equal the meta counter's exactly. Layer io sizes come from a meta
    pass; each leaf's MACs from fvcore's per-module figures.
    """
    import torch

    try:
        from fvcore.nn import FlopCountAnalysis
        from fvcore.nn import jit_handles as jh
    except ImportError:
        raise missing_package("fvcore", "fvcore") from None
    if any(t.device.type == "meta" for t in model.parameters()):
        raise UserError("the fvcore counter needs real tensors; pass a model name or a CPU model")

    structure = count_meta(model, shape, ops, name)
    flags = {m: m.training for m in model.modules()}
    model.eval()
    try:
        with torch.no_grad():
            fca = FlopCountAnalysis(model, torch.zeros(shape))  # (N, C, H, W)
            if ops == "convlinear":
                fca.clear_op_handles()
                fca.set_op_handle(**{"aten::_convolution": jh.conv_flop_jit, "aten::addmm": jh.addmm_flop_jit,
                                     "aten::bmm": jh.bmm_flop_jit, "aten::einsum": jh.einsum_flop_jit,
                                     "aten::matmul": jh.matmul_flop_jit, "aten::mm": jh.matmul_flop_jit,
                                     "aten::linear": jh.linear_flop_jit})
                fca.set_op_handle(**{k: None for k in FVCORE_EXTRA})
            else:
                fca.set_op_handle("aten::mean", jh.elementwise_flop_counter(1, 0))
            fca.unsupported_ops_warnings(False)
            fca.uncalled_modules_warnings(False)
            fca.tracer_warnings("none")
            total = int(fca.total())
            by_module = fca.by_module()
            unsupported = dict(sorted(fca.unsupported_ops().items()))
    finally:
        for m, flag in flags.items():
            m.train(flag)

    head_modules = structure.head_modules
    head = int(sum(by_module.get(h, 0) for h in head_modules))
    layers = tuple(
        LayerCount(r.name, r.kind, int(by_module.get(r.name, 0)), r.params, r.input_elems, r.output_elems,
                   r.weight_elems, r.calls) if not r.kind.startswith("aten::") else r
        for r in structure.layers)
    return CountResult(model=name, input=list(shape), macs=total, params=structure.params,
                       backbone_macs=total - head, head_macs=head, unsupported=unsupported, layers=layers,
                       ops=ops, counter="fvcore", weight_elems=structure.weight_elems,
                       peak_activation_elems=structure.peak_activation_elems, head_modules=head_modules)
