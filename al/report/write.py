"""`write_report(exp_dir)`: every file of a report (markdown, HTML, CSV, PNG) from one directory."""

from __future__ import annotations

from pathlib import Path

from al.report.format import model_label
from al.report.html import render_html
from al.report.load import load_experiment
from al.report.markdown import render_markdown
from al.report.plots import plot_al_curves, plot_entropy_histograms
from al.stats import aggregate, matrix_records
from hwbench.io import atomic_write_text


def write_report(exp_dir: str | Path, out_dir: str | Path | None = None) -> dict[str, Path]:
    """Render report.md, report.html, CSVs and PNGs of `exp_dir` into `out_dir` (default: `exp_dir`)."""
    import pandas as pd

    d = load_experiment(exp_dir)
    out = Path(out_dir) if out_dir is not None else d.root
    out.mkdir(parents=True, exist_ok=True)
    written: dict[str, Path] = {}
    images: dict[str, str] = {}
    if d.records:
        exp = d.experiment
        m = aggregate(d.records, rows=exp.get("deployment"), columns=exp.get("surrogates"),
                      metric=d.records[0]["metric"])
        written["matrix_csv"] = atomic_write_text(out / "matrix.csv", pd.DataFrame(matrix_records(m)).to_csv(index=False))
        written["records_csv"] = atomic_write_text(out / "records.csv", pd.DataFrame(d.records).to_csv(index=False))
    if d.chain:
        written["chain_csv"] = atomic_write_text(out / "chain.csv", pd.DataFrame(d.chain).to_csv(index=False))
    if d.entropy and d.entropy_scores:
        written["entropy_png"] = plot_entropy_histograms(
            d.entropy_scores, out / "entropy_hist.png", top_fraction=d.entropy.get("top_fraction", 0.1),
            labels={k: model_label(k) for k in d.entropy_scores})
        images["entropy"] = "entropy_hist.png"
    if d.curves:
        written["curves_png"] = plot_al_curves(d.curves, out / "al_curves.png")
        written["curves_csv"] = atomic_write_text(out / "al_curves.csv", pd.DataFrame(d.curves).to_csv(index=False))
        images["curves"] = "al_curves.png"
    extra_md, extra_html = _sweep_parts(d, out, written)
    written["markdown"] = atomic_write_text(out / "report.md", render_markdown(d, images=images) + extra_md)
    page = render_html(d, images=images, image_dir=out)
    if extra_html:
        page = page.replace("</body>", extra_html + "\n</body>", 1) if "</body>" in page else page + extra_html
    written["html"] = atomic_write_text(out / "report.html", page)
    return written


def _sweep_parts(d, out: Path, written: dict[str, Path]) -> tuple[str, str]:
    """The budget sweep's section (sweep.jsonl: tables, Δ(budget) plot, sweep.csv) and, for a plain matrix,
    the seed-spread warning; as markdown and HTML to append to the report (`al.report.sweep`)."""
    import base64

    import pandas as pd

    from al.report.sweep import plot_sweep, sweep_html, sweep_markdown
    from al.sweep import spread_warnings, sweep_pairs
    from hwbench.io import read_jsonl

    path = d.root / "sweep.jsonl"
    records = list(read_jsonl(path)) if path.is_file() else []
    exp = d.experiment
    kw = {"deployments": exp.get("deployment"), "surrogates": exp.get("surrogates")}
    if records and sweep_pairs(records, **kw):
        written["sweep_csv"] = atomic_write_text(out / "sweep.csv", pd.DataFrame(records).to_csv(index=False))
        png = written["sweep_png"] = plot_sweep(sweep_pairs(records, **kw), out / "sweep_delta.png",
                                                metric=records[0]["metric"])
        md = "\n" + "\n".join(sweep_markdown(records, image="sweep_delta.png", **kw))
        return md, sweep_html(records, image_b64=base64.b64encode(png.read_bytes()).decode(), **kw)
    warnings = spread_warnings(d.records) if d.records else []
    if not warnings:
        return "", ""
    md = "\n## Seed spread of the random column\n\n" + "\n".join(f"- warning: {w}" for w in warnings) + "\n"
    return md, "<h2>Seed spread of the random column</h2>" + "".join(f"<p><b>warning:</b> {w}</p>" for w in warnings)
