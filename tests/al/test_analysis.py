"""al.analysis: surrogate tables (mean ± sample std, beats-random, best per row), entropy
statistics and histograms, AL curves — all against hand-computed values."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from al.analysis import (
    RANDOM,
    aggregate,
    beats_random,
    best_per_row,
    compare_to_random,
    curve_table,
    entropy_ratios,
    entropy_summary,
    find_runs,
    histogram_counts,
    matrix_records,
    plot_al_curves,
    plot_entropy_histograms,
    row_scale,
    run_curve,
    top_k_count,
)

# rows (deployment) a, b; columns (surrogate) a, c, random; seeds 0, 1, 2. ("a", "a") is the diagonal.
VALUES = {
    ("a", "a"): [60, 62, 64],      # mean 62, sample std 2
    ("a", "c"): [50, 51, 55],      # mean 52, sample std sqrt(7)
    ("a", RANDOM): [55, 55, 58],   # mean 56, sample std sqrt(3)
    ("b", "a"): [70, 70, 70],      # mean 70, std 0
    ("b", "c"): [71, 73, 75],      # mean 73, std 2; paired diffs vs random -1, +1, +3
    ("b", RANDOM): [72, 72, 72],   # mean 72
}


def records(values=VALUES, metric="miou"):
    return [{"deployment": d, "surrogate": s, "seed": seed, "metric": metric, "value": v}
            for (d, s), vs in values.items() for seed, v in enumerate(vs)]


def test_aggregate_mean_and_sample_std():
    m = aggregate(records())
    assert m.rows == ("a", "b")
    assert m.columns == ("a", "c", RANDOM)  # random always last
    assert m.cell("a", "a").mean == pytest.approx(62) and m.cell("a", "a").std == pytest.approx(2)
    assert m.cell("a", "c").mean == pytest.approx(52) and m.cell("a", "c").std == pytest.approx(math.sqrt(7))
    assert m.cell("a", RANDOM).std == pytest.approx(math.sqrt(3))  # ddof=1, not sqrt(2) (ddof=0)
    assert m.cell("b", "a").std == 0.0
    assert m.cell("b", "c").n == 3 and m.cell("b", "c").seeds == (0, 1, 2)


def test_aggregate_orders_rows_and_columns_as_given_and_filters_metric():
    recs = records() + records(metric="top1")
    m = aggregate(recs, rows=["b", "a"], columns=["c", "a"], metric="top1")
    assert m.rows == ("b", "a") and m.columns == ("c", "a", RANDOM)
    assert m.metric == "top1" and m.cell("b", "c").n == 3


def test_one_seed_has_no_std_and_duplicates_are_bugs():
    m = aggregate([{"deployment": "a", "surrogate": "c", "seed": 0, "metric": "miou", "value": 5.0}])
    assert m.cell("a", "c").mean == 5.0 and math.isnan(m.cell("a", "c").std)
    dup = records() + [records()[0]]
    with pytest.raises(ValueError, match="duplicate"):
        aggregate(dup)


def test_beats_random_excludes_the_diagonal():
    br = beats_random(aggregate(records()))
    # off-diagonal: (a, c) 52 < 56, (b, a) 70 < 72, (b, c) 73 > 72 -> 1 of 3; diagonal (a, a) 62 > 56
    assert (br.wins, br.pairs) == (1, 3)
    assert (br.diagonal_wins, br.diagonal_pairs) == (1, 1)


def test_tie_with_random_does_not_count_as_a_win():
    vals = {("a", "c"): [1.0, 3.0], ("a", RANDOM): [2.0, 2.0]}
    assert beats_random(aggregate(records(vals))).wins == 0


def test_paired_comparison_against_random():
    comps = {(c.deployment, c.surrogate): c for c in compare_to_random(aggregate(records()))}
    bc = comps[("b", "c")]
    assert bc.delta == pytest.approx(1.0)
    assert bc.delta_std == pytest.approx(2.0)  # diffs -1, 1, 3
    assert (bc.wins, bc.paired) == (2, 3)
    assert comps[("a", "a")].diagonal and not bc.diagonal


def test_best_per_row_and_row_scale():
    m = aggregate(records())
    assert best_per_row(m) == {"a": "a", "b": "c"}
    vals = dict(VALUES)
    vals[("b", RANDOM)] = [80, 80, 80]
    m2 = aggregate(records(vals))
    assert best_per_row(m2)["b"] == "c"  # surrogates only by default
    assert best_per_row(m2, include_random=True)["b"] == RANDOM
    scale = row_scale(m, "a")  # means 62, 52, 56 -> (x - 52) / 10
    assert scale == pytest.approx({"a": 1.0, "c": 0.0, RANDOM: 0.4})


def test_matrix_records_flatten_every_cell():
    rows = matrix_records(aggregate(records()))
    assert len(rows) == 6
    r = next(r for r in rows if (r["deployment"], r["surrogate"]) == ("a", "c"))
    assert r["mean"] == pytest.approx(52) and r["n"] == 3 and r["seeds"] == [0, 1, 2]


def test_entropy_summary_ratios_and_top_k():
    s = {"x": np.arange(1, 11, dtype=float), "y": np.arange(1, 11, dtype=float) / 2}
    summ = {r["model"]: r for r in entropy_summary(s, top_fraction=0.1)}
    assert summ["x"]["mean"] == pytest.approx(5.5) and summ["y"]["mean"] == pytest.approx(2.75)
    assert summ["x"]["std"] == pytest.approx(np.std(np.arange(1, 11), ddof=1))
    assert summ["x"]["top_k"] == 1 and summ["x"]["top_threshold"] == 10.0
    ratios = entropy_ratios({k: v["mean"] for k, v in summ.items()})
    assert ratios[0] == {"numerator": "x", "denominator": "y", "ratio": pytest.approx(2.0)}
    assert ratios[1]["ratio"] == pytest.approx(0.5)
    assert [top_k_count(n, 0.1) for n in (5, 10, 11, 20)] == [1, 1, 2, 2]


def test_histogram_highlights_exactly_the_top_fraction(tmp_path):
    rng = np.random.default_rng(0)
    s = rng.gamma(2.0, 0.3, size=200)
    edges = np.linspace(s.min(), s.max(), 21)
    rest, top = histogram_counts(s, edges, 0.1)
    assert top.sum() == 20 and rest.sum() == 180
    np.testing.assert_array_equal(rest + top, np.histogram(s, bins=edges)[0])
    # the highlighted images are the highest: no top bin lies left of a bin holding only the rest
    first_top = np.flatnonzero(top)[0]
    assert rest[first_top + 1:].sum() <= rest[first_top]
    path = plot_entropy_histograms({"m1": s, "m2": s * 2}, tmp_path / "h.png", top_fraction=0.1)
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def _fake_run(root, name, model, strategy, seed, values, pool=100):
    d = root / name
    d.mkdir(parents=True)
    (d / "config.toml").write_text(f'seed = {seed}\n[model]\nname = "{model}"\n[al]\nstrategy = "{strategy}"\n')
    with open(d / "metrics.jsonl", "w") as f:
        for k, v in enumerate(values):
            n = 10 * (k + 1)
            f.write(json.dumps({"cycle": k, "labelled": n, "fraction": n / pool, "metric": "miou",
                                "value": v}) + "\n")
    return d


def test_al_curves_from_run_directories(tmp_path):
    _fake_run(tmp_path, "e0", "m", "entropy", 0, [10, 20, 30])
    _fake_run(tmp_path, "e1", "m", "entropy", 1, [12, 22, 34])
    _fake_run(tmp_path, "r0", "m", "random", 0, [10, 15, 20])
    assert [p.name for p in find_runs(tmp_path)] == ["e0", "e1", "r0"]
    pts = [p for d in find_runs(tmp_path) for p in run_curve(d)]
    assert len(pts) == 9 and pts[0]["fraction"] == pytest.approx(0.1)
    table = curve_table(pts)
    ent = [r for r in table if r["strategy"] == "entropy"]
    assert [r["mean"] for r in ent] == pytest.approx([11, 21, 32])
    assert ent[2]["std"] == pytest.approx(np.std([30, 34], ddof=1))
    rnd = [r for r in table if r["strategy"] == "random"]
    assert all(math.isnan(r["std"]) for r in rnd) and [r["fraction"] for r in rnd] == pytest.approx([.1, .2, .3])
    assert plot_al_curves(pts, tmp_path / "c.png").is_file()


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

    from al.analysis import load_entropy_scores
    from al.cli import main
    from al.data import build_dataset
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
