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
            "--budget-frames", "30", "--spool", str(spool), "--latency-ms", "40", "--spool-max-mb", "0.03",
            "--dedup-dist", "0.001"]


def _snapshot(spool):
    files = {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in (spool / "frames").iterdir()}
    return (spool / "manifest.jsonl").read_text(), files


def test_sigkill_restart_ten_of_ten(tmp_path):
    onnx = tiny_scoring_onnx(tmp_path / "tiny.onnx")
    frames = write_frames(tmp_path / "frames", 240)
    ref_spool = tmp_path / "ref"
    t0 = time.perf_counter()
    subprocess.run(_cmd(onnx, frames, ref_spool), check=True, capture_output=True, timeout=120)
    ref_s = time.perf_counter() - t0
    ref = _snapshot(ref_spool)
    lines = ref[0].splitlines()
    assert 0 < len(lines) < 30 and len(set(lines)) == len(lines)     # evictions happened, no duplicates
    rng = np.random.default_rng(0)
    kills_mid_run = 0
    for run in range(10):
        spool = tmp_path / f"run{run}"
        for attempt in range(4):
            proc = subprocess.Popen(_cmd(onnx, frames, spool), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
            if attempt < 3:
                # kill at a random moment once the scorer has started committing (or at a random time)
                deadline = time.perf_counter() + float(rng.uniform(0.05, 1.0)) * ref_s
                while proc.poll() is None and time.perf_counter() < deadline:
                    time.sleep(0.002)
                if proc.poll() is None:
                    os.kill(proc.pid, signal.SIGKILL)
                    proc.wait()
                    st = spool / "state.json"
                    kills_mid_run += st.exists() and '"done": false' in st.read_text()
                    continue
            _, err = proc.communicate(timeout=120)
            assert proc.returncode == 0, err.decode()
            break
        assert _snapshot(spool) == ref, f"run {run} differs from the uninterrupted run"
    assert kills_mid_run >= 3, "too few kills landed while the scorer was working"
