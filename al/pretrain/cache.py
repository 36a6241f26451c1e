"""The pre-trained checkpoint cache: `<cache folder>/pretrain/` (`hwbench.cachedir`).

An entry is `<backbone>-<key>.pth` (a torchvision-format state dict, loadable with
`torch.load(path, weights_only=True)` and `hwbench.load_weights`) plus `<backbone>-<key>.json`
(what produced it: backbone, source, recipe, seed, the file's SHA-256, held-out top-1, time,
versions). `key` is the SHA-256 (first 16 hex digits) of the canonical JSON of
`(backbone, source, recipe, seed, format)`: the same request finds the same entry, a changed
recipe a new one. Both files are written atomically, the checkpoint first; an entry counts
only when its metadata exists and the checkpoint's SHA-256 matches it.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

from hwbench.errors import UserError

FORMAT = 1


def cache_root(cache_dir: str | os.PathLike | None = None) -> Path:
    """The pre-training cache directory (created on first write, not here)."""
    from hwbench.cachedir import cache_root as root

    return (Path(cache_dir).expanduser() if cache_dir else root()) / "pretrain"


def entry_key(backbone: str, source: str, recipe: dict[str, Any], seed: int) -> str:
    blob = json.dumps({"backbone": backbone, "source": source, "recipe": recipe, "seed": int(seed),
                       "format": FORMAT}, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def entry_paths(root: Path, backbone: str, key: str) -> tuple[Path, Path]:
    return root / f"{backbone}-{key}.pth", root / f"{backbone}-{key}.json"


def file_sha256(path: str | os.PathLike) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def lookup(root: Path, backbone: str, key: str) -> dict[str, Any] | None:
    """The entry's metadata (with `path`) when both files exist and the SHA-256 matches, else None."""
    ckpt, meta_path = entry_paths(root, backbone, key)
    if not (ckpt.is_file() and meta_path.is_file()):
        return None
    try:
        meta = json.loads(meta_path.read_text())
    except (OSError, ValueError, UnicodeDecodeError):
        return None
    if not isinstance(meta, dict) or meta.get("sha256") != file_sha256(ckpt):
        return None
    return {**meta, "path": str(ckpt)}


def store(root: Path, backbone: str, key: str, state_bytes: bytes, meta: dict[str, Any]) -> dict[str, Any]:
    """Write an entry atomically (checkpoint, then metadata); returns the metadata with `path`."""
    from hwbench.io import atomic_write_bytes, atomic_write_json

    ckpt, meta_path = entry_paths(root, backbone, key)
    try:
        atomic_write_bytes(ckpt, state_bytes)
        meta = {**meta, "sha256": hashlib.sha256(state_bytes).hexdigest(), "file": ckpt.name}
        atomic_write_json(meta_path, meta)
    except OSError as e:
        raise UserError(f"cannot write the pre-training cache {root}: {e.strerror or e}; "
                        "set HWBENCH_CACHE_DIR to a writable directory") from None
    return {**meta, "path": str(ckpt)}
