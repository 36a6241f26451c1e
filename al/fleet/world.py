"""The scored world: every world frame scored once by every surrogate.

The world is the embedded data as drives (consecutive frames of a drive are the frames a car
sees one after the other). Each surrogate is trained briefly on the same random initial labelled
set, then scores every world frame with al's own scoring code (`al.strategies.evidence.collect`:
the image score the strategy uses, here mean pixel entropy, and the pooled embedding the
Core-Set strategy uses). Per-device streams (`al.fleet.streams`) index into these arrays, so
one world serves any number of devices and the pool experiments alike (the world frames are the
pool of `al.experiments.backend.Backend`).

Saved as `world.npz` + `world.json` in the run directory and reused when the world config is
unchanged (the key is a hash of everything that decides the scores).
"""

from __future__ import annotations

import dataclasses
import hashlib
import io
import json
import logging
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from al.fleet.config import FleetConfig
from al.fleet.streams import Drives
from al.runs.files import is_sealed, write_sealed_json
from hwbench.errors import UserError
from hwbench.io import atomic_write_bytes

log = logging.getLogger(__name__)

WORLD_NPZ, WORLD_JSON = "world.npz", "world.json"


@dataclass
class ScoredWorld:
    """Scores (n,) and embeddings (n, D) per surrogate, drives, the initial labelled set."""

    scores: dict[str, np.ndarray]
    embeddings: dict[str, np.ndarray]
    drive_id: np.ndarray            # (n,) drive of each world frame (contiguous, in driving order)
    initial: np.ndarray             # (k,) world frames labelled before the fleet drives
    info: dict[str, Any]            # surrogate metrics, sizes, key

    @property
    def n(self) -> int:
        return int(self.drive_id.size)

    @property
    def drives(self) -> Drives:
        return Drives.from_ids(self.drive_id)

    def distances(self, surrogate: str) -> np.ndarray:
        """(n, n) float64 Euclidean distances between the surrogate's L2-normalised embeddings (what the
        on-device near-duplicate filter compares)."""
        return pairwise_distances(unit_rows(self.embeddings[surrogate]))


def unit_rows(emb: np.ndarray) -> np.ndarray:
    """Rows divided by their L2 norm, float64 (a zero row stays zero), as `hwbench/ondevice.py`'s `unit`."""
    e = np.asarray(emb, dtype=np.float64)
    n = np.sqrt(np.einsum("ij,ij->i", e, e))[:, None]
    return np.where(n > 0, e / np.where(n > 0, n, 1.0), e)


def pairwise_distances(emb: np.ndarray, block: int = 256) -> np.ndarray:
    """sqrt(sum((a - b)^2)) for every pair of rows, float64, in row blocks (bounded memory)."""
    e = np.asarray(emb, dtype=np.float64)
    out = np.empty((e.shape[0], e.shape[0]), dtype=np.float64)
    for i in range(0, e.shape[0], block):
        out[i:i + block] = np.sqrt(((e[i:i + block, None, :] - e[None, :, :]) ** 2).sum(axis=2))
    return out


def world_key(cfg: FleetConfig) -> str:
    """Hash of everything the world's scores depend on."""
    spec = {"world": dataclasses.asdict(cfg.world), "surrogates": list(cfg.surrogates), "seed": cfg.seed,
            "device": cfg.device}
    return hashlib.sha256(json.dumps(spec, sort_keys=True, default=str).encode()).hexdigest()[:16]


def data_table(cfg: FleetConfig) -> dict[str, Any]:
    """The `[data]` table of `al run` that holds the world frames (pool) and the validation frames."""
    w = cfg.world
    return {"name": w.dataset, "pool_size": w.frames, "val_size": w.val_frames,
            "options": {"n": w.frames, "size": list(w.size), "drive_frames": w.drive_frames, **w.options}}


def backend(cfg: FleetConfig) -> Any:
    """al's learning backend over the world (pool = world frames, val = validation frames)."""
    from al.experiments.backend import backend_for

    return backend_for(data_table(cfg), cfg.world.train, cfg.device)


def drive_ids(dataset: Any, n: int, drive_frames: int) -> np.ndarray:
    """Per-frame drive id: the dataset's own drives (`drive_index`) when it has them, else blocks of `drive_frames`."""
    own = getattr(dataset, "drive_index", None)
    if own is not None and len(own) >= n:
        return np.asarray(own, dtype=np.int64)[:n]
    return np.arange(n, dtype=np.int64) // drive_frames


