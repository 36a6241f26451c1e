"""Fleet simulation: shards merge to the unsharded run, counts add up, CLI end to end and bad inputs."""

from __future__ import annotations

import dataclasses
import gzip
import json
import shutil

import numpy as np
import pytest

from al.cli import main
from al.fleet.config import FleetConfig, Generation, PolicySpec, WorldSpec, load_fleet_config
from al.fleet.latency import ScoringLatency
from al.fleet.simulate import FIELDS, merge, simulate
from al.fleet.world import ScoredWorld

SMALL = """
name = "tiny"
fps = 10.0
hours_per_day = 0.02
frame_kb = 100.0
upload_mb_per_day = 0.4
days = 2
[latency]
source = "paper"
[world]
frames = 60
val_frames = 8
size = [16, 32]
drive_frames = 6
world_fps = 10.0
initial_labelled = 6
batch_size = 30
train = { epochs = 1, batch_size = 6, lr = 0.05 }
[[generation]]
name = "old"
profile = "tx2"
count = 7
surrogates = ["deeplabv3plus_resnet20"]
share = 0.05
[[generation]]
name = "new"
profile = "xavier_nx"
count = 4
surrogates = ["deeplabv3plus_resnet20"]
share = 0.05
[[policy]]
name = "threshold"
quantile = 0.8
dedup_distance = 0.01
[[policy]]
name = "window-topk"
window_s = 3.0
k = 1
budget_frames = 40
budget_period_s = 30.0
[evaluation]
deployment = "deeplabv3plus_resnet20"
label_budget = 4
seeds = [0, 1]
train = { epochs = 1, batch_size = 6, lr = 0.05 }
"""


