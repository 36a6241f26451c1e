"""Damage and judge: the helpers of the corruption suite (tests/al/test_corruption_*.py).

Four kinds of damage to one file: `flip` (one bit of the middle byte), `truncate` (to half its size),
`float` (a number set to 3.4e38, the file otherwise well formed: a JSON/TOML number, a tensor element of
a torch checkpoint, an array element of an .npz, four bytes of a binary frame) and `other` (the file
replaced by the same file of another run). After the damage the suite resumes or reuses the directory,
and `judge` names the outcome:

    refused    exit 2, one line `error: ...` naming the damaged file
    repaired   exit 0 and every result equal to the undamaged directory's (recomputed or rewritten)
    USED       anything else: the damage went into a result silently (the suite fails)

With AL_CORRUPTION_TABLE=FILE set, every judged case is appended to FILE as a JSON line
(`python -m tests.corruption_table` runs the suite that way and prints the markdown table).
"""

from __future__ import annotations

import io
import json
import os
import re
import shutil
from pathlib import Path

import numpy as np

_TINY_RUN = """seed = {seed}
threads = 1
device = "cpu"
[data]
name = "digits"
pool_size = 40
val_size = 20
[data.options]
size = 8
[model]
name = "resnet20"
[al]
strategy = "entropy"
initial_fraction = 0.25
cycle_fraction = 0.25
cycles = 1
batch_size = 20{keep}
[train]
epochs = 1
batch_size = 10
"""


def tiny_run_toml(*, seed: int = 0, keep_checkpoints: str | None = None) -> str:
    """The `al run` config the run-directory tests share: Res-20 on 40 digits at 8x8, one cycle, one epoch
    (a few CPU-seconds); `keep_checkpoints` ("all" | "last") written only when given."""
    keep = "" if keep_checkpoints is None else f'\nkeep_checkpoints = "{keep_checkpoints}"'
    return _TINY_RUN.format(seed=seed, keep=keep)


DAMAGES = ("flip", "truncate", "float", "other")
BIG = 3.4e38
_NUMBER = re.compile(rb"(?<![\w.\"-])-?\d+\.\d+(?:[eE][-+]?\d+)?(?![\w.\"])")  # a float literal outside strings


def damage(path: Path, kind: str, other: Path | None = None) -> bool:
    """Damage `path` in place; False when `kind` does not apply to this file (no float in it, no other copy)."""
    data = path.read_bytes()
    if kind == "flip":
        b = bytearray(data)
        b[len(b) // 2] ^= 0x01
        path.write_bytes(bytes(b))
    elif kind == "truncate":
        path.write_bytes(data[: len(data) // 2])
    elif kind == "other":
        if other is None or not other.is_file() or other.read_bytes() == data:
            return False
        shutil.copyfile(other, path)
    elif kind == "float":
        return _set_float(path, data)
    else:
        raise ValueError(kind)
    return True


def damage_or_skip(path: Path, kind: str, other: Path | None = None, what: str | None = None) -> None:
    """`damage(path, kind, other)`, or skip the calling test when `kind` does not apply to the file."""
    import pytest

    if not damage(path, kind, other):
        pytest.skip(f"{kind} does not apply to {what or path.name}")


def _set_float(path: Path, data: bytes) -> bool:
    if path.suffix == ".pt":
        import torch

        obj = torch.load(io.BytesIO(data), weights_only=True)
        tensors = obj["model"] if isinstance(obj, dict) and "model" in obj else obj
        for t in tensors.values():
            if t.is_floating_point() and t.numel():
                t.view(-1)[0] = BIG
                break
        buf = io.BytesIO()
        torch.save(obj, buf)
        path.write_bytes(buf.getvalue())
        return True
    if path.suffix == ".npz":
        with np.load(io.BytesIO(data)) as z:
            arrays = {k: z[k].copy() for k in z.files}
        for a in arrays.values():
            if a.dtype.kind == "f" and a.size:
                a.flat[0] = BIG
                break
        else:
            return False
        buf = io.BytesIO()
        np.savez(buf, **arrays)
        path.write_bytes(buf.getvalue())
        return True
    if path.suffix in (".json", ".jsonl", ".toml", "") and _NUMBER.search(data):
        path.write_bytes(_NUMBER.sub(b"3.4e38", data, count=1))
        return True
    if path.suffix in (".png", ".bin", ".npy"):  # raw bytes: four of them become the float32 3.4e38
        b = bytearray(data)
        mid = len(b) // 2
        b[mid:mid + 4] = np.float32(BIG).tobytes()
        path.write_bytes(bytes(b))
        return True
    return False


def judge(rc: int, err: str, damaged: Path, same_as_reference: bool) -> str:
    """refused | repaired | USED (see the module docstring)."""
    one_line = err.startswith("error: ") and err.count("\n") == 1
    if rc == 2 and one_line and (str(damaged) in err or damaged.name in err):
        return "refused"
    if rc == 0 and same_as_reference:
        return "repaired"
    return "USED"


def record(area: str, kind: str, dmg: str, outcome: str, err: str = "") -> None:
    """Append one judged case to $AL_CORRUPTION_TABLE (when set)."""
    target = os.environ.get("AL_CORRUPTION_TABLE")
    if target:
        with open(target, "a", encoding="utf-8") as f:
            f.write(json.dumps({"area": area, "file": kind, "damage": dmg, "outcome": outcome,
                                "message": err.strip()[:300]}) + "\n")


def drop_timing(obj: object) -> object:
    """`obj` without what differs between two identical runs: durations, dates (provenance), hashes of such
    records."""
    if isinstance(obj, dict):
        return {k: drop_timing(v) for k, v in obj.items()
                if not (k.endswith("_s") or k in ("seconds", "finished", "sha256", "ckpt_sha256", "timing",
                                                  "provenance", "time_utc"))}
    if isinstance(obj, list):
        return [drop_timing(v) for v in obj]
    return obj
