"""The report's figures (matplotlib, Agg backend), written atomically as PNG."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from al.report.format import model_label
from al.stats import curve_table, histogram_counts


def plot_entropy_histograms(scores: Mapping[str, np.ndarray], path: str | Path, *, top_fraction: float = 0.1,
                            bins: int = 40, labels: Mapping[str, str] | None = None,
                            xlabel: str = "image entropy (mean pixel entropy, nats)") -> Path:
    """One PNG, one panel per model (shared x axis): histogram with the top `top_fraction` highlighted."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from hwbench.io import atomic_write_bytes

    names = [n for n, s in scores.items() if np.asarray(s).size]
    if not names:
        raise ValueError("no entropy scores to plot")
    labels = labels or {}
    allv = np.concatenate([np.asarray(scores[n], dtype=np.float64) for n in names])
    lo, hi = float(allv.min()), float(allv.max())
    if hi <= lo:
        hi = lo + 1e-6
    edges = np.linspace(lo, hi, bins + 1)
    fig, axes = plt.subplots(len(names), 1, sharex=True, figsize=(7, 1.9 * len(names) + 0.6), squeeze=False)
    for ax, name in zip(axes[:, 0], names, strict=True):
        s = np.asarray(scores[name], dtype=np.float64)
        rest, top = histogram_counts(s, edges, top_fraction)
        centres, width = (edges[:-1] + edges[1:]) / 2, np.diff(edges)
        ax.bar(centres, rest, width=width, color="#9aa5b1", label="rest")
        ax.bar(centres, top, width=width, bottom=rest, color="#2ca02c", label=f"top {top_fraction:.0%}")
        ax.axvline(s.mean(), color="black", linestyle="--", linewidth=1)
        ax.set_title(f"{labels.get(name, name)}: mean {s.mean():.3g}, n={s.size}", fontsize=9, loc="left")
        ax.set_ylabel("images", fontsize=8)
        ax.tick_params(labelsize=8)
    axes[0, 0].legend(fontsize=8, loc="upper right")
    axes[-1, 0].set_xlabel(xlabel, fontsize=9)
    fig.tight_layout()
    return _save_fig(fig, path, atomic_write_bytes)


# Fig. 3's markers: Entropy ◆, LLAL ●, Core-Set ■, True-Loss ▲, Random +; one colour per strategy everywhere.
STRATEGY_STYLE = {"entropy": ("D", "#1f77b4", "Entropy"), "llal": ("o", "#ff7f0e", "LLAL"),
                  "learning_loss": ("o", "#ff7f0e", "LLAL"), "coreset": ("s", "#2ca02c", "Core-Set"),
                  "true_loss": ("^", "#d62728", "True-Loss"), "margin": ("v", "#9467bd", "Margin"),
                  "random": ("+", "#555555", "Random")}


def plot_al_curves(points: Sequence[Mapping[str, Any]], path: str | Path, *,
                   labels: Mapping[str, str] | None = None, per_row: int = 4) -> Path:
    """Metric vs labelled fraction (paper Fig. 3): one panel per model, every strategy and random on
    the same axes (x and y shared by the panels of one metric), Fig. 3's markers, one legend."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from hwbench.io import atomic_write_bytes

    table = curve_table(points)
    if not table:
        raise ValueError("no AL curve points to plot")
    labels = labels or {}
    models = list(dict.fromkeys((r["metric"], r["data"], r["model"]) for r in table))
    cols = min(per_row, len(models))
    nrows = -(-len(models) // cols)
    fig, axes = plt.subplots(nrows, cols, figsize=(3.0 * cols + 0.6, 2.8 * nrows + 0.5), squeeze=False)
    limits: dict[str, list[float]] = {}
    for r in table:
        lo, hi = limits.setdefault(r["metric"], [float("inf"), float("-inf")])
        sd = 0.0 if r["std"] != r["std"] else r["std"]
        limits[r["metric"]] = [min(lo, r["mean"] - sd), max(hi, r["mean"] + sd)]
    xmax = max(r["fraction"] for r in table) * 100
    handles = {}
    for ax, (metric, data, model) in zip(axes.flat, models, strict=False):
        rows = [r for r in table if (r["metric"], r["data"], r["model"]) == (metric, data, model)]
        for strategy in dict.fromkeys(r["strategy"] for r in rows):
            pts = [r for r in rows if r["strategy"] == strategy]
            marker, colour, label = STRATEGY_STYLE.get(strategy, ("x", None, strategy))
            x = np.array([r["fraction"] for r in pts]) * 100
            y = np.array([r["mean"] for r in pts])
            e = np.nan_to_num(np.array([r["std"] for r in pts]))
            h = ax.errorbar(x, y, yerr=e, marker=marker, color=colour, capsize=2, linewidth=1,
                            linestyle="--" if strategy == "random" else "-")
            handles.setdefault(label, h)
        lo, hi = limits[metric]
        pad = max(1.0, 0.05 * (hi - lo))
        ax.set_ylim(lo - pad, hi + pad)
        ax.set_xlim(0, xmax * 1.05)
        ax.set_title(f"{labels.get(model, model_label(model))}" + (f" ({data})" if data else ""), fontsize=9)
        ax.set_xlabel("labelled (% of pool)", fontsize=8)
        ax.set_ylabel({"miou": "mIoU (%)", "top1": "Top-1 (%)"}.get(metric, metric), fontsize=8)
        ax.tick_params(labelsize=8)
        ax.grid(alpha=0.3)
    for ax in list(axes.flat)[len(models):]:
        ax.set_visible(False)
    fig.legend(list(handles.values()), list(handles), loc="lower center", ncol=min(6, len(handles)), fontsize=8,
               frameon=False)
    fig.tight_layout(rect=(0, 0.07 if nrows == 1 else 0.04, 1, 1))
    return _save_fig(fig, path, atomic_write_bytes)


def _save_fig(fig: Any, path: str | Path, write: Any) -> Path:
    import io

    import matplotlib.pyplot as plt

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110)
    plt.close(fig)
    return write(path, buf.getvalue())
