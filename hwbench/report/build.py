"""The hardware report: Table 2 reproduced, honest latency modes beside it, backbone/head split,
deployability matrices, and plain-words notes on what the numbers mean.

    report(out_dir, *, models, devices, input_shape, budgets, extra_sections) -> [Path] (report.md first)

Writes only `out_dir`: report.md and report.html (one report model, `hwbench.report.sections`, rendered
twice; the HTML embeds its figures), CSVs (table2, latency, counts, layers, deploy), PNG heatmaps and
`.hwbench-report.json` (the file list and provenance, written last). The directory is built beside
`out_dir` and swapped in whole (`hwbench.io.atomic_dir`): a report killed part-way leaves the previous
report as it was, never a mix. Everything is computed before the first write.

Extension hook: `extra_sections` is a sequence of callables `fn(ctx: ReportContext) -> (section,
files)`; each may write files into `ctx.out_dir` (the directory being built) and returns its section (a
`hwbench.report.doc.Section`, or markdown text whose first line is its `## title`) and the paths it
wrote. They are appended after the built-in sections (the measured-latency section plugs in here).
"""


from __future__ import annotations

import dataclasses
import json
import logging
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Union

from hwbench.count import DEFAULT_INPUT, PAPER_MODELS, CountResult, check_input_shape, count, unique_labels
from hwbench.csvfile import records_csv
from hwbench.deploy import DeployVerdict, resolve_budget, verdict
from hwbench.errors import UserError
from hwbench.io import atomic_dir, atomic_write_bytes, atomic_write_json, atomic_write_text
from hwbench.latency.theoretical import LatencyEstimate, latency
from hwbench.profiles import PAPER_DEVICES, DeviceProfile, load_profile
from hwbench.provenance import provenance, utc_now
from hwbench.report.doc import Markdown, Section
from hwbench.report.figures import deploy_png, latency_png
from hwbench.report.paper import (
    DEFAULT_BUDGETS,
    HONEST_PRECISION,
    PAPER_GOPS,
    PAPER_LATENCY_MS,
    at_paper_input,
    columns,
    pct_diff,
)
from hwbench.report.render_html import render_html
from hwbench.report.render_md import render_markdown
from hwbench.report.sections import hardware_report

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ReportContext:
    """What an extra section gets: where to write and what was computed."""

    out_dir: Path
    models: tuple[str, ...]
    devices: tuple[str, ...]
    input_shape: tuple[int, int, int, int]
    counts: dict[str, CountResult]


# an extra section: (a Section of the report model, or markdown text) and the files it wrote
SectionFn = Callable[[ReportContext], tuple[Union[Section, str], Sequence[Path]]]


def report(out_dir: str | Path, *, models: Sequence[str] = PAPER_MODELS, devices: Sequence[str] = PAPER_DEVICES,
           input_shape: Sequence[int] = DEFAULT_INPUT, budgets: Sequence[tuple[float, float]] = DEFAULT_BUDGETS,
           extra_sections: Sequence[SectionFn] | None = None) -> list[Path]:
    """Write the report into `out_dir` as a whole (see `atomic_dir`); returns the paths (report.md first)."""
    shape = check_input_shape(input_shape)
    out = Path(out_dir)
    check_replaceable(out)
    for fps, share in budgets:
        resolve_budget(fps=fps, share=share)
    profiles = [load_profile(d) for d in devices]
    counts = {m: dataclasses.replace(count(m, shape), model=m) for m in models}  # keyed and labelled as given

    est = _estimates(counts, profiles)
    verdicts = _verdicts(counts, profiles, budgets)
    tables = _tables(counts, profiles, est, verdicts, shape)
    figures = {"latency_heatmap.png": latency_png(counts, profiles, est),
               "deploy_heatmap.png": deploy_png(counts, profiles, verdicts, budgets)}

    with atomic_dir(out) as tmp:
        written: list[Path] = []
        for name, rows in tables.items():
            written.append(atomic_write_text(tmp / name, records_csv(rows, float_format="%.6g")))
        for name, data in figures.items():
            written.append(atomic_write_bytes(tmp / name, data))
        prov = provenance()
        doc = hardware_report(counts, profiles, est, verdicts, budgets, shape, figures=figures, provenance=prov)
        ctx = ReportContext(tmp, tuple(models), tuple(p.name for p in profiles), shape, counts)
        for fn in extra_sections or ():
            section, files = fn(ctx)
            doc.sections.append(section if isinstance(section, Section) else markdown_section(section))
            written.extend(Path(f) for f in files)
        written.insert(0, atomic_write_text(tmp / "report.html", render_html(doc, base=tmp)))
        written.insert(0, atomic_write_text(tmp / "report.md", render_markdown(doc, base=tmp)))
        names = [p.relative_to(tmp).as_posix() for p in written]
        atomic_write_json(tmp / MARKER, {"files": names, "finished": utc_now(), "provenance": prov})
    return [out / n for n in names]


