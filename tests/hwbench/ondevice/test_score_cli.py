"""`ondevice.py score` end to end with ONNX Runtime: sources, real-time model, spool, bad inputs."""

import hashlib
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from hwbench import ondevice

from .conftest import write_frames

SCRIPT = Path(ondevice.__file__)


def _score(capsys, *argv):
    rc = ondevice.main(["score", "--backend", "onnxruntime", *map(str, argv)])
    out, err = capsys.readouterr()
    return rc, out, err


def _manifest(spool):
    return [json.loads(line) for line in (Path(spool) / "manifest.jsonl").read_text().splitlines()]


def test_window_topk_keeps_the_best_scored_frame_of_each_window(tmp_path, tiny_onnx, capsys):
    frames = write_frames(tmp_path / "frames", 64)
    rc, out, _ = _score(capsys, "--onnx", tiny_onnx, "--frames", frames, "--fps", 30, "--latency-ms", 50,
                        "--policy", "window-topk", "--window", 8, "--budget-frames", 5, "--spool", tmp_path / "sp")
    assert rc == 0 and out.startswith("done: seen 64, scored 32, skipped 32") and "kept 5" in out
    rows = _manifest(tmp_path / "sp")
    # oracle: the tiny graph's score is the mean of the normalised pixels; latency 50 ms at 30 fps
    # scores the even frames; the best even frame of each window of 8, first 5 windows (budget)
    mean, std = np.array([0.485, 0.456, 0.406]), np.array([0.229, 0.224, 0.225])
    s = np.array([((np.load(frames / f"f{i:04d}.npy") / 255.0 - mean) / std).mean() for i in range(64)])
    want = [w * 8 + 2 * int(np.argmax(s[w * 8:w * 8 + 8:2])) for w in range(5)]
    assert [r["index"] for r in rows] == want
    for r in rows:
        data = (tmp_path / "sp" / r["file"]).read_bytes()
        assert data == (frames / f"{r['frame_id']}.npy").read_bytes()            # byte for byte
        assert r["content_sha256"] == hashlib.sha256(data).hexdigest()
        assert r["score"] == pytest.approx(s[r["index"]], rel=1e-5)
        emb = np.asarray(r["embedding"], dtype=np.float32)
        assert r["embedding_sha256"] == hashlib.sha256(emb.tobytes()).hexdigest() and emb.shape == (3,)
        assert r["source_ts"] == pytest.approx(r["index"] / 30, abs=1e-6)
        assert {"model_sha256", "engine_sha256", "device", "precision", "policy", "device_id"} <= set(r)
    rc, out, _ = _score(capsys, "--onnx", tiny_onnx, "--frames", frames, "--fps", 30, "--latency-ms", 50,
                        "--policy", "window-topk", "--window", 8, "--budget-frames", 5, "--spool", tmp_path / "sp")
    assert rc == 0 and out.startswith("already complete") and _manifest(tmp_path / "sp") == rows


