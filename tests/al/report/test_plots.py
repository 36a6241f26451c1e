"""al.report.plots and al.report.load: entropy histograms and AL curves read from run directories,
against hand-computed counts and means."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from al.report.load import find_runs, run_curve
from al.report.plots import plot_al_curves, plot_entropy_histograms
from al.stats import curve_table, histogram_counts


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
