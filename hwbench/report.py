"""The hardware report: Table 2 reproduced, honest latency modes beside it, backbone/head split,
deployability matrices, and plain-words notes on what the numbers mean.

    report(out_dir, *, models, devices, input_shape, budgets, extra_sections) -> Path (report.md)

Writes only inside `out_dir`: report.md, CSVs (table2, latency, counts, layers, deploy) and PNG
heatmaps (matplotlib, Agg canvas). Everything is computed before the first file is written.

Extension hook: `extra_sections` is a sequence of callables `fn(ctx: ReportContext) ->
(markdown, files)`; each may write files into `ctx.out_dir` and returns its markdown section and
the paths it wrote. They are appended after the built-in sections (the measured-latency section
plugs in here).
"""

from __future__ import annotations

import io
import logging
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

from hwbench.count import DEFAULT_INPUT, PAPER_MODELS, CountResult, check_input_shape, count, model_label
from hwbench.deploy import DeployVerdict, resolve_budget, verdict
from hwbench.errors import UserError
from hwbench.io import atomic_write_bytes, atomic_write_text
from hwbench.latency.theoretical import LatencyEstimate, latency
from hwbench.profiles import PAPER_DEVICES, DeviceProfile, load_profile

log = logging.getLogger(__name__)

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


@dataclass(frozen=True)
class ReportContext:
    """What an extra section gets: where to write and what was computed."""

    out_dir: Path
    models: tuple[str, ...]
    devices: tuple[str, ...]
    input_shape: tuple[int, int, int, int]
    counts: dict[str, CountResult]


SectionFn = Callable[[ReportContext], tuple[str, Sequence[Path]]]


def pct_diff(ours: float, theirs: float) -> float:
    """(ours - theirs) / theirs, in percent."""
    return (ours - theirs) / theirs * 100.0


def report(out_dir: str | Path, *, models: Sequence[str] = PAPER_MODELS, devices: Sequence[str] = PAPER_DEVICES,
           input_shape: Sequence[int] = DEFAULT_INPUT, budgets: Sequence[tuple[float, float]] = DEFAULT_BUDGETS,
           extra_sections: Sequence[SectionFn] | None = None) -> list[Path]:
    """Write the report into `out_dir`; returns the paths written (report.md first)."""
    shape = check_input_shape(input_shape)
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise UserError(f"--out {out} exists and is not a directory; choose a directory")
    for fps, share in budgets:
        resolve_budget(fps=fps, share=share)
    profiles = [load_profile(d) for d in devices]
    counts = {m: count(m, shape) for m in models}

    est = _estimates(counts, profiles)
    verdicts = _verdicts(counts, profiles, budgets)
    tables = _tables(counts, profiles, est, verdicts, shape)
    figures = {"latency_heatmap.png": _latency_png(counts, profiles, est),
               "deploy_heatmap.png": _deploy_png(counts, profiles, verdicts, budgets)}

    written: list[Path] = []
    for name, df in tables.items():
        written.append(atomic_write_text(out / name, df.to_csv(index=False, float_format="%.6g")))
    for name, data in figures.items():
        written.append(atomic_write_bytes(out / name, data))
    md = _markdown(counts, profiles, est, verdicts, budgets, shape)
    ctx = ReportContext(out, tuple(models), tuple(p.name for p in profiles), shape, counts)
    for fn in extra_sections or ():
        section, files = fn(ctx)
        md += "\n" + section.rstrip() + "\n"
        written.extend(Path(f) for f in files)
    md_path = atomic_write_text(out / "report.md", md)
    return [md_path, *written]


# ------------------------------------------------------------------------------- computations
def _headline(dev: DeviceProfile) -> tuple[str, str]:
    """The precision/engine of the device's paper TOPS figure (else its fp16 GPU figure)."""
    if dev.paper_precision and dev.paper_engine:
        return dev.paper_precision, dev.paper_engine
    return HONEST_PRECISION


def _columns(dev: DeviceProfile) -> list[tuple[str, str, str, str]]:
    """(column label, mode, precision, engine) for a device's latency table."""
    cols = []
    if dev.paper_tops is not None:
        cols.append(("paper", "paper", "", ""))
    hp, he = _headline(dev)
    cols += [(f"peak {hp}/{he}", "peak", hp, he), (f"roofline {hp}/{he}", "roofline", hp, he)]
    if (hp, he) != HONEST_PRECISION:
        p, e = HONEST_PRECISION
        cols += [(f"peak {p}/{e}", "peak", p, e), (f"roofline {p}/{e}", "roofline", p, e)]
    return cols


