"""Corruption suite (issue 19), part 2: a fleet run (its world, a shard), a device spool, the ingested
candidates (ingested again, and labelled) and the count cache, each file damaged four ways
(`tests/al/corruption.py`), then reused: refused in one line naming the file, or repaired to the
undamaged result. Nothing damaged is used."""

from __future__ import annotations

import gzip
import json
import shutil
from pathlib import Path

import pytest

from al.cli import main
from hwbench.cli import main as hw_main
from tests.al.corruption import DAMAGES, damage_or_skip, drop_timing, judge, record
from tests.al.fleet.test_fleet_run import SMALL
from tests.al.fleet.test_ingest_integrity import make_spool
from tests.al.fleet.test_label_integrity import make_oracle

# ------------------------------------------------------------------------------------------------ fleet
FLEET_FILES = ("world.npz", "world.json", "shards/shard_0_of_2.npz", "shards/shard_0_of_2.json")


def fleet_outcome(d: Path) -> dict:
    return {"summary": drop_timing(json.loads((d / "summary.json").read_text())),
            "training": drop_timing([json.loads(x) for x in (d / "training.jsonl").read_text().splitlines()]),
            "device_days": gzip.decompress((d / "device_days.csv.gz").read_bytes())}


def _fleet_dir(cfg: Path, out: Path) -> None:
    """A whole run, then (sharing its world) the two shards of a sharded one: both kinds of file in one."""
    assert main(["fleet", str(cfg), "--out", str(out)]) == 0
    for i in (0, 1):
        assert main(["fleet", str(cfg), "--out", str(out), "--shard", f"{i}/2"]) == 0


@pytest.fixture(scope="module")
def fleets(tmp_path_factory) -> tuple[Path, Path, Path, dict, dict]:
    root = tmp_path_factory.mktemp("fleets")
    cfg = root / "tiny.toml"
    cfg.write_text(SMALL)
    other_cfg = root / "other.toml"
    other_cfg.write_text(SMALL.replace('name = "tiny"', 'name = "tiny"\nseed = 1'))
    _fleet_dir(cfg, root / "ref")
    _fleet_dir(other_cfg, root / "other")
    whole = fleet_outcome(root / "ref")
    merged = root / "merged"
    shutil.copytree(root / "ref", merged)
    assert main(["fleet", str(cfg), "--out", str(merged), "--merge"]) == 0
    return cfg, root / "ref", root / "other", whole, fleet_outcome(merged)


@pytest.mark.parametrize("dmg", DAMAGES)
@pytest.mark.parametrize("kind", FLEET_FILES)
def test_damaged_fleet_file(kind: str, dmg: str, fleets, tmp_path: Path, capsys) -> None:
    cfg, ref, other, whole, merged = fleets
    d = tmp_path / "fleet"
    shutil.copytree(ref, d)
    damage_or_skip(d / kind, dmg, other / kind, what=kind)
    capsys.readouterr()
    shard = kind.startswith("shards/")
    rc = main(["fleet", str(cfg), "--out", str(d), *(["--merge"] if shard else [])])
    err = capsys.readouterr().err
    same = rc == 0 and fleet_outcome(d) == (merged if shard else whole)
    outcome = judge(rc, err, d / kind, same)
    record("fleet run (al fleet)", kind.replace("0_of_2", "<i>_of_<n>"), dmg, outcome, err)
    assert outcome != "USED", (kind, dmg, rc, err)


# ---------------------------------------------------------------------------------- spools, candidates
SPOOL_FILES = ("manifest.jsonl", "state.json", "frames/car-a_00003.bin")
CANDIDATE_FILES = ("candidates/manifest.jsonl", "candidates/to_label.txt", "candidates/ingest.json", "FRAME")


def cand_outcome(run: Path) -> dict:
    c = run / "candidates"
    rows = [json.loads(x) for x in (c / "manifest.jsonl").read_text().splitlines()]
    return {"manifest": rows, "order": (c / "to_label.txt").read_text(),
            "frames": {r["file"]: (c / r["file"]).read_bytes() for r in rows}}


@pytest.fixture(scope="module")
def spools(tmp_path_factory) -> tuple[Path, Path, Path, Path, dict]:
    root = tmp_path_factory.mktemp("spools")
    a = make_spool(root / "a", "car-a", 12, 1)
    b = make_spool(root / "b", "car-a", 12, 2)  # another spool of the same device: same file names
    assert main(["ingest", str(a), "--out", str(root / "run_a")]) == 0
    assert main(["ingest", str(b), "--out", str(root / "run_b")]) == 0
    return a, b, root / "run_a", root / "run_b", cand_outcome(root / "run_a")


@pytest.mark.parametrize("dmg", DAMAGES)
@pytest.mark.parametrize("kind", SPOOL_FILES)
def test_damaged_spool_file(kind: str, dmg: str, spools, tmp_path: Path, capsys) -> None:
    a, b, _, _, want = spools
    s = tmp_path / "spool"
    shutil.copytree(a, s)
    damage_or_skip(s / kind, dmg, b / kind, what=kind)
    capsys.readouterr()
    rc = main(["ingest", str(s), "--out", str(tmp_path / "run")])
    err = capsys.readouterr().err
    same = rc == 0 and cand_outcome(tmp_path / "run") == want
    outcome = judge(rc, err, s / kind, same)
    record("device spool (al ingest)", kind.replace("car-a_00003", "<frame>"), dmg, outcome, err)
    assert outcome != "USED", (kind, dmg, rc, err)


