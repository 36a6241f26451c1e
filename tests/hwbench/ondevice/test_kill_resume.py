"""kill -9 at random moments: a restarted scorer ends with exactly the uninterrupted run's spool."""

import hashlib
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


def _start_and_wait_for_state(cmd, spool):
    """Start the scorer; return (process, seconds until its first state commit or exit)."""
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    while proc.poll() is None and not (spool / "state.json").exists():
        time.sleep(0.001)
    return proc, time.perf_counter() - t0


def test_sigkill_restart_ten_of_ten(tmp_path):
    onnx = tiny_scoring_onnx(tmp_path / "tiny.onnx")
    frames = write_frames(tmp_path / "frames", 120)
    ref_spool = tmp_path / "ref"
    proc, _ = _start_and_wait_for_state(_cmd(onnx, frames, ref_spool), ref_spool)
    t0 = time.perf_counter()
    _, err = proc.communicate(timeout=120)
    work_s = time.perf_counter() - t0                      # from the first commit to the end
    assert proc.returncode == 0, err.decode()
    ref = _snapshot(ref_spool)
    lines = ref[0].splitlines()
    assert 0 < len(lines) < 16 and len(set(lines)) == len(lines)     # evictions happened, no duplicates
    rng = np.random.default_rng(0)
    kills_mid_run = 0
    for run in range(10):
        spool = tmp_path / f"run{run}"
        for _ in range(1 + (run % 3 == 0)):                # one or two kills, each at a random moment of the work
            proc, _ = _start_and_wait_for_state(_cmd(onnx, frames, spool), spool)
            time.sleep(float(rng.uniform(0.0, 0.9)) * work_s)
            if proc.poll() is None:
                os.kill(proc.pid, signal.SIGKILL)
                proc.wait()
                kills_mid_run += '"done": false' in (spool / "state.json").read_text()
        proc = subprocess.run(_cmd(onnx, frames, spool), capture_output=True, timeout=120)
        assert proc.returncode == 0, proc.stderr.decode()
        assert _snapshot(spool) == ref, f"run {run} differs from the uninterrupted run"
    assert kills_mid_run >= 8, f"only {kills_mid_run} kills landed while the scorer was working"
