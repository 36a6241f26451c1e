"""Content fingerprints, model weights and score arrays, written atomically (`hwbench.io`)."""

from __future__ import annotations

import hashlib
import io
import json
import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from hwbench.io import atomic_write_bytes, atomic_write_json, dumps_json

log = logging.getLogger(__name__)


def sha256_text(text: str) -> str:
    """Hex SHA-256 of a text (a resolved config identifies its run or experiment by it)."""
    return hashlib.sha256(text.encode()).hexdigest()


SEAL_KEY = "sha256"  # in a sealed JSON object: SHA-256 of the object's other keys (`seal`)


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def sha256_file(path: str | Path) -> str:
    """Hex SHA-256 of a file's bytes (read in 1 MiB blocks)."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _content_sha256(obj: dict) -> str:
    body = {k: v for k, v in obj.items() if k != SEAL_KEY}
    return sha256_text(dumps_json(body, sort_keys=True, separators=(",", ":")))


def seal(obj: dict) -> dict:
    """`obj` plus `sha256`: the SHA-256 of its strict-JSON text (sorted keys), so an edit or a damaged byte
    is detected when it is read back (`is_sealed`). Non-finite floats are hashed as null, as written."""
    return {**{k: v for k, v in obj.items() if k != SEAL_KEY}, SEAL_KEY: _content_sha256(obj)}


def is_sealed(obj: Any) -> bool:
    """Whether `obj` is a JSON object whose `sha256` matches its other keys (see `seal`)."""
    return isinstance(obj, dict) and obj.get(SEAL_KEY) == _content_sha256(obj)


def write_sealed_json(path: Path, obj: dict) -> Path:
    """`obj` sealed (`seal`), written atomically."""
    return atomic_write_json(path, seal(obj))


def save_state_dict(model: Any, path: Path) -> Path:
    """The model's weights (on the CPU) as a `torch.save` file, written atomically (`file_sha256` names it)."""
    import torch

    buf = io.BytesIO()
    torch.save({k: v.detach().cpu() for k, v in model.state_dict().items()}, buf)
    return atomic_write_bytes(path, buf.getvalue())


def npz_bytes(arrays: Mapping[str, np.ndarray]) -> bytes:
    """An uncompressed `.npz` archive of `arrays` as bytes (for an atomic write)."""
    buf = io.BytesIO()
    np.savez(buf, **{k: np.asarray(v) for k, v in arrays.items()})
    return buf.getvalue()


def load_entropy_scores(path: str | Path) -> dict[str, np.ndarray]:
    """Per-model score arrays from an `entropy_scores.npz` (keys `score__<model>`)."""
    with np.load(path) as z:
        return {k.removeprefix("score__"): z[k] for k in z.files if k.startswith("score__")}


def read_cached_json(path: Path) -> dict | None:
    """A cache entry (a sealed JSON object: `write_sealed_json`), or None when absent, damaged or edited
    (its SHA-256 does not match: then it is computed again). The `sha256` key is removed."""
    if not path.is_file():
        return None
    try:
        obj = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        obj = None
    if not is_sealed(obj):
        log.warning("%s is damaged or was edited (its sha256 does not match); computing it again", path)
        return None
    return {k: v for k, v in obj.items() if k != SEAL_KEY}
