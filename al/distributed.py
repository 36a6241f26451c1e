"""torch.distributed for `al`: the process group that `torchrun` describes, and the few collectives
training, scoring and selection need.

`torchrun --nproc_per_node=N -m al run ...` sets `RANK`, `WORLD_SIZE`, `LOCAL_RANK`,
`MASTER_ADDR` and `MASTER_PORT`; `setup(device)` turns them into a process group — NCCL on CUDA
(each rank on GPU `LOCAL_RANK`), gloo on the CPU — and is a no-op in a plain single process. Every
helper here works without a process group too (world size 1), so callers never branch on it.

Conventions: rank 0 is the only rank that writes files; shards of a pool are contiguous ranges
(`shard_range`) so that concatenating gathered shards in rank order gives the pool order back;
collectives run on the device the backend needs (CUDA for NCCL, CPU for gloo), and whatever they
return to the caller is on the CPU.
"""

from __future__ import annotations

import datetime
import logging
import os
import pickle
from collections.abc import Callable, Sequence
from typing import TypeVar

import numpy as np
import torch
import torch.distributed as dist

from hwbench.errors import UserError

log = logging.getLogger(__name__)
T = TypeVar("T")

ENV_KEYS = ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT")
TIMEOUT_S = 1800  # a rank that waits this long for the others gives up (a crashed peer)


def launched() -> bool:
    """True when this process is one rank of a multi-process launch (`WORLD_SIZE` > 1)."""
    try:
        return int(os.environ.get("WORLD_SIZE", "1")) > 1
    except ValueError:
        raise UserError(f"WORLD_SIZE={os.environ['WORLD_SIZE']!r} is not an integer; launch with torchrun") from None


def active() -> bool:
    """A process group with more than one rank is running."""
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def rank() -> int:
    return dist.get_rank() if active() else 0


def world_size() -> int:
    return dist.get_world_size() if active() else 1


def is_main() -> bool:
    """Rank 0 (or the only process): the one that writes files and prints results."""
    return rank() == 0


def launched_rank_main() -> bool:
    """Rank 0 of the launch by its environment (`RANK`), valid after the process group is gone."""
    return int(os.environ.get("RANK", "0") or 0) == 0


def local_rank() -> int:
    return int(os.environ.get("LOCAL_RANK", "0"))


def setup(device: str) -> str:
    """Join the process group `torchrun` describes (if any) and return this rank's device.

    `device` is "cpu", "cuda" or "cuda:K" as resolved from the config. Under torchrun on CUDA every
    rank takes GPU `LOCAL_RANK` and the backend is NCCL; on the CPU the backend is gloo. Calling it
    again is harmless.
    """
    if not launched():
        return device
    missing = [k for k in ENV_KEYS if k not in os.environ]
    if missing:
        raise UserError(f"WORLD_SIZE > 1 but {', '.join(missing)} not set; launch with torchrun "
                        "(torchrun --nproc_per_node=N -m al run ...)")
    cuda = device.startswith("cuda")
    if cuda:
        n_gpu = torch.cuda.device_count()
        if local_rank() >= n_gpu:
            raise UserError(f"LOCAL_RANK {local_rank()} but only {n_gpu} GPU(s) here; use "
                            f"--nproc_per_node <= {n_gpu}")
        torch.cuda.set_device(local_rank())
        device = f"cuda:{local_rank()}"
    if not dist.is_initialized():
        backend = "nccl" if cuda else "gloo"
        dist.init_process_group(backend, timeout=datetime.timedelta(seconds=TIMEOUT_S),
                                **({"device_id": torch.device(device)} if cuda else {}))
        log.info("rank %d/%d joined the %s process group on %s", dist.get_rank(), dist.get_world_size(),
                 backend, device)
    _own_group()
    return device


_GROUP: list = []


def _own_group():  # noqa: ANN202
    """A second group over the same ranks for our collectives, so that they never interleave with
    DistributedDataParallel's asynchronous gradient all-reduces (gloo matches collectives by their
    order within a group). Created once, by every rank at the same point (`setup`)."""
    if not _GROUP:
        _GROUP.append(dist.new_group(backend=dist.get_backend()))
    return _GROUP[0]


def teardown() -> None:
    """Leave the process group (end of a torchrun command)."""
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()
    _GROUP.clear()


def comm_device() -> torch.device:
    """Where collective buffers live: the current GPU for NCCL, the CPU for gloo."""
    if active() and dist.get_backend() == "nccl":
        return torch.device("cuda", torch.cuda.current_device())
    return torch.device("cpu")


def barrier() -> None:
    if active():
        dist.barrier(group=_own_group())


