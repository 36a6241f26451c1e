"""hwbench.profiles: strict loading, sourced figures, lookup errors, the measured host profile."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import tomllib

import hwbench.profiles as profiles
from hwbench.errors import UserError
from hwbench.profiles import PAPER_DEVICES, list_profiles, load_profile

FILE_PROFILES = ("agx_orin", "agx_xavier", "orin_nano", "orin_nx", "tx2", "xavier_nx")



def _write(tmp_path: Path, text: str, name: str = "toy") -> Path:
    p = tmp_path / f"{name}.toml"
    p.write_text(text)
    return p


def test_all_profiles_load_with_sources():
    assert set(FILE_PROFILES) <= set(list_profiles()) and list_profiles()[-1] == "host"
    for name in FILE_PROFILES:
        p = load_profile(name)
        assert p.name == name and p.mem_bw_gbps > 0 and p.memory_gb > 0 and p.peak
        for e in p.peak:
            assert e.source.strip()
            if e.derived:  # derived figures carry their formula
                assert e.source.startswith("derived") and any(s in e.source for s in ("=", "/", "REFERENCES.md"))


def test_paper_devices():
    tops = {d: load_profile(d).paper_tops for d in PAPER_DEVICES}
    assert tops == {"tx2": 1.3, "xavier_nx": 21.0, "orin_nx": 50.0}
    assert load_profile("tx2").paper_precision == "fp16"
    orin = load_profile("orin_nx")
    assert (orin.paper_precision, orin.paper_engine) == ("int8", "gpu+dla")
    assert orin.peak_tops("int8", "gpu+dla") == 50.0 and orin.peak_tops("int8", "gpu+dla", sparse=True) == 100.0
    # derived arithmetic from REFERENCES.md figures
    assert orin.peak_tops("int8", "dla") == orin.peak_tops("int8", "gpu+dla") - orin.peak_tops("int8", "gpu")
    assert load_profile("tx2").peak_tops("fp32") == pytest.approx(256 * 2 * 1.30e9 / 1e12)


def test_missing_figure_is_an_error():
    with pytest.raises(UserError, match="tx2.*no int8/gpu.*has: fp16/gpu"):
        load_profile("tx2").peak_tops("int8")
    with pytest.raises(UserError, match="no DLA"):
        load_profile("orin_nano").peak_tops("int8", "dla")


def test_unknown_name_lists_valid_ones():
    with pytest.raises(UserError, match="unknown device 'tx3'; known: .*orin_nx.*tx2"):
        load_profile("tx3")


def test_load_by_path_and_env_search_path(tmp_path, monkeypatch, toy_profile):
    path = _write(tmp_path, toy_profile)
    assert load_profile(path).name == "toy"
    shipped = list_profiles()
    monkeypatch.setenv("HWBENCH_PROFILES", str(tmp_path))  # in front of the shipped profiles, not instead
    assert list_profiles() == sorted([*shipped[:-1], "toy"]) + ["host"]
    assert load_profile("toy").peak_tops("fp16") == 1.0 and load_profile("tx2").name == "tx2"


@pytest.mark.parametrize("edit,needle", [
    (lambda t: t.replace('power_mode = "5W"', 'power_mode = "5W"\nflavour = "x"'), "unknown key"),
    (lambda t: t.replace("tops = 1.0", "tops = -1.0"), "must be a positive"),
    (lambda t: t.replace("tops = 1.0", "tops = 0"), "must be a positive"),
    (lambda t: t.replace("mem_bw_gbps = 10.0", "mem_bw_gbps = 0.0"), "must be a positive"),
    (lambda t: t.replace('mem_bw_gbps = "s"\n', ""), "mem_bw_gbps has no source"),
    (lambda t: t.replace('precision = "fp16"', 'precision = "fp8"'), "not one of"),
    (lambda t: t.replace('engine = "gpu"', 'engine = "dla"'), "dla_count is 0"),
    (lambda t: t.replace('source = "s"\n', 'source = "s"\nspeed = 3\n'), "unknown key"),
    (lambda t: t + '\n[[peak]]\nprecision = "fp16"\nengine = "gpu"\ntops = 2.0\nsource = "s"\n', "twice"),
    (lambda t: t.replace("memory_gb = 2.0", "memory_gb = 2.0\npaper_tops = 3.0"), "paper_precision"),
    (lambda t: t.replace("year = 2024", 'year = "new"'), "expected int"),
])
def test_strict_loading(tmp_path, edit, needle, toy_profile):
    with pytest.raises(UserError, match=needle):
        load_profile(_write(tmp_path, edit(toy_profile)))


def test_host_profile_is_measured_once_and_cached(tmp_path, monkeypatch):
    monkeypatch.setenv("HWBENCH_CACHE_DIR", str(tmp_path))
    calls = []
    real = profiles.measure_host

    def small(**kw):
        calls.append(1)
        return real(matmul_n=256, copy_mib=8, reps=2)

    monkeypatch.setattr(profiles, "measure_host", small)
    host = load_profile("host")
    assert calls == [1] and host.name == "host"
    assert host.peak_tops("fp32", "cpu") > 0 and host.mem_bw_gbps > 0
    cached = tmp_path / "host.toml"
    data = tomllib.loads(cached.read_text())          # readable TOML with date and torch/CPU info
    assert data["measured"]["date"] and data["measured"]["torch"] and data["measured"]["cpu"]
    again = load_profile("host")                      # from the cache, no measurement
    assert calls == [1] and again.peak_tops("fp32", "cpu") == pytest.approx(host.peak_tops("fp32", "cpu"))
    load_profile("host", refresh=True)
    assert calls == [1, 1]
    assert [p.name for p in tmp_path.iterdir()] == ["host.toml"]


def test_cli_profiles_json(capsys):
    from hwbench.cli import main

    assert main(["profiles", "tx2", "orin_nx", "--json"]) == 0
    recs = json.loads(capsys.readouterr().out)
    assert [r["name"] for r in recs] == ["tx2", "orin_nx"] and recs[1]["paper_tops"] == 50.0
    assert main(["profiles", "tx2", "--sources"]) == 0
    assert main(["profiles", "nope"]) == 2
    assert capsys.readouterr().err.strip().startswith("error: unknown device 'nope'")
