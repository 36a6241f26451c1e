import os

import pytest

os.environ.setdefault("MPLBACKEND", "Agg")


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
