"""The spool's crash, clock, signal and disk-full behaviour (issue 18): each test fails on the code
before the fix. Runs on the fleet's Pythons too (3.6: no capture_output, no text=)."""

import errno
import hashlib
import json
import os
import signal
import subprocess
import sys
import time
import types
from pathlib import Path

import numpy as np
import pytest

from hwbench import ondevice

from .conftest import tiny_scoring_onnx, write_frames

SCRIPT = Path(ondevice.__file__)


class Crash(BaseException):
    """A kill at a chosen point: nothing of ours catches it, no clean-up runs but `finally`."""


def _args(onnx, frames, spool):
    # as test_kill_resume: short windows (a commit every 6 frames), evictions, a fixed latency
    return ["score", "--onnx", str(onnx), "--backend", "onnxruntime", "--frames", str(frames), "--fps", "30",
            "--policy", "window-topk", "--window", "6", "--k", "2", "--budget-frames", "16", "--spool", str(spool),
            "--latency-ms", "40", "--spool-max-mb", "0.02", "--dedup-dist", "0.001", "--json"]


def _snapshot(spool):
    files = {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in (spool / "frames").iterdir()}
    return (spool / "manifest.jsonl").read_text(), files


def _run(capsys, argv):
    rc = ondevice.main(argv)
    out, err = capsys.readouterr()
    return rc, out, err


_COUNTERS = ("seen", "scored", "skipped", "invalid", "kept", "evicted")


@pytest.fixture
def setup(tmp_path, capsys):
    onnx = tiny_scoring_onnx(tmp_path / "tiny.onnx")
    frames = write_frames(tmp_path / "frames", 60)
    rc, out, err = _run(capsys, _args(onnx, frames, tmp_path / "ref"))
    assert rc == 0, err
    ref = json.loads(out)
    assert ref["evicted"] > 0 and ref["kept"] > ref["evicted"]
    return onnx, frames, (_snapshot(tmp_path / "ref"), {k: ref[k] for k in _COUNTERS})


@pytest.mark.parametrize("name", ["manifest.jsonl", "state.json"])
@pytest.mark.parametrize("nth", [1, 2, 5])
def test_kill_right_after_a_commit_file_then_restart(tmp_path, capsys, monkeypatch, setup, name, nth):
    """Killed right after the n-th write of the manifest (or of the state), the restart ends with the
    uninterrupted run's spool and counters. Before the fix the first commit wrote the manifest first:
    killed there, the spool had an empty manifest, no state, and every restart refused it."""
    onnx, frames, (ref_snap, ref_counts) = setup
    real = ondevice._fsync_write
    seen = [0]

    def write(path, data):
        real(path, data)
        if Path(path).name == name:
            seen[0] += 1
            if seen[0] == nth:
                raise Crash()

    monkeypatch.setattr(ondevice, "_fsync_write", write)
    spool = tmp_path / "sp"
    with pytest.raises(Crash):
        ondevice.main(_args(onnx, frames, spool))
    monkeypatch.setattr(ondevice, "_fsync_write", real)
    capsys.readouterr()
    rc, out, err = _run(capsys, _args(onnx, frames, spool))
    assert rc == 0, err
    assert _snapshot(spool) == ref_snap
    res = json.loads(out)
    assert {k: res[k] for k in _COUNTERS} == ref_counts      # `evicted` too (it undercounted after a crash)


def test_empty_manifest_without_state_is_started_afresh(tmp_path, capsys, setup):
    """The half-state older versions left (killed at the first commit, manifest first) is recovered."""
    onnx, frames, (ref_snap, _) = setup
    spool = tmp_path / "old"
    (spool / "frames").mkdir(parents=True)
    (spool / "manifest.jsonl").write_bytes(b"")
    (spool / ".manifest.jsonl.123.tmp").write_bytes(b"{")
    rc, _, err = _run(capsys, _args(onnx, frames, spool))
    assert rc == 0, err
    assert _snapshot(spool) == ref_snap and not list(spool.glob(".*.tmp"))


