"""`al fleet`: build (or reuse) the scored world, simulate the fleet (or one shard), merge, report.

Run directory::

    experiment.toml  experiment.json  the config as given, and its hash (al.runs: a directory holds one fleet)
    world.npz  world.json            the scored world (reused while the world config is unchanged)
    shards/shard_<i>_of_<n>.npz      one shard's per device-day results (with --shard)
    latency.json  summary.json  summary.csv  per_day.csv  device_days.csv.gz
    training.jsonl  training.csv     deployment model on fleet / pool-AL / random sets
    timing.json  report.md  report.html  fleet_tradeoff.png  DONE (last)

Sharding: `--shard i/n` simulates the devices numbered i mod n and writes its shard file;
`--merge` merges a complete set of shard files and writes everything else. Without either, one
process does all devices and writes everything.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import re
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np

from al.fleet.config import FleetConfig, load_fleet_config
from al.fleet.latency import ScoringLatency, fleet_latencies
from al.fleet.simulate import FIELDS, FleetResult, VariantResult, merge, parse_shard, simulate
from al.fleet.world import get_world
from al.runs.files import is_sealed, sha256_text, write_sealed_json
from hwbench.errors import UserError
from hwbench.io import atomic_write_bytes, atomic_write_json, atomic_write_text

SHARD_DIR = "shards"
_SHARD_RE = re.compile(r"shard_(\d+)_of_(\d+)\.npz")


@contextlib.contextmanager
def fleet_dir(out: Path, toml_text: str, cfg: FleetConfig, *, lock: bool) -> Iterator[Path]:
    """Hold `out` for this fleet config: new, empty, or holding the same config (al.runs).

    A whole run or a merge locks the directory; shards (`lock=False`) may run at the same time,
    each writing only its own shard file (and, identically and atomically, the world)."""
    from al.runs.experiment_dir import check_out_dir, experiment_dir
    from al.runs.files import sha256_text

    def write_info() -> None:
        if not (out / "experiment.json").is_file():
            atomic_write_text(out / "experiment.toml", toml_text)
            atomic_write_json(out / "experiment.json", {"kind": "fleet", "name": cfg.name,
                                                        "config_sha256": sha256_text(toml_text)})

    if lock:
        with experiment_dir(out, toml_text, resume=True, kind="fleet"):
            write_info()
            yield out
        return
    check_out_dir(out, toml_text, resume=True, kind="fleet")
    out.mkdir(parents=True, exist_ok=True)
    write_info()
    yield out


def save_shard(out: Path, shard: tuple[int, int], res: FleetResult, config_sha256: str = "") -> Path:
    """The shard's arrays, then its sidecar `.json` (SHA-256 of the file and of the config): a shard
    without an intact sidecar is not finished (`load_shard` refuses it)."""
    arrays: dict[str, np.ndarray] = {"devices": np.array([res.devices])}
    for k, v in res.variants.items():
        arrays[f"{k}/device"], arrays[f"{k}/day"] = v.device, v.day
        arrays[f"{k}/uploaded_by"], arrays[f"{k}/passed_by"] = v.uploaded_by, v.passed_by
        arrays[f"{k}/seconds"] = np.array([v.seconds])
        for f in FIELDS:
            arrays[f"{k}/{f}"] = v.fields[f]
    buf = io.BytesIO()
    np.savez_compressed(buf, **arrays)
    path = atomic_write_bytes(out / SHARD_DIR / f"shard_{shard[0]}_of_{shard[1]}.npz", buf.getvalue())
    write_sealed_json(path.with_suffix(".json"), {"npz_sha256": hashlib.sha256(buf.getvalue()).hexdigest(),
                                                  "config_sha256": config_sha256})
    return path


def load_shard(path: Path, config_sha256: str | None = None) -> FleetResult:
    """A shard written by `save_shard` for this config; `UserError` naming the file when it is not intact."""
    import zipfile

    try:
        side = json.loads(path.with_suffix(".json").read_text(encoding="utf-8"))
        data = path.read_bytes()
    except (OSError, ValueError):
        raise UserError(f"{path}: its sidecar {path.with_suffix('.json').name} is missing or unreadable (the shard "
                        "did not finish, or was damaged); run that shard again") from None
    if not is_sealed(side):
        raise UserError(f"{path.with_suffix('.json')} is damaged or was edited (its own sha256 does not match); "
                        "run that shard again")
    if side.get("npz_sha256") != hashlib.sha256(data).hexdigest():
        raise UserError(f"{path} does not match the sha256 in {path.with_suffix('.json').name} (damaged or "
                        "replaced); it is not used; run that shard again")
    if config_sha256 is not None and side.get("config_sha256") != config_sha256:
        raise UserError(f"{path} was written for another fleet config; run that shard again here")
    try:
        with np.load(io.BytesIO(data)) as z:
            a = {k: z[k] for k in z.files}
        res = FleetResult(devices=int(a.pop("devices")[0]))
        for k in dict.fromkeys(name.rsplit("/", 1)[0] for name in a):
            res.variants[k] = VariantResult(k, a[f"{k}/device"], a[f"{k}/day"], {f: a[f"{k}/{f}"] for f in FIELDS},
                                            a[f"{k}/uploaded_by"], a[f"{k}/passed_by"], float(a[f"{k}/seconds"][0]))
    except (OSError, ValueError, EOFError, KeyError, IndexError, zipfile.BadZipFile) as e:
        raise UserError(f"{path}: not a readable shard file ({e.__class__.__name__}); run that shard again") from None
    return res


def load_shards(out: Path, config_sha256: str | None = None) -> list[FleetResult]:
    """All shards of one complete `--shard i/n` set found in out/shards/."""
    found: dict[int, dict[int, Path]] = {}
    for p in sorted((out / SHARD_DIR).glob("shard_*_of_*.npz")):
        m = _SHARD_RE.fullmatch(p.name)
        if m:
            found.setdefault(int(m.group(2)), {})[int(m.group(1))] = p
    complete = [n for n, parts in found.items() if set(parts) == set(range(n))]
    if not complete:
        have = ", ".join(f"{sorted(parts)} of {n}" for n, parts in found.items()) or "none"
        raise UserError(f"--merge: {out / SHARD_DIR} holds no complete set of shards (have: {have}); "
                        "run the missing `--shard i/n` first")
    n = max(complete)
    return [load_shard(found[n][i], config_sha256) for i in range(n)]


def run_fleet(config: str | os.PathLike, out_dir: str | os.PathLike, *, shard: str | None = None,
              merge_shards: bool = False, progress: Callable[[str], None] | None = None) -> dict[str, Any]:
    """Run `al fleet` (see module docstring). Bad input raises `UserError` before `out_dir` is touched."""
    from al.runtime import torch_threads

    cfg, text = load_fleet_config(config)
    if shard is not None and merge_shards:
        raise UserError("give --shard or --merge, not both")
    i, n = parse_shard(shard)
    out = Path(out_dir)
    config_sha = sha256_text(text)
    shards = load_shards(out, config_sha) if merge_shards else None  # checked before any work or write
    latencies = fleet_latencies(cfg)
    with fleet_dir(out, text, cfg, lock=n == 1), torch_threads(cfg.threads):
        timing: dict[str, float] = {}
        t = time.perf_counter()
        world = get_world(cfg, out, progress=progress)
        timing["world_s"] = time.perf_counter() - t
        t = time.perf_counter()
        if merge_shards:
            res = merge(shards)
        else:
            res = simulate(cfg, world, latencies, shard=(i, n), progress=progress)
        timing["simulate_s"] = time.perf_counter() - t
        if n > 1:
            path = save_shard(out, (i, n), res, config_sha)
            return {"shard": f"{i}/{n}", "devices": res.devices, "path": str(path), "timing": timing}
        return finish(cfg, out, world, latencies, res, timing, progress=progress)


def finish(cfg: FleetConfig, out: Path, world: Any, latencies: list[ScoringLatency], res: FleetResult,
           timing: dict[str, float], *, progress: Callable[[str], None] | None = None) -> dict[str, Any]:
    """Tables, training comparison, report, DONE."""
    from al.fleet.report import summary_records, write_outputs

    summary = summary_records(cfg, latencies, res, world)
    training: list[dict] = []
    if cfg.evaluation.enabled:
        from al.fleet.evaluate import evaluate_sets
        from al.fleet.world import backend

        t = time.perf_counter()
        training = evaluate_sets(cfg, world, res, backend(cfg), progress=progress)
        timing["evaluate_s"] = time.perf_counter() - t
    write_outputs(cfg, out, world, latencies, res, summary, training, timing)
    atomic_write_json(out / "DONE", {"finished": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "devices": res.devices})
    return {"summary": summary, "training": training, "timing": timing, "devices": res.devices}
