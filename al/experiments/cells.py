"""The surrogate × deployment matrix as independent cells: units of work that any job runner
(a SLURM array, a shell loop, `--jobs N` local processes) can run at once.

Cells of one experiment (ids are stable; `al surrogate CONFIG --list-cells` prints them):

    al/s<seed>/<surrogate>                  the surrogate's AL run           -> seed_<s>/al/<surrogate>/
    train/s<seed>/<deployment>/<column>     deployment trained on column's   -> seed_<s>/train/<deployment>/<column>/
                                            final selection (column = a surrogate, or random_<n>)

A train cell depends on the AL cell of its surrogate; random cells and AL cells depend on nothing
(the random baseline is built from the shared cycle-0 set, a function of dataset, pool and seed).
Every cell writes only into its own directory, under that directory's lock (`al.runs.lock`), and
is deterministic (seeds derived from the experiment seed and the cell's names), so cells give the
same results whichever process, order or degree of parallelism runs them — with the same torch
thread count (`--jobs` runs every cell single-threaded; the presets use `threads = 1` too).

`records(exp)` assembles the matrix records of the finished cells in the serial order of
`al.experiments.matrix.run_matrix`, and names the cells still missing.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from al.experiments.context import Experiment
from al.experiments.matrix import cell_dir, cell_stem, random_for, read_record, train_cell
from al.runs.lock import DirLock, holder_pid
from al.seeds import initial_selection
from al.stats import RANDOM
from hwbench.errors import UserError

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Cell:
    id: str
    kind: str                     # "al" | "train"
    seed: int
    model: str                    # the surrogate (al) or the deployment model (train)
    column: str = ""              # train: a surrogate or "random"
    deps: tuple[str, ...] = ()
    path: Path = Path()
    identity: str = ""            # the experiment's identifying SHA-256 (a train cell's record must name it)
    budget: int = 0               # train: labelled images (the final budget, or a sweep's smaller one)

    def to_dict(self, status: str) -> dict:
        return {"cell": self.id, "kind": self.kind, "seed": self.seed, "model": self.model,
                "column": self.column or None, "deps": list(self.deps), "status": status, "dir": str(self.path)}


def n_final(exp: Experiment) -> int:
    return exp.p.n_initial + exp.cfg.al.cycles * exp.p.n_cycle


def plan(exp: Experiment) -> list[Cell]:
    """Every cell of the matrix, in the serial order (per seed: AL runs, then deployment rows)."""
    cells: list[Cell] = []
    budgets = exp.p.budgets or (n_final(exp),)
    nested = bool(exp.p.budgets)
    ident = exp.identity_sha256()
    for seed in exp.cfg.seeds:
        for s in exp.p.surrogates:
            cells.append(Cell(f"al/s{seed}/{s}", "al", seed, s, path=exp.seed_dir(seed) / "al" / s, identity=ident))
        for d in exp.cfg.deployment:
            for n in budgets:
                for col in (*exp.p.surrogates, RANDOM):
                    deps = () if col == RANDOM else (f"al/s{seed}/{col}",)
                    stem = cell_stem(exp, col, n, nested=nested)
                    cells.append(Cell(f"train/s{seed}/{d}/{stem}", "train", seed, d, col, deps,
                                      cell_dir(exp, d, col, seed, n, nested=nested), ident, n))
    return cells


def find(cells: list[Cell], cell_id: str) -> Cell:
    for c in cells:
        if c.id == cell_id:
            return c
    raise UserError(f"no cell {cell_id!r} in this experiment; list them with --list-cells")


def is_done(cell: Cell) -> bool:
    """An AL cell: its run's DONE exists (the run verifies itself when opened); a train cell: its sealed
    record is intact (an edited or damaged one makes the cell not done, so it is trained again)."""
    if cell.kind == "al":
        from al.runs.run_dir import RunDir

        return (cell.path / "DONE").is_file() and RunDir(cell.path).is_complete()
    return (cell.path / "record.json").is_file() and _record(cell) is not None


def _record(cell: Cell) -> dict | None:
    return read_record(cell.path / "record.json", cell.identity, cell.model, cell.column, cell.seed)


def status(cells: list[Cell], cell: Cell) -> str:
    """done | running (its lock is held) | ready (dependencies done) | waiting."""
    if is_done(cell):
        return "done"
    if busy(cell):
        return "running"
    by_id = {c.id: c for c in cells}
    return "ready" if all(is_done(by_id[d]) for d in cell.deps) else "waiting"


def selection(exp: Experiment, cell: Cell) -> np.ndarray:
    """The pool indices a train cell trains on."""
    n = cell.budget or n_final(exp)
    if cell.column == RANDOM:
        initial = initial_selection(exp.cfg.data.name, exp.be.pool_size, cell.seed, exp.p.n_initial)
        return random_for(exp, initial, n, cell.seed)
    from al.loop import load_result

    res = load_result(exp.seed_dir(cell.seed) / "al" / cell.column)
    if not res.done:
        raise UserError(f"cell {cell.id} needs al/s{cell.seed}/{cell.column} to finish first")
    return np.asarray(res.labelled, dtype=np.int64)[:n]  # labelling order: cycles 0..k are a prefix


def run_cell(exp: Experiment, cells: list[Cell], cell: Cell) -> dict | None:
    """Run one cell (reused when finished); its dependencies must be done."""
    by_id = {c.id: c for c in cells}
    missing = [d for d in cell.deps if not is_done(by_id[d])]
    if missing:
        raise UserError(f"cell {cell.id} depends on {', '.join(missing)}, not finished yet; run that first "
                        "(--list-cells shows the order)")
    if cell.kind == "al":
        exp.surrogate_run(cell.model, cell.seed)
        return None
    return train_cell(exp, cell.model, cell.column, cell.seed, selection(exp, cell),
                      nested=bool(exp.p.budgets) and cell.column == RANDOM)


def records(exp: Experiment, cells: list[Cell]) -> tuple[list[dict], list[Cell]]:
    """Matrix records of the finished train cells (serial order) and the cells not finished."""
    out, missing = [], []
    final = n_final(exp)
    for c in cells:
        if not is_done(c):
            missing.append(c)
        elif c.kind == "train" and c.budget in (0, final):
            rec = _record(c)
            if rec is None:  # damaged since is_done looked
                missing.append(c)
                continue
            out.append({k: rec[k] for k in ("deployment", "surrogate", "seed", "metric", "value")})
    return out, missing


def timing_part(cell: Cell, *, reused: bool) -> dict:
    """The `timing.json` part of a finished cell, as the serial run records it."""
    if cell.kind == "train":
        rec = _record(cell) or {}
        kind, name, seconds = "deployment training", f"{cell.model}<-{cell.column}", rec.get("seconds", 0.0)
    else:
        from al.runs.run_dir import RunDir

        try:
            state = RunDir(cell.path).read_state()
        except UserError:
            state = {"cycles": []}
        kind, name = "surrogate AL run", cell.model
        seconds = sum(c.get(k) or 0.0 for c in state["cycles"] for k in ("select_s", "train_s", "eval_s"))
    return {"kind": kind, "name": name, "seed": cell.seed, "seconds": round(float(seconds), 3), "reused": reused}


def shard_of(cells: list[Cell], i: int, n: int) -> list[Cell]:
    """Shard i of n: every n-th cell of the plan, starting at i."""
    return [c for k, c in enumerate(cells) if k % n == i]


def parse_shard(text: str) -> tuple[int, int]:
    try:
        i, n = (int(v) for v in text.split("/"))
    except ValueError:
        raise UserError(f"--shard {text!r}: give I/N with 0 <= I < N, e.g. --shard 0/4") from None
    if not 0 <= i < n:
        raise UserError(f"--shard {text!r}: need 0 <= I < N, e.g. --shard 0/4")
    return i, n


def busy(cell: Cell) -> bool:
    """Another process holds the cell's lock (it is running it)."""
    if not cell.path.is_dir():
        return False
    try:
        with DirLock(cell.path, what="experiment cell"):
            return False
    except UserError:
        return True


def describe_holder(cell: Cell) -> str:
    pid = holder_pid(cell.path)
    return f"process {pid}" if pid else "another process"
