"""Reports of surrogate experiments and entropy analyses: markdown (GitHub), HTML, CSV, PNG.

`write_report(exp_dir)` reads what an experiment directory holds and renders every section it
has data for:

- `records.jsonl`  surrogate × deployment records -> the paper's Table 3 layout, beats-random count,
                   best surrogate per row, paired differences against random;
- `chain.jsonl`    generation-chain records;
- `deploy.json`    which surrogates were deployable on the old fleet and why (device, latency_ms, budget_ms);
- `entropy.json` + `entropy_scores.npz`  entropy histograms and mean-entropy ratios (paper Fig. 4);
- run directories (`metrics.jsonl`) anywhere below -> AL curves (paper Fig. 3);
- `experiment.toml` / `config.toml`, `timing.json`, `meta.json` -> config, seeds, timing.

Rendering functions are pure (data in, text out) so they are testable without an experiment.
"""

from __future__ import annotations

import html
import json
import logging
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from al.analysis import (
    RANDOM,
    Matrix,
    aggregate,
    beats_random,
    best_per_row,
    compare_to_random,
    find_runs,
    load_entropy_scores,
    matrix_records,
    model_label,
    plot_al_curves,
    plot_entropy_histograms,
    row_scale,
    run_curve,
)
from hwbench.errors import UserError
from hwbench.io import atomic_write_text, read_jsonl

log = logging.getLogger(__name__)

METRIC_LABELS = {"miou": "mIoU (%)", "top1": "Top-1 (%)"}
UP, DOWN, EVEN = "▲", "▼", "="  # vs random, readable in GitHub markdown
SELF_MARK = "◆"  # diagonal: the model picked for itself
# Row colour scale in markdown (GitHub cannot colour table cells): worst -> best quarter of the row's range.
SQUARES = ("🟥", "🟧", "🟨", "🟩")


# --------------------------------------------------------------------------- loading


ENTROPY_SUBDIR = "entropy"


@dataclass
class ExperimentData:
    """Everything a report can show; absent parts are None / empty."""

    root: Path
    records: list[dict] = field(default_factory=list)
    chain: list[dict] = field(default_factory=list)
    deploy: dict | None = None
    entropy: dict | None = None
    entropy_scores: dict | None = None
    curves: list[dict] = field(default_factory=list)
    config_text: str = ""
    experiment: dict = field(default_factory=dict)  # experiment.json: name, kind, dataset, schedule ...
    timing: dict | None = None


def load_experiment(exp_dir: str | Path) -> ExperimentData:
    """Read an experiment (or entropy-analysis) directory; UserError when it holds no results."""
    root = Path(exp_dir)
    if not root.is_dir():
        raise UserError(f"no such experiment directory: {root}")
    d = ExperimentData(root=root)
    if (root / "records.jsonl").is_file():
        d.records = list(read_jsonl(root / "records.jsonl"))
    if (root / "chain.jsonl").is_file():
        d.chain = list(read_jsonl(root / "chain.jsonl"))
    for name, attr in (("deploy.json", "deploy"), ("timing.json", "timing"), ("experiment.json", "experiment")):
        if (root / name).is_file():
            setattr(d, attr, json.loads((root / name).read_text(encoding="utf-8")))
    # An entropy analysis lives in the directory itself (`al entropy --out DIR`) or in its `entropy/`
    # subdirectory, so one report can show a surrogate experiment together with its entropy histograms.
    for entropy_dir in (root, root / ENTROPY_SUBDIR):
        if (entropy_dir / "entropy.json").is_file():
            d.entropy = json.loads((entropy_dir / "entropy.json").read_text(encoding="utf-8"))
            if (entropy_dir / "entropy_scores.npz").is_file():
                d.entropy_scores = load_entropy_scores(entropy_dir / "entropy_scores.npz")
            break
    for cfg_name in ("experiment.toml", "config.toml"):
        if (root / cfg_name).is_file():
            d.config_text = (root / cfg_name).read_text(encoding="utf-8")
            break
    for run_dir in find_runs(root):
        try:
            d.curves.extend(run_curve(run_dir))
        except (OSError, ValueError, KeyError) as e:  # a damaged run dir must not sink the report
            log.warning("skipping AL curve of %s: %s", run_dir, e)
    if not (d.records or d.chain or d.entropy or d.curves):
        raise UserError(f"{root} holds no experiment results (records.jsonl, chain.jsonl, entropy.json or "
                        "run directories); run `al surrogate` or `al entropy` with --out there first")
    return d


