"""One active-learning run: cycles of select -> label -> train -> evaluate, persisted and resumable.

Schedule (cycle k = 0..C, C = `al.cycles`):

* select: k = 0 labels a random `initial_fraction` of the pool, drawn from (dataset name, pool size,
  seed) only, so every strategy and surrogate of one experiment and seed starts from the same set
  (or, with `initial_labelled`, exactly the given pool indices: e.g. a set inherited from another model);
  k >= 1 collects the evidence the strategy needs with the model trained in cycle k-1 and labels
  the `cycle_fraction` of the pool the strategy ranks first.
* train: the scoring model (fresh weights each cycle, or warm-started with `al.retrain = "continue"`)
  on everything labelled so far; the LLAL loss module is trained jointly when the strategy needs
  predicted losses.
* evaluate: mIoU (segmentation) or top-1 (classification) on the validation split.

The last cycle also trains and evaluates after its selection, so the learning curve has C+1
points: at the initial budget and after every selection, up to the final budget.

Determinism: every random draw of cycle k comes from a seed derived from (seed, k, stream), never
from a generator that advanced through earlier cycles, and evaluation/scoring always use the model
re-loaded from its checkpoint. A run killed anywhere and resumed therefore ends with exactly the
selections and metrics of an uninterrupted run (bit-identical on CPU, where deterministic
algorithms are switched on, given the same torch thread count: the `threads` config key).
Bad input (config, dataset root/layout, budget) raises `UserError` before the directory exists;
a run that fails mid-way has no DONE marker and continues with `resume=True`.

Run directory: `al.runs.run_dir` (config.toml, state.json, selections.jsonl, metrics.jsonl,
checkpoints/, DONE; every write atomic). Preparation (validation, datasets, budget): `al.prepare`.
"""

from __future__ import annotations

import contextlib
import logging
import os
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from al.config import RunConfig, load_config
from al.prepare import Prepared, prepare
from al.runs.lock import remove_temporaries
from al.runs.resume import check_dir, open_state, steps_done, write_done
from al.runs.run_dir import STEPS, RunDir, metric_records
from al.runtime import deterministic, torch_threads
from al.seeds import STREAMS, derive_seed, initial_selection
from al.weights import load as load_weights
from hwbench.errors import UserError
from hwbench.io import to_jsonable

log = logging.getLogger(__name__)

SLOW_ENV = "AL_TEST_SLOW_CYCLE_S"  # test-only: sleep this long before training cycles >= 1
INITIAL_GIVEN = "given"  # the cycle-0 `strategy` of a run started from `initial_labelled`


@dataclass
class RunResult:
    """What a run produced. Indices are pool positions (== dataset indices unless `data.pool_size`)."""

    selections: list[np.ndarray]     # per cycle, best first; cycle 0 is the random (or given) initial set
    labelled: np.ndarray             # every labelled pool index, in labelling order (int64)
    metrics: list[dict]              # the metrics.jsonl records, one per cycle
    out_dir: Path | None = None
    config: RunConfig | None = None
    pool_size: int = 0
    dataset_indices: np.ndarray | None = None  # dataset index of every pool position
    done: bool = True
    status: str = "completed"        # completed | resumed | already complete | repaired | incomplete

    @property
    def labelled_mask(self) -> np.ndarray:
        mask = np.zeros(self.pool_size, dtype=bool)
        mask[self.labelled] = True
        return mask

    def records(self) -> list[dict]:
        """One record per cycle: {cycle, labelled, fraction, metric, value, selected (pool indices, best first)}."""
        return [{"cycle": m["cycle"], "labelled": m["labelled"], "fraction": m["fraction"],
                 "metric": m["metric"], "value": m["value"], "selected": [int(i) for i in s]}
                for m, s in zip(self.metrics, self.selections, strict=False)]