def dataset_fps(dataset: Any) -> float | None:
    """Frames per second of driving of the dataset's drives, when it says."""
    drives = getattr(dataset, "drives", None)
    fps = getattr(drives[0], "fps", None) if drives else None
    return float(fps) if fps else None


def build_world(cfg: FleetConfig, be: Any = None, *, progress: Any = None) -> ScoredWorld:
    """Train every surrogate on the initial labelled set and score every world frame."""
    from al.strategies import evidence

    be = be or backend(cfg)
    w = cfg.world
    n = be.pool_size
    rng = np.random.default_rng([cfg.seed, 7771])
    initial = np.sort(rng.choice(n, size=w.initial_labelled, replace=False)).astype(np.int64)
    scores, embeddings, metrics = {}, {}, {}
    for s in cfg.surrogates:
        if progress is not None:
            progress(f"world: train {s} on {initial.size} frames, score {n} frames")
        model = be.train_model(s, initial, seed=cfg.seed, cfg=w.train)
        metrics[s] = float(be.evaluate(model)[be.metric])
        ev = evidence.collect(model, be.p.pool_score, np.arange(n), frozenset({"image_score", "embedding"}),
                              device=be.device, batch_size=w.batch_size, show_progress=False)
        scores[s] = np.asarray(ev.image_score, dtype=np.float64)
        embeddings[s] = np.asarray(ev.embedding, dtype=np.float32)
    base = getattr(be.p.pool, "base", be.p.pool)
    fps = dataset_fps(base)
    if fps is not None and abs(fps - w.world_fps) > 1e-9:
        raise UserError(f"world.world_fps = {w.world_fps:g} but the drives of {w.dataset} run at {fps:g} frames per "
                        f"second; set world.world_fps = {fps:g}")
    info = {"key": world_key(cfg), "frames": n, "metric": be.metric, "surrogate_metric": metrics,
            "initial_labelled": int(initial.size), "dataset": w.dataset, "size": list(w.size),
            "world_fps": w.world_fps}
    ids = drive_ids(base, n, w.drive_frames)
    info["drives"] = int(np.unique(ids).size)
    return ScoredWorld(scores, embeddings, ids, initial, info)


def save_world(world: ScoredWorld, out: Path) -> None:
    arrays = {"drive_id": world.drive_id, "initial": world.initial}
    for s in world.scores:
        arrays[f"scores/{s}"] = world.scores[s]
        arrays[f"embeddings/{s}"] = world.embeddings[s]
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    atomic_write_bytes(out / WORLD_NPZ, buf.getvalue())
    write_sealed_json(out / WORLD_JSON, {**world.info, "npz_sha256": hashlib.sha256(buf.getvalue()).hexdigest()})


def load_world(out: Path, key: str) -> ScoredWorld | None:
    """The saved world of `out` if it was built for `key`, else None."""
    try:
        info = json.loads((out / WORLD_JSON).read_text(encoding="utf-8"))
        if not is_sealed(info):
            log.warning("%s is damaged or was edited (its sha256 does not match); building the world again",
                        out / WORLD_JSON)
            return None
        if info.get("key") != key:
            return None
        data = (out / WORLD_NPZ).read_bytes()
        if hashlib.sha256(data).hexdigest() != info.get("npz_sha256"):
            log.warning("%s does not match the sha256 in %s (damaged or replaced); building the world again",
                        out / WORLD_NPZ, WORLD_JSON)
            return None
        info = {k: v for k, v in info.items() if k not in ("npz_sha256", "sha256")}
        with np.load(io.BytesIO(data)) as z:
            arrays = {k: z[k] for k in z.files}
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile):
        return None  # damaged or foreign: built again
    scores = {k.split("/", 1)[1]: v for k, v in arrays.items() if k.startswith("scores/")}
    emb = {k.split("/", 1)[1]: v for k, v in arrays.items() if k.startswith("embeddings/")}
    if "drive_id" not in arrays or "initial" not in arrays or set(scores) != set(emb) or \
            not all(np.isfinite(v).all() and v.shape == arrays["drive_id"].shape for v in scores.values()):
        return None
    return ScoredWorld(scores, emb, arrays["drive_id"], arrays["initial"], info)


def get_world(cfg: FleetConfig, out: Path, *, progress: Any = None) -> ScoredWorld:
    """The saved world when it matches the config, else a freshly built (and saved) one."""
    key = world_key(cfg)
    world = load_world(out, key)
    if world is None:
        world = build_world(cfg, progress=progress)
        save_world(world, out)
    return world
