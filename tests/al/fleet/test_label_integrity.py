"""`al label` verifies RUN/candidates as `al ingest` does before it labels anything: ingest.json sealed
and naming the SHA-256 of manifest.jsonl and to_label.txt as they are, each frame it labels matching its
content_sha256. The spool and the oracle are written by hand (PNG frames), so no model is needed."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from al.cli import main as al_main
from tests.al.fleet.test_ingest_integrity import make_spool


def make_oracle(root: Path, spool: Path, seed: int) -> dict[str, np.ndarray]:
    """A frame directory with labels (the `al.data.drive_io` format) holding the spool's frames, each with a
    random 8-bit label map of its size; returns frame SHA-256 -> label."""
    rng = np.random.default_rng(seed)
    (root / "frames").mkdir(parents=True)
    (root / "labels").mkdir()
    truth, lines = {}, []
    for n, src in enumerate(sorted((spool / "frames").iterdir())):
        shutil.copyfile(src, root / "frames" / src.name)
        with Image.open(src) as im:
            w, h = im.size
        lab = rng.integers(0, 8, (h, w), dtype=np.uint8)
        Image.fromarray(lab).save(root / "labels" / (src.stem + ".png"))
        truth[hashlib.sha256(src.read_bytes()).hexdigest()] = lab
        lines.append({"file": f"frames/{src.name}", "label": f"labels/{src.stem}.png", "timestamp_s": float(n),
                      "drive_id": "0", "frame_index": n})
    (root / "manifest.jsonl").write_text("".join(json.dumps(x) + "\n" for x in lines))
    return truth


@pytest.fixture
def world(tmp_path: Path) -> tuple[Path, Path, dict[str, np.ndarray]]:
    spool = make_spool(tmp_path / "sp", "car-a", 8, 3, png=True)
    truth = make_oracle(tmp_path / "oracle", spool, 4)
    assert al_main(["ingest", str(spool), "--out", str(tmp_path / "run")]) == 0
    return tmp_path / "run" / "candidates", tmp_path / "oracle", truth


def _label(cands: Path, out: Path, *extra: str) -> int:
    return al_main(["label", str(cands), "--out", str(out), *extra])


def _refused(rc: int, err: str, name: Path) -> None:
    assert rc == 2 and err.startswith("error: ") and err.count("\n") == 1 and str(name) in err, (rc, err)


def test_intact_candidates_are_labelled_from_the_oracle(world, tmp_path: Path, capsys) -> None:
    cands, oracle, truth = world
    assert _label(cands, tmp_path / "lab", "--oracle", str(oracle), "--budget", "4") == 0
    rows = [json.loads(x) for x in (tmp_path / "lab" / "manifest.jsonl").read_text().splitlines()]
    first = (cands / "to_label.txt").read_text().split()[:4]
    assert sorted(r["file"] for r in rows) == sorted(first)  # the best 4, same content-addressed names
    for r in rows:
        sha = hashlib.sha256((tmp_path / "lab" / r["file"]).read_bytes()).hexdigest()
        assert np.array_equal(np.asarray(Image.open(tmp_path / "lab" / r["label"])), truth[sha])


def _edit_manifest(c: Path) -> Path:
    lines = (c / "manifest.jsonl").read_text().splitlines()
    row = json.loads(lines[2])
    row["score"] = 0.999999  # still a well-formed line with a finite score: only the seal tells
    lines[2] = json.dumps(row, sort_keys=True)
    (c / "manifest.jsonl").write_text("\n".join(lines) + "\n")
    return c / "manifest.jsonl"


def _reorder(c: Path) -> Path:
    order = (c / "to_label.txt").read_text().split()
    order[0], order[-1] = order[-1], order[0]  # the worst candidate first
    (c / "to_label.txt").write_text("".join(f + "\n" for f in order))
    return c / "to_label.txt"


def _edit_seal(c: Path) -> Path:
    info = json.loads((c / "ingest.json").read_text())
    info["sha256_to_label.txt"] = hashlib.sha256(b"x").hexdigest()
    (c / "ingest.json").write_text(json.dumps(info))
    return c / "ingest.json"


def _drop_seal(c: Path) -> Path:
    (c / "ingest.json").unlink()
    return c / "ingest.json"


@pytest.mark.parametrize("edit", [_edit_manifest, _reorder, _edit_seal, _drop_seal])
def test_edited_candidates_are_refused_naming_the_file(edit, world, tmp_path: Path, capsys) -> None:
    cands, oracle, _ = world
    damaged = edit(cands)
    capsys.readouterr()
    rc = _label(cands, tmp_path / "lab", "--oracle", str(oracle))
    _refused(rc, capsys.readouterr().err, damaged)
    assert not (tmp_path / "lab").exists() and not list(tmp_path.glob(".lab.*"))  # nothing written


@pytest.mark.parametrize("source", ["oracle", "labels"])
def test_bit_flipped_frame_is_refused_naming_it(source, world, tmp_path: Path, capsys) -> None:
    cands, oracle, truth = world
    labels = tmp_path / "mylabels"  # the user's tool: a label map per candidate, named after its frame
    labels.mkdir()
    for f in (cands / "frames").iterdir():
        Image.fromarray(truth[hashlib.sha256(f.read_bytes()).hexdigest()]).save(labels / (f.stem + ".png"))
    src = ["--oracle", str(oracle)] if source == "oracle" else ["--labels", str(labels)]
    out = tmp_path / "lab"
    assert _label(cands, out, *src, "--budget", "1") == 0
    before = {p.name: p.read_bytes() for p in out.rglob("*") if p.is_file()}
    frame = cands / (cands / "to_label.txt").read_text().split()[1]  # the next one to label
    data = bytearray(frame.read_bytes())
    data[len(data) // 2] ^= 0x01
    frame.write_bytes(bytes(data))
    capsys.readouterr()
    rc = _label(cands, out, *src, "--budget", "2")
    err = capsys.readouterr().err
    _refused(rc, err, frame)
    assert "content_sha256" in err
    assert {p.name: p.read_bytes() for p in out.rglob("*") if p.is_file()} == before  # unchanged
