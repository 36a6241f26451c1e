"""Generation chains (`al surrogate --chain`): model i selects (AL cycles) for model i+1, which
trains afresh (from its starting weights) on the inherited set (compared with random of the same
size) and then, as the new surrogate, continues the cycles for model i+2.

`run_chain` is the algorithm over a `ChainOps` (tests use a stub); `_ChainOps` persists every step
under seed_<s>/chain/ of the experiment directory.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from al.experiments.config import run_config
from al.experiments.context import Experiment
from al.experiments.matrix import train_cell
from al.runs.files import read_cached_json, sha256_text, write_sealed_json
from al.seeds import random_selection, selection_digest, stable_seed
from al.stats import RANDOM
from hwbench.io import write_jsonl

log = logging.getLogger(__name__)


class ChainOps(Protocol):
    """What `run_chain` needs; the real one trains models, tests use a stub."""

    def first_generation(self, model: str, cycles: int) -> tuple[np.ndarray, np.ndarray]:
        """AL run of the oldest model: (labelled in order, cycle-0 set)."""

    def train_inherited(self, gen: int, model: str, labelled: np.ndarray) -> tuple[float, Any]:
        """Train a fresh `model` on the inherited set: (metric value, trained model handle)."""

    def train_random(self, gen: int, model: str, n: int, initial: np.ndarray) -> float:
        """Train a fresh `model` on a random set of size n containing `initial`: metric value."""

    def continue_cycles(self, gen: int, model: str, handle: Any, labelled: np.ndarray, cycles: int) -> np.ndarray:
        """`model` (already trained on `labelled`) runs `cycles` more AL cycles: the new labelled set."""

    @property
    def cycles(self) -> int: ...

    @property
    def metric(self) -> str: ...


def run_chain(ops: ChainOps, models: Sequence[str], seed: int) -> list[dict]:
    """Generation chain for one seed: models[i] selects for models[i+1], which then selects for models[i+2].

    Returns, per generation g >= 1, a record for the inherited set (`surrogate` = models[g-1], the
    model that picked the latest cycles) and one for random of the same size (`surrogate = "random"`),
    both with `generation` and `labelled` added.
    """
    if len(models) < 2:
        raise ValueError("a chain needs at least two models")
    labelled, initial = ops.first_generation(models[0], ops.cycles)
    records = []
    for g in range(1, len(models)):
        model = models[g]
        value, handle = ops.train_inherited(g, model, labelled)
        rand = ops.train_random(g, model, len(labelled), initial)
        for column, v in ((models[g - 1], value), (RANDOM, rand)):
            records.append({"deployment": model, "surrogate": column, "seed": seed, "metric": ops.metric,
                            "value": float(v), "generation": g, "labelled": int(len(labelled))})
        if g < len(models) - 1:
            labelled = ops.continue_cycles(g, model, handle, labelled, ops.cycles)
    return records


class _ChainOps:
    """`ChainOps` on the real backend; every step persisted under seed_<s>/chain/."""

    def __init__(self, exp: Experiment, seed: int) -> None:
        self.exp, self.seed, self.be = exp, seed, exp.be
        self.cycles = exp.p.chain_cycles
        self.metric = exp.be.metric
        self.root = exp.seed_dir(seed) / "chain"

    def first_generation(self, model: str, cycles: int) -> tuple[np.ndarray, np.ndarray]:
        res = self.exp.surrogate_run(model, self.seed, cycles=cycles)
        self.exp.advance(cycles + 1)
        return np.asarray(res.labelled, dtype=np.int64), np.asarray(res.selections[0], dtype=np.int64)

    def _gdir(self, gen: int, model: str) -> Path:
        return self.root / f"gen_{gen}_{model}"

    def train_inherited(self, gen: int, model: str, labelled: np.ndarray) -> tuple[float, Any]:
        gdir = self._gdir(gen, model)
        path = gdir / "inherited.json"
        digest = selection_digest(labelled)
        key = sha256_text(f"{self.exp.identity_sha256()}|chain|{gen}|{model}|{self.seed}|{digest}")
        rec = read_cached_json(path)
        if rec is not None:
            if rec.get("selection_sha") == digest and rec.get("key") == key and \
                    isinstance(rec.get("value"), (int, float)):
                self.exp.timing.parts.append({"kind": "chain training", "name": model, "seed": self.seed,
                                              "seconds": rec["seconds"], "reused": True})
                self.exp.advance(1)
                return rec["value"], None
        t = time.perf_counter()
        self.exp.describe_step(f"seed {self.seed}: gen {gen} {model} trains on {len(labelled)} inherited images")
        with self.exp.timing.part("chain training", model, self.seed):
            m = self.be.train_model(model, labelled, seed=stable_seed(self.seed, model, "train"),
                                    init_seed=stable_seed(self.seed, model, "init"),
                                    cfg=self.exp.cfg.train.for_model(model, "deployment"))
            metrics = self.be.evaluate(m)
        rec = {"generation": gen, "model": model, "value": float(metrics[self.metric]), "metrics": metrics,
               "labelled": labelled.tolist(), "selection_sha": digest, "key": key,
               "seconds": round(time.perf_counter() - t, 3)}
        write_sealed_json(path, rec)
        self.exp.advance(1)
        return rec["value"], None  # the continuation (al.loop.run) trains its own scoring model

    def train_random(self, gen: int, model: str, n: int, initial: np.ndarray) -> float:
        idx = random_selection(initial, self.be.pool_size, n, seed=self.seed)
        rec = train_cell(self.exp, model, RANDOM, self.seed, idx)  # shared with the matrix when sizes agree
        self.exp.advance(1)
        return rec["value"]

    def continue_cycles(self, gen: int, model: str, handle: Any, labelled: np.ndarray, cycles: int) -> np.ndarray:
        """`cycles` AL cycles of `al.loop.run` with `model` as the surrogate, started from `labelled`.

        The run (seed_<s>/chain/gen_<g>_<model>/al/) labels the inherited set in cycle 0, trains the
        surrogate on it and selects from there; it resumes, and starts over when the inherited set changed.
        """
        from al.loop import run
        from al.runs.run_dir import RunDir

        rdir = self._gdir(gen, model) / "al"
        start = [int(i) for i in labelled]
        rd = RunDir(rdir)
        stale = rd.state_path.is_file() and rd.read_state().get("initial_labelled") != start
        if stale:
            log.warning("%s: inherited set changed, starting its cycles over", rdir)
        reused = rd.is_done() and not stale
        self.exp.describe_step(f"seed {self.seed}: gen {gen} {model} selects ({cycles} cycles)")
        with self.exp.timing.part("chain AL run", model, self.seed, reused):
            res = run(run_config(self.exp.cfg, model, self.seed, cycles=cycles), rdir, resume=True, force=stale,
                      progress=False, initial_labelled=start)
        self.exp.advance(cycles)
        return np.asarray(res.labelled, dtype=np.int64)


def run_chains(exp: Experiment) -> list[dict]:
    """The chain of every seed (chain.jsonl rewritten after each)."""
    models, k = exp.p.chain_models, exp.p.chain_cycles
    units = (k + 1) + (len(models) - 1) * 2 + (len(models) - 2) * k
    exp.start_progress(units * len(exp.cfg.seeds), "generation chain")
    records = []
    for seed in exp.cfg.seeds:
        records += run_chain(_ChainOps(exp, seed), models, seed)
        write_jsonl(exp.out / "chain.jsonl", records)
    return records
