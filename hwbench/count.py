"""Operation counting: MACs and parameters, per leaf module, with a backbone/head split.

Units. A MAC is one multiply-accumulate; MACs are what we store. OPs = 2 x MACs (how vendors
count TOPS) is derived in exactly one place, `ops_from_macs`.

Counters.
- `meta` (default): builds the model on PyTorch's meta device (shapes only, no memory, no
  arithmetic) and runs one forward pass under a `TorchDispatchMode` that sees every ATen operator
  and applies the shape formulas below. Runs under `torch.no_grad()` (not `inference_mode`).
  Well under a second for any zoo model at 1024x2048.
- `fvcore`: fvcore's `FlopCountAnalysis` (JIT trace on real CPU tensors, about one real forward
  pass). The reference oracle: its conv/linear counts equal ours exactly.

What is counted (`ops=`):
- `convlinear` (the paper's "GOPs"): convolution (N x prod(weight shape) x prod(output spatial);
  transposed: input spatial), mm/addmm/bmm/baddbmm (M x K x N per matrix). Bias adds are not counted.
- `all` adds fvcore's default handles: batch norm (eval: 2 per element with affine, else 1;
  training: 5 / 4), group/layer norm (5 per element with affine, else 4), nearest upsampling
  (1 per output element), bilinear upsampling and grid sampling (4 per output element), adaptive
  average pooling (1 per input element; `mean` counts the same, because adaptive pooling to 1x1
  reaches the dispatcher as a mean).
- Everything else that does arithmetic (add, mul, activations such as hardswish, max pooling ...)
  is listed in `unsupported` (operator -> number of calls), fvcore-style: reported, not hidden.
  Pure data movement and metadata ops (view, cat, copy, relu, clamp ...; fvcore's ignore list)
  are neither counted nor reported.

Per-module table: one `LayerCount` per leaf module that ran (MACs of every operator inside it,
its own parameters, the elements it reads and writes), plus one row per operator called directly
in a non-leaf module's `forward` (e.g. the residual add, the final bilinear resize), named
`<module>.<op>` with kind `aten::<op>`. The roofline model reads this table.
"""

from __future__ import annotations

import logging
import weakref
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

from hwbench._callable import make_callable
from hwbench.errors import UserError, missing_package, unknown

if TYPE_CHECKING:  # pragma: no cover
    from torch import nn

log = logging.getLogger(__name__)

OPS_MODES = ("convlinear", "all")
COUNTERS = ("meta", "fvcore")
DEFAULT_INPUT = (1, 3, 1024, 2048)  # (N, C, H, W): a full Cityscapes frame, as in the paper
# The paper's Table 2 models, in its column order (Res-20, MNV3, Res-18, Res-50, Xc-65).
PAPER_MODELS = ("deeplabv3plus_resnet20", "deeplabv3plus_mobilenetv3_small", "deeplabv3plus_resnet18",
                "deeplabv3plus_resnet50", "deeplabv3plus_xception65")


def ops_from_macs(macs: int | float) -> int | float:
    """OPs (the unit of vendor TOPS) from MACs: one multiply-accumulate = 2 operations."""
    return 2 * macs


@dataclass(frozen=True)
class LayerCount:
    """Cost of one leaf module (or one operator called directly in a non-leaf forward)."""

    name: str           # qualified module name, or "<module>.<op>" for a functional operator
    kind: str           # module class name, or "aten::<op>"
    macs: int
    params: int         # trainable parameters owned by this module
    input_elems: int    # activation elements read
    output_elems: int   # activation elements written
    weight_elems: int   # parameter + floating buffer elements read (e.g. BN running stats)
    calls: int = 1      # times the module ran in one forward pass (figures are summed over calls)