def run(config: RunConfig | str | os.PathLike, out_dir: str | os.PathLike, *, resume: bool = False,
        force: bool = False, progress: bool = True, initial_labelled: Sequence[int] | None = None) -> RunResult:
    """Run (or, with `resume`, continue) one active-learning run into `out_dir`.

    `config` is a `RunConfig` or a preset name / TOML path. Bad input raises `UserError` before
    anything is written. An existing complete run is returned as is with `resume`, replaced with
    `force`, an error otherwise; an incomplete one needs `resume` (or `force` to start over).
    `initial_labelled` (pool indices in labelling order) is labelled in cycle 0 instead of the
    random set; it is saved in `state.json`, and a resume must pass the same list.
    """
    if not isinstance(config, RunConfig):
        config = load_config(config)
    rd = RunDir(out_dir)
    from al import distributed

    main = distributed.launched_rank_main()  # under torchrun only rank 0 touches the directory
    if main:
        check_dir(rd, resume=resume, force=force)
    p = prepare(config, initial_labelled)  # every input check happens before the directory is touched
    device = distributed.setup(p.device)   # under torchrun: join the process group, take this rank's GPU
    with rd.lock() if main else contextlib.nullcontext():  # one process (group) per run directory
        state, status = distributed.on_main(lambda: _open(rd, p, resume=resume, force=force))
        if status not in ("already complete", "repaired"):
            steps = 3 * (p.config.al.cycles + 1)
            with deterministic(p.device), torch_threads(p.config.threads), \
                    _progress_bar(progress and main, steps) as bar:
                bar.advance(steps_done(state))
                _Loop(p, rd, state, bar, device).run()
            state["done"] = True
            if main:
                rd.write_state(state)
                write_done(rd, state)
        distributed.barrier()
    return _result(state, p.config, rd.path, status)


def _open(rd: RunDir, p: Prepared, *, resume: bool, force: bool) -> tuple[dict, str]:
    """Rank 0 (or the only process), holding the lock: check, clear with --force, open the state."""
    check_dir(rd, resume=resume, force=force)  # again: another process may have changed it meanwhile
    if force and not rd.is_empty():
        log.info("removing previous run %s (--force)", rd.path)
        rd.clear()
    remove_temporaries(rd.path)
    return open_state(rd, p)


def _result(state: dict, cfg: RunConfig, out_dir: Path, status: str) -> RunResult:
    sel = [np.asarray(c["selected"], dtype=np.int64) for c in state["cycles"] if "select" in c["steps"]]
    labelled = np.concatenate(sel) if sel else np.zeros(0, dtype=np.int64)
    di = state.get("dataset_indices")
    return RunResult(selections=sel, labelled=labelled, metrics=metric_records(state), out_dir=out_dir,
                     config=cfg, pool_size=state["pool_size"],
                     dataset_indices=np.arange(state["pool_size"]) if di is None else np.asarray(di),
                     done=bool(state.get("done")), status=status)


def load_result(out_dir: str | os.PathLike) -> RunResult:
    """Read a run directory (complete or not) without running anything."""
    rd = RunDir(out_dir)
    if not rd.is_run():
        raise UserError(f"{rd.path} is not a run directory (no config.toml / state.json)")
    cfg = load_config(rd.path / "config.toml", validate_names=False)
    state = rd.read_state()
    return _result(state, cfg, rd.path, "already complete" if rd.is_done() else "incomplete")


