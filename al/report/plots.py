"""The report's figures (matplotlib, Agg backend), drawn with `hwbench.report.figstyle` (at most 7.5 in
wide, every text >= 10 pt, 160 dpi: legible at 800 px) and written atomically as PNG."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from al.report.format import metric_label, model_label
from al.stats import curve_table, histogram_counts
from hwbench.report.figstyle import MAX_WIDTH_IN, save_png, style


def plot_entropy_histograms(scores: Mapping[str, np.ndarray], path: str | Path, *, top_fraction: float = 0.1,
                            bins: int = 40, labels: Mapping[str, str] | None = None,
                            xlabel: str = "image entropy (mean pixel entropy, nats)",
                            held_out: int | None = None) -> Path:
    """One PNG, one panel per model (shared x axis): histogram with the top `top_fraction` highlighted."""
    import matplotlib.pyplot as plt

    names = [n for n, s in scores.items() if np.asarray(s).size]
    if not names:
        raise ValueError("no entropy scores to plot")
    labels = labels or {}
    allv = np.concatenate([np.asarray(scores[n], dtype=np.float64) for n in names])
    lo, hi = float(allv.min()), float(allv.max())
    if hi <= lo:
        hi = lo + 1e-6
    edges = np.linspace(lo, hi, bins + 1)
    with style():
        fig, axes = plt.subplots(len(names), 1, sharex=True, figsize=(MAX_WIDTH_IN, 1.9 * len(names) + 1.2),
                                 squeeze=False, layout="constrained")
        for ax, name in zip(axes[:, 0], names, strict=True):
            s = np.asarray(scores[name], dtype=np.float64)
            rest, top = histogram_counts(s, edges, top_fraction)
            centres, width = (edges[:-1] + edges[1:]) / 2, np.diff(edges)
            ax.bar(centres, rest, width=width, color="#9aa5b1", label="rest")
            ax.bar(centres, top, width=width, bottom=rest, color="#2ca02c", label=f"top {top_fraction:.0%}")
            ax.axvline(s.mean(), color="black", linestyle="--", linewidth=1, label="mean")
            ax.set_title(f"{labels.get(name, name)}: mean {s.mean():.3g} nats, n = {s.size}", loc="left")
            ax.set_ylabel("images (count)")
        axes[0, 0].legend(loc="upper right")
        axes[-1, 0].set_xlabel(xlabel)
        what = f"{held_out} held-out images" if held_out else "held-out images"
        fig.suptitle(f"Entropy per image of each model, scored on {what}")
        return save_png(fig, path)


# Fig. 3's markers: Entropy ◆, LLAL ●, Core-Set ■, True-Loss ▲, Random +; one colour per strategy everywhere.
STRATEGY_STYLE = {"entropy": ("D", "#1f77b4", "Entropy"), "llal": ("o", "#ff7f0e", "LLAL"),
                  "learning_loss": ("o", "#ff7f0e", "LLAL"), "coreset": ("s", "#2ca02c", "Core-Set"),
                  "true_loss": ("^", "#d62728", "True-Loss"), "margin": ("v", "#9467bd", "Margin"),
                  "random": ("+", "#555555", "Random")}


def dodge(n: int, span: float) -> np.ndarray:
    """Offsets for `n` series around 0, `span` apart in total: markers at one x side by side, not stacked."""
    return np.zeros(1) if n <= 1 else np.linspace(-span / 2, span / 2, n)


def plot_al_curves(points: Sequence[Mapping[str, Any]], path: str | Path, *,
                   labels: Mapping[str, str] | None = None, per_row: int = 2) -> Path:
    """Metric vs labelled fraction (paper Fig. 3): one panel per model, every strategy and random on
    the same axes (y shared by the panels of one metric), Fig. 3's markers (hollow, and each strategy
    shifted a little along x so that none hides another), one legend."""
    import matplotlib.pyplot as plt

    table = curve_table(points)
    if not table:
        raise ValueError("no AL curve points to plot")
    labels = labels or {}
    models = list(dict.fromkeys((r["metric"], r["data"], r["model"]) for r in table))
    cols = min(per_row, len(models))
    nrows = -(-len(models) // cols)
    limits: dict[str, list[float]] = {}
    for r in table:
        lo, hi = limits.setdefault(r["metric"], [float("inf"), float("-inf")])
        sd = 0.0 if r["std"] != r["std"] else r["std"]
        limits[r["metric"]] = [min(lo, r["mean"] - sd), max(hi, r["mean"] + sd)]
    xs = sorted({r["fraction"] * 100 for r in table})
    step = min(np.diff(xs)) if len(xs) > 1 else max(xs[0], 1.0)
    xmax = xs[-1]
    with style():
        fig, axes = plt.subplots(nrows, cols, figsize=(MAX_WIDTH_IN, 3.3 * nrows + 0.9), squeeze=False,
                                 layout="constrained")
        handles = {}
        for ax, (metric, data, model) in zip(axes.flat, models, strict=False):
            rows = [r for r in table if (r["metric"], r["data"], r["model"]) == (metric, data, model)]
            strategies = list(dict.fromkeys(r["strategy"] for r in rows))
            offsets = dodge(len(strategies), 0.25 * step)
            for off, strategy in zip(offsets, strategies, strict=True):
                pts = [r for r in rows if r["strategy"] == strategy]
                marker, colour, label = STRATEGY_STYLE.get(strategy, ("x", None, strategy))
                x = np.array([r["fraction"] for r in pts]) * 100 + off
                y = np.array([r["mean"] for r in pts])
                e = np.nan_to_num(np.array([r["std"] for r in pts]))
                h = ax.errorbar(x, y, yerr=e, marker=marker, color=colour, capsize=2, linewidth=1.2,
                                markersize=7, markerfacecolor="none", markeredgewidth=1.5,
                                linestyle="--" if strategy == "random" else "-")
                handles.setdefault(label, h)
            lo, hi = limits[metric]
            pad = max(1.0, 0.05 * (hi - lo))
            ax.set_ylim(lo - pad, hi + pad)
            ax.set_xlim(0, xmax * 1.08)
            ax.set_title(f"{labels.get(model, model_label(model))}" + (f" ({data})" if data else ""))
            ax.set_xlabel("labelled (% of pool)")
            ax.set_ylabel(metric_label(metric))
            ax.grid(alpha=0.3)
        for ax in list(axes.flat)[len(models):]:
            ax.set_visible(False)
        metrics = ", ".join(dict.fromkeys(metric_label(m).split(" (")[0] for m, _, _ in models))
        fig.suptitle(f"Active-learning curves: {metrics} after each cycle vs labelled share (mean ± std over seeds)",
                     wrap=True)
        fig.legend(list(handles.values()), list(handles), loc="outside lower center",
                   ncols=min(5, len(handles)), frameon=False)
        return save_png(fig, path)
