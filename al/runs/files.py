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

from hwbench.io import atomic_write_bytes

log = logging.getLogger(__name__)


def sha256_text(text: str) -> str:
    """Hex SHA-256 of a text (a resolved config identifies its run or experiment by it)."""
    return hashlib.sha256(text.encode()).hexdigest()


def save_state_dict(model: Any, path: Path) -> Path:
    """The model's weights (on the CPU) as a `torch.save` file, written atomically."""
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
    """A cache entry (a JSON object this toolkit wrote), or None when absent or damaged (then it is redone)."""
    if not path.is_file():
        return None
    try:
        obj = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        obj = None
    if not isinstance(obj, dict):
        log.warning("%s is damaged; computing it again", path)
        return None
    return obj
