"""Files of one `al run` directory (DESIGN §3 "Runs"); `state.json` is the source of truth.

    config.toml        the resolved config
    state.json         labelled indices per cycle, metrics, RNG seeds, steps done
    selections.jsonl   one record per cycle, derived from the state
    metrics.jsonl      one record per cycle, derived from the state
    checkpoints/       cycle_NNN.pt: model (+ LLAL module) state after that cycle's training
    DONE               written last

Every write is atomic (`hwbench.io`).
"""

from __future__ import annotations

import io
import json
import os
import shutil
from pathlib import Path
from typing import Any

from hwbench.errors import UserError
from hwbench.io import atomic_write_bytes, atomic_write_json, write_jsonl


class RunDir:
    """Files of one run directory; `state` is the source of truth, the JSON lines follow it."""

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
        return self.done_path.is_file()

    def is_empty(self) -> bool:
        return self.path.is_dir() and not any(self.path.iterdir())

    def read_state(self) -> dict:
        try:
            return json.loads(self.state_path.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError) as e:
            raise UserError(f"{self.state_path}: unreadable run state ({e}); start over with --force") from None

    def write_state(self, state: dict) -> None:
        """Write the JSON lines derived from `state`, then `state.json` itself."""
        write_jsonl(self.path / "selections.jsonl", selection_records(state))
        write_jsonl(self.path / "metrics.jsonl", metric_records(state))
        atomic_write_json(self.state_path, state)

    def ckpt_path(self, cycle: int) -> Path:
        return self.ckpt_dir / f"cycle_{cycle:03d}.pt"

    def save_checkpoint(self, cycle: int, model: Any, aux: Any | None) -> None:
        import torch

        buf = io.BytesIO()
        torch.save({"cycle": cycle, "model": _cpu_state(model), "aux": None if aux is None else _cpu_state(aux)},
                   buf)
        atomic_write_bytes(self.ckpt_path(cycle), buf.getvalue())

    def load_checkpoint(self, cycle: int) -> dict:
        import torch

        path = self.ckpt_path(cycle)
        if not path.is_file():
            raise UserError(f"{path} is missing; the run cannot resume; start over with --force")
        return torch.load(path, map_location="cpu", weights_only=True)

    def prune_checkpoints(self, keep: int) -> None:
        for p in self.ckpt_dir.glob("cycle_*.pt"):
            if p != self.ckpt_path(keep):
                p.unlink(missing_ok=True)

    def remove(self) -> None:
        shutil.rmtree(self.path)


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
