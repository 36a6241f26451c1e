"""The ONNX counter: MACs and parameters read from an ONNX graph itself, after ONNX shape inference.

    count_onnx(path, input_shape=None, ops="convlinear") -> CountResult (counter="onnx")

Formulas (the torch counter's, `formulas.py`, applied to ONNX operators; one MAC = one multiply-add):
- `convlinear`: Conv N x prod(W) x prod(output spatial) (W is (M, C/groups, k...), so groups,
  dilation, strides and pads enter through the output shape); ConvTranspose the same with the
  *input* spatial size; Gemm M x K x N; MatMul prod(output batch dims) x M x K x N (batched and
  broadcast; a 1-d operand counts as a matrix with one row or column). Bias adds are not counted.
- `all` adds: BatchNormalization 2 per element (ONNX's is always affine); LayerNormalization,
  GroupNormalization, InstanceNormalization 5 per element; Resize 1 per output element (nearest) or
  4 (linear); GridSample 4 per output element; GlobalAveragePool and ReduceMean 1 per input element.
- Every other operator that does arithmetic is listed in `unsupported` as `onnx::<Op>` -> nodes;
  data movement and shape arithmetic (`_IGNORED`) is neither counted nor listed.

Parameters: elements of the float initializers a node reads as trainable weights (Conv/ConvTranspose
W and B, Gemm B and C, a MatMul operand, normalisation scale and bias, PRelu slope); BatchNormalization
running statistics count as weights (`weight_elems`), not parameters, as the torch counter does.
Exporters that fold batch norm into the convolution (torch's default `do_constant_folding=True`) leave
fewer parameters than the PyTorch module had; the MACs do not change.

Dynamic dimensions: `input_shape` (N, C, H, W) fixes the first graph input; a graph with a dynamic
dimension and no `input_shape` is refused in one line naming the input, and so is an `input_shape`
that contradicts a static one. Control flow (`Loop`, `If`, `Scan`) is refused in one line naming the
node. External data (weights in files beside the graph) is read from the file's directory.

One `LayerCount` per node with float outputs (shape arithmetic is left out), kind `onnx::<Op>`;
activation and weight element counts feed the roofline (`hwbench.latency.roofline`). The peak of live
activation elements follows the graph's node order, each tensor freed after its last reader.
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from hwbench.counting.formulas import numel
from hwbench.counting.result import CountResult, LayerCount
from hwbench.errors import UserError, missing_package

CONTROL_FLOW = frozenset({"Loop", "If", "Scan"})
# Operators without arithmetic (data movement, shape arithmetic, casts) or ignored by the torch
# counter (relu, clamp, max, comparisons): neither counted nor listed as unsupported.
_IGNORED = frozenset({
    "Identity", "Constant", "ConstantOfShape", "Shape", "Size", "Reshape", "Flatten", "Squeeze", "Unsqueeze",
    "Transpose", "Concat", "Split", "Slice", "Gather", "GatherElements", "GatherND", "Scatter", "ScatterND",
    "ScatterElements", "Expand", "Tile", "Pad", "Cast", "CastLike", "Range", "Dropout", "Relu", "Clip", "Max",
    "Min", "Equal", "Greater", "GreaterOrEqual", "Less", "LessOrEqual", "Not", "And", "Or", "Where", "NonZero",
    "Floor", "Ceil", "Round", "DepthToSpace", "SpaceToDepth", "ArgMax", "ArgMin", "TopK", "OneHot",
})
# (op type, input index) of the inputs that are trainable parameters when they are initializers.
_PARAM_INPUTS: dict[str, tuple[int, ...]] = {
    "Conv": (1, 2), "ConvTranspose": (1, 2), "Gemm": (0, 1, 2), "MatMul": (0, 1), "BatchNormalization": (1, 2),
    "LayerNormalization": (1, 2), "GroupNormalization": (1, 2), "InstanceNormalization": (1, 2), "PRelu": (1,),
}
_FLOAT_TYPES = frozenset({1, 10, 11, 16})  # onnx.TensorProto FLOAT, FLOAT16, DOUBLE, BFLOAT16

Shapes = dict[str, tuple[int, ...]]


# ------------------------------------------------------------------------------------ formulas
def _conv(node: Any, ins: list, outs: list, attrs: dict) -> int:
    x, w, y = ins[0], ins[1], outs[0]           # X (N, C, *), W (M, C/g, *k), Y (N, M, *)
    return x[0] * numel(w) * numel(y[2:])


def _conv_transpose(node: Any, ins: list, outs: list, attrs: dict) -> int:
    x, w = ins[0], ins[1]                       # X (N, C, *), W (C, M/g, *k): each input pixel scatters W
    return x[0] * numel(w) * numel(x[2:])


def _gemm(node: Any, ins: list, outs: list, attrs: dict) -> int:
    a, y = ins[0], outs[0]                      # A (M, K) or (K, M) with transA, Y (M, N)
    k = a[0] if attrs.get("transA", 0) else a[1]
    return y[0] * k * y[1]


def _matmul(node: Any, ins: list, outs: list, attrs: dict) -> int:
    a, b = ins[0], ins[1]                       # (..., M, K) x (..., K, N) -> (..., M, N), numpy semantics
    k = a[-1]
    m = a[-2] if len(a) > 1 else 1
    n = b[-1] if len(b) > 1 else 1
    batch = numel(outs[0][:-2]) if len(a) > 1 and len(b) > 1 else numel(outs[0][:-1])
    return batch * m * k * n


def _per_elem(scale: int) -> Callable[..., int]:
    def handle(node: Any, ins: list, outs: list, attrs: dict) -> int:
        return scale * numel(ins[0])
    return handle


def _resize(node: Any, ins: list, outs: list, attrs: dict) -> int | None:
    mode = attrs.get("mode", b"nearest")
    mode = mode.decode() if isinstance(mode, bytes) else str(mode)
    per = {"nearest": 1, "linear": 4}.get(mode)
    return None if per is None else per * numel(outs[0])  # cubic: unsupported


def _grid_sample(node: Any, ins: list, outs: list, attrs: dict) -> int:
    return 4 * numel(outs[0])


Handle = Callable[[Any, list, list, dict], "int | None"]
CONVLINEAR: dict[str, Handle] = {"Conv": _conv, "ConvTranspose": _conv_transpose, "Gemm": _gemm, "MatMul": _matmul}
EXTRA: dict[str, Handle] = {
    "BatchNormalization": _per_elem(2), "LayerNormalization": _per_elem(5), "GroupNormalization": _per_elem(5),
    "InstanceNormalization": _per_elem(5), "Resize": _resize, "Upsample": _resize, "GridSample": _grid_sample,
    "GlobalAveragePool": _per_elem(1), "ReduceMean": _per_elem(1),
}


# ------------------------------------------------------------------------------------- loading
def load_graph(path: str | os.PathLike) -> Any:
    """The ONNX model at `path` with its external data; `UserError` for a missing or broken file."""
    try:
        import onnx
    except ImportError:
        raise missing_package("onnx") from None
    p = Path(path)
    if not p.is_file():
        raise UserError(f"ONNX file {str(p)!r} not found; check the path")
    try:
        model = onnx.load(str(p), load_external_data=False)
    except Exception as e:  # noqa: BLE001 - DecodeError and friends
        raise UserError(f"{p} is not an ONNX model ({_first(e)}); check the file") from None
    try:
        onnx.load_external_data_for_model(model, str(p.parent))
    except Exception as e:  # noqa: BLE001 - OSError, ValidationError (a missing or unsafe data file)
        raise UserError(f"{p}: cannot read its external data ({_first(e)}); keep the weight files beside it") from None
    for node in _walk(model.graph):
        if node.op_type in CONTROL_FLOW:
            raise UserError(f"{p}: node {node.name or node.output[0]!r} is a {node.op_type} (control flow); "
                            "the ONNX counter counts straight-line graphs only (export without data-dependent "
                            "control flow)")
    return model


def graph_inputs(model: Any) -> list[tuple[str, list[int | str]]]:
    """(name, dims) of the graph inputs that are not initializers: ints static, strings dynamic."""
    init = {i.name for i in model.graph.initializer}
    return [(i.name, [d.dim_value if d.HasField("dim_value") and d.dim_value > 0 else (d.dim_param or "?")
                      for d in i.type.tensor_type.shape.dim]) for i in model.graph.input if i.name not in init]


def static_input_shape(model: Any) -> tuple[int, ...] | None:
    """The first graph input's shape when every dimension is static, else None."""
    inputs = graph_inputs(model)
    if not inputs:
        return None
    dims = inputs[0][1]
    return tuple(dims) if all(isinstance(d, int) for d in dims) else None  # type: ignore[arg-type]


