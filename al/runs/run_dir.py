"""Files of one `al run` directory (DESIGN §3 "Runs"); `state.json` is the source of truth.

    config.toml        the resolved config (its SHA-256 is in the state)
    state.json         labelled indices per cycle, metrics, RNG seeds, steps done, the SHA-256 of every
                       checkpoint; sealed (`al.runs.files.seal`): its own `sha256` over the rest
    selections.jsonl   one record per cycle, derived from the state (rewritten from it when they differ)
    metrics.jsonl      one record per cycle, derived from the state
    checkpoints/       cycle_NNN.pt: model (+ LLAL module) state after that cycle's training
    DONE               written last (a marker for people and tools; the state decides)
    .lock              held by the process working in the directory (`al.runs.lock`)

Every write is atomic (`hwbench.io`). A state whose seal does not match (edited, damaged) is refused;
a checkpoint whose SHA-256 is not the one the state names is never loaded (`al.runs.resume` trains it
again).
"""

from __future__ import annotations

import io
import json
import math
import os
import shutil
from pathlib import Path
from typing import Any

from al.runs.files import SEAL_KEY, is_sealed, seal, sha256_bytes, sha256_file
from al.runs.lock import LOCK_NAME, DirLock, is_bookkeeping
from al.seeds import STREAMS
from hwbench.errors import UserError
from hwbench.io import atomic_write_bytes, atomic_write_json, read_jsonl, write_jsonl

STATE_VERSION = 2  # 2: sealed, with checkpoint SHA-256s
STEPS = ("select", "train", "eval")
RECORD_KEYS = ("cycle", "labelled", "fraction", "metric", "value")


