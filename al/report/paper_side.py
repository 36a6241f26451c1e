"""The report beside the paper: the published Table 3, 4 or 5 next to ours, cell by cell where the
same (deployment, surrogate) pair was run. Rendered by `markdown` and `html` alike.

Which table: Cityscapes and the embedded street drives (segmentation) sit beside Table 3, ADE20K
beside Table 4, classification (ImageNet folders, the embedded digits) beside Table 5. Our numbers
come from other data at another scale; only the direction and size of surrogate − random, and how
sure we are of it, can be compared.
"""

from __future__ import annotations

from collections.abc import Sequence

from al.paper import RANDOM, TABLE3, TABLE4, TABLE5, PaperTable, off_diagonal_better
from al.report.format import fmt_delta, model_label
from al.stats import Comparison, Matrix

EMBEDDED = {"synthetic_streets": "embedded street drives (synthetic)", "digits": "embedded digits (8x8 scans)"}


def paper_table_for(dataset: str, task: str | None) -> PaperTable | None:
    """The paper's table to show beside a run on `dataset` (None when there is nothing comparable)."""
    if dataset == "ade20k":
        return TABLE4
    if dataset in ("cityscapes", "synthetic_streets") or task == "segmentation":
        return TABLE3
    if dataset in ("folder", "digits") or task == "classification":
        return TABLE5
    return None


def paper_table_of(dataset: str, metric: str) -> PaperTable | None:
    """`paper_table_for` a report's experiment: its dataset and metric (miou -> segmentation, top1 -> classification)."""
    return paper_table_for(dataset, {"miou": "segmentation", "top1": "classification"}.get(metric))


def scale_label(dataset: str, table: PaperTable, n_labelled: int | None, pool: int | None) -> str:
    """One sentence: whose data, which scale, so nobody reads the two tables as the same experiment."""
    ours = EMBEDDED.get(dataset, dataset)
    size = f"{n_labelled} labelled images of a {pool}-image pool" if n_labelled and pool else "a small budget"
    return (f"Different data and scale: the paper's Table {table.number} is {table.dataset_label} with "
            f"ImageNet-pretrained backbones and 20 % of the full training set; ours is {ours}, {size}. "
            "Compare the sign and size of surrogate − random and its uncertainty, not the absolute numbers.")


def paper_rows(table: PaperTable) -> tuple[list[str], list[list[tuple[str, float | None]]]]:
    """Header and rows of the paper's table: (text, colour position in [0, 1] among the row's
    surrogates; None for random, which sits uncoloured in its own column, as in the paper)."""
    header = ["deployment \\ surrogate", *(model_label(s) for s in table.surrogates), RANDOM]
    rows = []
    for dep, cells in table.cells.items():
        means = [cells[s][0] for s in table.surrogates]
        lo, hi = min(means), max(means)
        row: list[tuple[str, float | None]] = [(model_label(dep), None)]
        for s in table.surrogates:
            m, sd = cells[s]
            pos = 0.5 if hi <= lo else (m - lo) / (hi - lo)
            text = f"{m:.{_digits(table)}f} ± {sd:.{_digits(table)}f}" + (" ◆" if s == dep else "")
            row.append((text, pos))
        m, sd = cells[RANDOM]
        row.append((f"{m:.{_digits(table)}f} ± {sd:.{_digits(table)}f}", None))
        rows.append(row)
    return header, rows


def _digits(table: PaperTable) -> int:
    return 1 if table.number == 3 else 2


SIDE_HEADER = ["deployment", "surrogate", "paper: Δ vs random (p.p.)", "ours: Δ (p.p.)", "ours: 95 % CI",
               "ours: verdict"]


def side_by_side_rows(table: PaperTable, comparisons: Sequence[Comparison]) -> list[list[str]]:
    """One row per pair we ran that the paper's table also has: the paper's difference of means next
    to our paired Δ, its CI and verdict."""
    rows = []
    for c in comparisons:
        paper = table.cells.get(c.deployment, {})
        if c.surrogate not in paper:
            continue
        p_delta = paper[c.surrogate][0] - paper[RANDOM][0]
        d = c.diff
        ci = "–" if d.ci_low is None else f"[{d.ci_low:+.2f}, {d.ci_high:+.2f}]"
        rows.append([model_label(c.deployment), model_label(c.surrogate) + (" ◆" if c.diagonal else ""),
                     fmt_delta(p_delta), fmt_delta(c.delta), ci, d.verdict])
    return rows


def paper_summary(table: PaperTable, ours: Matrix, n_pairs_here: int) -> str:
    """The paper's count for this table beside which of our pairs it covers."""
    pairs, better = off_diagonal_better(table)
    return (f"Paper, Table {table.number} ({table.dataset_label}, {table.source}): {better} of {pairs} "
            f"off-diagonal pairs above random by the mean (no test reported); of our {len(ours.rows)} x "
            f"{len(ours.surrogates)} matrix, {n_pairs_here} pair(s) are also in that table.")
