"""`al surrogate`: the surrogate × deployment matrix (`matrix`) or, with `--chain`, the generation
chain (`chains`) of one experiment directory, end to end, with its report."""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from al.experiments.chains import run_chains
from al.experiments.config import ExperimentConfig, load_experiment_config, validate_experiment
from al.experiments.context import Experiment, prepare_experiment
from al.experiments.matrix import run_matrix
from al.runtime import torch_threads
from hwbench.errors import UserError
from hwbench.io import read_jsonl


def run_experiment(config: ExperimentConfig | str | os.PathLike, out_dir: str | os.PathLike, *,
                   resume: bool = False, chain: bool = False, seeds: int | None = None,
                   progress: Any = None, jobs: int = 1, child_args: Sequence[str] = ()) -> dict[str, list[dict]]:
    """Run (or resume) a surrogate experiment into `out_dir` and write its report.

    Returns {"records": matrix records, "chain": chain records (with --chain)}. Bad input raises
    `UserError` before `out_dir` is created or changed. `jobs` > 1 runs the matrix's cells in that
    many child processes (`child_args`: the `al surrogate` arguments that name this experiment);
    the records are those of the serial run.
    """
    if not isinstance(config, ExperimentConfig):
        config = load_experiment_config(config, seeds=seeds)
    elif seeds is not None:
        config = validate_experiment(dataclasses.replace(config, seeds=tuple(range(seeds))))
    if config.threads < 0:
        raise UserError(f"threads must be >= 0 (0: torch's default), got {config.threads}")
    p = prepare_experiment(config, chain=chain)
    exp = Experiment(p, out_dir, progress=progress)
    if jobs > 1 and not chain:
        return {"records": _run_parallel(exp, resume=resume, jobs=jobs, child_args=child_args), "chain": []}
    with torch_threads(config.threads), exp.opened(resume=resume):
        records = run_matrix(exp) if not chain else _existing(exp.out / "records.jsonl")
        chain_records = run_chains(exp) if chain else _existing(exp.out / "chain.jsonl")
        exp.finish(records=records, chain=chain_records)
    return {"records": records or [], "chain": chain_records or []}


def _run_parallel(exp: Experiment, *, resume: bool, jobs: int, child_args: Sequence[str]) -> list[dict]:
    with exp.opened(resume=resume):  # held for the whole run: one `al surrogate` per experiment directory
        return _run_cells(exp, jobs=jobs, child_args=child_args)


def _run_cells(exp: Experiment, *, jobs: int, child_args: Sequence[str]) -> list[dict]:
    from al.experiments import cell_runner, cells

    plan = cells.plan(exp)
    done_before = {c.id for c in plan if cells.is_done(c)}
    exp.start_progress(len(plan), f"surrogate experiment: {len(plan)} cells, {jobs} processes")
    exp.advance(len(done_before))
    cell_runner.run_parallel(exp, plan, jobs, child_args, on_done=lambda c: exp.advance(1, f"done: {c.id}"))
    exp.timing.parts = [cells.timing_part(c, reused=c.id in done_before) for c in plan]
    records, missing = cell_runner.finish(exp, plan)
    if missing:
        raise RuntimeError(f"cells not finished after the parallel run: {[c.id for c in missing]} (bug)")
    return records


def _existing(path: Path) -> list[dict] | None:
    return list(read_jsonl(path)) if path.is_file() else None


def surrogate_matrix(config: ExperimentConfig | str | os.PathLike, out_dir: str | os.PathLike, *,
                     resume: bool = False, seeds: int | None = None, progress: Any = None) -> list[dict]:
    """Surrogate × deployment records `{deployment, surrogate, seed, metric, value}` (see module doc)."""
    return run_experiment(config, out_dir, resume=resume, seeds=seeds, progress=progress)["records"]
