"""The report as GitHub markdown."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from al.report.diagnostics import diagnostics_section
from al.report.format import DOWN, EVEN, SELF_MARK, SQUARES, UP, metric_label, model_label, scale_square
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
    kind_title,
    ratio_lines,
    summary_lines,
    timing_rows,
)
from al.stats import Matrix, aggregate, compare_to_random, row_scale

PAIRED_TEXT = ("Δ = mean over seeds of (surrogate − random of the same seed), in percentage points; 95 % CI: "
               "t-interval over seeds (bootstrap from 10 seeds on); p: two-sided paired t-test; verdict: beat / "
               "lose when the CI lies above / below 0, else tie; last column: seeds needed for a CI half-width "
               "of 1 p.p. at this pair's spread.")


def md_table(header: Sequence[str], rows: Sequence[Sequence[Any]], align: Sequence[str] | None = None) -> str:
    align = align or ["l"] + ["r" if _numeric_col(rows, i) else "l" for i in range(1, len(header))]
    sep = ["---:" if a == "r" else ":---:" if a == "c" else "---" for a in align]
    lines = ["| " + " | ".join(map(str, header)) + " |", "| " + " | ".join(sep) + " |"]
    lines += ["| " + " | ".join(str(c).replace("|", "\\|") for c in r) + " |" for r in rows]
    return "\n".join(lines)


def _numeric_col(rows: Sequence[Sequence[Any]], i: int) -> bool:
    def num(x: Any) -> bool:
        text = str(x).replace("±", "").replace("*", "").split()
        try:
            [float(t.lstrip("+")) for t in text if t not in (UP, DOWN, EVEN, SELF_MARK)]
            return True
        except ValueError:
            return "/" in str(x) and str(x).replace("/", "").isdigit() or x == "–"
    return all(num(r[i]) for r in rows)


def matrix_markdown(m: Matrix, *, digits: int = 1) -> str:
    """Table 3 layout in GitHub markdown: each cell colour-coded within its row (🟥 worst … 🟩 best),
    best surrogate per row in bold, ▲/▼ vs random, ◆ diagonal."""
    header = ["deployment \\ surrogate", *(model_label(c) for c in m.columns)]
    rows = []
    for r in m.rows:
        scale, texts = row_scale(m, r), cell_texts(m, r, digits, lambda t: f"**{t}**")
        rows.append([model_label(r), *((f"{scale_square(scale[c])} {texts[c]}" if c in scale else texts[c])
                                       if c in texts else "–" for c in m.columns)])
    return md_table(header, rows)


def paper_markdown(d: ExperimentData, m: Matrix) -> list[str]:
    """The paper's table for this data beside ours, and the pairs both have (`paper_side`)."""
    exp = d.experiment
    table = paper_table_of(exp.get("dataset", ""), m.metric)
    if table is None:
        return []
    header, rows = paper_rows(table)
    cells = [[f"{scale_square(pos)} {text}" if pos is not None else text for text, pos in r] for r in rows]
    side = side_by_side_rows(table, compare_to_random(m))
    out = [f"### Beside the paper: Table {table.number} ({table.dataset_label})", "",
           scale_label(exp.get("dataset", ""), table, exp.get("n_total"), exp.get("pool_size")), "",
           f"*{table.caption}* ({table.source}; colour per row over the surrogates, random in its own column)", "",
           md_table(header, cells), "", paper_summary(table, m, len(side)), ""]
    if side:
        out += [md_table(SIDE_HEADER, side), ""]
    return out


