"""Package hygiene: CSVs without pandas, the cache folder's rule, optional features as named extras."""

from __future__ import annotations

import math
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from hwbench.cachedir import cache_root
from hwbench.csvfile import records_csv
from hwbench.errors import UserError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

ROOT = Path(__file__).resolve().parents[2]


def test_records_csv_reads_back_with_pandas(tmp_path):
    # pandas is the oracle: what it reads back is what was written, column order as first seen
    rows = [{"model": "Res-20", "gmacs": 32.0612, "params": 12, "note": None},
            {"model": 'a,"b"', "gmacs": np.float64(0.1), "extra": True, "params": 404052508672},
            {"model": "x", "gmacs": math.nan, "params": 3, "note": "line\nbreak"}]
    text = records_csv(rows)
    assert text.splitlines()[0] == "model,gmacs,params,note,extra"
    (tmp_path / "t.csv").write_text(text)
    df = pd.read_csv(tmp_path / "t.csv")
    assert list(df["model"]) == ["Res-20", 'a,"b"', "x"]
    assert df["gmacs"].iloc[0] == 32.0612 and df["gmacs"].iloc[1] == 0.1 and math.isnan(df["gmacs"].iloc[2])
    assert list(df["params"]) == [12, 404052508672, 3]  # ints stay ints (no 4.04e+11)
    assert math.isnan(df["note"].iloc[0]) and df["note"].iloc[2] == "line\nbreak"


def test_records_csv_float_format_and_empty():
    assert records_csv([{"a": 1 / 3, "b": 7}], float_format="%.6g") == "a,b\n0.333333,7\n"
    assert records_csv([]) == ""


def test_cache_root_rule(monkeypatch, tmp_path):
    monkeypatch.delenv("HWBENCH_CACHE_DIR", raising=False)
    monkeypatch.delenv("XDG_CACHE_HOME", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert cache_root() == tmp_path / "home" / ".cache" / "hwbench"
    monkeypatch.setenv("XDG_CACHE_HOME", "relative/ignored")  # the XDG spec: only absolute paths count
    assert cache_root() == tmp_path / "home" / ".cache" / "hwbench"
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert cache_root() == tmp_path / "xdg" / "hwbench"
    monkeypatch.setenv("HWBENCH_CACHE_DIR", str(tmp_path / "mine"))  # still wins
    assert cache_root() == tmp_path / "mine"


def test_every_cache_follows_the_rule(monkeypatch, tmp_path):
    from al.pretrain.cache import cache_root as pretrain_root
    from hwbench import ondevice
    from hwbench.counting.cache import cache_dir as count_dir
    from hwbench.profiles import host_cache_path

    monkeypatch.delenv("HWBENCH_CACHE_DIR", raising=False)
    monkeypatch.delenv("HWBENCH_NO_CACHE", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    base = tmp_path / "hwbench"
    assert count_dir() == base and host_cache_path() == base / "host.toml"
    assert pretrain_root() == base / "pretrain" and ondevice.default_cache_dir() == base


def test_no_core_dependency_on_pandas_or_scikit_learn_and_a_torch_bound():
    meta = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    core = " ".join(meta["dependencies"])
    assert "pandas" not in core and "scikit-learn" not in core and "fvcore" not in core
    torch_req = next(d for d in meta["dependencies"] if d.startswith("torch"))
    assert "<" in torch_req
    extras = meta["optional-dependencies"]
    assert any("fvcore" in d for d in extras["fvcore"]) and any("onnxscript" in d for d in extras["ort"])
    assert any("scikit-learn" in d for d in extras["digits"])
    import torch

    upper = torch_req.split("<")[1].split(",")[0]
    assert tuple(map(int, torch.__version__.split("+")[0].split(".")[:2])) < tuple(map(int, upper.split(".")[:2]))


def test_no_module_imports_pandas():
    for path in [*ROOT.joinpath("hwbench").rglob("*.py"), *ROOT.joinpath("al").rglob("*.py")]:
        text = path.read_text(encoding="utf-8")
        assert "import pandas" not in text, path


def test_digits_without_scikit_learn_is_a_one_line_install_hint(monkeypatch):
    import importlib.util

    from al.data import digits

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "sklearn" else real(name, *a))
    with pytest.raises(UserError, match=r"pip install 'hwbench\[digits\]'"):
        digits.load_scans()
