import os

import pytest

os.environ.setdefault("MPLBACKEND", "Agg")


@pytest.fixture(autouse=True, scope="session")
def _torch_threads():
    try:
        import torch
    except ImportError:  # pragma: no cover
        return
    # Small-tensor tests are dominated by OpenMP overhead on a 2-core machine: one thread is ~5x faster.
    torch.set_num_threads(1)
    torch.manual_seed(0)
