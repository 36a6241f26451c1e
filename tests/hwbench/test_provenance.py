"""hwbench.provenance: every measurement record, `--json` record and report says when, with what and
where it was made; checked against independent sources (git, importlib.metadata, socket, the clock)."""

from __future__ import annotations

import datetime as dt
import json
import socket
import subprocess
from importlib import metadata
from pathlib import Path

import pytest

import hwbench
from hwbench import provenance as P

ROOT = Path(__file__).resolve().parents[2]


def _parse(t: str) -> dt.datetime:
    assert t.endswith("Z") and len(t) == 20, t  # 2026-12-06T23:40:12Z
    return dt.datetime.strptime(t, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=dt.timezone.utc)


def check(prov: dict) -> None:
    """The fields of a provenance object, each against its own oracle."""
    assert set(P.FIELDS) <= set(prov)
    now = dt.datetime.now(dt.timezone.utc)
    assert abs((now - _parse(prov["time_utc"])).total_seconds()) < 3600  # made in this test session
    assert prov["tool"] == "hwbench" and prov["tool_version"] == hwbench.__version__
    assert prov["torch"] == metadata.version("torch")
    try:
        ort = metadata.version("onnxruntime")
    except metadata.PackageNotFoundError:
        ort = None
    assert prov["onnxruntime"] == ort
    assert prov["host"] == socket.gethostname()
    if (ROOT / ".git").exists():  # tests run from a checkout: its HEAD
        head = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "HEAD"], capture_output=True, text=True,
                              check=True).stdout.strip()
        assert prov["git_commit"] == head and isinstance(prov["git_dirty"], bool)


def test_provenance_fields():
    before = dt.datetime.now(dt.timezone.utc).replace(microsecond=0)
    prov = P.provenance()
    after = dt.datetime.now(dt.timezone.utc)
    assert before <= _parse(prov["time_utc"]) <= after
    check(prov)


def test_outside_a_checkout_there_is_no_commit(tmp_path, monkeypatch):
    monkeypatch.setattr(P, "_ROOT", tmp_path)
    P._static.cache_clear()
    try:
        prov = P.provenance()
        assert prov["git_commit"] is None and prov["git_dirty"] is None
    finally:
        P._static.cache_clear()


def test_provenance_line_names_every_part():
    prov = {"time_utc": "2026-01-02T03:04:05Z", "tool": "hwbench", "tool_version": "1.2", "git_commit": "a" * 40,
            "git_dirty": True, "python": "3.12.1", "torch": "2.13.0", "onnxruntime": None, "host": "rig",
            "platform": "Linux 6 x86_64"}
    assert P.provenance_line(prov) == ("generated 2026-01-02T03:04:05Z by hwbench 1.2 (commit aaaaaaaaaaaa, local "
                                       "changes) · Python 3.12.1 · torch 2.13.0 · onnxruntime not installed · "
                                       "host rig (Linux 6 x86_64)")


def test_measurement_record_carries_provenance():
    from hwbench.latency.record import Measurement

    rec = Measurement.from_samples([1.0, 2.0, 3.0], model="m", device="d", backend="torch", precision="fp32",
                                   input=[1, 3, 8, 8], warmup=1)
    check(rec.to_dict()["provenance"])
    again = Measurement.from_dict(json.loads(json.dumps(rec.to_dict())))
    assert again.provenance == rec.provenance  # kept through a file, not re-stamped
    old = {k: v for k, v in rec.to_dict().items() if k != "provenance"}
    assert Measurement.from_dict(old).provenance == {}  # a record from before: not dated now


def test_json_output_carries_provenance(capsys):
    from hwbench.cli import main

    assert main(["count", "deeplabv3plus_resnet20", "--input", "64x128", "--json"]) == 0
    (rec,) = json.loads(capsys.readouterr().out)
    check(rec["provenance"])
    assert main(["profiles", "--json"]) == 0
    recs = json.loads(capsys.readouterr().out)
    assert recs and all(r["provenance"]["time_utc"] for r in recs)


def test_report_header_and_marker_carry_provenance(tmp_path):
    from hwbench.report import report

    out = tmp_path / "r"
    report(out, models=["deeplabv3plus_resnet20"], devices=["tx2"], input_shape=(1, 3, 64, 128))
    marker = json.loads((out / ".hwbench-report.json").read_text())
    check(marker["provenance"])
    md = (out / "report.md").read_text().splitlines()
    assert md[0].startswith("# hwbench report") and md[2] == f"*{P.provenance_line(marker['provenance'])}*"
    html = (out / "report.html").read_text()
    head = html.split("</header>")[0]
    for k in P.FIELDS:
        assert f"<dt>{k}</dt>" in head
    assert marker["provenance"]["time_utc"] in head and marker["provenance"]["host"] in head


@pytest.mark.parametrize("fmt", ["markdown", "html"])
def test_al_report_header_carries_provenance(tmp_path, fmt):
    from al.report import write_report
    from hwbench.io import atomic_write_json, write_jsonl

    d = tmp_path / "exp"
    write_jsonl(d / "records.jsonl", [{"deployment": "a", "surrogate": s, "seed": i, "metric": "miou", "value": v}
                                      for s, vs in (("a", [1.0, 2.0]), ("random", [1.0, 1.5])) for i, v in enumerate(vs)])
    run_prov = {"time_utc": "2026-01-02T03:04:05Z", "tool": "hwbench", "tool_version": "0.0.9", "host": "trainer"}
    atomic_write_json(d / "experiment.json", {"name": "t", "provenance": run_prov})
    text = write_report(d)[fmt].read_text()
    header = text.split("</header>")[0] if fmt == "html" else "\n".join(text.splitlines()[:3])
    assert "generated " in header and f"hwbench {hwbench.__version__}" in header and socket.gethostname() in header
    # the experiment's own provenance (when it was run, where) is in the run-info section
    assert "experiment run: generated 2026-01-02T03:04:05Z by hwbench 0.0.9" in text and "host trainer" in text
