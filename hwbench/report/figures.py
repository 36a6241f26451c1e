"""PNG heatmaps of the hardware report (matplotlib, Agg canvas; bytes, written by the caller)."""

from __future__ import annotations

import io

from hwbench.count import model_label
from hwbench.report.paper import HONEST_PRECISION, headline


def _png(fig) -> bytes:
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    FigureCanvasAgg(fig)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=120, bbox_inches="tight")
    return buf.getvalue()


def latency_png(counts, profiles, est) -> bytes:
    """Heatmaps (devices x models, one log colour scale) of paper mode and two roofline columns."""
    import numpy as np
    from matplotlib.colors import LogNorm
    from matplotlib.figure import Figure

    honest = f"roofline {HONEST_PRECISION[0]}/{HONEST_PRECISION[1]}"
    panels = [("paper mode (GMACs / paper TOPS)", lambda dev: "paper" if dev.paper_tops is not None else None),
              ("roofline at the paper's TOPS figure\n(2 ops/MAC + memory)",
               lambda dev: "roofline {}/{}".format(*headline(dev))),
              (honest, lambda dev: honest)]
    models = list(counts)
    grids = []
    for _, column in panels:
        grid = np.full((len(profiles), len(models)), np.nan)
        for r, dev in enumerate(profiles):
            col = column(dev)
            for k, m in enumerate(models):
                e = est.get((dev.name, m, col)) if col else None
                if e is not None:
                    grid[r, k] = e.latency_ms
        grids.append(grid)
    finite = np.concatenate([g[np.isfinite(g)] for g in grids])
    norm = LogNorm(vmin=finite.min(), vmax=max(finite.max(), finite.min() * 1.01)) if finite.size else None
    fig = Figure(figsize=(4.0 * len(panels), 0.6 * len(profiles) + 2.2), layout="constrained")
    axes = fig.subplots(1, len(panels), sharey=True)
    for ax, (title, _), grid in zip(np.atleast_1d(axes), panels, grids, strict=True):
        im = ax.imshow(np.ma.masked_invalid(grid), cmap="RdYlGn_r", norm=norm, aspect="auto")
        for r in range(len(profiles)):
            for k in range(len(models)):
                if np.isfinite(grid[r, k]):
                    ax.text(k, r, f"{grid[r, k]:.3g}", ha="center", va="center", fontsize=8)
        ax.set_xticks(range(len(models)), [model_label(m) for m in models], rotation=30, ha="right")
        ax.set_yticks(range(len(profiles)), [p.name for p in profiles])
        ax.set_title(title, fontsize=9)
    fig.colorbar(im, ax=axes, label="latency (ms)", shrink=0.9)
    return _png(fig)


def deploy_png(counts, profiles, verdicts, budgets) -> bytes:
    """One panel per (budget, mode): models x devices, colour = log2 headroom ratio, text = yes/no."""
    import numpy as np
    from matplotlib.colors import TwoSlopeNorm
    from matplotlib.figure import Figure

    models = list(counts)
    keys = [k for k in verdicts if verdicts[k]]
    panels = []
    for key in keys:
        vs = {(v.device, v.model): v for v in verdicts[key]}
        devs = [p.name for p in profiles if any((p.name, m) in vs for m in models)]
        grid = np.full((len(models), len(devs)), np.nan)
        for r, m in enumerate(models):
            for k, d in enumerate(devs):
                if (d, m) in vs:
                    grid[r, k] = np.log2(vs[(d, m)].headroom + 1.0)  # log2(budget / effective latency)
        panels.append((key, vs, devs, grid))
    lim = max([1.0] + [float(np.nanmax(np.abs(g))) for *_, g in panels if np.isfinite(g).any()])
    norm = TwoSlopeNorm(0.0, -lim, lim)
    fig = Figure(figsize=(3.2 * len(panels) + 1.0, 0.5 * len(models) + 2.4), layout="constrained")
    axes = np.atleast_1d(fig.subplots(1, len(panels), sharey=True))
    im = None
    for ax, ((fps, share, mode), vs, devs, grid) in zip(axes, panels, strict=True):
        im = ax.imshow(np.ma.masked_invalid(grid), cmap="RdYlGn", norm=norm, aspect="auto")
        for r, m in enumerate(models):
            for k, d in enumerate(devs):
                if (d, m) in vs:
                    ax.text(k, r, "yes" if vs[(d, m)].deployable else "no", ha="center", va="center", fontsize=8)
        ax.set_xticks(range(len(devs)), devs, rotation=30, ha="right")
        ax.set_yticks(range(len(models)), [model_label(m) for m in models])
        what = "paper mode" if mode == "paper" else f"roofline {HONEST_PRECISION[0]}/{HONEST_PRECISION[1]}"
        ax.set_title(f"{fps:g} fps, share {share:g}\n{what}", fontsize=9)
    if im is not None:
        fig.colorbar(im, ax=axes, label="log2(budget / (latency / share))", shrink=0.9)
    return _png(fig)

