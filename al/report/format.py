"""Display text shared by every renderer: model and metric labels, numbers, marks and colours."""

from __future__ import annotations

import math

from al.stats import RANDOM

METRIC_LABELS = {"miou": "mIoU (%)", "top1": "Top-1 (%)"}
UP, DOWN, EVEN = "▲", "▼", "="  # vs random, readable in GitHub markdown
SELF_MARK = "◆"  # diagonal: the model picked for itself
SQUARES = ("🟥", "🟧", "🟨", "🟩")


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


def scale_colour(t: float) -> str:
    """Worst (0, red) -> middle (0.5, yellow) -> best (1, green): Excel's 3-colour scale."""
    stops = ((0.0, (248, 105, 107)), (0.5, (255, 235, 132)), (1.0, (99, 190, 123)))
    t = min(1.0, max(0.0, t))
    (t0, c0), (t1, c1) = (stops[0], stops[1]) if t <= 0.5 else (stops[1], stops[2])
    w = (t - t0) / (t1 - t0)
    r, g, b = (round(a + (bb - a) * w) for a, bb in zip(c0, c1, strict=True))
    return f"#{r:02x}{g:02x}{b:02x}"


def scale_square(t: float) -> str:
    """Coloured square for a position in the row's range: 🟥 worst quarter … 🟩 best quarter."""
    return SQUARES[min(len(SQUARES) - 1, int(max(0.0, t) * len(SQUARES)))]
