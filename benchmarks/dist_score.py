"""Worker of bench_dist: times `score_and_select` (entropy, whole pool) in this process or, under
torchrun, over all ranks; prints one JSON line {"world": W, "seconds": s, "picks": [...]} on rank 0."""

from __future__ import annotations

import json
import time

POOL, SIZE, MODEL, BATCH, BUDGET = 192, [64, 128], "deeplabv3plus_mobilenetv3_small", 16, 16


def score_once() -> tuple[float, list[int], int]:
    import numpy as np
    import torch

    from al import distributed
    from al.data import build_dataset
    from al.strategies import get_strategy
    from al.strategies.sharded import score_and_select
    from hwbench.models import create_model

    torch.set_num_threads(1)
    distributed.setup("cpu")
    ds = build_dataset("synthetic_streets", split="train", n=POOL, size=SIZE)
    ds.tensors()                                                       # render the scenes before timing
    torch.manual_seed(0)
    model = create_model(MODEL, num_classes=ds.num_classes).eval()
    labelled = np.zeros(POOL, bool)
    labelled[:8] = True
    distributed.barrier()
    t0 = time.perf_counter()
    picks = score_and_select(get_strategy("entropy"), model, ds, labelled, BUDGET, np.random.default_rng(0),
                             device="cpu", batch_size=BATCH, show_progress=False)
    distributed.barrier()
    seconds = time.perf_counter() - t0
    world = distributed.world_size()
    distributed.teardown()
    return seconds, [int(i) for i in picks], world


if __name__ == "__main__":
    from al import distributed

    s, picks, world = score_once()
    if distributed.launched_rank_main():
        print(json.dumps({"world": world, "seconds": s, "picks": picks}))