def _walk(graph: Any):
    for node in graph.node:
        yield node
        for a in node.attribute:
            if a.g is not None and a.g.node:
                yield from _walk(a.g)


def _first(e: BaseException) -> str:
    return ((str(e).strip().splitlines() or [type(e).__name__])[0])[:160]


def _fix_inputs(model: Any, light: Any, where: str, input_shape: Sequence[int] | None) -> None:
    """Set the first input's dims in `light` to `input_shape` (refusing a contradiction with `model`'s);
    refuse dynamic dimensions left."""
    inputs = graph_inputs(model)
    if not inputs:
        raise UserError(f"{where} has no graph inputs; check the file")
    name, dims = inputs[0]
    first = next(i for i in light.graph.input if i.name == name)
    if input_shape is not None:
        shape = [int(s) for s in input_shape]
        if len(shape) != len(dims):
            raise UserError(f"{where}: input {name!r} has {len(dims)} dimensions ({_dims(dims)}); "
                            f"--input gives {len(shape)} ({_dims(shape)})")
        clash = [i for i, (d, s) in enumerate(zip(dims, shape, strict=True)) if isinstance(d, int) and d != s]
        if clash:
            raise UserError(f"{where}: input {name!r} is fixed at {_dims(dims)}, not {_dims(shape)}; drop --input/"
                            "--batch or re-export the model with dynamic dimensions")
        for d, s in zip(first.type.tensor_type.shape.dim, shape, strict=True):
            d.ClearField("dim_param")
            d.dim_value = s
    for n, ds in inputs[1 if input_shape is not None else 0:]:
        if not all(isinstance(d, int) for d in ds):
            raise UserError(f"{where}: input {n!r} has dynamic dimensions ({_dims(ds)}); fix them with --input HxW "
                            "(and --batch N)" + ("" if n == name else " (only the first input can be fixed)"))


