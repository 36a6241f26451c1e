"""The budget sweep's part of a report: tables (Δ per budget and pair, AULC, crossover), the seed-spread
warning and the Δ(budget) plot, as one section of the report model (`sweep_section`, in
`al.report.sections.SECTIONS`); the row builders also feed the terminal tables of `al surrogate`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

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


def plot_sweep(pairs: Sequence[PairSweep], path: str | Path, *, metric: str = "top1", experiment: str = "",
               seeds: int | None = None) -> Path:
    """Δ(budget) per pair with its 95 % CI band, and the zero line; the title names the experiment
    (its data) and the seed count when given."""
    from hwbench.report.figstyle import save_png, style

    with style():
        import matplotlib.pyplot as plt

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
        ax.set_ylabel(f"Δ {metric} vs random (p.p.)")
        on = f"{experiment}: " if experiment else ""
        n = f", {seeds} seeds" if seeds else ""
        ax.set_title(f"{on}surrogate − random by budget (mean, 95 % CI{n})")
        ax.legend()
        ax.grid(alpha=0.3)
        fig.tight_layout()
        return save_png(fig, path)


def read_sweep(root: Path) -> list[dict]:
    from hwbench.io import read_jsonl

    path = Path(root) / "sweep.jsonl"
    return list(read_jsonl(path)) if path.is_file() else []


def sweep_section(d: Any, ctx: Any) -> Any:
    """The sweep's section (with sweep.csv and sweep_delta.png), or for a plain matrix the seed-spread warning."""
    from hwbench.csvfile import records_csv
    from hwbench.io import atomic_write_text
    from hwbench.report.doc import Bullets, Section, Table, Text

    records = read_sweep(d.root)
    exp = d.experiment
    pairs = sweep_pairs(records, deployments=exp.get("deployment"), surrogates=exp.get("surrogates")) if records else []
    if not pairs:
        warnings = spread_warnings(d.records) if d.records else []
        return Section("Seed spread of the random column", id="spread").add(Bullets(warnings)) if warnings else None
    ctx.written["sweep_csv"] = atomic_write_text(ctx.out / "sweep.csv", records_csv(records))
    fig = ctx.figure("sweep_png", "sweep_delta.png", lambda path: plot_sweep(
        pairs, path, metric=records[0]["metric"], experiment=f"{exp.get('name', '')} ({exp.get('dataset', '?')})",
        seeds=len(exp.get("seeds") or []) or None),
                     alt="Δ by budget with 95 % CI bands per pair")
    sec = Section("Budget sweep: where does a surrogate start to pay?", id="sweep")
    sec.add(Text(SWEEP_TEXT), fig, Table(DELTA_HEADER, delta_rows(records, pairs)),
            Table(SUMMARY_HEADER, summary_rows(pairs)))
    warnings = spread_warnings(records)
    if warnings:
        sec.add(Bullets([f"warning: {w}" for w in warnings]))
    return sec
