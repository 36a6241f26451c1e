"""A run killed with SIGKILL mid-cycle and resumed ends exactly like an uninterrupted run."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from al.cli import main

SLOW_S = "2"  # AL_TEST_SLOW_CYCLE_S: sleep before training cycles >= 1, so the kill lands mid-cycle


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "AL_TEST_SLOW_CYCLE_S"}
    env.update(OMP_NUM_THREADS="1", MKL_NUM_THREADS="1", **extra)  # same threads in every process
    return env


def _al(*args: str) -> list[str]:
    return [sys.executable, "-m", "al", "run", *args]


def _state(d: Path) -> dict | None:
    try:
        return json.loads((d / "state.json").read_text())
    except (OSError, json.JSONDecodeError):
        return None


def _cycle_done(state: dict | None, k: int) -> bool:
    return bool(state) and len(state["cycles"]) > k and "eval" in state["cycles"][k]["steps"]


def _lines(path: Path) -> list[dict]:
    return [json.loads(x) for x in path.read_text().splitlines()]


def test_kill_and_resume_is_identical(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    killed, ref = tmp_path / "killed", tmp_path / "ref"
    proc = subprocess.Popen(_al("smoke", "--out", str(killed), "--json"), env=_env(AL_TEST_SLOW_CYCLE_S=SLOW_S),
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 300
        while not _cycle_done(_state(killed), 1):
            assert proc.poll() is None, f"run ended early: {proc.stderr.read().decode()}"
            assert time.monotonic() < deadline, "cycle 1 never finished"
            time.sleep(0.05)
        os.kill(proc.pid, signal.SIGKILL)  # inside cycle 2: selecting, or sleeping before its training
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait()
    assert proc.returncode == -signal.SIGKILL
    state = _state(killed)
    assert not (killed / "DONE").exists() and not state["done"]
    assert not _cycle_done(state, 2)

    # an incomplete run is not silently restarted
    assert main(["run", "smoke", "--out", str(killed)]) == 2
    assert "--resume" in capsys.readouterr().err

    resumed = subprocess.run(_al("smoke", "--out", str(killed), "--resume", "--json"), env=_env(),
                             capture_output=True, text=True, timeout=300)
    assert resumed.returncode == 0, resumed.stderr
    # the uninterrupted reference runs in this process (one interpreter start less; same single thread)
    capsys.readouterr()
    assert main(["run", "smoke", "--out", str(ref), "--json"]) == 0
    full_stdout = capsys.readouterr().out

    assert (killed / "DONE").is_file() and (ref / "DONE").is_file()
    # {cycle, labelled, fraction, metric, value, selected}, each with the provenance of its own process
    resumed_recs, full_recs = json.loads(resumed.stdout), json.loads(full_stdout)
    assert all(r.pop("provenance")["time_utc"] for r in resumed_recs + full_recs)
    assert resumed_recs == full_recs
    sel_k, sel_r = _lines(killed / "selections.jsonl"), _lines(ref / "selections.jsonl")
    assert [s["selected"] for s in sel_k] == [s["selected"] for s in sel_r]
    met_k, met_r = _lines(killed / "metrics.jsonl"), _lines(ref / "metrics.jsonl")
    assert [(m["value"], m["metrics"], m["train"]["loss_per_epoch"]) for m in met_k] == \
        [(m["value"], m["metrics"], m["train"]["loss_per_epoch"]) for m in met_r]
    wk = torch.load(killed / "checkpoints" / "cycle_002.pt", weights_only=True)["model"]
    wr = torch.load(ref / "checkpoints" / "cycle_002.pt", weights_only=True)["model"]
    assert all(torch.equal(wk[k], wr[k]) for k in wr)  # bit-identical final weights

    # a finished run: --resume reports it, without --resume it is an error
    assert main(["run", "smoke", "--out", str(killed), "--resume"]) == 0
    assert "already complete" in capsys.readouterr().err
    assert main(["run", "smoke", "--out", str(ref)]) == 2
    assert "already complete" in capsys.readouterr().err
