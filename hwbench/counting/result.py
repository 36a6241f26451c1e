"""What a count returns: `CountResult` with one `LayerCount` per leaf module, and the one place
where OPs are derived from MACs."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from typing import Any


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

    def to_json(self) -> dict[str, Any]:
        """Every field, as plain JSON types (the inverse of `from_json`)."""
        return {"model": self.model, "input": list(self.input), "macs": self.macs, "params": self.params,
                "backbone_macs": self.backbone_macs, "head_macs": self.head_macs,
                "unsupported": dict(self.unsupported), "layers": [list(astuple_layer(x)) for x in self.layers],
                "ops": self.ops, "counter": self.counter, "weight_elems": self.weight_elems,
                "peak_activation_elems": self.peak_activation_elems, "head_modules": list(self.head_modules)}

    @classmethod
    def from_json(cls, obj: Any) -> CountResult:
        """Rebuild from `to_json` output; `ValueError` on anything malformed (wrong keys or types)."""
        if not isinstance(obj, dict) or set(obj) != _JSON_KEYS:
            raise ValueError("not a count record")
        ints = ("macs", "params", "backbone_macs", "head_macs", "weight_elems", "peak_activation_elems")
        if not all(_is_int(obj[k]) and obj[k] >= 0 for k in ints):
            raise ValueError("bad counts")
        if not (isinstance(obj["input"], list) and len(obj["input"]) == 4 and all(_is_int(s) for s in obj["input"])):
            raise ValueError("bad input shape")
        if not all(isinstance(obj[k], str) for k in ("model", "ops", "counter")):
            raise ValueError("bad names")
        unsupported = obj["unsupported"]
        if not (isinstance(unsupported, dict) and all(_is_int(v) for v in unsupported.values())):
            raise ValueError("bad unsupported ops")
        heads = obj["head_modules"]
        if not (isinstance(heads, list) and all(isinstance(h, str) for h in heads)):
            raise ValueError("bad head modules")
        layers = tuple(_layer_from_json(x) for x in _as_list(obj["layers"]))
        if obj["backbone_macs"] + obj["head_macs"] != obj["macs"] or sum(x.macs for x in layers) != obj["macs"]:
            raise ValueError("inconsistent totals")
        return cls(model=obj["model"], input=list(obj["input"]), macs=obj["macs"], params=obj["params"],
                   backbone_macs=obj["backbone_macs"], head_macs=obj["head_macs"], unsupported=dict(unsupported),
                   layers=layers, ops=obj["ops"], counter=obj["counter"], weight_elems=obj["weight_elems"],
                   peak_activation_elems=obj["peak_activation_elems"], head_modules=tuple(heads))


_JSON_KEYS = frozenset({"model", "input", "macs", "params", "backbone_macs", "head_macs", "unsupported", "layers",
                        "ops", "counter", "weight_elems", "peak_activation_elems", "head_modules"})
_LAYER_FIELDS = tuple(f.name for f in fields(LayerCount))


def astuple_layer(layer: LayerCount) -> tuple:
    """A layer as a flat tuple in field order (compact on disk)."""
    return tuple(getattr(layer, f) for f in _LAYER_FIELDS)


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _as_list(v: Any) -> list:
    if not isinstance(v, list):
        raise ValueError("expected a list")
    return v


def _layer_from_json(v: Any) -> LayerCount:
    row = _as_list(v)
    if len(row) != len(_LAYER_FIELDS) or not (isinstance(row[0], str) and isinstance(row[1], str)):
        raise ValueError("bad layer row")
    if not all(_is_int(x) and x >= 0 for x in row[2:]):
        raise ValueError("bad layer figures")
    return LayerCount(*row)
