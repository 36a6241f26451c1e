"""The report's measured section on a tiny configuration (two models, small inputs)."""

from __future__ import annotations

import json

import pandas as pd

from hwbench.latency.measured_report import measured_section
from hwbench.report.doc import Report
from hwbench.report.render_md import render_markdown


def test_measured_section_small(tmp_path):
    steps = []
    section, files = measured_section(tmp_path, models=("deeplabv3plus_resnet20", "deeplabv3plus_mobilenetv3_small"),
                                 resolutions=((32, 64), (48, 96), (64, 128)), iters=2, warmup_ms=0,
                                 on_step=steps.append)
    assert [f.name for f in files] == ["measurements.jsonl", "measured_latency.csv", "measured_latency.png"]
    assert all(f.is_file() and f.stat().st_size > 0 for f in files)
    recs = [json.loads(line) for line in files[0].read_text().splitlines()]
    # 2 models x 2 backends x 3 sizes, plus the back-to-back repeat at the middle size
    assert len(recs) == 2 * 2 * 3 + 2 * 2 and len(steps) == 12
    assert {r["backend"] for r in recs} == {"torch", "onnxruntime"}
    assert all(r["env"]["clock"] == "cpu" and r["env"]["torch_threads"] == 1 for r in recs)
    assert all("wall" in r["components"] for r in recs)  # wall-clock samples kept next to CPU time
    df = pd.read_csv(files[1])
    assert len(df) == len(recs) and df["predicted_loo_ms"].notna().all() and df["roofline_ms"].gt(0).all()
    md = render_markdown(Report("r", sections=[section]))
    assert "## Measured latency on this machine" in md and "Repeatability" in md and "within +-10 %" in md
    assert "measured_latency.png" in md and "Res-20" in md and "MNV3" in md
    # the fit's real size: 2 models x 3 sizes = 6 pairs per backend; 5 train when one pair is held out,
    # 3 when a whole model (its 3 sizes) is
    assert "fitted on 5 points per backend when one pair is held out (6 (model, resolution) pairs" in md
    assert "3 when a whole model is held out" in md


def test_passes_measure_the_grid_again_and_the_predictor_takes_their_median():
    import statistics

    import pytest

    from hwbench.latency.measured_report import run_measurements
    from hwbench.latency.predict import _points

    steps = []
    recs, repeats = run_measurements(models=("deeplabv3plus_resnet20",), resolutions=((32, 64), (48, 96)),
                                     backends=("torch",), iters=1, warmup_ms=0, passes=3, on_step=steps.append)
    # 3 passes x 2 sizes, plus the back-to-back repeat (first pass only) at the larger size
    assert len(recs) == 3 * 2 + 1 and len(repeats) == 1 and len(steps) == 6
    assert steps[0].endswith("(pass 1/3)") and steps[-1].endswith("(pass 3/3)")
    (group,) = _points(recs).values()
    for (model, shape), latency in group.items():
        same = [r.latency_ms for r in recs if (r.model, tuple(r.input)) == (model, shape)]
        assert len(same) in (3, 4) and latency == statistics.median(same)
    with pytest.raises(ValueError, match="passes"):
        run_measurements(models=("deeplabv3plus_resnet20",), passes=0)
