"""hwbench.report: files only in --out, Table 2 beside the published numbers, the extension hook."""

from __future__ import annotations

import pandas as pd
import pytest

from hwbench.report import PAPER_LATENCY_MS, report


@pytest.fixture(scope="module")
def written(tmp_path_factory):
    root = tmp_path_factory.mktemp("rep")
    out = root / "out"

    def extra(ctx):
        path = ctx.out_dir / "extra.csv"
        path.write_text("a\n1\n")
        return f"## Extra\n\n{len(ctx.counts)} models.\n", [path]

    paths = report(out, extra_sections=[extra])
    return root, out, paths


def test_only_out_dir_is_written(written):
    root, out, paths = written
    assert [p.name for p in root.iterdir()] == ["out"]
    names = sorted(p.name for p in out.iterdir())
    assert names == sorted(p.name for p in paths)
    assert {"report.md", "table2.csv", "latency.csv", "counts.csv", "deploy.csv", "latency_heatmap.png",
            "deploy_heatmap.png", "extra.csv"} <= set(names)
    for png in ("latency_heatmap.png", "deploy_heatmap.png"):
        assert (out / png).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_table2_beside_published(written):
    _, out, _ = written
    t2 = pd.read_csv(out / "table2.csv")
    assert len(t2) == 15
    for _, row in t2.iterrows():
        assert row["paper_latency_ms"] == PAPER_LATENCY_MS[row["device"]][row["model"]]
        if row["model"] != "deeplabv3plus_resnet20":
            assert abs(row["diff_pct"]) < 2.0          # rounding of the published 0.1 ms included
    md = (out / "report.md").read_text()
    for needle in ("Table 2", "139.8", "MACs vs OPs", "181.8", "60.3", "fp16/gpu", "int8/gpu+dla", "## Extra"):
        assert needle in md
    dep = pd.read_csv(out / "deploy.csv")
    assert set(dep["mode"]) == {"paper", "roofline"} and set(dep["share"]) == {1.0, 0.3}


def test_cli_report(tmp_path, capsys):
    from hwbench.cli import main

    assert main(["report", "--out", str(tmp_path / "r"), "--input", "256x512", "--device", "tx2"]) == 0
    assert str(tmp_path / "r" / "report.md") in capsys.readouterr().out.replace("\n", "")
    assert main(["report", "--out", str(tmp_path / "x"), "--input", "256"]) == 2
    assert not (tmp_path / "x").exists()
