"""Display text shared by every renderer: model and metric labels, numbers, marks and colours."""

from __future__ import annotations

import math

from al.stats import RANDOM
from hwbench.report.doc import SQUARES, scale_colour, scale_square  # noqa: F401 (re-exported)

METRIC_LABELS = {"miou": "mIoU (%)", "top1": "Top-1 (%)"}
UP, DOWN, EVEN = "▲", "▼", "="  # vs random, readable in GitHub markdown
SELF_MARK = "◆"  # diagonal: the model picked for itself


def model_label(name: str) -> str:
    """Display label of a zoo model (Res-20, MNV3, ...); the name itself when not in the zoo."""
    if name == RANDOM:
        return RANDOM
    try:
        from hwbench.models import model_info

        return model_info(name).label
    except Exception:  # unknown or zoo not importable: show the raw name
        return name


def metric_label(metric: str) -> str:
    return METRIC_LABELS.get(metric, metric)


def fmt_cell(mean: float, std: float, digits: int = 1) -> str:
    """`59.6 ± 0.5`; the std is left out when undefined (one seed)."""
    if math.isnan(mean):
        return "–"
    return f"{mean:.{digits}f}" if math.isnan(std) else f"{mean:.{digits}f} ± {std:.{digits}f}"


def fmt_delta(delta: float, digits: int = 2) -> str:
    return "–" if math.isnan(delta) else f"{delta:+.{digits}f}"


def vs_random_mark(delta: float) -> str:
    return UP if delta > 0 else DOWN if delta < 0 else EVEN


