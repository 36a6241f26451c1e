"""Run under `torchrun --nproc_per_node=W tests/al/dist_worker.py OUT_DIR [AL_RUN_ARGS...]`: distributed
pieces whose results `test_distributed.py` compares with one process. Rank 0 writes `OUT_DIR/results.pt`.

With AL_RUN_ARGS, the same processes then run `al run AL_RUN_ARGS` in that process group (what
`torchrun -m al run AL_RUN_ARGS` runs, its stdout included), so that the test needs one launch, not
two: every rank pays ~7 CPU-s just importing torch and torch._dynamo (which DistributedDataParallel
imports), far more than the cases themselves."""

from __future__ import annotations

import os
import sys

import numpy as np
import torch
from torch import nn

from al import distributed
from al.crn import sample_dropout
from al.strategies import LossPredictionModule, get_strategy
from al.strategies.sharded import k_center_sharded, score_and_select
from al.syncbn import sync_batchnorm

TRAIN_IDX = list(range(2, 12))
TRAIN_CFG = dict(epochs=1, batch_size=5, lr=0.005)


def kcenter_cases() -> list[tuple[np.ndarray, np.ndarray, int, int]]:
    """(features, labelled, budget, rng seed): random, duplicated rows (ties), nothing labelled."""
    rng = np.random.default_rng(0)
    x = rng.normal(size=(157, 6)).astype(np.float32)
    lab = np.zeros(157, bool)
    lab[rng.choice(157, 9, replace=False)] = True
    dup = np.repeat(rng.integers(0, 4, size=(40, 3)).astype(np.float32), 2, axis=0)   # many exact ties
    lab_dup = np.zeros(80, bool)
    lab_dup[[3, 50]] = True
    return [(x, lab, 25, 1), (dup, lab_dup, 12, 2), (x, np.zeros(157, bool), 10, 3)]


def syncbn_case() -> dict:
    """Forward/backward of a conv+BN+dropout stack on this rank's part of a fixed global batch."""
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(), nn.Dropout(0.3))
    x = torch.randn(5, 3, 6, 7)
    lo, hi = distributed.shard_range(5)
    net.train()
    with sync_batchnorm([net], torch.device("cpu")), sample_dropout([net], seed=7) as keys:
        keys.set(0, list(range(lo, hi)))
        y = net(x[lo:hi])
        (y.square().sum() / 5).backward()
    grads = {k: distributed.all_reduce_sum(p.grad) for k, p in net.named_parameters()}
    return {"y": torch.from_numpy(distributed.all_gather_rows(y.detach().numpy())), "grads": grads,
            "running_mean": net[1].running_mean.clone(), "running_var": net[1].running_var.clone()}


def train_case(ds) -> dict:  # noqa: ANN001
    """One epoch of DeepLabv3+ Res-20 with the LLAL module on 10 images: two global batches of 5 (parts 3 + 2)."""
    from al.train import TrainConfig, train
    from hwbench.models import create_model

    torch.manual_seed(0)
    model = create_model("deeplabv3plus_resnet20", num_classes=ds.num_classes)
    aux = LossPredictionModule(model.task, model.feature_taps, model.feature_channels)
    stats = train(model, ds, TRAIN_IDX, TrainConfig(**TRAIN_CFG), seed=3, aux=aux,
                  show_progress=False)
    return {"model": model.state_dict(), "aux": aux.state_dict(), "stats": stats}


def run_all() -> dict:
    """Every case on this rank (or in one process); the same result on every rank."""
    results: dict = {"world": distributed.world_size(), "kcenter": [], "select": {}}
    for x, lab, budget, seed in kcenter_cases():
        lo, hi = distributed.shard_range(len(x))
        picks = k_center_sharded(x[lo:hi], np.arange(lo, hi), lab, budget, chunk_size=4,
                                 rng=np.random.default_rng(seed))
        results["kcenter"].append(picks)
    results["syncbn"] = syncbn_case()

    from al.data import build_dataset
    from hwbench.models import create_model

    ds = build_dataset("synthetic_streets", split="train", n=30, size=[32, 64])
    labelled = np.zeros(30, bool)
    labelled[[1, 4, 9, 22]] = True
    for name in ("entropy", "coreset", "llal", "random"):
        torch.manual_seed(0)
        model = create_model("deeplabv3plus_resnet20", num_classes=ds.num_classes).eval()
        aux = LossPredictionModule(model.task, model.feature_taps, model.feature_channels).eval() \
            if name == "llal" else None
        results["select"][name] = score_and_select(get_strategy(name), model, ds, labelled, 6,
                                                   np.random.default_rng(5), device="cpu", batch_size=4, aux=aux,
                                                   show_progress=False)
    results["train"] = train_case(ds)
    return results


def main(out: str, al_run_args: list[str]) -> int:
    torch.set_num_threads(1)
    distributed.setup("cpu")
    results = run_all()
    if distributed.is_main():
        torch.save(results, f"{out}/results.pt")
    distributed.barrier()
    if not al_run_args:
        distributed.teardown()
        return 0
    from al.cli import main as al_main

    return al_main(["run", *al_run_args])  # joins the same process group; leaves it at the end


if __name__ == "__main__":
    rc = main(sys.argv[1], sys.argv[2:])
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(rc)  # everything is written; skips ~1.5 CPU-s of interpreter teardown (torch._dynamo, sympy)
