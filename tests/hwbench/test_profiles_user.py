"""Profiles a user writes: the template, `hwbench profiles --check` listing every problem at once, the
HWBENCH_PROFILES search path in front of the shipped profiles, sources only for the figures modes use, and the
newest Jetson profiles."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from hwbench.cli import main
from hwbench.errors import UserError
from hwbench.profiles import check_profile, list_profiles, load_profile, shipped_dir

MINIMAL = """name = "mine"
mem_bw_gbps = 50.0
memory_gb = 4.0

[sources]
mem_bw_gbps = "my data sheet"
memory_gb = "my data sheet"

[[peak]]
precision = "fp16"
engine = "gpu"
tops = 5.0
source = "my data sheet"
"""


def test_minimal_profile_needs_no_year_generation_or_their_sources(tmp_path: Path) -> None:
    p = tmp_path / "mine.toml"
    p.write_text(MINIMAL)
    prof = load_profile(p)
    assert (prof.name, prof.display_name, prof.year, prof.generation) == ("mine", "mine", None, "")
    problems, _ = check_profile(p)
    assert problems == []


def test_template_is_valid_and_documents_every_field() -> None:
    import dataclasses

    from hwbench.profiles import DeviceProfile, Peak

    template = shipped_dir() / "TEMPLATE.toml"
    assert check_profile(template)[0] == []
    text = template.read_text()
    for f in [*dataclasses.fields(DeviceProfile), *dataclasses.fields(Peak)]:
        if f.name != "measured":  # written by `hwbench profiles host`, not by hand
            assert f"{f.name} =" in text or f"# {f.name} =" in text, f.name
    assert "TEMPLATE" not in list_profiles()  # a template, not a device


def test_check_lists_every_problem_in_one_run(tmp_path: Path, capsys) -> None:
    broken = tmp_path / "broken.toml"
    broken.write_text('name = "other"\nyear = "new"\nmem_bw_gbps = -1.0\nflavour = 1\n[sources]\n'
                      '[[peak]]\nprecision = "fp8"\nengine = "gpu"\ntops = 1.0\nsource = ""\n'
                      '[[peak]]\nprecision = "fp16"\nengine = "dla"\ntops = 0.0\nsource = ""\n')
    good = tmp_path / "mine.toml"
    good.write_text(MINIMAL)
    assert main(["profiles", "--check", str(good), str(broken)]) == 2
    out = capsys.readouterr().out
    assert f"{good}: ok" in out
    expected = ["unknown key(s) 'flavour'", "missing key(s) 'memory_gb'", "year: expected int",
                "peak[0].precision: 'fp8' is not one of", "name 'other' differs from the file name",
                "mem_bw_gbps must be a positive", "tops must be a positive", "has an empty source",
                "uses engine 'dla' but dla_count is 0", "mem_bw_gbps has no source"]
    for needle in expected:
        assert needle in out, needle
    assert "8 problem(s)" in out or f"{len(expected)} problem(s)" in out
    # a command that loads it names the first problem and how to see them all, in one line
    assert main(["latency", "resnet20", "--device", str(broken)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "more problem(s): `hwbench profiles --check" in err[0]


def test_search_path_in_front_of_shipped(tmp_path: Path, monkeypatch, capsys) -> None:
    user = tmp_path / "user"
    user.mkdir()
    (user / "mine.toml").write_text(MINIMAL)
    (user / "tx2.toml").write_text(MINIMAL.replace('name = "mine"', 'name = "tx2"'))  # shadows the shipped tx2
    monkeypatch.setenv("HWBENCH_PROFILES", str(user))
    assert main(["profiles", "--json"]) == 0
    rows = {r["name"]: r for r in json.loads(capsys.readouterr().out)}
    assert {"mine", "tx2", "xavier_nx", "orin_nx", "agx_thor"} <= set(rows)  # the shipped ones still listed
    assert rows["tx2"]["origin"] == f"user: {user / 'tx2.toml'}" and rows["tx2"]["mem_bw_gbps"] == 50.0
    assert rows["xavier_nx"]["origin"] == "shipped"
    assert load_profile("tx2").mem_bw_gbps == 50.0  # the user's file wins
    assert main(["deploy", "resnet20", "--device", "mine", "xavier_nx", "--fps", "30", "--json"]) == 0
    assert [r["device"] for r in json.loads(capsys.readouterr().out)] == ["mine", "xavier_nx"]


def test_profiles_env_must_name_directories(tmp_path: Path, monkeypatch, capsys) -> None:
    monkeypatch.setenv("HWBENCH_PROFILES", str(tmp_path / "nope"))
    assert main(["profiles"]) == 2
    assert "HWBENCH_PROFILES names" in capsys.readouterr().err
    monkeypatch.setenv("HWBENCH_PROFILES", str(tmp_path))  # empty: the shipped profiles remain
    assert "tx2" in list_profiles()


def test_every_device_flag_documents_files(capsys) -> None:
    for cmd in ("latency", "deploy", "report", "measure"):
        with pytest.raises(SystemExit):
            main([cmd, "--help"])
        assert "FILE.toml" in capsys.readouterr().out, cmd


@pytest.mark.parametrize(("name", "sparse_int8_tops", "bw"), [
    ("agx_thor", None, 273.0), ("orin_nano_super", 67.0, 102.0), ("orin_nx_super", 157.0, 102.4)])
def test_newest_jetsons(name: str, sparse_int8_tops, bw: float) -> None:
    prof = load_profile(name)
    assert prof.mem_bw_gbps == bw and prof.peak_tops("fp16") > 0
    assert all(p.source.strip() for p in prof.peak) and all(prof.sources.get(k) for k in ("mem_bw_gbps", "memory_gb"))
    if sparse_int8_tops is not None:
        engine = "gpu" if name == "orin_nano_super" else "gpu+dla"
        assert prof.peak_tops("int8", engine, sparse=True) == sparse_int8_tops
        assert prof.peak_tops("int8", engine) == sparse_int8_tops / 2  # dense = sparse / 2, derived
    with pytest.raises(UserError):
        load_profile(name).peak_tops("int8", "dla")
