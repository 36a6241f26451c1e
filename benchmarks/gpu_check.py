"""CUDA paths that the CPU machines here never run, one step per call (driven by gpu_check.sh).

    python -m benchmarks.gpu_check STEP OUT_DIR      STEP: train | evidence | kcenter | compare

Every step prints one JSON line (`{"step": ..., ...}`) and exits 0, or 3 ("skip") without CUDA.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

SKIP = 3


def _line(**kw: object) -> None:
    print(json.dumps(kw), flush=True)


def step_train(out: Path) -> None:
    """AMP + channels_last training of DeepLabv3+ ResNet-18 on 64 synthetic 256x512 frames, 2 epochs."""
    import torch

    from al.data import build_dataset
    from al.train import TrainConfig, evaluate, train
    from hwbench.models import create_model

    ds = build_dataset("synthetic_streets", split="train", n=64, size=[256, 512])
    torch.manual_seed(0)
    model = create_model("deeplabv3plus_resnet18", num_classes=ds.num_classes)
    cfg = TrainConfig(epochs=2, batch_size=16, lr=0.01, amp=True, channels_last=True)
    torch.cuda.synchronize()
    stats = train(model, ds, range(64), cfg, device="cuda", seed=0, show_progress=False)
    torch.cuda.synchronize()
    res = evaluate(model, ds, range(16), device="cuda", amp=True, show_progress=False)
    torch.save(model.state_dict(), out / "train_cuda.pt")
    _line(step="train", amp=True, channels_last=True, loss_per_epoch=stats["loss_per_epoch"],
          samples_per_s=round(stats["samples_per_s"], 1), miou=round(res["miou"], 2),
          max_memory_gb=round(torch.cuda.max_memory_allocated() / 2**30, 2))


def step_evidence(out: Path) -> None:
    """Entropy, embeddings and LLAL losses of the trained model on CUDA vs the same on CPU."""
    import numpy as np
    import torch

    from al.data import build_dataset
    from al.strategies import LossPredictionModule, collect
    from hwbench.models import create_model

    ds = build_dataset("synthetic_streets", split="train", n=64, size=[256, 512])
    model = create_model("deeplabv3plus_resnet18", num_classes=ds.num_classes)
    model.load_state_dict(torch.load(out / "train_cuda.pt", map_location="cpu", weights_only=True))
    torch.manual_seed(0)
    aux = LossPredictionModule(model.task, model.feature_taps, model.feature_channels)
    needs = {"image_score", "embedding", "predicted_loss"}
    t0 = time.perf_counter()
    gpu = collect(model, ds, np.arange(64), needs, device="cuda", batch_size=16, aux=aux, amp=True,
                  show_progress=False)
    gpu_s = time.perf_counter() - t0
    cpu = collect(model.cpu(), ds, np.arange(16), needs, device="cpu", batch_size=16, aux=aux.cpu(),
                  show_progress=False)
    diff = float(np.nanmax(np.abs(gpu.image_score[:16] - cpu.image_score[:16])))
    order = np.argsort(-gpu.image_score[:16]).tolist() == np.argsort(-cpu.image_score[:16]).tolist()
    _line(step="evidence", images=64, seconds=round(gpu_s, 3), entropy_max_abs_diff_vs_cpu=diff,
          same_entropy_order_vs_cpu=order, embedding_dim=int(gpu.embedding.shape[1]))


def step_kcenter(out: Path) -> None:
    """k-center greedy on the GPU at N = 1,000,000, D = 512 (budget 200), and picks vs the CPU version
    on a 20,000-point subset."""
    import numpy as np
    import torch

    from al.strategies.coreset import k_center_greedy
    from al.strategies.kcenter_torch import k_center_greedy_torch

    g = torch.Generator(device="cuda").manual_seed(0)
    x = torch.randn(1_000_000, 512, device="cuda", generator=g)
    lab = np.zeros(x.shape[0], bool)
    lab[np.random.default_rng(0).choice(x.shape[0], 1000, replace=False)] = True
    torch.cuda.synchronize()
    t0 = time.perf_counter()
    picks = k_center_greedy_torch(x, lab, 200)
    torch.cuda.synchronize()
    big_s = time.perf_counter() - t0
    small = x[:20_000].cpu().numpy()
    lab_s = lab[:20_000]
    same = np.array_equal(k_center_greedy_torch(x[:20_000], lab_s, 200), k_center_greedy(small, lab_s, 200))
    _line(step="kcenter", n=x.shape[0], d=x.shape[1], labelled=1000, budget=200, seconds=round(big_s, 3),
          ms_per_pick=round(1000 * big_s / 200, 3), distinct=len(set(picks.tolist())) == 200,
          same_picks_as_cpu_on_20000=same)


def step_compare(out: Path) -> None:
    """Selections of the one-GPU and the all-GPU `al run smoke` (written by gpu_check.sh)."""
    sel = {}
    for name in ("one", "ddp"):
        p = out / f"smoke_{name}" / "selections.jsonl"
        sel[name] = [json.loads(line)["selected"] for line in p.read_text().splitlines() if line.strip()]
    _line(step="compare", same_selections=sel["one"] == sel["ddp"], cycles=len(sel["one"]))


STEPS = {"train": step_train, "evidence": step_evidence, "kcenter": step_kcenter, "compare": step_compare}


def main(argv: list[str]) -> int:
    if len(argv) != 2 or argv[0] not in STEPS:
        print(f"usage: python -m benchmarks.gpu_check {{{'|'.join(STEPS)}}} OUT_DIR", file=sys.stderr)
        return 2
    import torch

    if not torch.cuda.is_available():
        _line(step=argv[0], skipped="no CUDA GPU")
        return SKIP
    out = Path(argv[1])
    out.mkdir(parents=True, exist_ok=True)
    STEPS[argv[0]](out)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