def test_evicted_counter_is_committed_with_its_state(tmp_path, capsys, setup):
    """The state of every commit counts the evictions of that commit: a kill after any commit
    leaves counters that equal the frames kept minus those listed."""
    onnx, frames, _ = setup
    spool = tmp_path / "sp"
    real = ondevice.Spool.commit
    checked = [0]

    def commit(self, state, new):
        n = real(self, state, new)
        st = json.loads((self.root / "state.json").read_text())
        assert st["counters"]["kept"] - st["counters"]["evicted"] == len(st["entries"])
        checked[0] += n > 0
        return n

    ondevice.Spool.commit = commit
    try:
        assert _run(capsys, _args(onnx, frames, spool))[0] == 0
    finally:
        ondevice.Spool.commit = real
    assert checked[0] > 0


def test_disk_full_is_one_line_leaves_no_tmp_and_resumes(tmp_path, capsys, monkeypatch, setup):
    """ENOSPC from the disk (injected at the 4th fsync: a frame, state or manifest write) ends with one
    line and exit 1, leaves no temporary file, and the same command then resumes to the full result."""
    onnx, frames, (ref_snap, ref_counts) = setup
    real = os.fsync
    calls = [0]

    def fsync(fd):
        calls[0] += 1
        if calls[0] == 4:
            raise OSError(errno.ENOSPC, "No space left on device")
        return real(fd)

    spool = tmp_path / "sp"
    monkeypatch.setattr(ondevice.os, "fsync", fsync)
    rc, out, err = _run(capsys, _args(onnx, frames, spool))
    monkeypatch.setattr(ondevice.os, "fsync", real)
    assert rc == 1 and err.startswith("error: disk full") and err.count("\n") == 1, err
    assert not list(spool.glob(".*.tmp")) and not list((spool / "frames").glob(".*.tmp"))
    rc, out, err = _run(capsys, _args(onnx, frames, spool))
    assert rc == 0, err
    assert _snapshot(spool) == ref_snap and {k: json.loads(out)[k] for k in _COUNTERS} == ref_counts


def _progress(spool):
    try:
        st = json.loads((spool / "state.json").read_text())
    except (OSError, ValueError):
        return -1
    return 10**9 if st["done"] else st["next_index"]


@pytest.mark.parametrize("sig, rc_want", [(signal.SIGTERM, 143), (signal.SIGINT, 130)])
def test_sigterm_and_sigint_stop_with_one_line_and_resume(tmp_path, sig, rc_want):
    onnx = tiny_scoring_onnx(tmp_path / "tiny.onnx")
    frames = write_frames(tmp_path / "frames", 400)
    spool = tmp_path / "sp"
    argv = [sys.executable, str(SCRIPT)] + _args(onnx, frames, spool)
    # the default SIGINT action in the child: a parent may ignore it (xdist workers do), and Python
    # keeps an ignored SIGINT ignored (the Unix convention for background jobs)
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, universal_newlines=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    deadline = time.monotonic() + 60
    while proc.poll() is None and _progress(spool) < 12 and time.monotonic() < deadline:
        time.sleep(0.002)
    if proc.poll() is not None:
        pytest.skip("the scorer finished before the signal could be sent (a very fast machine)")
    proc.send_signal(sig)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == rc_want, err
    assert err.count("\n") == 1 and "run the same command to resume" in err, err
    assert "Traceback" not in err
    again = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, universal_newlines=True, timeout=120)
    assert again.returncode == 0, again.stderr
    ref = subprocess.run([sys.executable, str(SCRIPT)] + _args(onnx, frames, tmp_path / "ref"),
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, universal_newlines=True, timeout=120)
    assert _snapshot(spool) == _snapshot(tmp_path / "ref")
    assert {k: json.loads(again.stdout)[k] for k in _COUNTERS} == {k: json.loads(ref.stdout)[k] for k in _COUNTERS}


# ------------------------------------------------------------------------------- bad inputs
def _base(tmp_path, onnx, frames, spool):
    return ["score", "--onnx", str(onnx), "--backend", "onnxruntime", "--frames", str(frames),
            "--latency-ms", "0", "--spool", str(spool)]


def test_spool_under_a_file_or_a_symlink_loop_is_one_line(tmp_path, capsys, tiny_onnx):
    frames = write_frames(tmp_path / "frames", 3)
    afile = tmp_path / "afile"
    afile.write_text("x")
    loop = tmp_path / "loop"
    os.symlink(str(loop), str(loop))
    for spool in (afile / "sp", loop / "sp"):
        rc, _, err = _run(capsys, _base(tmp_path, tiny_onnx, frames, spool))
        assert rc == 2 and err.startswith("error: --spool") and err.count("\n") == 1, err
    assert afile.read_text() == "x"


