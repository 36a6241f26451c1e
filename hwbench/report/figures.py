"""PNG heatmaps of the hardware report (bytes, written by the caller), drawn with `figstyle`: both
heatmaps put the models on the y axis and the devices on the x axis, every cell carries its value."""

from __future__ import annotations

from hwbench.count import unique_labels
from hwbench.report.figstyle import MAX_WIDTH_IN, png_bytes, style
from hwbench.report.paper import HONEST_PRECISION, headline


def _shape(counts) -> str:
    c = next(iter(counts.values()), None)
    return "x".join(map(str, c.input)) if c is not None else "?"


def _ticks(ax, models, devs) -> None:
    ax.set_xticks(range(len(devs)), devs, rotation=30, ha="right", rotation_mode="anchor")
    ax.set_yticks(range(len(models)), unique_labels(models))


def latency_png(counts, profiles, est) -> bytes:
    """Three heatmaps (models x devices, one log colour scale): paper mode, roofline at the paper's
    TOPS figure, roofline of a GPU-only fp16 engine."""
    import matplotlib.pyplot as plt
    import numpy as np
    from matplotlib.colors import LogNorm
    from matplotlib.ticker import FuncFormatter, LogLocator

    honest = f"roofline {HONEST_PRECISION[0]}/{HONEST_PRECISION[1]}"
    panels = [("paper mode\n(GMACs / paper TOPS)", lambda dev: "paper" if dev.paper_tops is not None else None),
              ("roofline at the\npaper's TOPS figure", lambda dev: "roofline {}/{}".format(*headline(dev))),
              (f"roofline, GPU only\n({HONEST_PRECISION[0]})", lambda dev: honest)]
    models = list(counts)
    devs = [p.name for p in profiles]
    grids = []
    for _, column in panels:
        grid = np.full((len(models), len(profiles)), np.nan)
        for k, dev in enumerate(profiles):
            col = column(dev)
            for r, m in enumerate(models):
                e = est.get((dev.name, m, col)) if col else None
                if e is not None:
                    grid[r, k] = e.latency_ms
        grids.append(grid)
    finite = np.concatenate([g[np.isfinite(g)] for g in grids])
    norm = LogNorm(vmin=finite.min(), vmax=max(finite.max(), finite.min() * 1.01)) if finite.size else None
    with style():
        fig = plt.figure(figsize=(MAX_WIDTH_IN, 0.42 * len(models) + 2.9), layout="constrained")
        axes = np.atleast_1d(fig.subplots(1, len(panels), sharey=True))
        im = None
        for ax, (title, _), grid in zip(axes, panels, grids, strict=True):
            im = ax.imshow(np.ma.masked_invalid(grid), cmap="RdYlGn_r", norm=norm, aspect="auto")
            for r in range(len(models)):
                for k in range(len(profiles)):
                    if np.isfinite(grid[r, k]):
                        ax.text(k, r, f"{grid[r, k]:.3g}", ha="center", va="center", fontsize=10)
            _ticks(ax, models, devs)
            ax.set_title(title)
        cb = fig.colorbar(im, ax=axes, shrink=0.9, label="latency per frame (ms, log scale)")
        cb.ax.yaxis.set_major_locator(LogLocator(subs=(1.0, 2.0, 5.0)))
        cb.ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
        cb.ax.yaxis.set_minor_formatter(FuncFormatter(lambda v, _: ""))
        fig.suptitle(f"Theoretical latency per frame (ms), input {_shape(counts)}:\nmodels (rows) on devices (columns)")
        return png_bytes(fig)


def deploy_png(counts, profiles, verdicts, budgets) -> bytes:
    """One panel per (budget, estimate): models x devices, colour = how many times the model fits its
    time budget (log scale, 1 = just fits), text = deployable yes/no."""
    import matplotlib.pyplot as plt
    import numpy as np
    from matplotlib.colors import TwoSlopeNorm
    from matplotlib.ticker import FuncFormatter, MultipleLocator

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
                    grid[r, k] = np.log2(max(vs[(d, m)].headroom + 1.0, 1e-6))  # log2(budget / effective latency)
        panels.append((key, vs, devs, grid))
    lim = max([1.0] + [float(np.nanmax(np.abs(g))) for *_, g in panels if np.isfinite(g).any()])
    norm = TwoSlopeNorm(0.0, -lim, lim)
    ncols = 2 if len(panels) > 1 else 1
    nrows = -(-len(panels) // ncols)
    with style():
        fig = plt.figure(figsize=(MAX_WIDTH_IN, nrows * (0.42 * len(models) + 2.0) + 0.8), layout="constrained")
        axes = np.atleast_1d(fig.subplots(nrows, ncols, squeeze=False)).ravel()
        im = None
        for ax, ((fps, share, mode), vs, devs, grid) in zip(axes, panels, strict=False):
            im = ax.imshow(np.ma.masked_invalid(grid), cmap="RdYlGn", norm=norm, aspect="auto")
            for r, m in enumerate(models):
                for k, d in enumerate(devs):
                    if (d, m) in vs:
                        ax.text(k, r, "yes" if vs[(d, m)].deployable else "no", ha="center", va="center",
                                fontsize=10)
            _ticks(ax, models, devs)
            what = "paper mode" if mode == "paper" else f"roofline {HONEST_PRECISION[0]}/{HONEST_PRECISION[1]}"
            ax.set_title(f"{fps:g} fps, share {share:g}\n{what}")
        for ax in axes[len(panels):]:
            ax.set_visible(False)
        if im is not None:
            cb = fig.colorbar(im, ax=axes, shrink=0.8, label="times the model fits its time budget (log scale)")
            step = max(1, int(np.ceil(lim / 4)))
            cb.ax.yaxis.set_major_locator(MultipleLocator(step))
            cb.ax.yaxis.set_major_formatter(FuncFormatter(_times))
        fig.suptitle(f"Deployable? Models (rows) on devices (columns), input {_shape(counts)}")
        return png_bytes(fig)


def _times(v: float, _pos: object = None) -> str:
    """A colorbar tick at log2(ratio) = v as the ratio: 4×, 1×, 1/4×."""
    return f"{2 ** v:g}×" if v >= 0 else f"1/{2 ** -v:g}×"
