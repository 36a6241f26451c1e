"""kill -9 at random moments: a restarted scorer ends with exactly the uninterrupted run's spool."""

import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from hwbench import ondevice

from .conftest import tiny_scoring_onnx, write_frames

SCRIPT = Path(ondevice.__file__)


def _cmd(onnx, frames, spool):
    # window-topk over short windows (a commit every 6 frames), a byte-bounded spool (evictions),
    # a fixed latency (the real-time model skips frames deterministically)
    return [sys.executable, str(SCRIPT), "score", "--onnx", str(onnx), "--backend", "onnxruntime",
            "--frames", str(frames), "--fps", "30", "--policy", "window-topk", "--window", "6", "--k", "2",
            "--budget-frames", "16", "--spool", str(spool), "--latency-ms", "40", "--spool-max-mb", "0.02",
            "--dedup-dist", "0.001"]


def _snapshot(spool):
    files = {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in (spool / "frames").iterdir()}
    return (spool / "manifest.jsonl").read_text(), files


def _progress(spool):
    """The committed next frame index (-1 before the first commit); the state file is replaced
    atomically, so a read sees one whole version."""
    try:
        st = json.loads((spool / "state.json").read_text())
    except (OSError, ValueError):
        return -1
    return 10**9 if st["done"] else st["next_index"]


def test_sigkill_restart_ten_of_ten(tmp_path):
    onnx = tiny_scoring_onnx(tmp_path / "tiny.onnx")
    n = 120
    frames = write_frames(tmp_path / "frames", n)
    ref_spool = tmp_path / "ref"
    proc = subprocess.run(_cmd(onnx, frames, ref_spool), stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=120)
    assert proc.returncode == 0, proc.stderr.decode()
    ref = _snapshot(ref_spool)
    lines = ref[0].splitlines()
    assert 0 < len(lines) < 16 and len(set(lines)) == len(lines)     # evictions happened, no duplicates
    rng = np.random.default_rng(0)
    kills_mid_run = 0
    for run in range(10):
        spool = tmp_path / f"run{run}"
        for _ in range(1 + (run % 3 == 0)):                # one or two kills per run
            # a random moment of the work: once a random frame index is committed, plus 0-5 ms
            target = int(rng.integers(0, n))
            proc = subprocess.Popen(_cmd(onnx, frames, spool), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
            while proc.poll() is None and _progress(spool) < target:
                time.sleep(0.0005)
            time.sleep(float(rng.uniform(0.0, 0.005)))
            if proc.poll() is None:
                os.kill(proc.pid, signal.SIGKILL)
                proc.wait()
                kills_mid_run += 0 <= _progress(spool) < 10**9
        proc = subprocess.run(_cmd(onnx, frames, spool), stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=120)
        assert proc.returncode == 0, proc.stderr.decode()
        assert _snapshot(spool) == ref, f"run {run} differs from the uninterrupted run"
    assert kills_mid_run >= 10, f"only {kills_mid_run} kills landed while the scorer was working"