class RunDir:
    """Files of one run directory; `state` is the source of truth, the JSON lines and DONE follow it."""

    def __init__(self, path: str | os.PathLike) -> None:
        self.path = Path(path)
        self.state_path = self.path / "state.json"
        self.done_path = self.path / "DONE"
        self.ckpt_dir = self.path / "checkpoints"

    def exists(self) -> bool:
        return self.path.exists()

    def is_run(self) -> bool:
        return (self.path / "config.toml").is_file() or self.state_path.is_file()

    def is_done(self) -> bool:
        """Finished according to `state.json` (a DONE file alone proves nothing)."""
        return self.state_path.is_file() and bool(self.read_state()["done"])

    def is_complete(self) -> bool:
        """Finished and intact: the state (sealed) says done and its last checkpoint has the SHA-256 the state
        recorded (anything else: resume it, and it repairs or refuses)."""
        try:
            state = self.read_state() if self.state_path.is_file() else None
        except UserError:
            return False
        if not state or not state["done"]:
            return False
        last = state["cycles"][-1]
        return self.checkpoint_damage(last["cycle"], last["ckpt_sha256"]) is None

    def is_empty(self) -> bool:
        """No results: nothing, or only the lock file and temporaries of interrupted writes."""
        return self.path.is_dir() and all(is_bookkeeping(p.name) for p in self.path.iterdir())

    def lock(self) -> DirLock:
        return DirLock(self.path, what="run")

    def read_state(self) -> dict:
        """`state.json`, checked for the shape `al.loop` writes; `UserError` when unreadable or damaged."""
        try:
            state = json.loads(self.state_path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as e:  # ValueError: bad JSON or bytes that are not UTF-8
            why = e.strerror if isinstance(e, OSError) and e.strerror else type(e).__name__
            raise UserError(f"{self.state_path}: unreadable run state ({why}); start over with --force") from None
        if isinstance(state, dict) and state.get("version") == STATE_VERSION and not is_sealed(state):
            raise UserError(f"{self.state_path} does not match its sha256 (edited or damaged); it is not used; "
                            "restore it or start over with --force")
        if isinstance(state, dict):
            state.pop(SEAL_KEY, None)
        return check_state(state, self.state_path)

    def write_state(self, state: dict) -> None:
        """Write the JSON lines derived from `state`, then `state.json` itself (sealed)."""
        write_jsonl(self.path / "selections.jsonl", selection_records(state))
        write_jsonl(self.path / "metrics.jsonl", metric_records(state))
        atomic_write_json(self.state_path, seal(state))

    def records_match(self, state: dict) -> bool:
        """Whether selections.jsonl and metrics.jsonl hold exactly what `state` says."""
        try:
            sel = list(read_jsonl(self.path / "selections.jsonl"))
            met = list(read_jsonl(self.path / "metrics.jsonl"))
        except (OSError, ValueError):
            return False
        return sel == selection_records(state) and met == metric_records(state)

    def ckpt_path(self, cycle: int) -> Path:
        return self.ckpt_dir / f"cycle_{cycle:03d}.pt"

    def save_checkpoint(self, cycle: int, model: Any, aux: Any | None) -> str:
        """Write cycle `cycle`'s checkpoint; returns its SHA-256 (the state records it after this write)."""
        import torch

        buf = io.BytesIO()
        torch.save({"cycle": cycle, "model": _cpu_state(model), "aux": None if aux is None else _cpu_state(aux)},
                   buf)
        atomic_write_bytes(self.ckpt_path(cycle), buf.getvalue())
        return sha256_bytes(buf.getvalue())

    def checkpoint_damage(self, cycle: int, sha256: str | None) -> str | None:
        """Why cycle `cycle`'s checkpoint may not be used ("is missing", "does not match ..."), None when intact."""
        path = self.ckpt_path(cycle)
        if not path.is_file():
            return "is missing"
        if sha256 is not None and sha256_file(path) != sha256:
            return "does not match the sha256 in state.json (damaged or replaced)"
        return None

    def load_checkpoint(self, cycle: int, sha256: str | None = None) -> dict:
        """Cycle `cycle`'s checkpoint; `UserError` when missing, unreadable, not this run's or (given the
        `sha256` the state recorded) not the file that was written."""
        import torch

        path = self.ckpt_path(cycle)
        why = self.checkpoint_damage(cycle, sha256)
        if why is not None:
            raise UserError(f"{path} {why}; it is not used; resume again (it is trained again) or start over "
                            "with --force")
        try:
            ckpt = torch.load(path, map_location="cpu", weights_only=True)
        except Exception:  # truncated, random bytes, a foreign pickle: never load it any other way
            raise UserError(f"{path} is not a readable checkpoint (truncated, damaged or not written by al run); "
                            "start over with --force") from None
        if not isinstance(ckpt, dict) or ckpt.get("cycle") != cycle or not isinstance(ckpt.get("model"), dict):
            raise UserError(f"{path} does not hold cycle {cycle}'s weights as al run writes them; "
                            "start over with --force")
        return ckpt

    def checkpoint_ok(self, cycle: int, sha256: str | None = None) -> bool:
        try:
            self.load_checkpoint(cycle, sha256)
            return True
        except UserError:
            return False

    def prune_checkpoints(self, keep: int) -> None:
        for p in self.ckpt_dir.glob("cycle_*.pt"):
            if p != self.ckpt_path(keep):
                p.unlink(missing_ok=True)

    def clear(self) -> None:
        """Delete everything but the lock file (held by the caller: it must stay)."""
        for p in self.path.iterdir():
            if p.name == LOCK_NAME:
                continue
            if p.is_dir() and not p.is_symlink():
                shutil.rmtree(p)
            else:
                p.unlink()


def check_state(state: Any, path: Path) -> dict:
    """`state` if it has the shape `al.loop` writes (indices in the pool, steps in order), else `UserError`."""
    def bad(why: str) -> UserError:
        return UserError(f"{path}: {why}; the run state is damaged; start over with --force")

    if not isinstance(state, dict):
        raise bad("not a JSON object")
    if state.get("version") != STATE_VERSION:
        raise UserError(f"{path}: state version {state.get('version')!r} is not {STATE_VERSION}; "
                        "start over with --force")
    pool, cycles = state.get("pool_size"), state.get("cycles")
    if not _is_int(pool) or pool < 1:
        raise bad("pool_size is not a positive integer")
    if not isinstance(cycles, list) or not isinstance(state.get("done"), bool):
        raise bad("cycles (a list) or done (true/false) is missing")
    if not _is_int(state.get("cycles_total")) or state["cycles_total"] < 0:
        raise bad("cycles_total is not a non-negative integer")
    for key in ("initial_labelled", "dataset_indices"):
        v = state.get(key)
        if v is not None and not (isinstance(v, list) and all(_is_int(i) for i in v)):
            raise bad(f"{key} is not a list of integers")
    seen: set[int] = set()
    for k, c in enumerate(cycles):
        if not isinstance(c, dict) or c.get("cycle") != k or not isinstance(c.get("strategy"), str):
            raise bad(f"cycle {k} is missing, out of order or has no strategy")
        steps = c.get("steps")
        if not isinstance(steps, list) or steps != list(STEPS[:len(steps)]):
            raise bad(f"cycle {k}: steps are not in the order {', '.join(STEPS)}")
        if k < len(cycles) - 1 and len(steps) != len(STEPS):
            raise bad(f"cycle {k} is unfinished but cycle {k + 1} started")
        seeds = c.get("seeds")
        if not isinstance(seeds, dict) or not all(_is_int(seeds.get(s)) for s in STREAMS):
            raise bad(f"cycle {k}: seeds are missing")
        if "select" in steps:
            sel = c.get("selected")
            if not isinstance(sel, list) or not all(_is_int(i) for i in sel) or not _is_num(c.get("select_s")):
                raise bad(f"cycle {k}: selected is not a list of pool indices")
            out = [i for i in sel if not 0 <= i < pool]
            if out:
                raise bad(f"cycle {k}: index {out[0]} is outside the pool of {pool}")
            if len(set(sel)) != len(sel) or seen.intersection(sel):
                raise bad(f"cycle {k}: an image is labelled twice")
            seen.update(sel)
        if "train" in steps and not (isinstance(c.get("ckpt_sha256"), str) and len(c["ckpt_sha256"]) == 64):
            raise bad(f"cycle {k}: the SHA-256 of its checkpoint is missing")
        if "eval" in steps:
            rec = c.get("record")
            if not isinstance(rec, dict) or not all(k_ in rec for k_ in RECORD_KEYS) or not _is_num(rec["value"]):
                raise bad(f"cycle {k}: its evaluation record is missing")
    if state["done"] and (not cycles or len(cycles[-1]["steps"]) != len(STEPS)
                          or len(cycles) != state["cycles_total"] + 1):
        raise bad("marked done but its cycles are unfinished")
    return state


def _is_int(x: Any) -> bool:
    return isinstance(x, int) and not isinstance(x, bool)


def _is_num(x: Any) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)


def _cpu_state(module: Any) -> dict[str, Any]:
    return {k: v.detach().to("cpu").clone() for k, v in module.state_dict().items()}


def selection_records(state: dict) -> list[dict]:
    """selections.jsonl: one record per cycle whose selection is done."""
    out, count = [], 0
    for c in state["cycles"]:
        if "select" not in c["steps"]:
            break
        count += len(c["selected"])
        out.append({"cycle": c["cycle"], "strategy": c["strategy"], "labelled": count,
                    "fraction": count / state["pool_size"], "select_s": c["select_s"], "selected": c["selected"]})
    return out


def metric_records(state: dict) -> list[dict]:
    """metrics.jsonl: one record per evaluated cycle."""
    return [c["record"] for c in state["cycles"] if "eval" in c["steps"]]