# --------------------------------------------------------------------------- formatting helpers


def fmt_cell(mean: float, std: float, digits: int = 1) -> str:
    """`59.6 ± 0.5`; the std is left out when undefined (one seed)."""
    if math.isnan(mean):
        return "–"
    return f"{mean:.{digits}f}" if math.isnan(std) else f"{mean:.{digits}f} ± {std:.{digits}f}"


def fmt_delta(delta: float, digits: int = 2) -> str:
    return "–" if math.isnan(delta) else f"{delta:+.{digits}f}"


def vs_random_mark(delta: float) -> str:
    return UP if delta > 0 else DOWN if delta < 0 else EVEN


def scale_colour(t: float) -> str:
    """Worst (0, red) -> middle (0.5, yellow) -> best (1, green): Excel's 3-colour scale."""
    stops = ((0.0, (248, 105, 107)), (0.5, (255, 235, 132)), (1.0, (99, 190, 123)))
    t = min(1.0, max(0.0, t))
    (t0, c0), (t1, c1) = (stops[0], stops[1]) if t <= 0.5 else (stops[1], stops[2])
    w = (t - t0) / (t1 - t0)
    r, g, b = (round(a + (bb - a) * w) for a, bb in zip(c0, c1, strict=True))
    return f"#{r:02x}{g:02x}{b:02x}"


def metric_label(metric: str) -> str:
    return METRIC_LABELS.get(metric, metric)


def _md_table(header: Sequence[str], rows: Sequence[Sequence[Any]], align: Sequence[str] | None = None) -> str:
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


def _html_table(header: Sequence[str], rows: Sequence[Sequence[Any]], *, raw: bool = False) -> str:
    esc = (lambda x: str(x)) if raw else (lambda x: html.escape(str(x)))
    head = "".join(f"<th>{html.escape(str(h))}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{esc(c)}</td>" for c in r) + "</tr>" for r in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


# --------------------------------------------------------------------------- surrogate matrix


def scale_square(t: float) -> str:
    """Coloured square for a position in the row's range: 🟥 worst quarter … 🟩 best quarter."""
    return SQUARES[min(len(SQUARES) - 1, int(max(0.0, t) * len(SQUARES)))]


def _cell_texts(m: Matrix, row: str, digits: int, bold: Callable[[str], str]) -> dict[str, str]:
    """Column -> cell text of one matrix row: mean ± std (best surrogate through `bold`), ▲/▼ vs random,
    ◆ on the diagonal; columns without data are left out."""
    best = best_per_row(m).get(row)
    base = m.cell(row, RANDOM)
    out = {}
    for c in m.columns:
        cell = m.cell(row, c)
        if cell is None or cell.n == 0:
            continue
        text = fmt_cell(cell.mean, cell.std, digits)
        text = bold(text) if c == best else text
        if c != RANDOM and base is not None and base.n:
            text += f" {vs_random_mark(cell.mean - base.mean)}"
        if c == row:
            text += f" {SELF_MARK}"
        out[c] = text
    return out


def matrix_markdown(m: Matrix, *, digits: int = 1) -> str:
    """Table 3 layout in GitHub markdown: each cell colour-coded within its row (🟥 worst … 🟩 best),
    best surrogate per row in bold, ▲/▼ vs random, ◆ diagonal."""
    header = ["deployment \\ surrogate", *(model_label(c) for c in m.columns)]
    rows = []
    for r in m.rows:
        scale, texts = row_scale(m, r), _cell_texts(m, r, digits, lambda t: f"**{t}**")
        rows.append([model_label(r), *(f"{scale_square(scale[c])} {texts[c]}" if c in texts else "–"
                                       for c in m.columns)])
    return _md_table(header, rows)


def matrix_html(m: Matrix, *, digits: int = 1) -> str:
    """Table 3 layout in HTML, every row colour-coded from worst (red) to best (green)."""
    head = "".join(f"<th>{html.escape(model_label(c))}</th>" for c in m.columns)
    body = []
    for r in m.rows:
        scale, texts = row_scale(m, r), _cell_texts(m, r, digits, lambda t: f"<b>{t}</b>")
        tds = [f'<td class="cell" style="background:{scale_colour(scale[c])}" data-scale="{scale[c]:.3f}">'
               f"{texts[c]}</td>" if c in texts else "<td>–</td>" for c in m.columns]
        body.append(f"<tr><th>{html.escape(model_label(r))}</th>{''.join(tds)}</tr>")
    return (f'<table class="matrix"><thead><tr><th>deployment \\ surrogate</th>{head}</tr></thead>'
            f"<tbody>{''.join(body)}</tbody></table>")


