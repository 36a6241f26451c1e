"""The hardware report as a report model (`hwbench.report.doc`): Table 2 beside the published numbers,
peak/roofline per device, backbone/head split, deployability, and notes in plain words. Rendered to
report.md and report.html by `hwbench.report.build`."""

from __future__ import annotations

from collections.abc import Mapping

from hwbench.count import CountResult, unique_labels
from hwbench.report.doc import Figure, Report, Section, Table, Text
from hwbench.report.paper import (
    HONEST_PRECISION,
    PAPER_GOPS,
    PAPER_LATENCY_MS,
    PAPER_TABLE2_SOURCE,
    at_paper_input,
    columns,
    pct_diff,
)

FILES = ("table2.csv", "latency.csv", "counts.csv", "layers.csv", "deploy.csv", "latency_heatmap.png",
         "deploy_heatmap.png")


def _num(v: object) -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        return f"{v:.2f}" if abs(v) < 1e5 else f"{v:.4g}"
    return str(v)


def table2_section(counts, profiles, est, shape, figure: Figure | None) -> Section:
    models = list(counts)
    published = at_paper_input(shape)
    paper_gops = PAPER_GOPS if published else {}
    shape_s = "x".join(map(str, shape))
    s = Section("Table 2, reproduced (paper mode)", id="table2")
    if published:
        s.add(Text(f"Paper mode is the paper's own arithmetic: latency (ms) = GMACs / TOPS. Each cell: ours / "
                   f"published ({PAPER_TABLE2_SOURCE}) / difference. Published values are rounded to 0.1 ms, so "
                   "sub-2 ms cells differ by up to a few percent from rounding alone."))
    else:
        s.add(Text("Paper mode is the paper's own arithmetic: latency (ms) = GMACs / TOPS. The published figures "
                   f"({PAPER_TABLE2_SOURCE}) are for 1x3x1024x2048, so at {shape_s} only ours are shown."))
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
    s.add(Table(["device (TOPS)"] + unique_labels(models), rows, row_header=True), figure)
    return s


def modes_section(counts, profiles, est) -> Section:
    s = Section("Beside it: peak and roofline", id="modes")
    s.add(Text("`peak` = 2 x MACs / peak TOPS (vendors count 2 ops per MAC); `roofline` = per layer "
               "max(2 x MACs / peak, bytes / bandwidth), summed, with norm/activation/residual adds fused into "
               "the convolutions (bytes = activations read + written + weights, at the precision's width). "
               "Columns name precision/engine. The first pair uses the same figure as the paper "
               "(TX2: fp16 GPU; Xavier NX, Orin NX: INT8 GPU + DLA together), so `peak` there is exactly 2x "
               "paper mode; the second pair is a GPU-only fp16 engine."))
    labels = dict(zip(counts, unique_labels(list(counts)), strict=True))
    for dev in profiles:
        cols = columns(dev)
        sub = Section(f"{dev.display_name} (`{dev.name}`), {dev.mem_bw_gbps:g} GB/s", id=f"device-{dev.name}")
        figs = ", ".join(f"{p.precision}/{p.engine}{'/sparse' if p.sparse else ''} {p.tops:g} TOPS"
                         f"{' (derived)' if p.derived else ''}" for p in dev.peak)
        sub.add(Text(f"Peak figures: {figs}."),
                Table(["model"] + [f"{c[0]} (ms)" for c in cols],
                      [[labels[m]] + [_num(est[(dev.name, m, c[0])].latency_ms) for c in cols] for m in counts],
                      row_header=True))
        notes = [p.source for p in dev.peak if p.precision == HONEST_PRECISION[0] and p.engine == HONEST_PRECISION[1]
                 and "lower bound" in p.source]
        if notes:
            sub.add(Text(f"Note: the fp16/gpu figure here is a lower bound ({notes[0]}), so its peak and roofline "
                         "columns are pessimistic."))
        s.sections.append(sub)
    return s


def split_section(counts: Mapping[str, CountResult]) -> Section:
    rows = [[label, _num(c.backbone_macs / 1e9), _num(c.head_macs / 1e9),
             f"{100 * c.head_macs / c.macs:.0f}%" if c.macs else "-", _num(c.params / 1e6)]
            for label, c in zip(unique_labels(list(counts)), counts.values(), strict=True)]
    return Section("Backbone and head", id="split").add(
        Text("GMACs of the backbone and of the DeepLabv3+ head (ASPP + decoder + classifier; the model's "
             "`head_modules`)."),
        Table(["model", "backbone GMACs", "head GMACs", "head share", "params (M)"], rows, row_header=True),
        Text("At 1024x2048 the head is a large part of the cost for the small backbones: its 3x3 ASPP "
             "convolutions run at stride 16 and its decoder at stride 4, whatever the backbone."))


