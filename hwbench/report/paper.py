"""The paper's published figures (Table 2) and the column choices every part of the report shares."""

from __future__ import annotations

from collections.abc import Sequence

from hwbench.count import DEFAULT_INPUT
from hwbench.profiles import DeviceProfile

# --------------------------------------------------------------------------- the paper's data
# Frickenstein et al., "Back to the Future: Models as Active Learning Surrogates for Next
# Generation ML Deployments" (2024), Table 2: theoretical latency (ms) of DeepLabv3+ with five
# backbones on three Jetsons, and the "GOPs" (conv+linear GMACs) it divides by the TOPS figures.
# These are the paper's published numbers, not ours.
PAPER_TABLE2_SOURCE = "Frickenstein et al. 2024, Table 2"
PAPER_GOPS: dict[str, float] = {
    "deeplabv3plus_resnet20": 60.3, "deeplabv3plus_mobilenetv3_small": 61.1, "deeplabv3plus_resnet18": 181.8,
    "deeplabv3plus_resnet50": 404.1, "deeplabv3plus_xception65": 512.8,
}
PAPER_TOPS: dict[str, float] = {"tx2": 1.3, "xavier_nx": 21.0, "orin_nx": 50.0}
PAPER_LATENCY_MS: dict[str, dict[str, float]] = {
    "tx2": {"deeplabv3plus_resnet20": 46.4, "deeplabv3plus_mobilenetv3_small": 47.0,
            "deeplabv3plus_resnet18": 139.8, "deeplabv3plus_resnet50": 310.8, "deeplabv3plus_xception65": 394.5},
    "xavier_nx": {"deeplabv3plus_resnet20": 2.9, "deeplabv3plus_mobilenetv3_small": 2.9,
                  "deeplabv3plus_resnet18": 8.7, "deeplabv3plus_resnet50": 19.2, "deeplabv3plus_xception65": 24.4},
    "orin_nx": {"deeplabv3plus_resnet20": 1.2, "deeplabv3plus_mobilenetv3_small": 1.2,
                "deeplabv3plus_resnet18": 3.6, "deeplabv3plus_resnet50": 8.1, "deeplabv3plus_xception65": 10.3},
}

# Default deployability scenarios: (fps, share). share = fraction of the device the model may use.
DEFAULT_BUDGETS: tuple[tuple[float, float], ...] = ((10.0, 1.0), (10.0, 0.3))
HONEST_PRECISION = ("fp16", "gpu")  # the GPU-only engine every paper device has a figure for


def pct_diff(ours: float, theirs: float) -> float:
    """(ours - theirs) / theirs, in percent."""
    return (ours - theirs) / theirs * 100.0


def headline(dev: DeviceProfile) -> tuple[str, str]:
    """The precision/engine of the device's paper TOPS figure (else its fp16 GPU figure)."""
    if dev.paper_precision and dev.paper_engine:
        return dev.paper_precision, dev.paper_engine
    return HONEST_PRECISION


def columns(dev: DeviceProfile) -> list[tuple[str, str, str, str]]:
    """(column label, mode, precision, engine) for a device's latency table."""
    cols = []
    if dev.paper_tops is not None:
        cols.append(("paper", "paper", "", ""))
    hp, he = headline(dev)
    cols += [(f"peak {hp}/{he}", "peak", hp, he), (f"roofline {hp}/{he}", "roofline", hp, he)]
    if (hp, he) != HONEST_PRECISION:
        p, e = HONEST_PRECISION
        cols += [(f"peak {p}/{e}", "peak", p, e), (f"roofline {p}/{e}", "roofline", p, e)]
    return cols



def at_paper_input(shape: Sequence[int]) -> bool:
    """The published figures (PAPER_GOPS, PAPER_LATENCY_MS) are for this input only."""
    return tuple(shape) == tuple(DEFAULT_INPUT)

