"""hwbench.deploy: verdict arithmetic, budgets and shares, the AL-side helper, the CLI."""

from __future__ import annotations

import json

import pytest
from torch import nn

from hwbench.count import count
from hwbench.deploy import deploy, deployable_models, memory_used_gb, resolve_budget
from hwbench.errors import UserError
from hwbench.profiles import DeviceProfile, Peak


def toy_device(tops: float, memory_gb: float = 1.0) -> DeviceProfile:
    return DeviceProfile(name="toy", display_name="Toy", generation="Toy", year=2024, power_mode="-",
                         mem_bw_gbps=1e6, memory_gb=memory_gb, peak=(Peak("fp16", "gpu", tops, "s"),), sources={})


CONV = nn.Conv2d(3, 8, 3, padding=1)     # 13,824 MACs on 1x3x8x8
SHAPE = (1, 3, 8, 8)


def test_budget_and_share_validation():
    assert resolve_budget(fps=10) == 100.0
    assert resolve_budget(budget_ms=40.0, share=0.5) == 40.0
    for kw in ({"fps": 0}, {"fps": -5}, {"budget_ms": 0.0}, {"budget_ms": -1.0}, {"fps": float("nan")},
               {"fps": 10, "share": 0}, {"fps": 10, "share": -0.1}, {"fps": 10, "share": 1.5},
               {"fps": 10, "budget_ms": 100}, {}):
        with pytest.raises(UserError):
            resolve_budget(**kw)


def test_verdict_math_by_hand():
    # peak latency = 2 * 13824 / (tops * 1e12) s; pick tops so that it is exactly 10 ms
    tops = 2 * 13824 / 1e10
    dev = toy_device(tops)
    (v,) = deploy([CONV], [dev], mode="peak", fps=50, input_shape=SHAPE)         # budget 20 ms
    assert v.latency_ms == pytest.approx(10.0) and v.budget_ms == pytest.approx(20.0)
    assert v.deployable and v.headroom == pytest.approx(1.0)                     # 20 / 10 - 1
    (v,) = deploy([CONV], [dev], mode="peak", fps=50, share=0.25, input_shape=SHAPE)
    assert v.effective_latency_ms == pytest.approx(40.0)                         # latency / share
    assert not v.deployable and v.headroom == pytest.approx(-0.5)                # 20 / 40 - 1
    (v,) = deploy([CONV], [dev], mode="peak", budget_ms=10.0, input_shape=SHAPE)
    assert v.deployable and v.headroom == pytest.approx(0.0) and v.fps is None   # exactly on budget


def test_memory_fit():
    c = count(CONV, SHAPE)
    used = memory_used_gb(c, "fp16")
    assert used == pytest.approx((224 + c.peak_activation_elems) * 2 / 1e9)
    tiny_memory = toy_device(1.0, memory_gb=used * 0.9)
    (v,) = deploy([c], [tiny_memory], mode="peak", fps=1)
    assert v.meets_budget and not v.fits_memory and not v.deployable
    (v,) = deploy([c], [toy_device(1.0, memory_gb=used * 1.5)], mode="peak", fps=1, share=0.5)
    assert v.memory_budget_gb == pytest.approx(used * 0.75) and not v.fits_memory


def test_deployable_models_follows_the_budget():
    loose = deployable_models("orin_nx", budget_ms=1e6)
    assert loose == ["deeplabv3plus_resnet20", "deeplabv3plus_mobilenetv3_small", "deeplabv3plus_resnet18",
                     "deeplabv3plus_resnet50", "deeplabv3plus_xception65"]
    assert deployable_models("orin_nx", budget_ms=1e-3) == []
    at10 = deployable_models("tx2", fps=10, mode="paper")
    shared = deployable_models("tx2", fps=10, mode="paper", share=0.3)
    assert set(shared) <= set(at10) and "deeplabv3plus_resnet20" in at10
    assert "deeplabv3plus_resnet50" not in at10                   # 310.8 ms > 100 ms even on paper


def test_cli_deploy_json_and_errors(capsys):
    from hwbench.cli import main

    assert main(["deploy", "deeplabv3plus_resnet18", "--device", "orin_nx", "--fps", "10", "--share", "0.5",
                 "--json"]) == 0
    (rec,) = json.loads(capsys.readouterr().out)
    assert {"model", "device", "mode", "latency_ms", "budget_ms", "deployable", "headroom"} <= set(rec)
    assert rec["budget_ms"] == 100.0 and rec["share"] == 0.5
    assert rec["headroom"] == pytest.approx(rec["budget_ms"] / (rec["latency_ms"] / 0.5) - 1)
    for argv in (["deploy", "--fps", "0"], ["deploy", "--fps", "10", "--share", "2"], ["deploy"],
                 ["deploy", "--fps", "10", "--budget-ms", "5"]):
        assert main(argv) == 2
        err = capsys.readouterr().err.strip()
        assert err.startswith("error:") and "\n" not in err