def deploy_section(counts, verdicts, figure: Figure | None) -> Section:
    models = list(counts)
    labels = dict(zip(models, unique_labels(models), strict=True))
    s = Section("Deployability", id="deploy")
    s.add(Text("A model is deployable when latency / share <= 1000 / fps and weights + peak activations fit "
               "in memory x share (share = the fraction of the device it may use). Headroom = budget / "
               "(latency / share) - 1. Paper mode shows what the paper's arithmetic would claim; roofline "
               f"{HONEST_PRECISION[0]}/{HONEST_PRECISION[1]} what a GPU-only engine can do at best."))
    for (fps, share, mode), vs in verdicts.items():
        if not vs:
            continue
        devs = list(dict.fromkeys(v.device for v in vs))
        by = {(v.device, v.model): v for v in vs}
        what = "paper mode" if mode == "paper" else f"roofline {HONEST_PRECISION[0]}/{HONEST_PRECISION[1]}"
        rows = [[labels[m]] + [("yes" if by[(d, m)].deployable else "no") + f" ({by[(d, m)].headroom:+.2f})"
                                    for d in devs] for m in models]
        s.add(Table(["model"] + devs, rows, row_header=True,
                    caption=f"**{fps:g} fps, share {share:g}, {what}** (budget {1000 / fps:.1f} ms)"))
    s.add(figure)
    return s


def plain_words_section(counts: Mapping[str, CountResult], shape: tuple[int, int, int, int]) -> Section:
    h, w = shape[2], shape[3]
    # Res-18 with the low-level projection fed 256 channels instead of layer1's 64:
    # the decoder's 1x1 conv to 48 channels runs at stride 4 on (H/4 x W/4) pixels.
    extra = 48 * (256 - 64) * (h // 4) * (w // 4) * shape[0]
    # the paper's 181.8 / 60.3 GMACs are for 1x3x1024x2048: compare only there
    r18 = counts.get("deeplabv3plus_resnet18") if at_paper_input(shape) else None
    r20 = counts.get("deeplabv3plus_resnet20") if at_paper_input(shape) else None
    s = Section("In plain words", id="plain-words")
    s.add(Text("**MACs vs OPs.** One multiply-accumulate (MAC) is two operations (a multiply and an add). "
               "We store MACs; OPs = 2 x MACs. The paper calls its conv + linear GMACs \"GOPs\" and divides them "
               "by vendor TOPS, which count 2 ops per MAC. So paper mode is 2x optimistic before anything else. "
               "On top of that, Xavier NX's 21 and Orin NX's 50 TOPS are INT8 figures that add the GPU and the "
               "deep-learning accelerators (DLAs) together (Orin's 50 is the dense figure; 100 is sparse), and "
               "TX2's 1.3 is its FP16 peak. A single engine, e.g. a GPU-only FP16 TensorRT engine, gets only a "
               "part of that, and real layers also wait on memory. `peak` (2 x MACs / peak) and `roofline` "
               "(memory traffic too) state which precision and engine they assume; measured latency is "
               "another step down."))
    if r18 is not None:
        s.add(Text(f"**Res-18: {r18.gmacs:.2f} vs the paper's 181.8 GMACs.** Our ResNet-18 feeds the "
                   "decoder's low-level branch with layer1's 64 channels, as DeepLabv3+ intends. A popular "
                   "DeepLab code base hard-codes 256 low-level channels (right for ResNet-50, wrong for "
                   f"ResNet-18); with 256 the 1x1 projection to 48 channels at stride 4 costs 48 x (256 - 64) x "
                   f"{h // 4} x {w // 4} = {extra / 1e9:.2f} GMACs more, giving {r18.gmacs + extra / 1e9:.2f} "
                   "GMACs: the paper's 181.8. We keep the correct 64; the difference is "
                   f"{pct_diff(r18.gmacs, 181.8):+.1f}%."))
    if r20 is not None:
        s.add(Text(f"**Res-20: {r20.gmacs:.2f} vs the paper's 60.3 GMACs.** ResNet-20 is a CIFAR network "
                   "(three stages of 16/32/64 channels). Made output-stride 16 with the standard head it costs "
                   f"{r20.gmacs:.2f} GMACs here, most of it in the head. The paper does not say how it adapted "
                   "ResNet-20, and its 60.3 does not follow from a CIFAR-style ResNet-20 made output-stride 16, "
                   "so we report our own count; the paper's Res-20 column (46.4 / 2.9 / 1.2 ms) is not "
                   f"reproduced (ours is {pct_diff(r20.gmacs, 60.3):+.0f}%)."))
    return s


def hardware_report(counts, profiles, est, verdicts, budgets, shape, *, figures: Mapping[str, bytes],
                    provenance: dict | None = None) -> Report:
    """The whole hardware report (extension sections are appended by the caller)."""
    def fig(name: str, alt: str) -> Figure | None:
        return Figure(alt=alt, data=figures[name], name=name) if name in figures else None

    shape_s = "x".join(map(str, shape))
    r = Report("hwbench report: what the models cost and where they run", provenance=provenance)
    r.blocks.append(Text(
        f"Input {shape_s} (N x C x H x W), 19 classes, output stride 16. MACs are conv + linear "
        "multiply-accumulates counted on the meta device (`hwbench count`); latencies are theoretical "
        "(`hwbench latency`), not measured. Device figures and their sources: `profiles/*.toml` "
        f"(`hwbench profiles --sources`). Files: {', '.join(f'`{f}`' for f in FILES)}."))
    r.sections += [table2_section(counts, profiles, est, shape, fig("latency_heatmap.png", "latency heatmaps")),
                   modes_section(counts, profiles, est), split_section(counts),
                   deploy_section(counts, verdicts, fig("deploy_heatmap.png", "deployability")),
                   plain_words_section(counts, shape)]
    return r
