"""Running the cells of a surrogate experiment (`al.experiments.cells`): one (`--cell`), a shard
(`--shard I/N`), or all of them in N local worker processes (`--jobs N`: each worker takes the next
ready cell nobody holds), then the matrix they make.

Several processes share one experiment directory: `--cell` and `--shard` processes take the
experiment lock only for a moment (to create or check the directory's identity, and to write the
final records and report; a busy lock is retried for `LOCK_WAIT_S`), and every cell's own lock while
they run it. `--jobs N` holds the experiment lock for its whole life (a second `al surrogate` on the
directory is refused); its workers take only the cells' locks, and end when it dies
(`al.parent_watch`).

A shard runs its cells in plan order; when one waits on a dependency that nobody is running, the
shard runs that dependency itself (so a dead or slow peer never blocks it), and when the
dependency is running elsewhere it polls until it is done.
"""

from __future__ import annotations

import contextlib
import logging
import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from typing import Any, TypeVar

from al.experiments import cells as C
from al.experiments.context import Experiment
from al.parent_watch import PARENT_ENV
from hwbench.errors import UserError

log = logging.getLogger(__name__)
T = TypeVar("T")
LOCK_WAIT_S = 120.0
POLL_S = 0.5
THREADS_ENV = "AL_CELL_THREADS"   # set for --jobs children: torch threads per cell process


def retry_busy(fn: Callable[[], T], what: str, wait_s: float = LOCK_WAIT_S) -> T:
    """`fn()`, retried while it fails because a lock is held by another process."""
    deadline = time.monotonic() + wait_s
    while True:
        try:
            return fn()
        except UserError as e:
            if "is in use by" not in str(e) or time.monotonic() > deadline:
                raise
            log.debug("%s: lock busy, retrying", what)
            time.sleep(POLL_S)


@contextlib.contextmanager
def _briefly_opened(exp: Experiment) -> Iterator[None]:
    with exp.opened(resume=True):
        yield


def init_dir(exp: Experiment) -> None:
    """Create the experiment directory or check that it holds this experiment (lock held briefly)."""
    def go() -> None:
        with _briefly_opened(exp):
            pass
    retry_busy(go, "experiment init")


def finish(exp: Experiment, cells: list[C.Cell]) -> tuple[list[dict], list[C.Cell]]:
    """Write records.jsonl and the report when every cell is done (experiment lock, retried)."""
    records, missing = C.records(exp, cells)
    if missing:
        return records, missing

    def go() -> None:
        with _briefly_opened(exp):
            exp.finish(records=records, chain=None)
    retry_busy(go, "experiment finish")
    return records, missing


def _try_run(exp: Experiment, cells: list[C.Cell], cell: C.Cell) -> bool:
    """Run `cell`; False when another process turned out to hold it."""
    try:
        C.run_cell(exp, cells, cell)
        return True
    except UserError as e:
        if "is in use by" in str(e) or C.busy(cell):  # taken by a peer (or a peer's status check): next round
            return False
        raise


def run_shard(exp: Experiment, cells: list[C.Cell], i: int, n: int) -> list[str]:
    """Run shard i of n (plus any dependency nobody runs); returns the ids this process ran."""
    by_id = {c.id: c for c in cells}
    pending = [c for c in C.shard_of(cells, i, n) if not C.is_done(c)]
    ran: list[str] = []
    while pending:
        progressed = False
        for cell in list(pending):
            st = C.status(cells, cell)
            if st == "done":
                pending.remove(cell)
                continue
            todo = [cell] if st == "ready" else \
                [by_id[d] for d in cell.deps if C.status(cells, by_id[d]) == "ready"]
            for c in todo:
                if _try_run(exp, cells, c):
                    ran.append(c.id)
                    progressed = True
        if pending and not progressed:
            time.sleep(POLL_S)
    return ran


def default_jobs() -> int:
    """The cores this process may use, capped at 8."""
    try:
        n = len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        n = os.cpu_count() or 1
    return max(1, min(n, 8))


def run_parallel(exp: Experiment, cells: list[C.Cell], jobs: int, child_args: Sequence[str],
                 on_done: Callable[[C.Cell], Any] | None = None) -> None:
    """Run every unfinished cell in `jobs` worker processes (`al surrogate ... --worker`, one torch
    thread each). Each worker takes the next ready cell nobody holds (`run_shard` over the whole plan),
    so a process starts once per worker, not once per cell; `on_done` is called as cells finish."""
    import tempfile

    env = {**os.environ, THREADS_ENV: "1", "OMP_NUM_THREADS": "1", PARENT_ENV: str(os.getpid())}
    pending = [c for c in cells if not C.is_done(c)]
    n = min(jobs, len(pending))
    cmd = [sys.executable, "-m", "al", "surrogate", *child_args, "--worker"]
    workers: list[tuple[subprocess.Popen, Any]] = []
    try:
        for _ in range(n):
            err = tempfile.TemporaryFile()
            workers.append((subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=err), err))
        while True:
            codes = [proc.poll() for proc, _ in workers]  # before the cells: a worker's last cell is seen
            for cell in [c for c in pending if C.is_done(c)]:
                pending.remove(cell)
                if on_done is not None:
                    on_done(cell)
            for (_, err), rc in zip(workers, codes, strict=True):
                if rc not in (None, 0):
                    err.seek(0)
                    tail = err.read().decode("utf-8", "replace").strip().splitlines()
                    raise UserError(f"a cell worker failed (exit {rc}): {tail[-1] if tail else 'no message'}; "
                                    "rerun with --jobs 1 or run the cell alone with --cell ID (--list-cells)")
            if None not in codes:
                return
            time.sleep(POLL_S / 5)
    finally:
        for proc, err in workers:
            if proc.poll() is None:
                proc.terminate()
                proc.wait()
            err.close()


def merge_partial(out_dir: str | os.PathLike) -> list[str] | None:
    """For `al report` on an unfinished surrogate experiment: rewrite records.jsonl from the cells
    that have finished; returns the ids of those that have not (None: nothing to merge here)."""
    import json
    from pathlib import Path

    from al.experiments.config import load_experiment_config
    from hwbench.io import write_jsonl

    out = Path(out_dir)
    try:
        info = json.loads((out / "experiment.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(info, dict) or info.get("kind") != "surrogate" or (out / "DONE").is_file() \
            or info.get("chain") or not (out / "experiment.toml").is_file():
        return None
    exp, plan = open_cells(load_experiment_config(out / "experiment.toml"), out, create=False)
    records, missing = C.records(exp, plan)
    if records:
        write_jsonl(out / "records.jsonl", records)
    return [c.id for c in missing]


def open_cells(config: Any, out_dir: str | os.PathLike, *,
               seeds: int | None = None, create: bool = True) -> tuple[Experiment, list]:
    """The experiment and its cell plan, for `--list-cells`, `--cell` and `--shard` (created or checked
    when `create`; several processes may do this at once)."""
    from al.experiments.config import ExperimentConfig, load_experiment_config
    from al.experiments.context import prepare_experiment

    if not isinstance(config, ExperimentConfig):
        config = load_experiment_config(config, seeds=seeds)
    exp = Experiment(prepare_experiment(config), out_dir)
    if create:
        init_dir(exp)
    return exp, C.plan(exp)


def cell_threads(config: Any) -> int:
    """Torch threads of a cell process: 1 under `--jobs`, else the config's."""
    return int(os.environ.get(THREADS_ENV) or config.threads)
