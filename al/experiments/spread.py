"""The random column alone: each deployment model trained on nested random sets of one budget over seeds
(`al surrogate CONFIG --random-spread N`). Its seed-to-seed sd is the noise floor of every
comparison; recipes are chosen on it, never on a surrogate's result (issue 17).

The sets are exactly the random cells of a budget sweep of the same config (`al.seeds.nested_random_selection`
after the shared cycle-0 set), trained and evaluated the same way (same init and training seeds).
"""

from __future__ import annotations

import logging
import time
from typing import Any

import numpy as np

from al.seeds import initial_selection, nested_random_selection, stable_seed
from hwbench.errors import UserError

log = logging.getLogger(__name__)


def random_spread(cfg: Any, budget: int) -> list[dict]:
    """One row per deployment model of experiment config `cfg`: mean, sd (ddof = 1), values and CPU seconds
    of the random column at `budget` labels."""
    from al.experiments.context import prepare_experiment
    from al.runtime import torch_threads

    p = prepare_experiment(cfg)
    be = p.backend
    if not p.n_initial <= budget <= be.pool_size:
        raise UserError(f"--random-spread {budget}: give {p.n_initial}..{be.pool_size} labelled images")
    rows = []
    with torch_threads(cfg.threads):
        for d in cfg.deployment:
            values, cpu0 = [], time.process_time()
            for seed in cfg.seeds:
                initial = initial_selection(cfg.data.name, be.pool_size, seed, p.n_initial)
                idx = nested_random_selection(initial, be.pool_size, budget, seed=seed)
                model = be.train_model(d, idx, seed=stable_seed(seed, d, "train"),
                                       init_seed=stable_seed(seed, d, "init"),
                                       cfg=cfg.train.for_model(d, "deployment"))
                values.append(float(be.evaluate(model)[be.metric]))
                log.info("%s seed %d: %.2f", d, seed, values[-1])
            rows.append({"deployment": d, "budget": budget, "metric": be.metric, "seeds": len(values), "mean": float(np.mean(values)),
                         "sd": float(np.std(values, ddof=1)) if len(values) > 1 else float("nan"),
                         "values": [round(v, 2) for v in values], "cpu_s": round(time.process_time() - cpu0, 1)})
    return rows
