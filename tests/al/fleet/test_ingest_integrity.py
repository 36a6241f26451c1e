"""`al ingest` integrity: one writer per run directory, earlier candidates verified, spools checked
against their own commit point. Spools are written by hand here (manifest, frames, state.json in the
format `hwbench/ondevice.py` writes), so the tests need no model."""

from __future__ import annotations

import hashlib
import io
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np

from al.cli import main as al_main


def _png(rgb: np.ndarray) -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(rgb).save(buf, format="PNG")
    return buf.getvalue()


def make_spool(root: Path, device: str, n: int, seed: int, *, state: bool = True, png: bool = False) -> Path:
    """A spool of `n` distinct frames (random bytes; with `png`, 8x12 RGB PNGs of random pixels) with a
    manifest and, if `state`, its state.json."""
    rng = np.random.default_rng(seed)
    (root / "frames").mkdir(parents=True)
    entries = []
    for i in range(n):
        data = _png(rng.integers(0, 256, (8, 12, 3), dtype=np.uint8)) if png else rng.bytes(256)
        name = f"frames/{device}_{i:05d}.{'png' if png else 'bin'}"
        (root / name).write_bytes(data)
        entries.append({"file": name, "score": float(rng.random()), "content_sha256": hashlib.sha256(data).hexdigest(),
                        "t_us": 1000 * i + seed, "index": i, "device_id": device, "frame_id": i})
    (root / "manifest.jsonl").write_text("".join(json.dumps(e, sort_keys=True) + "\n" for e in entries))
    if state:
        (root / "state.json").write_text(json.dumps({"version": 1, "entries": entries, "next_index": n,
                                                     "policy": {}}, sort_keys=True))
    return root


def _lines(path: Path) -> list[dict]:
    return [json.loads(x) for x in path.read_text().splitlines() if x.strip()]


def _env() -> dict:
    return {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[3])}


def _check_candidates(run: Path, spools: list[Path]) -> None:
    """Every frame of every spool listed once, its file present with the recorded SHA-256."""
    want = sorted(e["content_sha256"] for s in spools for e in _lines(s / "manifest.jsonl"))
    rows = _lines(run / "candidates" / "manifest.jsonl")
    assert sorted(r["content_sha256"] for r in rows) == want
    for r in rows:
        assert hashlib.sha256((run / "candidates" / r["file"]).read_bytes()).hexdigest() == r["content_sha256"]
    assert sorted((run / "candidates" / "to_label.txt").read_text().split()) == sorted(r["file"] for r in rows)
    assert sorted(p.name for p in (run / "candidates" / "frames").iterdir()) == \
        sorted(Path(r["file"]).name for r in rows)  # nothing else left in frames/


def test_two_concurrent_ingests_lose_no_frame(tmp_path: Path) -> None:
    a = make_spool(tmp_path / "a", "car-a", 300, 1)
    b = make_spool(tmp_path / "b", "car-b", 300, 2)
    for trial in range(3):
        run = tmp_path / f"run{trial}"
        procs = [subprocess.Popen([sys.executable, "-m", "al", "ingest", str(s), "--out", str(run)], env=_env(),
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for s in (a, b)]
        outs = [p.communicate(timeout=120) for p in procs]
        assert [p.returncode for p in procs] == [0, 0], outs
        _check_candidates(run, [a, b])


def test_damaged_or_missing_candidate_frame_is_never_kept(tmp_path: Path, capsys) -> None:
    a = make_spool(tmp_path / "a", "car-a", 20, 1)
    b = make_spool(tmp_path / "b", "car-b", 20, 2)
    run = tmp_path / "run"
    assert al_main(["ingest", str(a), "--out", str(run)]) == 0
    frame = run / "candidates" / _lines(run / "candidates" / "manifest.jsonl")[3]["file"]
    data = bytearray(frame.read_bytes())
    data[10] ^= 0x01
    frame.write_bytes(bytes(data))
    before = (run / "candidates" / "manifest.jsonl").read_bytes()
    capsys.readouterr()
    # another spool: the damaged frame cannot be restored from it -> refused in one line naming the file
    assert al_main(["ingest", str(b), "--out", str(run)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and str(frame) in err and "content_sha256" in err
    assert (run / "candidates" / "manifest.jsonl").read_bytes() == before  # nothing changed
    # the spool that holds it: copied back, then the merge goes on
    assert al_main(["ingest", str(a), str(b), "--out", str(run)]) == 0
    _check_candidates(run, [a, b])
    frame.unlink()  # deleted: the same
    assert al_main(["ingest", str(b), "--out", str(run)]) == 2
    assert "is missing" in capsys.readouterr().err
    assert al_main(["ingest", str(a), "--out", str(run)]) == 0
    _check_candidates(run, [a, b])


def test_spool_line_that_disagrees_with_its_state_is_refused(tmp_path: Path, capsys) -> None:
    a = make_spool(tmp_path / "a", "car-a", 10, 1)
    lines = (a / "manifest.jsonl").read_text().splitlines()
    row = json.loads(lines[4])
    row["score"] = 3.4e38  # finite, so only the commit point can tell
    lines[4] = json.dumps(row, sort_keys=True)
    (a / "manifest.jsonl").write_text("\n".join(lines) + "\n")
    run = tmp_path / "run"
    assert al_main(["ingest", str(a), "--out", str(run)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "manifest.jsonl:5" in err and "state.json" in err
    assert not run.exists()  # nothing written
