"""Suite-wide fixtures: one torch thread, a private cache directory, optional per-test CPU/wall timing.

The suite runs in parallel (`make test` uses pytest-xdist), so nothing here may be shared between
workers: each worker session gets its own HWBENCH_CACHE_DIR under pytest's tmp root.
"""

import json
import os
import resource
import time

import pytest

os.environ.setdefault("MPLBACKEND", "Agg")

TIMES_ENV = "HWBENCH_TEST_TIMES"  # a directory: each worker appends one JSON line per test (see tests/timing.py)


@pytest.fixture(autouse=True, scope="session")
def _count_cache(tmp_path_factory):
    """Counts are cached in a folder of this session, never in the user's ~/.cache."""
    old = os.environ.get("HWBENCH_CACHE_DIR")
    os.environ["HWBENCH_CACHE_DIR"] = str(tmp_path_factory.mktemp("hwbench_cache"))
    os.environ.pop("HWBENCH_NO_CACHE", None)
    yield
    if old is None:
        os.environ.pop("HWBENCH_CACHE_DIR", None)
    else:
        os.environ["HWBENCH_CACHE_DIR"] = old


@pytest.fixture(autouse=True, scope="session")
def _torch_threads():
    try:
        import torch
    except ImportError:  # pragma: no cover
        return
    # Small-tensor tests are dominated by OpenMP overhead on a 2-core machine: one thread is ~5x faster.
    torch.set_num_threads(1)
    torch.manual_seed(0)


@pytest.fixture(autouse=True, scope="session")
def _private_cache_dir(tmp_path_factory):
    """Count/engine/pre-training caches go to a per-worker directory, never ~/.cache (tests may set their own)."""
    old = os.environ.get("HWBENCH_CACHE_DIR")
    os.environ["HWBENCH_CACHE_DIR"] = str(tmp_path_factory.mktemp("hwbench-cache"))
    yield
    if old is None:
        os.environ.pop("HWBENCH_CACHE_DIR", None)
    else:
        os.environ["HWBENCH_CACHE_DIR"] = old


def _cpu_s() -> float:
    own, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_protocol(item, nextitem):
    out = os.environ.get(TIMES_ENV)
    if not out:
        yield
        return
    wall0, cpu0 = time.perf_counter(), _cpu_s()
    yield  # setup + call + teardown, module/session fixtures included where this test builds them
    rec = {"nodeid": item.nodeid, "wall_s": time.perf_counter() - wall0, "cpu_s": _cpu_s() - cpu0}
    worker = os.environ.get("PYTEST_XDIST_WORKER", "main")
    os.makedirs(out, exist_ok=True)
    with open(os.path.join(out, f"{worker}.jsonl"), "a") as f:
        f.write(json.dumps(rec) + "\n")


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    """The on-device tests' results under the fleet's Pythons (tests/hwbench/ondevice/test_fleet_pythons.py)."""
    factory = getattr(config, "_tmp_path_factory", None)
    if factory is None:
        return
    try:
        base = factory.getbasetemp()
    except OSError:  # pragma: no cover
        return
    notes = sorted(base.glob("fleet-*.txt")) + sorted(base.glob("*/fleet-*.txt"))
    if notes:
        terminalreporter.section("on-device tests under the fleet's Pythons")
        for f in notes:
            terminalreporter.write(f.read_text())
