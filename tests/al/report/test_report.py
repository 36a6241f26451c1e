"""al.report (markdown, html, write): the markdown/HTML report shows the matrix, marks best and vs-random, colour-codes rows."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest

from al.report import load_experiment, write_report
from al.report.format import DOWN, SELF_MARK, UP, fmt_cell, scale_colour
from al.report.sections import matrix_table
from al.stats import RANDOM, aggregate
from hwbench.errors import UserError
from hwbench.io import atomic_write_json, write_jsonl
from hwbench.report.render_html import table_html
from hwbench.report.render_md import md_table


def matrix_markdown(m):
    return md_table(matrix_table(m))


def matrix_html(m):
    return table_html(matrix_table(m))

VALUES = {("a", "a"): [60, 62, 64], ("a", "c"): [50, 51, 55], ("a", RANDOM): [55, 55, 58],
          ("b", "a"): [70, 70, 70], ("b", "c"): [71, 73, 75], ("b", RANDOM): [72, 72, 72]}


def recs():
    return [{"deployment": d, "surrogate": s, "seed": i, "metric": "miou", "value": float(v)}
            for (d, s), vs in VALUES.items() for i, v in enumerate(vs)]


def test_fmt_cell_and_colour_scale():
    assert fmt_cell(62.0, 2.0) == "62.0 ± 2.0"
    assert fmt_cell(5.0, float("nan")) == "5.0"
    assert scale_colour(0.0) == "#f8696b" and scale_colour(1.0) == "#63be7b" and scale_colour(0.5) == "#ffeb84"


def test_markdown_matrix_marks_best_and_vs_random():
    md = matrix_markdown(aggregate(recs()))
    lines = md.splitlines()
    assert lines[0].startswith("| deployment \\ surrogate |") and lines[0].rstrip().endswith("| random |")
    row_a = next(line for line in lines if line.startswith("| a "))
    row_b = next(line for line in lines if line.startswith("| b "))
    assert f"**62.0 ± 2.0** {UP} {SELF_MARK}" in row_a  # best, above random, diagonal
    assert f"52.0 ± 2.6 {DOWN}" in row_a
    assert f"**73.0 ± 2.0** {UP}" in row_b and f"70.0 ± 0.0 {DOWN}" in row_b
    assert "72.0 ± 0.0" in row_b
    # colour within each row over the surrogates (a: 62 best, 52 worst; b: 73 best, 70 worst);
    # random sits uncoloured in its own column, as in the paper
    assert "🟩 **62.0 ± 2.0**" in row_a and "🟥 52.0 ± 2.6" in row_a and row_a.endswith("| 56.0 ± 1.7 |")
    assert "🟩 **73.0 ± 2.0**" in row_b and "🟥 70.0 ± 0.0" in row_b and row_b.endswith("| 72.0 ± 0.0 |")
    # the paired Δ ± 95 % CI half-width per cell: (a, c) diffs -5, -4, -3 -> -4 ± 4.303 / sqrt(3)
    assert "(Δ -4.00 ± 2.48)" in row_a and "(Δ +6.00 ± 2.48)" in row_a


def test_html_matrix_is_colour_coded_per_row():
    html = matrix_html(aggregate(recs()))
    cells = re.findall(r'<td class="r cell" style="background:(#[0-9a-f]{6})" data-scale="([0-9.]+)">', html)
    assert len(cells) == 4                      # surrogates only; random in its own, uncoloured column
    # row a: means 62 (best -> green), 52 (worst -> red); row b: 70 (worst), 73 (best)
    assert cells[0] == ("#63be7b", "1.000") and cells[1] == ("#f8696b", "0.000")
    assert cells[2][0] == "#f8696b" and cells[3][0] == "#63be7b"
    assert html.count('<td class="r random">') == 2
    assert "<b>73.0\u00a0±\u00a02.0</b>" in html


def _experiment(tmp_path, with_entropy=True):
    d = tmp_path / "exp"
    write_jsonl(d / "records.jsonl", recs())
    atomic_write_json(d / "experiment.json", {"name": "t", "seeds": [0, 1, 2], "deployment": ["a", "b"],
                                              "surrogates": ["a", "c"], "summary": "hand-made records",
                                              "dataset": "synthetic_streets", "meta": {"torch": "x"},
                                              "provenance": {"time_utc": "2026-01-02T03:04:05Z",
                                                             "tool": "hwbench", "tool_version": "9.9",
                                                             "git_commit": "abcdef0123456789", "host": "rig"}})
    (d / "experiment.toml").write_text('name = "t"\n')
    atomic_write_json(d / "deploy.json", {"source": {"device": "tx2", "fps": 10, "share": 0.3, "mode": "paper"},
                                          "surrogates": ["a", "c"],
                                          "verdicts": [{"model": "a", "device": "tx2", "mode": "paper",
                                                        "latency_ms": 24.7, "budget_ms": 30.0, "deployable": True,
                                                        "reason": "fits"},
                                                       {"model": "z", "device": "tx2", "mode": "paper",
                                                        "latency_ms": 139.0, "budget_ms": 30.0,
                                                        "deployable": False, "reason": "too slow"}]})
    atomic_write_json(d / "timing.json", {"total_s": 12.5, "reused": 0, "parts": [
        {"kind": "surrogate AL run", "name": "a", "seed": 0, "seconds": 2.0, "reused": False}]})
    if with_entropy:
        from al.runs.files import npz_bytes as _npz_bytes
        from al.stats import entropy_ratios, entropy_summary
        from hwbench.io import atomic_write_bytes

        scores = {"a": np.linspace(0.1, 1.0, 50), "c": np.linspace(0.05, 0.5, 50)}
        summ = entropy_summary(scores)
        atomic_write_bytes(d / "entropy_scores.npz", _npz_bytes({f"score__{k}": v for k, v in scores.items()}))
        atomic_write_json(d / "entropy.json", {"pool_size": 55, "train_size": 5, "held_out_size": 50,
                                               "train_fraction": 0.1, "top_fraction": 0.1, "summary": summ,
                                               "ratios": entropy_ratios({s["model"]: s["mean"] for s in summ})})
    return d


def test_write_report_renders_every_section(tmp_path):
    d = _experiment(tmp_path)
    written = write_report(d)
    md = written["markdown"].read_text()
    html = written["html"].read_text()
    # same values as tests/al/test_stats.py: (a, c) and (b, a) lose, (b, c) ties; by mean alone 1 of 3
    assert "**beat 0, tie 1, lose 2 of 3**" in md and "By the mean alone (the paper's criterion, no test): 1 of 3" in md
    assert "| a | c | 3 | -4.00 | [-6.48, -1.52] |" in md   # -4 ± 4.303 / sqrt(3)
    assert "Median 95 % CI half-width over the pairs: 2.48 p.p." in md
    assert "Best surrogate for a: a" in md and "Best surrogate for b: c" in md
    assert "24.7" in md and "too slow" in md  # deploy verdicts
    assert "![entropy histograms](entropy_hist.png)" in md and "×2.00" in md  # mean-entropy ratio
    assert "ddof=1" in md and "What this can and cannot show" in md and "synthetic" in md
    assert "```toml" in md and "12.5 s" in md
    assert 'class="matrix"' in html and "background:#63be7b" in html
    # beside the paper: Table 3 (segmentation), labelled as other data, with its cells transcribed
    assert "### Beside the paper: Table 3 (CityScapes)" in md and "Different data and scale" in md
    assert "| Res-50 | " in md and "74.4 ± 0.1" in md and "71.2 ± 0.3" in md
    assert "20 of 20 off-diagonal pairs above random by the mean" in md
    assert "Beside the paper: Table 3" in html and 'class="matrix paper"' in html
    # one self-contained page: the figures are embedded, nothing refers to a file next to it
    assert html.count('src="data:image/png;base64,') >= 1 and "entropy_hist.png" not in html
    import base64
    import re as _re

    png = base64.b64decode(_re.search(r'src="data:image/png;base64,([^"]+)"', html).group(1))
    assert png[:4] == b"\x89PNG"
    assert (d / "entropy_hist.png").read_bytes()[:4] == b"\x89PNG"
    csv = (d / "matrix.csv").read_text().splitlines()
    assert csv[0].startswith("deployment,surrogate,metric,mean,std,n") and len(csv) == 7
    assert json.loads(json.dumps(load_experiment(d).records)) == recs()


def test_report_of_an_empty_directory_is_a_user_error(tmp_path):
    with pytest.raises(UserError, match="no experiment results"):
        write_report(tmp_path)
    with pytest.raises(UserError, match="no such experiment directory"):
        write_report(tmp_path / "missing")


def test_paper_table_follows_the_data() -> None:
    from al.paper import TABLE3, TABLE4, TABLE5
    from al.report.paper_side import paper_rows, paper_table_for, side_by_side_rows
    from al.stats import compare_to_random

    assert paper_table_for("digits", "classification") is TABLE5 and paper_table_for("folder", None) is TABLE5
    assert paper_table_for("ade20k", "segmentation") is TABLE4
    assert paper_table_for("synthetic_streets", "segmentation") is TABLE3
    header, rows = paper_rows(TABLE4)
    assert header[-1] == RANDOM and rows[0][-1] == ("11.49 ± 0.14", None)      # random: uncoloured
    assert rows[0][1] == ("11.30 ± 0.01 ◆", 1.0) and rows[0][3] == ("10.30 ± 0.15", 0.0)
    # a run of ours with a pair the paper also has: the paper's difference beside our paired Δ
    r18 = "deeplabv3plus_resnet18"
    recs_ = [{"deployment": r18, "surrogate": s, "seed": i, "metric": "miou", "value": v}
             for s, vs in (("deeplabv3plus_xception65", [40.0, 41.0, 42.0]), (RANDOM, [40.0, 40.0, 40.0]))
             for i, v in enumerate(vs)]
    (row,) = side_by_side_rows(TABLE4, compare_to_random(aggregate(recs_)))
    assert row[:4] == ["Res-18", "Xc-65", "-1.19", "+1.00"] and row[5] == "tie"