# --- sharding -------------------------------------------------------------------------------------

def shard_range(n: int, r: int | None = None, w: int | None = None) -> tuple[int, int]:
    """[start, stop) of rank r's contiguous shard of n items; the first n % w ranks get one more."""
    r = rank() if r is None else r
    w = world_size() if w is None else w
    base, extra = divmod(n, w)
    start = r * base + min(r, extra)
    return start, start + base + (1 if r < extra else 0)


def split_sizes(n: int, w: int | None = None) -> list[int]:
    """Sizes of the w contiguous parts of n items (`shard_range` of every rank)."""
    w = world_size() if w is None else w
    return [b - a for a, b in (shard_range(n, r, w) for r in range(w))]


# --- collectives (CPU in, CPU out) -----------------------------------------------------------------

def all_reduce_sum(t: torch.Tensor) -> torch.Tensor:
    """Element-wise sum over ranks (a copy on t's device; t itself is not modified)."""
    if not active():
        return t.clone()
    buf = t.detach().to(comm_device(), copy=True)
    dist.all_reduce(buf, group=_own_group())
    return buf.to(t.device)


def all_gather_rows(local: np.ndarray) -> np.ndarray:
    """Concatenate every rank's rows (any length, same trailing shape and dtype) in rank order."""
    local = np.ascontiguousarray(local)
    if not active():
        return local
    w, dev = world_size(), comm_device()
    counts = torch.tensor([local.shape[0]], dtype=torch.int64, device=dev)
    sizes = [torch.zeros_like(counts) for _ in range(w)]
    dist.all_gather(sizes, counts, group=_own_group())
    sizes_i = [int(s.item()) for s in sizes]
    m = max(sizes_i)
    flat = torch.from_numpy(local.reshape(local.shape[0], -1).view(np.uint8)).to(dev)    # (n, row bytes)
    row = flat.shape[1]
    pad = torch.zeros((m, row), dtype=torch.uint8, device=dev)
    pad[:flat.shape[0]] = flat
    out = [torch.empty_like(pad) for _ in range(w)]
    dist.all_gather(out, pad, group=_own_group())
    rows = torch.cat([o[:s] for o, s in zip(out, sizes_i, strict=True)]).cpu().numpy()
    return rows.view(local.dtype).reshape((sum(sizes_i), *local.shape[1:]))


def broadcast_object(obj: object, src: int = 0) -> object:
    """`obj` from rank `src` on every rank (pickled; small objects only)."""
    if not active():
        return obj
    box = [obj if rank() == src else None]
    dist.broadcast_object_list(box, src=src, group=_own_group(), device=comm_device())
    return box[0]


def all_gather_objects(obj: object) -> list[object]:
    """Every rank's `obj`, in rank order (pickled; small objects only)."""
    if not active():
        return [obj]
    out: list[object] = [None] * world_size()
    dist.all_gather_object(out, obj, group=_own_group())
    return out


def broadcast_array(arr: np.ndarray | None, src: int, shape: Sequence[int], dtype: np.dtype) -> np.ndarray:
    """A fixed-shape array from rank `src` on every rank (others pass None)."""
    if not active():
        assert arr is not None
        return arr
    dev = comm_device()
    t = (torch.from_numpy(np.ascontiguousarray(arr, dtype=dtype)).to(dev) if rank() == src
         else torch.empty(tuple(shape), dtype=torch.from_numpy(np.zeros(0, dtype)).dtype, device=dev))
    dist.broadcast(t, src=src, group=_own_group())
    return t.cpu().numpy()


def on_main(fn: Callable[[], T]) -> T:
    """`fn()` on rank 0, its result broadcast to every rank; a `UserError` there is raised on every
    rank (so no rank waits forever for a peer that gave up). Plain call without a process group."""
    if not active():
        return fn()
    box: tuple = ("crash", "rank 0 failed; see its traceback")
    if is_main():
        try:
            box = ("ok", fn())
        except UserError as e:
            box = ("error", str(e))
        except BaseException:
            broadcast_object(box)
            raise
    box = broadcast_object(box)  # type: ignore[assignment]
    if box[0] == "error":
        raise UserError(box[1])
    if box[0] == "crash":
        raise RuntimeError(box[1])
    return box[1]


def same_on_all_ranks(obj: object, what: str) -> None:
    """`UserError` unless every rank holds an equal `obj` (e.g. the selection; a cheap sanity check)."""
    if not active():
        return
    blobs = all_gather_objects(pickle.dumps(obj))
    if any(b != blobs[0] for b in blobs):
        raise RuntimeError(f"ranks disagree on {what} (bug: non-deterministic code on some rank)")
