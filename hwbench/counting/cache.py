"""On-disk cache of meta count results, keyed by everything that changes the answer.

Key: model name, input (N, C, H, W), classes and output stride (the model's defaults resolved),
ops mode, counter, `COUNTER_VERSION`, the torch version and a fingerprint of the source of the
zoo and the counter (so editing a model or a formula never serves a stale count). One JSON file
per key under `${HWBENCH_CACHE_DIR:-~/.cache/hwbench}/count/`; `HWBENCH_NO_CACHE=1` turns it off. Writes are atomic; an unreadable,
corrupt, edited (each entry carries the SHA-256 of its key and result) or mismatching entry is ignored
(and rewritten by the next count), an unwritable cache
directory logs one warning and counting goes on without it.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from pathlib import Path
from typing import Any

from hwbench.counting.result import CountResult

log = logging.getLogger(__name__)

COUNTER_VERSION = 1       # bump when counting semantics change in a way the source fingerprint misses
_FINGERPRINT: list[str] = []
_WARNED: set[str] = set()


def cache_dir() -> Path | None:
    """Where count results are cached, or None when caching is off (`HWBENCH_NO_CACHE=1`)."""
    if os.environ.get("HWBENCH_NO_CACHE", "").strip() not in ("", "0"):
        return None
    from hwbench.cachedir import cache_root

    return cache_root()  # the same folder as the host-profile cache


def source_fingerprint() -> str:
    """sha256 of the zoo's and the counter's source files (computed once per process)."""
    if not _FINGERPRINT:
        root = Path(__file__).resolve().parent.parent           # the hwbench package
        files = sorted([*root.joinpath("models").glob("*.py"), *root.joinpath("counting").glob("*.py"),
                        root / "count.py"])
        h = hashlib.sha256()
        for f in files:
            h.update(f.name.encode() + b"\0")
            try:
                h.update(f.read_bytes())
            except OSError:
                h.update(b"<unreadable>")
        _FINGERPRINT.append(h.hexdigest())
    return _FINGERPRINT[0]


def cache_key(model: str, shape: tuple[int, ...], num_classes: int, output_stride: int, ops: str) -> dict[str, Any]:
    """The fields a cached meta count is valid for."""
    import torch

    return {"counter": "meta", "counter_version": COUNTER_VERSION, "source": source_fingerprint(),
            "torch": torch.__version__, "model": model, "input": list(shape), "num_classes": num_classes,
            "output_stride": output_stride, "ops": ops}


def _path(folder: Path, key: dict[str, Any]) -> Path:
    digest = hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()
    return folder / "count" / f"{digest[:32]}.json"


def _digest(key: Any, result: Any) -> str:
    """SHA-256 of an entry's key and result (sorted-key JSON): a flipped digit never serves a wrong count."""
    return hashlib.sha256(json.dumps({"key": key, "result": result}, sort_keys=True,
                                     separators=(",", ":")).encode()).hexdigest()


def load(key: dict[str, Any]) -> CountResult | None:
    """The cached result for `key`, or None (no cache, no entry, or an entry that is not valid)."""
    folder = cache_dir()
    if folder is None:
        return None
    path = _path(folder, key)
    try:
        entry = json.loads(path.read_bytes())
        if not isinstance(entry, dict) or entry.get("key") != key:
            raise ValueError("entry for another key")
        if entry.get("sha256") != _digest(entry.get("key"), entry.get("result")):
            log.warning("count cache entry %s is damaged or was edited (its sha256 does not match); counting again",
                        path)
            return None
        result = CountResult.from_json(entry.get("result"))
        if (result.model, result.input, result.ops, result.counter) != (key["model"], key["input"], key["ops"], "meta"):
            raise ValueError("entry does not match its key")
        return result
    except FileNotFoundError:
        return None
    except (OSError, ValueError, RecursionError, UnicodeDecodeError) as e:
        log.debug("ignoring count cache entry %s: %s", path, e)
        return None


def store(key: dict[str, Any], result: CountResult) -> None:
    """Write `result` under `key` (atomically); failures only log a warning (once per directory)."""
    from hwbench.io import atomic_write_text

    folder = cache_dir()
    if folder is None:
        return
    path = _path(folder, key)
    try:
        body = result.to_json()
        atomic_write_text(path, json.dumps({"key": key, "result": body, "sha256": _digest(key, body)},
                                           separators=(",", ":")), durable=False)
    except OSError as e:
        if str(folder) not in _WARNED:
            _WARNED.add(str(folder))
            log.warning("count cache off: cannot write %s (%s); set HWBENCH_CACHE_DIR to a writable folder",
                        path.parent, e.strerror or e)