class _Loop:
    """The cycle state machine; each finished step is persisted before the next one starts."""

    def __init__(self, p: Prepared, rd: RunDir, state: dict, bar: Any, device: str) -> None:
        from al import distributed
        from al.strategies import LossPredictionModule
        from al.strategies.sharded import score_and_select
        from al.train import evaluate, train

        self.p, self.rd, self.state, self.bar = p, rd, state, bar
        self.cfg = p.config
        self.device = device                      # this rank's device ("cuda:LOCAL_RANK" under torchrun)
        self.dist = distributed
        self.writes = distributed.is_main()       # only rank 0 writes files
        self._train, self._evaluate, self._score_and_select = train, evaluate, score_and_select
        self._aux_cls = LossPredictionModule
        self.show = bar.enabled
        self.needs = frozenset(p.strategy.needs)
        self.with_aux = "predicted_loss" in self.needs

    # -- helpers ------------------------------------------------------------------------------------
    def cycle_state(self, k: int) -> dict:
        cycles = self.state["cycles"]
        if len(cycles) <= k:
            first = "random" if self.p.initial is None else INITIAL_GIVEN
            cycles.append({"cycle": k, "strategy": first if k == 0 else self.cfg.al.strategy,
                           "steps": [], "seeds": {s: derive_seed(self.cfg.seed, k, s) for s in STREAMS}})
        return cycles[k]

    def labelled_indices(self, upto: int) -> np.ndarray:
        """Every pool index labelled in cycles 0..upto, in labelling order."""
        parts = [c["selected"] for c in self.state["cycles"][: upto + 1]]
        return np.asarray([i for s in parts for i in s], dtype=np.int64)

    def new_modules(self, k: int, *, start: bool = True) -> tuple[nn.Module, nn.Module | None]:
        """Cycle k's freshly initialised model (+ LLAL module); `start`: with its starting weights
        (False when a checkpoint will overwrite every tensor anyway)."""
        from hwbench.models import create_model

        torch.manual_seed(derive_seed(self.cfg.seed, k, "init"))
        model = create_model(self.cfg.model.name, num_classes=self.p.pool.num_classes,
                             output_stride=self.cfg.model.output_stride, **self.cfg.model.options)
        if start:
            load_weights(model, self.p.weights)  # the backbone's starting weights (none: stays random)
        aux = None
        if self.with_aux:
            torch.manual_seed(derive_seed(self.cfg.seed, k, "aux_init"))
            aux = self._aux_cls(model.task, model.feature_taps, model.feature_channels)
        return model, aux

    def load_modules(self, k: int) -> tuple[nn.Module, nn.Module | None]:
        """The model (and LLAL module) of cycle k exactly as saved after its training."""
        ckpt = self.rd.load_checkpoint(k, self.state["cycles"][k].get("ckpt_sha256"))  # verified when known
        model, aux = self.new_modules(k, start=False)  # the strict load below sets every tensor
        try:
            model.load_state_dict(ckpt["model"])
            if aux is not None:
                if ckpt.get("aux") is None:
                    raise UserError(f"{self.rd.ckpt_path(k)} has no LLAL module; start over with --force")
                aux.load_state_dict(ckpt["aux"])
        except (RuntimeError, KeyError, TypeError, ValueError):  # keys or shapes of another model
            raise UserError(f"{self.rd.ckpt_path(k)} does not hold this run's {self.cfg.model.name} weights; "
                            "start over with --force") from None
        dev = self.device
        return model.to(dev).eval(), None if aux is None else aux.to(dev).eval()

    def finish(self, k: int, step: str) -> None:
        self.state["cycles"][k]["steps"].append(step)
        if self.writes:
            self.rd.write_state(self.state)
        self.bar.advance(1)

    # -- steps --------------------------------------------------------------------------------------
    def run(self) -> None:
        for k in range(self.cfg.al.cycles + 1):
            c = self.cycle_state(k)
            for step in STEPS:
                if step in c["steps"]:
                    continue
                self.bar.describe(f"cycle {k}/{self.cfg.al.cycles}: {step}")
                getattr(self, f"step_{step}")(k, c)
                self.finish(k, step)
            log.info("cycle %d: %d labelled (%.1f %%), %s = %.2f", k, c["record"]["labelled"],
                     100 * c["record"]["fraction"], c["record"]["metric"], c["record"]["value"])

    def step_select(self, k: int, c: dict) -> None:
        t0 = time.perf_counter()
        if k == 0 and self.p.initial is not None:
            sel = self.p.initial
        elif k == 0:
            sel = initial_selection(self.cfg.data.name, self.p.pool_size, self.cfg.seed, self.p.n_initial)
        else:
            sel = self.select(k, c)
        c["selected"] = [int(i) for i in sel]
        c["select_s"] = round(time.perf_counter() - t0, 4)

    def select(self, k: int, c: dict) -> np.ndarray:
        """Cycle k's picks: evidence of the cycle k-1 model on the strategy's candidates, then select."""
        strategy = self.p.strategy
        labelled = np.zeros(self.p.pool_size, dtype=bool)
        labelled[self.labelled_indices(k - 1)] = True
        budget = min(self.p.n_cycle, int((~labelled).sum()))
        rng = np.random.default_rng(c["seeds"]["select"])  # candidates (e.g. LLAL's subset), then select
        sel = np.asarray(self._score_and_select(
            strategy, None, self.p.pool_score, labelled, budget, rng, device=self.device,
            batch_size=self.cfg.al.batch_size, amp=self.cfg.train.amp, show_progress=self.show,
            model_loader=lambda: self.load_modules(k - 1)), dtype=np.int64)   # sharded over torchrun's ranks
        self.dist.same_on_all_ranks(sel.tolist(), f"the selection of cycle {k}")
        if len(sel) != budget or len(np.unique(sel)) != len(sel) or labelled[sel].any():
            raise RuntimeError(f"strategy {self.cfg.al.strategy!r} returned {len(sel)} indices "
                               f"(budget {budget}), duplicates or labelled ones")
        return sel

    def step_train(self, k: int, c: dict) -> None:
        slow = float(os.environ.get(SLOW_ENV, "0") or 0)
        if slow > 0 and k > 0:
            time.sleep(slow)
        t0 = time.perf_counter()
        if self.cfg.al.retrain == "continue" and k > 0:
            model, aux = self.load_modules(k - 1)
        else:
            model, aux = self.new_modules(k)
        seed = c["seeds"]["train"]
        torch.manual_seed(seed)
        stats = self._train(model, self.p.pool, self.labelled_indices(k), self.cfg.train,
                            device=self.device, seed=seed, aux=aux, show_progress=self.show)
        if self.writes:
            c["ckpt_sha256"] = self.rd.save_checkpoint(k, model, aux)  # in the state written after this step
        self.dist.barrier()                           # the other ranks read the checkpoint next
        c["train"] = to_jsonable(stats or {})
        c["train_s"] = round(time.perf_counter() - t0, 4)

    def step_eval(self, k: int, c: dict) -> None:
        t0 = time.perf_counter()
        model, _ = self.load_modules(k)
        res = to_jsonable(self._evaluate(model, self.p.val, self.p.val_indices, device=self.device,
                                       batch_size=self.cfg.al.batch_size, amp=self.cfg.train.amp,
                                       show_progress=self.show))
        n_lab = len(self.labelled_indices(k))
        c["record"] = {"cycle": k, "labelled": n_lab, "fraction": n_lab / self.p.pool_size,
                       "metric": self.p.metric, "value": res[self.p.metric], "metrics": res,
                       "train": c.get("train", {}), "train_s": c.get("train_s"),
                       "eval_s": round(time.perf_counter() - t0, 4)}
        if self.cfg.al.keep_checkpoints == "last" and self.writes:
            self.rd.prune_checkpoints(keep=k)


class _Bar:
    def __init__(self, progress: Any, task: Any) -> None:
        self.progress, self.task = progress, task
        self.enabled = progress is not None

    def advance(self, n: int) -> None:
        if self.progress is not None and n:
            self.progress.advance(self.task, n)

    def describe(self, text: str) -> None:
        if self.progress is not None:
            self.progress.update(self.task, description=text)


@contextlib.contextmanager
def _progress_bar(enabled: bool, total: int) -> Iterator[_Bar]:
    if not enabled:
        yield _Bar(None, None)
        return
    from hwbench.console import progress

    with progress() as p:
        yield _Bar(p, p.add_task("active learning", total=total))


def selections_equal(a: Sequence[np.ndarray], b: Sequence[np.ndarray]) -> bool:
    """True when two runs labelled the same indices in the same order, cycle by cycle."""
    return len(a) == len(b) and all(np.array_equal(x, y) for x, y in zip(a, b, strict=True))


__all__ = ["RunResult", "run", "load_result", "selections_equal"]
