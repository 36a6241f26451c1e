"""The budget sweep's part of a report: tables (Δ per budget and pair, AULC, crossover), the seed-spread
warning and the Δ(budget) plot. Section builders return rows; `sweep_markdown` / `sweep_html` render them.
"""

from __future__ import annotations

import html
from collections.abc import Mapping, Sequence
from pathlib import Path

from al.report.format import model_label
from al.sweep import PairSweep, random_spread, spread_warnings, sweep_pairs

DELTA_HEADER = ["pair", "labels", "Δ (p.p.)", "95 % CI", "p", "verdict", "random mean ± sd"]
SUMMARY_HEADER = ["pair", "ΔAULC (p.p.)", "95 % CI", "verdict", "crossover (labels)"]
SWEEP_TEXT = ("Each deployment model trains after every budget on the surrogate's selection so far and on a "
              "nested random set of the same size (each contains the smaller ones and the shared cycle-0 set), "
              "same init and training seed per row. Δ = surrogate − random, paired by seed; 95 % CI: t-interval "
              "over seeds, p: paired t-test; verdict beat / lose when the CI lies above / below 0. AULC: area "
              "under the learning curve over the budgets, divided by their range (a mean metric). Crossover: the "
              "smallest budget from which every CI lies above 0, with a seed bootstrap of where the mean Δ "
              "crosses 0 (linear between budgets).")


def pair_label(p: PairSweep) -> str:
    return f"{model_label(p.deployment)} ← {model_label(p.surrogate)}"


def _ci(d) -> str:
    return "–" if d.ci_low is None else f"[{d.ci_low:+.2f}, {d.ci_high:+.2f}]"


def delta_rows(records: Sequence[Mapping], pairs: Sequence[PairSweep]) -> list[list[str]]:
    spread = random_spread(records)
    means: dict[tuple[str, int], list[float]] = {}
    for r in records:
        if r["surrogate"] == "random":
            means.setdefault((r["deployment"], int(r["budget"])), []).append(float(r["value"]))
    rows = []
    for p in pairs:
        for b, d in zip(p.budgets, p.diffs, strict=True):
            vals = means.get((p.deployment, b), [])
            sd = spread.get((p.deployment, b), (float("nan"), 0))[0]
            rnd = f"{sum(vals) / len(vals):.2f} ± {sd:.2f}" if vals else "–"
            rows.append([pair_label(p), str(b), f"{d.delta:+.2f}", _ci(d),
                         "–" if d.p_value is None else f"{d.p_value:.3f}", d.verdict, rnd])
    return rows


def summary_rows(pairs: Sequence[PairSweep]) -> list[list[str]]:
    return [[pair_label(p), f"{p.aulc.delta:+.2f}", _ci(p.aulc), p.aulc.verdict, p.crossover.text()] for p in pairs]


def plot_sweep(pairs: Sequence[PairSweep], path: str | Path, *, metric: str = "top1") -> Path:
    """Δ(budget) per pair with its 95 % CI band, and the zero line."""
    import matplotlib

    matplotlib.use("Agg")
    import io

    import matplotlib.pyplot as plt

    from hwbench.io import atomic_write_bytes

    fig, ax = plt.subplots(figsize=(7, 4))
    for p in pairs:
        x = list(p.budgets)
        y = [d.delta for d in p.diffs]
        lo = [d.ci_low if d.ci_low is not None else d.delta for d in p.diffs]
        hi = [d.ci_high if d.ci_high is not None else d.delta for d in p.diffs]
        (line,) = ax.plot(x, y, marker="o", label=pair_label(p))
        ax.fill_between(x, lo, hi, color=line.get_color(), alpha=0.2)
    ax.axhline(0, color="black", lw=0.8)
    ax.set_xlabel("labelled images")
    ax.set_ylabel(f"Δ {metric} vs random (p.p.), 95 % CI")
    ax.set_title("surrogate − random by budget (paired by seed)")
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110)
    plt.close(fig)
    return atomic_write_bytes(Path(path), buf.getvalue())


def sweep_markdown(records: Sequence[Mapping], *, image: str | None = None, deployments: Sequence[str] | None = None,
                   surrogates: Sequence[str] | None = None) -> list[str]:
    from al.report.markdown import md_table

    pairs = sweep_pairs(records, deployments=deployments, surrogates=surrogates)
    if not pairs:
        return []
    out = ["## Budget sweep: where does a surrogate start to pay?", "", SWEEP_TEXT, ""]
    if image:
        out += [f"![Δ by budget]({image})", ""]
    out += [md_table(DELTA_HEADER, delta_rows(records, pairs)), "", md_table(SUMMARY_HEADER, summary_rows(pairs)), ""]
    out += [f"- warning: {w}" for w in spread_warnings(records)]
    return out + [""]


def sweep_html(records: Sequence[Mapping], *, image_b64: str | None = None, deployments: Sequence[str] | None = None,
               surrogates: Sequence[str] | None = None) -> str:
    pairs = sweep_pairs(records, deployments=deployments, surrogates=surrogates)
    if not pairs:
        return ""

    def table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
        head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
        body = "".join("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in r) + "</tr>" for r in rows)
        return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"

    parts = ["<h2>Budget sweep: where does a surrogate start to pay?</h2>", f"<p>{html.escape(SWEEP_TEXT)}</p>"]
    if image_b64:
        parts.append(f'<img alt="Δ by budget" src="data:image/png;base64,{image_b64}">')
    parts += [table(DELTA_HEADER, delta_rows(records, pairs)), table(SUMMARY_HEADER, summary_rows(pairs))]
    parts += [f"<p><b>warning:</b> {html.escape(w)}</p>" for w in spread_warnings(records)]
    return "\n".join(parts)
