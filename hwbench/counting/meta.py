"""The default counter: one forward pass on PyTorch's meta device (shapes only, no memory, no
arithmetic) under a `TorchDispatchMode` that sees every ATen operator.

Zoo models are built on meta once per architecture (name, classes, output stride) and reused for
every input size (`zoo_model`); their weights are never initialised (nothing to set on meta).
Operators whose meta kernels are slow Python decompositions run as shape-only kernels
(`shapes.py`). Runs under `torch.no_grad()` (not `inference_mode`).
"""

from __future__ import annotations

import logging
import threading
from collections import OrderedDict
from typing import TYPE_CHECKING, Any

from hwbench.counting.formulas import handles
from hwbench.counting.result import CountResult
from hwbench.counting.tracer import ModelIndex, Tracer, tensors
from hwbench.errors import UserError

if TYPE_CHECKING:  # pragma: no cover
    from torch import nn

log = logging.getLogger(__name__)

_ZOO: OrderedDict[tuple, ModelIndex] = OrderedDict()  # (name, classes, output stride) -> built model
_ZOO_SIZE = 16
_LOCK = threading.RLock()                            # a shared model runs one count at a time
_STATE: dict[str, Any] = {}                          # lazily built: the dispatch mode class, kernels


def zoo_model(name: str, num_classes: int | None, output_stride: int | None) -> ModelIndex:
    """A zoo model built on meta (in eval mode), shared by every count of that architecture."""
    import torch

    from hwbench.models import create_model

    key = (name, num_classes, output_stride)
    with _LOCK:
        index = _ZOO.get(key)
        if index is None:
            with torch.device("meta"):
                model = create_model(name, num_classes=num_classes, output_stride=output_stride)
            index = _ZOO[key] = ModelIndex(model.eval())
            while len(_ZOO) > _ZOO_SIZE:
                _ZOO.popitem(last=False)
        _ZOO.move_to_end(key)
        return index


def clear_zoo() -> None:
    """Forget the built architectures (benchmarks time a count from scratch)."""
    with _LOCK:
        _ZOO.clear()


def _mode_class() -> type:
    cls = _STATE.get("mode")
    if cls is None:
        from torch.utils._python_dispatch import TorchDispatchMode

        from hwbench.counting.shapes import kernels

        shape_only = kernels()
        packets: dict[Any, str] = {}

        class _CountingMode(TorchDispatchMode):
            """Runs each operator (shape-only where `shapes.py` knows it) and hands it to the tracer."""

            def __init__(self, tracer: Tracer | None) -> None:
                super().__init__()
                self.tracer = tracer

            @classmethod
            def _should_skip_dynamo(cls) -> bool:
                # Counting never runs under torch.compile; without this torch wraps __torch_dispatch__
                # in dynamo's "disable" (importing torch._dynamo, ~1.5 s, and a wrapper on every op).
                return False

            def __torch_dispatch__(self, func, types, args=(), kwargs=None):
                kwargs = kwargs or {}
                kernel = shape_only.get(func)
                out = kernel(args, kwargs) if kernel is not None else None
                if out is None:
                    out = func(*args, **kwargs)
                if self.tracer is None:  # shapes only (`input_shapes`)
                    return out
                packet = packets.get(func)
                if packet is None:
                    packet = packets[func] = func.overloadpacket.__name__
                tracer = self.tracer
                tracer.on_op(packet, args, out)
                for t in tensors(out):
                    if t.is_floating_point() and not t._is_view() and not any(t is a for a in args):
                        tracer.track_alive(t)
                return out

        cls = _STATE["mode"] = _CountingMode
    return cls


def input_shapes(name: str, shape: tuple[int, int, int, int], *, num_classes: int | None = None,
                 output_stride: int | None = None, types: tuple[type, ...] = ()) -> tuple[nn.Module, dict[str, tuple]]:
    """The shared meta model of a zoo architecture (read it, do not change it) and the input shape of
    each of its modules of `types` (all when empty) in one forward pass at `shape` (N, C, H, W),
    with the shape-only kernels: what a roofline needs beyond the count table (e.g. conv geometry)."""
    import torch

    index = zoo_model(name, num_classes, output_stride)
    model = index.model
    seen: dict[str, tuple] = {}

    def record(qual: str):
        def hook(_module: Any, args: tuple) -> None:
            if args and isinstance(args[0], torch.Tensor):
                seen.setdefault(qual, tuple(args[0].shape))
        return hook

    with _LOCK:
        hooks = [m.register_forward_pre_hook(record(q)) for q, m in model.named_modules()
                 if not types or isinstance(m, types)]
        try:
            with torch.no_grad(), _mode_class()(None):
                model(torch.empty(shape, device="meta"))
        except (RuntimeError, NotImplementedError, TypeError) as e:
            raise UserError(f"cannot run {name!r} at input {list(shape)} on the meta device: "
                            f"{str(e).splitlines()[0] if str(e) else type(e).__name__}") from None
        finally:
            for h in hooks:
                h.remove()
    return model, seen


def count_meta(model: nn.Module | ModelIndex, shape: tuple[int, int, int, int], ops: str, name: str) -> CountResult:
    """Count `model` (any module; real tensors are replaced by meta copies, the module is left as it
    was) or a prepared zoo `ModelIndex` at input `shape` (N, C, H, W)."""
    import torch

    shared = isinstance(model, ModelIndex)
    index = model if shared else ModelIndex(model)
    module = index.model
    replace: dict[str, Any] = {}
    if shared or all(t.is_meta for t in [*module.parameters(), *module.buffers()]):
        weight_ids = index.weight_ids()
    else:
        replace = {k: torch.empty_like(t, device="meta") for k, t in [*module.named_parameters(), *module.named_buffers()]}
        weight_ids = {id(t) for t in replace.values()}
    missing = sorted(set(index.head_modules) - index.children)
    if missing:
        log.warning("%s: head_modules %s are not children of the model; they count as nothing", name, missing)
    tracer = Tracer(index, handles(ops), weight_ids)
    mode = _mode_class()(tracer)
    with _LOCK:
        flags = None if shared else {m: m.training for m in module.modules()}
        if not shared:
            module.eval()
        tracer.attach()
        try:
            x = torch.empty(shape, device="meta")  # (N, C, H, W)
            with torch.no_grad(), mode:
                tracer.track_alive(x)
                out = torch.func.functional_call(module, replace, (x,)) if replace else module(x)
                del out, x
        except UserError:
            raise
        except (RuntimeError, NotImplementedError, TypeError) as e:
            raise UserError(f"cannot count {name!r} at input {list(shape)} on the meta device: "
                            f"{str(e).splitlines()[0] if str(e) else type(e).__name__}") from None
        finally:
            tracer.detach()
            if flags is not None:
                for m, flag in flags.items():
                    m.train(flag)
    params, weight_elems = index.totals()
    return CountResult(model=name, input=list(shape), macs=tracer.macs, params=params,
                       backbone_macs=tracer.macs - tracer.head_macs, head_macs=tracer.head_macs,
                       unsupported=dict(sorted(tracer.unsupported.items())), layers=tracer.layers(), ops=ops,
                       counter="meta", weight_elems=weight_elems, peak_activation_elems=tracer.peak_elems,
                       head_modules=index.head_modules)
