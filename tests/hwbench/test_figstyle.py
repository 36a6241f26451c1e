"""Report figures are legible at 800 px: at most 7.5 in wide, >= 10 pt text, 160 dpi; the PNG says so
itself (dpi, smallest font) and the HTML shows it at its physical size. Every figure of both packages."""

from __future__ import annotations

import math

import numpy as np
import pytest

from hwbench.report.figstyle import CSS_PX_PER_IN, DPI, MAX_WIDTH_IN, MIN_FONT_PT, png_bytes, png_info, style


def test_png_info_reads_back_size_dpi_and_smallest_font():
    import matplotlib.pyplot as plt

    with style():
        fig, ax = plt.subplots(figsize=(5, 2))
        ax.set_title("t", fontsize=14)
        ax.set_xlabel("x", fontsize=12)
        ax.tick_params(labelsize=11)
        data = png_bytes(fig)
    info = png_info(data)
    # 5 in x 160 dpi = 800 px; shown at 5 x 96 = 480 CSS px; smallest text: the 11 pt tick labels
    assert (info["width_px"], info["height_px"], info["dpi"]) == (800, 320, DPI)
    assert info["width_css_px"] == 5 * CSS_PX_PER_IN and info["min_font_pt"] == 11


def test_a_figure_wider_than_the_page_is_refused():
    import matplotlib.pyplot as plt

    fig = plt.figure(figsize=(MAX_WIDTH_IN + 1, 2))
    with pytest.raises(ValueError, match="at most"):
        png_bytes(fig)
    plt.close(fig)


def _check(data: bytes) -> None:
    info = png_info(data)
    assert info["dpi"] == DPI and info["width_px"] <= MAX_WIDTH_IN * DPI
    assert info["min_font_pt"] is not None and info["min_font_pt"] >= MIN_FONT_PT, info


def test_hwbench_heatmaps_and_measured_plot(tmp_path):
    from hwbench.latency.measured_report import _plot
    from hwbench.report import report

    out = tmp_path / "r"
    report(out, devices=["tx2", "orin_nx"], input_shape=(1, 3, 64, 128))
    for name in ("latency_heatmap.png", "deploy_heatmap.png"):
        _check((out / name).read_bytes())
    rows = [{"model": m, "backend": b, "roofline_ms": 3.0 * k, "measured_ms": 4.0 * k, "predicted_ms": 4.2 * k}
            for k, m in enumerate(("deeplabv3plus_resnet20", "deeplabv3plus_resnet18"), 1) for b in ("torch", "onnxruntime")]
    _check(_plot(rows, tmp_path / "m.png", "a title").read_bytes())


def test_al_and_fleet_figures(tmp_path):
    from al.fleet.plot import plot_tradeoff
    from al.report.plots import plot_al_curves, plot_entropy_histograms

    rng = np.random.default_rng(0)
    _check(plot_entropy_histograms({"a": rng.random(30), "b": rng.random(30)}, tmp_path / "e.png").read_bytes())
    pts = [{"model": m, "data": "d", "strategy": s, "seed": seed, "cycle": c, "labelled": 10 * c,
            "fraction": 0.1 * (c + 1), "metric": "miou", "value": 20.0 + c + seed}
           for m in ("deeplabv3plus_resnet20", "deeplabv3plus_resnet18", "deeplabv3plus_resnet50")
           for s in ("entropy", "random") for seed in (0, 1) for c in range(3)]
    _check(plot_al_curves(pts, tmp_path / "c.png").read_bytes())
    summary = [{"generation": "g", "surrogate": "deeplabv3plus_resnet20", "policy": p, "scored_pct": 5.0,
                "recall": 0.5, "recall_ci95": 0.1} for p in ("a", "b")]
    train = [{"generation": "g", "surrogate": "deeplabv3plus_resnet20", "fleet": 30.0, "fleet_std": 1.0,
              "pool": 31.0, "pool_std": 1.0, "random": 29.0, "random_std": math.nan}]
    _check(plot_tradeoff(summary, train, tmp_path / "f.png", "miou").read_bytes())


def test_bars_start_at_zero(tmp_path, monkeypatch):
    """The fleet figure's bars: the y axis starts at 0 whatever the values (here all near 30)."""
    import matplotlib.axes

    from al.fleet.plot import plot_tradeoff

    seen = []
    real = matplotlib.axes.Axes.set_ylim

    def spy(self, *a, **kw):
        seen.append((a, kw))
        return real(self, *a, **kw)

    monkeypatch.setattr(matplotlib.axes.Axes, "set_ylim", spy)
    train = [{"generation": "g", "surrogate": "s", "fleet": 30.0, "fleet_std": 1.0, "pool": 31.0, "pool_std": 1.0,
              "random": 29.0, "random_std": 1.0}]
    summary = [{"generation": "g", "surrogate": "s", "policy": "a", "scored_pct": 5.0, "recall": 0.5,
                "recall_ci95": 0.1}]
    plot_tradeoff(summary, train, tmp_path / "f.png", "miou")
    assert any(a and a[0] == 0 for a, _ in seen)


def test_sweep_figure_fits_the_page_with_its_longest_title(tmp_path):
    """The budget-sweep figure (al report): page width, dpi and font floor, with the longest title it gets."""
    from al.report.sweep import plot_sweep
    from al.sweep import sweep_pairs

    rng = np.random.default_rng(0)
    records = [{"deployment": "resnet18", "surrogate": col, "seed": s, "metric": "top1", "budget": b,
                "value": 60 + b / 20 + rng.normal()}
               for col in ("resnet20", "mobilenetv3_small", "random") for b in (200, 300, 400) for s in range(5)]
    pairs = sweep_pairs(records)
    path = plot_sweep(pairs, tmp_path / "s.png", experiment="surrogate_fashion (idx)", seeds=5)
    _check(path.read_bytes())
