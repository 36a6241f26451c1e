"""Opening a run directory: may it be used as asked, where does the run continue, is a finished run whole.

`state.json` decides (it is sealed: an edited or damaged state is refused); the JSON lines and DONE
follow it. Every checkpoint is checked against the SHA-256 the state recorded: from the first damaged
or replaced one (or a missing last one) the run trains again, identically. A finished run is verified
before it is reported complete: JSON lines are rewritten from the state, a damaged DONE is rewritten,
a DONE beside an unfinished state is removed. Called by `al.loop.run` holding the directory's lock.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import time

from al.config import load_config, validate
from al.prepare import PoolView, Prepared
from al.runs.files import is_sealed, sha256_text, write_sealed_json
from al.runs.lock import check_not_busy
from al.runs.run_dir import STATE_VERSION, RunDir
from al.seeds import STREAMS
from hwbench.errors import UserError
from hwbench.io import atomic_write_text

log = logging.getLogger(__name__)


def check_dir(rd: RunDir, *, resume: bool, force: bool) -> None:
    """`UserError` unless `rd` may be used as asked: new or empty, or a run to resume or to redo."""
    if rd.exists() and not rd.path.is_dir():
        raise UserError(f"--out {rd.path} exists and is not a directory")
    if rd.exists() and not rd.is_empty() and not rd.is_run():
        raise UserError(f"--out {rd.path} exists and is not a run directory; choose a new or empty directory")
    if rd.is_run() and not force and not resume:
        check_not_busy(rd.path, what="run")  # a run being written: say who holds it, not "pass --resume"
        if rd.is_done():
            raise UserError(f"run {rd.path} is already complete; pass --resume to show it or --force to redo it")
        raise UserError(f"run {rd.path} exists but is incomplete; pass --resume to continue it "
                        f"or --force to start over")


def open_state(rd: RunDir, p: Prepared) -> tuple[dict, str]:
    """The state to continue from and the run's status; a finished run is verified, not trusted."""
    if not rd.state_path.is_file():  # new, or killed before its first state was written
        rd.done_path.unlink(missing_ok=True)
        atomic_write_text(rd.path / "config.toml", p.toml)
        state = new_state(p)
        rd.write_state(state)
        return state, "completed"
    state = rd.read_state()
    check_compatible(state, p, rd)
    roll_back_damaged(rd, state, continues=p.config.al.retrain == "continue")
    if state["done"]:
        status = "already complete"
        if not rd.records_match(state):
            log.warning("%s: selections.jsonl / metrics.jsonl disagree with state.json; rewritten from it", rd.path)
            rd.write_state(state)
            status = "repaired"
        if not done_ok(rd, state):  # killed between the last state and DONE, or a damaged DONE
            write_done(rd, state)
        log.info("run %s is %s", rd.path, status)
        return state, status
    rd.done_path.unlink(missing_ok=True)  # a DONE beside an unfinished state is stale
    log.info("resuming %s after %d finished step(s)", rd.path, steps_done(state))
    rd.write_state(state)  # JSON lines consistent with the state even if a kill fell between writes
    return state, "resumed"


def roll_back_damaged(rd: RunDir, state: dict, *, continues: bool) -> int | None:
    """Train again from the first cycle whose checkpoint is damaged or replaced (its SHA-256 is not the one the
    state recorded), or missing while it is the last trained one (the run's weights); the later cycles are
    dropped (they are deterministic: redone identically). Returns that cycle, None when all are intact.
    `UserError` when the checkpoint it would continue from (`continues`: retrain = "continue") is gone too."""
    cycles = state["cycles"]
    trained = [c["cycle"] for c in cycles if "train" in c["steps"]]
    bad = None
    for k in trained:
        why = rd.checkpoint_damage(k, cycles[k]["ckpt_sha256"])
        if why is not None and (why != "is missing" or k == trained[-1]):
            bad = (k, why)
            break
    if bad is None:
        return None
    k, why = bad
    log.warning("%s %s: it is not used; training cycle %d again (and the cycles after it)", rd.ckpt_path(k), why, k)
    if continues and k > 0 and rd.checkpoint_damage(k - 1, cycles[k - 1]["ckpt_sha256"]) is not None:
        raise UserError(f"{rd.ckpt_path(k)} {why}, and {rd.ckpt_path(k - 1)} it continues from is not intact "
                        "either; start over with --force")
    del cycles[k + 1:]
    c = cycles[k]
    c["steps"] = ["select"]
    for key in ("record", "train", "train_s", "ckpt_sha256"):
        c.pop(key, None)
    state["done"] = False
    for j in trained:
        if j >= k:
            rd.ckpt_path(j).unlink(missing_ok=True)
    return k