def _estimates(counts: dict[str, CountResult], profiles: list[DeviceProfile]
               ) -> dict[tuple[str, str, str], LatencyEstimate]:
    """(device, model, column label) -> estimate."""
    est = {}
    for dev in profiles:
        for label, mode, prec, eng in _columns(dev):
            for m, c in counts.items():
                kw = {"precision": prec, "engine": eng} if mode != "paper" else {}
                est[(dev.name, m, label)] = latency(c, dev, mode=mode, **kw)
    return est


def _verdicts(counts: dict[str, CountResult], profiles: list[DeviceProfile],
              budgets: Sequence[tuple[float, float]]) -> dict[tuple[float, float, str], list[DeployVerdict]]:
    """(fps, share, mode) -> verdicts. Modes: paper (the paper's claim) and roofline fp16/gpu."""
    out = {}
    for fps, share in budgets:
        budget = resolve_budget(fps=fps, share=share)
        for mode in ("paper", "roofline"):
            p, e = HONEST_PRECISION
            out[(fps, share, mode)] = [
                verdict(c, dev, mode=mode, budget_ms=budget, share=share, precision=p, engine=e, fps=fps)
                for dev in profiles if mode != "paper" or dev.paper_tops is not None for c in counts.values()]
    return out


def _at_paper_input(shape: Sequence[int]) -> bool:
    """The published figures (PAPER_GOPS, PAPER_LATENCY_MS) are for this input only."""
    return tuple(shape) == tuple(DEFAULT_INPUT)


def _tables(counts, profiles, est, verdicts, shape):
    import pandas as pd

    paper_gops = PAPER_GOPS if _at_paper_input(shape) else {}
    t2 = []
    for dev in profiles:
        for m, c in counts.items():
            pub = PAPER_LATENCY_MS.get(dev.name, {}).get(m) if _at_paper_input(shape) else None
            ours = est[(dev.name, m, "paper")].latency_ms if dev.paper_tops is not None else None
            t2.append({"device": dev.name, "paper_tops": dev.paper_tops, "model": m, "label": model_label(m),
                       "gmacs": c.gmacs, "paper_gops": paper_gops.get(m), "latency_ms": ours,
                       "paper_latency_ms": pub,
                       "diff_pct": pct_diff(ours, pub) if ours is not None and pub else None})
    lat = [{**e.record(), "column": key[2]} for key, e in est.items()]
    for r in lat:
        r.pop("figure", None)
    cnt = [{"model": m, "label": model_label(m), "input": "x".join(map(str, c.input)), "gmacs": c.gmacs,
            "paper_gops": paper_gops.get(m), "backbone_gmacs": c.backbone_macs / 1e9, "head_gmacs": c.head_macs / 1e9,
            "head_share": c.head_macs / c.macs if c.macs else 0.0, "params": c.params,
            "peak_activation_elems": c.peak_activation_elems} for m, c in counts.items()]
    layers = [{"model": m, **asdict(layer)} for m, c in counts.items() for layer in c.layers]
    dep = [{**v.record()} for vs in verdicts.values() for v in vs]
    return {"table2.csv": pd.DataFrame(t2), "latency.csv": pd.DataFrame(lat), "counts.csv": pd.DataFrame(cnt),
            "layers.csv": pd.DataFrame(layers), "deploy.csv": pd.DataFrame(dep)}


# ------------------------------------------------------------------------------------- figures
def _png(fig) -> bytes:
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    FigureCanvasAgg(fig)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=120, bbox_inches="tight")
    return buf.getvalue()