def comparison_rows(m: Matrix) -> list[list[str]]:
    """Rows of the paired surrogate-vs-random table."""
    return [[model_label(c.deployment), model_label(c.surrogate) + (f" {SELF_MARK}" if c.diagonal else ""),
             fmt_delta(c.delta), "–" if math.isnan(c.delta_std) else f"{c.delta_std:.2f}", f"{c.wins}/{c.paired}"]
            for c in compare_to_random(m)]


def summary_lines(m: Matrix) -> list[str]:
    """Beats-random count and best surrogate per row, as sentences."""
    br = beats_random(m)
    lines = [f"Surrogate/deployment pairs beating random (difference of means, diagonal excluded): "
             f"**{br.wins} of {br.pairs}** (paper, Tables 3–5: 25 of 28)."]
    if br.diagonal_pairs:
        lines.append(f"Models picking for themselves (diagonal {SELF_MARK}) beating random: "
                     f"{br.diagonal_wins} of {br.diagonal_pairs}.")
    best_any = best_per_row(m, include_random=True)
    for r, c in best_per_row(m).items():
        cell = m.cell(r, c)
        base = m.cell(r, RANDOM)
        note = ""
        if base is not None and base.n:
            note = f", {fmt_delta(cell.mean - base.mean)} vs random"
            if best_any.get(r) == RANDOM:
                note += "; random is best in this row"
        lines.append(f"Best surrogate for {model_label(r)}: {model_label(c)} ({fmt_cell(cell.mean, cell.std)}{note}).")
    return lines


# --------------------------------------------------------------------------- other sections


def deploy_rows(deploy: Mapping[str, Any]) -> tuple[list[str], list[list[Any]]]:
    """Columns and rows of the deployability table (verdict records of hwbench.deploy)."""
    verdicts = deploy.get("verdicts") or []
    cols = [c for c in ("model", "device", "mode", "precision", "latency_ms", "share", "effective_latency_ms",
                        "budget_ms", "memory_used_gb", "deployable", "reason")
            if any(c in v for v in verdicts)]
    rows = []
    for v in verdicts:
        row = []
        for c in cols:
            x = v.get(c)
            if c == "model":
                x = f"{model_label(x)} (`{x}`)"
            elif isinstance(x, float):
                x = f"{x:.2f}" if c in ("share", "memory_used_gb") else f"{x:.1f}"
            elif isinstance(x, bool):
                x = "yes" if x else "no"
            row.append("–" if x is None else x)
        rows.append(row)
    return cols, rows


def deploy_sentence(deploy: Mapping[str, Any]) -> str:
    src = deploy.get("source") or {}
    chosen = ", ".join(model_label(m) for m in deploy.get("surrogates", []))
    if not src:
        return f"Surrogates were listed in the config: {chosen}."
    rule = ", ".join(f"{k}={v}" for k, v in src.items() if v not in (None, "", []))
    text = (f"Surrogates are the models `hwbench.deploy` finds deployable on the old fleet ({rule}): "
            f"**{chosen or 'none'}**. Latencies are `{src.get('mode', 'paper')}`-mode estimates, not measurements.")
    if src.get("mode", "paper") == "paper":
        text += (" Paper mode divides GMACs by the vendor's TOPS (which count 2 ops per MAC and, for Xavier/Orin, "
                 "INT8 on GPU + DLA), so it is about 2x optimistic for a GPU-only engine; `peak` and `roofline` "
                 "modes are the realistic ones.")
    if any(v.get("model") == "deeplabv3plus_resnet20" for v in deploy.get("verdicts") or []):
        text += (" Res-20 here is the CIFAR-style ResNet-20 made OS16 (32.06 GMACs at 1024x2048); the paper's "
                 "60.3 GOPs (46.4 ms on TX2) cannot be reproduced from its description.")
    return text


