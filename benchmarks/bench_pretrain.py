"""Benchmark: `al pretrain` for the surrogates' backbones (the demo also pre-trains its deployment
model's, resnet18: ~50 CPU-s, README "Pretrained starts"), and what the pretrained start is worth.

1. CPU seconds to pre-train resnet20 and mobilenetv3_small with the default recipe (one thread
   each; `al pretrain` trains them in parallel, one per core, so the wall time on 2 idle cores
   is the larger of the two). Baseline: a 60 s budget; ratio = 60 s / the larger CPU time.
2. DeepLabv3+ Res-20 trained briefly on 30 pool frames of `synthetic_streets` (32x64, 3 epochs,
   4 seeds: the scale of the demo's cells) from the pretrained backbone vs from random weights:
   mIoU on 120 validation frames, mean and sample std over the seeds. Goal: the pretrained
   start is better on average (ratio = pretrained mean / random mean >= 1).
Run: `.venv/bin/python -m benchmarks pretrain`.
"""

from __future__ import annotations

import tempfile

BUDGET_S = 60.0
SEEDS = (0, 1, 2, 3)


def _finetune(pool, val, ckpt: str | None) -> list[float]:
    import numpy as np
    import torch

    from al.runtime import deterministic, torch_threads
    from al.train import TrainConfig, evaluate, train
    from hwbench import load_weights
    from hwbench.models import create_model

    out = []
    with torch_threads(1), deterministic("cpu"):
        for seed in SEEDS:
            torch.manual_seed(seed)
            model = create_model("deeplabv3plus_resnet20", num_classes=pool.num_classes)
            if ckpt:
                load_weights(model, ckpt)
            idx = np.random.default_rng(seed).permutation(len(pool))[:30]
            train(model, pool, idx, TrainConfig(epochs=3, batch_size=8, lr=0.05), seed=seed, show_progress=False)
            out.append(evaluate(model, val, show_progress=False)["miou"])
    return out


def main() -> list[dict]:
    import statistics

    from al.data import build_dataset
    from al.pretrain import pretrain

    with tempfile.TemporaryDirectory() as cache:
        entries = pretrain(["resnet20", "mobilenetv3_small"], cache_dir=cache, jobs=2)
        cpu = {e["backbone"]: e["cpu_seconds"] for e in entries}
        worst = max(cpu.values())
        rows = [{"name": f"al pretrain resnet20 + mobilenetv3_small (CPU s: {cpu['resnet20']:.1f} + "
                         f"{cpu['mobilenetv3_small']:.1f}, one core each) vs budget",
                 "ours_s": worst, "baseline_s": BUDGET_S, "ratio": BUDGET_S / worst, "goal": ">= 1",
                 "ok": worst <= BUDGET_S}]
        pool = build_dataset("synthetic_streets", split="train", n=100, size=[32, 64])
        val = build_dataset("synthetic_streets", split="val", n=120, size=[32, 64])
        pre = _finetune(pool, val, entries[0]["path"])
        rnd = _finetune(pool, val, None)
    m_pre, m_rnd = statistics.mean(pre), statistics.mean(rnd)
    rows.append({"name": f"Res-20 on 30 frames, mIoU % over 4 seeds: pretrained {m_pre:.1f} ± "
                         f"{statistics.stdev(pre):.1f} vs random {m_rnd:.1f} ± {statistics.stdev(rnd):.1f}",
                 "ours_s": None, "baseline_s": None, "ratio": m_pre / m_rnd, "goal": ">= 1", "ok": m_pre >= m_rnd})
    return rows


if __name__ == "__main__":  # pragma: no cover
    from hwbench.console import emit

    emit(main(), as_json=False, title="bench_pretrain")
