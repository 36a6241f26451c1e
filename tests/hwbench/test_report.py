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
        return f"## Extra\n\n{len(ctx.counts)} models.\n\n| a | b |\n|---|---|\n| 1 | 2 |\n", [path]

    paths = report(out, extra_sections=[extra])
    return root, out, paths


def test_only_out_dir_is_written(written):
    root, out, paths = written
    assert [p.name for p in root.iterdir()] == ["out"]
    names = sorted(p.name for p in out.iterdir())
    assert names == sorted([p.name for p in paths] + [".hwbench-report.json"])  # the marker, written last
    assert {"report.md", "report.html", "table2.csv", "latency.csv", "counts.csv", "deploy.csv", "latency_heatmap.png",
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
    html = (out / "report.html").read_text()
    for needle in ("Table 2", "139.8", "MACs vs OPs", "181.8", "60.3", "fp16/gpu", "int8/gpu+dla", "<h2>Extra</h2>",
                   "<td>2</td>"):  # the extension's markdown (and its table) too
        assert needle in html, needle
    assert html.count("<img ") == html.count('<img src="data:image/png;base64,') == 2  # embedded, no file links
    dep = pd.read_csv(out / "deploy.csv")
    assert set(dep["mode"]) == {"paper", "roofline"} and set(dep["share"]) == {1.0, 0.3}


def test_cli_report(tmp_path, capsys):
    from hwbench.cli import main

    assert main(["report", "--out", str(tmp_path / "r"), "--input", "256x512", "--device", "tx2"]) == 0
    assert str(tmp_path / "r" / "report.md") in capsys.readouterr().out.replace("\n", "")
    assert main(["report", "--out", str(tmp_path / "x"), "--input", "256"]) == 2
    assert not (tmp_path / "x").exists()


def _snapshot(d):
    return {p.name: p.read_bytes() for p in sorted(d.iterdir())}


def test_report_killed_part_way_leaves_the_previous_report_whole(tmp_path):
    """An interrupt (here: in an extra section, after the CSVs and PNGs were written) keeps the old report
    byte for byte and leaves no temporary directory; the exported-ONNX work dir goes with it."""
    out = tmp_path / "rep"
    report(out, devices=["tx2"], input_shape=(1, 3, 64, 128))
    before = _snapshot(out)

    def killed(ctx):
        (ctx.out_dir / ".onnx-x").mkdir()  # what run_measurements keeps its exported files in
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        report(out, devices=["tx2", "orin_nx"], input_shape=(1, 3, 96, 192), extra_sections=[killed])
    assert _snapshot(out) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["rep"]


def test_leftovers_of_a_killed_swap_are_recovered(tmp_path):
    """SIGKILL between the two renames of a swap: the old report sits in `.rep.old-PID-*` and the new one
    in `.rep.tmp-PID-*`; the next run puts the old one back first, then replaces it whole."""
    from hwbench.io import recover_dir

    out = tmp_path / "rep"
    report(out, devices=["tx2"], input_shape=(1, 3, 64, 128))
    before = _snapshot(out)
    dead = 2**22 + 12345  # above the default pid_max: no such process
    out.rename(tmp_path / f".rep.old-{dead}-abc")
    (tmp_path / f".rep.tmp-{dead}-def").mkdir()
    (tmp_path / f".rep.tmp-{dead}-def" / "report.md").write_text("half")
    recover_dir(out)
    assert _snapshot(out) == before and sorted(p.name for p in tmp_path.iterdir()) == ["rep"]
    report(out, devices=["orin_nx"], input_shape=(1, 3, 64, 128))
    assert "orin_nx" in (out / "table2.csv").read_text() and "tx2" not in (out / "table2.csv").read_text()


def test_report_refuses_a_directory_with_other_files(tmp_path):
    from hwbench.errors import UserError

    (tmp_path / "notes.txt").write_text("mine")
    with pytest.raises(UserError, match="not part of a report"):
        report(tmp_path, devices=["tx2"], input_shape=(1, 3, 64, 128))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notes.txt"]



class _Killed(BaseException):
    """Stands for SIGKILL: nothing after it runs (the cleanup is disabled while it propagates)."""


def test_kill_at_every_write_point_leaves_old_or_new_whole(tmp_path, monkeypatch):
    """Each file of a report is one `os.replace` of a temporary file: die just before
    one of them (no cleanup, as after kill -9), then recover as the next run does. The directory is then the
    old report or the new one, each whole (its files agree on the devices and match its marker), and no
    temporary directory is left."""
    import json
    import os

    import hwbench.io as hio

    def run(out, devices):
        report(out, models=["deeplabv3plus_resnet20"], devices=devices, input_shape=(1, 3, 64, 128))

    real_replace, real_rmtree = os.replace, hio.shutil.rmtree
    calls = [0]

    def counting(src, dst):
        calls[0] += 1
        return real_replace(src, dst)

    monkeypatch.setattr(hio.os, "replace", counting)
    run(tmp_path / "probe", ["orin_nx"])
    points = calls[0]  # the files of the report (marker included); the swap itself is one atomic exchange
    assert points >= 8  # (test_atomic_dir kills around the swap with a real SIGKILL)
    # the first file, one in the middle, the last two (the marker is written last)
    for k in sorted({1, points // 2, points - 1, points}):
        out = tmp_path / f"rep{k}"
        run(out, ["tx2"])
        calls[0] = 0

        def dying(src, dst, k=k):
            calls[0] += 1
            if calls[0] == k:
                raise _Killed
            return real_replace(src, dst)

        monkeypatch.setattr(hio.os, "replace", dying)
        monkeypatch.setattr(hio.shutil, "rmtree", lambda *a, **kw: None)
        with pytest.raises(_Killed):
            run(out, ["orin_nx"])
        monkeypatch.setattr(hio.os, "replace", counting)
        monkeypatch.setattr(hio.shutil, "rmtree", real_rmtree)
        hio.recover_dir(out)
        marker = json.loads((out / ".hwbench-report.json").read_text())
        assert sorted(p.name for p in out.iterdir()) == sorted([*marker["files"], ".hwbench-report.json"])
        devices = [set(pd.read_csv(out / n)["device"]) for n in ("table2.csv", "latency.csv", "deploy.csv")]
        assert devices in ([{"tx2"}] * 3, [{"orin_nx"}] * 3), (k, devices)
        assert not [p.name for p in tmp_path.iterdir() if p.name.startswith(".")], k


def test_models_sharing_a_paper_label_are_told_apart(tmp_path, monkeypatch):
    """resnet18 and deeplabv3plus_resnet18 are both 'Res-18' in the paper: the report's tables, CSVs and
    figure ticks name them by their full names, as `hwbench latency` does; MNV3 keeps its paper label."""
    import hwbench.report.figures as figures
    from hwbench.cli import main

    models = ["resnet18", "deeplabv3plus_resnet18", "deeplabv3plus_mobilenetv3_small"]
    want = ["resnet18", "deeplabv3plus_resnet18", "MNV3"]
    ticks = []  # per heatmap panel: its y tick labels (rows = models; shared y axes show them once)
    real = figures.png_bytes

    def spy(fig):
        for ax in fig.axes:
            if ax.images:
                fmt = ax.yaxis.get_major_formatter()
                ticks.append([fmt(v, i) for i, v in enumerate(ax.get_yticks())])
        return real(fig)

    monkeypatch.setattr(figures, "png_bytes", spy)
    out = tmp_path / "r"
    assert main(["report", "--out", str(out), "--models", *models, "--input", "128x256", "--device", "tx2"]) == 0

    tables, cur = [], None
    for line in (out / "report.md").read_text().splitlines():
        if line.startswith("|"):
            cells = [c.strip() for c in line.strip("|").split("|")]
            if cur is None:
                cur = [cells]
                tables.append(cur)
            elif not set(cells[0]) <= set("-: "):
                cur.append(cells)
        else:
            cur = None
    by_model = [t for t in tables if t[0][0] == "model"]
    assert len(by_model) >= 3  # a device's modes, backbone/head, deployability
    for t in by_model:
        assert [row[0] for row in t[1:]] == want, t
    (table2,) = [t for t in tables if t[0][0] == "device (TOPS)"]
    assert table2[0][1:] == want
    assert list(pd.read_csv(out / "counts.csv")["label"]) == want
    assert set(pd.read_csv(out / "table2.csv")["label"]) == set(want)
    assert len(ticks) >= 3 and all(t == want for t in ticks), ticks  # 3 latency panels, then the deploy ones