def chain_rows(chain: Sequence[Mapping[str, Any]]) -> list[list[Any]]:
    """One row per (generation, model): inherited-set metric vs random of the same size, over seeds."""
    import numpy as np

    gens: dict[tuple[int, str], dict[str, dict[int, float]]] = {}
    meta: dict[tuple[int, str], dict] = {}
    for r in chain:
        key = (int(r["generation"]), r["deployment"])
        side = "random" if r["surrogate"] == RANDOM else "picked"
        gens.setdefault(key, {}).setdefault(side, {})[int(r["seed"])] = float(r["value"])
        if side == "picked":
            meta[key] = r
    rows = []
    for key in sorted(gens):
        g, model = key
        picked, rand = gens[key].get("picked", {}), gens[key].get("random", {})
        pv, rv = np.array(list(picked.values())), np.array(list(rand.values()))
        sd = lambda a: float(a.std(ddof=1)) if a.size > 1 else math.nan  # noqa: E731
        diffs = [picked[s] - rand[s] for s in picked if s in rand]
        m = meta.get(key, {})
        rows.append([g, model_label(model), model_label(m.get("surrogate", "?")), m.get("labelled", "–"),
                     fmt_cell(float(pv.mean()) if pv.size else math.nan, sd(pv)),
                     fmt_cell(float(rv.mean()) if rv.size else math.nan, sd(rv)),
                     fmt_delta(float(pv.mean() - rv.mean()) if pv.size and rv.size else math.nan),
                     f"{sum(d > 0 for d in diffs)}/{len(diffs)}"])
    return rows


CURVE_HEADER = ["model", "strategy", "first: labelled %", "metric", "last: labelled %", "metric", "seeds"]


def curve_rows(points: Sequence[Mapping[str, Any]]) -> list[list[Any]]:
    """First and last point of every (model, strategy) AL curve, mean ± std over seeds."""
    from al.analysis import curve_table

    table = curve_table(points)
    rows = []
    for key in dict.fromkeys((r["model"], r["strategy"]) for r in table):
        pts = [r for r in table if (r["model"], r["strategy"]) == key]
        a, b = pts[0], pts[-1]
        rows.append([model_label(key[0]), key[1], f"{100 * a['fraction']:.0f}", fmt_cell(a["mean"], a["std"]),
                     f"{100 * b['fraction']:.0f}", fmt_cell(b["mean"], b["std"]), b["n"]])
    return rows


CHAIN_HEADER = ["gen", "model", "picked by", "labelled", "inherited set", "random (same size)", "Δ", "wins"]


def entropy_rows(entropy: Mapping[str, Any]) -> list[list[Any]]:
    return [[model_label(s["model"]), s["n"], f"{s['mean']:.4f}", f"{s['std']:.4f}", f"{s['median']:.4f}",
             f"{s['top_threshold']:.4f}"] for s in entropy.get("summary", [])]


ENTROPY_HEADER = ["model", "images", "mean", "std", "median", "top-10 % threshold"]


def ratio_lines(entropy: Mapping[str, Any], limit: int = 6) -> list[str]:
    """Mean-entropy ratios `a / b` with a > b (each unordered pair once), largest first."""
    ratios = [r for r in entropy.get("ratios", []) if r["ratio"] >= 1.0]
    return [f"mean entropy {model_label(r['numerator'])} / {model_label(r['denominator'])} = ×{r['ratio']:.2f}"
            for r in ratios[:limit]]


def honest_note(d: ExperimentData) -> list[str]:
    """What the embedded data can and cannot show."""
    exp = d.experiment
    notes = []
    if exp.get("dataset", "").startswith("synthetic") or "synthetic" in d.config_text:
        notes.append("The data set is synthetic (procedurally drawn scenes): it exercises the pipeline end to end, "
                     "but its numbers say nothing about Cityscapes, ADE20K or ImageNet accuracy.")
    if d.records or d.chain:
        n_seeds = len({r["seed"] for r in (d.records or d.chain)})
        notes.append(f"Means and ± are over {n_seeds} seed(s); ± is the sample standard deviation (ddof=1). "
                     "With few seeds a difference smaller than about two standard deviations is not evidence "
                     "of a real effect; the per-seed wins column shows how consistent a difference is.")
        notes.append("`beats random` compares means only; it is not a significance test. Each seed shares "
                     "its cycle-0 set, initial weights and training seed across a row's columns, so the "
                     "columns differ only in the data the surrogates selected.")
        notes.append("Deployment models are trained once per selection with the small recipe in the config; "
                     "a longer schedule or another data set can change the ranking.")
    if d.deploy:
        notes.append("Deployability is decided from estimated latency (the paper's GMACs / TOPS rule or a "
                     "roofline), not from measurements on the device; `hwbench measure` gives the measured side.")
    if d.timing:
        notes.append("Timings are wall-clock on the machine that ran the experiment (see meta below) and "
                     "include data loading; they are not device latencies.")
    if d.entropy:
        notes.append("Entropy is the mean pixel entropy per image (nats) of models trained on one random subset; "
                     "one subset and one seed, so the histograms show a tendency, not a distribution over "
                     "training runs.")
    return notes