def test_threshold_from_pool_scores_with_timestamps_and_period_budget(tmp_path, tiny_onnx, capsys):
    frames = write_frames(tmp_path / "frames", 20)
    ts = tmp_path / "ts.txt"
    # reversed times: the manifest, not the names, orders the frames; 0.5 s apart -> 2 per second
    ts.write_text("".join(f"f{i:04d}.npy,{(19 - i) * 0.5}\n" for i in range(20)))
    pool = tmp_path / "pool.json"
    pool.write_text(json.dumps([-10.0, 10.0]))                      # quantile 0.5 -> threshold 0
    rc, out, err = _score(capsys, "--onnx", tiny_onnx, "--frames", frames, "--timestamps", ts, "--latency-ms", 0,
                          "--policy", "threshold", "--pool-scores", pool, "--quantile", 0.5,
                          "--budget-frames", 1, "--per", "2s", "--spool", tmp_path / "sp")
    assert rc == 0, err
    rows = _manifest(tmp_path / "sp")
    periods = [int(r["t_us"] // 2_000_000) for r in rows]
    assert len(periods) == len(set(periods)) and all(r["score"] >= 0 for r in rows)
    assert [r["t_us"] for r in rows] == sorted(r["t_us"] for r in rows)


def test_spool_is_bounded_lowest_scores_evicted(tmp_path, tiny_onnx, capsys):
    frames = write_frames(tmp_path / "frames", 40)
    one = (frames / "f0000.npy").stat().st_size
    rc, out, _ = _score(capsys, "--onnx", tiny_onnx, "--frames", frames, "--latency-ms", 0, "--policy",
                        "window-topk", "--window", 4, "--spool", tmp_path / "sp", "--spool-max-mb", 3.5 * one / 1e6)
    assert rc == 0 and "kept 10, evicted 7" in out
    rows = _manifest(tmp_path / "sp")
    everything = sorted(_all_window_best(frames, 40, 4), reverse=True)
    assert sorted((r["score"] for r in rows), reverse=True) == pytest.approx(everything[:3], rel=1e-5)
    assert len(list((tmp_path / "sp" / "frames").iterdir())) == 3


def _all_window_best(frames, n, w):
    mean, std = np.array([0.485, 0.456, 0.406]), np.array([0.229, 0.224, 0.225])
    s = [((np.load(frames / f"f{i:04d}.npy") / 255.0 - mean) / std).mean() for i in range(n)]
    return [max(s[i:i + w]) for i in range(0, n, w)]


def test_synthetic_source_repeats_exactly(tmp_path, tiny_onnx, capsys):
    args = ["--onnx", tiny_onnx, "--synthetic", 90, "--seed", 3, "--latency-ms", 45, "--dedup-dist", 0.01]
    assert _score(capsys, *args, "--spool", tmp_path / "a")[0] == 0
    assert _score(capsys, *args, "--spool", tmp_path / "b")[0] == 0
    assert (tmp_path / "a" / "manifest.jsonl").read_text() == (tmp_path / "b" / "manifest.jsonl").read_text()


def test_png_frames_resized_to_the_model_input(tmp_path, tiny_onnx, capsys):
    frames = write_frames(tmp_path / "frames", 6, h=32, w=64, ext=".png")   # twice the model's 16x32
    rc, out, err = _score(capsys, "--onnx", tiny_onnx, "--frames", frames, "--latency-ms", 0, "--window", 3,
                          "--spool", tmp_path / "sp")
    assert rc == 0, err
    assert [r["file"].endswith(".png") for r in _manifest(tmp_path / "sp")] == [True, True]


def test_resize_matches_torch_bilinear():
    torch = pytest.importorskip("torch", reason="torch is server-side only (the main interpreter runs this)")
    import torch.nn.functional as F

    img = np.random.default_rng(0).integers(0, 256, (7, 10, 3)).astype(np.uint8)
    for h, w in ((3, 4), (14, 25), (7, 10)):
        ref = F.interpolate(torch.from_numpy(img).permute(2, 0, 1)[None].double(), size=(h, w), mode="bilinear",
                            align_corners=False)[0].permute(1, 2, 0).numpy()
        np.testing.assert_allclose(ondevice.resize_bilinear(img, h, w), ref, atol=1e-9)


def _bad(tmp_path, tiny_onnx, **over):
    frames = write_frames(tmp_path / "frames", 4)
    args = {"--onnx": tiny_onnx, "--frames": frames, "--spool": tmp_path / "sp", "--latency-ms": "0"}
    args.update(over)
    return [x for k, v in args.items() if v is not None for x in (k, str(v))]


@pytest.mark.parametrize("over, match", [
    ({"--onnx": "/no/such.onnx"}, "not found"),
    ({"--frames": "/no/such/dir"}, "not a directory"),
    ({"--latency-ms": "fast"}, "--latency-ms"),
    ({"--latency-ms": "nan"}, "--latency-ms"),
    ({"--fps": "0"}, "--fps"),
    ({"--fps": "inf"}, "--fps"),
    ({"--per": "1y", "--budget-frames": "3"}, "bad duration"),
    ({"--per": "1h"}, "--per needs"),
    ({"--policy": "threshold"}, "--threshold"),
    ({"--k": "5", "--window": "2"}, "--k"),
    ({"--spool-max-mb": "-1"}, "--spool-max-mb"),
])
def test_bad_options_one_line(tmp_path, tiny_onnx, capsys, over, match):
    rc, out, err = _score(capsys, *_bad(tmp_path, tiny_onnx, **over))
    assert rc == 2 and err.startswith("error: ") and match in err and err.count("\n") == 1, err
    assert not (tmp_path / "sp" / "manifest.jsonl").exists()


def test_corrupt_inputs_one_line(tmp_path, tiny_onnx, capsys):
    junk = tmp_path / "junk.onnx"
    junk.write_bytes(np.random.default_rng(0).bytes(300))
    rc, _, err = _score(capsys, *_bad(tmp_path, tiny_onnx, **{"--onnx": junk}))
    assert rc == 2 and "cannot load" in err and err.count("\n") == 1
    frames = write_frames(tmp_path / "frames", 3)
    (frames / "f0001.npy").write_bytes(b"\x93NUMPY garbage")
    rc, _, err = _score(capsys, "--onnx", tiny_onnx, "--frames", frames, "--spool", tmp_path / "s2", "--latency-ms", 0)
    assert rc == 2 and "corrupt .npy frame" in err and err.count("\n") == 1
    pool = tmp_path / "pool.txt"
    pool.write_text("1 2 nan-ish")
    rc, _, err = _score(capsys, *_bad(tmp_path, tiny_onnx, **{"--policy": "threshold", "--pool-scores": pool}))
    assert rc == 2 and "--pool-scores" in err
    ts = tmp_path / "ts.txt"
    for text, match in (("../etc/passwd 1\n", "not a frame inside"), ("f0000.npy inf\n", "finite"),
                        ("f0000.npy\n", "NAME SECONDS")):
        ts.write_text(text)
        rc, _, err = _score(capsys, *_bad(tmp_path, tiny_onnx, **{"--timestamps": ts}))
        assert rc == 2 and match in err and err.count("\n") == 1, err


def test_spool_of_another_run_or_corrupt_state_is_refused(tmp_path, tiny_onnx, capsys):
    base = _bad(tmp_path, tiny_onnx)
    assert _score(capsys, *base)[0] == 0
    rc, _, err = _score(capsys, *base, "--k", "2")
    assert rc == 2 and "other settings (policy)" in err
    (tmp_path / "sp" / "state.json").write_bytes(b"\x00\xff{not json")
    rc, _, err = _score(capsys, *base)
    assert rc == 2 and "corrupt" in err and err.count("\n") == 1
    other = tmp_path / "other"
    (other / "frames").mkdir(parents=True)
    (other / "frames" / "holiday.jpg").write_bytes(b"x")
    rc, _, err = _score(capsys, *_bad(tmp_path, tiny_onnx, **{"--spool": other}))
    assert rc == 2 and "not a spool" in err and (other / "frames" / "holiday.jpg").exists()


def test_plain_export_without_score_output_is_refused(tmp_path, capsys):
    import onnx
    from onnx import TensorProto, helper

    x = helper.make_tensor_value_info("input", TensorProto.FLOAT, [1, 3, 4, 4])
    y = helper.make_tensor_value_info("logits", TensorProto.FLOAT, [1, 3, 4, 4])
    m = helper.make_model(helper.make_graph([helper.make_node("Identity", ["input"], ["logits"])], "g", [x], [y]),
                          opset_imports=[helper.make_opsetid("", 13)])
    m.ir_version = 7
    onnx.save(m, str(tmp_path / "plain.onnx"))
    rc, _, err = _score(capsys, *_bad(tmp_path, None, **{"--onnx": tmp_path / "plain.onnx"}))
    assert rc == 2 and "--score entropy" in err


def test_runs_as_a_script_copied_alone(tmp_path, tiny_onnx):
    alone = tmp_path / "alone" / "ondevice.py"
    alone.parent.mkdir()
    alone.write_text(SCRIPT.read_text())
    frames = write_frames(tmp_path / "frames", 10)
    proc = subprocess.run([sys.executable, str(alone), "score", "--onnx", str(tiny_onnx), "--backend", "onnxruntime",
                           "--frames", str(frames), "--fps", "30", "--policy", "window-topk", "--budget-frames", "20",
                           "--spool", str(tmp_path / "SPOOL")], stdout=subprocess.PIPE, stderr=subprocess.PIPE, universal_newlines=True, timeout=120,
                          cwd=alone.parent)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("done: seen 10") and len(_manifest(tmp_path / "SPOOL")) == 1


def test_frame_directory_of_al_data_drives_uses_its_timestamps(tmp_path, capsys):
    """`al data drives` writes frames/ + manifest.jsonl (10 fps): the scorer reads its clock from it."""
    pytest.importorskip("al", reason="al is server-side only (the main interpreter runs this)")
    from al.data.drive_io import stream
    from al.data.drive_io import write_frames as write_drives
    from tests.hwbench.ondevice.conftest import tiny_scoring_onnx

    onnx = tiny_scoring_onnx(tmp_path / "t.onnx", h=32, w=64)
    out = tmp_path / "drives"
    write_drives(out, stream(seed=0, split="test", drives=[0, 1], size=(32, 64)), fmt="png")
    n = sum(1 for _ in (out / "frames").iterdir())
    rc, text, err = _score(capsys, "--onnx", onnx, "--frames", out, "--latency-ms", 150, "--window", 4,
                           "--spool", tmp_path / "sp")
    assert rc == 0, err
    assert f"seen {n}, scored {(n + 1) // 2}," in text        # frames 100 ms apart, 150 ms each: every other one
    rows = _manifest(tmp_path / "sp")
    assert all(r["index"] % 2 == 0 and r["source_ts"] == pytest.approx(r["index"] / 10) for r in rows)