@dataclass(frozen=True)
class CountResult:
    """MACs and parameters of one model at one input shape."""

    model: str
    input: list[int]                # [N, C, H, W]
    macs: int
    params: int
    backbone_macs: int
    head_macs: int
    unsupported: dict[str, int]     # "aten::<op>" -> calls; ops with arithmetic we do not count
    layers: tuple[LayerCount, ...]
    ops: str = "convlinear"
    counter: str = "meta"
    weight_elems: int = 0           # parameters + floating buffers (what inference reads as weights)
    peak_activation_elems: int = 0  # most activation elements alive at once in eager execution
    head_modules: tuple[str, ...] = field(default_factory=tuple)

    @property
    def gmacs(self) -> float:
        return self.macs / 1e9

    @property
    def ops_count(self) -> int:
        """OPs = 2 x MACs (see `ops_from_macs`)."""
        return ops_from_macs(self.macs)

    def record(self, *, per_module: bool = False) -> dict[str, Any]:
        """A JSON-ready record; `per_module` adds the layer table."""
        rec = {"model": self.model, "input": list(self.input), "macs": self.macs, "gmacs": self.gmacs,
               "ops": ops_from_macs(self.macs), "params": self.params, "backbone_macs": self.backbone_macs,
               "head_macs": self.head_macs, "unsupported": dict(self.unsupported),
               "counted": self.ops, "counter": self.counter, "weight_elems": self.weight_elems,
               "peak_activation_elems": self.peak_activation_elems}
        if per_module:
            rec["layers"] = [asdict(layer) for layer in self.layers]
        return rec


# ------------------------------------------------------------------------------ shape formulas
def _numel(shape: Sequence[int]) -> int:
    n = 1
    for s in shape:
        n *= int(s)
    return n


def _conv_macs(args: tuple, out: Any) -> int:
    # convolution(input, weight, bias, stride, padding, dilation, transposed, output_padding, groups)
    x, w = args[0], args[1]
    transposed = bool(args[6]) if len(args) > 6 else False
    spatial = (x.shape if transposed else out.shape)[2:]
    return int(x.shape[0]) * _numel(w.shape) * _numel(spatial)


def _mm_macs(args: tuple, out: Any) -> int:          # mm(a (M, K), b (K, N)); bmm(a (B, M, K), b (B, K, N))
    return _numel(args[0].shape) * int(args[1].shape[-1])


def _addmm_macs(args: tuple, out: Any) -> int:       # addmm(bias, a, b); baddbmm(bias, a, b)
    return _numel(args[1].shape) * int(args[2].shape[-1])


def _batch_norm_macs(args: tuple, out: Any) -> int:
    # native_batch_norm(x, w, b, mean, var, training, ...); _legit_no_training has no flag (eval)
    training = next((a for a in args[1:] if isinstance(a, bool)), False)
    affine = args[1] is not None
    per_elem = (5 if affine else 4) if training else (2 if affine else 1)
    return _numel(args[0].shape) * per_elem


def _norm_macs(weight_index: int) -> Callable[[tuple, Any], int]:
    def handle(args: tuple, out: Any) -> int:
        affine = len(args) > weight_index and args[weight_index] is not None
        return _numel(args[0].shape) * (5 if affine else 4)
    return handle


def _per_output(scale: int) -> Callable[[tuple, Any], int]:
    def handle(args: tuple, out: Any) -> int:
        first = out[0] if isinstance(out, (tuple, list)) else out
        return scale * _numel(first.shape)
    return handle


def _per_input(args: tuple, out: Any) -> int:
    return _numel(args[0].shape)