def _dims(dims: Sequence[Any]) -> str:
    return "x".join(str(d) for d in dims)


_SMALL_INIT = 64  # initializers up to this many elements stay in the graph shape inference sees (shape constants)


def _light(model: Any) -> Any:
    """A copy of `model` for shape inference without the weights' bytes: large initializers become graph
    inputs of the same type and shape (inference needs their dims, not their values)."""
    import onnx
    from onnx import helper

    g = model.graph
    small = [i for i in g.initializer if numel(i.dims) <= _SMALL_INIT]
    big = [helper.make_tensor_value_info(i.name, i.data_type, list(i.dims)) for i in g.initializer
           if numel(i.dims) > _SMALL_INIT]
    taken = {i.name for i in g.input}
    graph = helper.make_graph(list(g.node), g.name or "graph", [*g.input, *(v for v in big if v.name not in taken)],
                              list(g.output), initializer=small, value_info=list(g.value_info))
    light = helper.make_model(graph, opset_imports=list(model.opset_import), ir_version=model.ir_version)
    light.functions.extend(model.functions)
    return light if isinstance(light, onnx.ModelProto) else model


def _infer(light: Any, model: Any, where: str) -> tuple[Any, Shapes, dict[str, int]]:
    """Shape inference on `light` (see `_light`); (inferred model, tensor name -> static shape, tensor name ->
    element type), initializers' from `model`."""
    import onnx

    try:
        inferred = onnx.shape_inference.infer_shapes(light, strict_mode=False, data_prop=True)
    except Exception as e:  # noqa: BLE001 - InferenceError and friends
        raise UserError(f"{where}: ONNX shape inference failed ({_first(e)}); check the file with onnx.checker") from None
    shapes: Shapes = {}
    types: dict[str, int] = {}
    g = inferred.graph
    for vi in [*g.input, *g.value_info, *g.output]:
        t = vi.type.tensor_type
        types[vi.name] = t.elem_type
        if t.HasField("shape") and all(d.HasField("dim_value") for d in t.shape.dim):
            shapes[vi.name] = tuple(int(d.dim_value) for d in t.shape.dim)
    for init in model.graph.initializer:
        shapes[init.name] = tuple(int(d) for d in init.dims)
        types[init.name] = init.data_type
    return inferred, shapes, types