def _latency_png(counts, profiles, est) -> bytes:
    """Heatmaps (devices x models, one log colour scale) of paper mode and two roofline columns."""
    import numpy as np
    from matplotlib.colors import LogNorm
    from matplotlib.figure import Figure

    honest = f"roofline {HONEST_PRECISION[0]}/{HONEST_PRECISION[1]}"
    panels = [("paper mode (GMACs / paper TOPS)", lambda dev: "paper" if dev.paper_tops is not None else None),
              ("roofline at the paper's TOPS figure\n(2 ops/MAC + memory)",
               lambda dev: "roofline {}/{}".format(*_headline(dev))),
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


def _deploy_png(counts, profiles, verdicts, budgets) -> bytes:
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


# ------------------------------------------------------------------------------------ markdown
def _md_table(header: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    def cell(v: object) -> str:
        if v is None:
            return "-"
        if isinstance(v, float):
            return f"{v:.2f}" if abs(v) < 1e5 else f"{v:.4g}"
        return str(v)

    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in rows]
    return "\n".join(lines) + "\n"


def _markdown(counts, profiles, est, verdicts, budgets, shape) -> str:
    models = list(counts)
    labels = [model_label(m) for m in models]
    shape_s = "x".join(map(str, shape))
    md = ["# hwbench report: what the models cost and where they run\n",
          f"Input {shape_s} (N x C x H x W), 19 classes, output stride 16. MACs are conv + linear "
          "multiply-accumulates counted on the meta device (`hwbench count`); latencies are theoretical "
          "(`hwbench latency`), not measured. Device figures and their sources: `profiles/*.toml` "
          "(`hwbench profiles --sources`). Files: `table2.csv`, `latency.csv`, `counts.csv`, `layers.csv`, "
          "`deploy.csv`, `latency_heatmap.png`, `deploy_heatmap.png`.\n"]

    # Table 2
    md.append("## Table 2, reproduced (paper mode)\n")
    published = _at_paper_input(shape)
    paper_gops = PAPER_GOPS if published else {}
    if published:
        md.append(f"Paper mode is the paper's own arithmetic: latency (ms) = GMACs / TOPS. Each cell: ours / "
                  f"published ({PAPER_TABLE2_SOURCE}) / difference. Published values are rounded to 0.1 ms, so "
                  "sub-2 ms cells differ by up to a few percent from rounding alone.\n")
    else:
        md.append("Paper mode is the paper's own arithmetic: latency (ms) = GMACs / TOPS. The published figures "
                  f"({PAPER_TABLE2_SOURCE}) are for 1x3x1024x2048, so at {shape_s} only ours are shown.\n")
    header = ["device (TOPS)"] + labels
    rows = [["GMACs: ours / paper GOPs" if published else "GMACs"] + [
        f"{counts[m].gmacs:.2f} / {PAPER_GOPS[m]} ({pct_diff(counts[m].gmacs, PAPER_GOPS[m]):+.1f}%)"
        if m in paper_gops else f"{counts[m].gmacs:.2f}" for m in models]]
    for dev in profiles:
        if dev.paper_tops is None:
            continue
        row = [f"{dev.name} ({dev.paper_tops:g})"]
        for m in models:
            ours = est[(dev.name, m, "paper")].latency_ms
            pub = PAPER_LATENCY_MS.get(dev.name, {}).get(m) if published else None
            row.append(f"{ours:.2f} / {pub} ({pct_diff(ours, pub):+.1f}%)" if pub else f"{ours:.2f}")
        rows.append(row)
    md.append(_md_table(header, rows))
    md.append("\n![latency heatmaps](latency_heatmap.png)\n")

    # honest modes
    md.append("## Beside it: peak and roofline\n")
    md.append("`peak` = 2 x MACs / peak TOPS (vendors count 2 ops per MAC); `roofline` = per layer "
              "max(2 x MACs / peak, bytes / bandwidth), summed, with norm/activation/residual adds fused into "
              "the convolutions (bytes = activations read + written + weights, at the precision's width). "
              "Columns name precision/engine. The first pair uses the same figure as the paper "
              "(TX2: fp16 GPU; Xavier NX, Orin NX: INT8 GPU + DLA together), so `peak` there is exactly 2x "
              "paper mode; the second pair is a GPU-only fp16 engine.\n")
    for dev in profiles:
        cols = _columns(dev)
        md.append(f"### {dev.display_name} (`{dev.name}`), {dev.mem_bw_gbps:g} GB/s\n")
        figs = ", ".join(f"{p.precision}/{p.engine}{'/sparse' if p.sparse else ''} {p.tops:g} TOPS"
                         f"{' (derived)' if p.derived else ''}" for p in dev.peak)
        md.append(f"Peak figures: {figs}.\n")
        rows = []
        for m in models:
            rows.append([model_label(m)] + [est[(dev.name, m, c[0])].latency_ms for c in cols])
        md.append(_md_table(["model"] + [f"{c[0]} (ms)" for c in cols], rows))
        notes = [p.source for p in dev.peak if p.precision == HONEST_PRECISION[0] and p.engine == HONEST_PRECISION[1]
                 and "lower bound" in p.source]
        if notes:
            md.append(f"\nNote: the fp16/gpu figure here is a lower bound ({notes[0]}), so its peak and roofline "
                      "columns are pessimistic.\n")
        md.append("")

    # split
    md.append("## Backbone and head\n")
    md.append("GMACs of the backbone and of the DeepLabv3+ head (ASPP + decoder + classifier; the model's "
              "`head_modules`).\n")
    rows = [[model_label(m), c.backbone_macs / 1e9, c.head_macs / 1e9,
             f"{100 * c.head_macs / c.macs:.0f}%" if c.macs else "-", c.params / 1e6] for m, c in counts.items()]
    md.append(_md_table(["model", "backbone GMACs", "head GMACs", "head share", "params (M)"], rows))
    md.append("\nAt 1024x2048 the head is a large part of the cost for the small backbones: its 3x3 ASPP "
              "convolutions run at stride 16 and its decoder at stride 4, whatever the backbone.\n")

    # deploy
    md.append("## Deployability\n")
    md.append("A model is deployable when latency / share <= 1000 / fps and weights + peak activations fit "
              "in memory x share (share = the fraction of the device it may use). Headroom = budget / "
              "(latency / share) - 1. Paper mode shows what the paper's arithmetic would claim; roofline "
              f"{HONEST_PRECISION[0]}/{HONEST_PRECISION[1]} what a GPU-only engine can do at best.\n")
    for (fps, share, mode), vs in verdicts.items():
        if not vs:
            continue
        devs = list(dict.fromkeys(v.device for v in vs))
        by = {(v.device, v.model): v for v in vs}
        what = "paper mode" if mode == "paper" else f"roofline {HONEST_PRECISION[0]}/{HONEST_PRECISION[1]}"
        md.append(f"**{fps:g} fps, share {share:g}, {what}** (budget {1000 / fps:.1f} ms)\n")
        rows = [[model_label(m)] + [("yes" if by[(d, m)].deployable else "no") + f" ({by[(d, m)].headroom:+.2f})"
                                    for d in devs] for m in models]
        md.append(_md_table(["model"] + devs, rows))
        md.append("")
    md.append("![deployability](deploy_heatmap.png)\n")

    md.append(_plain_words(counts, shape))
    return "\n".join(md)


def _plain_words(counts: dict[str, CountResult], shape: tuple[int, int, int, int]) -> str:
    h, w = shape[2], shape[3]
    # Res-18 with the low-level projection fed 256 channels instead of layer1's 64:
    # the decoder's 1x1 conv to 48 channels runs at stride 4 on (H/4 x W/4) pixels.
    extra = 48 * (256 - 64) * (h // 4) * (w // 4) * shape[0]
    # the paper's 181.8 / 60.3 GMACs are for 1x3x1024x2048: compare only there
    r18 = counts.get("deeplabv3plus_resnet18") if _at_paper_input(shape) else None
    r20 = counts.get("deeplabv3plus_resnet20") if _at_paper_input(shape) else None
    lines = ["## In plain words\n",
             "**MACs vs OPs.** One multiply-accumulate (MAC) is two operations (a multiply and an add). "
             "We store MACs; OPs = 2 x MACs. The paper calls its conv + linear GMACs \"GOPs\" and divides them "
             "by vendor TOPS, which count 2 ops per MAC. So paper mode is 2x optimistic before anything else. "
             "On top of that, Xavier NX's 21 and Orin NX's 50 TOPS are INT8 figures that add the GPU and the "
             "deep-learning accelerators (DLAs) together (Orin's 50 is the dense figure; 100 is sparse), and "
             "TX2's 1.3 is its FP16 peak. A single engine, e.g. a GPU-only FP16 TensorRT engine, gets only a "
             "part of that, and real layers also wait on memory. `peak` (2 x MACs / peak) and `roofline` "
             "(memory traffic too) state which precision and engine they assume; measured latency is "
             "another step down.\n"]
    if r18 is not None:
        lines.append(f"**Res-18: {r18.gmacs:.2f} vs the paper's 181.8 GMACs.** Our ResNet-18 feeds the "
                     "decoder's low-level branch with layer1's 64 channels, as DeepLabv3+ intends. A popular "
                     "DeepLab code base hard-codes 256 low-level channels (right for ResNet-50, wrong for "
                     f"ResNet-18); with 256 the 1x1 projection to 48 channels at stride 4 costs 48 x (256 - 64) x "
                     f"{h // 4} x {w // 4} = {extra / 1e9:.2f} GMACs more, giving {r18.gmacs + extra / 1e9:.2f} "
                     "GMACs: the paper's 181.8. We keep the correct 64; the difference is "
                     f"{pct_diff(r18.gmacs, 181.8):+.1f}%.\n")
    if r20 is not None:
        lines.append(f"**Res-20: {r20.gmacs:.2f} vs the paper's 60.3 GMACs.** ResNet-20 is a CIFAR network "
                     "(three stages of 16/32/64 channels). Made output-stride 16 with the standard head it costs "
                     f"{r20.gmacs:.2f} GMACs here, most of it in the head. The paper does not say how it adapted "
                     "ResNet-20, and its 60.3 does not follow from a CIFAR-style ResNet-20 made output-stride 16, "
                     "so we report our own count; the paper's Res-20 column (46.4 / 2.9 / 1.2 ms) is not "
                     f"reproduced (ours is {pct_diff(r20.gmacs, 60.3):+.0f}%).\n")
    return "\n".join(lines)
