"""The surrogate × deployment matrix (paper §4–5.3, Tables 3–5): its cells and how one is run.

For every seed:

1. every surrogate runs its own active-learning cycles with `al.loop.run` (same cycle-0 set for
   all surrogates of the seed: `al.seeds.initial_selection` depends on dataset, pool and seed only);
2. every deployment model trains afresh (from its starting weights) on each surrogate's final
   selection, and on a random selection of the same size, and is evaluated on the validation
   split. The random selection CONTAINS the shared cycle-0 set plus a seeded random draw from the rest of the pool, so it
   differs from the surrogates' selections only in what the cycles picked (fair comparison).
   A deployment model starts from the same initial weights and training seed in every column of
   a row, so the columns differ only in their data.

Output: records `{deployment, surrogate, seed, metric, value}` (`surrogate = "random"` for the
baseline), aggregated by `al.stats` into the paper's Table 3 layout.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path

import numpy as np

from al.experiments.context import Experiment
from al.runs.files import read_cached_json, save_state_dict, sha256_file, sha256_text, write_sealed_json
from al.runs.lock import DirLock, remove_temporaries
from al.seeds import nested_random_selection, random_selection, selection_digest, stable_seed
from al.stats import RANDOM
from hwbench.io import write_jsonl

log = logging.getLogger(__name__)


def train_cell(exp: Experiment, deployment: str, column: str, seed: int, indices: np.ndarray, *,
               nested: bool = False) -> dict:
    """Train a fresh `deployment` (from its starting weights) on `indices` (column = surrogate or
    random), in the cell's own directory `seed_<s>/train/<deployment>/<column>/` (record.json,
    model.pt) under its lock; cached.

    Random cells are keyed by size (`random_<n>`), so a chain generation and the matrix share one
    when their sizes agree.
    """
    cell = cell_dir(exp, deployment, column, seed, len(indices), nested=nested)
    with DirLock(cell, what="experiment cell"):
        remove_temporaries(cell)  # of a write a kill interrupted: this cell's own
        return _train_cell(exp, deployment, column, seed, indices, cell / "record.json")


def cell_dir(exp: Experiment, deployment: str, column: str, seed: int, n: int, *, nested: bool = False) -> Path:
    """Directory of one deployment-training cell: `<surrogate>` (final selection), `<surrogate>_<n>` (a sweep's
    smaller budget), `random_<n>`, or `random_nested_<n>` (a sweep's nested random sets)."""
    return exp.seed_dir(seed) / "train" / deployment / cell_stem(exp, column, n, nested=nested)


def cell_stem(exp: Experiment, column: str, n: int, *, nested: bool = False) -> str:
    if column == RANDOM:
        return f"{RANDOM}_nested_{n}" if nested else f"{RANDOM}_{n}"
    return column if n == exp.p.n_initial + exp.cfg.al.cycles * exp.p.n_cycle else f"{column}_{n}"


def random_for(exp: Experiment, initial: np.ndarray, n: int, seed: int) -> np.ndarray:
    """The random column's selection of size n: nested sets in a budget sweep, else one draw per size."""
    if exp.p.budgets:
        return nested_random_selection(initial, exp.be.pool_size, n, seed=seed)
    return random_selection(initial, exp.be.pool_size, n, seed=seed)


def cell_key(identity: str, deployment: str, column: str, seed: int, digest: str) -> str:
    """What a cell's result depends on: the experiment's identifying config (`identity`: its SHA-256), the
    cell and its selection (a record copied from another experiment or cell never matches)."""
    return sha256_text(f"{identity}|{deployment}|{column}|{seed}|{digest}")


def _train_cell(exp: Experiment, deployment: str, column: str, seed: int, indices: np.ndarray, path: Path) -> dict:
    digest = selection_digest(indices)
    key = cell_key(exp.identity_sha256(), deployment, column, seed, digest)
    rec = read_cached_json(path)
    if rec is not None:
        if rec.get("selection_sha") == digest and rec.get("key") == key and \
                isinstance(rec.get("value"), (int, float)) and model_ok(path, rec):
            exp.timing.parts.append({"kind": "deployment training", "name": f"{deployment}<-{column}",
                                      "seed": seed, "seconds": rec.get("seconds", 0.0), "reused": True})
            return rec
        log.warning("%s: not this cell's result (selection or config changed, or copied), retraining", path)
    exp.describe_step(f"seed {seed}: train {deployment} on {column}'s {len(indices)} images")
    t = time.perf_counter()
    with exp.timing.part("deployment training", f"{deployment}<-{column}", seed):
        # same init and training seed in every column of a row: columns differ only in their data
        model = exp.be.train_model(deployment, indices, seed=stable_seed(seed, deployment, "train"),
                                    init_seed=stable_seed(seed, deployment, "init"),
                                    cfg=exp.cfg.train.for_model(deployment, "deployment"))
        metrics = exp.be.evaluate(model)
    rec = {"deployment": deployment, "surrogate": column, "seed": seed, "metric": exp.be.metric,
           "value": float(metrics[exp.be.metric]), "metrics": metrics, "labelled": int(len(indices)),
           "selection_sha": digest, "key": key, "seconds": round(time.perf_counter() - t, 3)}
    if exp.cfg.save_deployment_checkpoints:
        rec["model_sha256"] = sha256_file(save_state_dict(model, path.with_name("model.pt")))
    write_sealed_json(path, rec)  # sealed: an edited or damaged record is trained again, never used
    return rec


def model_ok(record_path: Path, rec: dict) -> bool:
    """A cell's `model.pt`, when its record names one, is the file the record's SHA-256 names."""
    want = rec.get("model_sha256")
    model = record_path.with_name("model.pt")
    if want is None:
        return True
    if model.is_file() and sha256_file(model) == want:
        return True
    log.warning("%s is missing or does not match the SHA-256 in %s; training the cell again", model, record_path)
    return False


def read_record(record_path: Path, identity: str, deployment: str, column: str, seed: int) -> dict | None:
    """A finished train cell's record (sealed, this cell's key, its model.pt intact), or None: then the cell
    is not done (it is trained again)."""
    rec = read_cached_json(record_path)
    if rec is None or not isinstance(rec.get("value"), (int, float)) or not model_ok(record_path, rec):
        return None
    if rec.get("key") != cell_key(identity, deployment, column, seed, str(rec.get("selection_sha"))):
        log.warning("%s is not this cell's record (another experiment's or cell's); training the cell again",
                    record_path)
        return None
    return rec


def run_matrix(exp: Experiment) -> list[dict]:
    """Every seed: each surrogate's AL run, then every deployment model on each selection and on random."""
    cfg = exp.cfg
    units_al = cfg.al.cycles + 1
    budgets = exp.p.budgets or (exp.p.n_initial + cfg.al.cycles * exp.p.n_cycle,)
    per_seed = len(exp.p.surrogates) * units_al + len(cfg.deployment) * (len(exp.p.surrogates) + 1) * len(budgets)
    exp.start_progress(per_seed * len(cfg.seeds), "surrogate experiment")
    records = []
    for seed in cfg.seeds:
        finals: dict[str, np.ndarray] = {}
        initial = None
        for s in exp.p.surrogates:
            res = exp.surrogate_run(s, seed)
            exp.advance(units_al)
            finals[s] = np.asarray(res.labelled, dtype=np.int64)
            if initial is None:
                initial = np.asarray(res.selections[0], dtype=np.int64)
            elif not np.array_equal(np.sort(initial), np.sort(res.selections[0])):
                raise RuntimeError(f"seed {seed}: surrogates started from different cycle-0 sets")
        n = {len(v) for v in finals.values()}
        if len(n) != 1:
            raise RuntimeError(f"seed {seed}: surrogates labelled different numbers of images: {sorted(n)}")
        final = n.pop()
        for d in cfg.deployment:
            for b in budgets:  # the sweep's budgets in order; the final one last (the matrix's records)
                cols = [(s, sel[:b]) for s, sel in finals.items()]  # labelling order: cycles 0..k are a prefix
                for col, idx in (*cols, (RANDOM, random_for(exp, initial, b, seed))):
                    rec = train_cell(exp, d, col, seed, idx, nested=bool(exp.p.budgets) and col == RANDOM)
                    if b == final:
                        records.append({k: rec[k] for k in ("deployment", "surrogate", "seed", "metric", "value")})
                    exp.advance(1)
        write_jsonl(exp.out / "records.jsonl", records)  # partial results readable while running
    return records
