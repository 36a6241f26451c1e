"""Checks of an ONNX file on disk: well-formed, has inputs, and its input shape.

Below both `hwbench.export` (which verifies what it wrote) and the latency backends (which run
a given file), so neither imports the other for them. `onnx` is imported inside each function.
"""

from __future__ import annotations

import os
from pathlib import Path

from hwbench.errors import UserError
from hwbench.io import file_problem


def check_onnx_file(path: str | os.PathLike) -> Path:
    """`UserError` unless `path` is a readable, well-formed ONNX model."""
    import onnx

    p = Path(path)
    why = file_problem(p)
    if why is not None:
        raise UserError(f"ONNX file {str(p)!r} {why}; export one with `hwbench export MODEL --out FILE.onnx`")
    try:
        model = onnx.load(str(p), load_external_data=False)
        onnx.checker.check_model(model)
    except Exception as e:  # onnx raises DecodeError / ValidationError / RuntimeError for corrupt files
        first = (str(e).strip().splitlines() or [type(e).__name__])[0][:160]
        raise UserError(f"{p} is not a valid ONNX model ({first}); re-export it with `hwbench export`") from None
    if not model.graph.input:
        raise UserError(f"{p} has no graph inputs; re-export it with `hwbench export`")
    return p


def onnx_input_shape(path: str | os.PathLike) -> list[int | str]:
    """Shape of the first graph input: ints for static dims, names for dynamic ones."""
    import onnx

    m = onnx.load(str(path), load_external_data=False)
    init = {i.name for i in m.graph.initializer}
    inp = next(i for i in m.graph.input if i.name not in init)
    return [d.dim_value if d.HasField("dim_value") else (d.dim_param or "?")
            for d in inp.type.tensor_type.shape.dim]


def check_shape_matches(path: str | os.PathLike, shape: tuple[int, ...]) -> None:
    """`UserError` when a static ONNX input shape differs from the requested one."""
    dims = onnx_input_shape(path)
    if len(dims) != len(shape) or any(isinstance(d, int) and d > 0 and d != s for d, s in zip(dims, shape, strict=False)):
        want = "x".join(map(str, shape))
        have = "x".join(map(str, dims))
        raise UserError(f"{path} expects input {have}, not {want}; pass a matching --input/--batch "
                        "or re-export with `hwbench export --dynamic`")


def onnx_output_shapes(path: str | os.PathLike) -> list[tuple[str, list[int | str]]]:
    """(name, shape) of every graph output: ints for static dims, names for dynamic ones."""
    import onnx

    m = onnx.load(str(path), load_external_data=False)
    return [(o.name, [d.dim_value if d.HasField("dim_value") else (d.dim_param or "?")
                      for d in o.type.tensor_type.shape.dim]) for o in m.graph.output]