def _fake_world(n=90, seed=0):
    rng = np.random.default_rng(seed)
    return ScoredWorld({"deeplabv3plus_resnet20": rng.random(n), "deeplabv3plus_mobilenetv3_small": rng.random(n)},
                       {"deeplabv3plus_resnet20": rng.random((n, 4)).astype(np.float32),
                        "deeplabv3plus_mobilenetv3_small": rng.random((n, 4)).astype(np.float32)},
                       np.repeat(np.arange(n // 9), 9), np.arange(5), {"frames": n, "metric": "miou"})


def _fake_config():
    gens = (Generation("old", "tx2", 13, ("deeplabv3plus_resnet20", "deeplabv3plus_mobilenetv3_small")),
            Generation("new", "xavier_nx", 5, ("deeplabv3plus_resnet20",)))
    pols = (PolicySpec("threshold", quantile=0.7, dedup_distance=0.3),
            PolicySpec("window-topk", window_s=2.0, k=2, budget_frames=30, budget_period_s=20.0),
            PolicySpec("threshold", quantile=0.5))
    return FleetConfig(generation=gens, policy=pols, fps=12.0, hours_per_day=0.01, days=2, frame_kb=100.0,
                       upload_mb_per_day=0.3, world=WorldSpec(world_fps=4.0))


def _latencies():
    return [ScoringLatency("old", "tx2", "deeplabv3plus_resnet20", "test", 200.0, 1.0, 200.0, 3.0),
            ScoringLatency("old", "tx2", "deeplabv3plus_mobilenetv3_small", "test", 500.0, 1.0, 500.0, 6.0),
            ScoringLatency("new", "xavier_nx", "deeplabv3plus_resnet20", "test", 10.0, 1.0, 10.0, 1.0)]


def test_sharded_and_merged_equals_unsharded():
    cfg, world = _fake_config(), _fake_world()
    whole = simulate(cfg, world, _latencies())
    parts = merge(simulate(cfg, world, _latencies(), shard=(i, 3)) for i in range(3))
    assert parts.devices == whole.devices == 18
    assert set(parts.variants) == set(whole.variants)
    for k, v in whole.variants.items():
        p = parts.variants[k]
        assert np.array_equal(v.device, p.device) and np.array_equal(v.day, p.day)
        for f in FIELDS:
            assert np.array_equal(v.fields[f], p.fields[f], equal_nan=True), (k, f)
        assert np.array_equal(v.uploaded_by, p.uploaded_by) and np.array_equal(v.passed_by, p.passed_by)


def test_counts_add_up():
    cfg, world = _fake_config(), _fake_world()
    res = simulate(cfg, world, _latencies())
    budget = cfg.upload_frames_per_day
    for k, v in res.variants.items():
        f = v.fields
        assert np.all(f["seen"] == cfg.frames_per_day)
        assert np.all(f["scored"] + f["skipped"] == f["seen"])
        assert np.all(f["uploaded"] <= np.minimum(f["kept"], budget)) and np.all(f["kept"] <= f["scored"])
        assert np.all(f["distinct"] <= f["uploaded"])
        assert np.all(f["bytes"] == f["uploaded"] * cfg.frame_kb * 1000)
        ok = np.isfinite(f["recall"])
        assert np.all((f["recall"][ok] >= 0) & (f["recall"][ok] <= 1))
        assert v.uploaded_by.sum() == f["distinct"].sum()
        assert v.device.size == (13 if k.startswith("g0") else 5) * cfg.days
    # scoring period 6 at 12 fps: 1 in 6 frames
    v = res.variants["g0|deeplabv3plus_mobilenetv3_small|p0"]
    assert np.all(v.fields["scored"] == -(-cfg.frames_per_day // 6))


def test_slower_scorer_never_scores_more():
    cfg, world = _fake_config(), _fake_world()
    res = simulate(cfg, world, _latencies())
    fast = res.variants["g0|deeplabv3plus_resnet20|p2"].fields["scored"]
    slow = res.variants["g0|deeplabv3plus_mobilenetv3_small|p2"].fields["scored"]
    assert np.all(slow < fast)


@pytest.fixture(scope="module")
def tiny_runs(tmp_path_factory):
    """One unsharded CLI run and one in two shards + merge, sharing the world."""
    base = tmp_path_factory.mktemp("fleet")
    cfg = base / "tiny.toml"
    cfg.write_text(SMALL)
    whole, sharded = base / "whole [x]", base / "sharded"
    assert main(["fleet", str(cfg), "--out", str(whole)]) == 0
    sharded.mkdir()
    for name in ("world.npz", "world.json", "experiment.json", "experiment.toml"):
        shutil.copy(whole / name, sharded / name)
    assert main(["fleet", str(cfg), "--out", str(sharded), "--shard", "1/2"]) == 0
    assert main(["fleet", str(cfg), "--out", str(sharded), "--shard", "0/2"]) == 0
    assert main(["fleet", str(cfg), "--out", str(sharded), "--merge"]) == 0
    return whole, sharded


def test_cli_sharded_merged_equals_unsharded(tiny_runs):
    whole, sharded = tiny_runs
    a = gzip.decompress((whole / "device_days.csv.gz").read_bytes())
    b = gzip.decompress((sharded / "device_days.csv.gz").read_bytes())
    assert a == b and a.count(b"\n") == 1 + (7 + 4) * 2 * 2
    sa = json.loads((whole / "summary.json").read_text())
    sb = json.loads((sharded / "summary.json").read_text())
    drop = lambda rs: [{k: v for k, v in r.items() if k != "seconds"} for r in rs]  # noqa: E731
    assert drop(sa) == drop(sb)
    ta = [json.loads(x) for x in (whole / "training.jsonl").read_text().splitlines()]
    tb = [json.loads(x) for x in (sharded / "training.jsonl").read_text().splitlines()]
    assert ta == tb and {r["method"] for r in ta} == {"fleet", "pool", "random"}


def test_cli_report_files(tiny_runs):
    whole, _ = tiny_runs
    for name in ("report.md", "summary.csv", "per_day.csv", "latency.json", "fleet_tradeoff.png", "DONE",
                 "training.csv", "timing.json"):
        assert (whole / name).is_file(), name
    text = (whole / "report.md").read_text()
    assert "recall" in text and "paper" in text and "fleet − random" in text
    lat = json.loads((whole / "latency.json").read_text())
    assert {x["source"] for x in lat} == {"paper"}
    assert all(x["period"] >= 1 for x in lat)


def test_cli_prints_recall_per_policy(tiny_runs, capsys):
    whole, _ = tiny_runs
    assert main(["fleet", str(whole / "experiment.toml"), "--out", str(whole)]) == 0
    err = capsys.readouterr().err
    assert err.count("recall ") == 2 * 2  # generations x policies


def test_preset_loads():
    cfg, _ = load_fleet_config("fleet_demo")
    assert cfg.name == "fleet_demo" and len(cfg.generation) == 2 and len(cfg.surrogates) == 2
    assert load_fleet_config("demo")[0] == cfg


@pytest.mark.parametrize("patch,needle", [
    ("fps = -1.0", "fps"), ("fps = nan", "fps"), ("bogus = 1", "unknown key"),
    ('[[generation]]\nname = "x"\nprofile = "nope"\ncount = 1\nsurrogates = ["deeplabv3plus_resnet20"]', "profile"),
    ('[[generation]]\nname = "x"\nprofile = "tx2"\ncount = 1\nsurrogates = ["resnet18"]', "classification"),
    ('[[policy]]\nname = "greedy"', "policy"), ("upload_mb_per_day = 0.01", "holds no"),
])
def test_bad_configs_are_one_line_errors(tmp_path, capsys, patch, needle):
    text = SMALL
    key = patch.split(" ")[0]
    if key in ("fps", "upload_mb_per_day"):
        text = "\n".join(ln for ln in text.splitlines() if not ln.startswith(key + " "))
        text = patch + "\n" + text
    elif patch.startswith("[["):
        text = text + "\n" + patch + "\n"
    else:
        text = patch + "\n" + text
    cfg = tmp_path / "bad.toml"
    cfg.write_text(text)
    out = tmp_path / "out"
    assert main(["fleet", str(cfg), "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error:") and needle in err[0]
    assert not out.exists()


@pytest.mark.parametrize("content", [b"\x00\xff\xfe garbage", b"name = 'x'\n[[generation]\n", b""])
def test_corrupt_config_files(tmp_path, capsys, content):
    cfg = tmp_path / "c.toml"
    cfg.write_bytes(content)
    assert main(["fleet", str(cfg), "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error:")


def test_bad_shard_and_merge(tmp_path, capsys):
    cfg = tmp_path / "t.toml"
    cfg.write_text(SMALL)
    for args, needle in ((["--shard", "2/2"], "0 <= i < n"), (["--shard", "x"], "i/n"),
                         (["--shard", "0/2", "--merge"], "not both")):
        assert main(["fleet", str(cfg), "--out", str(tmp_path / "o"), *args]) == 2
        assert needle in capsys.readouterr().err


def test_other_config_in_out_dir(tiny_runs, tmp_path, capsys):
    whole, _ = tiny_runs
    other = tmp_path / "other.toml"
    other.write_text(SMALL.replace("days = 2", "days = 1"))
    assert main(["fleet", str(other), "--out", str(whole)]) == 2
    assert "different config" in capsys.readouterr().err


def test_measured_latency_needs_file(tmp_path, capsys):
    cfg = tmp_path / "m.toml"
    cfg.write_text(SMALL.replace('source = "paper"', 'source = "measured"'))
    assert main(["fleet", str(cfg), "--out", str(tmp_path / "o")]) == 2
    assert "latency.measurements" in capsys.readouterr().err
    meas = tmp_path / "meas.jsonl"
    meas.write_bytes(b"\x00garbage\n")
    cfg.write_text(SMALL.replace('source = "paper"', f'source = "measured"\nmeasurements = "{meas}"'))
    assert main(["fleet", str(cfg), "--out", str(tmp_path / "o")]) == 2
    assert capsys.readouterr().err.startswith("error:")


def test_with_counts_scales_generations():
    from al.fleet.config import with_counts

    cfg = dataclasses.replace(_fake_config())
    assert [g.count for g in with_counts(cfg, 10).generation] == [130, 50]


def test_al_report_has_fleet_section(tiny_runs, tmp_path):
    from al.report import write_report

    whole, _ = tiny_runs
    shutil.copytree(whole, tmp_path / "fleet")
    written = write_report(tmp_path)
    text = written["markdown"].read_text()
    assert "## Fleet simulation (`al fleet`)" in text and "](fleet/fleet_tradeoff.png)" in text
    assert "fleet/report.md" in written["html"].read_text()


def test_merge_needs_complete_readable_shards(tiny_runs, tmp_path, capsys):
    _, sharded = tiny_runs
    d = tmp_path / "copy"
    shutil.copytree(sharded, d)
    cfg = d / "experiment.toml"
    (d / "shards" / "shard_1_of_2.npz").write_bytes(b"PK\x03\x04 truncated")
    assert main(["fleet", str(cfg), "--out", str(d), "--merge"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "shard_1_of_2.npz" in err[0]
    (d / "shards" / "shard_1_of_2.npz").unlink()
    assert main(["fleet", str(cfg), "--out", str(d), "--merge"]) == 2
    assert "no complete set of shards" in capsys.readouterr().err


def test_damaged_world_is_built_again(tmp_path):
    from al.fleet.world import load_world

    cfg, _ = load_fleet_config("fleet_demo")
    w = _fake_world()
    from al.fleet.world import save_world, world_key

    w.info["key"] = world_key(cfg)
    save_world(w, tmp_path)
    assert load_world(tmp_path, world_key(cfg)) is not None
    assert load_world(tmp_path, "other") is None
    data = (tmp_path / "world.npz").read_bytes()
    (tmp_path / "world.npz").write_bytes(data[: len(data) // 2])
    assert load_world(tmp_path, world_key(cfg)) is None
    (tmp_path / "world.npz").write_bytes(b"\x00" * 10)
    assert load_world(tmp_path, world_key(cfg)) is None


def test_one_device_fleet_writes_valid_json(tmp_path):
    """One device, one day: no spread to estimate; JSON has null, never NaN."""
    text = SMALL.replace("days = 2", "days = 1").replace("count = 7", "count = 1").replace("count = 4", "count = 1")
    text = text.replace("enabled = true", "").replace('[evaluation]\n', '[evaluation]\nenabled = false\n')
    cfg = tmp_path / "one.toml"
    cfg.write_text(text)
    out = tmp_path / "o"
    assert main(["fleet", str(cfg), "--out", str(out), "--json"]) == 0
    for name in ("summary.json", "latency.json", "timing.json"):
        json.loads((out / name).read_text(), parse_constant=lambda c, n=name: pytest.fail(f"{n} holds {c}"))
    assert all(r["recall_std"] is None for r in json.loads((out / "summary.json").read_text()))
