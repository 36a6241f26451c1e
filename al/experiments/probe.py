"""The cheap probe behind `al rank`: every model trains once on the shared cycle-0 set and scores
the rest of the pool; the pair signals of al.surrogate_ranking come from those scores.

Per seed it costs one training per distinct model on the cycle-0 set (n_initial images) and one
scoring pass over the unlabelled pool: the first step of each AL run of the matrix, without its
later cycles and without any deployment training.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np

from al.experiments.config import ExperimentConfig
from al.surrogate_ranking import pair_signals, ranking
from hwbench.errors import UserError


def run_probe(cfg: ExperimentConfig, *, progress: Any = None) -> dict:
    """Signals of every (surrogate, deployment) pair of `cfg`, per seed, and the ranking they give."""
    from al.experiments.context import prepare_experiment
    from al.runtime import torch_threads
    from al.seeds import initial_selection
    from al.strategies import get_strategy

    strat = get_strategy(cfg.al.strategy)
    if "image_score" not in strat.needs:
        raise UserError(f"al rank compares per-image scores, but strategy {cfg.al.strategy!r} has none; "
                        "use a scoring strategy (entropy, margin) in [al] strategy")
    p = prepare_experiment(cfg)
    be = p.backend
    models = list(dict.fromkeys((*p.surrogates, *cfg.deployment)))
    k = p.n_cycle
    t0 = time.perf_counter()
    rows: list[dict] = []
    task = progress.add_task("rank: probe", total=len(cfg.seeds) * len(models)) if progress is not None else None
    with torch_threads(cfg.threads):
        for seed in cfg.seeds:
            initial = initial_selection(cfg.data.name, be.pool_size, seed, p.n_initial)
            held = np.setdiff1d(np.arange(be.pool_size), initial)                 # (N - n_initial,)
            scores = {}
            for m in models:
                if task is not None:
                    progress.update(task, description=f"rank: seed {seed}: {m} trains on {initial.size} images")
                model = be.train_model(m, initial, seed=seed, cfg=cfg.train.for_model(m, "surrogate"))
                scores[m] = be.image_scores(model, held, strategy=cfg.al.strategy)
                if task is not None:
                    progress.update(task, advance=1)
            rows += [{"seed": int(seed), **r} for r in pair_signals(scores, p.surrogates, cfg.deployment, k)]
    return {"name": cfg.name, "dataset": cfg.data.name, "strategy": cfg.al.strategy, "seeds": list(cfg.seeds),
            "surrogates": list(p.surrogates), "deployment": list(cfg.deployment), "n_initial": p.n_initial,
            "k": k, "pool_size": be.pool_size, "signals": rows, "ranking": ranking(rows),
            "probe_s": round(time.perf_counter() - t0, 1)}
