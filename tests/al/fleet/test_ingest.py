"""`al ingest`: devices' spools -> one candidate set, duplicates across devices removed."""

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest

from al.cli import main as al_main
from hwbench import ondevice
from tests.hwbench.ondevice.conftest import tiny_scoring_onnx, write_frames


def _device(tmp_path, name, frames, *extra):
    onnx = tiny_scoring_onnx(tmp_path / "tiny.onnx")
    spool = tmp_path / f"spool-{name}"
    assert ondevice.main(["score", "--onnx", str(onnx), "--backend", "onnxruntime", "--frames", str(frames),
                          "--latency-ms", "0", "--window", "4", "--k", "2", "--device-id", name, "--spool", str(spool),
                          *extra]) == 0
    return spool


def _lines(path):
    return [json.loads(x) for x in Path(path).read_text().splitlines()]


@pytest.fixture
def two_devices(tmp_path, capsys):
    shared = write_frames(tmp_path / "shared", 24, seed=1)       # both cars drove past the same scenes
    other = write_frames(tmp_path / "other", 24, seed=2)
    a = _device(tmp_path, "car-a", shared)
    b = _device(tmp_path, "car-b", shared, "--window", "6")      # another policy: overlapping picks
    c = _device(tmp_path, "car-c", other)
    capsys.readouterr()
    return a, b, c


def test_ingest_removes_duplicates_across_devices(tmp_path, two_devices, capsys):
    run = tmp_path / "run"
    assert al_main(["ingest", *map(str, two_devices), "--out", str(run)]) == 0
    out = capsys.readouterr().err                                   # status line (stderr, plain)
    rows = [r for s in two_devices for r in _lines(s / "manifest.jsonl")]
    unique = {r["content_sha256"]: r for r in sorted(rows, key=lambda r: -r["score"])}
    cands = _lines(run / "candidates" / "manifest.jsonl")
    assert sorted(r["content_sha256"] for r in cands) == sorted(unique)            # each frame once
    dups = len(rows) - len(unique)
    assert dups > 0 and f"{dups} duplicates removed" in out
    order = (run / "candidates" / "to_label.txt").read_text().split()
    scores = {r["file"]: r["score"] for r in cands}
    assert [scores[f] for f in order] == sorted(scores.values(), reverse=True)     # labelling order
    for r in cands:
        data = (run / "candidates" / r["file"]).read_bytes()
        assert hashlib.sha256(data).hexdigest() == r["content_sha256"]
    shared = [r for r in cands if r["also_from"]]
    assert shared and all(src.startswith("car-") for r in shared for src in r["also_from"])
    # the candidate set is a frame directory: al.data reads it back
    from al.data.drive_io import read_frames

    back = list(read_frames(run / "candidates"))
    assert len(back) == len(cands) and all(f.image.shape == (16, 32, 3) for f in back)
    # ingesting again (or a spool already seen) adds nothing
    assert al_main(["ingest", str(two_devices[0]), "--out", str(run), "--json"]) == 0
    res = json.loads(capsys.readouterr().out)[0]
    assert res["new_frames"] == 0 and res["candidates"] == len(cands)
    assert _lines(run / "candidates" / "manifest.jsonl") == cands


def test_near_duplicate_distance(tmp_path, two_devices, capsys):
    run = tmp_path / "run"
    assert al_main(["ingest", *map(str, two_devices), "--out", str(run), "--dedup-dist", "0.05", "--json"]) == 0
    res = json.loads(capsys.readouterr().out)[0]
    cands = _lines(run / "candidates" / "manifest.jsonl")
    # oracle: greedy by score over unit embeddings of the exact-unique frames
    rows = sorted((r for s in two_devices for r in _lines(s / "manifest.jsonl")), key=lambda r: -r["score"])
    kept, seen = [], set()
    for r in rows:
        if r["content_sha256"] in seen:
            continue
        seen.add(r["content_sha256"])
        u = np.asarray(r["embedding"]) / np.linalg.norm(r["embedding"])
        if all(np.linalg.norm(u - v) > 0.05 for v, _ in kept):
            kept.append((u, r["content_sha256"]))
    assert sorted(c["content_sha256"] for c in cands) == sorted(h for _, h in kept)
    assert res["near_duplicates"] > 0


def _bad(tmp_path, spool, capsys):
    rc = al_main(["ingest", str(spool), "--out", str(tmp_path / "run")])
    err = capsys.readouterr().err
    assert rc == 2 and err.startswith("error: ") and err.count("\n") == 1, err
    assert not (tmp_path / "run" / "candidates" / "manifest.jsonl").exists()
    return err


def test_bad_spools_are_one_line_errors(tmp_path, two_devices, capsys):
    a = two_devices[0]
    manifest = a / "manifest.jsonl"
    good = manifest.read_text()
    first = json.loads(good.splitlines()[0])
    cases = [
        (np.random.default_rng(0).bytes(200), "not UTF-8"),
        (good[: len(good) // 2].encode(), "not a JSON line"),
        ((json.dumps({**first, "score": None}) + "\n").encode(), "finite number"),
        (good.replace('"score": ', '"score": NaN, "x": ', 1).encode(), "finite number"),
        ((json.dumps({**first, "file": "../../etc/passwd"}) + "\n").encode(), "escapes the spool"),
        ((json.dumps({**first, "file": "frames/gone.npy"}) + "\n").encode(), "missing from the spool"),
        ((json.dumps({**first, "content_sha256": "0" * 64}) + "\n").encode(), "content_sha256"),
        (b'{"file": "x"}\n', "needs"),
        (b"[1, 2]\n", "needs"),
    ]
    for data, match in cases:
        manifest.write_bytes(data)
        assert match in _bad(tmp_path, a, capsys)
    assert "not a directory" in _bad(tmp_path, tmp_path / "nope", capsys)
    (tmp_path / "empty").mkdir()
    assert "no manifest.jsonl" in _bad(tmp_path, tmp_path / "empty", capsys)