Handle = Callable[[tuple, Any], int]
# ATen overload-packet name -> MAC formula. The paper's "GOPs": convolutions and matrix products.
CONVLINEAR_HANDLES: dict[str, Handle] = {
    "convolution": _conv_macs,
    "_convolution": _conv_macs,
    "mm": _mm_macs,
    "bmm": _mm_macs,
    "addmm": _addmm_macs,
    "baddbmm": _addmm_macs,
}
# Added by ops="all" (fvcore's default handles, same formulas).
EXTRA_HANDLES: dict[str, Handle] = {
    "native_batch_norm": _batch_norm_macs,
    "_native_batch_norm_legit": _batch_norm_macs,
    "_native_batch_norm_legit_no_training": _batch_norm_macs,
    "native_group_norm": _norm_macs(1),
    "native_layer_norm": _norm_macs(2),
    "upsample_nearest2d": _per_output(1),
    "upsample_bilinear2d": _per_output(4),
    "grid_sampler_2d": _per_output(4),
    "_adaptive_avg_pool2d": _per_input,
    "mean": _per_input,
}
# No arithmetic (metadata, allocation, data movement) or ignored by fvcore: neither counted nor
# reported as unsupported. Mirrors fvcore's _IGNORED_OPS at the dispatcher level.
IGNORED_OPS = frozenset({
    "view", "_unsafe_view", "reshape", "t", "transpose", "permute", "expand", "slice", "select",
    "squeeze", "unsqueeze", "unsqueeze_", "alias", "detach", "as_strided", "unbind", "split",
    "split_with_sizes", "chunk", "narrow", "flatten", "contiguous", "clone", "_to_copy", "copy_",
    "to", "lift_fresh", "empty", "empty_like", "empty_strided", "new_empty", "new_empty_strided",
    "zeros", "zeros_like", "new_zeros", "ones", "ones_like", "new_ones", "full", "full_like",
    "new_full", "arange", "cat", "stack", "constant_pad_nd", "relu", "relu_", "clamp", "clamp_",
    "clamp_min", "clamp_min_", "dropout", "eq", "ge", "gt", "floor", "floor_divide", "remainder",
    "index", "index_put_", "gather", "masked_fill", "max", "nonzero", "roll", "bitwise_not",
    "bitwise_and", "fill_", "zero_", "scalar_tensor", "_local_scalar_dense", "sym_size", "sym_stride",
})
# Dispatcher name -> the name fvcore's JIT trace reports, so both counters list the same ops.
_FVCORE_NAME = {"max_pool2d_with_indices": "max_pool2d", "max_pool3d_with_indices": "max_pool3d"}
# fvcore operator names of EXTRA_HANDLES (ignored, not "unsupported", when only conv/linear count).
_FVCORE_EXTRA = ("aten::batch_norm", "aten::group_norm", "aten::layer_norm", "aten::instance_norm",
                 "aten::upsample_nearest2d", "aten::upsample_bilinear2d", "aten::adaptive_avg_pool2d",
                 "aten::grid_sampler", "aten::mean")


def _handles(ops: str) -> dict[str, Handle]:
    return {**CONVLINEAR_HANDLES, **EXTRA_HANDLES} if ops == "all" else dict(CONVLINEAR_HANDLES)


# --------------------------------------------------------------------------------- validation
def check_input_shape(input_shape: Sequence[int]) -> tuple[int, int, int, int]:
    """(N, C, H, W) of positive integers, else `UserError`."""
    try:
        shape = tuple(input_shape)
    except TypeError:
        raise UserError(f"input shape must be (N, C, H, W), got {input_shape!r}") from None
    if len(shape) != 4 or not all(isinstance(s, int) and not isinstance(s, bool) and s > 0 for s in shape):
        raise UserError(f"input shape must be 4 positive integers (N, C, H, W), got {list(shape)}")
    return shape  # type: ignore[return-value]


def parse_hw(text: str) -> tuple[int, int]:
    """'1024x2048' -> (1024, 2048); anything else is a `UserError`."""
    parts = str(text).lower().replace("×", "x").split("x")
    try:
        h, w = (int(p) for p in parts)
    except ValueError:
        raise UserError(f"--input must be HxW (e.g. 1024x2048), got {text!r}") from None
    if h <= 0 or w <= 0:
        raise UserError(f"--input must be positive HxW (e.g. 1024x2048), got {text!r}")
    return h, w


