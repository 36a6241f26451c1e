"""Seeded draws every part of `al` shares, and fingerprints of index sets.

Every seed derives from fixed inputs (run seed, cycle, stream name, ...), never from a generator
that advanced through earlier work, so a resumed run or a re-run cell draws exactly what an
uninterrupted one would.
"""

from __future__ import annotations

import hashlib
import zlib

import numpy as np

# Streams of the per-cycle seed derivation; never renumber (it would change every run).
STREAMS = {"init": 0, "aux_init": 1, "train": 2, "select": 3}


def derive_seed(seed: int, cycle: int, stream: str) -> int:
    """63-bit seed for one (run seed, cycle, stream); independent of anything computed before."""
    ss = np.random.SeedSequence([seed & 0xFFFFFFFF, seed >> 32, cycle, STREAMS[stream]])
    return int(ss.generate_state(2, np.uint64)[0] >> np.uint64(1))


def initial_selection(dataset: str, pool_size: int, seed: int, n: int) -> np.ndarray:
    """Cycle 0: `n` random pool indices from (dataset name, pool size, seed) only.

    Shared by every strategy and surrogate of one experiment and seed; a larger `n` extends a
    smaller one (prefix of one permutation).
    """
    ss = np.random.SeedSequence([seed & 0xFFFFFFFF, seed >> 32, pool_size, zlib.crc32(dataset.encode())])
    return np.random.default_rng(ss).permutation(pool_size)[:n].astype(np.int64)


def stable_seed(*parts: int | str) -> int:
    """A 63-bit seed from ints and strings (strings by crc32), stable across runs and machines."""
    ints = [p if isinstance(p, int) else zlib.crc32(p.encode()) for p in parts]
    return int(np.random.SeedSequence(ints).generate_state(2, np.uint64)[0] >> np.uint64(1))


def random_selection(initial: np.ndarray, pool_size: int, n: int, *, seed: int) -> np.ndarray:
    """`n` pool indices: the shared cycle-0 set `initial` + a seeded random draw from the rest.

    Depends only on (initial, pool size, n, seed); every surrogate's selection of size n contains
    the same `initial`, so the baseline differs from them only in the cycles' picks.
    """
    initial = np.asarray(initial, dtype=np.int64)
    if n < initial.size or n > pool_size:
        raise ValueError(f"random selection of {n} cannot hold the {initial.size} initial images of a "
                         f"{pool_size}-image pool")
    rest = np.setdiff1d(np.arange(pool_size), initial)
    rng = np.random.default_rng(stable_seed(seed, pool_size, n, "random-baseline"))
    extra = rng.choice(rest, size=n - initial.size, replace=False)
    return np.concatenate([initial, np.sort(extra)]).astype(np.int64)


def nested_random_selection(initial: np.ndarray, pool_size: int, n: int, *, seed: int) -> np.ndarray:
    """`n` pool indices: the shared cycle-0 set `initial`, then the first `n - len(initial)` images of one
    seeded permutation of the rest. Nested: the set of size n contains every smaller one of the same
    (initial, pool size, seed) -- the random learning curve of a budget sweep adds images, never swaps them.
    """
    initial = np.asarray(initial, dtype=np.int64)
    if n < initial.size or n > pool_size:
        raise ValueError(f"random selection of {n} cannot hold the {initial.size} initial images of a "
                         f"{pool_size}-image pool")
    rest = np.setdiff1d(np.arange(pool_size), initial)
    order = np.random.default_rng(stable_seed(seed, pool_size, "random-nested")).permutation(rest)
    return np.concatenate([initial, order[:n - initial.size]]).astype(np.int64)


def selection_digest(indices: np.ndarray) -> str:
    """Short digest of a set of indices (order-free): detects a changed selection on resume."""
    return hashlib.sha256(np.sort(np.asarray(indices, dtype=np.int64)).tobytes()).hexdigest()[:16]
