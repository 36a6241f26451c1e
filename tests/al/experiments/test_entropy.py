"""al.experiments.entropy: `al entropy` end to end (scores = mean pixel entropy of the saved model)."""

from __future__ import annotations

import json

import numpy as np
import pytest

# --------------------------------------------------------------------------- `al entropy` end to end

ENTROPY_TOML = """
name = "entropy_tiny"
models = ["deeplabv3plus_resnet20", "deeplabv3plus_mobilenetv3_small"]
train_fraction = 0.25
top_fraction = 0.25
device = "cpu"
threads = 1
batch_size = 8

[data]
name = "synthetic_streets"
pool_size = 16
options = { n = 16, size = [32, 64] }

[train]
epochs = 1
batch_size = 4
"""


def test_entropy_command_scores_are_mean_pixel_entropy(tmp_path, capsys):
    import torch

    from al.cli import main
    from al.data import build_dataset
    from al.runs.files import load_entropy_scores
    from hwbench.models import create_model

    cfg = tmp_path / "e.toml"
    cfg.write_text(ENTROPY_TOML)
    out = tmp_path / "ent"
    capsys.readouterr()
    assert main(["entropy", str(cfg), "--out", str(out), "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert [s["model"] for s in summary] == ["deeplabv3plus_resnet20", "deeplabv3plus_mobilenetv3_small"]
    assert all(s["n"] == 12 and s["top_k"] == 3 for s in summary)  # 4 trained, 12 held out
    assert (out / "DONE").is_file() and (out / "entropy_hist.png").is_file()
    md = (out / "report.md").read_text()
    assert "![entropy histograms](entropy_hist.png)" in md and "mean entropy" in md
    scores = load_entropy_scores(out / "entropy_scores.npz")
    with np.load(out / "entropy_scores.npz") as z:
        held, train = z["held_out"], z["train"]
    assert held.size == 12 and np.intersect1d(held, train).size == 0
    # oracle: reload the saved model, softmax, -sum p log p per pixel, mean over the image
    ds = build_dataset("synthetic_streets", split="train", n=16, size=[32, 64])
    name = "deeplabv3plus_mobilenetv3_small"
    model = create_model(name, num_classes=ds.num_classes)
    model.load_state_dict(torch.load(out / "models" / name / "model.pt", weights_only=True))
    model.eval()
    with torch.no_grad():
        x = torch.stack([ds[int(i)][0] for i in held[:4]])
        p = torch.softmax(model(x).double(), dim=1)
        ent = -(p * torch.log(p.clamp_min(1e-30))).sum(1).mean((1, 2)).numpy()
    np.testing.assert_allclose(scores[name][:4], ent, rtol=1e-4, atol=1e-6)
    s = next(s for s in summary if s["model"] == name)
    assert s["mean"] == pytest.approx(scores[name].mean())
    # resume reuses the trained models and gives the same scores
    assert main(["entropy", str(cfg), "--out", str(out), "--resume", "--json"]) == 0
    timing = json.loads((out / "timing.json").read_text())
    assert all(p["reused"] for p in timing["parts"] if p["kind"] == "entropy training")
    np.testing.assert_array_equal(load_entropy_scores(out / "entropy_scores.npz")[name], scores[name])


def test_entropy_bad_input_exits_2_without_output(tmp_path, capsys):
    from al.cli import main

    cfg = tmp_path / "e.toml"
    cfg.write_text(ENTROPY_TOML.replace("deeplabv3plus_resnet20", "deeplabv3plus_resnet21"))
    capsys.readouterr()
    assert main(["entropy", str(cfg), "--out", str(tmp_path / "x")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "unknown model" in err[0] and not (tmp_path / "x").exists()
    cfg.write_text(ENTROPY_TOML.replace("train_fraction = 0.25", "train_fraction = 1.5"))
    assert main(["entropy", str(cfg), "--out", str(tmp_path / "x")]) == 2
    assert "train_fraction" in capsys.readouterr().err and not (tmp_path / "x").exists()
