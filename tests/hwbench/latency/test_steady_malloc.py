"""The measured section's allocator setting: glibc mmap/trim off inside the block, no page faults."""

from __future__ import annotations

import resource

import pytest

from hwbench.errors import UserError
from hwbench.latency.measured_report import steady_malloc


def test_unknown_mode():
    with pytest.raises(UserError, match="malloc mode"), steady_malloc("bogus"):
        pass


def test_default_mode_changes_nothing():
    with steady_malloc("default") as applied:
        assert applied == "default"


def test_steady_mode_reuses_memory():
    """After one warm-up, allocating and freeing a 64 MiB buffer again costs no new page faults."""
    with steady_malloc("steady") as applied:
        if applied == "default":
            pytest.skip("no glibc mallopt on this platform")
        bytearray(64 << 20)  # warm-up: the heap grows once
        before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
        for _ in range(3):
            bytearray(64 << 20)
        assert resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before < 1000  # 64 MiB fresh = 16k faults