def test_empty_png_names_the_file_and_leaves_no_spool(tmp_path, capsys, tiny_onnx):
    frames = write_frames(tmp_path / "frames", 3, ext=".png")
    (frames / "f0001.png").write_bytes(b"")
    spool = tmp_path / "sp"
    rc, _, err = _run(capsys, _base(tmp_path, tiny_onnx, frames, spool))
    assert rc == 2 and "f0001.png" in err and "BytesIO" not in err and err.count("\n") == 1, err
    assert not spool.exists()


def test_corrupt_png_mid_run_names_the_file_and_no_object_repr(tmp_path, capsys, tiny_onnx):
    frames = write_frames(tmp_path / "frames", 3, ext=".png")
    (frames / "f0000.png").write_bytes(b"\x89PNG not really")
    spool = tmp_path / "sp"
    rc, _, err = _run(capsys, _base(tmp_path, tiny_onnx, frames, spool))
    assert rc == 2 and "f0000.png" in err and "0x" not in err and err.count("\n") == 1, err
    assert not spool.exists()                      # a first run that kept nothing leaves nothing


def test_usage_errors_are_one_line(tmp_path, capsys, tiny_onnx):
    frames = write_frames(tmp_path / "frames", 3)
    with pytest.raises(SystemExit) as e:
        ondevice.main(["score", "--onnx", str(tiny_onnx), "--frames", str(frames)])
    err = capsys.readouterr().err
    assert e.value.code == 2 and err.startswith("error: ") and "--spool" in err and err.count("\n") == 1, err
    rc, _, err = _run(capsys, _base(tmp_path, tiny_onnx, frames, tmp_path / "sp") + ["--threads", "0"])
    assert rc == 2 and "--threads" in err and not (tmp_path / "sp").exists()


def test_numpy_older_than_1_13_is_one_line(tmp_path, capsys, tiny_onnx, monkeypatch):
    frames = write_frames(tmp_path / "frames", 3)
    monkeypatch.setattr(np, "__version__", "1.12.1")
    rc, _, err = _run(capsys, _base(tmp_path, tiny_onnx, frames, tmp_path / "sp"))
    assert rc == 2 and "numpy 1.12.1" in err and ">= 1.13" in err and err.count("\n") == 1, err


def test_use_tf32_only_where_onnxruntime_knows_it(tmp_path, monkeypatch, tiny_onnx):
    assert "use_tf32" not in ondevice.ort_cuda_options("1.10.0")
    assert "use_tf32" not in ondevice.ort_cuda_options("1.11.1")
    assert ondevice.ort_cuda_options("1.12.0", 1) == {"device_id": 1, "use_tf32": 0}
    assert ondevice.ort_cuda_options("1.16.3")["use_tf32"] == 0
    got = {}

    class Session:  # the CUDA provider of an ORT-GPU 1.10 wheel refuses unknown options
        def __init__(self, path, sess_options=None, providers=()):
            for p in providers:
                if isinstance(p, tuple) and "use_tf32" in p[1]:
                    raise RuntimeError("[ONNXRuntimeError] : 1 : FAIL : unknown provider option use_tf32")
            got["providers"] = providers
            self.inner = real.InferenceSession(path, sess_options=sess_options, providers=["CPUExecutionProvider"])

        def __getattr__(self, name):
            return getattr(self.inner, name)

        def get_providers(self):
            return ["CUDAExecutionProvider", "CPUExecutionProvider"]

    import onnxruntime as real

    fake = types.ModuleType("onnxruntime")
    fake.__version__ = "1.10.0"
    fake.SessionOptions = real.SessionOptions
    fake.get_available_providers = lambda: ["CUDAExecutionProvider", "CPUExecutionProvider"]
    fake.InferenceSession = Session
    monkeypatch.setitem(sys.modules, "onnxruntime", fake)
    eng = ondevice.OrtEngine(str(tiny_onnx), gpu=0)
    assert got["providers"][0] == ("CUDAExecutionProvider", {"device_id": 0}) and eng.device == "cuda:0"


