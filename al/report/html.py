"""The report as one HTML page (rows colour-coded from worst to best, as the paper's Table 3)."""

from __future__ import annotations

import base64
import html
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from al.report.diagnostics import diagnostics_section
from al.report.format import DOWN, SELF_MARK, UP, metric_label, model_label, scale_colour
from al.report.load import ExperimentData
from al.report.markdown import PAIRED_TEXT, runinfo_markdown
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
    kind_title,
    ratio_lines,
    summary_lines,
    timing_rows,
)
from al.stats import Matrix, aggregate, compare_to_random, row_scale


def _html_table(header: Sequence[str], rows: Sequence[Sequence[Any]], *, raw: bool = False) -> str:
    esc = (lambda x: str(x)) if raw else (lambda x: html.escape(str(x)))
    head = "".join(f"<th>{html.escape(str(h))}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{esc(c)}</td>" for c in r) + "</tr>" for r in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def matrix_html(m: Matrix, *, digits: int = 1) -> str:
    """Table 3 layout in HTML, every row colour-coded from worst (red) to best (green)."""
    head = "".join(f"<th>{html.escape(model_label(c))}</th>" for c in m.columns)
    body = []
    for r in m.rows:
        scale, texts = row_scale(m, r), cell_texts(m, r, digits, lambda t: f"<b>{t}</b>")
        tds = [("<td>–</td>" if c not in texts else
                f'<td class="cell" style="background:{scale_colour(scale[c])}" data-scale="{scale[c]:.3f}">'
                f"{texts[c]}</td>" if c in scale else f'<td class="random">{texts[c]}</td>') for c in m.columns]
        body.append(f"<tr><th>{html.escape(model_label(r))}</th>{''.join(tds)}</tr>")
    return (f'<table class="matrix"><thead><tr><th>deployment \\ surrogate</th>{head}</tr></thead>'
            f"<tbody>{''.join(body)}</tbody></table>")


_CSS = """body{font-family:system-ui,sans-serif;max-width:1300px;margin:2em auto;padding:0 1em;color:#222}
table{border-collapse:collapse;margin:0.8em 0;font-size:13px;max-width:100%}
th,td{border:1px solid #ccc;padding:3px 6px;text-align:right;overflow-wrap:anywhere}
th:first-child,td:first-child{text-align:left}thead th{background:#f2f2f2}
td.random{border-left:3px double #888;background:#fafafa}
.legend span{display:inline-block;padding:2px 8px;margin-right:2px}
pre{background:#f6f8fa;padding:1em;white-space:pre-wrap;overflow-wrap:anywhere}img{max-width:100%;height:auto}"""


def paper_html(d: ExperimentData, m: Matrix) -> list[str]:
    """The paper's table beside ours (same colour code), and the pairs both have."""
    exp = d.experiment
    table = paper_table_of(exp.get("dataset", ""), m.metric)
    if table is None:
        return []
    header, rows = paper_rows(table)
    head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
    body = []
    for r in rows:
        tds = [f"<th>{html.escape(r[0][0])}</th>"]
        tds += [f'<td class="cell" style="background:{scale_colour(pos)}">{html.escape(t)}</td>' if pos is not None
                else f'<td class="random">{html.escape(t)}</td>' for t, pos in r[1:]]
        body.append(f"<tr>{''.join(tds)}</tr>")
    side = side_by_side_rows(table, compare_to_random(m))
    out = [f"<h3>Beside the paper: Table {table.number} ({html.escape(table.dataset_label)})</h3>",
           f"<p><b>{html.escape(scale_label(exp.get('dataset', ''), table, exp.get('n_total'), exp.get('pool_size')))}"
           "</b></p>",
           f"<p><i>{html.escape(table.caption)}</i> ({html.escape(table.source)}; colour per row over the "
           "surrogates, random in its own column)</p>",
           f'<table class="matrix paper"><thead><tr>{head}</tr></thead><tbody>{"".join(body)}</tbody></table>',
           f"<p>{html.escape(paper_summary(table, m, len(side)))}</p>"]
    if side:
        out.append(_html_table(SIDE_HEADER, side))
    return out


def _img(images: Mapping[str, str], key: str, alt: str, image_dir: Path | None) -> str:
    """An <img> with the PNG embedded as base64 (the page is one self-contained file)."""
    name = images[key]
    src = html.escape(name)
    if image_dir is not None and (image_dir / name).is_file():
        src = "data:image/png;base64," + base64.b64encode((image_dir / name).read_bytes()).decode("ascii")
    return f"<img src='{src}' alt='{html.escape(alt)}'>"