def render_markdown(d: ExperimentData, *, images: Mapping[str, str]) -> str:
    exp = d.experiment
    title = exp.get("name") or d.root.name
    out = [f"# {kind_title(d)}: {title}", ""]
    if exp.get("summary"):
        out += [exp["summary"], ""]
    metric = d.records[0]["metric"] if d.records else None
    if d.records:
        m = aggregate(d.records, rows=exp.get("deployment"), columns=exp.get("surrogates"), metric=metric)
        out += [f"## Deployment models trained on surrogate-selected data — {metric_label(metric)}", "",
                "Rows: deployment model trained afresh (from its starting weights: random, or its `weights` "
                "checkpoint) on the final selection of the column's surrogate; "
                f"`random`: a random selection of the same size that contains the shared cycle-0 set. "
                f"Colour within each row, worst to best: {' '.join(SQUARES)} (as the paper's Table 3); "
                f"**bold**: best surrogate in the row; {UP}/{DOWN}: mean above/below random; "
                f"{SELF_MARK}: the model picked for itself; random is not colour-coded (its own column, as in the "
                "paper). Mean ± sample std (ddof=1) over seeds; in brackets the paired Δ vs random ± its "
                "95 % CI half-width.", "",
                matrix_markdown(m), ""]
        out += [f"- {line}" for line in summary_lines(m)] + [""]
        out += paper_markdown(d, m)
        comp = comparison_rows(m)
        if comp:
            out += ["### Surrogate vs random, paired by seed", "", PAIRED_TEXT, "",
                    md_table(COMPARISON_HEADER, comp), ""]
        diag = diagnostics_section(d.diagnostics, exp.get("surrogates") or [])
        if diag:
            out += ["### Why the picks win or lose", "", diag[0], ""]
            out += [line for header, rows in diag[1] for line in (md_table(header, rows), "")]
    if d.chain:
        out += ["## Generation chain", "",
                "Each model trains afresh (from its starting weights) on the set its predecessors selected, "
                "is compared with a random "
                "set of the same size (containing the same cycle-0 set), then continues the cycles as the next "
                "surrogate.", "", md_table(CHAIN_HEADER, chain_rows(d.chain)), ""]
    if d.deploy:
        cols, rows = deploy_rows(d.deploy)
        out += ["## Which surrogates were deployable", "", deploy_sentence(d.deploy), ""]
        if rows:
            out += [md_table(cols, rows), ""]
    if d.entropy:
        e = d.entropy
        out += ["## Entropy of models trained on the same random subset (paper Fig. 4)", "",
                f"Each model was trained on the same random {e['train_size']} images "
                f"({e['train_fraction']:.0%} of a {e['pool_size']}-image pool) and scored the other "
                f"{e['held_out_size']}; the top {e['top_fraction']:.0%} entropy images are highlighted.", ""]
        if "entropy" in images:
            out += [f"![entropy histograms]({images['entropy']})", ""]
        out += [md_table(ENTROPY_HEADER, entropy_rows(e)), ""]
        out += [f"- {line}" for line in ratio_lines(e)]
        out += ["- Paper (Cityscapes): mean entropy of MNV3 ×1.9 that of Xc-65.", ""]
    if d.curves:
        out += ["## Active-learning curves (paper Fig. 3)", "",
                "Metric of each scoring model after every cycle of its own AL run, vs the labelled share of the "
                "pool (mean ± std over seeds).", ""]
        if "curves" in images:
            out += [f"![AL curves]({images['curves']})", ""]
        out += [md_table(CURVE_HEADER, curve_rows(d.curves)), ""]
    if d.fleet_dir is not None:
        from al.fleet.report import section_markdown

        out += section_markdown(d.fleet_dir, prefix=f"{d.fleet_dir.name}/")
    out += ["## What this can and cannot show", ""] + [f"- {n}" for n in honest_note(d)] + [""]
    out += runinfo_markdown(d)
    if d.config_text:
        out += ["## Config", "", "```toml", d.config_text.rstrip(), "```", ""]
    return "\n".join(out)


def runinfo_markdown(d: ExperimentData) -> list[str]:
    exp, t = d.experiment, d.timing or {}
    out = ["## Seeds, timing, machine", ""]
    if exp.get("seeds") is not None:
        out.append(f"- seeds: {', '.join(map(str, exp['seeds']))}")
    if t.get("total_s") is not None:
        out.append(f"- wall time: {t['total_s']:.1f} s (this invocation; sub-runs reused on resume: "
                   f"{t.get('reused', 0)})")
    for k, v in (exp.get("meta") or {}).items():
        out.append(f"- {k}: {v}")
    if t.get("parts"):
        out += ["", md_table(TIMING_HEADER, timing_rows(t))]
    return [*out, ""]
