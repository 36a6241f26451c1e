"""`write_report(exp_dir)`: every file of a report (markdown, HTML, CSV, PNG) from one directory.

The report is built once (`build_report`: a `hwbench.report.doc.Report` of the sections in
`al.report.sections.SECTIONS`) and rendered twice: report.md (figures linked relative to it) and
report.html (one self-contained page, figures embedded).
"""

from __future__ import annotations

from pathlib import Path

from al.report.load import ExperimentData, load_experiment
from al.report.sections import Context, build_sections, matrix
from al.report.tables import kind_title
from al.stats import matrix_records
from hwbench.csvfile import records_csv
from hwbench.io import atomic_write_text
from hwbench.provenance import provenance
from hwbench.report.doc import Report, Text
from hwbench.report.render_html import render_html
from hwbench.report.render_md import render_markdown


def build_report(d: ExperimentData, ctx: Context) -> Report:
    """The report model of an experiment directory (figures are drawn into `ctx.out` on the way)."""
    exp = d.experiment
    r = Report(f"{kind_title(d)}: {exp.get('name') or d.root.name}", provenance=provenance())
    if exp.get("summary"):
        r.blocks.append(Text(exp["summary"]))
    r.sections = build_sections(d, ctx)
    return r


def write_report(exp_dir: str | Path, out_dir: str | Path | None = None) -> dict[str, Path]:
    """Render report.md, report.html, CSVs and PNGs of `exp_dir` into `out_dir` (default: `exp_dir`)."""
    d = load_experiment(exp_dir)
    out = Path(out_dir) if out_dir is not None else d.root
    out.mkdir(parents=True, exist_ok=True)
    ctx = Context(out)
    report = build_report(d, ctx)
    written = dict(ctx.written)
    if d.records:
        written["matrix_csv"] = atomic_write_text(out / "matrix.csv", _csv(matrix_records(matrix(d))))
        written["records_csv"] = atomic_write_text(out / "records.csv", _csv(d.records))
    if d.chain:
        written["chain_csv"] = atomic_write_text(out / "chain.csv", _csv(d.chain))
    if d.curves:
        written["curves_csv"] = atomic_write_text(out / "al_curves.csv", _csv(d.curves))
    written["markdown"] = atomic_write_text(out / "report.md", render_markdown(report, base=out))
    written["html"] = atomic_write_text(out / "report.html", render_html(report, base=out))
    return written


def _csv(records: list[dict]) -> str:
    return records_csv(records)