def _check_mode(ops: str, counter: str) -> None:
    if ops not in OPS_MODES:
        raise unknown("ops mode", ops, OPS_MODES)
    if counter not in COUNTERS:
        raise unknown("counter", counter, COUNTERS)


# ------------------------------------------------------------------------------------- public
def count(model_or_name: str | nn.Module, input_shape: Sequence[int] = DEFAULT_INPUT, *,
          num_classes: int | None = None, ops: str = "convlinear", counter: str = "meta") -> CountResult:
    """Count MACs and parameters of a zoo model (by name) or any `nn.Module`.

    `input_shape` is (N, C, H, W). `num_classes` is used only when building a zoo model by name
    (None: the model's own default, 19 for DeepLabv3+, 1000 for ImageNet classifiers).
    `ops`: "convlinear" (the paper's GOPs) or "all" (adds norm, resize, adaptive pooling).
    `counter`: "meta" (default; no arithmetic) or "fvcore" (reference; real CPU forward).
    A given module is not modified (its train/eval flags are restored).
    """
    _check_mode(ops, counter)
    shape = check_input_shape(input_shape)
    name, model = _resolve(model_or_name, num_classes, on_meta=(counter == "meta"))
    if counter == "fvcore":
        return _count_fvcore(model, shape, ops, name)
    return _count_meta(model, shape, ops, name)


def model_label(name: str) -> str:
    """The paper's display label (Res-18, ...) of a zoo model name, else the name itself."""
    try:
        from hwbench.models import model_info

        return model_info(name).label
    except (UserError, ImportError):
        return name


def _resolve(model_or_name: str | nn.Module, num_classes: int | None, *, on_meta: bool) -> tuple[str, nn.Module]:
    import torch

    if isinstance(model_or_name, str):
        from hwbench.models import create_model

        if on_meta:
            with torch.device("meta"):
                return model_or_name, create_model(model_or_name, num_classes=num_classes)
        return model_or_name, create_model(model_or_name, num_classes=num_classes)
    if isinstance(model_or_name, torch.nn.Module):
        return getattr(model_or_name, "name", None) or type(model_or_name).__name__, model_or_name
    raise UserError(f"expected a model name or an nn.Module, got {type(model_or_name).__name__}")


class _Row:
    """Mutable accumulator for one LayerCount while counting."""

    __slots__ = ("name", "kind", "macs", "params", "input_elems", "output_elems", "weight_elems", "calls")

    def __init__(self, name: str, kind: str, params: int = 0, weight_elems: int = 0) -> None:
        self.name, self.kind, self.params, self.weight_elems = name, kind, params, weight_elems
        self.macs = self.input_elems = self.output_elems = self.calls = 0

    def freeze(self) -> LayerCount:
        return LayerCount(self.name, self.kind, self.macs, self.params, self.input_elems,
                          self.output_elems, self.weight_elems, max(self.calls, 1))


def _tensors(obj: Any) -> list:
    import torch

    if isinstance(obj, torch.Tensor):
        return [obj]
    if isinstance(obj, (tuple, list)):
        return [t for o in obj for t in _tensors(o)]
    if isinstance(obj, dict):
        return [t for o in obj.values() for t in _tensors(o)]
    return []


def _elems(obj: Any) -> int:
    return sum(t.numel() for t in _tensors(obj))


