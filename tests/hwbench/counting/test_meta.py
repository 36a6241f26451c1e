"""hwbench.counting.meta: shape-only kernels and architecture reuse change no figure; no heavy imports."""

from __future__ import annotations

import subprocess
import sys

import pytest

from hwbench.count import count
from hwbench.counting import meta, shapes
from hwbench.models import create_model

MODELS = ("deeplabv3plus_mobilenetv3_small", "deeplabv3plus_resnet18", "deeplabv3plus_xception65", "mobilenetv3_small")


@pytest.mark.parametrize("ops", ["convlinear", "all"])
def test_shape_only_kernels_change_nothing(ops, monkeypatch):
    fast = {m: count(m, (2, 3, 72, 136), ops=ops, cache=False).record(per_module=True) for m in MODELS}
    monkeypatch.setattr(shapes, "kernels", dict)
    monkeypatch.setitem(meta._STATE, "mode", None)
    try:
        slow = {m: count(m, (2, 3, 72, 136), ops=ops, cache=False).record(per_module=True) for m in MODELS}
    finally:
        meta._STATE.pop("mode", None)
    assert fast == slow        # totals, unsupported ops, per-layer io and peak activations


def test_an_architecture_is_built_once_and_reused_across_sizes():
    meta.clear_zoo()
    a = meta.zoo_model("deeplabv3plus_resnet18", None, None)
    small = count("deeplabv3plus_resnet18", (1, 3, 64, 128), cache=False)
    large = count("deeplabv3plus_resnet18", (1, 3, 128, 256), cache=False)
    assert meta.zoo_model("deeplabv3plus_resnet18", None, None) is a
    assert meta.zoo_model("deeplabv3plus_resnet18", 7, None) is not a
    # reuse gives what a model built for one size alone gives
    for shape, reused in (((1, 3, 64, 128), small), ((1, 3, 128, 256), large)):
        fresh = count(create_model("deeplabv3plus_resnet18"), shape)
        assert reused.record(per_module=True) == {**fresh.record(per_module=True), "model": reused.model}


def test_output_stride_is_counted():
    os8 = count("deeplabv3plus_resnet18", (1, 3, 64, 128), output_stride=8, cache=False)
    assert os8.macs == count(create_model("deeplabv3plus_resnet18", output_stride=8), (1, 3, 64, 128)).macs
    assert os8.macs > count("deeplabv3plus_resnet18", (1, 3, 64, 128), cache=False).macs


def test_counting_imports_neither_dynamo_nor_sympy():
    """Importing torch._dynamo (via torch's decompositions) or sympy (via torch._check) costs
    about 1-2 s of CPU per process; counting the whole zoo must need neither."""
    code = ("import sys\nfrom hwbench.count import count\nfrom hwbench.models import list_models\n"
            "for m in list_models():\n    count(m, (1, 3, 64, 128), ops='all', cache=False)\n"
            "print(sorted(k for k in ('torch._dynamo', 'sympy') if k in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_weights_are_not_initialised_on_meta_but_are_on_cpu():
    import torch

    from hwbench.models.layers import init_weights, on_meta

    with torch.device("meta"):
        m = create_model("resnet20")
    assert on_meta(m)
    init_weights(m)                                   # a no-op on meta (nothing to set)
    cpu = create_model("resnet20")
    assert not on_meta(cpu)
    bn = next(x for x in cpu.modules() if isinstance(x, torch.nn.BatchNorm2d))
    assert torch.equal(bn.weight, torch.ones_like(bn.weight))   # torchvision-style init still runs on CPU
