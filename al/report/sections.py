"""The sections of an experiment report, each built once as blocks (`hwbench.report.doc`) and rendered
to markdown and HTML alike.

A section is one function `fn(d: ExperimentData, ctx: Context) -> Section | list[Section] | None`
(None: no data for it) listed in `SECTIONS`; figures it draws go into `ctx.out` through `ctx.figure`.
To add a section: write the function and `register("name", fn, before="limits")`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Union

from al.report.diagnostics import diagnostics_block
from al.report.format import DOWN, SELF_MARK, UP, metric_label, model_label
from al.report.load import ExperimentData
from al.report.paper_side import (
    SIDE_HEADER,
    paper_rows,
    paper_summary,
    paper_table_of,
    scale_label,
    side_by_side_rows,
)
from al.report.tables import (
    CHAIN_HEADER,
    COMPARISON_HEADER,
    CURVE_HEADER,
    ENTROPY_HEADER,
    TIMING_HEADER,
    cell_texts,
    chain_rows,
    comparison_rows,
    curve_rows,
    deploy_rows,
    deploy_sentence,
    entropy_rows,
    honest_note,
    ratio_lines,
    summary_lines,
    timing_rows,
)
from al.stats import Matrix, aggregate, compare_to_random, row_scale
from hwbench.provenance import provenance_line
from hwbench.report.doc import SQUARES, Bullets, Cell, Code, Figure, Section, Table, Text


@dataclass
class Context:
    """Where a section writes its figures (`out`) and what it wrote (`written`: key -> path)."""

    out: Path
    written: dict[str, Path] = field(default_factory=dict)

    def figure(self, key: str, name: str, draw: Callable[[Path], Path], alt: str,
               caption: str | None = None) -> Figure:
        """Draw a figure into `out/name` with `draw(path)` and return its block."""
        path = draw(self.out / name)
        self.written[key] = path
        return Figure(alt=alt, path=path, caption=caption)


SectionResult = Union[Section, list[Section], None]
SectionFn = Callable[[ExperimentData, Context], SectionResult]

PAIRED_TEXT = ("Δ = mean over seeds of (surrogate − random of the same seed), in percentage points; 95 % CI: "
               "t-interval over seeds (bootstrap from 10 seeds on); p: two-sided paired t-test; verdict: beat / "
               "lose when the CI lies above / below 0, else tie; last column: seeds needed for a CI half-width "
               "of 1 p.p. at this pair's spread.")


def matrix(d: ExperimentData) -> Matrix:
    exp = d.experiment
    return aggregate(d.records, rows=exp.get("deployment"), columns=exp.get("surrogates"),
                     metric=d.records[0]["metric"])


def matrix_table(m: Matrix, *, digits: int = 1) -> Table:
    """Table 3 layout: each surrogate cell colour-coded within its row (worst to best), best surrogate per
    row in bold, ▲/▼ vs random, ◆ diagonal; random uncoloured in its own column."""
    rows = []
    for r in m.rows:
        scale, texts = row_scale(m, r), cell_texts(m, r, digits, lambda t: f"**{t}**")
        rows.append([model_label(r), *(Cell("–") if c not in texts else
                                       Cell(texts[c], scale=scale[c]) if c in scale else
                                       Cell(texts[c], kind="random") for c in m.columns)])
    return Table(["deployment \\ surrogate", *(model_label(c) for c in m.columns)], rows, row_header=True,
                 css_class="matrix")


def paper_section(d: ExperimentData, m: Matrix) -> Section | None:
    """The paper's table for this data beside ours, and the pairs both have (`paper_side`)."""
    exp = d.experiment
    table = paper_table_of(exp.get("dataset", ""), m.metric)
    if table is None:
        return None
    header, rows = paper_rows(table)
    cells = [[text if i == 0 else Cell(text, scale=pos, kind=None if pos is not None else "random")
              for i, (text, pos) in enumerate(r)] for r in rows]
    side = side_by_side_rows(table, compare_to_random(m))
    s = Section(f"Beside the paper: Table {table.number} ({table.dataset_label})")
    s.add(Text(f"**{scale_label(exp.get('dataset', ''), table, exp.get('n_total'), exp.get('pool_size'))}**"),
          Text(f"*{table.caption}* ({table.source}; colour per row over the surrogates, random in its own column)"),
          Table(header, cells, row_header=True, css_class="matrix paper"),
          Text(paper_summary(table, m, len(side))),
          Table(SIDE_HEADER, side) if side else None)
    return s


def matrix_section(d: ExperimentData, ctx: Context) -> SectionResult:
    if not d.records:
        return None
    m = matrix(d)
    s = Section(f"Deployment models trained on surrogate-selected data: {metric_label(m.metric)}", id="matrix")
    s.add(Text("Rows: deployment model trained afresh (from its starting weights: random, or its `weights` "
               "checkpoint) on the final selection of the column's surrogate; `random`: a random selection of "
               f"the same size that contains the shared cycle-0 set. Colour within each row, worst to best: "
               f"{' '.join(SQUARES)} (as the paper's Table 3); **bold**: best surrogate in the row; {UP}/{DOWN}: "
               f"mean above/below random; {SELF_MARK}: the model picked for itself; random is not colour-coded "
               "(its own column, as in the paper). Mean ± sample std (ddof=1) over seeds; in brackets the paired "
               "Δ vs random ± its 95 % CI half-width."),
          matrix_table(m), Bullets(summary_lines(m)))
    paper = paper_section(d, m)
    if paper is not None:
        s.sections.append(paper)
    comp = comparison_rows(m)
    if comp:
        s.sections.append(Section("Surrogate vs random, paired by seed").add(
            Text(PAIRED_TEXT), Table(COMPARISON_HEADER, comp)))
    diag = diagnostics_block(d.diagnostics, d.experiment.get("surrogates") or [])
    if diag is not None:
        s.sections.append(diag)
    return s