def done_ok(rd: RunDir, state: dict) -> bool:
    """DONE holds what `write_done` writes for this state (a damaged or foreign DONE is rewritten)."""
    try:
        done = json.loads(rd.done_path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return is_sealed(done) and done.get("cycles") == len(state["cycles"]) and \
        done.get("final") == (state["cycles"][-1]["record"] if state["cycles"] else None)


def write_done(rd: RunDir, state: dict) -> None:
    write_sealed_json(rd.done_path, {"finished": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
                                     "cycles": len(state["cycles"]),
                                     "final": state["cycles"][-1]["record"] if state["cycles"] else None})


def check_compatible(state: dict, p: Prepared, rd: RunDir) -> None:
    try:
        saved_toml = (rd.path / "config.toml").read_text(encoding="utf-8")
    except (OSError, ValueError):
        raise UserError(f"{rd.path / 'config.toml'} is unreadable; start over with --force") from None
    if state.get("config_sha256") != sha256_text(saved_toml):
        raise UserError(f"{rd.state_path} belongs to another config than {rd.path / 'config.toml'} (its config_sha256 "
                        "differs: a file replaced or edited); it is not used; start over with --force")
    saved = validate(load_config(rd.path / "config.toml", validate_names=False), names=False)
    if saved != p.config:  # compared as dataclasses: keys added to the schema later compare as defaults
        diff = differences(dataclasses.asdict(saved), dataclasses.asdict(p.config))
        raise UserError(f"the config differs from {rd.path / 'config.toml'} in {', '.join(diff[:5])}; resume with "
                        f"that config (al run --out {rd.path} --resume) or start over with --force")
    if state.get("pool_size") != p.pool_size:
        raise UserError(f"the pool has {p.pool_size} images but the run in {rd.path} used {state.get('pool_size')}; "
                        f"the dataset changed; start over with --force")
    given = None if p.initial is None else p.initial.tolist()
    if state.get("initial_labelled") != given:
        raise UserError(f"the initial labelled set differs from the one the run in {rd.path} started from; resume "
                        f"with the same initial_labelled or start over with --force")
    if state.get("device") != p.device:
        log.warning("run started on %s, resuming on %s: results may differ in the last bits",
                    state.get("device"), p.device)


def differences(a: dict, b: dict, prefix: str = "") -> list[str]:
    """Dotted keys whose values differ between two nested dicts."""
    out = []
    for k in sorted(set(a) | set(b)):
        x, y = a.get(k), b.get(k)
        if isinstance(x, dict) and isinstance(y, dict) and not k == "options":
            out += differences(x, y, f"{prefix}{k}.")
        elif x != y:
            out.append(f"{prefix}{k}")
    return out


def new_state(p: Prepared) -> dict:
    cfg = p.config
    return {
        "version": STATE_VERSION,
        "config_sha256": sha256_text(p.toml),
        "dataset": cfg.data.name,
        "pool_size": p.pool_size,
        "dataset_indices": p.dataset_indices.tolist() if isinstance(p.pool, PoolView) else None,
        "val_size": len(p.val_indices) if p.val_indices is not None else len(p.val),
        "n_initial": p.n_initial,
        "n_cycle": p.n_cycle,
        "cycles_total": cfg.al.cycles,
        "initial_labelled": None if p.initial is None else p.initial.tolist(),
        "device": p.device,
        "weights": None if p.weights is None else p.weights.record(),
        "rng": {"seed": cfg.seed, "scheme": "numpy SeedSequence([seed_lo, seed_hi, cycle, stream])",
                "streams": STREAMS,
                "initial": "SeedSequence([seed_lo, seed_hi, pool_size, crc32(dataset)]).permutation"},
        "cycles": [],
        "done": False,
    }


def steps_done(state: dict) -> int:
    return sum(len(c["steps"]) for c in state["cycles"])