@pytest.mark.parametrize("dmg", DAMAGES)
@pytest.mark.parametrize("kind", CANDIDATE_FILES)
def test_damaged_candidates_file(kind: str, dmg: str, spools, tmp_path: Path, capsys) -> None:
    """Damage in RUN_DIR/candidates, then the same spool ingested again (the usual re-ingest)."""
    a, _, run_a, run_b, want = spools
    d = tmp_path / "run"
    shutil.copytree(run_a, d)
    if kind == "FRAME":  # a frame of the candidates (content-addressed names: another run's frame is renamed)
        first = json.loads((d / "candidates" / "manifest.jsonl").read_text().splitlines()[0])["file"]
        other_first = json.loads((run_b / "candidates" / "manifest.jsonl").read_text().splitlines()[0])["file"]
        target, other = d / "candidates" / first, run_b / "candidates" / other_first
    else:
        target, other = d / kind, run_b / kind
    damage_or_skip(target, dmg, other, what=kind)
    capsys.readouterr()
    rc = main(["ingest", str(a), "--out", str(d)])
    err = capsys.readouterr().err
    same = rc == 0 and cand_outcome(d) == want
    outcome = judge(rc, err, target, same)
    record("candidates (al ingest output)", "candidates/frames/<frame>" if kind == "FRAME" else kind, dmg, outcome,
           err)
    assert outcome != "USED", (kind, dmg, rc, err)


def label_outcome(out: Path) -> dict:
    return {p.relative_to(out).as_posix(): p.read_bytes() for p in sorted(out.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def png_candidates(tmp_path_factory) -> tuple[Path, Path, Path, dict]:
    """Two runs' candidates of PNG frames, an oracle holding the first's frames, and its labelled output."""
    root = tmp_path_factory.mktemp("png_candidates")
    a = make_spool(root / "a", "car-a", 6, 1, png=True)
    b = make_spool(root / "b", "car-a", 6, 2, png=True)
    make_oracle(root / "oracle", a, 5)
    for s, run in ((a, "run_a"), (b, "run_b")):
        assert main(["ingest", str(s), "--out", str(root / run)]) == 0
    assert main(["label", str(root / "run_a" / "candidates"), "--oracle", str(root / "oracle"),
                 "--out", str(root / "ref")]) == 0
    return root / "run_a", root / "run_b", root / "oracle", label_outcome(root / "ref")


@pytest.mark.parametrize("dmg", DAMAGES)
@pytest.mark.parametrize("kind", CANDIDATE_FILES)
def test_damaged_candidates_file_labelled(kind: str, dmg: str, png_candidates, tmp_path: Path, capsys) -> None:
    """Damage in RUN_DIR/candidates, then `al label` (an oracle) reads them."""
    run_a, run_b, oracle, want = png_candidates
    d = tmp_path / "run"
    shutil.copytree(run_a, d)
    if kind == "FRAME":
        first = json.loads((d / "candidates" / "manifest.jsonl").read_text().splitlines()[0])["file"]
        other_first = json.loads((run_b / "candidates" / "manifest.jsonl").read_text().splitlines()[0])["file"]
        target, other = d / "candidates" / first, run_b / "candidates" / other_first
    else:
        target, other = d / kind, run_b / kind
    damage_or_skip(target, dmg, other, what=kind)
    capsys.readouterr()
    out = tmp_path / "labelled"
    rc = main(["label", str(d / "candidates"), "--oracle", str(oracle), "--out", str(out)])
    err = capsys.readouterr().err
    same = rc == 0 and label_outcome(out) == want
    outcome = judge(rc, err, target, same)
    record("candidates (al label input)", "candidates/frames/<frame>.png" if kind == "FRAME" else kind, dmg,
           outcome, err)
    assert outcome != "USED", (kind, dmg, rc, err)


# ------------------------------------------------------------------------------------------- count cache
COUNT = ["count", "deeplabv3plus_resnet20", "--input", "32x64", "--json"]


@pytest.fixture(scope="module")
def counts(tmp_path_factory) -> tuple[Path, Path, str]:
    import os

    root = tmp_path_factory.mktemp("count_cache")
    old = os.environ.get("HWBENCH_CACHE_DIR")
    try:
        os.environ["HWBENCH_CACHE_DIR"] = str(root / "ref")
        assert hw_main(COUNT) == 0
        os.environ["HWBENCH_CACHE_DIR"] = str(root / "other")
        assert hw_main(["count", "deeplabv3plus_resnet20", "--input", "64x64", "--json"]) == 0
    finally:
        if old is None:
            os.environ.pop("HWBENCH_CACHE_DIR", None)
        else:
            os.environ["HWBENCH_CACHE_DIR"] = old
    return root / "ref", root / "other", ""


@pytest.mark.parametrize("dmg", DAMAGES)
def test_damaged_count_cache_entry(dmg: str, counts, tmp_path: Path, monkeypatch, capsys) -> None:
    ref, other, _ = counts
    d = tmp_path / "cache"
    shutil.copytree(ref, d)
    (entry,) = (d / "count").glob("*.json")
    (other_entry,) = (other / "count").glob("*.json")
    monkeypatch.setenv("HWBENCH_CACHE_DIR", str(d))
    monkeypatch.setenv("HWBENCH_NO_CACHE", "1")
    capsys.readouterr()
    assert hw_main(COUNT) == 0
    want = drop_timing(json.loads(capsys.readouterr().out))  # counted afresh, no cache (its time stamp aside)
    monkeypatch.delenv("HWBENCH_NO_CACHE")
    damage_or_skip(entry, dmg, other_entry, what="a count cache entry")
    rc = hw_main(COUNT)
    out, err = capsys.readouterr()
    outcome = judge(rc, err, entry, rc == 0 and drop_timing(json.loads(out)) == want)
    record("count cache (hwbench count)", "count/<key>.json", dmg, outcome, err)
    assert outcome != "USED", (dmg, rc, err)
