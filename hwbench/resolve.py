"""The model argument every command takes, in one of four forms, resolved in one place:

    resnet18                      a zoo name (`hwbench models`)
    path/to/model.onnx            an ONNX file (counted from the graph: `hwbench.counting.onnx_graph`)
    path/to/file.py:build         a callable in a Python file ...
    package.module:build          ... or in an importable module

A callable is a function or class called with no arguments, or an `nn.Module` instance; it must give an
`nn.Module`. Its input size is declared by an attribute on the callable or on the module it returns:
`input_hw = (H, W)`, `input_shape = (N, C, H, W)` or `example_input` (a tensor); `--input HxW` overrides it.
An ONNX file's default input is its own static shape. A zoo model's is the zoo's (`hwbench models`).
`package.module` is imported with the current directory on `sys.path` (as `python -m` does).
"""

from __future__ import annotations

import importlib
import importlib.util
import os
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from hwbench.errors import UserError

if TYPE_CHECKING:  # pragma: no cover
    from torch import nn


KINDS = ("zoo", "onnx", "callable")
FORMS = ("a zoo name (`hwbench models`), FILE.onnx, path/to/file.py:callable or package.module:callable "
         "(returning an nn.Module)")


@dataclass
class ModelRef:
    """A resolved model argument. `name` is what records and tables call it."""

    spec: str                                  # what the user wrote
    kind: str                                  # zoo | onnx | callable
    name: str
    path: Path | None = None                   # the ONNX file
    declared_input: tuple[int, ...] | None = None  # (N, C, H, W) the model declares, None if it declares none
    _module: Any = field(default=None, repr=False)
    _graph: Any = field(default=None, repr=False)

    # ---------------------------------------------------------------------------------- input
    def input_shape(self, hw: str | tuple[int, int] | None = None, batch: int | None = None) -> tuple[int, int, int, int]:
        """(N, C, H, W): `hw` ("HxW" or a pair) and `batch` where given, else the model's own default."""
        from hwbench.inputs import check_input_shape, parse_hw

        base = self.declared_input
        if hw is None and base is None:
            raise UserError(f"{self.spec}: no input size declared; pass --input HxW (or give the callable an "
                            "`input_hw = (H, W)` attribute)" if self.kind == "callable" else
                            f"{self.spec}: its input has dynamic dimensions; pass --input HxW (and --batch N)")
        h, w = (parse_hw(hw) if isinstance(hw, str) else tuple(hw)) if hw is not None else base[2:]  # type: ignore[index]
        n = batch if batch is not None else (base[0] if base is not None else 1)
        c = base[1] if base is not None else 3
        if isinstance(n, bool) or not isinstance(n, int) or n < 1:
            raise UserError(f"--batch must be >= 1 (N, C, H, W are positive integers), got {n!r}")
        return check_input_shape((n, c, h, w))

    # ---------------------------------------------------------------------------------- build
    def module(self, *, num_classes: int | None = None) -> nn.Module:
        """The PyTorch module (zoo: built with its seeded default weights; callable: built once)."""
        if self.kind == "onnx":
            raise UserError(f"{self.spec} is an ONNX file, not a PyTorch model; this needs a zoo name or a "
                            "file.py:callable / package.module:callable")
        if self.kind == "zoo":
            from hwbench.models import create_model

            return create_model(self.name, num_classes=num_classes)
        self.no_classes(num_classes)
        return self._module

    def graph(self) -> Any:
        """The loaded ONNX model (kind onnx)."""
        if self._graph is None:
            from hwbench.counting.onnx_graph import load_graph

            self._graph = load_graph(self.path)  # type: ignore[arg-type]
        return self._graph

    def no_classes(self, num_classes: int | None) -> None:
        """`UserError` for --num-classes on a model that is not built by the zoo."""
        if num_classes is not None:
            raise UserError(f"--num-classes applies to zoo models only; {self.spec} is fixed by its own definition")


# ------------------------------------------------------------------------------------- resolving
_RESOLVED: dict[tuple, ModelRef] = {}  # (spec, cwd, file mtime) -> ref: a file or callable is loaded once


def resolve(spec: str | os.PathLike) -> ModelRef:
    """A `ModelRef` for any of the four forms; a bad form is one `UserError` naming them. A file (ONNX or
    Python) is read again only when it changed."""
    text = os.fspath(spec)
    key = (text, os.getcwd(), _mtime(text))
    ref = _RESOLVED.get(key)
    if ref is None:
        ref = _resolve(text)
        if ref.kind != "zoo":
            _RESOLVED[key] = ref
    return ref


def _mtime(text: str) -> float | None:
    path = text.rpartition(":")[0] if ":" in text and not text.lower().endswith(".onnx") else text
    try:
        return os.stat(path).st_mtime
    except (OSError, ValueError):
        return None


