"""The fleet trade-off figure: recall against the share of frames scored, and what the collected data
is worth (drawn with `hwbench.report.figstyle`: legible at 800 px)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from al.report.format import metric_label, model_label
from hwbench.report.figstyle import MAX_WIDTH_IN, save_png, style


def plot_tradeoff(summary: Sequence[Mapping], train_sum: Sequence[Mapping], path: Path, metric: str) -> Path:
    """Top: recall of the offline top-k vs frames scored (%), per surrogate (colour) and policy (marker).
    Bottom (when models were trained): deployment metric per set, bars from zero."""
    import matplotlib.pyplot as plt
    from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

    with style():
        n = 2 if train_sum else 1
        fig, axes = plt.subplots(n, 1, figsize=(MAX_WIDTH_IN, 4.2 * n), squeeze=False, layout="constrained")
        ax = axes[0, 0]
        policies = list(dict.fromkeys(r["policy"] for r in summary))
        surrogates = list(dict.fromkeys(r["surrogate"] for r in summary))
        markers = "osD^v<>"
        # the policies of one surrogate score the same frames (same x): each is shifted a little on the log
        # axis so that its marker does not hide another's
        shift = {p: 1.0 + 0.08 * (i - (len(policies) - 1) / 2) for i, p in enumerate(policies)}
        for r in summary:
            if r["recall"] is None:
                continue
            ax.errorbar(r["scored_pct"] * shift[r["policy"]], r["recall"], yerr=r["recall_ci95"] or 0,
                        fmt=markers[policies.index(r["policy"]) % 7], color=f"C{surrogates.index(r['surrogate'])}",
                        capsize=3, markersize=7, markerfacecolor="none", markeredgewidth=1.5)
            if r["policy"] == policies[-1]:  # one label per generation, right of its last marker
                ax.annotate(r["generation"], (r["scored_pct"] * shift[r["policy"]], r["recall"]), fontsize=10,
                            xytext=(6, 4), textcoords="offset points")
        for i, p in enumerate(policies):
            ax.plot([], [], markers[i % 7], color="grey", markerfacecolor="none", label=f"policy: {p}")
        for i, s in enumerate(surrogates):
            ax.plot([], [], "s", color=f"C{i}", label=f"surrogate: {model_label(s)}")
        ax.set_xscale("log")
        ax.xaxis.set_major_locator(LogLocator(subs=(1.0, 2.0, 5.0)))
        ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
        ax.xaxis.set_minor_formatter(NullFormatter())
        ax.set_xlabel("frames scored (% of camera frames, log scale)")
        ax.set_ylabel("recall of the offline top-k (fraction)")
        ax.set_title("Fleet simulation: recall vs frames scored, per generation")
        ax.grid(alpha=0.3, which="both")
        ax.margins(x=0.15, y=0.1)
        ax.legend(loc="best", frameon=True)
        if train_sum:
            ax = axes[1, 0]
            labels = [f"{r['generation']}\n{model_label(r['surrogate'])}" for r in train_sum]
            x = np.arange(len(train_sum))
            for j, m in enumerate(("fleet", "pool", "random")):
                ys = [np.nan if r.get(m) is None else r[m] for r in train_sum]
                es = [r.get(f"{m}_std") or 0 for r in train_sum]
                ax.bar(x + (j - 1) * 0.27, ys, 0.27, yerr=es, capsize=3, label=m)
            ax.set_xticks(x, labels)
            top = max([0.0] + [(r.get(m) or 0) + (r.get(f"{m}_std") or 0) for r in train_sum
                               for m in ("fleet", "pool", "random")])
            ax.set_ylim(0, top * 1.3 or 1.0)  # bars from zero; room above them for the legend
            ax.set_ylabel(f"deployment {metric_label(metric)}")
            ax.set_title("Deployment model trained on each set (mean ± std over seeds)")
            ax.legend(ncols=3, loc="upper center")
            ax.grid(alpha=0.3, axis="y")
        return save_png(fig, path)