class _Tracer:
    """Module stack (from hooks) + per-operator accounting (from the dispatch mode)."""

    def __init__(self, model: nn.Module, handles: dict[str, Handle], head_modules: tuple[str, ...],
                 weight_ids: set[int]) -> None:
        self.handles = handles
        self.head_modules = set(head_modules)
        self.weight_ids = weight_ids
        self.stack: list[tuple[str, bool]] = []
        self.rows: dict[str, _Row] = {}
        self.functional_seen: Counter[str] = Counter()
        self.unsupported: Counter[str] = Counter()
        self.macs = 0
        self.head_macs = 0
        self.live_elems = 0
        self.peak_elems = 0
        self.hooks: list = []
        for qual, mod in model.named_modules():
            leaf = next(mod.children(), None) is None
            self.hooks.append(mod.register_forward_pre_hook(self._pre(qual, leaf)))
            self.hooks.append(mod.register_forward_hook(self._post(qual, leaf), always_call=True))

    def remove(self) -> None:
        for h in self.hooks:
            h.remove()

    def _pre(self, qual: str, leaf: bool):
        def hook(module, inputs):
            self.stack.append((qual, leaf))
            if leaf:
                row = self.rows.get(qual)
                if row is None:
                    params = sum(p.numel() for p in module.parameters(recurse=False))
                    weights = params + sum(b.numel() for b in module.buffers(recurse=False)
                                           if b.is_floating_point())
                    row = self.rows[qual] = _Row(qual, type(module).__name__, params, weights)
                row.calls += 1
                row.input_elems += _elems(inputs)
        return hook

    def _post(self, qual: str, leaf: bool):
        def hook(module, inputs, output):
            if self.stack and self.stack[-1][0] == qual:
                self.stack.pop()
            if leaf:
                self.rows[qual].output_elems += _elems(output)
        return hook

    def track_alive(self, tensor) -> None:
        """Count a new activation tensor as alive until Python frees it (peak activation memory)."""
        n = tensor.numel()
        self.live_elems += n
        self.peak_elems = max(self.peak_elems, self.live_elems)
        weakref.finalize(tensor, self._free, n)

    def _free(self, n: int) -> None:
        self.live_elems -= n

    def on_op(self, packet: str, args: tuple, out: Any) -> None:
        owner, in_leaf = self.stack[-1] if self.stack else ("", False)
        handle = self.handles.get(packet)
        macs = int(handle(args, out)) if handle is not None else 0
        if handle is None and packet not in IGNORED_OPS and packet not in EXTRA_HANDLES:
            self.unsupported[f"aten::{_FVCORE_NAME.get(packet, packet)}"] += 1
        self.macs += macs
        if owner.split(".")[0] in self.head_modules:
            self.head_macs += macs
        if in_leaf:
            self.rows[owner].macs += macs
            return
        if packet in IGNORED_OPS and macs == 0:
            return
        base = f"{owner}.{packet}" if owner else packet
        k = self.functional_seen[base]
        self.functional_seen[base] += 1
        name = base if k == 0 else f"{base}_{k}"
        row = self.rows[name] = _Row(name, f"aten::{packet}")
        row.calls = 1
        row.macs = macs
        for a in _tensors(list(args)):
            if id(a) in self.weight_ids:
                row.weight_elems += a.numel()
            else:
                row.input_elems += a.numel()
        row.output_elems = _elems(out)


def _meta_batch_norm(x, weight, bias, running_mean, running_var, training, momentum, eps):
    """Shapes of `native_batch_norm` on meta tensors without torch's Python decomposition (which
    dominates the counting time): output like the input, per-channel saved mean and inverse std."""
    import torch

    stat_dtype = torch.float32 if x.dtype in (torch.float16, torch.bfloat16) else x.dtype
    c = x.shape[1]
    return (torch.empty_like(x), x.new_empty((c,), dtype=stat_dtype), x.new_empty((c,), dtype=stat_dtype))


def _meta_fast_paths() -> dict:
    import torch

    return {torch.ops.aten.native_batch_norm.default: _meta_batch_norm}


