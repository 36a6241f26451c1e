"""The report's "Why the picks win or lose" section: tables built from `selection_diagnostics.json`
(al.selection_diagnostics), shown inside the matrix section (al.report.sections).

`diagnostics_section(diag, surrogates)` returns (intro, tables), each table (header, rows) of plain
strings; `diagnostics_block` wraps them as a report `Section` for markdown and HTML alike.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from al.report.format import model_label
from hwbench.report.doc import Section, Text
from hwbench.report.doc import Table as DocTable

Table = tuple[list[str], list[list[str]]]

INTRO = ("Per selection (every cycle >= 1, over seeds): how the surrogate's picks differ from random picks of "
         "the same size. Mean ± sd over seeds × cycles; random's value in brackets. Class TV: total-variation "
         "distance of the picks' class shares from the pool's (0 = same shares, 1 = disjoint; random: mean of "
         "200 random subsets). Smallest class: min over classes of (share among the picks / share in the pool) "
         "(1 = as often as in the pool, 0 = a class missing). Redundancy: mean pairwise cosine similarity of the "
         "picks' embeddings (the surrogate's pooled embedding, {embedding}); random: its exact "
         "expectation over the unlabelled images. Overlap: share of the picks that the deployment model also "
         "picked at that cycle when it selected for itself; random: picks / unlabelled images.")


_ROW_TYPES = {"surrogate": str, "cycle": int, "class_tv": float, "class_tv_random": float,
              "min_class_ratio": float, "min_class_ratio_random": float, "overlap": dict, "overlap_random": float}


def check_diagnostics(diag: dict) -> dict:
    """`diag` if its rows and final records have the fields the tables read; ValueError otherwise."""
    rows, finals = diag.get("rows"), diag.get("final")
    if not isinstance(rows, list) or not isinstance(finals, list):
        raise ValueError("rows / final are not lists")
    for r in rows:
        if not isinstance(r, dict) or any(not isinstance(r.get(k), (float, int) if t is float else t)
                                          for k, t in _ROW_TYPES.items()):
            raise ValueError("a row lacks a field or has the wrong type")
        if not all(isinstance(v, (int, float)) for v in r["overlap"].values()):
            raise ValueError("an overlap is not a number")
    for f in finals:
        if not isinstance(f, dict) or not isinstance(f.get("selection"), str) \
                or not isinstance(f.get("min_class_count"), int):
            raise ValueError("a final record lacks a field or has the wrong type")
    return diag


def _ms(values: Sequence[float], digits: int = 2) -> str:
    v = np.asarray([x for x in values if x is not None and np.isfinite(x)], dtype=np.float64)
    if v.size == 0:
        return "–"
    sd = f" ± {v.std(ddof=1):.{digits}f}" if v.size > 1 else ""
    return f"{v.mean():.{digits}f}{sd}"


def _mean(values: Sequence[float], digits: int = 2) -> str:
    v = [x for x in values if x is not None and np.isfinite(x)]
    return f"{np.mean(v):.{digits}f}" if v else "–"


def balance_table(diag: dict, surrogates: Sequence[str]) -> Table:
    """Per surrogate: class TV, smallest-class ratio, redundancy (random in brackets), final smallest class."""
    rows_by = {s: [r for r in diag.get("rows", []) if r["surrogate"] == s] for s in surrogates}
    finals = diag.get("final", [])
    rand_final = [f["min_class_count"] for f in finals if f["selection"] == "random"]
    header = ["surrogate", "selections", "class TV (random)", "smallest class (random)",
              "redundancy (random)", "final set: smallest class count (random)"]
    rows = []
    for s, rs in rows_by.items():
        if not rs:
            continue
        fin = [f["min_class_count"] for f in finals if f["selection"] == s]
        rows.append([model_label(s), str(len(rs)),
                     f"{_ms([r['class_tv'] for r in rs])} ({_mean([r['class_tv_random'] for r in rs])})",
                     f"{_ms([r['min_class_ratio'] for r in rs])} ({_mean([r['min_class_ratio_random'] for r in rs])})",
                     f"{_ms([r.get('redundancy') for r in rs])} ({_mean([r.get('redundancy_random') for r in rs])})",
                     f"{_ms(fin, 1)} ({_ms(rand_final, 1)})"])
    return header, rows


def overlap_table(diag: dict, surrogates: Sequence[str]) -> Table | None:
    """Surrogate × deployment model: share of picks the deployment model also picked for itself."""
    rows_all = diag.get("rows", [])
    seen = {d for r in rows_all for d in r.get("overlap", {})}
    deps = [s for s in surrogates if s in seen] + sorted(seen - set(surrogates))
    if not deps:
        return None
    header = ["surrogate \\ deployment's own picks", *(model_label(d) for d in deps)]
    rows = []
    for s in surrogates:
        rs = [r for r in rows_all if r["surrogate"] == s]
        if not rs:
            continue
        cells = []
        for d in deps:
            have = [r for r in rs if d in r["overlap"]]
            cells.append(f"{_ms([r['overlap'][d] for r in have])} ({_mean([r['overlap_random'] for r in have])})"
                         if have else "–")
        rows.append([model_label(s), *cells])
    return header, rows


def diagnostics_section(diag: dict | None, surrogates: Sequence[str]) -> tuple[str, list[Table]] | None:
    """(intro, tables) of the section, or None when there is nothing to show."""
    if not diag or not diag.get("rows"):
        return None
    order = [s for s in surrogates if any(r["surrogate"] == s for r in diag["rows"])]
    order += sorted({r["surrogate"] for r in diag["rows"]} - set(order))
    tables = [balance_table(diag, order)]
    ov = overlap_table(diag, order)
    if ov is not None:
        tables.append(ov)
    return INTRO.format(embedding=embedding_text(diag)), tables


def embedding_text(diag: dict) -> str:
    """Which checkpoint the redundancy's embeddings came from, in a few words."""
    if int(diag.get("version", 1)) < 2:
        return "final checkpoint"
    notes = diag.get("notes") or []
    if not notes:
        return "from the checkpoint that made the picks"
    return (f"from the checkpoint that made the picks; {len(notes)} run(s) kept only their last checkpoint "
            "(keep_checkpoints = \"last\"), whose embedding stands in there")


def diagnostics_block(diag: dict | None, surrogates: Sequence[str]) -> Section | None:
    """The section as report blocks, or None when there are no diagnostics."""
    res = diagnostics_section(diag, surrogates)
    if res is None:
        return None
    intro, tables = res
    return Section("Why the picks win or lose", id="diagnostics").add(
        Text(intro), *(DocTable(header, rows, row_header=True) for header, rows in tables))
