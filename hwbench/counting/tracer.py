"""Per-module and per-operator accounting while a model runs under the meta counter.

A module stack (from global forward hooks, so one registration per count rather than two per
module) says which module each ATen operator belongs to. The table has one row per leaf module
that ran (MACs of every operator inside it, its own parameters, the elements it reads and
writes), plus one row per operator called directly in a non-leaf module's `forward` (e.g. the
residual add, the final bilinear resize), named `<module>.<op>` with kind `aten::<op>`.
"""

from __future__ import annotations

import weakref
from collections import Counter
from typing import TYPE_CHECKING, Any

from hwbench.counting.formulas import EXTRA_HANDLES, FVCORE_NAME, IGNORED_OPS, Handle
from hwbench.counting.result import LayerCount

if TYPE_CHECKING:  # pragma: no cover
    from torch import nn


class ModelIndex:
    """What the tracer needs to know about a model's modules, computed once per model object
    (the meta counter keeps one per zoo architecture it built, see `meta.py`)."""

    def __init__(self, model: nn.Module) -> None:
        self.model = model
        self.head_modules = tuple(getattr(model, "head_modules", ()) or ())
        self.children = {n for n, _ in model.named_children()}
        # id(module) -> (qualified name, is leaf); modules shared under two names keep the first
        self.modules: dict[int, tuple[str, bool]] = {}
        for qual, mod in model.named_modules():
            self.modules.setdefault(id(mod), (qual, next(mod.children(), None) is None))
        self._sizes: dict[int, tuple[int, int]] = {}
        self._totals: tuple[int, int] | None = None
        self._weight_ids: set[int] | None = None

    def weight_ids(self) -> set[int]:
        """ids of the model's parameters and buffers (weights, not activations)."""
        if self._weight_ids is None:
            self._weight_ids = {id(t) for t in [*self.model.parameters(), *self.model.buffers()]}
        return self._weight_ids

    def leaf_sizes(self, module: nn.Module) -> tuple[int, int]:
        """(trainable parameters, parameter + floating buffer elements) owned by one module."""
        sizes = self._sizes.get(id(module))
        if sizes is None:
            params = sum(p.numel() for p in module.parameters(recurse=False))
            weights = params + sum(b.numel() for b in module.buffers(recurse=False) if b.is_floating_point())
            sizes = self._sizes[id(module)] = (params, weights)
        return sizes

    def totals(self) -> tuple[int, int]:
        """(parameters, parameters + floating buffers) of the whole model."""
        if self._totals is None:
            params = sum(p.numel() for p in self.model.parameters())
            self._totals = (params, params + sum(b.numel() for b in self.model.buffers() if b.is_floating_point()))
        return self._totals


class _Row:
    """Mutable accumulator for one LayerCount while counting."""

    __slots__ = ("name", "kind", "macs", "params", "input_elems", "output_elems", "weight_elems", "calls")

    def __init__(self, name: str, kind: str, params: int = 0, weight_elems: int = 0) -> None:
        self.name, self.kind, self.params, self.weight_elems = name, kind, params, weight_elems
        self.macs = self.input_elems = self.output_elems = self.calls = 0

    def freeze(self) -> LayerCount:
        return LayerCount(self.name, self.kind, self.macs, self.params, self.input_elems,
                          self.output_elems, self.weight_elems, max(self.calls, 1))


def tensors(obj: Any) -> list:
    """The tensors in a (nested) tuple / list / dict, in order."""
    import torch

    if isinstance(obj, torch.Tensor):
        return [obj]
    if isinstance(obj, (tuple, list)):
        return [t for o in obj for t in tensors(o)]
    if isinstance(obj, dict):
        return [t for o in obj.values() for t in tensors(o)]
    return []


def _elems(obj: Any) -> int:
    return sum(t.numel() for t in tensors(obj))


class Tracer:
    """Module stack + per-operator accounting; `attach()` / `detach()` the global module hooks."""

    def __init__(self, index: ModelIndex, handles: dict[str, Handle], weight_ids: set[int]) -> None:
        self.index = index
        self.handles = handles
        self.head_modules = set(index.head_modules)
        self.weight_ids = weight_ids
        self.stack: list[tuple[str, bool]] = []
        self.rows: dict[str, _Row] = {}
        self.functional_seen: Counter[str] = Counter()
        self.unsupported: Counter[str] = Counter()
        self.macs = 0
        self.head_macs = 0
        self.live_elems = 0
        self.peak_elems = 0
        self._hooks: list = []

    def attach(self) -> None:
        from torch.nn.modules.module import register_module_forward_hook, register_module_forward_pre_hook

        self._hooks = [register_module_forward_pre_hook(self._pre),
                       register_module_forward_hook(self._post, always_call=True)]

    def detach(self) -> None:
        for h in self._hooks:
            h.remove()
        self._hooks = []

    def _pre(self, module: nn.Module, inputs: Any) -> None:
        info = self.index.modules.get(id(module))
        if info is None:  # a module of another model (another thread): not ours
            return
        self.stack.append(info)
        qual, leaf = info
        if leaf:
            row = self.rows.get(qual)
            if row is None:
                row = self.rows[qual] = _Row(qual, type(module).__name__, *self.index.leaf_sizes(module))
            row.calls += 1
            row.input_elems += _elems(inputs)

    def _post(self, module: nn.Module, inputs: Any, output: Any) -> None:
        info = self.index.modules.get(id(module))
        if info is None:
            return
        qual, leaf = info
        if self.stack and self.stack[-1][0] == qual:
            self.stack.pop()
        if leaf:
            self.rows[qual].output_elems += _elems(output)

    def track_alive(self, tensor: Any) -> None:
        """Count a new activation tensor as alive until Python frees it (peak activation memory)."""
        n = tensor.numel()
        self.live_elems += n
        if self.live_elems > self.peak_elems:
            self.peak_elems = self.live_elems
        weakref.finalize(tensor, self._free, n)

    def _free(self, n: int) -> None:
        self.live_elems -= n

    def on_op(self, packet: str, args: tuple, out: Any) -> None:
        owner, in_leaf = self.stack[-1] if self.stack else ("", False)
        handle = self.handles.get(packet)
        macs = int(handle(args, out)) if handle is not None else 0
        if handle is None and packet not in IGNORED_OPS and packet not in EXTRA_HANDLES:
            self.unsupported[f"aten::{FVCORE_NAME.get(packet, packet)}"] += 1
        if macs:
            self.macs += macs
            if owner.split(".", 1)[0] in self.head_modules:
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
        for a in tensors(list(args)):
            if id(a) in self.weight_ids:
                row.weight_elems += a.numel()
            else:
                row.input_elems += a.numel()
        row.output_elems = _elems(out)

    def layers(self) -> tuple[LayerCount, ...]:
        return tuple(r.freeze() for r in self.rows.values())
