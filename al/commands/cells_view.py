"""`al surrogate CONFIG --out DIR --list-cells | --cell ID | --shard I/N` (and `--jobs N`'s `--worker`
processes): the matrix as cells."""

from __future__ import annotations

import argparse
from typing import Any


def run_cells(cfg: Any, args: argparse.Namespace) -> int:
    from al.experiments import cell_runner, cells
    from al.experiments.cell_runner import cell_threads, open_cells
    from al.runtime import torch_threads
    from hwbench.console import emit, line
    from hwbench.errors import UserError

    if sum(bool(x) for x in (args.list_cells, args.cell, args.shard, args.worker)) > 1 or args.chain:
        raise UserError("give one of --list-cells, --cell ID, --shard I/N (and not --chain)")
    shard = cells.parse_shard(args.shard) if args.shard else None
    exp, plan = open_cells(cfg, args.out, create=False)
    chosen = cells.find(plan, args.cell) if args.cell else None  # a wrong id: refused before anything is written
    if not (args.list_cells or args.worker):  # (a --jobs worker's parent holds the directory)
        cell_runner.init_dir(exp)
    if args.list_cells:
        rows = [c.to_dict(cells.status(plan, c)) for c in plan]
        if args.json:
            emit(rows, as_json=True)
        else:
            emit([{**r, "deps": ", ".join(r["deps"]) or "-"} for r in rows], as_json=False,
                 title=f"{len(plan)} cells of {cfg.name}", columns=["cell", "deps", "status"])
        return 0
    with torch_threads(cell_threads(cfg)):
        if args.worker:  # one of `--jobs N`'s workers (`al.parent_watch` armed): the parent finishes
            cell_runner.run_shard(exp, plan, 0, 1)
            return 0
        if args.cell:
            cells.run_cell(exp, plan, chosen)
            ran = [args.cell]
        else:
            ran = cell_runner.run_shard(exp, plan, *shard)
        _, missing = cell_runner.finish(exp, plan)
    line(f"ran {len(ran)} cell(s); {len(plan) - len(missing)}/{len(plan)} done in {args.out}"
         + ("; report written" if not missing else "; `al report` merges what has finished"))
    return 0
