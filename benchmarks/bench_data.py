"""Benchmark: the data path of the embedded sets (al.data + al.train batching).

1. Rendering `synthetic_streets` (600 train frames = 50 drives of 12, 64x128) from scratch.
   Baseline: the goal budget of 2 s (the demo trains several models per minute on CPU);
   ratio = 2 s / measured.
2. One epoch of batches (600 images, batch 16) through `al.train.iterate_batches`:
   a. the cached `tensors()` fast path vs the same in-memory dataset served per item through a
      DataLoader (goal: not slower, ratio >= 1);
   b. the fast path vs the same 600 images stored as PNG files and decoded per item the way the
      file-backed sets (Cityscapes, ADE20K) work (goal: >= 10x).
   Baselines are measured in the same run. Measured with one intra-op thread: the paths are
   memory-bound, and on a busy 2-core machine OpenMP spin-waiting otherwise swamps tiny ops.
Run: `.venv/bin/python -m benchmarks data`.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

RENDER_BUDGET_S = 2.0
LOADER_GOAL = 1.0
FILES_GOAL = 10.0


class _PerItem:
    """The same dataset without `tensors()`: forces the DataLoader path."""

    def __init__(self, ds) -> None:
        self.ds = ds
        self.task, self.ignore_index, self.num_classes = ds.task, ds.ignore_index, ds.num_classes

    def __len__(self) -> int:
        return len(self.ds)

    def __getitem__(self, i: int):
        return self.ds[i]


def _epoch_s(dataset, n: int, batch_size: int) -> float:
    from al.train import iterate_batches

    t0 = time.perf_counter()
    for _ in iterate_batches(dataset, range(n), batch_size=batch_size):
        pass
    return time.perf_counter() - t0


def _png_dataset(ds, folder: Path):
    """The rendered images as PNG pairs behind the file-backed segmentation base class."""
    import numpy as np
    from PIL import Image

    from al.data.base import FileSegmentation
    from al.data.transforms import SegEval

    pairs = []
    for i in range(len(ds)):
        img, lab = ds.raw(i)
        pi, pl = folder / f"{i:04d}_img.png", folder / f"{i:04d}_lab.png"
        Image.fromarray(img).save(pi)
        Image.fromarray(lab).save(pl)
        pairs.append((pi, pl))
    files = FileSegmentation(pairs, np.arange(256, dtype=np.uint8), SegEval())
    files.num_classes = ds.num_classes
    return files


def main() -> list[dict]:
    import torch

    from al.data.synthetic import SyntheticStreets, generate

    generate(0, "train", 2, (64, 128))  # imports, not timed
    t0 = time.perf_counter()
    generate(123, "train", 600, (64, 128))
    render_s = time.perf_counter() - t0
    rows = [{"name": "synthetic_streets render 600 frames (50 drives) of 64x128 vs time budget", "ours_s": render_s,
             "baseline_s": RENDER_BUDGET_S, "images_per_s": 600 / render_s, "ratio": RENDER_BUDGET_S / render_s,
             "goal": ">= 1",
             "ok": render_s <= RENDER_BUDGET_S}]

    ds = SyntheticStreets(split="train")
    ds.tensors()  # render + cache, not timed
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        with tempfile.TemporaryDirectory() as tmp:
            files = _png_dataset(ds, Path(tmp))
            fast_s = min(_epoch_s(ds, len(ds), 16) for _ in range(3))
            item_s = min(_epoch_s(_PerItem(ds), len(ds), 16) for _ in range(3))
            files_s = _epoch_s(files, len(ds), 16)
    finally:
        torch.set_num_threads(threads)
    for case, base_s, goal in (("per-item DataLoader (in memory)", item_s, LOADER_GOAL),
                               ("PNG files decoded per item", files_s, FILES_GOAL)):
        rows.append({"name": f"epoch 600 images, batch 16: tensors() vs {case}", "ours_s": fast_s,
                     "baseline_s": base_s, "images_per_s": len(ds) / fast_s, "ratio": base_s / fast_s,
                     "goal": f">= {goal:g}", "ok": base_s / fast_s >= goal})
    return rows


if __name__ == "__main__":  # pragma: no cover
    from hwbench.console import emit

    emit(main(), as_json=False, title="bench_data")
