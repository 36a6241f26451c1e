"""The device-profile data types: `DeviceProfile`, `Peak`, `HostInfo` and their vocabularies (no file access).

Throughput in TOPS (10^12 ops/s, 2 ops per multiply-accumulate), bandwidth in GB/s, memory in GB.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from hwbench.errors import UserError

PRECISIONS = ("fp32", "fp16", "int8")
ENGINES = ("gpu", "dla", "gpu+dla", "cpu")
BYTES_PER_ELEMENT = {"fp32": 4, "fp16": 2, "int8": 1}

Precision = Literal["fp32", "fp16", "int8"]
Engine = Literal["gpu", "dla", "gpu+dla", "cpu"]


@dataclass(frozen=True)
class Peak:
    """One peak-throughput figure: `tops` at `precision` on `engine` (dense or sparse)."""

    precision: Precision
    engine: Engine
    tops: float
    source: str
    sparse: bool = False
    derived: bool = False       # True: computed from other figures (the formula is in `source`)


@dataclass(frozen=True)
class HostInfo:
    """How and where the `host` profile was measured."""

    date: str
    torch: str
    cpu: str
    threads: int
    method: str
    cuda_device: str | None = None
    load_1m: float | None = None   # the OS's 1-minute load average when the measurement started
    cores: int | None = None       # CPUs the OS offers (os.cpu_count())

    def busy(self) -> bool:
        """True when other work held at least half the cores while this was measured (peaks read low)."""
        return self.load_1m is not None and self.load_1m >= 0.5 * max(self.cores or self.threads, 1)

    def load_text(self) -> str:
        """E.g. "1-minute load 1.9 on 2 cores" (for the busy warnings)."""
        return f"1-minute load {self.load_1m:.1f} on {self.cores or self.threads} cores"


@dataclass(frozen=True)
class DeviceProfile:
    """A device's figures. Throughput in TOPS, bandwidth in GB/s (10^9 bytes/s), memory in GB."""

    name: str
    mem_bw_gbps: float
    memory_gb: float
    peak: tuple[Peak, ...]
    sources: dict[str, str]     # figure name -> where it comes from
    display_name: str = ""      # "" -> the name
    generation: str = ""        # GPU architecture (Pascal, Volta, Ampere, Blackwell) or "host"
    year: int | None = None
    power_mode: str = ""
    paper_tops: float | None = None      # the TOPS the paper divides GOPs by (Table 2)
    paper_precision: Precision | None = None
    paper_engine: Engine | None = None
    dla_count: int = 0
    notes: str = ""
    measured: HostInfo | None = None

    def __post_init__(self) -> None:
        if not self.display_name:
            object.__setattr__(self, "display_name", self.name)

    def peak_entry(self, precision: str, engine: str = "gpu", sparse: bool = False) -> Peak:
        """The `Peak` for (precision, engine, sparse); `UserError` listing what the device has."""
        for p in self.peak:
            if (p.precision, p.engine, p.sparse) == (precision, engine, sparse):
                return p
        have = ", ".join(peak_key(p) for p in self.peak)
        want = f"{precision}/{engine}" + ("/sparse" if sparse else "")
        why = ""
        if engine in ("dla", "gpu+dla") and self.dla_count == 0:
            why = " (it has no DLA)"
        raise UserError(f"device {self.name!r} has no {want} peak figure{why}; it has: {have}")

    def peak_tops(self, precision: str, engine: str = "gpu", sparse: bool = False) -> float:
        """Peak throughput in TOPS (2 ops per MAC) at `precision` on `engine`."""
        return self.peak_entry(precision, engine, sparse).tops

    def available(self) -> list[str]:
        """`precision/engine[/sparse]` keys of the figures this profile has."""
        return [peak_key(p) for p in self.peak]


def peak_key(p: Peak) -> str:
    return f"{p.precision}/{p.engine}" + ("/sparse" if p.sparse else "")
