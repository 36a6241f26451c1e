"""`input = "HxW"` in experiment and fleet configs goes through hwbench's one parser, errors naming the key."""

from __future__ import annotations

import pytest

from al.experiments.config import DeploySource
from al.fleet.config import LatencySpec
from hwbench.errors import UserError


@pytest.mark.parametrize(("make", "key"), [(lambda t: DeploySource(device="tx2", fps=10, input=t),
                                             "surrogates.from_deploy.input"),
                                            (lambda t: LatencySpec(input=t), "latency.input")])
def test_input_hw(make, key) -> None:
    assert make("1024x2048").input_hw() == (1024, 2048)
    assert make("512×1024").input_hw() == (512, 1024)
    for bad, what in (("1024", "must be HxW"), ("axb", "must be HxW"), ("0x64", "must be positive HxW")):
        with pytest.raises(UserError, match=f"^{key} {what}"):
            make(bad).input_hw()