# --------------------------------------------------------------------------- documents


def render_markdown(d: ExperimentData, *, images: Mapping[str, str]) -> str:
    exp = d.experiment
    title = exp.get("name") or d.root.name
    out = [f"# {_kind(d)}: {title}", ""]
    if exp.get("summary"):
        out += [exp["summary"], ""]
    metric = d.records[0]["metric"] if d.records else None
    if d.records:
        m = aggregate(d.records, rows=exp.get("deployment"), columns=exp.get("surrogates"), metric=metric)
        out += [f"## Deployment models trained on surrogate-selected data — {metric_label(metric)}", "",
                "Rows: deployment model trained from scratch on the final selection of the column's surrogate; "
                f"`random`: a random selection of the same size that contains the shared cycle-0 set. "
                f"Colour within each row, worst to best: {' '.join(SQUARES)} (as the paper's Table 3); "
                f"**bold**: best surrogate in the row; {UP}/{DOWN}: mean above/below random; "
                f"{SELF_MARK}: the model picked for itself. Mean ± sample std (ddof=1) over seeds.", "",
                matrix_markdown(m), ""]
        out += [f"- {line}" for line in summary_lines(m)] + [""]
        comp = comparison_rows(m)
        if comp:
            out += ["### Surrogate vs random, paired by seed", "",
                    "Δ = mean(surrogate) − mean(random) in percentage points; std of the per-seed differences; "
                    "wins = seeds where the surrogate's selection did better than that seed's random one.", "",
                    _md_table(["deployment", "surrogate", "Δ (p.p.)", "std of Δ", "wins"], comp), ""]
    if d.chain:
        out += ["## Generation chain", "",
                "Each model trains from scratch on the set its predecessors selected, is compared with a random "
                "set of the same size (containing the same cycle-0 set), then continues the cycles as the next "
                "surrogate.", "", _md_table(CHAIN_HEADER, chain_rows(d.chain)), ""]
    if d.deploy:
        cols, rows = deploy_rows(d.deploy)
        out += ["## Which surrogates were deployable", "", deploy_sentence(d.deploy), ""]
        if rows:
            out += [_md_table(cols, rows), ""]
    if d.entropy:
        e = d.entropy
        out += ["## Entropy of models trained on the same random subset (paper Fig. 4)", "",
                f"Each model was trained on the same random {e['train_size']} images "
                f"({e['train_fraction']:.0%} of a {e['pool_size']}-image pool) and scored the other "
                f"{e['held_out_size']}; the top {e['top_fraction']:.0%} entropy images are highlighted.", ""]
        if "entropy" in images:
            out += [f"![entropy histograms]({images['entropy']})", ""]
        out += [_md_table(ENTROPY_HEADER, entropy_rows(e)), ""]
        out += [f"- {line}" for line in ratio_lines(e)]
        out += ["- Paper (Cityscapes): mean entropy of MNV3 ×1.9 that of Xc-65.", ""]
    if d.curves:
        out += ["## Active-learning curves (paper Fig. 3)", "",
                "Metric of each scoring model after every cycle of its own AL run, vs the labelled share of the "
                "pool (mean ± std over seeds).", ""]
        if "curves" in images:
            out += [f"![AL curves]({images['curves']})", ""]
        out += [_md_table(CURVE_HEADER, curve_rows(d.curves)), ""]
    out += ["## What this can and cannot show", ""] + [f"- {n}" for n in honest_note(d)] + [""]
    out += _runinfo_markdown(d)
    if d.config_text:
        out += ["## Config", "", "```toml", d.config_text.rstrip(), "```", ""]
    return "\n".join(out)


def _runinfo_markdown(d: ExperimentData) -> list[str]:
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
        out += ["", _md_table(TIMING_HEADER, timing_rows(t))]
    return [*out, ""]


TIMING_HEADER = ["sub-run kind", "count", "reused", "total s", "mean s"]


def timing_rows(timing: Mapping[str, Any]) -> list[list[Any]]:
    """Seconds per kind of sub-run (AL run, deployment training, ...) of the last invocation."""
    by_kind: dict[str, list[Mapping[str, Any]]] = {}
    for p in timing.get("parts", []):
        by_kind.setdefault(p["kind"], []).append(p)
    return [[k, len(v), sum(bool(p.get("reused")) for p in v), f"{sum(float(p['seconds']) for p in v):.1f}",
             f"{sum(float(p['seconds']) for p in v) / len(v):.1f}"] for k, v in by_kind.items()]