# ------------------------------------------------------------------------------ live source
class _FakeClock:
    def __init__(self):
        self.wall, self.mono = 1.7e9, 50.0

    def tick(self, s):
        self.wall += s
        self.mono += s


def _fake_cv2(clock, n_frames, crash_at=None, first=0):
    """A camera at 30 fps whose reads advance the fake clock; frames 'encode' as .npy bytes."""
    import io

    cv2 = types.ModuleType("cv2")
    cv2.CAP_GSTREAMER, cv2.CAP_PROP_POS_FRAMES, cv2.CAP_PROP_POS_MSEC = 1800, 1, 0
    cv2.IMWRITE_JPEG_QUALITY, cv2.IMREAD_COLOR = 1, 1
    state = {"i": first}

    class Cap:
        def __init__(self, *a):
            pass

        def isOpened(self):
            return True

        def read(self):
            i = state["i"]
            if i == crash_at:
                raise Crash()
            if i >= n_frames:
                return False, None
            state["i"] += 1
            clock.tick(1 / 30.0)
            rs = np.random.RandomState(i)
            return True, rs.randint(0, 256, (16, 32, 3)).astype(np.uint8)

        def set(self, *a):
            return True

        def get(self, *a):
            return 0.0

        def release(self):
            pass

    def imencode(ext, img, params=None):
        buf = io.BytesIO()
        np.save(buf, img)
        return True, np.frombuffer(buf.getvalue(), dtype=np.uint8)

    def imdecode(buf, flag):
        return np.load(io.BytesIO(np.asarray(buf).tobytes()), allow_pickle=False)

    cv2.VideoCapture, cv2.imencode, cv2.imdecode = Cap, imencode, imdecode
    return cv2


def test_live_camera_restarted_mid_run_keeps_its_clock(tmp_path, capsys, monkeypatch, tiny_onnx):
    """Killed after 10 s of camera (301 frames, 300 committed), restarted 2 s later (a new process: the monotonic
    clock is elsewhere): the first new frame is scored at once (before the fix the restarted scorer
    was blind until the old process's 'busy until' time on a clock that had restarted at 0, and its
    frame numbers restarted at 0), and timestamps go on from where they were."""
    clock = _FakeClock()
    monkeypatch.setattr(ondevice.DeviceClock, "wall", staticmethod(lambda: clock.wall))
    monkeypatch.setattr(ondevice.DeviceClock, "mono", staticmethod(lambda: clock.mono))
    spool = tmp_path / "sp"
    argv = ["score", "--onnx", str(tiny_onnx), "--backend", "onnxruntime", "--camera", "0", "--latency-ms", "100",
            "--policy", "window-topk", "--window", "30", "--spool", str(spool), "--json"]
    monkeypatch.setitem(sys.modules, "cv2", _fake_cv2(clock, 450, crash_at=301))
    with pytest.raises(Crash):
        ondevice.main(argv)
    capsys.readouterr()
    st = json.loads((spool / "state.json").read_text())
    assert st["next_index"] == 300 and st["counters"]["scored"] == 100      # every 3rd frame at 100 ms
    clock.wall += 2.0
    clock.mono = 7.0                                                        # another process
    monkeypatch.setitem(sys.modules, "cv2", _fake_cv2(clock, 451, first=301))
    rc, out, err = _run(capsys, argv)
    assert rc == 0, err
    res = json.loads(out)
    assert res["seen"] == 450 and res["scored"] == 150 and res["skipped"] == 300    # 150 new frames: 50 scored
    rows = [json.loads(line) for line in (spool / "manifest.jsonl").read_text().splitlines()]
    t = [r["t_us"] for r in rows]
    assert t == sorted(t) and len(set(r["file"] for r in rows)) == len(rows) == 15
    late = [r for r in rows if r["index"] >= 300]
    assert late and min(r["t_us"] for r in late) >= 12_000_000              # 10 s + 2 s down, not from 0


def test_device_clock_never_goes_back():
    ondevice.DeviceClock.wall, old = staticmethod(lambda: 1003.0), ondevice.DeviceClock.wall  # wall stepped back
    try:
        c = ondevice.DeviceClock(epoch_unix_s=1000.0, last_us=5_000_000)
        assert c.now_us() >= 5_000_000
    finally:
        ondevice.DeviceClock.wall = old