def render_html(d: ExperimentData, *, images: Mapping[str, str], image_dir: Path | None = None) -> str:
    """The whole report as one HTML page; PNGs found in `image_dir` are embedded (base64)."""
    exp = d.experiment
    title = html.escape(str(exp.get("name") or d.root.name))
    esc = html.escape
    out = [f"<!doctype html><html><head><meta charset='utf-8'><title>{title}</title><style>{_CSS}</style>"
           f"</head><body><h1>{kind_title(d)}: {title}</h1>"]
    if exp.get("summary"):
        out.append(f"<p>{esc(exp['summary'])}</p>")
    if d.records:
        metric = d.records[0]["metric"]
        m = aggregate(d.records, rows=exp.get("deployment"), columns=exp.get("surrogates"), metric=metric)
        legend = "".join(f'<span style="background:{scale_colour(t)}">{w}</span>'
                         for t, w in ((0.0, "worst"), (0.5, ""), (1.0, "best")))
        out += [f"<h2>Deployment models trained on surrogate-selected data: {esc(metric_label(metric))}</h2>",
                "<p>Rows: deployment models trained afresh (from their starting weights: random, or a "
                "<code>weights</code> checkpoint) on each surrogate's final selection; "
                "<code>random</code>: a random selection of the same size containing the shared cycle-0 set. "
                f"Colour per row: <span class='legend'>{legend}</span>; bold: best surrogate; {UP}/{DOWN} vs random; "
                f"{SELF_MARK} the model picked for itself; random (own column) is not colour-coded, "
                "as in the paper. "
                "Mean ± sample std (ddof=1) over seeds; in brackets the paired Δ vs random ± its 95 % CI "
                "half-width.</p>",
                matrix_html(m), "<ul>" + "".join(f"<li>{_md_bold_to_html(esc(x))}</li>" for x in summary_lines(m))
                + "</ul>"]
        out += paper_html(d, m)
        comp = comparison_rows(m)
        if comp:
            out += ["<h3>Surrogate vs random, paired by seed</h3>", f"<p>{esc(PAIRED_TEXT)}</p>",
                    _html_table(COMPARISON_HEADER, comp)]
        diag = diagnostics_section(d.diagnostics, exp.get("surrogates") or [])
        if diag:
            out += ["<h3>Why the picks win or lose</h3>", f"<p>{esc(diag[0])}</p>",
                    *(_html_table(header, rows) for header, rows in diag[1])]
    if d.chain:
        out += ["<h2>Generation chain</h2>", _html_table(CHAIN_HEADER, chain_rows(d.chain))]
    if d.deploy:
        cols, rows = deploy_rows(d.deploy)
        out += ["<h2>Which surrogates were deployable</h2>",
                f"<p>{_md_bold_to_html(esc(deploy_sentence(d.deploy)))}</p>"]
        if rows:
            out.append(_html_table(cols, [[str(x).replace("`", "") for x in r] for r in rows]))
    if d.entropy:
        out.append("<h2>Entropy of models trained on the same random subset (paper Fig. 4)</h2>")
        if "entropy" in images:
            out.append(_img(images, "entropy", "entropy histograms", image_dir))
        out.append(_html_table(ENTROPY_HEADER, entropy_rows(d.entropy)))
        out.append("<ul>" + "".join(f"<li>{esc(x)}</li>" for x in ratio_lines(d.entropy)) + "</ul>")
    if d.curves:
        out.append("<h2>Active-learning curves (paper Fig. 3)</h2>")
        if "curves" in images:
            out.append(_img(images, "curves", "AL curves", image_dir))
        out.append(_html_table(CURVE_HEADER, curve_rows(d.curves)))
    if d.fleet_dir is not None:
        name = esc(d.fleet_dir.name)
        out += ["<h2>Fleet simulation (<code>al fleet</code>)</h2>",
                f"<p>Full report: <a href='{name}/report.md'>{name}/report.md</a></p>",
                f"<img src='{name}/fleet_tradeoff.png' alt='fleet trade-off'>"]
    out += ["<h2>What this can and cannot show</h2>",
            "<ul>" + "".join(f"<li>{_md_code_to_html(esc(n))}</li>" for n in honest_note(d)) + "</ul>"]
    info = runinfo_markdown(d)[2:]
    out.append("<h2>Seeds, timing, machine</h2><ul>" + "".join(f"<li>{esc(x[2:])}</li>" for x in info
                                                              if x.startswith("- ")) + "</ul>")
    if d.timing and d.timing.get("parts"):
        out.append(_html_table(TIMING_HEADER, timing_rows(d.timing)))
    if d.config_text:
        out += ["<h2>Config</h2>", f"<pre>{esc(d.config_text)}</pre>"]
    out.append("</body></html>")
    return "\n".join(out)


def _md_bold_to_html(s: str) -> str:
    return _md_code_to_html(re.sub(r"\*\*(.+?)\*\*", r"<b>\1</b>", s))


def _md_code_to_html(s: str) -> str:
    return re.sub(r"`(.+?)`", r"<code>\1</code>", s)
