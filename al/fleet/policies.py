"""On-device selection policies, vectorised over many streams (rows = device-days).

Semantics, frame by frame (those of the streaming scorer, `hwbench/ondevice.py score`):

- `threshold`: a scored frame is a candidate when score >= threshold; candidates in arrival order.
- `window-topk`: camera frames are cut into windows (by arrival index); when a window closes, the
  best k of its scored frames (score descending, ties earlier first) are offered in that order; a
  dropped one is not replaced by the next best.
- near-duplicate filter (`dedup_distance` d > 0): an offered frame within distance d (<=) of one of
  the `recent` last kept frames of the row is dropped (`dist` holds distances between L2-normalised
  embeddings).
- cap (`cap` frames per budget period, optional): an offered frame is dropped when its period
  already holds `cap` kept frames. A kept frame joins the recent memory. Rows never interact.

Runs. The camera repeats a world frame while the world has not moved on, so a scored stream is
a sequence of runs: consecutive scored frames showing the same world frame (same score, same
embedding) in the same hour and window. The functions take runs: per row the score and world
frame of each run (R, n), and per column (shared by all rows) the run's frame `count`, `period`
(hour) and `window`. They return how many frames of each run are kept (R, n). This is exact:
the copies of a run are adjacent in both orders above, and once one copy is kept the others are
duplicates at distance 0. With `count` = 1 a run is a frame. Periods are non-negative integers. Near-duplicate tests are look-ups
in a world x world distance matrix `dist`. Scores must be finite (`ScoredWorld` checks). Loops run over candidate positions or windows, each
step vectorised over all rows; without the filter and the cap the policies are array maths.
"""

from __future__ import annotations

import numpy as np


