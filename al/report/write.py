"""`write_report(exp_dir)`: every file of a report (markdown, HTML, CSV, PNG) from one directory."""

from __future__ import annotations

from pathlib import Path

from al.report.format import model_label
from al.report.html import render_html
from al.report.load import load_experiment
from al.report.markdown import render_markdown
from al.report.plots import plot_al_curves, plot_entropy_histograms
from al.stats import aggregate, matrix_records
from hwbench.csvfile import records_csv
from hwbench.io import atomic_write_text


def write_report(exp_dir: str | Path, out_dir: str | Path | None = None) -> dict[str, Path]:
    """Render report.md, report.html, CSVs and PNGs of `exp_dir` into `out_dir` (default: `exp_dir`)."""
    d = load_experiment(exp_dir)
    out = Path(out_dir) if out_dir is not None else d.root
    out.mkdir(parents=True, exist_ok=True)
    written: dict[str, Path] = {}
    images: dict[str, str] = {}
    if d.records:
        exp = d.experiment
        m = aggregate(d.records, rows=exp.get("deployment"), columns=exp.get("surrogates"),
                      metric=d.records[0]["metric"])
        written["matrix_csv"] = atomic_write_text(out / "matrix.csv", records_csv(matrix_records(m)))
        written["records_csv"] = atomic_write_text(out / "records.csv", records_csv(d.records))
    if d.chain:
        written["chain_csv"] = atomic_write_text(out / "chain.csv", records_csv(d.chain))
    if d.entropy and d.entropy_scores:
        written["entropy_png"] = plot_entropy_histograms(
            d.entropy_scores, out / "entropy_hist.png", top_fraction=d.entropy.get("top_fraction", 0.1),
            labels={k: model_label(k) for k in d.entropy_scores})
        images["entropy"] = "entropy_hist.png"
    if d.curves:
        written["curves_png"] = plot_al_curves(d.curves, out / "al_curves.png")
        written["curves_csv"] = atomic_write_text(out / "al_curves.csv", records_csv(d.curves))
        images["curves"] = "al_curves.png"
    written["markdown"] = atomic_write_text(out / "report.md", render_markdown(d, images=images))
    written["html"] = atomic_write_text(out / "report.html", render_html(d, images=images, image_dir=out))
    return written
