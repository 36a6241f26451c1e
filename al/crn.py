"""Common random numbers for training: every random draw keyed by (seed, epoch, sample), never by
how the work is split.

Three kinds of randomness enter a training run, and each comes from its own key:

- batch order: epoch e's permutation of the labelled set is `torch.randperm(n)` under a generator
  seeded with `stream_seed(seed, "order", e)` — a function of (seed, epoch, n) only;
- augmentation: sample i (its dataset index) in epoch e is transformed with torch's global RNG
  seeded to `stream_seed(seed, "augment", e, i)` for that one call (`SeededSamples`);
- dropout: the mask of sample i in epoch e at dropout layer l, call c of the forward pass comes
  from `stream_seed(seed, "dropout", e, i, l, c)` (`sample_dropout`).

None of them depends on the world size, the rank, `num_workers`, the other samples of the batch
or what ran before, so two runs (two cells, one seed) that train on the same labelled set draw the
same numbers, and a sample's augmentation and dropout mask in epoch e are the same whichever
labelled set it is part of.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.utils.data import Dataset

# Stream ids of `stream_seed`; never renumber (it would change every run).
STREAMS = {"order": 11, "augment": 12, "dropout": 13, "rank": 14}


def stream_seed(seed: int, stream: str, *keys: int) -> int:
    """63-bit seed from (seed, stream, keys...) with numpy's SeedSequence (no hash collisions to
    speak of, no dependence on anything drawn before)."""
    words = [seed & 0xFFFFFFFF, (seed >> 32) & 0xFFFFFFFF, STREAMS[stream], *(int(k) & 0xFFFFFFFF for k in keys)]
    return int(np.random.SeedSequence(words).generate_state(2, np.uint64)[0] >> np.uint64(1))


def order_generator(seed: int, epoch: int) -> torch.Generator:
    """The generator of epoch `epoch`'s shuffle (`torch.randperm(n, generator=...)`)."""
    return torch.Generator().manual_seed(stream_seed(seed, "order", epoch))


class SeededSamples(Dataset):
    """`dataset` whose item i is produced with torch's global RNG seeded from (seed, epoch, i) and
    restored afterwards: augmentation independent of the worker, the rank and the batch."""

    def __init__(self, dataset: Any, seed: int, epoch: int) -> None:
        self.dataset, self.seed, self.epoch = dataset, seed, epoch

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, i: int) -> Any:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(stream_seed(self.seed, "augment", self.epoch, i))
            return self.dataset[i]


class _Keys:
    """What the dropout layers of one forward pass key their masks on."""

    def __init__(self, seed: int) -> None:
        self.seed, self.epoch = seed, 0
        self.samples: list[int] = []
        self.calls: dict[int, int] = {}

    def set(self, epoch: int, samples: Sequence[int]) -> None:
        self.epoch, self.samples, self.calls = epoch, [int(s) for s in samples], {}


class SampleDropout(nn.Module):
    """Dropout (element-wise, or channel-wise for `channel=True`) whose mask for every sample of the
    batch comes from its own generator keyed by (seed, epoch, sample, layer, call)."""

    def __init__(self, p: float, layer: int, keys: _Keys, channel: bool = False) -> None:
        super().__init__()
        self.p, self.layer, self.keys, self.channel = float(p), layer, keys, channel

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.p == 0.0:
            return x
        k = self.keys
        if len(k.samples) != x.shape[0]:
            raise RuntimeError(f"dropout keys for {len(k.samples)} samples, batch of {x.shape[0]} (bug)")
        call = k.calls.get(self.layer, 0)
        k.calls[self.layer] = call + 1
        shape = x.shape[1:2] + (1,) * (x.dim() - 2) if self.channel else x.shape[1:]
        masks = []
        for s in k.samples:
            g = torch.Generator(device=x.device).manual_seed(stream_seed(k.seed, "dropout", k.epoch, s, self.layer, call))
            masks.append(torch.rand(shape, generator=g, device=x.device) >= self.p)
        keep = torch.stack(masks).to(x.dtype)                                 # (B, *shape)
        return x * keep * (1.0 / (1.0 - self.p))


_DROPOUTS = (nn.Dropout, nn.Dropout1d, nn.Dropout2d, nn.Dropout3d)


@contextlib.contextmanager
def sample_dropout(modules: Sequence[nn.Module], seed: int) -> Iterator[_Keys]:
    """Swap every dropout layer of `modules` for a `SampleDropout` (restored on exit); set the batch's
    keys with `keys.set(epoch, dataset_indices)` before each forward pass."""
    keys = _Keys(seed)
    swapped: list[tuple[nn.Module, str, nn.Module]] = []
    layer = 0
    for root in modules:
        for parent in list(root.modules()):
            for name, child in list(parent.named_children()):
                if isinstance(child, _DROPOUTS) and child.p > 0:
                    new = SampleDropout(child.p, layer, keys, channel=not isinstance(child, nn.Dropout))
                    new.train(child.training)
                    parent._modules[name] = new
                    swapped.append((parent, name, child))
                    layer += 1
    try:
        yield keys
    finally:
        for parent, name, child in reversed(swapped):
            child.train(parent._modules[name].training)
            parent._modules[name] = child