def compact(mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Column indices of the True entries of each row, left-aligned: ((R, m) padded with -1, (R,) counts)."""
    rows, cols = np.nonzero(mask)
    counts = np.bincount(rows, minlength=mask.shape[0])
    m = int(counts.max()) if counts.size else 0
    out = np.full((mask.shape[0], m), -1, dtype=np.int64)
    starts = np.cumsum(counts) - counts
    out[rows, np.arange(rows.size) - starts[rows]] = cols
    return out, counts


def runs(*keys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(first index, length) of the maximal stretches where all `keys` (each (n,)) stay constant."""
    n = keys[0].size
    change = np.zeros(n, dtype=bool)
    if n:
        change[0] = True
        for k in keys:
            change[1:] |= k[1:] != k[:-1]
    first = np.flatnonzero(change)
    return first, np.diff(np.r_[first, n])


def _segment_before(values: np.ndarray, segment: np.ndarray) -> np.ndarray:
    """Per row, the sum of `values` earlier in the same segment (segments: runs of equal `segment` (n,))."""
    c = np.cumsum(values, axis=1)
    first = np.flatnonzero(np.r_[True, segment[1:] != segment[:-1]]) if segment.size else np.zeros(0, np.int64)
    ordinal = np.cumsum(np.r_[True, segment[1:] != segment[:-1]]) - 1 if segment.size else segment
    base = np.where(first > 0, c[:, np.maximum(first - 1, 0)], 0)                    # (R, segments)
    return c - values - base[:, ordinal]


class _Memory:
    """Per-row ring of recently kept world frames, and per-row kept counts of every period."""

    def __init__(self, rows: int, recent: int, dist: np.ndarray | None, d: float, periods: int) -> None:
        self.ring = np.full((rows, recent), -1, dtype=np.int64)
        self.ptr = np.zeros(rows, dtype=np.int64)
        self.dist = dist if d > 0 else None
        self.d = d
        self.count = np.zeros((rows, max(1, periods)), dtype=np.int64)

    def admit(self, want: np.ndarray, world: np.ndarray, period: np.ndarray, cap: int | None) -> np.ndarray:
        """Frames kept (R,) of a run offering `want` copies (0: no candidate); updates the state."""
        rows = np.arange(want.size)
        p = np.maximum(period, 0)
        n = want if cap is None else np.minimum(want, cap - self.count[rows, p])
        if self.dist is not None:
            w = np.maximum(world, 0)
            near = (self.dist[w[:, None], np.maximum(self.ring, 0)] <= self.d) & (self.ring >= 0)
            n = np.where(near.any(axis=1), 0, np.minimum(n, 1))
        n = np.maximum(n, 0)
        hit = np.flatnonzero(n)
        self.ring[hit, self.ptr[hit] % self.ring.shape[1]] = world[hit]
        self.ptr[hit] += 1
        self.count[hit, p[hit]] += n[hit]
        return n


def threshold_keep(scores: np.ndarray, threshold: float, *, world: np.ndarray, count: np.ndarray,
                   period: np.ndarray, cap: int | None = None, dist: np.ndarray | None = None,
                   dedup_distance: float = 0.0, recent: int = 32) -> np.ndarray:
    """Frames kept per run (R, n) under the threshold policy (see module docstring)."""
    cand = scores >= threshold                                                        # (R, n)
    copies = cand * count[None, :].astype(np.int64)
    if dedup_distance <= 0:
        if cap is None:
            return copies
        return np.clip(cap - _segment_before(copies, period), 0, copies)
    # A candidate run showing the row's previous candidate's world frame in the same hour shares its fate
    # (kept -> now a duplicate at distance 0; skipped -> for the same reason): skip it unlooked.
    rows = np.arange(scores.shape[0])
    cols, n_cand = compact(cand)
    if cols.shape[1] > 1:
        w = np.where(cols >= 0, world[rows[:, None], np.maximum(cols, 0)], -1)
        p = np.where(cols >= 0, period[np.maximum(cols, 0)], -1)
        same = np.zeros(cols.shape, dtype=bool)
        same[:, 1:] = (w[:, 1:] == w[:, :-1]) & (p[:, 1:] == p[:, :-1]) & (cols[:, 1:] >= 0)
        cand = cand.copy()
        cand[np.broadcast_to(rows[:, None], cols.shape)[same], cols[same]] = False
        cols, n_cand = compact(cand)
    kept = np.zeros(scores.shape, dtype=np.int64)
    mem = _Memory(scores.shape[0], recent, dist, dedup_distance, int(period.max(initial=0)) + 1)
    for j in range(cols.shape[1]):
        col = np.maximum(cols[:, j], 0)
        got = mem.admit(np.where(n_cand > j, 1, 0), world[rows, col], period[col], cap)
        kept[rows, col] += got
    return kept


def window_order(scores: np.ndarray, window: np.ndarray) -> np.ndarray:
    """(R, nw, m) columns of each window by descending score, ties earlier first; padding = n (no column).

    `window` (n,) is non-decreasing (windows are contiguous stretches of columns).
    """
    r, n = scores.shape
    first, lens = runs(window)
    m = int(lens.max())
    slot = np.arange(m)[None, :]
    idx = np.where(slot < lens[:, None], first[:, None] + slot, n)                    # (nw, m)
    padded = np.concatenate([scores, np.full((r, 1), -np.inf)], axis=1)               # (R, n + 1)
    order = np.argsort(-padded[:, idx], axis=2, kind="stable")                       # (R, nw, m)
    return np.take_along_axis(np.broadcast_to(idx, order.shape), order, axis=2)


def window_offers(scores: np.ndarray, k: int, window: np.ndarray, count: np.ndarray
                  ) -> list[tuple[np.ndarray, np.ndarray]]:
    """The best k frames of every window in rank order, as rounds: [(column (R, nw), frames (R, nw)), ...];
    round i holds each window's i-th best run and how many of its frames are among the k offered
    (column n = none). Small k: k rounds of per-window argmax (first maximum = earliest); else one sort."""
    r, n = scores.shape
    first, lens = runs(window)
    m = int(lens.max())
    slot = np.arange(m)[None, :]
    idx = np.where(slot < lens[:, None], first[:, None] + slot, n)                    # (nw, m), n = padding
    copies = np.r_[count, 0].astype(np.int64)
    rows, wins = np.arange(r)[:, None], np.arange(idx.shape[0])[None, :]
    taken = np.zeros((r, idx.shape[0]), dtype=np.int64)
    rounds = []
    if k <= 4:
        x = np.concatenate([scores, np.full((r, 1), -np.inf)], axis=1)[:, idx]       # (R, nw, m)
        for _ in range(min(k, m)):
            j = np.argmax(x, axis=2)                                                  # (R, nw)
            col = np.where(np.isfinite(x[rows, wins, j]), idx[wins, j], n)          # exhausted window: none
            take = np.where(col < n, np.minimum(copies[col], k - taken), 0)
            rounds.append((col, take))
            taken += take
            x[rows, wins, j] = -np.inf
            if (taken >= k).all():
                break
        return rounds
    order = window_order(scores, window)                                              # (R, nw, m)
    for j in range(min(k, m)):
        col = order[:, :, j]
        take = np.where(col < n, np.minimum(copies[col], k - taken), 0)
        rounds.append((col, take))
        taken += take
    return rounds


def window_topk_keep(scores: np.ndarray, k: int, *, window: np.ndarray, world: np.ndarray, count: np.ndarray,
                     period: np.ndarray, cap: int | None = None, dist: np.ndarray | None = None,
                     dedup_distance: float = 0.0, recent: int = 32) -> np.ndarray:
    """Frames kept per run (R, n) under the window-topk policy; `window` (n,) is each run's window.

    The best k frames of a window are offered in rank order; a dropped one (near-duplicate, cap) is
    not replaced by the next best."""
    r, n = scores.shape
    kept = np.zeros((r, n + 1), dtype=np.int64)                                       # last column: none
    if n == 0:
        return kept[:, :n]
    rounds = window_offers(scores, k, window, count)
    rows = np.arange(r)
    if dedup_distance <= 0 and cap is None:
        for col, take in rounds:
            np.add.at(kept, (np.broadcast_to(rows[:, None], col.shape), col), take)
        return kept[:, :n]
    world = np.concatenate([world, np.zeros((r, 1), world.dtype)], axis=1)
    period = np.r_[period, 0]
    mem = _Memory(r, recent, dist, dedup_distance, int(period.max(initial=0)) + 1)
    for wi in range(rounds[0][0].shape[1] if rounds else 0):
        for col, take in rounds:
            want = take[:, wi]
            if not want.any():
                break
            c = col[:, wi]
            kept[rows, c] += mem.admit(want, world[rows, c], period[c], cap)
    return kept[:, :n]


def upload_best(scores: np.ndarray, kept: np.ndarray, budget: int) -> np.ndarray:
    """Frames uploaded per run (R, n): the `budget` best-scored kept frames of each row (ties: earlier)."""
    cols, _ = compact(kept > 0)
    out = np.zeros_like(kept)
    if cols.shape[1] == 0:
        return out
    rows = np.arange(kept.shape[0])[:, None]
    valid = cols >= 0
    c = np.maximum(cols, 0)
    s = np.where(valid, scores[rows, c], -np.inf)
    order = np.lexsort((np.where(valid, cols, np.iinfo(np.int64).max), -s), axis=-1)
    c_sorted = np.take_along_axis(c, order, axis=1)
    n = np.where(np.take_along_axis(valid, order, axis=1), kept[rows, c_sorted], 0)
    before = np.cumsum(n, axis=1) - n
    take = np.clip(budget - before, 0, n)
    np.add.at(out, (np.broadcast_to(rows, c_sorted.shape), c_sorted), take)
    return out
