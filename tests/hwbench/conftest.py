"""Fixtures shared by the hwbench tests."""

import pytest

TOY_PROFILE = """
name = "toy"
display_name = "Toy"
generation = "Toy"
year = 2024
power_mode = "5W"
mem_bw_gbps = 10.0
memory_gb = 2.0

[sources]
year = "s"
generation = "s"
power_mode = "s"
mem_bw_gbps = "s"
memory_gb = "s"

[[peak]]
precision = "fp16"
engine = "gpu"
tops = 1.0
source = "s"
"""


@pytest.fixture
def toy_profile() -> str:
    """A minimal valid device profile (TOML text) that tests edit into invalid ones."""
    return TOY_PROFILE