def markdown_section(text: str) -> Section:
    """A section from markdown text (an extension that builds no blocks): its `## title`, then the rest."""
    head, _, rest = text.strip().partition("\n")
    if head.startswith("#"):
        return Section(head.lstrip("#").strip(), [Markdown(rest)])
    return Section("More", [Markdown(text)])


MARKER = ".hwbench-report.json"  # written last into a finished report: the files it holds
# What a report directory from before the marker existed may hold (built-in and measured sections).
_REPORT_FILES = frozenset({"report.md", "report.html", "table2.csv", "latency.csv", "counts.csv", "layers.csv", "deploy.csv",
                           "latency_heatmap.png", "deploy_heatmap.png", "measurements.jsonl",
                           "measured_latency.csv", "measured_latency.png", MARKER})


def check_replaceable(out: Path) -> None:
    """`UserError` unless `out` is absent, empty, or a report directory (whole directories are replaced,
    so anything else in it would be lost)."""
    if out.is_symlink() and not out.exists():  # a loop or a dangling link: named before any work
        raise UserError(f"--out {out} is a symbolic link that leads nowhere (a loop or a missing target); remove "
                        "it or choose another directory")
    if out.exists() and not out.is_dir():
        raise UserError(f"--out {out} exists and is not a directory; choose a directory")
    if not out.is_dir():
        return
    known = set(_REPORT_FILES)
    try:
        known |= set(json.loads((out / MARKER).read_text(encoding="utf-8"))["files"])
    except (OSError, ValueError, KeyError, TypeError):
        pass
    foreign = sorted(p.name for p in out.iterdir() if p.name not in known or not p.is_file())
    if foreign:
        shown = ", ".join(foreign[:3]) + (", ..." if len(foreign) > 3 else "")
        raise UserError(f"--out {out} holds files that are not part of a report ({shown}); a report replaces "
                        "its whole directory: choose a new or empty directory")



def _estimates(counts: dict[str, CountResult], profiles: list[DeviceProfile]
               ) -> dict[tuple[str, str, str], LatencyEstimate]:
    """(device, model, column label) -> estimate."""
    est = {}
    for dev in profiles:
        for label, mode, prec, eng in columns(dev):
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


def _tables(counts, profiles, est, verdicts, shape):
    paper_gops = PAPER_GOPS if at_paper_input(shape) else {}
    labels = dict(zip(counts, unique_labels(list(counts)), strict=True))
    t2 = []
    for dev in profiles:
        for m, c in counts.items():
            pub = PAPER_LATENCY_MS.get(dev.name, {}).get(m) if at_paper_input(shape) else None
            ours = est[(dev.name, m, "paper")].latency_ms if dev.paper_tops is not None else None
            t2.append({"device": dev.name, "paper_tops": dev.paper_tops, "model": m, "label": labels[m],
                       "gmacs": c.gmacs, "paper_gops": paper_gops.get(m), "latency_ms": ours,
                       "paper_latency_ms": pub,
                       "diff_pct": pct_diff(ours, pub) if ours is not None and pub else None})
    lat = [{**e.record(), "column": key[2]} for key, e in est.items()]
    for r in lat:
        r.pop("figure", None)
    cnt = [{"model": m, "label": labels[m], "input": "x".join(map(str, c.input)), "gmacs": c.gmacs,
            "paper_gops": paper_gops.get(m), "backbone_gmacs": c.backbone_macs / 1e9, "head_gmacs": c.head_macs / 1e9,
            "head_share": c.head_macs / c.macs if c.macs else 0.0, "params": c.params,
            "peak_activation_elems": c.peak_activation_elems} for m, c in counts.items()]
    layers = [{"model": m, **asdict(layer)} for m, c in counts.items() for layer in c.layers]
    dep = [{**v.record()} for vs in verdicts.values() for v in vs]
    return {"table2.csv": t2, "latency.csv": lat, "counts.csv": cnt, "layers.csv": layers, "deploy.csv": dep}