def _count_meta(model: nn.Module, shape: tuple[int, int, int, int], ops: str, name: str) -> CountResult:
    import torch
    from torch.utils._python_dispatch import TorchDispatchMode

    on_meta = all(t.device.type == "meta" for t in [*model.parameters(), *model.buffers()])
    replace = {}
    if not on_meta:
        replace = {k: torch.empty_like(t, device="meta")
                   for k, t in [*model.named_parameters(), *model.named_buffers()]}
        weight_ids = {id(t) for t in replace.values()}
    else:
        weight_ids = {id(t) for t in [*model.parameters(), *model.buffers()]}
    head_modules = tuple(getattr(model, "head_modules", ()) or ())
    missing = sorted(set(head_modules) - {n for n, _ in model.named_children()})
    if missing:
        log.warning("%s: head_modules %s are not children of the model; they count as nothing", name, missing)
    _META_FAST = _meta_fast_paths()
    tracer = _Tracer(model, _handles(ops), head_modules, weight_ids)

    class _Mode(TorchDispatchMode):
        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            fast = _META_FAST.get(func)
            if fast is not None and not kwargs and args[0].device.type == "meta":
                out = fast(*args)
            else:
                out = func(*args, **(kwargs or {}))
            tracer.on_op(func.overloadpacket.__name__, args, out)
            for t in _tensors(out):
                if t.is_floating_point() and not t._is_view() and not any(t is a for a in args):
                    tracer.track_alive(t)
            return out

    flags = {m: m.training for m in model.modules()}
    model.eval()
    try:
        x = torch.empty(shape, device="meta")  # (N, C, H, W)
        with torch.no_grad(), _Mode():
            tracer.track_alive(x)
            if replace:
                out = torch.func.functional_call(model, replace, (x,))
            else:
                out = model(x)
            del out, x
    except UserError:
        raise
    except (RuntimeError, NotImplementedError, TypeError) as e:
        raise UserError(f"cannot count {name!r} at input {list(shape)} on the meta device: "
                        f"{str(e).splitlines()[0] if str(e) else type(e).__name__}") from None
    finally:
        tracer.remove()
        for m, flag in flags.items():
            m.train(flag)

    params = sum(p.numel() for p in model.parameters())
    weight_elems = params + sum(b.numel() for b in model.buffers() if b.is_floating_point())
    layers = tuple(r.freeze() for r in tracer.rows.values())
    return CountResult(model=name, input=list(shape), macs=tracer.macs, params=params,
                       backbone_macs=tracer.macs - tracer.head_macs, head_macs=tracer.head_macs,
                       unsupported=dict(sorted(tracer.unsupported.items())), layers=layers, ops=ops,
                       counter="meta", weight_elems=weight_elems, peak_activation_elems=tracer.peak_elems,
                       head_modules=head_modules)


def _count_fvcore(model: nn.Module, shape: tuple[int, int, int, int], ops: str, name: str) -> CountResult:
    """fvcore's FlopCountAnalysis on a real CPU forward (its 'flops' are MACs).

    For `convlinear` its handles are restricted to conv/linear/matmul and the `all`-mode operators
    are ignored, so the totals equal the meta counter's exactly. Layer io sizes come from a meta
    pass; each leaf's MACs from fvcore's per-module figures.
    """
    import torch

    try:
        from fvcore.nn import FlopCountAnalysis
        from fvcore.nn import jit_handles as jh
    except ImportError:
        raise missing_package("fvcore", "dev") from None
    if any(t.device.type == "meta" for t in model.parameters()):
        raise UserError("the fvcore counter needs real tensors; pass a model name or a CPU model")

    structure = _count_meta(model, shape, ops, name)
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
                fca.set_op_handle(**{k: None for k in _FVCORE_EXTRA})
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


make_callable(__name__)


def input_shape_from_hw(text: str | None, *, batch: int = 1, channels: int = 3) -> tuple[int, int, int, int]:
    """(N, C, H, W) from an `--input HxW` string (None: the paper's 1024x2048) and `--batch N`."""
    h, w = parse_hw(text) if text is not None else DEFAULT_INPUT[2:]
    return check_input_shape((batch, channels, h, w))