def chain_section(d: ExperimentData, ctx: Context) -> SectionResult:
    if not d.chain:
        return None
    return Section("Generation chain", id="chain").add(
        Text("Each model trains afresh (from its starting weights) on the set its predecessors selected, is "
             "compared with a random set of the same size (containing the same cycle-0 set), then continues "
             "the cycles as the next surrogate."), Table(CHAIN_HEADER, chain_rows(d.chain)))


def deploy_section(d: ExperimentData, ctx: Context) -> SectionResult:
    if not d.deploy:
        return None
    cols, rows = deploy_rows(d.deploy)
    return Section("Which surrogates were deployable", id="deploy").add(
        Text(deploy_sentence(d.deploy)), Table(cols, rows) if rows else None)


def entropy_section(d: ExperimentData, ctx: Context) -> SectionResult:
    if not d.entropy:
        return None
    from al.report.plots import plot_entropy_histograms

    e = d.entropy
    s = Section("Entropy of models trained on the same random subset (paper Fig. 4)", id="entropy")
    s.add(Text(f"Each model was trained on the same random {e['train_size']} images ({e['train_fraction']:.0%} "
               f"of a {e['pool_size']}-image pool) and scored the other {e['held_out_size']}; the top "
               f"{e['top_fraction']:.0%} entropy images are highlighted."))
    if d.entropy_scores:
        s.add(ctx.figure("entropy_png", "entropy_hist.png", lambda p: plot_entropy_histograms(
            d.entropy_scores, p, top_fraction=e.get("top_fraction", 0.1),
            labels={k: model_label(k) for k in d.entropy_scores}, held_out=e.get("held_out_size")),
            "entropy histograms"))
    s.add(Table(ENTROPY_HEADER, entropy_rows(e)),
          Bullets([*ratio_lines(e), "Paper (Cityscapes): mean entropy of MNV3 ×1.9 that of Xc-65."]))
    return s


def curves_section(d: ExperimentData, ctx: Context) -> SectionResult:
    if not d.curves:
        return None
    from al.report.plots import plot_al_curves

    s = Section("Active-learning curves (paper Fig. 3)", id="curves")
    s.add(Text("Metric of each scoring model after every cycle of its own AL run, vs the labelled share of the "
               "pool (mean ± std over seeds)."),
          ctx.figure("curves_png", "al_curves.png", lambda p: plot_al_curves(d.curves, p), "AL curves"),
          Table(CURVE_HEADER, curve_rows(d.curves)))
    return s


def fleet_section(d: ExperimentData, ctx: Context) -> SectionResult:
    if d.fleet_dir is None:
        return None
    from al.fleet.document import fleet_section as build

    return build(d.fleet_dir)


def limits_section(d: ExperimentData, ctx: Context) -> SectionResult:
    return Section("What this can and cannot show", id="limits").add(Bullets(honest_note(d)))


def runinfo_section(d: ExperimentData, ctx: Context) -> SectionResult:
    exp, t = d.experiment, d.timing or {}
    items = []
    if exp.get("provenance"):
        items.append(f"experiment run: {provenance_line(exp['provenance'])}")
    if exp.get("seeds") is not None:
        items.append(f"seeds: {', '.join(map(str, exp['seeds']))}")
    if t.get("total_s") is not None:
        items.append(f"wall time: {t['total_s']:.1f} s (this invocation; sub-runs reused on resume: "
                     f"{t.get('reused', 0)})")
    items += [f"{k}: {_plain(v)}" for k, v in (exp.get("meta") or {}).items()]
    s = Section("Seeds, timing, machine", id="runinfo").add(Bullets(items) if items else None)
    if t.get("parts"):
        s.add(Table(TIMING_HEADER, timing_rows(t)))
    return s


def _plain(v: Any) -> str:
    if isinstance(v, dict):
        return ", ".join(f"{k} {x}" for k, x in v.items() if x is not None)
    return str(v)


def config_section(d: ExperimentData, ctx: Context) -> SectionResult:
    if not d.config_text:
        return None
    return Section("Config", id="config").add(Code(d.config_text, "toml"))


SECTIONS: list[tuple[str, SectionFn]] = [
    ("matrix", matrix_section), ("chain", chain_section), ("deploy", deploy_section),
    ("entropy", entropy_section), ("curves", curves_section), ("fleet", fleet_section),
    ("limits", limits_section), ("runinfo", runinfo_section), ("config", config_section),
]


def register(name: str, fn: SectionFn, *, before: str = "limits") -> None:
    """Add a section builder ahead of the section named `before` (replacing one of the same name)."""
    SECTIONS[:] = [(n, f) for n, f in SECTIONS if n != name]
    at = next((i for i, (n, _) in enumerate(SECTIONS) if n == before), len(SECTIONS))
    SECTIONS.insert(at, (name, fn))


def build_sections(d: ExperimentData, ctx: Context) -> list[Section]:
    out: list[Section] = []
    for _, fn in SECTIONS:
        res = fn(d, ctx)
        out += [] if res is None else res if isinstance(res, list) else [res]
    return out


