"""The loop from the devices' spools to the next model (docs/jetson-stack.md, "The closed loop"), end
to end on the embedded drives at tiny sizes: export with --weights -> ondevice.py score -> al ingest
-> al label (oracle) -> al finetune (continues from the deployed checkpoint) -> export -> score."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest
import torch

from al.cli import main as al_main
from al.data.drive_io import read_frames
from hwbench import ondevice
from hwbench.cli import main as hwbench_main
from hwbench.models import create_model

MODEL = "deeplabv3plus_resnet20"


def _ok(rc, capsys):
    out, err = capsys.readouterr()
    assert rc == 0, err
    return out


def _scores(spool):
    return [json.loads(x)["score"] for x in (Path(spool) / "manifest.jsonl").read_text().splitlines()]


def _export(tmp, capsys, weights, name):
    onnx = tmp / name
    _ok(hwbench_main(["export", MODEL, "--num-classes", "8", "--input", "32x64", "--score", "entropy",
                      "--weights", str(weights), "--onnx-out", str(onnx), "--json"]), capsys)
    return onnx


def _score(tmp, capsys, onnx, spool):
    _ok(ondevice.main(["score", "--onnx", str(onnx), "--backend", "onnxruntime", "--frames", str(tmp / "drives"),
                       "--latency-ms", "0", "--window", "3", "--spool", str(spool)]), capsys)
    return spool


def test_spools_to_the_next_model_and_back(tmp_path, capsys):
    tmp = tmp_path
    for out, split, drives in (("drives", "test", "0,1"), ("val", "val", "0")):
        _ok(al_main(["data", "drives", str(tmp / out), "--split", split, "--drives", drives, "--size", "32x64",
                     "--drive-frames", "6"]), capsys)
    torch.manual_seed(0)
    torch.save(create_model(MODEL, num_classes=8).state_dict(), tmp / "v0.pt")       # the deployed model
    s0 = _export(tmp, capsys, tmp / "v0.pt", "s0.onnx")
    _score(tmp, capsys, s0, tmp / "sp1")
    _ok(al_main(["ingest", str(tmp / "sp1"), "--out", str(tmp / "run")]), capsys)
    res = json.loads(_ok(al_main(["label", str(tmp / "run" / "candidates"), "--oracle", str(tmp / "drives"),
                                  "--budget", "3", "--out", str(tmp / "run" / "labelled"), "--json"]), capsys))[0]
    assert res["candidates"] == 4 and res["labelled"] == 3                 # 12 frames, windows of 3: 4 kept

    # the oracle's labels are the drives' own labels of the same frames (matched by content hash)
    truth = {hashlib.sha256(np.ascontiguousarray(f.image).tobytes()).hexdigest(): f.label
             for f in read_frames(tmp / "drives")}
    got = list(read_frames(tmp / "run" / "labelled"))
    assert len(got) == 3
    for f in got:
        assert np.array_equal(f.label, truth[hashlib.sha256(np.ascontiguousarray(f.image).tobytes()).hexdigest()])
    # ... and they are the 3 best-scored candidates (to_label.txt order)
    order = (tmp / "run" / "candidates" / "to_label.txt").read_text().split()[:3]
    rows = [json.loads(x) for x in (tmp / "run" / "labelled" / "manifest.jsonl").read_text().splitlines()]
    assert sorted(r["file"] for r in rows) == sorted("frames/" + Path(f).name for f in order)

    rec = json.loads(_ok(al_main(["finetune", MODEL, "--weights", str(tmp / "v0.pt"), "--frames",
                                  str(tmp / "run" / "labelled"), "--out", str(tmp / "run" / "v1"), "--epochs", "1",
                                  "--batch-size", "2", "--val", str(tmp / "val"), "--json"]), capsys))[0]
    assert rec["n_frames"] == 3 and rec["weights_sha256"] == hashlib.sha256((tmp / "v0.pt").read_bytes()).hexdigest()
    assert 0 <= rec["val_miou_after"] <= 100 and len(rec["loss_per_epoch"]) == 1
    v0 = torch.load(tmp / "v0.pt", weights_only=True)
    v1 = torch.load(tmp / "run" / "v1" / "model.pt", weights_only=True)
    assert v0.keys() == v1.keys() and any(not torch.equal(v0[k], v1[k]) for k in v0)   # trained from v0

    s1 = _export(tmp, capsys, tmp / "run" / "v1" / "model.pt", "s1.onnx")           # back to the devices
    _score(tmp, capsys, s1, tmp / "sp2")
    a, b = _scores(tmp / "sp1"), _scores(tmp / "sp2")
    assert len(b) == 4 and len(set(np.round(b, 6))) > 1 and not np.allclose(a, b)      # the new model ranks


def test_labelling_tool_format_and_bad_inputs(tmp_path, capsys):
    """A user's tool writes DIR/<frame stem>.png (8-bit ids, the frame's size); unlabelled candidates
    wait; a wrong-size label or a frame the oracle never saw is one line, nothing written."""
    from PIL import Image

    tmp = tmp_path
    _ok(al_main(["data", "drives", str(tmp / "drives"), "--split", "test", "--drives", "0", "--size", "32x64",
                 "--drive-frames", "6"]), capsys)
    _ok(ondevice.main(["score", "--onnx", str(_tiny(tmp)), "--backend", "onnxruntime", "--frames",
                       str(tmp / "drives"), "--latency-ms", "0", "--window", "2", "--spool", str(tmp / "sp")]), capsys)
    _ok(al_main(["ingest", str(tmp / "sp"), "--out", str(tmp / "run")]), capsys)
    cands = (tmp / "run" / "candidates" / "to_label.txt").read_text().split()
    labels = tmp / "mylabels"
    labels.mkdir()
    Image.fromarray(np.full((32, 64), 2, np.uint8)).save(labels / (Path(cands[0]).stem + ".png"))
    res = json.loads(_ok(al_main(["label", str(tmp / "run" / "candidates"), "--labels", str(labels), "--out",
                                  str(tmp / "lab"), "--json"]), capsys))[0]
    assert res["labelled"] == 1 and res["total"] == 1
    (f,) = list(read_frames(tmp / "lab"))
    assert (f.label == 2).all()
    Image.fromarray(np.full((16, 64), 2, np.uint8)).save(labels / (Path(cands[1]).stem + ".png"))
    rc = al_main(["label", str(tmp / "run" / "candidates"), "--labels", str(labels), "--out", str(tmp / "lab")])
    err = capsys.readouterr().err
    assert rc == 2 and err.startswith("error: ") and err.count("\n") == 1, err
    assert len(list(read_frames(tmp / "lab"))) == 1                                   # unchanged
    other = tmp / "other"
    _ok(al_main(["data", "drives", str(other), "--split", "val", "--drives", "0", "--size", "32x64",
                 "--drive-frames", "6"]), capsys)
    rc = al_main(["label", str(tmp / "run" / "candidates"), "--oracle", str(other), "--out", str(tmp / "lab2")])
    err = capsys.readouterr().err
    assert rc == 2 and "not a frame of --oracle" in err and not (tmp / "lab2").exists()


def _tiny(tmp):
    from tests.hwbench.ondevice.conftest import tiny_scoring_onnx

    return tiny_scoring_onnx(tmp / "tiny.onnx", h=32, w=64)


@pytest.mark.parametrize("argv, match", [
    (["--weights", "/no/such.pt"], "--weights"),
    (["--num-classes", "1"], "--num-classes"),
])
def test_finetune_bad_inputs_one_line(tmp_path, capsys, argv, match):
    rc = al_main(["finetune", MODEL, "--frames", str(tmp_path), "--out", str(tmp_path / "o")]
                 + (argv if "--weights" in argv else argv + ["--weights", str(tmp_path / "w.pt")]))
    err = capsys.readouterr().err
    assert rc == 2 and err.startswith("error: ") and match in err and err.count("\n") == 1, err
