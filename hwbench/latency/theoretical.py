"""Theoretical latency from MACs and a device profile. Three modes, always labelled:

- `paper`:    GMACs / paper TOPS, i.e. latency_ms = MACs / (paper_tops * 1e9). The paper's own
              arithmetic (it divides GMACs, which it calls GOPs, by vendor TOPS that count 2 ops
              per MAC, mostly INT8 on GPU + DLA), so it reproduces Table 2 and is about 2x (or more)
              optimistic. Precision and engine of the record are those of the paper's TOPS figure;
              the `precision`/`engine` arguments are ignored.
- `peak`:     2 * MACs / peak TOPS at the chosen precision and engine (dense unless `sparse`).
              A lower bound for that engine: every MAC at the peak rate, no memory traffic.
- `roofline`: per layer max(compute time, bytes / bandwidth), summed (`hwbench.latency.roofline`),
              at the precision's byte width, same peak as `peak`.

MACs are conv + linear (`hwbench.count`, ops="convlinear"), the paper's "GOPs".
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

from hwbench.count import CountResult, count, ops_from_macs
from hwbench.errors import UserError, unknown
from hwbench.latency.roofline import layer_bytes, roofline
from hwbench.profiles import BYTES_PER_ELEMENT, ENGINES, PRECISIONS, DeviceProfile, load_profile

if TYPE_CHECKING:  # pragma: no cover
    from torch import nn

MODES = ("paper", "peak", "roofline")


@dataclass(frozen=True)
class LatencyEstimate:
    """One theoretical latency. Times in ms, throughput in TOPS, bandwidth in GB/s."""

    model: str
    device: str
    mode: str
    precision: str
    engine: str
    latency_ms: float
    macs: int
    bytes_moved: int            # roofline traffic at `precision` (informational for paper/peak)
    input: tuple[int, ...] = ()
    sparse: bool = False
    tops: float = 0.0           # the throughput figure divided by
    mem_bw_gbps: float = 0.0
    compute_ms: float = 0.0     # 2*MACs / peak (paper: MACs / paper TOPS)
    memory_ms: float = 0.0      # bytes_moved / bandwidth
    figure: str = ""            # source of the throughput figure

    @property
    def fps(self) -> float:
        return 1e3 / self.latency_ms if self.latency_ms > 0 else float("inf")

    def record(self) -> dict[str, Any]:
        rec = asdict(self)
        rec["input"] = list(self.input)
        rec["gmacs"] = self.macs / 1e9
        return rec


def _check(mode: str, precision: str, engine: str) -> None:
    if mode not in MODES:
        raise unknown("latency mode", mode, MODES)
    if precision not in PRECISIONS:
        raise unknown("precision", precision, PRECISIONS)
    if engine not in ENGINES:
        raise unknown("engine", engine, ENGINES)


def _as_count(model_or_count: str | nn.Module | CountResult, input_shape: Sequence[int] | None,
              num_classes: int | None) -> CountResult:
    if isinstance(model_or_count, CountResult):
        if input_shape is not None and list(input_shape) != list(model_or_count.input):
            raise UserError(f"input shape {list(input_shape)} differs from the count's {model_or_count.input}; "
                            "count again at that shape or drop input_shape")
        return model_or_count
    return count(model_or_count, tuple(input_shape) if input_shape is not None else None, num_classes=num_classes)


def _as_profile(device: str | DeviceProfile) -> DeviceProfile:
    return device if isinstance(device, DeviceProfile) else load_profile(device)


def _paper(c: CountResult, dev: DeviceProfile, precision: str, engine: str, sparse: bool,
           fuse: bool) -> LatencyEstimate:
    if dev.paper_tops is None:
        raise UserError(f"device {dev.name!r} has no paper_tops (only the paper's devices do); "
                        "use --mode peak or roofline")
    bpe = BYTES_PER_ELEMENT[dev.paper_precision]
    nbytes = sum(layer_bytes(layer, bpe) for layer in c.layers)
    ms = c.macs / (dev.paper_tops * 1e9)  # GMACs / TOPS = ms: the paper's arithmetic
    return LatencyEstimate(c.model, dev.name, "paper", dev.paper_precision, dev.paper_engine, ms, c.macs,
                           nbytes, tuple(c.input), False, dev.paper_tops, dev.mem_bw_gbps, ms, 0.0,
                           dev.sources.get("paper_tops", ""))


def _peak(c: CountResult, dev: DeviceProfile, precision: str, engine: str, sparse: bool,
          fuse: bool) -> LatencyEstimate:
    entry = dev.peak_entry(precision, engine, sparse)
    rl = roofline(c.layers, tops=entry.tops, mem_bw_gbps=dev.mem_bw_gbps,
                  bytes_per_elem=BYTES_PER_ELEMENT[precision], fuse=fuse)
    ms = ops_from_macs(c.macs) / (entry.tops * 1e12) * 1e3
    return LatencyEstimate(c.model, dev.name, "peak", precision, engine, ms, c.macs, rl.bytes_moved,
                           tuple(c.input), sparse, entry.tops, dev.mem_bw_gbps, ms, rl.memory_ms, entry.source)


def _roofline(c: CountResult, dev: DeviceProfile, precision: str, engine: str, sparse: bool,
              fuse: bool) -> LatencyEstimate:
    entry = dev.peak_entry(precision, engine, sparse)
    rl = roofline(c.layers, tops=entry.tops, mem_bw_gbps=dev.mem_bw_gbps,
                  bytes_per_elem=BYTES_PER_ELEMENT[precision], fuse=fuse)
    return LatencyEstimate(c.model, dev.name, "roofline", precision, engine, rl.latency_ms, c.macs,
                           rl.bytes_moved, tuple(c.input), sparse, entry.tops, dev.mem_bw_gbps, rl.compute_ms,
                           rl.memory_ms, entry.source)


_MODE_FNS: dict[str, Callable[..., LatencyEstimate]] = {"paper": _paper, "peak": _peak, "roofline": _roofline}


def latency(model_or_count: str | nn.Module | CountResult, device: str | DeviceProfile, *,
            mode: str = "roofline", precision: str = "fp16", engine: str = "gpu",
            input_shape: Sequence[int] | None = None, sparse: bool = False, fuse: bool = True,
            num_classes: int | None = None) -> LatencyEstimate:
    """Theoretical latency of a model (any form `hwbench.count` takes, or a `CountResult`) on a device (name,
    profile file or profile). `mode` defaults to "roofline", as on the command line.

    `input_shape` (N, C, H, W) defaults to the model's own input when counting; with a `CountResult` it
    must match the count's. A precision/engine the device has no figure for is a `UserError`.
    `fuse` applies to the roofline (see `hwbench.latency.roofline`).
    """
    _check(mode, precision, engine)
    c = _as_count(model_or_count, input_shape, num_classes)
    dev = _as_profile(device)
    return _MODE_FNS[mode](c, dev, precision, engine, sparse, fuse)
