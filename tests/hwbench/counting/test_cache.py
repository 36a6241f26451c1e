"""hwbench.counting.cache: content-keyed, atomic, and never trusted blindly."""

from __future__ import annotations

import json
import logging
import random

import pytest

from hwbench import count as count_mod
from hwbench.count import count
from hwbench.counting import cache
from hwbench.counting import meta as meta_counter

SHAPE = (1, 3, 64, 128)
MODEL = "deeplabv3plus_resnet20"


@pytest.fixture
def cache_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("HWBENCH_CACHE_DIR", str(tmp_path / "c"))
    monkeypatch.delenv("HWBENCH_NO_CACHE", raising=False)
    return tmp_path / "c"


def _entries(folder):
    return sorted((folder / "count").glob("*.json"))


def _spy_builds(monkeypatch) -> list:
    """Record every meta count that actually runs (a cache hit runs none)."""
    calls = []
    real = meta_counter.count_meta

    def spy(*a, **k):
        calls.append(a[1])
        return real(*a, **k)

    monkeypatch.setattr(meta_counter, "count_meta", spy)
    return calls


def test_second_count_is_a_cache_hit_with_the_same_result(cache_dir, monkeypatch):
    calls = _spy_builds(monkeypatch)
    first = count(MODEL, SHAPE)
    assert len(_entries(cache_dir)) == 1 and len(calls) == 1
    second = count(MODEL, SHAPE)
    assert len(calls) == 1                                   # nothing recounted
    assert second == first                                   # every field, the layer table included
    assert count(MODEL, SHAPE, cache=False) == first and len(calls) == 2


@pytest.mark.parametrize("change", [
    {"input_shape": (1, 3, 64, 64)}, {"input_shape": (2, 3, 64, 128)}, {"num_classes": 7},
    {"output_stride": 8}, {"ops": "all"},
])
def test_every_part_of_the_key_changes_the_entry(cache_dir, change):
    base = count(MODEL, SHAPE)
    kw = {"input_shape": SHAPE, **change}
    other = count(MODEL, **kw)
    assert len(_entries(cache_dir)) == 2
    assert other == count(MODEL, **kw, cache=False) and other != base


def test_defaults_resolve_to_the_same_entry(cache_dir):
    count(MODEL, SHAPE)
    count(MODEL, SHAPE, num_classes=19, output_stride=16)    # the model's own defaults
    assert len(_entries(cache_dir)) == 1


def test_counter_version_and_source_are_in_the_key(cache_dir, monkeypatch):
    count(MODEL, SHAPE)
    monkeypatch.setattr(cache, "COUNTER_VERSION", cache.COUNTER_VERSION + 1)
    count(MODEL, SHAPE)
    monkeypatch.setattr(cache, "_FINGERPRINT", ["edited-source"])
    count(MODEL, SHAPE)
    assert len(_entries(cache_dir)) == 3


CORRUPT = [
    b"",                                                      # empty
    random.Random(7).randbytes(64),                           # random bytes (seeded: xdist workers collect the same ids)
    b'{"key": {"model": "x"}, "result": {}}',                 # valid JSON, another key
    b"[1, 2, 3]",
    b"NaN",
]


@pytest.mark.parametrize("payload", CORRUPT + ["truncated", "nan-macs", "negative", "bad-layer", "totals"])
def test_corrupt_entries_are_ignored_and_rewritten(cache_dir, monkeypatch, payload):
    good = count(MODEL, SHAPE)
    (path,) = _entries(cache_dir)
    text = path.read_bytes()
    original, entry = json.loads(text), json.loads(text)
    if payload == "truncated":
        data = text[: len(text) // 2]
    elif payload in ("nan-macs", "negative", "bad-layer", "totals"):
        res = entry["result"]
        if payload == "nan-macs":
            res["macs"] = float("nan")
        elif payload == "negative":
            res["params"] = -1
        elif payload == "bad-layer":
            res["layers"][0] = ["conv", "Conv2d", "many"]
        else:
            res["macs"] += 1
            res["backbone_macs"] += 1
        data = json.dumps(entry).encode()
    else:
        data = payload
    path.write_bytes(data)
    calls = _spy_builds(monkeypatch)
    assert count(MODEL, SHAPE) == good and len(calls) == 1  # recounted, not trusted
    assert json.loads(path.read_bytes()) == original         # and the entry rewritten
    assert count(MODEL, SHAPE) == good and len(calls) == 1  # now a hit again


def test_an_entry_that_is_a_directory_does_not_crash(cache_dir, caplog):
    key = cache.cache_key(MODEL, SHAPE, 19, 16, "convlinear")
    cache._path(cache_dir, key).mkdir(parents=True)
    with caplog.at_level(logging.WARNING):
        assert count(MODEL, SHAPE).macs == count(MODEL, SHAPE, cache=False).macs


def test_unwritable_cache_dir_warns_once_and_counts(tmp_path, monkeypatch, caplog):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    monkeypatch.setenv("HWBENCH_CACHE_DIR", str(blocker))
    monkeypatch.setattr(cache, "_WARNED", set())
    with caplog.at_level(logging.WARNING, logger="hwbench.counting.cache"):
        a = count(MODEL, SHAPE)
        b = count(MODEL, (1, 3, 32, 64))
    assert a.macs > b.macs > 0
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and "HWBENCH_CACHE_DIR" in warnings[0].getMessage()


def test_no_cache_env_turns_it_off(cache_dir, monkeypatch):
    monkeypatch.setenv("HWBENCH_NO_CACHE", "1")
    count(MODEL, SHAPE)
    assert not cache_dir.exists()


def test_default_location(monkeypatch, tmp_path):
    monkeypatch.delenv("HWBENCH_CACHE_DIR", raising=False)
    monkeypatch.delenv("HWBENCH_NO_CACHE", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert cache.cache_dir() == tmp_path / "home" / ".cache" / "hwbench"


def test_modules_and_fvcore_are_never_cached(cache_dir):
    from torch import nn

    count(nn.Conv2d(3, 4, 3), (1, 3, 8, 8))
    count("resnet20", (1, 3, 32, 32), counter="fvcore")
    assert not cache_dir.exists()


def test_public_api_is_unchanged():
    for name in ("count", "CountResult", "LayerCount", "ops_from_macs", "parse_hw", "check_input_shape",
                 "input_shape_from_hw", "model_label", "DEFAULT_INPUT", "PAPER_MODELS", "OPS_MODES", "COUNTERS"):
        assert hasattr(count_mod, name)
    assert count_mod(MODEL, SHAPE) == count(MODEL, SHAPE)    # the module is callable as its function
