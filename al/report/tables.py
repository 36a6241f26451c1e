"""The report's tables and sentences, as plain rows of text: rendered by `markdown` and `html` alike."""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from al.report.format import (
    SELF_MARK,
    fmt_cell,
    fmt_delta,
    model_label,
    vs_random_mark,
)
from al.stats import RANDOM, Comparison, Matrix, beats_random, best_per_row, compare_to_random, curve_table

if TYPE_CHECKING:
    from al.report.load import ExperimentData

def cell_texts(m: Matrix, row: str, digits: int, bold: Callable[[str], str]) -> dict[str, str]:
    """Column -> cell text of one matrix row: mean ± std (best surrogate through `bold`), ▲/▼ vs random,
    ◆ on the diagonal, then (Δ ± 95 % CI half-width) of the paired difference with random; columns
    without data are left out."""
    best = best_per_row(m).get(row)
    base = m.cell(row, RANDOM)
    paired = {c.surrogate: c for c in compare_to_random(m) if c.deployment == row}
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
        if c in paired and paired[c].diff.half_width is not None:
            text += f" (Δ {fmt_delta(paired[c].delta)} ± {paired[c].diff.half_width:.2f})"
        out[c] = text
    return out


COMPARISON_HEADER = ["deployment", "surrogate", "seeds", "Δ (p.p.)", "95 % CI", "p", "verdict", "seeds for ±1 p.p."]


def fmt_ci(c: Comparison) -> str:
    d = c.diff
    if d.ci_low is None:
        return "–"
    return f"[{d.ci_low:+.2f}, {d.ci_high:+.2f}]" + (" (bootstrap)" if d.method == "bootstrap" else "")


def comparison_rows(m: Matrix) -> list[list[str]]:
    """Rows of the paired surrogate-vs-random table (`COMPARISON_HEADER`)."""
    return [[model_label(c.deployment), model_label(c.surrogate) + (f" {SELF_MARK}" if c.diagonal else ""),
             str(c.paired), fmt_delta(c.delta), fmt_ci(c),
             "–" if c.diff.p_value is None else f"{c.diff.p_value:.3f}", c.verdict,
             "–" if c.diff.seeds_for_1pt is None else str(c.diff.seeds_for_1pt)]
            for c in compare_to_random(m)]


def verdict_line(m: Matrix) -> str:
    """`beat X, tie Y, lose Z of N` (95 % CI, diagonal excluded), the line the CLI and reports share."""
    br = beats_random(m)
    return (f"pairs vs random (95 % CI of the paired difference, diagonal excluded): beat {br.wins}, "
            f"tie {br.ties}, lose {br.losses} of {br.pairs}")


def summary_lines(m: Matrix) -> list[str]:
    """Beat/tie/lose counts, CI width, seeds needed, best surrogate per row, as sentences."""
    br = beats_random(m)
    lines = [f"Surrogate/deployment {verdict_line(m).replace('beat', '**beat', 1)}** — a pair beats random only "
             f"when the whole 95 % CI of its per-seed difference lies above 0. By the mean alone (the paper's "
             f"criterion, no test): {br.mean_wins} of {br.pairs} (paper, Tables 3–5: 25 of 28)."]
    if br.median_half_width is not None:
        lines.append(f"Median 95 % CI half-width over the pairs: {br.median_half_width:.2f} p.p.; seeds needed to "
                     f"resolve a difference of 1 p.p. at the measured spread (median over pairs): "
                     f"{br.seeds_for_1pt if br.seeds_for_1pt is not None else 'more than 10,000'}.")
    if br.diagonal_pairs:
        lines.append(f"Models picking for themselves (diagonal {SELF_MARK}) beating random (CI above 0): "
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


CHAIN_HEADER = ["gen", "model", "picked by", "labelled", "inherited set", "random (same size)", "Δ", "wins"]
CURVE_HEADER = ["data", "model", "strategy", "first: labelled %", "metric", "last: labelled %", "metric", "seeds"]


def curve_rows(points: Sequence[Mapping[str, Any]]) -> list[list[Any]]:
    """First and last point of every (model, strategy) AL curve, mean ± std over seeds."""
    table = curve_table(points)
    rows = []
    for key in dict.fromkeys((r["data"], r["model"], r["strategy"]) for r in table):
        pts = [r for r in table if (r["data"], r["model"], r["strategy"]) == key]
        a, b = pts[0], pts[-1]
        rows.append([key[0], model_label(key[1]), key[2], f"{100 * a['fraction']:.0f}", fmt_cell(a["mean"], a["std"]),
                     f"{100 * b['fraction']:.0f}", fmt_cell(b["mean"], b["std"]), b["n"]])
    return rows


ENTROPY_HEADER = ["model", "images", "mean", "std", "median", "top-10 % threshold"]


def entropy_rows(entropy: Mapping[str, Any]) -> list[list[Any]]:
    return [[model_label(s["model"]), s["n"], f"{s['mean']:.4f}", f"{s['std']:.4f}", f"{s['median']:.4f}",
             f"{s['top_threshold']:.4f}"] for s in entropy.get("summary", [])]


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
                     "Δ is the mean of the per-seed differences surrogate − random; its 95 % CI is a "
                     "t-interval over seeds and p the paired t-test of the same "
                     "differences. A pair that ties has a CI holding 0: the data cannot tell it from random.")
        notes.append("Common random numbers: each seed shares its cycle-0 set, the deployment model's initial "
                     "weights and its training seed (batch order, augmentation) across a row's columns, so "
                     "a surrogate cell and its random cell differ only in the data the surrogate selected.")
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


TIMING_HEADER = ["sub-run kind", "count", "reused", "total s", "mean s"]


def timing_rows(timing: Mapping[str, Any]) -> list[list[Any]]:
    """Seconds per kind of sub-run (AL run, deployment training, ...) of the last invocation."""
    by_kind: dict[str, list[Mapping[str, Any]]] = {}
    for p in timing.get("parts", []):
        by_kind.setdefault(p["kind"], []).append(p)
    return [[k, len(v), sum(bool(p.get("reused")) for p in v), f"{sum(float(p['seconds']) for p in v):.1f}",
             f"{sum(float(p['seconds']) for p in v) / len(v):.1f}"] for k, v in by_kind.items()]


def kind_title(d: ExperimentData) -> str:
    """The report's title: what kind of results the directory holds."""
    if d.records or d.chain:
        return "Surrogate experiment"
    return "Entropy analysis" if d.entropy else "Active-learning runs"