def _resolve(text: str) -> ModelRef:
    if not isinstance(text, str) or not text:
        raise UserError(f"empty model argument; a MODEL is {FORMS}")
    from hwbench.models.registry import MODELS, _ensure_loaded

    _ensure_loaded()
    if text in MODELS:
        return ModelRef(text, "zoo", text, declared_input=tuple(MODELS[text].info.default_input))
    if text.lower().endswith(".onnx"):
        return _onnx(text)
    target, colon, attr = text.rpartition(":")
    if colon and attr.isidentifier() and target and not Path(text).exists():
        return _callable(text, target, attr)
    known = ", ".join(sorted(MODELS))
    raise UserError(f"unknown model {text!r}; known: {known}; a MODEL is {FORMS}")


def resolve_all(specs: Sequence[str]) -> list[ModelRef]:
    """Resolve several arguments (each at most once)."""
    return [resolve(s) for s in specs]


def _onnx(text: str) -> ModelRef:
    from hwbench.counting.onnx_graph import load_graph, static_input_shape

    p = Path(text)
    if not p.exists():
        raise UserError(f"ONNX file {text!r} not found; check the path (a MODEL is {FORMS})")
    if not p.is_file():
        raise UserError(f"{text} is not a file; give the path of one .onnx file")
    graph = load_graph(p)
    return ModelRef(text, "onnx", p.stem, path=p, declared_input=static_input_shape(graph), _graph=graph)


def _callable(text: str, target: str, attr: str) -> ModelRef:
    if target.endswith(".py"):
        module = _import_file(Path(target), text)
    else:
        module = _import_module(target, text)
    if not hasattr(module, attr):
        raise UserError(f"{text}: {target} has no attribute {attr!r}; name a function or class that returns an "
                        "nn.Module")
    obj = getattr(module, attr)
    built = _build(obj, text)
    declared = declared_input(built, text) or declared_input(obj, text)
    return ModelRef(text, "callable", attr, declared_input=declared, _module=built)


def _import_file(path: Path, text: str) -> Any:
    if not path.is_file():
        raise UserError(f"{text}: Python file {str(path)!r} not found; check the path")
    name = f"_hwbench_user_{abs(hash(str(path.resolve())))}"
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise UserError(f"{text}: cannot import {path}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except Exception as e:  # noqa: BLE001 - the user's code failed: say where, in one line
        sys.modules.pop(name, None)
        raise UserError(f"{text}: importing {path} failed ({type(e).__name__}: {_first(e)})") from None
    return module


def _import_module(target: str, text: str) -> Any:
    if not all(part.isidentifier() for part in target.split(".")):
        raise UserError(f"unknown model {text!r}; a MODEL is {FORMS}")
    cwd = os.getcwd()
    added = cwd not in sys.path
    if added:
        sys.path.insert(0, cwd)
    try:
        return importlib.import_module(target)
    except ModuleNotFoundError as e:
        raise UserError(f"{text}: no module named {e.name or target!r}; check the name or run from the directory "
                        f"that holds it (a MODEL is {FORMS})") from None
    except Exception as e:  # noqa: BLE001 - the user's code failed
        raise UserError(f"{text}: importing {target} failed ({type(e).__name__}: {_first(e)})") from None
    finally:
        if added and cwd in sys.path:
            sys.path.remove(cwd)


def _build(obj: Any, text: str) -> nn.Module:
    from torch import nn

    if isinstance(obj, nn.Module):
        return obj
    if not callable(obj):
        raise UserError(f"{text} is a {type(obj).__name__}, not a callable; name a function or class that returns an "
                        "nn.Module")
    try:
        built = obj()
    except Exception as e:  # noqa: BLE001 - the user's code failed
        raise UserError(f"{text}: calling it failed ({type(e).__name__}: {_first(e)}); it is called with no "
                        "arguments") from None
    if not isinstance(built, nn.Module):
        raise UserError(f"{text} returned a {type(built).__name__}, not an nn.Module")
    return built


def declared_input(obj: Any, text: str) -> tuple[int, int, int, int] | None:
    """(N, C, H, W) from `input_shape`, `input_hw` or `example_input`; None when none is set."""
    shape = getattr(obj, "input_shape", None)
    if shape is None and getattr(obj, "input_hw", None) is not None:
        shape = (1, 3, *tuple(obj.input_hw))
    if shape is None and getattr(obj, "example_input", None) is not None:
        shape = tuple(getattr(obj.example_input, "shape", ()))
    if shape is None:
        return None
    try:
        dims = tuple(int(s) for s in shape)
    except (TypeError, ValueError):
        dims = ()
    if len(dims) != 4 or min(dims) < 1:
        raise UserError(f"{text}: declared input {shape!r} is not (N, C, H, W) / input_hw (H, W) of positive integers")
    return dims  # type: ignore[return-value]


def _first(e: BaseException) -> str:
    return ((str(e).strip().splitlines() or [type(e).__name__])[0])[:160]


# ------------------------------------------------------------------------------------- CLI glue
MODEL_HELP = ("a zoo name (`hwbench models`), FILE.onnx, path/to/file.py:callable or package.module:callable "
              "returning an nn.Module")
DEVICE_HELP = "device profiles: names (`hwbench profiles`) or profile files FILE.toml (see profiles/TEMPLATE.toml)"