_CSS = """body{font-family:system-ui,sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;color:#222}
table{border-collapse:collapse;margin:0.8em 0}th,td{border:1px solid #ccc;padding:4px 8px;text-align:right}
th:first-child,td:first-child{text-align:left}thead th{background:#f2f2f2}
.legend span{display:inline-block;padding:2px 8px;margin-right:2px}
pre{background:#f6f8fa;padding:1em;overflow:auto}img{max-width:100%}"""


def render_html(d: ExperimentData, *, images: Mapping[str, str]) -> str:
    exp = d.experiment
    title = html.escape(str(exp.get("name") or d.root.name))
    esc = html.escape
    out = [f"<!doctype html><html><head><meta charset='utf-8'><title>{title}</title><style>{_CSS}</style>"
           f"</head><body><h1>{_kind(d)}: {title}</h1>"]
    if exp.get("summary"):
        out.append(f"<p>{esc(exp['summary'])}</p>")
    if d.records:
        metric = d.records[0]["metric"]
        m = aggregate(d.records, rows=exp.get("deployment"), columns=exp.get("surrogates"), metric=metric)
        legend = "".join(f'<span style="background:{scale_colour(t)}">{w}</span>'
                         for t, w in ((0.0, "worst"), (0.5, ""), (1.0, "best")))
        out += [f"<h2>Deployment models trained on surrogate-selected data: {esc(metric_label(metric))}</h2>",
                "<p>Rows: deployment models trained from scratch on each surrogate's final selection; "
                "<code>random</code>: a random selection of the same size containing the shared cycle-0 set. "
                f"Colour per row: <span class='legend'>{legend}</span>; bold: best surrogate; {UP}/{DOWN} vs random; "
                f"{SELF_MARK} the model picked for itself. Mean ± sample std (ddof=1) over seeds.</p>",
                matrix_html(m), "<ul>" + "".join(f"<li>{_md_bold_to_html(esc(x))}</li>" for x in summary_lines(m))
                + "</ul>"]
        comp = comparison_rows(m)
        if comp:
            out += ["<h3>Surrogate vs random, paired by seed</h3>",
                    _html_table(["deployment", "surrogate", "Δ (p.p.)", "std of Δ", "wins"], comp)]
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
            out.append(f"<img src='{esc(images['entropy'])}' alt='entropy histograms'>")
        out.append(_html_table(ENTROPY_HEADER, entropy_rows(d.entropy)))
        out.append("<ul>" + "".join(f"<li>{esc(x)}</li>" for x in ratio_lines(d.entropy)) + "</ul>")
    if d.curves:
        out.append("<h2>Active-learning curves (paper Fig. 3)</h2>")
        if "curves" in images:
            out.append(f"<img src='{esc(images['curves'])}' alt='AL curves'>")
        out.append(_html_table(CURVE_HEADER, curve_rows(d.curves)))
    out += ["<h2>What this can and cannot show</h2>",
            "<ul>" + "".join(f"<li>{_md_code_to_html(esc(n))}</li>" for n in honest_note(d)) + "</ul>"]
    info = _runinfo_markdown(d)[2:]
    out.append("<h2>Seeds, timing, machine</h2><ul>" + "".join(f"<li>{esc(x[2:])}</li>" for x in info
                                                              if x.startswith("- ")) + "</ul>")
    if d.timing and d.timing.get("parts"):
        out.append(_html_table(TIMING_HEADER, timing_rows(d.timing)))
    if d.config_text:
        out += ["<h2>Config</h2>", f"<pre>{esc(d.config_text)}</pre>"]
    out.append("</body></html>")
    return "\n".join(out)


def _kind(d: ExperimentData) -> str:
    if d.records or d.chain:
        return "Surrogate experiment"
    return "Entropy analysis" if d.entropy else "Active-learning runs"


def _md_bold_to_html(s: str) -> str:
    import re

    return _md_code_to_html(re.sub(r"\*\*(.+?)\*\*", r"<b>\1</b>", s))


def _md_code_to_html(s: str) -> str:
    import re

    return re.sub(r"`(.+?)`", r"<code>\1</code>", s)


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
    written["markdown"] = atomic_write_text(out / "report.md", render_markdown(d, images=images))
    written["html"] = atomic_write_text(out / "report.html", render_html(d, images=images))
    return written
