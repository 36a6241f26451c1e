"""Atomic file writes and JSON-lines helpers. Every file the toolkit writes goes through here.

Every JSON text is strict JSON (`dumps_json`): a non-finite float (a diverged loss, a statistic of
nothing) is written as `null`, never as the `NaN`/`Infinity` tokens other parsers reject, and
`allow_nan=False` guards that nothing else slips through. Inputs whose NaN or infinity would be a
mistake are refused where they are read (profiles, configs, measurements, trtexec logs, --fps).
"""

from __future__ import annotations

import json
import math
import os
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

TMP_SUFFIX = ".tmp"  # temporaries of atomic writes: `.<name>.<random>.tmp` beside their target


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> Path:
    """Write `data` to `path` via a temporary file in the same directory and `os.replace`.

    A process killed mid-write leaves at most a temporary (`is_atomic_temporary`), never half a file.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=TMP_SUFFIX)
    try:
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600; give the mode a plain open() would
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def is_atomic_temporary(name: str) -> bool:
    """Whether a file name is a temporary `atomic_write_bytes` leaves behind when killed."""
    return name.startswith(".") and name.endswith(TMP_SUFFIX) and name.count(".") >= 3


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def atomic_write_text(path: str | os.PathLike, text: str) -> Path:
    return atomic_write_bytes(path, text.encode("utf-8"))


def finite(obj: Any) -> Any:
    """`obj` with every non-finite float (nan, inf) replaced by None, recursively."""
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {k: finite(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [finite(v) for v in obj]
    if hasattr(obj, "tolist") and not isinstance(obj, (str, bytes)):
        return finite(obj.tolist())
    return obj


def dumps_json(obj: Any, **kw: Any) -> str:
    """Strict JSON text of `obj` (non-finite floats -> null; numpy/paths converted)."""
    kw.setdefault("default", _default)
    return json.dumps(finite(obj), allow_nan=False, **kw)


def atomic_write_json(path: str | os.PathLike, obj: Any) -> Path:
    return atomic_write_text(path, dumps_json(obj, indent=2, sort_keys=False) + "\n")


def write_jsonl(path: str | os.PathLike, records: Iterable[dict]) -> Path:
    """Write all records at once (atomically), one JSON object per line."""
    return atomic_write_text(path, "".join(dumps_json(r) + "\n" for r in records))


def read_jsonl(path: str | os.PathLike) -> Iterator[dict]:
    with open(path, encoding="utf-8") as f:
        for line in f:
            if line.strip():
                yield json.loads(line)


def to_jsonable(obj: Any) -> Any:
    """Plain JSON types: numpy / torch scalars and arrays become Python numbers and lists, other
    unknown objects their `str`, non-finite floats None."""
    return json.loads(json.dumps(finite(obj), allow_nan=False,
                                 default=lambda o: finite(o.tolist()) if hasattr(o, "tolist") else str(o)))


def _default(obj: Any) -> Any:
    """JSON for numpy scalars/arrays, paths and tuples-as-lists."""
    if hasattr(obj, "tolist"):
        return finite(obj.tolist())
    if isinstance(obj, os.PathLike):
        return os.fspath(obj)
    raise TypeError(f"not JSON serialisable: {type(obj).__name__}")
