"""The random column alone: each deployment model trained on nested random sets of one budget over seeds
(`al surrogate CONFIG --random-spread N`). Its seed-to-seed sd is the noise floor of every
comparison; recipes are chosen on it, never on a surrogate's result (issue 17).

The sets are exactly the random cells of a budget sweep of the same config (`al.seeds.nested_random_selection`
after the shared cycle-0 set), trained and evaluated the same way (same init and training seeds).

For classification it also splits a paired difference's noise: of the n validation images, two of these
models (consecutive seeds) get a fraction r right where the other is wrong (each such image adds +1 or -1,
every other image 0), so the difference of their top-1 has a test-sampling variance (r - delta^2) / n
(delta: their top-1 difference as a fraction). `disagree_pct` is the share of images they label differently.
`test_sd_pp` is its square root averaged over the pairs: the part of a paired Δ's per-seed sd that more
validation images shrink, where more seeds are the only cure for the rest.
"""

from __future__ import annotations

import logging
import time
from typing import Any

import numpy as np

from al.seeds import initial_selection, nested_random_selection, stable_seed
from hwbench.errors import UserError

log = logging.getLogger(__name__)


def test_sampling_sd(predictions: list[np.ndarray], labels: np.ndarray) -> tuple[float, float]:
    """(mean disagreement %, test-sampling sd of a paired top-1 difference in p.p.) over consecutive pairs of
    `predictions` (each (n,) predicted classes of the same n images with true classes `labels`)."""
    if len(predictions) < 2:
        return float("nan"), float("nan")
    d, var = [], []
    for a, b in zip(predictions[:-1], predictions[1:], strict=True):
        diff = (a == labels).astype(np.float64) - (b == labels)   # (n,) in {-1, 0, +1}
        d.append(float(np.mean(a != b)))
        var.append(float(np.mean(diff ** 2) - np.mean(diff) ** 2))
    return 100.0 * float(np.mean(d)), 100.0 * float(np.sqrt(np.mean(var) / len(labels)))


def _top1_predictions(be: Any, model: Any) -> tuple[float, np.ndarray, np.ndarray]:
    """(top-1 %, (n,) predicted and (n,) true classes) on the validation images, batched as `evaluate`."""
    import torch

    from al.batching import iterate_batches
    from al.runtime import deterministic

    preds, ys = [], []
    with deterministic(be.device), torch.no_grad():
        model.eval()
        for x, y, _ in iterate_batches(be.p.val, be.p.val_indices, batch_size=be.p.config.al.batch_size,
                                       device=be.device):
            preds.append(model(x).argmax(1).cpu().numpy())
            ys.append(y.cpu().numpy())
    pred, true = np.concatenate(preds), np.concatenate(ys)
    return 100.0 * float(np.mean(pred == true)), pred, true


def random_spread(cfg: Any, budget: int) -> list[dict]:
    """One row per deployment model of experiment config `cfg`: mean, sd (ddof = 1), values and CPU seconds
    of the random column at `budget` labels; for classification also the seeds' mean disagreement and the
    test-sampling sd of a paired difference (`test_sampling_sd`)."""
    from al.experiments.context import prepare_experiment
    from al.runtime import torch_threads

    p = prepare_experiment(cfg)
    be = p.backend
    if not p.n_initial <= budget <= be.pool_size:
        raise UserError(f"--random-spread {budget}: give {p.n_initial}..{be.pool_size} labelled images")
    rows = []
    with torch_threads(cfg.threads):
        for d in cfg.deployment:
            values, preds, labels, cpu0 = [], [], None, time.process_time()
            for seed in cfg.seeds:
                initial = initial_selection(cfg.data.name, be.pool_size, seed, p.n_initial)
                idx = nested_random_selection(initial, be.pool_size, budget, seed=seed)
                model = be.train_model(d, idx, seed=stable_seed(seed, d, "train"),
                                       init_seed=stable_seed(seed, d, "init"),
                                       cfg=cfg.train.for_model(d, "deployment"))
                if be.p.task == "classification":
                    top1, pred, labels = _top1_predictions(be, model)
                    values.append(top1)
                    preds.append(pred)
                else:
                    values.append(float(be.evaluate(model)[be.metric]))
                log.info("%s seed %d: %.2f", d, seed, values[-1])
            rows.append({"deployment": d, "budget": budget, "metric": be.metric, "seeds": len(values), "mean": float(np.mean(values)),
                         "sd": float(np.std(values, ddof=1)) if len(values) > 1 else float("nan"),
                         "values": [round(v, 2) for v in values], "cpu_s": round(time.process_time() - cpu0, 1)})
            if labels is not None:
                rows[-1]["disagree_pct"], rows[-1]["test_sd_pp"] = test_sampling_sd(preds, labels)
    return rows
