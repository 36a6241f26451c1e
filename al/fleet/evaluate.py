"""What the collected data is worth: a deployment model trained on it, against two baselines.

For every (generation, surrogate), with the uploads of the evaluation policy:

- `fleet`:  the server receives the generation's uploads (duplicates across devices removed, as
            `al ingest` does) and labels the `label_budget` of them with the best device scores;
- `pool`:   server-side pool AL with the same surrogate and budget: every world frame the
            generation drove past is scored (no latency, no upload limit), the best are labelled;
- `random`: the same number of frames drawn at random from those the generation drove past.

Each set is added to the initial labelled set (the surrogates' training set), the deployment
model trains from scratch on it (al.train; same initial weights and training seed for every set
of a seed, so sets differ only in their data) and is evaluated on the validation frames.
Identical selections are trained once. Records: generation, surrogate, method, seed, labelled,
metric value, and the overlap of the set with the pool-AL set.
"""

from __future__ import annotations

import hashlib
import zlib
from collections.abc import Callable
from typing import Any

import numpy as np

from al.fleet.config import FleetConfig
from al.fleet.simulate import FleetResult, variant_key
from al.fleet.world import ScoredWorld

METHODS = ("fleet", "pool", "random")


def top_by_score(candidates: np.ndarray, scores: np.ndarray, k: int) -> np.ndarray:
    """The k candidates with the highest score (ties: lower index), sorted."""
    c = np.asarray(candidates, dtype=np.int64)
    order = np.lexsort((c, -scores[c]))
    return np.sort(c[order[:k]])


def selections(cfg: FleetConfig, world: ScoredWorld, result: FleetResult, gi: int, surrogate: str,
               seed: int) -> dict[str, np.ndarray]:
    """The three labelled sets (initial set excluded) of one (generation, surrogate) and seed."""
    v = result.variants[variant_key(gi, surrogate, cfg.evaluation.policy)]
    fresh = np.ones(world.n, dtype=bool)
    fresh[world.initial] = False
    uploaded = np.flatnonzero((v.uploaded_by > 0) & fresh)
    passed = np.flatnonzero((v.passed_by > 0) & fresh)
    k = min(cfg.evaluation.label_budget, uploaded.size)
    scores = world.scores[surrogate]
    rng = np.random.default_rng([cfg.seed, seed, 99])          # the same draw for every generation passing the same frames
    return {"fleet": top_by_score(uploaded, scores, k), "pool": top_by_score(passed, scores, k),
            "random": np.sort(rng.choice(passed, size=k, replace=False)) if k else np.zeros(0, np.int64)}


def _seed(*parts: int | str) -> int:
    """A stable 63-bit seed from ints and strings."""
    ints = [p if isinstance(p, int) else zlib.crc32(p.encode()) for p in parts]
    return int(np.random.SeedSequence(ints).generate_state(2, np.uint64)[0] >> np.uint64(1))


def _digest(idx: np.ndarray) -> str:
    return hashlib.sha256(np.sort(idx).astype(np.int64).tobytes()).hexdigest()[:16]


def evaluate_sets(cfg: FleetConfig, world: ScoredWorld, result: FleetResult, be: Any, *,
                  progress: Callable[[str], None] | None = None) -> list[dict]:
    """Train and evaluate the deployment model on every set (see module docstring)."""
    e = cfg.evaluation
    cache: dict[tuple[int, str], float] = {}
    records = []
    for seed in e.seeds:
        for gi, g in enumerate(cfg.generation):
            for s in g.surrogates:
                sets = selections(cfg, world, result, gi, s, seed)
                for method in METHODS:
                    idx = np.concatenate([world.initial, sets[method]])
                    key = (seed, _digest(idx))
                    if key not in cache:
                        if progress is not None:
                            progress(f"seed {seed}: train {e.deployment} on {g.name}/{s} {method} ({idx.size} frames)")
                        model = be.train_model(e.deployment, idx, seed=_seed(seed, e.deployment, "train"),
                                               init_seed=_seed(seed, e.deployment, "init"), cfg=e.train)
                        cache[key] = float(be.evaluate(model)[be.metric])
                    overlap = np.intersect1d(sets[method], sets["pool"]).size / max(1, sets["pool"].size)
                    records.append({"generation": g.name, "surrogate": s, "method": method, "seed": seed,
                                    "labelled": int(idx.size), "added": int(sets[method].size),
                                    "metric": be.metric, "value": cache[key], "overlap_with_pool": overlap})
    return records