# -------------------------------------------------------------------------------------- public
def count_onnx(path: str | os.PathLike, input_shape: Sequence[int] | None = None, ops: str = "convlinear", *,
               name: str | None = None, model: Any = None) -> CountResult:
    """Count an ONNX file (or an already loaded `model`) at `input_shape` (None: the file's static shape)."""
    where = str(path)
    model = model if model is not None else load_graph(path)
    light = _light(model)
    _fix_inputs(model, light, where, input_shape)
    inferred, shapes, types = _infer(light, model, where)
    g = inferred.graph
    initializers = _constants(model)
    table = {**CONVLINEAR, **(EXTRA if ops == "all" else {})}
    counted = set(CONVLINEAR) | set(EXTRA)
    unsupported: Counter[str] = Counter()
    layers: list[LayerCount] = []
    params_seen: set[str] = set()
    weights_seen: set[str] = set()
    params = weight_elems = macs = 0
    last_use = _last_use(g)
    live: dict[str, int] = {}
    x_name = graph_inputs(model)[0][0]
    live_elems = peak = numel(shapes.get(x_name, ()))
    live[x_name] = live_elems
    for i, node in enumerate(g.node):
        op = node.op_type
        attrs = {a.name: _attr(a) for a in node.attribute}
        ins = [shapes.get(t) if t else None for t in node.input]
        outs = [shapes.get(t) for t in node.output]
        node_name = node.name or (node.output[0] if node.output else f"node{i}")
        node_macs = 0
        if op in table:
            need = [0, 1] if op in CONVLINEAR else [0]
            if any(j >= len(ins) or ins[j] is None for j in need) or not outs or outs[0] is None:
                missing = next((node.input[j] for j in need if j < len(ins) and ins[j] is None), node.output[0])
                raise UserError(f"{where}: node {node_name!r} ({op}): shape of {missing!r} unknown after shape "
                                "inference; fix the input size with --input HxW or re-export with static shapes")
            got = table[op](node, ins, outs, attrs)
            if got is None:
                unsupported[f"onnx::{op}"] += 1
            else:
                node_macs = int(got)
        elif op not in _IGNORED and not (ops == "convlinear" and op in counted):
            unsupported[f"onnx::{op}"] += 1
        macs += node_macs
        p_here = w_here = a_in = 0
        for j, t in enumerate(node.input):
            if not t:
                continue
            size = numel(shapes[t]) if t in shapes else 0
            if t in initializers:
                if types.get(t) not in _FLOAT_TYPES:
                    continue
                w_here += size
                if t not in weights_seen:
                    weights_seen.add(t)
                    weight_elems += size
                if j in _PARAM_INPUTS.get(op, ()):
                    p_here += size
                    if t not in params_seen:
                        params_seen.add(t)
                        params += size
            elif types.get(t) in _FLOAT_TYPES:
                a_in += size
        constant = all(t in initializers or not t for t in node.input)
        float_outs = [] if constant else [t for t in node.output if t and types.get(t) in _FLOAT_TYPES]
        a_out = sum(numel(shapes[t]) for t in float_outs if t in shapes)
        for t in float_outs:
            if t in shapes:
                live[t] = numel(shapes[t])
                live_elems += live[t]
        peak = max(peak, live_elems)
        for t in {t for t in node.input if t and last_use.get(t) == i and t in live}:
            live_elems -= live.pop(t)
        if float_outs:
            layers.append(LayerCount(node_name, f"onnx::{op}", node_macs, p_here, a_in, a_out, w_here))
    shape = list(input_shape) if input_shape is not None else list(shapes.get(x_name, ()))
    return CountResult(model=name or Path(path).stem, input=shape, macs=macs, params=params, backbone_macs=macs,
                       head_macs=0, unsupported=dict(sorted(unsupported.items())), layers=tuple(layers), ops=ops,
                       counter="onnx", weight_elems=weight_elems, peak_activation_elems=peak)


def _constants(model: Any) -> set[str]:
    """Names of the graph's constants: initializers, and Identity copies of them (torch's exporter writes one
    initializer for equal weights and an Identity per module that had its own)."""
    names = {i.name for i in model.graph.initializer}
    for node in model.graph.node:
        if node.op_type == "Identity" and node.input and node.input[0] in names:
            names.update(node.output)
    return names


def _last_use(g: Any) -> dict[str, int]:
    last: dict[str, int] = {}
    for i, node in enumerate(g.node):
        for t in node.input:
            last[t] = i
    for o in g.output:  # graph outputs stay alive to the end
        last[o.name] = len(g.node)
    return last


def _attr(a: Any) -> Any:
    import onnx

    return onnx.helper.get_attribute_value(a)


def conv_geometry(model: Any, input_shape: Sequence[int] | None = None, where: str = "model.onnx") -> dict[str, tuple]:
    """Node name -> (geometry, input shape) of every Conv: geometry has the attributes of a torch Conv2d the
    latency terms read (groups, kernel_size, stride, padding (the leading pads), dilation)."""
    from types import SimpleNamespace

    light = _light(model)
    _fix_inputs(model, light, where, input_shape)
    _, shapes, _ = _infer(light, model, where)
    out = {}
    for i, node in enumerate(model.graph.node):
        if node.op_type != "Conv" or len(node.input) < 2 or node.input[0] not in shapes:
            continue
        attrs = {a.name: _attr(a) for a in node.attribute}
        w = shapes.get(node.input[1], ())
        k = tuple(w[2:])
        n = len(k)
        pads = tuple(attrs.get("pads", [0] * 2 * n))[:n]
        geo = SimpleNamespace(groups=int(attrs.get("group", 1)), kernel_size=k,
                              stride=tuple(attrs.get("strides", [1] * n)), padding=pads,
                              dilation=tuple(attrs.get("dilations", [1] * n)))
        out[node.name or (node.output[0] if node.output else f"node{i}")] = (geo, shapes[node.input[0]])
    return out
